//! What this machine has: cameras (nokhwa), audio devices (cpal), the display `auto` would
//! use, encoders (GStreamer).
//! Used by `robocast devices` and by the `auto` sources.

use std::fmt::Write as _;
use std::path::PathBuf;

use cpal::traits::{DeviceTrait, HostTrait};
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{ApiBackend, CameraIndex, CameraInfo, RequestedFormat, RequestedFormatType};

use super::encoder;

fn cameras() -> Vec<CameraInfo> {
    nokhwa::query(ApiBackend::Auto).unwrap_or_else(|e| {
        tracing::debug!(error = %e, "camera query failed");
        Vec::new()
    })
}

fn device_path(index: &CameraIndex) -> Option<PathBuf> {
    match index {
        CameraIndex::Index(n) => Some(PathBuf::from(format!("/dev/video{n}"))),
        CameraIndex::String(s) if s.starts_with("/dev/") => Some(PathBuf::from(s)),
        CameraIndex::String(_) => None,
    }
}

/// The first camera nokhwa finds, as a V4L2 device path.
pub fn first_camera() -> Option<PathBuf> {
    cameras().iter().find_map(|c| device_path(c.index()))
}

/// The first ALSA capture device (`hw:CARD,DEVICE`), read from the kernel's list.
pub fn first_microphone() -> Option<String> {
    let pcm = std::fs::read_to_string("/proc/asound/pcm").ok()?;
    pcm.lines().filter(|l| l.contains("capture")).find_map(|line| {
        let (card, device) = line.split(':').next()?.split_once('-')?;
        Some(format!("hw:{},{}", card.trim().parse::<u32>().ok()?, device.trim().parse::<u32>().ok()?))
    })
}

/// The report printed by `robocast devices`: each camera with a summary of its formats,
/// audio devices, encoders. ALSA and OpenH264 print dozens of lines to stderr while they
/// are probed ("ALSA lib ... Unknown PCM pulse"); those are caught and shown only with
/// `verbose`, with every camera format.
pub fn report(verbose: bool) -> String {
    let caught = gag::BufferRedirect::stderr().ok();
    let mut out = devices(verbose);
    let Some(mut caught) = caught else { return out };
    let mut said = String::new();
    let _ = std::io::Read::read_to_string(&mut caught, &mut said);
    drop(caught);
    if verbose && !said.trim().is_empty() {
        let _ = writeln!(out, "What the libraries printed while probing:");
        for line in said.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

fn devices(verbose: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Cameras:");
    let found = cameras();
    if found.is_empty() {
        let _ = writeln!(out, "  none found (robocast will use the test pattern for --video auto)");
    }
    for camera in found {
        let path = device_path(camera.index()).map(|p| format!("v4l2:{}", p.display()));
        let _ = writeln!(out, "  {}  {}", path.as_deref().unwrap_or("?"), camera.human_name());
        for format in camera_formats(camera.index(), verbose) {
            let _ = writeln!(out, "      {format}");
        }
    }
    let host = cpal::default_host();
    for (title, devices) in [
        ("Audio inputs (use alsa:<name>):", host.input_devices().map(|d| d.collect::<Vec<_>>())),
        ("Audio outputs (speaker = part of a name):", host.output_devices().map(|d| d.collect::<Vec<_>>())),
    ] {
        let _ = writeln!(out, "{title}");
        match devices {
            Ok(devices) if !devices.is_empty() => {
                for device in devices {
                    let _ = writeln!(out, "  {}", device.name().unwrap_or_else(|_| "?".into()));
                }
            }
            Ok(_) => {
                let _ = writeln!(out, "  none found");
            }
            Err(e) => {
                let _ = writeln!(out, "  cannot list: {e}");
            }
        }
    }
    let _ = writeln!(out, "Display (display = auto):");
    match super::playout::display::resolve_auto() {
        (Some(sink), why) => writeln!(out, "  {sink}: {why}"),
        (None, why) => writeln!(out, "  none: {why}"),
    }
    .ok();
    let _ = writeln!(out, "Video encoders (in order of preference):");
    for (spec, usable) in encoder::availability() {
        let kind = if spec.hardware { "hardware" } else { "software" };
        let state = if usable { "usable" } else { "not available" };
        let _ = writeln!(out, "  {:<12} {:<6} {kind:<9} {state}", spec.element, spec.codec.to_string());
    }
    out
}

/// A camera's formats: the largest size (and its best rate) of each pixel format, or
/// with `verbose` every size and rate.
fn camera_formats(index: &CameraIndex, verbose: bool) -> Vec<String> {
    let requested = RequestedFormat::new::<RgbFormat>(RequestedFormatType::None);
    let formats =
        nokhwa::Camera::new(index.clone(), requested).and_then(|mut c| c.compatible_camera_formats());
    let mut formats = match formats {
        Ok(formats) => formats,
        Err(e) => return vec![format!("cannot read formats: {e}")],
    };
    formats.sort_by_key(|f| {
        (f.format().to_string(), f.resolution().width(), f.resolution().height(), f.frame_rate())
    });
    if !verbose {
        // The last of each pixel format is its largest size at its highest rate there.
        formats.reverse();
        formats.dedup_by_key(|f| f.format().to_string());
        formats.reverse();
    }
    let prefix = if verbose { "" } else { "up to " };
    formats
        .iter()
        .map(|f| format!("{} {prefix}{} @ {} fps", f.format(), f.resolution(), f.frame_rate()))
        .collect()
}
