//! The robot page tells the truth within about a second: no green "Connected" over a
//! black or frozen picture. A source that is down is named, with the robot's hint; a robot
//! that stops answering is a lost connection; a picture that comes back is live again.
//! Real headless Chromium (see `page_in_chromium.rs`).

mod common;

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use common::browser::Page;
use common::page::OnPage;
use serde_json::Value;

const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How soon the page must say what is wrong: "about a second", with room for one poll.
const TELL_WITHIN: Duration = Duration::from_millis(2500);

/// `--ok` in style.css: the live look, which the page must not wear without a picture.
const GREEN: &str = "rgb(63, 185, 80)";

/// What the page shows: the status line, the card over the picture, and the client's view.
const VIEW: &str = r"(() => {
    const status = document.getElementById('status');
    const overlay = document.getElementById('overlay');
    const rc = window.robocast;
    return {
        state: status.dataset.state,
        health: status.dataset.health,
        statusText: status.textContent.trim(),
        statusColor: getComputedStyle(status).color,
        overlayShown: !overlay.hidden && getComputedStyle(overlay).display !== 'none',
        overlayText: overlay.innerText,
        client: rc ? { state: rc.state, lastError: rc.lastError, health: rc.health } : null,
    };
})()";

/// Connected, the picture decoded, and the page saying so in green.
const LIVE: &str = "window.robocast?.state === 'connected' \
    && document.getElementById('video').videoWidth > 0 \
    && document.getElementById('status').dataset.health === 'ok' \
    && document.getElementById('overlay').hidden";

/// What the page shows: state, health, the status line and the text over the picture.
async fn what_it_shows(page: &Page) -> Result<Value> {
    page.eval(VIEW).await
}

/// Waits for `js`, or fails with what the page showed instead.
async fn expect(page: &Page, what: &str, js: &str, timeout: Duration) -> Result<Value> {
    match page.wait_for(js, timeout).await {
        Ok(value) => Ok(value),
        Err(error) => {
            let view = page.eval(VIEW).await.unwrap_or_else(|e| e.to_string().into());
            Err(error.context(format!("{what}; the page shows {view:#}")))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_camera_is_named_on_the_page_with_what_to_do() -> Result<()> {
    let on = OnPage::open(|c| {
        c.video = "v4l2:/dev/video-robocast-missing".into();
        c.audio = "test".into();
    })
    .await?;
    // What the robot itself says about its camera.
    let mut video = on.daemon.media().watch_status("video").context("no video pipeline")?;
    let down = tokio::time::timeout(START_TIMEOUT, video.wait_for(|s| s.hint.is_some())).await;
    assert!(down.is_ok_and(|r| r.is_ok()), "robocast never reported the missing camera");
    let (error, hint) = {
        let status = video.borrow();
        (status.error.clone().unwrap_or_default(), status.hint.clone().unwrap_or_default())
    };
    assert!(error.contains("no such device"), "robocast's own error changed: {error:?}");

    expect(
        &on.page,
        "the page did not connect (audio still flows)",
        "window.robocast?.state === 'connected'",
        START_TIMEOUT,
    )
    .await?;
    let connected = Instant::now();
    let hint_js = serde_json::to_string(&hint.to_lowercase())?;
    let shown = format!(
        "(() => {{ const text = document.getElementById('overlay').innerText.toLowerCase(); \
            return document.getElementById('status').dataset.health === 'source' \
                && !document.getElementById('overlay').hidden \
                && text.includes('no such device') && text.includes({hint_js}); }})()"
    );
    expect(&on.page, "the page did not name the missing camera and the robot's hint", &shown, TELL_WITHIN)
        .await?;
    let took = connected.elapsed();

    let view = what_it_shows(&on.page).await?;
    assert_ne!(view["statusColor"], GREEN, "the status line is green over a black picture: {view:#}");
    assert_eq!(view["state"], "connected", "the connection itself is fine: {view:#}");
    let status_text = view["statusText"].as_str().unwrap_or_default();
    assert!(
        status_text.starts_with("No picture") && status_text.contains("no such device"),
        "the status line should say there is no picture and why: {view:#}"
    );
    let health = &view["client"]["health"];
    assert_eq!(health["ok"], false, "{view:#}");
    assert_eq!(health["cause"], "source", "{view:#}");
    assert_eq!(health["media"], "video", "{view:#}");
    assert!(health["problem"].as_str().is_some_and(|p| p.contains("no such device")), "{view:#}");
    assert_eq!(health["hint"], hint.as_str(), "{view:#}");
    eprintln!("the missing camera was named {took:?} after connecting");

    on.browser.close().await?;
    on.daemon.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robot_that_stops_is_reported_within_two_seconds_and_reconnected() -> Result<()> {
    let on = OnPage::open(|_| {}).await?;
    expect(&on.page, "the page did not go live", LIVE, START_TIMEOUT).await?;
    let view = what_it_shows(&on.page).await?;
    assert_eq!(view["statusColor"], GREEN, "a live picture is shown in green: {view:#}");
    assert_eq!(view["client"]["health"]["media"], "video", "{view:#}");

    let (page, browser, daemon) = (&on.page, on.browser, on.daemon);
    let not_live = "(() => { const s = document.getElementById('status'); \
        const o = document.getElementById('overlay'); \
        return s.dataset.health !== 'ok' && s.dataset.state === 'reconnecting' \
            && getComputedStyle(s).color !== 'rgb(63, 185, 80)' && !o.hidden \
            && /reconnecting/i.test(o.innerText) && /not answering/i.test(o.innerText) \
            && /not answering/i.test(s.textContent); })()";
    let stopped = Instant::now();
    let (said, ()) =
        tokio::join!(expect(page, "the page still claims a live picture", not_live, TELL_WITHIN), async {
            daemon.shutdown().await;
        });
    said?;
    eprintln!("the stopped robot was reported {:?} after shutdown began", stopped.elapsed());

    // And the client keeps trying, as for any lost connection.
    let retry_shown = "!document.getElementById('retry').hidden && window.robocast.state === 'reconnecting'";
    expect(page, "the page gave up instead of reconnecting", retry_shown, TELL_WITHIN).await?;
    browser.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_ends_is_reported_and_the_picture_returns_by_itself() -> Result<()> {
    // 45 frames (1.5 s) then end of stream; robocast rebuilds it after 2 s, on the same
    // connection: each cycle is a stall the page must explain, then live again.
    let on = OnPage::open(|c| {
        c.video =
            "gst:videotestsrc is-live=true num-buffers=45 ! video/x-raw,width=640,height=360,framerate=30/1"
                .into();
        c.audio = "test".into();
    })
    .await?;
    expect(&on.page, "the page did not go live", LIVE, START_TIMEOUT).await?;
    let reported = "(() => { const h = window.robocast.health; \
        return h.cause === 'source' && !h.ok && document.getElementById('status').dataset.health === 'source' \
            && document.getElementById('overlay').innerText.toLowerCase().includes(h.problem.toLowerCase()) \
            && h.problem.includes('video source') && h.hint.length > 0; })()";
    expect(&on.page, "the ended source was not reported", reported, Duration::from_secs(5)).await?;
    let view = what_it_shows(&on.page).await?;
    assert_ne!(view["statusColor"], GREEN, "{view:#}");
    let session = on.page.eval("window.robocast.session").await?;

    expect(&on.page, "the picture did not come back by itself", LIVE, Duration::from_secs(6)).await?;
    let view = what_it_shows(&on.page).await?;
    assert_eq!(view["statusColor"], GREEN, "{view:#}");
    assert_eq!(view["client"]["health"]["problem"], "", "{view:#}");
    assert_eq!(
        on.page.eval("window.robocast.session").await?,
        session,
        "the picture came back on the same session, without a reconnect"
    );

    on.browser.close().await?;
    on.daemon.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robot_without_video_is_healthy_on_its_sound() -> Result<()> {
    let on = OnPage::open(|c| {
        c.video = "none".into();
        c.audio = "test".into();
    })
    .await?;
    let sound_only = "window.robocast?.state === 'connected' && window.robocast.health.ok \
        && window.robocast.health.media === 'audio' \
        && document.getElementById('status').dataset.health === 'ok'";
    expect(&on.page, "a sound-only robot is not shown as healthy", sound_only, START_TIMEOUT).await?;
    // From now on, any health change is a false alarm.
    on.page
        .eval("window.alarms = []; window.robocast.addEventListener('health', e => window.alarms.push(e.detail))")
        .await?;
    let packets = "(async () => { let n = 0; (await window.robocast.pc.getStats()).forEach(r => { \
        if (r.type === 'inbound-rtp' && r.kind === 'audio') n = r.packetsReceived; }); return n; })()";
    let before = on.page.eval(packets).await?.as_u64().unwrap_or(0);
    // Two stall periods' worth of sound (Opus sends 50 packets/s).
    let later = format!("{packets}.then(n => n >= {})", before + 100);
    expect(&on.page, "the sound stopped", &later, Duration::from_secs(5)).await?;

    let alarms = on.page.eval("window.alarms").await?;
    assert_eq!(alarms, serde_json::json!([]), "a robot without video is not a problem");
    let view = what_it_shows(&on.page).await?;
    assert_eq!(view["statusColor"], GREEN, "{view:#}");
    assert!(
        view["overlayText"].as_str().is_some_and(|t| t.contains("Sound only")),
        "the page says there is no picture to expect: {view:#}"
    );

    on.browser.close().await?;
    on.daemon.shutdown().await;
    Ok(())
}
