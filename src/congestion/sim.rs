//! A simulated path for the estimator's tests: a sender at the estimate (30 frames a
//! second, paced), one bottleneck like `tc tbf` (a rate and a byte limit on its queue:
//! beyond it packets are dropped), a propagation delay, random loss and reordering, and a
//! receiver that sends transport-wide feedback every 50 ms. Deterministic: the same
//! settings give the same run.

use std::collections::VecDeque;
use std::time::Duration;

use super::{Bounds, Estimator};

const TICK: Duration = Duration::from_millis(1);
const FEEDBACK_EVERY: Duration = Duration::from_millis(50);
const MTU_PAYLOAD: usize = 1200;
/// The pacer sends this much faster than the target, as libwebrtc's does.
const PACING_FACTOR: f64 = 2.5;

/// The path. Capacity and random loss may change at given times.
#[derive(Clone, Debug)]
pub struct Path {
    /// (from, bit/s), in time order.
    pub capacity: Vec<(Duration, f64)>,
    /// The bottleneck's queue limit, bytes (tbf's `limit`/`latency`).
    pub queue_bytes: usize,
    pub one_way: Duration,
    /// (from, probability) of a packet lost at random, in time order.
    pub random_loss: Vec<(Duration, f64)>,
    /// Probability that a packet arrives after the next one.
    pub reorder: f64,
}

impl Path {
    pub fn shaped(bps: f64) -> Path {
        Path {
            capacity: vec![(Duration::ZERO, bps)],
            // tbf's `latency 100ms` at this rate, but at least 32 kB (`burst 32kb`).
            queue_bytes: ((bps / 8.0 * 0.1) as usize).max(32_000),
            one_way: Duration::from_millis(20),
            random_loss: Vec::new(),
            reorder: 0.0,
        }
    }

    fn at<T: Copy>(schedule: &[(Duration, T)], now: Duration, default: T) -> T {
        schedule.iter().rev().find(|(from, _)| *from <= now).map_or(default, |&(_, v)| v)
    }
}

/// One 100 ms slice of a run.
#[derive(Clone, Copy, Debug)]
pub struct Slice {
    pub at: Duration,
    pub target: f64,
    /// Bits that arrived in the slice, per second.
    pub delivered: f64,
    /// The worst queueing delay of a packet that arrived in the slice.
    pub queue_delay: Duration,
    pub lost: u32,
}

/// Feedback on its way back: when it reaches the sender, and what it says.
type Report = (Duration, Vec<(u16, Option<Duration>)>);

struct Packet {
    seq: u16,
    send: Duration,
    arrival: Option<Duration>,
}

/// Runs `estimator` over `path` for `length`; returns 100 ms slices.
pub fn run(path: &Path, bounds: Bounds, length: Duration) -> Vec<Slice> {
    run_as(path, bounds, length, false)
}

/// [`run`] for an eager viewer ([`Estimator::set_eager`]).
pub fn run_as(path: &Path, bounds: Bounds, length: Duration, eager: bool) -> Vec<Slice> {
    let mut estimator = Estimator::new(bounds);
    estimator.set_eager(eager);
    estimator.on_rtt(path.one_way * 2);
    let mut random = 0x2545_f491_4f6c_dd1d_u64;
    let mut uniform = move || {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        (random >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut seq = 0u16;
    let mut pacer: VecDeque<usize> = VecDeque::new();
    let mut next_send = Duration::ZERO;
    let mut link_free = Duration::ZERO;
    let mut unreported: VecDeque<Packet> = VecDeque::new();
    let mut in_transit: VecDeque<Report> = VecDeque::new();
    let mut slices = Vec::new();
    let mut slice =
        Slice { at: Duration::ZERO, target: 0.0, delivered: 0.0, queue_delay: Duration::ZERO, lost: 0 };
    let mut now = Duration::ZERO;
    let frame = Duration::from_secs(1) / 30;
    let mut next_frame = Duration::ZERO;
    let mut next_feedback = FEEDBACK_EVERY;
    while now < length {
        if now >= next_frame {
            let mut bytes = (estimator.target() as f64 / 8.0 / 30.0) as usize;
            while bytes > 0 {
                let size = bytes.min(MTU_PAYLOAD);
                pacer.push_back(size + 40);
                bytes -= size;
            }
            next_frame += frame;
        }
        while now >= next_send && !pacer.is_empty() {
            let size = pacer.pop_front().unwrap_or_default();
            estimator.on_sent(seq, now, size);
            let capacity = Path::at(&path.capacity, now, f64::INFINITY);
            let backlog = link_free.saturating_sub(now).as_secs_f64() * capacity / 8.0;
            let dropped = backlog + size as f64 > path.queue_bytes as f64
                || uniform() < Path::at(&path.random_loss, now, 0.0);
            let arrival = (!dropped).then(|| {
                link_free = link_free.max(now) + Duration::from_secs_f64(size as f64 * 8.0 / capacity);
                link_free + path.one_way
            });
            if let Some(arrival) = arrival {
                let queued = arrival.saturating_sub(now + path.one_way);
                slice.queue_delay = slice.queue_delay.max(queued);
                slice.delivered += size as f64 * 8.0;
            } else {
                slice.lost += 1;
            }
            unreported.push_back(Packet { seq, send: now, arrival });
            seq = seq.wrapping_add(1);
            next_send = next_send.max(now)
                + Duration::from_secs_f64(size as f64 * 8.0 / (estimator.target() as f64 * PACING_FACTOR));
        }
        if now >= next_feedback {
            in_transit
                .push_back((now + path.one_way, feedback(&mut unreported, now, path.reorder, &mut uniform)));
            next_feedback += FEEDBACK_EVERY;
        }
        while in_transit.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, report)) = in_transit.pop_front() {
                estimator.on_transport_feedback(now, report);
            }
        }
        now += TICK;
        if now.as_millis().is_multiple_of(100) {
            slice.target = estimator.target() as f64;
            slice.delivered *= 10.0;
            slice.at = now;
            slices.push(slice);
            slice = Slice { at: now, target: 0.0, delivered: 0.0, queue_delay: Duration::ZERO, lost: 0 };
        }
    }
    slices
}

/// What the receiver reports at `now`: every packet up to the last that arrived by then,
/// with its arrival time (on a clock 1000 s off ours, in TWCC's 250 µs steps), or none.
fn feedback(
    unreported: &mut VecDeque<Packet>,
    now: Duration,
    reorder: f64,
    uniform: &mut impl FnMut() -> f64,
) -> Vec<(u16, Option<Duration>)> {
    let Some(last) = unreported.iter().rposition(|p| p.arrival.is_some_and(|a| a <= now)) else {
        return Vec::new();
    };
    let mut report: Vec<_> = unreported.drain(..=last).map(|p| (p.seq, p.send, p.arrival)).collect();
    // Reordering: a packet arrives just after the next one.
    for i in 1..report.len() {
        if let (Some(a), Some(b)) = (report[i - 1].2, report[i].2)
            && uniform() < reorder
        {
            report[i - 1].2 = Some(b + Duration::from_micros(500));
            report[i].2 = Some(a);
        }
    }
    let clock = |t: Duration| {
        let quarter_ms = (t + Duration::from_secs(1000)).as_micros() / 250;
        Duration::from_micros(u64::try_from(quarter_ms * 250).unwrap_or(u64::MAX))
    };
    report.into_iter().map(|(seq, _, arrival)| (seq, arrival.filter(|a| *a <= now).map(clock))).collect()
}
