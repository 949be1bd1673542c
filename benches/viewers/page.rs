//! The robot page as the benchmarks watch it: [`PROBE`] installed, in a window of its own.
//! Shared by the viewers and thin-link benchmarks.

use anyhow::Result;
use serde_json::json;

use super::common::browser::{Browser, Page};

/// Injected into each robot page before its own scripts. It records when the page showed
/// its first frame and, between `start()` and `stop()`, reads the clock stamp of every
/// presented frame (`src/media/clockstamp.rs`). A sample is the stamp and its age in ms
/// `[stamp, at receive, at presentation, at the player's expected display time]`.
pub(crate) const PROBE: &str = include_str!("probe.js");

/// A robot page with [`PROBE`] installed, alone in its own window: a headless Chromium
/// renders only the front tab of each window, so viewers sharing a window would stall.
/// `scripts` are injected after [`PROBE`], before the page's own.
pub(crate) async fn open_viewer(browser: &Browser, url: &str, scripts: &[&str]) -> Result<Page> {
    // `new_page` opens its tab in the newest window; give it one to itself.
    let blank =
        browser.call("Target.createTarget", json!({ "url": "about:blank", "newWindow": true })).await?;
    let page = browser.new_page("about:blank").await?;
    // The window's first tab is no longer needed; closing the page then closes the window.
    browser.call("Target.closeTarget", json!({ "targetId": blank["targetId"] })).await?;
    // Without the Page domain enabled, scripts for new documents are not injected.
    page.call("Page.enable", json!({})).await?;
    for source in std::iter::once(&PROBE).chain(scripts) {
        page.call("Page.addScriptToEvaluateOnNewDocument", json!({ "source": source })).await?;
    }
    page.call("Page.navigate", json!({ "url": url })).await?;
    Ok(page)
}
