//! RTCBot's own browser client (`rtcbot.js` from the `rtcbot` 0.2.5 wheel, unmodified) plays
//! robocast in headless Chromium with the page code RTCBot documents: robocast is a
//! drop-in server for pages written for RTCBot.
//!
//! RTCBot posts `JSON.stringify(offer)` with no Content-Type (the browser sends
//! `text/plain;charset=UTF-8`) and never checks the status, so robocast must take a JSON
//! offer whatever the Content-Type.
//!
//! Its messages work too: `conn.put_nowait(obj)` (RTCBot's `default` data channel) reaches
//! a program on robocast's control socket, and the program's message on `default` reaches
//! `conn.subscribe`.
//!
//! Needs `tests/clients/setup.sh` (rtcbot.js) and the Debian package `chromium`; without
//! them the test fails rather than skips.

mod common;

use std::time::Duration;

use anyhow::{Result, bail};
use common::browser::Browser;
use common::clients::{self, START_TIMEOUT};
use serde_json::json;

/// RTCBot's documented page code, with the audio subscribed too, run on an empty page of
/// robocast's origin. Its outcome lands in `window.rtcbotOutcome`.
const RTCBOT_PAGE: &str = r#"(() => {
    document.body.innerHTML = '<video autoplay playsinline muted></video><audio autoplay></audio>';
    (async () => {
        var conn = new rtcbot.RTCConnection();
        window.rtcbotConn = conn;
        window.rtcbotMessages = [];
        conn.subscribe(m => window.rtcbotMessages.push(m));
        conn.video.subscribe(stream => { document.querySelector("video").srcObject = stream; });
        conn.audio.subscribe(stream => { document.querySelector("audio").srcObject = stream; });
        let offer = await conn.getLocalDescription();
        // RTCBot's example fetch, with the operator's token: sending to the robot needs it.
        const headers = { Authorization: "Bearer OPERATOR_TOKEN" };
        let response = await fetch("/api/connect", { method: "POST", cache: "no-cache", headers, body: JSON.stringify(offer) });
        await conn.setRemoteDescription(await response.json());
    })().then(() => { window.rtcbotOutcome = 'connected'; },
              error => { window.rtcbotOutcome = 'failed: ' + error; });
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtcbot_js_plays_robocast_video_and_audio() -> Result<()> {
    let rtcbot_js = clients::built("rtcbot.js")?;
    let (daemon, mut robot, _dir) = clients::daemon_with_program().await;
    let browser = Browser::launch().await?;
    // Any page of robocast's origin will do: RTCBot's fetch to /api/connect is then same-origin.
    let page = browser.new_page(&format!("http://{}/healthz", daemon.local_addr())).await?;
    page.eval(clients::RECORDER).await?;
    page.eval(&rtcbot_js).await?;
    page.eval(&RTCBOT_PAGE.replace("OPERATOR_TOKEN", common::OPERATOR_TOKEN)).await?;

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

    // RTCBot's documented messaging: put_nowait on its `default` channel, subscribe for replies.
    page.eval(r#"window.rtcbotConn.put_nowait({ "kind": "ping", "n": 7 })"#).await?;
    let timeout = Duration::from_secs(10);
    let got = robot.expect(timeout, |v| v["type"] == "message" && v["channel"] == "default").await;
    assert_eq!(got["data"], json!({ "kind": "ping", "n": 7 }), "{got}");
    robot.send(&json!({ "to": "all", "channel": "default", "data": { "kind": "pong", "n": 7 } })).await;
    let received =
        page.wait_for("window.rtcbotMessages.length > 0 && window.rtcbotMessages[0]", timeout).await?;
    let received: serde_json::Value = serde_json::from_str(received.as_str().unwrap_or_default())?;
    assert_eq!(received, json!({ "kind": "pong", "n": 7 }), "conn.subscribe got {received}");

    browser.close().await?;
    daemon.shutdown().await;
    Ok(())
}
