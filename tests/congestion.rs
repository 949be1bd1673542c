//! Congestion control with a real webrtc-rs viewer (it sends transport-wide feedback, as
//! browsers do): the session's estimate in `/api/sessions`, the encoder's bitrate in
//! `/api/status`, a viewer behind a link thinner than the configured bitrate that keeps
//! its picture, and a slow viewer beside a fast one: the slow one moves to the half-size
//! tier, the fast one keeps the configured picture and bitrate. The thin links are a
//! private network namespace whose loopback is shaped with `tc` (each shaped test re-runs
//! itself inside one): all of it, or only the traffic to a second loopback address.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Viewer, ViewerOptions, http};
use serde_json::Value;

/// A camera-like picture: a moving test pattern under light noise (15 % snow), which
/// uses whatever bitrate the encoder is given, as a real sensor's picture in dim light.
const NOISY_CAMERA: &str = "gst:videotestsrc is-live=true pattern=snow ! video/x-raw,width=640,height=360,framerate=30/1 \
    ! m.sink_1 videotestsrc is-live=true pattern=smpte horizontal-speed=4 \
    ! video/x-raw,width=640,height=360,framerate=30/1 ! m.sink_0 compositor name=m sink_1::alpha=0.15 \
    ! video/x-raw,width=640,height=360,framerate=30/1";

/// Polls `path` until `ready` holds for its JSON (the estimate settles over seconds; there
/// is no event to await for it), or panics with the last answer after `timeout`.
async fn wait_json(
    addr: std::net::SocketAddr,
    path: &str,
    timeout: Duration,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let json = http::get(addr, path).await.json();
        if ready(&json) {
            return json;
        }
        assert!(Instant::now() < deadline, "{path} after {timeout:?}: {json:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_link_shows_its_estimate_and_keeps_the_configured_bitrate() {
    let daemon = common::start_daemon(|_| {}).await;
    let addr = daemon.local_addr();
    let viewer = Viewer::connect(addr, ViewerOptions::default()).await;
    viewer.received.wait_frames(30, Duration::from_secs(10)).await;
    // The round trip comes with the first receiver report that echoes a sender report.
    let sessions = wait_json(addr, "/api/sessions", Duration::from_secs(10), |j| {
        let link = &j["sessions"][0]["link"];
        link["acked_bps"].as_u64().is_some_and(|b| b > 500_000)
            && link["rtt_ms"].as_u64().is_some_and(|r| r < 50)
    })
    .await;
    let link = &sessions["sessions"][0]["link"];
    assert_eq!(link["target_bps"], 1_064_000, "the configured video and audio: {link}");
    assert!(link["loss"].as_f64().is_some_and(|l| l < 0.02), "{link}");
    assert_eq!(link["usage"], "normal", "{link}");
    let status = http::get(addr, "/api/status").await.json();
    let targets = &status["pipelines"][0]["targets"];
    assert_eq!(
        (targets[0]["codec"].as_str(), targets[0]["encoder"].as_str()),
        (Some("h264"), Some("x264enc")),
        "{status}"
    );
    assert_eq!(targets[0]["kbps"], 1000, "the encoder keeps the configured bitrate: {status}");
    daemon.shutdown().await;
}

/// The link: 600 kbit/s, a 16 kB bucket, 100 ms of queue (tbf's `latency`).
const SHAPE: &str = "tc qdisc add dev lo root tbf rate 600kbit burst 16kb latency 100ms";

/// The slow viewer's one UDP port: below the ephemeral ports, so nothing else has it.
const SLOW_PORT: u16 = 20_000;

/// Only what goes to [`SLOW_PORT`] (the slow viewer) is shaped: 400 kbit/s, a 16 kB bucket
/// and 100 ms of queue (5 kB), by htb itself (a tbf under htb throttles in bursts); the rest
/// of the loopback, the viewer's own feedback included, is as fast as ever.
const SHAPE_ONE: &str = "tc qdisc add dev lo root handle 1: htb default 10 \
    && tc class add dev lo parent 1: classid 1:10 htb rate 10gbit quantum 60000 \
    && tc class add dev lo parent 1: classid 1:20 htb rate 400kbit ceil 400kbit burst 16k cburst 16k \
    && tc qdisc add dev lo parent 1:20 handle 20: bfifo limit 5000 \
    && tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip protocol 17 0xff match ip dport 20000 0xffff flowid 1:20";

/// Runs the test `name` (whose body is `body`) in a network namespace of its own, nested
/// in the one the suite runs in if any, with its loopback shaped by `shape`: the test
/// binary re-runs only this test inside it.
fn in_shaped_namespace(name: &str, shape: &str, body: impl Future<Output = ()>) {
    if std::env::var("ROBOCAST_SHAPED_LINK").is_ok_and(|inside| inside == name) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
        runtime.expect("a runtime").block_on(body);
        return;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let script = format!(
        "ip link set lo up && {shape} && \"$0\" \"$@\"; rc=$?; tc -s qdisc show dev lo; ip -s link show lo; exit $rc"
    );
    let status = Command::new("unshare")
        .args(["--map-root-user", "--net", "sh", "-c", &script])
        .arg(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("ROBOCAST_SHAPED_LINK", name)
        .status()
        .expect("unshare runs");
    assert!(status.success(), "the shaped run failed: {status}");
}

#[test]
fn a_viewer_behind_a_thin_link_keeps_its_picture() {
    in_shaped_namespace("a_viewer_behind_a_thin_link_keeps_its_picture", SHAPE, behind_a_thin_link());
}

#[test]
fn a_slow_viewer_gets_the_lower_tier_and_the_fast_one_keeps_the_top() {
    in_shaped_namespace(
        "a_slow_viewer_gets_the_lower_tier_and_the_fast_one_keeps_the_top",
        SHAPE_ONE,
        beside_a_fast_one("h264"),
    );
}

#[test]
fn a_slow_vp8_viewer_gets_the_lower_tier_and_the_fast_one_keeps_the_top() {
    in_shaped_namespace(
        "a_slow_vp8_viewer_gets_the_lower_tier_and_the_fast_one_keeps_the_top",
        SHAPE_ONE,
        beside_a_fast_one("vp8"),
    );
}

#[test]
fn a_camera_stream_passed_through_is_encoded_again_for_a_slow_viewer() {
    in_shaped_namespace(
        "a_camera_stream_passed_through_is_encoded_again_for_a_slow_viewer",
        SHAPE_ONE,
        passed_through(),
    );
}

async fn passed_through() {
    // A camera that sends its own H.264 at 1 Mbit/s: its bitrate cannot follow a link, so
    // even a lone viewer on a thin link gets the lower tier, decoded and encoded again.
    let camera = format!(
        "{NOISY_CAMERA} ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=1000 key-int-max=60 ! h264parse"
    );
    let daemon = common::start_daemon(|c| {
        c.video = camera;
        c.bitrate_kbps = 1000;
    })
    .await;
    let addr = daemon.local_addr();
    let slow = Viewer::connect(
        addr,
        ViewerOptions { port: Some(SLOW_PORT), asks_for_key_frames: true, ..Default::default() },
    )
    .await;
    wait_json(addr, "/api/sessions", Duration::from_secs(30), |j| session(j, slow.session())["tier"] == 1)
        .await;
    wait_size(&slow, (320, 180), Duration::from_secs(15)).await;
    tokio::time::sleep_until((slow.offered_at + Duration::from_secs(10)).into()).await;
    let fps = slow.measure_fps(Duration::from_secs(5)).await;
    let status = http::get(addr, "/api/status").await.json();
    println!("{fps:.1} frames/s; {}", status["pipelines"][0]);
    assert_eq!(status["pipelines"][0]["passthrough"], true, "{status:#}");
    let lower = tier(&status, 1);
    assert_eq!(
        (lower["decodes_camera"].as_bool(), lower["viewers"].as_u64()),
        (Some(true), Some(1)),
        "{status:#}"
    );
    assert!(tier(&status, 0).is_null(), "a passed-through stream has no encoder of its own: {status:#}");
    assert!(fps >= 12.0, "decoded {fps:.1} frames/s of the camera encoded again behind 400 kbit/s");
    daemon.shutdown().await;
}

/// The session `id` in an `/api/sessions` answer.
fn session<'a>(sessions: &'a Value, id: &str) -> &'a Value {
    sessions["sessions"].as_array().and_then(|all| all.iter().find(|s| s["id"] == id)).unwrap_or(&Value::Null)
}

/// The H.264 encoder of `tier` in an `/api/status` answer.
fn tier(status: &Value, tier: u64) -> &Value {
    encoder(status, "h264", tier)
}

/// The `codec` encoder of `tier` in an `/api/status` answer.
fn encoder<'a>(status: &'a Value, codec: &str, tier: u64) -> &'a Value {
    let targets = status["pipelines"][0]["targets"].as_array();
    targets
        .and_then(|all| all.iter().find(|t| t["codec"] == codec && t["tier"] == tier))
        .unwrap_or(&Value::Null)
}

/// Waits until `viewer` decodes pictures of `size`, or panics after `timeout`.
async fn wait_size(viewer: &Viewer, size: (u32, u32), timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while viewer.received.size() != size {
        let frames = viewer.received.video_frames.load(std::sync::atomic::Ordering::Relaxed);
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            viewer.received.frames_within(frames + 1, left).await,
            "pictures of {:?}, not {size:?}, after {timeout:?}",
            viewer.received.size()
        );
    }
}

/// Prints, once a second for `lasting`, what the viewer's session and link carry, the
/// lower tier and the shaped queue (`ROBOCAST_TRACE_LINK=1`, when tuning).
async fn trace_link(addr: std::net::SocketAddr, viewer: &Viewer, codec: &str, lasting: Duration) {
    let mut last = (0, 0);
    for _ in 0..lasting.as_secs() {
        let (status, sessions) =
            (http::get(addr, "/api/status").await.json(), http::get(addr, "/api/sessions").await.json());
        let (s, lower) = (session(&sessions, viewer.session()), &status["feeds"][format!("{codec}_lower")]);
        let l = &s["link"];
        let now = (l["bytes_sent"].as_u64().unwrap_or(0), lower["bytes"].as_u64().unwrap_or(0));
        let qdisc = Command::new("tc").args(["-s", "qdisc", "show", "dev", "lo"]).output();
        let qdisc = qdisc.map(|o| String::from_utf8_lossy(&o.stdout).replace('\n', " ")).unwrap_or_default();
        println!(
            "{:>5.1}s tier {} decoded {} | sent {} kbit/s, lower tier {} kbit/s at {} | target {} acked {} loss {:.2} rtt {} | {qdisc}",
            viewer.offered_at.elapsed().as_secs_f64(),
            s["tier"],
            viewer.received.video_frames.load(std::sync::atomic::Ordering::Relaxed),
            (now.0 - last.0) * 8 / 1000,
            (now.1 - last.1) * 8 / 1000,
            encoder(&status, codec, 1)["kbps"],
            l["target_bps"],
            l["acked_bps"],
            l["loss"].as_f64().unwrap_or(0.0),
            l["rtt_ms"],
        );
        last = now;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A fast and a slow viewer that both take `codec` (`h264`, or `vp8` as a browser without
/// H.264).
async fn beside_a_fast_one(codec: &'static str) {
    // 1.5 Mbit/s at 640x360 configured: the lower tier is 320x180, and a viewer whose link
    // takes less than 750 kbit/s of video moves to it while another takes more.
    let daemon = common::start_daemon(|c| {
        c.video = NOISY_CAMERA.into();
        c.bitrate_kbps = 1500;
    })
    .await;
    let addr = daemon.local_addr();
    let vp8_only = codec == "vp8";
    let on = |port| ViewerOptions {
        decode: true,
        port,
        asks_for_key_frames: true,
        vp8_only,
        ..Default::default()
    };
    let fast = Viewer::connect(addr, on(None)).await;
    fast.received.wait_frames(10, Duration::from_secs(10)).await;
    assert_eq!(fast.received.video_mime().as_deref(), Some(format!("video/{codec}").as_str()));
    let slow = Viewer::connect(addr, on(Some(SLOW_PORT))).await;
    if std::env::var_os("ROBOCAST_TRACE_LINK").is_some() {
        trace_link(addr, &slow, codec, Duration::from_secs(20)).await;
    }
    let sessions = wait_json(addr, "/api/sessions", Duration::from_secs(30), |j| {
        session(j, slow.session())["tier"] == 1
    })
    .await;
    println!("slow: {}", session(&sessions, slow.session()));
    assert_eq!(session(&sessions, fast.session())["tier"], 0, "{sessions:#}");
    wait_size(&slow, (320, 180), Duration::from_secs(15)).await;
    println!("the slow viewer decodes 320x180 {:?} after its offer", slow.offered_at.elapsed());

    // Settled: the fast viewer keeps the configured picture at its bitrate, the slow one
    // keeps a picture of its own.
    tokio::time::sleep_until((slow.offered_at + Duration::from_secs(10)).into()).await;
    let (fast_fps, slow_fps) =
        tokio::join!(fast.measure_fps(Duration::from_secs(5)), slow.measure_fps(Duration::from_secs(5)));
    let status = http::get(addr, "/api/status").await.json();
    println!(
        "fast {fast_fps:.1} fps, slow {slow_fps:.1} fps; tiers {} / {}",
        encoder(&status, codec, 0),
        encoder(&status, codec, 1)
    );
    assert_eq!((fast.received.size(), slow.received.size()), ((640, 360), (320, 180)));
    assert!(fast_fps >= 25.0, "the fast viewer decoded {fast_fps:.1} frames/s");
    assert!(slow_fps >= 12.0, "the slow viewer decoded {slow_fps:.1} frames/s behind 400 kbit/s");
    assert_eq!(
        encoder(&status, codec, 0)["kbps"],
        1500,
        "the slow viewer lowers nobody's picture: {status:#}"
    );
    assert_eq!(encoder(&status, codec, 1)["viewers"], 1, "{status:#}");
    // The slow viewer's estimate probes above its link now and then (it is eager, to find
    // a widened link): the lower tier's bitrate over two seconds, not at one instant.
    let mut lower = Vec::new();
    for _ in 0..9 {
        let status = http::get(addr, "/api/status").await.json();
        lower.push(encoder(&status, codec, 1)["kbps"].as_u64().unwrap_or(u64::MAX));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    lower.sort_unstable();
    assert!(lower[4] < 400, "the lower tier follows the slow link: {lower:?} kbit/s");

    // The fast viewer leaves. H.264: the slow one is alone, back on the top tier (whose
    // encoder now follows it), and the lower tier stops. VP8 keeps its frame rate on a thin
    // link only at half the size: the slow one stays there, and the top tier stops.
    fast.close().await;
    let (stays, stops, size) = match codec {
        "vp8" => (1, 0, (320, 180)),
        _ => (0, 1, (640, 360)),
    };
    wait_json(addr, "/api/sessions", Duration::from_secs(10), |j| {
        session(j, slow.session())["tier"] == stays
    })
    .await;
    wait_size(&slow, size, Duration::from_secs(5)).await;
    let status =
        wait_json(addr, "/api/status", Duration::from_secs(5), |s| encoder(s, codec, stops)["viewers"] == 0)
            .await;
    assert!(
        encoder(&status, codec, stays)["kbps"].as_u64().is_some_and(|k| k < 600),
        "the slow viewer's tier follows its link: {status:#}"
    );
    let unused = if stops == 0 { codec.to_owned() } else { format!("{codec}_lower") };
    let frames = status["feeds"][&unused]["frames"].clone();
    slow.received
        .wait_frames(
            slow.received.video_frames.load(std::sync::atomic::Ordering::Relaxed) + 30,
            Duration::from_secs(5),
        )
        .await;
    let status = http::get(addr, "/api/status").await.json();
    assert_eq!(status["feeds"][&unused]["frames"], frames, "the unused tier ({unused}) is not encoded");
    assert_eq!(session(&http::get(addr, "/api/sessions").await.json(), slow.session())["tier"], stays);
    daemon.shutdown().await;
}

async fn behind_a_thin_link() {
    // 1.5 Mbit/s configured, 0.6 Mbit/s on the link: without congestion control this
    // viewer decodes nothing (every frame loses packets, every key frame more).
    let daemon = common::start_daemon(|c| {
        c.video = NOISY_CAMERA.into();
        c.bitrate_kbps = 1500;
    })
    .await;
    let addr = daemon.local_addr();
    let viewer = Viewer::connect(addr, ViewerOptions { decode: true, ..Default::default() }).await;
    let started = viewer.received.frames_within(10, Duration::from_secs(20)).await;
    assert!(started, "no picture: {}", http::get(addr, "/api/sessions").await.json());
    let sessions = wait_json(addr, "/api/sessions", Duration::from_secs(20), |j| {
        j["sessions"][0]["link"]["target_bps"].as_u64().is_some_and(|b| b < 700_000)
    })
    .await;
    println!("link: {}", sessions["sessions"][0]["link"]);
    let status = http::get(addr, "/api/status").await.json();
    let kbps = status["pipelines"][0]["targets"][0]["kbps"].as_u64().unwrap_or(u64::MAX);
    assert!(kbps < 600, "the encoder follows the link down: {status}");
    // Settled (the first seconds lose what the link could not carry at 1.5 Mbit/s), the
    // picture keeps coming: 5 s measured from 10 s after the offer.
    tokio::time::sleep_until((viewer.offered_at + Duration::from_secs(10)).into()).await;
    let fps = viewer.measure_fps(Duration::from_secs(5)).await;
    println!("decoded {fps:.1} frames/s behind 600 kbit/s");
    let status = http::get(addr, "/api/status").await.json();
    println!("status: {} {}", status["feeds"], status["pipelines"][0]);
    // Without congestion control it decodes nothing. (webrtc-rs, unlike a browser, asks
    // for no key frame when it loses a frame, so it shows fewer than Chromium does.)
    assert!(fps >= 12.0, "decoded {fps:.1} frames/s behind a 600 kbit/s link, want >= 12");
    let link = &http::get(addr, "/api/sessions").await.json()["sessions"][0]["link"];
    assert!(link["target_bps"].as_u64().is_some_and(|b| (200_000..700_000).contains(&b)), "{link}");
    daemon.shutdown().await;
}
