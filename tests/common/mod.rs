//! Shared test helpers: start robocast in-process, talk HTTP to it, and play the browser
//! with a real webrtc-rs peer that decodes what it receives with GStreamer.
#![allow(dead_code)]

pub mod browser;
pub mod clients;
pub mod http;
pub mod input;
pub mod page;
pub mod program;
pub mod screen;
pub mod talkback;
pub mod viewer;

use std::sync::Once;

#[allow(unused_imports)]
pub use viewer::{Signalling, Viewer, ViewerOptions};

/// The operator token of every test daemon; [`http`] sends it unless a test says otherwise.
pub const OPERATOR_TOKEN: &str = "test-operator-token-0123456789abcdef";

/// The operator token as the daemon takes it.
pub fn operator_token() -> robocast::auth::Token {
    robocast::auth::Token::new(OPERATOR_TOKEN).expect("a valid token")
}

/// Starts a daemon on 127.0.0.1:0 with the test sources at 640x360@30 (cheap on 2 cores)
/// and [`OPERATOR_TOKEN`], after `adjust` has changed what the test needs.
pub async fn start_daemon(adjust: impl FnOnce(&mut robocast::Config)) -> robocast::Running {
    init_logging();
    let mut config = robocast::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        video: "test".into(),
        audio: "test".into(),
        width: 640,
        height: 360,
        fps: 30,
        bitrate_kbps: 1000,
        operator_token: Some(operator_token()),
        ..Default::default()
    };
    adjust(&mut config);
    robocast::spawn(config).await.expect("daemon starts")
}

/// Logs to the test's captured output; `ROBOCAST_LOG=debug cargo test` shows more.
pub fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = std::env::var("ROBOCAST_LOG").unwrap_or_else(|_| "warn".into());
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    });
}
