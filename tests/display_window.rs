//! `display = "auto"` on a desktop: robocast picks a window (`autovideosink`, here
//! `ximagesink` under Xvfb, package `xvfb`), shows the idle picture in it between talkers
//! and the talker's camera while one talks. What is checked is the X screen itself,
//! grabbed with GStreamer's `ximagesrc`: the talker's white picture is really on it.
//! robocast runs as its own process with `DISPLAY` pointing at the private X server.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::http;
use common::talkback::{Talker, TalkerOptions, Via};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private X server (black root window) on a free display number.
fn start_x() -> (Killed, String) {
    let display = format!(":{}", 200 + std::process::id() % 500);
    let child = Command::new("Xvfb")
        .args([display.as_str(), "-screen", "0", "1280x720x24", "-br", "-nolisten", "tcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb runs (make setup-test installs xvfb)");
    let socket = format!("/tmp/.X11-unix/X{}", &display[1..]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(&socket).exists() {
        assert!(Instant::now() < deadline, "Xvfb did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Killed(child), display)
}

/// The share of the screen's pixels that are white (luma above 200).
fn white_share(display: &str) -> f64 {
    let description = format!(
        "ximagesrc display-name={display} use-damage=false num-buffers=1 ! videoconvert ! \
         video/x-raw,format=GRAY8 ! appsink name=out sync=false"
    );
    let pipeline =
        gst::parse::launch(&description).expect("grab").downcast::<gst::Pipeline>().expect("pipeline");
    let out = pipeline.by_name("out").expect("out").downcast::<gst_app::AppSink>().expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("grab plays");
    let sample = out.try_pull_sample(gst::ClockTime::from_seconds(5)).expect("a screen grab");
    let _ = pipeline.set_state(gst::State::Null);
    let buffer = sample.buffer().expect("buffer");
    let map = buffer.map_readable().expect("readable");
    map.iter().filter(|&&p| p > 200).count() as f64 / map.len().max(1) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_display_is_a_window_on_a_desktop() {
    gst::init().expect("gstreamer");
    let (_x, display) = start_x();
    let mut child = Command::new(env!("CARGO_BIN_EXE_robocast"))
        .args(["--video", "none", "--audio", "none", "--speaker", "none", "--display", "auto"])
        .args(["--listen", "127.0.0.1:0", "--control-socket", "off"])
        .env("DISPLAY", &display)
        .env("ROBOCAST_OPERATOR_TOKEN", common::OPERATOR_TOKEN)
        .env("ROBOCAST_LOG", "info")
        .env_remove("ROBOCAST_CONFIG")
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("robocast starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let addr: std::net::SocketAddr = loop {
        let line = lines.next().and_then(Result::ok).unwrap_or_else(|| panic!("robocast ended: {seen:#?}"));
        if let Some(rest) = line.split("open http://").nth(1) {
            break rest.trim_end_matches('/').split('/').next().expect("address").parse().expect("address");
        }
        seen.push(line);
    };
    let _robocast = Killed(child);
    std::thread::spawn(move || for _ in lines {});
    assert!(
        seen.iter().any(|l| l.contains("display: a window on the desktop")),
        "robocast says which display it picked: {seen:#?}"
    );
    let status = http::get(addr, "/api/status").await.json();
    let sink = status["talkback"]["display"]["sink"].as_str().unwrap_or_default().to_owned();
    assert!(sink.starts_with("autovideosink"), "{status:#}");

    // Between talkers: the idle picture, dark (only its text is light).
    let deadline = Instant::now() + Duration::from_secs(10);
    while http::get(addr, "/api/status").await.json()["talkback"]["display"]["idle_frames_shown"].as_u64()
        < Some(2)
    {
        assert!(Instant::now() < deadline, "no idle picture shown");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let idle = white_share(&display);
    assert!(idle < 0.02, "the idle picture is calm: {:.1} % of the screen is white", idle * 100.0);

    // A talker's white 320x240 picture: about 8 % of a 1280x720 screen.
    let talker =
        Talker::connect(addr, TalkerOptions { via: Via::Connect, tone_hz: None, picture: Some((320, 240)) })
            .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut shown = 0.0;
    while shown < 0.06 {
        assert!(
            Instant::now() < deadline,
            "the talker's picture is not on the screen ({:.1} % white): {:#}",
            shown * 100.0,
            http::get(addr, "/api/status").await.json()["talkback"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        shown = white_share(&display);
    }
    talker.close().await;
    // And the idle picture again once the talker has gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while white_share(&display) > 0.02 {
        assert!(Instant::now() < deadline, "the talker's last picture stays frozen on the screen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
