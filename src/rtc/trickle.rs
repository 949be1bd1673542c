//! Trickled ICE candidates in a WHEP/WHIP `PATCH` (an `application/trickle-ice-sdpfrag`
//! body, RFC 8840): which candidates, for which media section, and whether the client is
//! asking for an ICE restart (new `ice-ufrag`), which robocast does not do.

use super::RtcError;

/// One candidate line with the media section it belongs to.
#[derive(Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The `candidate:...` attribute value.
    pub candidate: String,
    pub mid: String,
    pub mline_index: u16,
}

/// The most candidates one session may trickle, over all its `PATCH`es. A browser gathers
/// a few per network interface (host, server-reflexive, relay; UDP and TCP); without a
/// bound a 64 KiB body holds ~1,500, each of which webrtc-rs would check connectivity to.
pub const MAX_CANDIDATES: usize = 64;

/// Reads a fragment against the offer's media sections (`mids`, in order) and ICE
/// username fragment. Candidates before any `a=mid` belong to the first section.
pub fn parse(fragment: &str, mids: &[String], ufrag: Option<&str>) -> Result<Vec<Candidate>, RtcError> {
    let mut section = 0usize;
    let mut candidates = Vec::new();
    for line in fragment.lines().map(str::trim) {
        if let Some(theirs) = line.strip_prefix("a=ice-ufrag:") {
            if ufrag.is_some_and(|ours| ours != theirs.trim()) {
                return Err(RtcError::IceRestart);
            }
        } else if let Some(mid) = line.strip_prefix("a=mid:") {
            let mid = mid.trim();
            section = mids.iter().position(|m| m == mid).ok_or_else(|| RtcError::BadOffer {
                problem: format!(
                    "the fragment names media section `a=mid:{mid}`, which the offer does not have"
                ),
                hint: format!("use a mid of the offer: {}", mids.join(", ")),
            })?;
        } else if let Some(candidate) = line.strip_prefix("a=").filter(|l| l.starts_with("candidate:")) {
            if candidates.len() == MAX_CANDIDATES {
                return Err(too_many());
            }
            candidates.push(Candidate {
                candidate: candidate.to_owned(),
                mid: mids.get(section).cloned().unwrap_or_default(),
                mline_index: u16::try_from(section).unwrap_or(u16::MAX),
            });
        }
    }
    Ok(candidates)
}

/// The refusal of candidates beyond [`MAX_CANDIDATES`].
pub fn too_many() -> RtcError {
    RtcError::BadOffer {
        problem: format!("more than {MAX_CANDIDATES} trickled ICE candidates for one session"),
        hint: "send the candidates the browser gathered, not more; a new session starts afresh".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mids() -> Vec<String> {
        vec!["v".into(), "a".into()]
    }

    #[test]
    fn candidates_keep_their_media_section() {
        let fragment = "a=ice-ufrag:abcd\r\na=ice-pwd:secret\r\na=mid:a\r\n\
                        a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\na=end-of-candidates\r\n";
        let parsed = parse(fragment, &mids(), Some("abcd")).expect("valid");
        assert_eq!(parsed.len(), 1);
        assert_eq!((parsed[0].mid.as_str(), parsed[0].mline_index), ("a", 1), "not assumed to be mid 0");
        let first = parse("a=candidate:1 1 udp 1 127.0.0.1 9 typ host", &mids(), None).expect("valid");
        assert_eq!((first[0].mid.as_str(), first[0].mline_index), ("v", 0));
    }

    #[test]
    fn a_new_ufrag_is_an_ice_restart_and_an_unknown_mid_an_error() {
        let restart = parse("a=ice-ufrag:new\r\na=ice-pwd:x\r\n", &mids(), Some("old"));
        assert!(matches!(restart, Err(RtcError::IceRestart)), "{restart:?}");
        let unknown = parse("a=mid:9\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host", &mids(), None);
        let err = unknown.expect_err("unknown mid").to_string();
        assert!(err.contains("a=mid:9") && err.contains("does not have"), "{err}");
    }

    #[test]
    fn a_fragment_holds_at_most_max_candidates() {
        let line = "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n";
        let full = line.repeat(MAX_CANDIDATES);
        assert_eq!(parse(&full, &mids(), None).expect("at the bound").len(), MAX_CANDIDATES);
        let over = parse(&(full + line), &mids(), None).expect_err("over the bound").to_string();
        assert!(over.contains("more than 64 trickled ICE candidates"), "{over}");
    }
}
