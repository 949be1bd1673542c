//! WHEP (draft-ietf-wish-whep): `201` + `Location`, a `sendonly` answer, H.264 and Opus
//! received, trickle with `PATCH`, and `DELETE` ending the session.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Signalling, Viewer, ViewerOptions, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_viewer_receives_decoded_h264_and_opus() {
    let daemon = common::start_daemon(|_| {}).await;
    let addr = daemon.local_addr();
    let viewer =
        Viewer::connect(addr, ViewerOptions { signalling: Signalling::Whep, ..Default::default() }).await;
    assert!(viewer.location.starts_with("/whep/"), "{}", viewer.location);
    let answer = viewer.pc.remote_description().await.expect("answer").sdp;
    assert!(answer.contains("a=sendonly") && !answer.contains("a=sendrecv"), "{answer}");

    let audio_before = viewer.received.audio_packets.load(Ordering::Relaxed);
    let window = Duration::from_secs(3);
    let fps = viewer.measure_fps(window).await;
    let audio =
        (viewer.received.audio_packets.load(Ordering::Relaxed) - audio_before) as f64 / window.as_secs_f64();
    assert_eq!(viewer.received.size(), (640, 360));
    assert!(fps >= 27.0, "decoded {fps:.1} frames/s, want >= 27");
    assert!((40.0..=60.0).contains(&audio), "{audio:.1} Opus packets/s, want ~50");

    let sessions = http::get(addr, "/api/sessions").await.json();
    assert_eq!(sessions["sessions"][0]["role"], "viewer");

    let trickle = "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n";
    let patched = http::request(
        addr,
        "PATCH",
        &viewer.location,
        Some("application/trickle-ice-sdpfrag"),
        trickle.as_bytes(),
    )
    .await;
    assert_eq!(patched.status, 204, "{}", patched.body);
    let wrong =
        http::request(addr, "PATCH", &viewer.location, Some("application/sdp"), trickle.as_bytes()).await;
    assert_eq!(wrong.status, 415, "{}", wrong.body);

    // A session takes at most 64 trickled candidates over all its PATCHes (one is in).
    let candidates = |ports: std::ops::Range<u16>| {
        ports
            .map(|p| format!("a=candidate:{p} 1 udp 2130706431 127.0.0.1 {p} typ host\r\n"))
            .collect::<String>()
    };
    let patch = async |fragment: String| {
        http::request(
            addr,
            "PATCH",
            &viewer.location,
            Some("application/trickle-ice-sdpfrag"),
            fragment.as_bytes(),
        )
        .await
    };
    let patched = patch(format!("a=mid:0\r\n{}", candidates(10..73))).await;
    assert_eq!(patched.status, 204, "63 more make 64: {}", patched.body);
    let refused = patch(format!("a=mid:0\r\n{}", candidates(73..74))).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("more than 64 trickled ICE candidates"), "{}", refused.body);
    let fps = viewer.measure_fps(Duration::from_secs(1)).await;
    assert!(fps >= 20.0, "the session streams on after the refusal: {fps:.1} frames/s");

    let deleted = http::request(addr, "DELETE", &viewer.location, None, b"").await;
    assert_eq!(deleted.status, 200);
    let mut listed = 1;
    for _ in 0..50 {
        listed = http::get(addr, "/api/sessions").await.json()["sessions"].as_array().map_or(0, Vec::len);
        if listed == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(listed, 0, "the deleted session is gone");
    daemon.shutdown().await;
}
