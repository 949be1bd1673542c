//! Encoder bitrate that follows the viewers' links.
//!
//! Each viewer's video pump reports what its link takes ([`Subscription::report_rate`],
//! from the session's congestion estimate); a [`RateWishes`] in the feed keeps one slot
//! per viewer. The pipeline asks the feed for the lowest wish every
//! [`FOLLOW_EVERY`] and moves its encoder's bitrate there, within the configured bounds,
//! with no restart and no key frame (x264enc, openh264enc and vp8enc take a new bitrate
//! while playing; v4l2h264enc through its `video_bitrate` control, unproven here).
//!
//! One encoder per feed for now: the slowest viewer sets the rate for all of them. Tiers
//! (a second, smaller encoder for the slow ones) come next.
//!
//! [`Subscription::report_rate`]: super::Subscription::report_rate

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use gstreamer as gst;

use super::encoder::EncoderSpec;
use super::{Codec, Feed};

/// How often an encoder's bitrate is reconsidered.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(250);
/// A change smaller than this fraction is not worth making (encoders settle after one).
const DEADBAND: f64 = 0.05;

/// An encoder's bitrate now, as `/api/status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EncoderTarget {
    pub codec: Codec,
    pub encoder: &'static str,
    pub kbps: u32,
}

/// The viewers' wishes of one feed, bit/s (0: not reported yet).
#[derive(Debug, Default)]
pub struct RateWishes {
    /// A lock for a push on subscribe and a scan every [`FOLLOW_EVERY`].
    slots: Mutex<Vec<Weak<AtomicU64>>>,
}

impl RateWishes {
    /// A slot for a new viewer; dropping it withdraws the wish.
    pub fn slot(&self) -> Arc<AtomicU64> {
        let slot = Arc::new(AtomicU64::new(0));
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.retain(|s| s.strong_count() > 0);
        slots.push(Arc::downgrade(&slot));
        slot
    }

    /// The lowest reported wish, if any viewer reported one.
    pub fn lowest(&self) -> Option<u64> {
        let slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.iter().filter_map(Weak::upgrade).map(|s| s.load(Ordering::Relaxed)).filter(|&b| b > 0).min()
    }
}

/// An encoder whose bitrate follows its feed's viewers.
pub(super) struct FollowingEncoder {
    element: gst::Element,
    spec: &'static EncoderSpec,
    feed: Arc<Feed>,
    /// The configured bitrate (the most), and the least, kbit/s.
    bounds: (u32, u32),
    applied: u32,
}

impl FollowingEncoder {
    pub(super) fn new(
        element: gst::Element,
        spec: &'static EncoderSpec,
        feed: Arc<Feed>,
        bounds: (u32, u32),
    ) -> Self {
        FollowingEncoder { element, spec, feed, bounds, applied: bounds.1 }
    }

    /// The encoder's codec and bitrate now, for the status.
    pub(super) fn target(&self) -> EncoderTarget {
        EncoderTarget { codec: self.spec.codec, encoder: self.spec.element, kbps: self.applied }
    }

    /// Moves the bitrate to the lowest viewer's wish, or back to the most without one.
    pub(super) async fn follow(&mut self) {
        let (least, most) = self.bounds;
        let wish = self
            .feed
            .lowest_rate_wish()
            .map_or(most, |bps| u32::try_from(bps / 1000).unwrap_or(u32::MAX).clamp(least, most));
        let change = (f64::from(wish) - f64::from(self.applied)).abs() / f64::from(self.applied.max(1));
        if change < DEADBAND && !(wish == most && self.applied != most) {
            return;
        }
        let (element, set) = (self.element.clone(), self.spec.set_bitrate);
        if super::pipeline::blocking(move || set(&element, wish)).await.is_ok() {
            tracing::debug!(
                encoder = self.spec.element,
                from = self.applied,
                to = wish,
                "encoder bitrate (kbit/s)"
            );
            self.applied = wish;
        }
    }
}
