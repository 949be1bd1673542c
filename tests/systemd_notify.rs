//! Under systemd (`Type=notify`), robocast says READY once it listens with its pipelines
//! built, keeps a STATUS line current, pings the watchdog, and says STOPPING on SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn receive_until(socket: &UnixDatagram, deadline: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let start = Instant::now();
    let mut messages = Vec::new();
    let mut buffer = [0u8; 4096];
    while start.elapsed() < deadline && !done(&messages) {
        if let Ok(n) = socket.recv(&mut buffer) {
            messages.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
    }
    messages
}

#[test]
fn ready_status_watchdog_and_stopping_reach_systemd() {
    let dir = std::env::temp_dir().join(format!("robocast-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("notify socket");
    socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let mut robocast = Command::new(env!("CARGO_BIN_EXE_robocast"))
        .args(["--video", "test", "--audio", "test", "--size", "320x240", "--listen", "127.0.0.1:0"])
        .args(["--speaker", "none", "--display", "none"])
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "400000")
        .env("ROBOCAST_OPERATOR_TOKEN", "systemd-notify-test-token")
        .env_remove("ROBOCAST_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("robocast starts");

    let watchdogs = |m: &[String]| m.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    let messages = receive_until(&socket, Duration::from_secs(30), |m| watchdogs(m) >= 3);
    let ready =
        messages.iter().find(|m| m.contains("READY=1")).unwrap_or_else(|| panic!("no READY: {messages:?}"));
    assert!(ready.contains("STATUS=video: test pattern via x264enc"), "{ready}");
    assert!(ready.contains("audio: test tone via opusenc"), "{ready}");
    assert!(watchdogs(&messages) >= 3, "watchdog pings: {messages:?}");

    let terminated = Command::new("kill").args(["-TERM", &robocast.id().to_string()]).status();
    assert!(terminated.is_ok_and(|s| s.success()));
    let stopping =
        receive_until(&socket, Duration::from_secs(10), |m| m.iter().any(|m| m.contains("STOPPING=1")));
    assert!(stopping.iter().any(|m| m.contains("STOPPING=1")), "{stopping:?}");
    let status = robocast.wait().expect("robocast exits");
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
