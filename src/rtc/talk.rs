//! Talk-back: the media a browser (or a WHIP client) sends, to the robot's speaker and
//! display, for the one session that holds the talker seat.
//!
//! One `receive` task per remote track reads RTP: Opus packets go to the speaker as they
//! come (late ones are dropped: the playout buffer absorbs jitter), video packets are put
//! together into whole pictures here, without waiting for the next picture's first
//! packet, and go to the display. The first packet takes the seat (the control hub
//! decides); a session refused hears why, once a second. A session whose media has
//! stopped for [`QUIET_AFTER`] gives the seat back, and the speaker goes silent and the
//! display idle at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio_util::sync::CancellationToken;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp::codecs::h264::H264Packet;
use webrtc::rtp::codecs::vp8::Vp8Packet;
use webrtc::rtp::packetizer::Depacketizer;
use webrtc::track::track_remote::TrackRemote;

use crate::control::{Control, SeatKind};
use crate::media::{Codec, Playout};
use crate::sessions::SessionId;

/// A talker whose media stopped this long gives the seat back.
pub const QUIET_AFTER: Duration = Duration::from_secs(1);
/// A seat taken through the API (before any media) is kept this long waiting for media.
const CLAIM_GRACE: Duration = Duration::from_secs(5);
/// A refused session asks the hub again at most this often.
const ASK_EVERY: Duration = Duration::from_millis(250);
/// ... and hears about the refusal at most this often.
const TELL_EVERY: Duration = Duration::from_secs(1);
/// Key frame requests to a talker, at most this often.
const PLI_EVERY: Duration = Duration::from_secs(1);

/// What a session needs to talk: its id, the seat keeper and the speaker and display.
#[derive(Clone)]
pub struct TalkContext {
    pub id: SessionId,
    /// What the session's opener may do: only an operator's media is played.
    pub access: crate::auth::Access,
    pub control: Control,
    pub playout: Playout,
}

#[derive(Default)]
struct Times {
    /// The last packet, or a claim through the API (then `grace` is set).
    last_media: Option<Instant>,
    grace_until: Option<Instant>,
    asked: Option<Instant>,
    told: Option<Instant>,
    /// The session gave the seat up while its media still came: it is not taken again
    /// until that media pauses (or the session asks).
    held_off: bool,
}

/// Per-session talk state, shared by its tracks, its seat watcher and the HTTP handlers.
pub struct Talk {
    context: TalkContext,
    holding: AtomicBool,
    /// Changes every time the seat is taken: video tracks restart their decoder.
    epoch: AtomicU64,
    times: Mutex<Times>,
    pub packets: AtomicU64,
}

/// How a packet may go on.
enum Admit {
    /// Played; `fresh` when the seat was just taken.
    Play {
        fresh: bool,
    },
    Refused,
}

impl Talk {
    pub fn new(context: TalkContext) -> Arc<Talk> {
        Arc::new(Talk {
            context,
            holding: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            times: Mutex::new(Times::default()),
            packets: AtomicU64::new(0),
        })
    }

    fn times(&self) -> std::sync::MutexGuard<'_, Times> {
        self.times.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn holding(&self) -> bool {
        self.holding.load(Ordering::Acquire)
    }

    /// The seat was given through the API: media is expected within [`CLAIM_GRACE`].
    pub fn claimed(&self) {
        self.take_locally();
        let mut times = self.times();
        let now = Instant::now();
        times.last_media = Some(now);
        times.grace_until = Some(now + CLAIM_GRACE);
        times.held_off = false;
    }

    /// The session gave the seat up through the API: silence now, and its media (if it
    /// still sends) does not take the seat back until it pauses.
    pub fn gave_up(&self) {
        self.times().held_off = true;
        self.released();
    }

    fn take_locally(&self) -> bool {
        let fresh = !self.holding.swap(true, Ordering::AcqRel);
        if fresh {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        fresh
    }

    /// The seat is gone (released, or the session ended): silence and the idle picture.
    pub fn released(&self) {
        if self.holding.swap(false, Ordering::AcqRel) {
            if let Some(speaker) = &self.context.playout.speaker {
                speaker.stop();
            }
            if let Some(display) = &self.context.playout.display {
                display.stop();
            }
        }
    }

    /// A packet arrived: whether it is played, asking for the seat when not holding it.
    async fn admit(&self) -> Admit {
        self.packets.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        {
            let mut times = self.times();
            let paused = times.last_media.is_none_or(|t| now - t >= QUIET_AFTER);
            times.last_media = Some(now);
            times.grace_until = None;
            if self.holding() {
                return Admit::Play { fresh: false };
            }
            if times.held_off && !paused {
                return Admit::Refused;
            }
            times.held_off = false;
            if times.asked.is_some_and(|t| now - t < ASK_EVERY) {
                return Admit::Refused;
            }
            times.asked = Some(now);
        }
        let c = &self.context;
        match c.control.take_seat(SeatKind::Talker, &c.id, c.access).await {
            Ok(()) => Admit::Play { fresh: self.take_locally() },
            Err(refusal) => {
                let tell = {
                    let mut times = self.times();
                    let tell = times.told.is_none_or(|t| now - t >= TELL_EVERY);
                    if tell {
                        times.told = Some(now);
                    }
                    tell
                };
                if tell {
                    tracing::debug!(refusal = %refusal.describe().0, "talk-back refused");
                    c.control.talk_refused(&c.id, refusal).await;
                }
                Admit::Refused
            }
        }
    }

    /// Gives the seat back once the media has stopped; ends with the session.
    pub async fn watch(self: Arc<Talk>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(QUIET_AFTER / 5);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            if !self.holding() {
                continue;
            }
            let quiet = {
                let times = self.times();
                let now = Instant::now();
                let waited = times.last_media.is_none_or(|t| now - t >= QUIET_AFTER);
                waited && times.grace_until.is_none_or(|t| now >= t)
            };
            if quiet {
                tracing::info!("talker's media stopped");
                self.give_back().await;
            }
        }
        self.give_back().await;
    }

    async fn give_back(&self) {
        if self.holding() {
            self.released();
            let c = &self.context;
            c.control.release_seat(SeatKind::Talker, &c.id).await;
        }
    }
}

/// The codec of a remote track, if robocast plays it.
fn codec_of(track: &TrackRemote) -> Option<Codec> {
    match track.codec().capability.mime_type.to_ascii_lowercase().as_str() {
        "audio/opus" => Some(Codec::Opus),
        "video/h264" => Some(Codec::H264),
        "video/vp8" => Some(Codec::Vp8),
        _ => None,
    }
}

/// Reads a remote track until it ends, playing it while the session holds the seat.
pub async fn receive(
    talk: Arc<Talk>,
    track: Arc<TrackRemote>,
    pc: Weak<RTCPeerConnection>,
    cancel: CancellationToken,
) {
    let codec = codec_of(&track);
    tracing::debug!(kind = %track.kind(), codec = %track.codec().capability.mime_type, "remote track");
    let mut audio = AudioOrder::default();
    let mut picture = Picture::new(codec);
    let mut epoch = 0;
    let mut pli_at: Option<Instant> = None;
    let ssrc = track.ssrc();
    loop {
        let packet = tokio::select! {
            () = cancel.cancelled() => return,
            read = track.read_rtp() => match read {
                Ok((packet, _)) => packet,
                Err(_) => return,
            },
        };
        let Some(codec) = codec else { continue };
        let fresh = match talk.admit().await {
            Admit::Play { fresh } => fresh,
            Admit::Refused => continue,
        };
        let playout = &talk.context.playout;
        if codec == Codec::Opus {
            let Some(speaker) = &playout.speaker else { continue };
            if fresh {
                audio = AudioOrder::default();
            }
            if audio.in_order(packet.header.sequence_number) {
                speaker.push(packet.payload);
            } else {
                speaker.late();
            }
            continue;
        }
        let Some(display) = &playout.display else { continue };
        let now_epoch = talk.epoch.load(Ordering::Acquire);
        if fresh || now_epoch != epoch {
            epoch = now_epoch;
            if let Err(e) = display.begin(codec).await {
                tracing::warn!(error = %e, hint = %e.hint(), "talk-back video is not shown");
            }
            picture = Picture::new(Some(codec));
            pli_at = None;
        }
        if let Some(frame) = picture.push(&packet) {
            display.push(codec, frame);
        }
        // Ask for a key frame until the decoder has one, and after a lost packet.
        let wants_key = picture.keyframes == 0 || picture.lost;
        if wants_key && pli_at.is_none_or(|t| t.elapsed() >= PLI_EVERY) {
            pli_at = Some(Instant::now());
            picture.lost = false;
            if let Some(pc) = pc.upgrade() {
                let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc };
                let _ = pc.write_rtcp(&[Box::new(pli)]).await;
            }
        }
    }
}

/// Drops Opus packets older than the newest one played.
#[derive(Default)]
struct AudioOrder {
    last: Option<u16>,
}

impl AudioOrder {
    fn in_order(&mut self, seq: u16) -> bool {
        let newer = self.last.is_none_or(|last| seq.wrapping_sub(last) as i16 > 0);
        if newer {
            self.last = Some(seq);
        }
        newer
    }
}

/// Puts RTP packets together into whole pictures: a picture is complete at its marker
/// bit when no packet since its first was missing.
struct Picture {
    depacketizer: Option<Box<dyn Depacketizer + Send>>,
    data: BytesMut,
    timestamp: Option<u32>,
    next_seq: Option<u16>,
    /// A packet of this picture went missing: it is dropped at its marker.
    broken: bool,
    /// Some packet was lost since the last key frame request.
    lost: bool,
    /// Complete key frames put together.
    keyframes: u64,
    codec: Option<Codec>,
}

impl Picture {
    fn new(codec: Option<Codec>) -> Picture {
        let depacketizer: Option<Box<dyn Depacketizer + Send>> = match codec {
            Some(Codec::H264) => Some(Box::new(H264Packet::default())),
            Some(Codec::Vp8) => Some(Box::new(Vp8Packet::default())),
            _ => None,
        };
        Picture {
            depacketizer,
            data: BytesMut::new(),
            timestamp: None,
            next_seq: None,
            broken: false,
            lost: false,
            keyframes: 0,
            codec,
        }
    }

    fn push(&mut self, packet: &webrtc::rtp::packet::Packet) -> Option<Bytes> {
        let depacketizer = self.depacketizer.as_mut()?;
        let header = &packet.header;
        let gap = self.next_seq.is_some_and(|s| s != header.sequence_number);
        self.lost |= gap;
        self.next_seq = Some(header.sequence_number.wrapping_add(1));
        if self.timestamp != Some(header.timestamp) {
            // A new picture (the last one, if it never saw its marker, is dropped).
            self.data.clear();
            self.broken = gap;
            self.timestamp = Some(header.timestamp);
        } else {
            self.broken |= gap;
        }
        match depacketizer.depacketize(&packet.payload) {
            Ok(part) => self.data.extend_from_slice(&part),
            Err(_) => self.broken = true,
        }
        if !header.marker {
            return None;
        }
        let broken = std::mem::take(&mut self.broken);
        let data = std::mem::take(&mut self.data).freeze();
        self.timestamp = None;
        if broken || data.is_empty() {
            return None;
        }
        if self.is_keyframe(&data) {
            self.keyframes += 1;
        }
        Some(data)
    }

    fn is_keyframe(&self, data: &[u8]) -> bool {
        match self.codec {
            // VP8: bit 0 of the first byte is 0 for a key frame (RFC 6386 §9.1).
            Some(Codec::Vp8) => data.first().is_some_and(|b| b & 1 == 0),
            // H.264 (Annex B): an IDR slice (type 5).
            _ => data.windows(4).any(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 5),
        }
    }
}

#[cfg(test)]
mod tests {
    use webrtc::rtp::header::Header;
    use webrtc::rtp::packet::Packet;

    use super::*;

    /// An H.264 single-NAL packet (RFC 6184 §5.6) of NAL type `nal`.
    fn h264(seq: u16, timestamp: u32, marker: bool, nal: u8) -> Packet {
        let header = Header { sequence_number: seq, timestamp, marker, ..Default::default() };
        Packet { header, payload: Bytes::from(vec![0x60 | nal, 0xaa, 0xbb]) }
    }

    #[test]
    fn pictures_are_whole_at_their_marker_and_dropped_when_a_packet_is_missing() {
        let mut picture = Picture::new(Some(Codec::H264));
        assert!(picture.push(&h264(1, 100, false, 7)).is_none(), "no marker yet");
        let idr = picture.push(&h264(2, 100, true, 5)).expect("complete at its marker");
        assert_eq!(&idr[..], &[0, 0, 0, 1, 0x67, 0xaa, 0xbb, 0, 0, 0, 1, 0x65, 0xaa, 0xbb]);
        assert_eq!(picture.keyframes, 1);
        // Packet 4 is missing: picture 200 is broken and dropped, and a key frame is due.
        assert!(picture.push(&h264(3, 200, false, 1)).is_none());
        assert!(picture.push(&h264(5, 200, true, 1)).is_none(), "a picture with a hole is dropped");
        assert!(picture.lost);
        // The next picture is whole again (a delta: no new key frame counted).
        assert!(picture.push(&h264(6, 300, true, 1)).is_some());
        assert_eq!(picture.keyframes, 1);
        // A picture whose marker never came is dropped when the next one starts.
        assert!(picture.push(&h264(7, 400, false, 1)).is_none());
        let next = picture.push(&h264(8, 500, true, 1)).expect("the next picture");
        assert_eq!(next.len(), 7, "only the new picture's packet: {next:?}");
    }

    #[test]
    fn audio_out_of_order_is_dropped_across_the_wrap() {
        let mut order = AudioOrder::default();
        assert!(order.in_order(65_534));
        assert!(order.in_order(65_535));
        assert!(order.in_order(1), "after the wrap");
        assert!(!order.in_order(65_535), "late");
        assert!(!order.in_order(1), "repeated");
        assert!(order.in_order(3), "a gap is fine: the buffer plays silence for it");
    }
}
