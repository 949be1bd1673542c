//! The control socket: a Unix socket speaking JSON lines to the robot's programs (see the
//! README, "The control socket"). One task accepts; each program gets a reader task that
//! checks its lines and a writer task that drains its queue in the hub.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Control, MAX_MESSAGE, Program};
use crate::sessions::SessionId;

/// The longest line a program may send.
pub const MAX_LINE: usize = 64 * 1024;

/// Why the socket could not be opened, with what to do.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("control socket {path}: {problem}; {hint}")]
    Open { path: PathBuf, problem: String, hint: &'static str },
}

fn open_error(path: &Path, problem: impl std::fmt::Display, hint: &'static str) -> SocketError {
    SocketError::Open { path: path.to_owned(), problem: problem.to_string(), hint }
}

/// Where the socket goes when nothing is configured: systemd's RuntimeDirectory, else
/// the user's runtime directory, else the working directory.
pub fn default_path() -> PathBuf {
    let dir = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(runtime) = dir("RUNTIME_DIRECTORY") {
        // systemd may list several, separated by ':'; robocast's unit has one.
        let first = runtime.to_string_lossy().split(':').next().unwrap_or_default().to_owned();
        return PathBuf::from(first).join("control.sock");
    }
    match dir("XDG_RUNTIME_DIR") {
        Some(xdg) => xdg.join("robocast.sock"),
        None => PathBuf::from("robocast.sock"),
    }
}

/// Binds the socket, mode 0660. A stale socket file (nobody listening) is replaced; a live
/// one is an error, so two robocasts never steal each other's programs.
pub async fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(open_error(
                path,
                "exists and is not a socket",
                "remove it or choose another --control-socket",
            ));
        }
        if UnixStream::connect(path).await.is_ok() {
            return Err(open_error(
                path,
                "another process is listening on it",
                "stop the other robocast, or give this one another --control-socket",
            ));
        }
        std::fs::remove_file(path).map_err(|e| open_error(path, e, "remove the stale socket file"))?;
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| open_error(path, e, "create its directory, or choose another --control-socket"))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| open_error(path, e, "choose a writable place with --control-socket"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| open_error(path, e, "check the directory's permissions"))?;
    Ok(listener)
}

/// Accepts programs until `cancel`, then removes the socket file.
pub async fn serve(listener: UnixListener, path: PathBuf, control: Control, cancel: CancellationToken) {
    let programs = TaskTracker::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    programs.spawn(program(stream, control.clone(), cancel.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
    // Nobody can connect from here on: a program that reconnects during shutdown gets
    // "no such file" at once instead of a connection nobody answers.
    drop(listener);
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::debug!(error = %e, path = %path.display(), "removing the control socket");
    }
    programs.close();
    programs.wait().await;
}

/// A program's line to robocast.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    data: Value,
}

/// Where a program's line goes (the session, `None` for all; the channel; the data as
/// one line of JSON), or why it cannot. Pure, so it can be fuzzed (`fuzz/`, target
/// `socket_line`).
pub fn read_line(text: &str) -> Result<(Option<SessionId>, String, String), String> {
    let line: Line = serde_json::from_str(text).map_err(|e| format!("not a message: {e}"))?;
    // serde reads a struct from an array too (`["<id>","state",1]`): a line is an object.
    // Found by fuzzing (target `socket_line`).
    if !text.trim_start().starts_with('{') {
        return Err("not a message: a line is one JSON object, not an array".into());
    }
    if super::has_private_key(text.as_bytes()) {
        return Err(format!("not a message: the key `{}` cannot be carried", super::RAW_VALUE_KEY));
    }
    let to = match line.to.as_deref() {
        None | Some("all") => None,
        Some(id) => {
            Some(SessionId::parse(id).ok_or_else(|| format!("`to` is `{id}`: not \"all\" or a session id"))?)
        }
    };
    let channel = line.channel.unwrap_or_else(|| "state".into());
    if channel.is_empty() || channel.len() > 128 {
        return Err("`channel` must be a label of 1 to 128 bytes".into());
    }
    let data = line.data.to_string();
    if data.len() > MAX_MESSAGE {
        return Err(format!("`data` is {} bytes of JSON, over the {MAX_MESSAGE}-byte limit", data.len()));
    }
    Ok((to, channel, data))
}

const LINE_HINT: &str = r#"send one JSON object per line: {"to":"all","channel":"state","data":{...}}"#;

async fn program(stream: UnixStream, control: Control, cancel: CancellationToken) {
    let Some(joined) = control.program().await else { return };
    let id = joined.id;
    let (read, write) = stream.into_split();
    let writer = tokio::spawn(write_lines(write, joined));
    let mut reader = BufReader::new(read);
    loop {
        let next = tokio::select! {
            () = cancel.cancelled() => break,
            next = read_line_bytes(&mut reader) => next,
        };
        let problem = match next {
            Ok(Read::End) => break,
            Err(e) => {
                tracing::debug!(program = id, error = %e, "control socket read");
                break;
            }
            Ok(Read::TooLong) => format!("a line over {MAX_LINE} bytes"),
            Ok(Read::Line(bytes)) => match std::str::from_utf8(&bytes) {
                Err(e) => format!("the line is not UTF-8: {e}"),
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => match read_line(text) {
                    Ok((to, channel, data)) => {
                        control.from_program(id, to, channel, Arc::from(data)).await;
                        continue;
                    }
                    Err(problem) => problem,
                },
            },
        };
        let reply = json!({ "type": "error", "error": problem, "hint": LINE_HINT });
        control.to_program(id, Arc::from(reply.to_string())).await;
    }
    control.program_left(id).await;
    writer.abort();
}

/// One line from a program.
enum Read {
    Line(Vec<u8>),
    /// Over [`MAX_LINE`]: skipped up to its newline, the next line is read normally.
    TooLong,
    End,
}

/// Reads up to the next `\n` without ever holding more than [`MAX_LINE`] bytes of it.
/// Bytes, not strings: a line that is not UTF-8 is a bad line to answer, not a broken
/// connection.
async fn read_line_bytes(reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>) -> io::Result<Read> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(match (too_long, line.is_empty()) {
                (true, _) => Read::TooLong,
                (false, true) => Read::End,
                (false, false) => Read::Line(line),
            });
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], end + 1),
            None => (available, available.len()),
        };
        if !too_long && line.len() + chunk.len() > MAX_LINE {
            too_long = true;
            line = Vec::new();
        }
        if !too_long {
            line.extend_from_slice(chunk);
        }
        let found_end = done > chunk.len();
        reader.consume(done);
        if found_end {
            return Ok(if too_long { Read::TooLong } else { Read::Line(line) });
        }
    }
}

/// Writes the program's queue; after drops, says how many before the next line.
async fn write_lines(mut write: tokio::net::unix::OwnedWriteHalf, mut program: Program) {
    while let Some(line) = program.lines.recv().await {
        let dropped = program.dropped.swap(0, Ordering::Relaxed);
        let mut text = String::with_capacity(line.len() + 40);
        if dropped > 0 {
            text.push_str(&json!({ "type": "dropped", "count": dropped }).to_string());
            text.push('\n');
        }
        text.push_str(&line);
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_read_within_the_limit_whatever_they_hold() {
        let (ours, theirs) = UnixStream::pair().expect("a socket pair");
        let (read, _write) = ours.into_split();
        let mut reader = BufReader::new(read);
        let mut theirs = theirs;
        let long = vec![b'x'; MAX_LINE + 1];
        let sent = [&b"{}\n\xff\n"[..], &long, b"\n", b"after\n", &long].concat();
        theirs.write_all(&sent).await.expect("write");
        drop(theirs);
        let mut got = Vec::new();
        loop {
            match read_line_bytes(&mut reader).await.expect("read") {
                Read::End => break,
                Read::TooLong => got.push("too long".to_owned()),
                Read::Line(bytes) => got.push(String::from_utf8_lossy(&bytes).into_owned()),
            }
        }
        // The last line is cut off by the end of the stream and still reported too long.
        assert_eq!(got, ["{}", "\u{fffd}", "too long", "after", "too long"]);
    }

    #[test]
    fn program_lines_are_checked() {
        let (to, channel, data) = read_line(r#"{"data":{"v":1}}"#).expect("valid");
        assert_eq!((to, channel.as_str(), data.as_str()), (None, "state", r#"{"v":1}"#));
        let (to, ..) =
            read_line(r#"{"to":"000000000000000000000000000000ab","channel":"default","data":"x"}"#)
                .expect("valid");
        assert_eq!(to.map(|id| id.to_string()).as_deref(), Some("000000000000000000000000000000ab"));
        assert!(read_line("{").expect_err("refused").starts_with("not a message"));
        assert!(read_line(r#"{"to":"bob","data":1}"#).expect_err("refused").contains("`to` is `bob`"));
        assert!(read_line(r#"{"channel":"state"}"#).expect_err("refused").contains("missing field `data`"));
        assert!(read_line(r#"{"data":1,"extra":2}"#).expect_err("refused").contains("unknown field"));
        assert!(read_line(r#"["all","state",1]"#).expect_err("refused").contains("not an array"));
        let private = r#"{"data":{"a":1,"$serde_json::private::RawValue":2}}"#;
        assert!(read_line(private).expect_err("refused").contains("cannot be carried"));
        let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(MAX_MESSAGE));
        assert!(read_line(&big).expect_err("refused").contains("over the"));
    }
}
