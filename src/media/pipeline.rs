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

use futures_util::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::build::{Built, SOURCE_ENDED, build};
use super::keyframe::{KeyframeThrottle, force_keyframe, keyframe_request};
use super::meter::Meter;
use super::source::{AudioSource, VideoSource};
use super::{Codec, Feed, MediaError};
use crate::config::Config;

/// Wait between a failure and the next attempt.
pub const RETRY_DELAY: Duration = Duration::from_secs(2);

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
    pub error: Option<String>,
    pub restarts: u64,
    /// Measured over the last second, from the first (H.264 or Opus) feed.
    pub fps: f64,
    pub kbps: f64,
}

impl PipelineStatus {
    pub(super) fn new(kind: &'static str, source: &str) -> PipelineStatus {
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
            fps: 0.0,
            kbps: 0.0,
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
        let mut hub = MediaHub { h264: None, vp8: None, audio: None, status: Vec::new() };
        if video != VideoSource::None {
            let (h264, vp8) = (Feed::new(Codec::H264), Feed::new(Codec::Vp8));
            let recipe =
                Recipe::Video { source: video, config: config.clone(), h264: h264.clone(), vp8: vp8.clone() };
            hub.status.push(spawn_supervisor(recipe, &config.video, cancel.clone()));
            (hub.h264, hub.vp8) = (Some(h264), Some(vp8));
        }
        if audio != AudioSource::None {
            let feed = Feed::new(Codec::Opus);
            let recipe =
                Recipe::Audio { source: audio, bitrate_kbps: config.audio_bitrate_kbps, feed: feed.clone() };
            hub.status.push(spawn_supervisor(recipe, &config.audio, cancel));
            hub.audio = Some(feed);
        }
        Ok(hub)
    }

    /// The status of the `video` or `audio` pipeline and its every change.
    pub fn watch_status(&self, kind: &str) -> Option<watch::Receiver<PipelineStatus>> {
        self.status.iter().find(|rx| rx.borrow().kind == kind).cloned()
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
pub(super) enum Recipe {
    Video { source: VideoSource, config: Config, h264: Arc<Feed>, vp8: Arc<Feed> },
    Audio { source: AudioSource, bitrate_kbps: u32, feed: Arc<Feed> },
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

async fn supervise(recipe: Arc<Recipe>, status: watch::Sender<PipelineStatus>, cancel: CancellationToken) {
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

/// Plays a built pipeline until it fails, ends, stalls or `cancel`; always leaves it `Null`.
async fn run(
    built: Built,
    restarts: u64,
    status: &watch::Sender<PipelineStatus>,
    cancel: &CancellationToken,
) -> MediaError {
    let Built { pipeline, sinks, vp8_valve, status: fresh } = built;
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
            return bus_error(&bus).unwrap_or_else(|| MediaError::Runtime("cannot start playing".into()));
        }
    }
    let mut keyframes: Vec<KeyframeThrottle> = sinks.iter().map(|_| KeyframeThrottle::default()).collect();
    let mut vp8_viewers = sinks.iter().find(|(_, f)| f.codec() == Codec::Vp8).map(|(_, f)| f.subscribers());
    // Viewers may have subscribed before this (re)build: start from their current count.
    if let (Some(valve), Some(viewers)) = (vp8_valve, vp8_viewers.as_mut()) {
        valve.set_property("drop", *viewers.borrow_and_update() == 0);
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut meter = Meter::new(sinks);
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
                if let Err(stalled) = meter.tick(sinks, status) {
                    return stalled;
                }
            }
        }
    }
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
            err.src().map(|s| s.path_string().to_string()).unwrap_or_default()
        ))),
        // Each appsink reports its own end of stream (see `build::appsink`); the
        // pipeline's EOS would come only after all of them.
        MessageView::Application(a) if a.structure().is_some_and(|s| s.name() == SOURCE_ENDED) => {
            Some(MediaError::Runtime("the source ended".into()))
        }
        MessageView::Warning(w) => {
            tracing::warn!(kind = status.borrow().kind, warning = %w.error(), "GStreamer warning");
            None
        }
        MessageView::StateChanged(change)
            if change.src() == Some(pipeline.upcast_ref()) && change.current() == gst::State::Playing =>
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
    let msg = bus.timed_pop_filtered(gst::ClockTime::from_mseconds(100), &[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(err) => Some(MediaError::Runtime(err.error().to_string())),
        _ => None,
    }
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

/// Sets a pipeline to `Null` when dropped, whatever ended its run.
struct NullOnDrop(gst::Pipeline);

impl Drop for NullOnDrop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}
