//! What a browser's offer asks for, read before any peer connection is built, and the
//! codecs robocast will answer with: one both sides can really use, with the payload type
//! and format parameters the browser offered, so webrtc-rs never meets a codec it cannot
//! bind to a track. An offer with nothing usable is a clear 400 that names what is missing.

use webrtc::sdp::SessionDescription;
use webrtc::sdp::description::media::MediaDescription;

use super::RtcError;
use crate::media::{Codec, H264Profile};

/// What robocast can send right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sendable {
    /// The H.264 stream's profile (`None`: no video).
    pub h264: Option<H264Profile>,
    /// A VP8 encoder exists here.
    pub vp8: bool,
    pub opus: bool,
    /// What the robot can play from a talker: H.264 and VP8 on its display, Opus on its speaker.
    pub play_h264: bool,
    pub play_vp8: bool,
    pub play_opus: bool,
}

/// A codec of the offer that robocast will send, as the offer wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    pub codec: Codec,
    pub payload_type: u8,
    pub clock_rate: u32,
    pub channels: u16,
    pub fmtp: String,
}

/// The media sections of an offer robocast can send on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OfferInfo {
    pub video: Option<Chosen>,
    pub audio: Option<Chosen>,
    /// The codecs the browser may send robocast (talk-back), from sections it sends on.
    pub talk_video: Option<Chosen>,
    pub talk_audio: Option<Chosen>,
    /// The offer has an SCTP (data channel) section.
    pub data: bool,
    /// The `a=mid` of each media section, in order (trickled candidates name one).
    pub mids: Vec<String>,
    /// The offer's ICE username fragment: a PATCH with another one is an ICE restart.
    pub ice_ufrag: Option<String>,
}

fn bad(problem: impl Into<String>, hint: impl Into<String>) -> RtcError {
    RtcError::BadOffer { problem: problem.into(), hint: hint.into() }
}

/// An offer that passed [`inspect`]: safe to answer.
#[derive(Debug)]
pub struct Offer {
    pub sdp: String,
    pub info: OfferInfo,
}

impl Offer {
    pub fn parse(sdp: String, sendable: &Sendable) -> Result<Offer, RtcError> {
        let info = inspect(&sdp, sendable)?;
        Ok(Offer { sdp, info })
    }
}

/// One `a=rtpmap` of a media section, with its `a=fmtp`.
#[derive(Debug)]
struct Offered {
    payload_type: u8,
    name: String,
    clock_rate: u32,
    channels: u16,
    fmtp: String,
}

fn attribute_values<'a>(media: &'a MediaDescription, key: &'a str) -> impl Iterator<Item = &'a str> {
    media.attributes.iter().filter(move |a| a.key == key).filter_map(|a| a.value.as_deref())
}

fn offered_codecs(media: &MediaDescription) -> Vec<Offered> {
    let values = |key| attribute_values(media, key);
    values("rtpmap")
        .filter_map(|value| {
            let (pt, encoding) = value.split_once(' ')?;
            let payload_type = pt.trim().parse().ok()?;
            let mut parts = encoding.trim().split('/');
            let name = parts.next()?.to_ascii_uppercase();
            let clock_rate = parts.next()?.parse().ok()?;
            let channels = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1);
            let fmtp = values("fmtp")
                .find_map(|f| f.split_once(' ').filter(|(p, _)| p.trim() == pt.trim()).map(|(_, f)| f.trim()))
                .unwrap_or("")
                .to_owned();
            Some(Offered { payload_type, name, clock_rate, channels, fmtp })
        })
        .collect()
}

fn fmtp_param<'a>(fmtp: &'a str, name: &str) -> Option<&'a str> {
    fmtp.split(';').filter_map(|p| p.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.trim())
}

fn chosen(o: &Offered, codec: Codec) -> Chosen {
    Chosen {
        codec,
        payload_type: o.payload_type,
        clock_rate: o.clock_rate,
        channels: o.channels,
        fmtp: o.fmtp.clone(),
    }
}

/// The video codec to send from `codecs`, or why there is none.
fn choose_video(codecs: &[Offered], sendable: &Sendable) -> Result<Option<Chosen>, RtcError> {
    let Some(stream) = sendable.h264 else { return Ok(None) };
    let h264: Vec<&Offered> = codecs.iter().filter(|c| c.name == "H264" && c.clock_rate == 90_000).collect();
    let mode1: Vec<(&Offered, H264Profile)> = h264
        .iter()
        .filter(|c| fmtp_param(&c.fmtp, "packetization-mode") == Some("1"))
        .filter_map(|c| Some((*c, H264Profile::parse(fmtp_param(&c.fmtp, "profile-level-id")?)?)))
        .collect();
    // The offered profile that is exactly the stream's first, then any that decodes it.
    let same = |p: &H264Profile| p.idc == stream.idc && p.constraints == stream.constraints;
    let best =
        mode1.iter().find(|(_, p)| same(p)).or_else(|| mode1.iter().find(|(_, p)| stream.decodable_by(p)));
    if let Some((offered, _)) = best {
        return Ok(Some(chosen(offered, Codec::H264)));
    }
    let vp8 = codecs.iter().find(|c| c.name == "VP8" && c.clock_rate == 90_000);
    match vp8 {
        Some(vp8) if sendable.vp8 => return Ok(Some(chosen(vp8, Codec::Vp8))),
        _ => {}
    }
    let names: Vec<&str> =
        codecs.iter().map(|c| c.name.as_str()).filter(|n| !matches!(*n, "RTX" | "RED" | "ULPFEC")).collect();
    let offered = if names.is_empty() { "none".to_owned() } else { names.join(", ") };
    let no_vp8 = if vp8.is_some() {
        " and this robot has no VP8 encoder (vp8enc, in gstreamer1.0-plugins-good)"
    } else {
        ""
    };
    let problem = if !h264.is_empty() && mode1.is_empty() {
        format!(
            "the offer's H.264 has no packetization-mode=1, which robocast sends (fmtp: {}){no_vp8}",
            h264.iter()
                .map(|c| if c.fmtp.is_empty() { "none" } else { c.fmtp.as_str() })
                .collect::<Vec<_>>()
                .join(" | ")
        )
    } else if !mode1.is_empty() {
        format!(
            "robocast sends H.264 {} (profile-level-id {stream}), which none of the offered profiles ({}) decodes{no_vp8}",
            stream.name(),
            mode1.iter().map(|(_, p)| p.to_string()).collect::<Vec<_>>().join(", ")
        )
    } else if vp8.is_some() {
        format!("the offer accepts only VP8 video{no_vp8}")
    } else {
        format!("the offer's video accepts neither H.264 nor VP8 (offered: {offered})")
    };
    Err(bad(
        problem,
        "offer H.264 with packetization-mode=1 (every current browser does), or install vp8enc on the robot",
    ))
}

fn playable(codec: Codec, sendable: &Sendable) -> bool {
    match codec {
        Codec::H264 => sendable.play_h264,
        Codec::Vp8 => sendable.play_vp8,
        Codec::Opus => sendable.play_opus,
    }
}

/// The video codec a talker should send on a section robocast does not send on: H.264
/// (packetization-mode 1: hardware decoders take it) first, then VP8.
fn choose_talk_video(codecs: &[Offered], sendable: &Sendable) -> Option<Chosen> {
    let h264 = codecs.iter().find(|c| {
        c.name == "H264" && c.clock_rate == 90_000 && fmtp_param(&c.fmtp, "packetization-mode") == Some("1")
    });
    let vp8 = codecs.iter().find(|c| c.name == "VP8" && c.clock_rate == 90_000);
    h264.filter(|_| sendable.play_h264)
        .map(|c| chosen(c, Codec::H264))
        .or_else(|| vp8.filter(|_| sendable.play_vp8).map(|c| chosen(c, Codec::Vp8)))
}

/// ICE credentials within RFC 8839's bounds (ufrag 4 to 256 characters, password 22 to
/// 256). webrtc-rs would take a longer one and then log an error for every STUN message
/// it cannot build with it.
fn check_ice_credentials(parsed: &SessionDescription) -> Result<(), RtcError> {
    let pairs = |attributes: &'_ [webrtc::sdp::description::common::Attribute]| {
        attributes.iter().map(|a| (a.key.clone(), a.value.clone().unwrap_or_default())).collect::<Vec<_>>()
    };
    let mut all = pairs(&parsed.attributes);
    for media in &parsed.media_descriptions {
        all.extend(pairs(&media.attributes));
    }
    for (key, value) in all {
        let bounds = match key.as_str() {
            "ice-ufrag" => 4..=256,
            "ice-pwd" => 22..=256,
            _ => continue,
        };
        let length = value.chars().count();
        if !bounds.contains(&length) {
            return Err(bad(
                format!(
                    "the offer's {key} is {length} characters; ICE allows {} to {}",
                    bounds.start(),
                    bounds.end()
                ),
                "send the SDP from RTCPeerConnection.createOffer() unmodified",
            ));
        }
    }
    Ok(())
}

pub fn inspect(sdp: &str, sendable: &Sendable) -> Result<OfferInfo, RtcError> {
    if sdp.trim().is_empty() {
        return Err(bad("the offer is empty", "send the SDP from RTCPeerConnection.createOffer()"));
    }
    let mut reader = std::io::Cursor::new(sdp.as_bytes());
    let parsed = SessionDescription::unmarshal(&mut reader).map_err(|e| {
        bad(format!("the offer is not valid SDP: {e}"), "send the SDP from RTCPeerConnection.createOffer()")
    })?;
    if parsed.media_descriptions.is_empty() {
        return Err(bad(
            "the offer has no media sections",
            "add transceivers before createOffer(), e.g. pc.addTransceiver('video', {direction: 'recvonly'})",
        ));
    }
    check_ice_credentials(&parsed)?;
    let mut info = OfferInfo { ice_ufrag: parsed.attribute("ice-ufrag").cloned(), ..OfferInfo::default() };
    for media in &parsed.media_descriptions {
        info.mids.push(media.attribute("mid").flatten().unwrap_or_default().to_owned());
        if info.ice_ufrag.is_none() {
            info.ice_ufrag = media.attribute("ice-ufrag").flatten().map(str::to_owned);
        }
        let direction = ["sendrecv", "recvonly", "sendonly", "inactive"]
            .into_iter()
            .find(|d| media.attribute(d).is_some())
            .unwrap_or("sendrecv");
        let receives = matches!(direction, "sendrecv" | "recvonly");
        let sends = matches!(direction, "sendrecv" | "sendonly");
        let codecs = offered_codecs(media);
        let opus = || {
            codecs.iter().find(|c| c.name == "OPUS" && c.clock_rate == 48_000).map(|c| chosen(c, Codec::Opus))
        };
        match media.media_name.media.as_str() {
            "video" => {
                let mut sent = None;
                if receives && info.video.is_none() {
                    info.video = choose_video(&codecs, sendable)?;
                    sent = info.video.clone();
                }
                if sends && info.talk_video.is_none() {
                    // One codec per section: on a two-way section the talker sends with
                    // the codec robocast sends.
                    info.talk_video = match sent {
                        Some(sent) => Some(sent).filter(|c| playable(c.codec, sendable)),
                        None => choose_talk_video(&codecs, sendable),
                    };
                }
            }
            "audio" => {
                if receives && info.audio.is_none() && sendable.opus {
                    info.audio = opus();
                }
                if sends && info.talk_audio.is_none() && sendable.play_opus {
                    info.talk_audio = opus();
                }
            }
            "application" => info.data = true,
            _ => {}
        }
    }
    let talks = info.talk_video.is_some() || info.talk_audio.is_some();
    if info.video.is_none() && info.audio.is_none() && !info.data && !talks {
        return Err(bad(
            "the offer has nothing robocast can send: it needs a receiving video section with H.264 or VP8 or an audio section with Opus",
            "use pc.addTransceiver('video', {direction: 'recvonly'}) in a browser that supports H.264 or VP8",
        ));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
    const ALL: Sendable = Sendable {
        h264: Some(H264Profile::CONSTRAINED_BASELINE),
        vp8: true,
        opus: true,
        play_h264: true,
        play_vp8: true,
        play_opus: true,
    };

    fn offer(media: &str) -> String {
        format!("{HEAD}{media}")
    }

    fn video(lines: &str) -> String {
        offer(&format!(
            "m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n{lines}"
        ))
    }

    const VP8: &str = "a=rtpmap:96 VP8/90000\r\n";

    #[test]
    fn answers_with_the_offered_h264_that_decodes_the_stream() {
        let sdp = video(&format!(
            "{VP8}a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
             a=rtpmap:108 H264/90000\r\na=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
        ));
        let chosen = inspect(&sdp, &ALL).expect("valid").video.expect("video");
        assert_eq!((chosen.codec, chosen.payload_type), (Codec::H264, 108), "the exact profile wins");
        assert!(chosen.fmtp.contains("42e01f"), "{}", chosen.fmtp);
        let vp8 = inspect(&video(VP8), &ALL).expect("valid").video.expect("video");
        assert_eq!((vp8.codec, vp8.payload_type), (Codec::Vp8, 96));
    }

    #[test]
    fn h264_the_stream_cannot_use_falls_back_to_vp8_or_says_why() {
        for h264 in [
            "a=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=0;profile-level-id=42e01f\r\n",
            "a=rtpmap:102 H264/90000\r\na=fmtp:102 profile-level-id=42e01f\r\n",
            "a=rtpmap:102 H264/90000\r\n",
        ] {
            let with_vp8 = inspect(&video(&format!("{VP8}{h264}")), &ALL).expect("VP8 instead");
            assert_eq!(with_vp8.video.map(|c| c.codec), Some(Codec::Vp8), "{h264}");
            let err = inspect(&video(h264), &ALL).expect_err("no usable codec").to_string();
            assert!(err.contains("packetization-mode=1"), "{err}");
        }
        let high_stream = Sendable { h264: H264Profile::parse("640028"), ..ALL };
        let baseline_only =
            video("a=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n");
        let err = inspect(&baseline_only, &high_stream).expect_err("high is not baseline").to_string();
        assert!(err.contains("H.264 high (profile-level-id 640028)") && err.contains("42e01f"), "{err}");
        let no_vp8 = Sendable { vp8: false, ..ALL };
        let err = inspect(&video(VP8), &no_vp8).expect_err("no VP8 encoder").to_string();
        assert!(err.contains("only VP8") && err.contains("no VP8 encoder"), "{err}");
    }

    #[test]
    fn unanswerable_offers_say_what_is_missing() {
        let av1 =
            "m=video 9 UDP/TLS/RTP/SAVPF 45\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\na=rtpmap:45 AV1/90000\r\n";
        let err = inspect(&offer(av1), &ALL).expect_err("no usable codec").to_string();
        assert!(err.contains("neither H.264 nor VP8") && err.contains("AV1"), "{err}");
        assert!(inspect("", &ALL).expect_err("empty").to_string().contains("empty"));
        assert!(inspect("hello", &ALL).expect_err("garbage").to_string().contains("not valid SDP"));
        assert!(inspect(HEAD, &ALL).expect_err("no media").to_string().contains("no media"));
        let long =
            video(&format!("{VP8}a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n", "u".repeat(600), "p".repeat(24)));
        let err = inspect(&long, &ALL).expect_err("too long").to_string();
        assert!(err.contains("ice-ufrag is 600 characters"), "{err}");
    }

    #[test]
    fn two_way_and_send_only_sections_choose_what_the_talker_sends() {
        let h264 = "a=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n";
        let two_way = offer(&format!(
            "m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n{VP8}{h264}\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n"
        ));
        let info = inspect(&two_way, &ALL).expect("valid");
        assert_eq!(info.video, info.talk_video, "one codec each way on a two-way section");
        assert_eq!(info.talk_audio.map(|c| c.payload_type), Some(111));
        // WHIP: send-only sections, and a robot with no camera of its own.
        let whip = two_way.replace("a=sendrecv", "a=sendonly");
        let no_camera = Sendable { h264: None, vp8: false, ..ALL };
        let info = inspect(&whip, &no_camera).expect("valid");
        assert_eq!((info.video, info.audio), (None, None), "nothing to send on send-only sections");
        assert_eq!(info.talk_video.map(|c| (c.codec, c.payload_type)), Some((Codec::H264, 102)));
        let vp8_only = Sendable { play_h264: false, ..no_camera };
        let info = inspect(&whip, &vp8_only).expect("valid");
        assert_eq!(info.talk_video.map(|c| c.codec), Some(Codec::Vp8));
        let silent = Sendable { play_h264: false, play_vp8: false, play_opus: false, ..no_camera };
        assert!(inspect(&whip, &silent).is_err(), "nothing either way");
    }
}
