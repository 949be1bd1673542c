//! Encode once, fan out: eight viewers at once all receive, the encoder runs once, and a
//! viewer that stops reading does not lower the others' frame rate.

mod common;

use std::time::Duration;

use common::{Viewer, ViewerOptions, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_viewers_all_receive_from_one_encoder() {
    let daemon = common::start_daemon(|_| {}).await;
    let addr = daemon.local_addr();
    let options = ViewerOptions::undecoded();
    let viewers = futures_util::future::join_all((0..8).map(|_| Viewer::connect(addr, options))).await;
    for viewer in &viewers {
        viewer.received.wait_frames(30, Duration::from_secs(10)).await;
    }
    let status = http::get(addr, "/api/status").await.json();
    assert_eq!(status["viewers"], 8);
    let pipelines = status["pipelines"].as_array().expect("pipelines");
    let video: Vec<_> = pipelines.iter().filter(|p| p["kind"] == "video").collect();
    assert_eq!(video.len(), 1, "one video pipeline whatever the number of viewers: {status}");
    // One encoder: the feed produced about one frame per frame interval, not eight.
    let frames = status["feeds"]["h264"]["frames"].as_u64().expect("frames");
    let uptime = status["uptime_s"].as_u64().expect("uptime") + 1;
    assert!(frames <= uptime * 31, "{frames} frames in {uptime} s: more than one encoder?");
    for viewer in &viewers {
        viewer.close().await;
    }
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_stops_reading_does_not_slow_the_others() {
    let daemon = common::start_daemon(|_| {}).await;
    let addr = daemon.local_addr();
    let stalled = Viewer::connect(addr, ViewerOptions { read: false, ..Default::default() }).await;
    let healthy = Viewer::connect(addr, ViewerOptions::default()).await;
    let fps = healthy.measure_fps(Duration::from_secs(4)).await;
    assert!(fps >= 27.0, "healthy viewer decoded {fps:.1} frames/s next to a stalled one");
    let sessions = http::get(addr, "/api/sessions").await.json();
    assert_eq!(sessions["sessions"].as_array().map(Vec::len), Some(2), "{sessions}");
    stalled.close().await;
    healthy.close().await;
    daemon.shutdown().await;
}
