//! GStreamer work that blocks (the first init's plugin-registry scan, encoder probes,
//! state changes) runs on the blocking pool, so the async runtime that serves HTTP and
//! WebRTC keeps running; and shutdown returns only once every pipeline is stopped.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use robocast::media::PipelineState;

/// The longest the runtime may go without running a 20 ms ticker.
const MAX_STALL: Duration = Duration::from_millis(300);

/// Runs [`inner`] in a child process whose GStreamer registry is a new, empty file, so
/// its first `gst::init` rescans every plugin (most of a second on a small machine).
#[test]
fn the_runtime_keeps_running_while_gstreamer_works() {
    let registry = std::env::temp_dir().join(format!("robocast-cold-registry-{}.bin", std::process::id()));
    let _ = std::fs::remove_file(&registry);
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "inner", "--ignored", "--nocapture"])
        .env("GST_REGISTRY", &registry)
        .env("GST_REGISTRY_UPDATE", "yes")
        .output()
        .expect("the test binary runs");
    let _ = std::fs::remove_file(&registry);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

/// One runtime thread for everything; a ticker measures how long it was kept from running.
#[tokio::test]
#[ignore = "run by the_runtime_keeps_running_while_gstreamer_works with a cold registry"]
async fn inner() {
    let worst = Arc::new(AtomicU64::new(0));
    let ticker = {
        let worst = Arc::clone(&worst);
        tokio::spawn(async move {
            let mut last = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let gap = last.elapsed().as_millis() as u64;
                worst.fetch_max(gap, Ordering::Relaxed);
                last = Instant::now();
            }
        })
    };
    // Let the ticker take its first time before anything can block.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let daemon = common::start_daemon(|c| (c.width, c.height) = (320, 240)).await;
    let hub = daemon.media().clone();
    tokio::time::timeout(Duration::from_secs(20), hub.settled()).await.expect("pipelines settle");
    let mut video = hub.watch_status("video").expect("video");
    let running = video.wait_for(|s| s.state == PipelineState::Running);
    tokio::time::timeout(Duration::from_secs(10), running).await.expect("video runs").expect("status");
    daemon.shutdown().await;
    // Shutdown returned only after every pipeline stopped.
    for status in hub.status() {
        assert_eq!(status.state, PipelineState::Stopped, "{} still {:?}", status.kind, status.state);
    }
    ticker.abort();
    let worst = Duration::from_millis(worst.load(Ordering::Relaxed));
    println!("longest runtime stall: {worst:?}");
    assert!(worst < MAX_STALL, "the runtime was blocked for {worst:?}");
}
