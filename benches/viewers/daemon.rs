//! The senders the benchmark measures, as child processes (so their CPU time and memory
//! are their own): robocast and the GStreamer webrtcbin peer, on the test pattern or on an
//! external source; and how their CPU and memory are read.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use super::common::http;
use super::{CLOCK_TICKS_PER_S, FPS, SIZE, START_TIMEOUT};

/// Where the pictures come from.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    /// Each sender's own test pattern, stamped in its own process.
    Test,
    /// Raw pictures from another process over shared memory (`StampedSource`).
    External(PathBuf),
}

impl Source {
    /// The GStreamer description both senders read an external source with: the chain
    /// a user would write for a camera process that shares its frames.
    fn shm(socket: &Path) -> String {
        let (w, h) = SIZE.split_once('x').unwrap_or(("1280", "720"));
        format!(
            "shmsrc socket-path={} is-live=true do-timestamp=true ! capsfilter \
             caps=video/x-raw,format=I420,width={w},height={h},framerate={FPS}/1 ! queue max-size-buffers=2 leaky=downstream",
            socket.display()
        )
    }
}

/// The external source: `benches/peers/stamped_source.py`, killed on drop.
pub(crate) struct StampedSource {
    child: Child,
    socket: PathBuf,
}

impl StampedSource {
    pub(crate) async fn start() -> Result<StampedSource> {
        StampedSource::start_with(&[]).await
    }

    /// [`StampedSource::start`] with options of `stamped_source.py` (`--noise`).
    pub(crate) async fn start_with(options: &[&str]) -> Result<StampedSource> {
        let socket = std::env::temp_dir().join(format!("robocast-bench-{}.shm", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let root = env!("CARGO_MANIFEST_DIR");
        let child = Command::new("/usr/bin/python3")
            .arg(format!("{root}/benches/peers/stamped_source.py"))
            .args(["--socket", &socket.display().to_string(), "--size", SIZE, "--fps", &FPS.to_string()])
            .args(options)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("starting benches/peers/stamped_source.py")?;
        let mut source = StampedSource { child, socket };
        let deadline = Instant::now() + START_TIMEOUT;
        while !source.socket.exists() {
            if let Some(status) = source.child.try_wait()? {
                bail!("the stamped source exited ({status})");
            }
            if Instant::now() > deadline {
                bail!("the stamped source made no socket within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(source)
    }

    pub(crate) fn source(&self) -> Source {
        Source::External(self.socket.clone())
    }

    /// Where it shares its pictures (the thin-link benchmark's RTCBot reads them there).
    #[allow(dead_code)]
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for StampedSource {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// robocast as a child process; killed on drop, also when the benchmark panics.
pub(crate) struct Daemon {
    child: Child,
    pub(crate) addr: SocketAddr,
}

/// What sends the stream: robocast, or the peer it is compared with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Sender {
    Robocast,
    /// `benches/peers/webrtcbin.py`: GStreamer webrtcbin with one shared x264 encoder.
    Webrtcbin,
}

impl Sender {
    /// The command that starts this sender on `addr` with the benchmark's stream.
    fn command(self, addr: SocketAddr, source: &Source) -> Command {
        let (size, fps, listen) = (SIZE, FPS.to_string(), addr.to_string());
        if self == Sender::Webrtcbin {
            let root = env!("CARGO_MANIFEST_DIR");
            let mut command = Command::new("/usr/bin/python3");
            command
                .arg(format!("{root}/benches/peers/webrtcbin.py"))
                .args(["--static", &format!("{root}/static"), "--size", size])
                .args(["--fps", &fps, "--listen", &listen]);
            if let Source::External(socket) = source {
                command.args(["--source", &Source::shm(socket)]);
            }
            return command;
        }
        // ROBOCAST_BENCH_BIN measures another build (an older commit, say) the same way.
        let binary =
            std::env::var_os("ROBOCAST_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_robocast").into());
        let mut command = Command::new(binary);
        // Only the flags below configure it, whatever the caller's environment says.
        for (name, _) in std::env::vars() {
            let kept = ["ROBOCAST_LOG", "ROBOCAST_LINK_JOURNAL"].contains(&name.as_str());
            if name.starts_with("ROBOCAST_") && !kept && !name.starts_with("ROBOCAST_BENCH") {
                command.env_remove(name);
            }
        }
        // webrtc-rs warns about every closed candidate; robocast's own warnings stay.
        let log = std::env::var("ROBOCAST_LOG")
            .unwrap_or_else(|_| "warn,webrtc=error,webrtc_ice=error,webrtc_dtls=error".into());
        let video = match source {
            Source::Test => "test".to_owned(),
            Source::External(socket) => format!("gst:{}", Source::shm(socket)),
        };
        command
            .args(["--video", &video, "--audio", "test", "--size", size])
            .args(["--fps", &fps, "--max-viewers", "32", "--listen", &listen])
            .args(["--operator-token", crate::common::OPERATOR_TOKEN])
            .env("ROBOCAST_LOG", log);
        command
    }
}

impl Daemon {
    pub(crate) async fn start(sender: Sender, source: &Source) -> Result<Daemon> {
        Daemon::start_with(sender, source, &[]).await
    }

    /// As [`Daemon::start`], with `flags` added to the sender's command line (robocast's
    /// `--control-socket`, say).
    pub(crate) async fn start_with(sender: Sender, source: &Source, flags: &[String]) -> Result<Daemon> {
        Daemon::start_on(sender, source, flags, [127, 0, 0, 1].into()).await
    }

    /// As [`Daemon::start_with`], listening on `ip` (`0.0.0.0` for browsers on other links);
    /// `addr` is on loopback whatever `ip` is.
    pub(crate) async fn start_on(
        sender: Sender,
        source: &Source,
        flags: &[String],
        ip: std::net::IpAddr,
    ) -> Result<Daemon> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = sender
            .command(SocketAddr::new(ip, port), source)
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {sender:?}"))?;
        let mut daemon = Daemon { child, addr };
        daemon.wait_running().await?;
        Ok(daemon)
    }

    /// Another sender (the thin-link benchmark's RTCBot) measured as a daemon is: its CPU
    /// and memory, killed on drop. `addr` is where it answers HTTP.
    #[allow(dead_code)]
    pub(crate) fn adopt(child: Child, addr: SocketAddr) -> Daemon {
        Daemon { child, addr }
    }

    /// Waits for `/healthz`, then for the video pipeline to report `running`.
    async fn wait_running(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("robocast exited during start-up ({status})");
            }
            // `http::get` panics when nothing listens yet.
            if tokio::net::TcpStream::connect(self.addr).await.is_ok()
                && http::get(self.addr, "/healthz").await.status == 200
                && self.video_status().await["pipeline"]["state"] == "running"
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("robocast's video pipeline was not running within {START_TIMEOUT:?}")
    }

    /// The video pipeline's entry of `/api/status` and the target bitrate.
    pub(crate) async fn video_status(&self) -> Value {
        let status = http::get(self.addr, "/api/status").await.json();
        let pipelines = status["pipelines"].as_array().cloned().unwrap_or_default();
        let video = pipelines.into_iter().find(|p| p["kind"] == "video");
        json!({ "pipeline": video, "bitrate_kbps": status["video"]["target_bitrate_kbps"] })
    }

    /// The encoder robocast chose and its target bitrate.
    pub(crate) async fn video_encoder(&self) -> (String, u64) {
        let video = self.video_status().await;
        let encoder = video["pipeline"]["encoder"].as_str().unwrap_or("unknown").to_owned();
        (encoder, video["bitrate_kbps"].as_u64().unwrap_or(0))
    }

    pub(crate) async fn sessions(&self) -> usize {
        let sessions = http::get(self.addr, "/api/sessions").await.json();
        sessions["sessions"].as_array().map_or(0, Vec::len)
    }

    /// Waits until exactly `n` sessions exist (closed ones go within ~10 s on their own).
    pub(crate) async fn wait_sessions(&self, n: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let now = self.sessions().await;
            if now == n {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("robocast still has {now} sessions, expected {n}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// utime + stime of all robocast's threads, in clock ticks.
    pub(crate) fn cpu_ticks(&self) -> Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name, which is in parentheses and may contain spaces.
        let fields: Vec<&str> =
            stat.rsplit_once(')').context("malformed /proc/<pid>/stat")?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat(5); `fields` starts at field 3.
        let tick = |i: usize| -> Result<u64> { Ok(fields.get(i).context("short stat")?.parse()?) };
        Ok(tick(11)? + tick(12)?)
    }

    /// Resident memory in KiB: all of it (`VmRSS`) and the anonymous part (`RssAnon`:
    /// heap and stacks, without the shared libraries' code).
    pub(crate) fn rss_kib(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> Result<u64> {
            let line = status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .with_context(|| format!("no {name} in /proc/<pid>/status"))?;
            Ok(line.trim().trim_end_matches("kB").trim().parse()?)
        };
        Ok((field("VmRSS:")?, field("RssAnon:")?))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// robocast's CPU (% of one core) and peak RSS over a window.
#[derive(Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) cpu_percent: f64,
    pub(crate) rss_peak_mb: f64,
    pub(crate) anon_peak_mb: f64,
}

impl Usage {
    /// Mean CPU and highest RSS of consecutive windows of equal length.
    pub(crate) fn combine(usages: &[Usage]) -> Usage {
        let n = usages.len().max(1) as f64;
        Usage {
            cpu_percent: usages.iter().map(|u| u.cpu_percent).sum::<f64>() / n,
            rss_peak_mb: usages.iter().map(|u| u.rss_peak_mb).fold(0.0, f64::max),
            anon_peak_mb: usages.iter().map(|u| u.anon_peak_mb).fold(0.0, f64::max),
        }
    }

    pub(crate) async fn measure(daemon: &Daemon, window: Duration) -> Result<Usage> {
        let start = Instant::now();
        let ticks = daemon.cpu_ticks()?;
        let (mut peak, mut anon_peak) = daemon.rss_kib()?;
        while start.elapsed() < window {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (rss, anon) = daemon.rss_kib()?;
            (peak, anon_peak) = (peak.max(rss), anon_peak.max(anon));
        }
        let cpu_s = (daemon.cpu_ticks()? - ticks) as f64 / CLOCK_TICKS_PER_S;
        Ok(Usage {
            cpu_percent: 100.0 * cpu_s / start.elapsed().as_secs_f64(),
            rss_peak_mb: peak as f64 * 1024.0 / 1e6,
            anon_peak_mb: anon_peak as f64 * 1024.0 / 1e6,
        })
    }
}
