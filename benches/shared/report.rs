//! What every benchmark's report needs: statistics, the machine it ran on, and its own
//! section of BENCHMARKS.md between markers. Shared by the benchmarks; each uses part.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};

/// Nearest-rank percentile (`p` in 0..=1) of unsorted values; NaN when empty.
pub(crate) fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p * sorted.len() as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
}

pub(crate) fn median(values: &[f64]) -> f64 {
    percentile(values, 0.5)
}

pub(crate) fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NAN, f64::max)
}

/// The machine and the code a run measured.
pub(crate) struct Machine {
    pub(crate) date: String,
    pub(crate) commit: String,
    pub(crate) cpu: String,
    pub(crate) memory: String,
    pub(crate) os: String,
}

impl Machine {
    pub(crate) fn describe() -> Machine {
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
        let mut commit = run("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
        let source = ["status", "--porcelain", "--", "src", "static", "Cargo.toml", "Cargo.lock"];
        if run("git", &source).is_some_and(|s| !s.is_empty()) {
            commit.push_str(" with uncommitted changes to its source");
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
        }
    }

    /// `<date>, robocast <commit>; <CPU>, <memory> RAM, <OS>`.
    pub(crate) fn line(&self) -> String {
        format!("{}, robocast {}; {}, {} RAM, {}", self.date, self.commit, self.cpu, self.memory, self.os)
    }
}

/// The markers around one part's results in BENCHMARKS.md.
pub(crate) type Markers = (&'static str, &'static str);

/// Replaces the text between `markers` in BENCHMARKS.md; if they are missing, appends
/// `intro` (the section's heading and text) and them.
pub(crate) fn write_section((begin_marker, end_marker): Markers, intro: &str, report: &str) -> Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let block = format!("{begin_marker}\n\n{report}{end_marker}");
    let new = match (old.find(begin_marker), old.find(end_marker)) {
        (Some(begin), Some(end)) if begin < end => {
            format!("{}{block}{}", &old[..begin], &old[end + end_marker.len()..])
        }
        _ => format!("{}\n{intro}\n{block}\n", old.trim_end()),
    };
    std::fs::write(&path, new).context("writing BENCHMARKS.md")?;
    eprintln!("bench: results written to BENCHMARKS.md");
    Ok(())
}

/// Runs a benchmark on the two-thread runtime every benchmark uses (the machine has two
/// cores; more workers would only measure the scheduler).
pub(crate) fn block_on(bench: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(bench)
}
