//! The thin-link benchmark (`cargo bench --bench links`; BENCHMARKS.md "A thin link").
//!
//! It re-runs itself in a private network namespace. robocast runs there as a child
//! process on a camera-like picture (`benches/peers/stamped_source.py --noise`: the test
//! pattern under 15 % snow, 1280x720@30, with the capture clock painted in), at its default
//! 2500 kbit/s. Each headless Chromium runs in a network namespace of its own, joined to
//! robocast's by a veth whose robocast side is shaped with `tc tbf` (rate, a 32 kB bucket,
//! 100 ms of queue): the link to that browser. Measured in the robot page itself:
//!
//! * one viewer behind 3, 1.5, 0.8 and 0.5 Mbit/s: decoded frames/s, freezes (a gap of over
//!   200 ms between shown pictures), glass-to-glass (the painted clock read from every
//!   presented frame), the bitrate delivered, the picture size and tier, the estimate;
//! * four viewers, three on an unshaped link (one browser, a window each) and one behind
//!   0.8 Mbit/s: what each gets, and robocast's CPU with the two tiers at work; then the
//!   slow link widens to 3 Mbit/s: how long until that viewer is back on the top tier, and
//!   robocast's CPU once every viewer is on one tier.
//!
//! `ROBOCAST_BENCH_QUICK=1` runs each part briefly and writes nothing (CI checks it runs).
//! `ROBOCAST_TRACE_LINK=1` prints the slow viewer's tier and estimate every 100 ms while
//! it waits to be back on the top tier, and the lone viewer's every 250 ms. RTCBot's
//! virtualenv is made before the namespace (`make bench` makes it; inside, pip cannot
//! reach the package index);
//! `ROBOCAST_BENCH_NO_RTCBOT=1` leaves RTCBot out.
//!
//! `ROBOCAST_BENCH_CODEC=vp8` runs robocast's rounds again with every page offering VP8
//! only, as a browser without H.264 does (its own section of BENCHMARKS.md; RTCBot, VP8
//! already, is left out).

#[path = "../tests/common/mod.rs"]
mod common;
// Shared with the viewers benchmark, which uses all of it.
#[allow(dead_code)]
#[path = "viewers/daemon.rs"]
mod daemon;
#[path = "viewers/page.rs"]
mod page;
#[path = "shared/report.rs"]
mod shared;

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use common::browser::{Browser, Page};
use common::http;
use daemon::{Daemon, Sender, StampedSource, Usage};

use serde::Deserialize;
use serde_json::{Value, json};
use shared::{Machine, max, median, percentile};

const SIZE: &str = "1280x720";
const FPS: u64 = 30;
const START_TIMEOUT: Duration = Duration::from_secs(30);
const CLOCK_TICKS_PER_S: f64 = 100.0;
/// The links of the one-viewer rounds, kbit/s.
const LINKS: [u32; 4] = [3000, 1500, 800, 500];
const SLOW_LINK: u32 = 800;
/// Chromium's DevTools port in its namespace, and the relay's that the benchmark reaches.
const DEVTOOLS: u16 = 9222;
const DEVTOOLS_RELAY: u16 = 9223;
const WIDE_LINK: u32 = 3000;
/// A gap longer than this between two pictures shown is a freeze.
const FREEZE: f64 = 200.0;
const PLAYING: &str = "window.robocast?.state === 'connected' && window.__bench?.firstFrame !== null";
const MARKERS: shared::Markers =
    ("<!-- thin-link results: written by `make bench` -->", "<!-- end of thin-link results -->");
const VP8_MARKERS: shared::Markers = (
    "<!-- VP8 thin-link results: written by `ROBOCAST_BENCH_CODEC=vp8 cargo bench --bench links` -->",
    "<!-- end of VP8 thin-link results -->",
);
/// Injected into each page when [`vp8_only`]: its video transceiver offers VP8 and nothing
/// else, as a browser without H.264.
const VP8_ONLY: &str = "(() => { const add = RTCPeerConnection.prototype.addTransceiver; \
    RTCPeerConnection.prototype.addTransceiver = function (...args) { const t = add.apply(this, args); \
    if (t.receiver.track.kind === 'video') t.setCodecPreferences(RTCRtpReceiver.getCapabilities('video') \
    .codecs.filter((c) => c.mimeType === 'video/VP8')); return t; }; })()";

fn quick() -> bool {
    std::env::var_os("ROBOCAST_BENCH_QUICK").is_some_and(|v| v == "1")
}

/// How long a viewer settles (the estimate converges, tiers move) and is then measured.
/// Whether the pages offer VP8 only (`ROBOCAST_BENCH_CODEC=vp8`).
fn vp8_only() -> bool {
    std::env::var_os("ROBOCAST_BENCH_CODEC").is_some_and(|v| v == "vp8")
}

/// A robot page as this benchmark opens it (VP8 only, when [`vp8_only`]).
async fn open_viewer(browser: &Browser, url: &str) -> Result<Page> {
    page::open_viewer(browser, url, if vp8_only() { &[VP8_ONLY] } else { &[] }).await
}

fn settle() -> Duration {
    Duration::from_secs(if quick() { 3 } else { 10 })
}

fn window() -> Duration {
    Duration::from_secs(if quick() { 3 } else { 15 })
}

fn progress(message: &str) {
    eprintln!("bench: {message}");
}

fn main() -> Result<()> {
    if std::env::var_os("ROBOCAST_BENCH_NETNS").is_none() {
        // RTCBot's virtualenv comes from the package index, which the namespace cannot
        // reach: made here, before (the run inside finds it made).
        if std::env::var_os("ROBOCAST_BENCH_NO_RTCBOT").is_none() && !vp8_only() {
            let root = env!("CARGO_MANIFEST_DIR");
            let made = Command::new("sh").arg(format!("{root}/benches/links/rtcbot.sh")).output();
            if !made.as_ref().is_ok_and(|out| out.status.success()) {
                progress("warning: RTCBot's virtualenv could not be made; the run will say why");
            }
        }
        // Re-run in a network namespace of our own, where links can be made and shaped.
        let exe = std::env::current_exe()?;
        let status = Command::new("unshare")
            .args(["--map-root-user", "--net", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
            .arg(exe)
            .args(std::env::args().skip(1))
            .env("ROBOCAST_BENCH_NETNS", "1")
            .status()
            .context("running unshare")?;
        if !status.success() {
            bail!("the benchmark failed in its namespace ({status})");
        }
        return Ok(());
    }
    shared::block_on(run())
}

/// Runs `program` with `args`, failing with its stderr.
fn run_command(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program).args(args).output().with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// One browser's link: a veth `vh<n>` (robocast's side, 10.9.<n>.1) to `vc<n>` in the
/// browser's own namespace (10.9.<n>.2), shaped on robocast's side.
struct Link {
    n: u8,
}

impl Link {
    fn host(&self) -> String {
        format!("10.9.{}.1", self.n)
    }

    /// The command Chromium is started through: a new network namespace that waits for
    /// its end of the veth, configures it, starts a relay to Chromium's DevTools (which
    /// listens on loopback only) and then runs the browser.
    fn prefix(&self) -> Vec<String> {
        let n = self.n;
        let relay = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/links/relay.py");
        let script = format!(
            "while ! ip link show vc{n} >/dev/null 2>&1; do sleep 0.05; done; \
             ip link set lo up && ip addr add 10.9.{n}.2/24 dev vc{n} && ip link set vc{n} up \
             && ip route add default via 10.9.{n}.1 || exit 1; \
             /usr/bin/python3 {relay} 10.9.{n}.2 {DEVTOOLS_RELAY} {DEVTOOLS} & relay=$!; \
             \"$0\" \"$@\"; status=$?; kill $relay; exit $status"
        );
        ["unshare", "--net", "sh", "-c", &script].map(String::from).to_vec()
    }

    /// Makes the veth into the namespace of `pid` once it has one of its own.
    async fn connect(&self, pid: u32, kbps: Option<u32>) -> Result<()> {
        let own = std::fs::read_link("/proc/self/ns/net")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(format!("/proc/{pid}/ns/net"))? == own {
            if Instant::now() > deadline {
                bail!("the browser's namespace was not made");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (n, pid) = (self.n, pid.to_string());
        run_command(
            "ip",
            &[
                "link",
                "add",
                &format!("vh{n}"),
                "type",
                "veth",
                "peer",
                "name",
                &format!("vc{n}"),
                "netns",
                &pid,
            ],
        )?;
        run_command("ip", &["addr", "add", &format!("10.9.{n}.1/24"), "dev", &format!("vh{n}")])?;
        run_command("ip", &["link", "set", &format!("vh{n}"), "up"])?;
        self.shape(kbps)
    }

    /// Shapes what robocast sends this browser to `kbps` (`None`: as fast as the veth).
    fn shape(&self, kbps: Option<u32>) -> Result<()> {
        let dev = format!("vh{}", self.n);
        let _ = Command::new("tc").args(["qdisc", "del", "dev", &dev, "root"]).output();
        if let Some(kbps) = kbps {
            let rate = format!("{kbps}kbit");
            run_command(
                "tc",
                &[
                    "qdisc", "add", "dev", &dev, "root", "tbf", "rate", &rate, "burst", "32kb", "latency",
                    "100ms",
                ],
            )?;
        }
        Ok(())
    }

    /// A headless Chromium behind this link.
    async fn browser(&self, kbps: Option<u32>) -> Result<Browser> {
        let devtools = format!("--remote-debugging-port={DEVTOOLS}");
        let relayed = format!("10.9.{}.2:{DEVTOOLS_RELAY}", self.n);
        let reach = |endpoint: String| endpoint.replacen(&format!("127.0.0.1:{DEVTOOLS}"), &relayed, 1);
        Browser::launch_via(&self.prefix(), &[devtools], async |pid| self.connect(pid, kbps).await, reach)
            .await
    }
}

/// The page's inbound video now: `[ms, bytes received, width, height, packets lost, PLIs
/// sent]`.
const INBOUND: &str = "(async () => { let v = null; \
    (await window.robocast.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') v = r; }); \
    return v ? [performance.now(), v.bytesReceived, v.frameWidth || 0, v.frameHeight || 0, \
    v.packetsLost || 0, v.pliCount || 0] : null; })()";

#[derive(Deserialize)]
struct Window {
    samples: Vec<[Option<f64>; 4]>,
    fps: f64,
}

/// What one viewer got over a window.
#[derive(Clone, Debug, Default)]
struct Got {
    fps: f64,
    freezes: usize,
    longest_gap_ms: f64,
    g2g_p50: f64,
    g2g_p95: f64,
    kbps: f64,
    /// Packets lost, and key frames the browser asked for (PLI), over the window.
    lost: f64,
    plis: f64,
    size: String,
    tier: Option<u64>,
    estimate_kbps: Option<u64>,
}

async fn start_window(page: &Page) -> Result<Value> {
    page.eval(&format!("window.__bench.sourceWidth = {}", SIZE.split('x').next().unwrap_or("1280"))).await?;
    page.eval("window.__bench.start()").await?;
    page.eval(INBOUND).await
}

async fn end_window(daemon: &Daemon, robocast: bool, page: &Page, before: &Value) -> Result<Got> {
    let after = page.eval(INBOUND).await?;
    let measured: Window = serde_json::from_value(page.eval("window.__bench.stop()").await?)?;
    let (Some(a), Some(b)) = (before.as_array(), after.as_array()) else { bail!("no inbound video stats") };
    let num = |v: &[Value], i: usize| v.get(i).and_then(Value::as_f64).unwrap_or(0.0);
    let seconds = (num(b, 0) - num(a, 0)) / 1000.0;
    let stamps: Vec<f64> = measured.samples.iter().filter_map(|s| s[0]).collect();
    let gaps: Vec<f64> = stamps.windows(2).map(|w| w[1] - w[0]).collect();
    let ages: Vec<f64> = measured.samples.iter().filter_map(|s| s[2]).collect();
    let entry = if robocast { session_of(daemon.addr, page).await? } else { Value::Null };
    let wanted = if vp8_only() { "vp8" } else { "h264" };
    if robocast && entry["video_codec"] != wanted {
        bail!("the page's video is {}, not {wanted}", entry["video_codec"]);
    }
    Ok(Got {
        fps: measured.fps,
        freezes: gaps.iter().filter(|&&g| g > FREEZE).count(),
        longest_gap_ms: max(&gaps),
        g2g_p50: median(&ages),
        g2g_p95: percentile(&ages, 0.95),
        kbps: (num(b, 1) - num(a, 1)) * 8.0 / 1000.0 / seconds.max(0.001),
        lost: num(b, 4) - num(a, 4),
        plis: num(b, 5) - num(a, 5),
        size: format!("{}x{}", num(b, 2), num(b, 3)),
        tier: entry["tier"].as_u64(),
        estimate_kbps: entry["link"]["target_bps"].as_u64().map(|b| b / 1000),
    })
}

/// robocast's `/api/sessions` entry of the session `page` has.
async fn session_of(addr: std::net::SocketAddr, page: &Page) -> Result<Value> {
    let session = page.eval("window.robocast.session").await?;
    let sessions = http::get(addr, "/api/sessions").await.json();
    let entry =
        sessions["sessions"].as_array().and_then(|all| all.iter().find(|s| s["id"] == session)).cloned();
    Ok(entry.unwrap_or(Value::Null))
}

/// Measures `pages` over one window, all at once, with the sender's CPU over it.
async fn measure(daemon: &Daemon, robocast: bool, pages: &[&Page]) -> Result<(Vec<Got>, Usage)> {
    let mut before = Vec::new();
    for page in pages {
        before.push(start_window(page).await?);
    }
    let feeds = || async {
        if robocast {
            http::get(daemon.addr, "/api/status").await.json()["feeds"].take()
        } else {
            Value::Null
        }
    };
    let (encoded, began) = (feeds().await, Instant::now());
    let usage = Usage::measure(daemon, window()).await?;
    if robocast {
        // What robocast's encoders made over the window (a browser short of frames that
        // robocast sent is short of CPU to decode them).
        let (now, seconds) = (feeds().await, began.elapsed().as_secs_f64());
        let fps = |feed: &str| {
            (now[feed]["frames"].as_f64().unwrap_or(0.0) - encoded[feed]["frames"].as_f64().unwrap_or(0.0))
                / seconds
        };
        let codec = if vp8_only() { "vp8" } else { "h264" };
        progress(&format!(
            "  encoded {:.1} frames/s on the top tier, {:.1} on the lower",
            fps(codec),
            fps(&format!("{codec}_lower"))
        ));
    }
    let mut got = Vec::new();
    for (page, before) in pages.iter().zip(&before) {
        got.push(end_window(daemon, robocast, page, before).await?);
    }
    Ok((got, usage))
}

async fn wait_playing(pages: &[&Page]) -> Result<()> {
    for page in pages {
        page.wait_for(PLAYING, START_TIMEOUT).await.context("the page did not play")?;
    }
    Ok(())
}

fn tracing() -> bool {
    std::env::var_os("ROBOCAST_TRACE_LINK").is_some()
}

/// One line of a session's tier and estimate, `start` being when the trace began.
fn trace_line(start: Instant, session: &Value) {
    let link = &session["link"];
    progress(&format!(
        "  {:4.1} s: tier {} estimate {} acked {} delay {} loss {} usage {}",
        start.elapsed().as_secs_f64(),
        session["tier"],
        link["target_bps"],
        link["acked_bps"],
        link["delay_based_bps"],
        link["loss_based_bps"],
        link["usage"]
    ));
}

/// With `ROBOCAST_TRACE_LINK=1`, prints the session of `page` every 250 ms for `lasting`.
async fn trace(robocast: bool, addr: std::net::SocketAddr, page: &Page, lasting: Duration) {
    let start = Instant::now();
    while robocast && tracing() && start.elapsed() < lasting {
        if let Ok(session) = session_of(addr, page).await {
            trace_line(start, &session);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls until the session of `page` is on `tier`; how long that took.
async fn time_to_tier(
    addr: std::net::SocketAddr,
    page: &Page,
    tier: u64,
    within: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let session = session_of(addr, page).await?;
        if tracing() {
            trace_line(start, &session);
        }
        if session["tier"] == json!(tier) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > within {
            bail!("the viewer was not on tier {tier} within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One sender's rounds.
struct Rounds {
    single: Vec<(u32, Got)>,
    four: Vec<Got>,
    four_usage: Usage,
    /// robocast only: the slow viewer back on the top tier, and every viewer after.
    widened: Option<(Duration, Vec<Got>, Usage)>,
}

fn row(sender: &str, link: &str, got: &Got) -> String {
    let tier = match got.tier {
        Some(0) => "top",
        Some(1) => "lower",
        _ => "–",
    };
    let ms = |v: f64| if v.is_nan() { "–".to_owned() } else { format!("{v:.0}") };
    format!(
        "| {sender} | {link} | {:.1} | {} | {} ms | {} / {} ms | {:.0} kbit/s | {:.0} / {:.0} | {} | {tier} | {} |\n",
        got.fps,
        got.freezes,
        ms(got.longest_gap_ms),
        ms(got.g2g_p50),
        ms(got.g2g_p95),
        got.kbps,
        got.lost,
        got.plis,
        got.size,
        got.estimate_kbps.map_or("–".into(), |k| format!("{k} kbit/s")),
    )
}

const HEADER: &str = "| sender | link | decoded frames/s | freezes (> 200 ms) | longest gap | glass-to-glass p50 / p95 | delivered | packets lost / PLIs | picture | tier | robocast's estimate |\n|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|\n";

fn mbit(kbps: u32) -> String {
    format!("{} Mbit/s", f64::from(kbps) / 1000.0)
}

fn markdown(machine: &str, senders: &[(&str, Rounds)]) -> String {
    let mut out = format!("{machine}\n\n### One viewer behind a link\n\n{HEADER}");
    for kbps in LINKS {
        for (name, rounds) in senders {
            if let Some((_, got)) = rounds.single.iter().find(|(k, _)| *k == kbps) {
                out.push_str(&row(name, &mbit(kbps), got));
            }
        }
    }
    let _ = write!(out, "\n### Four viewers, one behind {}\n\n{HEADER}", mbit(SLOW_LINK));
    for (name, rounds) in senders {
        for (i, got) in rounds.four.iter().enumerate() {
            let link = if i + 1 == rounds.four.len() { mbit(SLOW_LINK) } else { "open".into() };
            out.push_str(&row(name, &link, got));
        }
    }
    out.push('\n');
    for (name, rounds) in senders {
        let _ = writeln!(
            out,
            "{name}'s CPU with the four viewers: {:.1} % of one core, RSS peak {:.1} MB.",
            rounds.four_usage.cpu_percent, rounds.four_usage.rss_peak_mb
        );
    }
    for (name, rounds) in senders {
        let Some((back, after, one_tier)) = &rounds.widened else { continue };
        let _ = write!(
            out,
            "\nThen the slow link widened to {}: {name}'s slow viewer was back on the top tier {:.1} s later.\n\n{HEADER}",
            mbit(WIDE_LINK),
            back.as_secs_f64()
        );
        for (i, got) in after.iter().enumerate() {
            let link =
                if i + 1 == after.len() { format!("{} (widened)", mbit(WIDE_LINK)) } else { "open".into() };
            out.push_str(&row(name, &link, got));
        }
        let two = rounds.four_usage.cpu_percent;
        let _ = writeln!(
            out,
            "\n{name}'s CPU with the four viewers: {two:.1} % of one core on two tiers, {:.1} % on one: {:.2} ×.",
            one_tier.cpu_percent,
            two / one_tier.cpu_percent.max(0.1)
        );
    }
    out.push('\n');
    out
}

/// A sender as the benchmark drives it.
struct Running {
    daemon: Daemon,
    robocast: bool,
}

/// RTCBot (`benches/peers/rtcbot_sender.py`) on the same pictures, from its virtualenv.
async fn start_rtcbot(source: &StampedSource) -> Result<Daemon> {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("sh").arg(format!("{root}/benches/links/rtcbot.sh")).output()?;
    if !out.status.success() {
        bail!("making RTCBot's virtualenv: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let python = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(python)
        .arg(format!("{root}/benches/peers/rtcbot_sender.py"))
        .args(["--socket", &source.socket().display().to_string(), "--size", SIZE, "--fps", &FPS.to_string()])
        .args(["--listen", &format!("0.0.0.0:{port}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting RTCBot")?;
    let daemon = Daemon::adopt(child, std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    let deadline = Instant::now() + START_TIMEOUT;
    while tokio::net::TcpStream::connect(daemon.addr).await.is_err() {
        if Instant::now() > deadline {
            bail!("RTCBot did not answer within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(daemon)
}

/// The rounds against one sender; its links are numbered on from `next`.
async fn rounds(sender: &Running, next: &mut u8) -> Result<Rounds> {
    let (daemon, robocast) = (&sender.daemon, sender.robocast);
    let port = daemon.addr.port();
    let mut link = || {
        *next += 1;
        Link { n: *next }
    };
    let mut single = Vec::new();
    let links: &[u32] = if quick() { &LINKS[2..3] } else { &LINKS };
    for &kbps in links {
        progress(&format!("one viewer behind {kbps} kbit/s"));
        let link = link();
        let browser = link.browser(Some(kbps)).await?;
        let page = open_viewer(&browser, &format!("http://{}:{port}/", link.host())).await?;
        let got = match wait_playing(&[&page]).await {
            Ok(()) => {
                let measured = async {
                    tokio::time::sleep(settle()).await;
                    measure(daemon, robocast, &[&page]).await
                };
                let lasting = settle() + window();
                let (measured, _) = tokio::join!(measured, trace(robocast, daemon.addr, &page, lasting));
                measured?.0.remove(0)
            }
            // A sender that shows nothing on this link: that is the row.
            Err(error) => {
                progress(&format!("  no picture: {error:#}"));
                Got { longest_gap_ms: f64::NAN, g2g_p50: f64::NAN, g2g_p95: f64::NAN, ..Got::default() }
            }
        };
        progress(&format!("  {got:?}"));
        single.push((kbps, got));
        browser.close().await?;
        if robocast {
            daemon.wait_sessions(0).await?;
        }
    }

    progress(&format!("four viewers, one behind {SLOW_LINK} kbit/s"));
    let (open, slow) = (link(), link());
    let fast_browser = open.browser(None).await?;
    let mut pages = Vec::new();
    for _ in 0..3 {
        pages.push(open_viewer(&fast_browser, &format!("http://{}:{port}/", open.host())).await?);
    }
    let slow_browser = slow.browser(Some(SLOW_LINK)).await?;
    pages.push(open_viewer(&slow_browser, &format!("http://{}:{port}/", slow.host())).await?);
    let all: Vec<&Page> = pages.iter().collect();
    wait_playing(&all).await?;
    tokio::time::sleep(settle()).await;
    let (four, four_usage) = measure(daemon, robocast, &all).await?;
    progress(&format!("  {four:?}"));
    let mut widened = None;
    if robocast {
        slow.shape(Some(WIDE_LINK))?;
        let back = time_to_tier(daemon.addr, &pages[3], 0, Duration::from_secs(30)).await?;
        progress(&format!("  back on the top tier after {back:?}"));
        tokio::time::sleep(settle()).await;
        let (after, one_tier) = measure(daemon, robocast, &all).await?;
        progress(&format!("  {after:?}"));
        widened = Some((back, after, one_tier));
    }
    drop(all);
    slow_browser.close().await?;
    fast_browser.close().await?;
    Ok(Rounds { single, four, four_usage, widened })
}

async fn run() -> Result<()> {
    let began = Instant::now();
    let source = StampedSource::start_with(&["--noise"]).await?;
    let daemon = Daemon::start_on(Sender::Robocast, &source.source(), &[], [0, 0, 0, 0].into()).await?;
    let (encoder, kbps) = daemon.video_encoder().await;
    progress(&format!("robocast up at {} ({encoder} at {kbps} kbit/s)", daemon.addr));
    let mut next = 0u8;
    let robocast = Running { daemon, robocast: true };
    let mut senders = vec![("robocast", rounds(&robocast, &mut next).await?)];
    drop(robocast);
    // RTCBot is the comparison: if it cannot run, robocast's results still count.
    if std::env::var_os("ROBOCAST_BENCH_NO_RTCBOT").is_none() && !vp8_only() {
        progress("RTCBot 0.2.5 on the same pictures");
        match start_rtcbot(&source).await {
            Ok(daemon) => {
                let rtcbot = Running { daemon, robocast: false };
                match rounds(&rtcbot, &mut next).await {
                    Ok(r) => senders.push(("RTCBot 0.2.5", r)),
                    Err(error) => progress(&format!("warning: RTCBot was not measured: {error:#}")),
                }
            }
            Err(error) => progress(&format!("warning: RTCBot did not start: {error:#}")),
        }
    }
    let machine = Machine::describe();
    let machine = format!(
        "{}; each Chromium in a network namespace of its own behind a veth shaped with tbf; robocast {encoder} at {kbps} kbit/s; {} s in all",
        machine.line(),
        began.elapsed().as_secs()
    );
    let report = markdown(&machine, &senders);
    println!("{report}");
    if quick() {
        return Ok(());
    }
    if vp8_only() {
        return shared::write_section(VP8_MARKERS, "## A thin link in Chromium, VP8 only\n", &report);
    }
    shared::write_section(MARKERS, "## A thin link in Chromium\n", &report)
}
