//! The external-source case: pictures made and stamped by another process and handed
//! over shared memory (`benches/peers/stamped_source.py`), read by robocast through a
//! `gst:` source and by the webrtcbin peer through the same description, in the same
//! run; and robocast on its own test pattern for comparison. A camera is such a source:
//! this is the path it takes, not the test pattern's.

use std::time::Instant;

use anyhow::Result;

use super::common::browser::Browser;
use super::daemon::{Sender, Source, StampedSource};
use super::report::{self, Machine};
use super::{browser_rounds, chromium_version, progress, quick};

/// Fresh starts of each sender (see `CHROMIUM_STARTS` for why more than one).
const STARTS: usize = super::CHROMIUM_STARTS;

pub(crate) async fn run() -> Result<()> {
    let began = Instant::now();
    let starts = if quick() { 1 } else { STARTS };
    let stamped = StampedSource::start().await?;
    let external = stamped.source();
    let browser = Browser::launch().await?;
    let chromium = chromium_version(&browser).await?;
    progress("external source: robocast on its test pattern, for comparison");
    let test = browser_rounds(&browser, Sender::Robocast, &Source::Test, starts).await?;
    progress("external source: robocast");
    let robocast = browser_rounds(&browser, Sender::Robocast, &external, starts).await?;
    progress("external source: the webrtcbin peer");
    let peer = browser_rounds(&browser, Sender::Webrtcbin, &external, starts).await?;
    if let Err(error) = browser.close().await {
        progress(&format!("closing the browser: {error:#}"));
    }
    drop(stamped);
    let machine = Machine::describe(&chromium, "x264enc", 2500);
    let text = report::external_markdown(&machine, &test, &robocast, &peer, began.elapsed());
    println!("{text}");
    if quick() {
        return Ok(());
    }
    report::write_section(report::EXTERNAL_MARKERS, report::EXTERNAL_INTRO, &text)
}
