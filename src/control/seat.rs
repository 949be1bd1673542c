//! The driver seat: who may send `control` commands to the robot. One place decides, so a
//! permission check (the security issue's operator role) is added here and nowhere else.

use crate::sessions::SessionId;

/// Why a session did not get the seat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Someone else drives.
    Taken(SessionId),
    /// The session is not a connected `/api/connect` session.
    NotConnected,
}

impl Refusal {
    /// What went wrong and what to do, for the HTTP layer's 409.
    pub fn describe(&self) -> (String, &'static str) {
        match self {
            Refusal::Taken(driver) => (
                format!("session {driver} drives"),
                "wait until it releases the seat or its session ends, then ask again",
            ),
            Refusal::NotConnected => (
                "the session is not connected yet, or is view-only (WHEP)".into(),
                "connect through POST /api/connect and ask once the connection is up",
            ),
        }
    }

    pub fn driver(&self) -> Option<&SessionId> {
        match self {
            Refusal::Taken(driver) => Some(driver),
            Refusal::NotConnected => None,
        }
    }
}

/// Who drives. At most one session.
#[derive(Debug, Default)]
pub struct Seat {
    driver: Option<SessionId>,
}

impl Seat {
    pub fn driver(&self) -> Option<&SessionId> {
        self.driver.as_ref()
    }

    pub fn is_driver(&self, id: &SessionId) -> bool {
        self.driver.as_ref() == Some(id)
    }

    /// Gives `id` the seat when it is free (or already theirs). `connected` says whether
    /// the session may drive at all; returns whether the driver changed.
    pub fn take(&mut self, id: &SessionId, connected: bool) -> Result<bool, Refusal> {
        if !connected {
            return Err(Refusal::NotConnected);
        }
        match &self.driver {
            Some(driver) if driver == id => Ok(false),
            Some(driver) => Err(Refusal::Taken(driver.clone())),
            None => {
                self.driver = Some(id.clone());
                Ok(true)
            }
        }
    }

    /// Frees the seat if `id` holds it; returns whether it did.
    pub fn release(&mut self, id: &SessionId) -> bool {
        let held = self.is_driver(id);
        if held {
            self.driver = None;
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SessionId {
        SessionId::parse(s).expect("16 hex digits")
    }

    #[test]
    fn one_driver_at_a_time() {
        let (a, b) = (id("000000000000000a"), id("000000000000000b"));
        let mut seat = Seat::default();
        assert_eq!(seat.take(&a, true), Ok(true));
        assert_eq!(seat.take(&a, true), Ok(false), "taking it again changes nothing");
        assert_eq!(seat.take(&b, true), Err(Refusal::Taken(a.clone())));
        assert!(!seat.release(&b), "b cannot release a's seat");
        assert!(seat.release(&a));
        assert_eq!(seat.take(&b, true), Ok(true));
        assert_eq!(seat.take(&a, false), Err(Refusal::NotConnected));
    }
}
