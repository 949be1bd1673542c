//! RTCBot's own browser client (`rtcbot.js` from the `rtcbot` 0.2.5 wheel, unmodified) plays
//! robocast in headless Chromium with the page code RTCBot documents: robocast is a
//! drop-in server for pages written for RTCBot.
//!
//! RTCBot posts `JSON.stringify(offer)` with no Content-Type (the browser sends
//! `text/plain;charset=UTF-8`) and never checks the status, so robocast must take a JSON
//! offer whatever the Content-Type.
//!
//! Needs `tests/clients/setup.sh` (rtcbot.js) and the Debian package `chromium`; without
//! them the test fails rather than skips.

mod common;

use anyhow::{Result, bail};
use common::browser::Browser;
use common::clients::{self, START_TIMEOUT};

/// RTCBot's documented page code, with the audio subscribed too, run on an empty page of
/// robocast's origin. Its outcome lands in `window.rtcbotOutcome`.
const RTCBOT_PAGE: &str = r#"(() => {
    document.body.innerHTML = '<video autoplay playsinline muted></video><audio autoplay></audio>';
    (async () => {
        var conn = new rtcbot.RTCConnection();
        conn.video.subscribe(stream => { document.querySelector("video").srcObject = stream; });
        conn.audio.subscribe(stream => { document.querySelector("audio").srcObject = stream; });
        let offer = await conn.getLocalDescription();
        let response = await fetch("/api/connect", { method: "POST", cache: "no-cache", body: JSON.stringify(offer) });
        await conn.setRemoteDescription(await response.json());
    })().then(() => { window.rtcbotOutcome = 'connected'; },
              error => { window.rtcbotOutcome = 'failed: ' + error; });
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtcbot_js_plays_robocast_video_and_audio() -> Result<()> {
    let rtcbot_js = clients::built("rtcbot.js")?;
    let daemon = common::start_daemon(clients::test_sources).await;
    let browser = Browser::launch().await?;
    // Any page of robocast's origin will do: RTCBot's fetch to /api/connect is then same-origin.
    let page = browser.new_page(&format!("http://{}/healthz", daemon.local_addr())).await?;
    page.eval(clients::RECORDER).await?;
    page.eval(&rtcbot_js).await?;
    page.eval(RTCBOT_PAGE).await?;

    let outcome = page.wait_for("window.rtcbotOutcome", START_TIMEOUT).await?;
    match clients::find_fetch(&page, "POST", "/api/connect").await? {
        Some(connect) if connect["status"] == 200 => {}
        Some(connect) => bail!(
            "robocast refused RTCBot's offer: {}\nRTCBot posts its JSON offer with no Content-Type \
             (so the browser sends text/plain) and does not check the status: robocast must \
             accept a JSON offer whatever the Content-Type. The page's code ended with: {outcome}",
            clients::describe_fetch(&connect)
        ),
        None => bail!("RTCBot never posted its offer; its code ended with: {outcome}"),
    }
    if outcome != "connected" {
        bail!("RTCBot's page code failed: {outcome}\n{}", clients::fetch_log(&page).await);
    }
    clients::check_playback(&page).await?;

    browser.close().await?;
    daemon.shutdown().await;
    Ok(())
}
