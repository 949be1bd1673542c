//! On a machine without vp8enc, a browser that offers only VP8 gets a 400 naming the
//! missing encoder, instead of a track that never carries a frame; H.264 viewers are
//! not affected.

mod common;

use std::time::Duration;

use common::{Viewer, ViewerOptions, http};
use gstreamer as gst;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vp8_only_browser_is_told_what_is_missing() {
    // This test process's GStreamer forgets vp8enc, as if gstreamer1.0-plugins-good's
    // VP8 support were not installed.
    gst::init().expect("gstreamer");
    let registry = gst::Registry::get();
    let vp8enc = registry.lookup_feature("vp8enc").expect("vp8enc is installed here");
    registry.remove_feature(&vp8enc);

    let daemon = common::start_daemon(|_| {}).await;
    let addr = daemon.local_addr();
    let status = http::get(addr, "/api/status").await.json();
    assert!(status["feeds"]["vp8"].is_null(), "no VP8 feed without an encoder: {status}");

    let (_pc, offer) = common::viewer::offer(&ViewerOptions { vp8_only: true, ..Default::default() }).await;
    let refused = http::post(addr, "/whep", "application/sdp", offer.as_bytes()).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let error = refused.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("only VP8") && error.contains("vp8enc"), "{error}");

    let viewer = Viewer::connect(addr, ViewerOptions::undecoded()).await;
    viewer.received.wait_frames(10, Duration::from_secs(10)).await;
    assert_eq!(viewer.received.video_mime().as_deref(), Some("video/h264"));
    viewer.close().await;
    daemon.shutdown().await;
}
