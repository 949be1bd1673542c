//! Every kind of bad request gets its status and a JSON `{"error", "hint"}` that says
//! what is wrong, and the stream goes on for everyone else.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::http::{self, Response};
use common::{Viewer, ViewerOptions};

fn assert_error(response: &Response, status: u16, needle: &str) {
    assert_eq!(response.status, status, "{}", response.body);
    let json = response.json();
    let error = json["error"].as_str().expect("error text");
    assert!(error.contains(needle), "error {error:?} should mention {needle:?}");
    assert!(!json["hint"].as_str().expect("hint text").is_empty());
}

async fn post_json(addr: SocketAddr, body: &str) -> Response {
    http::post(addr, "/api/connect", "application/json", body.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_the_stream_goes_on() {
    let daemon = common::start_daemon(|c| c.max_viewers = 1).await;
    let addr = daemon.local_addr();
    // A viewer watching throughout: nothing below may disturb it.
    let watcher = Viewer::connect(addr, ViewerOptions::undecoded()).await;
    watcher.received.wait_frames(5, Duration::from_secs(10)).await;

    assert_error(&post_json(addr, "{not json").await, 400, "not an offer");
    assert_error(&post_json(addr, r#"{"sdp": "", "type": "offer"}"#).await, 400, "empty");
    assert_error(&post_json(addr, r#"{"sdp": "v=0", "type": "answer"}"#).await, 400, "answer");
    assert_error(&post_json(addr, r#"{"sdp": "hello", "type": "offer"}"#).await, 400, "not valid SDP");
    let av1_only = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 45\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\na=rtpmap:45 AV1/90000\r\n";
    let body = serde_json::json!({ "sdp": av1_only, "type": "offer" }).to_string();
    assert_error(&post_json(addr, &body).await, 400, "neither H.264 nor VP8");
    assert_error(
        &http::post(addr, "/whep", "application/sdp", av1_only.as_bytes()).await,
        400,
        "neither H.264 nor VP8",
    );

    // /api/connect reads JSON or SDP whatever the Content-Type says; anything else is a 415.
    assert_error(&http::post(addr, "/api/connect", "text/plain", b"hello").await, 415, "text/plain");
    assert_error(&http::post(addr, "/api/connect", "text/plain", b"v=0").await, 400, "not valid SDP");
    assert_error(&http::post(addr, "/api/connect", "text/plain", b"{\"sdp\": 1}").await, 400, "not an offer");
    assert_error(&http::post(addr, "/whep", "application/json", b"{}").await, 415, "application/json");
    assert_error(&http::request(addr, "POST", "/api/connect", None, b"<xml/>").await, 415, "content type");

    let huge = vec![b'a'; 200 * 1024];
    assert_error(&http::post(addr, "/whep", "application/sdp", &huge).await, 413, "larger");
    assert_error(&http::post(addr, "/api/connect", "application/json", &huge).await, 413, "larger");

    let frag = b"a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n";
    let unknown = "/whep/0123456789abcdef0123456789abcdef";
    assert_error(
        &http::request(addr, "PATCH", unknown, Some("application/trickle-ice-sdpfrag"), frag).await,
        404,
        "no such session",
    );
    assert_error(&http::request(addr, "DELETE", unknown, None, b"").await, 404, "no such session");
    assert_error(&http::request(addr, "DELETE", "/whep/../../etc", None, b"").await, 404, "no such");
    assert_error(&http::get(addr, "/nothing-here").await, 404, "nothing-here");

    // The one viewer slot is taken: a viewer's well-formed offer gets 503 (an operator
    // would get one of the slots kept for operators: tests/roles.rs).
    let (_pc, offer) = common::viewer::offer(&ViewerOptions::default()).await;
    let as_viewer = [("Content-Type", "application/sdp"), ("Authorization", "")];
    assert_error(
        &http::request_with(addr, "POST", "/whep", &as_viewer, offer.as_bytes()).await,
        503,
        "viewer limit of 1",
    );

    // The watcher never stopped receiving.
    let before = watcher.received.video_frames.load(std::sync::atomic::Ordering::Relaxed);
    watcher.received.wait_frames(before + 15, Duration::from_secs(5)).await;
    let health = http::get(addr, "/healthz").await;
    assert_eq!(health.status, 200);
    watcher.close().await;
    daemon.shutdown().await;
}
