//! Congestion control: how fast may robocast send to one viewer?
//!
//! A pure module, after Google Congestion Control (draft-ietf-rmcat-gcc, as libwebrtc
//! implements it): no sockets, no clocks, no webrtc-rs or GStreamer types. Whoever owns a
//! connection feeds it what was sent ([`Estimator::on_sent`]) and what the viewer said
//! about it (transport-wide feedback, REMB, receiver reports) with the time, and reads
//! [`Estimator::target`]. Tests drive it with recorded or simulated feedback.
//!
//! * [`delay`]: the one-way delay trend of packet groups says whether the path's queue
//!   grows (over-use), drains (under-use) or holds.
//! * [`rate`]: the delay-based rate, cut to 85 % of what arrived on over-use, grown
//!   multiplicatively far from the last known capacity and additively near it.
//! * [`loss`]: the loss-based rate, for paths that drop instead of queueing.
//! * [`history`]: sent packets by transport-wide sequence number, for the feedback.
//! * [`journal`]: its inputs as JSON lines, to replay a real session in a test.
//!
//! The target is the smaller of the two rates, under the viewer's REMB if it sends one,
//! within the configured bounds.

pub mod delay;
mod history;
pub mod journal;
mod loss;
mod rate;

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

use delay::DelayDetector;
pub use delay::Usage;
use history::SendHistory;
use loss::LossControl;
use rate::RateControl;

/// The window over which the acknowledged rate is measured.
const ACKED_WINDOW: Duration = Duration::from_millis(500);
/// A cut for loss goes no lower than this share of what the receiver got. Measured before
/// (a recorded Chromium session behind 800 kbit/s): cuts by half the loss, once a round,
/// compounded while the loss figures lagged, down to 341 kbit/s, and climbing back to the
/// link took 6 s.
const LOSS_FLOOR: f64 = 0.85;
/// The round trip assumed until one is measured.
const DEFAULT_RTT: Duration = Duration::from_millis(100);

/// One packet as the feedback tells of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketResult {
    /// When it left, on robocast's clock.
    pub send_time: Duration,
    /// Its size on the wire (RTP header and payload), bytes.
    pub size: usize,
    /// When it arrived, on the viewer's clock (any origin), or `None`: lost.
    pub arrival: Option<Duration>,
}

/// The bounds and the start of the estimate, bit/s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub min: u64,
    pub start: u64,
    pub max: u64,
}

/// What the estimator thinks now, for status pages.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Snapshot {
    /// The rate to send at, bit/s.
    pub target_bps: u64,
    /// What the viewer acknowledged over the last half second, bit/s.
    pub acked_bps: Option<u64>,
    /// The delay-based and loss-based rates and the viewer's REMB, bit/s.
    pub delay_based_bps: u64,
    pub loss_based_bps: u64,
    pub remb_bps: Option<u64>,
    /// The last judged loss fraction (0 to 1).
    pub loss: f64,
    pub rtt_ms: u64,
    pub usage: Usage,
}

/// The rate the viewer acknowledged: bytes that arrived within the window, over it.
#[derive(Debug, Default)]
struct AckedRate {
    arrivals: VecDeque<(Duration, usize)>,
    bytes: usize,
}

impl AckedRate {
    fn add(&mut self, arrival: Duration, size: usize) {
        self.arrivals.push_back((arrival, size));
        self.bytes += size;
        while self.arrivals.front().is_some_and(|&(t, _)| arrival.saturating_sub(t) > ACKED_WINDOW) {
            if let Some((_, size)) = self.arrivals.pop_front() {
                self.bytes -= size;
            }
        }
    }

    /// Bit/s once the arrivals span most of a window.
    fn bps(&self) -> Option<f64> {
        let (first, last) = (self.arrivals.front()?.0, self.arrivals.back()?.0);
        let span = last.saturating_sub(first);
        (span >= ACKED_WINDOW * 3 / 4).then(|| self.bytes as f64 * 8.0 / span.as_secs_f64())
    }
}

/// One viewer's estimate.
#[derive(Debug)]
pub struct Estimator {
    bounds: (f64, f64),
    history: SendHistory,
    delay: DelayDetector,
    rate: RateControl,
    loss: LossControl,
    acked: AckedRate,
    remb: Option<f64>,
    rtt: Option<Duration>,
    target: f64,
}

impl Estimator {
    pub fn new(bounds: Bounds) -> Estimator {
        let (min, max) = (bounds.min as f64, (bounds.max.max(bounds.min)) as f64);
        let start = (bounds.start as f64).clamp(min, max);
        Estimator {
            bounds: (min, max),
            history: SendHistory::default(),
            delay: DelayDetector::default(),
            rate: RateControl::new(start, (min, max)),
            loss: LossControl::new(start, (min, max)),
            acked: AckedRate::default(),
            remb: None,
            rtt: None,
            target: start,
        }
    }

    /// The rate to send at, bit/s.
    pub fn target(&self) -> u64 {
        self.target.round() as u64
    }

    /// Whether the estimate is at the upper bound (nothing seen limits the link).
    pub fn at_most(&self) -> bool {
        self.target >= self.bounds.1
    }

    /// A packet left with this transport-wide sequence number (`now` on robocast's clock).
    pub fn on_sent(&mut self, seq: u16, now: Duration, size: usize) {
        self.history.record(seq, now, size);
    }

    /// Transport-wide feedback: sequence numbers with their arrival times, if received.
    pub fn on_transport_feedback(
        &mut self,
        now: Duration,
        feedback: impl IntoIterator<Item = (u16, Option<Duration>)>,
    ) -> u64 {
        let results = self.history.results(feedback);
        self.on_feedback(now, &results)
    }

    /// Feedback already matched with what was sent (what tests and recordings give).
    pub fn on_feedback(&mut self, now: Duration, results: &[PacketResult]) -> u64 {
        if results.is_empty() {
            return self.target();
        }
        let mut received: Vec<_> =
            results.iter().filter_map(|r| Some((r.arrival?, r.send_time, r.size))).collect();
        let lost = results.len() - received.len();
        // The delay detector wants arrival order; the network may have reordered.
        received.sort_by_key(|&(arrival, send, _)| (arrival, send));
        let mut usage = None;
        for &(arrival, send, size) in &received {
            self.acked.add(arrival, size);
            usage = self.delay.on_packet(send, arrival).or(usage);
        }
        let acked = self.acked.bps();
        let usage = usage.unwrap_or(self.delay.usage());
        if usage != Usage::Over || self.rate.may_cut(now, self.rtt(), acked) {
            self.rate.update(now, usage, acked, self.rtt());
        }
        let cap = self.cap();
        let counts =
            (u32::try_from(results.len()).unwrap_or(u32::MAX), u32::try_from(lost).unwrap_or(u32::MAX));
        let floor = acked.map(|a| LOSS_FLOOR * a);
        let eager = self.rate.eager().then(|| self.rate.growth(now));
        self.loss.on_packets(now, counts, self.rtt(), (cap, floor), eager);
        self.settle()
    }

    /// The viewer's REMB (receiver-estimated maximum bitrate): a ceiling.
    pub fn on_remb(&mut self, now: Duration, bps: u64) -> u64 {
        self.remb = Some(bps as f64);
        let cap = self.cap();
        self.loss.cap(now, cap);
        self.settle()
    }

    /// The loss fraction of a receiver report, for viewers without transport-wide feedback.
    pub fn on_receiver_report(&mut self, now: Duration, fraction_lost: f64) -> u64 {
        let cap = self.cap();
        self.loss.on_report(now, fraction_lost, self.rtt(), cap);
        self.settle()
    }

    /// Says whether more would give the viewer a better picture (it is on a lower tier):
    /// then the estimate grows faster while the link takes it, to find a widened link
    /// in a few seconds without probing.
    pub fn set_eager(&mut self, eager: bool) {
        self.rate.set_eager(eager);
    }

    /// A measured round-trip time.
    pub fn on_rtt(&mut self, rtt: Duration) {
        self.rtt = Some(rtt);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            target_bps: self.target(),
            acked_bps: self.acked.bps().map(|b| b.round() as u64),
            delay_based_bps: self.rate.bitrate().round() as u64,
            loss_based_bps: self.loss.bitrate().round() as u64,
            remb_bps: self.remb.map(|b| b.round() as u64),
            loss: self.loss.loss(),
            rtt_ms: u64::try_from(self.rtt().as_millis()).unwrap_or(u64::MAX),
            usage: self.delay.usage(),
        }
    }

    /// The round trip, as last measured (100 ms until then).
    pub fn rtt(&self) -> Duration {
        self.rtt.unwrap_or(DEFAULT_RTT)
    }

    /// What the loss-based rate may not exceed: the delay-based rate and the REMB.
    fn cap(&self) -> f64 {
        self.rate.bitrate().min(self.remb.unwrap_or(f64::INFINITY))
    }

    fn settle(&mut self) -> u64 {
        self.target = self.loss.bitrate().min(self.cap()).clamp(self.bounds.0, self.bounds.1);
        self.target()
    }
}

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
