//! The seats: who drives (may send `control` commands to the robot) and who talks (is
//! played on the robot's speaker and display). One place decides both, and asks
//! [`crate::auth::allows`] whether the session's role may hold a seat at all.

use crate::auth::{self, Access, Action};
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
    /// The session was opened without the operator token.
    NotOperator(SeatKind),
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
            Refusal::NotOperator(SeatKind::Driver) => (
                "driving needs the operator token; this session only watches".into(),
                "connect with Authorization: Bearer <operator token> (the page: open it with #token=<operator token>)",
            ),
            Refusal::NotOperator(SeatKind::Talker) => (
                "talking through the robot needs the operator token; this session only watches".into(),
                "connect with Authorization: Bearer <operator token> (the page: open it with #token=<operator token>)",
            ),
        }
    }

    /// Who holds the seat that was refused.
    pub fn holder(&self) -> Option<(SeatKind, &SessionId)> {
        match self {
            Refusal::Taken(kind, holder) => Some((*kind, holder)),
            Refusal::NotConnected | Refusal::NotOperator(_) => None,
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

    /// Gives `id` the seat when it is free (or already theirs) and the session may hold
    /// it: it was opened with `access` that [`auth::allows`] the seat's action, and is
    /// `connected`. Returns whether the holder changed.
    pub fn take(&mut self, id: &SessionId, access: Access, connected: bool) -> Result<bool, Refusal> {
        let action = match self.kind {
            SeatKind::Driver => Action::Drive,
            SeatKind::Talker => Action::Talk,
        };
        if !auth::allows(access, action) {
            return Err(Refusal::NotOperator(self.kind));
        }
        if !connected {
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
    use Access::{Operator, Viewer};

    fn id(s: &str) -> SessionId {
        SessionId::parse(&format!("{s:0>32}")).expect("hex digits")
    }

    #[test]
    fn one_holder_at_a_time() {
        let (a, b) = (id("a"), id("b"));
        let mut seat = Seat::new(SeatKind::Driver);
        assert_eq!(seat.take(&a, Operator, true), Ok(true));
        assert_eq!(seat.take(&a, Operator, true), Ok(false), "taking it again changes nothing");
        assert_eq!(seat.take(&b, Operator, true), Err(Refusal::Taken(SeatKind::Driver, a.clone())));
        assert!(!seat.release(&b), "b cannot release a's seat");
        assert!(seat.release(&a));
        assert_eq!(seat.take(&b, Operator, true), Ok(true));
        assert_eq!(seat.take(&a, Operator, false), Err(Refusal::NotConnected));
    }

    #[test]
    fn only_an_operators_session_gets_a_seat() {
        let a = id("a");
        for kind in [SeatKind::Driver, SeatKind::Talker] {
            let mut seat = Seat::new(kind);
            assert_eq!(seat.take(&a, Viewer, true), Err(Refusal::NotOperator(kind)));
            assert_eq!(seat.holder(), None);
            let (error, hint) = Refusal::NotOperator(kind).describe();
            assert!(error.contains("needs the operator token") && hint.contains("#token="), "{error} {hint}");
        }
    }

    #[test]
    fn refusals_name_the_holder_and_the_seat() {
        let a = id("a");
        let mut talk = Seat::new(SeatKind::Talker);
        talk.take(&a, Operator, true).expect("free");
        let refusal = talk.take(&id("b"), Operator, true).expect_err("taken");
        assert_eq!(refusal.holder(), Some((SeatKind::Talker, &a)));
        let (error, hint) = refusal.describe();
        assert!(error.contains(&format!("{a} talks")) && hint.contains("one talker"), "{error} {hint}");
    }
}
