//! A viewer that joins a stream other viewers are already watching gets a key frame at
//! once (no waiting for the encoder's periodic one) and decodes within a second.

mod common;

use std::time::Duration;

use common::{Viewer, ViewerOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_joining_a_running_stream_decodes_within_a_second() {
    let daemon = common::start_daemon(|_| {}).await;
    let first = Viewer::connect(daemon.local_addr(), ViewerOptions::default()).await;
    // Well past the first key frame, and past the key frame throttle window.
    first.received.wait_frames(45, Duration::from_secs(10)).await;

    for _ in 0..2 {
        let late = Viewer::connect(daemon.local_addr(), ViewerOptions::default()).await;
        late.received.wait_frames(1, Duration::from_secs(5)).await;
        let first_frame = *late.received.first_frame.get().expect("a frame arrived");
        let waited = first_frame - late.offered_at;
        assert!(waited <= Duration::from_secs(1), "first frame {waited:?} after the offer");
        assert_eq!(late.received.size(), (640, 360));
        late.close().await;
    }
    daemon.shutdown().await;
}
