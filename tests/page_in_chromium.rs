//! The robot page, opened in a real headless Chromium, plays the daemon's live video and
//! audio: page, `robocast.js`, signalling, encoder and WebRTC working together.
//!
//! Needs the Debian package `chromium` (or `ROBOCAST_CHROMIUM`). Without it these tests
//! fail rather than skip: CI installs it, and a skipped browser test proves nothing.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::browser::{Page, Playback};
use common::page::OnPage;
use common::screen;
use serde_json::Value;

const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long frames and packets are counted.
const WINDOW: Duration = Duration::from_secs(5);
/// How long the screen is watched.
const SCREEN_WINDOW: Duration = Duration::from_secs(2);

const PLAYING: &str = "window.robocast && window.robocast.state === 'connected' \
    && document.getElementById('video')?.videoWidth > 0";

/// The page's state, its inbound-rtp stats and its audio tracks, stamped with the page clock.
const SNAPSHOT: &str = r"(async () => {
    const rc = window.robocast;
    const snapshot = {
        at: performance.now(),
        state: rc ? rc.state : 'window.robocast is not set',
        lastError: rc && rc.lastError ? String(rc.lastError) : null,
        video: null,
        audio: null,
        audioTracks: [],
    };
    if (rc && rc.pc) {
        (await rc.pc.getStats()).forEach(report => {
            if (report.type === 'inbound-rtp' && (report.kind === 'video' || report.kind === 'audio')) {
                snapshot[report.kind] = report;
            }
        });
        snapshot.audioTracks = rc.pc.getReceivers()
            .map(receiver => receiver.track)
            .filter(track => track && track.kind === 'audio')
            .map(track => track.readyState);
    }
    return snapshot;
})()";

fn test_sources(config: &mut robocast::Config) {
    config.listen = ([127, 0, 0, 1], 0).into();
    config.video = "test".into();
    config.audio = "test".into();
    config.width = 1280;
    config.height = 720;
    config.fps = 30;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_plays_the_live_video_and_audio() -> Result<()> {
    let on = OnPage::open(test_sources).await?;
    let page = &on.page;

    if let Err(error) = page.wait_for(PLAYING, START_TIMEOUT).await {
        let now = page.eval(SNAPSHOT).await.unwrap_or_else(|e| e.to_string().into());
        panic!("the page did not start playing: {error:#}\n{}", evidence(page, &[("now", &now)]).await);
    }

    let Playback { before, after, seconds, fps, size, audio_packets } =
        Playback::measure(page, SNAPSHOT, WINDOW).await?;
    let audio_live =
        after["audioTracks"].as_array().is_some_and(|states| states.iter().any(|state| state == "live"));

    let checks = [
        (fps >= 25.0, format!("decoded {fps:.1} video frames/s, want at least 25 of the 30 sent")),
        (size == [Some(1280), Some(720)], format!("frames are {size:?}, want 1280x720")),
        (audio_live, format!("no live audio track, got {}", after["audioTracks"])),
        (
            audio_packets >= 200.0,
            format!("{audio_packets} audio packets in {seconds:.1} s, want at least 200 (Opus sends 50/s)"),
        ),
    ];
    let problems: Vec<String> =
        checks.into_iter().filter(|(ok, _)| !ok).map(|(_, problem)| problem).collect();
    if !problems.is_empty() {
        panic!(
            "{}\n{}",
            problems.join("\n"),
            evidence(page, &[("before", &before), ("after", &after)]).await
        );
    }

    // The stats say what the robot makes of this link (its estimate: the configured video
    // and audio on an open link) and which picture it sends (the top tier).
    let robot_side = "document.getElementById('stat-estimate').textContent === 'link 1064 kbps' \
         && document.getElementById('stat-tier').textContent === 'top tier'";
    if let Err(error) = page.wait_for(robot_side, START_TIMEOUT).await {
        let shown = page
            .eval("document.getElementById('stat-estimate').textContent + ' / ' + document.getElementById('stat-tier').textContent")
            .await;
        panic!("the stats do not show the robot's estimate and tier: {error:#}; they show {shown:?}");
    }

    on.close().await
}

/// Not only decoded: the picture is in the page's composited output (Chromium's
/// screencast), new pictures keep coming in capture order, and they are live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_shows_the_live_picture_on_screen() -> Result<()> {
    let on = OnPage::open(test_sources).await?;
    let page = &on.page;
    page.wait_for(PLAYING, START_TIMEOUT).await?;

    let watch = screen::watch(page).await?;
    tokio::time::sleep(SCREEN_WINDOW).await;
    let seen = watch.stop().await?;

    let stamps: Vec<u32> = seen.shown.iter().map(|s| s.stamp).collect();
    let want = (SCREEN_WINDOW.as_secs_f64() * 30.0 / 2.0) as usize;
    assert!(
        stamps.len() >= want,
        "{} pictures seen on screen in {SCREEN_WINDOW:?} ({} frames unreadable), want at least {want}",
        stamps.len(),
        seen.unreadable
    );
    // Stamps are Unix ms modulo 2^32: compare them as a wrapping difference.
    let backwards = stamps.windows(2).filter(|w| w[1].wrapping_sub(w[0]) as i32 <= 0).count();
    assert_eq!(backwards, 0, "pictures shown out of capture order: {stamps:?}");
    let oldest = seen.shown.iter().map(|s| s.age).fold(f64::NAN, f64::max);
    assert!(oldest < 1000.0, "a picture was {oldest:.0} ms old when shown: the screen is not live");

    on.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robocast_js_exports_the_client() -> Result<()> {
    let on = OnPage::open(test_sources).await?;
    let page = &on.page;

    let export = page.eval("import('/robocast.js').then(module => typeof module.RobocastClient)").await?;
    assert_eq!(export, "function", "/robocast.js should export the class RobocastClient");

    on.close().await
}

/// What the page said, for a failure message, with a screenshot saved next to the build.
async fn evidence(page: &Page, snapshots: &[(&str, &Value)]) -> String {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("page_in_chromium.png");
    let mut text = match page.screenshot(&path).await {
        Ok(()) => format!("screenshot: {}", path.display()),
        Err(error) => format!("no screenshot: {error:#}"),
    };
    if let Some((_, last)) = snapshots.last() {
        text += &format!("\npage state: {}, lastError: {}", last["state"], last["lastError"]);
    }
    for (label, snapshot) in snapshots {
        text += &format!("\n{label}: {snapshot:#}");
    }
    text
}
