//! A source that ends or is missing does not kill the daemon: status says so, the
//! pipeline is rebuilt every few seconds, and connected viewers resume on the same
//! connection.

mod common;

use std::time::Duration;

use common::{Viewer, ViewerOptions, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gst_source_that_ends_is_restarted_and_viewers_resume() {
    // 30 frames, then end of stream: about a second of video per run.
    let daemon = common::start_daemon(|c| {
        c.video =
            "gst:videotestsrc is-live=true num-buffers=30 ! video/x-raw,width=640,height=360,framerate=30/1"
                .into();
        c.audio = "none".into();
    })
    .await;
    let addr = daemon.local_addr();
    let viewer = Viewer::connect(addr, ViewerOptions::default()).await;
    viewer.received.wait_frames(5, Duration::from_secs(10)).await;
    let mut status = daemon.media().watch_status("video").expect("video pipeline");
    let restarted = tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| s.restarts >= 1))
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(restarted, "the ended source was not restarted");
    let error = status.borrow().error.clone().unwrap_or_default();
    assert!(error.contains("ended"), "status says why: {error:?}");
    // Frames of the second run arrive on the same peer connection.
    let resumed = tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.restarts >= 1 && s.error.is_none()),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(resumed, "the source did not come back");
    let before = viewer.received.video_frames.load(std::sync::atomic::Ordering::Relaxed);
    viewer.received.wait_frames(before + 10, Duration::from_secs(10)).await;
    assert_eq!(viewer.received.size(), (640, 360));
    let sessions = http::get(addr, "/api/sessions").await.json();
    assert_eq!(sessions["sessions"].as_array().map(Vec::len), Some(1), "still the same session");
    viewer.close().await;
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_camera_is_reported_and_retried_while_the_daemon_serves() {
    let daemon = common::start_daemon(|c| c.video = "v4l2:/dev/video-robocast-missing".into()).await;
    let addr = daemon.local_addr();
    let mut status = daemon.media().watch_status("video").expect("video pipeline");
    let retrying = tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| s.restarts >= 2))
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(retrying, "the missing camera is retried");
    let json = http::get(addr, "/api/status").await.json();
    let video = &json["pipelines"][0];
    assert_eq!(video["kind"], "video");
    assert_eq!(video["state"], "retrying", "{json}");
    assert!(video["error"].as_str().unwrap_or("").contains("no such device"), "{json}");
    // Audio goes on, and a viewer can still connect and hear it.
    assert_eq!(json["pipelines"][1]["state"], "running", "{json}");
    let viewer = Viewer::connect(addr, ViewerOptions::undecoded()).await;
    viewer.received.wait_audio_packets(10, Duration::from_secs(5)).await;
    viewer.close().await;
    daemon.shutdown().await;
}
