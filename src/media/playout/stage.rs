//! A playout pipeline kept running: built, played, watched, and rebuilt
//! [`RETRY_DELAY`](crate::media::pipeline::RETRY_DELAY) after an error. The element
//! robocast pushes into (an `appsrc`) is published in a slot that is empty while the
//! pipeline is down, so pushes then drop instead of failing.

use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::media::MediaError;
use crate::media::pipeline::{RETRY_DELAY, blocking};

/// The appsrc a stage takes input on, while it runs.
#[derive(Clone, Default)]
pub struct Input(Arc<Mutex<Option<gst_app::AppSrc>>>);

impl Input {
    pub fn get(&self) -> Option<gst_app::AppSrc> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set(&self, src: Option<gst_app::AppSrc>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = src;
    }
}

/// A stage's state, for the status.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StageState {
    pub running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub restarts: u64,
}

/// Builds the pipeline (parse + hooks); called again for every rebuild, on a blocking thread.
pub type Build = dyn Fn() -> Result<gst::Pipeline, MediaError> + Send + Sync;

/// Parses a description into a pipeline, with an error that shows the description.
pub fn launch(description: &str) -> Result<gst::Pipeline, MediaError> {
    let build_error = |message: String| MediaError::Build { description: description.into(), message };
    gst::parse::launch(description)
        .map_err(|e| build_error(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| build_error("not a pipeline".into()))
}

pub fn appsrc(pipeline: &gst::Pipeline, name: &str) -> Result<gst_app::AppSrc, MediaError> {
    pipeline
        .by_name(name)
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| MediaError::Runtime(format!("no appsrc `{name}` in the playout pipeline")))
}

pub fn appsink(pipeline: &gst::Pipeline, name: &str) -> Result<gst_app::AppSink, MediaError> {
    pipeline
        .by_name(name)
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| MediaError::Runtime(format!("no appsink `{name}` in the playout pipeline")))
}

/// Starts a stage: the pipeline from `build` runs until `cancel`, its appsrc `input` is
/// published in the returned [`Input`]; `tracker` waits for it to stop. Resolves once the first attempt has started (or
/// failed), so what depends on it (the echo canceller's probe) can be checked.
pub async fn start(
    what: &'static str,
    input: &'static str,
    build: Arc<Build>,
    tracker: &TaskTracker,
    cancel: CancellationToken,
) -> (Input, watch::Receiver<StageState>) {
    let slot = Input::default();
    let (state, rx) = watch::channel(StageState::default());
    let (started, first) = tokio::sync::oneshot::channel();
    tracker.spawn(supervise(what, input, build, slot.clone(), state, cancel, started));
    let _ = first.await;
    (slot, rx)
}

async fn supervise(
    what: &'static str,
    input: &'static str,
    build: Arc<Build>,
    slot: Input,
    state: watch::Sender<StageState>,
    cancel: CancellationToken,
    started: tokio::sync::oneshot::Sender<()>,
) {
    let mut started = Some(started);
    let mut restarts = 0u64;
    loop {
        let error = run_once(what, input, &build, &slot, &state, &cancel, &mut started).await;
        slot.set(None);
        if let Some(started) = started.take() {
            let _ = started.send(());
        }
        if cancel.is_cancelled() {
            return;
        }
        restarts += 1;
        tracing::warn!(%error, hint = %error.hint(), "{what} failed; retrying in {} s", RETRY_DELAY.as_secs());
        state.send_replace(StageState { running: false, error: Some(error.to_string()), restarts });
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(RETRY_DELAY) => {}
        }
    }
}

async fn run_once(
    what: &'static str,
    input: &'static str,
    build: &Arc<Build>,
    slot: &Input,
    state: &watch::Sender<StageState>,
    cancel: &CancellationToken,
    started: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> MediaError {
    let built = {
        let build = Arc::clone(build);
        blocking(move || build()).await.and_then(|b| b)
    };
    let pipeline = match built {
        Ok(pipeline) => pipeline,
        Err(e) => return e,
    };
    let Some(bus) = pipeline.bus() else { return MediaError::Runtime("pipeline has no bus".into()) };
    let mut messages = bus.stream();
    let playing = pipeline.clone();
    let result = blocking(move || playing.set_state(gst::State::Playing)).await;
    let error = if !matches!(result, Ok(Ok(_))) {
        let message = bus
            .timed_pop_filtered(gst::ClockTime::from_mseconds(100), &[gst::MessageType::Error])
            .and_then(|m| match m.view() {
                gst::MessageView::Error(e) => Some(e.error().to_string()),
                _ => None,
            });
        MediaError::Runtime(message.unwrap_or_else(|| format!("{what} cannot start playing")))
    } else {
        match appsrc(&pipeline, input) {
            Ok(src) => slot.set(Some(src)),
            Err(e) => return e,
        }
        let restarts = state.borrow().restarts;
        state.send_replace(StageState { running: true, error: None, restarts });
        if let Some(started) = started.take() {
            let _ = started.send(());
        }
        tracing::debug!("{what} running");
        loop {
            let msg = tokio::select! {
                () = cancel.cancelled() => break MediaError::Runtime("shutting down".into()),
                msg = messages.next() => msg,
            };
            let Some(msg) = msg else { break MediaError::Runtime("bus closed".into()) };
            match msg.view() {
                gst::MessageView::Error(e) => {
                    let from = e.src().map(|s| s.path_string().to_string()).unwrap_or_default();
                    break MediaError::Runtime(format!("{} (from {from})", e.error()));
                }
                gst::MessageView::Eos(_) => break MediaError::Runtime(format!("{what} ended")),
                _ => {}
            }
        }
    };
    slot.set(None);
    let stopping = pipeline.clone();
    let _ = blocking(move || stopping.set_state(gst::State::Null)).await;
    error
}
