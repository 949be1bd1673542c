//! The session registry: one task owns the map of sessions; everyone else sends it
//! requests that carry a reply channel. It enforces the viewer limit (a slot is reserved
//! before the peer connection is built, so a burst of offers cannot overshoot it) and
//! forgets each session when its peer ends.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::media::Codec;
use crate::rtc::{PeerHandle, PeerState};

/// A session's id: 16 random hex digits, used in `Location` URLs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SessionId(String);

impl SessionId {
    fn random() -> SessionId {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is seeded from the OS per instance: unguessable enough for an id that
        // is not a credential (tokens come with the security issue).
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
        SessionId(format!("{:016x}", hasher.finish()))
    }

    pub fn parse(s: &str) -> Option<SessionId> {
        (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| SessionId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a session was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `POST /api/connect`: media both ways and data channels.
    Full,
    /// `POST /whep`: view only.
    Viewer,
    /// `POST /whip`: sends media to the speaker and display, receives nothing.
    Talker,
}

/// A session as `/api/sessions` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct SessionInfo {
    pub id: SessionId,
    pub role: Role,
    pub state: PeerState,
    pub video_codec: Option<Codec>,
    /// When the offer arrived (Unix seconds).
    pub created_at: u64,
    pub video_frames: u64,
    pub audio_frames: u64,
    pub bytes_sent: u64,
    /// PLI/FIR the viewer sent.
    pub keyframe_requests: u64,
    /// Played on the robot's speaker and display now.
    pub talking: bool,
    /// RTP packets the session sent robocast (talk-back).
    pub packets_received: u64,
}

struct Entry {
    role: Role,
    created: u64,
    peer: Option<PeerHandle>,
}

enum Request {
    Reserve { role: Role, reply: oneshot::Sender<Option<SessionId>> },
    Attach { id: SessionId, peer: PeerHandle },
    Remove { id: SessionId },
    Get { id: SessionId, reply: oneshot::Sender<Option<PeerHandle>> },
    List { reply: oneshot::Sender<Vec<SessionInfo>> },
}

/// A handle to the registry task. Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    tx: mpsc::UnboundedSender<Request>,
}

/// A reserved slot; dropping it without [`Reservation::attach`] frees the slot.
pub struct Reservation {
    id: SessionId,
    sessions: Sessions,
    attached: bool,
}

impl Reservation {
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// Hands the peer to the registry, which forgets the session when the peer ends.
    pub fn attach(mut self, peer: PeerHandle) {
        self.attached = true;
        let _ = self.sessions.tx.send(Request::Attach { id: self.id.clone(), peer: peer.clone() });
        let sessions = self.sessions.clone();
        let id = self.id.clone();
        tokio::spawn(async move {
            peer.closed().await;
            let _ = sessions.tx.send(Request::Remove { id });
        });
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.attached {
            let _ = self.sessions.tx.send(Request::Remove { id: self.id.clone() });
        }
    }
}

impl Sessions {
    /// Starts the registry task with room for `max` sessions.
    pub fn start(max: usize) -> Sessions {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(own(rx, max));
        Sessions { tx }
    }

    /// Reserves a slot, or `None` when `max` sessions exist already.
    pub async fn reserve(&self, role: Role) -> Option<Reservation> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Reserve { role, reply }).ok()?;
        let id = rx.await.ok()??;
        Some(Reservation { id, sessions: self.clone(), attached: false })
    }

    pub async fn get(&self, id: &SessionId) -> Option<PeerHandle> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Get { id: id.clone(), reply }).ok()?;
        rx.await.ok()?
    }

    pub async fn list(&self) -> Vec<SessionInfo> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Request::List { reply }).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}

async fn own(mut rx: mpsc::UnboundedReceiver<Request>, max: usize) {
    let mut sessions: HashMap<SessionId, Entry> = HashMap::new();
    while let Some(request) = rx.recv().await {
        match request {
            Request::Reserve { role, reply } => {
                let id = (sessions.len() < max).then(SessionId::random);
                if let Some(id) = &id {
                    let created =
                        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                    sessions.insert(id.clone(), Entry { role, created, peer: None });
                }
                let _ = reply.send(id);
            }
            Request::Attach { id, peer } => {
                if let Some(entry) = sessions.get_mut(&id) {
                    entry.peer = Some(peer);
                }
            }
            Request::Remove { id } => {
                if let Some(peer) = sessions.remove(&id).and_then(|e| e.peer) {
                    peer.close();
                }
            }
            Request::Get { id, reply } => {
                let _ = reply.send(sessions.get(&id).and_then(|e| e.peer.clone()));
            }
            Request::List { reply } => {
                let _ = reply.send(sessions.iter().filter_map(|(id, e)| info(id, e)).collect());
            }
        }
    }
}

fn info(id: &SessionId, entry: &Entry) -> Option<SessionInfo> {
    let peer = entry.peer.as_ref()?;
    Some(SessionInfo {
        id: id.clone(),
        role: entry.role,
        state: peer.state(),
        video_codec: peer.video_codec,
        created_at: entry.created,
        video_frames: peer.stats.video_frames.load(Ordering::Relaxed),
        audio_frames: peer.stats.audio_frames.load(Ordering::Relaxed),
        bytes_sent: peer.stats.bytes_sent.load(Ordering::Relaxed),
        keyframe_requests: peer.stats.keyframe_requests.load(Ordering::Relaxed),
        talking: peer.talking(),
        packets_received: peer.packets_received(),
    })
}
