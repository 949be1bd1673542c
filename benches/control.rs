//! The control benchmark (`make bench`; BENCHMARKS.md, "Driving", says what each number
//! means): how late data-channel messages travel between a browser and a robot program
//! on the control socket, and how late the dead-man stop comes, while robocast streams
//! 1280x720@30 to four Chromium pages.
//!
//! robocast runs as a child process, as in the viewers benchmark. Pages in headless
//! Chromium, each in its own window, run `control/page.js`: plain `RTCPeerConnection`
//! with the `control` and `state` channels (and video and audio, when they watch). The
//! first page takes the driver seat. A program on the control socket
//! (`control/program.rs`) stamps what arrives with the system clock and sends telemetry
//! at 20 Hz. Measured:
//!
//! * browser → program: the driver sends a command on `control` and a message on `state`
//!   at 20 Hz each, stamped with its page clock;
//! * program → browser: the program's telemetry to all pages, stamped with the system
//!   clock, read on `state` by every page;
//! * the dead-man stop: the driver sends commands for a second and stops; from the last
//!   command's arrival at the program to the arrival of `deadman`, less `deadman_ms`.
//!
//! The messages are measured twice: first with one page that does not watch (so nothing
//! but the encoder competes for the two cores: the baseline), then with four pages that
//! watch, which is the case the targets are for, and where the dead-man is measured.
//! Page clocks are corrected by their measured offset from the system clock.

#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)] // The viewers benchmark's daemon; this one uses part of it.
#[path = "viewers/daemon.rs"]
mod daemon;
#[path = "control/program.rs"]
mod program;
#[path = "control/report.rs"]
mod report;
#[path = "shared/report.rs"]
mod shared;

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use common::browser::{Browser, Page};
use daemon::{Daemon, Sender, Source, Usage};
use program::{Arrival, Program};
use report::{Deadman, Latencies, Report, Round};
use serde_json::{Value, json};

const SIZE: &str = "1280x720";
const FPS: u64 = 30;
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// `getconf CLK_TCK`: 100 on every Linux this runs on.
const CLOCK_TICKS_PER_S: f64 = 100.0;
/// Chromium pages watching; the first drives.
const PAGES: usize = 4;
/// 20 Hz: how often the driver commands and the program sends telemetry.
const EVERY: Duration = Duration::from_millis(50);
/// robocast's default, given explicitly so the report cannot drift from it.
const DEADMAN_MS: u64 = 300;
/// Time for Chromium's jitter buffers and decoders to settle after the first frames.
const WARM_UP: Duration = Duration::from_secs(2);
/// Commands (and as many `state` messages) the driver sends in each round.
const MESSAGES: u32 = 400;
const DEADMAN_CYCLES: usize = 30;
/// Commands sent before each silence: a second of driving.
const COMMANDS_PER_CYCLE: u32 = 20;
const PAGE_JS: &str = include_str!("control/page.js");

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
    let (messages, cycles) = if quick() { (60, 3) } else { (MESSAGES, DEADMAN_CYCLES) };
    let (socket, _dir) = common::program::socket_path();
    let flags = ["--control-socket", &socket.display().to_string(), "--deadman-ms", &DEADMAN_MS.to_string()]
        .map(String::from);
    let daemon = Daemon::start_with(Sender::Robocast, &Source::Test, &flags).await?;
    let (encoder, kbps) = daemon.video_encoder().await;
    progress(&format!("robocast up at {} ({encoder} at {kbps} kbit/s)", daemon.addr));
    let mut robot = Program::connect(&socket)?;
    let hello = robot.expect("hello", Duration::from_secs(5)).await?;
    ensure!(hello.line["deadman_ms"] == DEADMAN_MS, "robocast's hello: {}", hello.line);

    let browser = Browser::launch().await?;
    let version = browser.call("Browser.getVersion", json!({})).await?;
    let chromium = version["product"].as_str().unwrap_or("Chromium").to_owned();
    let url = format!("http://{}/healthz", daemon.addr);

    progress(&format!("baseline: one page in {chromium} with data channels only"));
    let alone = open_page(&browser, &url, false).await?;
    daemon.wait_sessions(1).await?;
    take_seat(&alone, &mut robot).await?;
    let (baseline, _) = round(&daemon, std::slice::from_ref(&alone), &mut robot, messages, 0).await?;
    if baseline.machine_cpu > report::BUSY_ALONE {
        progress(&format!("warning: the machine is {:.0} % busy without video", baseline.machine_cpu));
    }
    alone.close().await?;
    daemon.wait_sessions(0).await?;

    progress(&format!("{PAGES} pages watching; the first drives"));
    let mut pages = Vec::new();
    for _ in 0..PAGES {
        pages.push(open_page(&browser, &url, true).await?);
    }
    for page in &pages {
        page.wait_for("window.__ctl.frames >= 30", START_TIMEOUT).await.context("a page did not play")?;
    }
    daemon.wait_sessions(PAGES).await?;
    take_seat(&pages[0], &mut robot).await?;
    tokio::time::sleep(WARM_UP).await;
    let frames_before = frames(&pages).await?;
    let (watched, deadman) = round(&daemon, &pages, &mut robot, messages, cycles).await?;
    let frames_after = frames(&pages).await?;
    if let Err(error) = browser.close().await {
        progress(&format!("closing the browser: {error:#}"));
    }
    drop(daemon);

    let report = Report {
        machine: shared::Machine::describe(),
        chromium,
        encoder,
        kbps,
        fps: frames_before.iter().zip(&frames_after).map(|(a, b)| fps(a, b)).collect(),
        baseline,
        watched,
        deadman,
        run_time: began.elapsed(),
    };
    let text = report.markdown();
    println!("{text}");
    if quick() {
        return Ok(());
    }
    shared::write_section(report::MARKERS, report::INTRO, &text)
}

/// A page of robocast's (so `fetch` is same-origin) turned into [`PAGE_JS`]'s page,
/// connected (`watch`: with video and audio), alone in its own window: a headless
/// Chromium renders only the front tab of each window, and a page that does not render
/// does not decode either.
async fn open_page(browser: &Browser, url: &str, watch: bool) -> Result<Page> {
    let blank =
        browser.call("Target.createTarget", json!({ "url": "about:blank", "newWindow": true })).await?;
    // `new_page` opens its tab in the newest window; closing the window's first tab
    // leaves it alone there.
    let page = browser.new_page(url).await?;
    browser.call("Target.closeTarget", json!({ "targetId": blank["targetId"] })).await?;
    page.eval(&format!("window.ROBOCAST_TOKEN = {:?}", common::OPERATOR_TOKEN)).await?;
    page.eval(PAGE_JS).await?;
    page.eval(&format!("window.__ctl.connect({watch})")).await.context("connecting a page")?;
    Ok(page)
}

/// `page` takes the driver seat; returns once the program has been told.
async fn take_seat(page: &Page, robot: &mut Program) -> Result<()> {
    let seat = page.eval("window.__ctl.takeSeat()").await?;
    ensure!(seat["status"] == 200, "the driver seat was refused: {seat}");
    let session = page.eval("window.__ctl.session").await?;
    while robot.expect("driver", Duration::from_secs(5)).await?.line["session"] != session {}
    Ok(())
}

/// With the program's telemetry flowing to `pages`: the driver (the first page) sends
/// `messages` commands and as many `state` messages, then goes through `cycles` dead-man
/// stops.
async fn round(
    daemon: &Daemon,
    pages: &[Page],
    robot: &mut Program,
    messages: u32,
    cycles: usize,
) -> Result<(Round, Deadman)> {
    let skews_before = skews(pages).await?;
    let telemetry = robot.telemetry()?;
    progress(&format!("{messages} commands and {messages} state messages at 20 Hz, telemetry to all"));
    let window = EVERY * messages;
    let cpu = MachineCpu::read()?;
    let (usage, sent) =
        tokio::join!(Usage::measure(daemon, window), send_messages(&pages[0], messages, robot));
    let (usage, machine_cpu) = (usage?, cpu.busy_percent()?);
    let (arrivals, sent) = sent?;
    if cycles > 0 {
        progress(&format!("{cycles} dead-man cycles"));
    }
    let mut deadman = Deadman::default();
    for _ in 0..cycles {
        deadman_cycle(&pages[0], robot, &mut deadman).await?;
    }
    let telemetry_sent = telemetry.finish()?;
    // The last line's way to the pages.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let skews_after = skews(pages).await?;
    let skews: Vec<(f64, f64)> = skews_before.into_iter().zip(skews_after).collect();
    let mut to_pages = Vec::new();
    for (page, (before, after)) in pages.iter().zip(&skews) {
        let received: Vec<(f64, f64)> = serde_json::from_value(page.eval("window.__ctl.take()").await?)?;
        let skew = (before + after) / 2.0;
        to_pages.extend(received.iter().map(|(t, at)| at - skew - t));
    }
    let driver_skew = (skews[0].0 + skews[0].1) / 2.0;
    let round = Round {
        pages: pages.len(),
        control: Latencies::from_browser(&arrivals, "control", sent["control"].as_u64(), driver_skew),
        state: Latencies::from_browser(&arrivals, "state", sent["state"].as_u64(), driver_skew),
        to_pages: Latencies { sent: telemetry_sent * pages.len() as u64, ms: to_pages },
        usage,
        machine_cpu,
        skews,
    };
    Ok((round, deadman))
}

/// Each page's clock minus the system clock, in ms.
async fn skews(pages: &[Page]) -> Result<Vec<f64>> {
    let mut skews = Vec::new();
    for page in pages {
        skews.push(page.eval("window.__ctl.skewMs()").await?.as_f64().context("skew is not a number")?);
    }
    Ok(skews)
}

/// Each page's decoded video frames, with the page's time of the count.
async fn frames(pages: &[Page]) -> Result<Vec<Value>> {
    let mut counts = Vec::new();
    for page in pages {
        let count = page.eval("window.__ctl.framesDecoded()").await?;
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

/// The driver sends `count` commands on `control` and `count` messages on `state` at
/// 20 Hz; returns what the program received up to the dead-man stop that follows the
/// last command, and what the page says it sent.
async fn send_messages(driver: &Page, count: u32, robot: &mut Program) -> Result<(Vec<Arrival>, Value)> {
    robot.drain();
    driver.eval("window.__ctl.sent = { control: 0, state: 0 }").await?;
    driver.eval(&format!("window.__ctl.drive({count}, true)")).await?;
    let (arrivals, fired) = until_deadman(robot, EVERY * count + START_TIMEOUT).await?;
    ensure!(fired.line["reason"] == "silence", "the dead-man fired for {}", fired.line);
    let sent = driver.eval("window.__ctl.sent").await?;
    Ok((arrivals, sent))
}

/// Everything the program receives up to the next `deadman` line, and that line.
async fn until_deadman(robot: &mut Program, timeout: Duration) -> Result<(Vec<Arrival>, Arrival)> {
    let deadline = Instant::now() + timeout;
    let mut arrivals = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(arrival) = robot.next(left).await else {
            bail!("no dead-man stop within {timeout:?} ({} lines before)", arrivals.len());
        };
        if arrival.line["type"] == "deadman" {
            return Ok((arrivals, arrival));
        }
        arrivals.push(arrival);
    }
}

/// A second of driving, then silence: the delay of the `deadman` line past `deadman_ms`
/// after the last command's arrival, at the program.
async fn deadman_cycle(driver: &Page, robot: &mut Program, deadman: &mut Deadman) -> Result<()> {
    robot.drain();
    driver.eval(&format!("window.__ctl.drive({COMMANDS_PER_CYCLE}, false)")).await?;
    let (arrivals, fired) = until_deadman(robot, START_TIMEOUT).await?;
    ensure!(fired.line["reason"] == "silence", "the dead-man fired for {}", fired.line);
    let commands: Vec<&Arrival> =
        arrivals.iter().filter(|a| a.line["type"] == "message" && a.line["channel"] == "control").collect();
    let last = commands.last().context("no command arrived before the dead-man stop")?;
    if last.line["data"]["i"] != COMMANDS_PER_CYCLE - 1 {
        deadman.last_command_lost += 1;
    }
    deadman.past_ms.push(fired.at_ms - last.at_ms - DEADMAN_MS as f64);
    let silent_ms = fired.line["silent_ms"].as_f64().context("deadman without silent_ms")?;
    deadman.own_past_ms.push(silent_ms - DEADMAN_MS as f64);
    // The page has stopped by now (silence fired); a breath before it drives again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
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
