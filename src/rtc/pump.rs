//! Moving frames to a viewer and feedback back to the encoder.
//!
//! One `send_frames` task per outgoing track: it awaits the next frame from its
//! subscription (which skips ahead after a lag) and writes it; a slow write (the pacer
//! holding it to the link's pace) delays only this viewer. After each video frame it
//! tells the feed what this viewer's link takes, for the encoder's bitrate. One `read_rtcp` task per sender: reading RTCP is what makes webrtc-rs's
//! NACK responder run, and a PLI or FIR from the browser becomes a key frame request.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;
use webrtc::media::Sample;
use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp::extension::HeaderExtension;
use webrtc::rtp::extension::playout_delay_extension::PlayoutDelayExtension;
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use webrtc::track::track_remote::TrackRemote;

use super::SessionStats;
use super::feedback::Link;
use crate::media::{Codec, Place, TieredSubscription, Tiers};

pub async fn send_frames(
    track: Arc<TrackLocalStaticSample>,
    mut frames: TieredSubscription,
    stats: Arc<SessionStats>,
    link: Arc<Link>,
    cancel: CancellationToken,
) {
    let video = frames.codec() != Codec::Opus;
    // Whether the estimate grows eagerly: told to the link only when the tier changes.
    let mut eager = false;
    let counter = if video { &stats.video_frames } else { &stats.audio_frames };
    // Playout delay 0/0 (where the browser negotiated it): show each picture as soon as it
    // is decoded instead of smoothing in a jitter buffer. Someone driving a robot needs
    // the newest picture more than an even frame pace.
    let playout = [HeaderExtension::PlayoutDelay(PlayoutDelayExtension { min_delay: 0, max_delay: 0 })];
    let extensions: &[HeaderExtension] = if video { &playout } else { &[] };
    loop {
        let frame = tokio::select! {
            _ = cancel.cancelled() => return,
            frame = frames.next() => match frame {
                Some(frame) => frame,
                None => return,
            },
        };
        let bytes = frame.data.len() as u64;
        let sample = Sample { data: frame.data, duration: frame.duration, ..Default::default() };
        match track.write_sample_with_extensions(&sample, extensions).await {
            Ok(()) => {
                counter.fetch_add(1, Ordering::Relaxed);
                stats.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
                if video {
                    // The encoder follows what this viewer's link takes (media::rate), and
                    // the viewer changes tier by it (media::tiers).
                    // A viewer below a tier others watch grows its estimate eagerly, to
                    // be back soon when its link widens. Not alone: measured with a lone
                    // VP8 viewer on the lower tier behind 1.5 Mbit/s, eager growth overran
                    // the link every 5 s and moved it up to a top tier it could not take.
                    if frames.below_a_watched_tier() != eager {
                        eager = !eager;
                        link.set_eager(eager);
                    }
                    frames.report_rate(link.video_rate());
                }
            }
            Err(e) => {
                if stats.write_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::debug!(error = %e, "writing a sample failed");
                }
            }
        }
    }
}

/// Reads RTCP for one sender until the sender closes or the session ends; PLI/FIR ask for
/// a key frame.
pub async fn read_rtcp(
    sender: Arc<RTCRtpSender>,
    (tiers, place): (Arc<Tiers>, Arc<Place>),
    stats: Arc<SessionStats>,
    cancel: CancellationToken,
) {
    loop {
        let packets = tokio::select! {
            _ = cancel.cancelled() => return,
            read = sender.read_rtcp() => match read {
                Ok((packets, _)) => packets,
                Err(_) => return,
            },
        };
        let wants_key = packets.iter().any(|p| {
            let any = p.as_any();
            any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
        });
        if wants_key {
            tracing::debug!(codec = %tiers.codec(), tier = place.tier(), "viewer asked for a key frame");
            stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            tiers.request_keyframe(&place);
        }
    }
}

/// Reads and discards a remote track of a session that cannot talk, so its buffers never fill.
pub async fn drain_remote(track: Arc<TrackRemote>) {
    tracing::debug!(kind = %track.kind(), codec = %track.codec().capability.mime_type, "remote track (not played)");
    while track.read_rtp().await.is_ok() {}
}
