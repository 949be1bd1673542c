//! A PLI from a viewer makes the encoder send a key frame at once; a burst of them is
//! throttled to about one a second.

mod common;

use std::time::Duration;

use common::{Viewer, ViewerOptions, http};
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;

async fn keyframes(addr: std::net::SocketAddr) -> u64 {
    http::get(addr, "/api/status").await.json()["feeds"]["h264"]["keyframes"].as_u64().expect("keyframes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pli_forces_a_throttled_keyframe() {
    let daemon = common::start_daemon(|c| c.audio = "none".into()).await;
    let addr = daemon.local_addr();
    let viewer = Viewer::connect(addr, ViewerOptions::undecoded()).await;
    // Past the viewer's own start key frame and the throttle window.
    viewer.received.wait_frames(45, Duration::from_secs(10)).await;
    let media_ssrc = viewer.pc.get_receivers().await[0].tracks().await[0].ssrc();
    let pli = || -> Vec<Box<dyn webrtc::rtcp::packet::Packet + Send + Sync>> {
        vec![Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc })]
    };
    let before = keyframes(addr).await;
    viewer.pc.write_rtcp(&pli()).await.expect("PLI sent");
    // The periodic key frame is 10 s away, so a new one within a second is the PLI's.
    let mut after = before;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while after == before && tokio::time::Instant::now() < deadline {
        let frame = viewer.received.video_frames.load(std::sync::atomic::Ordering::Relaxed);
        viewer.received.wait_frames(frame + 1, Duration::from_secs(1)).await;
        after = keyframes(addr).await;
    }
    assert!(after > before, "no key frame within 1 s of a PLI");

    // Ten PLIs at once: at most the first now and one coalesced at the end of the window.
    let start = keyframes(addr).await;
    for _ in 0..10 {
        viewer.pc.write_rtcp(&pli()).await.expect("PLI sent");
    }
    let frame = viewer.received.video_frames.load(std::sync::atomic::Ordering::Relaxed);
    viewer.received.wait_frames(frame + 30, Duration::from_secs(3)).await;
    let burst = keyframes(addr).await - start;
    let sessions = http::get(addr, "/api/sessions").await.json();
    assert!(sessions["sessions"][0]["keyframe_requests"].as_u64() >= Some(11), "{sessions}");
    assert!((1..=2).contains(&burst), "{burst} key frames for a burst of 10 PLIs");
    viewer.close().await;
    daemon.shutdown().await;
}
