//! The video encoder table: candidates in order of preference, each with its low-latency
//! settings as a named function, and the probe that decides which one works here.
//!
//! Hardware first (`v4l2h264enc`, Pi 4 / Zero 2 W; it exists only where the encoder device
//! does, and cannot be exercised on a machine without one), then `x264enc` tuned for zero
//! latency, then `openh264enc` with real rate control (it ignores `bitrate` otherwise).
//! VP8 (`vp8enc`) serves browsers that offer no H.264.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::{Codec, MediaError};

/// What an encoder is asked to do.
#[derive(Clone, Copy, Debug)]
pub struct EncodeParams {
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// A small picture (the lower tier): a software encoder runs it on one thread, where
    /// threading costs more than it saves.
    pub small: bool,
}

impl EncodeParams {
    /// Safety-net key frame interval: 10 s. Viewers get key frames on demand (new viewer,
    /// PLI/FIR), so periodic ones only bound the damage of a lost request.
    fn keyframe_interval(&self) -> u32 {
        self.fps * 10
    }
}

pub struct EncoderSpec {
    pub element: &'static str,
    pub codec: Codec,
    pub hardware: bool,
    /// Caps forced right after the encoder (profile for browsers).
    pub caps: &'static str,
    pub configure: fn(&gst::Element, &EncodeParams),
    /// Sets the bitrate (kbit/s), at the start and while playing.
    pub set_bitrate: fn(&gst::Element, u32),
}

pub static ENCODERS: &[EncoderSpec] = &[
    EncoderSpec {
        element: "v4l2h264enc",
        codec: Codec::H264,
        hardware: true,
        caps: "video/x-h264,profile=constrained-baseline,level=(string)4",
        configure: configure_v4l2h264enc,
        set_bitrate: set_v4l2h264enc_bitrate,
    },
    EncoderSpec {
        element: "x264enc",
        codec: Codec::H264,
        hardware: false,
        caps: "video/x-h264,profile=constrained-baseline",
        configure: configure_x264enc,
        set_bitrate: set_x264enc_bitrate,
    },
    EncoderSpec {
        element: "openh264enc",
        codec: Codec::H264,
        hardware: false,
        caps: "video/x-h264,profile=constrained-baseline",
        configure: configure_openh264enc,
        set_bitrate: set_openh264enc_bitrate,
    },
    EncoderSpec {
        element: "vp8enc",
        codec: Codec::Vp8,
        hardware: false,
        caps: "video/x-vp8",
        configure: configure_vp8enc,
        set_bitrate: set_vp8enc_bitrate,
    },
];

/// The Pi's encoder takes its settings as V4L2 controls; SPS/PPS repeat with every IDR.
fn configure_v4l2h264enc(enc: &gst::Element, p: &EncodeParams) {
    let controls = format!(
        "controls,video_bitrate={},repeat_sequence_header=1,h264_i_frame_period={},video_bitrate_mode=1",
        p.bitrate_kbps * 1000,
        p.keyframe_interval()
    );
    if let Ok(structure) = controls.parse::<gst::Structure>() {
        enc.set_property("extra-controls", structure);
    }
}

/// While playing, v4l2h264enc applies `extra-controls` to the device at once (V4L2's
/// `video_bitrate` is a run-time control on the Pi's encoder). Unproven here: this machine
/// has no V4L2 encoder.
fn set_v4l2h264enc_bitrate(enc: &gst::Element, kbps: u32) {
    let mut controls = enc
        .property::<Option<gst::Structure>>("extra-controls")
        .unwrap_or_else(|| gst::Structure::new_empty("controls"));
    controls.set("video_bitrate", (kbps * 1000) as i32);
    enc.set_property("extra-controls", controls);
}

/// x264enc re-configures its rate control while playing.
fn set_x264enc_bitrate(enc: &gst::Element, kbps: u32) {
    enc.set_property("bitrate", kbps);
}

fn set_openh264enc_bitrate(enc: &gst::Element, kbps: u32) {
    enc.set_property("bitrate", kbps * 1000);
}

fn set_vp8enc_bitrate(enc: &gst::Element, kbps: u32) {
    enc.set_property("target-bitrate", (kbps * 1000) as i32);
}

fn configure_x264enc(enc: &gst::Element, p: &EncodeParams) {
    enc.set_property_from_str("tune", "zerolatency");
    enc.set_property_from_str("speed-preset", "ultrafast");
    set_x264enc_bitrate(enc, p.bitrate_kbps);
    enc.set_property("key-int-max", p.keyframe_interval());
    enc.set_property("bframes", 0u32);
    if p.small {
        // A quarter of the pixels encode in ~1.3 ms on one thread; sliced threads only
        // add their overhead (measured: 17 % less CPU for the lower tier on one thread).
        enc.set_property("threads", 1u32);
    }
    // A VBV of ~1 frame keeps frame sizes even, so no frame waits behind a big one.
    enc.set_property("vbv-buf-capacity", (1000 / p.fps.max(1)).max(100));
}

/// openh264enc ignores `bitrate` unless rate control is set to `bitrate`, and meets a low
/// one on a detailed picture only by skipping frames (measured on a noisy picture at
/// 300 kbit/s: 1017 kbit/s without, 328 with): fewer frames beat a link buried in data.
fn configure_openh264enc(enc: &gst::Element, p: &EncodeParams) {
    enc.set_property_from_str("rate-control", "bitrate");
    enc.set_property("enable-frame-skip", true);
    set_openh264enc_bitrate(enc, p.bitrate_kbps);
    enc.set_property("gop-size", p.keyframe_interval());
    enc.set_property_from_str("complexity", "low");
    enc.set_property_from_str("usage-type", "camera");
}

/// vp8enc is slow at 720p with defaults: realtime deadline and a high cpu-used. Its rate
/// control is set as browsers set libvpx for real-time video: a 1 s buffer (the default 6 s
/// lets a lowered bitrate take effect only seconds later), frames dropped rather than the
/// rate exceeded, and a key frame at most three frames' worth (a viewer that lost a frame
/// asks for one; a big one is more loss on a thin link). Measured on a noisy 320x180
/// picture lowered from 375 to 150 kbit/s: ~150 kbit/s 3 s later, ~190 with the defaults.
fn configure_vp8enc(enc: &gst::Element, p: &EncodeParams) {
    enc.set_property("deadline", 1i64);
    enc.set_property("cpu-used", 8i32);
    enc.set_property_from_str("end-usage", "cbr");
    set_vp8enc_bitrate(enc, p.bitrate_kbps);
    enc.set_property("keyframe-max-dist", p.keyframe_interval() as i32);
    enc.set_property("lag-in-frames", 0i32);
    // A quarter of the pixels: one thread takes half the CPU two did (measured at 320x180).
    enc.set_property("threads", if p.small { 1i32 } else { 2i32 });
    enc.set_property_from_str("error-resilient", "default");
    enc.set_property("buffer-size", 1000i32);
    enc.set_property("buffer-initial-size", 500i32);
    enc.set_property("buffer-optimal-size", 600i32);
    enc.set_property("dropframe-threshold", 30i32);
    enc.set_property("undershoot", 100i32);
    enc.set_property("overshoot", 15i32);
    enc.set_property("max-intra-bitrate", 300i32);
}

/// Whether `spec` exists and encodes a few frames here; the answer is cached per element
/// (a probe takes up to 3 s, and every pipeline rebuild asks again).
fn works(spec: &EncoderSpec) -> bool {
    static CACHE: OnceLock<Mutex<HashMap<&'static str, bool>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(&ok) = cache.lock().ok().as_ref().and_then(|c| c.get(spec.element)) {
        return ok;
    }
    let ok = gst::ElementFactory::find(spec.element).is_some() && probe(spec).is_ok();
    if let Ok(mut cache) = cache.lock() {
        cache.insert(spec.element, ok);
    }
    ok
}

/// Encodes three small frames into a fakesink; a hardware encoder whose device is missing
/// or busy fails here instead of on the first viewer.
fn probe(spec: &EncoderSpec) -> Result<(), MediaError> {
    let description = format!(
        "videotestsrc num-buffers=3 ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! {} name=enc ! {} ! fakesink",
        spec.element, spec.caps
    );
    let build = |message: String| MediaError::Build { description: description.clone(), message };
    let pipeline = gst::parse::launch(&description).map_err(|e| build(e.to_string()))?;
    let params = EncodeParams { fps: 30, bitrate_kbps: 500, small: false };
    if let Some(enc) = pipeline.downcast_ref::<gst::Bin>().and_then(|b| b.by_name("enc")) {
        (spec.configure)(&enc, &params);
    }
    let bus = pipeline.bus().ok_or_else(|| build("pipeline has no bus".into()))?;
    pipeline.set_state(gst::State::Playing).map_err(|e| build(e.to_string()))?;
    let result = match bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(3),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    ) {
        Some(msg) if msg.type_() == gst::MessageType::Eos => Ok(()),
        Some(msg) => Err(build(format!("{msg:?}"))),
        None => Err(build("no output within 3 s".into())),
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Every encoder in the table with whether it works here.
pub fn availability() -> Vec<(&'static EncoderSpec, bool)> {
    ENCODERS.iter().map(|spec| (spec, works(spec))).collect()
}

/// The encoder to use for `codec`: the configured one (`auto`: the first in the table
/// that works here).
pub fn choose(codec: Codec, configured: &str) -> Result<&'static EncoderSpec, MediaError> {
    let candidates: Vec<_> = ENCODERS
        .iter()
        .filter(|s| s.codec == codec && (configured == "auto" || s.element == configured))
        .collect();
    if candidates.is_empty() {
        return Err(MediaError::UnknownEncoder(configured.into()));
    }
    candidates.iter().copied().find(|spec| works(spec)).ok_or_else(|| MediaError::NoEncoder {
        codec,
        tried: candidates.iter().map(|s| s.element).collect::<Vec<_>>().join(", "),
    })
}

/// Whether `name` may be configured as the H.264 encoder.
pub fn is_h264_encoder(name: &str) -> bool {
    name == "auto" || ENCODERS.iter().any(|s| s.codec == Codec::H264 && s.element == name)
}
