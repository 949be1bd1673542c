//! The hostile requests: every input has a category, a name the report can point at, and
//! the exact bytes sent on a fresh connection. Offers are mutations of a real webrtc-rs
//! offer (`common::viewer::offer`), so each breaks one thing and keeps the rest plausible.

use std::fmt::Write as _;

/// In a request line, replaced at send time by the id of a live session (see [`Target`]).
pub(crate) const SESSION: &str = "@SESSION@";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Category {
    /// Broken and odd SDP offers on the three offer endpoints.
    Sdp,
    /// Bad JSON on `POST /api/connect`.
    Json,
    ContentType,
    Method,
    Url,
    /// Malformed HTTP: request lines, header floods, lengths, encodings.
    Protocol,
    /// `PATCH` garbage at live sessions.
    Trickle,
    /// `DELETE` of live, ended and made-up sessions.
    Delete,
}

impl Category {
    pub(crate) const ALL: [Category; 8] = [
        Category::Sdp,
        Category::Json,
        Category::ContentType,
        Category::Method,
        Category::Url,
        Category::Protocol,
        Category::Trickle,
        Category::Delete,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Category::Sdp => "sdp",
            Category::Json => "json",
            Category::ContentType => "content-type",
            Category::Method => "method",
            Category::Url => "url",
            Category::Protocol => "protocol",
            Category::Trickle => "trickle",
            Category::Delete => "delete",
        }
    }

    /// Share of the mix, in percent.
    pub(crate) fn weight(self) -> u64 {
        match self {
            Category::Sdp => 40,
            Category::Json | Category::Protocol => 10,
            Category::ContentType
            | Category::Method
            | Category::Url
            | Category::Trickle
            | Category::Delete => 8,
        }
    }
}

/// Which session [`SESSION`] stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    None,
    /// A live session: mostly one a hostile offer opened, sometimes the honest viewer's
    /// (its id is public in `GET /api/sessions`).
    Live,
    /// A session a hostile offer opened, taken out of those kept (it is being deleted).
    Hostile,
}

pub(crate) struct Input {
    pub(crate) category: Category,
    pub(crate) name: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) target: Target,
    /// Close our sending side after the request (requests that are cut short).
    pub(crate) half_close: bool,
}

/// An HTTP/1.1 request with `Host`, `Connection: close` and `Content-Length`.
pub(crate) fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: robot\r\nConnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let _ = write!(head, "Content-Length: {}\r\n\r\n", body.len());
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn post(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    request("POST", path, &[("Content-Type", content_type)], body)
}

/// Deterministic pseudo-random numbers (SplitMix64): the same seed gives the same mix.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    pub(crate) fn hex_id(&mut self) -> String {
        format!("{:016x}{:016x}", self.next(), self.next())
    }
}

/// Offers posted to each offer endpoint, raw or wrapped in RTCBot JSON.
fn sdp_inputs(offer: &str, rng: &mut Rng, out: &mut Vec<Input>) {
    for (name, sdp) in super::sdp::mutations(offer, rng) {
        let json = serde_json::json!({ "sdp": String::from_utf8_lossy(&sdp), "type": "offer" }).to_string();
        for (endpoint, bytes) in [
            ("POST /whep", post("/whep", "application/sdp", &sdp)),
            ("POST /api/connect SDP", post("/api/connect", "application/sdp", &sdp)),
            ("POST /api/connect JSON", post("/api/connect", "application/json", json.as_bytes())),
        ] {
            out.push(Input {
                category: Category::Sdp,
                name: format!("{name} ({endpoint})"),
                bytes,
                target: Target::None,
                half_close: false,
            });
        }
    }
}

fn json_inputs(offer: &str, out: &mut Vec<Input>) {
    let sdp = serde_json::to_string(offer).unwrap_or_default();
    let deep = "[".repeat(50_000);
    let long_escapes = format!(r#"{{"sdp": "{}", "type": "offer"}}"#, r"\u0041".repeat(10_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"{not json".to_vec()),
        ("empty body", Vec::new()),
        ("null", b"null".to_vec()),
        ("array", b"[]".to_vec()),
        ("string", br#""offer""#.to_vec()),
        ("number", b"123".to_vec()),
        ("empty object", b"{}".to_vec()),
        ("sdp null", br#"{"sdp": null, "type": "offer"}"#.to_vec()),
        ("sdp a number", br#"{"sdp": 5, "type": "offer"}"#.to_vec()),
        ("type a number", format!(r#"{{"sdp": {sdp}, "type": 5}}"#).into_bytes()),
        ("no sdp", br#"{"type": "offer"}"#.to_vec()),
        ("no type", format!(r#"{{"sdp": {sdp}}}"#).into_bytes()),
        ("type answer", format!(r#"{{"sdp": {sdp}, "type": "answer"}}"#).into_bytes()),
        ("type pranswer", format!(r#"{{"sdp": {sdp}, "type": "pranswer"}}"#).into_bytes()),
        ("type rollback", format!(r#"{{"sdp": {sdp}, "type": "rollback"}}"#).into_bytes()),
        ("type OFFER", format!(r#"{{"sdp": {sdp}, "type": "OFFER"}}"#).into_bytes()),
        ("sdp empty", br#"{"sdp": "", "type": "offer"}"#.to_vec()),
        ("nested 50,000 deep", deep.into_bytes()),
        (
            "duplicate keys",
            format!(r#"{{"sdp": "x", "sdp": {sdp}, "type": "offer", "type": "answer"}}"#).into_bytes(),
        ),
        (
            "extra fields",
            format!(r#"{{"sdp": {sdp}, "type": "offer", "x": [1, 2, {{"y": null}}]}}"#).into_bytes(),
        ),
        ("invalid UTF-8 in a string", b"{\"sdp\": \"v=0\xff\xfe\", \"type\": \"offer\"}".to_vec()),
        ("NUL escape in sdp", br#"{"sdp": "v=0\u0000\r\n", "type": "offer"}"#.to_vec()),
        ("lone surrogate", br#"{"sdp": "\ud800", "type": "offer"}"#.to_vec()),
        ("trailing garbage", format!(r#"{{"sdp": {sdp}, "type": "offer"}}xyz"#).into_bytes()),
        ("byte order mark first", format!("\u{feff}{{\"sdp\": {sdp}, \"type\": \"offer\"}}").into_bytes()),
        ("huge number", br#"{"sdp": 1e999999, "type": "offer"}"#.to_vec()),
        ("60 kB of escapes", long_escapes.into_bytes()),
        ("over 64 KiB", format!(r#"{{"sdp": "{}", "type": "offer"}}"#, "a".repeat(70_000)).into_bytes()),
    ];
    for (name, body) in cases {
        out.push(Input {
            category: Category::Json,
            name: name.into(),
            bytes: post("/api/connect", "application/json", &body),
            target: Target::None,
            half_close: false,
        });
    }
}

fn content_type_inputs(offer: &str, out: &mut Vec<Input>) {
    let sdp = offer.as_bytes();
    let long = format!("application/{}", "x".repeat(8_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("text/plain offer (RTCBot's client)", post("/api/connect", "text/plain;charset=UTF-8", sdp)),
        ("no Content-Type", request("POST", "/api/connect", &[], sdp)),
        ("no Content-Type on /whep", request("POST", "/whep", &[], sdp)),
        (
            "form-urlencoded",
            post("/api/connect", "application/x-www-form-urlencoded", b"sdp=v%3D0&type=offer"),
        ),
        ("multipart", post("/whep", "multipart/form-data; boundary=xyz", b"--xyz\r\n\r\nv=0\r\n--xyz--\r\n")),
        ("JSON on /whep", post("/whep", "application/json", b"{}")),
        ("application/sdp with charset", post("/whep", "application/sdp; charset=utf-8", b"v=0\r\n")),
        ("upper-case APPLICATION/SDP", post("/whep", "APPLICATION/SDP", b"v=0\r\n")),
        ("two types in one header", post("/whep", "application/sdp, application/json", b"v=0\r\n")),
        ("application/sdpx", post("/whep", "application/sdpx", sdp)),
        ("8 kB Content-Type", post("/api/connect", &long, sdp)),
        ("empty Content-Type", post("/api/connect", "", sdp)),
        (
            "two Content-Type headers",
            request(
                "POST",
                "/whep",
                &[("Content-Type", "application/sdp"), ("Content-Type", "text/plain")],
                b"v=0\r\n",
            ),
        ),
        ("trickle type on /whep", post("/whep", "application/trickle-ice-sdpfrag", sdp)),
        (
            "sdp type on PATCH",
            request(
                "PATCH",
                &format!("/whep/{SESSION}"),
                &[("Content-Type", "application/sdp")],
                b"a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n",
            ),
        ),
    ];
    for (name, bytes) in cases {
        let target = if name.contains("PATCH") { Target::Live } else { Target::None };
        out.push(Input {
            category: Category::ContentType,
            name: name.into(),
            bytes,
            target,
            half_close: false,
        });
    }
    let mut non_ascii = b"POST /api/connect HTTP/1.1\r\nHost: robot\r\nConnection: close\r\nContent-Type: application/sdp\xff\xfe\r\n".to_vec();
    non_ascii.extend_from_slice(format!("Content-Length: {}\r\n\r\n", sdp.len()).as_bytes());
    non_ascii.extend_from_slice(sdp);
    out.push(Input {
        category: Category::ContentType,
        name: "non-ASCII bytes in Content-Type".into(),
        bytes: non_ascii,
        target: Target::None,
        half_close: false,
    });
}

fn method_inputs(rng: &mut Rng, out: &mut Vec<Input>) {
    let id = rng.hex_id();
    let paths = [
        "/",
        "/api/connect",
        "/whep",
        &format!("/whep/{id}"),
        "/api/sessions",
        "/api/status",
        "/healthz",
        "/nope",
    ];
    let long_method = "X".repeat(1_000);
    let methods = [
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "HEAD",
        "TRACE",
        "PROPFIND",
        "FOO",
        "get",
        "POST",
        long_method.as_str(),
    ];
    for path in paths {
        for method in methods {
            let shown = if method.len() > 20 { "1 kB method" } else { method };
            out.push(Input {
                category: Category::Method,
                name: format!("{shown} {}", if path.contains(&id) { "/whep/<unknown id>" } else { path }),
                bytes: request(method, path, &[], b""),
                target: Target::None,
                half_close: false,
            });
        }
    }
    out.push(Input {
        category: Category::Method,
        name: "CONNECT authority-form".into(),
        bytes: b"CONNECT robot:443 HTTP/1.1\r\nHost: robot:443\r\n\r\n".to_vec(),
        target: Target::None,
        half_close: true,
    });
}

fn url_inputs(out: &mut Vec<Input>) {
    let get = |path: &str| request("GET", path, &[], b"");
    let del = |path: &str| request("DELETE", path, &[], b"");
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for kib in [8, 16, 64, 100] {
        cases.push((format!("GET {kib} KiB path"), get(&format!("/{}", "a".repeat(kib * 1024)))));
    }
    cases.push(("DELETE /whep/<10 kB id>".into(), del(&format!("/whep/{}", "0".repeat(10_000)))));
    cases.push(("GET 8 KiB query".into(), get(&format!("/api/sessions?x={}", "q".repeat(8_192)))));
    for (name, path) in [
        ("bad percent-escape", "/whep/%zz%"),
        ("percent-encoded NUL", "/api/sessions/%00%00"),
        ("percent-encoded invalid UTF-8", "/api/sessions/%ff%fe%c3%28"),
        ("dot segments", "/api/sessions/../../etc/passwd"),
        ("encoded dot segments", "/api/sessions/%2e%2e/%2e%2e"),
        ("double slashes", "//whep//"),
        ("absolute-form URI", "http://robot.invalid/api/sessions"),
        ("asterisk-form", "*"),
        ("fragment", "/healthz#x"),
        ("non-ASCII path", "/ψ/ü"),
        ("upper-case path", "/API/SESSIONS"),
        ("trailing slash", "/whep/"),
    ] {
        cases.push((format!("GET {name}"), get(path)));
        cases.push((format!("DELETE {name}"), del(path)));
    }
    cases.push((
        "raw invalid UTF-8 in path".into(),
        b"GET /api/sessions/\xff\xfe\xc3\x28 HTTP/1.1\r\nHost: robot\r\nConnection: close\r\n\r\n".to_vec(),
    ));
    cases.push((
        "raw invalid UTF-8 in DELETE id".into(),
        b"DELETE /whep/\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff HTTP/1.1\r\nHost: robot\r\nConnection: close\r\n\r\n".to_vec(),
    ));
    cases.push((
        "raw control bytes in path".into(),
        b"GET /\x01\x02\x7f HTTP/1.1\r\nHost: robot\r\n\r\n".to_vec(),
    ));
    for (name, bytes) in cases {
        out.push(Input { category: Category::Url, name, bytes, target: Target::None, half_close: false });
    }
}

fn protocol_inputs(rng: &mut Rng, out: &mut Vec<Input>) {
    let headers = |n: usize, value_len: usize| {
        let mut head = "GET /healthz HTTP/1.1\r\nHost: robot\r\nConnection: close\r\n".to_owned();
        for i in 0..n {
            let _ = write!(head, "X-Flood-{i}: {}\r\n", "v".repeat(value_len));
        }
        head.push_str("\r\n");
        head.into_bytes()
    };
    let offer_head =
        "POST /whep HTTP/1.1\r\nHost: robot\r\nConnection: close\r\nContent-Type: application/sdp\r\n";
    let with_head = |extra: &str, body: &[u8]| {
        let mut bytes = format!("{offer_head}{extra}\r\n").into_bytes();
        bytes.extend_from_slice(body);
        bytes
    };
    // (name, bytes, half close)
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("header flood 99 headers", headers(99, 10), false),
        ("header flood 101 headers", headers(101, 10), false),
        ("header flood 1,000 headers", headers(1_000, 10), false),
        ("header flood 10,000 headers", headers(10_000, 10), false),
        ("one 60 kB header", headers(1, 60_000), false),
        ("one 1 MB header", headers(1, 1_000_000), false),
        ("garbage request line", b"GARBAGE\r\n\r\n".to_vec(), false),
        ("method only", b"GET\r\n\r\n".to_vec(), false),
        ("HTTP/9.9", b"GET / HTTP/9.9\r\nHost: robot\r\n\r\n".to_vec(), false),
        ("HTTP/1.0 without Host", b"GET /healthz HTTP/1.0\r\n\r\n".to_vec(), false),
        ("request line with extra token", b"GET / HTTP/1.1 extra\r\nHost: robot\r\n\r\n".to_vec(), false),
        ("no method", b" / HTTP/1.1\r\nHost: robot\r\n\r\n".to_vec(), false),
        ("space in path", b"GET /a b HTTP/1.1\r\nHost: robot\r\n\r\n".to_vec(), false),
        ("empty lines only", b"\r\n\r\n\r\n\r\n".to_vec(), true),
        ("1 kB of random bytes", rng.bytes(1_024), true),
        ("TLS ClientHello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".iter().copied().chain(rng.bytes(500)).collect(), true),
        ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), true),
        ("LF-only line endings", b"GET /healthz HTTP/1.1\nHost: robot\nConnection: close\n\n".to_vec(), false),
        ("header without colon", b"GET /healthz HTTP/1.1\r\nHost: robot\r\nNoColonHere\r\n\r\n".to_vec(), false),
        ("space in header name", b"GET /healthz HTTP/1.1\r\nHost: robot\r\nBad Name: x\r\n\r\n".to_vec(), false),
        ("obs-fold continuation", b"GET /healthz HTTP/1.1\r\nHost: robot\r\nX-A: a\r\n  folded\r\nConnection: close\r\n\r\n".to_vec(), false),
        ("NUL in header value", b"GET /healthz HTTP/1.1\r\nHost: robot\r\nX-A: a\0b\r\n\r\n".to_vec(), false),
        ("half a request line, then close", b"POST /whep HT".to_vec(), true),
        ("headers never finished, then close", b"POST /whep HTTP/1.1\r\nHost: robot\r\nContent-Type: app".to_vec(), true),
        ("Content-Length larger than the body, then close", with_head("Content-Length: 5000\r\n", b"v=0\r\n"), true),
        ("negative Content-Length", with_head("Content-Length: -5\r\n", b"v=0\r\n"), false),
        ("non-numeric Content-Length", with_head("Content-Length: abc\r\n", b"v=0\r\n"), false),
        ("two different Content-Lengths", with_head("Content-Length: 5\r\nContent-Length: 6\r\n", b"v=0\r\n"), false),
        ("huge Content-Length", with_head("Content-Length: 99999999999999999999\r\n", b"v=0\r\n"), true),
        ("Content-Length over 64 KiB, no body sent", with_head("Content-Length: 1000000\r\n", b""), true),
        ("Content-Length and chunked", with_head("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"5\r\nv=0\r\n\r\n0\r\n\r\n"), false),
        ("chunk size not hex", with_head("Transfer-Encoding: chunked\r\n", b"zz\r\nv=0\r\n0\r\n\r\n"), true),
        ("chunk size 2^64-1", with_head("Transfer-Encoding: chunked\r\n", b"ffffffffffffffff\r\nv=0\r\n"), true),
        ("chunked body over 64 KiB", with_head("Transfer-Encoding: chunked\r\n", &{
            let mut body = Vec::new();
            for _ in 0..20 {
                body.extend_from_slice(b"1000\r\n");
                body.extend(std::iter::repeat_n(b'a', 0x1000));
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"0\r\n\r\n");
            body
        }), false),
        ("chunk extensions flood", with_head("Transfer-Encoding: chunked\r\n", format!("3;{}\r\nv=0\r\n0\r\n\r\n", "e=x;".repeat(5_000)).as_bytes()), true),
        ("unknown Transfer-Encoding", with_head("Transfer-Encoding: gzip, zork\r\n", b"v=0\r\n"), true),
        ("Expect 100-continue, no body", with_head("Content-Length: 300\r\nExpect: 100-continue\r\n", b""), true),
        ("websocket upgrade on /whep", b"GET /whep HTTP/1.1\r\nHost: robot\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".to_vec(), true),
        ("h2c upgrade", b"GET /healthz HTTP/1.1\r\nHost: robot\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n".to_vec(), true),
        ("50 pipelined requests", b"GET /healthz HTTP/1.1\r\nHost: robot\r\n\r\n".repeat(50), true),
    ];
    for (name, bytes, half_close) in cases {
        out.push(Input {
            category: Category::Protocol,
            name: name.into(),
            bytes,
            target: Target::None,
            half_close,
        });
    }
}

fn trickle_inputs(out: &mut Vec<Input>) {
    let many: String =
        (0..100).map(|i| format!("a=candidate:{i} 1 udp {i} 127.0.0.1 {} typ host\r\n", 2_000 + i)).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage candidate", b"a=candidate:garbage\r\n".to_vec()),
        ("candidate, unknown typ", b"a=candidate:1 1 udp 1 127.0.0.1 9 typ alien\r\n".to_vec()),
        ("candidate, port 0", b"a=candidate:1 1 udp 1 127.0.0.1 0 typ host\r\n".to_vec()),
        ("candidate, bad address", b"a=candidate:1 1 udp 1 999.1.1.1 9 typ host\r\n".to_vec()),
        ("candidate, 4 kB foundation", format!("a=candidate:{} 1 udp 1 127.0.0.1 9 typ host\r\n", "f".repeat(4_000)).into_bytes()),
        ("candidate for an unknown mid", b"a=mid:77\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n".to_vec()),
        ("one unreachable candidate", b"a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n".to_vec()),
        ("100 unreachable candidates", many.into_bytes()),
        ("ICE restart attempt", b"a=ice-ufrag:evil\r\na=ice-pwd:evilevilevilevilevilevil\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n".to_vec()),
        ("end-of-candidates only", b"a=end-of-candidates\r\n".to_vec()),
        ("empty body", Vec::new()),
        ("invalid UTF-8", b"a=candidate:\xff\xfe\r\n".to_vec()),
        ("SDP offer as fragment", b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n".to_vec()),
    ];
    for (name, body) in cases {
        let path = format!("/whep/{SESSION}");
        out.push(Input {
            category: Category::Trickle,
            name: format!("PATCH {name}"),
            bytes: request("PATCH", &path, &[("Content-Type", "application/trickle-ice-sdpfrag")], &body),
            target: Target::Live,
            half_close: false,
        });
    }
    out.push(Input {
        category: Category::Trickle,
        name: "PATCH an unknown session".into(),
        bytes: request(
            "PATCH",
            "/whep/0123456789abcdef",
            &[("Content-Type", "application/trickle-ice-sdpfrag")],
            b"a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n",
        ),
        target: Target::None,
        half_close: false,
    });
}

fn delete_inputs(rng: &mut Rng, out: &mut Vec<Input>) {
    let mut add = |name: &str, path: String, target: Target| {
        out.push(Input {
            category: Category::Delete,
            name: name.into(),
            bytes: request("DELETE", &path, &[], b""),
            target,
            half_close: false,
        });
    };
    add("DELETE /whep/<hostile session>", format!("/whep/{SESSION}"), Target::Hostile);
    add("DELETE /api/sessions/<hostile session>", format!("/api/sessions/{SESSION}"), Target::Hostile);
    for _ in 0..4 {
        add("DELETE /whep/<random id>", format!("/whep/{}", rng.hex_id()), Target::None);
        add("DELETE /api/sessions/<random id>", format!("/api/sessions/{}", rng.hex_id()), Target::None);
    }
    add("DELETE /whep/<16 non-hex chars>", "/whep/zzzzzzzzzzzzzzzz".into(), Target::None);
    add("DELETE /whep/<short id>", "/whep/abc".into(), Target::None);
    add(
        "DELETE /api/sessions/<upper-case hex>",
        format!("/api/sessions/{}", rng.hex_id().to_uppercase()),
        Target::None,
    );
    add("DELETE /api/sessions", "/api/sessions".into(), Target::None);
}

/// The whole catalogue, built from one real offer.
pub(crate) fn catalogue(offer: &str, seed: u64) -> Vec<Input> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    sdp_inputs(offer, &mut rng, &mut out);
    json_inputs(offer, &mut out);
    content_type_inputs(offer, &mut out);
    method_inputs(&mut rng, &mut out);
    url_inputs(&mut out);
    protocol_inputs(&mut rng, &mut out);
    trickle_inputs(&mut out);
    delete_inputs(&mut rng, &mut out);
    out
}
