//! The viewers benchmark (`make bench`; BENCHMARKS.md says what each number means).
//!
//! robocast runs as a child process (so its CPU time and memory are its own) with the test
//! sources at 1280x720@30. The benchmark measures:
//!
//! * with 0, 1, 4 and 16 webrtc-rs viewers that reassemble frames without decoding them
//!   (so the benchmark leaves the CPU to robocast): frames/s per viewer, robocast's CPU
//!   (utime + stime from `/proc`, % of one core) and its peak RSS over a 10 s window;
//! * the time from sending the offer to the first decoded frame, for a decoding webrtc-rs
//!   viewer and for the robot page in headless Chromium;
//! * glass-to-glass latency with 1 and 4 robot pages in headless Chromium: the test source
//!   paints its capture clock into every picture (`media::clockstamp`); the screencast
//!   (`tests/common/screen.rs`) reads it back from the page's composited output, and
//!   [`PROBE`](page::PROBE) from every frame the page presents;
//! * the same Chromium rounds against `benches/peers/webrtcbin.py`, a GStreamer webrtcbin
//!   sender with one shared encoder and the same source, stamp and encoder settings.
//!
//! It prints a Markdown report and writes it between the result markers of BENCHMARKS.md.

#[path = "viewers/churn.rs"]
mod churn;
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "viewers/daemon.rs"]
mod daemon;
#[path = "viewers/external.rs"]
mod external;
#[path = "viewers/page.rs"]
mod page;
#[path = "viewers/report.rs"]
mod report;
#[path = "shared/report.rs"]
mod shared;

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use common::browser::{Browser, Page};
use common::http;
use common::screen::{self, Seen};
use common::viewer::{Viewer, ViewerOptions};
use daemon::{Daemon, Sender, Source, Usage};
use page::open_viewer;
use report::{Machine, Report, write_results};
use serde::Deserialize;
use serde_json::{Value, json};

const SIZE: &str = "1280x720";
const FPS: u64 = 30;
const VIEWER_ROUNDS: [usize; 3] = [1, 4, 16];
/// Chromium's compositor shows a picture at a 60 Hz refresh, and where the 30 Hz capture
/// falls between refreshes is fixed from the moment the sender's pipeline starts: each
/// start draws its display wait once from a range of about a refresh. The Chromium rounds
/// therefore run against this many fresh starts of the sender and pool their pictures.
const CHROMIUM_STARTS: usize = 6;
const MANY_PAGES: usize = 4;
const WARM_UP: Duration = Duration::from_secs(2);
/// Time for Chromium's jitter buffer and decoder to settle after the first frame.
const BROWSER_WARM_UP: Duration = Duration::from_secs(2);
const WINDOW: Duration = Duration::from_secs(10);
const IDLE_WINDOW: Duration = Duration::from_secs(5);
const FIRST_FRAME_SAMPLES: usize = 5;
/// robocast throttles keyframe requests to about one a second; joins closer together
/// than that would measure the throttle.
const JOIN_SPACING: Duration = Duration::from_millis(1500);
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// `getconf CLK_TCK`: 100 on every Linux this runs on.
const CLOCK_TICKS_PER_S: f64 = 100.0;

const FIRST_FRAME: &str = "window.__bench && window.__bench.firstFrameAfterOffer()";

const PLAYING: &str = "window.robocast?.state === 'connected' && window.__bench?.firstFrame !== null";

fn main() -> Result<()> {
    shared::block_on(run())
}

/// `ROBOCAST_BENCH_QUICK=1`: a short run of each part that writes nothing, so CI can check
/// the benchmark still runs.
fn quick() -> bool {
    std::env::var_os("ROBOCAST_BENCH_QUICK").is_some_and(|v| v == "1")
}

/// The parts to run: `cargo bench --bench viewers -- external churn` runs only those
/// (`core` is the rest); no names (cargo passes `--bench`) runs them all.
fn parts() -> Vec<String> {
    let named: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if named.is_empty() { ["core", "external", "churn"].map(String::from).to_vec() } else { named }
}

async fn run() -> Result<()> {
    let began = Instant::now();
    let parts = parts();
    if parts.iter().any(|p| p == "core") {
        core().await?;
    }
    if parts.iter().any(|p| p == "external") {
        external::run().await?;
    }
    if parts.iter().any(|p| p == "churn") {
        churn::run().await?;
    }
    progress(&format!("done in {:.0} s", began.elapsed().as_secs_f64()));
    Ok(())
}

/// 0/1/4/16 webrtc-rs viewers, first frames, and the Chromium rounds on the test pattern
/// against the webrtcbin peer: the results section of BENCHMARKS.md.
async fn core() -> Result<()> {
    let began = Instant::now();
    let daemon = Daemon::start(Sender::Robocast, &Source::Test).await?;
    let (encoder, kbps) = daemon.video_encoder().await;
    progress(&format!("robocast up at {} ({encoder} at {kbps} kbit/s)", daemon.addr));

    progress("0 viewers");
    let idle = Usage::measure(&daemon, IDLE_WINDOW).await?;
    let mut viewer_rounds = Vec::new();
    for n in VIEWER_ROUNDS {
        progress(&format!("{n} webrtc-rs viewers"));
        viewer_rounds.push(viewer_round(&daemon, n).await?);
    }
    progress("first frames, webrtc-rs");
    let first_webrtc = first_frames_webrtc(&daemon).await?;
    drop(daemon);
    let (chromium, robocast, peer) = in_chromium().await?;

    let report = Report {
        machine: Machine::describe(&chromium, &encoder, kbps),
        idle,
        viewer_rounds,
        first_webrtc,
        first_chromium: robocast.first_frames,
        chromium_rounds: robocast.rounds,
        peer,
        run_time: began.elapsed(),
    }
    .markdown();
    println!("{report}");
    write_results(&report)
}

/// Chromium's product name and version.
async fn chromium_version(browser: &Browser) -> Result<String> {
    let version = browser.call("Browser.getVersion", json!({})).await?;
    Ok(version.get("product").and_then(Value::as_str).unwrap_or("Chromium").to_owned())
}

/// Chromium's version and the rounds against robocast and against the webrtcbin peer
/// (`None` if the peer could not be measured); the browser is closed after.
async fn in_chromium() -> Result<(String, SenderRounds, Option<SenderRounds>)> {
    let browser = Browser::launch().await?;
    let chromium = chromium_version(&browser).await?;
    let robocast = browser_rounds(&browser, Sender::Robocast, &Source::Test, CHROMIUM_STARTS).await;
    // The peer is a comparison: if it cannot run, robocast's results still count.
    let peer = match &robocast {
        Ok(_) => match browser_rounds(&browser, Sender::Webrtcbin, &Source::Test, CHROMIUM_STARTS).await {
            Ok(peer) => Some(peer),
            Err(error) => {
                progress(&format!("warning: the webrtcbin peer was not measured: {error:#}"));
                None
            }
        },
        Err(_) => None,
    };
    if let Err(error) = browser.close().await {
        progress(&format!("closing the browser: {error:#}"));
    }
    Ok((chromium, robocast?, peer))
}

fn progress(message: &str) {
    eprintln!("bench: {message}");
}

struct ViewerRound {
    viewers: usize,
    fps_min: f64,
    fps_mean: f64,
    usage: Usage,
}

async fn viewer_round(daemon: &Daemon, n: usize) -> Result<ViewerRound> {
    let mut viewers = Vec::new();
    for _ in 0..n {
        viewers.push(Viewer::connect(daemon.addr, ViewerOptions::undecoded()).await);
    }
    for viewer in &viewers {
        viewer.received.wait_frames(FPS, START_TIMEOUT).await;
    }
    tokio::time::sleep(WARM_UP).await;
    let frames = |viewers: &[Viewer]| -> Vec<u64> {
        viewers.iter().map(|v| v.received.video_frames.load(std::sync::atomic::Ordering::Relaxed)).collect()
    };
    let (before, start) = (frames(&viewers), Instant::now());
    let usage = Usage::measure(daemon, WINDOW).await?;
    let seconds = start.elapsed().as_secs_f64();
    let fps: Vec<f64> = frames(&viewers)
        .iter()
        .zip(&before)
        .map(|(after, before)| (after - before) as f64 / seconds)
        .collect();
    close_viewers(daemon, &viewers).await?;
    Ok(ViewerRound {
        viewers: n,
        fps_min: fps.iter().copied().fold(f64::INFINITY, f64::min),
        fps_mean: fps.iter().sum::<f64>() / n as f64,
        usage,
    })
}

/// Ends the sessions at once (DELETE) rather than waiting for robocast to notice.
async fn close_viewers(daemon: &Daemon, viewers: &[Viewer]) -> Result<()> {
    for viewer in viewers {
        http::request(daemon.addr, "DELETE", &viewer.location, None, b"").await;
        viewer.close().await;
    }
    daemon.wait_sessions(0).await
}

/// Offer to first decoded frame of a fresh decoding viewer, one at a time. The first
/// connection only warms up the benchmark's own decoder and is not counted.
async fn first_frames_webrtc(daemon: &Daemon) -> Result<Vec<f64>> {
    let mut samples = Vec::new();
    for i in 0..=FIRST_FRAME_SAMPLES {
        let viewer = Viewer::connect(daemon.addr, ViewerOptions::default()).await;
        viewer.received.wait_frames(1, START_TIMEOUT).await;
        let first = viewer.received.first_frame.get().context("no first frame")?;
        if i > 0 {
            samples.push(ms(first.duration_since(viewer.offered_at)));
        }
        close_viewers(daemon, std::slice::from_ref(&viewer)).await?;
        tokio::time::sleep(JOIN_SPACING).await;
    }
    Ok(samples)
}

/// What one Chromium viewer measured over the window: the page's own figures (see
/// `bench.stop` in [`PROBE`](page::PROBE)) and, from its screencast, when each picture was on screen.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ViewerWindow {
    samples: Vec<Sample>,
    /// The pictures its screencast saw on screen.
    #[serde(skip)]
    seen: Seen,
    fps: f64,
    dropped_frames: f64,
    decode_ms: Option<f64>,
    jitter_buffer_ms: Option<f64>,
    visibility: String,
    clock_skew_ms: f64,
}

/// One presented frame, as the page read it: the stamp, then its age in ms when the last
/// packet arrived, when the player presented it, and at the player's expected display time.
#[derive(Deserialize)]
struct Sample(u32, Option<f64>, Option<f64>, Option<f64>);

/// One sender's Chromium rounds (see [`browser_rounds`]).
struct SenderRounds {
    /// Offer to first frame of the robot page, reloaded [`FIRST_FRAME_SAMPLES`] times.
    first_frames: Vec<f64>,
    /// One robot page, then [`MANY_PAGES`].
    rounds: Vec<BrowserRound>,
    /// Pages that did not play and were reloaded (webrtcbin only).
    reloads: usize,
}

struct BrowserRound {
    viewers: usize,
    /// Offer to first frame of the viewers that joined while others watched.
    joined_first_frames: Vec<f64>,
    /// Each viewer's window, with the robocast start it watched.
    windows: Vec<(usize, ViewerWindow)>,
    /// Mean CPU and highest RSS over all robocast starts.
    usage: Usage,
}

/// [`first_frame`]; a webrtcbin page that does not play is reloaded once and counted in
/// `reloads` (the peer is not ours to fix), robocast gets no second chance.
async fn first_frame_of(sender: Sender, page: &Page, url: &str, reloads: &mut usize) -> Result<f64> {
    match first_frame(page).await {
        Err(error) if sender == Sender::Webrtcbin => {
            progress(&format!("webrtcbin: reloading a page that did not play: {error:#}"));
            *reloads += 1;
            page.call("Page.navigate", json!({ "url": url })).await?;
            first_frame(page).await
        }
        result => result,
    }
}

async fn first_frame(page: &Page) -> Result<f64> {
    let value = match page.wait_for(FIRST_FRAME, START_TIMEOUT).await {
        Ok(value) => value,
        Err(error) => {
            // Say what the page knows: its connection state and the reason it gives.
            let state = page
                .eval("(async () => { const inbound = []; \
                       (await window.robocast?.pc?.getStats())?.forEach((r) => { if (r.type === 'inbound-rtp') \
                       inbound.push([r.kind, r.packetsReceived, r.framesDecoded, r.pliCount]); }); \
                       return JSON.stringify({ state: window.robocast?.state, error: window.robocast?.lastError, \
                       hint: window.robocast?.lastHint, inbound }); })()")
                .await
                .unwrap_or_default();
            return Err(error.context(format!("the robot page did not play: {state}")));
        }
    };
    value.as_f64().context("first frame time is not a number")
}

/// Chromium's first frames (one robot page reloaded; its first load is a warm-up), then
/// glass-to-glass with 1 and with 4 robot pages, against `starts` fresh starts of the
/// sender on `source`.
async fn browser_rounds(
    browser: &Browser,
    sender: Sender,
    source: &Source,
    starts: usize,
) -> Result<SenderRounds> {
    let mut one = BrowserRound::new(1);
    let mut many = BrowserRound::new(MANY_PAGES);
    let mut first_frames = Vec::new();
    let mut reloads = 0;
    let (mut one_usage, mut many_usage) = (Vec::new(), Vec::new());
    let window = WINDOW / CHROMIUM_STARTS as u32;
    for start in 0..starts {
        progress(&format!("Chromium viewers, {sender:?} on {source:?}, start {} of {starts}", start + 1));
        let daemon = Daemon::start(sender, source).await?;
        let url = format!("http://{}/", daemon.addr);
        let mut pages = vec![open_viewer(browser, &url, &[]).await?];
        first_frame_of(sender, &pages[0], &url, &mut reloads).await?;
        if start == 0 {
            for _ in 0..FIRST_FRAME_SAMPLES {
                tokio::time::sleep(JOIN_SPACING).await;
                pages[0].call("Page.navigate", json!({ "url": url })).await?;
                first_frames.push(first_frame_of(sender, &pages[0], &url, &mut reloads).await?);
            }
        }
        let (windows, usage) = collect(&daemon, &pages, window).await?;
        one.add(start, windows);
        one_usage.push(usage);
        while pages.len() < MANY_PAGES {
            tokio::time::sleep(JOIN_SPACING).await;
            let page = open_viewer(browser, &url, &[]).await?;
            many.joined_first_frames.push(first_frame_of(sender, &page, &url, &mut reloads).await?);
            pages.push(page);
        }
        let (windows, usage) = collect(&daemon, &pages, window).await?;
        many.add(start, windows);
        many_usage.push(usage);
        for page in pages {
            page.close().await?;
        }
    }
    one.usage = Usage::combine(&one_usage);
    many.usage = Usage::combine(&many_usage);
    Ok(SenderRounds { first_frames, rounds: vec![one, many], reloads })
}

/// Once every page plays and has warmed up: the frames of each over `window`, and
/// robocast's usage meanwhile.
async fn collect(daemon: &Daemon, pages: &[Page], window: Duration) -> Result<(Vec<ViewerWindow>, Usage)> {
    for page in pages {
        page.wait_for(PLAYING, START_TIMEOUT).await?;
    }
    daemon.wait_sessions(pages.len()).await?;
    tokio::time::sleep(BROWSER_WARM_UP).await;
    let mut watches = Vec::new();
    for page in pages {
        watches.push(screen::watch(page).await?);
        page.eval("window.__bench.start()").await?;
    }
    let usage = Usage::measure(daemon, window).await?;
    let mut windows = Vec::new();
    for (page, watch) in pages.iter().zip(watches) {
        let seen = watch.stop().await?;
        let mut measured: ViewerWindow = serde_json::from_value(page.eval("window.__bench.stop()").await?)?;
        measured.seen = seen;
        if measured.visibility != "visible" {
            progress(&format!("warning: a viewer page was {} (not rendering?)", measured.visibility));
        }
        if measured.clock_skew_ms.abs() > 2.0 {
            let skew = measured.clock_skew_ms;
            progress(&format!("note: a page clock drifted {skew:.1} ms from wall-clock time (corrected)"));
        }
        windows.push(measured);
    }
    Ok((windows, usage))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
