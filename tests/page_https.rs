//! The robot page over HTTPS with robocast's generated certificate, in a real headless
//! Chromium that trusts exactly that certificate (by its public key, as a user who
//! accepted it once): opened with `#token=<operator token>` it connects, drives a robot
//! program and talks on the speaker (fake microphone); opened without a token in a fresh
//! browser it watches, and its Take control, Talk and Show my camera buttons are off and
//! say which token they need.

mod common;

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use common::browser::Browser;
use common::input::{click, mouse_button};
use common::program::{Program, socket_path};
use common::talkback::{DisplaySink, SpeakerSink};
use robocast::http::tls::{TlsSetting, auto_paths};
use serde_json::Value;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const LINE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connected, and robocast's hello has said who drives.
const READY: &str = "window.robocast?.state === 'connected' \
    && ['nobody', 'other', 'you'].includes(document.getElementById('seat').dataset.seat)";

/// Chromium's flag that trusts a certificate by its public key: base64 of the SHA-256 of
/// its SubjectPublicKeyInfo.
fn trust_flag(key_pem: &str) -> Result<String> {
    let pair = rcgen::KeyPair::from_pem(key_pem)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &pair.public_key_der());
    let spki = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    Ok(format!("--ignore-certificate-errors-spki-list={spki}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_token_drives_and_talks_and_without_it_the_page_watches() -> Result<()> {
    let state =
        std::env::temp_dir().join(format!("robocast-page-https-{}", robocast::auth::random_hex::<6>()?));
    let (socket, _dir) = socket_path();
    let mut speaker = SpeakerSink::bind().await;
    let display = DisplaySink::bind().await;
    let (speaker_spec, display_spec, state_dir) = (speaker.spec(), display.spec(), state.clone());
    let configured_socket = socket.clone();
    let daemon = common::start_daemon(move |c| {
        c.tls = TlsSetting::Auto;
        c.state_dir = Some(state_dir);
        c.control_socket = Some(configured_socket);
        c.speaker = speaker_spec;
        c.display = display_spec;
    })
    .await;
    let (mut robot, _hello) = Program::connect(&socket).await;
    let (_, key) = auto_paths(&state);
    let trust = trust_flag(&std::fs::read_to_string(key)?)?;
    let origin = format!("https://localhost:{}", daemon.local_addr().port());

    // The operator's link, as robocast logs it on its first start.
    let operator = Browser::launch_with(std::slice::from_ref(&trust)).await?;
    let page = operator.new_page(&format!("{origin}/#token={}", common::OPERATOR_TOKEN)).await?;
    page.wait_for(READY, START_TIMEOUT).await.context("the page did not connect over HTTPS")?;
    assert_eq!(
        page.eval("location.protocol + location.hash").await?,
        "https:",
        "the token left the address bar"
    );
    assert_eq!(page.eval("window.robocast.access").await?, "operator");
    assert_eq!(page.eval("window.isSecureContext").await?, Value::Bool(true));
    let session = page.eval("window.robocast.session").await?;

    click(&page, "drive").await?;
    robot.expect(LINE_TIMEOUT, |l| l["type"] == "driver" && l["session"] == session).await;
    mouse_button(&page, "talk", true).await?;
    if let Err(e) = speaker.wait_sound(START_TIMEOUT).await {
        let seen = page
            .eval(
                "JSON.stringify({ talk: document.getElementById('talk').dataset.send, \
                 title: document.getElementById('talk').title, talker: window.robocast.talker, \
                 log: document.getElementById('log').innerText })",
            )
            .await;
        bail!("holding Talk over HTTPS is not heard on the speaker: {e:#}; the page: {seen:?}");
    }
    mouse_button(&page, "talk", false).await?;

    // Another browser, no token: it watches; the buttons say why they are off.
    let viewer = Browser::launch_with(std::slice::from_ref(&trust)).await?;
    let watching = viewer.new_page(&format!("{origin}/")).await?;
    watching.wait_for(READY, START_TIMEOUT).await.context("the page without a token did not connect")?;
    watching
        .wait_for("document.getElementById('video').videoWidth > 0", START_TIMEOUT)
        .await
        .context("the page without a token does not play the robot's picture")?;
    assert_eq!(watching.eval("window.robocast.access").await?, "viewer");
    let buttons = watching
        .eval(
            "JSON.stringify(['drive', 'talk', 'camera'].map((id) => { const b = document.getElementById(id); \
             return { id, disabled: b.disabled, title: b.title }; }))",
        )
        .await?;
    let buttons: Vec<Value> = serde_json::from_str(buttons.as_str().unwrap_or("[]"))?;
    assert_eq!(buttons.len(), 3, "{buttons:?}");
    for button in &buttons {
        let title = button["title"].as_str().unwrap_or_default();
        if button["disabled"] != true || !title.contains("operator token") || !title.contains("#token=") {
            bail!("a watching page's button should be off and say which token it needs: {button}");
        }
    }
    let status = common::http::get(daemon.local_addr(), "/healthz").await;
    assert_eq!(status.status, 308, "plain HTTP on the TLS port is redirected: {status:?}");

    viewer.close().await?;
    operator.close().await?;
    daemon.shutdown().await;
    let _ = std::fs::remove_dir_all(&state);
    Ok(())
}
