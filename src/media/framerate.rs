//! Frame-rate limiting that drops pictures and never holds one back.
//!
//! `videorate` makes a perfect stream by keeping each picture until the next one arrives,
//! so it knows how long to show it: one frame of latency on every picture (33 ms at
//! 30 fps, 200 ms at 5 fps). A robot's viewer wants the newest picture now, not an even
//! pace, so robocast never uses it on a capture path. Instead this probe sits right after
//! the source: a picture that comes sooner than the configured rate allows is dropped,
//! every other picture goes on at once, and the caps announce the configured rate when
//! the source is faster, so encoders size their bits per frame right. A source slower than
//! the configured rate is passed as it is: nothing is duplicated.

use std::sync::atomic::{AtomicU64, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;

/// No picture passed yet.
const NONE: u64 = u64::MAX;

/// Keeps at most `fps` pictures a second on `pad` (a raw video source pad).
pub(super) fn limit(pad: &gst::Pad, fps: u32) {
    let interval = gst::ClockTime::SECOND.nseconds() / u64::from(fps.max(1));
    // A picture may come up to a quarter of a frame early (capture jitter) and still count
    // as the next one; anything earlier belongs to a faster source and is dropped.
    let min_gap = interval - interval / 4;
    let last = AtomicU64::new(NONE);
    let _probe =
        pad.add_probe(gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            match &mut info.data {
                Some(gst::PadProbeData::Buffer(buffer)) => {
                    let Some(pts) = buffer.pts().map(gst::ClockTime::nseconds) else {
                        return gst::PadProbeReturn::Ok;
                    };
                    // Only the streaming thread of this pad runs the probe: Relaxed is enough.
                    let previous = last.load(Ordering::Relaxed);
                    if previous != NONE && pts >= previous && pts - previous < min_gap {
                        return gst::PadProbeReturn::Drop;
                    }
                    last.store(pts, Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                }
                Some(gst::PadProbeData::Event(event)) => {
                    let capped = match event.view() {
                        gst::EventView::Caps(caps) => capped_caps(caps.caps(), fps),
                        _ => None,
                    };
                    if let Some(capped) = capped {
                        *event = gst::event::Caps::new(&capped);
                    }
                    gst::PadProbeReturn::Ok
                }
                _ => gst::PadProbeReturn::Ok,
            }
        });
}

/// The caps with `framerate` lowered to `fps` when the source announces more.
fn capped_caps(caps: &gst::CapsRef, fps: u32) -> Option<gst::Caps> {
    let structure = caps.structure(0)?;
    let rate = structure.get::<gst::Fraction>("framerate").ok()?;
    let fps = i32::try_from(fps).ok()?;
    // Compare n1/d1 > fps/1 without division.
    if rate.denom() <= 0 || i64::from(rate.numer()) <= i64::from(fps) * i64::from(rate.denom()) {
        return None;
    }
    let mut capped = caps.to_owned();
    capped.make_mut().set("framerate", gst::Fraction::new(fps, 1));
    Some(capped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(rate: &str) -> gst::Caps {
        format!("video/x-raw,format=I420,width=320,height=240,framerate={rate}").parse().expect("valid caps")
    }

    #[test]
    fn faster_sources_announce_the_configured_rate() {
        gst::init().expect("gstreamer");
        let capped = capped_caps(&caps("60/1"), 30).expect("60 fps is above 30");
        let rate = capped.structure(0).and_then(|s| s.get::<gst::Fraction>("framerate").ok());
        assert_eq!(rate, Some(gst::Fraction::new(30, 1)));
        assert!(capped_caps(&caps("30/1"), 30).is_none(), "30 fps needs no change");
        assert!(capped_caps(&caps("5/1"), 30).is_none(), "slower sources are not padded");
        assert!(capped_caps(&caps("30000/1001"), 30).is_none(), "29.97 fps stays");
    }
}
