//! Source strings a user can guess, and the GStreamer descriptions they become.
//!
//! A video source ends in one of two shapes, which decides the rest of the pipeline:
//! raw pictures (encoded here) or H.264 (passed through untouched, e.g. a webcam's own
//! encoder or an RTSP camera).

use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::MediaError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoSource {
    /// The first camera found, else the test pattern.
    Auto,
    /// A moving pattern with a running clock (and the latency stamp).
    Test,
    V4l2(PathBuf),
    Libcamera,
    None,
    /// Any GStreamer source description producing raw video or H.264.
    Gst(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioSource {
    Auto,
    /// A 440 Hz tone.
    Test,
    Alsa(String),
    Pulse,
    None,
    Gst(String),
}

fn bad(source: &str, problem: impl Into<String>) -> MediaError {
    MediaError::BadSource { name: source.into(), problem: problem.into() }
}

fn gst_description<'a>(text: &str, rest: &'a str) -> Result<&'a str, MediaError> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(bad(text, "`gst:` needs a GStreamer description after it, e.g. gst:videotestsrc"));
    }
    Ok(rest)
}

impl VideoSource {
    pub fn parse(text: &str) -> Result<VideoSource, MediaError> {
        let (kind, rest) = text.split_once(':').unwrap_or((text, ""));
        match kind.trim() {
            "auto" => Ok(VideoSource::Auto),
            "test" => Ok(VideoSource::Test),
            "libcamera" => Ok(VideoSource::Libcamera),
            "none" => Ok(VideoSource::None),
            "v4l2" if rest.starts_with("/dev/") => Ok(VideoSource::V4l2(rest.into())),
            "v4l2" => Err(bad(text, "`v4l2:` needs a device path, e.g. v4l2:/dev/video0")),
            "gst" => Ok(VideoSource::Gst(gst_description(text, rest)?.into())),
            _ => Err(bad(text, "unknown video source")),
        }
    }
}

impl AudioSource {
    pub fn parse(text: &str) -> Result<AudioSource, MediaError> {
        let (kind, rest) = text.split_once(':').unwrap_or((text, ""));
        match kind.trim() {
            "auto" => Ok(AudioSource::Auto),
            "test" => Ok(AudioSource::Test),
            "pulse" => Ok(AudioSource::Pulse),
            "none" => Ok(AudioSource::None),
            "alsa" if !rest.trim().is_empty() => Ok(AudioSource::Alsa(rest.trim().into())),
            "alsa" => Err(bad(text, "`alsa:` needs a device, e.g. alsa:hw:1 or alsa:default")),
            "gst" => Ok(AudioSource::Gst(gst_description(text, rest)?.into())),
            _ => Err(bad(text, "unknown audio source")),
        }
    }
}

/// What the video source element chain produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Raw pictures, to be encoded.
    Raw,
    /// H.264 byte stream, passed through.
    H264,
}

/// A resolved video source: a description fragment and what it outputs.
#[derive(Clone, Debug)]
pub struct VideoChain {
    pub label: String,
    pub description: String,
    pub output: Output,
    /// Paint the latency stamp (test pattern only).
    pub stamp: bool,
}

/// The size and rate a chain is asked for.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl VideoSource {
    /// Turns the source into a chain; `Auto` must be resolved first ([`resolve_auto_video`]).
    pub fn chain(&self, g: Geometry) -> Result<Option<VideoChain>, MediaError> {
        let Geometry { width: w, height: h, fps } = g;
        let raw_caps = format!("video/x-raw,format=I420,width={w},height={h},framerate={fps}/1");
        Ok(Some(match self {
            VideoSource::Auto => return resolve_auto_video().chain(g),
            VideoSource::None => return Ok(None),
            VideoSource::Test => VideoChain {
                label: "test pattern".into(),
                description: format!(
                    "videotestsrc is-live=true pattern=smpte horizontal-speed=2 ! {raw_caps}"
                ),
                output: Output::Raw,
                stamp: true,
            },
            VideoSource::Libcamera => VideoChain {
                label: "libcamera".into(),
                description: format!(
                    "libcamerasrc ! video/x-raw,width={w},height={h},framerate={fps}/1 ! videoconvert ! video/x-raw,format=I420"
                ),
                output: Output::Raw,
                stamp: false,
            },
            VideoSource::V4l2(device) => v4l2_chain(device, g)?,
            VideoSource::Gst(description) => VideoChain {
                label: format!("gst:{description}"),
                output: gst_output(description),
                description: match gst_output(description) {
                    Output::H264 => description.clone(),
                    // No videorate: it holds each picture until the next arrives (one
                    // frame of latency); `framerate::limit` drops instead of waiting.
                    Output::Raw => format!(
                        "{description} ! decodebin ! videoconvert ! videoscale ! video/x-raw,format=I420,width={w},height={h}"
                    ),
                },
                stamp: false,
            },
        }))
    }
}

/// A `gst:` description whose last element produces H.264 is passed through.
fn gst_output(description: &str) -> Output {
    let last = description.rsplit('!').next().unwrap_or("").trim();
    let h264 = ["h264parse", "video/x-h264", "rtph264depay", "x264enc", "openh264enc", "v4l2h264enc"];
    if h264.iter().any(|p| last.starts_with(p)) { Output::H264 } else { Output::Raw }
}

/// Asks the camera what it offers (GStreamer caps at READY) and picks, in order: its own
/// H.264 (no re-encoding), raw, MJPEG.
fn v4l2_chain(device: &Path, g: Geometry) -> Result<VideoChain, MediaError> {
    let Geometry { width: w, height: h, fps } = g;
    let dev = device.display();
    let offered = v4l2_formats(device)?;
    let label = format!("v4l2:{dev}");
    let raw = format!("video/x-raw,format=I420,width={w},height={h}");
    let chain =
        |description: String, output| VideoChain { label: label.clone(), description, output, stamp: false };
    if offered.iter().any(|f| f == "video/x-h264") {
        return Ok(chain(
            format!("v4l2src device={dev} ! video/x-h264,width={w},height={h},framerate={fps}/1 ! h264parse"),
            Output::H264,
        ));
    }
    if offered.iter().any(|f| f == "video/x-raw") {
        return Ok(chain(
            format!(
                "v4l2src device={dev} ! video/x-raw,width={w},height={h},framerate={fps}/1 ! videoconvert ! {raw}"
            ),
            Output::Raw,
        ));
    }
    if offered.iter().any(|f| f == "image/jpeg") {
        return Ok(chain(
            format!(
                "v4l2src device={dev} ! image/jpeg,width={w},height={h},framerate={fps}/1 ! jpegdec ! videoconvert ! {raw}"
            ),
            Output::Raw,
        ));
    }
    Err(MediaError::BadSource {
        name: label,
        problem: format!("the camera offers none of H.264, raw or MJPEG (it offers {offered:?})"),
    })
}

/// The media types (`video/x-raw`, `image/jpeg`, ...) a V4L2 device offers.
pub fn v4l2_formats(device: &Path) -> Result<Vec<String>, MediaError> {
    let source = format!("v4l2:{}", device.display());
    if !device.exists() {
        return Err(bad(&source, "no such device (unplugged?); `robocast devices` lists cameras"));
    }
    let src = gst::ElementFactory::make("v4l2src")
        .property("device", device.display().to_string())
        .build()
        .map_err(|_| MediaError::MissingElement("v4l2src".into(), "gstreamer1.0-plugins-good"))?;
    src.set_state(gst::State::Ready)
        .map_err(|_| bad(&source, "cannot open the device (busy, or not a camera?)"))?;
    let caps = src.static_pad("src").map(|pad| pad.query_caps(None));
    let _ = src.set_state(gst::State::Null);
    let mut names: Vec<String> =
        caps.iter().flat_map(|caps| caps.iter().map(|s| s.name().to_string())).collect();
    names.dedup();
    Ok(names)
}

/// `auto`: the first camera found, else the test pattern (said in the log).
pub fn resolve_auto_video() -> VideoSource {
    match super::devices::first_camera() {
        Some(device) => {
            tracing::info!(device = %device.display(), "video auto: using the first camera found");
            VideoSource::V4l2(device)
        }
        None => {
            tracing::info!("video auto: no camera found, using the test pattern");
            VideoSource::Test
        }
    }
}

impl AudioSource {
    /// The description up to raw audio, or `None` for no audio.
    pub fn chain(&self) -> Option<(String, String)> {
        Some(match self {
            AudioSource::Auto => return resolve_auto_audio().chain(),
            AudioSource::None => return None,
            AudioSource::Test => {
                ("test tone".into(), "audiotestsrc is-live=true wave=sine freq=440 volume=0.2".into())
            }
            AudioSource::Alsa(device) => (format!("alsa:{device}"), format!("alsasrc device={device}")),
            AudioSource::Pulse => ("pulse".into(), "pulsesrc".into()),
            AudioSource::Gst(description) => (format!("gst:{description}"), description.clone()),
        })
    }
}

/// `auto`: the first ALSA capture device, else the test tone (said in the log).
pub fn resolve_auto_audio() -> AudioSource {
    match super::devices::first_microphone() {
        Some(device) => {
            tracing::info!(%device, "audio auto: using the first microphone found");
            AudioSource::Alsa(device)
        }
        None => {
            tracing::info!("audio auto: no microphone found, using the test tone");
            AudioSource::Test
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_source() {
        assert_eq!(VideoSource::parse("test").ok(), Some(VideoSource::Test));
        assert_eq!(
            VideoSource::parse("v4l2:/dev/video2").ok(),
            Some(VideoSource::V4l2("/dev/video2".into()))
        );
        assert_eq!(
            VideoSource::parse("gst:videotestsrc ! x264enc").ok(),
            Some(VideoSource::Gst("videotestsrc ! x264enc".into()))
        );
        assert_eq!(AudioSource::parse("alsa:hw:1").ok(), Some(AudioSource::Alsa("hw:1".into())));
        let err = VideoSource::parse("v4l2:video0").expect_err("needs a path").to_string();
        assert!(err.contains("v4l2:/dev/video0"), "{err}");
        assert!(VideoSource::parse("webcam").is_err());
        assert!(AudioSource::parse("gst:").is_err());
    }

    #[test]
    fn no_raw_source_waits_for_the_next_picture() {
        let g = Geometry { width: 640, height: 360, fps: 30 };
        for source in [
            VideoSource::Test,
            VideoSource::Libcamera,
            VideoSource::Gst("shmsrc socket-path=/tmp/x is-live=true do-timestamp=true".into()),
        ] {
            let chain = source.chain(g).expect("chain").expect("video");
            assert!(!chain.description.contains("videorate"), "{}", chain.description);
        }
    }

    #[test]
    fn gst_sources_ending_in_h264_pass_through() {
        assert_eq!(gst_output("rtspsrc location=rtsp://cam ! rtph264depay ! h264parse"), Output::H264);
        assert_eq!(gst_output("videotestsrc ! video/x-raw,width=320"), Output::Raw);
    }
}
