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
//!   [`PROBE`] from every frame the page presents;
//! * the same Chromium rounds against `benches/peers/webrtcbin.py`, a GStreamer webrtcbin
//!   sender with one shared encoder and the same source, stamp and encoder settings.
//!
//! It prints a Markdown report and writes it between the result markers of BENCHMARKS.md.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "viewers/report.rs"]
mod report;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use common::browser::{Browser, Page};
use common::http;
use common::screen::{self, Seen};
use common::viewer::{Viewer, ViewerOptions};
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

/// Injected into each robot page before its own scripts. It records when the page showed
/// its first frame and, between `start()` and `stop()`, reads the clock stamp of every
/// presented frame (`src/media/clockstamp.rs`). A sample is the stamp and its age in ms
/// `[stamp, at receive, at presentation, at the player's expected display time]`.
const PROBE: &str = include_str!("viewers/probe.js");

const FIRST_FRAME: &str = "window.__bench && window.__bench.firstFrameAfterOffer()";

const PLAYING: &str = "window.robocast?.state === 'connected' && window.__bench?.firstFrame !== null";

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; there is nothing to choose.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run())
}

async fn run() -> Result<()> {
    let began = Instant::now();
    let daemon = Daemon::start(Sender::Robocast).await?;
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
    write_results(&report)?;
    progress(&format!("done in {:.0} s", began.elapsed().as_secs_f64()));
    Ok(())
}

/// Chromium's version and the rounds against robocast and against the webrtcbin peer
/// (`None` if the peer could not be measured); the browser is closed after.
async fn in_chromium() -> Result<(String, SenderRounds, Option<SenderRounds>)> {
    let browser = Browser::launch().await?;
    let chromium = browser
        .call("Browser.getVersion", json!({}))
        .await?
        .get("product")
        .and_then(Value::as_str)
        .unwrap_or("Chromium")
        .to_owned();
    let robocast = browser_rounds(&browser, Sender::Robocast).await;
    // The peer is a comparison: if it cannot run, robocast's results still count.
    let peer = match &robocast {
        Ok(_) => match browser_rounds(&browser, Sender::Webrtcbin).await {
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

/// robocast as a child process; killed on drop, also when the benchmark panics.
struct Daemon {
    child: Child,
    addr: SocketAddr,
}

/// What sends the stream: robocast, or the peer it is compared with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sender {
    Robocast,
    /// `benches/peers/webrtcbin.py`: GStreamer webrtcbin with one shared x264 encoder.
    Webrtcbin,
}

impl Sender {
    /// The command that starts this sender on `addr` with the benchmark's stream.
    fn command(self, addr: SocketAddr) -> Command {
        let (size, fps, listen) = (SIZE, FPS.to_string(), addr.to_string());
        if self == Sender::Webrtcbin {
            let root = env!("CARGO_MANIFEST_DIR");
            let mut command = Command::new("/usr/bin/python3");
            command
                .arg(format!("{root}/benches/peers/webrtcbin.py"))
                .args(["--static", &format!("{root}/static"), "--size", size])
                .args(["--fps", &fps, "--listen", &listen]);
            return command;
        }
        let mut command = Command::new(env!("CARGO_BIN_EXE_robocast"));
        // Only the flags below configure it, whatever the caller's environment says.
        for (name, _) in std::env::vars() {
            if name.starts_with("ROBOCAST_") && name != "ROBOCAST_LOG" {
                command.env_remove(name);
            }
        }
        // webrtc-rs warns about every closed candidate; robocast's own warnings stay.
        let log = std::env::var("ROBOCAST_LOG")
            .unwrap_or_else(|_| "warn,webrtc=error,webrtc_ice=error,webrtc_dtls=error".into());
        command
            .args(["--video", "test", "--audio", "test", "--size", size])
            .args(["--fps", &fps, "--max-viewers", "32", "--listen", &listen])
            .env("ROBOCAST_LOG", log);
        command
    }
}

impl Daemon {
    async fn start(sender: Sender) -> Result<Daemon> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = sender
            .command(addr)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {sender:?}"))?;
        let mut daemon = Daemon { child, addr };
        daemon.wait_running().await?;
        Ok(daemon)
    }

    /// Waits for `/healthz`, then for the video pipeline to report `running`.
    async fn wait_running(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("robocast exited during start-up ({status})");
            }
            // `http::get` panics when nothing listens yet.
            if tokio::net::TcpStream::connect(self.addr).await.is_ok()
                && http::get(self.addr, "/healthz").await.status == 200
                && self.video_status().await["pipeline"]["state"] == "running"
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("robocast's video pipeline was not running within {START_TIMEOUT:?}")
    }

    /// The video pipeline's entry of `/api/status` and the target bitrate.
    async fn video_status(&self) -> Value {
        let status = http::get(self.addr, "/api/status").await.json();
        let pipelines = status["pipelines"].as_array().cloned().unwrap_or_default();
        let video = pipelines.into_iter().find(|p| p["kind"] == "video");
        json!({ "pipeline": video, "bitrate_kbps": status["video"]["target_bitrate_kbps"] })
    }

    /// The encoder robocast chose and its target bitrate.
    async fn video_encoder(&self) -> (String, u64) {
        let video = self.video_status().await;
        let encoder = video["pipeline"]["encoder"].as_str().unwrap_or("unknown").to_owned();
        (encoder, video["bitrate_kbps"].as_u64().unwrap_or(0))
    }

    async fn sessions(&self) -> usize {
        let sessions = http::get(self.addr, "/api/sessions").await.json();
        sessions["sessions"].as_array().map_or(0, Vec::len)
    }

    /// Waits until exactly `n` sessions exist (closed ones go within ~10 s on their own).
    async fn wait_sessions(&self, n: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let now = self.sessions().await;
            if now == n {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("robocast still has {now} sessions, expected {n}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// utime + stime of all robocast's threads, in clock ticks.
    fn cpu_ticks(&self) -> Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name, which is in parentheses and may contain spaces.
        let fields: Vec<&str> =
            stat.rsplit_once(')').context("malformed /proc/<pid>/stat")?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat(5); `fields` starts at field 3.
        let tick = |i: usize| -> Result<u64> { Ok(fields.get(i).context("short stat")?.parse()?) };
        Ok(tick(11)? + tick(12)?)
    }

    /// Resident memory in KiB: all of it (`VmRSS`) and the anonymous part (`RssAnon`:
    /// heap and stacks, without the shared libraries' code).
    fn rss_kib(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> Result<u64> {
            let line = status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .with_context(|| format!("no {name} in /proc/<pid>/status"))?;
            Ok(line.trim().trim_end_matches("kB").trim().parse()?)
        };
        Ok((field("VmRSS:")?, field("RssAnon:")?))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// robocast's CPU (% of one core) and peak RSS over a window.
#[derive(Clone, Copy)]
struct Usage {
    cpu_percent: f64,
    rss_peak_mb: f64,
    anon_peak_mb: f64,
}

impl Usage {
    /// Mean CPU and highest RSS of consecutive windows of equal length.
    fn combine(usages: &[Usage]) -> Usage {
        let n = usages.len().max(1) as f64;
        Usage {
            cpu_percent: usages.iter().map(|u| u.cpu_percent).sum::<f64>() / n,
            rss_peak_mb: usages.iter().map(|u| u.rss_peak_mb).fold(0.0, f64::max),
            anon_peak_mb: usages.iter().map(|u| u.anon_peak_mb).fold(0.0, f64::max),
        }
    }

    async fn measure(daemon: &Daemon, window: Duration) -> Result<Usage> {
        let start = Instant::now();
        let ticks = daemon.cpu_ticks()?;
        let (mut peak, mut anon_peak) = daemon.rss_kib()?;
        while start.elapsed() < window {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (rss, anon) = daemon.rss_kib()?;
            (peak, anon_peak) = (peak.max(rss), anon_peak.max(anon));
        }
        let cpu_s = (daemon.cpu_ticks()? - ticks) as f64 / CLOCK_TICKS_PER_S;
        Ok(Usage {
            cpu_percent: 100.0 * cpu_s / start.elapsed().as_secs_f64(),
            rss_peak_mb: peak as f64 * 1024.0 / 1e6,
            anon_peak_mb: anon_peak as f64 * 1024.0 / 1e6,
        })
    }
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
/// `bench.stop` in [`PROBE`]) and, from its screencast, when each picture was on screen.
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

/// A robot page with [`PROBE`] installed, alone in its own window: a headless Chromium
/// renders only the front tab of each window, so viewers sharing a window would stall.
async fn open_viewer(browser: &Browser, url: &str) -> Result<Page> {
    // `new_page` opens its tab in the newest window; give it one to itself.
    let blank =
        browser.call("Target.createTarget", json!({ "url": "about:blank", "newWindow": true })).await?;
    let page = browser.new_page("about:blank").await?;
    // The window's first tab is no longer needed; closing the page then closes the window.
    browser.call("Target.closeTarget", json!({ "targetId": blank["targetId"] })).await?;
    // Without the Page domain enabled, scripts for new documents are not injected.
    page.call("Page.enable", json!({})).await?;
    page.call("Page.addScriptToEvaluateOnNewDocument", json!({ "source": PROBE })).await?;
    page.call("Page.navigate", json!({ "url": url })).await?;
    Ok(page)
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
/// glass-to-glass with 1 and with 4 robot pages, against [`CHROMIUM_STARTS`] fresh starts
/// of robocast.
async fn browser_rounds(browser: &Browser, sender: Sender) -> Result<SenderRounds> {
    let mut one = BrowserRound::new(1);
    let mut many = BrowserRound::new(MANY_PAGES);
    let mut first_frames = Vec::new();
    let mut reloads = 0;
    let (mut one_usage, mut many_usage) = (Vec::new(), Vec::new());
    let window = WINDOW / CHROMIUM_STARTS as u32;
    for start in 0..CHROMIUM_STARTS {
        progress(&format!("Chromium viewers, {sender:?} start {} of {CHROMIUM_STARTS}", start + 1));
        let daemon = Daemon::start(sender).await?;
        let url = format!("http://{}/", daemon.addr);
        let mut pages = vec![open_viewer(browser, &url).await?];
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
            let page = open_viewer(browser, &url).await?;
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
