//! robocast answers with a codec both sides can really use, and says what it sends: an
//! offer whose H.264 it cannot send to (packetization mode 0, no fmtp) gets VP8 when the
//! offer has it and a 400 naming the reason when not; a camera's own High-profile H.264
//! (passed through, not re-encoded) is described as High, and a browser that decodes
//! only constrained baseline gets VP8 or a clear 400. Audio and video are two streams by
//! default and one lip-synced stream with `lip_sync`.

mod common;

use std::time::Duration;

use common::http::{self, Response};
use common::{Signalling, Viewer, ViewerOptions};

const MODE0: &str = "packetization-mode=0;profile-level-id=42e01f";
const NO_MODE: &str = "profile-level-id=42e01f";
const HIGH: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f";
/// A camera's own H.264 in High profile, passed through untouched.
const HIGH_CAMERA: &str = "gst:videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 \
    ! x264enc tune=zerolatency speed-preset=veryfast key-int-max=30 ! video/x-h264,profile=high ! h264parse";

async fn whep(addr: std::net::SocketAddr, options: ViewerOptions) -> Response {
    let (_pc, offer) = common::viewer::offer(&options).await;
    http::post(addr, "/whep", "application/sdp", offer.as_bytes()).await
}

fn error_of(response: &Response) -> String {
    assert_eq!(response.status, 400, "{response:?}");
    response.json()["error"].as_str().unwrap_or_default().to_owned()
}

async fn plays(addr: std::net::SocketAddr, options: ViewerOptions, mime: &str) {
    let viewer = Viewer::connect(addr, options).await;
    viewer.received.wait_frames(10, Duration::from_secs(10)).await;
    assert_eq!(viewer.received.video_mime().as_deref(), Some(mime), "{options:?}");
    viewer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_the_stream_cannot_use_falls_back_to_vp8_or_a_clear_400() {
    let daemon = common::start_daemon(|_| {}).await;
    let addr = daemon.local_addr();
    for fmtp in [MODE0, NO_MODE] {
        plays(addr, ViewerOptions { h264_fmtp: fmtp, ..Default::default() }, "video/vp8").await;
        let alone =
            whep(addr, ViewerOptions { h264_fmtp: fmtp, offer_vp8: false, ..Default::default() }).await;
        assert!(error_of(&alone).contains("packetization-mode=1"), "{alone:?}");
    }
    // robocast's constrained baseline decodes in a High-profile decoder.
    let high = ViewerOptions { h264_fmtp: HIGH, offer_vp8: false, ..Default::default() };
    plays(addr, high, "video/h264").await;
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_through_high_profile_camera_is_described_as_high() {
    let daemon = common::start_daemon(|c| {
        c.video = HIGH_CAMERA.into();
        (c.width, c.height) = (320, 240);
    })
    .await;
    let addr = daemon.local_addr();
    let feed = daemon.media().h264.clone().expect("video");
    let mut status = daemon.media().watch_status("video").expect("video");
    let passing = status.wait_for(|s| s.passthrough && s.fps > 0.0);
    assert!(tokio::time::timeout(Duration::from_secs(10), passing).await.is_ok_and(|r| r.is_ok()));
    assert_eq!(feed.h264_profile().map(|p| p.to_string()).as_deref().map(|p| &p[..4]), Some("6400"));

    // The answer names the High payload type of an offer that has both.
    let both = ViewerOptions { h264_fmtp: HIGH, ..ViewerOptions::undecoded() };
    let (_pc, offer) = common::viewer::offer(&both).await;
    let answered = http::post(addr, "/whep", "application/sdp", offer.as_bytes()).await;
    assert_eq!(answered.status, 201, "{answered:?}");
    assert!(answered.body.contains("profile-level-id=640c1f"), "{}", answered.body);
    plays(addr, ViewerOptions { h264_fmtp: HIGH, ..Default::default() }, "video/h264").await;
    // A constrained-baseline-only browser gets VP8 (decoded and re-encoded) or is told why.
    plays(addr, ViewerOptions::default(), "video/vp8").await;
    let baseline_only = whep(addr, ViewerOptions { offer_vp8: false, ..Default::default() }).await;
    let error = error_of(&baseline_only);
    assert!(error.contains("H.264 high") && error.contains("42e01f"), "{error}");
    daemon.shutdown().await;
}

/// The msid stream ids of an answer's media sections.
fn streams(answer: &str) -> Vec<String> {
    answer
        .lines()
        .filter_map(|l| l.strip_prefix("a=msid:"))
        .filter_map(|m| m.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_and_video_are_two_streams_unless_lip_sync_is_asked_for() {
    for (lip_sync, distinct) in [(false, 2), (true, 1)] {
        let daemon = common::start_daemon(|c| c.lip_sync = lip_sync).await;
        let options = ViewerOptions { signalling: Signalling::Whep, ..ViewerOptions::undecoded() };
        let (_pc, offer) = common::viewer::offer(&options).await;
        let answer = http::post(daemon.local_addr(), "/whep", "application/sdp", offer.as_bytes()).await;
        let mut ids = streams(&answer.body);
        assert_eq!(ids.len(), 2, "{}", answer.body);
        ids.dedup();
        assert_eq!(ids.len(), distinct, "lip_sync = {lip_sync}: {}", answer.body);
        daemon.shutdown().await;
    }
}
