//! Talk-back test parts: sinks that stand in for the robot's speaker and display (GStreamer
//! `udpsink`s robocast plays into, read here), a webrtc-rs talker that sends a known tone
//! and a known picture, and a listener that decodes what a viewer hears from the robot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use webrtc::api::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS};
use webrtc::media::Sample;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpCodecCapability, RTPCodecType};
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

use super::http;

/// RMS (0..1) above which a 10 ms chunk counts as sound, and below which as silence.
pub const SOUND: f32 = 0.01;
pub const SILENCE: f32 = 0.001;

/// What robocast's speaker played, 10 ms at a time, as S16LE mono 48 kHz over UDP.
pub struct SpeakerSink {
    socket: UdpSocket,
    port: u16,
}

/// A stretch of sound: its level and main frequency.
#[derive(Debug, Clone, Copy)]
pub struct Sound {
    pub rms: f32,
    pub hz: f32,
}

pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

/// Frequency from the zero crossings of a clean tone: half-periods between the first
/// and the last crossing.
pub fn frequency(samples: &[f32], rate: f32) -> f32 {
    let crossings: Vec<usize> = samples
        .windows(2)
        .enumerate()
        .filter(|(_, w)| (w[0] < 0.0) != (w[1] < 0.0))
        .map(|(i, _)| i)
        .collect();
    match (crossings.first(), crossings.last()) {
        (Some(&first), Some(&last)) if last > first => {
            (crossings.len() - 1) as f32 / 2.0 / ((last - first) as f32 / rate)
        }
        _ => 0.0,
    }
}

fn pcm(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect()
}

impl SpeakerSink {
    pub async fn bind() -> SpeakerSink {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("udp socket");
        let port = socket.local_addr().expect("address").port();
        SpeakerSink { socket, port }
    }

    /// The `speaker` setting that plays into this sink (paced by the sink's clock, as a
    /// sound card is).
    pub fn spec(&self) -> String {
        format!(
            "gst:audio/x-raw,format=S16LE,rate=48000,channels=1 ! udpsink host=127.0.0.1 port={} sync=true",
            self.port
        )
    }

    /// The next chunk played and when it arrived.
    pub async fn chunk(&mut self, within: Duration) -> Result<(Instant, Vec<f32>)> {
        let mut buf = vec![0u8; 65_536];
        let n = tokio::time::timeout(within, self.socket.recv(&mut buf))
            .await
            .context("the speaker played nothing")??;
        Ok((Instant::now(), pcm(&buf[..n])))
    }

    /// Waits for 100 ms of sound (a beep may be shorter: what there is of it).
    pub async fn wait_sound(&mut self, within: Duration) -> Result<Sound> {
        let deadline = Instant::now() + within;
        let mut sound = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (_, chunk) = self.chunk(left).await.context("no sound at the speaker")?;
            if rms(&chunk) >= SOUND {
                sound.extend_from_slice(&chunk);
                if sound.len() >= 4800 {
                    break;
                }
            } else if !sound.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                bail!("no sound at the speaker within {within:?}");
            }
        }
        Ok(Sound { rms: rms(&sound), hz: frequency(&sound, 48_000.0) })
    }

    /// Waits for sound, then measures the next 100 ms of it: the tone as it plays once
    /// started (the first moments may hold the start of the playout buffer).
    pub async fn wait_steady_sound(&mut self, within: Duration) -> Result<Sound> {
        self.wait_sound(within).await?;
        self.wait_sound(within).await
    }

    /// How long until the speaker is silent and stays so for 100 ms.
    pub async fn wait_silence(&mut self, within: Duration) -> Result<Duration> {
        let start = Instant::now();
        let mut silent_since: Option<Instant> = None;
        let mut quiet = 0;
        loop {
            let left = (start + within).saturating_duration_since(Instant::now());
            let (at, chunk) = self.chunk(left.max(Duration::from_millis(1))).await?;
            if rms(&chunk) < SILENCE {
                let first = *silent_since.get_or_insert(at);
                quiet += 1;
                if quiet >= 10 {
                    return Ok(first.saturating_duration_since(start));
                }
            } else {
                silent_since = None;
                quiet = 0;
            }
            if start.elapsed() > within {
                bail!("the speaker did not go silent within {within:?}");
            }
        }
    }

    /// Drops what was played so far.
    pub fn flush(&mut self) {
        let mut buf = vec![0u8; 65_536];
        while self.socket.try_recv(&mut buf).is_ok() {}
    }
}

/// A picture robocast's display showed, scaled to 320x180 and grey.
pub struct Gray {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
    pub at: Instant,
}

impl Gray {
    pub fn mean(&self) -> f32 {
        self.pixels.iter().map(|&p| f32::from(p)).sum::<f32>() / self.pixels.len().max(1) as f32
    }
}

pub struct DisplaySink {
    socket: UdpSocket,
    port: u16,
}

pub const DISPLAY_W: u32 = 320;
pub const DISPLAY_H: u32 = 180;

impl DisplaySink {
    pub async fn bind() -> DisplaySink {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("udp socket");
        let port = socket.local_addr().expect("address").port();
        DisplaySink { socket, port }
    }

    pub fn spec(&self) -> String {
        format!(
            "gst:videoscale ! video/x-raw,width={DISPLAY_W},height={DISPLAY_H} ! videoconvert ! \
             video/x-raw,format=GRAY8 ! udpsink host=127.0.0.1 port={} sync=false",
            self.port
        )
    }

    pub async fn next_frame(&mut self, within: Duration) -> Result<Gray> {
        let mut buf = vec![0u8; 65_536];
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let n = tokio::time::timeout(left, self.socket.recv(&mut buf))
                .await
                .context("the display showed nothing")??;
            if n == (DISPLAY_W * DISPLAY_H) as usize {
                return Ok(Gray {
                    width: DISPLAY_W,
                    height: DISPLAY_H,
                    pixels: buf[..n].to_vec(),
                    at: Instant::now(),
                });
            }
        }
    }

    /// Waits for a picture that `want` accepts.
    pub async fn wait_frame(&mut self, within: Duration, want: impl Fn(&Gray) -> bool) -> Result<Gray> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = self.next_frame(left).await?;
            if want(&frame) {
                return Ok(frame);
            }
        }
    }

    pub fn flush(&mut self) {
        let mut buf = vec![0u8; 65_536];
        while self.socket.try_recv(&mut buf).is_ok() {}
    }
}

/// How a talker reaches robocast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `POST /api/connect` (JSON), two-way sections, as the page does.
    Connect,
    /// `POST /whip`, send-only sections.
    Whip,
}

/// What a talker sends.
#[derive(Clone, Copy, Debug)]
pub struct TalkerOptions {
    pub via: Via,
    /// A sine tone at this frequency.
    pub tone_hz: Option<f64>,
    /// A white picture of this size at 30 fps.
    pub picture: Option<(u32, u32)>,
}

/// A webrtc-rs peer that sends a tone and a picture made by GStreamer.
pub struct Talker {
    pub pc: Arc<RTCPeerConnection>,
    pub location: String,
    pipelines: Vec<gst::Pipeline>,
}

/// The answer or the refusal of a talker's offer.
pub enum Offered {
    Talker(Talker),
    Refused(http::Response),
}

impl Talker {
    pub async fn connect(addr: SocketAddr, options: TalkerOptions) -> Talker {
        match Talker::offer(addr, options).await {
            Offered::Talker(t) => t,
            Offered::Refused(r) => panic!("talker refused: {} {}", r.status, r.body),
        }
    }

    pub async fn offer(addr: SocketAddr, options: TalkerOptions) -> Offered {
        gst::init().expect("gstreamer");
        let codecs = [
            (
                MIME_TYPE_H264,
                102,
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
                RTPCodecType::Video,
            ),
            (MIME_TYPE_OPUS, 111, "minptime=10;useinbandfec=1", RTPCodecType::Audio),
        ];
        let pc = super::viewer::loopback_peer(&codecs).await;
        let direction = match options.via {
            Via::Connect => RTCRtpTransceiverDirection::Sendrecv,
            Via::Whip => RTCRtpTransceiverDirection::Sendonly,
        };
        let mut pipelines = Vec::new();
        let (video_caps, audio_caps) = (
            RTCRtpCodecCapability {
                mime_type: MIME_TYPE_H264.into(),
                clock_rate: 90_000,
                ..Default::default()
            },
            RTCRtpCodecCapability {
                mime_type: MIME_TYPE_OPUS.into(),
                clock_rate: 48_000,
                channels: 2,
                ..Default::default()
            },
        );
        let sources = [
            (video_caps, RTPCodecType::Video, options.picture.map(|(w, h)| {
                format!(
                    "videotestsrc is-live=true pattern=white ! video/x-raw,width={w},height={h},framerate=30/1 ! \
                     x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=500 ! \
                     h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au,profile=constrained-baseline"
                )
            })),
            (audio_caps, RTPCodecType::Audio, options.tone_hz.map(|hz| {
                format!(
                    "audiotestsrc is-live=true wave=sine freq={hz} volume=0.3 ! audio/x-raw,rate=48000,channels=1 ! \
                     opusenc frame-size=20"
                )
            })),
        ];
        for (caps, kind, source) in sources {
            // What it does not send it does not offer (a webrtc-rs peer refuses an answer
            // that rejects a section, where a browser takes it).
            if source.is_none() {
                continue;
            }
            let track = Arc::new(TrackLocalStaticSample::new(caps, format!("{kind}"), "talker".into()));
            let init = RTCRtpTransceiverInit { direction, send_encodings: vec![] };
            pc.add_transceiver_from_track(
                Arc::clone(&track) as Arc<dyn TrackLocal + Send + Sync>,
                Some(init),
            )
            .await
            .expect("transceiver");
            if let Some(source) = source {
                pipelines.push(send(&source, track));
            }
        }
        let offer = pc.create_offer(None).await.expect("offer");
        let mut gathered = pc.gathering_complete_promise().await;
        pc.set_local_description(offer).await.expect("local description");
        let _ = gathered.recv().await;
        let sdp = pc.local_description().await.expect("local description").sdp;
        let (path, expected) = match options.via {
            Via::Connect => ("/api/connect", 201),
            Via::Whip => ("/whip", 201),
        };
        let response = http::post(addr, path, "application/sdp", sdp.as_bytes()).await;
        if response.status != expected {
            for p in &pipelines {
                let _ = p.set_state(gst::State::Null);
            }
            let _ = pc.close().await;
            return Offered::Refused(response);
        }
        let location = response.header("location").expect("Location").to_owned();
        let answer = RTCSessionDescription::answer(response.body.clone()).expect("answer parses");
        pc.set_remote_description(answer).await.expect("answer accepted");
        for p in &pipelines {
            p.set_state(gst::State::Playing).expect("talker source plays");
        }
        Offered::Talker(Talker { pc, location, pipelines })
    }

    pub fn session(&self) -> &str {
        self.location.rsplit('/').next().unwrap_or_default()
    }

    /// Leaves the way a closing browser tab does (DTLS close, no HTTP).
    pub async fn close(&self) {
        for p in &self.pipelines {
            let _ = p.set_state(gst::State::Null);
        }
        let _ = self.pc.close().await;
    }
}

impl Drop for Talker {
    fn drop(&mut self) {
        for p in &self.pipelines {
            let _ = p.set_state(gst::State::Null);
        }
    }
}

/// `source ! appsink`, each buffer written to `track` as a sample.
fn send(source: &str, track: Arc<TrackLocalStaticSample>) -> gst::Pipeline {
    let description = format!("{source} ! appsink name=out sync=false");
    let pipeline = gst::parse::launch(&description)
        .expect("talker source")
        .downcast::<gst::Pipeline>()
        .expect("pipeline");
    let sink = pipeline.by_name("out").expect("out").downcast::<gst_app::AppSink>().expect("appsink");
    let (tx, mut rx) = mpsc::unbounded_channel::<(Vec<u8>, Duration)>();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let duration = buffer.duration().map(Duration::from).unwrap_or(Duration::from_millis(20));
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                let _ = tx.send((map.to_vec(), duration));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    tokio::spawn(async move {
        while let Some((data, duration)) = rx.recv().await {
            let _ = track.write_sample(&Sample { data: data.into(), duration, ..Default::default() }).await;
        }
    });
    pipeline
}

/// What a viewer hears from the robot: its Opus decoded, 10 ms chunks of mono f32.
pub struct Listener {
    pub pc: Arc<RTCPeerConnection>,
    pub chunks: mpsc::UnboundedReceiver<Vec<f32>>,
}

impl Listener {
    pub async fn connect(addr: SocketAddr) -> Listener {
        gst::init().expect("gstreamer");
        let (pc, sdp) = super::viewer::offer(&super::ViewerOptions::default()).await;
        let (tx, chunks) = mpsc::unbounded_channel();
        pc.on_track(Box::new(move |track, _, _| {
            if track.kind() == RTPCodecType::Audio {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let description = "appsrc name=src is-live=true format=time do-timestamp=true \
                        caps=audio/x-opus,channel-mapping-family=0 ! opusdec ! audioconvert ! audioresample ! \
                        audio/x-raw,format=F32LE,rate=48000,channels=1 ! appsink name=out sync=false";
                    let pipeline = gst::parse::launch(description).expect("decoder").downcast::<gst::Pipeline>().expect("pipeline");
                    let out = pipeline.by_name("out").expect("out").downcast::<gst_app::AppSink>().expect("appsink");
                    out.set_callbacks(
                        gst_app::AppSinkCallbacks::builder()
                            .new_sample(move |sink| {
                                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                                let samples = map.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                                let _ = tx.send(samples);
                                Ok(gst::FlowSuccess::Ok)
                            })
                            .build(),
                    );
                    let src = pipeline.by_name("src").expect("src").downcast::<gst_app::AppSrc>().expect("appsrc");
                    pipeline.set_state(gst::State::Playing).expect("decoder plays");
                    while let Ok((packet, _)) = track.read_rtp().await {
                        let _ = src.push_buffer(gst::Buffer::from_slice(packet.payload.to_vec()));
                    }
                    let _ = pipeline.set_state(gst::State::Null);
                });
            }
            Box::pin(async {})
        }));
        let response = http::post(addr, "/api/connect", "application/sdp", sdp.as_bytes()).await;
        assert_eq!(response.status, 201, "{}", response.body);
        let answer = RTCSessionDescription::answer(response.body).expect("answer parses");
        pc.set_remote_description(answer).await.expect("answer accepted");
        Listener { pc, chunks }
    }

    /// The level of what the viewer hears over `window`, counted from the first sound that
    /// arrives after the call (a viewer that has just connected may take a while to hear
    /// anything on a busy machine; that wait is not part of the window).
    pub async fn level(&mut self, window: Duration) -> Result<f32> {
        while self.chunks.try_recv().is_ok() {}
        let mut all =
            match tokio::time::timeout(10 * window.max(Duration::from_secs(1)), self.chunks.recv()).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => bail!("the viewer's audio ended"),
                Err(_) => bail!("the viewer heard nothing for {:?}", 10 * window.max(Duration::from_secs(1))),
            };
        let deadline = Instant::now() + window;
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.chunks.recv()).await {
                Ok(Some(chunk)) => all.extend(chunk),
                Ok(None) => bail!("the viewer's audio ended"),
                Err(_) => break,
            }
        }
        if all.len() < 4800 {
            bail!("the viewer heard only {} samples in {window:?}", all.len());
        }
        Ok(rms(&all))
    }
}
