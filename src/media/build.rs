//! Turning a recipe (source, encoder, size) into a GStreamer pipeline whose appsinks
//! publish into the feeds.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::encoder::{self, EncodeParams, EncoderSpec};
use super::pipeline::Recipe;
use super::rate::{EncoderRole, FollowingEncoder};
use super::source::{AudioSource, Geometry, Output, VideoSource};
use super::status::PipelineStatus;
use super::tiers::{Planner, Policy, Tiers};
use super::{Codec, EncodedFrame, Feed, MediaError, clockstamp, framerate};
use crate::config::Config;

/// A built pipeline with the parts the supervisor drives.
pub(super) struct Built {
    pub pipeline: gst::Pipeline,
    /// Appsinks with their feeds; key frame requests go upstream from each appsink.
    pub sinks: Vec<(gst_app::AppSink, Arc<Feed>)>,
    /// Branches encoded only while watched (VP8, the lower tier): each valve with the
    /// feed whose viewers open it, and the branch's name for the log.
    pub valves: Vec<(gst::Element, Arc<Feed>, &'static str)>,
    /// Say which tier each viewer of a codec with a lower tier is on.
    pub planners: Vec<Planner>,
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
    h264: &Arc<Tiers>,
    vp8: Option<&Arc<Tiers>>,
) -> Result<Built, MediaError> {
    let geometry = Geometry { width: config.width, height: config.height, fps: config.fps };
    let Some(chain) = source.chain(geometry)? else {
        return Err(MediaError::Runtime("video is disabled".into()));
    };
    let top = Arc::clone(h264.feed(0).ok_or_else(|| MediaError::Runtime("no H.264 feed".into()))?);
    let low = h264.feed(1).cloned();
    let size = (config.width, config.height);
    let half = low_tier_size(size);
    let params = EncodeParams { fps: config.fps, bitrate_kbps: config.bitrate_kbps, small: false };
    let least = config.min_bitrate_kbps.min(config.bitrate_kbps);
    let policy = Policy::for_bitrate(config.bitrate_kbps, chain.output == Output::Raw);
    let vp8_policy = Policy::for_vp8(config.bitrate_kbps);
    // A lower tier: up to the split (where its viewers move up), from a quarter.
    let split_kbps = |p: &Policy| u32::try_from(p.split_bps / 1000).unwrap_or(u32::MAX).max(least);
    let low_params = |p: &Policy| EncodeParams {
        fps: config.fps,
        bitrate_kbps: (config.bitrate_kbps / 4).clamp(least, split_kbps(p)),
        small: true,
    };
    // The hub made VP8 feeds only if this machine has a VP8 encoder.
    let vp8_spec = vp8.and_then(|_| encoder::choose(Codec::Vp8, "auto").ok());
    let mut status = PipelineStatus::new("video", &chain.label);
    let spec = match chain.output {
        Output::Raw => Some(encoder::choose(Codec::H264, &config.encoder)?),
        // A camera's own H.264 is passed through; a lower tier encodes it again.
        Output::H264 if low.is_some() => encoder::choose(Codec::H264, &config.encoder).ok(),
        Output::H264 => None,
    };
    // Raw pictures are encoded here; H.264 from the source is passed through, and the
    // branches that encode again decode it first.
    let (main, decode) = match chain.output {
        Output::Raw => {
            let spec = spec.ok_or_else(|| MediaError::Runtime("no H.264 encoder".into()))?;
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
            (main, "avdec_h264 output-corrupt=false ! videoconvert ! ")
        }
    };
    // The branches encoded only while watched: VP8 at the configured size, and each
    // codec's lower tier at half of it.
    let vp8_top = vp8.and_then(|t| t.feed(0)).zip(vp8_spec);
    let lower = [
        Lower::of(h264, spec, "h264low", "H.264 lower tier", policy),
        vp8.and_then(|t| Lower::of(t, vp8_spec, "vp8low", "VP8 lower tier", vp8_policy)),
    ];
    let lower: Vec<Lower> = lower.into_iter().flatten().collect();
    let mut description = main;
    if let Some((_, s)) = vp8_top {
        let (element, caps) = (s.element, s.caps);
        description += &format!(
            " t. ! {LEAKY} ! valve name=vp8valve drop=true ! {decode}{element} name=vp8enc ! {caps} ! {SINK} name=vp8"
        );
    }
    for l in &lower {
        let (name, element, caps) = (l.name, l.spec.element, l.spec.caps);
        let out = if l.spec.codec == Codec::H264 { format!(" ! {H264_OUT}") } else { String::new() };
        description += &format!(
            " t. ! {LEAKY} ! valve name={name}valve drop=true ! {decode}videoscale ! \
             video/x-raw,width={},height={} ! {element} name={name}enc ! {caps}{out} ! {SINK} name={name}",
            half.0, half.1
        );
    }
    tracing::debug!(%description, "video pipeline");
    let pipeline = launch(&description)?;
    let mut encoders = Vec::new();
    let role = |spec, tier, size, bounds: (u32, u32), start| EncoderRole {
        spec,
        tier,
        size,
        bounds,
        start,
        decodes_camera: chain.output == Output::H264,
    };
    let bounds = (least, config.bitrate_kbps);
    if let (Ok(enc), Some(spec), Output::Raw) = (by_name(&pipeline, "enc"), spec, chain.output) {
        (spec.configure)(&enc, &params);
        encoders.push(FollowingEncoder::new(enc, role(spec, 0, size, bounds, bounds.1), Arc::clone(&top)));
    }
    if let Some((vp8, spec)) = vp8_top {
        let enc = by_name(&pipeline, "vp8enc")?;
        (spec.configure)(&enc, &params);
        // A policy whose top does not follow sends viewers below the split to the lower
        // tier even alone (`Policy::for_vp8`): the top encoder need not go there.
        let tiered = lower.iter().any(|l| l.spec.codec == Codec::Vp8);
        let least = if tiered && !vp8_policy.top_follows { split_kbps(&vp8_policy) } else { least };
        let bounds = (least.min(bounds.1), bounds.1);
        encoders.push(FollowingEncoder::new(enc, role(spec, 0, size, bounds, bounds.1), Arc::clone(vp8)));
    }
    for l in &lower {
        let enc = by_name(&pipeline, &format!("{}enc", l.name))?;
        let low_params = low_params(&l.policy);
        (l.spec.configure)(&enc, &low_params);
        let role = role(l.spec, 1, half, (least, split_kbps(&l.policy)), low_params.bitrate_kbps);
        encoders.push(FollowingEncoder::new(enc, role, Arc::clone(l.feed)));
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
    let mut sinks = vec![(appsink(&pipeline, "h264", &top, frame)?, Arc::clone(&top))];
    let mut valves = Vec::new();
    if let Some((vp8, _)) = vp8_top {
        sinks.push((appsink(&pipeline, "vp8", vp8, frame)?, Arc::clone(vp8)));
        valves.push((by_name(&pipeline, "vp8valve")?, Arc::clone(vp8), "VP8 branch"));
    }
    let mut planners = Vec::new();
    for l in lower {
        sinks.push((appsink(&pipeline, l.name, l.feed, frame)?, Arc::clone(l.feed)));
        valves.push((by_name(&pipeline, &format!("{}valve", l.name))?, Arc::clone(l.feed), l.label));
        planners.push(Planner::new(Arc::clone(l.tiers), l.policy));
    }
    status.targets = encoders.iter().map(FollowingEncoder::target).collect();
    Ok(Built { pipeline, sinks, valves, planners, encoders, status })
}

/// One codec's lower tier in the video pipeline: the branch `{name}valve ! … ! {name}enc
/// ! … ! appsink name={name}`, and the planner that puts viewers on it.
struct Lower<'a> {
    name: &'static str,
    /// The branch, as the log names it when it opens and closes.
    label: &'static str,
    spec: &'static EncoderSpec,
    tiers: &'a Arc<Tiers>,
    feed: &'a Arc<Feed>,
    policy: Policy,
}

impl<'a> Lower<'a> {
    /// The lower tier of `tiers`, if it has one and an encoder for it.
    fn of(
        tiers: &'a Arc<Tiers>,
        spec: Option<&'static EncoderSpec>,
        name: &'static str,
        label: &'static str,
        policy: Policy,
    ) -> Option<Lower<'a>> {
        Some(Lower { name, label, spec: spec?, tiers, feed: tiers.feed(1)?, policy })
    }
}

/// The lower tier's picture: half the configured size, in even pixels.
pub(super) fn low_tier_size((width, height): (u32, u32)) -> (u32, u32) {
    ((width / 2) & !1, (height / 2) & !1)
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
    Ok(Built { pipeline, sinks, valves: Vec::new(), planners: Vec::new(), encoders: Vec::new(), status })
}
