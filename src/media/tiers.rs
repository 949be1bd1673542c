//! Tiers: the same picture encoded at more than one size and bitrate, and each viewer on
//! the best one its link takes (still encoded once per tier, never once per viewer).
//!
//! Tier 0 is the configured size, its encoder's bitrate between `min_bitrate` and
//! `bitrate`; tier 1 (when `tiers = 2`) is half the size, starting at a quarter of the
//! bitrate. Each tier's encoder follows the lowest estimate of the viewers on it
//! ([`super::rate`]). A [`Planner`] looks at every viewer's estimate every
//! [`FOLLOW_EVERY`](super::rate::FOLLOW_EVERY) and says which tier each should be on:
//!
//! * a viewer on tier 0 whose link takes less than the split (half of `bitrate`) and less
//!   than tier 0 really sends moves down, when another viewer's link takes more than the
//!   split: one slow viewer does not lower the others' picture. A viewer that is alone (or
//!   among slow ones) stays on tier 0, whose encoder follows it down: one encoder.
//! * a viewer on tier 1 moves up once its link takes what tier 0 sends and a fifth (at most
//!   the split and a tenth), or once nobody needs tier 0 at more than the split any more.
//!
//! Each codec has its tiers and its planner. VP8 ([`Policy::for_vp8`]) splits at four
//! fifths of `bitrate`, and a VP8 viewer below it moves down even alone: vp8enc meets a
//! low bitrate at full size only by dropping frames, so its top tier does not follow a
//! slow viewer down, and it is encoded only while a viewer is on it.
//!
//! A viewer changes tier at the new tier's key frame (asked for once the tier's encoder
//! has followed its link): until it
//! arrives, it keeps getting the old tier's frames, so the picture never stops. Tier 1 is
//! encoded only while a viewer is on it or moving to it (the pipeline opens its valve by
//! the feed's subscriber count).
//!
//! Everything here is plain Rust over [`Feed`]s: no GStreamer, no WebRTC.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::{Codec, EncodedFrame, Feed, Subscription};

/// How long a viewer's link must stay below what its tier needs before it moves down.
pub const DOWN_AFTER: Duration = Duration::from_millis(500);
/// How long a viewer's link must take more before it moves up: shorter than
/// [`DOWN_AFTER`], since an estimate that grows has met no queue for a while already.
pub const UP_AFTER: Duration = Duration::from_millis(250);
/// What the top tier really sends is measured over this long (key frames come in bursts).
const MEASURE_OVER: Duration = Duration::from_secs(2);
/// A viewer moving to a tier asks for its key frame this long after it told the tier's
/// encoder what its link takes: after the encoder's next bitrate change (every
/// [`FOLLOW_EVERY`](super::rate::FOLLOW_EVERY)), so the key frame fits the link.
const ASK_KEY_AFTER: Duration = Duration::from_millis(300);

/// When viewers change tier, in bit/s of video (see the module's notes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// A link below this is slow: it moves down while another viewer's link is faster.
    pub split_bps: u64,
    /// A viewer on the lower tier moves up when its link takes this (the split and a
    /// tenth), or what the top tier really sends and a fifth, whichever is less.
    pub up_bps: u64,
    /// The top tier's encoder can follow a viewer down (false for a camera's own H.264,
    /// passed through as it is): if not, a slow viewer moves down even when alone.
    pub top_follows: bool,
}

impl Policy {
    /// The policy for a top tier of `bitrate_kbps` at most.
    pub fn for_bitrate(bitrate_kbps: u32, top_follows: bool) -> Policy {
        Policy::split_at(u64::from(bitrate_kbps) * 1000 / 2, top_follows)
    }

    /// The policy for VP8 tiers of `bitrate_kbps` at most. vp8enc in real time keeps its
    /// bitrate by dropping frames: on a noisy 1280x720 picture it sent 18.7 frames/s at
    /// 1.2 Mbit/s and 10.3 at 650 kbit/s, where 640x360 kept 30 (x264enc keeps every frame
    /// at any bitrate). So a VP8 viewer whose link takes less than four fifths of `bitrate`
    /// moves to the half-size tier, even alone, and the top tier does not follow it down.
    pub fn for_vp8(bitrate_kbps: u32) -> Policy {
        Policy::split_at(u64::from(bitrate_kbps) * 1000 * 4 / 5, false)
    }

    fn split_at(split_bps: u64, top_follows: bool) -> Policy {
        Policy { split_bps, up_bps: split_bps + split_bps / 10, top_follows }
    }
}

/// One viewer's place among the tiers: where it is, where the planner wants it, and what
/// its link takes.
#[derive(Debug, Default)]
pub struct Place {
    on: AtomicUsize,
    wanted: AtomicUsize,
    /// What its link takes for video, bit/s; 0 before the first report.
    rate: AtomicU64,
    /// Since when the planner has seen a reason to move it (the planner's alone).
    reason_since: Mutex<Option<Instant>>,
}

impl Place {
    /// The tier this viewer's frames come from now.
    pub fn tier(&self) -> usize {
        self.on.load(Ordering::Relaxed)
    }
}

/// A viewer as the planner sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub on: usize,
    /// bit/s of video its link takes; 0: not known yet, `u64::MAX`: all robocast sends.
    pub rate: u64,
}

/// The tier `view` should be on, given the policy, whether some viewer's link is fast
/// (above the split), what the top tier really sends (bit/s), and since when a reason to
/// move has held (`reason_since`, kept by the caller between calls).
pub fn decide(
    policy: &Policy,
    view: View,
    anyone_fast: bool,
    top_sends: u64,
    reason_since: &mut Option<Instant>,
    now: Instant,
) -> usize {
    let View { on, rate } = view;
    let (reason, after, to) = match on {
        _ if rate == 0 => (false, DOWN_AFTER, on),
        0 => {
            let slow = rate < policy.split_bps && rate.saturating_mul(10) < top_sends.saturating_mul(9);
            (slow && (anyone_fast || !policy.top_follows), DOWN_AFTER, 1)
        }
        _ => {
            // Nothing sent on the top tier (nobody watches it): its link must take the
            // split and a tenth.
            let top = if top_sends == 0 { u64::MAX } else { top_sends.saturating_add(top_sends / 5) };
            let takes_top = rate >= policy.up_bps.min(top);
            let alone = policy.top_follows && !anyone_fast;
            (takes_top || alone, UP_AFTER, 0)
        }
    };
    if !reason {
        *reason_since = None;
        return on;
    }
    let since = *reason_since.get_or_insert(now);
    if now.saturating_duration_since(since) >= after { to } else { on }
}

/// The feeds of one track, best first, and the viewers on them.
#[derive(Debug)]
pub struct Tiers {
    feeds: Vec<Arc<Feed>>,
    places: Mutex<Vec<Weak<Place>>>,
}

impl Tiers {
    /// Tiers over `feeds`: the top one, and at most one lower.
    pub fn new(top: Arc<Feed>, lower: Option<Arc<Feed>>) -> Arc<Tiers> {
        let feeds = std::iter::once(top).chain(lower).collect();
        Arc::new(Tiers { feeds, places: Mutex::default() })
    }

    /// One feed, nothing to plan (audio).
    pub fn single(feed: Arc<Feed>) -> Arc<Tiers> {
        Tiers::new(feed, None)
    }

    pub fn codec(&self) -> Codec {
        self.feeds[0].codec()
    }

    /// The feed of `tier`, if there is one.
    pub fn feed(&self, tier: usize) -> Option<&Arc<Feed>> {
        self.feeds.get(tier)
    }

    /// A place for a new viewer, on the top tier. Its frames come from [`Tiers::subscribe`].
    pub fn place(&self) -> Arc<Place> {
        let place = Arc::new(Place::default());
        let mut places = self.places.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        places.retain(|p| p.strong_count() > 0);
        places.push(Arc::downgrade(&place));
        place
    }

    /// The viewer at `place` starts getting frames (from the top tier's next key frame).
    pub fn subscribe(self: &Arc<Self>, place: Arc<Place>) -> TieredSubscription {
        let current = self.feeds[0].subscribe();
        TieredSubscription { tiers: Arc::clone(self), place, current, switching: None }
    }

    /// A key frame for the viewer at `place` (its decoder lost the picture).
    pub fn request_keyframe(&self, place: &Place) {
        self.feeds.get(place.tier()).unwrap_or(&self.feeds[0]).request_keyframe();
    }
}

/// Says, every few hundred milliseconds, which tier each viewer should be on.
#[derive(Debug)]
pub struct Planner {
    tiers: Arc<Tiers>,
    policy: Policy,
    /// The top feed's byte count at each plan, over [`MEASURE_OVER`].
    sent: VecDeque<(Instant, u64)>,
}

impl Planner {
    pub fn new(tiers: Arc<Tiers>, policy: Policy) -> Planner {
        Planner { tiers, policy, sent: VecDeque::new() }
    }

    /// What the top tier really sent over the last [`MEASURE_OVER`], bit/s.
    fn top_sends(&mut self, now: Instant) -> u64 {
        let bytes = self.tiers.feeds[0].stats.bytes.load(Ordering::Relaxed);
        self.sent.push_back((now, bytes));
        // The reference is the newest count at least MEASURE_OVER old (or the oldest).
        while self.sent.get(1).is_some_and(|(at, _)| now.duration_since(*at) >= MEASURE_OVER) {
            self.sent.pop_front();
        }
        let Some(&(first_at, first)) = self.sent.front() else { return 0 };
        let over = now.duration_since(first_at).as_secs_f64();
        if over < 0.1 { 0 } else { ((bytes - first) as f64 * 8.0 / over) as u64 }
    }

    /// Moves the viewers' wishes; each viewer changes tier at its new tier's key frame.
    pub fn plan(&mut self, now: Instant) {
        if self.tiers.feeds.len() < 2 {
            return;
        }
        let top_sends = self.top_sends(now);
        // A top tier nobody watches may not be encoded (VP8's valve closes): what it sent
        // before, fading over the measuring window, is not what it would send.
        let top_sends = if self.tiers.feeds[0].viewers() == 0 { 0 } else { top_sends };
        let places: Vec<Arc<Place>> = {
            let mut places = self.tiers.places.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            places.retain(|p| p.strong_count() > 0);
            places.iter().filter_map(Weak::upgrade).collect()
        };
        let policy = &self.policy;
        let views: Vec<View> =
            places.iter().map(|p| View { on: p.tier(), rate: p.rate.load(Ordering::Relaxed) }).collect();
        let anyone_fast = views.iter().any(|v| v.rate >= policy.split_bps);
        for (place, view) in places.iter().zip(views) {
            let mut since = place.reason_since.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let wanted = decide(policy, view, anyone_fast, top_sends, &mut since, now);
            if place.wanted.swap(wanted, Ordering::Relaxed) != wanted {
                tracing::debug!(
                    from = view.on,
                    to = wanted,
                    rate = view.rate,
                    top_sends,
                    "viewer changes tier"
                );
            }
        }
    }
}

/// A viewer's frames from the tier it is on, changing tier at key frames.
#[derive(Debug)]
pub struct TieredSubscription {
    tiers: Arc<Tiers>,
    place: Arc<Place>,
    current: Subscription,
    /// The tier being moved to, until its first key frame arrives.
    switching: Option<Switch>,
}

/// A move to another tier under way.
#[derive(Debug)]
struct Switch {
    to: usize,
    frames: Subscription,
    /// When the key frame is to be asked for; `None` once it was.
    ask_at: Option<Instant>,
}

impl TieredSubscription {
    pub fn codec(&self) -> Codec {
        self.tiers.codec()
    }

    /// The tier the frames come from now.
    pub fn tier(&self) -> usize {
        self.place.tier()
    }

    /// Whether another viewer watches a better tier than this one's: one this viewer could
    /// move up to as soon as its link takes it.
    pub fn below_a_watched_tier(&self) -> bool {
        self.tiers.feeds[..self.tier().min(self.tiers.feeds.len())].iter().any(|f| f.viewers() > 0)
    }

    /// The next frame this viewer can decode; `None` when the feeds are gone (shutdown).
    pub async fn next(&mut self) -> Option<EncodedFrame> {
        let wanted = self.place.wanted.load(Ordering::Relaxed);
        match &self.switching {
            Some(switch) if switch.to == wanted => {}
            _ if wanted == self.place.tier() => self.switching = None,
            _ => {
                let Some(feed) = self.tiers.feeds.get(wanted) else { return self.current.next().await };
                let frames = feed.subscribe_at_next_keyframe();
                frames.report_rate(self.place.rate.load(Ordering::Relaxed));
                let ask_at = Some(Instant::now() + ASK_KEY_AFTER);
                self.switching = Some(Switch { to: wanted, frames, ask_at });
            }
        }
        let Some(switch) = &mut self.switching else { return self.current.next().await };
        if switch.ask_at.is_some_and(|at| Instant::now() >= at) {
            switch.frames.request_keyframe();
            switch.ask_at = None;
        }
        tokio::select! {
            biased;
            frame = switch.frames.next() => {
                let to = switch.to;
                let next = self.switching.take()?.frames;
                self.current = next;
                self.place.on.store(to, Ordering::Relaxed);
                tracing::info!(tier = to, "the viewer's picture comes from {}", if to == 0 { "the top tier" } else { "the lower tier" });
                frame
            }
            frame = self.current.next() => frame,
        }
    }

    /// What this viewer's link takes now, bit/s of video: for its tier's encoder and for
    /// the planner.
    pub fn report_rate(&self, bps: u64) {
        self.place.rate.store(bps.max(1), Ordering::Relaxed);
        self.current.report_rate(bps);
        if let Some(switch) = &self.switching {
            switch.frames.report_rate(bps);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    const POLICY: Policy = Policy { split_bps: 1_250_000, up_bps: 1_375_000, top_follows: true };

    fn run(policy: &Policy, view: View, anyone_fast: bool, top_sends: u64, for_ms: u64) -> usize {
        let start = Instant::now();
        let mut since = None;
        let mut wanted = view.on;
        for ms in (0..=for_ms).step_by(50) {
            wanted =
                decide(policy, view, anyone_fast, top_sends, &mut since, start + Duration::from_millis(ms));
        }
        wanted
    }

    #[test]
    fn a_slow_viewer_moves_down_only_when_another_is_fast() {
        let slow = View { on: 0, rate: 700_000 };
        assert_eq!(run(&POLICY, slow, true, 2_500_000, 450), 0, "not before DOWN_AFTER");
        assert_eq!(run(&POLICY, slow, true, 2_500_000, 500), 1);
        assert_eq!(run(&POLICY, slow, false, 2_500_000, 5000), 0, "alone: the top encoder follows it");
        let fixed = Policy { top_follows: false, ..POLICY };
        assert_eq!(run(&fixed, slow, false, 2_500_000, 500), 1, "a passed-through top cannot follow it");
        // A picture that needs little (a still scene): the slow link takes it all.
        assert_eq!(run(&POLICY, slow, true, 400_000, 5000), 0);
        assert_eq!(run(&POLICY, View { on: 0, rate: 0 }, true, 2_500_000, 5000), 0, "no estimate yet");
        assert_eq!(run(&POLICY, View { on: 0, rate: u64::MAX }, true, 2_500_000, 5000), 0);
    }

    #[test]
    fn a_viewer_moves_up_when_its_link_takes_the_top_or_nobody_needs_the_top() {
        let low = View { on: 1, rate: 1_000_000 };
        assert_eq!(run(&POLICY, low, true, 2_500_000, 5000), 1);
        assert_eq!(
            run(&POLICY, View { rate: 1_600_000, ..low }, true, 2_500_000, 200),
            1,
            "not before UP_AFTER"
        );
        assert_eq!(run(&POLICY, View { rate: 1_600_000, ..low }, true, 2_500_000, 250), 0);
        assert_eq!(run(&POLICY, low, true, 800_000, 1000), 0, "the top sends less than the link takes");
        assert_eq!(run(&POLICY, low, false, 2_500_000, 1000), 0, "the fast viewers left");
        let fixed = Policy { top_follows: false, ..POLICY };
        assert_eq!(run(&fixed, low, false, 2_500_000, 5000), 1);
        // Nobody on the top tier (VP8's is not encoded then): up only at the split and a tenth.
        assert_eq!(run(&fixed, low, false, 0, 5000), 1, "nothing sent is not a top the link takes");
        assert_eq!(run(&fixed, View { rate: 1_375_000, ..low }, false, 0, 250), 0);
    }

    #[test]
    fn a_vp8_viewer_below_four_fifths_moves_down_even_alone() {
        let vp8 = Policy::for_vp8(2500);
        assert_eq!((vp8.split_bps, vp8.up_bps, vp8.top_follows), (2_000_000, 2_200_000, false));
        // Its top encoder stays at the split or more, so it sends more than the link takes.
        let on_1_5_mbit = View { on: 0, rate: 1_200_000 };
        assert_eq!(run(&vp8, on_1_5_mbit, false, 2_000_000, 500), 1);
        assert_eq!(run(&vp8, View { on: 0, rate: u64::MAX }, false, 2_500_000, 5000), 0);
        assert_eq!(run(&vp8, View { on: 1, rate: 2_100_000 }, false, 0, 5000), 1);
        assert_eq!(run(&vp8, View { on: 1, rate: 2_200_000 }, false, 0, 250), 0);
    }

    #[test]
    fn a_reason_that_stops_holding_starts_the_wait_again() {
        let start = Instant::now();
        let mut since = None;
        let at = |ms| start + Duration::from_millis(ms);
        let slow = View { on: 0, rate: 700_000 };
        assert_eq!(decide(&POLICY, slow, true, 2_500_000, &mut since, at(0)), 0);
        assert_eq!(
            decide(&POLICY, View { rate: 2_000_000, ..slow }, true, 2_500_000, &mut since, at(250)),
            0
        );
        assert_eq!(decide(&POLICY, slow, true, 2_500_000, &mut since, at(500)), 0, "the wait began again");
        assert_eq!(decide(&POLICY, slow, true, 2_500_000, &mut since, at(1000)), 1);
    }

    fn frame(keyframe: bool, byte: u8) -> EncodedFrame {
        let at = Instant::now();
        EncodedFrame { data: Bytes::from(vec![byte]), duration: Duration::from_millis(33), keyframe, at }
    }

    #[test]
    fn a_top_tier_nobody_watches_draws_nobody_up_with_what_it_sent_before() {
        let (top, low) = (Feed::new(Codec::Vp8), Feed::new(Codec::Vp8));
        let tiers = Tiers::new(Arc::clone(&top), Some(low));
        let slow = tiers.place();
        slow.on.store(1, Ordering::Relaxed);
        slow.wanted.store(1, Ordering::Relaxed);
        slow.rate.store(1_000_000, Ordering::Relaxed);
        let mut planner = Planner::new(Arc::clone(&tiers), Policy::for_vp8(2500));
        let start = Instant::now();
        // 0.8 Mbit/s over the last two seconds, from before its last viewer left.
        planner.sent.push_back((start - MEASURE_OVER, 0));
        top.stats.bytes.store(800_000 / 8 * 2, Ordering::Relaxed);
        for step in 0..=10 {
            planner.plan(start + step * UP_AFTER / 5);
        }
        assert_eq!(slow.wanted.load(Ordering::Relaxed), 1, "up only at the split and a tenth");
        // Watched, the same top would be one this link takes.
        let _watcher = tiers.subscribe(tiers.place());
        for step in 11..=20 {
            planner.plan(start + step * UP_AFTER / 5);
        }
        assert_eq!(slow.wanted.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_viewer_is_below_a_watched_tier_only_while_another_watches_a_better_one() {
        let (top, low) = (Feed::new(Codec::Vp8), Feed::new(Codec::Vp8));
        let tiers = Tiers::new(top, Some(Arc::clone(&low)));
        let (slow, other) = (tiers.place(), tiers.place());
        assert!(!tiers.subscribe(Arc::clone(&slow)).below_a_watched_tier(), "on the top tier itself");
        // As it is once moved down.
        slow.on.store(1, Ordering::Relaxed);
        let current = low.subscribe();
        let slow_frames =
            TieredSubscription { tiers: Arc::clone(&tiers), place: slow, current, switching: None };
        let other_frames = tiers.subscribe(other);
        assert!(slow_frames.below_a_watched_tier());
        drop(other_frames);
        assert!(!slow_frames.below_a_watched_tier(), "alone on the lower tier");
    }

    #[tokio::test]
    async fn a_viewer_changes_tier_at_the_new_tiers_key_frame_and_the_low_tier_empties() {
        let (top, low) = (Feed::new(Codec::H264), Feed::new(Codec::H264));
        let tiers = Tiers::new(Arc::clone(&top), Some(Arc::clone(&low)));
        let (slow, fast) = (tiers.place(), tiers.place());
        let mut slow_frames = tiers.subscribe(Arc::clone(&slow));
        let _fast_frames = tiers.subscribe(Arc::clone(&fast));
        top.publish(frame(true, 1));
        assert_eq!(slow_frames.next().await.map(|f| f.data[0]), Some(1));
        slow_frames.report_rate(600_000);
        fast.rate.store(u64::MAX, Ordering::Relaxed);
        let mut planner = Planner::new(Arc::clone(&tiers), POLICY);
        let start = Instant::now();
        planner.sent.push_back((start - MEASURE_OVER, 0));
        top.stats.bytes.store(2_500_000 / 8 * 2, Ordering::Relaxed);
        planner.plan(start);
        planner.plan(start + DOWN_AFTER);
        assert_eq!(slow.wanted.load(Ordering::Relaxed), 1);
        assert_eq!(*low.subscribers().borrow(), 0, "nothing moves before the viewer's next frame");

        // The move starts: the top tier's frames keep coming until the low tier's key frame.
        top.publish(frame(false, 2));
        assert_eq!(slow_frames.next().await.map(|f| f.data[0]), Some(2));
        assert_eq!(*low.subscribers().borrow(), 1, "the low tier opens");
        low.publish(frame(false, 10)); // not a start
        top.publish(frame(false, 3));
        assert_eq!(slow_frames.next().await.map(|f| f.data[0]), Some(3));
        let asked = tokio::time::timeout(Duration::from_millis(50), low.keyframe_wanted()).await;
        assert!(asked.is_err(), "the key frame is asked for only once the encoder followed the link");
        tokio::time::sleep(ASK_KEY_AFTER).await;
        top.publish(frame(false, 5));
        assert_eq!(slow_frames.next().await.map(|f| f.data[0]), Some(5));
        tokio::time::timeout(Duration::from_millis(50), low.keyframe_wanted())
            .await
            .expect("a key frame asked");
        low.publish(frame(true, 11));
        assert_eq!(slow_frames.next().await.map(|f| f.data[0]), Some(11));
        assert_eq!((slow.tier(), fast.tier(), low.viewers()), (1, 0, 1));
        assert_eq!(*top.subscribers().borrow(), 1, "only the fast viewer is on the top tier");

        // The fast viewer leaves: the slow one goes back up, and the low tier empties.
        drop(_fast_frames);
        drop(fast);
        planner.plan(start + DOWN_AFTER + UP_AFTER);
        planner.plan(start + DOWN_AFTER + 2 * UP_AFTER);
        assert_eq!(slow.wanted.load(Ordering::Relaxed), 0);
        low.publish(frame(false, 12));
        assert_eq!(slow_frames.next().await.map(|f| f.data[0]), Some(12));
        top.publish(frame(true, 4));
        assert_eq!(slow_frames.next().await.map(|f| f.data[0]), Some(4));
        assert_eq!((*low.subscribers().borrow(), slow.tier()), (0, 0));
    }
}
