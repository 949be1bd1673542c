//! A robot program on robocast's control socket: JSON lines in, JSON lines out.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

pub struct Program {
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
    /// Every line read so far, for failure messages.
    pub seen: Vec<String>,
}

/// A fresh socket path in a directory of its own (removed with the returned guard).
pub fn socket_path() -> (PathBuf, TempDir) {
    let dir = std::env::temp_dir().join(format!("robocast-test-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    (dir.join("control.sock"), TempDir(dir))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Removes its directory when dropped.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Program {
    /// Connects and reads the `hello` line; returns it too.
    pub async fn connect(path: &Path) -> (Program, Value) {
        let stream =
            UnixStream::connect(path).await.unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        let (read, write) = stream.into_split();
        let mut program = Program { lines: BufReader::new(read).lines(), write, seen: Vec::new() };
        let hello = program.expect(Duration::from_secs(5), |v| v["type"] == "hello").await;
        (program, hello)
    }

    /// The next line, or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        let line = tokio::time::timeout(timeout, self.lines.next_line()).await.ok()?.ok()??;
        self.seen.push(line.clone());
        Some(
            serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("robocast wrote a line that is not JSON ({e}): {line}")),
        )
    }

    /// The next line satisfying `want`, skipping others; panics after `timeout`.
    pub async fn expect(&mut self, timeout: Duration, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(value) if want(&value) => return value,
                Some(_) => {}
                None => panic!("no matching line within {timeout:?}; lines so far: {:#?}", self.seen),
            }
        }
    }

    pub async fn send(&mut self, value: &Value) {
        self.send_raw(&value.to_string()).await;
    }

    /// Writes `text` and a newline as they are.
    pub async fn send_raw(&mut self, text: &str) {
        self.send_bytes(format!("{text}\n").as_bytes()).await;
    }

    /// Writes bytes as they are (no newline added).
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.expect("write to the control socket");
    }
}
