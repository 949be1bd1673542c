//! An independent WHEP player from npm (medooze's `whip-whep`, unmodified, bundled by
//! `tests/clients/setup.sh`) plays robocast's `/whep` from a page of another origin in
//! headless Chromium: POST of the offer, `Location` followed, candidates trickled with
//! `PATCH`, the stream decoded, and `DELETE` ending the session.
//!
//! From another origin every one of those requests needs robocast's CORS answers (the
//! preflight `OPTIONS`, `Access-Control-Allow-Origin`, an exposed `Location`); without
//! them the player fails with nothing but "Failed to fetch", so on failure this test asks
//! robocast for the preflight itself and says what it answered.
//!
//! Needs `tests/clients/setup.sh` (the bundle) and the Debian package `chromium`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use common::browser::Browser;
use common::clients::{self, START_TIMEOUT};
use common::http;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// whip-whep's README example, pointed at robocast; the outcome of `view` lands in
/// `window.viewing`.
const PLAYER: &str = r#"
const pc = window.pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
pc.addTransceiver("audio");
pc.addTransceiver("video");
pc.ontrack = (event) => {
    if (event.track.kind == "video")
        document.querySelector("video").srcObject = event.streams[0];
};
const whep = window.whep = new WHEPClient();
whep.view(pc, WHEP_URL).then(() => { window.viewing = "ok"; },
                             error => { window.viewing = "failed: " + error; });
"#;

/// The user's page on its own origin: the recorder, the bundle, the player.
fn player_page(whep_url: &str) -> String {
    let url = serde_json::Value::from(whep_url);
    format!(
        "<!doctype html>\n<meta charset=\"utf-8\">\n<title>WHEP player</title>\n\
         <video autoplay muted playsinline></video>\n\
         <script>{}</script>\n<script src=\"/whep-player.js\"></script>\n<script>{}</script>\n",
        clients::RECORDER,
        PLAYER.replace("WHEP_URL", &url.to_string())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_player_on_another_origin_plays_robocast() -> Result<()> {
    let bundle = clients::built("whep-player.js")?;
    let daemon = common::start_daemon(clients::test_sources).await;
    let robocast = daemon.local_addr();
    let (site, server) =
        clients::serve_site(player_page(&format!("http://{robocast}/whep")), "/whep-player.js", bundle)
            .await?;
    let browser = Browser::launch().await?;
    let page = browser.new_page(&format!("http://{site}/")).await?;

    let viewing = page.wait_for("window.viewing", START_TIMEOUT).await?;
    if viewing != "ok" {
        bail!(
            "the WHEP player failed: {viewing}\n{}\n{}",
            clients::fetch_log(&page).await,
            preflight_report(robocast, site).await
        );
    }
    let post = clients::find_fetch(&page, "POST", "/whep").await?.context("no POST /whep recorded")?;
    assert_eq!(post["status"], 201, "{}", clients::describe_fetch(&post));
    let location = post["location"].as_str().unwrap_or_default();
    assert!(location.starts_with("/whep/"), "Location of the session: {}", clients::describe_fetch(&post));

    clients::check_playback(&page).await?;
    let trickled = format!(
        "window.recorded.fetches.some(f => f.method === 'PATCH' && f.status === 204 && f.url.endsWith('{location}'))"
    );
    if let Err(error) = page.wait_for(&trickled, START_TIMEOUT).await {
        bail!(
            "the player's trickle PATCH to {location} did not succeed: {error:#}\n{}",
            clients::fetch_log(&page).await
        );
    }

    page.eval("whep.stop()").await?;
    let deleted = clients::find_fetch(&page, "DELETE", location).await?.context("no DELETE recorded")?;
    assert_eq!(deleted["status"], 200, "{}", clients::describe_fetch(&deleted));
    wait_for_no_sessions(robocast).await;

    browser.close().await?;
    server.abort();
    daemon.shutdown().await;
    Ok(())
}

/// robocast's `/api/sessions` empties soon after a `DELETE`.
async fn wait_for_no_sessions(robocast: SocketAddr) {
    let mut listed = Vec::new();
    for _ in 0..50 {
        listed = http::get(robocast, "/api/sessions").await.json()["sessions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if listed.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("sessions still listed after the player's DELETE: {listed:?}");
}

/// What robocast answers a browser's CORS preflight for the player's `POST /whep`.
async fn preflight_report(robocast: SocketAddr, site: SocketAddr) -> String {
    let request = format!(
        "OPTIONS /whep HTTP/1.1\r\nHost: {robocast}\r\nOrigin: http://{site}\r\n\
         Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\
         Connection: close\r\n\r\n"
    );
    let answer = async {
        let mut stream = TcpStream::connect(robocast).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&raw).into_owned())
    };
    let raw = match answer.await {
        Ok(raw) => raw,
        Err(error) => return format!("the CORS preflight OPTIONS /whep could not be sent: {error}"),
    };
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    let status = head.lines().next().unwrap_or_default();
    let cors: Vec<&str> =
        head.lines().filter(|line| line.to_ascii_lowercase().starts_with("access-control-")).collect();
    let cors = if cors.is_empty() { "none".to_owned() } else { cors.join("; ") };
    format!(
        "robocast answered the browser's CORS preflight (OPTIONS /whep from origin http://{site}) with \
         `{status}` and Access-Control-* headers: {cors}. A player on another origin needs robocast \
         to allow its origin, the Content-Type (and Authorization, If-Match) request headers and \
         POST/PATCH/DELETE, and to expose Location."
    )
}
