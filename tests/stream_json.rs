//! RTCBot-style JSON signalling: a viewer decodes H.264 at the configured size and frame
//! rate and receives ~50 Opus packets a second; plain SDP to the same endpoint gets `201`.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Signalling, Viewer, ViewerOptions, http};

const WINDOW: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_offer_receives_decoded_h264_and_opus() {
    let daemon = common::start_daemon(|_| {}).await;
    let viewer = Viewer::connect(daemon.local_addr(), ViewerOptions::default()).await;
    let audio_before = viewer.received.audio_packets.load(Ordering::Relaxed);
    let fps = viewer.measure_fps(WINDOW).await;
    let audio = viewer.received.audio_packets.load(Ordering::Relaxed) - audio_before;
    assert_eq!(viewer.received.size(), (640, 360), "decoded picture size");
    assert!(fps >= 27.0, "decoded {fps:.1} frames/s, want >= 90 % of 30");
    assert_eq!(viewer.received.video_mime().as_deref(), Some("video/h264"));
    let audio_rate = audio as f64 / WINDOW.as_secs_f64();
    assert!((40.0..=60.0).contains(&audio_rate), "{audio_rate:.1} Opus packets/s, want ~50");

    let sessions = http::get(daemon.local_addr(), "/api/sessions").await.json();
    let listed = &sessions["sessions"][0];
    assert_eq!(listed["role"], "full");
    assert_eq!(listed["state"], "connected");
    assert!(viewer.location.ends_with(listed["id"].as_str().expect("id")));
    viewer.close().await;
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdp_offer_to_connect_gets_201_with_location_and_can_be_deleted() {
    let daemon = common::start_daemon(|_| {}).await;
    let options = ViewerOptions { signalling: Signalling::ConnectSdp, ..Default::default() };
    let viewer = Viewer::connect(daemon.local_addr(), options).await;
    viewer.received.wait_frames(10, Duration::from_secs(5)).await;
    assert!(viewer.location.starts_with("/api/sessions/"), "{}", viewer.location);
    let deleted = http::request(daemon.local_addr(), "DELETE", &viewer.location, None, b"").await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let again = http::request(daemon.local_addr(), "DELETE", &viewer.location, None, b"").await;
    assert_eq!(again.status, 404, "{}", again.body);
    daemon.shutdown().await;
}
