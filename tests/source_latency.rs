//! A `gst:` raw source is encoded as its pictures arrive: nothing holds a picture back
//! waiting for the next one (as `videorate` did, one frame of latency), a slow source is
//! not padded to the configured rate, and a fast one is thinned by dropping pictures.
//! The status reports what each picture cost from capture to encoded frame.

mod common;

use std::time::Duration;

use robocast::media::PipelineStatus;

/// Runs robocast on `video` and returns the video status once it has measured a few
/// seconds of frames.
async fn measured(video: &str) -> PipelineStatus {
    let daemon = common::start_daemon(|c| {
        c.video = video.into();
        c.audio = "none".into();
        (c.width, c.height, c.fps) = (320, 240, 30);
    })
    .await;
    let mut status = daemon.media().watch_status("video").expect("video pipeline");
    let wait = status.wait_for(|s| s.latency_ms.is_some() && s.fps > 0.0 && s.restarts == 0);
    let first = tokio::time::timeout(Duration::from_secs(15), wait).await.map(|r| r.is_ok());
    assert_eq!(first, Ok(true), "no measurement within 15 s: {:?}", daemon.media().status());
    // Two more one-second measurements, so the rate is over whole seconds of frames.
    for _ in 0..2 {
        let _ = tokio::time::timeout(Duration::from_secs(3), status.changed()).await;
    }
    let now = status.borrow().clone();
    daemon.shutdown().await;
    now
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_source_is_encoded_at_once_and_not_padded() {
    // At 5 fps a picture held until the next one would wait 200 ms.
    let s = measured("gst:videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=5/1").await;
    let latency = s.latency_ms.unwrap_or(f64::MAX);
    assert!(latency < 60.0, "capture to encoded took {latency} ms: a picture waited for the next");
    assert!((4.0..=6.0).contains(&s.fps), "{} fps from a 5 fps source: pictures were duplicated", s.fps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_source_is_thinned_to_the_configured_rate() {
    let s = measured("gst:videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=60/1").await;
    assert!((27.0..=33.0).contains(&s.fps), "{} fps, want 30 of the 60 offered", s.fps);
    let caps = s.caps.unwrap_or_default();
    assert!(caps.contains("framerate=(fraction)30/1"), "the encoder was told another rate: {caps}");
    let latency = s.latency_ms.unwrap_or(f64::MAX);
    assert!(latency < 60.0, "capture to encoded took {latency} ms");
}
