//! The robot's speaker and display as the benchmark sees them: robocast plays into
//! GStreamer `udpsink`s on loopback, and a thread of its own per sink stamps each datagram
//! with the system clock as the kernel hands it over (blocking reads, so what the
//! benchmark's runtime is busy with does not delay the stamp).
//!
//! * The speaker's sink is paced by GStreamer's clock, as a sound card is: a datagram
//!   (10 ms of S16LE mono at 48 kHz) leaves when it is due to play, so its arrival is its
//!   playout. The onset of each burst after silence is found to the sample.
//! * The display's sink sends each picture as it is shown, scaled to 320x180 GRAY8; the
//!   page's clock stamp is read back from its 32 blocks.

use std::net::UdpSocket;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};

/// The system clock in fractional ms since the Unix epoch: the clock both ends stamp with.
pub(crate) fn wall_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

const RATE: f64 = 48_000.0;
/// A sample this loud (the bursts are sent at 0.5) starts a burst when none was for
/// `QUIET_BEFORE` samples. Quieter sound is not silence, but it is not a burst either:
/// Opus smears a burst's start over a few ms before it (pre-echo), the decoder's tail
/// after it.
const ONSET: f32 = 0.15;
const QUIET_BEFORE: usize = 48 * 200;

pub(crate) const DISPLAY_W: usize = 320;
pub(crate) const DISPLAY_H: usize = 180;

/// What the speaker's thread saw.
#[derive(Default)]
pub(crate) struct Heard {
    /// Burst onsets: system ms at which their first loud sample played.
    pub(crate) onsets: Vec<f64>,
    pub(crate) datagrams: u64,
    /// The loudest sample (0..1).
    pub(crate) peak: f32,
}

/// What the display's thread saw.
#[derive(Default)]
pub(crate) struct Shown {
    /// (arrival, system ms; stamp, page ms) of every picture whose stamp was read.
    pub(crate) stamps: Vec<(f64, f64)>,
    /// Pictures shown whose stamp did not read (the idle picture, a blurred change).
    pub(crate) unread: u64,
}

/// A UDP port on 127.0.0.1 and the thread reading it; the thread ends when the socket's
/// read times out after the benchmark dropped its handle.
pub(crate) struct Sink<T> {
    pub(crate) port: u16,
    seen: Arc<Mutex<T>>,
    _reader: JoinHandle<()>,
}

fn lock<T>(seen: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    seen.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Default + Send + 'static> Sink<T> {
    fn bind(name: &str, mut on_datagram: impl FnMut(&[u8], f64, &mut T) + Send + 'static) -> Result<Sink<T>> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding a sink's UDP port")?;
        socket.set_read_timeout(Some(Duration::from_secs(1)))?;
        let port = socket.local_addr()?.port();
        let seen = Arc::new(Mutex::new(T::default()));
        let weak = Arc::downgrade(&seen);
        let reader = std::thread::Builder::new().name(format!("bench-{name}")).spawn(move || {
            let mut buf = vec![0u8; 65_536];
            loop {
                let received = socket.recv(&mut buf);
                let at = wall_ms();
                let Some(seen) = weak.upgrade() else { return };
                if let Ok(n) = received {
                    on_datagram(&buf[..n], at, &mut lock(&seen));
                }
            }
        })?;
        Ok(Sink { port, seen, _reader: reader })
    }

    /// Takes what was seen so far.
    pub(crate) fn take(&self) -> T {
        std::mem::take(&mut lock(&self.seen))
    }
}

impl Sink<Heard> {
    pub(crate) fn speaker() -> Result<Sink<Heard>> {
        let mut since_loud = 0usize;
        Sink::bind("speaker", move |bytes, at, heard: &mut Heard| {
            heard.datagrams += 1;
            for (i, pair) in bytes.chunks_exact(2).enumerate() {
                let level = (f32::from(i16::from_le_bytes([pair[0], pair[1]])) / 32768.0).abs();
                heard.peak = heard.peak.max(level);
                if level < ONSET {
                    since_loud += 1;
                    continue;
                }
                if since_loud >= QUIET_BEFORE {
                    heard.onsets.push(at + i as f64 * 1000.0 / RATE);
                }
                since_loud = 0;
            }
        })
    }

    /// robocast's `--speaker`: a sink paced by its clock, as a sound card is.
    pub(crate) fn speaker_spec(&self) -> String {
        format!(
            "gst:audio/x-raw,format=S16LE,rate=48000,channels=1 ! udpsink host=127.0.0.1 port={} sync=true",
            self.port
        )
    }
}

impl Sink<Shown> {
    pub(crate) fn display() -> Result<Sink<Shown>> {
        Sink::bind("display", |bytes, at, shown: &mut Shown| match read_stamp(bytes) {
            Some(low) => shown.stamps.push((at, unwrap_stamp(low, at))),
            None => shown.unread += 1,
        })
    }

    /// robocast's `--display`: each picture as it is shown, 320x180 and grey.
    pub(crate) fn display_spec(&self) -> String {
        format!(
            "gst:videoscale ! video/x-raw,width={DISPLAY_W},height={DISPLAY_H} ! videoconvert ! \
             video/x-raw,format=GRAY8 ! udpsink host=127.0.0.1 port={} sync=false",
            self.port
        )
    }
}

/// The low 24 bits of the page's ms clock from a 320x180 grey picture, if its check
/// matches: bit i is block (i % 8, i / 8) of a grid of 8 by 4, read as the mean of the
/// middle of the block (away from edges that scaling and coding blur).
pub(crate) fn read_stamp(pixels: &[u8]) -> Option<u32> {
    if pixels.len() != DISPLAY_W * DISPLAY_H {
        return None;
    }
    let (w, h) = (DISPLAY_W / 8, DISPLAY_H / 4);
    let mut word = 0u32;
    for i in 0..32 {
        let (x0, y0) = ((i % 8) * w + w / 4, (i / 8) * h + h / 4);
        let mut sum = 0u32;
        for y in y0..y0 + h / 2 {
            sum += pixels[y * DISPLAY_W + x0..y * DISPLAY_W + x0 + w / 2]
                .iter()
                .map(|&p| u32::from(p))
                .sum::<u32>();
        }
        let mean = sum / ((w / 2) * (h / 2)) as u32;
        // Between black and white, nothing to read: the picture is not a stamp.
        if (64..192).contains(&mean) {
            return None;
        }
        if mean >= 128 {
            word |= 1 << i;
        }
    }
    let low = word & 0xff_ffff;
    let check = ((low ^ (low >> 8) ^ (low >> 16)) & 0xff) ^ 0xa5;
    (word >> 24 == check).then_some(low)
}

/// The page's full ms clock from its low 24 bits (which wrap every 4.7 hours): the value
/// with those bits nearest to `near` (the arrival; page and system clocks agree within
/// far less than the wrap).
fn unwrap_stamp(low: u32, near: f64) -> f64 {
    const WRAP: f64 = (1u64 << 24) as f64;
    let base = (near / WRAP).floor() * WRAP + f64::from(low);
    [base - WRAP, base, base + WRAP]
        .into_iter()
        .min_by(|a, b| (a - near).abs().total_cmp(&(b - near).abs()))
        .unwrap_or(base)
}
