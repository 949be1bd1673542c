//! The viewers benchmark (`make bench`; BENCHMARKS.md says what each number means).
//!
//! robocast runs as a child process (so its CPU time and memory are its own) with the test
//! sources at 1280x720@30, and the benchmark measures, in this order:
//!
//! 1. with 0, 1, 4 and 16 webrtc-rs viewers that reassemble frames without decoding them
//!    (so the benchmark leaves the CPU to robocast): frames/s per viewer, robocast's CPU
//!    (utime + stime from `/proc`, % of one core) and its peak RSS over a 10 s window;
//! 2. the time from sending the offer to the first decoded frame, for a decoding webrtc-rs
//!    viewer and for the robot page in headless Chromium;
//! 3. glass-to-glass latency with 1 and 4 Chromium tabs: the test source paints its
//!    capture clock into every picture (`media::clockstamp`), and [`PROBE`] reads it back
//!    for every frame the page presents.
//!
//! It prints a Markdown report and writes it between the result markers of BENCHMARKS.md.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use common::browser::{Browser, Page};
use common::http;
use common::viewer::{Viewer, ViewerOptions};
use serde::Deserialize;
use serde_json::{Value, json};

const SIZE: &str = "1280x720";
const FPS: u64 = 30;
const VIEWER_ROUNDS: [usize; 3] = [1, 4, 16];
const TAB_ROUNDS: [usize; 2] = [1, 4];
const WARM_UP: Duration = Duration::from_secs(2);
const WINDOW: Duration = Duration::from_secs(10);
const IDLE_WINDOW: Duration = Duration::from_secs(5);
const FIRST_FRAME_SAMPLES: usize = 5;
/// robocast throttles keyframe requests to about one a second; joins closer together
/// than that would measure the throttle.
const JOIN_SPACING: Duration = Duration::from_millis(1500);
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// `getconf CLK_TCK`: 100 on every Linux this runs on.
const CLOCK_TICKS_PER_S: f64 = 100.0;

const RESULTS_BEGIN: &str = "<!-- results: written by `make bench`; edit the text around them -->";
const RESULTS_END: &str = "<!-- end of results -->";

/// Comparison rows measured once on this kind of machine with the same method.
const REFERENCE_ROWS: &str = "\
| RTCBot 0.2.5 (aiortc, VP8, encodes per viewer) | 1 | 317 ms | 45 / 62 ms | 26 % | 211 MB |
| RTCBot 0.2.5 | 4 | 495 ms | 92 / 133 ms | 99 % | 646 MB |
| GStreamer webrtcbin, one shared x264 encoder | 1 | 772 ms | 31 / 47 ms | 16 % | 112 MB |
| GStreamer webrtcbin, one shared x264 encoder | 4 | 883 ms | 33 / 60 ms | 19 % | 113 MB |
";

/// Injected into every robot page before its own scripts. Records when the first frame is
/// shown, and between `start()` and `stop()` reads the clock stamp of every presented
/// frame: block 0 white, block 1 black, then 32 bits of Unix ms (mod 2^32), MSB first.
/// Ages are `[at receive, at presentation, at expected display]` in ms.
const PROBE: &str = r"(() => {
  const BLOCK = 16, BITS = 32, WIDTH = BLOCK * (BITS + 2);
  const bench = { firstFrame: null, collecting: false, samples: [], unreadable: 0 };
  window.__bench = bench;
  let video = null, ctx = null;

  const readStamp = () => {
    ctx.drawImage(video, 0, 0, WIDTH, BLOCK, 0, 0, WIDTH, BLOCK);
    const px = ctx.getImageData(0, BLOCK / 2, WIDTH, 1).data;
    const bright = (block) => {
      const i = (block * BLOCK + BLOCK / 2) * 4;
      return 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2] >= 128;
    };
    if (!bright(0) || bright(1)) return null;
    let value = 0;
    for (let bit = 0; bit < BITS; bit++) value = value * 2 + (bright(bit + 2) ? 1 : 0);
    return value;
  };
  // Wall-clock ms at page time t minus the painted ms, modulo 2^32 (signed).
  const age = (t, painted) => {
    if (typeof t !== 'number') return null;
    const wall = bench.origin + t, ms = Math.floor(wall);
    return (((ms >>> 0) - painted) | 0) + (wall - ms);
  };
  const onFrame = (now, meta) => {
    if (bench.firstFrame === null) bench.firstFrame = meta.expectedDisplayTime;
    if (bench.collecting) {
      const painted = readStamp();
      if (painted === null) bench.unreadable++;
      else bench.samples.push([age(meta.receiveTime, painted),
        age(meta.presentationTime, painted), age(meta.expectedDisplayTime, painted)]);
    }
    video.requestVideoFrameCallback(onFrame);
  };
  document.addEventListener('DOMContentLoaded', () => {
    video = document.getElementById('video');
    const canvas = document.createElement('canvas');
    canvas.width = WIDTH;
    canvas.height = BLOCK;
    ctx = canvas.getContext('2d', { willReadFrequently: true });
    video.requestVideoFrameCallback(onFrame);
  });

  const videoStats = async () => {
    let v = null;
    (await window.robocast.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') v = r;
    });
    if (!v) throw new Error('no inbound video');
    return { at: performance.now(), decoded: v.framesDecoded, dropped: v.framesDropped || 0,
      decodeTime: v.totalDecodeTime || 0, jitterDelay: v.jitterBufferDelay || 0,
      jitterCount: v.jitterBufferEmittedCount || 0 };
  };
  // Date.now() - performance.now(), aligned on a millisecond edge: the page clock as
  // wall-clock time now, not as it was at navigation (performance.timeOrigin).
  const clockOrigin = () => {
    const before = Date.now();
    let date, page;
    do { page = performance.now(); date = Date.now(); } while (date === before);
    return date - page;
  };
  bench.start = async () => {
    bench.origin = clockOrigin();
    bench.samples = [];
    bench.unreadable = 0;
    bench.stats = await videoStats();
    bench.collecting = true;
  };
  bench.stop = async () => {
    bench.collecting = false;
    const a = bench.stats, b = await videoStats();
    const frames = b.decoded - a.decoded, jitterCount = b.jitterCount - a.jitterCount;
    return {
      samples: bench.samples,
      unreadable: bench.unreadable,
      fps: frames / ((b.at - a.at) / 1000),
      droppedFrames: b.dropped - a.dropped,
      decodeMs: frames > 0 ? (b.decodeTime - a.decodeTime) * 1000 / frames : null,
      jitterBufferMs: jitterCount > 0 ? (b.jitterDelay - a.jitterDelay) * 1000 / jitterCount : null,
      visibility: document.visibilityState,
      clockSkewMs: bench.origin - performance.timeOrigin,
    };
  };
})()";

/// Offer to first shown frame, in ms, once the page has both.
const FIRST_FRAME: &str = r"(() => {
  const bench = window.__bench;
  const offer = performance.getEntriesByType('resource').find((e) => e.name.endsWith('/api/connect'));
  return bench && bench.firstFrame !== null && offer ? bench.firstFrame - offer.startTime : null;
})()";

const PLAYING: &str = "window.robocast && window.robocast.state === 'connected' \
    && document.getElementById('video')?.videoWidth > 0";

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
    let daemon = Daemon::start().await?;
    let encoder = daemon.video_encoder().await;
    progress(&format!(
        "robocast up at {} (video encoder {encoder})",
        daemon.addr
    ));

    progress("0 viewers");
    let idle = Usage::measure(&daemon, IDLE_WINDOW).await?;
    let mut viewer_rounds = Vec::new();
    for n in VIEWER_ROUNDS {
        progress(&format!("{n} webrtc-rs viewers"));
        viewer_rounds.push(viewer_round(&daemon, n).await?);
    }
    progress("first frames, webrtc-rs");
    let first_webrtc = first_frames_webrtc(&daemon).await?;

    let browser = Browser::launch().await?;
    let chromium = browser
        .call("Browser.getVersion", json!({}))
        .await?
        .get("product")
        .and_then(Value::as_str)
        .unwrap_or("Chromium")
        .to_owned();
    let measured = browser_rounds(&daemon, &browser).await;
    if let Err(error) = browser.close().await {
        progress(&format!("closing the browser: {error:#}"));
    }
    let (first_chromium, tab_rounds) = measured?;
    drop(daemon);

    let report = Report {
        machine: Machine::describe(&chromium, &encoder),
        idle,
        viewer_rounds,
        first_webrtc,
        first_chromium,
        tab_rounds,
        run_time: began.elapsed(),
    }
    .markdown();
    println!("{report}");
    write_results(&report)?;
    progress(&format!("done in {:.0} s", began.elapsed().as_secs_f64()));
    Ok(())
}

fn progress(message: &str) {
    eprintln!("bench: {message}");
}

/// robocast as a child process; killed on drop, also when the benchmark panics.
struct Daemon {
    child: Child,
    addr: SocketAddr,
}

impl Daemon {
    async fn start() -> Result<Daemon> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut command = Command::new(env!("CARGO_BIN_EXE_robocast"));
        // Only the flags below configure it, whatever the caller's environment says.
        for (name, _) in std::env::vars() {
            if name.starts_with("ROBOCAST_") && name != "ROBOCAST_LOG" {
                command.env_remove(name);
            }
        }
        let log = std::env::var("ROBOCAST_LOG").unwrap_or_else(|_| "warn".into());
        let child = command
            .args(["--video", "test", "--audio", "test", "--size", SIZE])
            .args(["--fps", &FPS.to_string(), "--max-viewers", "32"])
            .args(["--listen", &addr.to_string()])
            .env("ROBOCAST_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("starting robocast")?;
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
                && self.video_pipeline().await["state"] == "running"
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("robocast's video pipeline was not running within {START_TIMEOUT:?}")
    }

    async fn video_pipeline(&self) -> Value {
        let status = http::get(self.addr, "/api/status").await.json();
        let pipelines = status["pipelines"].as_array().cloned().unwrap_or_default();
        pipelines
            .into_iter()
            .find(|p| p["kind"] == "video")
            .unwrap_or(Value::Null)
    }

    async fn video_encoder(&self) -> String {
        let pipeline = self.video_pipeline().await;
        pipeline["encoder"].as_str().unwrap_or("unknown").to_owned()
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
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("malformed /proc/<pid>/stat")?
            .1
            .split_whitespace()
            .collect();
        // utime and stime are fields 14 and 15 of stat(5); `fields` starts at field 3.
        let tick = |i: usize| -> Result<u64> { Ok(fields.get(i).context("short stat")?.parse()?) };
        Ok(tick(11)? + tick(12)?)
    }

    fn rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .context("no VmRSS in /proc/<pid>/status")?;
        Ok(line.trim().trim_end_matches("kB").trim().parse()?)
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
}

impl Usage {
    async fn measure(daemon: &Daemon, window: Duration) -> Result<Usage> {
        let start = Instant::now();
        let ticks = daemon.cpu_ticks()?;
        let mut peak = daemon.rss_kib()?;
        while start.elapsed() < window {
            tokio::time::sleep(Duration::from_millis(200)).await;
            peak = peak.max(daemon.rss_kib()?);
        }
        let cpu_s = (daemon.cpu_ticks()? - ticks) as f64 / CLOCK_TICKS_PER_S;
        Ok(Usage {
            cpu_percent: 100.0 * cpu_s / start.elapsed().as_secs_f64(),
            rss_peak_mb: peak as f64 * 1024.0 / 1e6,
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
    let options = ViewerOptions {
        decode: false,
        ..Default::default()
    };
    let mut viewers = Vec::new();
    for _ in 0..n {
        viewers.push(Viewer::connect(daemon.addr, options).await);
    }
    for viewer in &viewers {
        viewer.received.wait_frames(FPS, START_TIMEOUT).await;
    }
    tokio::time::sleep(WARM_UP).await;
    let frames = |viewers: &[Viewer]| -> Vec<u64> {
        viewers
            .iter()
            .map(|v| {
                v.received
                    .video_frames
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .collect()
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
        let first = viewer
            .received
            .first_frame
            .get()
            .context("no first frame")?;
        if i > 0 {
            samples.push(ms(first.duration_since(viewer.offered_at)));
        }
        close_viewers(daemon, std::slice::from_ref(&viewer)).await?;
        tokio::time::sleep(JOIN_SPACING).await;
    }
    Ok(samples)
}

/// What one tab measured over the window (see `bench.stop` in [`PROBE`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TabWindow {
    samples: Vec<[Option<f64>; 3]>,
    unreadable: u64,
    fps: f64,
    dropped_frames: f64,
    decode_ms: Option<f64>,
    jitter_buffer_ms: Option<f64>,
    visibility: String,
    clock_skew_ms: f64,
}

struct TabRound {
    tabs: usize,
    /// Offer to first frame of the tabs that joined this round while others watched.
    joined_first_frames: Vec<f64>,
    windows: Vec<TabWindow>,
    usage: Usage,
}

/// Opens a tab with the probe installed and loads the robot page in it.
async fn open_tab(browser: &Browser, url: &str) -> Result<Page> {
    let page = browser.new_page("about:blank").await?;
    page.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": PROBE }),
    )
    .await?;
    page.call("Page.navigate", json!({ "url": url })).await?;
    Ok(page)
}

async fn first_frame(page: &Page) -> Result<f64> {
    let value = page.wait_for(FIRST_FRAME, START_TIMEOUT).await?;
    value.as_f64().context("first frame time is not a number")
}

/// Chromium's first frames (one tab reloaded; the first load is a warm-up), then the
/// glass-to-glass rounds with 1 and 4 tabs.
async fn browser_rounds(daemon: &Daemon, browser: &Browser) -> Result<(Vec<f64>, Vec<TabRound>)> {
    let url = format!("http://{}/", daemon.addr);
    progress("first frames, Chromium");
    let mut tabs = vec![open_tab(browser, &url).await?];
    let mut first_frames = Vec::new();
    for i in 0..=FIRST_FRAME_SAMPLES {
        if i > 0 {
            tokio::time::sleep(JOIN_SPACING).await;
            tabs[0].call("Page.navigate", json!({ "url": url })).await?;
            first_frames.push(first_frame(&tabs[0]).await?);
        } else {
            first_frame(&tabs[0]).await?;
        }
    }
    let mut rounds = Vec::new();
    for n in TAB_ROUNDS {
        progress(&format!("glass-to-glass, {n} Chromium tabs"));
        let mut joined_first_frames = Vec::new();
        while tabs.len() < n {
            tokio::time::sleep(JOIN_SPACING).await;
            let tab = open_tab(browser, &url).await?;
            joined_first_frames.push(first_frame(&tab).await?);
            tabs.push(tab);
        }
        for tab in &tabs {
            tab.wait_for(PLAYING, START_TIMEOUT).await?;
        }
        daemon.wait_sessions(n).await?;
        tokio::time::sleep(WARM_UP).await;
        for tab in &tabs {
            tab.eval("window.__bench.start()").await?;
        }
        let usage = Usage::measure(daemon, WINDOW).await?;
        let mut windows = Vec::new();
        for tab in &tabs {
            let window = tab.eval("window.__bench.stop()").await?;
            let window = serde_json::from_value::<TabWindow>(window)?;
            if window.visibility != "visible" {
                progress(&format!(
                    "warning: a tab was {} (throttled?)",
                    window.visibility
                ));
            }
            if window.clock_skew_ms.abs() > 2.0 {
                progress(&format!(
                    "note: the page clock drifted {:.1} ms from wall-clock time since load (corrected)",
                    window.clock_skew_ms
                ));
            }
            windows.push(window);
        }
        rounds.push(TabRound {
            tabs: n,
            joined_first_frames,
            windows,
            usage,
        });
    }
    for tab in tabs {
        tab.close().await?;
    }
    Ok((first_frames, rounds))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile (`p` in 0..=1) of unsorted values; NaN when empty.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p * sorted.len() as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
}

fn median(values: &[f64]) -> f64 {
    percentile(values, 0.5)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NAN, f64::max)
}

impl TabRound {
    /// Per-frame values of `f` over every readable frame of every tab.
    fn frames(&self, f: impl Fn(&[Option<f64>; 3]) -> Option<f64>) -> Vec<f64> {
        self.windows
            .iter()
            .flat_map(|w| w.samples.iter().filter_map(&f))
            .collect()
    }

    fn glass_to_glass(&self) -> Vec<f64> {
        self.frames(|s| s[2])
    }

    fn mean(&self, f: impl Fn(&TabWindow) -> Option<f64>) -> f64 {
        let values: Vec<f64> = self.windows.iter().filter_map(f).collect();
        values.iter().sum::<f64>() / values.len() as f64
    }
}

struct Machine {
    date: String,
    commit: String,
    cpu: String,
    memory: String,
    os: String,
    chromium: String,
    encoder: String,
}

impl Machine {
    fn describe(chromium: &str, encoder: &str) -> Machine {
        let run = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .ok()
                .filter(|out| out.status.success())
                .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let read = |path: &str, key: &str| {
            std::fs::read_to_string(path).ok().and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with(key))
                    .and_then(|l| l.split_once([':', '=']))
                    .map(|(_, v)| v.trim().trim_matches('"').to_owned())
            })
        };
        let mut commit =
            run("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
        if run("git", &["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|s| !s.is_empty())
        {
            commit.push_str(" with uncommitted changes");
        }
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let memory_kib: f64 = read("/proc/meminfo", "MemTotal")
            .and_then(|m| m.trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        Machine {
            date: run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default(),
            commit,
            cpu: format!(
                "{cores} × {}",
                read("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown CPU".into())
            ),
            memory: format!("{:.1} GiB", memory_kib / 1024.0 / 1024.0),
            os: read("/etc/os-release", "PRETTY_NAME").unwrap_or_default(),
            chromium: chromium.to_owned(),
            encoder: encoder.to_owned(),
        }
    }
}

struct Report {
    machine: Machine,
    idle: Usage,
    viewer_rounds: Vec<ViewerRound>,
    first_webrtc: Vec<f64>,
    first_chromium: Vec<f64>,
    tab_rounds: Vec<TabRound>,
    run_time: Duration,
}

impl Report {
    fn markdown(&self) -> String {
        let mut out = String::new();
        self.header(&mut out);
        self.viewers_table(&mut out);
        self.first_frame_table(&mut out);
        self.latency_tables(&mut out);
        self.comparison_table(&mut out);
        self.targets_table(&mut out);
        out
    }

    fn header(&self, out: &mut String) {
        let m = &self.machine;
        let _ = writeln!(
            out,
            "Run {}, robocast {}, {:.0} s.\n",
            m.date,
            m.commit,
            self.run_time.as_secs_f64()
        );
        let _ = writeln!(out, "- Machine: {}, {} RAM, {}", m.cpu, m.memory, m.os);
        let _ = writeln!(
            out,
            "- Stream: test sources, {SIZE}@{FPS}, video encoder {}, default bitrate",
            m.encoder
        );
        let _ = writeln!(
            out,
            "- Browser: {} (headless, software decoding)\n",
            m.chromium
        );
    }

    fn viewers_table(&self, out: &mut String) {
        out.push_str("### webrtc-rs viewers (frames reassembled, not decoded)\n\n");
        out.push_str("| viewers | frames/s per viewer (min / mean) | robocast CPU (% of a core) | CPU ÷ CPU with 1 | robocast RSS peak |\n");
        out.push_str("|---:|---:|---:|---:|---:|\n");
        let _ = writeln!(
            out,
            "| 0 | – | {:.1} % | – | {:.1} MB |",
            self.idle.cpu_percent, self.idle.rss_peak_mb
        );
        let one = self.cpu_with(1);
        for r in &self.viewer_rounds {
            let _ = writeln!(
                out,
                "| {} | {:.1} / {:.1} | {:.1} % | {:.2} | {:.1} MB |",
                r.viewers,
                r.fps_min,
                r.fps_mean,
                r.usage.cpu_percent,
                r.usage.cpu_percent / one,
                r.usage.rss_peak_mb
            );
        }
        out.push('\n');
    }

    fn first_frame_table(&self, out: &mut String) {
        out.push_str("### Offer to first frame (one new viewer, others already watching: none unless said)\n\n");
        out.push_str("| client | median | max | samples |\n|---|---:|---:|---:|\n");
        let mut row = |name: &str, samples: &[f64]| {
            let _ = writeln!(
                out,
                "| {name} | {:.0} ms | {:.0} ms | {} |",
                median(samples),
                max(samples),
                samples.len()
            );
        };
        row("webrtc-rs, decoding", &self.first_webrtc);
        row("Chromium, robot page", &self.first_chromium);
        if let Some(four) = self.tab_rounds.iter().find(|r| r.tabs == 4) {
            row("Chromium, tabs 2–4 joining", &four.joined_first_frames);
        }
        out.push('\n');
    }

    fn latency_tables(&self, out: &mut String) {
        out.push_str("### Glass-to-glass in Chromium (capture clock read back from every presented frame)\n\n");
        out.push_str("| tabs | frames read | p50 | p95 | max | decoded frames/s per tab (min / mean) | robocast CPU | robocast RSS peak |\n");
        out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in &self.tab_rounds {
            let g2g = r.glass_to_glass();
            let unreadable: u64 = r.windows.iter().map(|w| w.unreadable).sum();
            let fps_min = r
                .windows
                .iter()
                .map(|w| w.fps)
                .fold(f64::INFINITY, f64::min);
            let _ = writeln!(
                out,
                "| {} | {}{} | {:.0} ms | {:.0} ms | {:.0} ms | {:.1} / {:.1} | {:.1} % | {:.1} MB |",
                r.tabs,
                g2g.len(),
                if unreadable > 0 {
                    format!(" ({unreadable} unreadable)")
                } else {
                    String::new()
                },
                percentile(&g2g, 0.5),
                percentile(&g2g, 0.95),
                max(&g2g),
                fps_min,
                r.mean(|w| Some(w.fps)),
                r.usage.cpu_percent,
                r.usage.rss_peak_mb
            );
        }
        out.push_str(
            "\nWhere the time goes (medians per frame; Chromium's own stats as means):\n\n",
        );
        out.push_str("| tabs | capture → last packet received | received → presented | presented → on screen | jitter buffer | decode | dropped frames |\n");
        out.push_str("|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in &self.tab_rounds {
            let received = r.frames(|s| s[0]);
            let to_present = r.frames(|s| Some(s[1]? - s[0]?));
            let to_screen = r.frames(|s| Some(s[2]? - s[1]?));
            let dropped: f64 = r.windows.iter().map(|w| w.dropped_frames).sum();
            let _ = writeln!(
                out,
                "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {dropped:.0} |",
                r.tabs,
                median(&received),
                median(&to_present),
                median(&to_screen),
                r.mean(|w| w.jitter_buffer_ms),
                r.mean(|w| w.decode_ms)
            );
        }
        out.push('\n');
    }

    fn comparison_table(&self, out: &mut String) {
        out.push_str("### Against other senders (same method; their rows were measured once, not by this run)\n\n");
        out.push_str("| sender | viewers | first frame | glass-to-glass p50/p95 | sender CPU (% of a core) | sender RSS |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|\n");
        for r in &self.tab_rounds {
            let first = if r.tabs == 1 {
                &self.first_chromium
            } else {
                &r.joined_first_frames
            };
            let g2g = r.glass_to_glass();
            let _ = writeln!(
                out,
                "| **robocast** (H.264, encodes once) | {} | {:.0} ms | {:.0} / {:.0} ms | {:.0} % | {:.0} MB |",
                r.tabs,
                median(first),
                percentile(&g2g, 0.5),
                percentile(&g2g, 0.95),
                r.usage.cpu_percent,
                r.usage.rss_peak_mb
            );
        }
        out.push_str(REFERENCE_ROWS);
        out.push('\n');
    }

    fn targets_table(&self, out: &mut String) {
        out.push_str("### Targets\n\n| target | measured | |\n|---|---|---|\n");
        let mut row = |target: &str, measured: String, met: bool| {
            let verdict = if met { "met" } else { "**missed**" };
            let _ = writeln!(out, "| {target} | {measured} | {verdict} |");
        };
        let (webrtc, chromium) = (median(&self.first_webrtc), median(&self.first_chromium));
        row(
            "first frame ≤ 300 ms after the offer (median)",
            format!("webrtc-rs {webrtc:.0} ms, Chromium {chromium:.0} ms"),
            webrtc <= 300.0 && chromium <= 300.0,
        );
        for r in &self.tab_rounds {
            let g2g = r.glass_to_glass();
            let (p50, p95) = (percentile(&g2g, 0.5), percentile(&g2g, 0.95));
            let tabs = r.tabs;
            row(
                &format!("glass-to-glass p50 ≤ 30 ms, {tabs} tab(s)"),
                format!("{p50:.0} ms"),
                p50 <= 30.0,
            );
            row(
                &format!("glass-to-glass p95 ≤ 50 ms, {tabs} tab(s)"),
                format!("{p95:.0} ms"),
                p95 <= 50.0,
            );
        }
        let ratio = self.cpu_with(4) / self.cpu_with(1);
        row(
            "CPU with 4 viewers ≤ 1.25 × CPU with 1",
            format!("{ratio:.2} ×"),
            ratio <= 1.25,
        );
        let rss = self
            .viewer_rounds
            .iter()
            .find(|r| r.viewers == 4)
            .map_or(f64::NAN, |r| r.usage.rss_peak_mb);
        row(
            "RSS ≤ 60 MB with 4 viewers",
            format!("{rss:.1} MB"),
            rss <= 60.0,
        );
        out.push('\n');
    }

    fn cpu_with(&self, viewers: usize) -> f64 {
        self.viewer_rounds
            .iter()
            .find(|r| r.viewers == viewers)
            .map_or(f64::NAN, |r| r.usage.cpu_percent)
    }
}

/// Replaces the results between the markers of BENCHMARKS.md (appends them if missing).
fn write_results(report: &str) -> Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let block = format!("{RESULTS_BEGIN}\n\n{report}{RESULTS_END}");
    let new = match (old.find(RESULTS_BEGIN), old.find(RESULTS_END)) {
        (Some(begin), Some(end)) if begin < end => {
            format!(
                "{}{block}{}",
                &old[..begin],
                &old[end + RESULTS_END.len()..]
            )
        }
        _ => format!("{old}\n{block}\n"),
    };
    std::fs::write(&path, new).context("writing BENCHMARKS.md")?;
    progress("results written to BENCHMARKS.md");
    Ok(())
}
