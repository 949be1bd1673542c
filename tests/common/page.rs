//! What every robot-page test starts from: robocast in-process and its page open in a
//! fresh headless Chromium, one test at a time.

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::browser::{Browser, Page};

/// A browser next to an encoder is all 2 cores can take, and a frame rate measured next to
/// another test's would be the neighbour's fault: the page tests of a binary take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The robot page's address with the test daemons' operator token, as the link robocast
/// logs on its first start gives it.
pub fn operator_url(addr: std::net::SocketAddr) -> String {
    format!("http://{addr}/#token={}", super::OPERATOR_TOKEN)
}

/// A daemon and its robot page in Chromium, holding the turn.
pub struct OnPage {
    pub page: Page,
    pub browser: Browser,
    pub daemon: robocast::Running,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl OnPage {
    /// robocast as `adjust` configures it (test sources by default) and its page, loaded.
    pub async fn open(adjust: impl FnOnce(&mut robocast::Config)) -> Result<OnPage> {
        let turn = ONE_AT_A_TIME.lock().await;
        let daemon = super::start_daemon(adjust).await;
        let browser = Browser::launch().await?;
        let page = browser.new_page(&operator_url(daemon.local_addr())).await?;
        Ok(OnPage { page, browser, daemon, _turn: turn })
    }

    /// As [`OnPage::open`], with `prepare` run on the empty tab before the page loads (a
    /// phone's screen, say).
    pub async fn open_prepared(
        adjust: impl FnOnce(&mut robocast::Config),
        prepare: impl AsyncFnOnce(&Page) -> Result<()>,
    ) -> Result<OnPage> {
        let turn = ONE_AT_A_TIME.lock().await;
        let daemon = super::start_daemon(adjust).await;
        let browser = Browser::launch().await?;
        let page = browser.new_page("about:blank").await?;
        prepare(&page).await?;
        let url = operator_url(daemon.local_addr());
        let navigated = page.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(error) = navigated.get("errorText").and_then(Value::as_str) {
            bail!("loading {url} failed: {error}");
        }
        Ok(OnPage { page, browser, daemon, _turn: turn })
    }

    /// Quits the browser, then stops robocast.
    pub async fn close(self) -> Result<()> {
        self.browser.close().await?;
        self.daemon.shutdown().await;
        Ok(())
    }
}
