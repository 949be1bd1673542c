//! Playout: what the talker's browser sends, on the robot's speaker and display. Beside
//! capture and just as supervised: every pipeline here is rebuilt after an error, and
//! nothing a talker sends can stop the robot's own stream.
//!
//! * [`speaker`] decodes Opus into a [`buffer::PlayoutBuffer`] (a small fixed delay that
//!   never creeps) played by cpal or a GStreamer sink;
//! * [`display`] decodes H.264 or VP8 to a screen, with an idle picture between talkers;
//! * with a speaker and a microphone, the echo canceller (`webrtcechoprobe` after the
//!   speaker's buffer, `webrtcdsp` in the microphone's pipeline) keeps the talker's voice
//!   from coming back to the viewers.

pub mod buffer;
pub mod display;
pub mod speaker;
mod stage;

use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use display::{Display, DisplaySpec, DisplayStatus};
pub use speaker::{Speaker, SpeakerSpec, SpeakerStatus};
pub use stage::StageState;

use super::MediaError;
use crate::config::Config;

/// The speaker and display, as started. Cheap to clone.
#[derive(Clone, Default)]
pub struct Playout {
    pub speaker: Option<Arc<Speaker>>,
    pub display: Option<Arc<Display>>,
    /// What the echo canceller does, for the status.
    pub echo: Arc<str>,
}

/// The playout part of `/api/status` (the talker is added by the caller).
#[derive(Clone, Debug, Serialize)]
pub struct PlayoutStatus {
    pub echo_cancel: String,
    pub speaker: Option<SpeakerStatus>,
    pub display: Option<DisplayStatus>,
}

impl Playout {
    /// Starts the speaker and display the configuration asks for. One that cannot work is
    /// a warning that says what to fix, and robocast runs without it.
    pub async fn start(
        config: &Config,
        microphone: bool,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Result<Playout, MediaError> {
        let speaker_spec = SpeakerSpec::parse(&config.speaker).map_err(|problem| MediaError::BadSource {
            name: format!("speaker `{}`", config.speaker),
            problem,
        })?;
        let display_spec = DisplaySpec::parse(&config.display).map_err(|problem| MediaError::BadSource {
            name: format!("display `{}`", config.display),
            problem,
        })?;
        let dsp = gstreamer::ElementFactory::find("webrtcdsp").is_some()
            && gstreamer::ElementFactory::find("webrtcechoprobe").is_some();
        let wants_echo = config.echo_cancel && microphone && dsp;
        // A speaker or display that cannot work is said, and the robot streams without it.
        let speaker = Speaker::start(
            &speaker_spec,
            config.speaker_buffer_ms,
            wants_echo,
            tracker,
            cancel.clone(),
        )
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, hint = %e.hint(), "speaker: cannot play; talk-back is not heard");
            None
        });
        let display = Display::start(&display_spec, display::idle_text(config.listen), tracker, cancel.clone())
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, hint = %e.hint(), "display: cannot show; talk-back video is not shown");
                None
            });
        let echo: &str = match (&speaker, microphone, config.echo_cancel, dsp) {
            (_, _, false, _) => "off (echo_cancel = false)",
            (None, _, _, _) => "not needed: no speaker",
            (_, false, _, _) => "not needed: no microphone",
            (_, _, _, false) => "unavailable: webrtcdsp is missing (install gstreamer1.0-plugins-bad)",
            (Some(s), _, _, _) if !s.echo_probe() => "unavailable: the speaker did not start",
            _ => "on",
        };
        if echo != "on" && speaker.is_some() && microphone {
            tracing::warn!(echo_cancel = echo, "talk-back may echo back to the viewers");
        }
        Ok(Playout { speaker: speaker.map(Arc::new), display: display.map(Arc::new), echo: Arc::from(echo) })
    }

    /// Whether the microphone's pipeline should cancel the speaker's echo.
    pub fn echo_cancel(&self) -> bool {
        &*self.echo == "on"
    }

    pub fn status(&self) -> PlayoutStatus {
        PlayoutStatus {
            echo_cancel: self.echo.to_string(),
            speaker: self.speaker.as_ref().map(|s| s.status()),
            display: self.display.as_ref().map(|d| d.status()),
        }
    }
}
