//! Talk-back with real parts: a webrtc-rs talker sends a tone (GStreamer's audiotestsrc
//! through opusenc) and a white picture (x264enc); robocast plays them into GStreamer
//! sinks that stand in for its speaker and display, read back here over UDP.

mod common;

use std::time::Duration;

use common::http;
use common::talkback::{DisplaySink, Listener, Offered, SpeakerSink, Talker, TalkerOptions, Via};
use common::{Viewer, ViewerOptions};

const SECOND: Duration = Duration::from_secs(1);

async fn status(addr: std::net::SocketAddr) -> serde_json::Value {
    http::get(addr, "/api/status").await.json()
}

/// Waits until `/api/status` satisfies `want`.
async fn wait_status(
    addr: std::net::SocketAddr,
    within: Duration,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let s = status(addr).await;
        if want(&s) {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "status never matched: {s:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn tone(hz: f64) -> TalkerOptions {
    TalkerOptions { via: Via::Connect, tone_hz: Some(hz), picture: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talker_is_heard_and_seen_and_stops_with_its_session() {
    let mut speaker = SpeakerSink::bind().await;
    let mut display = DisplaySink::bind().await;
    let (speaker_spec, display_spec) = (speaker.spec(), display.spec());
    let daemon = common::start_daemon(|c| {
        c.speaker = speaker_spec;
        c.display = display_spec;
        c.echo_cancel = false;
    })
    .await;
    let addr = daemon.local_addr();
    // Nobody talks: the idle picture (dark), and silence.
    let idle = display.next_frame(5 * SECOND).await.expect("the idle picture");
    assert!(idle.mean() < 80.0, "idle picture is calm and dark: mean {}", idle.mean());
    let watcher = Viewer::connect(addr, ViewerOptions::default()).await;
    watcher.received.wait_frames(10, 10 * SECOND).await;

    let talker = Talker::connect(
        addr,
        TalkerOptions { via: Via::Connect, tone_hz: Some(440.0), picture: Some((320, 240)) },
    )
    .await;
    let sound = speaker.wait_steady_sound(10 * SECOND).await.expect("the tone is played");
    assert!((sound.hz - 440.0).abs() < 440.0 * 0.02, "heard {sound:?}");
    let white =
        display.wait_frame(10 * SECOND, |f| f.mean() > 200.0).await.expect("the white picture is shown");
    assert_eq!((white.width, white.height), (320, 180));
    let s = wait_status(addr, 5 * SECOND, |s| s["talkback"]["display"]["size"] == "320x240").await;
    assert_eq!(s["talkback"]["talker"], talker.session(), "{s:#}");
    assert_eq!(s["talkback"]["display"]["codec"], "h264");
    assert!(s["talkback"]["speaker"]["samples_played"].as_u64().unwrap_or(0) > 0, "{s:#}");
    let sessions = http::get(addr, "/api/sessions").await.json();
    assert_eq!(sessions["talker"], talker.session());

    // The robot's own stream to the other viewer keeps its rate while the talker plays.
    let fps = watcher.measure_fps(3 * SECOND).await;
    // Steady talk plays almost untouched: the buffer settles on its target with 0.5 %
    // nudges (inaudible), well under 1 % of the samples.
    let played = status(addr).await["talkback"]["speaker"].clone();
    let count = |key: &str| played[key].as_u64().unwrap_or(u64::MAX);
    let touched = count("stretched_samples").saturating_add(count("dropped_samples"));
    assert!(touched < count("samples_played") / 100, "{played:#}");
    assert!(fps >= 25.0, "the robot's stream fell to {fps:.1} fps while someone talked");

    // The talker closes its tab: silence within 200 ms, the idle picture back, the seat free.
    speaker.flush();
    talker.close().await;
    let silent_after = speaker.wait_silence(2 * SECOND).await.expect("silence");
    assert!(
        silent_after <= Duration::from_millis(200),
        "the speaker went silent only after {silent_after:?}"
    );
    display.wait_frame(3 * SECOND, |f| f.mean() < 80.0).await.expect("the idle picture comes back");
    wait_status(addr, 5 * SECOND, |s| s["talkback"]["talker"].is_null()).await;
    watcher.close().await;
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_talker_at_a_time() {
    let mut speaker = SpeakerSink::bind().await;
    let spec = speaker.spec();
    let daemon = common::start_daemon(|c| {
        c.speaker = spec;
        c.video = "none".into();
        c.echo_cancel = false;
    })
    .await;
    let addr = daemon.local_addr();
    let first = Talker::connect(addr, tone(440.0)).await;
    let heard = speaker.wait_steady_sound(10 * SECOND).await.expect("the first talker");
    assert!((heard.hz - 440.0).abs() < 440.0 * 0.02, "{heard:?}");
    wait_status(addr, 5 * SECOND, |s| s["talkback"]["talker"] == first.session()).await;

    // A second session sends too: it is not played, and asking for the seat is a 409
    // that names who talks; a WHIP client is refused before its session is built.
    let second = Talker::connect(addr, tone(880.0)).await;
    let refused =
        http::post(addr, &format!("/api/sessions/{}/talker", second.session()), "application/json", b"")
            .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.json()["talker"], first.session());
    assert!(refused.json()["error"].as_str().unwrap_or("").contains("talks"), "{}", refused.body);
    match Talker::offer(addr, TalkerOptions { via: Via::Whip, ..tone(660.0) }).await {
        Offered::Refused(r) => {
            assert_eq!(r.status, 409, "{}", r.body);
            assert_eq!(r.json()["talker"], first.session(), "{}", r.body);
            assert!(r.json()["hint"].as_str().unwrap_or("").contains("one talker"), "{}", r.body);
        }
        Offered::Talker(_) => panic!("a second talker over WHIP was accepted"),
    }
    speaker.flush();
    for _ in 0..5 {
        let sound = speaker.wait_steady_sound(5 * SECOND).await.expect("still the first");
        assert!((sound.hz - 440.0).abs() < 440.0 * 0.02, "the second talker was played: {sound:?}");
    }
    // The first gives the seat up while it still sends: the second (sending too) is
    // heard, and the first's media does not take the seat back.
    let released =
        http::request(addr, "DELETE", &format!("/api/sessions/{}/talker", first.session()), None, b"").await;
    assert_eq!(released.status, 200, "{}", released.body);
    wait_status(addr, 5 * SECOND, |s| s["talkback"]["talker"] == second.session()).await;
    speaker.flush();
    let sound = speaker.wait_steady_sound(5 * SECOND).await.expect("the second talker");
    assert!((sound.hz - 880.0).abs() < 880.0 * 0.02, "{sound:?}");
    // When the second leaves, the first (whose media never paused) is not taken back...
    second.close().await;
    wait_status(addr, 5 * SECOND, |s| s["talkback"]["talker"].is_null()).await;
    tokio::time::sleep(SECOND).await; // a second of the first's packets, each refused
    assert!(status(addr).await["talkback"]["talker"].is_null(), "the seat went back to who gave it up");
    // ...until it asks again.
    speaker.flush();
    let asked =
        http::post(addr, &format!("/api/sessions/{}/talker", first.session()), "application/json", b"").await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let sound = speaker.wait_steady_sound(5 * SECOND).await.expect("the first talker again");
    assert!((sound.hz - 440.0).abs() < 440.0 * 0.02, "{sound:?}");
    first.close().await;
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_pushes_to_the_speaker_and_display() {
    let mut speaker = SpeakerSink::bind().await;
    let mut display = DisplaySink::bind().await;
    let (speaker_spec, display_spec) = (speaker.spec(), display.spec());
    let daemon = common::start_daemon(|c| {
        c.speaker = speaker_spec;
        c.display = display_spec;
        c.echo_cancel = false;
    })
    .await;
    let addr = daemon.local_addr();
    let options = http::request(addr, "OPTIONS", "/whip", None, b"").await;
    assert!(matches!(options.status, 200 | 204), "{} {}", options.status, options.body);
    assert_eq!(options.header("accept-post"), Some("application/sdp"));
    let wrong = http::post(addr, "/whip", "application/json", b"{}").await;
    assert_eq!(wrong.status, 415, "{}", wrong.body);
    let garbage = http::post(addr, "/whip", "application/sdp", b"hello").await;
    assert_eq!(garbage.status, 400, "{}", garbage.body);
    assert!(garbage.json()["error"].as_str().unwrap_or("").contains("not valid SDP"), "{}", garbage.body);
    // A viewer's offer (it only receives) sends nothing to play.
    let (viewer, recvonly) = common::viewer::offer(&ViewerOptions::default()).await;
    let refused = http::post(addr, "/whip", "application/sdp", recvonly.as_bytes()).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.json()["error"].as_str().unwrap_or("").contains("sends nothing"), "{}", refused.body);
    let _ = viewer.close().await;

    let whip = Talker::connect(
        addr,
        TalkerOptions { via: Via::Whip, tone_hz: Some(440.0), picture: Some((320, 240)) },
    )
    .await;
    assert!(whip.location.starts_with("/whip/"), "{}", whip.location);
    let sound = speaker.wait_steady_sound(10 * SECOND).await.expect("WHIP audio is played");
    assert!((sound.hz - 440.0).abs() < 440.0 * 0.02, "{sound:?}");
    display.wait_frame(10 * SECOND, |f| f.mean() > 200.0).await.expect("WHIP video is shown");
    let sessions = http::get(addr, "/api/sessions").await.json();
    let entry =
        sessions["sessions"].as_array().and_then(|a| a.iter().find(|s| s["id"] == whip.session()).cloned());
    let entry = entry.expect("the WHIP session is listed");
    assert_eq!(
        (entry["role"].as_str(), entry["talking"].as_bool()),
        (Some("talker"), Some(true)),
        "{entry:#}"
    );

    speaker.flush();
    let ended = http::request(addr, "DELETE", &whip.location, None, b"").await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    let silent_after = speaker.wait_silence(2 * SECOND).await.expect("silence");
    assert!(silent_after <= Duration::from_millis(200), "{silent_after:?}");
    wait_status(addr, 5 * SECOND, |s| s["talkback"]["talker"].is_null()).await;
    whip.close().await;
    daemon.shutdown().await;
}

/// The robot's microphone hears its own speaker (GStreamer's inter elements join them in
/// this process): what a viewer hears while a talker's tone plays, one second at a time,
/// until `enough` says it has heard enough (or 15 s); the last level and the status.
async fn echo_levels(
    echo_cancel: bool,
    attempt: u32,
    enough: impl Fn(f32) -> bool,
) -> (f32, serde_json::Value) {
    let channel = format!("robocast-echo-test-{echo_cancel}-{attempt}");
    let daemon = common::start_daemon(|c| {
        c.video = "none".into();
        c.audio = format!(
            "gst:interaudiosrc channel={channel} buffer-time=200000000 latency-time=20000000 period-time=10000000"
        );
        c.speaker = format!("gst:interaudiosink channel={channel}");
        c.echo_cancel = echo_cancel;
    })
    .await;
    let addr = daemon.local_addr();
    let mut listener = Listener::connect(addr).await;
    let talker = Talker::connect(addr, tone(440.0)).await;
    wait_status(addr, 5 * SECOND, |s| s["talkback"]["speaker"]["playing"] == true).await;
    let deadline = std::time::Instant::now() + 15 * SECOND;
    let mut level = listener.level(SECOND).await.expect("the viewer hears the microphone");
    // The canceller adapts within seconds; more when the machine is busy.
    while !enough(level) && std::time::Instant::now() < deadline {
        level = listener.level(SECOND).await.expect("the viewer hears the microphone");
    }
    let s = status(addr).await;
    talker.close().await;
    let _ = listener.pc.close().await;
    daemon.shutdown().await;
    (level, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_canceller_keeps_the_talker_out_of_the_microphone() {
    let (mut without, mut s) = echo_levels(false, 0, |level| level > 0.05).await;
    if without == 0.0 {
        // About one run in eight here, GStreamer's in-process echo path (interaudiosink to
        // interaudiosrc) carries nothing at all for the whole run: the test's stand-in for
        // the air between speaker and microphone, not robocast (whose tone the other tests
        // hear every time). Build it once more.
        eprintln!("the in-process echo path carried nothing; building it again");
        (without, s) = echo_levels(false, 1, |level| level > 0.05).await;
    }
    assert_eq!(s["talkback"]["echo_cancel"], "off (echo_cancel = false)");
    assert!(without > 0.05, "the test's echo path carries the tone: {without}");
    // 20 dB below the echo without the canceller, held for a second.
    let (with, s) = echo_levels(true, 0, |level| level < without / 10.0).await;
    assert_eq!(s["talkback"]["echo_cancel"], "on", "{s:#}");
    eprintln!("echo level at the viewer: {without:.4} without the canceller, {with:.4} with it");
    assert!(
        with < without / 10.0,
        "the canceller took the echo down only from {without} to {with} (less than 20 dB)"
    );
}
