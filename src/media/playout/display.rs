//! The display: the talker's camera decoded (a hardware decoder first where the board has
//! one) and shown on a screen; a calm idle picture (the robot's name and address) when
//! nobody shares a camera, never the last frozen frame.
//!
//! ```text
//! rtc (H.264/VP8 frames) ─▶ appsrc ! parse ! decoder ! appsink ─┐
//!                        idle picture (rendered once, 2 fps) ───┴▶ appsrc ! videoconvert ! videoscale ! <sink>
//! ```
//! The output pipeline runs all the time; decoders come and go with the talker's codec.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::stage::{self, Input, StageState};
use crate::media::{Codec, MediaError};

/// With no talker frame for this long, the idle picture comes back.
pub const IDLE_AFTER: Duration = Duration::from_secs(1);
/// The idle picture is repeated this often (a sink that just connected gets it soon).
const IDLE_EVERY: Duration = Duration::from_millis(500);

/// Where talk-back pictures go, as configured (`display`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisplaySpec {
    None,
    /// A sink that works here: KMS without a desktop, full screen on a Wayland desktop, a
    /// window on an X11 one, none otherwise.
    Auto,
    /// A sink element (`kmssink`, `ximagesink`, `glimagesink`, ...).
    Element(String),
    /// A GStreamer sink pipeline (raw video in).
    Gst(String),
}

impl DisplaySpec {
    pub fn parse(text: &str) -> Result<DisplaySpec, String> {
        let text = text.trim();
        match text {
            "" => Err("the display is empty".into()),
            "none" | "off" => Ok(DisplaySpec::None),
            "auto" => Ok(DisplaySpec::Auto),
            _ => match text.strip_prefix("gst:") {
                Some(d) if d.trim().is_empty() => Err("`gst:` needs a sink pipeline after it".into()),
                Some(d) => Ok(DisplaySpec::Gst(d.trim().into())),
                None if text.contains([' ', '!']) => {
                    Err(format!("`{text}` is not an element name; write a pipeline as gst:{text}"))
                }
                None => Ok(DisplaySpec::Element(text.into())),
            },
        }
    }
}

fn has(element: &str) -> bool {
    gst::ElementFactory::find(element).is_some()
}

/// What `auto` means on this machine, and why.
pub fn resolve_auto() -> (Option<String>, String) {
    let set = |var: &str| std::env::var_os(var).is_some_and(|s| !s.is_empty());
    // Wayland (Raspberry Pi OS's desktop): full screen. X11 sinks cannot ask for it: a window.
    if set("WAYLAND_DISPLAY") && has("waylandsink") {
        return (Some("waylandsink fullscreen=true".into()), "full screen on the Wayland desktop".into());
    }
    if (set("WAYLAND_DISPLAY") || set("DISPLAY")) && has("autovideosink") {
        return (Some("autovideosink".into()), "a window on the desktop".into());
    }
    let drm = std::fs::read_dir("/dev/dri")
        .map(|dir| dir.flatten().any(|e| e.file_name().to_string_lossy().starts_with("card")))
        .unwrap_or(false);
    if drm && has("kmssink") {
        return (Some("kmssink".into()), "the screen through KMS/DRM (no desktop)".into());
    }
    let why = if drm {
        "a DRM device but no kmssink (install gstreamer1.0-plugins-bad)"
    } else {
        "no desktop (DISPLAY, WAYLAND_DISPLAY) and no screen (/dev/dri)"
    };
    (None, why.into())
}

/// The decoder for a codec: hardware first.
fn decoder(codec: Codec) -> Result<&'static str, MediaError> {
    let table: &[&'static str] = match codec {
        Codec::H264 => &["v4l2h264dec", "avdec_h264", "openh264dec"],
        Codec::Vp8 => &["v4l2vp8dec", "vp8dec", "avdec_vp8"],
        Codec::Opus => &[],
    };
    table
        .iter()
        .copied()
        .find(|element| has(element))
        .ok_or_else(|| MediaError::MissingElement(format!("a {codec} decoder"), "gstreamer1.0-libav"))
}

/// Frame threads hold pictures back (one per thread): decode slice by slice instead.
fn decoder_options(element: &str) -> &'static str {
    if element == "avdec_h264" { " max-threads=1" } else { "" }
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    shown: AtomicU64,
    idle_shown: AtomicU64,
}

/// The display part of the status.
#[derive(Clone, Debug, Serialize)]
pub struct DisplayStatus {
    pub sink: String,
    pub output: StageState,
    pub codec: Option<Codec>,
    pub decoder: Option<String>,
    pub frames_received: u64,
    pub frames_shown: u64,
    pub idle_frames_shown: u64,
    /// The size of the talker's pictures, as decoded.
    pub size: Option<String>,
    /// The idle picture is on screen.
    pub idle: bool,
}

struct Decoding {
    codec: Codec,
    element: &'static str,
    input: Input,
    cancel: CancellationToken,
}

struct Shared {
    output: Input,
    counters: Counters,
    size: Mutex<Option<String>>,
    last_frame: Mutex<Option<Instant>>,
}

pub struct Display {
    label: String,
    shared: Arc<Shared>,
    output_state: watch::Receiver<StageState>,
    decoding: Mutex<Option<Decoding>>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Display {
    /// Starts the display; `Ok(None)` when `spec` is none or `auto` finds nothing that can
    /// show (said in the log).
    pub async fn start(
        spec: &DisplaySpec,
        idle_text: String,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Result<Option<Display>, MediaError> {
        let (label, sink) = match spec {
            DisplaySpec::None => return Ok(None),
            DisplaySpec::Auto => match resolve_auto() {
                (Some(element), why) => {
                    tracing::info!(sink = %element, "display: {why}");
                    (format!("{element} (auto: {why})"), format!("videoscale ! {element} sync=false"))
                }
                (None, why) => {
                    tracing::info!("display: none, {why}; set `display` to show talk-back video");
                    return Ok(None);
                }
            },
            DisplaySpec::Element(element) => {
                if !has(element) {
                    return Err(MediaError::MissingElement(
                        element.clone(),
                        "the GStreamer plugin that has it",
                    ));
                }
                (element.clone(), format!("videoscale ! {element} sync=false"))
            }
            DisplaySpec::Gst(description) => (format!("gst:{description}"), description.clone()),
        };
        let description = format!(
            "appsrc name=frames is-live=true do-timestamp=true format=time ! \
             queue max-size-buffers=2 max-size-bytes=0 max-size-time=0 leaky=downstream ! videoconvert ! {sink}"
        );
        let build: Arc<stage::Build> = Arc::new(move || stage::launch(&description));
        let (output, output_state) = stage::start("display", "frames", build, tracker, cancel.clone()).await;
        let shared = Arc::new(Shared {
            output,
            counters: Counters::default(),
            size: Mutex::new(None),
            last_frame: Mutex::new(None),
        });
        let idle = crate::media::pipeline::blocking(move || render_idle(&idle_text)).await.and_then(|r| r);
        match idle {
            Ok(idle) => {
                tracker.spawn(show_idle(Arc::clone(&shared), idle, cancel.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "display: cannot draw the idle picture; the screen stays as it is")
            }
        }
        tracing::info!(sink = %label, "display ready for talk-back");
        Ok(Some(Display {
            label,
            shared,
            output_state,
            decoding: Mutex::new(None),
            tracker: tracker.clone(),
            cancel,
        }))
    }

    /// Makes sure a decoder for `codec` runs (the talker's camera starts, or changes
    /// codec); resolves once it takes pictures. The talker should then be asked for a key
    /// frame.
    pub async fn begin(&self, codec: Codec) -> Result<(), MediaError> {
        if lock(&self.decoding).as_ref().is_some_and(|d| d.codec == codec) {
            return Ok(());
        }
        let element = decoder(codec)?;
        let (caps, parse) = match codec {
            Codec::H264 => ("video/x-h264,stream-format=byte-stream,alignment=au", "h264parse ! "),
            _ => ("video/x-vp8", ""),
        };
        let description = format!(
            "appsrc name=in is-live=true do-timestamp=true format=time caps={caps} ! {parse}{element}{} ! \
             videoconvert ! video/x-raw,format=I420 ! appsink name=decoded sync=false max-buffers=2 drop=true",
            decoder_options(element)
        );
        let shared = Arc::clone(&self.shared);
        let build: Arc<stage::Build> = Arc::new(move || {
            let pipeline = stage::launch(&description)?;
            let sink = stage::appsink(&pipeline, "decoded")?;
            let shared = Arc::clone(&shared);
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        on_decoded(&shared, &sample);
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
            Ok(pipeline)
        });
        let cancel = self.cancel.child_token();
        let (input, _) = stage::start("display decoder", "in", build, &self.tracker, cancel.clone()).await;
        tracing::info!(%codec, decoder = element, "display: showing the talker's camera");
        if let Some(old) = lock(&self.decoding).replace(Decoding { codec, element, input, cancel }) {
            old.cancel.cancel();
        }
        Ok(())
    }

    /// One encoded picture from the talker, for the decoder [`Display::begin`] started.
    pub fn push(&self, codec: Codec, frame: Bytes) {
        self.shared.counters.received.fetch_add(1, Ordering::Relaxed);
        let input = lock(&self.decoding).as_ref().filter(|d| d.codec == codec).map(|d| d.input.clone());
        if let Some(src) = input.and_then(|i| i.get()) {
            let _ = src.push_buffer(gst::Buffer::from_slice(frame));
        }
    }

    /// The talker stopped sharing: its decoder stops and the idle picture returns.
    pub fn stop(&self) {
        if let Some(old) = lock(&self.decoding).take() {
            old.cancel.cancel();
        }
        *lock(&self.shared.last_frame) = None;
    }

    pub fn status(&self) -> DisplayStatus {
        let decoding = lock(&self.decoding);
        let c = &self.shared.counters;
        DisplayStatus {
            sink: self.label.clone(),
            output: self.output_state.borrow().clone(),
            codec: decoding.as_ref().map(|d| d.codec),
            decoder: decoding.as_ref().map(|d| d.element.to_owned()),
            frames_received: c.received.load(Ordering::Relaxed),
            frames_shown: c.shown.load(Ordering::Relaxed),
            idle_frames_shown: c.idle_shown.load(Ordering::Relaxed),
            size: lock(&self.shared.size).clone(),
            idle: is_idle(&self.shared),
        }
    }
}

fn is_idle(shared: &Shared) -> bool {
    lock(&shared.last_frame).is_none_or(|t| t.elapsed() >= IDLE_AFTER)
}

fn on_decoded(shared: &Shared, sample: &gst::Sample) {
    if let Some(s) = sample.caps().and_then(|c| c.structure(0)) {
        let (w, h) = (s.get::<i32>("width").unwrap_or(0), s.get::<i32>("height").unwrap_or(0));
        let size = format!("{w}x{h}");
        let mut known = lock(&shared.size);
        if known.as_deref() != Some(size.as_str()) {
            *known = Some(size);
        }
    }
    *lock(&shared.last_frame) = Some(Instant::now());
    if show(&shared.output, sample) {
        shared.counters.shown.fetch_add(1, Ordering::Relaxed);
    }
}

/// Pushes a decoded picture (or the idle one) into the output; whether it went in.
fn show(output: &Input, sample: &gst::Sample) -> bool {
    let (Some(src), Some(buffer), Some(caps)) = (output.get(), sample.buffer(), sample.caps()) else {
        return false;
    };
    if src.caps().as_ref() != Some(&caps.to_owned()) {
        src.set_caps(Some(&caps.to_owned()));
    }
    // A shallow copy (the pixels are shared) whose time the output stamps on arrival.
    let mut buffer = buffer.copy();
    {
        let buffer = buffer.make_mut();
        buffer.set_pts(gst::ClockTime::NONE);
        buffer.set_dts(gst::ClockTime::NONE);
    }
    src.push_buffer(buffer).is_ok()
}

async fn show_idle(shared: Arc<Shared>, idle: gst::Sample, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(IDLE_EVERY);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if is_idle(&shared) && show(&shared.output, &idle) {
            shared.counters.idle_shown.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Draws the idle picture once: a dark, even background with the robot's name and
/// address (plain when `textoverlay` is missing).
fn render_idle(text: &str) -> Result<gst::Sample, MediaError> {
    let overlay = if has("textoverlay") {
        let text = text.replace(['"', '\\'], "");
        format!("textoverlay text=\"{text}\" valignment=center halignment=center font-desc=\"Sans 24\" ! ")
    } else {
        String::new()
    };
    let description = format!(
        "videotestsrc num-buffers=1 pattern=solid-color foreground-color=0xff1b2430 ! \
         video/x-raw,format=I420,width=640,height=360,framerate=1/1 ! {overlay}videoconvert ! \
         video/x-raw,format=I420 ! appsink name=idle sync=false"
    );
    let pipeline = stage::launch(&description)?;
    let sink = stage::appsink(&pipeline, "idle")?;
    pipeline.set_state(gst::State::Playing).map_err(|e| MediaError::Runtime(format!("idle picture: {e}")))?;
    let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(5));
    let _ = pipeline.set_state(gst::State::Null);
    sample.ok_or_else(|| MediaError::Runtime("the idle picture was not drawn".into()))
}

/// The text of the idle picture: the robot's name and the address of its page.
pub fn idle_text(listen: std::net::SocketAddr) -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string(Path::new("/etc/hostname")))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "robot".into());
    let host = if listen.ip().is_unspecified() {
        primary_address().unwrap_or_else(|| name.clone())
    } else {
        listen.ip().to_string()
    };
    format!("{name}\nhttp://{host}:{}/", listen.port())
}

/// The address other machines reach this one at (the source address of the default
/// route; nothing is sent).
fn primary_address() -> Option<String> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
}
