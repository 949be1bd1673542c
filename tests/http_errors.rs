//! Every error a client can get is JSON `{"error", "hint"}` with its status: also the ones
//! hyper gives before any handler runs (400, 414, 431), 405 with its `Allow`, malformed
//! session ids; and a session's `Location` follows the WHIP/WHEP rules for `PATCH`
//! (ETag, 412, 422 for an ICE restart, the candidate's own `a=mid`) and CORS.

mod common;

use std::net::SocketAddr;

use common::http::{self, Response};
use common::{Signalling, Viewer, ViewerOptions};

const TRICKLE: &str = "application/trickle-ice-sdpfrag";

fn assert_json_error(response: &Response, status: u16, needle: &str) {
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(response.header("content-type"), Some("application/json"), "{response:?}");
    let json = response.json();
    let error = json["error"].as_str().unwrap_or_else(|| panic!("no error text: {response:?}"));
    assert!(error.contains(needle), "error {error:?} should mention {needle:?}");
    assert!(json["hint"].as_str().is_some_and(|h| !h.is_empty()), "no hint: {response:?}");
}

async fn patch(addr: SocketAddr, location: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut all = vec![("Content-Type", TRICKLE)];
    all.extend_from_slice(headers);
    http::request_with(addr, "PATCH", location, &all, body.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_gets_json_errors() {
    let daemon = common::start_daemon(|c| (c.video, c.audio) = ("none".into(), "test".into())).await;
    let addr = daemon.local_addr();
    assert_json_error(&http::raw(addr, b"GARBAGE\r\n\r\n").await, 400, "not valid HTTP");
    let flood: String = (0..200).map(|i| format!("X-Flood-{i}: y\r\n")).collect();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: robot\r\n{flood}\r\n");
    assert_json_error(&http::raw(addr, request.as_bytes()).await, 431, "headers");
    let long = format!("GET /{} HTTP/1.1\r\nHost: robot\r\n\r\n", "a".repeat(70_000));
    assert_json_error(&http::raw(addr, long.as_bytes()).await, 414, "URL is too long");
    let bad_utf8 = b"DELETE /api/sessions/%ff%fe%fd HTTP/1.1\r\nHost: robot\r\nConnection: close\r\n\r\n";
    assert_json_error(&http::raw(addr, bad_utf8).await, 404, "no such session");
    let wrong_method = http::request(addr, "PUT", "/api/status", None, b"").await;
    assert_json_error(&wrong_method, 405, "PUT is not allowed on /api/status");
    assert_eq!(wrong_method.header("allow"), Some("GET,HEAD"));
    assert_json_error(&http::request(addr, "GET", "/whep", None, b"").await, 405, "GET is not allowed");
    // The connection's next request after a good one is still served.
    assert_eq!(http::get(addr, "/healthz").await.status, 200);
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_session_location_takes_trickle_by_the_whip_rules() {
    let daemon = common::start_daemon(|_| {}).await;
    let addr = daemon.local_addr();
    for signalling in [Signalling::Whep, Signalling::ConnectSdp] {
        let viewer = Viewer::connect(addr, ViewerOptions { signalling, ..ViewerOptions::undecoded() }).await;
        let location = viewer.location.clone();
        let etag = viewer.etag.clone().expect("an ETag with the answer");
        let ufrag = viewer.ice_ufrag().await;
        let candidate = "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n";
        // The candidate of the second media section (audio, mid 1) is not taken for mid 0.
        let fragment = format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:x\r\na=mid:1\r\n{candidate}");
        let ok = patch(addr, &location, &[("If-Match", &etag)], &fragment).await;
        assert_eq!(ok.status, 204, "{signalling:?} {ok:?}");
        assert_eq!(patch(addr, &location, &[("If-Match", "*")], candidate).await.status, 204);
        assert_json_error(
            &patch(addr, &location, &[("If-Match", "\"stale\"")], candidate).await,
            412,
            "ETag",
        );
        let restart = format!("a=ice-ufrag:newufrag\r\na=ice-pwd:newpassword\r\n{candidate}");
        assert_json_error(&patch(addr, &location, &[("If-Match", "*")], &restart).await, 422, "ICE restart");
        let unknown_mid = format!("a=mid:9\r\n{candidate}");
        assert_json_error(&patch(addr, &location, &[], &unknown_mid).await, 400, "a=mid:9");
        assert_json_error(
            &patch(addr, &location, &[], "a=candidate:garbage\r\n").await,
            400,
            "bad candidate",
        );
        // The session still streams after all that.
        let before = viewer.received.video_frames.load(std::sync::atomic::Ordering::Relaxed);
        viewer.received.wait_frames(before + 10, std::time::Duration::from_secs(5)).await;
        assert_eq!(http::request(addr, "DELETE", &location, None, b"").await.status, 200);
        viewer.close().await;
    }
    daemon.shutdown().await;
}

async fn preflight(addr: std::net::SocketAddr, path: &str, method: &str) -> http::Response {
    http::request_with(
        addr,
        "OPTIONS",
        path,
        &[
            ("Origin", DASHBOARD),
            ("Access-Control-Request-Method", method),
            ("Access-Control-Request-Headers", "authorization,content-type,if-match"),
        ],
        b"",
    )
    .await
}

const DASHBOARD: &str = "http://dashboard.local:3000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_and_whip_players_on_any_origin_pass_the_preflight() {
    let daemon = common::start_daemon(|c| (c.video, c.audio) = ("none".into(), "test".into())).await;
    let addr = daemon.local_addr();
    let session = format!("/whep/{}", "0123456789abcdef".repeat(2));
    for (path, method) in [("/whep", "POST"), (session.as_str(), "PATCH"), ("/whip", "POST")] {
        let preflight = preflight(addr, path, method).await;
        assert_eq!(preflight.status, 200, "{path}: {preflight:?}");
        assert_eq!(preflight.header("access-control-allow-origin"), Some(DASHBOARD), "{path}");
        let methods = preflight.header("access-control-allow-methods").unwrap_or_default();
        assert!(methods.contains(method), "{path}: {methods}");
        let headers = preflight.header("access-control-allow-headers").unwrap_or_default().to_lowercase();
        for header in ["authorization", "content-type", "if-match"] {
            assert!(headers.contains(header), "{path}: {headers}");
        }
    }
    let get = http::request_with(addr, "GET", "/whep", &[("Origin", DASHBOARD)], b"").await;
    let exposed = get.header("access-control-expose-headers").unwrap_or_default().to_lowercase();
    for header in ["location", "link", "etag"] {
        assert!(exposed.contains(header), "{exposed}");
    }
    // The rest of the API is not for other origins unless they are allowed.
    for (path, method) in [("/api/connect", "POST"), ("/api/sessions", "GET"), ("/api/status", "GET")] {
        let refused = preflight(addr, path, method).await;
        assert_eq!(refused.header("access-control-allow-origin"), None, "{path}: {refused:?}");
    }
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_origins_may_use_the_rest_of_the_api() {
    let daemon = common::start_daemon(|c| {
        (c.video, c.audio) = ("none".into(), "test".into());
        c.allowed_origins = vec![DASHBOARD.into()];
    })
    .await;
    let addr = daemon.local_addr();
    for (path, method) in [("/api/connect", "POST"), ("/api/sessions", "GET")] {
        let allowed = preflight(addr, path, method).await;
        assert_eq!(allowed.header("access-control-allow-origin"), Some(DASHBOARD), "{path}: {allowed:?}");
    }
    let other = http::request_with(
        addr,
        "OPTIONS",
        "/api/connect",
        &[("Origin", "http://elsewhere.local"), ("Access-Control-Request-Method", "POST")],
        b"",
    )
    .await;
    assert_eq!(other.header("access-control-allow-origin"), None, "{other:?}");
    daemon.shutdown().await;
}
