//! Driving the robot from its page, in a real headless Chromium, with a robot program on
//! the control socket (README "Drive the robot"): the page takes the seat with its button,
//! an arrow key reaches the program as a drive command, letting go as a stop, the
//! program's telemetry shows in the page's console, a second viewer sees who drives and
//! is told why it cannot, and hiding (another tab in front) or closing the driving tab
//! tells the program to stop.
//!
//! Nothing here sleeps to let something happen: the test waits for the program's lines
//! and for the page's state, each with a deadline.

mod common;

use std::time::Duration;

use anyhow::{Context as _, Result};
use common::browser::Page;
use common::input::{click, key, type_key};
use common::page::OnPage;
use common::program::{Program, socket_path};
use serde_json::{Value, json};

const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a line from the page may take to reach the program, or the page to show one.
const LINE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connected, and robocast's hello has said who drives.
const READY: &str = "window.robocast?.state === 'connected' \
    && ['nobody', 'other', 'you'].includes(document.getElementById('seat').dataset.seat)";

const DRIVING: &str = "window.robocast.driving \
    && document.getElementById('seat-text').textContent === 'You drive' \
    && document.getElementById('drive').innerText.trim() === 'Release'";

fn is_control(line: &Value, session: &Value, command: &str) -> bool {
    line["type"] == "message"
        && line["channel"] == "control"
        && line["session"] == *session
        && line["data"]["type"] == command
}

fn is_deadman(line: &Value, session: &Value) -> bool {
    line["type"] == "deadman" && line["session"] == *session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_drives_the_robot_and_stops_it_when_hidden_or_closed() -> Result<()> {
    let (socket, _dir) = socket_path();
    let on = OnPage::open(|c| c.control_socket = Some(socket.clone())).await?;
    let (mut robot, _hello) = Program::connect(&socket).await;
    let page = &on.page;
    page.wait_for(READY, START_TIMEOUT).await.context("the page did not connect and learn who drives")?;
    assert_eq!(page.eval("document.getElementById('seat-text').textContent").await?, "Nobody drives");
    let session = page.eval("window.robocast.session").await?;

    // The seat, by its button: robocast tells the program, the page says so.
    click(page, "drive").await?;
    page.wait_for(DRIVING, LINE_TIMEOUT).await.context("Take control did not make this page the driver")?;
    robot.expect(LINE_TIMEOUT, |l| l["type"] == "driver" && l["session"] == session).await;

    // An arrow key drives; letting go stops.
    key(page, "ArrowUp", 38, true).await?;
    let drive = robot.expect(LINE_TIMEOUT, |l| is_control(l, &session, "drive")).await;
    assert_eq!(drive["data"], json!({ "type": "drive", "linear": 1, "angular": 0 }), "{drive}");
    key(page, "ArrowUp", 38, false).await?;
    robot.expect(LINE_TIMEOUT, |l| is_control(l, &session, "stop")).await;

    // The program's telemetry, in the console the `l` key shows.
    robot.send(&json!({ "to": "all", "channel": "state", "data": { "battery": 0.5 } })).await;
    type_key(page, 'l').await?;
    page.wait_for(
        "document.getElementById('console').getClientRects().length > 0 \
         && [...document.querySelectorAll('#log li')].some(li => li.textContent.includes('{\"battery\":0.5}'))",
        LINE_TIMEOUT,
    )
    .await
    .context("the robot's telemetry is not in the page's console")?;

    // A second viewer, in a new tab: the driver's tab is hidden, which the program hears
    // at once; the seat is kept. The new tab sees who drives, and is told why it cannot.
    let other = on.browser.new_page(&format!("http://{}/", on.daemon.local_addr())).await?;
    let deadman = robot.expect(LINE_TIMEOUT, |l| is_deadman(l, &session)).await;
    assert_eq!(deadman["reason"], "hidden", "{deadman}");
    other.wait_for(READY, START_TIMEOUT).await.context("the second page did not connect")?;
    let prefix = session.as_str().context("the session id is not a string")?[..6].to_owned();
    let seat = other.eval("document.getElementById('seat-text').textContent").await?;
    assert_eq!(seat, format!("{prefix} drives").as_str(), "the second page's seat");
    click(&other, "drive").await?;
    other
        .wait_for(
            &format!(
                "!document.getElementById('notice').hidden \
                 && document.getElementById('notice').textContent.includes('{prefix}')"
            ),
            LINE_TIMEOUT,
        )
        .await
        .context("the second page did not say who holds the seat")?;
    assert_eq!(other.eval("window.robocast.driving").await?, false);
    other.close().await?;

    // Back to the driver's tab: it still drives.
    page.call("Page.bringToFront", json!({})).await?;
    page.wait_for("document.visibilityState === 'visible'", LINE_TIMEOUT).await?;
    page.wait_for(DRIVING, LINE_TIMEOUT).await.context("the seat was not kept through a hidden tab")?;
    key(page, "ArrowLeft", 37, true).await?;
    let turn = robot.expect(LINE_TIMEOUT, |l| is_control(l, &session, "drive")).await;
    assert_eq!(turn["data"], json!({ "type": "drive", "linear": 0, "angular": 1 }), "{turn}");

    // Closed while driving: the program hears it.
    page.call("Page.close", json!({})).await?;
    let deadman = robot.expect(LINE_TIMEOUT, |l| is_deadman(l, &session)).await;
    assert!(
        ["hidden", "channel closed", "ended", "link"].contains(&deadman["reason"].as_str().unwrap_or("")),
        "{deadman}"
    );
    on.close().await
}

/// What `send()` promises, in the page: a message on `state` reaches the program and its
/// promise resolves; one that cannot go says why (an unknown channel, over 16 KiB, a
/// `control` command replaced by a newer one before its channel opened, a closed client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_delivers_or_says_why_not() -> Result<()> {
    let (socket, _dir) = socket_path();
    let on = OnPage::open(|c| c.control_socket = Some(socket.clone())).await?;
    let (mut robot, _hello) = Program::connect(&socket).await;
    on.page.wait_for(READY, START_TIMEOUT).await.context("the page did not connect")?;

    let outcomes = on
        .page
        .eval(
            r"(async () => {
        const outcome = (promise) => promise.then(() => 'sent', (err) => err.message);
        const page = window.robocast;
        const { RobocastClient } = await import('/robocast.js');
        const fresh = new RobocastClient({ closeOnPageHide: false });
        fresh.connect().catch(() => {});
        // Both wait for the new connection's `control` channel; only the newer may go.
        const older = outcome(fresh.send('control', { type: 'drive', linear: 0.1, angular: 0 }));
        const newer = outcome(fresh.send('control', { type: 'stop' }));
        const result = {
            state: await outcome(page.send('state', { hello: 'robot' })),
            unknown: await outcome(page.send('nonexistent', {})),
            large: await outcome(page.send('state', 'x'.repeat(17 * 1024))),
            older: await older,
            newer: await newer,
        };
        fresh.close();
        result.closed = await outcome(fresh.send('state', {}));
        return result;
    })()",
        )
        .await?;
    assert_eq!(outcomes["state"], "sent", "{outcomes:#}");
    assert_eq!(outcomes["newer"], "sent", "{outcomes:#}");
    for (case, says) in [
        ("unknown", "never opened"),
        ("large", "16 KiB"),
        ("older", "replaced by a newer command"),
        ("closed", "not connected"),
    ] {
        let message = outcomes[case].as_str().unwrap_or_default();
        assert!(message.contains(says), "{case}: {message:?} does not say {says:?}; {outcomes:#}");
    }
    let session = on.page.eval("window.robocast.session").await?;
    let line = robot
        .expect(LINE_TIMEOUT, |l| {
            l["type"] == "message" && l["channel"] == "state" && l["session"] == session
        })
        .await;
    assert_eq!(line["data"], json!({ "hello": "robot" }), "{line}");
    on.close().await
}

/// On a touch screen the page shows a joystick while it drives, under the picture, and
/// pushing it drives. A gamepad's stick drives too; no gamepad can be plugged in here, so
/// that half hands the page's `gamepad()` helper a stand-in through `getGamepads()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touch_joystick_and_a_gamepad_drive_too() -> Result<()> {
    let (socket, _dir) = socket_path();
    let phone = async |page: &Page| {
        page.call("Emulation.setTouchEmulationEnabled", json!({ "enabled": true, "maxTouchPoints": 5 }))
            .await?;
        let metrics = json!({ "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true });
        page.call("Emulation.setDeviceMetricsOverride", metrics).await?;
        Ok(())
    };
    let on = OnPage::open_prepared(|c| c.control_socket = Some(socket.clone()), phone).await?;
    let (mut robot, _hello) = Program::connect(&socket).await;
    let page = &on.page;
    page.wait_for(READY, START_TIMEOUT).await.context("the page did not connect")?;
    assert_eq!(
        page.eval("document.getElementById('joystick').hidden").await?,
        true,
        "a joystick before driving"
    );
    click(page, "drive").await?;
    page.wait_for(DRIVING, LINE_TIMEOUT).await.context("Take control did not make this page the driver")?;
    let session = page.eval("window.robocast.session").await?;

    // Shown, on screen, off the picture and the buttons.
    let placed = page
        .wait_for(
            r"(() => {
        const pad = document.getElementById('joystick');
        if (pad.hidden) return null;
        const r = pad.getBoundingClientRect(), v = document.getElementById('video').getBoundingClientRect();
        const apart = (b) => r.right <= b.left || b.right <= r.left || r.bottom <= b.top || b.bottom <= r.top;
        return { inside: r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight,
                 offPicture: apart(v),
                 offButtons: [...document.querySelectorAll('button')].every(b => apart(b.getBoundingClientRect())),
                 x: r.left + r.width / 2, top: r.top };
    })()",
            LINE_TIMEOUT,
        )
        .await
        .context("no joystick while driving on a touch screen")?;
    for check in ["inside", "offPicture", "offButtons"] {
        assert_eq!(placed[check], true, "{check}: {placed}");
    }

    // A finger near the top edge: forward, nearly full speed, no turn; lifting it stops.
    let (x, top) = (placed["x"].as_f64().context("x")?, placed["top"].as_f64().context("top")?);
    let touch = |kind: &str, points: Value| json!({ "type": kind, "touchPoints": points });
    page.call("Input.dispatchTouchEvent", touch("touchStart", json!([{ "x": x, "y": top + 4.0 }]))).await?;
    let drive = robot.expect(LINE_TIMEOUT, |l| is_control(l, &session, "drive")).await;
    let (linear, angular) = (drive["data"]["linear"].as_f64(), drive["data"]["angular"].as_f64());
    assert!(linear.is_some_and(|l| l > 0.8) && angular.is_some_and(|a| a.abs() < 0.1), "{drive}");
    page.call("Input.dispatchTouchEvent", touch("touchEnd", json!([]))).await?;
    robot.expect(LINE_TIMEOUT, |l| is_control(l, &session, "stop")).await;

    // A stand-in gamepad, its left stick pushed fully left: turn left on the spot.
    page.eval(
        r"(() => {
        const pad = { id: 'stand-in', index: 0, connected: true, mapping: 'standard', axes: [-1, 0, 0, 0],
                      buttons: Array.from({ length: 17 }, () => ({ pressed: false, touched: false, value: 0 })) };
        navigator.getGamepads = () => [pad];
        window.dispatchEvent(new Event('gamepadconnected'));
    })()",
    )
    .await?;
    let turn = robot.expect(LINE_TIMEOUT, |l| is_control(l, &session, "drive")).await;
    assert_eq!(turn["data"], json!({ "type": "drive", "linear": 0, "angular": 1 }), "{turn}");
    page.eval("navigator.getGamepads()[0].axes[0] = 0.05").await?; // inside the dead zone
    robot.expect(LINE_TIMEOUT, |l| is_control(l, &session, "stop")).await;
    on.close().await
}
