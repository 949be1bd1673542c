// `tests/common` is compiled into every test binary and most of them never start a browser.
#![allow(dead_code)]
//! A small Chrome DevTools Protocol driver, so tests can load the robot page in a real
//! headless Chromium and read back what it plays.
//!
//! Why our own: the part of CDP these tests need is a few JSON calls over one websocket,
//! while WebDriver needs chromedriver and a crate's worth of moving parts. The browser is
//! always the Debian `chromium` package (or `ROBOCAST_CHROMIUM`); nothing here downloads one.
//!
//! One reader task answers calls by `id` and hands events to whoever subscribed to them
//! (only the screencast does); waiting on the page is done by polling a JavaScript
//! condition ([`Page::wait_for`]). Every call has a deadline, so a hung browser fails the
//! test instead of hanging CI.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);
/// How long any single CDP call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Headless, no GPU, fake camera and microphone, and quiet: without the background
/// networking flags Chromium keeps trying to reach Google's services.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--remote-debugging-port=0",
];

/// A running headless Chromium with a fresh profile. Dropping it kills the browser and
/// removes the profile.
pub struct Browser {
    conn: Arc<Connection>,
    process: Process,
}

/// One tab, attached through a flattened CDP session.
pub struct Page {
    conn: Arc<Connection>,
    session_id: String,
    target_id: String,
}

impl Browser {
    /// Starts Chromium and connects to its DevTools endpoint.
    pub async fn launch() -> Result<Browser> {
        Browser::launch_with(&[]).await
    }

    /// [`Browser::launch`] with flags of the test's own (e.g. a certificate to trust).
    pub async fn launch_with(extra: &[String]) -> Result<Browser> {
        Browser::launch_via(&[], extra, async |_| Ok(()), |endpoint| endpoint).await
    }

    /// [`Browser::launch_with`] started through `prefix` (a program that ends by running
    /// the Chromium command it is given, e.g. `unshare --net sh -c '... exec "$0" "$@"'`),
    /// with `setup` run on the prefix's process id before DevTools is awaited (e.g. to
    /// give its network namespace a link), and the DevTools address Chromium prints
    /// mapped through `reach` (e.g. to a relay into that namespace).
    pub async fn launch_via(
        prefix: &[String],
        extra: &[String],
        setup: impl AsyncFnOnce(u32) -> Result<()>,
        reach: impl FnOnce(String) -> String,
    ) -> Result<Browser> {
        let exe = std::env::var_os("ROBOCAST_CHROMIUM")
            .map_or_else(|| PathBuf::from(DEFAULT_CHROMIUM), PathBuf::from);
        if !exe.exists() {
            bail!(
                "{} not found: install the Debian package chromium (make setup does it), \
                 or point ROBOCAST_CHROMIUM at a Chromium binary",
                exe.display()
            );
        }
        let profile = ProfileDir::create()?;
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&exe);
                command
            }
            None => Command::new(&exe),
        };
        let mut child = command
            .args(FLAGS)
            .args(extra)
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let stderr = child.stderr.take().context("chromium's stderr is not piped")?;
        let pid = child.id().context("chromium exited at once")?;
        let mut process = Process { child, tasks: Vec::new(), profile };
        setup(pid).await?;

        let (endpoint, mut stderr) = devtools_endpoint(stderr, &mut process.child).await?;
        let endpoint = reach(endpoint);
        // Keep draining stderr so Chromium never blocks on a full pipe.
        process.tasks.push(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        }));

        let (ws, _) = tokio::time::timeout(CALL_TIMEOUT, tokio_tungstenite::connect_async(&endpoint))
            .await
            .map_err(|_| anyhow!("connecting to {endpoint} timed out"))?
            .with_context(|| format!("connecting to {endpoint}"))?;
        let (mut sink, mut stream) = ws.split();
        let (outgoing, mut to_send) = mpsc::unbounded_channel::<String>();
        let conn = Arc::new(Connection {
            next_id: AtomicU64::new(1),
            outgoing,
            pending: Mutex::default(),
            events: Mutex::default(),
        });
        process.tasks.push(tokio::spawn(async move {
            while let Some(text) = to_send.recv().await {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
        }));
        let reader = Arc::clone(&conn);
        process.tasks.push(tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Text(text) = message {
                    reader.dispatch(text.as_str());
                }
            }
            reader.fail_all("the browser closed the DevTools connection");
        }));

        Ok(Browser { conn, process })
    }

    /// Opens a new tab on `url` and waits until the page has loaded, so the first
    /// [`Page::eval`] sees its document and a load failure is reported here.
    pub async fn new_page(&self, url: &str) -> Result<Page> {
        // `Target.createTarget {url}` would answer before the page exists; `Page.navigate`
        // answers once the new document is committed, and says why a load failed.
        let created = self.conn.call("Target.createTarget", json!({ "url": "about:blank" }), None).await?;
        let target_id = str_field(&created, "targetId")?;
        let attached = self
            .conn
            .call("Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }), None)
            .await?;
        let page =
            Page { conn: Arc::clone(&self.conn), session_id: str_field(&attached, "sessionId")?, target_id };
        let navigated = page.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(error) = navigated.get("errorText").and_then(Value::as_str) {
            bail!("loading {url} failed: {error}");
        }
        // Committed is not parsed: the document may still be `loading`.
        page.wait_for("document.readyState === 'complete'", CALL_TIMEOUT)
            .await
            .with_context(|| format!("loading {url}"))?;
        Ok(page)
    }

    /// Asks Chromium to quit and waits for it. Dropping a `Browser` kills it instead, which
    /// orphans its helper processes for a moment; closing lets Chromium reap them itself.
    pub async fn close(mut self) -> Result<()> {
        // Chromium may drop the connection before it answers; the exit below is what counts.
        let _ = self.conn.call("Browser.close", json!({}), None).await;
        match tokio::time::timeout(CALL_TIMEOUT, self.process.child.wait()).await {
            Ok(exited) => exited.map(drop).context("waiting for chromium to exit"),
            Err(_) => bail!("chromium did not exit within {CALL_TIMEOUT:?} of Browser.close"),
        }
    }

    /// Sends a browser-level CDP command.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.conn.call(method, params, None).await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.conn.fail_all("the browser was shut down");
    }
}

impl Page {
    /// Evaluates `js` in the page, awaiting it if it is a promise, and returns its value as
    /// JSON (`undefined` becomes `null`). A JavaScript exception becomes an error.
    pub async fn eval(&self, js: &str) -> Result<Value> {
        self.evaluate(js).await?.map_err(|error| anyhow!("{error}\n  evaluating: {}", shorten(js)))
    }

    /// Evaluates `js_condition` every 100 ms until its value is truthy and returns it.
    /// Exceptions count as "not yet" (the page may still be loading); on timeout the error
    /// carries the last value or exception.
    pub async fn wait_for(&self, js_condition: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.evaluate(js_condition).await? {
                Ok(value) if truthy(&value) => return Ok(value),
                last => last,
            };
            if Instant::now() >= deadline {
                let last = match last {
                    Ok(value) => format!("value {value}"),
                    Err(error) => format!("exception {error}"),
                };
                bail!("timed out after {timeout:?} waiting for `{}`; last {last}", shorten(js_condition));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Saves a PNG of the visible page.
    pub async fn screenshot(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" })).await?;
        let png = decode_base64(&str_field(&shot, "data")?)?;
        tokio::fs::write(path, png).await.with_context(|| format!("writing {}", path.display()))
    }

    /// Starts `Page.startScreencast` with `params` (format, maxWidth, ...). Chromium sends
    /// no further frame until the last is acknowledged, so each is acknowledged as it
    /// arrives and kept, undecoded, until [`Screencast::stop`].
    pub async fn start_screencast(&self, params: Value) -> Result<Screencast> {
        let mut frames = self.conn.subscribe(&self.session_id, SCREENCAST_FRAME);
        self.call("Page.startScreencast", params).await?;
        let (conn, session) = (Arc::clone(&self.conn), self.session_id.clone());
        let task = tokio::spawn(async move {
            let mut kept = Vec::new();
            while let Some(frame) = frames.recv().await {
                let ack = json!({ "sessionId": frame["sessionId"] });
                if conn.call("Page.screencastFrameAck", ack, Some(&session)).await.is_err() {
                    break;
                }
                kept.push(frame);
            }
            kept
        });
        Ok(Screencast { conn: Arc::clone(&self.conn), session_id: self.session_id.clone(), task })
    }

    /// Sends a CDP command to this page's session.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.conn.call(method, params, Some(&self.session_id)).await
    }

    /// Closes the tab.
    pub async fn close(self) -> Result<()> {
        self.conn.call("Target.closeTarget", json!({ "targetId": self.target_id }), None).await?;
        Ok(())
    }

    /// The outer error is the browser failing; the inner one is the page's JavaScript
    /// (or CDP refusing the evaluation, as while a navigation replaces the document).
    async fn evaluate(&self, js: &str) -> Result<Result<Value, String>> {
        let params = json!({ "expression": js, "awaitPromise": true, "returnByValue": true });
        let answer = match self.conn.call_raw("Runtime.evaluate", params, Some(&self.session_id)).await? {
            Ok(answer) => answer,
            Err(refused) => return Ok(Err(format!("Runtime.evaluate refused: {refused}"))),
        };
        if let Some(details) = answer.get("exceptionDetails") {
            return Ok(Err(exception_text(details)));
        }
        Ok(Ok(remote_value(&answer["result"])))
    }
}

const SCREENCAST_FRAME: &str = "Page.screencastFrame";

/// A running screencast of one page (see [`Page::start_screencast`]).
pub struct Screencast {
    conn: Arc<Connection>,
    session_id: String,
    task: JoinHandle<Vec<Value>>,
}

/// One picture of a page's composited output.
pub struct ScreencastFrame {
    /// The image, in the format the screencast was started with.
    pub image: Vec<u8>,
    /// The frame's `metadata.timestamp`: Unix time in seconds. (Chromium gives the
    /// compositor's display time for the frame, on its refresh grid; BENCHMARKS.md.)
    pub timestamp: f64,
    /// Width of the page in CSS pixels; the image is this, scaled to the asked size.
    pub device_width: f64,
}

impl Screencast {
    /// Stops the screencast and returns every frame it sent, oldest first.
    pub async fn stop(self) -> Result<Vec<ScreencastFrame>> {
        let stopped = self.conn.call("Page.stopScreencast", json!({}), Some(&self.session_id)).await;
        // Ending the subscription ends the acknowledging task, once it has what was sent.
        self.conn.unsubscribe(&self.session_id, SCREENCAST_FRAME);
        let events = self.task.await.context("the screencast task failed")?;
        stopped?;
        events
            .iter()
            .map(|event| {
                let metadata = &event["metadata"];
                let number = |name: &str| {
                    metadata[name].as_f64().with_context(|| format!("no `{name}` in screencast metadata"))
                };
                Ok(ScreencastFrame {
                    image: decode_base64(&str_field(event, "data")?)?,
                    timestamp: number("timestamp")?,
                    device_width: number("deviceWidth")?,
                })
            })
            .collect()
    }
}

/// The websocket to the browser, shared by the browser and its pages.
struct Connection {
    next_id: AtomicU64,
    outgoing: mpsc::UnboundedSender<String>,
    /// A std Mutex: it is held only to insert or take one entry, never across an await.
    pending: Mutex<Pending>,
    /// Where events go: `params` of each, by (session id, method). Others are dropped.
    events: Mutex<HashMap<(String, String), mpsc::UnboundedSender<Value>>>,
}

#[derive(Default)]
struct Pending {
    replies: HashMap<u64, oneshot::Sender<Reply>>,
    /// Set once the connection is gone: new calls fail at once instead of timing out.
    closed: Option<&'static str>,
}

/// A CDP answer: its `result`, or the browser's error message.
type Reply = Result<Value, String>;

impl Connection {
    async fn call(&self, method: &str, params: Value, session: Option<&str>) -> Result<Value> {
        self.call_raw(method, params, session).await?.map_err(|error| anyhow!("{method} failed: {error}"))
    }

    async fn call_raw(&self, method: &str, params: Value, session: Option<&str>) -> Result<Reply> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply_tx, reply_rx) = oneshot::channel();
        {
            let mut pending = self.pending();
            if let Some(why) = pending.closed {
                bail!("{method}: {why}");
            }
            pending.replies.insert(id, reply_tx);
        }
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = session.into();
        }
        if self.outgoing.send(message.to_string()).is_err() {
            self.pending().replies.remove(&id);
            bail!("{method}: the DevTools connection is closed");
        }
        match tokio::time::timeout(CALL_TIMEOUT, reply_rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => bail!("{method}: the DevTools connection closed before answering"),
            Err(_) => {
                self.pending().replies.remove(&id);
                bail!("{method}: no answer from the browser within {CALL_TIMEOUT:?}")
            }
        }
    }

    fn subscribe(&self, session: &str, method: &str) -> mpsc::UnboundedReceiver<Value> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        self.events().insert((session.to_owned(), method.to_owned()), events_tx);
        events_rx
    }

    fn unsubscribe(&self, session: &str, method: &str) {
        self.events().remove(&(session.to_owned(), method.to_owned()));
    }

    /// Routes one message from the browser to the call waiting for it, or an event to its
    /// subscriber.
    fn dispatch(&self, text: &str) {
        let Ok(mut message) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let Some(id) = message.get("id").and_then(Value::as_u64) else {
            let (Some(method), Some(session)) = (message["method"].as_str(), message["sessionId"].as_str())
            else {
                return;
            };
            if let Some(events_tx) = self.events().get(&(session.to_owned(), method.to_owned())) {
                let _ = events_tx.send(message["params"].take());
            }
            return;
        };
        let Some(reply_tx) = self.pending().replies.remove(&id) else {
            return;
        };
        let reply = match message.get("error") {
            Some(error) => Err(match error.get("data").and_then(Value::as_str) {
                Some(data) => format!("{} ({data})", error["message"]),
                None => error["message"].to_string(),
            }),
            None => Ok(message["result"].take()),
        };
        let _ = reply_tx.send(reply);
    }

    /// Answers every waiting call with an error and refuses new ones.
    fn fail_all(&self, why: &'static str) {
        // Subscribers see their events end.
        self.events().clear();
        let mut pending = self.pending();
        pending.closed.get_or_insert(why);
        for (_, reply_tx) in pending.replies.drain() {
            let _ = reply_tx.send(Err(why.to_owned()));
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn events(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), mpsc::UnboundedSender<Value>>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The Chromium process and everything that must die with it. The profile directory is the
/// last field so it is removed after the browser has exited.
struct Process {
    child: Child,
    tasks: Vec<JoinHandle<()>>,
    profile: ProfileDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if self.child.start_kill().is_ok() {
            // Reap it before the profile goes away, or Chromium may still be writing to it.
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// A fresh `--user-data-dir`, removed on drop.
struct ProfileDir(PathBuf);

impl ProfileDir {
    fn create() -> Result<ProfileDir> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "robocast-chromium-{}-{}-{nanos}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path)
            .with_context(|| format!("creating the browser profile {}", path.display()))?;
        Ok(ProfileDir(path))
    }
}

impl Drop for ProfileDir {
    fn drop(&mut self) {
        // Chromium's helper processes can outlive the main one by a moment.
        for _ in 0..10 {
            if std::fs::remove_dir_all(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Reads Chromium's stderr until it prints `DevTools listening on ws://...`. Returns the
/// address and the rest of stderr.
async fn devtools_endpoint(
    stderr: ChildStderr,
    child: &mut Child,
) -> Result<(String, BufReader<ChildStderr>)> {
    const MARK: &str = "DevTools listening on ";
    let mut stderr = BufReader::new(stderr);
    let mut seen = String::new();
    let read = async {
        let mut line = Vec::new();
        loop {
            line.clear();
            if stderr.read_until(b'\n', &mut line).await? == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            let text = String::from_utf8_lossy(&line);
            if let Some(at) = text.find(MARK) {
                return Ok(Some(text[at + MARK.len()..].trim().to_owned()));
            }
            seen.push_str(&text);
        }
    };
    match tokio::time::timeout(LAUNCH_TIMEOUT, read).await {
        Ok(Ok(Some(endpoint))) => Ok((endpoint, stderr)),
        Ok(Ok(None)) => {
            let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            let status = match status {
                Ok(Ok(status)) => status.to_string(),
                _ => "unknown status".to_owned(),
            };
            bail!("chromium exited ({status}) before DevTools was ready; its stderr:\n{seen}")
        }
        Ok(Err(error)) => Err(error).context("reading chromium's stderr"),
        Err(_) => bail!(
            "chromium did not print its DevTools address within {LAUNCH_TIMEOUT:?}; \
             its stderr so far:\n{seen}"
        ),
    }
}

fn str_field(value: &Value, name: &str) -> Result<String> {
    value
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no `{name}` in the browser's answer {value}"))
}

/// JSON for a CDP `RemoteObject` returned by value.
fn remote_value(object: &Value) -> Value {
    if let Some(value) = object.get("value") {
        return value.clone();
    }
    match object.get("unserializableValue").and_then(Value::as_str) {
        Some("-0") => json!(0),
        Some("NaN") | None => Value::Null,
        // Infinity, -Infinity and BigInts have no JSON number.
        Some(other) => Value::String(other.to_owned()),
    }
}

fn exception_text(details: &Value) -> String {
    let text = details["text"].as_str().unwrap_or("exception");
    let exception = &details["exception"];
    match exception.get("description").and_then(Value::as_str) {
        // A rejected promise's text already carries the description's first line.
        Some(description) => match description.lines().next() {
            Some(first) if !first.is_empty() && text.ends_with(first) => {
                format!("{text}{}", &description[first.len()..])
            }
            _ => format!("{text} {description}"),
        },
        None => match exception.get("value") {
            Some(value) => format!("{text} {value}"),
            None => text.to_owned(),
        },
    }
}

/// JavaScript's idea of truthy, for values that came through JSON.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn shorten(js: &str) -> String {
    const MAX: usize = 200;
    match js.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &js[..at]),
        None => js.to_owned(),
    }
}

/// Standard base64 with padding, as CDP sends images.
fn decode_base64(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut count) = (0u32, 0u32);
    for byte in text.bytes() {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => bail!("image data is not base64 (byte {byte:#04x})"),
        };
        bits = ((bits << 6) | u32::from(sextet)) & 0xff_ffff;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Ok(out)
}

/// Two snapshots of a page's `getStats()` taken `window` apart, and what they say about
/// playback. The snapshot script reports `at` (ms), `video.framesDecoded`,
/// `video.frameWidth`/`frameHeight` and `audio.packetsReceived`.
pub struct Playback {
    pub before: Value,
    pub after: Value,
    pub seconds: f64,
    pub fps: f64,
    /// The decoded frames' width and height.
    pub size: [Option<u64>; 2],
    pub audio_packets: f64,
}

impl Playback {
    pub async fn measure(page: &Page, snapshot: &str, window: Duration) -> Result<Playback> {
        let before = page.eval(snapshot).await?;
        tokio::time::sleep(window).await;
        let after = page.eval(snapshot).await?;
        let delta = |at: &str| number(&after, at) - number(&before, at);
        let seconds = delta("/at") / 1000.0;
        let fps = delta("/video/framesDecoded") / seconds;
        let audio_packets = delta("/audio/packetsReceived");
        let size =
            ["/video/frameWidth", "/video/frameHeight"].map(|at| after.pointer(at).and_then(Value::as_u64));
        Ok(Playback { before, after, seconds, fps, size, audio_packets })
    }
}

/// NaN when absent, so a missing report fails the comparisons that use it.
pub fn number(snapshot: &Value, at: &str) -> f64 {
    snapshot.pointer(at).and_then(Value::as_f64).unwrap_or(f64::NAN)
}
