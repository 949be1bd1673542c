//! The loss-based half of the estimator (draft-ietf-rmcat-gcc, section 6): under 2 % loss
//! the rate may grow (8 % a second in libwebrtc; here as fast as the delay-based half
//! grows, 15 % a second quickening while no queue grows: robocast does not probe with
//! padding, so this growth is how it finds a link that recovered), over 10 % it is cut by
//! half the loss, in between it holds. It catches what the delay-based half cannot see: a shallow queue (a token bucket
//! with a small burst) that drops instead of delaying, and loss reported by clients that
//! send only receiver reports.

use std::collections::VecDeque;
use std::time::Duration;

const LOW_LOSS: f64 = 0.02;
/// Growth per second under low loss, once a second (unless eager: see `judge`).
const GROWTH: f64 = 1.15;
const HIGH_LOSS: f64 = 0.10;
/// Loss in the first second does not cut: the first packets of a session are often
/// lost before the viewer is ready for them. Not longer: a session starts at the
/// configured bitrate, and on a link far thinner than that with a short queue (which drops
/// instead of delaying, so the delay-based half sees nothing) every second at it is a
/// second without a picture. (Measured: 2 s here kept a 400 kbit/s viewer 60 % lossy for
/// its first 3 s.)
const START_PHASE: Duration = Duration::from_millis(1000);
/// Loss is judged over at least this many packets.
const MIN_PACKETS: u32 = 20;
/// The growth under low loss starts from the lowest rate of the last second, so a rate
/// the path has not carried yet does not compound.
const HISTORY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct LossControl {
    bitrate: f64,
    bounds: (f64, f64),
    /// Packets sent and lost since the loss was last judged.
    counted: (u32, u32),
    /// The last judged loss fraction.
    loss: f64,
    last_increase: Option<Duration>,
    last_cut: Option<Duration>,
    history: VecDeque<(Duration, f64)>,
    /// When loss was first judged.
    started: Option<Duration>,
}

impl LossControl {
    pub fn new(start: f64, bounds: (f64, f64)) -> Self {
        LossControl {
            bitrate: start.clamp(bounds.0, bounds.1),
            bounds,
            counted: (0, 0),
            loss: 0.0,
            last_increase: None,
            last_cut: None,
            history: VecDeque::new(),
            started: None,
        }
    }

    pub fn bitrate(&self) -> f64 {
        self.bitrate
    }

    /// The loss fraction last judged.
    pub fn loss(&self) -> f64 {
        self.loss
    }

    /// Counts packets from transport-wide feedback; judges once enough are counted.
    /// `cap` is what the other limits allow (the delay-based rate, the receiver's REMB);
    /// `floor` is what a cut for loss never goes below (85 % of what the receiver got: the
    /// link carries that much, lossy or not).
    pub fn on_packets(
        &mut self,
        now: Duration,
        (sent, lost): (u32, u32),
        rtt: Duration,
        (cap, floor): (f64, Option<f64>),
        eager: Option<f64>,
    ) -> f64 {
        self.counted = (self.counted.0 + sent, self.counted.1 + lost);
        if self.counted.0 >= MIN_PACKETS {
            let (sent, lost) = std::mem::take(&mut self.counted);
            self.judge(now, f64::from(lost) / f64::from(sent), rtt, floor, eager);
        }
        self.cap(now, cap)
    }

    /// A loss fraction from a receiver report (clients without transport-wide feedback).
    pub fn on_report(&mut self, now: Duration, loss: f64, rtt: Duration, cap: f64) -> f64 {
        self.judge(now, loss.clamp(0.0, 1.0), rtt, None, None);
        self.cap(now, cap)
    }

    /// No new loss figure, only a new cap.
    pub fn cap(&mut self, now: Duration, cap: f64) -> f64 {
        self.bitrate = self.bitrate.min(cap).clamp(self.bounds.0, self.bounds.1);
        self.forget(now);
        while self.history.back().is_some_and(|&(_, b)| b >= self.bitrate) {
            self.history.pop_back();
        }
        self.history.push_back((now, self.bitrate));
        self.bitrate
    }

    fn forget(&mut self, now: Duration) {
        while self.history.front().is_some_and(|&(t, _)| now.saturating_sub(t) > HISTORY) {
            self.history.pop_front();
        }
    }

    /// `eager`: the growth per second of an eager viewer (the delay-based half's, which
    /// quickens while it meets no queue), applied at every judgement rather than once a
    /// second, so this half does not hold the eager growth back to a staircase.
    fn judge(&mut self, now: Duration, loss: f64, rtt: Duration, floor: Option<f64>, eager: Option<f64>) {
        self.forget(now);
        self.loss = loss;
        let started = *self.started.get_or_insert(now);
        if loss <= LOW_LOSS {
            // Over the lowest rate of the last second.
            let due = self.last_increase.is_none_or(|t| now.saturating_sub(t) >= Duration::from_secs(1));
            if eager.is_some() || due {
                let lowest = self.history.front().map_or(self.bitrate, |&(_, b)| b);
                self.bitrate = self.bitrate.max(lowest * eager.unwrap_or(GROWTH) + 1000.0);
                self.last_increase = Some(now);
            }
        } else if loss > HIGH_LOSS && now.saturating_sub(started) >= START_PHASE {
            let wait = Duration::from_millis(300) + rtt;
            if self.last_cut.is_none_or(|t| now.saturating_sub(t) >= wait) {
                let floor = floor.unwrap_or(0.0).min(self.bitrate);
                self.bitrate = (self.bitrate * (1.0 - 0.5 * loss)).max(floor);
                self.last_cut = Some(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(50);
    const CAP: f64 = 10_000_000.0;

    #[test]
    fn heavy_loss_cuts_by_half_the_loss_at_most_once_a_round() {
        let mut loss = LossControl::new(1_000_000.0, (100_000.0, CAP));
        assert_eq!(
            loss.on_packets(Duration::from_secs(1), (100, 50), RTT, (CAP, None), None),
            1_000_000.0,
            "start phase"
        );
        let at = Duration::from_secs(5);
        assert_eq!(loss.on_packets(at, (100, 20), RTT, (CAP, None), None).round(), 900_000.0);
        assert_eq!(
            loss.on_packets(at + RTT, (100, 20), RTT, (CAP, None), None).round(),
            900_000.0,
            "not again so soon"
        );
        assert_eq!(
            loss.on_packets(at + Duration::from_millis(400), (100, 20), RTT, (CAP, None), None).round(),
            810_000.0
        );
        assert!((loss.loss() - 0.2).abs() < 1e-9);
    }

    #[test]
    fn moderate_loss_holds_and_low_loss_grows_under_the_cap() {
        let mut loss = LossControl::new(1_000_000.0, (100_000.0, CAP));
        let mut now = Duration::ZERO;
        for _ in 0..10 {
            now += Duration::from_secs(1);
            assert_eq!(loss.on_packets(now, (100, 5), RTT, (CAP, None), None).round(), 1_000_000.0);
        }
        for _ in 0..3 {
            now += Duration::from_secs(1);
            loss.on_packets(now, (100, 1), RTT, (CAP, None), None);
        }
        assert_eq!(loss.bitrate().round(), 1_524_347.0, "15 % and 1 kbit/s a second, three times");
        assert_eq!(
            loss.on_packets(now + Duration::from_secs(1), (100, 0), RTT, (1_100_000.0, None), None),
            1_100_000.0
        );
    }

    #[test]
    fn too_few_packets_are_not_judged() {
        let mut loss = LossControl::new(1_000_000.0, (100_000.0, CAP));
        assert_eq!(loss.on_packets(Duration::from_secs(1), (10, 10), RTT, (CAP, None), None), 1_000_000.0);
        assert_eq!(loss.loss(), 0.0);
    }
}
