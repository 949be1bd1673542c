//! The rate controller of the delay-based half: additive increase near the last known
//! capacity, multiplicative far from it, and a cut to 85 % of what the receiver really
//! got when the queue grows (draft-ietf-rmcat-gcc, section 5.5; the link-capacity
//! estimate that chooses between the two increases follows libwebrtc's).

use std::time::Duration;

use super::delay::Usage;

/// The cut on over-use, of the acknowledged rate.
const BETA: f64 = 0.85;
/// Growth per second far from the known capacity, at first (the draft's η is 1.08; ours is
/// faster because robocast does not probe with padding, and this is how it finds a link
/// that widened).
const MULTIPLICATIVE: f64 = 1.15;
/// Eager (a viewer that would get a better picture with more: one on a lower tier): after
/// [`QUICKEN_AFTER`] of growth that met no queue, the growth per second rises by this much
/// each second, up to [`MULTIPLICATIVE_MOST`]. A link that keeps taking more has widened
/// (a robot drove back to its access point); at a steady 15 % a second, the 0.8 to 1.6
/// Mbit/s a viewer needs to get back to the top tier took 5 s on its own. Not for every
/// viewer: a lone viewer on a steady thin link grown this fast froze for seconds (a whole
/// second and more at 1.5, 0.8 and 0.5 Mbit/s, measured in Chromium), where 15 % keeps it
/// smooth.
const QUICKEN: f64 = 0.5;
const QUICKEN_AFTER: Duration = Duration::from_millis(500);
const MULTIPLICATIVE_MOST: f64 = 2.0;
/// Eager: receiving more than the link's last known capacity this long, with no queue,
/// means the link widened: the capacity is forgotten and growth is multiplicative again.
const ABOVE_CAPACITY: Duration = Duration::from_millis(500);
/// The rate never runs ahead of the acknowledged one by more than this factor.
const AHEAD_OF_ACKED: f64 = 1.5;
/// The size of a packet, for the additive increase (about one packet per response time).
const PACKET_BITS: f64 = 1200.0 * 8.0;
/// The link's capacity as last seen at an over-use is forgotten after this long without
/// another: a robot's link widens (it drives closer to the access point), and growing a
/// packet at a time towards a capacity that is no longer there took ~5 s of the ~11 s a
/// viewer needed to get back to the top tier.
const CAPACITY_MEMORY: Duration = Duration::from_secs(4);
/// Eager, the capacity is forgotten sooner: 4 s still left 3 s of packet-at-a-time growth
/// after a link widened.
const CAPACITY_MEMORY_EAGER: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Hold,
    Increase,
    Decrease,
}

/// An average of the rates at which over-use was seen, with its spread, in kbit/s.
#[derive(Debug, Default)]
struct LinkCapacity {
    estimate: Option<f64>,
    deviation: f64,
}

impl LinkCapacity {
    fn on_overuse(&mut self, bps: f64) {
        let sample = bps / 1000.0;
        let alpha = 0.05;
        let estimate = self.estimate.map_or(sample, |e| (1.0 - alpha) * e + alpha * sample);
        let error = estimate - sample;
        let deviation = (1.0 - alpha) * self.deviation.max(0.4) + alpha * error * error / estimate.max(1.0);
        self.estimate = Some(estimate);
        self.deviation = deviation.clamp(0.4, 2.5);
    }

    fn spread(&self, estimate: f64) -> f64 {
        3.0 * (estimate * self.deviation.max(0.4)).sqrt()
    }

    fn upper(&self) -> Option<f64> {
        self.estimate.map(|e| (e + self.spread(e)) * 1000.0)
    }

    fn lower(&self) -> Option<f64> {
        self.estimate.map(|e| (e - self.spread(e)) * 1000.0)
    }
}

#[derive(Debug)]
pub struct RateControl {
    bitrate: f64,
    state: State,
    last_change: Option<Duration>,
    capacity: LinkCapacity,
    /// When the queue last grew (an over-use).
    last_overuse: Option<Duration>,
    /// Since when the rate has grown multiplicatively without meeting a queue.
    growing_since: Option<Duration>,
    /// Since when the receiver has got more than the known capacity without a queue.
    above_since: Option<Duration>,
    /// Whether more would give the viewer a better picture (see [`QUICKEN`]).
    eager: bool,
    bounds: (f64, f64),
}

impl RateControl {
    pub fn new(start: f64, bounds: (f64, f64)) -> Self {
        RateControl {
            bitrate: start.clamp(bounds.0, bounds.1),
            state: State::Hold,
            last_change: None,
            capacity: LinkCapacity::default(),
            last_overuse: None,
            growing_since: None,
            above_since: None,
            eager: false,
            bounds,
        }
    }

    pub fn bitrate(&self) -> f64 {
        self.bitrate
    }

    /// Says whether more would give the viewer a better picture (see [`QUICKEN`]).
    pub fn set_eager(&mut self, eager: bool) {
        self.eager = eager;
    }

    pub fn eager(&self) -> bool {
        self.eager
    }

    /// The growth per second now: [`MULTIPLICATIVE`]; eager, quickening while the growth
    /// meets no queue (see [`QUICKEN`]). The loss-based half grows by it too.
    pub fn growth(&self, now: Duration) -> f64 {
        if !self.eager {
            return MULTIPLICATIVE;
        }
        let unopposed = self.growing_since.map_or(Duration::ZERO, |t| now.saturating_sub(t));
        let quickened = unopposed.saturating_sub(QUICKEN_AFTER).as_secs_f64() * QUICKEN;
        (MULTIPLICATIVE + quickened).min(MULTIPLICATIVE_MOST)
    }

    /// Whether a new over-use may cut again: one round trip after the last change, or at
    /// once when the receiver gets less than half the rate.
    pub fn may_cut(&self, now: Duration, rtt: Duration, acked: Option<f64>) -> bool {
        let interval = rtt.clamp(Duration::from_millis(10), Duration::from_millis(200));
        let waited = self.last_change.is_none_or(|t| now.saturating_sub(t) >= interval);
        waited || acked.is_some_and(|a| a < 0.5 * self.bitrate)
    }

    /// Moves the rate by the detector's verdict and what the receiver acknowledged (bit/s).
    pub fn update(&mut self, now: Duration, usage: Usage, acked: Option<f64>, rtt: Duration) -> f64 {
        self.state = match (usage, self.state) {
            (Usage::Normal, State::Hold) => State::Increase,
            (Usage::Normal, state) => state,
            (Usage::Over, _) => State::Decrease,
            (Usage::Under, _) => State::Hold,
        };
        let throughput = acked.unwrap_or(self.bitrate);
        match self.state {
            State::Hold => {}
            State::Increase => {
                let memory = if self.eager { CAPACITY_MEMORY_EAGER } else { CAPACITY_MEMORY };
                let forgotten = self.last_overuse.is_some_and(|t| now.saturating_sub(t) >= memory);
                let above = self.eager && self.capacity.estimate.is_some_and(|e| throughput > e * 1000.0);
                self.above_since = if above { Some(self.above_since.unwrap_or(now)) } else { None };
                let widened = self.above_since.is_some_and(|t| now.saturating_sub(t) >= ABOVE_CAPACITY);
                if forgotten || widened || self.capacity.upper().is_some_and(|u| throughput > u) {
                    self.capacity = LinkCapacity::default();
                    self.above_since = None;
                }
                if self.capacity.estimate.is_none() {
                    self.growing_since.get_or_insert(now);
                }
                let limit = AHEAD_OF_ACKED * throughput + 10_000.0;
                if self.bitrate < limit {
                    let increase = if self.capacity.estimate.is_some() {
                        self.additive(now, rtt)
                    } else {
                        self.multiplicative(now)
                    };
                    self.bitrate = (self.bitrate + increase).min(limit);
                }
                self.last_change = Some(now);
            }
            State::Decrease => {
                self.growing_since = None;
                self.above_since = None;
                if self.capacity.lower().is_some_and(|l| throughput < l) {
                    self.capacity = LinkCapacity::default();
                }
                let mut cut = BETA * throughput;
                if cut > self.bitrate
                    && let Some(estimate) = self.capacity.estimate
                {
                    cut = BETA * estimate * 1000.0;
                }
                if cut < self.bitrate {
                    self.bitrate = cut;
                }
                self.capacity.on_overuse(throughput);
                self.last_overuse = Some(now);
                self.state = State::Hold;
                self.last_change = Some(now);
            }
        }
        self.bitrate = self.bitrate.clamp(self.bounds.0, self.bounds.1);
        self.bitrate
    }

    fn elapsed(&self, now: Duration) -> f64 {
        self.last_change.map_or(0.0, |t| now.saturating_sub(t).as_secs_f64())
    }

    fn multiplicative(&self, now: Duration) -> f64 {
        let alpha = self.growth(now).powf(self.elapsed(now).min(1.0));
        (self.bitrate * (alpha - 1.0)).max(1000.0)
    }

    /// About one packet per response time (a round trip and 100 ms).
    fn additive(&self, now: Duration, rtt: Duration) -> f64 {
        let bits_per_frame = self.bitrate / 30.0;
        let packets_per_frame = (bits_per_frame / PACKET_BITS).ceil().max(1.0);
        let packet_bits = bits_per_frame / packets_per_frame;
        let response = (rtt + Duration::from_millis(100)).as_secs_f64();
        (packet_bits / response).max(4000.0) * self.elapsed(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(50);

    #[test]
    fn over_use_cuts_to_85_percent_of_what_arrived_then_holds() {
        let mut rate = RateControl::new(2_500_000.0, (100_000.0, 2_500_000.0));
        let at = Duration::from_secs(1);
        assert_eq!(rate.update(at, Usage::Over, Some(1_500_000.0), RTT).round(), 1_275_000.0);
        assert_eq!(rate.update(at + RTT, Usage::Under, Some(1_500_000.0), RTT).round(), 1_275_000.0);
        assert!(!rate.may_cut(at + Duration::from_millis(20), RTT, Some(1_200_000.0)));
        assert!(rate.may_cut(at + Duration::from_millis(20), RTT, Some(500_000.0)), "far below: at once");
    }

    #[test]
    fn increase_is_multiplicative_far_from_capacity_and_additive_near_it() {
        let mut rate = RateControl::new(500_000.0, (100_000.0, 10_000_000.0));
        let mut now = Duration::ZERO;
        for _ in 0..20 {
            now += Duration::from_millis(50);
            rate.update(now, Usage::Normal, Some(rate.bitrate()), RTT);
        }
        let grown = rate.bitrate() / 500_000.0;
        assert!((1.10..1.20).contains(&grown), "about 15 % in a second: {grown}");
        rate.update(now, Usage::Over, Some(1_000_000.0), RTT);
        let cut = rate.bitrate();
        for _ in 0..20 {
            now += Duration::from_millis(50);
            rate.update(now, Usage::Normal, Some(rate.bitrate()), RTT);
        }
        let added = rate.bitrate() - cut;
        assert!((20_000.0..120_000.0).contains(&added), "a few packets a second near capacity: {added}");
    }

    #[test]
    fn never_far_ahead_of_what_the_receiver_gets() {
        let mut rate = RateControl::new(300_000.0, (100_000.0, 10_000_000.0));
        let mut now = Duration::ZERO;
        for _ in 0..200 {
            now += Duration::from_millis(50);
            rate.update(now, Usage::Normal, Some(200_000.0), RTT);
        }
        assert!(rate.bitrate() <= 1.5 * 200_000.0 + 10_000.0, "{}", rate.bitrate());
    }
}
