//! The seats: who drives (may send `control` commands to the robot) and who talks (is
//! played on the robot's speaker and display). One place decides both, so a permission
//! check (the security issue's operator role) is added here and nowhere else.

use crate::sessions::SessionId;

/// Which seat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeatKind {
    /// Sends the `control` commands the robot's programs obey.
    Driver,
    /// Is heard on the robot's speaker and seen on its display.
    Talker,
}

impl SeatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SeatKind::Driver => "driver",
            SeatKind::Talker => "talker",
        }
    }
}

/// Why a session did not get a seat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Someone else holds it.
    Taken(SeatKind, SessionId),
    /// The session is not a connected `/api/connect` session.
    NotConnected,
}

impl Refusal {
    /// What went wrong and what to do, for the HTTP layer's 409 and the page.
    pub fn describe(&self) -> (String, &'static str) {
        match self {
            Refusal::Taken(SeatKind::Driver, driver) => (
                format!("session {driver} drives"),
                "wait until it releases the seat or its session ends, then ask again",
            ),
            Refusal::Taken(SeatKind::Talker, talker) => (
                format!("session {talker} talks"),
                "one talker at a time: wait until it stops sending its microphone and camera (or its session ends), then try again",
            ),
            Refusal::NotConnected => (
                "the session is not connected yet, or is view-only (WHEP)".into(),
                "connect through POST /api/connect and ask once the connection is up",
            ),
        }
    }

    /// Who holds the seat that was refused.
    pub fn holder(&self) -> Option<(SeatKind, &SessionId)> {
        match self {
            Refusal::Taken(kind, holder) => Some((*kind, holder)),
            Refusal::NotConnected => None,
        }
    }
}

/// One seat: at most one session holds it.
#[derive(Debug)]
pub struct Seat {
    kind: SeatKind,
    holder: Option<SessionId>,
}

impl Seat {
    pub fn new(kind: SeatKind) -> Seat {
        Seat { kind, holder: None }
    }

    pub fn holder(&self) -> Option<&SessionId> {
        self.holder.as_ref()
    }

    pub fn is_held_by(&self, id: &SessionId) -> bool {
        self.holder.as_ref() == Some(id)
    }

    /// Gives `id` the seat when it is free (or already theirs). `allowed` says whether
    /// the session may hold it at all; returns whether the holder changed.
    pub fn take(&mut self, id: &SessionId, allowed: bool) -> Result<bool, Refusal> {
        if !allowed {
            return Err(Refusal::NotConnected);
        }
        match &self.holder {
            Some(holder) if holder == id => Ok(false),
            Some(holder) => Err(Refusal::Taken(self.kind, holder.clone())),
            None => {
                self.holder = Some(id.clone());
                Ok(true)
            }
        }
    }

    /// Frees the seat if `id` holds it; returns whether it did.
    pub fn release(&mut self, id: &SessionId) -> bool {
        let held = self.is_held_by(id);
        if held {
            self.holder = None;
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
    fn one_holder_at_a_time() {
        let (a, b) = (id("000000000000000a"), id("000000000000000b"));
        let mut seat = Seat::new(SeatKind::Driver);
        assert_eq!(seat.take(&a, true), Ok(true));
        assert_eq!(seat.take(&a, true), Ok(false), "taking it again changes nothing");
        assert_eq!(seat.take(&b, true), Err(Refusal::Taken(SeatKind::Driver, a.clone())));
        assert!(!seat.release(&b), "b cannot release a's seat");
        assert!(seat.release(&a));
        assert_eq!(seat.take(&b, true), Ok(true));
        assert_eq!(seat.take(&a, false), Err(Refusal::NotConnected));
    }

    #[test]
    fn refusals_name_the_holder_and_the_seat() {
        let a = id("000000000000000a");
        let mut talk = Seat::new(SeatKind::Talker);
        talk.take(&a, true).expect("free");
        let refusal = talk.take(&id("000000000000000b"), true).expect_err("taken");
        assert_eq!(refusal.holder(), Some((SeatKind::Talker, &a)));
        let (error, hint) = refusal.describe();
        assert!(error.contains("000000000000000a talks") && hint.contains("one talker"), "{error} {hint}");
    }
}
