//! A browser that offers no H.264 gets VP8 from a second encoder branch, which runs only
//! while such viewers exist.

mod common;

use std::time::Duration;

use common::{Viewer, ViewerOptions, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp8_only_offer_receives_decoded_vp8() {
    let daemon = common::start_daemon(|_| {}).await;
    let addr = daemon.local_addr();
    let idle = http::get(addr, "/api/status").await.json();
    assert_eq!(idle["feeds"]["vp8"]["frames"], 0, "VP8 branch idle without VP8 viewers");

    let viewer = Viewer::connect(addr, ViewerOptions { vp8_only: true, ..Default::default() }).await;
    viewer.received.wait_frames(30, Duration::from_secs(10)).await;
    assert_eq!(viewer.received.video_mime().as_deref(), Some("video/vp8"));
    assert_eq!(viewer.received.size(), (640, 360));
    let sessions = http::get(addr, "/api/sessions").await.json();
    assert_eq!(sessions["sessions"][0]["video_codec"], "vp8");
    viewer.close().await;
    daemon.shutdown().await;
}
