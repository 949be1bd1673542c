//! Each session's link: what robocast sent, what the viewer said about it, and the pace.
//!
//! A webrtc-rs interceptor, one per peer connection, sits next to the transport:
//!
//! * outgoing RTP: it paces video (see [`super::pacer`]), then notes each packet's
//!   transport-wide sequence number (stamped just before by webrtc-rs's TWCC sender),
//!   time and size;
//! * incoming RTCP: transport-wide feedback, REMB and receiver reports (loss and, from
//!   the last-sender-report fields, the round trip) go to the session's
//!   [`Estimator`](crate::congestion::Estimator).
//!
//! [`Link`] is what the session holds: the estimate and its snapshot for the status.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde::Serialize;
use webrtc::interceptor::stream_info::StreamInfo;
use webrtc::interceptor::{
    Attributes, Interceptor, InterceptorBuilder, RTCPReader, RTCPWriter, RTPReader, RTPWriter,
};
use webrtc::rtcp::packet::Packet as RtcpPacket;
use webrtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use webrtc::rtcp::receiver_report::ReceiverReport;
use webrtc::rtcp::reception_report::ReceptionReport;
use webrtc::rtcp::sender_report::SenderReport;
use webrtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
};
use webrtc::rtp::extension::abs_send_time_extension::unix2ntp;
use webrtc::rtp::extension::transport_cc_extension::TransportCcExtension;
use webrtc::util::{MarshalSize, Unmarshal};

use super::pacer::{PACING_FACTOR, Pace, Pacer};
use crate::congestion::journal::Event;
use crate::congestion::{Bounds, Estimator, Snapshot};

/// The transport-wide sequence number extension.
pub const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// Of a link's estimate less the audio, the share the encoder aims at.
const ENCODER_SHARE: f64 = 0.9;
/// Receiver reports carry the loss only for viewers that send no transport-wide feedback
/// (or stopped sending it this long ago).
const TWCC_FRESH: Duration = Duration::from_secs(2);

/// A session's link estimate and pacer. Locks are held for arithmetic only, never
/// across an `.await`.
pub struct Link {
    epoch: Instant,
    /// Of the estimate, what is kept for audio, bit/s.
    audio_bps: u64,
    estimator: Mutex<Estimator>,
    pacer: Pacer,
    counters: Counters,
    seen: Mutex<Seen>,
    /// The estimator's inputs, written for a replay when `ROBOCAST_LINK_JOURNAL` is set.
    journal: Option<Mutex<std::io::BufWriter<std::fs::File>>>,
}

/// What left, counted by the interceptors.
#[derive(Default)]
struct Counters {
    packets: AtomicU64,
    bytes: AtomicU64,
    resent: AtomicU64,
    resends_dropped: AtomicU64,
}

/// A session's link as `/api/sessions` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct LinkStatus {
    #[serde(flatten)]
    pub estimate: Snapshot,
    /// RTP packets and bytes robocast sent on this link (retransmissions too).
    pub packets_sent: u64,
    pub bytes_sent: u64,
    /// Packets sent again on the viewer's NACK, and NACKed packets not sent again (asked
    /// again within a round trip, or while the pacer's queue was long).
    pub resent: u64,
    pub resends_dropped: u64,
}

/// What was already read: the same RTCP compound reaches every sender it names.
#[derive(Default)]
struct Seen {
    feedback_counts: VecDeque<(u32, u8)>,
    reports: VecDeque<(u32, u32)>,
    last_twcc: Option<Instant>,
}

impl Link {
    pub fn new(bounds: Bounds, audio_bps: u64) -> Arc<Link> {
        let epoch = Instant::now();
        let link = Arc::new(Link {
            epoch,
            audio_bps,
            estimator: Mutex::new(Estimator::new(bounds)),
            pacer: Pacer::new(epoch),
            counters: Counters::default(),
            seen: Mutex::new(Seen::default()),
            journal: open_journal(),
        });
        link.note(|| Event::start(bounds));
        link
    }

    /// Writes one estimator input to the journal, if there is one.
    fn note(&self, event: impl FnOnce() -> Event) {
        let Some(journal) = &self.journal else { return };
        let Ok(line) = serde_json::to_string(&event()) else { return };
        let mut journal = journal.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = writeln!(journal, "{line}");
    }

    /// The estimate and what was sent, for `/api/sessions`.
    pub fn status(&self) -> LinkStatus {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        LinkStatus {
            estimate: self.estimator().snapshot(),
            packets_sent: load(&self.counters.packets),
            bytes_sent: load(&self.counters.bytes),
            resent: load(&self.counters.resent),
            resends_dropped: load(&self.counters.resends_dropped),
        }
    }

    /// Says whether more would give the viewer a better picture: it is on a lower tier
    /// ([`Estimator::set_eager`]).
    pub fn set_eager(&self, eager: bool) {
        self.estimator().set_eager(eager);
        self.note(|| Event::Eager { eager });
    }

    /// What the link takes for video, bit/s: unbounded while the estimate is at the
    /// configured most (the link takes all robocast sends), else the estimate less the
    /// audio and a tenth for RTP headers, retransmissions and the encoder's overshoot.
    pub fn video_rate(&self) -> u64 {
        let estimator = self.estimator();
        if estimator.at_most() {
            return u64::MAX;
        }
        (estimator.target().saturating_sub(self.audio_bps) as f64 * ENCODER_SHARE) as u64
    }

    /// The interceptor that reads the viewer's feedback and notes what was sent, for the
    /// session's webrtc-rs API: it must be nearer the transport than the TWCC sender that
    /// stamps the sequence numbers it reads.
    pub fn recorder(self: &Arc<Link>) -> Box<dyn InterceptorBuilder + Send + Sync> {
        Box::new(Builder { link: Arc::clone(self), role: Role::Record })
    }

    /// The interceptor that paces video: it must be farther from the transport than the
    /// TWCC sender, so packets are numbered in the order they leave (a packet numbered and
    /// then held would be reported lost while audio numbered after it arrives).
    pub fn pacer(self: &Arc<Link>) -> Box<dyn InterceptorBuilder + Send + Sync> {
        Box::new(Builder { link: Arc::clone(self), role: Role::Pace })
    }

    fn estimator(&self) -> std::sync::MutexGuard<'_, Estimator> {
        // A panic while holding it cannot leave the estimator half-updated in a way that
        // matters more than losing the estimate, so a poisoned lock is taken as it is.
        self.estimator.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn since_epoch(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.epoch)
    }

    /// When a packet may leave, or whether to drop it (see [`Pacer::schedule`]).
    fn pace(&self, packet: &webrtc::rtp::packet::Packet, bits: f64, now: Instant) -> Pace {
        let (rate, rtt) = {
            let estimator = self.estimator();
            (estimator.target() as f64 * PACING_FACTOR, estimator.rtt())
        };
        self.pacer.schedule((packet.header.ssrc, packet.header.sequence_number), bits, rate, rtt, now)
    }

    fn on_rtcp(&self, packets: &[Box<dyn RtcpPacket + Send + Sync>]) {
        let now = Instant::now();
        let at = self.since_epoch(now);
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for packet in packets {
            let any = packet.as_any();
            if let Some(feedback) = any.downcast_ref::<TransportLayerCc>() {
                if remember(&mut seen.feedback_counts, (feedback.media_ssrc, feedback.fb_pkt_count)) {
                    seen.last_twcc = Some(now);
                    let arrivals = arrivals(feedback);
                    self.note(|| Event::feedback(at, &arrivals));
                    self.estimator().on_transport_feedback(at, arrivals);
                }
            } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
                let bps = remb.bitrate.max(0.0) as u64;
                self.note(|| Event::remb(at, bps));
                self.estimator().on_remb(at, bps);
            } else if let Some(report) = any.downcast_ref::<ReceiverReport>() {
                self.on_reports(&mut seen, &report.reports, now);
            } else if let Some(report) = any.downcast_ref::<SenderReport>() {
                self.on_reports(&mut seen, &report.reports, now);
            }
        }
    }

    fn on_reports(&self, seen: &mut Seen, reports: &[ReceptionReport], now: Instant) {
        let twcc = seen.last_twcc.is_some_and(|t| now.duration_since(t) < TWCC_FRESH);
        for report in reports {
            if !remember(&mut seen.reports, (report.ssrc, report.last_sequence_number)) {
                continue;
            }
            let mut estimator = self.estimator();
            if let Some(rtt) = round_trip(report, SystemTime::now()) {
                self.note(|| Event::rtt(rtt));
                estimator.on_rtt(rtt);
            }
            if !twcc {
                let (at, loss) = (self.since_epoch(now), f64::from(report.fraction_lost) / 256.0);
                self.note(|| Event::report(at, loss));
                estimator.on_receiver_report(at, loss);
            }
        }
    }
}

/// A new journal file in `ROBOCAST_LINK_JOURNAL`, when set (see `congestion::journal`).
fn open_journal() -> Option<Mutex<std::io::BufWriter<std::fs::File>>> {
    static SESSIONS: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::var_os("ROBOCAST_LINK_JOURNAL")?;
    let n = SESSIONS.fetch_add(1, Ordering::Relaxed);
    let path = std::path::Path::new(&dir).join(format!("link-{}-{n}.jsonl", std::process::id()));
    match std::fs::File::create(&path) {
        Ok(file) => Some(Mutex::new(std::io::BufWriter::new(file))),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot write the link journal");
            None
        }
    }
}

/// Keeps the last few keys; false when `key` was among them.
fn remember<K: PartialEq>(keys: &mut VecDeque<K>, key: K) -> bool {
    if keys.contains(&key) {
        return false;
    }
    if keys.len() == 32 {
        keys.pop_front();
    }
    keys.push_back(key);
    true
}

/// A report's round trip (RFC 3550 6.4.1): now, less when our sender report left (its
/// compact NTP time, echoed), less how long the viewer held it.
fn round_trip(report: &ReceptionReport, now: SystemTime) -> Option<Duration> {
    if report.last_sender_report == 0 {
        return None;
    }
    let compact_now = (unix2ntp(now) >> 16) as u32;
    let units = compact_now.wrapping_sub(report.last_sender_report).wrapping_sub(report.delay);
    // More than a minute is a wrapped subtraction (a report from before a clock step).
    (units < 60 << 16).then(|| Duration::from_secs_f64(f64::from(units) / 65536.0))
}

/// Sequence numbers with their arrival times (on the viewer's clock; `None`: not
/// received) from one transport-wide feedback packet.
pub fn arrivals(feedback: &TransportLayerCc) -> Vec<(u16, Option<Duration>)> {
    // The reference time counts 64 ms steps; deltas are µs and may be negative. An offset
    // keeps the sum positive (only differences matter to the estimator).
    const OFFSET_US: i64 = 1 << 40;
    let mut arrival_us = i64::from(feedback.reference_time) * 64_000 + OFFSET_US;
    let mut deltas = feedback.recv_deltas.iter();
    let symbols = feedback.packet_chunks.iter().flat_map(|chunk| match chunk {
        PacketStatusChunk::RunLengthChunk(run) => vec![run.packet_status_symbol; usize::from(run.run_length)],
        PacketStatusChunk::StatusVectorChunk(vector) => vector.symbol_list.clone(),
    });
    let mut out = Vec::with_capacity(usize::from(feedback.packet_status_count));
    for (i, symbol) in symbols.take(usize::from(feedback.packet_status_count)).enumerate() {
        let seq = feedback.base_sequence_number.wrapping_add(i as u16);
        let received = matches!(
            symbol,
            SymbolTypeTcc::PacketReceivedSmallDelta | SymbolTypeTcc::PacketReceivedLargeDelta
        );
        let arrival = if received {
            match deltas.next() {
                Some(delta) => {
                    arrival_us += delta.delta;
                    u64::try_from(arrival_us).ok().map(Duration::from_micros)
                }
                None => None,
            }
        } else {
            None
        };
        out.push((seq, arrival));
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Record,
    Pace,
}

struct Builder {
    link: Arc<Link>,
    role: Role,
}

impl InterceptorBuilder for Builder {
    fn build(&self, _id: &str) -> Result<Arc<dyn Interceptor + Send + Sync>, webrtc::interceptor::Error> {
        Ok(Arc::new(LinkInterceptor { link: Arc::clone(&self.link), role: self.role }))
    }
}

struct LinkInterceptor {
    link: Arc<Link>,
    role: Role,
}

#[async_trait]
impl Interceptor for LinkInterceptor {
    async fn bind_rtcp_reader(
        &self,
        reader: Arc<dyn RTCPReader + Send + Sync>,
    ) -> Arc<dyn RTCPReader + Send + Sync> {
        match self.role {
            Role::Record => Arc::new(FeedbackReader { next: reader, link: Arc::clone(&self.link) }),
            Role::Pace => reader,
        }
    }

    async fn bind_rtcp_writer(
        &self,
        writer: Arc<dyn RTCPWriter + Send + Sync>,
    ) -> Arc<dyn RTCPWriter + Send + Sync> {
        writer
    }

    async fn bind_local_stream(
        &self,
        info: &StreamInfo,
        writer: Arc<dyn RTPWriter + Send + Sync>,
    ) -> Arc<dyn RTPWriter + Send + Sync> {
        let link = Arc::clone(&self.link);
        match self.role {
            Role::Record => {
                let extension = info.rtp_header_extensions.iter().find(|e| e.uri == TRANSPORT_CC_URI);
                let extension = extension.and_then(|e| u8::try_from(e.id).ok());
                Arc::new(SentWriter { next: writer, link, extension })
            }
            Role::Pace => {
                let video = info.mime_type.to_ascii_lowercase().starts_with("video/");
                Arc::new(PacedWriter { next: writer, link, video })
            }
        }
    }

    async fn unbind_local_stream(&self, _info: &StreamInfo) {}

    async fn bind_remote_stream(
        &self,
        _info: &StreamInfo,
        reader: Arc<dyn RTPReader + Send + Sync>,
    ) -> Arc<dyn RTPReader + Send + Sync> {
        reader
    }

    async fn unbind_remote_stream(&self, _info: &StreamInfo) {}

    async fn close(&self) -> Result<(), webrtc::interceptor::Error> {
        Ok(())
    }
}

struct FeedbackReader {
    next: Arc<dyn RTCPReader + Send + Sync>,
    link: Arc<Link>,
}

#[async_trait]
impl RTCPReader for FeedbackReader {
    async fn read(
        &self,
        buf: &mut [u8],
        attributes: &Attributes,
    ) -> Result<(Vec<Box<dyn RtcpPacket + Send + Sync>>, Attributes), webrtc::interceptor::Error> {
        let (packets, attributes) = self.next.read(buf, attributes).await?;
        self.link.on_rtcp(&packets);
        Ok((packets, attributes))
    }
}

/// A packet's size on the wire, less the SRTP tag and the UDP and IP headers.
fn rtp_size(packet: &webrtc::rtp::packet::Packet) -> usize {
    packet.header.marshal_size() + packet.payload.len()
}

/// Holds video packets to the link's pace; audio only takes its share.
struct PacedWriter {
    next: Arc<dyn RTPWriter + Send + Sync>,
    link: Arc<Link>,
    video: bool,
}

#[async_trait]
impl RTPWriter for PacedWriter {
    async fn write(
        &self,
        packet: &webrtc::rtp::packet::Packet,
        attributes: &Attributes,
    ) -> Result<usize, webrtc::interceptor::Error> {
        let size = rtp_size(packet);
        let now = Instant::now();
        let at = match self.link.pace(packet, size as f64 * 8.0, now) {
            Pace::Drop => {
                self.link.counters.resends_dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(0);
            }
            Pace::Resend(at) => {
                self.link.counters.resent.fetch_add(1, Ordering::Relaxed);
                at
            }
            Pace::At(at) => at,
        };
        if self.video && at > now {
            tokio::time::sleep_until(at.into()).await;
        }
        self.next.write(packet, attributes).await
    }
}

/// Notes each packet's transport-wide sequence number, time and size.
struct SentWriter {
    next: Arc<dyn RTPWriter + Send + Sync>,
    link: Arc<Link>,
    extension: Option<u8>,
}

#[async_trait]
impl RTPWriter for SentWriter {
    async fn write(
        &self,
        packet: &webrtc::rtp::packet::Packet,
        attributes: &Attributes,
    ) -> Result<usize, webrtc::interceptor::Error> {
        let size = rtp_size(packet);
        self.link.counters.packets.fetch_add(1, Ordering::Relaxed);
        self.link.counters.bytes.fetch_add(size as u64, Ordering::Relaxed);
        let seq = self.extension.and_then(|id| packet.header.get_extension(id)).and_then(|mut payload| {
            TransportCcExtension::unmarshal(&mut payload).ok().map(|e| e.transport_sequence)
        });
        if let Some(seq) = seq {
            let sent = self.link.since_epoch(Instant::now());
            self.link.note(|| Event::sent(sent, seq, size));
            self.link.estimator().on_sent(seq, sent, size);
        }
        self.next.write(packet, attributes).await
    }
}

#[cfg(test)]
mod tests {
    use webrtc::rtcp::transport_feedbacks::transport_layer_cc::{
        RecvDelta, RunLengthChunk, StatusVectorChunk,
    };

    use super::*;

    #[test]
    fn transport_feedback_becomes_arrival_times() {
        let small = |us| RecvDelta { type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta, delta: us };
        let feedback = TransportLayerCc {
            base_sequence_number: 65_534,
            packet_status_count: 5,
            reference_time: 10,
            fb_pkt_count: 1,
            packet_chunks: vec![
                PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                    packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
                    run_length: 2,
                    ..Default::default()
                }),
                PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                    symbol_list: vec![
                        SymbolTypeTcc::PacketNotReceived,
                        SymbolTypeTcc::PacketReceivedSmallDelta,
                        SymbolTypeTcc::PacketNotReceived,
                        SymbolTypeTcc::PacketNotReceived,
                    ],
                    ..Default::default()
                }),
            ],
            recv_deltas: vec![small(1000), small(250), small(5000)],
            ..Default::default()
        };
        let base = Duration::from_micros((1 << 40) + 640_000);
        let us = |u| Some(base + Duration::from_micros(u));
        assert_eq!(
            arrivals(&feedback),
            [(65_534, us(1000)), (65_535, us(1250)), (0, None), (1, us(6250)), (2, None)]
        );
    }

    #[test]
    fn round_trip_from_a_report() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let sent = (unix2ntp(now - Duration::from_millis(120)) >> 16) as u32;
        let report = ReceptionReport { last_sender_report: sent, delay: 65536 / 50, ..Default::default() };
        let rtt = round_trip(&report, now).expect("a round trip");
        assert!((rtt.as_secs_f64() - 0.100).abs() < 0.001, "{rtt:?}");
        assert_eq!(round_trip(&ReceptionReport::default(), now), None, "no sender report seen yet");
    }
}
