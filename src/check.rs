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
    let produced = [hub.h264.as_ref(), hub.audio.as_ref()]
        .map(|feed| feed.map(|f| f.stats.frames.load(Ordering::Relaxed)));
    let mut ok = settled;
    for (status, frames) in hub.status().iter().zip(produced.iter().flatten()) {
        let healthy = status.state == PipelineState::Running && *frames > 0;
        ok &= healthy;
        println!(
            "{:<5} {}  source: {}  encoder: {}{}  caps: {}  frames in {} s: {}",
            status.kind,
            if healthy { "OK  " } else { "FAIL" },
            status.source,
            status.encoder.as_deref().unwrap_or("-"),
            if status.hardware { " (hardware)" } else { "" },
            status.caps.as_deref().unwrap_or("-"),
            OBSERVE.as_secs(),
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
