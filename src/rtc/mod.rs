//! WebRTC: the only part of robocast that touches webrtc-rs types.
//!
//! * [`Engine`] holds the webrtc-rs API object (codecs, interceptors, ICE settings), built
//!   once and shared by every peer.
//! * [`offer`] reads what a browser's offer asks for, before anything is built.
//! * [`peer`] answers an offer: one `RTCPeerConnection` per session, its tracks and its
//!   lifetime task; [`PeerHandle`] is what the rest of the program holds.
//! * [`pump`] moves frames from a media feed to a track and RTCP feedback (PLI/FIR) back
//!   to the encoder.
//! * [`talk`] plays what a talker sends on the robot's speaker and display.

mod channels;
pub mod feedback;
pub mod offer;
mod pacer;
pub mod peer;
pub mod pump;
pub mod talk;
pub mod trickle;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use webrtc::api::API;
use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::{configure_rtcp_reports, configure_twcc_receiver_only};
use webrtc::api::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::interceptor::nack::generator::Generator;
use webrtc::interceptor::nack::responder::Responder;
use webrtc::interceptor::registry::Registry;
use webrtc::interceptor::twcc::sender::Sender as TwccSender;
use webrtc::rtp_transceiver::RTCPFeedback;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RTPCodecType,
};

pub use offer::Sendable;
pub use peer::{AnswerOptions, Attached, Carried, PeerHandle, PeerState, SessionStats};
pub use talk::TalkContext;

use crate::congestion::Bounds;
use crate::media::Codec;
use feedback::Link;
use offer::{Chosen, OfferInfo};

/// The RTP header extension that tells the browser how long it may hold frames back.
const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/// How long an answer waits for ICE gathering. Host candidates gather in milliseconds; an
/// unreachable STUN/TURN server must not hold the first frame back longer than this.
pub const GATHER_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum RtcError {
    /// The client's SDP cannot be used (a 400 for the HTTP layer).
    #[error("{problem}")]
    BadOffer { problem: String, hint: String },
    /// A trickle `PATCH` with a new ICE username fragment (a 422: robocast does not restart
    /// ICE in place, a new offer does the same).
    #[error("ICE restarts are not supported")]
    IceRestart,
    /// A failure on our side (a 500).
    #[error("WebRTC: {0}")]
    Internal(String),
}

impl RtcError {
    pub(crate) fn internal(e: impl std::fmt::Display) -> RtcError {
        RtcError::Internal(e.to_string())
    }
}

/// A STUN or TURN server, as given on the command line, in the form browsers take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl IceServer {
    /// `stun:host:port`, `turn:host:port`, or `turn:user:password@host:port` (also `turns:`).
    pub fn parse(url: &str) -> Result<IceServer, String> {
        let (scheme, rest) = url.split_once(':').ok_or_else(|| format!("`{url}` has no scheme"))?;
        if !matches!(scheme, "stun" | "stuns" | "turn" | "turns") {
            return Err(format!("`{url}`: scheme must be stun, stuns, turn or turns"));
        }
        let (credentials, host) = match rest.rsplit_once('@') {
            Some((credentials, host)) => (Some(credentials), host),
            None => (None, rest),
        };
        if host.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        let (username, credential) = match credentials.map(|c| c.split_once(':')) {
            None => (None, None),
            Some(Some((user, pass))) if scheme.starts_with("turn") => {
                (Some(user.to_owned()), Some(pass.to_owned()))
            }
            Some(_) => return Err(format!("`{url}`: only turn: URLs take user:password@")),
        };
        Ok(IceServer { urls: vec![format!("{scheme}:{host}")], username, credential })
    }

    fn to_webrtc(&self) -> RTCIceServer {
        RTCIceServer {
            urls: self.urls.clone(),
            username: self.username.clone().unwrap_or_default(),
            credential: self.credential.clone().unwrap_or_default(),
        }
    }
}

/// What every session's webrtc-rs API is built from: ICE servers and settings. Each
/// session gets an API of its own whose media engine holds exactly the codecs chosen from
/// its offer (see [`offer`]), with the browser's payload types and parameters.
pub struct Engine {
    settings: SettingEngine,
    ice_servers: Vec<IceServer>,
    /// coturn's `static-auth-secret`: TURN servers without a password of their own get
    /// credentials minted from it (the TURN REST scheme), valid for [`TURN_CREDENTIAL_TTL`].
    turn_secret: Option<crate::auth::Token>,
    /// The bounds of each session's link estimate (audio and video together), and what
    /// of it is the audio's, bit/s.
    link: Bounds,
    audio_bps: u64,
}

/// How long minted TURN credentials stay valid: a session's relay is refreshed with them
/// for its whole life, so they outlive a long drive; they expire by themselves after.
pub const TURN_CREDENTIAL_TTL: Duration = Duration::from_secs(12 * 3600);

/// TURN credentials after the TURN REST API scheme coturn's `use-auth-secret` checks:
/// the user name is `<expiry in Unix seconds>:robocast`, the password the base64 of its
/// HMAC-SHA1 under the shared secret.
pub fn turn_credentials(secret: &str, expires_at_unix: u64) -> (String, String) {
    use base64::Engine as _;
    let username = format!("{expires_at_unix}:robocast");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = ring::hmac::sign(&key, username.as_bytes());
    (username, base64::engine::general_purpose::STANDARD.encode(tag.as_ref()))
}

/// Video feedback besides NACK (added with the NACK interceptors).
fn video_feedback() -> Vec<RTCPFeedback> {
    ["goog-remb", "ccm fir", "transport-cc"]
        .iter()
        .map(|fb| {
            let (typ, parameter) = fb.split_once(' ').unwrap_or((fb, ""));
            RTCPFeedback { typ: typ.into(), parameter: parameter.into() }
        })
        .collect()
}

/// The capability robocast sends for a codec chosen from an offer.
pub(crate) fn capability(chosen: &Chosen) -> RTCRtpCodecCapability {
    let (mime_type, rtcp_feedback) = match chosen.codec {
        Codec::H264 => (MIME_TYPE_H264, video_feedback()),
        Codec::Vp8 => (MIME_TYPE_VP8, video_feedback()),
        Codec::Opus => {
            (MIME_TYPE_OPUS, vec![RTCPFeedback { typ: "transport-cc".into(), parameter: String::new() }])
        }
    };
    RTCRtpCodecCapability {
        mime_type: mime_type.into(),
        clock_rate: chosen.clock_rate,
        channels: if chosen.codec == Codec::Opus { chosen.channels } else { 0 },
        sdp_fmtp_line: chosen.fmtp.clone(),
        rtcp_feedback,
    }
}

/// Packets kept per outgoing stream for NACK retransmission: 2^9 = 512, about 2 s of
/// 720p video at 2.5 Mbit/s. webrtc-rs keeps 8192 by default, ~10 MB per viewer once
/// full, for packets far too old to be worth resending to a live viewer.
const NACK_HISTORY_LOG2: u8 = 9;

/// webrtc-rs's default interceptors (NACK both ways, RTCP reports, receive-side TWCC)
/// with a NACK history sized for live video, and the congestion side: transport-wide
/// sequence numbers on what robocast sends and the session's [`feedback::Link`].
///
/// Order matters: each interceptor wraps the writer of the one added before it, so the
/// first added is nearest the transport. The link's recorder (send times, feedback) comes
/// first, then the TWCC sender that stamps the numbers it reads, then the pacer (so
/// packets are numbered in the order they leave), then the NACK responder, so
/// retransmissions are paced and numbered too.
fn interceptors(media: &mut MediaEngine, link: &Arc<Link>) -> Result<Registry, RtcError> {
    for parameter in ["", "pli"] {
        let feedback = RTCPFeedback { typ: "nack".into(), parameter: parameter.into() };
        media.register_feedback(feedback, RTPCodecType::Video);
    }
    let mut registry = Registry::new();
    registry.add(link.recorder());
    registry.add(Box::new(TwccSender::builder()));
    registry.add(link.pacer());
    registry.add(Box::new(Responder::builder().with_log2_size(NACK_HISTORY_LOG2)));
    registry.add(Box::new(Generator::builder()));
    registry = configure_rtcp_reports(registry);
    configure_twcc_receiver_only(registry, media).map_err(RtcError::internal)
}

/// ICE consent: robocast pings the browser every 500 ms and hears it (answers, its own
/// pings, RTCP) at least as often. After 1.5 s of silence the link is `disconnected`; the
/// session then ends if it stays so for [`peer::VANISHED_AFTER`], so a viewer that
/// vanished (closed laptop, lost Wi-Fi) gives its slot back and stops costing frames in
/// about 2 s. ICE's own `failed` comes later (5 s), which is also how long connectivity
/// checks may take before a first connection (TURN over a slow link).
const ICE_KEEPALIVE: Duration = Duration::from_millis(500);
const ICE_DISCONNECTED_AFTER: Duration = Duration::from_millis(1500);
const ICE_FAILED_AFTER_DISCONNECTED: Duration = Duration::from_millis(3500);

impl Engine {
    pub fn new(
        ice_servers: &[String],
        turn_secret: Option<crate::auth::Token>,
        link: Bounds,
        audio_bps: u64,
    ) -> Result<Arc<Engine>, RtcError> {
        let ice_servers = ice_servers
            .iter()
            .map(|url| IceServer::parse(url).map_err(RtcError::Internal))
            .collect::<Result<Vec<_>, _>>()?;
        let mut settings = SettingEngine::default();
        // Loopback candidates let a browser on the robot itself (and the tests) connect;
        // mDNS is off because a robot on a closed network gains nothing from it and the
        // browser's mDNS names still connect through peer-reflexive candidates.
        settings.set_include_loopback_candidate(true);
        settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
        settings.set_ice_timeouts(
            Some(ICE_DISCONNECTED_AFTER),
            Some(ICE_FAILED_AFTER_DISCONNECTED),
            Some(ICE_KEEPALIVE),
        );
        Ok(Arc::new(Engine { settings, ice_servers, turn_secret, link, audio_bps }))
    }

    /// The ICE servers for one session (robocast's side and the page's): a TURN server
    /// without a password gets credentials minted now when `turn_secret` is set.
    pub fn ice_servers(&self) -> Vec<IceServer> {
        let Some(secret) = &self.turn_secret else { return self.ice_servers.clone() };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let (username, credential) = turn_credentials(secret.expose(), (now + TURN_CREDENTIAL_TTL).as_secs());
        self.ice_servers
            .iter()
            .map(|server| {
                let turn = server.urls.iter().any(|u| u.starts_with("turn"));
                if turn && server.credential.is_none() {
                    IceServer {
                        username: Some(username.clone()),
                        credential: Some(credential.clone()),
                        ..server.clone()
                    }
                } else {
                    server.clone()
                }
            })
            .collect()
    }

    /// A new session's link estimate, within the configured bounds.
    pub(crate) fn new_link(&self) -> Arc<Link> {
        Link::new(self.link, self.audio_bps)
    }

    /// A webrtc-rs API whose media engine has exactly the offer's chosen codecs, and whose
    /// interceptors feed `link`.
    pub(crate) fn api_for(&self, info: &OfferInfo, link: &Arc<Link>) -> Result<API, RtcError> {
        let mut media = MediaEngine::default();
        let mut registered: Vec<(u8, RTPCodecType)> = Vec::new();
        let sections = [
            (&info.video, RTPCodecType::Video),
            (&info.talk_video, RTPCodecType::Video),
            (&info.audio, RTPCodecType::Audio),
            (&info.talk_audio, RTPCodecType::Audio),
        ];
        for (chosen, kind) in sections {
            let Some(chosen) = chosen else { continue };
            if registered.contains(&(chosen.payload_type, kind)) {
                continue;
            }
            registered.push((chosen.payload_type, kind));
            let parameters = RTCRtpCodecParameters {
                capability: capability(chosen),
                payload_type: chosen.payload_type,
                ..Default::default()
            };
            media.register_codec(parameters, kind).map_err(RtcError::internal)?;
        }
        // Frames are to be shown as soon as they are decoded: see `pump::send_frames`.
        let playout_delay = RTCRtpHeaderExtensionCapability { uri: PLAYOUT_DELAY_URI.into() };
        media
            .register_header_extension(playout_delay, RTPCodecType::Video, None)
            .map_err(RtcError::internal)?;
        let interceptors = interceptors(&mut media, link)?;
        Ok(APIBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(interceptors)
            .with_setting_engine(self.settings.clone())
            .build())
    }
}

/// The machine's IP addresses, for the names of a generated HTTPS certificate.
pub fn host_addresses() -> Vec<std::net::IpAddr> {
    webrtc::util::ifaces::ifaces()
        .map(|interfaces| interfaces.into_iter().filter_map(|i| i.addr.map(|a| a.ip())).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ice_server_urls() {
        let turn = IceServer::parse("turn:robot:secret@turn.example:3478").expect("valid turn");
        // coturn's use-auth-secret: the same as Python's
        // base64(hmac.new(secret, "1700000000:robocast", sha1).digest()).
        let (username, credential) = turn_credentials("north-wind-secret-42", 1_700_000_000);
        assert_eq!(
            (username.as_str(), credential.as_str()),
            ("1700000000:robocast", "EjOdx1PC1Rz31YKF54Z7CRzqIjQ=")
        );
        assert_eq!(turn.urls, ["turn:turn.example:3478"]);
        assert_eq!((turn.username.as_deref(), turn.credential.as_deref()), (Some("robot"), Some("secret")));
        assert!(IceServer::parse("stun:stun.example:3478").is_ok());
        assert!(IceServer::parse("http://x").is_err());
        assert!(IceServer::parse("stun:a:b@host").is_err());
    }
}
