//! Viewers that leave without a DELETE free their slots and stop costing frames: a
//! browser that is killed (nothing more comes from it: a closed laptop, lost Wi-Fi), a
//! peer that closes its connection (a closed tab), one that took its answer and never
//! connected.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::{Viewer, ViewerOptions, http};

async fn session_count(addr: SocketAddr) -> usize {
    http::get(addr, "/api/sessions").await.json()["sessions"].as_array().map_or(0, Vec::len)
}

/// The registry has no push interface; ask every 100 ms until `want` or `limit`.
async fn wait_sessions(addr: SocketAddr, want: usize, limit: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    loop {
        interval.tick().await;
        let n = session_count(addr).await;
        if n == want || tokio::time::Instant::now() > deadline {
            return n;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_vanishes_gives_its_slot_back_within_seconds() -> anyhow::Result<()> {
    let daemon = common::start_daemon(|c| c.max_viewers = 1).await;
    let addr = daemon.local_addr();
    let browser = Browser::launch().await?;
    let page = browser.new_page(&format!("http://{addr}/")).await?;
    let playing =
        "window.robocast?.state === 'connected' && document.getElementById('video')?.videoWidth > 0";
    page.wait_for(playing, Duration::from_secs(15)).await?;
    assert_eq!(session_count(addr).await, 1);
    // Killed, not closed: no DELETE, no DTLS close, no packet at all from now on.
    let vanished = Instant::now();
    drop(page);
    drop(browser);
    assert_eq!(wait_sessions(addr, 0, Duration::from_secs(10)).await, 0, "the slot was not freed");
    let freed = vanished.elapsed();
    // webrtc-rs's default consent timeouts took ~14 s; robocast's ~2 s (+ polling).
    assert!(freed < Duration::from_secs(4), "the vanished browser held its slot for {freed:?}");
    // The one slot is free again for an honest viewer.
    let again = Viewer::connect(addr, ViewerOptions::undecoded()).await;
    again.received.wait_frames(5, Duration::from_secs(10)).await;
    again.close().await;
    daemon.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_and_never_connected_viewers_give_their_slots_back() {
    let daemon = common::start_daemon(|c| c.max_viewers = 2).await;
    let addr = daemon.local_addr();
    // One connects, then closes its peer connection without telling the HTTP API.
    let gone = Viewer::connect(addr, ViewerOptions::undecoded()).await;
    gone.received.wait_frames(5, Duration::from_secs(10)).await;
    gone.close().await;
    // The other takes its answer and never applies it.
    let (_silent, offer) = common::viewer::offer(&ViewerOptions::default()).await;
    let answered = http::post(addr, "/whep", "application/sdp", offer.as_bytes()).await;
    assert_eq!(answered.status, 201);
    // The closed one goes at once, the silent one when its ICE checks time out (5 s).
    assert_eq!(wait_sessions(addr, 1, Duration::from_secs(3)).await, 1, "the closed viewer stayed");
    assert_eq!(wait_sessions(addr, 0, Duration::from_secs(15)).await, 0, "the silent viewer stayed");
    daemon.shutdown().await;
}
