//! A session's estimator inputs, one JSON line each, so that a session with a real browser
//! can be replayed in a test (`src/congestion/recorded/`). robocast writes them when
//! `ROBOCAST_LINK_JOURNAL` names a directory: one file per session (a tool for whoever
//! tunes the estimator, off by default).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Bounds, Estimator};

/// One input, with the time it came, µs since the session's start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
pub enum Event {
    /// The estimator's bounds, bit/s: the first line.
    Start {
        min: u64,
        start: u64,
        max: u64,
    },
    Sent {
        t: u64,
        seq: u16,
        size: usize,
    },
    /// Transport-wide feedback: sequence numbers and arrival times (µs on the viewer's
    /// clock) or `null` for lost.
    Feedback {
        t: u64,
        arrivals: Vec<(u16, Option<u64>)>,
    },
    Remb {
        t: u64,
        bps: u64,
    },
    Report {
        t: u64,
        loss: f64,
    },
    Rtt {
        us: u64,
    },
    /// The viewer became eager or stopped being so ([`Estimator::set_eager`]).
    Eager {
        eager: bool,
    },
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Event {
    pub fn start(bounds: Bounds) -> Event {
        Event::Start { min: bounds.min, start: bounds.start, max: bounds.max }
    }

    pub fn sent(now: Duration, seq: u16, size: usize) -> Event {
        Event::Sent { t: us(now), seq, size }
    }

    pub fn remb(now: Duration, bps: u64) -> Event {
        Event::Remb { t: us(now), bps }
    }

    pub fn report(now: Duration, loss: f64) -> Event {
        Event::Report { t: us(now), loss }
    }

    pub fn rtt(rtt: Duration) -> Event {
        Event::Rtt { us: us(rtt) }
    }

    pub fn feedback(now: Duration, arrivals: &[(u16, Option<Duration>)]) -> Event {
        Event::Feedback {
            t: us(now),
            arrivals: arrivals.iter().map(|&(seq, at)| (seq, at.map(us))).collect(),
        }
    }

    /// Feeds the event to `estimator` as the session did; a `Start` makes a new one.
    pub fn apply(&self, estimator: &mut Estimator) {
        let at = Duration::from_micros;
        match self {
            Event::Start { min, start, max } => {
                *estimator = Estimator::new(Bounds { min: *min, start: *start, max: *max });
            }
            Event::Sent { t, seq, size } => estimator.on_sent(*seq, at(*t), *size),
            Event::Feedback { t, arrivals } => {
                estimator.on_transport_feedback(at(*t), arrivals.iter().map(|&(seq, a)| (seq, a.map(at))));
            }
            Event::Remb { t, bps } => {
                estimator.on_remb(at(*t), *bps);
            }
            Event::Report { t, loss } => {
                estimator.on_receiver_report(at(*t), *loss);
            }
            Event::Rtt { us } => estimator.on_rtt(at(*us)),
            Event::Eager { eager } => estimator.set_eager(*eager),
        }
    }

    /// When it came (`Start` and `Rtt` carry no time).
    pub fn at(&self) -> Option<Duration> {
        match self {
            Event::Sent { t, .. }
            | Event::Feedback { t, .. }
            | Event::Remb { t, .. }
            | Event::Report { t, .. } => Some(Duration::from_micros(*t)),
            Event::Start { .. } | Event::Rtt { .. } | Event::Eager { .. } => None,
        }
    }
}
