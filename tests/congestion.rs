//! Congestion control with a real webrtc-rs viewer (it sends transport-wide feedback, as
//! browsers do): the session's estimate in `/api/sessions`, the encoder's bitrate in
//! `/api/status`, and a viewer behind a link thinner than the configured bitrate that
//! keeps its picture. The thin link is a private network namespace whose loopback is
//! shaped with `tc tbf` (the test re-runs itself inside it).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Viewer, ViewerOptions, http};
use serde_json::Value;

/// A camera-like picture: a moving test pattern under light noise (15 % snow), which
/// uses whatever bitrate the encoder is given, as a real sensor's picture in dim light.
const NOISY_CAMERA: &str = "gst:videotestsrc is-live=true pattern=snow ! video/x-raw,width=640,height=360,framerate=30/1 \
    ! m.sink_1 videotestsrc is-live=true pattern=smpte horizontal-speed=4 \
    ! video/x-raw,width=640,height=360,framerate=30/1 ! m.sink_0 compositor name=m sink_1::alpha=0.15 \
    ! video/x-raw,width=640,height=360,framerate=30/1";

/// Polls `path` until `ready` holds for its JSON (the estimate settles over seconds; there
/// is no event to await for it), or panics with the last answer after `timeout`.
async fn wait_json(
    addr: std::net::SocketAddr,
    path: &str,
    timeout: Duration,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let json = http::get(addr, path).await.json();
        if ready(&json) {
            return json;
        }
        assert!(Instant::now() < deadline, "{path} after {timeout:?}: {json:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_link_shows_its_estimate_and_keeps_the_configured_bitrate() {
    let daemon = common::start_daemon(|_| {}).await;
    let addr = daemon.local_addr();
    let viewer = Viewer::connect(addr, ViewerOptions::default()).await;
    viewer.received.wait_frames(30, Duration::from_secs(10)).await;
    // The round trip comes with the first receiver report that echoes a sender report.
    let sessions = wait_json(addr, "/api/sessions", Duration::from_secs(10), |j| {
        let link = &j["sessions"][0]["link"];
        link["acked_bps"].as_u64().is_some_and(|b| b > 500_000)
            && link["rtt_ms"].as_u64().is_some_and(|r| r < 50)
    })
    .await;
    let link = &sessions["sessions"][0]["link"];
    assert_eq!(link["target_bps"], 1_064_000, "the configured video and audio: {link}");
    assert!(link["loss"].as_f64().is_some_and(|l| l < 0.02), "{link}");
    assert_eq!(link["usage"], "normal", "{link}");
    let status = http::get(addr, "/api/status").await.json();
    let targets = &status["pipelines"][0]["targets"];
    assert_eq!(
        (targets[0]["codec"].as_str(), targets[0]["encoder"].as_str()),
        (Some("h264"), Some("x264enc")),
        "{status}"
    );
    assert_eq!(targets[0]["kbps"], 1000, "the encoder keeps the configured bitrate: {status}");
    daemon.shutdown().await;
}

/// The link: 600 kbit/s, a 16 kB bucket, 100 ms of queue (tbf's `latency`).
const SHAPE: &str = "tc qdisc add dev lo root tbf rate 600kbit burst 16kb latency 100ms";

#[test]
fn a_viewer_behind_a_thin_link_keeps_its_picture() {
    if std::env::var_os("ROBOCAST_SHAPED_LINK").is_some() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
        runtime.expect("a runtime").block_on(behind_a_thin_link());
        return;
    }
    // Re-run only this test in a network namespace of its own (nested in the one the
    // suite runs in, if any), with its loopback shaped.
    let exe = std::env::current_exe().expect("the test binary");
    let script = format!(
        "ip link set lo up && {SHAPE} && \"$0\" \"$@\"; rc=$?; tc -s qdisc show dev lo; ip -s link show lo; exit $rc"
    );
    let status = Command::new("unshare")
        .args(["--map-root-user", "--net", "sh", "-c", &script])
        .arg(exe)
        .args(["--exact", "a_viewer_behind_a_thin_link_keeps_its_picture", "--nocapture", "--test-threads=1"])
        .env("ROBOCAST_SHAPED_LINK", "1")
        .status()
        .expect("unshare runs");
    assert!(status.success(), "the shaped run failed: {status}");
}

async fn behind_a_thin_link() {
    // 1.5 Mbit/s configured, 0.6 Mbit/s on the link: without congestion control this
    // viewer decodes nothing (every frame loses packets, every key frame more).
    let daemon = common::start_daemon(|c| {
        c.video = NOISY_CAMERA.into();
        c.bitrate_kbps = 1500;
    })
    .await;
    let addr = daemon.local_addr();
    let viewer = Viewer::connect(addr, ViewerOptions { decode: true, ..Default::default() }).await;
    let started = viewer.received.frames_within(10, Duration::from_secs(20)).await;
    assert!(started, "no picture: {}", http::get(addr, "/api/sessions").await.json());
    let sessions = wait_json(addr, "/api/sessions", Duration::from_secs(20), |j| {
        j["sessions"][0]["link"]["target_bps"].as_u64().is_some_and(|b| b < 700_000)
    })
    .await;
    println!("link: {}", sessions["sessions"][0]["link"]);
    let status = http::get(addr, "/api/status").await.json();
    let kbps = status["pipelines"][0]["targets"][0]["kbps"].as_u64().unwrap_or(u64::MAX);
    assert!(kbps < 600, "the encoder follows the link down: {status}");
    // Settled (the first seconds lose what the link could not carry at 1.5 Mbit/s), the
    // picture keeps coming: 5 s measured from 10 s after the offer.
    tokio::time::sleep_until((viewer.offered_at + Duration::from_secs(10)).into()).await;
    let fps = viewer.measure_fps(Duration::from_secs(5)).await;
    println!("decoded {fps:.1} frames/s behind 600 kbit/s");
    let status = http::get(addr, "/api/status").await.json();
    println!("status: {} {}", status["feeds"], status["pipelines"][0]);
    // Without congestion control it decodes nothing. (webrtc-rs, unlike a browser, asks
    // for no key frame when it loses a frame, so it shows fewer than Chromium does.)
    assert!(fps >= 12.0, "decoded {fps:.1} frames/s behind a 600 kbit/s link, want >= 12");
    let link = &http::get(addr, "/api/sessions").await.json()["sessions"][0]["link"];
    assert!(link["target_bps"].as_u64().is_some_and(|b| (200_000..700_000).contains(&b)), "{link}");
    daemon.shutdown().await;
}
