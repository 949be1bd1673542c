//! Building and supervising the capture pipelines.
//!
//! One supervisor task per track (video, audio) owns its GStreamer pipeline: it builds it
//! (on a blocking thread: device and encoder probes take time), plays it, watches the bus,
//! forwards throttled key frame requests to the encoder, opens the VP8 branch only while
//! VP8 viewers exist, and rebuilds the pipeline a few seconds after any error, end of
//! stream or stall. The [`Feed`]s outlive every rebuild, so connected viewers resume on the
//! same connection when a camera comes back.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::encoder::{self, EncodeParams};
use super::source::{AudioSource, Geometry, Output, VideoSource};
use super::{Codec, EncodedFrame, Feed, MediaError, clockstamp};
use crate::config::Config;

/// Wait between a failure and the next attempt.
pub const RETRY_DELAY: Duration = Duration::from_secs(2);
/// At most one forced key frame per feed in this interval ("about one a second");
/// requests in between are coalesced into one at the end of the interval.
pub const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(800);
/// A running pipeline that produced nothing for this long is rebuilt.
const STALL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PipelineState {
    Starting,
    Running,
    Retrying,
    Disabled,
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
    pub error: Option<String>,
    pub restarts: u64,
}

impl PipelineStatus {
    fn new(kind: &'static str, source: &str) -> PipelineStatus {
        PipelineStatus {
            kind,
            source: source.into(),
            encoder: None,
            hardware: false,
            passthrough: false,
            caps: None,
            state: PipelineState::Starting,
            error: None,
            restarts: 0,
        }
    }
}

/// The feeds viewers subscribe to, and the status of the pipelines behind them.
#[derive(Clone)]
pub struct MediaHub {
    pub h264: Option<Arc<Feed>>,
    pub vp8: Option<Arc<Feed>>,
    pub audio: Option<Arc<Feed>>,
    status: Vec<watch::Receiver<PipelineStatus>>,
}

impl MediaHub {
    /// Starts the supervisors; they run until `cancel`.
    pub fn start(config: &Config, cancel: CancellationToken) -> Result<MediaHub, MediaError> {
        super::init()?;
        let video = VideoSource::parse(&config.video)?;
        let audio = AudioSource::parse(&config.audio)?;
        let mut hub = MediaHub {
            h264: None,
            vp8: None,
            audio: None,
            status: Vec::new(),
        };
        if video != VideoSource::None {
            let (h264, vp8) = (Feed::new(Codec::H264), Feed::new(Codec::Vp8));
            let recipe = Recipe::Video {
                source: video,
                config: config.clone(),
                h264: h264.clone(),
                vp8: vp8.clone(),
            };
            hub.status
                .push(spawn_supervisor(recipe, &config.video, cancel.clone()));
            (hub.h264, hub.vp8) = (Some(h264), Some(vp8));
        }
        if audio != AudioSource::None {
            let feed = Feed::new(Codec::Opus);
            let recipe = Recipe::Audio {
                source: audio,
                bitrate_kbps: config.audio_bitrate_kbps,
                feed: feed.clone(),
            };
            hub.status
                .push(spawn_supervisor(recipe, &config.audio, cancel));
            hub.audio = Some(feed);
        }
        Ok(hub)
    }

    /// The status of the `video` or `audio` pipeline and its every change.
    pub fn watch_status(&self, kind: &str) -> Option<watch::Receiver<PipelineStatus>> {
        self.status
            .iter()
            .find(|rx| rx.borrow().kind == kind)
            .cloned()
    }

    pub fn status(&self) -> Vec<PipelineStatus> {
        self.status.iter().map(|rx| rx.borrow().clone()).collect()
    }

    /// Resolves once every pipeline has left `Starting` (running, or failed and retrying).
    pub async fn settled(&self) {
        for rx in &self.status {
            let mut rx = rx.clone();
            let _ = rx.wait_for(|s| s.state != PipelineState::Starting).await;
        }
    }
}

/// How to build one pipeline; kept so the supervisor can rebuild it.
enum Recipe {
    Video {
        source: VideoSource,
        config: Config,
        h264: Arc<Feed>,
        vp8: Arc<Feed>,
    },
    Audio {
        source: AudioSource,
        bitrate_kbps: u32,
        feed: Arc<Feed>,
    },
}

/// A built pipeline with the parts the supervisor drives.
struct Built {
    pipeline: gst::Pipeline,
    /// Appsinks with their feeds; key frame requests go upstream from each appsink.
    sinks: Vec<(gst_app::AppSink, Arc<Feed>)>,
    /// The VP8 branch's valve, opened while VP8 viewers exist.
    vp8_valve: Option<gst::Element>,
    status: PipelineStatus,
}

fn spawn_supervisor(
    recipe: Recipe,
    source: &str,
    cancel: CancellationToken,
) -> watch::Receiver<PipelineStatus> {
    let kind = match recipe {
        Recipe::Video { .. } => "video",
        Recipe::Audio { .. } => "audio",
    };
    let (tx, rx) = watch::channel(PipelineStatus::new(kind, source));
    tokio::spawn(supervise(Arc::new(recipe), tx, cancel));
    rx
}

async fn supervise(
    recipe: Arc<Recipe>,
    status: watch::Sender<PipelineStatus>,
    cancel: CancellationToken,
) {
    let mut restarts = 0;
    loop {
        let built = {
            let recipe = Arc::clone(&recipe);
            tokio::task::spawn_blocking(move || build(&recipe)).await
        };
        let error = match built {
            Ok(Ok(built)) => {
                let kind = built.status.kind;
                let error = run(built, restarts, &status, &cancel).await;
                if cancel.is_cancelled() {
                    status.send_modify(|s| s.state = PipelineState::Stopped);
                    return;
                }
                tracing::warn!(kind, %error, "pipeline stopped; rebuilding in {:?}", RETRY_DELAY);
                error
            }
            Ok(Err(error)) => {
                tracing::warn!(kind = status.borrow().kind, %error, "cannot start pipeline; retrying in {:?}", RETRY_DELAY);
                error
            }
            Err(join) => MediaError::Runtime(format!("pipeline builder panicked: {join}")),
        };
        restarts += 1;
        status.send_modify(|s| {
            s.state = PipelineState::Retrying;
            s.error = Some(error.to_string());
            s.restarts = restarts;
        });
        tokio::select! {
            _ = cancel.cancelled() => {
                status.send_modify(|s| s.state = PipelineState::Stopped);
                return;
            }
            _ = tokio::time::sleep(RETRY_DELAY) => {}
        }
    }
}

fn build(recipe: &Recipe) -> Result<Built, MediaError> {
    match recipe {
        Recipe::Video {
            source,
            config,
            h264,
            vp8,
        } => build_video(source, config, h264, vp8),
        Recipe::Audio {
            source,
            bitrate_kbps,
            feed,
        } => build_audio(source, *bitrate_kbps, feed),
    }
}

/// Parses a description into a pipeline, with an error that shows the description.
fn launch(description: &str) -> Result<gst::Pipeline, MediaError> {
    let build_error = |message: String| MediaError::Build {
        description: description.into(),
        message,
    };
    gst::parse::launch(description)
        .map_err(|e| build_error(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| build_error("not a pipeline".into()))
}

fn by_name(pipeline: &gst::Pipeline, name: &str) -> Result<gst::Element, MediaError> {
    pipeline
        .by_name(name)
        .ok_or_else(|| MediaError::Runtime(format!("element `{name}` missing from the pipeline")))
}

fn appsink(
    pipeline: &gst::Pipeline,
    name: &str,
    feed: &Arc<Feed>,
    default: Duration,
) -> Result<gst_app::AppSink, MediaError> {
    let sink = by_name(pipeline, name)?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| MediaError::Runtime(format!("`{name}` is not an appsink")))?;
    let feed = Arc::clone(feed);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer_owned().ok_or(gst::FlowError::Error)?;
                let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                let duration = buffer.duration().map(Duration::from).unwrap_or(default);
                let map = buffer
                    .into_mapped_buffer_readable()
                    .map_err(|_| gst::FlowError::Error)?;
                feed.publish(EncodedFrame {
                    data: Bytes::from_owner(map),
                    duration,
                    keyframe,
                });
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(sink)
}

/// Every appsink: no clock sync (frames leave as soon as they are encoded).
const SINK: &str = "appsink sync=false async=false max-buffers=4 drop=true";
/// A one-frame leaky queue: a slow branch drops pictures instead of stalling the source.
const LEAKY: &str = "queue max-size-buffers=1 max-size-bytes=0 max-size-time=0 leaky=downstream";
const H264_OUT: &str =
    "h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au";

fn build_video(
    source: &VideoSource,
    config: &Config,
    h264: &Arc<Feed>,
    vp8: &Arc<Feed>,
) -> Result<Built, MediaError> {
    let geometry = Geometry {
        width: config.width,
        height: config.height,
        fps: config.fps,
    };
    let Some(chain) = source.chain(geometry)? else {
        return Err(MediaError::Runtime("video is disabled".into()));
    };
    let params = EncodeParams {
        width: config.width,
        height: config.height,
        fps: config.fps,
        bitrate_kbps: config.bitrate_kbps,
    };
    let vp8_spec = encoder::choose(Codec::Vp8, "auto").ok();
    let vp8_enc = vp8_spec.map(|s| format!("{} name=vp8enc ! {}", s.element, s.caps));
    let mut status = PipelineStatus::new("video", &chain.label);
    let mut h264_spec = None;
    let description = match chain.output {
        Output::Raw => {
            let spec = encoder::choose(Codec::H264, &config.encoder)?;
            h264_spec = Some(spec);
            status.encoder = Some(spec.element.into());
            status.hardware = spec.hardware;
            let stamp = if chain.stamp {
                " ! identity name=stamp"
            } else {
                ""
            };
            let vp8_branch = vp8_enc
                .map(|enc| format!(" t. ! {LEAKY} ! valve name=vp8valve drop=true drop-mode=forward-sticky-events ! {enc} ! {SINK} name=vp8"))
                .unwrap_or_default();
            format!(
                "{}{stamp} ! tee name=t t. ! {LEAKY} ! {} name=enc ! {} ! {H264_OUT} ! {SINK} name=h264{vp8_branch}",
                chain.description, spec.element, spec.caps
            )
        }
        Output::H264 => {
            status.encoder = Some("passthrough".into());
            status.passthrough = true;
            let vp8_branch = vp8_enc
                .map(|enc| {
                    format!(" t. ! {LEAKY} ! valve name=vp8valve drop=true drop-mode=forward-sticky-events ! avdec_h264 ! videoconvert ! {enc} ! {SINK} name=vp8")
                })
                .unwrap_or_default();
            format!(
                "{} ! {H264_OUT} ! tee name=t t. ! queue ! {SINK} name=h264{vp8_branch}",
                chain.description
            )
        }
    };
    tracing::debug!(%description, "video pipeline");
    let pipeline = launch(&description)?;
    if let (Ok(enc), Some(spec)) = (by_name(&pipeline, "enc"), h264_spec) {
        (spec.configure)(&enc, &params);
    }
    if let (Ok(enc), Some(spec)) = (by_name(&pipeline, "vp8enc"), vp8_spec) {
        (spec.configure)(&enc, &params);
    }
    if chain.stamp {
        let pad = by_name(&pipeline, "stamp")?.static_pad("src");
        if let Some(pad) = pad {
            clockstamp::attach(&pad, config.width, config.height)
                .map_err(|e| MediaError::Runtime(format!("cannot attach clock stamp: {e}")))?;
        }
    }
    let frame = Duration::from_secs(1) / config.fps.max(1);
    let mut sinks = vec![(appsink(&pipeline, "h264", h264, frame)?, Arc::clone(h264))];
    if vp8_spec.is_some() {
        sinks.push((appsink(&pipeline, "vp8", vp8, frame)?, Arc::clone(vp8)));
    }
    let vp8_valve = by_name(&pipeline, "vp8valve").ok();
    Ok(Built {
        pipeline,
        sinks,
        vp8_valve,
        status,
    })
}

fn build_audio(
    source: &AudioSource,
    bitrate_kbps: u32,
    feed: &Arc<Feed>,
) -> Result<Built, MediaError> {
    let Some((label, chain)) = source.chain() else {
        return Err(MediaError::Runtime("audio is disabled".into()));
    };
    let description = format!(
        "{chain} ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 ! \
         opusenc name=enc bitrate={} frame-size=20 ! {SINK} name=opus",
        bitrate_kbps * 1000
    );
    let pipeline = launch(&description)?;
    let sinks = vec![(
        appsink(&pipeline, "opus", feed, Duration::from_millis(20))?,
        Arc::clone(feed),
    )];
    let mut status = PipelineStatus::new("audio", &label);
    status.encoder = Some("opusenc".into());
    Ok(Built {
        pipeline,
        sinks,
        vp8_valve: None,
        status,
    })
}

/// Plays a built pipeline until it fails, ends, stalls or `cancel`; always leaves it `Null`.
async fn run(
    built: Built,
    restarts: u64,
    status: &watch::Sender<PipelineStatus>,
    cancel: &CancellationToken,
) -> MediaError {
    let Built {
        pipeline,
        sinks,
        vp8_valve,
        status: fresh,
    } = built;
    status.send_replace(PipelineStatus { restarts, ..fresh });
    // Also on cancellation mid-await (runtime shutdown): never dispose a playing pipeline.
    let _null_on_drop = NullOnDrop(pipeline.clone());
    let error = play(&pipeline, &sinks, vp8_valve.as_ref(), status, cancel).await;
    let stopping = pipeline.clone();
    // Setting a V4L2 device to Null can block; never on a runtime thread.
    let _ = tokio::task::spawn_blocking(move || stopping.set_state(gst::State::Null)).await;
    error
}

async fn play(
    pipeline: &gst::Pipeline,
    sinks: &[(gst_app::AppSink, Arc<Feed>)],
    vp8_valve: Option<&gst::Element>,
    status: &watch::Sender<PipelineStatus>,
    cancel: &CancellationToken,
) -> MediaError {
    let Some(bus) = pipeline.bus() else {
        return MediaError::Runtime("pipeline has no bus".into());
    };
    let mut messages = bus.stream();
    let playing = pipeline.clone();
    match tokio::task::spawn_blocking(move || playing.set_state(gst::State::Playing)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) | Err(_) => {
            return bus_error(&bus)
                .unwrap_or_else(|| MediaError::Runtime("cannot start playing".into()));
        }
    }
    let mut keyframes: Vec<KeyframeThrottle> =
        sinks.iter().map(|_| KeyframeThrottle::default()).collect();
    let mut vp8_viewers = sinks
        .iter()
        .find(|(_, f)| f.codec() == Codec::Vp8)
        .map(|(_, f)| f.subscribers());
    // Viewers may have subscribed before this (re)build: start from their current count.
    if let (Some(valve), Some(viewers)) = (vp8_valve, vp8_viewers.as_mut()) {
        valve.set_property("drop", *viewers.borrow_and_update() == 0);
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_frames = frame_count(sinks);
    let mut last_progress = Instant::now();
    loop {
        let next_pending = keyframes.iter().filter_map(|k| k.pending_at()).min();
        tokio::select! {
            _ = cancel.cancelled() => return MediaError::Runtime("shutting down".into()),
            msg = messages.next() => match msg {
                None => return MediaError::Runtime("bus closed".into()),
                Some(msg) => if let Some(error) = on_message(&msg, pipeline, status) { return error },
            },
            index = keyframe_request(sinks) => {
                if keyframes[index].request() {
                    force_keyframe(&sinks[index].0);
                }
            }
            _ = sleep_until(next_pending) => {
                for (throttle, (sink, _)) in keyframes.iter_mut().zip(sinks) {
                    if throttle.fire_pending() {
                        force_keyframe(sink);
                    }
                }
            }
            Some(viewers) = watch_changed(&mut vp8_viewers) => {
                if let Some(valve) = vp8_valve {
                    valve.set_property("drop", viewers == 0);
                    tracing::info!(viewers, "VP8 branch {}", if viewers == 0 { "closed" } else { "open" });
                }
            }
            _ = tick.tick() => {
                let frames = frame_count(sinks);
                if frames != last_frames {
                    (last_frames, last_progress) = (frames, Instant::now());
                    if status.borrow().caps.is_none() {
                        let caps = sinks[0].0.static_pad("sink").and_then(|p| p.current_caps()).map(|c| c.to_string());
                        status.send_modify(|s| s.caps = caps);
                    }
                } else if last_progress.elapsed() > STALL_TIMEOUT && status.borrow().state == PipelineState::Running {
                    return MediaError::Runtime(format!("no frames for {} s (device gone?)", STALL_TIMEOUT.as_secs()));
                }
            }
        }
    }
}

fn frame_count(sinks: &[(gst_app::AppSink, Arc<Feed>)]) -> u64 {
    sinks.first().map_or(0, |(_, f)| {
        f.stats.frames.load(std::sync::atomic::Ordering::Relaxed)
    })
}

/// Handles a bus message; returns the error that ends this run, if any.
fn on_message(
    msg: &gst::Message,
    pipeline: &gst::Pipeline,
    status: &watch::Sender<PipelineStatus>,
) -> Option<MediaError> {
    use gst::MessageView;
    match msg.view() {
        MessageView::Error(err) => Some(MediaError::Runtime(format!(
            "{} (from {})",
            err.error(),
            err.src()
                .map(|s| s.path_string().to_string())
                .unwrap_or_default()
        ))),
        MessageView::Eos(_) => Some(MediaError::Runtime("the source ended".into())),
        MessageView::Warning(w) => {
            tracing::warn!(kind = status.borrow().kind, warning = %w.error(), "GStreamer warning");
            None
        }
        MessageView::StateChanged(change)
            if change.src() == Some(pipeline.upcast_ref())
                && change.current() == gst::State::Playing =>
        {
            let s = status.borrow().clone();
            tracing::info!(kind = s.kind, source = %s.source, encoder = ?s.encoder, hardware = s.hardware, "pipeline running");
            status.send_modify(|s| {
                s.state = PipelineState::Running;
                s.error = None;
            });
            None
        }
        _ => None,
    }
}

fn bus_error(bus: &gst::Bus) -> Option<MediaError> {
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_mseconds(100),
        &[gst::MessageType::Error],
    )?;
    match msg.view() {
        gst::MessageView::Error(err) => Some(MediaError::Runtime(err.error().to_string())),
        _ => None,
    }
}

/// Waits for any feed's key frame request and says which.
async fn keyframe_request(sinks: &[(gst_app::AppSink, Arc<Feed>)]) -> usize {
    let waits = sinks.iter().enumerate().map(|(i, (_, feed))| {
        Box::pin(async move {
            feed.keyframe_wanted().await;
            i
        })
    });
    futures_util::future::select_all(waits).await.0
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn watch_changed(rx: &mut Option<watch::Receiver<usize>>) -> Option<usize> {
    match rx {
        Some(rx) => {
            rx.changed().await.ok()?;
            Some(*rx.borrow_and_update())
        }
        None => std::future::pending().await,
    }
}

/// Sends a force-key-unit event upstream from the appsink to the encoder (or camera).
fn force_keyframe(sink: &gst_app::AppSink) {
    let event = gst_video::UpstreamForceKeyUnitEvent::builder()
        .all_headers(true)
        .build();
    if !sink.send_event(event) {
        tracing::debug!(sink = %sink.name(), "key frame request not handled upstream");
    }
}

/// Allows one key frame per [`KEYFRAME_MIN_INTERVAL`], coalescing the rest into one.
#[derive(Default)]
struct KeyframeThrottle {
    last: Option<Instant>,
    pending: bool,
}

impl KeyframeThrottle {
    /// A request arrived: true if it may be sent now, else it is kept pending.
    fn request(&mut self) -> bool {
        if self
            .last
            .is_some_and(|t| t.elapsed() < KEYFRAME_MIN_INTERVAL)
        {
            self.pending = true;
            return false;
        }
        self.last = Some(Instant::now());
        true
    }

    fn pending_at(&self) -> Option<Instant> {
        self.pending.then(|| {
            self.last
                .map_or_else(Instant::now, |t| t + KEYFRAME_MIN_INTERVAL)
        })
    }

    fn fire_pending(&mut self) -> bool {
        if self.pending_at().is_some_and(|at| at <= Instant::now()) {
            self.pending = false;
            self.last = Some(Instant::now());
            return true;
        }
        false
    }
}

/// Sets a pipeline to `Null` when dropped, whatever ended its run.
struct NullOnDrop(gst::Pipeline);

impl Drop for NullOnDrop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}
