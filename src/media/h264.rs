//! The H.264 profile of a stream, read from its sequence parameter set, in the terms SDP
//! uses (`profile-level-id`): what robocast tells a browser it sends, and which of the
//! browser's offered profiles can decode it.

use std::fmt;

/// `profile_idc`, the constraint-flag byte and `level_idc`: the three bytes of an SPS after
/// its NAL header, and of a `profile-level-id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H264Profile {
    pub idc: u8,
    pub constraints: u8,
    pub level: u8,
}

const BASELINE: u8 = 66;
const MAIN: u8 = 77;
const HIGH: u8 = 100;
/// `constraint_set1_flag`: with baseline, the stream is also valid main profile
/// (constrained baseline).
const CONSTRAINT_SET1: u8 = 0x40;

impl H264Profile {
    /// What robocast's encoders make (`profile=constrained-baseline`), level 3.1.
    pub const CONSTRAINED_BASELINE: H264Profile =
        H264Profile { idc: BASELINE, constraints: 0xe0, level: 0x1f };

    /// The first SPS in an Annex B access unit (start codes, NAL type 7).
    pub fn from_sps(annex_b: &[u8]) -> Option<H264Profile> {
        let mut rest = annex_b;
        while let Some(start) = rest.windows(3).position(|w| w == [0, 0, 1]) {
            let nal = &rest[start + 3..];
            if let [header, idc, constraints, level, ..] = *nal
                && header & 0x1f == 7
            {
                return Some(H264Profile { idc, constraints, level });
            }
            rest = nal;
        }
        None
    }

    /// A `profile-level-id` such as `42e01f`.
    pub fn parse(id: &str) -> Option<H264Profile> {
        let byte = |i: usize| id.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok());
        (id.len() == 6).then_some(())?;
        Some(H264Profile { idc: byte(0)?, constraints: byte(2)?, level: byte(4)? })
    }

    pub fn name(&self) -> &'static str {
        match self.idc {
            BASELINE if self.constraints & CONSTRAINT_SET1 != 0 => "constrained baseline",
            BASELINE => "baseline",
            MAIN => "main",
            88 => "extended",
            HIGH => "high",
            110 => "high 10",
            122 => "high 4:2:2",
            244 => "high 4:4:4",
            _ => "unknown",
        }
    }

    /// Whether a decoder of the `offered` profile decodes this stream (the level is
    /// negotiable: browsers set `level-asymmetry-allowed`). Constrained baseline is a subset
    /// of baseline, main and high; main of high.
    pub fn decodable_by(&self, offered: &H264Profile) -> bool {
        let constrained_baseline = self.idc == BASELINE && self.constraints & CONSTRAINT_SET1 != 0;
        match self.idc {
            _ if constrained_baseline => matches!(offered.idc, BASELINE | MAIN | HIGH),
            BASELINE => offered.idc == BASELINE && offered.constraints & CONSTRAINT_SET1 == 0,
            MAIN => matches!(offered.idc, MAIN | HIGH),
            idc => offered.idc == idc,
        }
    }
}

impl fmt::Display for H264Profile {
    /// The `profile-level-id` form, `42e01f`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}{:02x}{:02x}", self.idc, self.constraints, self.level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_profile_from_the_sps() {
        // AUD, then an SPS of High profile level 4 (as a webcam's encoder might send).
        let unit = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x64, 0x00, 0x28, 0xac, 0, 0, 1, 0x68, 0xee];
        let high = H264Profile::from_sps(&unit).expect("an SPS");
        assert_eq!((high.to_string().as_str(), high.name()), ("640028", "high"));
        assert_eq!(H264Profile::from_sps(&[0, 0, 1, 0x65, 0x88]), None, "an IDR slice alone has no SPS");
        assert_eq!(H264Profile::parse("42e01f"), Some(H264Profile::CONSTRAINED_BASELINE));
        assert_eq!(H264Profile::parse("42e0"), None);
        assert_eq!(H264Profile::parse("zz001f"), None);
    }

    #[test]
    fn which_offered_profiles_decode_which_stream() {
        let p = |id: &str| H264Profile::parse(id).expect("valid id");
        let cb = H264Profile::CONSTRAINED_BASELINE;
        for offered in ["42e01f", "42001f", "4d001f", "640c1f"] {
            assert!(cb.decodable_by(&p(offered)), "constrained baseline for {offered}");
        }
        assert!(!p("640028").decodable_by(&p("42e01f")), "high is not baseline");
        assert!(p("640028").decodable_by(&p("640c1f")), "levels are negotiable");
        assert!(p("4d0028").decodable_by(&p("640c1f")) && !p("4d0028").decodable_by(&p("42e01f")));
    }
}
