//! The robot program of the benchmark, on robocast's control socket. It runs on plain
//! threads with blocking reads and writes rather than on the benchmark's runtime, so an
//! arrival is stamped the moment the kernel hands the line over, whatever the runtime is
//! busy with; what a careful program on the robot would see.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The system clock in fractional ms since the Unix epoch: the clock both ends stamp with.
pub(crate) fn wall_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A line robocast wrote, and when it arrived.
pub(crate) struct Arrival {
    pub(crate) at_ms: f64,
    pub(crate) line: Value,
}

pub(crate) struct Program {
    stream: UnixStream,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
    reader: Option<JoinHandle<()>>,
}

impl Program {
    pub(crate) fn connect(path: &Path) -> Result<Program> {
        let stream =
            UnixStream::connect(path).with_context(|| format!("connecting to {}", path.display()))?;
        let mut lines = BufReader::new(stream.try_clone()?);
        let (tx, arrivals) = mpsc::unbounded_channel();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            loop {
                text.clear();
                match lines.read_line(&mut text) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let at_ms = wall_ms();
                let Ok(line) = serde_json::from_str(&text) else {
                    eprintln!("bench: robocast wrote a line that is not JSON: {text}");
                    continue;
                };
                if tx.send(Arrival { at_ms, line }).is_err() {
                    return;
                }
            }
        });
        Ok(Program { stream, arrivals, reader: Some(reader) })
    }

    /// The next line robocast wrote, or `None` after `timeout`.
    pub(crate) async fn next(&mut self, timeout: Duration) -> Option<Arrival> {
        tokio::time::timeout(timeout, self.arrivals.recv()).await.ok().flatten()
    }

    /// The next line whose `type` is `kind`, skipping others.
    pub(crate) async fn expect(&mut self, kind: &str, timeout: Duration) -> Result<Arrival> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let arrival = self.next(left).await.with_context(|| format!("no `{kind}` within {timeout:?}"))?;
            if arrival.line["type"] == kind {
                return Ok(arrival);
            }
        }
    }

    /// Every line that has arrived and not been read yet.
    pub(crate) fn drain(&mut self) -> Vec<Arrival> {
        std::iter::from_fn(|| self.arrivals.try_recv().ok()).collect()
    }

    /// Writes `{"to":"all","channel":"state","data":{"t":<wall ms>,"i":n}}` lines at 20 Hz
    /// until [`Telemetry::finish`], `t` taken just before each write.
    pub(crate) fn telemetry(&self) -> Result<Telemetry> {
        let mut stream = self.stream.try_clone()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut sent = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                let data = json!({ "t": wall_ms(), "i": sent });
                let line = json!({ "to": "all", "channel": "state", "data": data });
                stream.write_all(format!("{line}\n").as_bytes()).context("writing to the control socket")?;
                sent += 1;
                let next = start + super::EVERY * sent as u32;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            Ok(sent)
        });
        Ok(Telemetry { stop, thread })
    }
}

/// The program's telemetry, while it runs.
pub(crate) struct Telemetry {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<u64>>,
}

impl Telemetry {
    /// Stops it; how many lines it wrote.
    pub(crate) fn finish(self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| anyhow::anyhow!("the telemetry thread panicked"))?
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}
