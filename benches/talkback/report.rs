//! The talk-back benchmark's report: what was recorded, the delays computed from it, the
//! Markdown tables, and its section of BENCHMARKS.md.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use super::daemon::Usage;
use super::shared::{self, Markers, max, median, percentile};
use super::{CLOCK_TICKS_PER_S, FPS, PAGES, SIZE};

pub(crate) const MARKERS: Markers =
    ("<!-- talkback results: written by `make bench` -->", "<!-- end of talkback results -->");

/// A burst heard this long or more after it was made is not matched to it (the next
/// comes 500 ms after, and each lasts 100 ms).
const MATCH_WITHIN_MS: f64 = 450.0;
/// The delays are also shown in slices of this length, to show whether they creep.
const TREND_MS: f64 = 5.0 * 60_000.0;

/// What the section says before its results when BENCHMARKS.md has none.
pub(crate) const INTRO: &str = "\
## Talk-back: a browser's sound and camera on the robot

`cargo bench --bench talkback`: how late what a browser sends reaches the robot's speaker
and display (issue 11), whether that delay creeps over 30 minutes of talking, and what
talking costs robocast while four pages watch the robot.

- robocast: `--video test --audio test` (1280x720@30), `--echo-cancel off` (a test tone
  is not a microphone that could hear the speaker, so there is no echo to cancel; with
  it on, the speaker's output also goes through `webrtcechoprobe`), the default 50 ms
  playout buffer, and as speaker and display two GStreamer `udpsink`s on loopback that
  the benchmark reads (`benches/talkback/sinks.rs`, a blocking thread per sink stamping
  each datagram with the system clock):
  `--speaker 'gst:audio/x-raw,format=S16LE,rate=48000,channels=1 ! udpsink sync=true ...'`,
  paced by GStreamer's clock as a sound card is, 10 ms per datagram, so a datagram
  arrives when it plays; `--display 'gst:videoscale ! video/x-raw,width=320,height=180 !
  videoconvert ! video/x-raw,format=GRAY8 ! udpsink sync=false ...'`, one picture per
  datagram as it is shown.
- The talker: a page in headless Chromium (`benches/talkback/page.js`, plain
  `RTCPeerConnection`, not robocast.js) that watches the robot in a visible `<video>`,
  offers sendrecv audio and video to `POST /api/connect` as `application/sdp`, takes the
  talker seat (`POST /api/sessions/{id}/talker`) and swaps its senders' tracks with
  `replaceTrack`, as the robot page does.
- *Browser → speaker*: the page's sound is WebAudio: a 1 kHz burst of 100 ms at 0.5 of
  full scale, every 500 ms, after silence. Each onset is scheduled on the audio
  context's clock and put on the page's clock by the moment the render thread produces
  it (the context's `currentTime` steps as each 10 ms device period is rendered; the
  newest step against `performance.now()` gives the offset: when a microphone delivering
  that period would have heard it). At the speaker, the onset is the first sample at or
  above 0.15 with none for 200 ms before it (quieter sound around a burst's edges is
  Opus's smearing), its time the datagram's arrival plus its place in it.
- *Camera → display*: the page draws a 640x480 canvas (`captureStream(30)`) at up to
  30 pictures a second, each with a clock stamp: 32 black or white blocks, 8 by 4, the
  low 24 bits of the page's clock in whole ms and an 8-bit check, stamped when drawn. At
  the display, the stamp is read from the middle of each block of the 320x180 grey
  picture; pictures whose check fails are not counted.
- Page clocks (`performance.timeOrigin + performance.now()`) are put on the system clock
  by their offset from it, read every 10 s at `Date.now()`'s millisecond edges.
- *At the start* is the first two minutes once sound and picture arrive; *after 30
  minutes* the two minutes from minute 30 of talking without a pause. robocast's own
  view, `talkback.speaker` of `/api/status`, is read every second: `delay_ms` (what its
  playout buffer holds; the browser, the network, the decoder and the output's own
  buffering come on top) and the
  samples it played, dropped, stretched and filled with silence.
- *CPU*: then three more pages watch (four, each in its own window, decoding the 720p
  stream), and robocast's CPU (`/proc/<pid>/stat`) is read for 30 s with the first page
  talking and 30 s after it stopped.
- Targets (issue 11), on loopback: browser → speaker p50 ≤ 80 ms (no worse than 120 ms)
  and growing by ≤ 10 ms over 30 minutes; camera → display p50 ≤ 60 ms (no worse than
  100 ms).
";

/// One reading of `/api/status` and of the CPU clocks, while the page talks.
pub(crate) struct Sample {
    pub(crate) at_ms: f64,
    pub(crate) playout: Value,
    pub(crate) robocast_ticks: u64,
    /// The whole machine's busy and total ticks.
    pub(crate) machine_ticks: (u64, u64),
}

/// Everything recorded while the page talked; times are system ms unless named page ms.
#[derive(Default)]
pub(crate) struct Record {
    /// When sound and picture first arrived: the first window starts here.
    pub(crate) talk_started_ms: f64,
    pub(crate) samples: Vec<Sample>,
    /// (system ms, the page's clock less the system clock).
    pub(crate) skews: Vec<(f64, f64)>,
    /// Burst onsets as the page scheduled them, page ms.
    pub(crate) bursts: Vec<f64>,
    /// The audio context's clock less the page's at each burst (ms).
    pub(crate) context_offsets: Vec<f64>,
    /// Pictures the page drew.
    pub(crate) drawn: u64,
    /// Burst onsets at the speaker.
    pub(crate) onsets: Vec<f64>,
    pub(crate) datagrams: u64,
    /// The loudest sample the speaker played (0..1).
    pub(crate) peak: f32,
    /// (arrival, stamp in page ms) of each picture read at the display.
    pub(crate) stamps: Vec<(f64, f64)>,
    pub(crate) unread: u64,
}

/// robocast's CPU with the pages watching.
pub(crate) struct Cpu {
    pub(crate) usage: Usage,
    pub(crate) machine_cpu: f64,
    /// Each page's decoded frames per second of the robot's stream.
    pub(crate) fps: Vec<f64>,
}

pub(crate) struct Report {
    pub(crate) machine: shared::Machine,
    pub(crate) chromium: String,
    pub(crate) encoder: String,
    pub(crate) kbps: u64,
    pub(crate) plan_window: Duration,
    pub(crate) plan_long: Duration,
    pub(crate) record: Record,
    /// The page's outbound-rtp stats at the end of talking.
    pub(crate) sending: Value,
    /// `/api/status`'s `talkback` at the end of talking.
    pub(crate) talk_status: Value,
    /// With the first page talking, then with none.
    pub(crate) cpu: [Cpu; 2],
    pub(crate) run_time: Duration,
}

/// A time range of the run, system ms.
#[derive(Clone, Copy)]
struct Window {
    from: f64,
    to: f64,
}

impl Window {
    fn holds(self, t: f64) -> bool {
        (self.from..self.to).contains(&t)
    }
}

/// The delays of one kind, each with the time its sound or picture was made.
struct Delays(Vec<(f64, f64)>);

impl Delays {
    fn within(&self, w: Window) -> Vec<f64> {
        self.0.iter().filter(|(at, _)| w.holds(*at)).map(|(_, d)| *d).collect()
    }
}

impl Record {
    /// The page's clock less the system clock near system time `at`.
    fn skew(&self, at: f64) -> f64 {
        self.skews.iter().min_by(|a, b| (a.0 - at).abs().total_cmp(&(b.0 - at).abs())).map_or(0.0, |s| s.1)
    }

    /// Each burst on the system clock, and the delay to its onset at the speaker (None:
    /// not heard).
    fn bursts(&self) -> Vec<(f64, Option<f64>)> {
        let mut made: Vec<f64> = self.bursts.iter().map(|&b| b - self.skew(b)).collect();
        made.sort_by(f64::total_cmp);
        let mut delays: Vec<Option<f64>> = vec![None; made.len()];
        for &onset in &self.onsets {
            let Some(i) = made.partition_point(|&b| b <= onset).checked_sub(1) else { continue };
            let delay = onset - made[i];
            if delay < MATCH_WITHIN_MS && delays[i].is_none() {
                delays[i] = Some(delay);
            }
        }
        made.into_iter().zip(delays).collect()
    }

    /// Each picture read at the display (the first arrival of each stamp): the time it
    /// was drawn on the system clock, and its delay.
    fn pictures(&self) -> Delays {
        let mut seen = std::collections::HashSet::new();
        let delays = self
            .stamps
            .iter()
            .filter(|(_, stamp)| seen.insert(*stamp as i64))
            .map(|&(arrival, stamp)| {
                let drawn = stamp - self.skew(stamp);
                (drawn, arrival - drawn)
            })
            .collect();
        Delays(delays)
    }

    fn samples_in(&self, w: Window) -> Vec<&Sample> {
        self.samples.iter().filter(|s| w.holds(s.at_ms)).collect()
    }
}

/// `12.3 ms`; whole ms from 100 up.
fn ms(value: f64) -> String {
    if value.is_nan() {
        "–".into()
    } else if value.abs() < 100.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

fn signed_ms(value: f64) -> String {
    if value.is_nan() { "–".into() } else { format!("{value:+.1} ms") }
}

/// Met (≤ `aim`), within the limit, or missed.
fn verdict(value: f64, aim: f64, limit: f64) -> &'static str {
    if value <= aim {
        "met"
    } else if value <= limit {
        "**aim missed**, within the limit"
    } else {
        "**missed**"
    }
}

fn minutes(ms: f64) -> String {
    format!("{:.0}", ms / 60_000.0)
}

impl Report {
    /// The window at the start of talking and the one after `plan_long`.
    fn windows(&self) -> [(String, Window); 2] {
        let start = self.record.talk_started_ms;
        let (window, long) = (self.plan_window.as_secs_f64() * 1000.0, self.plan_long.as_secs_f64() * 1000.0);
        let name = |from: f64| {
            if window >= 60_000.0 {
                format!("minutes {}–{}", minutes(from), minutes(from + window))
            } else {
                format!("seconds {:.0}–{:.0}", from / 1000.0, (from + window) / 1000.0)
            }
        };
        [
            (name(0.0), Window { from: start, to: start + window }),
            (name(long), Window { from: start + long, to: start + long + window }),
        ]
    }

    /// An error when a window heard fewer than half its bursts or read no picture: then
    /// the figures measure nothing, and `make bench-check` should fail.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        let (sound, pictures) = (self.record.bursts(), self.record.pictures());
        for (name, w) in self.windows() {
            let made = sound.iter().filter(|(at, _)| w.holds(*at)).count();
            let heard = sound.iter().filter(|(at, d)| w.holds(*at) && d.is_some()).count();
            let read = pictures.within(w).len();
            anyhow::ensure!(
                made > 0 && heard * 2 >= made && read > 0,
                "{name}: {heard} of {made} bursts heard at the speaker, {read} pictures read at the display"
            );
        }
        Ok(())
    }

    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        self.header(&mut out);
        let (sound, pictures) = (self.record.bursts(), self.record.pictures());
        let heard = Delays(sound.iter().filter_map(|&(at, d)| d.map(|d| (at, d))).collect());
        self.sound_table(&mut out, &sound, &heard);
        self.speaker_table(&mut out);
        self.picture_table(&mut out, &pictures);
        self.trend(&mut out, &heard, &pictures);
        self.cpu_table(&mut out);
        self.targets_table(&mut out, &heard, &pictures);
        out
    }

    fn header(&self, out: &mut String) {
        let m = &self.machine;
        let secs = self.run_time.as_secs_f64();
        let _ = writeln!(out, "Run {}; {:.0} s; {}.\n", m.line(), secs, self.chromium);
        let _ = writeln!(
            out,
            "- robocast streams test sources, {SIZE}@{FPS}, {} at {} kbit/s, to the talking page",
            self.encoder, self.kbps
        );
        let (s, d) = (&self.talk_status["speaker"], &self.talk_status["display"]);
        let sending = |kind: &str| self.sending[kind]["codec"].as_str().unwrap_or("?").to_owned();
        let _ = writeln!(
            out,
            "- The page sends {} and {} ({}x{}, {} encoded pictures); robocast decodes the \
             pictures with {} ({}), plays into a {} ms buffer, echo canceller {}",
            sending("audio"),
            sending("video"),
            self.sending["video"]["width"],
            self.sending["video"]["height"],
            self.sending["video"]["frames"],
            d["decoder"].as_str().unwrap_or("?"),
            d["size"].as_str().unwrap_or("?"),
            s["buffer_ms"],
            self.talk_status["echo_cancel"].as_str().unwrap_or("?"),
        );
        let r = &self.record;
        let skews: Vec<f64> = r.skews.iter().map(|s| s.1).collect();
        let (lo, hi) = (skews.iter().copied().fold(f64::INFINITY, f64::min), max(&skews));
        let offsets = &r.context_offsets;
        let spread = max(offsets) - offsets.iter().copied().fold(f64::INFINITY, f64::min);
        let _ = writeln!(
            out,
            "- Page clock less the system clock: {lo:+.2} to {hi:+.2} ms (corrected); the audio \
             context's offset from the page clock moved over {spread:.1} ms across {} bursts",
            offsets.len()
        );
        let _ = writeln!(
            out,
            "- At the sinks: {} speaker datagrams; {} pictures read back of {} drawn, {} shown \
             whose stamp did not read (the idle picture before the first, or a check that \
             failed)\n",
            r.datagrams,
            r.stamps.len(),
            r.drawn,
            r.unread
        );
    }

    fn sound_table(&self, out: &mut String, sound: &[(f64, Option<f64>)], heard: &Delays) {
        out.push_str(
            "| browser → speaker | bursts made | heard | p50 | p95 | max | robocast CPU | machine CPU |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        let mut p = Vec::new();
        for (name, w) in self.windows() {
            let made = sound.iter().filter(|(at, _)| w.holds(*at)).count();
            let delays = heard.within(w);
            let (cpu, machine) = self.cpu_within(w);
            let _ = writeln!(
                out,
                "| {name} | {made} | {} | {} | {} | {} | {cpu:.0} % | {machine:.0} % |",
                delays.len(),
                ms(median(&delays)),
                ms(percentile(&delays, 0.95)),
                ms(max(&delays)),
            );
            p.push((median(&delays), percentile(&delays, 0.95)));
        }
        let _ = writeln!(
            out,
            "| growth | | | {} | {} | | | |\n",
            signed_ms(p[1].0 - p[0].0),
            signed_ms(p[1].1 - p[0].1)
        );
    }

    /// robocast's CPU (% of a core) and the machine's (% of its cores) between the
    /// samples of `w`.
    fn cpu_within(&self, w: Window) -> (f64, f64) {
        let samples = self.record.samples_in(w);
        let (Some(a), Some(b)) = (samples.first(), samples.last()) else { return (f64::NAN, f64::NAN) };
        let seconds = (b.at_ms - a.at_ms) / 1000.0;
        let robocast = 100.0 * (b.robocast_ticks - a.robocast_ticks) as f64 / CLOCK_TICKS_PER_S / seconds;
        let (busy, total) = (b.machine_ticks.0 - a.machine_ticks.0, b.machine_ticks.1 - a.machine_ticks.1);
        (robocast, 100.0 * busy as f64 / total.max(1) as f64)
    }

    fn speaker_table(&self, out: &mut String) {
        out.push_str(
            "| robocast's speaker (`/api/status`) | `delay_ms` p50 (min–max) | played | dropped | stretched | silence |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|\n");
        let count = |s: &Sample, key: &str| s.playout["speaker"][key].as_u64().unwrap_or(0);
        for (name, w) in self.windows() {
            let samples = self.record.samples_in(w);
            let delays: Vec<f64> =
                samples.iter().filter_map(|s| s.playout["speaker"]["delay_ms"].as_f64()).collect();
            let (Some(a), Some(b)) = (samples.first(), samples.last()) else { continue };
            let delta = |key: &str| count(b, key).saturating_sub(count(a, key));
            let low = delays.iter().copied().fold(f64::INFINITY, f64::min);
            let _ = writeln!(
                out,
                "| {name} | {} ({}–{}) | {} | {} | {} | {} |",
                ms(median(&delays)),
                ms(low),
                ms(max(&delays)),
                delta("samples_played"),
                delta("dropped_samples"),
                delta("stretched_samples"),
                delta("silence_samples"),
            );
        }
        let end = &self.talk_status["speaker"];
        let total = |key: &str| end[key].as_u64().unwrap_or(0);
        let _ = writeln!(
            out,
            "| whole run, at its end | {} (now) | {} | {} | {} | {} |\n",
            ms(end["delay_ms"].as_f64().unwrap_or(f64::NAN)),
            total("samples_played"),
            total("dropped_samples"),
            total("stretched_samples"),
            total("silence_samples"),
        );
        out.push_str(
            "Samples at 48 kHz. *Silence* is what robocast played from an empty or priming buffer \
             (before the first packet, or when packets came late); the pauses between the page's \
             bursts are sound it sent, and count as played.\n\n",
        );
    }

    fn picture_table(&self, out: &mut String, pictures: &Delays) {
        out.push_str("| camera → display | pictures read | per second | p50 | p95 | max |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|\n");
        for (name, w) in self.windows() {
            let delays = pictures.within(w);
            let rate = delays.len() as f64 / ((w.to - w.from) / 1000.0);
            let _ = writeln!(
                out,
                "| {name} | {} | {rate:.1} | {} | {} | {} |",
                delays.len(),
                ms(median(&delays)),
                ms(percentile(&delays, 0.95)),
                ms(max(&delays)),
            );
        }
        out.push('\n');
    }

    /// p50 / p95 in slices of [`TREND_MS`], for runs long enough to have several.
    fn trend(&self, out: &mut String, heard: &Delays, pictures: &Delays) {
        let end = self.record.talk_started_ms + (self.plan_long + self.plan_window).as_secs_f64() * 1000.0;
        if end - self.record.talk_started_ms < 2.0 * TREND_MS {
            return;
        }
        out.push_str("| minutes of talking | browser → speaker p50 / p95 | camera → display p50 / p95 |\n");
        out.push_str("|---|---:|---:|\n");
        let mut from = self.record.talk_started_ms;
        while from < end {
            let w = Window { from, to: (from + TREND_MS).min(end) };
            let (a, v) = (heard.within(w), pictures.within(w));
            let _ = writeln!(
                out,
                "| {}–{} | {} / {} | {} / {} |",
                minutes(w.from - self.record.talk_started_ms),
                minutes(w.to - self.record.talk_started_ms),
                ms(median(&a)),
                ms(percentile(&a, 0.95)),
                ms(median(&v)),
                ms(percentile(&v, 0.95)),
            );
            from += TREND_MS;
        }
        out.push('\n');
    }

    fn cpu_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "| {PAGES} pages watching {SIZE}@{FPS} | robocast CPU | RSS peak | machine CPU | robot's stream, decoded frames/s per page |"
        );
        out.push_str("|---|---:|---:|---:|---:|\n");
        let [talking, quiet] = &self.cpu;
        for (name, cpu) in [("one page talking (sound and camera)", talking), ("nobody talking", quiet)] {
            let lo = cpu.fps.iter().copied().fold(f64::INFINITY, f64::min);
            let _ = writeln!(
                out,
                "| {name} | {:.0} % | {:.1} MB | {:.0} % | {lo:.1}–{:.1} |",
                cpu.usage.cpu_percent,
                cpu.usage.rss_peak_mb,
                cpu.machine_cpu,
                max(&cpu.fps),
            );
        }
        let _ = writeln!(
            out,
            "| talk-back's cost | {:+.0} % of a core | {:+.1} MB | | |\n",
            talking.usage.cpu_percent - quiet.usage.cpu_percent,
            talking.usage.rss_peak_mb - quiet.usage.rss_peak_mb,
        );
    }

    fn targets_table(&self, out: &mut String, heard: &Delays, pictures: &Delays) {
        let [(start_name, start), (end_name, end)] = self.windows();
        let (a0, a1) = (median(&heard.within(start)), median(&heard.within(end)));
        let (v0, v1) = (median(&pictures.within(start)), median(&pictures.within(end)));
        let growth = a1 - a0;
        out.push_str("| target (issue 11), loopback | measured | |\n|---|---|---|\n");
        let rows = [
            (
                "browser → speaker p50 ≤ 80 ms (no worse than 120 ms)",
                format!("{}, {start_name}; {}, {end_name}", ms(a0), ms(a1)),
                verdict(a0.max(a1), 80.0, 120.0),
            ),
            (
                "browser → speaker growth ≤ 10 ms over 30 minutes",
                signed_ms(growth),
                verdict(growth, 10.0, 10.0),
            ),
            (
                "camera → display p50 ≤ 60 ms (no worse than 100 ms)",
                format!("{}, {start_name}; {}, {end_name}", ms(v0), ms(v1)),
                verdict(v0.max(v1), 60.0, 100.0),
            ),
        ];
        for (target, measured, verdict) in rows {
            let _ = writeln!(out, "| {target} | {measured} | {verdict} |");
        }
        out.push('\n');
    }
}
