//! Talk-back from the robot page (issue 11), in a real headless Chromium whose fake
//! microphone beeps and whose fake camera shows a moving pattern, with robocast's speaker
//! and display routed to test sinks (`tests/common/talkback.rs`): holding Talk is heard on
//! the robot's speaker and makes the page's session the talker; letting go is silence
//! within a second and frees the seat; a short tap keeps talking until the next; Show my
//! camera puts the fake camera's picture, at its own size, on the robot's display and in
//! the page's self-view. Through all of it the robot's own picture keeps playing on the
//! page on the same connection: no second offer, no renegotiation, no gap in its frames.
//! A second page that asks to talk meanwhile is refused and told who talks; device
//! failures are said in plain words.
//!
//! Nothing here sleeps to let something happen, except to hold a button as a user would:
//! the test waits for the sinks, `/api/status` and the page's state, each with a deadline.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use common::browser::Page;
use common::clients::{RECORDER, describe_fetch, fetches};
use common::http;
use common::input::{click, key, mouse_button};
use common::page::OnPage;
use common::talkback::{DisplaySink, SpeakerSink};
use serde_json::{Value, json};

const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long sound or a picture may take to reach the robot's speaker or display, or the
/// page to show a change.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longer than the page's 300 ms tap: a hold.
const HOLD: Duration = Duration::from_millis(600);

/// Connected, playing the robot's picture, and robocast's hello has said who talks.
const READY: &str = "window.robocast?.state === 'connected' \
    && document.getElementById('video').videoWidth > 0 \
    && ['nobody', 'other', 'you'].includes(document.getElementById('talker').dataset.seat)";

/// Counts the robot's pictures the page presents and the longest wait between two, and
/// keeps the connection it started on and its offer, to compare with later.
const WATCH_ROBOT_VIDEO: &str = r"(() => {
    const video = document.getElementById('video');
    const watch = window.robotVideo = { frames: 0, last: 0, longestGapMs: 0,
        pc: window.robocast.pc, offer: window.robocast.pc.localDescription.sdp };
    const tick = (now) => {
        if (watch.last) watch.longestGapMs = Math.max(watch.longestGapMs, now - watch.last);
        watch.last = now;
        watch.frames++;
        video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
    return true;
})()";

/// What the page shows of talking: the button's state and label, who talks, the meter.
const TALK_VIEW: &str = r"(() => {
    const talk = document.getElementById('talk'), camera = document.getElementById('camera');
    const self = document.getElementById('self-view');
    return { talk: talk.dataset.send, talkLabel: talk.innerText.trim(), camera: camera.dataset.send,
             talker: document.getElementById('talker-text').textContent,
             notice: document.getElementById('notice').hidden ? '' : document.getElementById('notice').textContent,
             level: document.getElementById('talk-level').style.transform,
             selfView: { hidden: self.hidden, width: self.videoWidth, paused: self.paused },
             talking: window.robocast.talking, camera_on: window.robocast.showingCamera };
})()";

/// robocast with its speaker and display routed to the sinks, and its page open with the
/// request recorder in place; the page connected and playing.
async fn talking_robot() -> Result<(OnPage, SpeakerSink, DisplaySink)> {
    let speaker = SpeakerSink::bind().await;
    let display = DisplaySink::bind().await;
    let (speaker_spec, display_spec) = (speaker.spec(), display.spec());
    let record = async |page: &Page| {
        // Without the Page domain enabled, scripts for new documents are not injected.
        page.call("Page.enable", json!({})).await?;
        page.call("Page.addScriptToEvaluateOnNewDocument", json!({ "source": RECORDER })).await?;
        Ok(())
    };
    let on = OnPage::open_prepared(
        move |c| {
            c.speaker = speaker_spec;
            c.display = display_spec;
        },
        record,
    )
    .await?;
    on.page.wait_for(READY, START_TIMEOUT).await.context("the page did not connect and play")?;
    Ok((on, speaker, display))
}

async fn status(addr: SocketAddr) -> Value {
    http::get(addr, "/api/status").await.json()
}

/// Polls `/api/status` until `want` holds for its `talkback`, which it returns.
async fn talkback_until(addr: SocketAddr, what: &str, want: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = Instant::now() + ARRIVAL_TIMEOUT;
    loop {
        let talkback = status(addr).await["talkback"].take();
        if want(&talkback) {
            return Ok(talkback);
        }
        if Instant::now() >= deadline {
            bail!("/api/status never said {what} within {ARRIVAL_TIMEOUT:?}; talkback: {talkback:#}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The robot's picture still plays on the page: more frames within a second.
async fn robot_video_plays(page: &Page, when: &str) -> Result<()> {
    let before = page.eval("window.robotVideo.frames").await?.as_u64().unwrap_or(0);
    page.wait_for(&format!("window.robotVideo.frames >= {before} + 10"), Duration::from_secs(2))
        .await
        .with_context(|| format!("the robot's picture stopped on the page {when}"))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_talks_and_shows_its_camera_on_the_robot() -> Result<()> {
    let (on, mut speaker, mut display) = talking_robot().await?;
    let (page, addr) = (&on.page, on.daemon.local_addr());
    let session = page.eval("window.robocast.session").await?;
    page.eval(WATCH_ROBOT_VIDEO).await?;
    let view = page.eval(TALK_VIEW).await?;
    assert_eq!(view["talker"], "Nobody talks", "{view:#}");
    assert_eq!(view["talk"], "off", "{view:#}");

    // Held down: the robot's speaker plays the fake microphone's beeps; the page's session
    // talks, and the page says so, with the level of what it sends.
    speaker.flush();
    mouse_button(page, "talk", true).await?;
    let press = Instant::now();
    let sound = speaker.wait_sound(ARRIVAL_TIMEOUT).await.context("holding Talk: no sound on the speaker")?;
    eprintln!("held Talk: the speaker played rms {:.3} at {:.0} Hz", sound.rms, sound.hz);
    let talkback = talkback_until(addr, "the page talks", |t| t["talker"] == session).await?;
    let listed = http::get(addr, "/api/sessions").await.json();
    assert_eq!(listed["talker"], session, "{listed:#}");
    let entry = listed["sessions"].as_array().and_then(|all| all.iter().find(|s| s["id"] == session));
    assert_eq!(entry.map(|s| &s["talking"]), Some(&json!(true)), "{listed:#}");
    let view = page
        .wait_for(
            "document.getElementById('talk').dataset.send === 'on' \
             && document.getElementById('talker-text').textContent === 'You talk' \
             && /scaleX\\(0\\.[0-9]*[1-9]|scaleX\\(1/.test(document.getElementById('talk-level').style.transform)",
            ARRIVAL_TIMEOUT,
        )
        .await
        .with_context(|| format!("the page does not show that it talks; talkback: {talkback:#}"))?;
    assert_eq!(page.eval(TALK_VIEW).await?["talkLabel"], "Talking", "{view:#}");
    robot_video_plays(page, "while talking").await?;

    // Let go (held well over a tap): silence within a second, and the seat is free.
    tokio::time::sleep(HOLD.saturating_sub(press.elapsed())).await;
    mouse_button(page, "talk", false).await?;
    let quiet = speaker.wait_silence(Duration::from_secs(3)).await.context("letting go of Talk")?;
    assert!(quiet <= Duration::from_secs(1), "silence came {quiet:?} after letting go of Talk");
    talkback_until(addr, "the seat is free", |t| t["talker"].is_null()).await?;
    page.wait_for(
        "document.getElementById('talk').dataset.send === 'off' \
         && document.getElementById('talker-text').textContent === 'Nobody talks'",
        ARRIVAL_TIMEOUT,
    )
    .await
    .context("the page still shows talking after letting go")?;

    // A tap: talking stays on after the button is let go.
    click(page, "talk").await?;
    speaker.wait_sound(ARRIVAL_TIMEOUT).await.context("a tap on Talk: no sound on the speaker")?;
    tokio::time::sleep(HOLD).await;
    let view = page.eval(TALK_VIEW).await?;
    assert_eq!((&view["talk"], &view["talking"]), (&json!("on"), &json!(true)), "after a tap: {view:#}");

    // The camera: its moving picture on the robot's display, at the camera's own size, and
    // in the page's self-view.
    display.flush();
    click(page, "camera").await?;
    display.next_frame(ARRIVAL_TIMEOUT).await.context("Show my camera: no picture on the display")?;
    let sent = page
        .wait_for(
            "(() => { const t = window.robocast.localStream?.getVideoTracks()[0]; \
              const s = t && t.getSettings(); return s && s.width ? `${s.width}x${s.height}` : null; })()",
            ARRIVAL_TIMEOUT,
        )
        .await?;
    let talkback = talkback_until(addr, "the display shows the camera's size", |t| {
        t["display"]["size"] == sent && t["display"]["frames_shown"].as_u64().unwrap_or(0) > 0
    })
    .await?;
    eprintln!("the display shows {sent}: {:#}", talkback["display"]);
    display.flush();
    let first = display.next_frame(ARRIVAL_TIMEOUT).await?;
    display
        .wait_frame(ARRIVAL_TIMEOUT, |later| later.pixels != first.pixels)
        .await
        .context("the robot's display shows a still picture of a moving camera")?;
    page.wait_for(
        "(() => { const v = document.getElementById('self-view'); \
          return !v.hidden && !v.paused && v.videoWidth > 0 && v.getClientRects().length > 0; })()",
        ARRIVAL_TIMEOUT,
    )
    .await
    .context("the self-view does not play")?;
    robot_video_plays(page, "while talking and showing the camera").await?;

    // Talk off with the camera on: silence, and the seat stays this session's.
    click(page, "talk").await?;
    let quiet = speaker.wait_silence(Duration::from_secs(3)).await.context("tapping Talk off")?;
    assert!(quiet <= Duration::from_secs(1), "silence came {quiet:?} after Talk was tapped off");
    assert_eq!(status(addr).await["talkback"]["talker"], session, "the camera is still shown");

    // The camera off: nothing is sent, the seat is free, the self-view goes.
    click(page, "camera").await?;
    talkback_until(addr, "the seat is free", |t| t["talker"].is_null()).await?;
    page.wait_for(
        "document.getElementById('self-view').hidden && document.getElementById('camera').dataset.send === 'off' \
         && document.getElementById('talker-text').textContent === 'Nobody talks'",
        ARRIVAL_TIMEOUT,
    )
    .await
    .context("the page still shows the camera")?;

    // No blink: one offer, the same connection and description all along, the robot's
    // picture never interrupted.
    robot_video_plays(page, "after talking").await?;
    let same = page
        .eval(
            "({ pc: window.robocast.pc === window.robotVideo.pc, \
                offer: window.robocast.pc.localDescription.sdp === window.robotVideo.offer, \
                state: window.robocast.pc.connectionState, longestGapMs: window.robotVideo.longestGapMs })",
        )
        .await?;
    let offers: Vec<String> = fetches(page)
        .await?
        .iter()
        .filter(|f| f["method"] == "POST" && f["url"].as_str().is_some_and(|u| u.ends_with("/api/connect")))
        .map(describe_fetch)
        .collect();
    assert_eq!(offers.len(), 1, "the page made more than one offer:\n{}", offers.join("\n"));
    assert_eq!(
        (&same["pc"], &same["offer"], &same["state"]),
        (&json!(true), &json!(true), &json!("connected")),
        "{same}"
    );
    let gap = same["longestGapMs"].as_f64().unwrap_or(f64::NAN);
    assert!(gap < 500.0, "the robot's picture stopped for {gap:.0} ms on the page: it blinked");
    on.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_page_is_told_who_talks() -> Result<()> {
    let (on, mut speaker, _display) = talking_robot().await?;
    let (first, addr) = (&on.page, on.daemon.local_addr());
    let session = first.eval("window.robocast.session").await?;
    let prefix = session.as_str().context("the session id is not a string")?[..6].to_owned();
    click(first, "talk").await?; // a tap: talking until the next
    speaker.wait_sound(ARRIVAL_TIMEOUT).await.context("the first page's Talk: no sound")?;
    talkback_until(addr, "the first page talks", |t| t["talker"] == session).await?;

    // A second page sees who talks; holding t there is refused, and says by whom.
    let second = on.browser.new_page(&format!("http://{addr}/")).await?;
    second.wait_for(READY, START_TIMEOUT).await.context("the second page did not connect")?;
    let talker = second.eval("document.getElementById('talker-text').textContent").await?;
    assert_eq!(talker, format!("{prefix} talks").as_str());
    key(&second, "t", 84, true).await?;
    let refused = second
        .wait_for(
            &format!(
                "document.getElementById('talk').dataset.send === 'refused' \
                 && !document.getElementById('notice').hidden \
                 && document.getElementById('notice').textContent.includes('{prefix}')"
            ),
            ARRIVAL_TIMEOUT,
        )
        .await;
    key(&second, "t", 84, false).await?;
    if let Err(error) = refused {
        bail!("the second page was not told who talks: {error:#}\n{:#}", second.eval(TALK_VIEW).await?);
    }
    assert_eq!(second.eval("window.robocast.talking").await?, false);
    assert_eq!(status(addr).await["talkback"]["talker"], session, "the seat moved");
    second
        .wait_for("document.getElementById('talk').innerText.trim() === 'Refused'", ARRIVAL_TIMEOUT)
        .await?;

    // The first stops: the second sees nobody talks, and then can.
    first.call("Page.bringToFront", json!({})).await?;
    click(first, "talk").await?;
    speaker.wait_silence(Duration::from_secs(3)).await?;
    second
        .wait_for("document.getElementById('talker-text').textContent === 'Nobody talks'", ARRIVAL_TIMEOUT)
        .await
        .context("the second page did not see the seat freed")?;
    second.call("Page.bringToFront", json!({})).await?;
    click(&second, "talk").await?;
    speaker.wait_sound(ARRIVAL_TIMEOUT).await.context("the second page's Talk: no sound")?;
    let other = second.eval("window.robocast.session").await?;
    talkback_until(addr, "the second page talks", |t| t["talker"] == other).await?;
    let other_prefix = other.as_str().context("the session id is not a string")?[..6].to_owned();
    first
        .wait_for(
            &format!("document.getElementById('talker-text').textContent === '{other_prefix} talks'"),
            ARRIVAL_TIMEOUT,
        )
        .await
        .context("the first page did not see who talks now")?;
    on.close().await
}

/// The browser's refusals, said in plain words on the page and the seat given back. The
/// fake devices here never fail, so the page's getUserMedia is made to fail as a browser's
/// does (a DOMException of the same name), and its secure context is taken away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_failures_are_said_in_plain_words() -> Result<()> {
    let (on, _speaker, _display) = talking_robot().await?;
    let (page, addr) = (&on.page, on.daemon.local_addr());
    let cases = [
        ("talk", "NotAllowedError", "permission to use the microphone was denied"),
        ("talk", "NotFoundError", "no microphone was found"),
        ("camera", "NotReadableError", "the camera is in use by another program"),
        ("camera", "insecure", "the browser allows the camera only on https pages or localhost"),
    ];
    for (button, failure, says) in cases {
        let fail = if failure == "insecure" {
            "void Object.defineProperty(window, 'isSecureContext', { value: false, configurable: true })"
                .to_owned()
        } else {
            format!(
                "void (navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('fake', '{failure}')))"
            )
        };
        page.eval(&fail).await?;
        click(page, button).await?;
        let shown = page
            .wait_for(
                &format!(
                    "document.getElementById('{button}').dataset.send === 'error' \
                     && document.getElementById('notice').textContent.toLowerCase().includes('{says}')"
                ),
                ARRIVAL_TIMEOUT,
            )
            .await;
        if let Err(error) = shown {
            bail!("{failure} on {button}: {error:#}\n{:#}", page.eval(TALK_VIEW).await?);
        }
        let talker = status(addr).await["talkback"]["talker"].take();
        ensure!(talker.is_null(), "{failure}: the seat was kept by {talker}");
    }
    on.close().await
}
