//! A real webrtc-rs peer playing the browser: it offers like a browser does, receives
//! robocast's tracks, reassembles frames from RTP and (optionally) decodes them with
//! GStreamer, so tests assert on decoded pictures and their size.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::data_channel::RTCDataChannel;
use webrtc::data_channel::data_channel_init::RTCDataChannelInit;
use webrtc::data_channel::data_channel_message::DataChannelMessage;
use webrtc::data_channel::data_channel_state::RTCDataChannelState;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::udp_network::{EphemeralUDP, UDPNetwork};
use webrtc::interceptor::registry::Registry;
use webrtc::media::io::sample_builder::SampleBuilder;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp::codecs::h264::H264Packet;
use webrtc::rtp::codecs::vp8::Vp8Packet;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType};
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::track::track_remote::TrackRemote;

use super::http;

/// How the offer reaches robocast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signalling {
    /// `POST /api/connect` with RTCBot-style JSON.
    Json,
    /// `POST /api/connect` with `application/sdp`.
    ConnectSdp,
    /// `POST /whep`.
    Whep,
}

#[derive(Clone, Copy, Debug)]
pub struct ViewerOptions {
    pub signalling: Signalling,
    /// Decode video with GStreamer (else only reassemble frames from RTP).
    pub decode: bool,
    /// Read the incoming tracks at all (a viewer that stops reading sets this false).
    pub read: bool,
    /// Offer VP8 only, like a browser without H.264.
    pub vp8_only: bool,
    /// The H.264 format parameters offered (a browser's, by default).
    pub h264_fmtp: &'static str,
    /// Offer VP8 besides H.264.
    pub offer_vp8: bool,
    /// Data channels opened before the offer, like the page: `control` is unordered
    /// without retransmits, any other label ordered and reliable.
    pub channels: &'static [&'static str],
    /// The `Authorization` the offer carries: `None` the test daemons' operator token,
    /// `Some("")` none, else `Some("Bearer <token>")`.
    pub authorization: Option<&'static str>,
    /// The one UDP port its ICE uses, on 127.0.0.1 (a test shapes the traffic to it); any
    /// loopback address and port by default.
    pub port: Option<u16>,
    /// Ask for a key frame (PLI) while no picture decodes, as a browser does; webrtc-rs
    /// on its own never asks.
    pub asks_for_key_frames: bool,
}

/// What Chromium offers for its main H.264 payload type.
pub const BROWSER_H264: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

impl ViewerOptions {
    /// Reassembles frames without decoding them: cheap, for many viewers at once.
    pub fn undecoded() -> ViewerOptions {
        ViewerOptions { decode: false, ..Default::default() }
    }
}

impl Default for ViewerOptions {
    fn default() -> Self {
        ViewerOptions {
            signalling: Signalling::Json,
            decode: true,
            read: true,
            vp8_only: false,
            h264_fmtp: BROWSER_H264,
            offer_vp8: true,
            channels: &[],
            authorization: None,
            port: None,
            asks_for_key_frames: false,
        }
    }
}

/// What a viewer got, updated as media arrives.
#[derive(Default)]
pub struct Received {
    /// Decoded pictures (or reassembled frames when not decoding).
    pub video_frames: AtomicU64,
    pub width: AtomicU32,
    pub height: AtomicU32,
    pub audio_packets: AtomicU64,
    pub first_frame: OnceLock<Instant>,
    pub video_mime: Mutex<Option<String>>,
    frames: OnceLock<watch::Sender<u64>>,
    audio: OnceLock<watch::Sender<u64>>,
}

impl Received {
    fn frame(&self, width: u32, height: u32) {
        self.width.store(width, Ordering::Relaxed);
        self.height.store(height, Ordering::Relaxed);
        let _ = self.first_frame.set(Instant::now());
        let n = self.video_frames.fetch_add(1, Ordering::Relaxed) + 1;
        self.frames.get_or_init(|| watch::Sender::new(0)).send_replace(n);
    }

    fn audio_packet(&self) {
        let n = self.audio_packets.fetch_add(1, Ordering::Relaxed) + 1;
        self.audio.get_or_init(|| watch::Sender::new(0)).send_replace(n);
    }

    /// Waits until at least `n` audio packets arrived, or panics after `timeout`.
    pub async fn wait_audio_packets(&self, n: u64, timeout: Duration) {
        wait_count(&self.audio, n, timeout, "audio packets").await;
    }

    /// Waits until at least `n` video frames arrived, or panics after `timeout`.
    pub async fn wait_frames(&self, n: u64, timeout: Duration) {
        wait_count(&self.frames, n, timeout, "video frames").await;
    }

    /// Whether `n` video frames arrived within `timeout` (for a caller that says why not).
    pub async fn frames_within(&self, n: u64, timeout: Duration) -> bool {
        count_within(&self.frames, n, timeout).await.0
    }

    /// The video codec's MIME type, lower-case (`video/h264`, `video/vp8`).
    pub fn video_mime(&self) -> Option<String> {
        self.video_mime.lock().ok()?.clone()
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width.load(Ordering::Relaxed), self.height.load(Ordering::Relaxed))
    }
}

/// Waits until the count behind `counter` reaches `n`, or panics after `timeout`.
async fn wait_count(counter: &OnceLock<watch::Sender<u64>>, n: u64, timeout: Duration, what: &str) {
    let (got, reached) = count_within(counter, n, timeout).await;
    assert!(got, "only {reached} of {n} {what} within {timeout:?}");
}

/// Whether the counter reached `n` within `timeout`, and where it got to.
async fn count_within(counter: &OnceLock<watch::Sender<u64>>, n: u64, timeout: Duration) -> (bool, u64) {
    let mut rx = counter.get_or_init(|| watch::Sender::new(0)).subscribe();
    let got = tokio::time::timeout(timeout, rx.wait_for(|&c| c >= n)).await.is_ok();
    let reached = *rx.borrow();
    (got, reached)
}

pub struct Viewer {
    pub pc: Arc<RTCPeerConnection>,
    pub received: Arc<Received>,
    /// The `Location` of the session (SDP signalling) or `/api/sessions/<id>` (JSON).
    pub location: String,
    /// The ETag robocast gave with the answer.
    pub etag: Option<String>,
    /// When the offer was sent.
    pub offered_at: Instant,
    /// The data channels it opened, by label.
    pub channels: HashMap<String, Arc<RTCDataChannel>>,
    /// What they received.
    pub inbox: Arc<Inbox>,
}

/// Sends a PLI for `ssrc` every half second in which no picture decoded, as a browser
/// asks when it cannot decode (until the connection closes).
async fn ask_for_key_frames(pc: std::sync::Weak<RTCPeerConnection>, ssrc: u32, received: Arc<Received>) {
    let mut seen = received.video_frames.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(pc) = pc.upgrade() else { return };
        let now = received.video_frames.load(Ordering::Relaxed);
        if now == seen {
            let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc };
            if pc.write_rtcp(&[Box::new(pli)]).await.is_err() {
                return;
            }
        }
        seen = now;
    }
}

/// A browser-like peer with recvonly audio and video transceivers and its offer SDP.
pub async fn offer(options: &ViewerOptions) -> (Arc<RTCPeerConnection>, String) {
    offer_with_channels(options).await.0
}

/// [`offer`], with the data channels `options` asks for, by label.
pub async fn offer_with_channels(
    options: &ViewerOptions,
) -> ((Arc<RTCPeerConnection>, String), HashMap<String, Arc<RTCDataChannel>>) {
    let mut codecs = Vec::new();
    if options.offer_vp8 || options.vp8_only {
        codecs.push((MIME_TYPE_VP8, 96, "", RTPCodecType::Video));
    }
    if !options.vp8_only {
        codecs.push((MIME_TYPE_H264, 102, options.h264_fmtp, RTPCodecType::Video));
    }
    codecs.push((MIME_TYPE_OPUS, 111, "minptime=10;useinbandfec=1", RTPCodecType::Audio));
    let pc = peer_on(&codecs, RTCConfiguration::default(), options.port).await;
    for kind in [RTPCodecType::Video, RTPCodecType::Audio] {
        let init =
            RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Recvonly, send_encodings: vec![] };
        pc.add_transceiver_from_kind(kind, Some(init)).await.expect("transceiver");
    }
    let mut channels = HashMap::new();
    for &label in options.channels {
        let init = (label == "control").then(|| RTCDataChannelInit {
            ordered: Some(false),
            max_retransmits: Some(0),
            ..Default::default()
        });
        let channel = pc.create_data_channel(label, init).await.expect("data channel");
        channels.insert(label.to_owned(), channel);
    }
    let offer = pc.create_offer(None).await.expect("offer");
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await.expect("local description");
    let _ = gathered.recv().await;
    let sdp = pc.local_description().await.expect("local description").sdp;
    ((pc, sdp), channels)
}

/// What a viewer's data channels received: (label, text), in arrival order.
pub struct Inbox {
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, String)>>,
}

impl Inbox {
    /// The next message on `label` whose JSON satisfies `want`, skipping others; panics
    /// with what came instead after `timeout`.
    pub async fn expect(&self, label: &str, timeout: Duration, want: impl Fn(&Value) -> bool) -> Value {
        let mut rx = self.rx.lock().await;
        let mut skipped = Vec::new();
        let found = tokio::time::timeout(timeout, async {
            while let Some((got, text)) = rx.recv().await {
                let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
                if got == label && want(&value) {
                    return Some(value);
                }
                skipped.push(format!("{got}: {text}"));
            }
            None
        })
        .await;
        match found {
            Ok(Some(value)) => value,
            _ => panic!("no matching message on `{label}` within {timeout:?}; got instead: {skipped:#?}"),
        }
    }

    /// Everything that arrived so far.
    pub async fn drain(&self) -> Vec<(String, String)> {
        let mut rx = self.rx.lock().await;
        let mut all = Vec::new();
        while let Ok(message) = rx.try_recv() {
            all.push(message);
        }
        all
    }
}

impl Viewer {
    /// Connects to robocast at `addr`; panics with the server's answer if it refuses.
    pub async fn connect(addr: SocketAddr, options: ViewerOptions) -> Viewer {
        let ((pc, sdp), channels) = offer_with_channels(&options).await;
        let (tx, rx) = mpsc::unbounded_channel();
        for (label, channel) in &channels {
            let (tx, label) = (tx.clone(), label.clone());
            channel.on_message(Box::new(move |message: DataChannelMessage| {
                let text = String::from_utf8_lossy(&message.data).into_owned();
                let _ = tx.send((label.clone(), text));
                Box::pin(async {})
            }));
        }
        let inbox = Arc::new(Inbox { rx: tokio::sync::Mutex::new(rx) });
        let received = Arc::new(Received::default());
        let on_track_received = Arc::clone(&received);
        let weak = Arc::downgrade(&pc);
        pc.on_track(Box::new(move |track, receiver, _| {
            let received = Arc::clone(&on_track_received);
            if options.asks_for_key_frames && track.kind() == RTPCodecType::Video {
                tokio::spawn(ask_for_key_frames(weak.clone(), track.ssrc(), Arc::clone(&received)));
            }
            if options.read {
                tokio::spawn(read_track(track, received, options.decode));
                // Reading RTCP is what lets webrtc-rs's receiver reports echo robocast's
                // sender reports (so robocast can measure the round trip), as a browser's do.
                tokio::spawn(async move { while receiver.read_rtcp().await.is_ok() {} });
            }
            Box::pin(async {})
        }));
        let offered_at = Instant::now();
        let (answer, location, etag) = signal(addr, &options, &sdp).await;
        let answer = RTCSessionDescription::answer(answer).expect("answer parses");
        pc.set_remote_description(answer).await.expect("answer accepted");
        Viewer { pc, received, location, etag, offered_at, channels, inbox }
    }

    /// The session id (the last part of its `Location`).
    pub fn session(&self) -> &str {
        self.location.rsplit('/').next().unwrap_or_default()
    }

    /// Waits until the channel `label` is open.
    pub async fn wait_open(&self, label: &str, timeout: Duration) {
        let channel = self.channels.get(label).unwrap_or_else(|| panic!("no `{label}` channel offered"));
        let deadline = Instant::now() + timeout;
        let (tx, mut rx) = mpsc::unbounded_channel();
        channel.on_open(Box::new(move || {
            let _ = tx.send(());
            Box::pin(async {})
        }));
        while channel.ready_state() != RTCDataChannelState::Open {
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left.min(Duration::from_millis(50)), rx.recv()).await.is_err()
                && Instant::now() >= deadline
            {
                panic!("`{label}` did not open within {timeout:?}");
            }
        }
    }

    /// Sends text on `label`.
    pub async fn send(&self, label: &str, text: &str) {
        let channel = self.channels.get(label).unwrap_or_else(|| panic!("no `{label}` channel offered"));
        channel.send_text(text.to_owned()).await.expect("data channel send");
    }

    /// Counts frames over `window` after the first one: frames per second.
    pub async fn measure_fps(&self, window: Duration) -> f64 {
        self.received.wait_frames(1, Duration::from_secs(10)).await;
        let start = (Instant::now(), self.received.video_frames.load(Ordering::Relaxed));
        tokio::time::sleep(window).await;
        let frames = self.received.video_frames.load(Ordering::Relaxed) - start.1;
        frames as f64 / start.0.elapsed().as_secs_f64()
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }

    /// This viewer's ICE username fragment, as its offer gave it.
    pub async fn ice_ufrag(&self) -> String {
        let local = self.pc.local_description().await.expect("local description").sdp;
        local.lines().find_map(|l| l.strip_prefix("a=ice-ufrag:")).expect("an ice-ufrag").trim().to_owned()
    }
}

/// Sends the offer the chosen way; returns the answer SDP, the session's location and ETag.
async fn signal(addr: SocketAddr, options: &ViewerOptions, sdp: &str) -> (String, String, Option<String>) {
    let signalling = options.signalling;
    let post = async |path: &str, content_type: &str, body: &[u8]| {
        let mut headers = vec![("Content-Type", content_type)];
        if let Some(authorization) = options.authorization {
            headers.push(("Authorization", authorization));
        }
        http::request_with(addr, "POST", path, &headers, body).await
    };
    let response = match signalling {
        Signalling::Json => {
            let body = serde_json::json!({ "sdp": sdp, "type": "offer" }).to_string();
            post("/api/connect", "application/json", body.as_bytes()).await
        }
        Signalling::ConnectSdp => post("/api/connect", "application/sdp", sdp.as_bytes()).await,
        Signalling::Whep => post("/whep", "application/sdp", sdp.as_bytes()).await,
    };
    if signalling == Signalling::Json {
        assert_eq!(response.status, 200, "{}", response.body);
        let json = response.json();
        assert_eq!(json["type"], "answer");
        let session = json["session"].as_str().expect("session id");
        let etag = response.header("etag").map(str::to_owned);
        return (
            json["sdp"].as_str().expect("answer sdp").to_owned(),
            format!("/api/sessions/{session}"),
            etag,
        );
    }
    assert_eq!(response.status, 201, "{}", response.body);
    assert_eq!(response.header("content-type"), Some("application/sdp"));
    let location = response.header("location").expect("Location header").to_owned();
    let etag = response.header("etag").map(str::to_owned);
    (response.body, location, etag)
}

async fn read_track(track: Arc<TrackRemote>, received: Arc<Received>, decode: bool) {
    let mime = track.codec().capability.mime_type.to_ascii_lowercase();
    if track.kind() == RTPCodecType::Audio {
        while track.read_rtp().await.is_ok() {
            received.audio_packet();
        }
        return;
    }
    *received.video_mime.lock().expect("not poisoned") = Some(mime.clone());
    let decoder = decode.then(|| Decoder::new(&mime, Arc::clone(&received)));
    let vp8 = mime.contains("vp8");
    let mut h264 = SampleBuilder::new(128, H264Packet::default(), 90_000);
    let mut vp8_builder = SampleBuilder::new(128, Vp8Packet::default(), 90_000);
    while let Ok((packet, _)) = track.read_rtp().await {
        let mut frames = Vec::new();
        if vp8 {
            vp8_builder.push(packet);
            while let Some(sample) = vp8_builder.pop() {
                frames.push(sample.data);
            }
        } else {
            h264.push(packet);
            while let Some(sample) = h264.pop() {
                frames.push(sample.data);
            }
        }
        for data in frames {
            match &decoder {
                Some(decoder) => decoder.push(&data),
                None => received.frame(0, 0),
            }
        }
    }
}

/// `appsrc ! parse ! decoder ! appsink`: counts decoded pictures and records their size.
struct Decoder {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
}

impl Decoder {
    fn new(mime: &str, received: Arc<Received>) -> Decoder {
        gst::init().expect("gstreamer");
        let (caps, decode) = if mime.contains("vp8") {
            ("video/x-vp8", "vp8dec")
        } else {
            ("video/x-h264,stream-format=byte-stream,alignment=au", "h264parse ! avdec_h264")
        };
        let description = format!(
            "appsrc name=src is-live=true format=time do-timestamp=true caps={caps} ! {decode} ! appsink name=sink sync=false"
        );
        let pipeline =
            gst::parse::launch(&description).expect("decoder").downcast::<gst::Pipeline>().expect("pipeline");
        let sink = pipeline.by_name("sink").expect("sink").downcast::<gst_app::AppSink>().expect("appsink");
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let size = sample.caps().and_then(|c| c.structure(0)).map(|s| {
                        (
                            s.get::<i32>("width").unwrap_or(0) as u32,
                            s.get::<i32>("height").unwrap_or(0) as u32,
                        )
                    });
                    let (w, h) = size.unwrap_or((0, 0));
                    received.frame(w, h);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let src = pipeline.by_name("src").expect("src").downcast::<gst_app::AppSrc>().expect("appsrc");
        pipeline.set_state(gst::State::Playing).expect("decoder plays");
        Decoder { pipeline, src }
    }

    fn push(&self, data: &[u8]) {
        let _ = self.src.push_buffer(gst::Buffer::from_slice(data.to_vec()));
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// A webrtc-rs peer with `codecs` (MIME type, payload type, fmtp, kind), the default
/// interceptors, and ICE on loopback only: the tests' stand-in for a browser.
pub async fn loopback_peer(codecs: &[(&str, u8, &str, RTPCodecType)]) -> Arc<RTCPeerConnection> {
    loopback_peer_with(codecs, RTCConfiguration::default()).await
}

/// [`loopback_peer`] with a configuration of the test's own (ICE servers, a relay-only
/// policy).
pub async fn loopback_peer_with(
    codecs: &[(&str, u8, &str, RTPCodecType)],
    configuration: RTCConfiguration,
) -> Arc<RTCPeerConnection> {
    peer_on(codecs, configuration, None).await
}

/// [`loopback_peer_with`] whose ICE uses only 127.0.0.1 and `port`, when given.
async fn peer_on(
    codecs: &[(&str, u8, &str, RTPCodecType)],
    configuration: RTCConfiguration,
    port: Option<u16>,
) -> Arc<RTCPeerConnection> {
    let mut media = MediaEngine::default();
    for &(mime, payload_type, fmtp, kind) in codecs {
        let capability = RTCRtpCodecCapability {
            mime_type: mime.into(),
            clock_rate: if kind == RTPCodecType::Audio { 48_000 } else { 90_000 },
            channels: if kind == RTPCodecType::Audio { 2 } else { 0 },
            sdp_fmtp_line: fmtp.into(),
            rtcp_feedback: vec![],
        };
        media
            .register_codec(RTCRtpCodecParameters { capability, payload_type, ..Default::default() }, kind)
            .expect("codec registers");
    }
    let registry = register_default_interceptors(Registry::new(), &mut media).expect("interceptors");
    let mut settings = SettingEngine::default();
    settings.set_include_loopback_candidate(true);
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    // Tests talk over loopback only.
    if let Some(port) = port {
        let one = EphemeralUDP::new(port, port).expect("a port range");
        settings.set_udp_network(UDPNetwork::Ephemeral(one));
        settings.set_ip_filter(Box::new(|ip| ip == std::net::Ipv4Addr::LOCALHOST));
    } else {
        settings.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    }
    let api = APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build();
    Arc::new(api.new_peer_connection(configuration).await.expect("peer connection"))
}
