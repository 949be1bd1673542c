//! `robocast check`: builds the configured pipelines for ~2 s and says what was chosen,
//! or what to fix.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::media::{MediaHub, PipelineState};

/// How long the pipelines run before the verdict.
const OBSERVE: Duration = Duration::from_secs(2);
/// Encoder probes and device opening may take this long before the pipelines settle.
const SETTLE: Duration = Duration::from_secs(15);

pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let cancel = CancellationToken::new();
    let hub = MediaHub::start(&config, cancel.clone())?;
    let settled = tokio::time::timeout(SETTLE, hub.settled()).await.is_ok();
    tokio::time::sleep(OBSERVE).await;
    let mut ok = settled;
    for status in hub.status() {
        let feed = if status.kind == "video" { &hub.h264 } else { &hub.audio };
        let frames = feed.as_ref().map_or(0, |f| f.stats.frames.load(Ordering::Relaxed));
        let healthy = status.state == PipelineState::Running && frames > 0;
        ok &= healthy;
        println!(
            "{:<5} {}  source: {}  encoder: {}{}  caps: {}  frames: {}",
            status.kind,
            if healthy { "OK  " } else { "FAIL" },
            status.source,
            status.encoder.as_deref().unwrap_or("-"),
            if status.hardware { " (hardware)" } else { "" },
            status.caps.as_deref().unwrap_or("-"),
            frames,
        );
        if let Some(error) = &status.error {
            println!("      error: {error}");
        }
    }
    if hub.status().is_empty() {
        println!("video and audio are both `none`: nothing to check");
    }
    cancel.cancel();
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
