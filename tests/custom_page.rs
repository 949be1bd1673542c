//! The page of README "Your own page", as it is written there, in a real headless
//! Chromium: served from an origin of its own, as a user's web server would, it imports
//! `robocast.js` (and the `robocast-*.js` beside it) from the robot, plays the picture,
//! takes the seat with its button, drives a robot program on the control socket with the
//! keyboard helper, and prints the program's messages.
//!
//! The page is read out of README.md (the code block after its marker), so the README and
//! this test cannot drift apart; only the robot's address is replaced with the test
//! daemon's, as the README tells its reader to.
//!
//! Needs the Debian package `chromium`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use axum::Router;
use axum::response::Html;
use axum::routing::get;
use common::browser::Browser;
use common::clients;
use common::input::{click, key};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// What precedes the page's code block in README.md.
const MARKER: &str = "<!-- tests/custom_page.rs runs the page below";
/// The robot's address as the README writes it.
const README_ROBOT: &str = "http://robot.local:8080";
/// How long a line from the page may take to reach the program, or the page to show one.
const LINE_TIMEOUT: Duration = Duration::from_secs(5);

/// Before the page: what went wrong in it (a module that did not load, an exception) lands
/// in `window.pageErrors`; error events of elements do not bubble, so they are captured.
const ERRORS: &str = r"window.pageErrors = [];
addEventListener('error', (e) => pageErrors.push(e.message || `${e.target.tagName} failed to load`), true);
addEventListener('unhandledrejection', (e) => pageErrors.push(String(e.reason)));";

/// What the page printed, the errors it met and the scripts it loaded, for failures.
async fn page_report(page: &common::browser::Page) -> String {
    let report = page
        .eval(
            "({ printed: document.getElementById('log')?.textContent, errors: window.pageErrors, \
               scripts: performance.getEntriesByType('resource').map((r) => r.name) })",
        )
        .await;
    match report {
        Ok(report) => format!("the page: {report:#}"),
        Err(error) => format!("the page cannot say what happened: {error:#}"),
    }
}

/// The HTML of the code block after [`MARKER`] in README.md.
fn readme_page() -> Result<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).context("reading README.md")?;
    let after = &readme[readme.find(MARKER).context("README.md has no custom page marker")?..];
    let start = after.find("```html\n").context("no ```html block after the marker")? + "```html\n".len();
    let end = after[start..].find("\n```").context("the page's code block never ends")?;
    Ok(after[start..start + end + 1].to_owned())
}

/// Serves `page` at `/` on `listener` (127.0.0.1), an origin other than robocast's.
async fn serve_page(
    listener: TcpListener,
    page: String,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = Router::new().route("/", get(move || async move { Html(page) }));
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, task))
}

fn is_control(line: &Value, session: &Value, command: &str) -> bool {
    line["type"] == "message"
        && line["channel"] == "control"
        && line["session"] == *session
        && line["data"]["type"] == command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_page_plays_drives_and_prints_the_robots_messages() -> Result<()> {
    let page_text = readme_page()?;
    if page_text.matches(README_ROBOT).count() != 2 {
        bail!("the README's page should name the robot {README_ROBOT} twice (import, base):\n{page_text}");
    }
    // The page's origin must be allowed to use /api/connect, as the README says.
    let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the page's server")?;
    let allowed = format!("http://{}", listener.local_addr()?);
    let (daemon, mut robot, _dir) =
        clients::daemon_with_program_and(|c| c.allowed_origins = vec![allowed]).await;
    // The recorder first, so the playback check can read the page's peer connection.
    let robot_origin = format!("http://{}", daemon.local_addr());
    let html = format!(
        "<script>{ERRORS}\n{}</script>\n{}",
        clients::RECORDER,
        page_text.replace(README_ROBOT, &robot_origin).replace("OPERATOR_TOKEN", common::OPERATOR_TOKEN)
    );
    let (site, server) = serve_page(listener, html).await?;
    let browser = Browser::launch().await?;
    let page = browser.new_page(&format!("http://{site}/")).await?;

    if let Err(error) = clients::check_playback(&page).await {
        bail!("{error:#}\n{}", page_report(&page).await);
    }

    // Its button takes the seat: the program hears who drives, the page says so.
    click(&page, "take").await?;
    if let Err(error) =
        page.wait_for("document.getElementById('log').textContent.includes('you drive')", LINE_TIMEOUT).await
    {
        bail!("the page did not print that it drives: {error:#}\n{}", page_report(&page).await);
    }
    let driver = robot.expect(LINE_TIMEOUT, |l| l["type"] == "driver" && l["session"].is_string()).await;
    let session = driver["session"].clone();

    // The keyboard helper: an arrow key drives, letting go stops.
    key(&page, "ArrowUp", 38, true).await?;
    let drive = robot.expect(LINE_TIMEOUT, |l| is_control(l, &session, "drive")).await;
    assert_eq!(drive["data"], json!({ "type": "drive", "linear": 1, "angular": 0 }), "{drive}");
    key(&page, "ArrowUp", 38, false).await?;
    robot.expect(LINE_TIMEOUT, |l| is_control(l, &session, "stop")).await;

    // The program's message, printed with its channel.
    robot.send(&json!({ "to": "all", "channel": "state", "data": { "battery": 0.5 } })).await;
    page.wait_for(
        r#"document.getElementById('log').textContent.includes('state: {"battery":0.5}')"#,
        LINE_TIMEOUT,
    )
    .await
    .context("the page did not print the program's message")?;

    browser.close().await?;
    server.abort();
    daemon.shutdown().await;
    Ok(())
}
