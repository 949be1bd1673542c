//! What a browser's offer asks for, read before any peer connection is built, so a bad or
//! unanswerable offer is a clear 400 that names what is missing.

use webrtc::sdp::SessionDescription;

use super::RtcError;
use crate::media::Codec;

/// The media sections of an offer robocast can send on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OfferInfo {
    /// Video codec to send: H.264 if offered, else VP8.
    pub video: Option<Codec>,
    /// The browser takes Opus audio.
    pub audio: bool,
    /// The offer has an SCTP (data channel) section.
    pub data: bool,
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
    pub fn parse(sdp: String) -> Result<Offer, RtcError> {
        let info = inspect(&sdp)?;
        Ok(Offer { sdp, info })
    }
}

pub fn inspect(sdp: &str) -> Result<OfferInfo, RtcError> {
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
    let mut info = OfferInfo::default();
    let mut offered_video = Vec::new();
    for media in &parsed.media_descriptions {
        let kind = media.media_name.media.as_str();
        let direction = ["sendrecv", "recvonly", "sendonly", "inactive"]
            .into_iter()
            .find(|d| media.attribute(d).is_some())
            .unwrap_or("sendrecv");
        let receives = matches!(direction, "sendrecv" | "recvonly");
        let codecs: Vec<String> = media
            .attributes
            .iter()
            .filter(|a| a.key == "rtpmap")
            .filter_map(|a| a.value.as_deref())
            .filter_map(|v| v.split_whitespace().nth(1))
            .map(|c| c.split('/').next().unwrap_or("").to_ascii_uppercase())
            .collect();
        match kind {
            "video" => {
                offered_video.extend(codecs.iter().cloned());
                if receives && info.video.is_none() {
                    info.video = if codecs.iter().any(|c| c == "H264") {
                        Some(Codec::H264)
                    } else if codecs.iter().any(|c| c == "VP8") {
                        Some(Codec::Vp8)
                    } else {
                        None
                    };
                }
            }
            "audio" => info.audio |= receives && codecs.iter().any(|c| c == "OPUS"),
            "application" => info.data = true,
            _ => {}
        }
    }
    if info.video.is_none() && !info.audio && !info.data {
        let video = if offered_video.is_empty() { "none".to_owned() } else { offered_video.join(", ") };
        return Err(bad(
            format!(
                "the offer has nothing robocast can send: it needs a receiving video section with H.264 or VP8 (offered: {video}) or an audio section with Opus"
            ),
            "use pc.addTransceiver('video', {direction: 'recvonly'}) in a browser that supports H.264 or VP8",
        ));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

    fn offer(media: &str) -> String {
        format!("{HEAD}{media}")
    }

    #[test]
    fn picks_h264_then_vp8() {
        let video = "m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n";
        assert_eq!(inspect(&offer(video)).expect("valid").video, Some(Codec::H264));
        let vp8 =
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n";
        assert_eq!(inspect(&offer(vp8)).expect("valid").video, Some(Codec::Vp8));
    }

    #[test]
    fn unanswerable_offers_say_what_is_missing() {
        let av1 =
            "m=video 9 UDP/TLS/RTP/SAVPF 45\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\na=rtpmap:45 AV1/90000\r\n";
        let err = inspect(&offer(av1)).expect_err("no usable codec").to_string();
        assert!(err.contains("H.264 or VP8") && err.contains("AV1"), "{err}");
        assert!(inspect("").expect_err("empty").to_string().contains("empty"));
        assert!(inspect("hello").expect_err("garbage").to_string().contains("not valid SDP"));
        assert!(inspect(HEAD).expect_err("no media").to_string().contains("no media"));
    }
}
