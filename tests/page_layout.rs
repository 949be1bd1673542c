//! The robot page's layout on a phone (portrait and landscape) and a desktop, in a real
//! headless Chromium with the screen emulated: the picture as large as the screen allows,
//! every control on screen and off the picture, who drives and the clock always in sight,
//! the stats clear of the picture's top, the console under the picture where there is
//! room (and, when asked for elsewhere, clear of the picture's centre), double-click
//! reaching the picture, a way out of fullscreen, problems shown over the picture without
//! pushing the buttons away, and no missing file.
//!
//! `ROBOCAST_SCREENSHOTS=1` also saves the playing page as `static/screenshots/phone.png`
//! and `static/screenshots/desktop.png`; without it the test writes nothing.

mod common;

use std::time::Duration;

use anyhow::{Context as _, Result};
use common::browser::Page;
use common::page::OnPage;
use serde::Deserialize;
use serde_json::json;

const START_TIMEOUT: Duration = Duration::from_secs(15);
const CHANGE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug)]
struct Screen {
    name: &'static str,
    width: u32,
    height: u32,
    mobile: bool,
    scale: f64,
}

const PHONE: Screen = Screen { name: "phone", width: 390, height: 844, mobile: true, scale: 2.0 };
const PHONE_LANDSCAPE: Screen =
    Screen { name: "phone, landscape", width: 844, height: 390, mobile: true, scale: 2.0 };
const DESKTOP: Screen = Screen { name: "desktop", width: 1280, height: 800, mobile: false, scale: 1.0 };

const PLAYING: &str = "window.robocast?.state === 'connected' \
    && document.getElementById('video').videoWidth > 0 \
    && document.getElementById('stage').dataset.health === 'ok'";

/// The robot gone: the page reconnecting, with the reason over the picture.
const RECONNECTING: &str = "document.getElementById('stage').dataset.state === 'reconnecting' \
    && !document.getElementById('overlay').hidden \
    && document.getElementById('error').textContent.length > 0";

/// Where everything is, in CSS pixels.
const LAYOUT: &str = r"(() => {
    const box = (el) => { const r = el.getBoundingClientRect();
        return { left: r.left, top: r.top, right: r.right, bottom: r.bottom }; };
    const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    const video = document.getElementById('video');
    const v = video.getBoundingClientRect();
    // object-fit: contain centres the picture at the largest scale that fits.
    const scale = video.videoWidth ? Math.min(v.width / video.videoWidth, v.height / video.videoHeight) : 0;
    const w = video.videoWidth * scale, h = video.videoHeight * scale;
    const picture = { left: v.left + (v.width - w) / 2, top: v.top + (v.height - h) / 2 };
    Object.assign(picture, { right: picture.left + w, bottom: picture.top + h });
    const centre = document.elementFromPoint(v.left + v.width / 2, v.top + v.height / 2);
    const stats = document.getElementById('stats');
    const overlay = document.getElementById('overlay');
    const card = overlay.querySelector('.card');
    const panel = document.getElementById('console');
    return {
        viewport: { left: 0, top: 0, right: innerWidth, bottom: innerHeight },
        scroll: { width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight },
        video: box(video),
        picture: scale ? picture : null,
        stage: box(document.getElementById('stage')),
        buttons: [...document.querySelectorAll('button')].filter(shown)
            .map(b => ({ id: b.id, text: b.innerText.trim(), rect: box(b) })),
        stats: shown(stats) ? box(stats) : null,
        card: shown(overlay) ? box(card) : null,
        indicators: ['seat', 'clock'].map(id => document.getElementById(id)).filter(shown)
            .map(el => ({ id: el.id, text: el.innerText.trim(), rect: box(el) })),
        console: shown(panel) ? box(panel) : null,
        centre: centre ? { id: centre.id, inButton: !!centre.closest('button') } : null,
        fullscreen: document.fullscreenElement ? document.fullscreenElement.id : null,
    };
})()";

#[derive(Clone, Copy, Debug, Deserialize)]
struct Rect {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
}

impl Rect {
    fn width(&self) -> f64 {
        self.right - self.left
    }
    fn height(&self) -> f64 {
        self.bottom - self.top
    }
    /// Within `outer`, allowing half a pixel of rounding.
    fn inside(&self, outer: &Rect) -> bool {
        self.left >= outer.left - 0.5
            && self.top >= outer.top - 0.5
            && self.right <= outer.right + 0.5
            && self.bottom <= outer.bottom + 0.5
    }
    fn overlaps(&self, other: &Rect) -> bool {
        self.left < other.right - 0.5
            && other.left < self.right - 0.5
            && self.top < other.bottom - 0.5
            && other.top < self.bottom - 0.5
    }
    /// The upper half.
    fn top_half(&self) -> Rect {
        Rect { bottom: self.top + self.height() / 2.0, ..*self }
    }
}

/// A button, or an indicator (who drives, the clock).
#[derive(Debug, Deserialize)]
struct Button {
    id: String,
    text: String,
    rect: Rect,
}

#[derive(Debug, Deserialize)]
struct Centre {
    id: String,
    #[serde(rename = "inButton")]
    in_button: bool,
}

#[derive(Debug, Deserialize)]
struct Scroll {
    width: f64,
    height: f64,
}

#[derive(Debug, Deserialize)]
struct Layout {
    viewport: Rect,
    scroll: Scroll,
    video: Rect,
    picture: Option<Rect>,
    stage: Rect,
    buttons: Vec<Button>,
    stats: Option<Rect>,
    card: Option<Rect>,
    indicators: Vec<Button>,
    console: Option<Rect>,
    centre: Option<Centre>,
    fullscreen: Option<String>,
}

/// Collects what is wrong, so one run reports every problem of a layout.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(problem());
        }
    }
}

/// What every layout must do, playing or not.
fn check_common(layout: &Layout, problems: &mut Problems) {
    let viewport = &layout.viewport;
    problems.check(
        layout.scroll.width <= viewport.width() + 0.5 && layout.scroll.height <= viewport.height() + 0.5,
        || format!("the page scrolls: {:?} in a {viewport:?} screen", layout.scroll),
    );
    problems.check(!layout.buttons.is_empty(), || "no button is shown".into());
    for button in &layout.buttons {
        problems.check(button.rect.inside(viewport), || {
            format!("button {:?} ({}) is outside the screen: {:?}", button.text, button.id, button.rect)
        });
        problems.check(!button.rect.overlaps(&layout.video), || {
            format!("button {:?} ({}) covers the picture: {:?}", button.text, button.id, button.rect)
        });
        problems.check(button.rect.height() >= 40.0 && button.rect.width() >= 40.0, || {
            format!("button {:?} is too small to tap: {:?}", button.text, button.rect)
        });
    }
    for id in ["seat", "clock"] {
        match layout.indicators.iter().find(|i| i.id == id) {
            Some(shown) => {
                problems.check(shown.rect.inside(viewport) && !shown.rect.overlaps(&layout.video), || {
                    format!("the {id} indicator {:?} is off screen or over the picture", shown.rect)
                });
                problems.check(!shown.text.is_empty(), || format!("the {id} indicator is empty"));
            }
            None => problems.check(false, || format!("the {id} indicator is not shown")),
        }
    }
    problems.check(layout.buttons.iter().any(|b| b.id == "drive"), || "no Take control button".into());
    if let Some(console) = layout.console {
        problems.check(console.inside(viewport), || format!("the console {console:?} is off screen"));
    }
    match &layout.centre {
        Some(centre) => problems.check(
            !centre.in_button && (centre.id == "video" || centre.id == "screen" || centre.id == "stage"),
            || format!("the picture's centre is {centre:?}, not the picture: a double-click there misses it"),
        ),
        None => problems.check(false, || "nothing at the picture's centre".into()),
    }
}

/// What a playing page must do: a large picture, the stats clear of its top.
fn check_playing(screen: Screen, layout: &Layout, problems: &mut Problems) {
    let viewport = &layout.viewport;
    let Some(picture) = layout.picture else {
        return problems.check(false, || "no picture is playing".into());
    };
    match screen.name {
        "phone" => {
            problems.check((layout.video.width() - viewport.width()).abs() < 1.0, || {
                format!(
                    "the video is {:.0} px wide on a {:.0} px phone",
                    layout.video.width(),
                    viewport.width()
                )
            });
            problems.check((picture.width() - viewport.width()).abs() < 1.0, || {
                format!("the picture is {:.0} px wide on a {:.0} px phone", picture.width(), viewport.width())
            });
            problems.check(layout.video.height() >= viewport.width() * 9.0 / 16.0, || {
                format!("the video is only {:.0} px tall", layout.video.height())
            });
        }
        "phone, landscape" => problems.check(picture.height() >= viewport.height() - 1.0, || {
            format!(
                "the picture is {:.0} px tall on a {:.0} px high screen",
                picture.height(),
                viewport.height()
            )
        }),
        _ => problems.check(
            picture.width() >= 0.9 * viewport.width() || picture.height() >= 0.8 * viewport.height(),
            || format!("the picture is only {:.0}x{:.0}", picture.width(), picture.height()),
        ),
    }
    match layout.stats {
        Some(stats) => problems.check(!stats.overlaps(&picture.top_half()), || {
            format!("the stats {stats:?} cover the top of the picture {picture:?}")
        }),
        None => problems.check(false, || "the stats are not shown while playing".into()),
    }
    // Under the picture in portrait, where the screen has room to spare; elsewhere only
    // when asked for, as it would cost the picture.
    match (screen.name, layout.console) {
        ("phone", Some(console)) => problems.check(!console.overlaps(&layout.video), || {
            format!("the console {console:?} covers the picture {:?}", layout.video)
        }),
        ("phone", None) => problems.check(false, || "the console is not shown under the picture".into()),
        (_, Some(console)) => problems.check(false, || format!("the console {console:?} is shown unasked")),
        (_, None) => {}
    }
}

/// robocast and its robot page at the size of `screen`, playing.
async fn open(screen: Screen) -> Result<OnPage> {
    let on = OnPage::open_prepared(
        |c| (c.width, c.height) = (1280, 720),
        async |page| emulate(page, screen).await,
    )
    .await?;
    on.page.wait_for(PLAYING, START_TIMEOUT).await.context("the page did not start playing")?;
    Ok(on)
}

async fn layout(on: &OnPage) -> Result<Layout> {
    Ok(serde_json::from_value(on.page.eval(LAYOUT).await?)?)
}

async fn emulate(page: &Page, screen: Screen) -> Result<()> {
    let metrics = json!({
        "width": screen.width,
        "height": screen.height,
        "deviceScaleFactor": screen.scale,
        "mobile": screen.mobile,
        "screenWidth": screen.width,
        "screenHeight": screen.height,
    });
    page.call("Emulation.setDeviceMetricsOverride", metrics).await?;
    Ok(())
}

/// Fails with every problem found, the layout and what the page showed.
fn verdict(screen: Screen, when: &str, layout: &Layout, problems: Problems) {
    assert!(
        problems.0.is_empty(),
        "{} ({when}):\n  {}\nlayout: {layout:#?}",
        screen.name,
        problems.0.join("\n  ")
    );
}

async fn check_layout_playing(on: &OnPage, screen: Screen) -> Result<()> {
    let layout = layout(on).await?;
    let mut problems = Problems::default();
    check_common(&layout, &mut problems);
    check_playing(screen, &layout, &mut problems);
    problems.check(layout.card.is_none(), || "a card covers the live picture".into());
    verdict(screen, "playing", &layout, problems);
    Ok(())
}

/// Fullscreen from the page's own button: the stage fills the screen and keeps a visible
/// way out inside it; that way out works.
async fn check_fullscreen(on: &OnPage, screen: Screen) -> Result<()> {
    let click = json!({
        "expression": "document.getElementById('fullscreen').click()",
        "userGesture": true,
    });
    on.page.call("Runtime.evaluate", click).await?;
    // The page relabels its button on `fullscreenchange`, a frame after the switch.
    let exit_shown = "document.fullscreenElement?.id === 'stage' && [...document.querySelectorAll('#stage button')] \
        .some(b => /exit/i.test(b.innerText) && b.getClientRects().length > 0)";
    on.page
        .wait_for(exit_shown, CHANGE_TIMEOUT)
        .await
        .context("the fullscreen button did not put the stage in fullscreen with an exit")?;
    let layout = layout(on).await?;
    let mut problems = Problems::default();
    check_common(&layout, &mut problems);
    problems.check(layout.fullscreen.as_deref() == Some("stage"), || "the stage left fullscreen".into());
    let exit = layout.buttons.iter().find(|b| b.text.to_lowercase().contains("exit"));
    match exit {
        Some(exit) => {
            problems.check(exit.rect.inside(&layout.stage) && exit.rect.inside(&layout.viewport), || {
                format!("the exit {:?} is not inside the fullscreen stage {:?}", exit.rect, layout.stage)
            });
            let (x, y) = ((exit.rect.left + exit.rect.right) / 2.0, (exit.rect.top + exit.rect.bottom) / 2.0);
            let on_top =
                on.page.eval(&format!("document.elementFromPoint({x}, {y})?.closest('button')?.id")).await?;
            problems.check(on_top == exit.id.as_str(), || format!("the exit is covered by {on_top}"));
        }
        None => problems.check(false, || "no visible exit control in fullscreen".into()),
    }
    verdict(screen, "fullscreen", &layout, problems);

    on.page.eval("document.getElementById('fullscreen').click()").await?;
    on.page
        .wait_for("!document.fullscreenElement", CHANGE_TIMEOUT)
        .await
        .context("the exit control did not leave fullscreen")?;
    Ok(())
}

/// Every file the page references loads, the favicon included.
async fn check_no_missing_file(on: &OnPage) -> Result<()> {
    let loaded = on
        .page
        .eval(
            r"(async () => {
        const failed = performance.getEntriesByType('navigation')
            .concat(performance.getEntriesByType('resource'))
            .filter(e => e.responseStatus >= 400)
            .map(e => `${e.name}: ${e.responseStatus}`);
        const urls = [...document.querySelectorAll('link[href]')].map(l => l.href)
            .concat([...document.querySelectorAll('script[src]')].map(s => s.src), [location.href]);
        for (const url of urls) {
            const res = await fetch(url, { cache: 'no-store' });
            if (!res.ok) failed.push(`${url}: ${res.status}`);
        }
        const icon = document.querySelector('link[rel~=icon]');
        const res = icon && await fetch(icon.href, { cache: 'no-store' });
        return { failed, icon: icon && icon.getAttribute('href'),
                 iconType: res && res.headers.get('content-type') };
    })()",
        )
        .await?;
    assert_eq!(loaded["failed"], json!([]), "files the page refers to are missing");
    assert_eq!(loaded["icon"], "/favicon.svg", "the page names its favicon");
    assert_eq!(loaded["iconType"], "image/svg+xml", "{loaded}");
    Ok(())
}

/// The robot stops: the reason is shown over the picture, the buttons stay on screen and
/// off the picture, and the picture's centre still takes a double-click.
async fn check_reconnecting(on: OnPage, screen: Screen) -> Result<()> {
    on.daemon.shutdown().await;
    let (page, browser) = (&on.page, on.browser);
    page.wait_for(RECONNECTING, CHANGE_TIMEOUT).await.context("the page did not say it is reconnecting")?;
    let layout: Layout = serde_json::from_value(page.eval(LAYOUT).await?)?;
    let mut problems = Problems::default();
    check_common(&layout, &mut problems);
    match layout.card {
        Some(card) => problems.check(card.inside(&layout.video), || {
            format!("the problem {card:?} is not over the picture {:?}", layout.video)
        }),
        None => problems.check(false, || "no problem is shown".into()),
    }
    problems.check(layout.buttons.iter().any(|b| b.id == "retry"), || "no reconnect button".into());
    verdict(screen, "reconnecting", &layout, problems);
    browser.close().await
}

async fn save_screenshot(page: &Page, name: &str) -> Result<()> {
    if std::env::var_os("ROBOCAST_SCREENSHOTS").is_none_or(|v| v != "1") {
        return Ok(());
    }
    // The stats are live numbers; wait until they are filled in.
    page.wait_for("/^\\d/.test(document.getElementById('stat-fps').textContent)", CHANGE_TIMEOUT).await?;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/screenshots");
    std::fs::create_dir_all(&dir)?;
    page.screenshot(dir.join(name)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_the_picture_fills_the_width_and_the_controls_are_in_reach() -> Result<()> {
    let on = open(PHONE).await?;
    check_layout_playing(&on, PHONE).await?;
    save_screenshot(&on.page, "phone.png").await?;
    check_fullscreen(&on, PHONE).await?;

    emulate(&on.page, PHONE_LANDSCAPE).await?;
    check_layout_playing(&on, PHONE_LANDSCAPE).await?;

    emulate(&on.page, PHONE).await?;
    check_reconnecting(on, PHONE).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_desktop_the_picture_is_large_and_nothing_is_missing() -> Result<()> {
    let on = open(DESKTOP).await?;
    check_layout_playing(&on, DESKTOP).await?;
    check_no_missing_file(&on).await?;
    save_screenshot(&on.page, "desktop.png").await?;
    check_fullscreen(&on, DESKTOP).await?;
    check_reconnecting(on, DESKTOP).await
}

/// The console asked for where it is hidden at first: beside the picture on a desktop, over
/// its lower edge on a phone in landscape; either way the picture's centre stays clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_console_shown_the_layout_still_holds() -> Result<()> {
    let on = open(DESKTOP).await?;
    for screen in [DESKTOP, PHONE_LANDSCAPE] {
        emulate(&on.page, screen).await?;
        let shown = "document.getElementById('console').getClientRects().length > 0";
        if on.page.eval(shown).await? != true {
            on.page.eval("document.getElementById('console-toggle').click()").await?;
        }
        on.page.wait_for(shown, CHANGE_TIMEOUT).await?;
        let layout = layout(&on).await?;
        let mut problems = Problems::default();
        check_common(&layout, &mut problems);
        match layout.console {
            Some(console) if screen.name == "desktop" => problems
                .check(!console.overlaps(&layout.video), || {
                    format!("the console {console:?} covers the picture {:?}", layout.video)
                }),
            Some(_) => {} // over the lower edge; check_common saw the centre clear
            None => problems.check(false, || "the console toggle did not show it".into()),
        }
        verdict(screen, "console shown", &layout, problems);
    }
    on.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_stats_hidden_the_layout_still_holds() -> Result<()> {
    let on = open(PHONE).await?;
    on.page.eval("document.getElementById('stats-toggle').click()").await?;
    let layout = layout(&on).await?;
    let mut problems = Problems::default();
    check_common(&layout, &mut problems);
    problems.check(layout.stats.is_none(), || "the stats toggle did not hide the stats".into());
    verdict(PHONE, "stats hidden", &layout, problems);
    on.close().await
}
