//! What a robot page really shows: its composited output, through Chromium's screencast,
//! with the test source's clock stamp (`src/media/clockstamp.rs`) read from each picture.
//!
//! Chromium stamps each screencast frame with a time on its compositor's refresh grid,
//! ahead of the moment the frame reaches us: the time it will be displayed. So a stamp's
//! age at that time is how long the picture took from capture to the screen.

use anyhow::{Context as _, Result, bail};
use robocast::media::clockstamp;
use serde::Deserialize;
use serde_json::json;

use super::browser::{Page, Screencast, ScreencastFrame};

/// Small, so Chromium's encoding stays cheap, yet the stamp's 16-pixel blocks stay over
/// 4 image pixels wide on a page of the default window size.
const SCREENCAST_WIDTH: u32 = 400;

/// Where the video's picture is, in CSS pixels: `object-fit: contain` centres it in the
/// element at the largest scale that fits.
const PICTURE_BOX: &str = "(() => { const v = document.getElementById('video'); \
    const r = v.getBoundingClientRect(); \
    const scale = Math.min(r.width / v.videoWidth, r.height / v.videoHeight); \
    return { left: r.left + (r.width - v.videoWidth * scale) / 2, \
             top: r.top + (r.height - v.videoHeight * scale) / 2, scale }; })()";

#[derive(Deserialize)]
struct PictureBox {
    left: f64,
    top: f64,
    /// CSS pixels per picture pixel.
    scale: f64,
}

/// A picture seen on screen: its stamp, and its age in ms at the display time of the first
/// composited frame that showed it.
pub struct Shown {
    pub stamp: u32,
    pub age: f64,
}

/// What a [`Watch`] saw, in the order it was shown.
#[derive(Default)]
pub struct Seen {
    pub shown: Vec<Shown>,
    /// Screencast frames without a readable stamp (something covered it, or no video).
    pub unreadable: usize,
}

/// A page's screen, being watched (see [`watch`]).
pub struct Watch {
    picture: PictureBox,
    screencast: Screencast,
}

/// Starts watching `page`, which must be playing: the picture's place on the page is
/// taken now and assumed not to move.
pub async fn watch(page: &Page) -> Result<Watch> {
    let picture: PictureBox = serde_json::from_value(page.eval(PICTURE_BOX).await?)
        .context("finding the video's picture on the page")?;
    let params = json!({ "format": "png", "maxWidth": SCREENCAST_WIDTH });
    Ok(Watch { picture, screencast: page.start_screencast(params).await? })
}

impl Watch {
    /// Stops watching and reads every frame. A picture can be in several composited frames
    /// (when something else on the page changes); it counts once, when first shown.
    pub async fn stop(self) -> Result<Seen> {
        let mut seen = Seen::default();
        for frame in self.screencast.stop().await? {
            let Some(stamp) = read_stamp(&frame, &self.picture)? else {
                seen.unreadable += 1;
                continue;
            };
            if !seen.shown.iter().any(|s| s.stamp == stamp) {
                seen.shown.push(Shown { stamp, age: age_ms(frame.timestamp * 1000.0, stamp) });
            }
        }
        Ok(seen)
    }
}

/// The stamp in one screencast frame: a PNG of the page, scaled from its `device_width`.
fn read_stamp(frame: &ScreencastFrame, picture: &PictureBox) -> Result<Option<u32>> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(&frame.image));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().context("a screencast frame is not a PNG")?;
    let mut pixels = vec![0; reader.output_buffer_size().context("a screencast frame is too large")?];
    let info = reader.next_frame(&mut pixels).context("decoding a screencast frame")?;
    let channels = info.color_type.samples();
    if channels < 3 {
        bail!("a screencast frame is {:?}, not RGB", info.color_type);
    }
    let image_per_css = f64::from(info.width) / frame.device_width;
    Ok(clockstamp::read_with(|x, y| {
        let column = ((picture.left + x * picture.scale) * image_per_css) as usize;
        let row = ((picture.top + y * picture.scale) * image_per_css) as usize;
        let at = row * info.line_size + column * channels;
        let [r, g, b] = [pixels.get(at)?, pixels.get(at + 1)?, pixels.get(at + 2)?].map(|&v| f64::from(v));
        Some(0.299 * r + 0.587 * g + 0.114 * b >= 128.0)
    }))
}

/// How old a stamp (Unix ms modulo 2^32) is at Unix time `at_ms`.
fn age_ms(at_ms: f64, stamp: u32) -> f64 {
    let whole = at_ms.floor();
    f64::from((whole as u64 as u32).wrapping_sub(stamp) as i32) + (at_ms - whole)
}
