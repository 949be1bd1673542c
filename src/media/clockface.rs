//! A readable running clock (`HH:MM:SS`, UTC) for the test pattern, drawn as seven-segment
//! digits straight into the luma plane. GStreamer's clockoverlay would do it through
//! Pango, fontconfig and cairo, which cost ~8 MB of resident memory on a Pi for a test
//! picture.

use std::time::{SystemTime, UNIX_EPOCH};

const WHITE: u8 = 235;
const BLACK: u8 = 16;

/// Segments a..g (top, top-right, bottom-right, bottom, bottom-left, top-left, middle)
/// lit for each digit, as bits 0..6.
const DIGITS: [u8; 10] = [0x3f, 0x06, 0x5b, 0x4f, 0x66, 0x6d, 0x7d, 0x07, 0x7f, 0x6f];

fn digit_height(height: usize) -> usize {
    (height / 12).max(12)
}

/// Where the clock goes in a `width`x`height` picture: `(x, y, w, h)`, if it fits.
pub fn clock_box(width: usize, height: usize) -> Option<(usize, usize, usize, usize)> {
    let h = digit_height(height);
    let (w, bh) = (6 * (h * 2 / 3) + 2 * (h / 3) + h / 2, h + h / 2);
    (width >= w + 8 && height >= bh + 8).then(|| (width - w - 8, height - bh - 8, w, bh))
}

/// Makes a rectangle of a chroma plane (half resolution) neutral, so the clock's box is
/// grey-scale whatever colour was under it.
pub fn neutral_chroma(plane: &mut [u8], stride: usize, (x, y, w, h): (usize, usize, usize, usize)) {
    for row in y / 2..(y + h).div_ceil(2) {
        if let Some(line) = plane.get_mut(row * stride + x / 2..row * stride + (x + w).div_ceil(2)) {
            line.fill(128);
        }
    }
}

/// A luma plane to draw on.
pub struct Plane<'a> {
    pub luma: &'a mut [u8],
    pub stride: usize,
    pub width: usize,
    pub height: usize,
}

impl Plane<'_> {
    fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, shade: u8) {
        for row in y..(y + h).min(self.height) {
            let start = row * self.stride + x.min(self.width);
            let end = row * self.stride + (x + w).min(self.width);
            if let Some(line) = self.luma.get_mut(start..end) {
                line.fill(shade);
            }
        }
    }

    fn digit(&mut self, x: usize, y: usize, h: usize, value: usize) {
        let (w, t, half) = (h / 2, (h / 9).max(2), h / 2);
        let segments = [
            (x, y, w, t),
            (x + w - t, y, t, half),
            (x + w - t, y + half, t, half),
            (x, y + h - t, w, t),
            (x, y + half, t, half),
            (x, y, t, half),
            (x, y + half - t / 2, w, t),
        ];
        let lit = DIGITS[value % 10];
        for (bit, &(sx, sy, sw, sh)) in segments.iter().enumerate() {
            if lit >> bit & 1 == 1 {
                self.fill(sx, sy, sw, sh, WHITE);
            }
        }
    }

    /// Draws `HH:MM:SS` of `now` (UTC) at the bottom-right, white on a black box.
    pub fn clock(&mut self, now: SystemTime) {
        let Some((x0, y0, box_w, box_h)) = clock_box(self.width, self.height) else { return };
        let h = digit_height(self.height);
        let (advance, colon) = (h * 2 / 3, h / 3);
        self.fill(x0, y0, box_w, box_h, BLACK);
        let seconds = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) % 86_400;
        let fields = [seconds / 3600, seconds / 60 % 60, seconds % 60];
        let (mut x, y) = (x0 + h / 4, y0 + h / 4);
        for (i, field) in fields.iter().enumerate() {
            self.digit(x, y, h, (*field / 10) as usize);
            self.digit(x + advance, y, h, (*field % 10) as usize);
            x += 2 * advance;
            if i < 2 {
                let dot = (h / 9).max(2);
                self.fill(x + colon / 2 - dot, y + h / 3, dot, dot, WHITE);
                self.fill(x + colon / 2 - dot, y + 2 * h / 3, dot, dot, WHITE);
                x += colon;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn draws_inside_the_picture_only() {
        let (width, height) = (320, 240);
        let mut luma = vec![128u8; width * height];
        let now = UNIX_EPOCH + Duration::from_secs(12 * 3600 + 34 * 60 + 56);
        Plane { luma: &mut luma, stride: width, width, height }.clock(now);
        let changed = luma.iter().filter(|&&v| v != 128).count();
        assert!(changed > 1000, "the clock was drawn ({changed} pixels)");
        assert!(luma[..width * 100].iter().all(|&v| v == 128), "top of the picture untouched");
        let mut tiny = vec![128u8; 16 * 16];
        Plane { luma: &mut tiny, stride: 16, width: 16, height: 16 }.clock(now);
        assert!(tiny.iter().all(|&v| v == 128), "no room: nothing drawn");
    }
}
