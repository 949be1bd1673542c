//! Paints the capture time into the test pattern, so a browser can read it back per
//! decoded frame and measure glass-to-glass latency (see `benches/` and BENCHMARKS.md).
//!
//! The stamp is a row of square blocks at the top-left of the picture, each
//! [`BLOCK`] pixels wide and high, on the luma plane: block 0 is white and block 1 black
//! (a marker), then [`BITS`] blocks carry the Unix time in milliseconds modulo 2^32,
//! most significant bit first, white for 1 and black for 0. Blocks are aligned to
//! 16-pixel macroblocks, so they survive H.264 and VP8 at any sane bitrate.

use std::time::{SystemTime, UNIX_EPOCH};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use super::clockface::{Plane, clock_box, neutral_chroma};

pub const BLOCK: usize = 16;
pub const BITS: usize = 32;
const WHITE: u8 = 235;
const BLACK: u8 = 16;

/// Width the stamp needs; narrower pictures are left alone.
pub const WIDTH: usize = BLOCK * (BITS + 2);

/// The value painted for `now`: Unix milliseconds modulo 2^32.
pub fn stamp_value(now: SystemTime) -> u32 {
    let ms = now.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    (ms & 0xffff_ffff) as u32
}

/// Paints `value` into a luma plane with the given row stride.
pub fn paint(luma: &mut [u8], stride: usize, width: usize, height: usize, value: u32) {
    if width < WIDTH || height < BLOCK {
        return;
    }
    for block in 0..BITS + 2 {
        let on = match block {
            0 => true,
            1 => false,
            _ => value >> (BITS - 1 - (block - 2)) & 1 == 1,
        };
        let shade = if on { WHITE } else { BLACK };
        for row in 0..BLOCK {
            let start = row * stride + block * BLOCK;
            if let Some(line) = luma.get_mut(start..start + BLOCK) {
                line.fill(shade);
            }
        }
    }
}

/// Reads a stamp back from a luma plane (the inverse of [`paint`]), `None` without marker.
pub fn read(luma: &[u8], stride: usize) -> Option<u32> {
    read_with(|x, y| luma.get(y as usize * stride + x as usize).map(|&v| v >= 128))
}

/// Reads a stamp from a picture seen some other way (scaled, on a page): `bright(x, y)`
/// says whether the picture is bright (luma ≥ 128 of 255) at the centre of a block, given
/// in the original picture's pixels; `None` where it cannot see.
pub fn read_with(bright: impl Fn(f64, f64) -> Option<bool>) -> Option<u32> {
    let half = (BLOCK / 2) as f64;
    let centre = |block: usize| bright((block * BLOCK) as f64 + half, half);
    if !centre(0)? || centre(1)? {
        return None;
    }
    (0..BITS).try_fold(0u32, |acc, bit| Some(acc << 1 | u32::from(centre(bit + 2)?)))
}

/// Adds a probe to `pad` (raw I420 of `width`x`height`) that draws the running clock
/// and the stamp into every buffer.
pub fn attach(pad: &gst::Pad, width: u32, height: u32) -> Result<(), gst::glib::BoolError> {
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, width, height).build()?;
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, probe| {
        if let Some(buffer) = probe.buffer_mut() {
            let buffer = buffer.make_mut();
            if let Ok(mut frame) = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, &info) {
                let stride = frame.plane_stride()[0] as usize;
                let now = SystemTime::now();
                let (w, h) = (width as usize, height as usize);
                if let Some(area) = clock_box(w, h) {
                    for plane in 1..3 {
                        let stride = frame.plane_stride()[plane] as usize;
                        if let Ok(chroma) = frame.plane_data_mut(plane as u32) {
                            neutral_chroma(chroma, stride, area);
                        }
                    }
                }
                if let Ok(luma) = frame.plane_data_mut(0) {
                    Plane { luma: &mut *luma, stride, width: w, height: h }.clock(now);
                    paint(luma, stride, w, h, stamp_value(now));
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paint_then_read_round_trips() {
        let (w, h) = (640, 32);
        let mut luma = vec![128u8; w * h];
        paint(&mut luma, w, w, h, 0xdead_beef);
        assert_eq!(read(&luma, w), Some(0xdead_beef));
        assert_eq!(read(&vec![128u8; w * h], w), None);
    }

    #[test]
    fn reads_a_scaled_picture() {
        let (w, h) = (640, 32);
        let mut luma = vec![128u8; w * h];
        paint(&mut luma, w, w, h, 0x0123_4567);
        // Seen at 0.3 scale, 5 pixels into a page: sample the picture under each page pixel.
        let (scale, offset) = (0.3, 5.0);
        let page: Vec<u8> = (0..(w as f64 * scale) as usize + 5)
            .map(|px| {
                let x = ((px as f64 - offset) / scale).max(0.0) as usize;
                luma[(BLOCK / 2) * w + x.min(w - 1)]
            })
            .collect();
        let stamp = read_with(|x, _| page.get((offset + x * scale) as usize).map(|&v| v >= 128));
        assert_eq!(stamp, Some(0x0123_4567));
    }
}
