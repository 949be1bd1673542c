//! One browser's peer connection: answering its offer, starting its tracks once ICE and
//! DTLS are up, and ending it when the link fails, the client leaves or robocast stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

use super::feedback::Link;
use super::offer::{Offer, OfferInfo};
use super::talk::{self, Talk, TalkContext};
use super::{Engine, GATHER_TIMEOUT, RtcError, capability, channels, pump, trickle};
use crate::control::{Member, Outgoing};
use crate::media::{Codec, MediaHub, Place, Tiers};

/// A client that got its answer but never connects (it vanished, or UDP is blocked)
/// gives its viewer slot back after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected session whose link stays `disconnected` (nothing heard for 1.5 s) this
/// much longer has vanished: it ends, its slot is freed and no more frames go to it.
pub const VANISHED_AFTER: Duration = Duration::from_millis(500);

/// Connection state as robocast reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    New,
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

impl From<RTCPeerConnectionState> for PeerState {
    fn from(s: RTCPeerConnectionState) -> PeerState {
        match s {
            RTCPeerConnectionState::Connecting => PeerState::Connecting,
            RTCPeerConnectionState::Connected => PeerState::Connected,
            RTCPeerConnectionState::Disconnected => PeerState::Disconnected,
            RTCPeerConnectionState::Failed => PeerState::Failed,
            RTCPeerConnectionState::Closed => PeerState::Closed,
            _ => PeerState::New,
        }
    }
}

/// Per-session counters, written by the pumps, read by `/api/sessions`.
#[derive(Debug, Default, Serialize)]
pub struct SessionStats {
    pub video_frames: AtomicU64,
    pub audio_frames: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub keyframe_requests: AtomicU64,
    pub write_errors: AtomicU64,
}

/// What the rest of robocast holds of a peer. Cloning is cheap.
#[derive(Clone)]
pub struct PeerHandle {
    pc: Arc<RTCPeerConnection>,
    cancel: CancellationToken,
    state: watch::Receiver<PeerState>,
    pub stats: Arc<SessionStats>,
    pub video_codec: Option<Codec>,
    /// The video track's place among its feeds' tiers (`media::tiers`).
    video_place: Option<Arc<Place>>,
    /// The offer's media sections (`a=mid`, in order) and ICE username fragment, for
    /// trickled candidates.
    mids: Arc<Vec<String>>,
    ice_ufrag: Option<Arc<str>>,
    /// The link's estimate (what the viewer's feedback says it can take) and pacer.
    pub link: Arc<Link>,
    /// Candidates trickled so far (at most [`trickle::MAX_CANDIDATES`]).
    trickled: Arc<AtomicUsize>,
    /// The WHIP/WHEP entity tag of the session's ICE state (robocast's ICE username
    /// fragment, quoted); a PATCH with another `If-Match` gets 412.
    pub etag: Arc<str>,
    /// The session's talk-back (`None` when it cannot talk).
    talk: Option<Arc<Talk>>,
}

impl PeerHandle {
    pub fn state(&self) -> PeerState {
        *self.state.borrow()
    }

    /// The session was given the talker seat through the API: its media is expected.
    pub fn talk_claimed(&self) {
        if let Some(talk) = &self.talk {
            talk.claimed();
        }
    }

    /// The session gave the talker seat up through the API.
    pub fn talk_released(&self) {
        if let Some(talk) = &self.talk {
            talk.gave_up();
        }
    }

    /// The video tier the session gets: 0 the configured size, 1 the lower one.
    pub fn video_tier(&self) -> usize {
        self.video_place.as_ref().map_or(0, |place| place.tier())
    }

    /// RTP packets of talk-back the session sent.
    pub fn packets_received(&self) -> u64 {
        self.talk.as_ref().map_or(0, |t| t.packets.load(Ordering::Relaxed))
    }

    /// Whether the session is played on the speaker and display now.
    pub fn talking(&self) -> bool {
        self.talk.as_ref().is_some_and(|t| t.holding())
    }

    /// Ends the session (client DELETE, kick, shutdown).
    pub fn close(&self) {
        self.cancel.cancel();
    }

    /// Resolves when the session has ended, whatever the reason.
    pub async fn closed(&self) {
        self.cancel.cancelled().await;
    }

    /// Adds trickled candidates from a WHEP/WHIP PATCH body (`application/trickle-ice-sdpfrag`),
    /// each to the media section its `a=mid` names. Returns how many were added.
    pub async fn add_trickle(&self, fragment: &str) -> Result<usize, RtcError> {
        let candidates = trickle::parse(fragment, &self.mids, self.ice_ufrag.as_deref())?;
        let added = candidates.len();
        let before = self.trickled.fetch_add(added, Ordering::Relaxed);
        if before + added > trickle::MAX_CANDIDATES {
            self.trickled.fetch_sub(added, Ordering::Relaxed);
            return Err(trickle::too_many());
        }
        for candidate in candidates {
            let init = RTCIceCandidateInit {
                candidate: candidate.candidate,
                sdp_mid: Some(candidate.mid),
                sdp_mline_index: Some(candidate.mline_index),
                username_fragment: None,
            };
            let line = init.candidate.clone();
            self.pc.add_ice_candidate(init).await.map_err(|e| RtcError::BadOffer {
                problem: format!("bad candidate `{line}`: {e}"),
                hint: "send lines like a=candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host".into(),
            })?;
        }
        Ok(added)
    }
}

/// How a session's tracks are grouped.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnswerOptions {
    /// Audio and video in one stream (one CNAME): the browser lip-syncs them, holding the
    /// video back to the audio's jitter buffer. Off by default: each plays at once.
    pub lip_sync: bool,
}

/// A session's place in the control hub: its data channels are carried (`/api/connect`
/// sessions; WHEP sessions have none).
pub struct Carried {
    pub member: Member,
    pub outbox: mpsc::Receiver<Outgoing>,
}

/// What a session is attached to besides its media: the control hub (its data channels)
/// and the talker seat (the speaker and display).
#[derive(Default)]
pub struct Attached {
    pub carried: Option<Carried>,
    pub talk: Option<TalkContext>,
}

/// Answers a checked offer and starts the session; it ends when `parent` is cancelled,
/// the handle is closed, or the link fails.
pub async fn answer(
    engine: &Engine,
    offer: Offer,
    hub: &MediaHub,
    parent: &CancellationToken,
    span: tracing::Span,
    options: AnswerOptions,
    attached: Attached,
) -> Result<(String, PeerHandle), RtcError> {
    let Attached { carried, talk } = attached;
    let Offer { sdp, info } = offer;
    let bad_offer = |e: webrtc::Error| RtcError::BadOffer {
        problem: format!("the offer was rejected: {e}"),
        hint: "send the unmodified SDP from RTCPeerConnection.createOffer()".into(),
    };
    let description = RTCSessionDescription::offer(sdp).map_err(bad_offer)?;
    let config = RTCConfiguration {
        ice_servers: engine.ice_servers().iter().map(|s| s.to_webrtc()).collect(),
        ..Default::default()
    };
    let link = engine.new_link();
    let api = engine.api_for(&info, &link)?;
    let pc = Arc::new(api.new_peer_connection(config).await.map_err(RtcError::internal)?);
    let cancel = parent.child_token();
    let member = carried.as_ref().map(|c| c.member.clone());
    if let Some(Carried { member, outbox }) = carried {
        let _entered = span.enter();
        channels::wire(&pc, member, outbox, cancel.clone());
    }
    let stats = Arc::new(SessionStats::default());
    let talk = talk.map(Talk::new);
    let built = async {
        // Tracks first: set_remote_description then pairs each offered m-line with a
        // local transceiver of its kind (webrtc-rs 0.17 does not attach a later
        // add_track to a transceiver the offer created).
        let tracks = add_tracks(&pc, &info, hub, options).await?;
        receive_tracks(&pc, talk.as_ref(), &cancel, &span);
        pc.set_remote_description(description).await.map_err(bad_offer)?;
        let answer = pc.create_answer(None).await.map_err(bad_offer)?;
        let mut gathered = pc.gathering_complete_promise().await;
        // The codecs were chosen from the offer, so what fails here is the offer's doing.
        pc.set_local_description(answer).await.map_err(bad_offer)?;
        if tokio::time::timeout(GATHER_TIMEOUT, gathered.recv()).await.is_err() {
            tracing::debug!(
                "ICE gathering still running after {GATHER_TIMEOUT:?}; answering with what we have"
            );
        }
        let local = pc.local_description().await.ok_or_else(|| RtcError::internal("no local description"))?;
        Ok::<_, RtcError>((local.sdp, tracks))
    }
    .await;
    let (answer, tracks) = match built {
        Ok(done) => done,
        Err(e) => {
            cancel.cancel();
            let _ = pc.close().await;
            return Err(e);
        }
    };
    let (state_tx, state_rx) = watch::channel(PeerState::New);
    pc.on_peer_connection_state_change(Box::new(move |s| {
        let _ = state_tx.send(PeerState::from(s));
        Box::pin(async {})
    }));
    let video = tracks.iter().find(|t| t.tiers.codec() != Codec::Opus);
    let handle = PeerHandle {
        pc: Arc::clone(&pc),
        cancel,
        state: state_rx,
        stats,
        video_codec: video.map(|t| t.tiers.codec()),
        video_place: video.map(|t| Arc::clone(&t.place)),
        mids: Arc::new(info.mids),
        ice_ufrag: info.ice_ufrag.map(Arc::from),
        trickled: Arc::default(),
        link,
        etag: Arc::from(etag(&answer)),
        talk: talk.clone(),
    };
    if let Some(talk) = talk {
        tokio::spawn(talk.watch(handle.cancel.clone()).instrument(span.clone()));
    }
    // RTCP readers only now, for a session that exists: a reader started before a failed
    // answer would wait forever on a sender that never starts, holding the whole peer
    // connection (~28 kB per rejected offer). Each ends with its session.
    for OutTrack { sender, tiers, place, .. } in &tracks {
        let reader = pump::read_rtcp(
            Arc::clone(sender),
            (Arc::clone(tiers), Arc::clone(place)),
            Arc::clone(&handle.stats),
            handle.cancel.clone(),
        );
        tokio::spawn(reader.instrument(span.clone()));
    }
    tokio::spawn(lifetime(handle.clone(), tracks, member).instrument(span));
    Ok((answer, handle))
}

/// The entity tag of an answer's ICE state: `"<ice-ufrag>"`.
fn etag(answer: &str) -> String {
    let ufrag = answer.lines().find_map(|l| l.trim().strip_prefix("a=ice-ufrag:")).unwrap_or("robocast");
    format!("\"{}\"", ufrag.trim())
}

/// A track robocast sends, with the feeds that fill it and its place among them.
struct OutTrack {
    track: Arc<TrackLocalStaticSample>,
    tiers: Arc<Tiers>,
    place: Arc<Place>,
    sender: Arc<RTCRtpSender>,
}

async fn add_tracks(
    pc: &Arc<RTCPeerConnection>,
    info: &OfferInfo,
    hub: &MediaHub,
    options: AnswerOptions,
) -> Result<Vec<OutTrack>, RtcError> {
    let video = info.video.as_ref().and_then(|chosen| {
        let tiers = match chosen.codec {
            Codec::Vp8 => hub.vp8_tiers.clone()?,
            _ => hub.h264_tiers.clone()?,
        };
        Some((tiers, chosen))
    });
    let audio = info.audio.as_ref().and_then(|chosen| Some((Tiers::single(hub.audio.clone()?), chosen)));
    let mut tracks = Vec::new();
    for ((tiers, chosen), kind) in
        [(video, "video"), (audio, "audio")].into_iter().filter_map(|(t, k)| Some((t?, k)))
    {
        // Separate stream ids by default: the browser would otherwise hold video back to
        // lip-sync it with audio, and the audio jitter buffer is the slower of the two.
        let stream = if options.lip_sync { "robocast".to_owned() } else { format!("robocast-{kind}") };
        let track = Arc::new(TrackLocalStaticSample::new(capability(chosen), kind.into(), stream));
        let sender = pc
            .add_track(Arc::clone(&track) as Arc<dyn TrackLocal + Send + Sync>)
            .await
            .map_err(RtcError::internal)?;
        let place = tiers.place();
        tracks.push(OutTrack { track, tiers, place, sender });
    }
    Ok(tracks)
}

/// Media the browser sends: played while the session holds the talker seat, read and
/// dropped for a session that cannot talk (so its buffers never fill).
fn receive_tracks(
    pc: &Arc<RTCPeerConnection>,
    talk: Option<&Arc<Talk>>,
    cancel: &CancellationToken,
    span: &tracing::Span,
) {
    let (talk, weak, cancel, span) = (talk.cloned(), Arc::downgrade(pc), cancel.clone(), span.clone());
    pc.on_track(Box::new(move |track, _, _| {
        match &talk {
            Some(talk) => {
                let receive = talk::receive(Arc::clone(talk), track, weak.clone(), cancel.clone());
                tokio::spawn(receive.instrument(span.clone()));
            }
            None => {
                tokio::spawn(pump::drain_remote(track));
            }
        }
        Box::pin(async {})
    }));
}

/// Resolves when a connected link has failed, closed, or stayed disconnected for
/// [`VANISHED_AFTER`]; says which. A driver's dead-man fires as soon as it disconnects.
async fn link_ended(state: &mut watch::Receiver<PeerState>, member: Option<&Member>) -> &'static str {
    loop {
        let now = match state.wait_for(|s| !matches!(s, PeerState::Connected)).await {
            Ok(s) => *s,
            Err(_) => return "link gone",
        };
        match now {
            PeerState::Disconnected => {
                if let Some(member) = member {
                    member.link_down().await;
                }
                let back =
                    tokio::time::timeout(VANISHED_AFTER, state.wait_for(|s| *s != PeerState::Disconnected));
                match back.await {
                    Ok(Ok(s)) if *s == PeerState::Connected => continue,
                    Ok(_) => {}
                    Err(_) => return "vanished (nothing heard for 2 s)",
                }
            }
            PeerState::Closed => return "closed the connection",
            _ => return "link failed",
        }
    }
}

/// Waits for the connection, runs the pumps, and closes everything at the end.
async fn lifetime(handle: PeerHandle, tracks: Vec<OutTrack>, member: Option<Member>) {
    let mut state = handle.state.clone();
    let connected = tokio::select! {
        _ = handle.cancel.cancelled() => false,
        _ = tokio::time::sleep(CONNECT_TIMEOUT) => {
            tracing::info!("no connection within {CONNECT_TIMEOUT:?}; giving the slot back");
            false
        }
        s = state.wait_for(|s| matches!(s, PeerState::Connected | PeerState::Failed | PeerState::Closed)) =>
            matches!(s.as_deref(), Ok(PeerState::Connected)),
    };
    let mut reason = "never connected";
    if connected {
        tracing::info!("viewer connected");
        if let Some(member) = &member {
            member.connected().await;
        }
        // Subscribing only now makes each feed send this viewer a key frame at once.
        for OutTrack { track, tiers, place, .. } in tracks {
            let subscription = tiers.subscribe(place);
            tokio::spawn(
                pump::send_frames(
                    track,
                    subscription,
                    Arc::clone(&handle.stats),
                    Arc::clone(&handle.link),
                    handle.cancel.clone(),
                )
                .in_current_span(),
            );
        }
        reason = tokio::select! {
            _ = handle.cancel.cancelled() => "ended",
            ended = link_ended(&mut state, member.as_ref()) => {
                tracing::info!("viewer {ended}");
                ended
            }
        };
    }
    if let Some(member) = &member {
        member.ended(reason).await;
    }
    handle.cancel.cancel();
    if let Err(e) = handle.pc.close().await {
        tracing::debug!(error = %e, "closing peer connection");
    }
    let frames = handle.stats.video_frames.load(Ordering::Relaxed);
    tracing::info!(video_frames = frames, "session ended");
}
