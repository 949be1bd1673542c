//! Clients that stall: a few hundred half-sent requests and bodies trickled a byte at a
//! time hold nothing for long, and never stop `/healthz` or a new viewer.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Viewer, ViewerOptions, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Shorter than the default 10 s, so the test does not wait long; the mechanism is the same.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const STALLED: usize = 300;

/// Waits until the server closes `stream` (EOF or a reset, after any answer); returns what
/// it answered.
async fn closed_by_server(mut stream: TcpStream, within: Duration) -> Result<String, String> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Err(format!("still open after {within:?}")),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(String::from_utf8_lossy(&answer).into_owned()),
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
        }
    }
}

async fn half_request(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /api/status HTTP/1.1\r\nHost: robot\r\nX-Half: ")
        .await
        .expect("write half a header");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_requests_are_closed_and_never_stop_health_or_a_new_viewer() {
    let daemon = common::start_daemon(|c| c.request_timeout_ms = REQUEST_TIMEOUT.as_millis() as u64).await;
    let addr = daemon.local_addr();
    let started = Instant::now();
    let mut stalled = Vec::with_capacity(STALLED);
    for _ in 0..STALLED {
        stalled.push(half_request(addr).await);
    }
    // A body announced as 1000 bytes and sent a byte every 100 ms.
    let mut trickle = TcpStream::connect(addr).await.expect("connect");
    let head =
        "POST /whep HTTP/1.1\r\nHost: robot\r\nContent-Type: application/sdp\r\nContent-Length: 1000\r\n\r\n";
    trickle.write_all(head.as_bytes()).await.expect("head");
    let trickling = tokio::spawn(async move {
        let mut sent = 0;
        while sent < 1000 && trickle.write_all(b"v").await.is_ok() {
            sent += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut answer = String::new();
        let _ = trickle.read_to_string(&mut answer).await;
        (sent, answer)
    });

    // Health and a new viewer within a second, with all of them hanging on.
    let health = tokio::time::timeout(Duration::from_secs(1), http::get(addr, "/healthz")).await;
    assert_eq!(health.expect("/healthz answers within 1 s").status, 200);
    let offered = Instant::now();
    let viewer =
        tokio::time::timeout(Duration::from_secs(1), Viewer::connect(addr, ViewerOptions::undecoded()))
            .await
            .expect("a new viewer's offer is answered within 1 s");
    viewer.received.wait_frames(10, Duration::from_secs(5)).await;
    println!("answer and 10 frames {:?} after the offer", offered.elapsed());

    // Each stalled connection is closed once its time is up (not before: nothing is sent).
    let closing = stalled.into_iter().map(|s| closed_by_server(s, REQUEST_TIMEOUT * 3));
    let results = futures_util::future::join_all(closing).await;
    let open = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(open, 0, "{open} of {STALLED} stalled connections still open: {:?}", results.first());
    let closed_after = started.elapsed();
    assert!(closed_after >= REQUEST_TIMEOUT, "closed after {closed_after:?}, before the timeout");
    println!("{STALLED} stalled connections closed {closed_after:?} after they opened");

    let (sent, answer) = trickling.await.expect("trickle task");
    assert!(sent < 1000, "the trickled body was read in full");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 2000 ms"), "{answer}");

    // The viewer kept receiving throughout; a stop does not wait on anyone.
    let before = viewer.received.video_frames.load(std::sync::atomic::Ordering::Relaxed);
    viewer.received.wait_frames(before + 10, Duration::from_secs(5)).await;
    let mut again = Vec::new();
    for _ in 0..50 {
        again.push(half_request(addr).await);
    }
    let stopping = Instant::now();
    daemon.shutdown().await;
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(4), "shutdown with 50 stalled clients took {took:?}");
    drop(again);
}

async fn offer_as(addr: SocketAddr, authorization: &str, sdp: &[u8]) -> http::Response {
    let headers = [("Content-Type", "application/sdp"), ("Authorization", authorization)];
    http::request_with(addr, "POST", "/whep", &headers, sdp).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_from_one_address_come_at_a_bounded_rate_but_the_operators() {
    let daemon = common::start_daemon(|c| (c.video, c.audio) = ("none".into(), "test".into())).await;
    let addr = daemon.local_addr();
    // A burst of 20 is taken (each answered on its merits: this SDP is no offer).
    for n in 0..robocast::http::limits::BURST as usize {
        assert_eq!(offer_as(addr, "", b"v=0").await.status, 400, "offer {n} of the burst");
    }
    let limited = offer_as(addr, "", b"v=0").await;
    assert_eq!(limited.status, 429, "{limited:?}");
    assert_eq!(limited.header("retry-after"), Some("1"), "60 a minute: one a second");
    assert!(limited.json()["error"].as_str().unwrap_or_default().contains("too many offers from 127.0.0.1"));
    // The operator is not held back, and nothing else is.
    let operator = format!("Bearer {}", common::OPERATOR_TOKEN);
    assert_eq!(offer_as(addr, &operator, b"v=0").await.status, 400);
    assert_eq!(http::get(addr, "/healthz").await.status, 200);
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_from_one_address_are_capped_but_the_operators() {
    let daemon = common::start_daemon(|c| {
        (c.video, c.audio) = ("none".into(), "test".into());
        c.max_sessions_per_address = 2;
    })
    .await;
    let addr = daemon.local_addr();
    let anonymous = || ViewerOptions { authorization: Some(""), ..ViewerOptions::undecoded() };
    let first = Viewer::connect(addr, anonymous()).await;
    let _second = Viewer::connect(addr, anonymous()).await;
    let (_pc, sdp) = common::viewer::offer(&ViewerOptions::undecoded()).await;
    let third = offer_as(addr, "", sdp.as_bytes()).await;
    assert_eq!(third.status, 429, "{third:?}");
    assert!(
        third.json()["error"].as_str().unwrap_or_default().contains("has 2 sessions already"),
        "{third:?}"
    );
    let operator = format!("Bearer {}", common::OPERATOR_TOKEN);
    assert_eq!(offer_as(addr, &operator, sdp.as_bytes()).await.status, 201, "the operator is not capped");
    // A viewer that leaves gives its place back.
    let ended = http::request_with(addr, "DELETE", &first.location, &[("Authorization", "")], b"").await;
    assert_eq!(ended.status, 200, "{ended:?}");
    let (_pc, sdp) = common::viewer::offer(&ViewerOptions::undecoded()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let again = offer_as(addr, "", sdp.as_bytes()).await;
        if again.status == 201 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the freed place never came back: {again:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.shutdown().await;
}
