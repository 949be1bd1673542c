//! Key frames on demand, throttled: a new viewer or a PLI/FIR asks its feed; the
//! pipeline sends a force-key-unit event upstream from that feed's appsink, at most once
//! per [`KEYFRAME_MIN_INTERVAL`], coalescing the requests in between into one.

use std::sync::Arc;
use std::time::Duration;

use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use tokio::time::Instant;

use super::Feed;

/// At most one forced key frame per feed in this interval ("about one a second").
pub const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(800);

/// Waits for any feed's key frame request and says which.
pub(super) async fn keyframe_request(sinks: &[(gst_app::AppSink, Arc<Feed>)]) -> usize {
    let waits = sinks.iter().enumerate().map(|(i, (_, feed))| {
        Box::pin(async move {
            feed.keyframe_wanted().await;
            i
        })
    });
    futures_util::future::select_all(waits).await.0
}

/// Sends a force-key-unit event upstream from the appsink to the encoder (or camera), on
/// the blocking pool: the event crosses every element's pad between them.
pub(super) fn force_keyframe(sink: &gst_app::AppSink) {
    let sink = sink.clone();
    tokio::task::spawn_blocking(move || {
        let event = gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build();
        if !sink.send_event(event) {
            tracing::debug!(sink = %sink.name(), "key frame request not handled upstream");
        }
    });
}

/// Allows one key frame per [`KEYFRAME_MIN_INTERVAL`], coalescing the rest into one.
#[derive(Default)]
pub(super) struct KeyframeThrottle {
    last: Option<Instant>,
    pending: bool,
}

impl KeyframeThrottle {
    /// A request arrived: true if it may be sent now, else it is kept pending.
    pub(super) fn request(&mut self) -> bool {
        if self.last.is_some_and(|t| t.elapsed() < KEYFRAME_MIN_INTERVAL) {
            self.pending = true;
            return false;
        }
        self.last = Some(Instant::now());
        true
    }

    pub(super) fn pending_at(&self) -> Option<Instant> {
        self.pending.then(|| self.last.map_or_else(Instant::now, |t| t + KEYFRAME_MIN_INTERVAL))
    }

    pub(super) fn fire_pending(&mut self) -> bool {
        if self.pending_at().is_some_and(|at| at <= Instant::now()) {
            self.pending = false;
            self.last = Some(Instant::now());
            return true;
        }
        false
    }
}
