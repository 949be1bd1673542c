//! Turning a recipe (source, encoder, size) into a GStreamer pipeline whose appsinks
//! publish into the feeds.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::encoder::{self, EncodeParams};
use super::pipeline::Recipe;
use super::rate::FollowingEncoder;
use super::source::{AudioSource, Geometry, Output, VideoSource};
use super::status::PipelineStatus;
use super::{Codec, EncodedFrame, Feed, MediaError, clockstamp, framerate};
use crate::config::Config;

/// A built pipeline with the parts the supervisor drives.
pub(super) struct Built {
    pub pipeline: gst::Pipeline,
    /// Appsinks with their feeds; key frame requests go upstream from each appsink.
    pub sinks: Vec<(gst_app::AppSink, Arc<Feed>)>,
    /// The VP8 branch's valve, opened while VP8 viewers exist.
    pub vp8_valve: Option<gst::Element>,
    /// The encoders built here, whose bitrate follows their viewers (none for a
    /// passed-through camera stream or audio).
    pub encoders: Vec<FollowingEncoder>,
    pub status: PipelineStatus,
}

pub(super) fn build(recipe: &Recipe) -> Result<Built, MediaError> {
    match recipe {
        Recipe::Video { source, config, h264, vp8 } => build_video(source, config, h264, vp8.as_ref()),
        Recipe::Audio { source, bitrate_kbps, feed, echo_cancel } => {
            build_audio(source, *bitrate_kbps, feed, *echo_cancel)
        }
    }
}

/// Parses a description into a pipeline, with an error that shows the description.
fn launch(description: &str) -> Result<gst::Pipeline, MediaError> {
    let build_error = |message: String| MediaError::Build { description: description.into(), message };
    gst::parse::launch(description)
        .map_err(|e| build_error(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| build_error("not a pipeline".into()))
}

fn by_name(pipeline: &gst::Pipeline, name: &str) -> Result<gst::Element, MediaError> {
    pipeline
        .by_name(name)
        .ok_or_else(|| MediaError::Runtime(format!("element `{name}` missing from the pipeline")))
}

fn appsink(
    pipeline: &gst::Pipeline,
    name: &str,
    feed: &Arc<Feed>,
    default: Duration,
) -> Result<gst_app::AppSink, MediaError> {
    let sink = by_name(pipeline, name)?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| MediaError::Runtime(format!("`{name}` is not an appsink")))?;
    let feed = Arc::clone(feed);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer_owned().ok_or(gst::FlowError::Error)?;
                let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                let duration = buffer.duration().map(Duration::from).unwrap_or(default);
                // Live sources stamp each buffer with its capture time; in running time
                // (encoders shift timestamps, the segment undoes it), now minus that is
                // what the pipeline cost this picture.
                let captured = sample
                    .segment()
                    .and_then(|s| s.downcast_ref::<gst::ClockTime>())
                    .zip(buffer.pts())
                    .and_then(|(segment, pts)| segment.to_running_time(pts));
                if let (Some(now), Some(captured)) = (sink.current_running_time(), captured) {
                    feed.stats.record_latency(now.saturating_sub(captured).into());
                }
                let map = buffer.into_mapped_buffer_readable().map_err(|_| gst::FlowError::Error)?;
                let at = std::time::Instant::now();
                feed.publish(EncodedFrame { data: Bytes::from_owner(map), duration, keyframe, at });
                Ok(gst::FlowSuccess::Ok)
            })
            // The pipeline posts EOS only when every sink has it, and a closed VP8 valve
            // never passes it on: each appsink reports its own end of stream instead.
            .eos(|sink| {
                let ended = gst::Structure::new_empty(SOURCE_ENDED);
                let _ = sink.post_message(gst::message::Application::builder(ended).src(sink).build());
            })
            .build(),
    );
    Ok(sink)
}

/// The application message an appsink posts at end of stream.
pub(super) const SOURCE_ENDED: &str = "robocast-source-ended";

/// Every appsink: no clock sync (frames leave as soon as they are encoded).
const SINK: &str = "appsink sync=false async=false max-buffers=4 drop=true";
/// A one-frame leaky queue: a slow branch drops pictures instead of stalling the source.
const LEAKY: &str = "queue max-size-buffers=1 max-size-bytes=0 max-size-time=0 leaky=downstream";
const H264_OUT: &str = "h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au";

fn build_video(
    source: &VideoSource,
    config: &Config,
    h264: &Arc<Feed>,
    vp8: Option<&Arc<Feed>>,
) -> Result<Built, MediaError> {
    let geometry = Geometry { width: config.width, height: config.height, fps: config.fps };
    let Some(chain) = source.chain(geometry)? else {
        return Err(MediaError::Runtime("video is disabled".into()));
    };
    let params = EncodeParams { fps: config.fps, bitrate_kbps: config.bitrate_kbps };
    // The hub made a VP8 feed only if this machine has a VP8 encoder.
    let vp8_spec = vp8.and_then(|_| encoder::choose(Codec::Vp8, "auto").ok());
    let mut status = PipelineStatus::new("video", &chain.label);
    let mut h264_spec = None;
    // Raw pictures are encoded here; H.264 from the source is passed through, and the
    // VP8 branch decodes it first.
    let (main, decode_for_vp8) = match chain.output {
        Output::Raw => {
            let spec = encoder::choose(Codec::H264, &config.encoder)?;
            h264_spec = Some(spec);
            status.encoder = Some(spec.element.into());
            status.hardware = spec.hardware;
            let encode = format!("{LEAKY} ! {} name=enc ! {} ! {H264_OUT}", spec.element, spec.caps);
            let main = format!(
                "{} ! identity name=capture ! tee name=t t. ! {encode} ! {SINK} name=h264",
                chain.description
            );
            (main, "")
        }
        Output::H264 => {
            status.encoder = Some("passthrough".into());
            status.passthrough = true;
            let main =
                format!("{} ! {H264_OUT} ! tee name=t t. ! queue ! {SINK} name=h264", chain.description);
            (main, "avdec_h264 ! videoconvert ! ")
        }
    };
    let vp8_branch = vp8_spec
        .map(|s| {
            let valve = "valve name=vp8valve drop=true";
            format!(
                " t. ! {LEAKY} ! {valve} ! {decode_for_vp8}{} name=vp8enc ! {} ! {SINK} name=vp8",
                s.element, s.caps
            )
        })
        .unwrap_or_default();
    let description = format!("{main}{vp8_branch}");
    tracing::debug!(%description, "video pipeline");
    let pipeline = launch(&description)?;
    let bounds = (config.min_bitrate_kbps.min(config.bitrate_kbps), config.bitrate_kbps);
    let mut encoders = Vec::new();
    if let (Ok(enc), Some(spec)) = (by_name(&pipeline, "enc"), h264_spec) {
        (spec.configure)(&enc, &params);
        encoders.push(FollowingEncoder::new(enc, spec, Arc::clone(h264), bounds));
    }
    if let (Ok(enc), Some(spec), Some(vp8)) = (by_name(&pipeline, "vp8enc"), vp8_spec, vp8) {
        (spec.configure)(&enc, &params);
        encoders.push(FollowingEncoder::new(enc, spec, Arc::clone(vp8), bounds));
    }
    // Raw pictures: drop (never hold) what exceeds the configured rate, then stamp the
    // test pattern with its capture time.
    if let Some(pad) = by_name(&pipeline, "capture").ok().and_then(|e| e.static_pad("src")) {
        framerate::limit(&pad, config.fps);
        if chain.stamp {
            clockstamp::attach(&pad, config.width, config.height)
                .map_err(|e| MediaError::Runtime(format!("cannot attach clock stamp: {e}")))?;
        }
    }
    let frame = Duration::from_secs(1) / config.fps.max(1);
    let mut sinks = vec![(appsink(&pipeline, "h264", h264, frame)?, Arc::clone(h264))];
    if let (Some(vp8), Some(_)) = (vp8, vp8_spec) {
        sinks.push((appsink(&pipeline, "vp8", vp8, frame)?, Arc::clone(vp8)));
    }
    let vp8_valve = by_name(&pipeline, "vp8valve").ok();
    status.targets = encoders.iter().map(FollowingEncoder::target).collect();
    Ok(Built { pipeline, sinks, vp8_valve, encoders, status })
}

fn build_audio(
    source: &AudioSource,
    bitrate_kbps: u32,
    feed: &Arc<Feed>,
    echo_cancel: bool,
) -> Result<Built, MediaError> {
    let Some((label, chain)) = source.chain() else {
        return Err(MediaError::Runtime("audio is disabled".into()));
    };
    // The echo canceller only: noise suppression and gain control would change the
    // robot's own sound (and hide a failing canceller in the echo test).
    let dsp = if echo_cancel {
        format!(
            "audio/x-raw,format=S16LE,rate=48000,channels=1 ! webrtcdsp probe={} echo-cancel=true \
             delay-agnostic=true extended-filter=true noise-suppression=false gain-control=false \
             high-pass-filter=false ! audioconvert ! ",
            super::playout::speaker::ECHO_PROBE
        )
    } else {
        String::new()
    };
    let description = format!(
        "{chain} ! audioconvert ! audioresample ! {dsp}audio/x-raw,rate=48000,channels=1 ! \
         opusenc name=enc bitrate={} frame-size=20 ! {SINK} name=opus",
        bitrate_kbps * 1000
    );
    let pipeline = launch(&description)?;
    let sinks = vec![(appsink(&pipeline, "opus", feed, Duration::from_millis(20))?, Arc::clone(feed))];
    let mut status = PipelineStatus::new("audio", &label);
    status.encoder = Some(if echo_cancel { "webrtcdsp + opusenc" } else { "opusenc" }.into());
    Ok(Built { pipeline, sinks, vp8_valve: None, encoders: Vec::new(), status })
}
