//! The control benchmark's report: latency statistics, the Markdown tables, and its
//! section of BENCHMARKS.md.

use std::fmt::Write as _;
use std::time::Duration;

use super::daemon::Usage;
use super::program::Arrival;
use super::shared::{self, Markers, max, median, percentile};
use super::{DEADMAN_MS, FPS, PAGES, SIZE};

pub(crate) const MARKERS: Markers =
    ("<!-- control results: written by `make bench` -->", "<!-- end of control results -->");

/// The whole machine's CPU (%) with no video to any page above which something else
/// must have been running: quiet runs were at 14–36 %, a cargo build beside one at 99 %.
pub(crate) const BUSY_ALONE: f64 = 50.0;

/// What the section says before its results when BENCHMARKS.md has none.
pub(crate) const INTRO: &str = "\
## Driving: data-channel messages and the dead-man stop

`cargo bench --bench control`: how late messages travel between a browser and a robot
program on the control socket, and how late the dead-man stop comes. robocast streams
1280x720@30 (test sources, as above) to four pages in headless Chromium, each in its own
window: plain `RTCPeerConnection` pages (`benches/control/page.js`, not robocast.js)
with video, audio and the `control` and `state` channels. The first takes the driver
seat. A program on the control socket (`benches/control/program.rs`, blocking reads and
writes on threads of its own) stamps each line's arrival with the system clock and
sends telemetry to every page at 20 Hz.

- *Browser → program*: the driver sends 400 commands on `control` and 400 messages on
  `state`, each at 20 Hz, 25 ms apart, stamped with `performance.timeOrigin +
  performance.now()`; the program subtracts the stamp from its arrival time.
- *Program → browser*: the telemetry, `{\"to\":\"all\",\"channel\":\"state\",\"data\":{\"t\":...}}`
  stamped with the system clock as it is written, against its arrival on each page's
  `state` channel.
- Page clocks are corrected by their offset from the system clock, read at `Date.now()`'s
  millisecond edges before and after each round.
- *Dead-man*: 30 times, the driver sends 20 commands in a second and goes quiet; from the
  last command's arrival at the program to the arrival of `deadman`, less `deadman_ms`
  (300). robocast's own `silent_ms` in that line is its timer's share. With 30 cycles,
  p99 is the largest.
- *Video to none*: the same messages first with one page that does not watch (data
  channels only) while robocast still encodes: what they cost when nothing else
  competes for the two cores.
- Targets (issue 10), with video to four pages: messages p50 ≤ 2 ms and p99 ≤ 10 ms each
  way; the dead-man stop p99 ≤ `deadman_ms` + 20 ms after the last command.
";

/// One direction's messages: how many were sent and the latency of each that arrived.
pub(crate) struct Latencies {
    pub(crate) sent: u64,
    pub(crate) ms: Vec<f64>,
}

impl Latencies {
    /// The driver's messages on `channel` as the program received them; page time `t`
    /// less the page's `skew` is system time.
    pub(crate) fn from_browser(
        arrivals: &[Arrival],
        channel: &str,
        sent: Option<u64>,
        skew: f64,
    ) -> Latencies {
        let ms = arrivals
            .iter()
            .filter(|a| a.line["type"] == "message" && a.line["channel"] == channel)
            .filter_map(|a| a.line["data"]["t"].as_f64().map(|t| a.at_ms - (t - skew)))
            .collect();
        Latencies { sent: sent.unwrap_or(0), ms }
    }

    fn p50(&self) -> f64 {
        median(&self.ms)
    }

    fn p99(&self) -> f64 {
        percentile(&self.ms, 0.99)
    }

    fn row(&self, path: &str, load: &str) -> String {
        let arrived = self.ms.len();
        let (p50, p99, max) = (ms(self.p50()), ms(self.p99()), ms(max(&self.ms)));
        format!("| {path} | {load} | {} | {arrived} | {p50} | {p99} | {max} |\n", self.sent)
    }
}

/// The dead-man cycles.
#[derive(Default)]
pub(crate) struct Deadman {
    /// At the program: last command's arrival to `deadman`'s, less `deadman_ms`.
    pub(crate) past_ms: Vec<f64>,
    /// robocast's own `silent_ms` less `deadman_ms` (whole ms).
    pub(crate) own_past_ms: Vec<f64>,
    /// Cycles whose last command did not arrive (`control` does not retransmit).
    pub(crate) last_command_lost: usize,
}

/// The messages of one round, with the pages of that round.
pub(crate) struct Round {
    /// Pages with data channels (all watch, or the one that drives does not).
    pub(crate) pages: usize,
    pub(crate) control: Latencies,
    pub(crate) state: Latencies,
    /// The program's telemetry, as all pages received it.
    pub(crate) to_pages: Latencies,
    /// robocast's CPU while the messages flowed.
    pub(crate) usage: Usage,
    /// All cores' busy share meanwhile, in %.
    pub(crate) machine_cpu: f64,
    /// Each page's clock less the system clock, ms, before and after.
    pub(crate) skews: Vec<(f64, f64)>,
}

pub(crate) struct Report {
    pub(crate) machine: shared::Machine,
    pub(crate) chromium: String,
    pub(crate) encoder: String,
    pub(crate) kbps: u64,
    /// Decoded frames per second of each watching page over its round.
    pub(crate) fps: Vec<f64>,
    /// One page with data channels only: no video leaves robocast.
    pub(crate) baseline: Round,
    /// [`PAGES`] pages watching: what the targets are for.
    pub(crate) watched: Round,
    pub(crate) deadman: Deadman,
    pub(crate) run_time: Duration,
}

/// `0.84 ms`; whole ms from 10 up.
fn ms(value: f64) -> String {
    if value.is_nan() {
        "–".into()
    } else if value.abs() < 10.0 {
        format!("{value:.2} ms")
    } else {
        format!("{value:.0} ms")
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

fn range(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    (min, max(values))
}

impl Round {
    fn load(&self) -> String {
        if self.pages == 1 { "none (1 page, not watching)".into() } else { format!("{} pages", self.pages) }
    }
}

impl Report {
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        self.header(&mut out);
        self.message_table(&mut out);
        self.deadman_table(&mut out);
        self.targets_table(&mut out);
        out
    }

    fn header(&self, out: &mut String) {
        let m = &self.machine;
        let secs = self.run_time.as_secs_f64();
        let _ = writeln!(out, "Run {}; {:.0} s; {}.\n", m.line(), secs, self.chromium);
        let (fps_min, fps_max) = range(&self.fps);
        let (w, b) = (&self.watched, &self.baseline);
        let _ = writeln!(
            out,
            "- Stream: test sources, {SIZE}@{FPS}, {} at {} kbit/s; {fps_min:.1}–{fps_max:.1} decoded \
             frames/s per watching page",
            self.encoder, self.kbps,
        );
        let _ = writeln!(
            out,
            "- CPU while the messages flowed, video to {} / to none: robocast {:.0} / {:.0} % of a core, \
             the whole machine {:.0} / {:.0} % of its cores",
            w.pages, w.usage.cpu_percent, b.usage.cpu_percent, w.machine_cpu, b.machine_cpu,
        );
        if b.machine_cpu > BUSY_ALONE {
            let _ = writeln!(
                out,
                "- **Something else was busy**: the machine was {:.0} % busy with no video to any page \
                 (14–36 % when quiet), so these figures say more about it than about robocast",
                b.machine_cpu,
            );
        }
        let skews: Vec<(f64, f64)> = w.skews.iter().chain(&b.skews).copied().collect();
        let all: Vec<f64> = skews.iter().flat_map(|(a, b)| [*a, *b]).collect();
        let (skew_min, skew_max) = range(&all);
        let drift = skews.iter().map(|(a, b)| (b - a).abs()).fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "- Page clocks less the system clock: {skew_min:+.2} to {skew_max:+.2} ms (corrected), \
             drifting at most {drift:.2} ms in a round\n",
        );
    }

    fn message_table(&self, out: &mut String) {
        out.push_str("| path | video to | sent | arrived | p50 | p99 | max |\n");
        out.push_str("|---|---|---:|---:|---:|---:|---:|\n");
        let rows = |path: &str, latencies: fn(&Round) -> &Latencies| {
            [&self.watched, &self.baseline].map(|round| latencies(round).row(path, &round.load())).concat()
        };
        out.push_str(&rows("browser → program, `control` (unordered, no retransmits)", |r| &r.control));
        out.push_str(&rows("browser → program, `state` (ordered, reliable)", |r| &r.state));
        out.push_str(&rows("program → browser, `state`, to every page", |r| &r.to_pages));
        out.push('\n');
    }

    fn deadman_table(&self, out: &mut String) {
        let d = &self.deadman;
        let row = |what: &str, values: &[f64]| {
            let (p50, p99, max) = (ms(median(values)), ms(percentile(values, 0.99)), ms(max(values)));
            format!("| {what} | {} | {p50} | {p99} | {max} |\n", values.len())
        };
        let _ = writeln!(
            out,
            "| dead-man stop, past `deadman_ms`, video to {PAGES} pages | cycles | p50 | p99 | max |"
        );
        out.push_str("|---|---:|---:|---:|---:|\n");
        out.push_str(&row("at the program: last command's arrival → `deadman`'s arrival", &d.past_ms));
        out.push_str(&row("robocast's own `silent_ms` (whole ms)", &d.own_past_ms));
        if d.last_command_lost > 0 {
            let _ = writeln!(
                out,
                "\nIn {} cycles the last command was lost; those count from the last that arrived.",
                d.last_command_lost
            );
        }
        out.push('\n');
    }

    fn targets_table(&self, out: &mut String) {
        let w = &self.watched;
        let to_program = |f: fn(&Latencies) -> f64, limit: f64| {
            let (c, s) = (f(&w.control), f(&w.state));
            (format!("`control` {}, `state` {}", ms(c), ms(s)), c <= limit && s <= limit)
        };
        let to_pages = |f: fn(&Latencies) -> f64, limit: f64| {
            let value = f(&w.to_pages);
            (ms(value), value <= limit)
        };
        let deadman = percentile(&self.deadman.past_ms, 0.99);
        let deadman_target = format!("dead-man stop p99 ≤ {DEADMAN_MS} + 20 ms after the last command");
        let rows = [
            ("browser → program p50 ≤ 2 ms", to_program(Latencies::p50, 2.0)),
            ("browser → program p99 ≤ 10 ms", to_program(Latencies::p99, 10.0)),
            ("program → browser p50 ≤ 2 ms", to_pages(Latencies::p50, 2.0)),
            ("program → browser p99 ≤ 10 ms", to_pages(Latencies::p99, 10.0)),
            (&deadman_target, (format!("{DEADMAN_MS} + {}", ms(deadman)), deadman <= 20.0)),
        ];
        let _ = writeln!(out, "| target, video to {PAGES} pages | measured | |\n|---|---|---|");
        for (target, (measured, met)) in rows {
            let _ = writeln!(out, "| {target} | {measured} | {} |", verdict(met));
        }
        out.push('\n');
    }
}
