//! What a pipeline reports about itself: `/api/status`, `robocast check`, the page and
//! systemd's STATUS line all read [`PipelineStatus`].

use serde::Serialize;

use super::MediaError;
use super::rate::EncoderTarget;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PipelineState {
    Starting,
    Running,
    Retrying,
    Stopped,
}

/// What `/api/status` and `robocast check` show for one track.
#[derive(Clone, Debug, Serialize)]
pub struct PipelineStatus {
    pub kind: &'static str,
    pub source: String,
    pub encoder: Option<String>,
    pub hardware: bool,
    pub passthrough: bool,
    pub caps: Option<String>,
    pub state: PipelineState,
    /// Why the source is down, while it is.
    pub error: Option<String>,
    /// What the robot's owner can do about `error`.
    pub hint: Option<String>,
    pub restarts: u64,
    /// Measured over the last second, from the first (H.264 or Opus) feed.
    pub fps: f64,
    pub kbps: f64,
    /// Capture to encoded frame, mean over the last second, as measured from each frame's
    /// capture timestamp.
    pub latency_ms: Option<f64>,
    /// The latency GStreamer's elements declare for this pipeline (a latency query).
    pub declared_latency_ms: Option<f64>,
    /// The bitrate each encoder aims at now: the configured one, or less while a viewer's
    /// link takes less (see `media::rate`). Empty for audio and a passed-through stream.
    pub targets: Vec<EncoderTarget>,
}

impl PipelineStatus {
    pub(crate) fn new(kind: &'static str, source: &str) -> PipelineStatus {
        PipelineStatus {
            kind,
            source: source.into(),
            encoder: None,
            hardware: false,
            passthrough: false,
            caps: None,
            state: PipelineState::Starting,
            error: None,
            hint: None,
            restarts: 0,
            fps: 0.0,
            kbps: 0.0,
            latency_ms: None,
            declared_latency_ms: None,
            targets: Vec::new(),
        }
    }

    /// The source went down with `error`.
    pub(super) fn failed(&mut self, error: &MediaError, restarts: u64) {
        self.state = PipelineState::Retrying;
        self.error = Some(error.to_string());
        self.hint = Some(error.hint());
        self.restarts = restarts;
        (self.fps, self.kbps, self.latency_ms) = (0.0, 0.0, None);
    }

    /// A short human description of the stream: `H.264 1280x720 @ 30 fps`, `Opus 48 kHz`.
    pub fn format(&self) -> Option<String> {
        let caps: gstreamer::Caps = self.caps.as_deref()?.parse().ok()?;
        let s = caps.structure(0)?;
        let int = |field: &str| s.get::<i32>(field).ok();
        let codec = match s.name().as_str() {
            "video/x-h264" => "H.264",
            "video/x-vp8" => "VP8",
            "audio/x-opus" => "Opus",
            other => other,
        };
        let mut text = codec.to_owned();
        if let Ok(profile) = s.get::<&str>("profile") {
            text.push_str(&format!(" {profile}"));
        }
        if let (Some(w), Some(h)) = (int("width"), int("height")) {
            text.push_str(&format!(" {w}x{h}"));
        }
        if let Ok(rate) = s.get::<gstreamer::Fraction>("framerate")
            && rate.numer() > 0
            && rate.denom() > 0
        {
            text.push_str(&format!(" @ {} fps", f64::from(rate.numer()) / f64::from(rate.denom())));
        }
        if let Some(rate) = int("rate") {
            text.push_str(&format!(" {} kHz", f64::from(rate) / 1000.0));
        }
        if let Some(channels) = int("channels") {
            text.push_str(if channels == 1 { " mono" } else { " stereo" });
        }
        Some(text)
    }
}
