//! The benchmark's report: statistics over the measured frames, the machine it ran on,
//! the Markdown tables, and the results section of BENCHMARKS.md.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;

pub(crate) use super::shared::write_section;
use super::shared::{self, Markers, max, median, percentile};

use super::churn::Churn;
use super::{
    BrowserRound, CHROMIUM_STARTS, FPS, SIZE, Sample, SenderRounds, Usage, ViewerRound, ViewerWindow,
};

const RESULTS: Markers =
    ("<!-- results: written by `make bench`; edit the text around them -->", "<!-- end of results -->");
pub(crate) const EXTERNAL_MARKERS: Markers =
    ("<!-- external-source results: written by `make bench` -->", "<!-- end of external-source results -->");
pub(crate) const CHURN_MARKERS: Markers =
    ("<!-- churn results: written by `make bench` -->", "<!-- end of churn results -->");

/// What the external-source section says before its results when BENCHMARKS.md has none.
pub(crate) const EXTERNAL_INTRO: &str = "\
## An external source

A camera is not the test pattern: its pictures come from outside robocast's pipeline.
`cargo bench --bench viewers -- external` makes them in another process
(`benches/peers/stamped_source.py`: the test pattern with the capture time painted in, as
raw I420 over shared memory) and runs robocast on them through a `gst:` source, the
webrtcbin peer on the very same pictures through the same description, and robocast on
its own test pattern for comparison, each with 1 and 4 robot pages in Chromium, three
fresh starts each (see \"Why six starts\" above for why). *Capture → last packet
received* is the sender's share; glass-to-glass is read from the screen as above.
";

/// What the churn section says before its results when BENCHMARKS.md has none.
pub(crate) const CHURN_INTRO: &str = "\
## Viewers joining every 0.5 s

`cargo bench --bench viewers -- churn`: while one viewer watches, 40 decoding webrtc-rs
viewers join 0.5 s apart and each leaves (DELETE) a second after its first picture.
Measured: offer to first decoded picture of each joiner, how many joiners started from
the key frame the feed keeps, and the encoder's key frames per second over the churn,
which must stay within the 0.8 s throttle (robocast does not raise the key-frame rate
to serve joiners).
";

/// The comparison rows, measured once on this kind of machine, not by this run.
const REFERENCE_ROWS: &str = "\
| RTCBot 0.2.5 (aiortc, VP8, encodes per viewer), the issue's figures | 1 | 317 ms | 45 / 62 ms | – | 26 % | 211 MB |
| RTCBot 0.2.5, the issue's figures | 4 | 495 ms | 92 / 133 ms | – | 99 % | 646 MB |
| GStreamer webrtcbin, one shared x264 encoder, the issue's figures | 1 | 772 ms | 31 / 47 ms | – | 16 % | 112 MB |
| GStreamer webrtcbin, one shared x264 encoder, the issue's figures | 4 | 883 ms | 33 / 60 ms | – | 19 % | 113 MB |
";

const PEER: &str = "webrtcbin peer";

impl BrowserRound {
    pub(crate) fn new(viewers: usize) -> BrowserRound {
        let usage = Usage { cpu_percent: f64::NAN, rss_peak_mb: f64::NAN, anon_peak_mb: f64::NAN };
        BrowserRound { viewers, joined_first_frames: Vec::new(), windows: Vec::new(), usage }
    }

    pub(crate) fn add(&mut self, start: usize, windows: Vec<ViewerWindow>) {
        self.windows.extend(windows.into_iter().map(|w| (start, w)));
    }

    /// The glass-to-glass p50 of each sender start.
    fn p50_per_start(&self) -> Vec<f64> {
        (0..CHROMIUM_STARTS)
            .map(|start| median(&self.shown_ages(|s| s == start)))
            .filter(|p50| !p50.is_nan())
            .collect()
    }

    /// Capture to the display time of the first composited frame showing the picture.
    fn glass_to_glass(&self) -> Vec<f64> {
        self.shown_ages(|_| true)
    }

    fn shown_ages(&self, of_start: impl Fn(usize) -> bool) -> Vec<f64> {
        let windows = self.windows.iter().filter(|(start, _)| of_start(*start));
        windows.flat_map(|(_, w)| w.seen.shown.iter().map(|s| s.age)).collect()
    }

    /// Per-frame values of `f` over every frame the pages read.
    fn frames(&self, f: impl Fn(&Sample) -> Option<f64>) -> Vec<f64> {
        self.windows.iter().flat_map(|(_, w)| w.samples.iter().filter_map(&f)).collect()
    }

    /// Per picture both the page and the screencast saw: presentation to display time.
    fn presented_to_shown(&self) -> Vec<f64> {
        let mut waits = Vec::new();
        for (_, w) in &self.windows {
            for shown in &w.seen.shown {
                if let Some(presented) = w.samples.iter().find(|s| s.0 == shown.stamp).and_then(|s| s.2) {
                    waits.push(shown.age - presented);
                }
            }
        }
        waits
    }

    fn mean(&self, f: impl Fn(&ViewerWindow) -> Option<f64>) -> f64 {
        let values: Vec<f64> = self.windows.iter().filter_map(|(_, w)| f(w)).collect();
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// The machine, and what this benchmark adds to it: the browser and robocast's encoder.
pub(crate) struct Machine {
    base: shared::Machine,
    pub(crate) chromium: String,
    encoder: String,
    kbps: u64,
}

impl std::ops::Deref for Machine {
    type Target = shared::Machine;
    fn deref(&self) -> &shared::Machine {
        &self.base
    }
}

impl Machine {
    pub(crate) fn describe(chromium: &str, encoder: &str, kbps: u64) -> Machine {
        Machine {
            base: shared::Machine::describe(),
            chromium: chromium.into(),
            encoder: encoder.into(),
            kbps,
        }
    }
}

pub(crate) struct Report {
    pub(crate) machine: Machine,
    pub(crate) idle: Usage,
    pub(crate) viewer_rounds: Vec<ViewerRound>,
    pub(crate) first_webrtc: Vec<f64>,
    pub(crate) first_chromium: Vec<f64>,
    pub(crate) chromium_rounds: Vec<BrowserRound>,
    /// `benches/peers/webrtcbin.py`, measured like robocast's Chromium rounds.
    pub(crate) peer: Option<SenderRounds>,
    pub(crate) run_time: Duration,
}

impl Report {
    pub(crate) fn markdown(&self) -> String {
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
        let _ =
            writeln!(out, "Run {}, robocast {}, {:.0} s.\n", m.date, m.commit, self.run_time.as_secs_f64());
        let _ = writeln!(out, "- Machine: {}, {} RAM, {}", m.cpu, m.memory, m.os);
        let _ = writeln!(
            out,
            "- Stream: test sources, {SIZE}@{FPS}, {} at {} kbit/s (robocast's defaults)",
            m.encoder, m.kbps
        );
        let _ = writeln!(out, "- Browser: {} (headless, software decoding)\n", m.chromium);
    }

    fn viewers_table(&self, out: &mut String) {
        out.push_str("### webrtc-rs viewers (frames reassembled, not decoded)\n\n");
        out.push_str("| viewers | frames/s per viewer (min / mean) | robocast CPU (% of a core) ");
        out.push_str("| CPU ÷ CPU with 1 | robocast RSS peak | of which anonymous |\n");
        out.push_str("|---:|---:|---:|---:|---:|---:|\n");
        let row = |out: &mut String, viewers: usize, fps: String, usage: &Usage, ratio: String| {
            let (cpu, rss, anon) = (usage.cpu_percent, usage.rss_peak_mb, usage.anon_peak_mb);
            let _ =
                writeln!(out, "| {viewers} | {fps} | {cpu:.1} % | {ratio} | {rss:.1} MB | {anon:.1} MB |");
        };
        row(out, 0, "–".into(), &self.idle, "–".into());
        let one = self.cpu_with(1);
        for r in &self.viewer_rounds {
            let fps = format!("{:.1} / {:.1}", r.fps_min, r.fps_mean);
            row(out, r.viewers, fps, &r.usage, format!("{:.2}", r.usage.cpu_percent / one));
        }
        out.push('\n');
    }

    fn first_frame_table(&self, out: &mut String) {
        out.push_str("### Offer to first frame\n\n");
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
        if let Some(four) = self.chromium_rounds.iter().find(|r| r.viewers == 4) {
            row("Chromium, viewers 2–4 joining", &four.joined_first_frames);
        }
        out.push('\n');
    }

    /// robocast's Chromium rounds, then the peer's, each with the sender's name.
    fn senders(&self) -> impl Iterator<Item = (&'static str, &BrowserRound)> {
        let peer = self.peer.iter().flat_map(|p| p.rounds.iter().map(|r| (PEER, r)));
        self.chromium_rounds.iter().map(|r| ("robocast", r)).chain(peer)
    }

    fn latency_tables(&self, out: &mut String) {
        out.push_str("### Glass-to-glass in Chromium (capture clock read back from the composited page)\n\n");
        out.push_str("| sender | viewers | pictures read | p50 | p95 | max | p50 per start (min – max) ");
        out.push_str("| decoded frames/s per viewer (min / mean) | sender CPU | sender RSS peak |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (sender, r) in self.senders() {
            let g2g = r.glass_to_glass();
            let per_start = r.p50_per_start();
            let (start_min, start_max) =
                (per_start.iter().copied().fold(f64::NAN, f64::min), max(&per_start));
            let unreadable: usize = r.windows.iter().map(|(_, w)| w.seen.unreadable).sum();
            let fps_min = r.windows.iter().map(|(_, w)| w.fps).fold(f64::INFINITY, f64::min);
            let _ = writeln!(
                out,
                "| {sender} | {} | {}{} | {:.0} ms | {:.0} ms | {:.0} ms | {start_min:.0} – {start_max:.0} ms \
                 | {:.1} / {:.1} | {:.1} % | {:.1} MB |",
                r.viewers,
                g2g.len(),
                if unreadable > 0 { format!(" ({unreadable} unreadable)") } else { String::new() },
                percentile(&g2g, 0.5),
                percentile(&g2g, 0.95),
                max(&g2g),
                fps_min,
                r.mean(|w| Some(w.fps)),
                r.usage.cpu_percent,
                r.usage.rss_peak_mb
            );
        }
        if let Some(peer) = self.peer.as_ref().filter(|p| p.reloads > 0) {
            let _ = writeln!(
                out,
                "\nThe {PEER} left {} robot page(s) without video; each was reloaded once.",
                peer.reloads
            );
        }
        out.push_str("\nWhere the time goes (medians per frame; Chromium's own stats as means):\n\n");
        out.push_str("| sender | viewers | capture → last packet received | received → presented ");
        out.push_str("| capture → presented (p50 / p95) | presented → on screen ");
        out.push_str("| jitter buffer | decode | dropped frames | the player's own on-screen estimate |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (sender, r) in self.senders() {
            let received = r.frames(|s| s.1);
            let to_present = r.frames(|s| Some(s.2? - s.1?));
            let presented = r.frames(|s| s.2);
            let dropped: f64 = r.windows.iter().map(|(_, w)| w.dropped_frames).sum();
            let _ = writeln!(
                out,
                "| {sender} | {} | {:.1} ms | {:.1} ms | {:.0} / {:.0} ms | {:.1} ms | {:.1} ms | {:.1} ms \
                 | {dropped:.0} | {:.0} ms |",
                r.viewers,
                median(&received),
                median(&to_present),
                percentile(&presented, 0.5),
                percentile(&presented, 0.95),
                median(&r.presented_to_shown()),
                r.mean(|w| w.jitter_buffer_ms),
                r.mean(|w| w.decode_ms),
                median(&r.frames(|s| s.3)),
            );
        }
        out.push('\n');
    }

    fn comparison_table(&self, out: &mut String) {
        out.push_str("### Against other senders\n\n");
        out.push_str("| sender | viewers | first frame | glass-to-glass p50/p95 | capture → presented p50 ");
        out.push_str("| sender CPU (% of a core) | sender RSS |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
        let mut row = |name: &str, first_frames: &[f64], r: &BrowserRound| {
            let first = if r.viewers == 1 { first_frames } else { &r.joined_first_frames };
            let g2g = r.glass_to_glass();
            let _ = writeln!(
                out,
                "| {name} | {} | {:.0} ms | {:.0} / {:.0} ms | {:.0} ms | {:.0} % | {:.0} MB |",
                r.viewers,
                median(first),
                percentile(&g2g, 0.5),
                percentile(&g2g, 0.95),
                median(&r.frames(|s| s.2)),
                r.usage.cpu_percent,
                r.usage.rss_peak_mb
            );
        };
        let robocast = format!("**robocast** ({}, encodes once)", self.machine.encoder);
        for r in &self.chromium_rounds {
            row(&robocast, &self.first_chromium, r);
        }
        if let Some(peer) = &self.peer {
            for r in &peer.rounds {
                row(
                    "GStreamer webrtcbin, one shared x264enc (`benches/peers/webrtcbin.py`, this run)",
                    &peer.first_frames,
                    r,
                );
            }
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
        for r in &self.chromium_rounds {
            let g2g = r.glass_to_glass();
            let (p50, p95) = (percentile(&g2g, 0.5), percentile(&g2g, 0.95));
            let viewers =
                if r.viewers == 1 { "1 viewer".to_owned() } else { format!("{} viewers", r.viewers) };
            row(&format!("glass-to-glass p50 ≤ 30 ms, {viewers}"), format!("{p50:.0} ms"), p50 <= 30.0);
            row(&format!("glass-to-glass p95 ≤ 50 ms, {viewers}"), format!("{p95:.0} ms"), p95 <= 50.0);
        }
        let ratio = self.cpu_with(4) / self.cpu_with(1);
        row("CPU with 4 viewers ≤ 1.25 × CPU with 1", format!("{ratio:.2} ×"), ratio <= 1.25);
        let rss =
            self.viewer_rounds.iter().find(|r| r.viewers == 4).map_or(f64::NAN, |r| r.usage.rss_peak_mb);
        row("RSS ≤ 60 MB with 4 viewers", format!("{rss:.1} MB"), rss <= 60.0);
        out.push('\n');
    }

    fn cpu_with(&self, viewers: usize) -> f64 {
        self.viewer_rounds.iter().find(|r| r.viewers == viewers).map_or(f64::NAN, |r| r.usage.cpu_percent)
    }
}

/// Replaces the core results between their markers of BENCHMARKS.md.
pub(crate) fn write_results(report: &str) -> Result<()> {
    write_section(RESULTS, "", report)
}

/// The external-source section: the same pictures through robocast and the webrtcbin
/// peer, and robocast on its test pattern.
pub(crate) fn external_markdown(
    machine: &Machine,
    test: &SenderRounds,
    robocast: &SenderRounds,
    peer: &SenderRounds,
    took: Duration,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Run {}, {:.0} s; {}.\n", machine.line(), took.as_secs_f64(), machine.chromium);
    out.push_str("| sender, source | viewers | pictures read | capture → last packet received (p50) ");
    out.push_str(
        "| capture → presented (p50) | glass-to-glass p50 / p95 |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let rows = [
        ("robocast, test pattern", test),
        ("robocast, external source", robocast),
        ("webrtcbin peer, external source", peer),
    ];
    for (name, rounds) in rows {
        for r in &rounds.rounds {
            let g2g = r.glass_to_glass();
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {:.1} ms | {:.1} ms | {:.0} / {:.0} ms |",
                r.viewers,
                g2g.len(),
                median(&r.frames(|s| s.1)),
                median(&r.frames(|s| s.2)),
                percentile(&g2g, 0.5),
                percentile(&g2g, 0.95),
            );
        }
    }
    out.push_str("\n| target | measured | |\n|---|---|---|\n");
    let mut row = |target: String, measured: String, met: bool| {
        let verdict = if met { "met" } else { "**missed**" };
        let _ = writeln!(out, "| {target} | {measured} | {verdict} |");
    };
    for ((t, r), p) in test.rounds.iter().zip(&robocast.rounds).zip(&peer.rounds) {
        let (ours, theirs) = (median(&r.frames(|s| s.1)), median(&p.frames(|s| s.1)));
        row(
            format!("external source, {} viewer(s): capture → received p50 ≤ the peer's + 2 ms", r.viewers),
            format!("{ours:.1} ms against {theirs:.1} ms"),
            ours <= theirs + 2.0,
        );
        let (external, own) = (percentile(&r.glass_to_glass(), 0.5), percentile(&t.glass_to_glass(), 0.5));
        row(
            format!(
                "external source, {} viewer(s): glass-to-glass p50 no worse than on the test pattern",
                r.viewers
            ),
            format!("{external:.0} ms against {own:.0} ms"),
            external <= own,
        );
    }
    out.push('\n');
    out
}

/// The churn section: offer to first decoded frame of viewers joining every 0.5 s.
pub(crate) fn churn_markdown(machine: &Machine, churn: &Churn, took: Duration) -> String {
    let f = &churn.first_frames;
    let mut out = String::new();
    let _ = writeln!(out, "Run {}, {:.0} s.\n", machine.line(), took.as_secs_f64());
    out.push_str("| joiners | first decoded frame p50 / p95 / max | started from the kept key frame ");
    out.push_str("| encoder key frames per second during the churn |\n|---:|---:|---:|---:|\n");
    let _ = writeln!(
        out,
        "| {} in {:.0} s | {:.0} / {:.0} / {:.0} ms | {} | {:.2} |",
        f.len(),
        churn.seconds,
        median(f),
        percentile(f, 0.95),
        max(f),
        churn.replayed,
        churn.keyframes_per_s
    );
    let p95 = percentile(f, 0.95);
    let verdict = if p95 <= 150.0 { "met" } else { "**missed**" };
    let _ = writeln!(
        out,
        "\n| target | measured | |\n|---|---|---|\n| first frame p95 ≤ 150 ms, a viewer joining every 0.5 s | {p95:.0} ms | {verdict} |"
    );
    let keys = churn.keyframes_per_s;
    let verdict = if keys <= 1.25 { "met" } else { "**missed**" };
    let _ = writeln!(
        out,
        "| the encoder's key frames stay at most one per 0.8 s throttle | {keys:.2} per second | {verdict} |\n"
    );
    out
}
