//! Every input of the hostile benchmark's catalogue (`benches/hostile/inputs.rs`: broken
//! and huge SDP, JSON 50,000 deep, wrong content types, binary garbage, malformed HTTP,
//! unknown and made-up session ids, trickle garbage on a live session), each sent once on
//! a fresh connection without a token, while an honest viewer watches: each gets a status
//! (or, for malformed HTTP, a closed connection), none a 5xx, and the viewer keeps its
//! frame rate.

mod common;
#[allow(dead_code)] // The benchmark's catalogue; this test sends every input once.
#[path = "../benches/hostile/inputs.rs"]
mod inputs;
#[allow(dead_code)]
#[path = "../benches/hostile/sdp.rs"]
mod sdp;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Viewer, ViewerOptions};
use inputs::{Category, SESSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FPS: f64 = 30.0;

/// Sends `bytes` on a fresh connection; the status robocast answered (`None` when it
/// closed without one) and the whole response.
async fn exchange(addr: SocketAddr, bytes: &[u8], half_close: bool) -> (Option<u16>, String) {
    let mut stream = TcpStream::connect(addr).await.expect("robocast accepts");
    // robocast may answer (413, 431) and close before it has read everything.
    let _ = stream.write_all(bytes).await;
    if half_close {
        let _ = stream.shutdown().await;
    }
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut raw)).await;
    assert!(
        read.is_ok(),
        "no answer and no close within 15 s to {:?}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(80)])
    );
    let status = raw
        .get(9..12)
        .filter(|_| raw.starts_with(b"HTTP/1."))
        .and_then(|code| std::str::from_utf8(code).ok()?.parse().ok());
    (status, String::from_utf8_lossy(&raw).into_owned())
}

/// The session an accepted offer opened (its `Location`, or the JSON answer's `session`).
fn opened(response: &str) -> Option<String> {
    let (head, body) = response.split_once("\r\n\r\n")?;
    let location = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("location").then(|| value.trim().to_owned())
    });
    location.or_else(|| {
        let json: serde_json::Value = serde_json::from_str(body).ok()?;
        Some(format!("/api/sessions/{}", json["session"].as_str()?))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_input_gets_its_status_and_the_honest_viewer_keeps_its_frame_rate() {
    // No rate limit here: every input must reach the code that answers it.
    let daemon = common::start_daemon(|c| {
        c.offers_per_minute = 0;
    })
    .await;
    let addr = daemon.local_addr();
    let honest = Viewer::connect(addr, ViewerOptions::undecoded()).await;
    honest.received.wait_frames(10, Duration::from_secs(10)).await;
    // The session hostile inputs aim at: a live one opened without a token.
    let target =
        Viewer::connect(addr, ViewerOptions { authorization: Some(""), ..ViewerOptions::undecoded() }).await;
    let target_id = target.session().to_owned();

    let (_pc, offer) = common::viewer::offer(&ViewerOptions::undecoded()).await;
    let catalogue = inputs::catalogue(&offer, 7);
    assert!(catalogue.len() > 200, "the catalogue has {} inputs", catalogue.len());
    let frames_before = honest.received.video_frames.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut statuses: BTreeMap<String, BTreeMap<Option<u16>, usize>> = BTreeMap::new();
    for input in &catalogue {
        let bytes = match input.bytes.windows(SESSION.len()).position(|w| w == SESSION.as_bytes()) {
            Some(at) => {
                [&input.bytes[..at], target_id.as_bytes(), &input.bytes[at + SESSION.len()..]].concat()
            }
            None => input.bytes.clone(),
        };
        let (status, response) = exchange(addr, &bytes, input.half_close).await;
        // An offer that was good enough opened a session: end it, as a client would, so
        // the slots do not run out (that 503 is the viewer limit, not a failure).
        if matches!(status, Some(200 | 201))
            && let Some(location) = opened(&response)
        {
            let end =
                common::http::request_with(addr, "DELETE", &location, &[("Authorization", "")], b"").await;
            assert_eq!(end.status, 200, "ending {location}: {end:?}");
        }
        if let Some(status) = status {
            assert!(status < 500, "{:?} `{}` got {status}", input.category, input.name);
        } else {
            assert_eq!(input.category, Category::Protocol, "`{}` got no HTTP answer", input.name);
        }
        *statuses.entry(input.category.name().to_owned()).or_default().entry(status).or_default() += 1;
    }
    let took = started.elapsed();
    println!("{} inputs in {took:?}: {statuses:?}", catalogue.len());

    // The honest viewer was never disturbed: its frame rate held through it all.
    let frames = honest.received.video_frames.load(Ordering::Relaxed) - frames_before;
    let fps = frames as f64 / took.as_secs_f64();
    assert!(fps >= FPS * 0.8, "the honest viewer got {fps:.1} fps while the inputs were sent");
    assert_eq!(common::http::get(addr, "/healthz").await.status, 200);
    // And the made-up, the malformed and the bad-SDP inputs did not end the honest session.
    let sessions = common::http::get(addr, "/api/sessions").await.json();
    let alive =
        sessions["sessions"].as_array().is_some_and(|s| s.iter().any(|s| s["id"] == honest.session()));
    assert!(alive, "the honest viewer's session is gone: {sessions}");
    honest.close().await;
    daemon.shutdown().await;
}
