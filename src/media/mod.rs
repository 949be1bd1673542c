//! Media: capture, encode once, fan out; and play the talker's sound and pictures.
//!
//! This is the only part of robocast that touches GStreamer. Each track (video, audio)
//! has one supervised pipeline ([`pipeline`]) that ends in an appsink; the appsink
//! callback turns every buffer into an [`EncodedFrame`] and hands it to a [`Feed`]
//! ([`fanout`]), which every viewer subscribes to. The GStreamer streaming thread never
//! waits for a viewer: a send on the feed never blocks.
//!
//! * [`source`] turns the user's source strings (`test`, `v4l2:/dev/video0`, ...) into
//!   GStreamer descriptions.
//! * [`encoder`] is the table of video encoders, in preference order, with their
//!   low-latency settings.
//! * [`clockstamp`] paints the capture time into the test pattern so the benchmark can
//!   read glass-to-glass latency back from the browser.
//! * [`playout`] plays what a talker's browser sends on the speaker and display.
//! * [`devices`] lists cameras, audio devices and encoders for `robocast devices`.
//! * `build` turns a recipe into a pipeline, `keyframe` throttles key frame requests,
//!   `meter` measures rates and stalls; [`pipeline`] supervises them all.

mod build;
pub mod clockface;
pub mod clockstamp;
pub mod devices;
pub mod encoder;
mod failures;
pub mod fanout;
mod framerate;
pub mod h264;
mod keyframe;
mod meter;
pub mod pipeline;
pub mod playout;
pub mod rate;
pub mod source;
mod status;
pub mod tiers;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

pub use fanout::{Feed, FeedStats, Subscription};
pub use h264::H264Profile;
pub use pipeline::MediaHub;
pub use playout::Playout;
pub use source::{AudioSource, VideoSource};
pub use status::{PipelineState, PipelineStatus};
pub use tiers::{Place, TieredSubscription, Tiers};

/// One encoded access unit (a whole H.264/VP8 picture, or one Opus packet).
#[derive(Clone, Debug)]
pub struct EncodedFrame {
    pub data: Bytes,
    /// How long this frame lasts; drives the RTP timestamps.
    pub duration: Duration,
    /// A frame a decoder can start from (IDR with SPS/PPS, VP8 key frame; every Opus packet).
    pub keyframe: bool,
    /// When the encoder handed it over.
    pub at: std::time::Instant,
}

/// The codecs robocast sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    H264,
    Vp8,
    Opus,
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::H264 => "H.264",
            Codec::Vp8 => "VP8",
            Codec::Opus => "Opus",
        })
    }
}

/// Initialises GStreamer once; safe to call from anywhere, any number of times.
pub fn init() -> Result<(), MediaError> {
    gstreamer::init().map_err(|e| MediaError::Init(e.to_string()))
}

/// Media errors; [`MediaError::hint`] says what the user can do about each.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("GStreamer could not start: {0}")]
    Init(String),
    #[error("bad source `{name}`: {problem}")]
    BadSource { name: String, problem: String },
    #[error("GStreamer element `{0}` is missing")]
    MissingElement(String, &'static str),
    #[error("no working {codec} encoder among {tried}")]
    NoEncoder { codec: Codec, tried: String },
    #[error("`{0}` is not an H.264 encoder robocast knows")]
    UnknownEncoder(String),
    #[error("cannot build pipeline `{description}`: {message}")]
    Build { description: String, message: String },
    #[error("pipeline failed: {0}")]
    Runtime(String),
}

impl MediaError {
    /// What to do about it, in the words of someone who owns the robot.
    pub fn hint(&self) -> String {
        match self {
            MediaError::Init(_) => "install the GStreamer runtime (`make setup` does it)".into(),
            MediaError::BadSource { name, .. } if name.starts_with("v4l2:") => {
                "plug the camera in or choose another: `robocast devices` lists the cameras; robocast retries every 2 s".into()
            }
            MediaError::BadSource { name, .. } if name.starts_with("speaker") || name.starts_with("display") => {
                "check the `speaker` and `display` settings; `robocast devices` lists the sound cards and the display `auto` picks".into()
            }
            MediaError::BadSource { .. } => {
                "check the `video` and `audio` settings; `robocast devices` lists what this machine has".into()
            }
            MediaError::MissingElement(_, package) => format!("install {package}"),
            MediaError::NoEncoder { .. } => {
                "install gstreamer1.0-plugins-ugly (x264enc) or gstreamer1.0-plugins-bad (openh264enc)".into()
            }
            MediaError::UnknownEncoder(_) => "`robocast devices` lists the usable encoders".into(),
            MediaError::Build { .. } => {
                "try the description with gst-launch-1.0 to see what GStreamer says about it".into()
            }
            MediaError::Runtime(_) => {
                "check that the device is plugged in and not used by another program; robocast retries every 2 s".into()
            }
        }
    }
}
