//! The bodies of robocast's fuzz targets, one `pub fn <target>(data: &[u8])` each, shared
//! by the libFuzzer binaries (`fuzz/fuzz_targets/*.rs`) and the corpus replay in the
//! normal test suite (`tests/fuzz_corpus.rs`), so the replay runs exactly the fuzzed code.
//!
//! Each target feeds one parser what the network or the control socket can hand it, and
//! asserts what must hold of its answer, not only that it returns: an accepted input
//! satisfies the parser's promises, a refused one says why.

use robocast::auth::{Access, Denied, Token, Tokens};
use robocast::config::{Config, FileConfig};
use robocast::control::{Payload, read_browser_message};
use robocast::http::{ApiError, MAX_BODY, read_connect_body};
use robocast::media::{Codec, H264Profile};
use robocast::rtc::RtcError;
use robocast::rtc::offer::{self, Chosen, Offer, OfferInfo, Sendable};
use robocast::rtc::trickle;
use serde_json::Value;

/// A target: takes any bytes, panics when a property does not hold.
pub type Target = fn(&[u8]);

/// Every target by name; a corpus lives in `fuzz/corpus/<name>/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("offer_sdp", offer_sdp),
    ("connect_body", connect_body),
    ("trickle", trickle),
    ("channel_message", channel_message),
    ("socket_line", socket_line),
    ("config_file", config_file),
    ("authorization", authorization),
];

/// What the robot can send and play, in the shapes robocast really runs in.
fn sendables() -> [Sendable; 5] {
    let all = Sendable {
        h264: Some(H264Profile::CONSTRAINED_BASELINE),
        vp8: true,
        opus: true,
        play_h264: true,
        play_vp8: true,
        play_opus: true,
    };
    [
        all,
        // A camera's own high-profile H.264, no VP8 encoder, nothing to play on.
        Sendable {
            h264: H264Profile::parse("640028"),
            vp8: false,
            play_h264: false,
            play_vp8: false,
            play_opus: false,
            ..all
        },
        // A plain-baseline stream (no constraint_set1): only baseline decoders take it.
        Sendable { h264: H264Profile::parse("42001f"), ..all },
        // No camera, a speaker and a display: what a WHIP talker meets.
        Sendable { h264: None, vp8: false, opus: false, ..all },
        // Audio only.
        Sendable { h264: None, vp8: false, play_h264: false, play_vp8: false, ..all },
    ]
}

/// The value of `name` in an `a=fmtp` parameter list (`k=v;k=v`).
fn fmtp_param<'a>(fmtp: &'a str, name: &str) -> Option<&'a str> {
    fmtp.split(';').filter_map(|p| p.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.trim())
}

/// A codec robocast sends must be one the robot has and one the browser can decode.
fn check_sent(chosen: &Chosen, sendable: &Sendable, sdp: &str) {
    match chosen.codec {
        Codec::H264 => {
            let stream = sendable.h264.expect("H.264 chosen without an H.264 stream");
            assert_eq!(fmtp_param(&chosen.fmtp, "packetization-mode"), Some("1"), "{sdp:?}");
            let offered = fmtp_param(&chosen.fmtp, "profile-level-id").and_then(H264Profile::parse);
            let offered = offered.expect("H.264 chosen without a profile-level-id");
            let same = offered.idc == stream.idc && offered.constraints == stream.constraints;
            assert!(same || stream.decodable_by(&offered), "{stream} sent to {offered}: {sdp:?}");
            assert_eq!(chosen.clock_rate, 90_000);
        }
        Codec::Vp8 => {
            assert!(sendable.vp8, "VP8 chosen without a VP8 encoder: {sdp:?}");
            assert_eq!(chosen.clock_rate, 90_000);
        }
        Codec::Opus => panic!("Opus chosen as the video codec: {sdp:?}"),
    }
}

/// What a talker sends must be something the robot plays.
fn check_played(chosen: &Chosen, sendable: &Sendable, sdp: &str) {
    let playable = match chosen.codec {
        Codec::H264 => sendable.play_h264,
        Codec::Vp8 => sendable.play_vp8,
        Codec::Opus => sendable.play_opus,
    };
    assert!(playable, "a talker's {} is not playable here: {sdp:?}", chosen.codec);
}

fn check_offer(info: &OfferInfo, sendable: &Sendable, sdp: &str) {
    let chosen = [&info.video, &info.audio, &info.talk_video, &info.talk_audio];
    assert!(
        info.data || chosen.iter().any(|c| c.is_some()),
        "an accepted offer has nothing to send, play or carry: {sdp:?}"
    );
    assert!(!info.mids.is_empty(), "an accepted offer has a media section: {sdp:?}");
    if let Some(video) = &info.video {
        check_sent(video, sendable, sdp);
    }
    if let Some(audio) = &info.audio {
        assert!(audio.codec == Codec::Opus && sendable.opus && audio.clock_rate == 48_000, "{sdp:?}");
    }
    if let Some(talk) = &info.talk_video {
        assert!(matches!(talk.codec, Codec::H264 | Codec::Vp8), "{sdp:?}");
        check_played(talk, sendable, sdp);
    }
    if let Some(talk) = &info.talk_audio {
        assert!(talk.codec == Codec::Opus && talk.clock_rate == 48_000, "{sdp:?}");
        check_played(talk, sendable, sdp);
    }
    if let Some(ufrag) = &info.ice_ufrag {
        assert!((4..=256).contains(&ufrag.chars().count()), "ice-ufrag out of bounds: {sdp:?}");
    }
}

/// A refusal the HTTP layer answers with 400 says what is wrong and what to do.
fn check_rtc_refusal(error: &RtcError) {
    match error {
        RtcError::BadOffer { problem, hint } => assert!(!problem.is_empty() && !hint.is_empty()),
        // Parsing never fails on our side or asks for an ICE restart.
        other => panic!("an offer refused with {other:?}"),
    }
}

/// `POST /whep`, `/whip` and `/api/connect` (as SDP): the offer, read against each kind
/// of robot. Only UTF-8 text of at most [`MAX_BODY`] bytes gets this far.
pub fn offer_sdp(data: &[u8]) {
    let Ok(sdp) = std::str::from_utf8(data) else { return };
    if sdp.len() > MAX_BODY {
        return;
    }
    for sendable in sendables() {
        match Offer::parse(sdp.to_owned(), &sendable) {
            Ok(offer) => {
                assert_eq!(offer.sdp, sdp, "the offer is answered as it came");
                check_offer(&offer.info, &sendable, sdp);
                assert_eq!(offer::inspect(sdp, &sendable).ok(), Some(offer.info), "inspect is deterministic");
            }
            Err(error) => check_rtc_refusal(&error),
        }
    }
}

/// `POST /api/connect`: the first line is the request's media type (as robocast reduces
/// it: lower-case, no parameters), the rest is the body.
pub fn connect_body(data: &[u8]) {
    let (kind, body) = match data.iter().position(|&b| b == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (&b""[..], data),
    };
    let Ok(kind) = std::str::from_utf8(kind) else { return };
    if body.len() > MAX_BODY {
        return;
    }
    match read_connect_body(kind, body) {
        Ok((sdp, as_json)) => {
            if as_json {
                assert_ne!(kind, "application/sdp", "an SDP body read as JSON");
                let value: Value = serde_json::from_slice(body).expect("accepted JSON is JSON");
                assert_eq!(value["type"], "offer", "only offers are accepted");
                assert_eq!(value["sdp"].as_str(), Some(sdp.as_str()), "the SDP is the body's `sdp`");
            } else {
                assert_ne!(kind, "application/json", "a JSON body read as SDP");
                assert_eq!(sdp.as_bytes(), body, "an SDP body is taken verbatim");
                let start = body.trim_ascii_start();
                assert!(kind == "application/sdp" || start.starts_with(b"v="), "sniffed as SDP: {body:?}");
            }
            // What open_session does next, on a robot with everything.
            match Offer::parse(sdp, &sendables()[0]) {
                Ok(offer) => check_offer(&offer.info, &sendables()[0], &offer.sdp),
                Err(error) => check_rtc_refusal(&error),
            }
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            match &error {
                ApiError::BadRequest { hint, .. } => assert!(!hint.is_empty()),
                ApiError::UnsupportedMediaType(given, hint) => {
                    assert_eq!(given, kind);
                    assert!(!hint.is_empty());
                }
                other => panic!("a body refused with {other:?}"),
            }
        }
    }
}

/// `PATCH` with `application/trickle-ice-sdpfrag`: the first line holds the offer's mids
/// (space-separated), the second its ICE ufrag (empty: none), the rest is the fragment.
pub fn trickle(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.len() > MAX_BODY {
        return;
    }
    let mut parts = text.splitn(3, '\n');
    let mids: Vec<String> = parts.next().unwrap_or("").split(' ').map(str::to_owned).collect();
    let ufrag = parts.next().filter(|u| !u.is_empty());
    let fragment = parts.next().unwrap_or("");
    match trickle::parse(fragment, &mids, ufrag) {
        Ok(candidates) => {
            assert!(candidates.len() <= fragment.lines().count());
            for candidate in candidates {
                assert!(candidate.candidate.starts_with("candidate:"), "{candidate:?}");
                assert!(!candidate.candidate.contains('\n'), "{candidate:?}");
                let index = usize::from(candidate.mline_index);
                assert_eq!(mids.get(index), Some(&candidate.mid), "mid and index agree: {candidate:?}");
            }
        }
        Err(RtcError::IceRestart) => assert!(ufrag.is_some(), "an ICE restart without a ufrag"),
        Err(RtcError::BadOffer { problem, hint }) => assert!(!problem.is_empty() && !hint.is_empty()),
        Err(other) => panic!("a fragment refused with {other:?}"),
    }
}

/// JSON values equal, numbers to within a few units in the last place: serde_json (built
/// without `float_roundtrip`) may read a number of more than 17 significant digits one
/// unit off, so a re-serialised message can differ there (JSON.stringify never writes
/// such numbers). Found by fuzzing, target `channel_message`.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => {
                x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
            }
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, a)| y.get(k).is_some_and(|b| same(a, b)))
        }
        _ => a == b,
    }
}

/// A browser's data-channel message: text when it is UTF-8 (as webrtc-rs hands it over),
/// otherwise a binary message of its length.
pub fn channel_message(data: &[u8]) {
    let payload = match std::str::from_utf8(data) {
        Ok(text) => Payload::Text(text.to_owned()),
        Err(_) => Payload::Binary(data.len()),
    };
    let text = match &payload {
        Payload::Text(text) => Some(text.clone()),
        Payload::Binary(_) => None,
    };
    match read_browser_message(payload) {
        Ok(message) => {
            let text = text.expect("only text is accepted");
            assert!(text.len() <= robocast::control::MAX_MESSAGE);
            assert!(!message.data.contains(['\n', '\r']), "a program reads one line: {:?}", message.data);
            let breaks = ['\u{85}', '\u{2028}', '\u{2029}'];
            assert!(!message.data.contains(breaks), "no line reader splits it: {:?}", message.data);
            if !text.contains(['\n', '\r']) && !text.contains(breaks) {
                assert_eq!(message.data, text.trim(), "a one-line message goes to programs verbatim");
            }
            // The line the hub writes to programs, as it writes it.
            let line = format!(
                r#"{{"type":"message","session":"0123","channel":"default","data":{}}}"#,
                message.data
            );
            let parsed: Value = serde_json::from_str(&line).expect("the program's line is JSON");
            assert!(
                same(&parsed["data"], &message.value),
                "the program gets what the browser sent: {text:?}"
            );
        }
        Err((error, hint)) => assert!(!error.is_empty() && !hint.is_empty()),
    }
}

/// A line from a program on the control socket (robocast refuses non-UTF-8 before this).
pub fn socket_line(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.len() > robocast::control::socket::MAX_LINE {
        return;
    }
    match robocast::control::socket::read_line(text) {
        Ok((to, channel, data)) => {
            assert!((1..=128).contains(&channel.len()), "channel {channel:?}");
            assert!(data.len() <= robocast::control::MAX_MESSAGE);
            let forwarded: Value = serde_json::from_str(&data).expect("the data sent on is JSON");
            let sent: Value = serde_json::from_str(text).expect("an accepted line is JSON");
            assert!(same(&sent["data"], &forwarded), "browsers get what the program sent: {text:?}");
            if let Some(id) = to {
                let parsed = robocast::sessions::SessionId::parse(&id.to_string());
                assert_eq!(parsed.as_ref(), Some(&id), "a session id reads back");
            }
        }
        Err(problem) => assert!(!problem.is_empty()),
    }
}

/// The configuration file, as `Config::load` reads it: parse, apply, validate.
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = match FileConfig::parse(text) {
        Ok(file) => file,
        Err(message) => return assert!(!message.is_empty()),
    };
    let mut config = Config::default();
    if let Err(error) = config.apply_file(&file).and_then(|()| config.validate()) {
        assert!(!error.to_string().is_empty());
        return;
    }
    // What validate() promises the rest of robocast.
    assert!((16..=3840).contains(&config.width) && (16..=2160).contains(&config.height));
    assert!(config.width % 2 == 0 && config.height % 2 == 0);
    assert!((1..=120).contains(&config.fps) && config.max_viewers >= 1);
    assert!((50..=60_000).contains(&config.deadman_ms));
    for token in [&config.viewer_token, &config.operator_token, &config.turn_secret].into_iter().flatten() {
        let secret = token.expose();
        assert!(secret.len() >= robocast::auth::MIN_TOKEN_LEN);
        assert!(secret.bytes().all(|b| b.is_ascii_graphic()));
    }
    if config.viewer_token.is_some() {
        assert_ne!(config.viewer_token, config.operator_token, "one token for both roles");
    }
}

const OPERATOR: &str = "operator-secret-0123456789";
const VIEWER: &str = "viewer-secret-abcdefghij";

/// The `Authorization` header, checked with open viewing and with a viewer token.
pub fn authorization(data: &[u8]) {
    let operator = Token::new(OPERATOR).expect("a valid token");
    let viewer = Token::new(VIEWER).expect("a valid token");
    let contains = |needle: &str| data.windows(needle.len()).any(|w| w == needle.as_bytes());
    for tokens in [Tokens::new(None, operator.clone()), Tokens::new(Some(viewer.clone()), operator.clone())] {
        match tokens.check(Some(data)) {
            Ok(Access::Operator) => {
                assert!(contains(OPERATOR), "operator granted without its token: {data:?}");
                let header = data.trim_ascii();
                assert!(header.len() >= 7 && header[..6].eq_ignore_ascii_case(b"bearer"), "{data:?}");
                assert!(header.ends_with(OPERATOR.as_bytes()), "{data:?}");
            }
            Ok(Access::Viewer) => {
                assert!(!tokens.viewing_is_open(), "a header gave a viewer role where none is needed");
                assert!(contains(VIEWER), "viewer granted without its token: {data:?}");
            }
            Err(Denied::Missing) => panic!("a header was taken for no header: {data:?}"),
            Err(Denied::Wrong | Denied::Malformed) => {}
        }
    }
    // A token given in the configuration or kept in the state directory.
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(token) = Token::new(text)
    {
        assert!(token.expose().len() >= robocast::auth::MIN_TOKEN_LEN);
        assert!(token.expose().bytes().all(|b| b.is_ascii_graphic()), "{text:?}");
        let header = format!("Bearer {}", token.expose());
        let tokens = Tokens::new(None, token);
        assert_eq!(tokens.check(Some(header.as_bytes())), Ok(Access::Operator), "a token opens its own door");
    }
}
