//! An offer webrtc-rs rejects after robocast has built its peer connection (no DTLS
//! fingerprint, say) leaves nothing behind: no task waits for a sender that never
//! starts, so the connection is freed. Such tasks held ~28 kB each and made memory grow
//! under hostile input without end.

mod common;

use std::time::Duration;

use common::{ViewerOptions, http};

const OFFERS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_offers_leave_no_tasks_behind() {
    let daemon = common::start_daemon(|c| c.audio = "none".into()).await;
    let addr = daemon.local_addr();
    let metrics = tokio::runtime::Handle::current().metrics();
    let (_pc, offer) = common::viewer::offer(&ViewerOptions::default()).await;
    let broken: String =
        offer.lines().filter(|l| !l.starts_with("a=fingerprint:")).map(|l| format!("{l}\r\n")).collect();
    // One first, so every lazily started background task exists before the count.
    assert_eq!(http::post(addr, "/whep", "application/sdp", broken.as_bytes()).await.status, 400);
    // The count once it holds still for a few readings (closing connections finish).
    let settled = async || {
        let mut last = usize::MAX;
        for _ in 0..50 {
            let now = metrics.num_alive_tasks();
            if now == last {
                return now;
            }
            last = now;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        last
    };
    let before = settled().await;
    for _ in 0..OFFERS {
        let refused = http::post(addr, "/whep", "application/sdp", broken.as_bytes()).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(
            refused.json()["error"].as_str().unwrap_or_default().contains("rejected"),
            "{}",
            refused.body
        );
    }
    let after = settled().await;
    assert!(
        after <= before + 4,
        "{OFFERS} rejected offers left {} tasks alive ({before} before)",
        after - before
    );
    daemon.shutdown().await;
}
