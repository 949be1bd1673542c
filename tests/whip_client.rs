//! An independent WHIP client from npm (medooze's `whip-whep`, unmodified, bundled by
//! `tests/clients/setup.sh`) pushes Chromium's (fake) microphone and camera to robocast's
//! `/whip` from a page of another origin: the sound reaches the speaker's sink, the
//! pictures the display's, and `stop()` (its `DELETE`) frees the speaker at once.
//!
//! Needs `tests/clients/setup.sh` (the bundle) and the Debian package `chromium`.

mod common;

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use common::browser::Browser;
use common::clients::{self, START_TIMEOUT};
use common::http;
use common::talkback::{DisplaySink, SpeakerSink};

/// whip-whep's README example, pointed at robocast with the operator token (WHIP needs
/// it); the outcome lands in `window.pushing`.
const CLIENT: &str = r#"
(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    const pc = window.pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly" });
    const whip = window.whip = new WHIPClient();
    await whip.publish(pc, WHIP_URL, WHIP_TOKEN);
})().then(() => { window.pushing = "ok"; }, error => { window.pushing = "failed: " + error; });
"#;

fn client_page(whip_url: &str) -> String {
    let url = serde_json::Value::from(whip_url);
    format!(
        "<!doctype html>\n<meta charset=\"utf-8\">\n<title>WHIP client</title>\n\
         <script>{}</script>\n<script src=\"/whip-client.js\"></script>\n<script>{}</script>\n",
        clients::RECORDER,
        CLIENT
            .replace("WHIP_URL", &url.to_string())
            .replace("WHIP_TOKEN", &serde_json::Value::from(common::OPERATOR_TOKEN).to_string())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_client_from_npm_plays_on_the_speaker_and_display() -> Result<()> {
    let bundle = clients::built("whip-client.js")?;
    let mut speaker = SpeakerSink::bind().await;
    let mut display = DisplaySink::bind().await;
    let (speaker_spec, display_spec) = (speaker.spec(), display.spec());
    let daemon = common::start_daemon(|c| {
        clients::test_sources(c);
        c.speaker = speaker_spec;
        c.display = display_spec;
    })
    .await;
    let robocast = daemon.local_addr();
    let idle = display.next_frame(START_TIMEOUT).await.context("the idle picture")?.mean();
    let (site, server) =
        clients::serve_site(client_page(&format!("http://{robocast}/whip")), "/whip-client.js", bundle)
            .await?;
    let browser = Browser::launch().await?;
    // `localhost`, not 127.0.0.1: a secure context, so getUserMedia is allowed.
    let page = browser.new_page(&format!("http://localhost:{}/", site.port())).await?;

    let pushing = page.wait_for("window.pushing", START_TIMEOUT).await?;
    if pushing != "ok" {
        bail!("the WHIP client failed: {pushing}\n{}", clients::fetch_log(&page).await);
    }
    let post = clients::find_fetch(&page, "POST", "/whip").await?.context("no POST /whip recorded")?;
    assert_eq!(post["status"], 201, "{}", clients::describe_fetch(&post));
    let location = post["location"].as_str().unwrap_or_default().to_owned();
    assert!(location.starts_with("/whip/"), "{}", clients::describe_fetch(&post));

    // Its candidates trickle to the session's Location (PATCH, RFC 9725 §4.3.1).
    let trickled = format!(
        "window.recorded.fetches.some(f => f.method === 'PATCH' && f.status === 204 && f.url.endsWith('{location}'))"
    );
    if let Err(error) = page.wait_for(&trickled, START_TIMEOUT).await {
        bail!(
            "the client's trickle PATCH to {location} did not succeed: {error:#}\n{}",
            clients::fetch_log(&page).await
        );
    }
    // Chromium's fake microphone beeps; its fake camera is 640x480 and looks nothing like
    // the idle picture.
    let sound =
        speaker.wait_sound(START_TIMEOUT).await.context("the fake microphone's beep at the speaker")?;
    assert!(sound.rms > 0.01, "{sound:?}");
    if let Err(e) = display.wait_frame(START_TIMEOUT, |f| (f.mean() - idle).abs() > 10.0).await {
        let status = http::get(robocast, "/api/status").await.json();
        bail!("the fake camera is not on the display: {e:#}\n{:#}", status["talkback"]);
    }
    let status = http::get(robocast, "/api/status").await.json();
    let talkback = &status["talkback"];
    assert_eq!(talkback["talker"].as_str(), location.strip_prefix("/whip/"), "{talkback:#}");
    assert_eq!(talkback["display"]["size"], "640x480", "{talkback:#}");
    assert!(talkback["display"]["frames_shown"].as_u64().unwrap_or(0) > 0, "{talkback:#}");

    page.eval("whip.stop()").await?;
    let deleted = clients::find_fetch(&page, "DELETE", &location).await?.context("no DELETE recorded")?;
    assert_eq!(deleted["status"], 200, "{}", clients::describe_fetch(&deleted));
    speaker.flush();
    let silent = speaker.wait_silence(Duration::from_secs(2)).await?;
    assert!(silent <= Duration::from_millis(200), "silence only after {silent:?}");
    for _ in 0..50 {
        if http::get(robocast, "/api/status").await.json()["talkback"]["talker"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(http::get(robocast, "/api/status").await.json()["talkback"]["talker"].is_null());

    browser.close().await?;
    server.abort();
    daemon.shutdown().await;
    Ok(())
}
