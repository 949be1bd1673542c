//! What the browser tests of clients robocast did not write share (`tests/rtcbot_client.rs`,
//! `tests/whep_player.rs`): the clients as `tests/clients/setup.sh` built them, a recorder
//! that watches the page's HTTP requests and peer connections, and the playback check.
//!
//! The clients' code runs unmodified. The recorder only wraps the page's `fetch` and
//! `RTCPeerConnection` before the client loads, so a test can report what robocast
//! answered and read `getStats()` from whichever connection the client made.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::browser::{Page, Playback};

/// How long a client has to make its offer, get the answer and show a first frame.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long frames and packets are counted.
const WINDOW: Duration = Duration::from_secs(5);

/// The configured picture, as `tests/page_in_chromium.rs` plays it.
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 720;
pub const FPS: u32 = 30;

/// The test sources at [`WIDTH`]x[`HEIGHT`]@[`FPS`].
pub fn test_sources(config: &mut robocast::Config) {
    config.video = "test".into();
    config.audio = "test".into();
    config.width = WIDTH;
    config.height = HEIGHT;
    config.fps = FPS;
}

/// The text of a file that `tests/clients/setup.sh` put in `tests/clients/build/`.
pub fn built(name: &str) -> Result<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/build").join(name);
    std::fs::read_to_string(&path).with_context(|| {
        format!("reading {}: run tests/clients/setup.sh first (make setup-test does)", path.display())
    })
}

/// Evaluated in the page before the client's code: every `fetch` the page makes goes into
/// `window.recorded.fetches` (method, URL, request content type, then status, `Location`
/// and the start of the body, or the network error), and every `RTCPeerConnection` into
/// `window.recorded.pcs`.
pub const RECORDER: &str = r"(() => {
    if (window.recorded) return;
    const recorded = window.recorded = { fetches: [], pcs: [] };
    const nativeFetch = window.fetch;
    window.fetch = async function (input, init) {
        const request = new Request(input, init);
        const entry = {
            method: request.method,
            url: request.url,
            contentType: request.headers.get('content-type'),
        };
        recorded.fetches.push(entry);
        try {
            const response = await nativeFetch.call(this, input, init);
            entry.status = response.status;
            entry.location = response.headers.get('location');
            entry.body = (await response.clone().text()).slice(0, 600);
            return response;
        } catch (error) {
            entry.error = String(error);
            throw error;
        }
    };
    const NativePeerConnection = window.RTCPeerConnection;
    window.RTCPeerConnection = class extends NativePeerConnection {
        constructor(...args) {
            super(...args);
            recorded.pcs.push(this);
        }
    };
})()";

/// The requests the page made so far, as the recorder saw them.
pub async fn fetches(page: &Page) -> Result<Vec<Value>> {
    let list = page.eval("window.recorded ? window.recorded.fetches : []").await?;
    Ok(list.as_array().cloned().unwrap_or_default())
}

/// The first recorded request with this method whose URL ends with `path_end`.
pub async fn find_fetch(page: &Page, method: &str, path_end: &str) -> Result<Option<Value>> {
    Ok(fetches(page)
        .await?
        .into_iter()
        .find(|f| f["method"] == method && f["url"].as_str().is_some_and(|url| url.ends_with(path_end))))
}

/// One line per recorded request, for failure messages.
pub async fn fetch_log(page: &Page) -> String {
    let list = match fetches(page).await {
        Ok(list) if list.is_empty() => return "the page made no request".into(),
        Ok(list) => list,
        Err(error) => return format!("the page's requests are unknown: {error:#}"),
    };
    let lines: Vec<String> = list.iter().map(describe_fetch).collect();
    format!("the page's requests:\n  {}", lines.join("\n  "))
}

/// `POST http://... (Content-Type: ...) -> 415: {...}`.
pub fn describe_fetch(entry: &Value) -> String {
    let outcome = match (&entry["status"], &entry["error"]) {
        (Value::Number(status), _) => format!("{status}: {}", entry["body"].as_str().unwrap_or("").trim()),
        (_, Value::String(error)) => format!("failed: {error}"),
        _ => "no answer yet".into(),
    };
    let content_type = entry["contentType"].as_str().unwrap_or("none");
    format!(
        "{} {} (Content-Type: {content_type}) -> {outcome}",
        entry["method"].as_str().unwrap_or("?"),
        entry["url"].as_str().unwrap_or("?")
    )
}

/// The page's first video element and the inbound-rtp reports of the first peer
/// connection, stamped with the page clock.
const SNAPSHOT: &str = r"(async () => {
    const pc = window.recorded && window.recorded.pcs[0];
    const video = document.querySelector('video');
    const snapshot = {
        at: performance.now(),
        connection: pc ? pc.connectionState : 'the page made no RTCPeerConnection',
        element: video ? { width: video.videoWidth, height: video.videoHeight, paused: video.paused } : null,
        video: null,
        audio: null,
    };
    if (pc) {
        (await pc.getStats()).forEach(report => {
            if (report.type === 'inbound-rtp' && (report.kind === 'video' || report.kind === 'audio')) {
                snapshot[report.kind] = report;
            }
        });
    }
    return snapshot;
})()";

const PLAYING: &str = "document.querySelector('video')?.videoWidth > 0";

/// Waits for the page's video element to show a picture, then checks over a few seconds
/// that frames decode at the configured size and rate and that audio packets arrive.
/// The error lists every problem, with the page's stats and requests.
pub async fn check_playback(page: &Page) -> Result<()> {
    if let Err(error) = page.wait_for(PLAYING, START_TIMEOUT).await {
        let now = page.eval(SNAPSHOT).await.unwrap_or_else(|e| e.to_string().into());
        anyhow::bail!(
            "the client's <video> never showed a picture: {error:#}\nnow: {now:#}\n{}",
            fetch_log(page).await
        );
    }
    let Playback { before, after, seconds, fps, size, audio_packets } =
        Playback::measure(page, SNAPSHOT, WINDOW).await?;
    let shown = ["/element/width", "/element/height"].map(|at| after.pointer(at).and_then(Value::as_u64));
    let want = [Some(u64::from(WIDTH)), Some(u64::from(HEIGHT))];
    let min_fps = f64::from(FPS) * 25.0 / 30.0;

    let checks = [
        (
            fps >= min_fps,
            format!("decoded {fps:.1} video frames/s, want at least {min_fps} of the {FPS} sent"),
        ),
        (size == want, format!("decoded frames are {size:?}, want {WIDTH}x{HEIGHT}")),
        (shown == want, format!("the <video> element shows {shown:?}, want {WIDTH}x{HEIGHT}")),
        (
            audio_packets >= 200.0,
            format!("{audio_packets} audio packets in {seconds:.1} s, want at least 200 (Opus sends 50/s)"),
        ),
    ];
    let problems: Vec<String> =
        checks.into_iter().filter(|(ok, _)| !ok).map(|(_, problem)| problem).collect();
    if !problems.is_empty() {
        anyhow::bail!("{}\nbefore: {before:#}\nafter: {after:#}", problems.join("\n"));
    }
    Ok(())
}

/// robocast on [`test_sources`] with a control socket, and a program connected to it
/// (its hello read). The directory holding the socket goes when the guard is dropped.
pub async fn daemon_with_program() -> (robocast::Running, super::program::Program, super::program::TempDir) {
    daemon_with_program_and(|_| {}).await
}

/// [`daemon_with_program`], with `adjust` changing the daemon's configuration.
pub async fn daemon_with_program_and(
    adjust: impl FnOnce(&mut robocast::Config),
) -> (robocast::Running, super::program::Program, super::program::TempDir) {
    let (socket, dir) = super::program::socket_path();
    let with_socket = socket.clone();
    let daemon = super::start_daemon(move |config| {
        test_sources(config);
        config.control_socket = Some(with_socket);
        adjust(config);
    })
    .await;
    let (robot, _hello) = super::program::Program::connect(&socket).await;
    (daemon, robot, dir)
}

/// Serves a user's page at `/` and a bundled client at `script` on 127.0.0.1, an origin
/// other than robocast's (a dashboard, a web player).
pub async fn serve_site(
    page: String,
    script: &'static str,
    bundle: String,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::http::header;
    use axum::response::Html;
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route(script, get(move || async move { ([(header::CONTENT_TYPE, "text/javascript")], bundle) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the page's server")?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, task))
}
