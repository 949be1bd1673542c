//! The dead-man stop, as a pure state machine the hub drives with its clock: armed by the
//! driver's first command, it fires once when the driver goes quiet for the limit, or at
//! once when the driver's link or tab goes away; the next command arms it again.

use std::time::{Duration, Instant};

use crate::sessions::SessionId;

/// Why the dead-man fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Nothing from the driver for the limit.
    Silence,
    /// The driver's tab was hidden.
    Hidden,
    /// The driver's `control` channel closed.
    ChannelClosed,
    /// The driver's connection went ICE-disconnected (a failed or closed one ends the
    /// session: [`Reason::Ended`]).
    Link,
    /// The driver's session ended.
    Ended,
    /// The driver released the seat.
    Released,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Silence => "silence",
            Reason::Hidden => "hidden",
            Reason::ChannelClosed => "channel closed",
            Reason::Link => "link",
            Reason::Ended => "ended",
            Reason::Released => "released",
        }
    }
}

/// A fired dead-man: stop the robot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fired {
    pub session: SessionId,
    /// Time since the driver's last command.
    pub silent: Duration,
    pub reason: Reason,
}

#[derive(Debug)]
struct Armed {
    session: SessionId,
    last: Instant,
    fired: bool,
}

#[derive(Debug)]
pub struct Deadman {
    limit: Duration,
    armed: Option<Armed>,
}

impl Deadman {
    pub fn new(limit: Duration) -> Deadman {
        Deadman { limit, armed: None }
    }

    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// A command or heartbeat from the driver `session` at `now`.
    pub fn fed(&mut self, session: &SessionId, now: Instant) {
        self.armed = Some(Armed { session: session.clone(), last: now, fired: false });
    }

    /// When silence fires, if the dead-man is armed and has not fired yet.
    pub fn deadline(&self) -> Option<Instant> {
        self.armed.as_ref().filter(|a| !a.fired).map(|a| a.last + self.limit)
    }

    /// Fires for `session` (only if it is the armed driver and has not fired since its
    /// last command); `None` otherwise.
    pub fn fire(&mut self, session: &SessionId, now: Instant, reason: Reason) -> Option<Fired> {
        let armed = self.armed.as_mut().filter(|a| &a.session == session && !a.fired)?;
        armed.fired = true;
        Some(Fired { session: session.clone(), silent: now.saturating_duration_since(armed.last), reason })
    }

    /// Fires on silence if the deadline has passed.
    pub fn poll(&mut self, now: Instant) -> Option<Fired> {
        let session =
            self.armed.as_ref().filter(|_| self.deadline().is_some_and(|d| d <= now))?.session.clone();
        self.fire(&session, now, Reason::Silence)
    }

    /// The driver is gone (after any last firing): nothing is armed.
    pub fn disarm(&mut self) {
        self.armed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_per_silence_and_rearms_on_the_next_command() {
        let a = SessionId::parse("0000000000000000000000000000000a").expect("id");
        let limit = Duration::from_millis(300);
        let mut deadman = Deadman::new(limit);
        let t0 = Instant::now();
        assert_eq!(deadman.deadline(), None, "not armed before the first command");
        deadman.fed(&a, t0);
        assert_eq!(deadman.deadline(), Some(t0 + limit));
        assert_eq!(deadman.poll(t0 + Duration::from_millis(299)), None);
        let fired = deadman.poll(t0 + limit).expect("fires at the limit");
        assert_eq!((fired.silent, fired.reason), (limit, Reason::Silence));
        assert_eq!(deadman.poll(t0 + Duration::from_secs(5)), None, "once per silence");
        assert_eq!(deadman.fire(&a, t0 + Duration::from_secs(5), Reason::Link), None);

        let t1 = t0 + Duration::from_secs(6);
        deadman.fed(&a, t1);
        let b = SessionId::parse("0000000000000000000000000000000b").expect("id");
        assert_eq!(deadman.fire(&b, t1, Reason::Hidden), None, "only the driver's link counts");
        let fired = deadman.fire(&a, t1 + Duration::from_millis(40), Reason::Hidden).expect("fires at once");
        assert_eq!((fired.silent, fired.reason), (Duration::from_millis(40), Reason::Hidden));
        assert_eq!(deadman.deadline(), None);
    }
}
