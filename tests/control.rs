//! Data channels, the control socket, the driver seat and the dead-man stop, with real
//! webrtc-rs peers playing the browsers and test programs on the socket.

mod common;

use std::time::{Duration, Instant};

use common::program::{self, Program};
use common::{Viewer, ViewerOptions, http};
use robocast::control::PROGRAM_QUEUE;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(10);
const DEADMAN_MS: u64 = 300;

fn with_socket(path: std::path::PathBuf) -> impl FnOnce(&mut robocast::Config) {
    move |config| {
        config.control_socket = Some(path);
        config.deadman_ms = DEADMAN_MS;
    }
}

fn driving_options() -> ViewerOptions {
    ViewerOptions { channels: &["control", "state"], ..ViewerOptions::undecoded() }
}

/// A viewer with `control` and `state` open and robocast's hello read.
async fn browser(addr: std::net::SocketAddr) -> Viewer {
    let viewer = Viewer::connect(addr, driving_options()).await;
    viewer.wait_open("state", T).await;
    viewer.wait_open("control", T).await;
    let hello = viewer.inbox.expect("state", T, |v| v["type"] == "hello").await;
    assert_eq!(hello["from"], "robocast");
    assert_eq!(hello["session"], viewer.session());
    viewer
}

async fn take_seat(addr: std::net::SocketAddr, viewer: &Viewer) -> http::Response {
    let path = format!("/api/sessions/{}/driver", viewer.session());
    http::post(addr, &path, "application/json", b"").await
}

fn is_message(channel: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == "message" && v["channel"] == channel
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_round_trip_between_a_browser_and_a_program() {
    let (path, _dir) = program::socket_path();
    let daemon = common::start_daemon(with_socket(path.clone())).await;
    let (mut robot, hello) = Program::connect(&path).await;
    assert_eq!(hello["version"], 1);
    assert_eq!(hello["sessions"], json!([]));

    let viewer = browser(daemon.local_addr()).await;
    let connected = robot.expect(T, |v| v["type"] == "connected").await;
    assert_eq!(connected["session"], viewer.session());

    viewer.send("state", r#"{"type":"ask","n":1}"#).await;
    let got = robot.expect(T, is_message("state")).await;
    assert_eq!(got["session"], viewer.session());
    assert_eq!(got["data"], json!({"type": "ask", "n": 1}));

    robot.send(&json!({"to": "all", "channel": "state", "data": {"battery": 0.5}})).await;
    let telemetry = viewer.inbox.expect("state", T, |v| v.get("battery").is_some()).await;
    assert_eq!(telemetry, json!({"battery": 0.5}));

    // To one session by id; and a line robocast cannot use gets an error, the connection stays.
    robot.send(&json!({"to": viewer.session(), "data": {"only": "you"}})).await;
    viewer.inbox.expect("state", T, |v| v["only"] == "you").await;
    robot.send_raw("this is not json").await;
    let error = robot.expect(T, |v| v["type"] == "error").await;
    assert!(error["error"].as_str().is_some_and(|e| e.contains("not a message")), "{error}");
    robot.send_bytes(b"\xff\xfe{}\n").await;
    let error = robot.expect(T, |v| v["type"] == "error").await;
    assert!(error["error"].as_str().is_some_and(|e| e.contains("not UTF-8")), "{error}");
    robot.send_raw(&"x".repeat(70 * 1024)).await;
    let error = robot.expect(T, |v| v["type"] == "error").await;
    assert!(error["error"].as_str().is_some_and(|e| e.contains("a line over")), "{error}");
    // After each refused line the connection still works.
    robot.send(&json!({"data": {"still": "here"}})).await;
    viewer.inbox.expect("state", T, |v| v["still"] == "here").await;
    robot.send(&json!({"to": "0123456789abcdef0123456789abcdef", "data": 1})).await;
    let error = robot.expect(T, |v| v["type"] == "error").await;
    assert!(error["error"].as_str().is_some_and(|e| e.contains("no session")), "{error}");

    viewer.close().await;
    let gone = robot.expect(T, |v| v["type"] == "disconnected").await;
    assert_eq!(gone["session"], viewer.session());
    daemon.shutdown().await;
    assert!(!path.exists(), "the socket file is removed at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_driver_commands_and_everyone_is_told_who_drives() {
    let (path, _dir) = program::socket_path();
    let daemon = common::start_daemon(with_socket(path.clone())).await;
    let addr = daemon.local_addr();
    let (mut robot, _) = Program::connect(&path).await;
    let a = browser(addr).await;
    let b = browser(addr).await;

    let took = take_seat(addr, &a).await;
    assert_eq!(took.status, 200, "{}", took.body);
    assert_eq!(took.json()["driver"], a.session());
    let refused = take_seat(addr, &b).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    let body = refused.json();
    assert_eq!(body["driver"], a.session());
    assert!(body["error"].as_str().is_some_and(|e| e.contains(a.session())), "{body}");
    assert!(body["hint"].is_string(), "{body}");

    let told = robot.expect(T, |v| v["type"] == "driver").await;
    assert_eq!(told["session"], a.session());
    let listed = http::get(addr, "/api/sessions").await.json();
    assert_eq!(listed["driver"], a.session(), "{listed}");
    let driving: Vec<bool> =
        listed["sessions"].as_array().expect("sessions").iter().map(|s| s["driving"] == true).collect();
    assert_eq!(driving.iter().filter(|&&d| d).count(), 1, "{listed}");
    for viewer in [&a, &b] {
        let notice = viewer.inbox.expect("state", T, |v| v["type"] == "driver").await;
        assert_eq!(notice["session"], a.session());
    }

    b.send("control", r#"{"type":"drive","linear":1,"angular":0,"from":"b"}"#).await;
    let refusal = b.inbox.expect("state", T, |v| v["type"] == "error").await;
    assert_eq!(refusal["channel"], "control");
    a.send("control", r#"{"type":"drive","linear":0.5,"angular":0,"from":"a"}"#).await;
    let command = robot.expect(T, is_message("control")).await;
    assert_eq!(command["session"], a.session());
    assert_eq!(command["data"]["from"], "a", "b's command was forwarded: {command}");

    // Release: the seat is free, b takes it.
    let path_a = format!("/api/sessions/{}/driver", a.session());
    let released = http::request(addr, "DELETE", &path_a, None, b"").await;
    assert_eq!((released.status, released.json()["driver"].clone()), (200, Value::Null));
    assert_eq!(take_seat(addr, &b).await.status, 200);
    let told = robot.expect(T, |v| v["type"] == "driver" && v["session"] == b.session()).await;
    assert_eq!(told["session"], b.session());

    // A WHEP viewer and an unknown session cannot drive.
    let unknown =
        http::post(addr, "/api/sessions/0123456789abcdef0123456789abcdef/driver", "application/json", b"")
            .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    daemon.shutdown().await;
}

/// Sends drive commands at 20 Hz for `count` ticks; returns when the last was sent.
async fn drive(viewer: &Viewer, count: u32) -> Instant {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut last = Instant::now();
    for i in 0..count {
        tick.tick().await;
        viewer
            .send("control", &json!({"type": "drive", "linear": 0.2, "angular": 0, "i": i}).to_string())
            .await;
        last = Instant::now();
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_driver_causes_deadman_within_the_limit() {
    let (path, _dir) = program::socket_path();
    let daemon = common::start_daemon(with_socket(path.clone())).await;
    let addr = daemon.local_addr();
    let (mut robot, _) = Program::connect(&path).await;
    let a = browser(addr).await;
    assert_eq!(take_seat(addr, &a).await.status, 200);

    let last_sent = drive(&a, 10).await;
    // Heartbeats keep it quiet and are not forwarded.
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    for _ in 0..8 {
        tick.tick().await;
        a.send("control", r#"{"type":"heartbeat"}"#).await;
    }
    let last_heartbeat = Instant::now();
    let deadman = robot.expect(T, |v| v["type"] == "deadman").await;
    let after = last_heartbeat.elapsed();
    assert!(last_heartbeat.duration_since(last_sent) > Duration::from_millis(350));
    assert_eq!(deadman["session"], a.session());
    assert_eq!(deadman["reason"], "silence");
    let silent_ms = deadman["silent_ms"].as_u64().expect("silent_ms");
    assert!((DEADMAN_MS..=DEADMAN_MS + 20).contains(&silent_ms), "{deadman}");
    assert!(
        after >= Duration::from_millis(DEADMAN_MS) && after <= Duration::from_millis(DEADMAN_MS + 20),
        "deadman came {after:?} after the last heartbeat; want within {DEADMAN_MS} + 20 ms"
    );
    let heartbeats = robot.seen.iter().filter(|l| l.contains("heartbeat")).count();
    assert_eq!(heartbeats, 0, "heartbeats are robocast's own: {:#?}", robot.seen);
    let commands = robot.seen.iter().filter(|l| l.contains(r#""type":"drive""#)).count();
    assert_eq!(commands, 10, "every command on a loopback link arrives: {:#?}", robot.seen);

    // The driver keeps the seat and can resume; the next silence fires again. The page
    // also says so on `state`.
    a.inbox.expect("state", T, |v| v["type"] == "deadman").await;
    drive(&a, 2).await;
    robot.expect(T, |v| v["type"] == "deadman").await;

    // A hidden tab fires at once.
    drive(&a, 2).await;
    a.send("control", r#"{"type":"hidden"}"#).await;
    let sent = Instant::now();
    let hidden = robot.expect(T, |v| v["type"] == "deadman").await;
    assert_eq!(hidden["reason"], "hidden");
    assert!(sent.elapsed() < Duration::from_millis(100), "hidden took {:?}", sent.elapsed());
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_browser_messages_get_an_error_and_go_nowhere() {
    let (path, _dir) = program::socket_path();
    let daemon = common::start_daemon(with_socket(path.clone())).await;
    let (mut robot, _) = Program::connect(&path).await;
    let a = browser(daemon.local_addr()).await;

    a.send("state", "{not json").await;
    let error = a.inbox.expect("state", T, |v| v["type"] == "error").await;
    assert!(error["error"].as_str().is_some_and(|e| e.contains("not JSON")), "{error}");
    let big = json!({ "blob": "x".repeat(17 * 1024) }).to_string();
    a.send("state", &big).await;
    let error = a.inbox.expect("state", T, |v| v["type"] == "error").await;
    assert!(error["error"].as_str().is_some_and(|e| e.contains("limit")), "{error}");
    let binary = a.channels.get("state").expect("state channel");
    binary.send(&bytes::Bytes::from_static(&[0, 1, 2])).await.expect("binary send");
    let error = a.inbox.expect("state", T, |v| v["type"] == "error").await;
    assert!(error["error"].as_str().is_some_and(|e| e.contains("binary")), "{error}");

    // Then a good one: it is the first message the program sees.
    a.send("state", r#"{"marker":true}"#).await;
    let first = robot.expect(T, |v| v["type"] == "message").await;
    assert_eq!(first["data"], json!({"marker": true}), "a refused message was forwarded: {first}");
    let status = http::get(daemon.local_addr(), "/api/status").await.json();
    assert_eq!(status["control"]["refused_from_browsers"], 3, "{status}");
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_that_stops_reading_slows_nothing_and_hears_of_its_drops() {
    let (path, _dir) = program::socket_path();
    let daemon = common::start_daemon(with_socket(path.clone())).await;
    let addr = daemon.local_addr();
    let (mut stuck, _) = Program::connect(&path).await;
    let (mut reader, _) = Program::connect(&path).await;
    let watcher = Viewer::connect(addr, ViewerOptions::default()).await;
    let a = browser(addr).await;

    // Far more than the stuck program's queue and socket buffer hold. The sender stays
    // within half a queue of the reading program (a burst beyond its queue would be
    // dropped for it too, as designed): whatever the stuck one does, the reader gets all.
    const N: usize = 6000;
    const AHEAD: usize = PROGRAM_QUEUE / 2;
    let (read_tx, mut read_rx) = tokio::sync::watch::channel(0_usize);
    let sending = async {
        for i in 0..N {
            if read_rx.wait_for(|&read| i < read + AHEAD).await.is_err() {
                return;
            }
            a.send("state", &format!(r#"{{"i":{i},"pad":"{}"}}"#, "p".repeat(100))).await;
        }
    };
    let reading = async {
        for i in 0..N {
            let got = reader.expect(T, is_message("state")).await;
            assert_eq!(got["data"]["i"], i, "the reading program lost or reordered a message");
            read_tx.send_replace(i + 1);
        }
    };
    let started = Instant::now();
    let ((), (), fps) = tokio::join!(sending, reading, watcher.measure_fps(Duration::from_secs(3)));
    assert!(fps >= 25.0, "video fell to {fps:.1} fps while a program did not read");
    let status = http::get(addr, "/api/status").await.json();
    let dropped = status["control"]["dropped_to_programs"].as_u64().unwrap_or(0);
    assert!(dropped > 0, "the stuck program's queue never filled: {status}");
    eprintln!(
        "{N} messages to the reading program in {:?}; {dropped} dropped for the stuck one",
        started.elapsed()
    );

    // Once it reads again, it is told how many it missed.
    let notice = stuck.expect(T, |v| v["type"] == "dropped").await;
    assert!(notice["count"].as_u64().is_some_and(|n| n > 0), "{notice}");
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_that_connects_late_gets_the_sessions_and_the_driver() {
    let (path, _dir) = program::socket_path();
    let daemon = common::start_daemon(with_socket(path.clone())).await;
    let addr = daemon.local_addr();
    let a = browser(addr).await;
    let b = browser(addr).await;
    assert_eq!(take_seat(addr, &b).await.status, 200);
    b.inbox.expect("state", T, |v| v["type"] == "driver").await;

    let (_late, hello) = Program::connect(&path).await;
    assert_eq!(hello["driver"], b.session());
    let mut sessions: Vec<&str> = hello["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter_map(|s| s["session"].as_str())
        .collect();
    sessions.sort_unstable();
    let mut want = vec![a.session(), b.session()];
    want.sort_unstable();
    assert_eq!(sessions, want, "{hello}");
    let channels = &hello["sessions"][0]["channels"];
    assert_eq!(channels, &json!(["control", "state"]), "{hello}");
    assert_eq!(hello["deadman_ms"], DEADMAN_MS);
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_robocast_on_the_same_socket_says_what_to_do() {
    let (path, _dir) = program::socket_path();
    let daemon = common::start_daemon(with_socket(path.clone())).await;
    let mut config = robocast::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        video: "none".into(),
        audio: "none".into(),
        ..Default::default()
    };
    with_socket(path.clone())(&mut config);
    let error = robocast::spawn(config).await.err().expect("the second one refuses").to_string();
    assert!(error.contains("another process is listening"), "{error}");
    assert!(error.contains("--control-socket"), "{error}");
    daemon.shutdown().await;
}

/// A driver in a child process that is killed mid-drive (no goodbye: no SCTP or DTLS
/// close, no DELETE), as a crashed laptop or a lost link looks to the robot. Returns the
/// `deadman` line, how long after the last command's arrival it came, and the program.
async fn kill_a_driver(deadman_ms: u64) -> (Value, Duration, Program, robocast::Running, program::TempDir) {
    use tokio::io::AsyncBufReadExt as _;
    let (path, dir) = program::socket_path();
    let socket = path.clone();
    let daemon = common::start_daemon(move |config| {
        config.control_socket = Some(socket);
        config.deadman_ms = deadman_ms;
    })
    .await;
    let (mut robot, _) = Program::connect(&path).await;
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "driver_in_a_child", "--ignored", "--nocapture"])
        .env("ROBOCAST_TEST_ADDR", daemon.local_addr().to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the test binary runs");
    let mut out = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let session = tokio::time::timeout(T, async {
        while let Ok(Some(line)) = out.next_line().await {
            if let Some(session) = line.strip_prefix("DRIVING ") {
                return session.to_owned();
            }
        }
        panic!("the child never drove");
    })
    .await
    .expect("the child drives within 10 s");
    for _ in 0..5 {
        let command = robot.expect(T, is_message("control")).await;
        assert_eq!(command["session"], session.as_str());
    }
    child.start_kill().expect("kill the driver");
    // Lines that were on their way before the kill still count as its last commands.
    let mut last_command = Instant::now();
    let deadman = loop {
        let line = robot.next(T).await.expect("deadman within 10 s");
        if line["type"] == "deadman" {
            break line;
        }
        if line["type"] == "message" {
            last_command = Instant::now();
        }
    };
    let after = last_command.elapsed();
    assert_eq!(deadman["session"], session.as_str());
    let _ = child.wait().await;
    (deadman, after, robot, daemon, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_killed_mid_drive_causes_deadman_within_the_limit() {
    let (deadman, after, mut robot, daemon, _dir) = kill_a_driver(DEADMAN_MS).await;
    assert_eq!(deadman["reason"], "silence");
    let silent_ms = deadman["silent_ms"].as_u64().expect("silent_ms");
    assert!((DEADMAN_MS..=DEADMAN_MS + 20).contains(&silent_ms), "{deadman}");
    assert!(
        after <= Duration::from_millis(DEADMAN_MS + 20),
        "deadman came {after:?} after the killed driver's last command; want within {DEADMAN_MS} + 20 ms"
    );
    // Its session ends when ICE notices (about 2 s): the seat is then free.
    let gone = robot.expect(T, |v| v["type"] == "driver").await;
    assert_eq!(gone["session"], Value::Null, "{gone}");
    daemon.shutdown().await;
}

/// With a long dead-man delay, the link going ICE-disconnected (1.5 s of silence) fires
/// it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_whose_link_goes_disconnected_causes_deadman_at_once() {
    let (deadman, after, _robot, daemon, _dir) = kill_a_driver(8000).await;
    assert_eq!(deadman["reason"], "link", "{deadman}");
    assert!(after < Duration::from_secs(3), "the link's end took {after:?}");
    daemon.shutdown().await;
}

/// The child of [`a_driver_killed_mid_drive_causes_deadman_within_the_limit`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_driver_killed_mid_drive_causes_deadman_within_the_limit, which kills it"]
async fn driver_in_a_child() {
    let addr = std::env::var("ROBOCAST_TEST_ADDR").expect("ROBOCAST_TEST_ADDR").parse().expect("an address");
    let viewer = browser(addr).await;
    assert_eq!(take_seat(addr, &viewer).await.status, 200);
    println!("DRIVING {}", viewer.session());
    drive(&viewer, u32::MAX).await;
}
