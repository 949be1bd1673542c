//! Encode once, fan out to N viewers.
//!
//! A [`Feed`] is a `tokio::sync::broadcast` channel of [`EncodedFrame`]s plus the few
//! things viewers need from the encoder. `broadcast::Sender::send` never blocks and never
//! waits for a receiver, so the GStreamer streaming thread that produces frames cannot be
//! stalled by a viewer. A viewer that falls more than [`FEED_CAPACITY`] frames behind is
//! told how many it missed; its [`Subscription`] then skips to the next key frame, asks the
//! encoder for one, and counts the drop (reported in the periodic summary and in status).
//!
//! A viewer that joins needs a key frame to start from. Key frames on request are
//! throttled (one per [`KEYFRAME_MIN_INTERVAL`](super::keyframe::KEYFRAME_MIN_INTERVAL)),
//! so during churn a joiner could wait most of a second for one. Instead the feed keeps
//! the latest key frame and the frames after it for [`REPLAY_WINDOW`]: a joiner in that
//! window starts from those at once, and only a joiner after it asks for a new key frame,
//! which the throttle then allows at once. The encoder's key-frame rate never rises.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast, watch};

use super::rate::RateWishes;
use super::{Codec, EncodedFrame, H264Profile};

/// Frames a viewer may fall behind before it skips ahead (~2 s of video at 30 fps).
pub const FEED_CAPACITY: usize = 64;

/// A live video frame this old when its viewer gets to it is not sent: the viewer skips to
/// the next key frame instead (and asks for one). A viewer whose link is slower than the
/// encoder (the pacer holds its frames to the link's pace until the encoder follows the
/// link down) then shows the present a little choppily rather than the past smoothly.
pub const MAX_FRAME_AGE: Duration = Duration::from_millis(500);

/// How long after a key frame a joiner starts from it (and the frames since) instead of
/// asking for a new one. Longer than the key-frame throttle, so every joiner gets a picture
/// at once one way or the other.
pub const REPLAY_WINDOW: Duration = Duration::from_millis(1000);

/// Counters of one feed; atomics because the streaming thread writes them and the status
/// page reads them, and neither may wait for the other.
#[derive(Debug, Default)]
pub struct FeedStats {
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    pub keyframes: AtomicU64,
    /// Frames viewers skipped because they fell behind (and the frames they then skipped
    /// until the next key frame).
    pub dropped: AtomicU64,
    /// Frames new viewers passed over while waiting for their first key frame: not a loss.
    pub joiner_skipped: AtomicU64,
    /// Viewers that started from the kept key frame instead of asking for a new one.
    pub joins_replayed: AtomicU64,
    /// Of `dropped`, frames skipped because they were older than [`MAX_FRAME_AGE`] when
    /// their viewer got to them (a link slower than the encoder).
    pub stale: AtomicU64,
    /// Sum and count of the capture → encoded times, in µs (see [`FeedStats::record_latency`]).
    latency_us: AtomicU64,
    latency_samples: AtomicU64,
}

impl FeedStats {
    /// One frame's time from capture (its timestamp) to the end of the pipeline.
    pub fn record_latency(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.fetch_add(us, Ordering::Relaxed);
        self.latency_samples.fetch_add(1, Ordering::Relaxed);
    }

    /// Totals of [`FeedStats::record_latency`] so far: (sum in µs, samples).
    pub fn latency_totals(&self) -> (u64, u64) {
        (self.latency_us.load(Ordering::Relaxed), self.latency_samples.load(Ordering::Relaxed))
    }
}

/// The latest key frame and the frames since, while recent (see [`REPLAY_WINDOW`]).
#[derive(Debug, Default)]
struct Replay {
    frames: Vec<EncodedFrame>,
    key_at: Option<Instant>,
}

/// One encoded track, shared by every viewer.
#[derive(Debug)]
pub struct Feed {
    codec: Codec,
    frames: broadcast::Sender<EncodedFrame>,
    keyframe_wanted: Notify,
    subscribers: watch::Sender<usize>,
    /// A mutex because `publish` (streaming thread) and `subscribe` (a session) must see
    /// the same cut: a joiner gets the kept frames and then exactly the frames after them.
    /// Held only to push or copy a few `Bytes` handles.
    replay: Mutex<Replay>,
    /// The H.264 profile of the last key frame's SPS (`idc << 16 | constraints << 8 |
    /// level`), 0 before the first.
    profile: AtomicU32,
    /// What each viewer's link takes (see [`super::rate`]).
    rate_wishes: RateWishes,
    pub stats: FeedStats,
}

impl Feed {
    pub fn new(codec: Codec) -> Arc<Feed> {
        Arc::new(Feed {
            codec,
            frames: broadcast::channel(FEED_CAPACITY).0,
            keyframe_wanted: Notify::new(),
            subscribers: watch::Sender::new(0),
            replay: Mutex::new(Replay::default()),
            profile: AtomicU32::new(0),
            rate_wishes: RateWishes::default(),
            stats: FeedStats::default(),
        })
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The H.264 profile the stream really has (from its SPS), once a key frame was seen.
    pub fn h264_profile(&self) -> Option<H264Profile> {
        let packed = self.profile.load(Ordering::Relaxed);
        let [_, idc, constraints, level] = packed.to_be_bytes();
        (packed != 0).then_some(H264Profile { idc, constraints, level })
    }

    /// Called on the streaming thread: never blocks on a viewer. Having no viewers is not
    /// an error.
    pub fn publish(&self, frame: EncodedFrame) {
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(frame.data.len() as u64, Ordering::Relaxed);
        if frame.keyframe {
            self.stats.keyframes.fetch_add(1, Ordering::Relaxed);
        }
        if frame.keyframe
            && self.codec == Codec::H264
            && let Some(p) = H264Profile::from_sps(&frame.data)
        {
            let packed = u32::from(p.idc) << 16 | u32::from(p.constraints) << 8 | u32::from(p.level);
            self.profile.store(packed, Ordering::Relaxed);
        }
        if self.codec == Codec::Opus {
            let _no_viewers = self.frames.send(frame);
            return;
        }
        let mut replay = self.replay.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if frame.keyframe {
            replay.frames.clear();
            replay.key_at = Some(Instant::now());
        }
        if replay.key_at.is_some_and(|at| at.elapsed() <= REPLAY_WINDOW) {
            replay.frames.push(frame.clone());
        } else if replay.key_at.take().is_some() {
            replay.frames = Vec::new(); // too old to start from: free it
        }
        let _no_viewers = self.frames.send(frame);
    }

    /// Asks the encoder for a key frame; the pipeline throttles and coalesces requests.
    pub fn request_keyframe(&self) {
        self.keyframe_wanted.notify_one();
    }

    /// Resolves when a viewer wants a key frame.
    pub async fn keyframe_wanted(&self) {
        self.keyframe_wanted.notified().await;
    }

    /// The lowest rate a viewer's link takes, bit/s, once one reported.
    pub fn lowest_rate_wish(&self) -> Option<u64> {
        self.rate_wishes.lowest()
    }

    /// How many viewers are subscribed now.
    pub fn viewers(&self) -> usize {
        *self.subscribers.borrow()
    }

    /// How many viewers are subscribed now, and every change of it.
    pub fn subscribers(&self) -> watch::Receiver<usize> {
        self.subscribers.subscribe()
    }

    /// A new viewer starts from the kept key frame if it is recent, else at the next key
    /// frame, which it asks for at once (every Opus packet is one).
    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        self.subscribe_with(true)
    }

    /// A viewer that already has a picture (from another tier) starts at the next key
    /// frame, which it asks for itself ([`Subscription::request_keyframe`]) when the
    /// encoder has followed its link: the kept frames are the past, and would arrive as a
    /// burst on a link that is already thin.
    pub fn subscribe_at_next_keyframe(self: &Arc<Self>) -> Subscription {
        self.subscribe_with(false)
    }

    fn subscribe_with(self: &Arc<Self>, replay_allowed: bool) -> Subscription {
        self.subscribers.send_modify(|n| *n += 1);
        let (frames, replay) = {
            let kept = self.replay.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let recent = replay_allowed && kept.key_at.is_some_and(|at| at.elapsed() <= REPLAY_WINDOW);
            let replay: VecDeque<EncodedFrame> =
                if recent { kept.frames.iter().cloned().collect() } else { VecDeque::new() };
            (self.frames.subscribe(), replay)
        };
        let waiting_for_key = self.codec != Codec::Opus && replay.is_empty();
        if waiting_for_key && replay_allowed {
            self.request_keyframe();
        } else if !replay.is_empty() {
            self.stats.joins_replayed.fetch_add(1, Ordering::Relaxed);
        }
        let rate = (self.codec != Codec::Opus).then(|| self.rate_wishes.slot());
        Subscription { feed: Arc::clone(self), frames, replay, waiting_for_key, joined: true, rate }
    }
}

/// One viewer's place in a feed.
#[derive(Debug)]
pub struct Subscription {
    feed: Arc<Feed>,
    frames: broadcast::Receiver<EncodedFrame>,
    /// Kept frames this viewer starts from, before the live ones.
    replay: VecDeque<EncodedFrame>,
    waiting_for_key: bool,
    /// Still before this viewer's first frame: a wait for a key frame is not a drop.
    joined: bool,
    /// What this viewer's link takes, bit/s (video feeds only).
    rate: Option<Arc<AtomicU64>>,
}

impl Subscription {
    pub fn codec(&self) -> Codec {
        self.feed.codec
    }

    /// The next frame this viewer can decode; `None` when the feed is gone (shutdown).
    pub async fn next(&mut self) -> Option<EncodedFrame> {
        if let Some(frame) = self.replay.pop_front() {
            self.joined = false;
            return Some(frame);
        }
        loop {
            match self.frames.recv().await {
                Ok(frame) if self.waiting_for_key && !frame.keyframe => {
                    let counter =
                        if self.joined { &self.feed.stats.joiner_skipped } else { &self.feed.stats.dropped };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                Ok(frame) if self.feed.codec != Codec::Opus && frame.at.elapsed() > MAX_FRAME_AGE => {
                    self.feed.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    self.feed.stats.stale.fetch_add(1, Ordering::Relaxed);
                    self.joined = false;
                    if !self.waiting_for_key {
                        self.waiting_for_key = true;
                        self.feed.request_keyframe();
                    }
                }
                Ok(frame) => {
                    self.waiting_for_key = false;
                    self.joined = false;
                    return Some(frame);
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.feed.stats.dropped.fetch_add(missed, Ordering::Relaxed);
                    self.joined = false;
                    self.waiting_for_key = true;
                    self.feed.request_keyframe();
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// What this viewer's link takes now, bit/s, for the encoder's bitrate.
    pub fn report_rate(&self, bps: u64) {
        if let Some(rate) = &self.rate {
            rate.store(bps.max(1), Ordering::Relaxed);
        }
    }

    /// The viewer's decoder lost its picture (PLI/FIR): ask the encoder for a key frame.
    pub fn request_keyframe(&self) {
        self.feed.request_keyframe();
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.feed.subscribers.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;

    fn frame(keyframe: bool, byte: u8) -> EncodedFrame {
        let at = std::time::Instant::now();
        EncodedFrame { data: Bytes::from(vec![byte]), duration: Duration::from_millis(33), keyframe, at }
    }

    #[tokio::test]
    async fn a_stale_frame_is_skipped_to_the_next_key_frame() {
        let feed = Feed::new(Codec::H264);
        let mut sub = feed.subscribe();
        feed.keyframe_wanted().await; // the joiner's own request
        feed.publish(frame(true, 1));
        assert_eq!(sub.next().await.map(|f| f.data[0]), Some(1));
        let old = std::time::Instant::now() - MAX_FRAME_AGE - Duration::from_millis(10);
        feed.publish(EncodedFrame { at: old, ..frame(false, 2) });
        feed.publish(frame(false, 3));
        feed.publish(frame(true, 4));
        assert_eq!(sub.next().await.map(|f| f.data[0]), Some(4), "2 was stale, 3 depended on it");
        assert_eq!(feed.stats.stale.load(Ordering::Relaxed), 1);
        assert_eq!(feed.stats.dropped.load(Ordering::Relaxed), 2);
        let requested = tokio::time::timeout(Duration::from_millis(50), feed.keyframe_wanted()).await;
        assert!(requested.is_ok(), "a key frame was asked for");
    }

    #[tokio::test]
    async fn new_viewer_starts_at_a_keyframe_and_lagging_viewer_skips_ahead() {
        let feed = Feed::new(Codec::H264);
        let mut sub = feed.subscribe();
        assert_eq!(*feed.subscribers().borrow(), 1);
        feed.publish(frame(false, 1));
        feed.publish(frame(true, 2));
        assert_eq!(sub.next().await.map(|f| f.data[0]), Some(2));
        // Fall behind by more than the capacity: the viewer skips to the next key frame.
        for i in 0..FEED_CAPACITY + 5 {
            feed.publish(frame(false, i as u8));
        }
        feed.publish(frame(true, 99));
        assert_eq!(sub.next().await.map(|f| f.data[0]), Some(99));
        assert!(feed.stats.dropped.load(Ordering::Relaxed) >= FEED_CAPACITY as u64);
        // The first wait (frame 1, before any key frame) was a joiner's, not a drop.
        assert_eq!(feed.stats.joiner_skipped.load(Ordering::Relaxed), 1);
        drop(sub);
        assert_eq!(*feed.subscribers().borrow(), 0);
    }

    #[tokio::test]
    async fn a_joiner_starts_from_the_recent_key_frame_without_asking_for_one() {
        let feed = Feed::new(Codec::H264);
        feed.publish(frame(true, 1));
        feed.publish(frame(false, 2));
        let mut joiner = feed.subscribe();
        feed.publish(frame(false, 3));
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(joiner.next().await.map(|f| f.data[0]));
        }
        assert_eq!(got, [Some(1), Some(2), Some(3)], "kept frames, then the live ones, none twice");
        assert_eq!(feed.stats.joins_replayed.load(Ordering::Relaxed), 1);
        assert_eq!(feed.stats.joiner_skipped.load(Ordering::Relaxed), 0);
        // No key frame was requested for it.
        let requested = tokio::time::timeout(Duration::from_millis(50), feed.keyframe_wanted()).await;
        assert!(requested.is_err(), "the joiner asked the encoder for a key frame");
    }

    #[tokio::test]
    async fn a_joiner_after_the_window_asks_for_a_key_frame() {
        let feed = Feed::new(Codec::H264);
        feed.publish(frame(true, 1));
        tokio::time::sleep(REPLAY_WINDOW + Duration::from_millis(50)).await;
        feed.publish(frame(false, 2)); // too late to keep: the kept frames are freed
        let mut joiner = feed.subscribe();
        tokio::time::timeout(Duration::from_millis(50), feed.keyframe_wanted()).await.expect("asked");
        feed.publish(frame(false, 3));
        feed.publish(frame(true, 4));
        assert_eq!(joiner.next().await.map(|f| f.data[0]), Some(4));
        assert_eq!(feed.stats.joiner_skipped.load(Ordering::Relaxed), 1);
        assert_eq!(feed.stats.dropped.load(Ordering::Relaxed), 0);
    }
}
