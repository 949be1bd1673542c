//! The encoder table: a chosen software encoder other than the default works end to end,
//! and a source that already produces H.264 is passed through without re-encoding.

mod common;

use std::time::Duration;

use common::{Viewer, ViewerOptions, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openh264enc_with_real_rate_control_streams() {
    let daemon = common::start_daemon(|c| {
        c.encoder = "openh264enc".into();
        c.audio = "none".into();
    })
    .await;
    let viewer = Viewer::connect(daemon.local_addr(), ViewerOptions::default()).await;
    viewer.received.wait_frames(30, Duration::from_secs(10)).await;
    assert_eq!(viewer.received.size(), (640, 360));
    let status = http::get(daemon.local_addr(), "/api/status").await.json();
    assert_eq!(status["pipelines"][0]["encoder"], "openh264enc", "{status}");
    // Rate control holds: far below the ~57 Mbit/s openh264enc makes without it.
    let kbps = status["pipelines"][0]["kbps"].as_f64().unwrap_or(0.0);
    assert!(kbps < 4000.0, "{kbps} kbit/s for a 1000 kbit/s target");
    viewer.close().await;
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_from_the_source_is_passed_through() {
    let daemon = common::start_daemon(|c| {
        c.video = "gst:videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 \
                   ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! h264parse"
            .into();
        c.audio = "none".into();
    })
    .await;
    let viewer = Viewer::connect(daemon.local_addr(), ViewerOptions::default()).await;
    viewer.received.wait_frames(30, Duration::from_secs(10)).await;
    // The camera's size, not the configured 640x360: nothing was re-encoded.
    assert_eq!(viewer.received.size(), (320, 240));
    let status = http::get(daemon.local_addr(), "/api/status").await.json();
    assert_eq!(status["pipelines"][0]["encoder"], "passthrough", "{status}");
    assert_eq!(status["pipelines"][0]["passthrough"], true);
    viewer.close().await;
    daemon.shutdown().await;
}
