//! Encoder bitrate that follows the viewers' links.
//!
//! Each viewer's video pump reports what its link takes ([`Subscription::report_rate`],
//! from the session's congestion estimate); a [`RateWishes`] in the feed keeps one slot
//! per viewer. The pipeline asks the feed for the lowest wish every
//! [`FOLLOW_EVERY`] and moves its encoder's bitrate there, within the configured bounds,
//! with no restart and no key frame (x264enc, openh264enc and vp8enc take a new bitrate
//! while playing; v4l2h264enc through its `video_bitrate` control, unproven here).
//!
//! One encoder per feed: the slowest viewer on a feed sets its rate. With tiers
//! ([`super::tiers`]), a viewer much slower than the others is moved to a smaller picture
//! with an encoder of its own, so it does not lower theirs.
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
    /// 0: the configured size; 1: the half-size tier for thin links.
    pub tier: usize,
    /// The picture it encodes, `WxH`.
    pub size: String,
    pub kbps: u32,
    /// Viewers on it (or moving to it).
    pub viewers: usize,
    /// It decodes the camera's own H.264 first (a passed-through stream cannot change its
    /// bitrate, so a thin link's tier is encoded again from it).
    pub decodes_camera: bool,
}

/// What an encoder is, for [`FollowingEncoder::new`].
pub(super) struct EncoderRole {
    pub spec: &'static EncoderSpec,
    pub tier: usize,
    pub size: (u32, u32),
    /// The least and the most, kbit/s.
    pub bounds: (u32, u32),
    /// The bitrate it was configured with, until a viewer says what its link takes.
    pub start: u32,
    pub decodes_camera: bool,
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
    role: EncoderRole,
    feed: Arc<Feed>,
    applied: u32,
}

impl FollowingEncoder {
    pub(super) fn new(element: gst::Element, role: EncoderRole, feed: Arc<Feed>) -> Self {
        let applied = role.start;
        FollowingEncoder { element, role, feed, applied }
    }

    /// The encoder's codec and bitrate now, for the status.
    pub(super) fn target(&self) -> EncoderTarget {
        let r = &self.role;
        EncoderTarget {
            codec: r.spec.codec,
            encoder: r.spec.element,
            tier: r.tier,
            size: format!("{}x{}", r.size.0, r.size.1),
            kbps: self.applied,
            viewers: self.feed.viewers(),
            decodes_camera: r.decodes_camera,
        }
    }

    /// Moves the bitrate to the lowest viewer's wish. Without one (no viewer, or one that
    /// has not reported yet) it stays: the next viewer may be the one that just left this
    /// tier, and its first key frame should fit its link.
    pub(super) async fn follow(&mut self) {
        let (least, most) = self.role.bounds;
        let Some(bps) = self.feed.lowest_rate_wish() else { return };
        let wish = u32::try_from(bps / 1000).unwrap_or(u32::MAX).clamp(least, most);
        let change = (f64::from(wish) - f64::from(self.applied)).abs() / f64::from(self.applied.max(1));
        let to_an_end = (wish == most || wish == least) && self.applied != wish;
        if change < DEADBAND && !to_an_end {
            return;
        }
        let (element, set) = (self.element.clone(), self.role.spec.set_bitrate);
        if super::pipeline::blocking(move || set(&element, wish)).await.is_ok() {
            tracing::debug!(
                encoder = self.role.spec.element,
                tier = self.role.tier,
                from = self.applied,
                to = wish,
                "encoder bitrate (kbit/s)"
            );
            self.applied = wish;
        }
    }
}
