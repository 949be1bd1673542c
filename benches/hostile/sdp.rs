//! Broken offers: a real offer split into lines and sections, then mutated one way at a
//! time (truncated, m-lines removed or duplicated, odd attributes, codecs robocast cannot
//! send, H.264 variants browsers really offer, ICE and DTLS lines missing or bogus).

use super::inputs::Rng;

/// An SDP split into its session part and media sections, line by line.
#[derive(Clone)]
struct Sdp {
    session: Vec<String>,
    media: Vec<Vec<String>>,
}

impl Sdp {
    fn parse(text: &str) -> Sdp {
        let mut sdp = Sdp { session: Vec::new(), media: Vec::new() };
        for line in text.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.is_empty()) {
            if line.starts_with("m=") {
                sdp.media.push(vec![line.to_owned()]);
            } else if let Some(section) = sdp.media.last_mut() {
                section.push(line.to_owned());
            } else {
                sdp.session.push(line.to_owned());
            }
        }
        sdp
    }

    fn render(&self) -> String {
        let lines = self.session.iter().chain(self.media.iter().flatten());
        lines.map(|l| format!("{l}\r\n")).collect()
    }

    fn kind(section: &[String]) -> &str {
        section.first().and_then(|m| m.strip_prefix("m=")).and_then(|m| m.split(' ').next()).unwrap_or("")
    }

    fn index(&self, kind: &str) -> Option<usize> {
        self.media.iter().position(|s| Sdp::kind(s) == kind)
    }

    /// Applies `f` to every line of every section of `kind` (the m-line included).
    fn edit(mut self, kind: &str, f: impl Fn(&mut Vec<String>)) -> Sdp {
        for section in self.media.iter_mut().filter(|s| Sdp::kind(s) == kind) {
            f(section);
        }
        self
    }

    /// Removes every line (session and media) for which `drop` is true.
    fn without(mut self, drop: impl Fn(&str) -> bool) -> Sdp {
        self.session.retain(|l| !drop(l));
        for section in &mut self.media {
            section.retain(|l| !drop(l));
        }
        self
    }

    /// Replaces every line that starts with `prefix` by `f(line)`.
    fn map(mut self, prefix: &str, f: impl Fn(&str) -> String) -> Sdp {
        for line in self.session.iter_mut().chain(self.media.iter_mut().flatten()) {
            if line.starts_with(prefix) {
                *line = f(line);
            }
        }
        self
    }

    fn with_session_line(mut self, line: &str) -> Sdp {
        self.session.push(line.to_owned());
        self
    }

    fn with_media_line(self, kind: &str, line: &str) -> Sdp {
        self.edit(kind, |s| s.push(line.to_owned()))
    }

    /// The payload type of `codec` (e.g. `H264`) in the first section of `kind`.
    fn payload_type(&self, kind: &str, codec: &str) -> Option<String> {
        let section = &self.media[self.index(kind)?];
        section.iter().find_map(|l| {
            let (pt, rest) = l.strip_prefix("a=rtpmap:")?.split_once(' ')?;
            rest.to_ascii_uppercase().starts_with(&format!("{codec}/")).then(|| pt.to_owned())
        })
    }

    /// Removes a codec: its payload type from the m-line and its rtpmap, fmtp and rtcp-fb.
    fn without_codec(self, kind: &str, codec: &str) -> Sdp {
        let Some(pt) = self.payload_type(kind, codec) else { return self };
        let owned = [format!("a=rtpmap:{pt} "), format!("a=fmtp:{pt} "), format!("a=rtcp-fb:{pt} ")];
        self.edit(kind, |section| {
            section.retain(|l| !owned.iter().any(|o| l.starts_with(o.as_str())));
            if let Some(m) = section.first_mut() {
                *m = m.split(' ').filter(|t| *t != pt).collect::<Vec<_>>().join(" ");
            }
        })
    }

    /// Sets (or with `None` removes) the fmtp line of `codec` in the `kind` sections.
    fn with_fmtp(self, kind: &str, codec: &str, fmtp: Option<&str>) -> Sdp {
        let Some(pt) = self.payload_type(kind, codec) else { return self };
        let prefix = format!("a=fmtp:{pt} ");
        let rtpmap = format!("a=rtpmap:{pt} ");
        let fmtp = fmtp.map(|f| format!("{prefix}{f}"));
        self.edit(kind, |section| {
            section.retain(|l| !l.starts_with(&prefix));
            if let (Some(fmtp), Some(at)) = (&fmtp, section.iter().position(|l| l.starts_with(&rtpmap))) {
                section.insert(at + 1, fmtp.clone());
            }
        })
    }

    /// Renames codec `from` to `to` (rtpmap only; its fmtp goes).
    fn rename_codec(self, kind: &str, from: &str, to: &str) -> Sdp {
        let Some(pt) = self.payload_type(kind, from) else { return self };
        let sdp = self.with_fmtp(kind, from, None);
        let rtpmap = format!("a=rtpmap:{pt} ");
        sdp.map(&rtpmap, |l| l.replacen(&l[rtpmap.len()..], &format!("{to}/90000"), 1))
    }

    fn duplicate(mut self, kind: &str, copies: usize, new_mids: bool) -> Sdp {
        let Some(i) = self.index(kind) else { return self };
        for n in 0..copies {
            let mut copy = self.media[i].clone();
            if new_mids {
                for line in copy.iter_mut().filter(|l| l.starts_with("a=mid:")) {
                    *line = format!("a=mid:x{n}");
                }
            }
            self.media.push(copy);
        }
        self
    }
}

const H264_FMTP_OK: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// All SDP mutations of `offer`, by name. Each is one way a client can get SDP wrong.
pub(crate) fn mutations(offer: &str, rng: &mut Rng) -> Vec<(String, Vec<u8>)> {
    let base = Sdp::parse(offer);
    let b = || base.clone();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, sdp: String| out.push((name.to_owned(), sdp));
    let text = base.render();

    // Truncated anywhere.
    for percent in [3, 10, 20, 30, 40, 50, 60, 70, 80, 90, 97] {
        let mut cut = text.len() * percent / 100;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        add(&format!("truncated at {percent} %"), text[..cut].to_owned());
    }
    add("unmodified offer", text.clone());
    add("no trailing CRLF", text.trim_end().to_owned());
    add("LF line endings", text.replace("\r\n", "\n"));
    add("CR line endings", text.replace("\r\n", "\r"));

    // m-lines removed, duplicated, reordered, broken.
    add("no m-lines", Sdp { media: Vec::new(), ..b() }.render());
    add(
        "video formats all removed",
        b().without_codec("video", "H264").without_codec("video", "VP8").render(),
    );
    let only =
        |kind: &str| Sdp { media: b().media.into_iter().filter(|s| Sdp::kind(s) == kind).collect(), ..b() };
    add("audio section only", only("audio").render());
    add("video section only", only("video").render());
    add("video section duplicated, same mid", b().duplicate("video", 1, false).render());
    add("video section duplicated, new mid", b().duplicate("video", 1, true).render());
    add("audio section duplicated, same mid", b().duplicate("audio", 1, false).render());
    add("audio section duplicated, new mid", b().duplicate("audio", 1, true).render());
    add("video section x40", b().duplicate("video", 39, true).render());
    let mut swapped = b();
    swapped.media.reverse();
    add("sections in reverse order", swapped.render());
    add("video port 0 (rejected)", b().map("m=video", |l| l.replacen(" 9 ", " 0 ", 1)).render());
    add("video proto RTP/AVP", b().map("m=video", |l| l.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP")).render());
    add(
        "video m-line without formats",
        b().map("m=video", |_| "m=video 9 UDP/TLS/RTP/SAVPF".into()).render(),
    );
    add(
        "video formats without rtpmap",
        b().map("m=video", |_| "m=video 9 UDP/TLS/RTP/SAVPF 45 46".into()).render(),
    );
    add(
        "video payload type 300",
        b().map("m=video", |l| format!("{l} 300"))
            .with_media_line("video", "a=rtpmap:300 VP8/90000")
            .render(),
    );
    add("m=text section", b().map("m=audio", |l| l.replacen("m=audio", "m=text", 1)).render());
    add("m-line garbage", b().map("m=video", |_| "m=\u{1}\u{2} x y z".into()).render());
    add("no mid lines", b().without(|l| l.starts_with("a=mid:")).render());
    add("empty mid", b().map("a=mid:", |_| "a=mid:".into()).render());
    add("all sections same mid", b().map("a=mid:", |_| "a=mid:0".into()).render());
    add("BUNDLE with unknown mids", b().map("a=group:BUNDLE", |_| "a=group:BUNDLE 7 8 9".into()).render());
    add("BUNDLE removed", b().without(|l| l.starts_with("a=group:")).render());
    add("BUNDLE twice", b().with_session_line("a=group:BUNDLE 1 0").render());
    add("session data channel only", {
        let app = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sctp-port:5000\r\n";
        let session: String = base.session.iter().map(|l| format!("{l}\r\n")).collect();
        let ice: String = base.media[0]
            .iter()
            .filter(|l| l.starts_with("a=ice-") || l.starts_with("a=setup") || l.starts_with("a=fingerprint"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        format!("{session}{app}{ice}")
    });

    // Directions.
    add("all sendonly", b().map("a=recvonly", |_| "a=sendonly".into()).render());
    add("all inactive", b().map("a=recvonly", |_| "a=inactive".into()).render());
    add("sendrecv and recvonly both", b().with_media_line("video", "a=sendrecv").render());

    // Odd and duplicated attributes.
    add("rtpmap without codec", b().with_media_line("video", "a=rtpmap:96").render());
    add("rtpmap non-numeric", b().with_media_line("video", "a=rtpmap:abc VP8/90000").render());
    add("rtpmap bad clock", b().map("a=rtpmap:", |l| l.replace("/90000", "/x")).render());
    add(
        "rtpmap clock 0",
        b().map("a=rtpmap:", |l| l.replace("/90000", "/0").replace("/48000", "/0")).render(),
    );
    add("payload type mapped twice", {
        let pt = base.payload_type("video", "VP8").unwrap_or_else(|| "96".into());
        b().with_media_line("video", &format!("a=rtpmap:{pt} H264/90000")).render()
    });
    add("empty fmtp", b().map("a=fmtp:", |l| l.split(' ').next().unwrap_or(l).to_owned()).render());
    add(
        "fmtp garbage",
        b().map("a=fmtp:", |l| format!("{} ;;==;=;\u{7f}", l.split(' ').next().unwrap_or(l))).render(),
    );
    add("rtcp-fb wildcard", b().with_media_line("video", "a=rtcp-fb:* nack").render());
    add(
        "extmap id 0 and 999",
        b().with_media_line("video", "a=extmap:0 urn:x")
            .with_media_line("video", "a=extmap:999 urn:y")
            .render(),
    );
    add(
        "extmap same id twice",
        b().with_media_line("video", "a=extmap:3 urn:a")
            .with_media_line("video", "a=extmap:3 urn:b")
            .render(),
    );
    add(
        "ssrc garbage",
        b().with_media_line("video", "a=ssrc:abc cname:x")
            .with_media_line("video", "a=ssrc-group:FID 1")
            .render(),
    );
    add("msid empty", b().with_media_line("video", "a=msid:").render());
    add(
        "attribute 10 kB long",
        b().with_media_line("video", &format!("a=x-{}", "y".repeat(10_000))).render(),
    );
    add("2,000 unknown attributes", {
        let mut sdp = b();
        for i in 0..2_000 {
            sdp = sdp.with_media_line("audio", &format!("a=x-odd-{i}:{i}"));
        }
        sdp.render()
    });
    add("line without a=", b().with_media_line("video", "x=foo").render());
    add("bare a=", b().with_media_line("video", "a=").render());
    add("setup bogus", b().map("a=setup:", |_| "a=setup:bogus".into()).render());
    add(
        "setup active and passive",
        b().with_media_line("video", "a=setup:active").with_media_line("video", "a=setup:passive").render(),
    );
    add("ice-lite", b().with_session_line("a=ice-lite").render());
    add("ice-options renomination", b().with_session_line("a=ice-options:trickle renomination").render());

    // ICE credentials.
    add("missing ice-ufrag", b().without(|l| l.starts_with("a=ice-ufrag:")).render());
    add("missing ice-pwd", b().without(|l| l.starts_with("a=ice-pwd:")).render());
    add(
        "missing ice-ufrag and ice-pwd",
        b().without(|l| l.starts_with("a=ice-ufrag:") || l.starts_with("a=ice-pwd:")).render(),
    );
    add("ice-ufrag twice, different", b().with_media_line("video", "a=ice-ufrag:otherufrag").render());
    add(
        "ice-ufrag per section different",
        b().edit("audio", |s| {
            s.iter_mut()
                .filter(|l| l.starts_with("a=ice-ufrag:"))
                .for_each(|l| *l = "a=ice-ufrag:zzzz".into())
        })
        .render(),
    );
    add("ice-ufrag 1 char", b().map("a=ice-ufrag:", |_| "a=ice-ufrag:a".into()).render());
    add(
        "ice-ufrag 600 chars",
        b().map("a=ice-ufrag:", |_| format!("a=ice-ufrag:{}", "u".repeat(600))).render(),
    );
    add("ice-pwd empty", b().map("a=ice-pwd:", |_| "a=ice-pwd:".into()).render());

    // DTLS fingerprints.
    add("fingerprint removed", b().without(|l| l.starts_with("a=fingerprint:")).render());
    add(
        "fingerprint not hex",
        b().map("a=fingerprint:", |_| "a=fingerprint:sha-256 ZZ:ZZ:ZZ".into()).render(),
    );
    add("fingerprint short", b().map("a=fingerprint:", |_| "a=fingerprint:sha-256 AB:CD".into()).render());
    add("fingerprint unknown hash", b().map("a=fingerprint:", |l| l.replace("sha-256", "sha-999")).render());
    add("fingerprint without value", b().map("a=fingerprint:", |_| "a=fingerprint:".into()).render());
    add(
        "fingerprint twice, different",
        b().with_session_line(
            "a=fingerprint:sha-1 00:11:22:33:44:55:66:77:88:99:00:11:22:33:44:55:66:77:88:99",
        )
        .render(),
    );

    // Codecs robocast cannot send, and the H.264 variants browsers really offer.
    let no_video_codecs = || b().without_codec("video", "VP8").without_codec("video", "H264");
    add("video AV1 only", b().without_codec("video", "VP8").rename_codec("video", "H264", "AV1").render());
    add("video VP9 only", b().without_codec("video", "H264").rename_codec("video", "VP8", "VP9").render());
    add("video H265 only", b().without_codec("video", "VP8").rename_codec("video", "H264", "H265").render());
    add(
        "video without codecs, audio PCMU",
        no_video_codecs().map("a=rtpmap:", |l| l.replace("opus/48000/2", "PCMU/8000")).render(),
    );
    add("audio PCMU only", b().map("a=rtpmap:", |l| l.replace("opus/48000/2", "PCMU/8000")).render());
    add(
        "lower-case h264 and vp8",
        b().map("a=rtpmap:", |l| l.replace("H264", "h264").replace("VP8", "vp8")).render(),
    );
    for (what, fmtp) in [
        (
            "packetization-mode=0 only",
            Some("level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f"),
        ),
        ("without packetization-mode", Some("level-asymmetry-allowed=1;profile-level-id=42e01f")),
        (
            "High profile 640c1f only",
            Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f"),
        ),
        ("profile-level-id garbage", Some("packetization-mode=1;profile-level-id=zzzzzz")),
        ("fmtp removed", None),
    ] {
        let h264 = b().with_fmtp("video", "H264", fmtp);
        add(&format!("H.264 {what}, VP8 also offered"), h264.clone().render());
        add(&format!("H.264 {what}, no VP8"), h264.without_codec("video", "VP8").render());
    }
    add("H.264 twice: mode 0 and mode 1", {
        let sdp = b().with_fmtp("video", "H264", Some("packetization-mode=0;profile-level-id=42e01f"));
        sdp.map("m=video", |l| format!("{l} 127"))
            .with_media_line("video", "a=rtpmap:127 H264/90000")
            .with_media_line("video", &format!("a=fmtp:127 {H264_FMTP_OK}"))
            .render()
    });

    // Session-level lines.
    add("v=1", b().map("v=", |_| "v=1".into()).render());
    add("no v= line", b().without(|l| l.starts_with("v=")).render());
    add("no o= line", b().without(|l| l.starts_with("o=")).render());
    add("o= malformed", b().map("o=", |_| "o=x".into()).render());
    add("no s= and t=", b().without(|l| l.starts_with("s=") || l.starts_with("t=")).render());
    add("c= malformed", b().map("c=", |_| "c=IN IP7 ::::".into()).render());
    add("no c= lines", b().without(|l| l.starts_with("c=")).render());

    // Candidates in the offer.
    add("candidate garbage", b().with_media_line("video", "a=candidate:garbage").render());
    add(
        "candidate unknown transport",
        b().with_media_line("video", "a=candidate:1 1 sctp 1 127.0.0.1 9 typ host").render(),
    );
    add(
        "candidate port 0 and 70000",
        b().with_media_line("video", "a=candidate:1 1 udp 1 127.0.0.1 0 typ host")
            .with_media_line("video", "a=candidate:2 1 udp 1 127.0.0.1 70000 typ host")
            .render(),
    );
    add("400 candidates", {
        let mut sdp = b();
        for i in 0..400 {
            sdp = sdp.with_media_line(
                "video",
                &format!("a=candidate:{i} 1 udp {i} 127.0.0.{} {} typ host", 1 + i % 200, 1024 + i),
            );
        }
        sdp.render()
    });
    add(
        "candidates removed",
        b().without(|l| l.starts_with("a=candidate:") || l.starts_with("a=end-of-candidates")).render(),
    );

    // Not SDP at all.
    let mut raw: Vec<(String, Vec<u8>)> = out.into_iter().map(|(n, s)| (n, s.into_bytes())).collect();
    raw.push(("random bytes".into(), rng.bytes(1_500)));
    raw.push(("invalid UTF-8 in an attribute".into(), {
        let mut bytes = text.clone().into_bytes();
        bytes.extend_from_slice(b"a=x-bad:\xff\xfe\xc3\x28\r\n");
        bytes
    }));
    raw.push(("NUL bytes inside".into(), text.replacen("a=", "a\0=", 3).into_bytes()));
    raw.push(("byte order mark first".into(), format!("\u{feff}{text}").into_bytes()));
    raw.push(("whitespace only".into(), b" \r\n\t \r\n".to_vec()));
    raw.push(("v=0 then garbage".into(), {
        let mut bytes = b"v=0\r\n".to_vec();
        bytes.extend(rng.bytes(800));
        bytes
    }));
    let printable: String = (0..1_200).map(|_| (b' ' + rng.below(95) as u8) as char).collect();
    raw.push(("random printable text".into(), printable.into_bytes()));
    raw.push((
        "a JSON offer sent as SDP".into(),
        serde_json::json!({"sdp": text, "type": "offer"}).to_string().into_bytes(),
    ));
    raw.push(("60 kB of attributes".into(), {
        let pad = "a=x-pad:".to_owned() + &"p".repeat(90) + "\r\n";
        format!("{text}{}", pad.repeat(600)).into_bytes()
    }));
    raw.push(("over 64 KiB".into(), format!("{text}{}", "a=x-big:1\r\n".repeat(7_000)).into_bytes()));
    raw
}
