//! The example robot programs (`examples/robot.py`, `examples/robot.rs`) against a real
//! robocast and a real webrtc-rs peer (README "Write your robot program"). Each program
//! is started before robocast and says robocast is not running; once robocast is up it
//! reads the hello, a peer takes the seat and drives until the program's telemetry reports
//! the speed, goes quiet so the dead-man stops the motors, then gives the seat up; last,
//! robocast restarts and the program connects again.
//!
//! The programs run as child processes and the test reads the lines they print, so what
//! is asserted is what the README shows. Nothing sleeps to let something happen: every
//! step waits for a line or a message, with a deadline.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::program::socket_path;
use common::{Viewer, ViewerOptions, http};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Connecting the peer, or the program reaching a robocast that has just started (it may
/// be between two attempts, which grow to a few seconds apart).
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// A line or a message that follows from the last one.
const LINE_TIMEOUT: Duration = Duration::from_secs(5);
const DEADMAN_MS: u64 = 300;
/// How often the peer sends its drive command, like the page.
const COMMAND_EVERY: Duration = Duration::from_millis(50);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_example_drives_the_robot() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    drives_the_robot(|socket| {
        let mut command = Command::new("python3");
        command.arg(manifest.join("examples/robot.py")).arg(socket);
        command
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_example_drives_the_robot() {
    let robot = tokio::task::spawn_blocking(build_rust_example).await.expect("build task");
    drives_the_robot(|socket| {
        let mut command = Command::new(&robot);
        command.arg(socket);
        command
    })
    .await;
}

/// `cargo test --test examples` builds no examples, so the test builds the Rust one with
/// the same cargo, target directory and profile, and returns the binary's path.
fn build_rust_example() -> PathBuf {
    // This test binary is <target>/<profile dir>/deps/examples-<hash>.
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("the target profile directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(name) => name,
    };
    let mut cargo = std::process::Command::new(env!("CARGO"));
    cargo.args(["build", "--example", "robot", "--offline", "--quiet", "--profile", profile]);
    // Without the variables cargo set for this test: build scripts that watch them (ring
    // watches CARGO_MANIFEST_DIR) would run again and rebuild the crate for everyone.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo =
            ["CARGO_PKG_", "CARGO_BIN_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_TARGET_TMPDIR"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
                || name == "CARGO_PRIMARY_PACKAGE";
        if set_by_cargo {
            cargo.env_remove(&*name);
        }
    }
    let status = cargo.current_dir(env!("CARGO_MANIFEST_DIR")).status().expect("cargo runs");
    assert!(status.success(), "cargo build --example robot failed: {status}");
    profile_dir.join("examples/robot")
}

async fn drives_the_robot(program: impl Fn(&Path) -> Command) {
    let (socket, _dir) = socket_path();
    let mut robot = Printed::start(program(&socket));
    robot.expect(LINE_TIMEOUT, |l| l.contains("robocast is not running, or the path is wrong")).await;

    let start = || {
        let socket = socket.clone();
        common::start_daemon(move |c| {
            c.control_socket = Some(socket);
            c.deadman_ms = DEADMAN_MS;
        })
    };
    let daemon = start().await;
    let addr = daemon.local_addr();
    robot.expect(START_TIMEOUT, |l| l == "hello version=1 sessions=0 driver=none").await;

    let options = ViewerOptions { channels: &["control", "state"], ..ViewerOptions::undecoded() };
    let viewer = Viewer::connect(addr, options).await;
    viewer.wait_open("control", START_TIMEOUT).await;
    viewer.wait_open("state", START_TIMEOUT).await;
    let id = viewer.session().to_owned();
    robot.expect(LINE_TIMEOUT, |l| l == format!("connected session={id}")).await;

    let seat = http::post(addr, &format!("/api/sessions/{id}/driver"), "application/json", b"").await;
    assert_eq!(seat.status, 200, "{}", seat.body);
    robot.expect(LINE_TIMEOUT, |l| l == format!("driver session={id}")).await;

    // Drive like the page, 20 commands a second, until the robot reports the speed back.
    let control = viewer.channels.get("control").expect("a control channel").clone();
    let command = json!({ "type": "drive", "linear": 0.5, "angular": -0.25 }).to_string();
    let driving = tokio::spawn(async move {
        let mut every = tokio::time::interval(COMMAND_EVERY);
        loop {
            every.tick().await;
            control.send_text(command.clone()).await.expect("send on control");
        }
    });
    robot.expect(LINE_TIMEOUT, |l| l == format!("drive linear=0.50 angular=-0.25 from={id}")).await;
    let telemetry =
        viewer.inbox.expect("state", LINE_TIMEOUT, |m| is_telemetry(m) && m["speed"] == 0.5).await;
    assert!(telemetry["battery"].is_number() && telemetry["uptime_s"].is_number(), "{telemetry}");

    // Quiet: the dead-man fires and the program stops the motors, and says so.
    driving.abort();
    let _ = driving.await;
    let stop = robot.expect(LINE_TIMEOUT, |l| l.starts_with("STOP")).await;
    let prefix = format!("STOP reason=silence session={id} silent_ms=");
    let silent_ms: u64 = stop
        .strip_prefix(&prefix)
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("the first stop is not the dead-man's silence: {stop}"));
    assert!(silent_ms >= DEADMAN_MS, "{stop}");
    viewer.inbox.expect("state", LINE_TIMEOUT, |m| is_telemetry(m) && m["speed"] == 0.0).await;

    // Giving the seat up leaves nobody driving: the program stops the motors again.
    let released = http::request(addr, "DELETE", &format!("/api/sessions/{id}/driver"), None, b"").await;
    assert_eq!((released.status, released.json()["driver"].clone()), (200, Value::Null), "{}", released.body);
    robot.expect(LINE_TIMEOUT, |l| l == "driver session=none").await;
    robot.expect(LINE_TIMEOUT, |l| l == "STOP reason=no_driver").await;

    // robocast restarts (the service's Restart=on-failure): the program finds it again.
    viewer.close().await;
    daemon.shutdown().await;
    robot.expect(LINE_TIMEOUT, |l| l.starts_with("robocast closed") || l.starts_with("lost robocast")).await;
    let daemon = start().await;
    robot.expect(START_TIMEOUT, |l| l == "hello version=1 sessions=0 driver=none").await;
    daemon.shutdown().await;
}

fn is_telemetry(message: &Value) -> bool {
    message["type"] == "telemetry"
}

/// A program running as a child process, and the lines it prints (stdout and stderr).
struct Printed {
    _child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line read so far, for failure messages.
    seen: Vec<String>,
}

impl Printed {
    fn start(mut command: Command) -> Printed {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        tokio::spawn(forward(stdout, tx.clone()));
        tokio::spawn(forward(stderr, tx));
        Printed { _child: child, lines, seen: Vec::new() }
    }

    /// The next line satisfying `want`, skipping others; panics after `timeout`.
    async fn expect(&mut self, timeout: Duration, want: impl Fn(&str) -> bool) -> String {
        let found = tokio::time::timeout(timeout, async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if want(&line) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            Ok(None) => panic!("the program ended; it printed: {:#?}", self.seen),
            Err(_) => panic!("no matching line within {timeout:?}; the program printed: {:#?}", self.seen),
        }
    }
}

async fn forward(output: impl AsyncRead + Unpin, tx: mpsc::UnboundedSender<String>) {
    let mut lines = BufReader::new(output).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if tx.send(line).is_err() {
            return;
        }
    }
}
