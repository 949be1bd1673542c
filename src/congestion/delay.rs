//! The delay-based half of the estimator: is the queue on the path growing?
//!
//! Packets are grouped by send time (a group is what left within 5 ms, about one burst of
//! the pacer); for each pair of consecutive groups the one-way delay variation is the
//! arrival gap minus the send gap. A growing queue makes it positive. The variations are
//! accumulated, smoothed, and the slope of the last 20 against arrival time (a linear
//! regression, the "trendline" of libwebrtc's implementation of
//! draft-ietf-rmcat-gcc) is compared with an adaptive threshold: above it for a while is
//! over-use, below its negative is under-use.

use std::collections::VecDeque;
use std::time::Duration;

/// What the path's queue is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Usage {
    /// Steady: the sender may probe for more.
    Normal,
    /// The queue grows: send less.
    Over,
    /// The queue drains: hold the rate while it empties.
    Under,
}

/// Packets sent within this span of the group's first belong to one group.
const GROUP_SPAN: Duration = Duration::from_millis(5);
/// A packet arriving this soon after the group's last, and sooner than it was sent after
/// it, belongs to that group too (a burst the network delivered together).
const BURST_SPAN: Duration = Duration::from_millis(5);
/// An arrival gap this much larger than the send gap is a clock jump, not a queue.
const CLOCK_JUMP_MS: f64 = 3000.0;
/// Groups in the regression window.
const WINDOW: usize = 20;
const SMOOTHING: f64 = 0.9;
const THRESHOLD_GAIN: f64 = 4.0;
/// Time over the threshold, in ms, before over-use is declared.
const OVERUSE_TIME_MS: f64 = 10.0;
const INITIAL_THRESHOLD: f64 = 12.5;
const THRESHOLD_RANGE: (f64, f64) = (6.0, 600.0);
/// The threshold follows the trend up slowly and down fast (`k_u`, `k_d` of the draft).
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
/// A trend this far beyond the threshold (a sudden spike) does not move the threshold.
const MAX_ADAPT_OFFSET: f64 = 15.0;

#[derive(Clone, Copy, Debug)]
struct Group {
    first_send: Duration,
    last_send: Duration,
    last_arrival: Duration,
}

/// Feeds packets, sorted by arrival, into groups and the trendline detector.
#[derive(Debug)]
pub struct DelayDetector {
    current: Option<Group>,
    previous: Option<Group>,
    reordered: u32,
    trend: Trendline,
}

impl Default for DelayDetector {
    fn default() -> Self {
        DelayDetector { current: None, previous: None, reordered: 0, trend: Trendline::new() }
    }
}

impl DelayDetector {
    /// One received packet (send time on our clock, arrival on the receiver's). Returns the
    /// detector's verdict when a group completed.
    pub fn on_packet(&mut self, send: Duration, arrival: Duration) -> Option<Usage> {
        let Some(current) = self.current.as_mut() else {
            self.current = Some(Group { first_send: send, last_send: send, last_arrival: arrival });
            return None;
        };
        if send < current.first_send {
            return None; // sent before the group: reordered beyond it, ignored
        }
        let in_group = send.saturating_sub(current.first_send) <= GROUP_SPAN
            || (arrival.saturating_sub(current.last_arrival) < BURST_SPAN
                && arrival.checked_sub(current.last_arrival).unwrap_or_default()
                    < send.saturating_sub(current.last_send));
        if in_group {
            current.last_send = current.last_send.max(send);
            current.last_arrival = current.last_arrival.max(arrival);
            return None;
        }
        let complete = *current;
        self.current = Some(Group { first_send: send, last_send: send, last_arrival: arrival });
        let previous = self.previous.replace(complete)?;
        let send_delta = ms(complete.last_send) - ms(previous.last_send);
        let arrival_delta = ms(complete.last_arrival) - ms(previous.last_arrival);
        if arrival_delta - send_delta >= CLOCK_JUMP_MS {
            *self = DelayDetector::default();
            return None;
        }
        if arrival_delta < 0.0 {
            // The group arrived before the one sent ahead of it: the network reordered
            // them. A few in a row means the arrival clock is not to be trusted: start over.
            self.reordered += 1;
            if self.reordered >= 3 {
                *self = DelayDetector::default();
            }
            return None;
        }
        self.reordered = 0;
        Some(self.trend.update(arrival_delta, send_delta, ms(complete.last_arrival)))
    }

    /// The current verdict (Normal before there is one).
    pub fn usage(&self) -> Usage {
        self.trend.hypothesis
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The slope of the smoothed accumulated delay, and the adaptive-threshold detector on it.
#[derive(Debug)]
struct Trendline {
    deltas: u32,
    first_arrival: Option<f64>,
    accumulated: f64,
    smoothed: f64,
    window: VecDeque<(f64, f64)>,
    previous_trend: f64,
    threshold: f64,
    last_threshold_update: Option<f64>,
    /// Time spent over the threshold, in ms (`None`: not over it).
    over_for: Option<f64>,
    over_count: u32,
    hypothesis: Usage,
}

impl Trendline {
    fn new() -> Self {
        Trendline {
            deltas: 0,
            first_arrival: None,
            accumulated: 0.0,
            smoothed: 0.0,
            window: VecDeque::with_capacity(WINDOW + 1),
            previous_trend: 0.0,
            threshold: INITIAL_THRESHOLD,
            last_threshold_update: None,
            over_for: None,
            over_count: 0,
            hypothesis: Usage::Normal,
        }
    }

    fn update(&mut self, arrival_delta: f64, send_delta: f64, arrival: f64) -> Usage {
        self.deltas = (self.deltas + 1).min(1000);
        let first = *self.first_arrival.get_or_insert(arrival);
        self.accumulated += arrival_delta - send_delta;
        self.smoothed = SMOOTHING * self.smoothed + (1.0 - SMOOTHING) * self.accumulated;
        self.window.push_back((arrival - first, self.smoothed));
        if self.window.len() > WINDOW {
            self.window.pop_front();
        }
        let trend = if self.window.len() == WINDOW {
            slope(&self.window).unwrap_or(self.previous_trend)
        } else {
            self.previous_trend
        };
        self.detect(trend, send_delta, arrival);
        self.hypothesis
    }

    fn detect(&mut self, trend: f64, send_delta: f64, now: f64) {
        if self.deltas < 2 {
            return;
        }
        let modified = f64::from(self.deltas.min(60)) * trend * THRESHOLD_GAIN;
        if modified > self.threshold {
            let over_for = self.over_for.map_or(send_delta / 2.0, |t| t + send_delta);
            self.over_count += 1;
            if over_for > OVERUSE_TIME_MS && self.over_count > 1 && trend >= self.previous_trend {
                self.over_for = Some(0.0);
                self.over_count = 0;
                self.hypothesis = Usage::Over;
            } else {
                self.over_for = Some(over_for);
            }
        } else if modified < -self.threshold {
            (self.over_for, self.over_count, self.hypothesis) = (None, 0, Usage::Under);
        } else {
            (self.over_for, self.over_count, self.hypothesis) = (None, 0, Usage::Normal);
        }
        self.previous_trend = trend;
        self.adapt_threshold(modified, now);
    }

    fn adapt_threshold(&mut self, modified: f64, now: f64) {
        let last = *self.last_threshold_update.get_or_insert(now);
        self.last_threshold_update = Some(now);
        if modified.abs() > self.threshold + MAX_ADAPT_OFFSET {
            return;
        }
        let k = if modified.abs() < self.threshold { K_DOWN } else { K_UP };
        let elapsed = (now - last).clamp(0.0, 100.0);
        self.threshold += k * (modified.abs() - self.threshold) * elapsed;
        self.threshold = self.threshold.clamp(THRESHOLD_RANGE.0, THRESHOLD_RANGE.1);
    }
}

/// Least-squares slope of y over x.
fn slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let (mean_x, mean_y) = points.iter().fold((0.0, 0.0), |(x, y), p| (x + p.0 / n, y + p.1 / n));
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mean_x) * (y - mean_y), den + (x - mean_x) * (x - mean_x))
    });
    (den != 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Groups of one packet every 10 ms; each arrives `extra(i)` ms later than the last.
    fn run(groups: u32, extra: impl Fn(u32) -> f64) -> Vec<Usage> {
        let mut detector = DelayDetector::default();
        let mut arrival = 50.0;
        (0..groups)
            .filter_map(|i| {
                arrival += 10.0 + extra(i);
                let at = |m: f64| Duration::from_secs_f64(m / 1000.0);
                detector.on_packet(at(f64::from(i) * 10.0), at(arrival))
            })
            .collect()
    }

    #[test]
    fn a_steady_path_is_normal_and_a_growing_queue_is_over_use() {
        assert!(run(200, |_| 0.0).iter().all(|&u| u == Usage::Normal));
        // Jitter of ±2 ms around a steady delay is not a queue.
        let jitter = run(400, |i| if i % 2 == 0 { 2.0 } else { -2.0 });
        assert!(jitter.iter().all(|&u| u != Usage::Over), "{jitter:?}");
        // Each packet 1 ms later than the last: the queue grows 100 ms a second.
        let growing = run(200, |i| if i > 50 { 1.0 } else { 0.0 });
        let first = growing.iter().position(|&u| u == Usage::Over).expect("over-use is seen");
        assert!(first < 80, "seen after {first} groups");
    }

    #[test]
    fn a_draining_queue_is_under_use() {
        let draining = run(200, |i| if (50..80).contains(&i) { -3.0 } else { 0.0 });
        assert!(draining.contains(&Usage::Under), "{draining:?}");
        assert!(!draining.contains(&Usage::Over), "{draining:?}");
    }

    #[test]
    fn slope_of_a_line() {
        let points: VecDeque<_> = (0..20).map(|i| (f64::from(i), 3.0 * f64::from(i) + 1.0)).collect();
        assert!((slope(&points).expect("slope") - 3.0).abs() < 1e-9);
        assert_eq!(slope(&VecDeque::from(vec![(1.0, 1.0), (1.0, 2.0)])), None);
    }
}
