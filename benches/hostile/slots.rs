//! Slots: viewers that connect, get frames and DELETE their session, and viewers that
//! vanish without DELETE, each timed until `GET /api/sessions` no longer lists it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use super::common::viewer::{Received, Viewer, ViewerOptions};
use super::daemon::{Outcome, exchange, id_of, session_ids};

#[derive(Default)]
pub(crate) struct SlotStats {
    pub(crate) what: String,
    pub(crate) attempted: usize,
    pub(crate) completed: usize,
    pub(crate) first_frame_ms: Vec<f64>,
    pub(crate) freed_s: Vec<f64>,
    pub(crate) still_taken: usize,
    pub(crate) errors: Vec<String>,
}

impl SlotStats {
    fn error(&mut self, error: impl std::fmt::Display) {
        let text = error.to_string();
        if self.errors.len() < 5 && !self.errors.contains(&text) {
            self.errors.push(text);
        }
    }
}

/// Connects a webrtc-rs viewer; its panics (the test helper asserts) become errors.
pub(crate) async fn connect_viewer(addr: SocketAddr) -> Result<Viewer> {
    tokio::spawn(Viewer::connect(addr, ViewerOptions::undecoded()))
        .await
        .map_err(|e| anyhow!("the viewer could not connect: {e}"))
}

pub(crate) async fn wait_frames(received: &Received, n: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while received.video_frames.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Polls `/api/sessions` until the `ids` are gone; how long each took after `since`.
pub(crate) async fn wait_gone(
    addr: SocketAddr,
    ids: &[String],
    since: Instant,
    deadline: Duration,
) -> HashMap<String, f64> {
    let mut gone = HashMap::new();
    while gone.len() < ids.len() && since.elapsed() < deadline {
        if let Ok(live) = session_ids(addr).await {
            for id in ids.iter().filter(|id| !live.contains(*id)) {
                gone.entry(id.clone()).or_insert_with(|| since.elapsed().as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gone
}

/// Waits until only the honest viewer's session is left.
pub(crate) async fn wait_only(addr: SocketAddr, honest: &str, deadline: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let ids = session_ids(addr).await?;
        if ids.iter().all(|id| id == honest) {
            return Ok(());
        }
        if start.elapsed() > deadline {
            bail!("{} sessions besides the honest viewer still there after {deadline:?}", ids.len() - 1);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Viewers that connect, get a frame and DELETE their session, one after another.
pub(crate) async fn cycles(addr: SocketAddr, n: usize, deadline: Duration) -> SlotStats {
    let mut stats = SlotStats {
        what: format!("{n} connect / first frame / DELETE cycles"),
        attempted: n,
        ..Default::default()
    };
    for _ in 0..n {
        let viewer = match connect_viewer(addr).await {
            Ok(viewer) => viewer,
            Err(e) => {
                stats.error(e);
                continue;
            }
        };
        if !wait_frames(&viewer.received, 1, Duration::from_secs(10)).await {
            stats.error("no frame within 10 s");
        } else if let Some(first) = viewer.received.first_frame.get() {
            stats.first_frame_ms.push(first.duration_since(viewer.offered_at).as_secs_f64() * 1e3);
        }
        let id = id_of(&viewer.location);
        let deleted = Instant::now();
        let (outcome, _) =
            exchange(addr, &super::daemon::as_operator("DELETE", &viewer.location), false).await;
        viewer.close().await;
        if outcome != Outcome::Status(200) {
            stats.error(format!("DELETE got {outcome}"));
        }
        match wait_gone(addr, std::slice::from_ref(&id), deleted, deadline).await.get(&id) {
            Some(&freed) => {
                stats.freed_s.push(freed);
                stats.completed += 1;
            }
            None => stats.still_taken += 1,
        }
    }
    stats
}

/// Viewers that get frames and close their peer connection without DELETE, in batches.
pub(crate) async fn vanished(addr: SocketAddr, n: usize, batch: usize, deadline: Duration) -> SlotStats {
    let mut stats = SlotStats {
        what: format!("{n} clients vanishing without DELETE"),
        attempted: n,
        ..Default::default()
    };
    let mut left = n;
    while left > 0 {
        let mut viewers = Vec::new();
        for _ in 0..batch.min(left) {
            left -= 1;
            match connect_viewer(addr).await {
                Ok(viewer) => viewers.push(viewer),
                Err(e) => stats.error(e),
            }
        }
        for viewer in &viewers {
            if !wait_frames(&viewer.received, 10, Duration::from_secs(10)).await {
                stats.error("fewer than 10 frames within 10 s");
            } else if let Some(first) = viewer.received.first_frame.get() {
                stats.first_frame_ms.push(first.duration_since(viewer.offered_at).as_secs_f64() * 1e3);
            }
        }
        let ids: Vec<String> = viewers.iter().map(|v| id_of(&v.location)).collect();
        let closed = Instant::now();
        for viewer in &viewers {
            viewer.close().await;
        }
        let gone = wait_gone(addr, &ids, closed, deadline).await;
        stats.freed_s.extend(gone.values());
        stats.completed += gone.len();
        stats.still_taken += ids.len() - gone.len();
    }
    stats
}
