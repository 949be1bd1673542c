//! The hub task: owns the sessions' channels, the programs' queues, the seat and the
//! dead-man, and routes every message. It never awaits a browser or a program.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::deadman::{Deadman, Fired, Reason};
use super::seat::{Seat, SeatKind};
use super::{
    Command, ControlStatus, MAX_MESSAGE, Outgoing, PROGRAM_QUEUE, PROTOCOL_VERSION, Payload, Program,
};
use crate::auth::{self, Access, Action};
use crate::sessions::SessionId;

/// The channel robocast's own notices travel on.
const STATE: &str = "state";
/// The channel whose messages only the driver may send.
const CONTROL: &str = "control";
/// A session that keeps sending on `control` without the seat hears about it this often.
const REFUSAL_EVERY: Duration = Duration::from_secs(1);

struct Session {
    out: mpsc::Sender<Outgoing>,
    access: Access,
    connected: bool,
    channels: BTreeSet<String>,
    last_refusal: Option<Instant>,
}

struct ProgramEntry {
    tx: mpsc::Sender<Arc<str>>,
    dropped: Arc<AtomicU64>,
}

#[derive(Default)]
struct Counts {
    to_programs: u64,
    dropped_to_programs: u64,
    to_browsers: u64,
    dropped_to_browsers: u64,
    refused_from_browsers: u64,
    deadman_events: u64,
}

struct Hub {
    sessions: BTreeMap<SessionId, Session>,
    programs: HashMap<u64, ProgramEntry>,
    next_program: u64,
    driver: Seat,
    talker: Seat,
    deadman: Deadman,
    socket: Option<String>,
    counts: Counts,
}

pub(super) async fn run(mut rx: mpsc::Receiver<Command>, deadman: Duration, socket: Option<String>) {
    let mut hub = Hub {
        sessions: BTreeMap::new(),
        programs: HashMap::new(),
        next_program: 0,
        driver: Seat::new(SeatKind::Driver),
        talker: Seat::new(SeatKind::Talker),
        deadman: Deadman::new(deadman),
        socket,
        counts: Counts::default(),
    };
    loop {
        let deadline = hub.deadman.deadline();
        let silence = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            command = rx.recv() => match command {
                Some(command) => hub.handle(command),
                None => break,
            },
            () = silence => {
                if let Some(fired) = hub.deadman.poll(Instant::now()) {
                    hub.announce_deadman(fired);
                }
            }
        }
    }
}

fn line(value: &Value) -> Arc<str> {
    Arc::from(one_line(value.to_string()))
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Characters JSON allows unescaped inside a string that some line readers take for a
/// line break (Python's `str.splitlines()`: NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR).
/// Outside strings they are not JSON, so escaping them keeps the value exactly.
const LINE_BREAKS_IN_STRINGS: [char; 3] = ['\u{85}', '\u{2028}', '\u{2029}'];

/// One line of JSON as a program reads it: the characters of [`LINE_BREAKS_IN_STRINGS`]
/// written as `\uXXXX`, so no line reader cuts it in two.
fn one_line(json: String) -> String {
    if !json.contains(LINE_BREAKS_IN_STRINGS) {
        return json;
    }
    let mut escaped = String::with_capacity(json.len() + 12);
    for c in json.chars() {
        if LINE_BREAKS_IN_STRINGS.contains(&c) {
            escaped.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// A browser's text as it goes into a program's line: verbatim when it is one line of
/// JSON, re-serialised when it spans lines (a program reads one JSON object per line),
/// and [`one_line`] either way.
fn embeddable(text: &str, value: &Value) -> String {
    one_line(if text.contains(['\n', '\r']) { value.to_string() } else { text.trim().to_owned() })
}

/// A browser's data-channel message, read: its JSON value, and its text as it goes into a
/// program's line (one line of JSON).
#[derive(Debug)]
pub struct BrowserMessage {
    pub value: Value,
    pub data: String,
}

/// Reads what a browser sent on a data channel: JSON text of at most [`MAX_MESSAGE`]
/// bytes. A refusal is what the browser is told: the problem and a hint. Pure, so it can
/// be fuzzed (`fuzz/`, target `channel_message`).
pub fn read_browser_message(payload: Payload) -> Result<BrowserMessage, (String, &'static str)> {
    let text = match payload {
        Payload::Text(text) if text.len() <= MAX_MESSAGE => text,
        Payload::Text(text) => {
            let error = format!("a {}-byte message is over the {MAX_MESSAGE}-byte limit", text.len());
            return Err((error, "send smaller messages; split large data"));
        }
        Payload::Binary(len) => {
            let error = format!("a {len}-byte binary message: robocast carries JSON text");
            return Err((error, "send JSON.stringify(obj) as text"));
        }
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| (format!("the message is not JSON: {e}"), "send JSON.stringify(obj)"))?;
    if super::has_private_key(text.as_bytes()) {
        let error =
            format!("the message uses the key `{}`, which robocast cannot carry", super::RAW_VALUE_KEY);
        return Err((error, "rename that key"));
    }
    let data = embeddable(&text, &value);
    Ok(BrowserMessage { value, data })
}

impl Hub {
    fn handle(&mut self, command: Command) {
        match command {
            Command::Join { id, access, out } => {
                let session =
                    Session { out, access, connected: false, channels: BTreeSet::new(), last_refusal: None };
                self.sessions.insert(id, session);
            }
            Command::Connected { id } => self.mark_connected(&id),
            Command::ChannelOpen { id, label } => self.channel_open(id, label),
            Command::ChannelClosed { id, label } => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.channels.remove(&label);
                }
                if label == CONTROL {
                    self.fire(&id, Reason::ChannelClosed);
                }
            }
            Command::ChannelFailed { id, label, error } => {
                tracing::debug!(session = %id, %label, %error, "data channel failed");
                self.counts.refused_from_browsers += 1;
                let notice = json!({
                    "from": "robocast",
                    "type": "error",
                    "error": format!("the `{label}` channel broke: {error}"),
                    "hint": format!("send messages of at most {MAX_MESSAGE} bytes; reconnect to open it again"),
                    "channel": label,
                });
                if label != STATE {
                    self.notify_session(&id, STATE, line(&notice));
                }
                self.handle(Command::ChannelClosed { id, label });
            }
            Command::FromBrowser { id, label, payload, at } => self.route_browser(id, label, payload, at),
            Command::LinkDown { id } => self.fire(&id, Reason::Link),
            Command::Leave { id, reason } => self.leave(id, reason),
            Command::TakeSeat { kind: SeatKind::Driver, id, access, reply } => {
                let connected = self.sessions.get(&id).is_some_and(|s| s.connected);
                let taken = self.driver.take(&id, access, connected);
                if taken == Ok(true) {
                    tracing::info!(session = %id, "takes the driver seat");
                    self.announce_driver();
                }
                let _ = reply.send(taken.map(|_| ()));
            }
            Command::TakeSeat { kind: SeatKind::Talker, id, access, reply } => {
                // Any operator's session that sends media may talk, WHIP ones (not members) included.
                let taken = self.talker.take(&id, access, true);
                if taken == Ok(true) {
                    tracing::info!(session = %id, "talks: plays on the speaker and display");
                    self.announce_talker();
                }
                let _ = reply.send(taken.map(|_| ()));
            }
            Command::ReleaseSeat { kind: SeatKind::Driver, id, reply } => {
                self.vacate_seat(&id, Reason::Released);
                let _ = reply.send(self.driver.holder().cloned());
            }
            Command::ReleaseSeat { kind: SeatKind::Talker, id, reply } => {
                self.vacate_talker(&id);
                let _ = reply.send(self.talker.holder().cloned());
            }
            Command::TalkRefused { id, refusal } => {
                let (error, hint) = refusal.describe();
                let notice = json!({
                    "from": "robocast",
                    "type": "error",
                    "error": error,
                    "hint": hint,
                    "seat": "talker",
                    "talker": refusal.holder().map(|(_, holder)| holder),
                });
                self.notify_session(&id, STATE, line(&notice));
            }
            Command::ProgramJoin { reply } => {
                let (tx, lines) = mpsc::channel(PROGRAM_QUEUE);
                let dropped = Arc::new(AtomicU64::new(0));
                let id = self.next_program;
                self.next_program += 1;
                let _ = tx.try_send(line(&self.hello_for_program()));
                self.programs.insert(id, ProgramEntry { tx, dropped: Arc::clone(&dropped) });
                tracing::info!(program = id, programs = self.programs.len(), "robot program connected");
                let _ = reply.send(Program { id, lines, dropped });
            }
            Command::ProgramLeave { program } => {
                if self.programs.remove(&program).is_some() {
                    tracing::info!(program, programs = self.programs.len(), "robot program disconnected");
                }
            }
            Command::FromProgram { program, to, channel, text } => {
                self.route_program(program, to, channel, text)
            }
            Command::ToProgram { program, line } => {
                if let Some(entry) = self.programs.get(&program) {
                    Self::queue_line(entry, line, &mut self.counts);
                }
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn status(&self) -> ControlStatus {
        ControlStatus {
            socket: self.socket.clone(),
            protocol_version: PROTOCOL_VERSION,
            programs: self.programs.len(),
            driver: self.driver.holder().cloned(),
            talker: self.talker.holder().cloned(),
            deadman_ms: self.deadman.limit().as_millis() as u64,
            deadman_events: self.counts.deadman_events,
            messages_to_programs: self.counts.to_programs,
            dropped_to_programs: self.counts.dropped_to_programs,
            messages_to_browsers: self.counts.to_browsers,
            dropped_to_browsers: self.counts.dropped_to_browsers,
            refused_from_browsers: self.counts.refused_from_browsers,
        }
    }

    fn hello_for_program(&self) -> Value {
        let sessions: Vec<Value> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.connected)
            .map(|(id, s)| json!({ "session": id, "channels": s.channels }))
            .collect();
        json!({
            "type": "hello",
            "version": PROTOCOL_VERSION,
            "robocast": env!("CARGO_PKG_VERSION"),
            "sessions": sessions,
            "driver": self.driver.holder(),
            "talker": self.talker.holder(),
            "deadman_ms": self.deadman.limit().as_millis() as u64,
        })
    }

    fn channel_open(&mut self, id: SessionId, label: String) {
        let hello = json!({
            "from": "robocast",
            "type": "hello",
            "version": PROTOCOL_VERSION,
            "session": id,
            "driver": self.driver.holder(),
            "talker": self.talker.holder(),
            "deadman_ms": self.deadman.limit().as_millis() as u64,
            "time_ms": unix_ms(),
        });
        let Some(session) = self.sessions.get_mut(&id) else { return };
        session.channels.insert(label.clone());
        // An open channel means the connection is up, whichever of the two events the
        // hub hears first: a page that takes the seat once its channels open never gets
        // "not connected yet".
        self.mark_connected(&id);
        if label == STATE {
            self.notify_session(&id, STATE, line(&hello));
        }
    }

    /// Programs hear `connected` once per session.
    fn mark_connected(&mut self, id: &SessionId) {
        if let Some(session) = self.sessions.get_mut(id).filter(|s| !s.connected) {
            session.connected = true;
            self.tell_programs(&json!({ "type": "connected", "session": id }));
        }
    }

    /// If `id` drives: the dead-man fires for `reason` (unless it has since the last
    /// command), the seat is freed and everyone is told.
    fn vacate_seat(&mut self, id: &SessionId, reason: Reason) {
        if !self.driver.is_held_by(id) {
            return;
        }
        self.fire(id, reason);
        self.deadman.disarm();
        self.driver.release(id);
        tracing::info!(session = %id, reason = reason.as_str(), "the driver seat is free");
        self.announce_driver();
    }

    fn leave(&mut self, id: SessionId, reason: String) {
        // The seats first: the session's own `state` still gets the notices.
        self.vacate_seat(&id, Reason::Ended);
        self.vacate_talker(&id);
        let Some(session) = self.sessions.remove(&id) else { return };
        if session.connected {
            self.tell_programs(&json!({ "type": "disconnected", "session": id, "reason": reason }));
        }
    }

    /// The dead-man fires for `id` if it drives and has not fired since its last command.
    fn fire(&mut self, id: &SessionId, reason: Reason) {
        if self.driver.is_held_by(id)
            && let Some(fired) = self.deadman.fire(id, Instant::now(), reason)
        {
            self.announce_deadman(fired);
        }
    }

    fn announce_deadman(&mut self, fired: Fired) {
        self.counts.deadman_events += 1;
        let silent_ms = fired.silent.as_millis() as u64;
        tracing::info!(session = %fired.session, silent_ms, reason = fired.reason.as_str(), "dead-man stop");
        self.announce(json!({
            "type": "deadman",
            "session": fired.session,
            "silent_ms": silent_ms,
            "reason": fired.reason.as_str(),
        }));
    }

    /// Frees the talker seat if `id` holds it, and tells everyone.
    fn vacate_talker(&mut self, id: &SessionId) {
        if self.talker.release(id) {
            tracing::info!(session = %id, "stopped talking: the speaker and display are free");
            self.announce_talker();
        }
    }

    fn announce_talker(&mut self) {
        let talker = self.talker.holder().cloned();
        self.announce(json!({ "type": "talker", "session": talker }));
    }

    fn announce_driver(&mut self) {
        let driver = self.driver.holder().cloned();
        self.announce(json!({ "type": "driver", "session": driver }));
    }

    /// An event for every program, and the same as robocast's notice on every session's
    /// `state`.
    fn announce(&mut self, mut event: Value) {
        self.tell_programs(&event);
        event["from"] = json!("robocast");
        self.notify_sessions(STATE, line(&event));
    }

    /// Whether session `id` should hear why its message was refused: at most once per
    /// [`REFUSAL_EVERY`], so a page that keeps sending is not flooded with notices (the
    /// others are only counted). `false` for an unknown session.
    fn refusal_due(&mut self, id: &SessionId) -> bool {
        let Some(session) = self.sessions.get_mut(id) else { return false };
        let now = Instant::now();
        if session.last_refusal.is_some_and(|t| now.duration_since(t) < REFUSAL_EVERY) {
            self.counts.refused_from_browsers += 1;
            return false;
        }
        session.last_refusal = Some(now);
        true
    }

    fn route_browser(&mut self, id: SessionId, label: String, payload: Payload, at: Instant) {
        let refuse = |hub: &mut Hub, error: String, hint: &str| {
            hub.counts.refused_from_browsers += 1;
            let notice = json!({ "from": "robocast", "type": "error", "error": error, "hint": hint, "channel": label });
            hub.notify_session(&id, STATE, line(&notice));
        };
        let BrowserMessage { value, data } = match read_browser_message(payload) {
            Ok(message) => message,
            Err((error, hint)) => return refuse(self, error, hint),
        };
        let access = self.sessions.get(&id).map_or(Access::Viewer, |s| s.access);
        if !auth::allows(access, Action::Message) {
            if !self.refusal_due(&id) {
                return;
            }
            let error = "this session only watches: sending to the robot needs the operator token".to_owned();
            return refuse(
                self,
                error,
                "connect with Authorization: Bearer <operator token> (the page: #token=<operator token>)",
            );
        }
        if label == CONTROL {
            if !self.driver.is_held_by(&id) {
                if !self.refusal_due(&id) {
                    return;
                }
                let hint = format!("take the seat first: POST /api/sessions/{id}/driver");
                return refuse(self, "you do not drive: control commands are not forwarded".into(), &hint);
            }
            let kind = value.get("type").and_then(Value::as_str);
            if kind == Some("hidden") {
                self.deadman.fed(&id, at);
                return self.fire(&id, Reason::Hidden);
            }
            self.deadman.fed(&id, at);
            if kind == Some("heartbeat") {
                return;
            }
        }
        let Ok(label_json) = serde_json::to_string(&label) else { return };
        let line = format!(r#"{{"type":"message","session":"{id}","channel":{label_json},"data":{data}}}"#);
        self.tell_programs_line(Arc::from(line));
    }

    fn route_program(&mut self, program: u64, to: Option<SessionId>, channel: String, text: Arc<str>) {
        let outgoing = Outgoing { channel: Arc::from(channel.as_str()), text };
        let problem = match &to {
            None => {
                let targets: Vec<SessionId> = self
                    .sessions
                    .iter()
                    .filter(|(_, s)| s.channels.contains(&channel))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in targets {
                    self.push(&id, outgoing.clone());
                }
                None
            }
            Some(id) => match self.sessions.get(id) {
                None => Some((format!("no session {id}"), "the hello and connected lines name the sessions")),
                Some(s) if !s.channels.contains(&channel) => Some((
                    format!("session {id} has no open `{channel}` channel"),
                    "send on a channel the browser opened (state, or the label it chose)",
                )),
                Some(_) => {
                    self.push(id, outgoing);
                    None
                }
            },
        };
        if let (Some((error, hint)), Some(entry)) = (problem, self.programs.get(&program)) {
            let reply = line(&json!({ "type": "error", "error": error, "hint": hint }));
            Self::queue_line(entry, reply, &mut self.counts);
        }
    }

    fn notify_session(&mut self, id: &SessionId, channel: &str, text: Arc<str>) {
        let open = self.sessions.get(id).is_some_and(|s| s.channels.contains(channel));
        if open {
            self.push(id, Outgoing { channel: Arc::from(channel), text });
        }
    }

    fn notify_sessions(&mut self, channel: &str, text: Arc<str>) {
        let channel: Arc<str> = Arc::from(channel);
        let targets: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.channels.contains(&*channel))
            .map(|(id, _)| id.clone())
            .collect();
        for id in targets {
            self.push(&id, Outgoing { channel: Arc::clone(&channel), text: Arc::clone(&text) });
        }
    }

    /// Queues for a session's channel without waiting: a full queue drops.
    fn push(&mut self, id: &SessionId, outgoing: Outgoing) {
        let Some(session) = self.sessions.get(id) else { return };
        match session.out.try_send(outgoing) {
            Ok(()) => self.counts.to_browsers += 1,
            Err(mpsc::error::TrySendError::Full(_)) => self.counts.dropped_to_browsers += 1,
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn tell_programs(&mut self, value: &Value) {
        self.tell_programs_line(line(value));
    }

    fn tell_programs_line(&mut self, line: Arc<str>) {
        let mut gone = Vec::new();
        for (id, entry) in &self.programs {
            if !Self::queue_line(entry, Arc::clone(&line), &mut self.counts) {
                gone.push(*id);
            }
        }
        for id in gone {
            self.programs.remove(&id);
        }
    }

    /// Queues a line for a program without waiting; a full queue drops and counts. False
    /// when the program has gone.
    fn queue_line(entry: &ProgramEntry, line: Arc<str>, counts: &mut Counts) -> bool {
        match entry.tx.try_send(line) {
            Ok(()) => {
                counts.to_programs += 1;
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                entry.dropped.fetch_add(1, Ordering::Relaxed);
                counts.dropped_to_programs += 1;
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}
