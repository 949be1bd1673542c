//! No offer a client can send makes robocast answer 5xx: a real browser-like offer with
//! each line removed, each line doubled, each media section doubled or dropped, and the
//! offer cut short, sent as SDP and as RTCBot JSON. Each gets 2xx or a 4xx with a reason,
//! and a viewer watching all the while keeps its picture.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Viewer, ViewerOptions, http};

/// The offer's lines and its media sections (first line index of each, and the end).
fn mutations(offer: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = offer.lines().collect();
    let join = |lines: &[&str]| lines.iter().map(|l| format!("{l}\r\n")).collect::<String>();
    let mut out = Vec::new();
    for i in 0..lines.len() {
        let mut without = lines.clone();
        let removed = without.remove(i);
        out.push((format!("without `{removed}`"), join(&without)));
        let mut doubled = lines.clone();
        doubled.insert(i, lines[i]);
        out.push((format!("`{}` twice", lines[i]), join(&doubled)));
    }
    let starts: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].starts_with("m=")).collect();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(lines.len());
        let section = &lines[start..end];
        let mut dropped = lines.clone();
        dropped.drain(start..end);
        out.push((format!("media section {n} removed"), join(&dropped)));
        let mut twice = lines.clone();
        twice.splice(end..end, section.iter().copied());
        out.push((format!("media section {n} twice"), join(&twice)));
    }
    for tenth in 1..10 {
        out.push((format!("cut at {tenth}0 %"), offer[..offer.len() * tenth / 10].to_owned()));
    }
    out
}

/// Sends one offer; a session that was opened is ended again. Returns the status.
async fn send(addr: SocketAddr, sdp: &str, as_json: bool) -> (u16, String) {
    let response = if as_json {
        let body = serde_json::json!({ "sdp": sdp, "type": "offer" }).to_string();
        http::post(addr, "/api/connect", "application/json", body.as_bytes()).await
    } else {
        http::post(addr, "/whep", "application/sdp", sdp.as_bytes()).await
    };
    let location = match response.status {
        200 => response.json()["session"].as_str().map(|id| format!("/api/sessions/{id}")),
        201 => response.header("location").map(str::to_owned),
        _ => None,
    };
    if let Some(location) = location {
        http::request(addr, "DELETE", &location, None, b"").await;
    }
    (response.status, response.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_offer_gets_a_server_error() {
    let daemon = common::start_daemon(|c| c.max_viewers = 4).await;
    let addr = daemon.local_addr();
    let watcher = Viewer::connect(addr, ViewerOptions::undecoded()).await;
    watcher.received.wait_frames(5, Duration::from_secs(10)).await;
    let (_pc, offer) = common::viewer::offer(&ViewerOptions::default()).await;
    let mut server_errors = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    for (i, (what, sdp)) in mutations(&offer).into_iter().enumerate() {
        let (status, body) = send(addr, &sdp, i % 2 == 1).await;
        *statuses.entry(status).or_insert(0) += 1;
        if status >= 500 {
            server_errors.push(format!("{what}: {status} {body}"));
        }
    }
    assert!(server_errors.is_empty(), "server errors ({statuses:?}):\n{}", server_errors.join("\n"));
    assert!(statuses.keys().any(|s| *s < 300) && statuses.keys().any(|s| *s == 400), "{statuses:?}");
    // The watcher never lost its picture.
    let before = watcher.received.video_frames.load(Ordering::Relaxed);
    watcher.received.wait_frames(before + 15, Duration::from_secs(5)).await;
    watcher.close().await;
    daemon.shutdown().await;
}
