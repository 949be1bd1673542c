//! robocast as a child process, and the raw HTTP/1.1 client the load and the checks use:
//! one request per connection, the bytes exactly as given, whatever comes back.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::{START_TIMEOUT, inputs, lock};

/// Longer than any honest request takes (an answer waits at most 500 ms for ICE).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a request got back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Outcome {
    Status(u16),
    /// The connection closed without an HTTP response (normal for malformed HTTP).
    NoResponse,
    /// Nothing came back within [`REQUEST_TIMEOUT`].
    Timeout,
    /// robocast did not accept the connection.
    Refused,
}

impl Outcome {
    pub(crate) fn is_finding(self) -> bool {
        matches!(self, Outcome::Status(500..) | Outcome::Timeout | Outcome::Refused)
    }

    pub(crate) fn is_success(self) -> bool {
        matches!(self, Outcome::Status(200..=299))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Status(code) => write!(f, "{code}"),
            Outcome::NoResponse => f.write_str("closed without response"),
            Outcome::Timeout => f.write_str("timeout"),
            Outcome::Refused => f.write_str("refused"),
        }
    }
}

/// Sends `bytes` on a fresh connection and reads the response (or what there is of it).
pub(crate) async fn exchange(addr: SocketAddr, bytes: &[u8], half_close: bool) -> (Outcome, Vec<u8>) {
    let attempt = async {
        let Ok(mut stream) = TcpStream::connect(addr).await else { return (Outcome::Refused, Vec::new()) };
        // robocast may answer (413, 431) and close before it has read everything.
        let _ = stream.write_all(bytes).await;
        if half_close {
            let _ = stream.shutdown().await;
        }
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = stream.read(&mut buf).await {
            raw.extend_from_slice(&buf[..n]);
            if n == 0 || complete(&raw) {
                break;
            }
        }
        let status = raw
            .get(9..12)
            .filter(|_| raw.starts_with(b"HTTP/1."))
            .and_then(|code| std::str::from_utf8(code).ok()?.parse().ok());
        (status.map_or(Outcome::NoResponse, Outcome::Status), raw)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, attempt).await.unwrap_or((Outcome::Timeout, Vec::new()))
}

pub(crate) fn head_and_body(raw: &[u8]) -> Option<(&str, &[u8])> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((std::str::from_utf8(&raw[..end]).ok()?, &raw[end + 4..]))
}

pub(crate) fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// A whole response with a `Content-Length` has arrived (others end when robocast closes).
fn complete(raw: &[u8]) -> bool {
    let Some((head, body)) = head_and_body(raw) else { return false };
    header(head, "content-length").and_then(|n| n.parse::<usize>().ok()).is_some_and(|n| body.len() >= n)
}

/// The benchmark's own requests (the session list, ending its viewers) carry the
/// operator's token; the hostile load does not.
pub(crate) fn as_operator(method: &str, path: &str) -> Vec<u8> {
    let bearer = format!("Bearer {}", crate::common::OPERATOR_TOKEN);
    inputs::request(method, path, &[("Authorization", &bearer)], b"")
}

pub(crate) async fn get_json(addr: SocketAddr, path: &str) -> Result<serde_json::Value> {
    let (outcome, raw) = exchange(addr, &as_operator("GET", path), false).await;
    let (_, body) = head_and_body(&raw).with_context(|| format!("GET {path}: {outcome}"))?;
    serde_json::from_slice(body).with_context(|| format!("GET {path}: the body is not JSON"))
}

pub(crate) async fn session_ids(addr: SocketAddr) -> Result<HashSet<String>> {
    let sessions = get_json(addr, "/api/sessions").await?;
    let list = sessions["sessions"].as_array().context("no `sessions` in /api/sessions")?;
    Ok(list.iter().filter_map(|s| s["id"].as_str().map(str::to_owned)).collect())
}

/// The session id at the end of a `Location` (`/whep/<id>`, `/api/sessions/<id>`).
pub(crate) fn id_of(location: &str) -> String {
    location.rsplit('/').next().unwrap_or_default().to_owned()
}

/// robocast as a child process (possibly under a wrapper); killed on drop.
pub(crate) struct Daemon {
    child: Child,
    /// robocast's own process (the child's descendant when wrapped).
    pub(crate) pid: u32,
    pub(crate) addr: SocketAddr,
    /// ERROR and WARN lines of its log, normalised, with counts.
    pub(crate) log: Arc<Mutex<HashMap<String, u64>>>,
}

impl Daemon {
    pub(crate) async fn start() -> Result<Daemon> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let binary =
            std::env::var("ROBOCAST_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_robocast").into());
        let wrap = std::env::var("ROBOCAST_BENCH_WRAP").unwrap_or_default();
        let mut words = wrap.split_whitespace().chain([binary.as_str()]);
        let mut command = Command::new(words.next().context("no robocast binary")?);
        command.args(words);
        for (name, _) in std::env::vars() {
            if name.starts_with("ROBOCAST_") && name != "ROBOCAST_LOG" {
                command.env_remove(name);
            }
        }
        let log = std::env::var("ROBOCAST_LOG")
            .unwrap_or_else(|_| "warn,webrtc=error,webrtc_ice=error,webrtc_dtls=error".into());
        let listen = addr.to_string();
        command
            .args(["--video", "test", "--audio", "test", "--size", "640x360", "--fps", "30"])
            .args(["--listen", &listen, "--max-viewers", "16"])
            .args(["--operator-token", crate::common::OPERATOR_TOKEN])
            // The worst case: every hostile request reaches the code that parses it. With
            // the default per-address limits most offers would bounce off a 429 after the
            // first 20 (tests/limits.rs checks those limits).
            .args(["--offers-per-minute", "0", "--max-sessions-per-address", "16"])
            .env("ROBOCAST_LOG", log)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().with_context(|| format!("starting {binary}"))?;
        let lines = Arc::new(Mutex::new(HashMap::new()));
        if let Some(stderr) = child.stderr.take() {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || collect_log(stderr, &lines));
        }
        let name: String = binary.rsplit('/').next().unwrap_or("robocast").chars().take(15).collect();
        let mut daemon = Daemon { pid: child.id(), child, addr, log: lines };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = daemon.child.try_wait()? {
                bail!("robocast exited during start-up ({status})");
            }
            if !wrap.is_empty() {
                daemon.pid = descendant(daemon.child.id(), &name).unwrap_or(daemon.child.id());
            }
            if exchange(addr, &inputs::request("GET", "/healthz", &[], b""), false).await.0
                == Outcome::Status(200)
            {
                return Ok(daemon);
            }
            if Instant::now() > deadline {
                bail!("robocast did not answer /healthz within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn exit_status(&mut self) -> String {
        match self.child.try_wait() {
            Ok(None) => "was still running".into(),
            Ok(Some(status)) => format!("**had exited** ({status})"),
            Err(e) => format!("could not be checked ({e})"),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.pid != self.child.id() {
            // A wrapper (a profiler) writes its results once robocast is gone.
            let _ = Command::new("kill").args(["-KILL", &self.pid.to_string()]).status();
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The first process below `parent` whose name is `name`.
fn descendant(parent: u32, name: &str) -> Option<u32> {
    let mut children: HashMap<u32, Vec<(u32, String)>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let ppid = stat[close + 1..].split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if let Some(ppid) = ppid {
            children.entry(ppid).or_default().push((pid, stat[open + 1..close].to_owned()));
        }
    }
    let mut queue = VecDeque::from([parent]);
    while let Some(pid) = queue.pop_front() {
        for (child, comm) in children.get(&pid).into_iter().flatten() {
            if comm == name {
                return Some(*child);
            }
            queue.push_back(*child);
        }
    }
    None
}

/// Counts robocast's ERROR and WARN lines, without timestamps and with ids elided.
fn collect_log(stderr: std::process::ChildStderr, lines: &Mutex<HashMap<String, u64>>) {
    let mut reader = std::io::BufReader::new(stderr);
    let mut raw = Vec::new();
    while reader.read_until(b'\n', &mut raw).is_ok_and(|n| n > 0) {
        let line = String::from_utf8_lossy(&raw).trim().to_owned();
        raw.clear();
        if !(line.contains("ERROR") || line.contains("WARN")) {
            continue;
        }
        let line = line.split_once(' ').filter(|(t, _)| t.starts_with(|c: char| c.is_ascii_digit()));
        let Some((_, text)) = line else { continue };
        let mut elided = String::new();
        for word in text.split_inclusive(|c: char| !c.is_ascii_hexdigit()) {
            let hex = word.trim_end_matches(|c: char| !c.is_ascii_hexdigit());
            if hex.len() >= 8 {
                elided.push_str("<id>");
                elided.push_str(&word[hex.len()..]);
            } else {
                elided.push_str(word);
            }
        }
        *lock(lines).entry(elided.trim().chars().take(240).collect()).or_default() += 1;
    }
}

/// `VmRSS` and `RssAnon` in KiB.
pub(crate) fn rss_of(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status.lines().find_map(|l| l.strip_prefix(name)).with_context(|| format!("no {name}"))?;
        Ok(line.trim().trim_end_matches("kB").trim().parse()?)
    };
    Ok((field("VmRSS:")?, field("RssAnon:")?))
}
