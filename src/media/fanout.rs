//! Encode once, fan out to N viewers.
//!
//! A [`Feed`] is a `tokio::sync::broadcast` channel of [`EncodedFrame`]s plus the few
//! things viewers need from the encoder. `broadcast::Sender::send` never blocks and never
//! waits for a receiver, so the GStreamer streaming thread that produces frames cannot be
//! stalled by a viewer. A viewer that falls more than [`FEED_CAPACITY`] frames behind is
//! told how many it missed; its [`Subscription`] then skips to the next key frame, asks the
//! encoder for one, and counts the drop (reported in the periodic summary and in status).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Notify, broadcast, watch};

use super::{Codec, EncodedFrame};

/// Frames a viewer may fall behind before it skips ahead (~2 s of video at 30 fps).
pub const FEED_CAPACITY: usize = 64;

/// Counters of one feed; atomics because the streaming thread writes them and the status
/// page reads them, and neither may wait for the other.
#[derive(Debug, Default)]
pub struct FeedStats {
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    pub keyframes: AtomicU64,
    /// Frames viewers skipped because they lagged or waited for a key frame.
    pub dropped: AtomicU64,
}

/// One encoded track, shared by every viewer.
#[derive(Debug)]
pub struct Feed {
    codec: Codec,
    frames: broadcast::Sender<EncodedFrame>,
    keyframe_wanted: Notify,
    subscribers: watch::Sender<usize>,
    pub stats: FeedStats,
}

impl Feed {
    pub fn new(codec: Codec) -> Arc<Feed> {
        Arc::new(Feed {
            codec,
            frames: broadcast::channel(FEED_CAPACITY).0,
            keyframe_wanted: Notify::new(),
            subscribers: watch::Sender::new(0),
            stats: FeedStats::default(),
        })
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Called on the streaming thread: never blocks. Having no viewers is not an error.
    pub fn publish(&self, frame: EncodedFrame) {
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(frame.data.len() as u64, Ordering::Relaxed);
        if frame.keyframe {
            self.stats.keyframes.fetch_add(1, Ordering::Relaxed);
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

    /// How many viewers are subscribed now, and every change of it.
    pub fn subscribers(&self) -> watch::Receiver<usize> {
        self.subscribers.subscribe()
    }

    /// A new viewer starts at the next key frame, which it asks for at once (every Opus
    /// packet is one).
    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        self.subscribers.send_modify(|n| *n += 1);
        if self.codec != Codec::Opus {
            self.request_keyframe();
        }
        Subscription { feed: Arc::clone(self), frames: self.frames.subscribe(), waiting_for_key: true }
    }
}

/// One viewer's place in a feed.
#[derive(Debug)]
pub struct Subscription {
    feed: Arc<Feed>,
    frames: broadcast::Receiver<EncodedFrame>,
    waiting_for_key: bool,
}

impl Subscription {
    pub fn codec(&self) -> Codec {
        self.feed.codec
    }

    /// The next frame this viewer can decode; `None` when the feed is gone (shutdown).
    pub async fn next(&mut self) -> Option<EncodedFrame> {
        loop {
            match self.frames.recv().await {
                Ok(frame) if self.waiting_for_key && !frame.keyframe => {
                    self.feed.stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Ok(frame) => {
                    self.waiting_for_key = false;
                    return Some(frame);
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.feed.stats.dropped.fetch_add(missed, Ordering::Relaxed);
                    self.waiting_for_key = true;
                    self.feed.request_keyframe();
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
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
        EncodedFrame { data: Bytes::from(vec![byte]), duration: Duration::from_millis(33), keyframe }
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
        drop(sub);
        assert_eq!(*feed.subscribers().borrow(), 0);
    }
}
