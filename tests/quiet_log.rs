//! The log a robot owner reads says what matters: a viewer that joins and leaves normally
//! leaves no WARN or ERROR line (webrtc-rs warns about every normal session end; those
//! go to debug), and a camera that stays missing is one warning, not one every 2 s.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{Signalling, Viewer, ViewerOptions, http};
use robocast::media::PipelineState;

/// Everything logged, with robocast's default filter and no colour, as the journal gets it.
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&log);
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(robocast::logging::DEFAULT_FILTER))
            .with_ansi(false)
            .with_writer(move || Capture(Arc::clone(&writer)))
            .init();
        log
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log so far, emptied.
fn take() -> String {
    let mut log = log().lock().unwrap_or_else(|p| p.into_inner());
    String::from_utf8_lossy(&std::mem::take(&mut *log)).into_owned()
}

/// The tests read one global log: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn sessions(addr: std::net::SocketAddr) -> usize {
    http::get(addr, "/api/sessions").await.json()["sessions"].as_array().map_or(0, Vec::len)
}

async fn until_no_sessions(addr: std::net::SocketAddr) {
    for _ in 0..100 {
        if sessions(addr).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("sessions did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_joining_and_leaving_normally_log_no_warning() {
    let _turn = ONE_AT_A_TIME.lock().await;
    log();
    let daemon = common::start_daemon(|_| {}).await;
    let addr = daemon.local_addr();
    let _ = take();
    // Leaves by closing its peer connection (a closed tab), after driving a little on the
    // page's data channels ...
    let options = ViewerOptions { channels: &["control", "state"], ..ViewerOptions::undecoded() };
    let closing = Viewer::connect(addr, options).await;
    closing.received.wait_frames(10, Duration::from_secs(10)).await;
    closing.wait_open("control", Duration::from_secs(10)).await;
    let seat = format!("/api/sessions/{}/driver", closing.session());
    assert_eq!(http::post(addr, &seat, "application/json", b"").await.status, 200);
    closing.send("control", r#"{"type":"drive","linear":0.1,"angular":0}"#).await;
    closing.send("state", r#"{"type":"note"}"#).await;
    closing.close().await;
    until_no_sessions(addr).await;
    // ... and by DELETE (a WHEP player's stop).
    let options = ViewerOptions { signalling: Signalling::Whep, ..ViewerOptions::undecoded() };
    let deleting = Viewer::connect(addr, options).await;
    deleting.received.wait_frames(10, Duration::from_secs(10)).await;
    assert_eq!(http::request(addr, "DELETE", &deleting.location, None, b"").await.status, 200);
    deleting.close().await;
    until_no_sessions(addr).await;
    // Whatever webrtc-rs logs while closing comes within a second or two.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = take();
    assert!(log.contains("viewer connected"), "the log was not captured: {log}");
    let loud: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")).collect();
    assert!(loud.is_empty(), "normal sessions logged warnings:\n{}", loud.join("\n"));
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_camera_is_one_warning_not_one_per_retry() {
    let _turn = ONE_AT_A_TIME.lock().await;
    log();
    let _ = take();
    let daemon = common::start_daemon(|c| {
        c.video = "v4l2:/dev/video-robocast-missing".into();
        c.audio = "none".into();
    })
    .await;
    let mut status = daemon.media().watch_status("video").expect("video pipeline");
    // Three retries, 2 s apart.
    let retried = status.wait_for(|s| s.state == PipelineState::Retrying && s.restarts >= 4);
    assert!(tokio::time::timeout(Duration::from_secs(15), retried).await.is_ok_and(|r| r.is_ok()));
    let log = take();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 1, "one warning when the failure starts:\n{log}");
    assert!(warnings[0].contains("no such device") && warnings[0].contains("robocast devices"), "{log}");
    daemon.shutdown().await;
    let _ = std::io::stderr().flush();
}
