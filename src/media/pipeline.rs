//! Building and supervising the capture pipelines.
//!
//! One supervisor task per track (video, audio) owns its GStreamer pipeline: it builds it
//! (on a blocking thread: device and encoder probes take time), plays it, watches the bus,
//! forwards throttled key frame requests to the encoder, opens the VP8 branch and the
//! lower tiers only while viewers are on them, and rebuilds the pipeline a few seconds
//! after any error, end of stream or stall. The [`Feed`]s outlive every rebuild, so connected viewers resume on the
//! same connection when a camera comes back.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::build::{Built, SOURCE_ENDED, build, low_tier_size};
use super::encoder;
use super::failures::{Failures, Note};
use super::keyframe::{KeyframeThrottle, force_keyframe, keyframe_request};
use super::meter::Meter;
use super::rate::{self, FollowingEncoder};
use super::source::{AudioSource, VideoSource};
use super::status::{PipelineState, PipelineStatus};
use super::tiers::{Planner, Tiers};
use super::{Codec, Feed, MediaError};
use crate::config::Config;

/// Wait between a failure and the next attempt.
pub const RETRY_DELAY: Duration = Duration::from_secs(2);

/// A source that has run this long without a stall counts as recovered (logged once).
const STABLE_AFTER: Duration = Duration::from_secs(3);

/// Runs GStreamer work that may block (state changes, probes, device opening, bus waits)
/// on tokio's blocking pool, never on the async runtime's worker threads.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, MediaError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| MediaError::Runtime(format!("GStreamer call panicked: {e}")))
}

/// The feeds viewers subscribe to, and the status of the pipelines behind them.
#[derive(Clone)]
pub struct MediaHub {
    /// The top tier's H.264 (the configured size), which every H.264 viewer starts on.
    pub h264: Option<Arc<Feed>>,
    /// The H.264 tiers: the top one and, with `tiers = 2`, the half-size one.
    pub h264_tiers: Option<Arc<Tiers>>,
    /// The top tier's VP8, for browsers without H.264; `None` when there is no video or
    /// this machine has no VP8 encoder.
    pub vp8: Option<Arc<Feed>>,
    /// The VP8 tiers, as the H.264 ones.
    pub vp8_tiers: Option<Arc<Tiers>>,
    pub audio: Option<Arc<Feed>>,
    /// The talker's speaker and display.
    pub playout: super::Playout,
    status: Vec<watch::Receiver<PipelineStatus>>,
    supervisors: TaskTracker,
}

impl MediaHub {
    /// Starts the supervisors; they run until `cancel`, then stop their pipelines
    /// ([`MediaHub::stopped`] waits for that).
    pub async fn start(config: &Config, cancel: CancellationToken) -> Result<MediaHub, MediaError> {
        let video = VideoSource::parse(&config.video)?;
        let audio = AudioSource::parse(&config.audio)?;
        // The first init scans GStreamer's plugin registry (seconds with a cold cache) and
        // the VP8 probe encodes a few frames: both block.
        let has_vp8 = video != VideoSource::None;
        let vp8 = blocking(move || {
            super::init()?;
            Ok::<_, MediaError>(has_vp8 && encoder::choose(Codec::Vp8, "auto").is_ok())
        })
        .await??;
        let supervisors = TaskTracker::new();
        // Playout first: the echo canceller in the microphone's pipeline needs the
        // speaker's probe to exist when it starts.
        let playout =
            super::Playout::start(config, audio != AudioSource::None, &supervisors, cancel.clone()).await?;
        let echo_cancel = playout.echo_cancel();
        let mut hub = MediaHub {
            h264: None,
            h264_tiers: None,
            vp8: None,
            vp8_tiers: None,
            audio: None,
            playout,
            status: Vec::new(),
            supervisors,
        };
        if video != VideoSource::None {
            let (half_width, half_height) = low_tier_size((config.width, config.height));
            let lower = config.tiers > 1 && half_width >= 32 && half_height >= 32;
            let tiers = |codec| {
                let top = Feed::new(codec);
                (Arc::clone(&top), Tiers::new(top, lower.then(|| Feed::new(codec))))
            };
            let (h264, h264_tiers) = tiers(Codec::H264);
            let (vp8, vp8_tiers) = vp8.then(|| tiers(Codec::Vp8)).unzip();
            let recipe = Recipe::Video {
                source: video,
                config: Box::new(config.clone()),
                h264: Arc::clone(&h264_tiers),
                vp8: vp8_tiers.clone(),
            };
            hub.status.push(hub.spawn_supervisor(recipe, &config.video, cancel.clone()));
            (hub.h264, hub.h264_tiers, hub.vp8, hub.vp8_tiers) =
                (Some(h264), Some(h264_tiers), vp8, vp8_tiers);
        }
        if audio != AudioSource::None {
            let feed = Feed::new(Codec::Opus);
            let recipe = Recipe::Audio {
                source: audio,
                bitrate_kbps: config.audio_bitrate_kbps,
                feed: feed.clone(),
                echo_cancel,
            };
            hub.status.push(hub.spawn_supervisor(recipe, &config.audio, cancel));
            hub.audio = Some(feed);
        }
        hub.supervisors.close();
        Ok(hub)
    }

    fn spawn_supervisor(
        &self,
        recipe: Recipe,
        source: &str,
        cancel: CancellationToken,
    ) -> watch::Receiver<PipelineStatus> {
        let kind = match recipe {
            Recipe::Video { .. } => "video",
            Recipe::Audio { .. } => "audio",
        };
        let (tx, rx) = watch::channel(PipelineStatus::new(kind, source));
        self.supervisors.spawn(supervise(Arc::new(recipe), tx, cancel));
        rx
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

    /// Resolves when every supervisor has stopped its pipeline (after the `cancel` given
    /// to [`MediaHub::start`]).
    pub async fn stopped(&self) {
        self.supervisors.wait().await;
    }
}

/// How to build one pipeline; kept so the supervisor can rebuild it.
pub(super) enum Recipe {
    Video { source: VideoSource, config: Box<Config>, h264: Arc<Tiers>, vp8: Option<Arc<Tiers>> },
    Audio { source: AudioSource, bitrate_kbps: u32, feed: Arc<Feed>, echo_cancel: bool },
}

async fn supervise(recipe: Arc<Recipe>, status: watch::Sender<PipelineStatus>, cancel: CancellationToken) {
    let mut restarts = 0;
    let mut failures = Failures::default();
    loop {
        let built = {
            let recipe = Arc::clone(&recipe);
            blocking(move || build(&recipe)).await.and_then(|built| built)
        };
        let error = match built {
            Ok(built) => run(built, restarts, &status, &cancel, &mut failures).await,
            Err(error) => error,
        };
        if cancel.is_cancelled() {
            status.send_modify(|s| s.state = PipelineState::Stopped);
            return;
        }
        restarts += 1;
        let note = failures.failed(&error.to_string(), Instant::now().into_std());
        status.send_modify(|s| s.failed(&error, restarts));
        log_failure(&status.borrow(), Some(&error), note);
        tokio::select! {
            _ = cancel.cancelled() => {
                status.send_modify(|s| s.state = PipelineState::Stopped);
                return;
            }
            _ = tokio::time::sleep(RETRY_DELAY) => {}
        }
    }
}

/// The log lines of a failing source: when it starts, changes, lasts, and ends.
fn log_failure(status: &PipelineStatus, error: Option<&MediaError>, note: Note) {
    let (kind, source) = (status.kind, status.source.as_str());
    let error = error.map(ToString::to_string).unwrap_or_default();
    let hint = status.hint.clone().unwrap_or_default();
    match note {
        Note::Started => {
            tracing::warn!(kind, source, %error, %hint, "{kind} source is down; retrying every {} s", RETRY_DELAY.as_secs())
        }
        Note::Changed => {
            tracing::warn!(kind, source, %error, %hint, "{kind} source is still down, now for this reason")
        }
        Note::Reminder { attempts, lasting } => tracing::warn!(
            kind, source, %error, %hint, attempts, "{kind} source is still down after {} min", lasting.as_secs() / 60
        ),
        Note::Quiet => tracing::debug!(kind, source, %error, "retry failed"),
        Note::Ended { attempts, lasting } => {
            tracing::info!(kind, source, attempts, "{kind} source is back after {} s", lasting.as_secs())
        }
    }
}

/// Plays a built pipeline until it fails, ends, stalls or `cancel`; always leaves it `Null`.
async fn run(
    built: Built,
    restarts: u64,
    status: &watch::Sender<PipelineStatus>,
    cancel: &CancellationToken,
    failures: &mut Failures,
) -> MediaError {
    let Built { pipeline, sinks, valves, mut planners, mut encoders, status: fresh } = built;
    status.send_replace(PipelineStatus { restarts, ..fresh });
    // Also on cancellation mid-await (runtime shutdown): never dispose a playing pipeline.
    let _null_on_drop = NullOnDrop(Some(pipeline.clone()));
    let mut parts =
        Parts { sinks: &sinks, valves: &valves, planners: &mut planners, encoders: &mut encoders };
    let error = play(&pipeline, &mut parts, status, cancel, failures).await;
    let stopping = pipeline.clone();
    // Setting a V4L2 device to Null can block.
    let _ = blocking(move || stopping.set_state(gst::State::Null)).await;
    error
}

/// What `play` drives besides the pipeline itself.
struct Parts<'a> {
    sinks: &'a [(gst_app::AppSink, Arc<Feed>)],
    valves: &'a [(gst::Element, Arc<Feed>, &'static str)],
    planners: &'a mut [Planner],
    encoders: &'a mut [FollowingEncoder],
}

async fn play(
    pipeline: &gst::Pipeline,
    parts: &mut Parts<'_>,
    status: &watch::Sender<PipelineStatus>,
    cancel: &CancellationToken,
    failures: &mut Failures,
) -> MediaError {
    let Some(bus) = pipeline.bus() else {
        return MediaError::Runtime("pipeline has no bus".into());
    };
    let mut messages = bus.stream();
    let playing = pipeline.clone();
    if !matches!(blocking(move || playing.set_state(gst::State::Playing)).await, Ok(Ok(_))) {
        let error = blocking(move || bus_error(&bus)).await.ok().flatten();
        return error.unwrap_or_else(|| MediaError::Runtime("cannot start playing".into()));
    }
    let sinks = parts.sinks;
    let mut keyframes: Vec<KeyframeThrottle> = sinks.iter().map(|_| KeyframeThrottle::default()).collect();
    let mut watched: Vec<watch::Receiver<usize>> =
        parts.valves.iter().map(|(_, feed, _)| feed.subscribers()).collect();
    // Viewers may have subscribed before this (re)build: start from their current count.
    for ((valve, _, _), viewers) in parts.valves.iter().zip(&mut watched) {
        valve.set_property("drop", *viewers.borrow_and_update() == 0);
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut follow = tokio::time::interval(rate::FOLLOW_EVERY);
    let mut meter = Meter::new(sinks);
    let mut running_since = None;
    loop {
        let next_pending = keyframes.iter().filter_map(|k| k.pending_at()).min();
        tokio::select! {
            _ = cancel.cancelled() => return MediaError::Runtime("shutting down".into()),
            msg = messages.next() => match msg.map(|msg| on_message(&msg, pipeline, status)) {
                None => return MediaError::Runtime("bus closed".into()),
                Some(Event::Failed(error)) => return error,
                Some(Event::Playing) => {
                    running_since = Some(Instant::now());
                    declare_latency(sinks, status).await;
                }
                Some(Event::LatencyChanged) => declare_latency(sinks, status).await,
                Some(Event::Nothing) => {}
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
            (index, viewers) = any_changed(&mut watched) => {
                let (valve, _, branch) = &parts.valves[index];
                let open = !valve.property::<bool>("drop");
                if open != (viewers > 0) {
                    valve.set_property("drop", viewers == 0);
                    tracing::info!(viewers, "{branch} {}", if viewers == 0 { "closed" } else { "open" });
                }
            }
            _ = follow.tick() => {
                for planner in parts.planners.iter_mut() {
                    planner.plan(Instant::now().into_std());
                }
                for encoder in parts.encoders.iter_mut() {
                    encoder.follow().await;
                }
                let encoders = &parts.encoders;
                status.send_if_modified(|s| {
                    let targets = encoders.iter().map(|e| e.target()).collect();
                    std::mem::replace(&mut s.targets, targets) != s.targets
                });
            }
            _ = tick.tick() => {
                if let Err(stalled) = meter.tick(sinks, status) {
                    return stalled;
                }
                if running_since.is_some_and(|t| t.elapsed() >= STABLE_AFTER)
                    && let Some(note) = failures.recovered(Instant::now().into_std())
                {
                    log_failure(&status.borrow(), None, note);
                }
            }
        }
    }
}

/// Asks the elements upstream of the first appsink what latency they declare (a latency
/// query; the appsinks do not sync to the clock, so asking the pipeline would say 0), and
/// puts it in the status.
async fn declare_latency(sinks: &[(gst_app::AppSink, Arc<Feed>)], status: &watch::Sender<PipelineStatus>) {
    let Some(pad) = sinks.first().and_then(|(sink, _)| sink.static_pad("sink")) else { return };
    let declared = blocking(move || {
        let mut query = gst::query::Latency::new();
        pad.peer_query(&mut query).then(|| query.result().1.nseconds() as f64 / 1e6)
    })
    .await
    .ok()
    .flatten();
    status.send_modify(|s| s.declared_latency_ms = declared);
}

/// What a bus message means for the run.
enum Event {
    Failed(MediaError),
    Playing,
    LatencyChanged,
    Nothing,
}

/// Reads a bus message.
fn on_message(msg: &gst::Message, pipeline: &gst::Pipeline, status: &watch::Sender<PipelineStatus>) -> Event {
    use gst::MessageView;
    match msg.view() {
        MessageView::Error(err) => Event::Failed(MediaError::Runtime(format!(
            "{} (from {})",
            err.error(),
            err.src().map(|s| s.path_string().to_string()).unwrap_or_default()
        ))),
        // Each appsink reports its own end of stream (see `build::appsink`); the
        // pipeline's EOS would come only after all of them.
        MessageView::Application(a) if a.structure().is_some_and(|s| s.name() == SOURCE_ENDED) => {
            Event::Failed(MediaError::Runtime("the source ended".into()))
        }
        MessageView::Warning(w) => {
            tracing::warn!(kind = status.borrow().kind, warning = %w.error(), "GStreamer warning");
            Event::Nothing
        }
        MessageView::Latency(_) => Event::LatencyChanged,
        MessageView::StateChanged(change)
            if change.src() == Some(pipeline.upcast_ref()) && change.current() == gst::State::Playing =>
        {
            let s = status.borrow().clone();
            tracing::info!(kind = s.kind, source = %s.source, encoder = ?s.encoder, hardware = s.hardware, "pipeline running");
            status.send_modify(|s| {
                s.state = PipelineState::Running;
                (s.error, s.hint) = (None, None);
            });
            Event::Playing
        }
        _ => Event::Nothing,
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

/// The first of `watched` that changes: its index and new value. Pending forever when
/// there is none (or all their senders are gone).
async fn any_changed(watched: &mut [watch::Receiver<usize>]) -> (usize, usize) {
    if watched.is_empty() {
        return std::future::pending().await; // select_all panics on none
    }
    let changes = watched.iter_mut().enumerate().map(|(index, rx)| {
        Box::pin(async move {
            match rx.changed().await {
                Ok(()) => (index, *rx.borrow_and_update()),
                Err(_) => std::future::pending().await,
            }
        })
    });
    let ((index, viewers), _, _) = futures_util::future::select_all(changes).await;
    (index, viewers)
}

/// Sets a pipeline to `Null` when dropped, whatever ended its run. Normally `run` has
/// done it already (a no-op then); if the run was dropped mid-await, it happens on a
/// thread of its own, because the state change can block.
struct NullOnDrop(Option<gst::Pipeline>);

impl Drop for NullOnDrop {
    fn drop(&mut self) {
        let Some(pipeline) = self.0.take() else { return };
        if pipeline.current_state() == gst::State::Null {
            return;
        }
        let _ = std::thread::Builder::new()
            .name("robocast-null".into())
            .spawn(move || pipeline.set_state(gst::State::Null));
    }
}
