//! The pacer of one session: packets leave at the link's pace instead of in bursts, and
//! retransmissions cannot bury the link.
//!
//! A token bucket at [`PACING_FACTOR`] × the estimate that holds up to [`PACING_BURST`]:
//! an ordinary frame leaves at once, a key frame (dozens of packets) over tens of
//! milliseconds, so a thin link's queue does not overflow on it. Video waits its turn;
//! audio only takes its share, never waits.
//!
//! webrtc-rs's NACK responder resends every packet a viewer asks for, as often as it is
//! asked; a viewer on a lossy link asks again every 100 ms, and the resends then take the
//! link from the media (measured: 46 % loss at a fifth of the link's rate). So a resend
//! goes only if the same packet has not left within a round trip, and only while the
//! queue is short.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The pacer sends this much faster than the estimate (as libwebrtc's does), so the
/// encoder's own variation does not queue behind it.
pub const PACING_FACTOR: f64 = 2.5;
/// Data the pacer lets go at once: this long at the pacing rate.
pub const PACING_BURST: Duration = Duration::from_millis(40);
/// A resend is dropped when the queue is longer than this.
const RESEND_QUEUE: Duration = Duration::from_millis(100);
/// The least time between two sends of one packet.
const RESEND_MIN_INTERVAL: Duration = Duration::from_millis(50);
/// A packet first sent longer ago than this is not sent again: a live viewer has moved
/// on (it asks for a key frame if it cannot).
const RESEND_MAX_AGE: Duration = Duration::from_millis(1000);
/// Resends may take this share of the estimate, at most.
const RESEND_SHARE: f64 = 0.2;
/// Sends are remembered this long, to tell resends.
const REMEMBER: Duration = Duration::from_secs(2);

/// What to do with a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Pace {
    /// Send it at this time (now or later).
    At(Instant),
    /// Resend it at this time.
    Resend(Instant),
    /// A resend that would not help: drop it.
    Drop,
}

/// One lock for all of it, held for arithmetic only.
pub struct Pacer(Mutex<State>);

struct State {
    /// When the next packet may leave.
    next: Instant,
    /// When each recent packet was first and last sent.
    sent: HashMap<(u32, u16), (Instant, Instant)>,
    /// The newest sequence number of each stream: an older one that `sent` no longer
    /// remembers is a resend of a packet long gone, not a new packet.
    newest: HashMap<u32, u16>,
    pruned: Instant,
    /// Bits resends may still take, refilled at [`RESEND_SHARE`] of the estimate.
    resend_budget: f64,
    refilled: Instant,
}

impl Pacer {
    /// A pacer whose first burst (a joining viewer's key frame) may leave at once.
    pub fn new(now: Instant) -> Pacer {
        Pacer(Mutex::new(State {
            next: now.checked_sub(PACING_BURST).unwrap_or(now),
            sent: HashMap::new(),
            newest: HashMap::new(),
            pruned: now,
            resend_budget: 0.0,
            refilled: now,
        }))
    }

    /// Schedules packet `seq` of stream `ssrc`, `bits` long, at `rate` bit/s (the estimate
    /// × [`PACING_FACTOR`]), `rtt` being the link's round trip.
    pub fn schedule(
        &self,
        (ssrc, seq): (u32, u16),
        bits: f64,
        rate: f64,
        rtt: Duration,
        now: Instant,
    ) -> Pace {
        let mut state = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if now.saturating_duration_since(state.pruned) > REMEMBER {
            state.sent.retain(|_, (_, last)| now.saturating_duration_since(*last) < REMEMBER);
            state.pruned = now;
        }
        let share = rate / PACING_FACTOR * RESEND_SHARE;
        let refill = now.saturating_duration_since(state.refilled).as_secs_f64() * share;
        state.resend_budget = (state.resend_budget + refill).min(share * 0.5);
        state.refilled = now;
        let resend = match state.sent.get(&(ssrc, seq)).copied() {
            Some((first, last)) => {
                let useless = now.saturating_duration_since(last) < rtt.max(RESEND_MIN_INTERVAL)
                    || now.saturating_duration_since(first) > RESEND_MAX_AGE
                    || state.next.saturating_duration_since(now) > RESEND_QUEUE
                    || state.resend_budget < bits;
                if useless {
                    return Pace::Drop;
                }
                state.resend_budget -= bits;
                state.sent.insert((ssrc, seq), (first, now));
                true
            }
            None => {
                let newest = state.newest.entry(ssrc).or_insert(seq.wrapping_sub(1));
                // Ahead of the newest (within half the sequence space, as RTP counts).
                if (seq.wrapping_sub(*newest) as i16) <= 0 {
                    return Pace::Drop;
                }
                *newest = seq;
                state.sent.insert((ssrc, seq), (now, now));
                false
            }
        };
        let at = state.next.max(now.checked_sub(PACING_BURST).unwrap_or(now));
        state.next = at + Duration::from_secs_f64(bits / rate.max(1.0));
        let at = at.max(now);
        if resend { Pace::Resend(at) } else { Pace::At(at) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(40);

    fn delay(pace: Pace, now: Instant) -> Duration {
        match pace {
            Pace::At(at) | Pace::Resend(at) => at.duration_since(now),
            Pace::Drop => panic!("dropped"),
        }
    }

    #[test]
    fn lets_40_ms_go_at_once_then_spreads() {
        let now = Instant::now() + Duration::from_secs(1);
        let pacer = Pacer::new(now - Duration::from_secs(1));
        // 2.5 Mbit/s: 40 ms is 100 kbit, ten 10-kbit packets, then one each 4 ms.
        let times: Vec<_> = (0..20)
            .map(|seq| delay(pacer.schedule((1, seq), 10_000.0, 2_500_000.0, RTT, now), now))
            .collect();
        assert!(times[..11].iter().all(Duration::is_zero), "{times:?}");
        assert!((times[19].as_secs_f64() - 0.036).abs() < 0.001, "{times:?}");
    }

    #[test]
    fn an_old_packet_is_not_resent() {
        let now = Instant::now();
        let pacer = Pacer::new(now);
        pacer.schedule((1, 7), 1000.0, 1e6, RTT, now);
        let late = now + Duration::from_millis(1100);
        assert_eq!(pacer.schedule((1, 7), 1000.0, 1e6, RTT, late), Pace::Drop);
        // Long after it is forgotten, asked for again (a receiver that keeps asking): it
        // is still not new.
        pacer.schedule((1, 8), 1000.0, 1e6, RTT, late);
        let forgotten = now + REMEMBER + Duration::from_secs(1);
        assert!(
            matches!(pacer.schedule((1, 9), 1000.0, 1e6, RTT, forgotten), Pace::At(_)),
            "the next is new"
        );
        assert_eq!(pacer.schedule((1, 7), 1000.0, 1e6, RTT, forgotten), Pace::Drop);
        // Across the wrap of the 16-bit sequence numbers.
        for seq in [65_534, 65_535, 0, 1] {
            assert!(matches!(pacer.schedule((2, seq), 1000.0, 1e6, RTT, forgotten), Pace::At(_)), "{seq}");
        }
    }

    #[test]
    fn a_resend_goes_once_a_round_trip_and_not_behind_a_long_queue() {
        let now = Instant::now();
        let pacer = Pacer::new(now);
        let rate = 1e7;
        assert!(matches!(pacer.schedule((1, 7), 10_000.0, rate, RTT, now), Pace::At(_)));
        let soon = now + Duration::from_millis(30);
        assert_eq!(pacer.schedule((1, 7), 10_000.0, rate, RTT, soon), Pace::Drop, "within a round trip");
        assert!(
            matches!(pacer.schedule((2, 7), 10_000.0, rate, RTT, soon), Pace::At(_)),
            "another stream's 7"
        );
        let later = now + Duration::from_millis(60);
        assert!(matches!(pacer.schedule((1, 7), 10_000.0, rate, RTT, later), Pace::Resend(_)), "after one");
        // Fill the queue 250 ms deep with new packets: a resend now is dropped.
        for seq in 100..350 {
            pacer.schedule((1, seq), 10_000.0, rate, RTT, later);
        }
        let after = later + Duration::from_millis(70);
        assert_eq!(pacer.schedule((1, 7), 10_000.0, rate, RTT, after), Pace::Drop, "behind a long queue");
        assert!(
            matches!(pacer.schedule((1, 400), 10_000.0, rate, RTT, after), Pace::At(_)),
            "new media waits"
        );
    }

    #[test]
    fn resends_take_a_fifth_of_the_estimate_at_most() {
        let now = Instant::now();
        let pacer = Pacer::new(now);
        // 1 Mbit/s paced: 400 kbit/s estimated, 80 kbit/s for resends: 4.8 kbit in 60 ms.
        pacer.schedule((1, 1), 10_000.0, 1e6, RTT, now);
        pacer.schedule((1, 2), 1_000.0, 1e6, RTT, now);
        let later = now + Duration::from_millis(60);
        assert_eq!(
            pacer.schedule((1, 1), 10_000.0, 1e6, RTT, later),
            Pace::Drop,
            "10 kbit is over the share"
        );
        assert!(
            matches!(pacer.schedule((1, 2), 1_000.0, 1e6, RTT, later), Pace::Resend(_)),
            "1 kbit is within"
        );
    }
}
