//! A robot program for robocast, in Rust: the same as `examples/robot.py`. It drives
//! (simulated) motors from the browser's commands, stops them on robocast's dead-man
//! stop, and sends telemetry back to the browsers at 5 Hz.
//!
//! ```text
//! cargo run --example robot -- [SOCKET]
//! ```
//!
//! SOCKET is robocast's control socket: the first argument, else
//! `$ROBOCAST_CONTROL_SOCKET`, else the first that exists of `/run/robocast/control.sock`
//! (robocast as a service), `$XDG_RUNTIME_DIR/robocast.sock` and `./robocast.sock`. The
//! protocol is in the README, "The control socket". Every line printed is one event,
//! `word key=value ...`: `hello version=1 sessions=0 driver=none`,
//! `drive linear=0.50 angular=0.00 from=<session>`, `STOP reason=silence ...`.
//!
//! It uses no part of robocast: a robot program needs only a Unix socket and JSON.

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::UnixStream;
use tokio::time::MissedTickBehavior;

const TELEMETRY_EVERY: Duration = Duration::from_millis(200);
/// Waits between attempts to reach robocast: doubled after each failure, up to the max.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Prints one event line. Output that cannot be written (a closed pipe) must not stop
/// the robot program, so the error is ignored.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stdout(), $($arg)*);
    }};
}

/// What robocast sends on the socket (README, "The control socket").
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum FromRobocast {
    Hello {
        version: u32,
        sessions: Vec<Value>,
        driver: Option<String>,
    },
    Message {
        session: String,
        channel: String,
        data: Value,
    },
    Connected {
        session: String,
    },
    Disconnected {
        session: String,
        reason: String,
    },
    Driver {
        session: Option<String>,
    },
    Deadman {
        session: String,
        silent_ms: u64,
        reason: String,
    },
    Dropped {
        count: u64,
    },
    Error {
        error: String,
        #[serde(default)]
        hint: String,
    },
    /// A line a newer robocast sends that this program does not know.
    #[serde(other)]
    Unknown,
}

/// The page's commands on `control`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Command {
    Drive { linear: f64, angular: f64 },
    Stop,
}

/// Simulated motors. A real program talks to its motor controller here.
struct Motors {
    linear: f64,
    angular: f64,
    started: Instant,
}

impl Motors {
    fn drive(&mut self, linear: f64, angular: f64) {
        self.linear = linear.clamp(-1.0, 1.0);
        self.angular = angular.clamp(-1.0, 1.0);
    }

    fn stop(&mut self, reason: &str, details: &str) {
        self.linear = 0.0;
        self.angular = 0.0;
        say!("STOP reason={reason}{details}");
    }

    fn moving(&self) -> bool {
        self.linear != 0.0 || self.angular != 0.0
    }

    fn telemetry(&self) -> Value {
        let uptime = self.started.elapsed().as_secs_f64();
        json!({
            "type": "telemetry",
            "speed": round(self.linear, 100.0),
            "battery": round((100.0 - uptime / 36.0).max(0.0), 10.0), // percent, 1% every 36 s
            "uptime_s": round(uptime, 10.0),
        })
    }
}

fn round(value: f64, scale: f64) -> f64 {
    (value * scale).round() / scale
}

fn on_message(session: &str, channel: &str, data: Value, motors: &mut Motors) {
    let command = (channel == "control").then(|| Command::deserialize(&data));
    match command {
        Some(Ok(Command::Drive { linear, angular })) => {
            motors.drive(linear, angular);
            say!("drive linear={:.2} angular={:.2} from={session}", motors.linear, motors.angular);
        }
        Some(Ok(Command::Stop)) => motors.stop("command", &format!(" from={session}")),
        Some(Err(e)) if matches!(data.get("type").and_then(Value::as_str), Some("drive" | "stop")) => {
            say!("ignored from={session} data={data}: {e}");
        }
        _ => say!("message from={session} channel={channel} data={data}"),
    }
}

fn on_line(line: &str, motors: &mut Motors) {
    let message = match serde_json::from_str::<FromRobocast>(line) {
        Ok(message) => message,
        Err(e) => {
            eprintln!("robocast sent a line this program does not understand ({e}): {line}");
            return;
        }
    };
    match message {
        FromRobocast::Hello { version, sessions, driver } => {
            let driver = driver.as_deref().unwrap_or("none");
            say!("hello version={version} sessions={} driver={driver}", sessions.len());
            if version != 1 {
                eprintln!("this program speaks protocol version 1; robocast may send lines it does not know");
            }
        }
        FromRobocast::Message { session, channel, data } => on_message(&session, &channel, data, motors),
        FromRobocast::Connected { session } => say!("connected session={session}"),
        FromRobocast::Disconnected { session, reason } => {
            say!("disconnected session={session} reason={reason}")
        }
        FromRobocast::Driver { session } => {
            say!("driver session={}", session.as_deref().unwrap_or("none"));
            if session.is_none() {
                motors.stop("no_driver", "");
            }
        }
        FromRobocast::Deadman { session, silent_ms, reason } => {
            motors.stop(&reason.replace(' ', "_"), &format!(" session={session} silent_ms={silent_ms}"));
        }
        FromRobocast::Dropped { count } => say!("dropped count={count}"),
        FromRobocast::Error { error, hint } => eprintln!("robocast refused a line: {error} ({hint})"),
        FromRobocast::Unknown => {}
    }
}

/// Reads robocast's lines and sends telemetry until robocast closes the socket.
async fn serve(stream: UnixStream, motors: &mut Motors) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut telemetry = tokio::time::interval(TELEMETRY_EVERY);
    telemetry.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            line = lines.next_line() => match line.context("reading from robocast")? {
                Some(line) if line.trim().is_empty() => {}
                Some(line) => on_line(&line, motors),
                None => return Ok(()),
            },
            _ = telemetry.tick() => {
                let mut line = json!({ "to": "all", "channel": "state", "data": motors.telemetry() }).to_string();
                line.push('\n');
                write.write_all(line.as_bytes()).await.context("writing to robocast")?;
            }
        }
    }
}

/// The socket to connect to, and the places looked at (for the error message).
fn socket_path() -> (PathBuf, Vec<PathBuf>) {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(path) =
        std::env::args_os().nth(1).map(PathBuf::from).or_else(|| var("ROBOCAST_CONTROL_SOCKET"))
    {
        return (path.clone(), vec![path]);
    }
    let mut places = vec![PathBuf::from("/run/robocast/control.sock")];
    places.extend(var("XDG_RUNTIME_DIR").map(|dir| dir.join("robocast.sock")));
    places.push(PathBuf::from("robocast.sock"));
    let path = places.iter().find(|p| p.exists()).unwrap_or(&places[0]).clone();
    (path, places)
}

/// Connects, serves, and connects again whenever robocast goes away. Returns only when
/// retrying cannot help.
async fn run(motors: &mut Motors) -> anyhow::Result<()> {
    let mut backoff = BACKOFF_FIRST;
    let mut last_problem = None;
    loop {
        let (path, places) = socket_path();
        let problem = match UnixStream::connect(&path).await {
            Ok(stream) => {
                say!("connected path={}", path.display());
                (backoff, last_problem) = (BACKOFF_FIRST, None);
                match serve(stream, motors).await {
                    Ok(()) => "robocast closed the control socket".to_owned(),
                    Err(e) => format!("lost robocast at {}: {e:#}", path.display()),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => anyhow::bail!(
                "permission denied on {}: join robocast's group (sudo usermod -aG robocast $USER, then log in again)",
                path.display()
            ),
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => {
                let places: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
                format!(
                    "no robocast listening at {}: robocast is not running, or the path is wrong \
                     (robocast logs its control socket at start; give that path as the first argument)",
                    places.join(" or ")
                )
            }
            Err(e) => format!("cannot connect to {}: {e}", path.display()),
        };
        if motors.moving() {
            motors.stop("robocast_gone", "");
        }
        if last_problem.as_ref() != Some(&problem) {
            eprintln!("{problem}; trying again, waiting up to {} s between attempts", BACKOFF_MAX.as_secs());
            last_problem = Some(problem);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut motors = Motors { linear: 0.0, angular: 0.0, started: Instant::now() };
    let interrupted = tokio::select! {
        result = run(&mut motors) => result.map(|()| false),
        interrupted = tokio::signal::ctrl_c() => interrupted.context("listening for Ctrl-C").map(|()| true),
    };
    match interrupted {
        Ok(true) => {
            motors.stop("exit", "");
            ExitCode::SUCCESS
        }
        Ok(false) => ExitCode::SUCCESS,
        Err(e) => {
            // The message says what to do; a backtrace would bury it.
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
