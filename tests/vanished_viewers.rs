//! Viewers that leave without a DELETE free their slots: one that closes its peer
//! connection (a closed tab), one that took its answer and never connected.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Viewer, ViewerOptions, http};

async fn session_count(addr: SocketAddr) -> usize {
    http::get(addr, "/api/sessions").await.json()["sessions"].as_array().map_or(0, Vec::len)
}

/// The registry has no push interface; ask twice a second until `want` or `limit`.
async fn wait_sessions(addr: SocketAddr, want: usize, limit: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    let mut interval = tokio::time::interval(Duration::from_millis(500));
    loop {
        interval.tick().await;
        let n = session_count(addr).await;
        if n == want || tokio::time::Instant::now() > deadline {
            return n;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_viewers_give_their_slots_back() {
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
    // Both slots come back: ICE fails ~10 s after the first went quiet, the second
    // reaches the 15 s connect timeout.
    assert_eq!(wait_sessions(addr, 0, Duration::from_secs(25)).await, 0, "slots were not freed");
    let again = Viewer::connect(addr, ViewerOptions::undecoded()).await;
    again.received.wait_frames(5, Duration::from_secs(10)).await;
    again.close().await;
    daemon.shutdown().await;
}
