//! A source that keeps failing (a camera that is unplugged for an hour) is logged when the
//! failure starts, when its reason changes, every [`REMIND_EVERY`] while it lasts, and when
//! it ends; the retries in between go to the debug log. The decision is a pure function
//! of time, so it is tested without waiting.

use std::time::{Duration, Instant};

/// How often a failure that goes on is logged again.
pub const REMIND_EVERY: Duration = Duration::from_secs(300);

/// What to log for an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Note {
    /// A new failure: warn.
    Started,
    /// The same failure, with a different reason: warn.
    Changed,
    /// Still failing after `attempts` tries over `lasting`: warn.
    Reminder { attempts: u64, lasting: Duration },
    /// Another failed retry: debug only.
    Quiet,
    /// Working again after `attempts` failed tries over `lasting`: info.
    Ended { attempts: u64, lasting: Duration },
}

/// The current run of failures of one pipeline.
#[derive(Debug, Default)]
pub struct Failures {
    run: Option<Run>,
}

#[derive(Debug)]
struct Run {
    since: Instant,
    logged: Instant,
    attempts: u64,
    reason: String,
}

impl Failures {
    /// A failure with `reason` at `now`.
    pub fn failed(&mut self, reason: &str, now: Instant) -> Note {
        let Some(run) = &mut self.run else {
            self.run = Some(Run { since: now, logged: now, attempts: 1, reason: reason.into() });
            return Note::Started;
        };
        run.attempts += 1;
        if run.reason != reason {
            run.reason = reason.into();
            run.logged = now;
            return Note::Changed;
        }
        if now.duration_since(run.logged) >= REMIND_EVERY {
            run.logged = now;
            return Note::Reminder { attempts: run.attempts, lasting: now.duration_since(run.since) };
        }
        Note::Quiet
    }

    /// The pipeline works again at `now`; `None` if it had not been failing.
    pub fn recovered(&mut self, now: Instant) -> Option<Note> {
        let run = self.run.take()?;
        Some(Note::Ended { attempts: run.attempts, lasting: now.duration_since(run.since) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lasting_failure_is_logged_at_start_every_few_minutes_and_at_the_end() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut failures = Failures::default();
        assert_eq!(failures.failed("no such device", at(0)), Note::Started);
        // Retries every 2 s for ten minutes: two reminders, the rest quiet.
        let notes: Vec<Note> = (1..=300).map(|i| failures.failed("no such device", at(2 * i))).collect();
        let loud: Vec<&Note> = notes.iter().filter(|n| **n != Note::Quiet).collect();
        assert_eq!(
            loud,
            [
                &Note::Reminder { attempts: 151, lasting: Duration::from_secs(300) },
                &Note::Reminder { attempts: 301, lasting: Duration::from_secs(600) },
            ]
        );
        assert_eq!(failures.failed("device busy", at(601)), Note::Changed);
        assert_eq!(
            failures.recovered(at(610)),
            Some(Note::Ended { attempts: 302, lasting: Duration::from_secs(610) })
        );
        assert_eq!(failures.recovered(at(611)), None, "nothing to end twice");
        assert_eq!(failures.failed("no such device", at(700)), Note::Started, "a new failure");
    }
}
