//! Viewers joining every 0.5 s while others watch and leave: how soon each joiner has a
//! picture it can decode, and what that costs the encoder. A joiner within a second of
//! the last key frame starts from it and the frames since (kept by the feed); a later
//! one asks for a key frame, which the 0.8 s throttle then allows at once. The encoder's
//! key-frame rate must not rise with the churn.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::common::http;
use super::common::viewer::{Viewer, ViewerOptions};
use super::daemon::{Daemon, Sender, Source};
use super::report::{self, Machine};
use super::{START_TIMEOUT, ms, progress, quick};

const JOINS: usize = 40;
const EVERY: Duration = Duration::from_millis(500);
/// How long each joiner watches before it leaves (DELETE).
const STAY: Duration = Duration::from_secs(1);

/// What the churn measured.
pub(crate) struct Churn {
    pub(crate) first_frames: Vec<f64>,
    pub(crate) keyframes_per_s: f64,
    pub(crate) replayed: u64,
    pub(crate) seconds: f64,
}

async fn feed_counters(daemon: &Daemon) -> (u64, u64) {
    let status = http::get(daemon.addr, "/api/status").await.json();
    let h264 = &status["feeds"]["h264"];
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    (count(&h264["keyframes"]), count(&h264["joins_from_kept_keyframe"]))
}

/// One joiner: offer, first decoded frame (ms after the offer), a second of watching, DELETE.
async fn join(addr: std::net::SocketAddr) -> Result<f64> {
    let viewer = Viewer::connect(addr, ViewerOptions::default()).await;
    viewer.received.wait_frames(1, START_TIMEOUT).await;
    let first = viewer.received.first_frame.get().context("no first frame")?;
    let took = ms(first.duration_since(viewer.offered_at));
    tokio::time::sleep(STAY).await;
    http::request(addr, "DELETE", &viewer.location, None, b"").await;
    viewer.close().await;
    Ok(took)
}

pub(crate) async fn run() -> Result<()> {
    let began = Instant::now();
    let daemon = Daemon::start(Sender::Robocast, &Source::Test).await?;
    let watcher = Viewer::connect(daemon.addr, ViewerOptions::undecoded()).await;
    watcher.received.wait_frames(30, START_TIMEOUT).await;
    // One joiner first, so the benchmark's own decoder is warm.
    join(daemon.addr).await?;
    let joins = if quick() { 6 } else { JOINS };
    progress(&format!("churn: {joins} viewers joining every {EVERY:?}"));
    let (keys_before, replayed_before) = feed_counters(&daemon).await;
    let start = Instant::now();
    let mut joiners = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(EVERY);
    for _ in 0..joins {
        tick.tick().await;
        joiners.spawn(join(daemon.addr));
    }
    let mut first_frames = Vec::new();
    while let Some(joined) = joiners.join_next().await {
        first_frames.push(joined??);
    }
    let seconds = start.elapsed().as_secs_f64();
    let (keys_after, replayed_after) = feed_counters(&daemon).await;
    let watched = watcher.received.video_frames.load(Ordering::Relaxed);
    progress(&format!("churn done; the watcher got {watched} frames"));
    let churn = Churn {
        first_frames,
        keyframes_per_s: (keys_after - keys_before) as f64 / seconds,
        replayed: replayed_after - replayed_before,
        seconds,
    };
    let machine = Machine::describe("(not used)", "x264enc", 2500);
    let text = report::churn_markdown(&machine, &churn, began.elapsed());
    println!("{text}");
    if quick() {
        return Ok(());
    }
    report::write_section(report::CHURN_MARKERS, report::CHURN_INTRO, &text)
}
