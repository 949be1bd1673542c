//! Control: browsers' data-channel messages to the robot's programs and back, the seats
//! (driver and talker) and the dead-man stop. Touches neither GStreamer nor webrtc-rs: [`crate::rtc`]
//! hands a session's [`Member`] the text its data channels receive and sends what comes
//! out of the session's outbox; [`socket`] does the same for each program.
//!
//! One task (the hub, [`hub`]) owns every session's channels, every program's queue, the
//! [`seat::Seat`] and the [`deadman::Deadman`]; everything else sends it commands. Nothing
//! it does waits on a browser or a program: their queues are bounded and a full one drops
//! (and counts) instead of blocking.

pub mod deadman;
mod hub;
pub mod seat;
pub mod socket;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::auth::Access;
use crate::sessions::SessionId;
pub use hub::{BrowserMessage, read_browser_message};
pub use seat::{Refusal, SeatKind};

/// The control socket's protocol version, sent in every `hello`.
pub const PROTOCOL_VERSION: u32 = 1;
/// The largest message a browser or a program may send (UTF-8 JSON text).
pub const MAX_MESSAGE: usize = 16 * 1024;
/// Lines queued for one program before new ones are dropped.
pub const PROGRAM_QUEUE: usize = 1024;
/// Messages queued for one session's data channels before new ones are dropped.
const SESSION_QUEUE: usize = 256;
/// Commands queued for the hub; a browser sending faster than the hub routes waits
/// (its own data channel slows down, nobody else's).
const HUB_QUEUE: usize = 1024;

/// Text for one of a session's data channels.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub channel: Arc<str>,
    pub text: Arc<str>,
}

/// What arrived on a data channel.
#[derive(Debug)]
pub enum Payload {
    Text(String),
    /// A binary message, or text that is not UTF-8 (its length).
    Binary(usize),
}

/// The control part of `/api/status`.
#[derive(Clone, Debug, Serialize)]
pub struct ControlStatus {
    /// Where the control socket listens (`null` when off).
    pub socket: Option<String>,
    pub protocol_version: u32,
    pub programs: usize,
    pub driver: Option<SessionId>,
    /// Who is played on the speaker and display.
    pub talker: Option<SessionId>,
    pub deadman_ms: u64,
    pub deadman_events: u64,
    pub messages_to_programs: u64,
    /// Lines dropped because a program did not read.
    pub dropped_to_programs: u64,
    pub messages_to_browsers: u64,
    /// Messages dropped because a session's channel did not keep up.
    pub dropped_to_browsers: u64,
    /// Browser messages refused (not JSON, too large, `control` from a non-driver).
    pub refused_from_browsers: u64,
}

enum Command {
    Join { id: SessionId, access: Access, out: mpsc::Sender<Outgoing> },
    Connected { id: SessionId },
    ChannelOpen { id: SessionId, label: String },
    ChannelClosed { id: SessionId, label: String },
    ChannelFailed { id: SessionId, label: String, error: String },
    FromBrowser { id: SessionId, label: String, payload: Payload, at: std::time::Instant },
    LinkDown { id: SessionId },
    Leave { id: SessionId, reason: String },
    TakeSeat { kind: SeatKind, id: SessionId, access: Access, reply: oneshot::Sender<Result<(), Refusal>> },
    ReleaseSeat { kind: SeatKind, id: SessionId, reply: oneshot::Sender<Option<SessionId>> },
    TalkRefused { id: SessionId, refusal: Refusal },
    ProgramJoin { reply: oneshot::Sender<Program> },
    ProgramLeave { program: u64 },
    FromProgram { program: u64, to: Option<SessionId>, channel: String, text: Arc<str> },
    ToProgram { program: u64, line: Arc<str> },
    Status { reply: oneshot::Sender<ControlStatus> },
}

/// A handle to the control hub. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    tx: mpsc::Sender<Command>,
}

/// One program's end of the hub: the lines to write to it and its drop counter.
pub struct Program {
    pub id: u64,
    pub lines: mpsc::Receiver<Arc<str>>,
    /// Lines dropped since the program last heard about drops.
    pub dropped: Arc<AtomicU64>,
}

/// A session's end of the hub, held by its peer connection's handlers. Cheap to clone.
#[derive(Clone)]
pub struct Member {
    id: SessionId,
    tx: mpsc::Sender<Command>,
}

impl Control {
    /// Starts the hub. `socket` is only reported in the status.
    pub fn start(deadman: Duration, socket: Option<String>) -> Control {
        let (tx, rx) = mpsc::channel(HUB_QUEUE);
        tokio::spawn(hub::run(rx, deadman, socket));
        Control { tx }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.ok()?;
        rx.await.ok()
    }

    /// Registers a session opened with `access` (before its connection can open
    /// channels); its outbox carries what is to be sent on its data channels. A viewer's
    /// session hears the robot; only an operator's may send to it.
    pub async fn join(&self, id: SessionId, access: Access) -> (Member, mpsc::Receiver<Outgoing>) {
        let (out, outbox) = mpsc::channel(SESSION_QUEUE);
        let _ = self.tx.send(Command::Join { id: id.clone(), access, out }).await;
        (Member { id, tx: self.tx.clone() }, outbox)
    }

    /// Gives `id` (a session opened with `access`) the seat, or says why not.
    pub async fn take_seat(&self, kind: SeatKind, id: &SessionId, access: Access) -> Result<(), Refusal> {
        let id = id.clone();
        self.ask(|reply| Command::TakeSeat { kind, id, access, reply })
            .await
            .unwrap_or(Err(Refusal::NotConnected))
    }

    /// Releases the seat if `id` holds it; returns who holds it afterwards.
    pub async fn release_seat(&self, kind: SeatKind, id: &SessionId) -> Option<SessionId> {
        let id = id.clone();
        self.ask(|reply| Command::ReleaseSeat { kind, id, reply }).await.flatten()
    }

    /// Tells session `id` (on its `state` channel, if it has one) that its media is not
    /// played, and who talks instead.
    pub async fn talk_refused(&self, id: &SessionId, refusal: Refusal) {
        let _ = self.tx.send(Command::TalkRefused { id: id.clone(), refusal }).await;
    }

    pub async fn status(&self) -> Option<ControlStatus> {
        self.ask(|reply| Command::Status { reply }).await
    }

    /// A new program: its queue starts with the `hello` line.
    pub async fn program(&self) -> Option<Program> {
        self.ask(|reply| Command::ProgramJoin { reply }).await
    }

    pub async fn program_left(&self, program: u64) {
        let _ = self.tx.send(Command::ProgramLeave { program }).await;
    }

    /// A program's message for the sessions (`to: None` is everyone) on `channel`.
    pub async fn from_program(&self, program: u64, to: Option<SessionId>, channel: String, text: Arc<str>) {
        let _ = self.tx.send(Command::FromProgram { program, to, channel, text }).await;
    }

    /// A line for one program only (an error reply), through its queue.
    pub async fn to_program(&self, program: u64, line: Arc<str>) {
        let _ = self.tx.send(Command::ToProgram { program, line }).await;
    }
}

impl Member {
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    async fn send(&self, command: Command) {
        let _ = self.tx.send(command).await;
    }

    /// The session's connection is up: programs hear `connected`, the seat may be taken.
    pub async fn connected(&self) {
        self.send(Command::Connected { id: self.id.clone() }).await;
    }

    pub async fn channel_open(&self, label: &str) {
        self.send(Command::ChannelOpen { id: self.id.clone(), label: label.into() }).await;
    }

    pub async fn channel_closed(&self, label: &str) {
        self.send(Command::ChannelClosed { id: self.id.clone(), label: label.into() }).await;
    }

    /// The channel `label` broke (a message too large for the library, a protocol error).
    pub async fn channel_failed(&self, label: &str, error: &str) {
        let command =
            Command::ChannelFailed { id: self.id.clone(), label: label.into(), error: error.into() };
        self.send(command).await;
    }

    /// A message from the browser on `label`.
    pub async fn message(&self, label: &str, payload: Payload) {
        let at = std::time::Instant::now();
        self.send(Command::FromBrowser { id: self.id.clone(), label: label.into(), payload, at }).await;
    }

    /// The connection went ICE-disconnected: a driver's dead-man fires now.
    pub async fn link_down(&self) {
        self.send(Command::LinkDown { id: self.id.clone() }).await;
    }

    /// The session ended: it leaves the seat and the programs hear `disconnected`.
    pub async fn ended(&self, reason: &str) {
        self.send(Command::Leave { id: self.id.clone(), reason: reason.into() }).await;
    }
}

/// The key serde_json keeps for its `RawValue`. axum builds serde_json with `raw_value`,
/// and then an object whose first key is this one is read as the JSON text in its value:
/// a browser's `{"$serde_json::private::RawValue":"{\"type\":\"hidden\"}"}` was
/// `{"type":"hidden"}` to robocast while the programs got the text as sent, and a
/// program's `data` reached the browsers changed. No client writes it: such JSON is
/// refused, at `/api/connect` too. Found by fuzzing (targets `socket_line`, `channel_message`).
pub(crate) const RAW_VALUE_KEY: &str = "$serde_json::private::RawValue";

/// Whether JSON `text` has an object key serde_json takes for its own (escaped or not).
pub(crate) fn has_private_key(text: &[u8]) -> bool {
    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

    /// Walks a JSON value; fails on the private key.
    struct Plain;

    impl<'de> Deserialize<'de> for Plain {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Plain, D::Error> {
            deserializer.deserialize_any(Plain)
        }
    }

    impl<'de> Visitor<'de> for Plain {
        type Value = Plain;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Plain, E> {
            Ok(Plain)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Plain, E> {
            Ok(Plain)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Plain, E> {
            Ok(Plain)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Plain, E> {
            Ok(Plain)
        }
        fn visit_str<E>(self, _: &str) -> Result<Plain, E> {
            Ok(Plain)
        }
        fn visit_unit<E>(self) -> Result<Plain, E> {
            Ok(Plain)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Plain, A::Error> {
            while seq.next_element::<Plain>()?.is_some() {}
            Ok(Plain)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Plain, A::Error> {
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == RAW_VALUE_KEY {
                    return Err(de::Error::custom("private key"));
                }
                map.next_value::<Plain>()?;
            }
            Ok(Plain)
        }
    }

    serde_json::from_slice::<Plain>(text).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_json_s_private_key_is_refused_however_written() {
        let hidden = r#"{"$serde_json::private::RawValue":"{\"type\":\"hidden\"}"}"#;
        let escaped = r#"[{"\u0024serde_json::private::RawValue":"1"}]"#;
        for text in [hidden, escaped] {
            assert!(has_private_key(text.as_bytes()), "{text}");
            let (error, _) = read_browser_message(Payload::Text(text.into())).expect_err("refused");
            assert!(error.contains("cannot carry"), "{error}");
        }
        assert!(!has_private_key(br#"{"type":"hidden","RawValue":{"x":[1,"$serde_json"]}}"#));
    }

    #[test]
    fn a_program_line_holds_no_character_a_line_reader_breaks_on() {
        // JSON allows these unescaped inside strings; Python's splitlines() breaks on them.
        for text in ["{\"say\":\"a\u{2028}b\u{2029}c\u{85}d\"}", "{\"say\":\n\"a\u{2028}b\u{2029}c\u{85}d\"}"]
        {
            let message = read_browser_message(Payload::Text(text.into())).expect("JSON");
            assert_eq!(message.data, r#"{"say":"a\u2028b\u2029c\u0085d"}"#);
            let back: serde_json::Value = serde_json::from_str(&message.data).expect("still JSON");
            assert_eq!(back, message.value, "the program gets what the browser sent");
        }
        let plain = read_browser_message(Payload::Text(" {\"say\":\"é\"} ".into())).expect("JSON");
        assert_eq!(plain.data, "{\"say\":\"é\"}", "anything else goes verbatim");
    }
}
