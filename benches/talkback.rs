//! The talk-back benchmark (`make bench`; BENCHMARKS.md, "Talk-back", says what each
//! number means): how late a browser's sound reaches the robot's speaker and its camera
//! the robot's display, whether the sound's delay creeps over 30 minutes of talking, and
//! what talking costs robocast while four pages watch the robot.
//!
//! robocast runs as a child process, as in the other benchmarks, with the test sources
//! at 1280x720@30, its speaker and display being GStreamer `udpsink`s that the benchmark
//! reads (`talkback/sinks.rs`; the speaker's paced by its clock, as a sound card is), and
//! `--echo-cancel off` (a test tone is no microphone that could hear the speaker). A page
//! in headless Chromium (`talkback/page.js`: plain `RTCPeerConnection`, sendrecv audio
//! and video, `replaceTrack`) watches the robot and talks: a 1 kHz burst after silence
//! twice a second, made with WebAudio, and a canvas whose every picture carries a clock
//! stamp. Page clocks are put on the system clock by their measured offset.
//!
//! The sound and the picture are measured over the first two minutes of talking and
//! over two minutes after 30 (`ROBOCAST_BENCH_QUICK=1`: a few seconds each, one after
//! the other, to check that it all works). Then three more pages watch, and robocast's
//! CPU is read with the fourth page talking and with nobody talking.

#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)] // The viewers benchmark's daemon; this one uses part of it.
#[path = "viewers/daemon.rs"]
mod daemon;
#[path = "talkback/report.rs"]
mod report;
#[path = "shared/report.rs"]
mod shared;
#[path = "talkback/sinks.rs"]
mod sinks;

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use common::browser::{Browser, Page};
use common::http;
use daemon::{Daemon, Sender, Source, Usage};
use report::{Cpu, Record, Report, Sample};
use serde_json::{Value, json};
use sinks::{Heard, Shown, Sink};

const SIZE: &str = "1280x720";
const FPS: u64 = 30;
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// `getconf CLK_TCK`: 100 on every Linux this runs on.
const CLOCK_TICKS_PER_S: f64 = 100.0;
/// Chromium pages watching for the CPU part; the first talks.
const PAGES: usize = 4;
const PAGE_JS: &str = include_str!("talkback/page.js");

/// How long each part lasts.
struct Plan {
    /// Each window the delays are reported over.
    window: Duration,
    /// From the start of talking to the start of the last window.
    long: Duration,
    /// robocast's CPU is read over this long, with talk and without.
    cpu: Duration,
    /// Time for the watching pages' decoders to settle.
    warm_up: Duration,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            let window = Duration::from_secs(8);
            return Plan {
                window,
                long: window,
                cpu: Duration::from_secs(5),
                warm_up: Duration::from_secs(2),
            };
        }
        Plan {
            window: Duration::from_secs(120),
            long: Duration::from_secs(30 * 60),
            cpu: Duration::from_secs(30),
            warm_up: Duration::from_secs(5),
        }
    }
}

fn main() -> Result<()> {
    shared::block_on(run())
}

/// `ROBOCAST_BENCH_QUICK=1`: a short run that writes nothing, so CI can check the
/// benchmark still runs.
fn quick() -> bool {
    std::env::var_os("ROBOCAST_BENCH_QUICK").is_some_and(|v| v == "1")
}

fn progress(message: &str) {
    eprintln!("bench: {message}");
}

async fn run() -> Result<()> {
    let began = Instant::now();
    // The code and machine as the run starts (a commit during a long run is not measured).
    let machine = shared::Machine::describe();
    let plan = Plan::new(quick());
    let speaker = Sink::speaker()?;
    let display = Sink::display()?;
    let flags =
        ["--speaker", &speaker.speaker_spec(), "--display", &display.display_spec(), "--echo-cancel", "off"]
            .map(String::from);
    let daemon = Daemon::start_with(Sender::Robocast, &Source::Test, &flags).await?;
    let (encoder, kbps) = daemon.video_encoder().await;
    let playout = talkback(&daemon).await;
    ensure!(
        playout["speaker"]["output"]["running"] == true && playout["display"]["output"]["running"] == true,
        "robocast's speaker or display is not running: {playout}"
    );
    progress(&format!("robocast up at {} ({encoder} at {kbps} kbit/s)", daemon.addr));

    let browser = Browser::launch().await?;
    let version = browser.call("Browser.getVersion", json!({})).await?;
    let chromium = version["product"].as_str().unwrap_or("Chromium").to_owned();
    let url = format!("http://{}/healthz", daemon.addr);
    let talker = open_page(&browser, &url).await?;
    talker.wait_for("window.__tb.frames >= 30", START_TIMEOUT).await.context("the talker saw no robot")?;
    let taken = talker.eval("window.__tb.talk()").await?;
    ensure!(taken["status"] == 200, "the talker seat was refused: {taken}");
    let session = talker.eval("window.__tb.session").await?;
    progress(&format!("{chromium} talks (session {session}); waiting for its sound and picture"));

    let mut record = Record::default();
    let flowing = wait_flowing(&daemon, &talker, &speaker, &display, &mut record).await?;
    let total = plan.long + plan.window;
    progress(&format!(
        "talking for {:.0} s; windows of {:.0} s at the start and at the end",
        total.as_secs_f64(),
        plan.window.as_secs_f64()
    ));
    talk_until(&daemon, &talker, &speaker, &display, &mut record, flowing + total).await?;
    // The last bursts' way to the speaker.
    talk_until(&daemon, &talker, &speaker, &display, &mut record, Instant::now() + Duration::from_secs(1))
        .await?;
    let sending = talker.eval("window.__tb.sending()").await?;
    let talk_status = http::get(daemon.addr, "/api/status").await.json()["talkback"].clone();
    ensure!(talk_status["talker"] == session, "the talker lost its seat: {talk_status}");

    progress(&format!("{} more pages watch; robocast's CPU with one talking and with none", PAGES - 1));
    let mut pages = vec![talker];
    for _ in 1..PAGES {
        pages.push(open_page(&browser, &url).await?);
    }
    for page in &pages {
        page.wait_for("window.__tb.frames >= 30", START_TIMEOUT).await.context("a page did not play")?;
    }
    daemon.wait_sessions(PAGES).await?;
    tokio::time::sleep(plan.warm_up).await;
    let talking = cpu(&daemon, &pages, plan.cpu).await?;
    let stopped = pages[0].eval("window.__tb.stopTalking()").await?;
    ensure!(stopped["status"] == 200, "giving the talker seat back: {stopped}");
    wait_quiet(&daemon).await?;
    let quiet = cpu(&daemon, &pages, plan.cpu).await?;
    if let Err(error) = browser.close().await {
        progress(&format!("closing the browser: {error:#}"));
    }
    drop(daemon);

    let report = Report {
        machine,
        chromium,
        encoder,
        kbps,
        plan_window: plan.window,
        plan_long: plan.long,
        record,
        sending,
        talk_status,
        cpu: [talking, quiet],
        run_time: began.elapsed(),
    };
    let text = report.markdown();
    println!("{text}");
    report.check()?;
    if quick() {
        return Ok(());
    }
    shared::write_section(report::MARKERS, report::INTRO, &text)
}

/// A page of robocast's (so `fetch` is same-origin) turned into [`PAGE_JS`]'s page and
/// connected, alone in its own window: a headless Chromium renders only the front tab of
/// each window, and a page that does not render neither decodes nor draws.
async fn open_page(browser: &Browser, url: &str) -> Result<Page> {
    let blank =
        browser.call("Target.createTarget", json!({ "url": "about:blank", "newWindow": true })).await?;
    let page = browser.new_page(url).await?;
    browser.call("Target.closeTarget", json!({ "targetId": blank["targetId"] })).await?;
    page.eval(&format!("window.ROBOCAST_TOKEN = {:?}", common::OPERATOR_TOKEN)).await?;
    page.eval(PAGE_JS).await?;
    let connected = page.eval("window.__tb.connect()").await.context("connecting a page")?;
    ensure!(
        connected["location"].as_str().is_some_and(|l| l.starts_with("/api/sessions/")),
        "POST /api/connect answered without a session's Location: {connected}"
    );
    Ok(page)
}

/// `/api/status`'s `talkback`.
async fn talkback(daemon: &Daemon) -> Value {
    http::get(daemon.addr, "/api/status").await.json()["talkback"].clone()
}

/// Once a second: robocast's speaker and display status; every ten: what the page
/// scheduled and the sinks saw, and the page's clock offset. Until `deadline`.
async fn talk_until(
    daemon: &Daemon,
    page: &Page,
    speaker: &Sink<Heard>,
    display: &Sink<Shown>,
    record: &mut Record,
    deadline: Instant,
) -> Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut ticks = 0u64;
    while Instant::now() < deadline {
        tick.tick().await;
        let machine = MachineCpu::read()?;
        record.samples.push(Sample {
            at_ms: sinks::wall_ms(),
            playout: talkback(daemon).await,
            robocast_ticks: daemon.cpu_ticks()?,
            machine_ticks: (machine.busy, machine.total),
        });
        if ticks.is_multiple_of(10) {
            collect(page, speaker, display, record).await?;
        }
        ticks += 1;
    }
    collect(page, speaker, display, record).await
}

/// What the page and the sinks have since the last call, and the page's clock offset.
async fn collect(
    page: &Page,
    speaker: &Sink<Heard>,
    display: &Sink<Shown>,
    record: &mut Record,
) -> Result<()> {
    let skew = page.eval("window.__tb.skewMs()").await?.as_f64().context("skew is not a number")?;
    record.skews.push((sinks::wall_ms(), skew));
    let taken = page.eval("window.__tb.take()").await?;
    let numbers = |key: &str| -> Vec<f64> {
        taken[key].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default()
    };
    record.bursts.extend(numbers("bursts"));
    record.context_offsets.extend(numbers("offsets"));
    record.drawn = taken["drawn"].as_u64().unwrap_or(0);
    let heard = speaker.take();
    record.onsets.extend(heard.onsets);
    record.datagrams += heard.datagrams;
    record.peak = record.peak.max(heard.peak);
    let shown = display.take();
    record.stamps.extend(shown.stamps);
    record.unread += shown.unread;
    Ok(())
}

/// Until a burst has been heard at the speaker and a stamped picture read at the
/// display; returns when that was (the start of the first window).
async fn wait_flowing(
    daemon: &Daemon,
    page: &Page,
    speaker: &Sink<Heard>,
    display: &Sink<Shown>,
    record: &mut Record,
) -> Result<Instant> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let step = Instant::now() + Duration::from_millis(200);
        collect(page, speaker, display, record).await?;
        if !record.onsets.is_empty() && !record.stamps.is_empty() {
            record.talk_started_ms = sinks::wall_ms();
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!(
                "within {START_TIMEOUT:?}: {} bursts made, {} heard (loudest sample {:.3}), {} stamped pictures read \
                 ({} pictures unread); robocast: {}",
                record.bursts.len(),
                record.onsets.len(),
                record.peak,
                record.stamps.len(),
                record.unread,
                talkback(daemon).await
            );
        }
        tokio::time::sleep_until(step.into()).await;
    }
}

/// After the talker gave its seat back: robocast has no talker and shows the idle picture.
async fn wait_quiet(daemon: &Daemon) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let status = talkback(daemon).await;
        if status["talker"].is_null()
            && status["display"]["idle"] == true
            && status["speaker"]["playing"] == false
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("robocast still plays talk-back {START_TIMEOUT:?} after the talker stopped: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// robocast's CPU and the whole machine's over `window`, with the pages' decoded frame
/// rates of the robot's stream.
async fn cpu(daemon: &Daemon, pages: &[Page], window: Duration) -> Result<Cpu> {
    let before = frames(pages).await?;
    let machine = MachineCpu::read()?;
    let usage = Usage::measure(daemon, window).await?;
    let machine_cpu = machine.busy_percent()?;
    let after = frames(pages).await?;
    let fps = before.iter().zip(&after).map(|(a, b)| fps(a, b)).collect();
    Ok(Cpu { usage, machine_cpu, fps })
}

async fn frames(pages: &[Page]) -> Result<Vec<Value>> {
    let mut counts = Vec::new();
    for page in pages {
        let count = page.eval("window.__tb.framesDecoded()").await?;
        if count["visibility"] != "visible" {
            progress(&format!("warning: a page was {} (not rendering?)", count["visibility"]));
        }
        counts.push(count);
    }
    Ok(counts)
}

fn fps(before: &Value, after: &Value) -> f64 {
    let delta =
        |key: &str| after[key].as_f64().unwrap_or(f64::NAN) - before[key].as_f64().unwrap_or(f64::NAN);
    delta("decoded") / (delta("at") / 1000.0)
}

/// The whole machine's CPU time (`/proc/stat`), to say how busy the two cores were.
struct MachineCpu {
    busy: u64,
    total: u64,
}

impl MachineCpu {
    fn read() -> Result<MachineCpu> {
        let stat = std::fs::read_to_string("/proc/stat")?;
        let line =
            stat.lines().next().filter(|l| l.starts_with("cpu ")).context("no cpu line in /proc/stat")?;
        let ticks: Vec<u64> = line.split_whitespace().skip(1).filter_map(|t| t.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        let total: u64 = ticks.iter().take(8).sum();
        let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
        Ok(MachineCpu { busy: total - idle, total })
    }

    /// The share of all cores busy since `self`, in %.
    fn busy_percent(&self) -> Result<f64> {
        let now = MachineCpu::read()?;
        Ok(100.0 * (now.busy - self.busy) as f64 / (now.total - self.total).max(1) as f64)
    }
}
