//! The session registry: one task owns the map of sessions; everyone else sends it
//! requests that carry a reply channel. It enforces the viewer limit (a slot is reserved
//! before the peer connection is built, so a burst of offers cannot overshoot it) and
//! forgets each session when its peer ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::Access;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::media::Codec;
use crate::rtc::{PeerHandle, PeerState};

/// A session's id: 128 bits from the operating system's CSPRNG as 32 hex digits, used in
/// `Location` URLs. Not a credential by itself (the driver's and the talker's are shown to
/// every page): what a request may do with a session is decided by [`crate::auth`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SessionId(String);

impl SessionId {
    /// The number of hex digits.
    pub const LEN: usize = 32;

    fn random() -> Result<SessionId, getrandom::Error> {
        crate::auth::random_hex::<16>().map(SessionId)
    }

    pub fn parse(s: &str) -> Option<SessionId> {
        (s.len() == Self::LEN && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| SessionId(s.to_ascii_lowercase()))
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
    /// The role of the token it was opened with.
    pub access: Access,
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
    /// The video tier it gets: 0 the configured size, 1 the half-size one for a thin link.
    pub tier: usize,
    /// What the viewer's feedback says its link takes: the estimate, loss, round trip.
    pub link: crate::rtc::feedback::LinkStatus,
}

struct Entry {
    role: Role,
    access: Access,
    /// The client's address, for the per-address cap.
    client: Option<IpAddr>,
    created: u64,
    peer: Option<PeerHandle>,
}

enum Request {
    Reserve {
        role: Role,
        access: Access,
        client: Option<IpAddr>,
        reply: oneshot::Sender<Result<SessionId, Refused>>,
    },
    Attach {
        id: SessionId,
        peer: PeerHandle,
    },
    Remove {
        id: SessionId,
    },
    Get {
        id: SessionId,
        reply: oneshot::Sender<Option<(PeerHandle, Access)>>,
    },
    List {
        reply: oneshot::Sender<Vec<SessionInfo>>,
    },
}

/// Slots beyond `max_viewers` that only operators' sessions may take.
pub const OPERATOR_RESERVE: usize = 2;

/// Why no slot was reserved.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the viewer limit of {max} is reached")]
    Full { max: usize },
    #[error("no random session id: {0}")]
    Random(String),
    #[error("robocast is shutting down")]
    Stopped,
    #[error("{address} has {max} sessions already")]
    PerAddress { address: IpAddr, max: usize },
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
    /// Starts the registry task with room for `max` sessions, `per_address` of them from
    /// one address (operators excepted).
    pub fn start(max: usize, per_address: usize) -> Sessions {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(own(rx, max, per_address));
        Sessions { tx }
    }

    /// Reserves a slot for a session opened with `access` from `client`: viewers get
    /// `max` slots, at most `per_address` from one address, and operators
    /// [`OPERATOR_RESERVE`] more, so a crowd of viewers never locks them out.
    pub async fn reserve(
        &self,
        role: Role,
        access: Access,
        client: Option<IpAddr>,
    ) -> Result<Reservation, Refused> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Reserve { role, access, client, reply }).map_err(|_| Refused::Stopped)?;
        let id = rx.await.map_err(|_| Refused::Stopped)??;
        Ok(Reservation { id, sessions: self.clone(), attached: false })
    }

    /// The session's peer and the role it was opened with.
    pub async fn get(&self, id: &SessionId) -> Option<(PeerHandle, Access)> {
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

async fn own(mut rx: mpsc::UnboundedReceiver<Request>, max: usize, per_address: usize) {
    let mut sessions: HashMap<SessionId, Entry> = HashMap::new();
    while let Some(request) = rx.recv().await {
        match request {
            Request::Reserve { role, access, client, reply } => {
                let limit = match access {
                    Access::Viewer => max,
                    Access::Operator => max + OPERATOR_RESERVE,
                };
                let from_client = |address: IpAddr| {
                    sessions
                        .values()
                        .filter(|e| e.access == Access::Viewer && e.client == Some(address))
                        .count()
                };
                let id = if sessions.len() >= limit {
                    Err(Refused::Full { max })
                } else if let Some(address) =
                    client.filter(|a| access == Access::Viewer && from_client(*a) >= per_address)
                {
                    Err(Refused::PerAddress { address, max: per_address })
                } else {
                    SessionId::random().map_err(|e| Refused::Random(e.to_string()))
                };
                if let Ok(id) = &id {
                    let created =
                        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                    sessions.insert(id.clone(), Entry { role, access, client, created, peer: None });
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
                let _ = reply.send(sessions.get(&id).and_then(|e| Some((e.peer.clone()?, e.access))));
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
        access: entry.access,
        state: peer.state(),
        video_codec: peer.video_codec,
        created_at: entry.created,
        video_frames: peer.stats.video_frames.load(Ordering::Relaxed),
        audio_frames: peer.stats.audio_frames.load(Ordering::Relaxed),
        bytes_sent: peer.stats.bytes_sent.load(Ordering::Relaxed),
        keyframe_requests: peer.stats.keyframe_requests.load(Ordering::Relaxed),
        talking: peer.talking(),
        packets_received: peer.packets_received(),
        tier: peer.video_tier(),
        link: peer.link.status(),
    })
}
