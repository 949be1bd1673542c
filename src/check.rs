//! `robocast check`: builds the configured pipelines for ~2 s and says what was chosen and
//! what each costs, or what to fix. One short block per track; `--verbose` adds the caps.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::media::{MediaHub, PipelineState, PipelineStatus};

/// How long the pipelines run before the verdict.
const OBSERVE: Duration = Duration::from_secs(2);
/// Encoder probes and device opening may take this long before the pipelines settle.
const SETTLE: Duration = Duration::from_secs(15);

pub async fn run(config: Config, verbose: bool) -> anyhow::Result<ExitCode> {
    let cancel = CancellationToken::new();
    let hub =
        MediaHub::start(&config, cancel.clone()).await.map_err(|e| anyhow::anyhow!("{e}; {}", e.hint()))?;
    let settled = tokio::time::timeout(SETTLE, hub.settled()).await.is_ok();
    tokio::time::sleep(OBSERVE).await;
    let mut ok = settled;
    let mut out = String::new();
    for status in hub.status() {
        let feed = if status.kind == "video" { &hub.h264 } else { &hub.audio };
        let frames = feed.as_ref().map_or(0, |f| f.stats.frames.load(Ordering::Relaxed));
        let healthy = status.state == PipelineState::Running && frames > 0;
        ok &= healthy;
        describe(&mut out, &status, healthy, verbose);
    }
    if hub.status().is_empty() {
        out.push_str("video and audio are both `none`: nothing to check\n");
    }
    print!("{out}");
    cancel.cancel();
    hub.stopped().await;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// One track's verdict: what runs, what it costs, or what is wrong and what to do.
fn describe(out: &mut String, s: &PipelineStatus, healthy: bool, verbose: bool) {
    let verdict = if healthy { "OK  " } else { "FAIL" };
    let encoder = match (s.encoder.as_deref(), s.hardware) {
        (Some("passthrough"), _) => "passed through (no encoder)".to_owned(),
        (Some(encoder), true) => format!("{encoder} (hardware)"),
        (Some(encoder), false) => format!("{encoder} (software)"),
        (None, _) => "-".to_owned(),
    };
    let _ = writeln!(out, "{:<5} {verdict}  source: {}  encoder: {encoder}", s.kind, s.source);
    let pad = " ".repeat(12);
    if let Some(format) = s.format() {
        let unit = if s.kind == "video" { "fps" } else { "packets/s" };
        let _ = writeln!(out, "{pad}{format}; measured {:.1} {unit}, {:.0} kbit/s", s.fps, s.kbps);
    }
    if let Some(latency) = s.latency_ms {
        let declared =
            s.declared_latency_ms.map(|d| format!(" (GStreamer declares {d:.1} ms)")).unwrap_or_default();
        let _ = writeln!(out, "{pad}latency: {latency:.1} ms from capture to encoded frame{declared}");
    }
    if let Some(error) = &s.error {
        let _ = writeln!(out, "{pad}error: {error}");
    }
    if let Some(hint) = &s.hint {
        let _ = writeln!(out, "{pad}fix: {hint}");
    }
    if verbose && let Some(caps) = &s.caps {
        let _ = writeln!(out, "{pad}caps: {caps}");
    }
}
