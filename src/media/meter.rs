//! Once a second: measured rates into the status, a stall into an error, and now and
//! then a summary line in the log with what viewers dropped.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::watch;
use tokio::time::Instant;

use super::status::{PipelineState, PipelineStatus};
use super::{Feed, MediaError};

/// A running pipeline that produced nothing for this long is rebuilt.
const STALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Measures a running pipeline once a second: rates into the status, a stall into an
/// error, and every [`SUMMARY_EVERY`] a log line with what viewers dropped.
pub(super) struct Meter {
    last: (Instant, u64, u64),
    /// Latency totals of the first feed at the last tick: (sum in µs, samples).
    latency: (u64, u64),
    progress: Instant,
    summary: (Instant, u64),
}

/// How often the periodic summary is logged.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

impl Meter {
    pub(super) fn new(sinks: &[(gst_app::AppSink, Arc<Feed>)]) -> Meter {
        let now = Instant::now();
        let (frames, bytes) = Self::counts(sinks);
        let latency = sinks.first().map_or((0, 0), |(_, f)| f.stats.latency_totals());
        Meter { last: (now, frames, bytes), latency, progress: now, summary: (now, Self::dropped(sinks)) }
    }

    fn counts(sinks: &[(gst_app::AppSink, Arc<Feed>)]) -> (u64, u64) {
        sinks.first().map_or((0, 0), |(_, f)| (f.stats.frames.load(Relaxed), f.stats.bytes.load(Relaxed)))
    }

    fn dropped(sinks: &[(gst_app::AppSink, Arc<Feed>)]) -> u64 {
        sinks.iter().map(|(_, f)| f.stats.dropped.load(Relaxed)).sum()
    }

    pub(super) fn tick(
        &mut self,
        sinks: &[(gst_app::AppSink, Arc<Feed>)],
        status: &watch::Sender<PipelineStatus>,
    ) -> Result<(), MediaError> {
        let now = Instant::now();
        let (frames, bytes) = Self::counts(sinks);
        let seconds = (now - self.last.0).as_secs_f64().max(0.001);
        let fps = (frames - self.last.1) as f64 / seconds;
        let kbps = (bytes - self.last.2) as f64 * 8.0 / 1000.0 / seconds;
        if frames != self.last.1 {
            self.progress = now;
        }
        self.last = (now, frames, bytes);
        let caps = match status.borrow().caps.is_none() && frames > 0 {
            true => sinks
                .first()
                .and_then(|(sink, _)| sink.static_pad("sink")?.current_caps())
                .map(|c| c.to_string()),
            false => None,
        };
        let latency = sinks.first().map_or((0, 0), |(_, f)| f.stats.latency_totals());
        let (sum_us, samples) = (latency.0 - self.latency.0, latency.1 - self.latency.1);
        self.latency = latency;
        let latency_ms = (samples > 0).then(|| (sum_us as f64 / samples as f64 / 100.0).round() / 10.0);
        status.send_modify(|s| {
            (s.fps, s.kbps) = ((fps * 10.0).round() / 10.0, kbps.round());
            s.latency_ms = latency_ms.or(s.latency_ms);
            s.caps = s.caps.take().or(caps);
        });
        if now - self.progress > STALL_TIMEOUT && status.borrow().state == PipelineState::Running {
            return Err(MediaError::Runtime(format!(
                "no frames for {} s (device gone?)",
                STALL_TIMEOUT.as_secs()
            )));
        }
        if now - self.summary.0 >= SUMMARY_EVERY {
            let dropped = Self::dropped(sinks);
            let s = status.borrow();
            tracing::info!(
                kind = s.kind,
                fps = s.fps,
                kbps = s.kbps,
                frames_total = frames,
                dropped_by_viewers = dropped - self.summary.1,
                "summary: rates now, frames dropped by lagging viewers in the last {} s",
                SUMMARY_EVERY.as_secs()
            );
            self.summary = (now, dropped);
        }
        Ok(())
    }
}
