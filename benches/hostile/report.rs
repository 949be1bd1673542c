//! The hostile benchmark's report: the machine, the tables, and its section of BENCHMARKS.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;

pub(crate) use super::shared::{Machine, percentile, write_section};

use super::Results;
use super::daemon::Outcome;
use super::inputs::Category;

const BEGIN: &str = "<!-- hostile-results:start -->";
const END: &str = "<!-- hostile-results:end -->";

/// What the section says before its results when BENCHMARKS.md has none yet.
const SECTION: &str = "\
## Hostile input

`cargo bench --bench hostile` starts robocast (test sources, 640x360@30, 16 viewers at
most), keeps one honest webrtc-rs viewer watching, and sends about 27,000 malformed or
hostile requests at about 400 per second from 16 tasks: broken SDP of every kind on the
three offer endpoints (mutations of a real offer), bad JSON, wrong content types, odd
methods and URLs, malformed HTTP and header floods, trickle garbage at live sessions and
DELETEs. Of the hostile offers robocast answers, four are kept alive as targets for
trickle and DELETE and the rest are deleted at once, so that odd offers keep finding a
free slot and get as far as a peer connection. It samples robocast's RSS every second,
then runs 300 connect/DELETE cycles and 100 clients that vanish without DELETE, and
reports how long their slots stay taken. Any 5xx is a finding.
`ROBOCAST_BENCH_QUICK=1` runs a short version and leaves this file alone; the other
knobs are at the top of `benches/hostile.rs`.
";

fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 * 1024.0 / 1e6)
}

fn outcomes(counts: &BTreeMap<Outcome, u64>) -> String {
    counts.iter().map(|(o, n)| format!("{o} ×{n}")).collect::<Vec<_>>().join(", ")
}

impl Results {
    pub(crate) fn markdown(&self, machine: &Machine) -> String {
        let mut out = String::new();
        let m = machine;
        let _ = writeln!(
            out,
            "Run {}, robocast {}, {:.0} s{}.\n",
            m.date,
            m.commit,
            self.run_time.as_secs_f64(),
            if self.quick { ", quick mode" } else { "" }
        );
        let _ = writeln!(out, "- Machine: {}, {} RAM, {}", m.cpu, m.memory, m.os);
        let _ = writeln!(
            out,
            "- robocast: test sources, 640x360@30, `--max-viewers 16`; one honest viewer watching throughout"
        );
        let _ = writeln!(
            out,
            "- Load: {} hostile requests in {:.1} s ({:.0}/s, target {}/s) from {} tasks, seed {:#x}\n",
            self.sent,
            self.load_time.as_secs_f64(),
            self.sent as f64 / self.load_time.as_secs_f64().max(1e-9),
            self.rate,
            self.tasks,
            self.seed
        );
        self.viewer_table(&mut out);
        self.memory_table(&mut out);
        self.categories_table(&mut out);
        self.findings(&mut out);
        self.accepted(&mut out);
        self.slots_table(&mut out);
        self.log_lines(&mut out);
        out
    }

    fn viewer_table(&self, out: &mut String) {
        out.push_str(
            "### The honest viewer\n\n| phase | frames/s (mean) | worst 1-s window |\n|---|---:|---:|\n",
        );
        for (phase, fps) in &self.viewer_fps {
            let _ = writeln!(out, "| {phase} | {:.1} | {:.0} |", fps.0, fps.1);
        }
        out.push('\n');
    }

    fn memory_table(&self, out: &mut String) {
        out.push_str(
            "### robocast's memory\n\n| when | requests sent | VmRSS | RssAnon |\n|---|---:|---:|---:|\n",
        );
        for point in &self.memory {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                point.what,
                point.requests,
                mb(point.rss),
                mb(point.anon)
            );
        }
        let _ = writeln!(
            out,
            "\nSlope after warm-up (least squares over the per-second samples while the load ran): \
             **{:+.1} MB VmRSS, {:+.1} MB RssAnon per 10,000 requests**.\n",
            self.slope.0, self.slope.1
        );
    }

    fn categories_table(&self, out: &mut String) {
        out.push_str("### Responses by category\n\n");
        out.push_str("| category | requests | responses | p95 / max time |\n|---|---:|---|---:|\n");
        let mut total: BTreeMap<Outcome, u64> = BTreeMap::new();
        for category in Category::ALL {
            let Some(stats) = self.by_category.get(&category) else { continue };
            let n: u64 = stats.outcomes.values().sum();
            for (o, c) in &stats.outcomes {
                *total.entry(*o).or_default() += c;
            }
            let _ = writeln!(
                out,
                "| {} | {n} | {} | {:.0} / {:.0} ms |",
                category.name(),
                outcomes(&stats.outcomes),
                percentile(&stats.millis, 0.95),
                percentile(&stats.millis, 1.0)
            );
        }
        let _ = writeln!(out, "| all | {} | {} | |\n", total.values().sum::<u64>(), outcomes(&total));
    }

    fn findings(&self, out: &mut String) {
        out.push_str("### 5xx, timeouts and refused connections\n\n");
        let limit: u64 = self.by_input.values().filter_map(|c| c.get(&Outcome::Status(503))).sum();
        if limit > 0 {
            let _ = writeln!(
                out,
                "- 503 (viewer limit reached) ×{limit}: the documented answer while 16 sessions exist; \
                 an answered offer that never connects holds its slot until the connect timeout."
            );
        }
        let mut any = false;
        for (name, counts) in &self.by_input {
            let bad: BTreeMap<Outcome, u64> = counts
                .iter()
                .filter(|(o, _)| o.is_finding() && **o != Outcome::Status(503))
                .map(|(o, n)| (*o, *n))
                .collect();
            if !bad.is_empty() {
                any = true;
                let _ = writeln!(out, "- `{name}`: {} (of {})", outcomes(&bad), counts.values().sum::<u64>());
            }
        }
        if !any {
            let none = if limit > 0 { "No other" } else { "None" };
            let _ = writeln!(
                out,
                "- {none}: every request got a 2xx or 4xx, or for malformed HTTP a closed connection."
            );
        }
        out.push('\n');
    }

    /// The SDP mutations robocast answered on some endpoint, endpoints merged.
    fn accepted(&self, out: &mut String) {
        let mut accepted: BTreeMap<&str, u64> = BTreeMap::new();
        for (name, counts) in self.by_input.iter().filter(|(name, _)| name.starts_with("sdp: ")) {
            let mutation =
                name["sdp: ".len()..].rsplit_once(" (POST").map_or(&name["sdp: ".len()..], |(m, _)| m);
            let ok: u64 = counts.iter().filter(|(o, _)| o.is_success()).map(|(_, n)| n).sum();
            if ok > 0 {
                *accepted.entry(mutation).or_default() += ok;
            }
        }
        let list: Vec<String> = accepted.iter().map(|(m, n)| format!("{m} ×{n}")).collect();
        let _ = writeln!(
            out,
            "### SDP mutations robocast answered (2xx, all endpoints)\n\n{}\n",
            if list.is_empty() { "None.".to_owned() } else { list.join("; ") }
        );
    }

    fn slots_table(&self, out: &mut String) {
        out.push_str("### Slots after connect/DELETE cycles and vanished clients\n\n");
        out.push_str("| clients | completed | offer → first frame p50 / max | slot freed after DELETE or close: p50 / p95 / max | still taken at the deadline |\n");
        out.push_str("|---|---:|---:|---:|---:|\n");
        for s in &self.slots {
            let _ = writeln!(
                out,
                "| {} | {} of {} | {:.0} / {:.0} ms | {:.2} / {:.2} / {:.2} s | {} |",
                s.what,
                s.completed,
                s.attempted,
                percentile(&s.first_frame_ms, 0.5),
                percentile(&s.first_frame_ms, 1.0),
                percentile(&s.freed_s, 0.5),
                percentile(&s.freed_s, 0.95),
                percentile(&s.freed_s, 1.0),
                s.still_taken
            );
        }
        for s in self.slots.iter().filter(|s| !s.errors.is_empty()) {
            let _ = writeln!(out, "\n{} failed: {}", s.what, s.errors.join("; "));
        }
        out.push('\n');
    }

    fn log_lines(&self, out: &mut String) {
        let mut lines: Vec<_> = self.log.iter().collect();
        lines.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        out.push_str("### robocast's log (ERROR and WARN lines, ids elided)\n\n");
        if lines.is_empty() {
            out.push_str("None.\n");
        }
        for (line, n) in lines.iter().take(12) {
            let _ = writeln!(out, "- ×{n} `{line}`");
        }
        if lines.len() > 12 {
            let _ = writeln!(out, "- … and {} other distinct lines", lines.len() - 12);
        }
        let _ = writeln!(out, "\nrobocast {} at the end.", self.exit);
    }
}

/// Replaces the hostile section's results in BENCHMARKS.md (adds the section if missing).
pub(crate) fn write_results(report: &str) -> Result<()> {
    write_section((BEGIN, END), SECTION, &format!("{report}\n"))
}
