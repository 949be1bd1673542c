//! The speaker's playout buffer: decoded samples wait here a small, fixed time before the
//! sound card (or a GStreamer sink) takes them, and the wait never creeps.
//!
//! * It starts playing once `target` is buffered ("priming"); when it runs dry (the talker
//!   stopped, packets were lost, the talker vanished) it plays silence, never a repeated
//!   fragment, and primes again.
//! * Clock drift between the browser and the sound card moves the fill slowly: when the
//!   fill, averaged over about half a second (so packets arriving 20 ms at a time, and
//!   jitter, do not count), is more than 3 ms above `target`, one sample in
//!   4 × [`ADJUST_EVERY`] is skipped (0.5 %, inaudible), and past the tolerance one in
//!   [`ADJUST_EVERY`]; below,
//!   one is played twice (a 2 % change of speed, barely audible on speech; sound cards'
//!   clocks differ by well under 0.1 %).
//! * A burst (packets that arrive together after a network stall) can push the fill far
//!   above `target`: past `ceiling` the oldest samples are dropped at once, down to target.
//!
//! Pure: no clock, no threads; the speaker drives it from its decoder and its output.

use std::collections::VecDeque;

/// One sample in this many is skipped or repeated while the fill is off target.
pub const ADJUST_EVERY: u32 = 50;

/// Counters, for the status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Samples that came from the decoder.
    pub received: u64,
    /// Samples of talk played (repeats included, silence not).
    pub played: u64,
    /// Samples of silence played while empty or priming.
    pub silence: u64,
    /// Samples dropped: skipped for drift and cut after a burst.
    pub dropped: u64,
    /// Samples played twice for drift.
    pub stretched: u64,
}

#[derive(Debug)]
pub struct PlayoutBuffer {
    samples: VecDeque<f32>,
    rate: u32,
    target: usize,
    tolerance: usize,
    /// Off target by more than this (samples, averaged), the speed is nudged by 0.5 %.
    fine: usize,
    ceiling: usize,
    playing: bool,
    /// The fill, smoothed over the last pulls (samples).
    average: f64,
    phase: u32,
    last: f32,
    counts: Counts,
}

/// How much of each pull's fill goes into the average: with 10 ms pulls, a time constant
/// of about half a second.
const SMOOTHING: f64 = 0.02;

impl PlayoutBuffer {
    /// A buffer of `target_ms` at `rate` samples per second (one channel).
    pub fn new(rate: u32, target_ms: u32) -> PlayoutBuffer {
        let per_ms = rate as usize / 1000;
        let target = per_ms * target_ms as usize;
        PlayoutBuffer {
            samples: VecDeque::with_capacity(target * 4),
            rate,
            target,
            // ±5 ms or a quarter of the target, whichever is more, before drift is corrected.
            tolerance: (per_ms * 5).max(target / 4),
            fine: per_ms * 3,
            // A burst may overshoot by 60 ms or the target again before it is cut.
            ceiling: target + (per_ms * 60).max(target),
            playing: false,
            average: 0.0,
            phase: 0,
            last: 0.0,
            counts: Counts::default(),
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Buffered time, in milliseconds.
    pub fn fill_ms(&self) -> f64 {
        self.samples.len() as f64 * 1000.0 / f64::from(self.rate.max(1))
    }

    /// The fill averaged over the last half second (ms): the delay the buffer adds, as
    /// the drift correction sees it; the fill itself while not playing.
    pub fn delay_ms(&self) -> f64 {
        if !self.playing {
            return self.fill_ms();
        }
        self.average * 1000.0 / f64::from(self.rate.max(1))
    }

    pub fn target_ms(&self) -> f64 {
        self.target as f64 * 1000.0 / f64::from(self.rate.max(1))
    }

    /// Whether talk is being played (not priming or empty).
    pub fn playing(&self) -> bool {
        self.playing
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Decoded samples arrive.
    pub fn push(&mut self, samples: &[f32]) {
        self.counts.received += samples.len() as u64;
        self.samples.extend(samples);
        if self.samples.len() > self.ceiling {
            let cut = self.samples.len() - self.target;
            self.samples.drain(..cut);
            self.counts.dropped += cut as u64;
        }
    }

    /// Forgets what is buffered (the talker left): silence from the next pull on.
    pub fn clear(&mut self) {
        self.samples.clear();
        self.playing = false;
    }

    /// Fills `out` with what plays next.
    pub fn pull(&mut self, out: &mut [f32]) {
        if !self.playing && self.samples.len() >= self.target.max(1) {
            self.playing = true;
            self.average = self.samples.len() as f64;
        }
        if self.playing {
            self.average += (self.samples.len() as f64 - self.average) * SMOOTHING;
        }
        let off = self.average - self.target as f64;
        let every = if off.abs() > self.tolerance as f64 {
            Some(ADJUST_EVERY)
        } else if off.abs() > self.fine as f64 {
            Some(ADJUST_EVERY * 4)
        } else {
            None
        };
        let (high, low) = (every.is_some() && off > 0.0, every.is_some() && off < 0.0);
        let mut written = 0;
        if self.playing {
            while written < out.len() {
                self.phase += 1;
                let adjust = every.is_some_and(|every| self.phase >= every);
                if adjust {
                    self.phase = 0;
                }
                if adjust && high && self.samples.len() >= 2 {
                    self.samples.pop_front();
                    self.counts.dropped += 1;
                } else if adjust && low && written > 0 {
                    out[written] = self.last;
                    written += 1;
                    self.counts.stretched += 1;
                    self.counts.played += 1;
                    continue;
                }
                let Some(sample) = self.samples.pop_front() else {
                    // Dry: silence, and prime again before playing more.
                    self.playing = false;
                    break;
                };
                out[written] = sample;
                self.last = sample;
                written += 1;
                self.counts.played += 1;
            }
        }
        let rest = &mut out[written..];
        rest.fill(0.0);
        self.counts.silence += rest.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 48_000;
    const MS10: usize = 480;

    fn tone(n: usize, value: f32) -> Vec<f32> {
        vec![value; n]
    }

    /// Pushes `per_push` samples per 10 ms for `seconds` while pulling 10 ms, and returns
    /// the fill at the end (ms).
    fn run(buffer: &mut PlayoutBuffer, per_push: usize, seconds: usize) -> f64 {
        let mut out = vec![0.0; MS10];
        for _ in 0..seconds * 100 {
            buffer.push(&tone(per_push, 0.5));
            buffer.pull(&mut out);
        }
        buffer.fill_ms()
    }

    #[test]
    fn primes_to_the_target_then_plays_in_order() {
        let mut buffer = PlayoutBuffer::new(RATE, 50);
        let mut out = vec![1.0; MS10];
        buffer.push(&tone(MS10 * 4, 0.25));
        buffer.pull(&mut out);
        assert!(out.iter().all(|&s| s == 0.0), "40 ms < 50 ms target: silence while priming");
        buffer.push(&(0..MS10).map(|i| i as f32).collect::<Vec<_>>());
        buffer.pull(&mut out);
        assert!(out.iter().all(|&s| s == 0.25), "primed: the first samples come first");
        assert!(buffer.playing());
    }

    #[test]
    fn runs_dry_into_silence_not_a_repeat() {
        let mut buffer = PlayoutBuffer::new(RATE, 20);
        let ramp: Vec<f32> = (1..=MS10 * 2 + 100).map(|i| i as f32).collect();
        buffer.push(&ramp);
        let mut played = Vec::new();
        let mut out = vec![0.0; MS10];
        for _ in 0..5 {
            buffer.pull(&mut out);
            played.extend_from_slice(&out);
        }
        let talk: Vec<f32> = played.iter().copied().take_while(|&s| s != 0.0).collect();
        assert!(played[talk.len()..].iter().all(|&s| s == 0.0), "after the talk, only silence");
        assert_eq!(talk.last(), ramp.last(), "everything was played");
        // In order; a sample may be played twice (drift correction), never a fragment.
        assert!(talk.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1.0));
        assert!(!buffer.playing());
        let counts = buffer.counts();
        assert_eq!(counts.played as usize, talk.len());
        assert_eq!(counts.played + counts.silence, played.len() as u64);
    }

    #[test]
    fn a_fast_or_slow_sender_does_not_creep() {
        // The browser's clock 1 % fast, then 0.8 % slow (sound cards are within 0.1 %):
        // after a simulated hour the delay is where it was after a minute.
        let mut buffer = PlayoutBuffer::new(RATE, 50);
        let minute = run(&mut buffer, MS10 + 5, 60);
        let hour = run(&mut buffer, MS10 + 5, 3600);
        assert!((hour - minute).abs() <= 2.0, "after a minute {minute} ms, after an hour {hour} ms");
        assert!(hour <= 50.0 + 12.5 + 1.0, "{hour}");
        let counts = buffer.counts();
        assert!(counts.dropped > 0 && counts.dropped < counts.received / 50, "{counts:?}");
        let slow = run(&mut buffer, MS10 - 4, 600);
        assert!(slow >= 50.0 - 12.5 - 10.0 - 1.0, "{slow}");
        assert!(buffer.counts().stretched > 0);
        assert_eq!(buffer.counts().silence, counts.silence, "a slow sender never runs it dry");
    }

    #[test]
    fn packets_in_20_ms_steps_with_jitter_are_played_nearly_untouched() {
        // 20 ms packets, each up to 15 ms late (a fixed pseudo-random pattern), pulled
        // 10 ms at a time for a minute: nothing silent, almost nothing skipped or
        // repeated, and the delay where it was asked to be.
        let mut buffer = PlayoutBuffer::new(RATE, 50);
        let mut out = vec![0.0; MS10];
        let mut seed = 7u32;
        let mut due: Vec<u32> = Vec::new();
        for tick in 0..6000u32 {
            if tick % 2 == 0 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                due.push(tick + (seed >> 16) % 2);
            }
            let arrived = due.iter().filter(|&&t| t <= tick).count();
            due.retain(|&t| t > tick);
            for _ in 0..arrived {
                buffer.push(&tone(MS10 * 2, 0.5));
            }
            buffer.pull(&mut out);
        }
        let counts = buffer.counts();
        assert!((counts.dropped + counts.stretched) * 10_000 < counts.played, "{counts:?}");
        assert!((buffer.delay_ms() - 50.0).abs() <= 5.0, "{} ms", buffer.delay_ms());
        assert!(counts.silence as usize <= MS10 * 5, "silence only while priming: {counts:?}");
    }

    #[test]
    fn a_burst_is_cut_back_to_the_target() {
        let mut buffer = PlayoutBuffer::new(RATE, 50);
        run(&mut buffer, MS10, 1);
        buffer.push(&tone(MS10 * 30, 0.5));
        assert!((buffer.fill_ms() - 50.0).abs() < 0.1, "{}", buffer.fill_ms());
        // 40 ms were buffered after the steady second; 40 + 300 - 50 ms were cut.
        assert_eq!(buffer.counts().dropped as usize, MS10 * 4 + MS10 * 30 - MS10 * 5);
    }

    #[test]
    fn clear_is_silence_at_once() {
        let mut buffer = PlayoutBuffer::new(RATE, 20);
        buffer.push(&tone(MS10 * 4, 0.5));
        buffer.clear();
        let mut out = vec![1.0; MS10];
        buffer.pull(&mut out);
        assert!(out.iter().all(|&s| s == 0.0));
    }
}
