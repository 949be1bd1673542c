//! The speaker: the talker's Opus packets decoded by GStreamer (`opusdec`) into a
//! [`PlayoutBuffer`], played by the sound card through cpal (the default) or by a
//! GStreamer sink (`gst:<sink pipeline>`). With the echo canceller on, what is played
//! also goes through `webrtcechoprobe`, so the microphone's `webrtcdsp` can take it out.
//!
//! ```text
//! rtc (Opus packets) ─▶ appsrc ! opusdec ! … ! appsink ─▶ PlayoutBuffer ─▶ cpal callback (sound card clock)
//!                                                                    └─▶ feeder thread ─▶ appsrc ! [probe] ! <gst sink> (system clock)
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use gstreamer as gst;
use gstreamer_app as gst_app;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::buffer::PlayoutBuffer;
use super::stage::{self, Input, StageState};
use crate::media::MediaError;

/// The name of the echo canceller's probe element (`webrtcdsp probe=...`).
pub const ECHO_PROBE: &str = "robocast-echo";
/// The rate robocast decodes and plays at when the sink does not say otherwise.
const RATE: u32 = 48_000;
/// The feeder hands a GStreamer sink this much at a time (ms).
const CHUNK_MS: u32 = 10;

/// Where talk-back sound goes, as configured (`speaker`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpeakerSpec {
    None,
    /// The default output device.
    Auto,
    /// The output device whose name contains this (case-insensitive).
    Device(String),
    /// A GStreamer sink pipeline (raw audio in).
    Gst(String),
}

impl SpeakerSpec {
    pub fn parse(text: &str) -> Result<SpeakerSpec, String> {
        let text = text.trim();
        match text {
            "" => Err("the speaker is empty".into()),
            "none" | "off" => Ok(SpeakerSpec::None),
            "auto" => Ok(SpeakerSpec::Auto),
            _ => match text.strip_prefix("gst:") {
                Some(d) if d.trim().is_empty() => Err("`gst:` needs a sink pipeline after it".into()),
                Some(d) => Ok(SpeakerSpec::Gst(d.trim().into())),
                None => Ok(SpeakerSpec::Device(text.into())),
            },
        }
    }
}

/// The names of the sound cards cpal can play to, for `robocast devices` and errors.
pub fn output_devices() -> Vec<String> {
    let host = cpal::default_host();
    match host.output_devices() {
        Ok(devices) => devices.filter_map(|d| d.name().ok()).collect(),
        Err(_) => Vec::new(),
    }
}

#[derive(Debug, Default)]
struct Counters {
    packets: AtomicU64,
    late_packets: AtomicU64,
}

/// The speaker part of the status.
#[derive(Clone, Debug, Serialize)]
pub struct SpeakerStatus {
    pub sink: String,
    pub output: StageState,
    pub decoder: StageState,
    pub codec: &'static str,
    pub packets: u64,
    pub samples_received: u64,
    pub samples_played: u64,
    pub silence_samples: u64,
    pub dropped_samples: u64,
    pub stretched_samples: u64,
    pub rate: u32,
    /// What is buffered (ms, averaged over half a second while talk plays): the delay
    /// robocast adds after decoding.
    pub delay_ms: f64,
    pub buffer_ms: f64,
    /// Talk is being played (not silence).
    pub playing: bool,
    /// What is played also goes to the echo canceller.
    pub echo_probe: bool,
}

pub struct Speaker {
    label: String,
    buffer: Arc<Mutex<PlayoutBuffer>>,
    decoder: Input,
    decoder_state: watch::Receiver<StageState>,
    output_state: watch::Receiver<StageState>,
    counters: Counters,
    echo_probe: bool,
    /// Holds the cpal stream's thread; dropping it stops the stream.
    _cpal: Option<std::sync::mpsc::Sender<()>>,
}

fn lock(buffer: &Mutex<PlayoutBuffer>) -> std::sync::MutexGuard<'_, PlayoutBuffer> {
    buffer.lock().unwrap_or_else(PoisonError::into_inner)
}

const PCM: &str = "audio/x-raw,format=F32LE,layout=interleaved,channels=1";

impl Speaker {
    /// Starts the speaker; `Ok(None)` when `spec` is none or `auto` finds no sound card
    /// (the reason is logged).
    pub async fn start(
        spec: &SpeakerSpec,
        buffer_ms: u32,
        echo: bool,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Result<Option<Speaker>, MediaError> {
        let (label, rate, cpal) = match spec {
            SpeakerSpec::None => return Ok(None),
            SpeakerSpec::Gst(description) => (format!("gst:{description}"), RATE, None),
            SpeakerSpec::Auto | SpeakerSpec::Device(_) => match quietly(|| CpalOutput::open(spec))? {
                Some(out) => (out.label.clone(), out.rate, Some(out)),
                None => {
                    tracing::info!(
                        "speaker: no sound card found, talk-back sound is not played (set `speaker` to a device or gst:<sink>)"
                    );
                    return Ok(None);
                }
            },
        };
        // Everything this speaker starts ends with it, also when it cannot start.
        let cancel = cancel.child_token();
        let buffer = Arc::new(Mutex::new(PlayoutBuffer::new(rate, buffer_ms)));
        let probe = if echo {
            format!(
                "audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=48000,channels=1 ! webrtcechoprobe name={ECHO_PROBE} ! "
            )
        } else {
            String::new()
        };
        // The output: a GStreamer sink fed by a thread paced by the system clock, or the
        // cpal stream (whose callback pulls) plus, for the echo canceller, a reference
        // pipeline that sees what the callback played.
        let (output_state, echo_probe, cpal_thread) = match (spec, cpal) {
            (SpeakerSpec::Gst(description), _) => {
                let chunk = (CHUNK_MS * rate / 1000) as usize;
                let description = format!(
                    "appsrc name=out format=time is-live=true do-timestamp=true caps={PCM},rate={rate} ! \
                     {probe}audioconvert ! audioresample ! {description}"
                );
                let build: Arc<stage::Build> = Arc::new(move || stage::launch(&description));
                let (input, state) = stage::start("speaker", "out", build, tracker, cancel.clone()).await;
                let running = state.borrow().running;
                if let Err(e) = feed(input, Arc::clone(&buffer), rate, chunk, cancel.clone()) {
                    cancel.cancel();
                    return Err(e);
                }
                (state, echo && running, None)
            }
            (_, Some(out)) => {
                let reference = if echo {
                    let description = format!(
                        "appsrc name=ref is-live=true do-timestamp=true format=time caps={PCM},rate={rate} ! \
                         {probe}fakesink sync=false async=false"
                    );
                    let build: Arc<stage::Build> = Arc::new(move || stage::launch(&description));
                    Some(stage::start("echo reference", "ref", build, tracker, cancel.clone()).await)
                } else {
                    None
                };
                let probe_running = reference.as_ref().is_some_and(|(_, state)| state.borrow().running);
                let (state_tx, state) = watch::channel(StageState::default());
                match out.play(Arc::clone(&buffer), reference.map(|(input, _)| input), state_tx) {
                    Ok(thread) => (state, probe_running, Some(thread)),
                    Err(e) => {
                        cancel.cancel();
                        return Err(e);
                    }
                }
            }
            (_, None) => return Ok(None),
        };
        let decoder_buffer = Arc::clone(&buffer);
        let description = format!(
            "appsrc name=in is-live=true do-timestamp=true format=time caps=audio/x-opus,channel-mapping-family=0 ! \
             opusdec ! audioconvert ! audioresample ! {PCM},rate={rate} ! appsink name=pcm sync=false"
        );
        let build: Arc<stage::Build> = Arc::new(move || {
            let pipeline = stage::launch(&description)?;
            let sink = stage::appsink(&pipeline, "pcm")?;
            let buffer = Arc::clone(&decoder_buffer);
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        let pcm = sample.buffer().ok_or(gst::FlowError::Error)?;
                        let map = pcm.map_readable().map_err(|_| gst::FlowError::Error)?;
                        let samples: Vec<f32> = map
                            .chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                            .collect();
                        lock(&buffer).push(&samples);
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
            Ok(pipeline)
        });
        let (decoder, decoder_state) = stage::start("speaker decoder", "in", build, tracker, cancel).await;
        tracing::info!(sink = %label, buffer_ms, echo_probe, "speaker ready for talk-back");
        Ok(Some(Speaker {
            label,
            buffer,
            decoder,
            decoder_state,
            output_state,
            counters: Counters::default(),
            echo_probe,
            _cpal: cpal_thread,
        }))
    }

    /// Whether the echo canceller's probe is in the output path.
    pub fn echo_probe(&self) -> bool {
        self.echo_probe
    }

    /// One Opus packet from the talker.
    pub fn push(&self, packet: Bytes) {
        self.counters.packets.fetch_add(1, Ordering::Relaxed);
        if let Some(src) = self.decoder.get() {
            let _ = src.push_buffer(gst::Buffer::from_slice(packet));
        }
    }

    /// A packet that came too late to be played.
    pub fn late(&self) {
        self.counters.late_packets.fetch_add(1, Ordering::Relaxed);
    }

    /// The talker left: silence now, not the rest of the buffer.
    pub fn stop(&self) {
        lock(&self.buffer).clear();
    }

    pub fn status(&self) -> SpeakerStatus {
        let buffer = lock(&self.buffer);
        let counts = buffer.counts();
        SpeakerStatus {
            sink: self.label.clone(),
            output: self.output_state.borrow().clone(),
            decoder: self.decoder_state.borrow().clone(),
            codec: "opus",
            packets: self.counters.packets.load(Ordering::Relaxed),
            samples_received: counts.received,
            samples_played: counts.played,
            silence_samples: counts.silence,
            dropped_samples: counts.dropped,
            stretched_samples: counts.stretched,
            rate: buffer.rate(),
            delay_ms: (buffer.delay_ms() * 10.0).round() / 10.0,
            buffer_ms: buffer.target_ms(),
            playing: buffer.playing(),
            echo_probe: self.echo_probe,
        }
    }
}

/// Feeds a GStreamer sink from the buffer, `chunk` samples every `chunk` of time on the
/// system clock, for as long as the speaker lives. The appsrc is live and stamps each chunk
/// as it goes in, so the sink plays it at once (an audio sink absorbs the drift between
/// this clock and its card's); a blocking appsrc fed as fast as the sink took it held two
/// chunks more in GStreamer (~30 ms). It pushes only into the pipeline the stage has
/// published as playing, so a start (whose flushing refuses pushes) or a rebuild loses
/// nothing but the chunks of that moment, and never stops the feeding.
fn feed(
    output: stage::Input,
    buffer: Arc<Mutex<PlayoutBuffer>>,
    rate: u32,
    chunk: usize,
    cancel: CancellationToken,
) -> Result<(), MediaError> {
    let period = std::time::Duration::from_nanos(chunk as u64 * 1_000_000_000 / u64::from(rate));
    let spawned = std::thread::Builder::new().name("robocast-speaker".into()).spawn(move || {
        let mut samples = vec![0.0f32; chunk];
        let mut next = std::time::Instant::now();
        while !cancel.is_cancelled() {
            if let Some(src) = output.get() {
                lock(&buffer).pull(&mut samples);
                let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
                // Refused while the pipeline stops or restarts; the stage reports that.
                let _ = src.push_buffer(gst::Buffer::from_mut_slice(bytes));
            }
            next += period;
            let now = std::time::Instant::now();
            if next + period * 10 < now {
                next = now; // the thread was held up: do not play the backlog
            }
            std::thread::sleep(next.saturating_duration_since(now));
        }
    });
    spawned.map(|_| ()).map_err(|e| MediaError::Runtime(format!("cannot start the speaker thread: {e}")))
}

/// Runs `probe` with standard error caught: ALSA prints a dozen lines ("ALSA lib ...
/// cannot find card '0'") on every start of a robot without a sound card. What it printed
/// goes to the debug log.
fn quietly<T>(probe: impl FnOnce() -> T) -> T {
    let caught = gag::BufferRedirect::stderr().ok();
    let result = probe();
    if let Some(mut caught) = caught {
        let mut said = String::new();
        let _ = std::io::Read::read_to_string(&mut caught, &mut said);
        drop(caught);
        if !said.trim().is_empty() {
            tracing::debug!(alsa = %said.trim(), "the sound library said, while looking for a sound card");
        }
    }
    result
}

/// A cpal output device, opened but not yet playing.
struct CpalOutput {
    device: cpal::Device,
    config: cpal::SupportedStreamConfig,
    label: String,
    rate: u32,
}

impl CpalOutput {
    fn open(spec: &SpeakerSpec) -> Result<Option<CpalOutput>, MediaError> {
        let host = cpal::default_host();
        let device = match spec {
            SpeakerSpec::Device(part) => {
                let wanted = part.to_lowercase();
                let found = host.output_devices().ok().and_then(|mut devices| {
                    devices.find(|d| d.name().is_ok_and(|n| n.to_lowercase().contains(&wanted)))
                });
                Some(found.ok_or_else(|| MediaError::BadSource {
                    name: format!("speaker `{part}`"),
                    problem: format!(
                        "no sound card's name contains it (found: {})",
                        match output_devices() {
                            names if names.is_empty() => "none".to_owned(),
                            names => names.join(", "),
                        }
                    ),
                })?)
            }
            _ => host.default_output_device(),
        };
        let Some(device) = device else { return Ok(None) };
        let config = match device.default_output_config() {
            Ok(config) => config,
            Err(e) if *spec == SpeakerSpec::Auto => {
                tracing::debug!(error = %e, "the default sound card cannot play");
                return Ok(None);
            }
            Err(e) => {
                return Err(MediaError::Runtime(format!("the sound card cannot play: {e}")));
            }
        };
        let name = device.name().unwrap_or_else(|_| "default".into());
        let rate = config.sample_rate().0;
        Ok(Some(CpalOutput { device, config, label: format!("sound card `{name}` (cpal)"), rate }))
    }

    /// Starts the stream on a thread of its own (a cpal stream may not move between
    /// threads); it plays until the returned sender is dropped.
    fn play(
        self,
        buffer: Arc<Mutex<PlayoutBuffer>>,
        reference: Option<Input>,
        state: watch::Sender<StageState>,
    ) -> Result<std::sync::mpsc::Sender<()>, MediaError> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready) = std::sync::mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new().name("robocast-cpal".into()).spawn(move || {
            let stream = self.build(buffer, reference, state);
            let stream = match stream.and_then(|s| s.play().map(|()| s).map_err(|e| e.to_string())) {
                Ok(stream) => stream,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let _ = stopped.recv();
            drop(stream);
        });
        spawned.map_err(|e| MediaError::Runtime(format!("cannot start the sound thread: {e}")))?;
        match ready.recv() {
            Ok(Ok(())) => Ok(stop),
            Ok(Err(e)) => Err(MediaError::Runtime(format!("the sound card cannot play: {e}"))),
            Err(_) => Err(MediaError::Runtime("the sound thread ended".into())),
        }
    }

    fn build(
        self,
        buffer: Arc<Mutex<PlayoutBuffer>>,
        reference: Option<Input>,
        state: watch::Sender<StageState>,
    ) -> Result<cpal::Stream, String> {
        let format = self.config.sample_format();
        let mut config: cpal::StreamConfig = self.config.clone().into();
        // 10 ms periods where the card allows it: the card's default can be far larger.
        let period = self.rate / 100;
        if let cpal::SupportedBufferSize::Range { min, max } = self.config.buffer_size()
            && (*min..=*max).contains(&period)
        {
            config.buffer_size = cpal::BufferSize::Fixed(period);
        }
        let parts = Parts { buffer, reference, channels: usize::from(config.channels), state };
        let stream = self.stream_of(format, &config, parts.clone());
        // Some devices (ALSA's PulseAudio plugin) refuse a fixed period: their own then.
        match stream {
            Err(e) if config.buffer_size != cpal::BufferSize::Default => {
                tracing::debug!(error = %e, "the sound card refused 10 ms periods; using its default");
                config.buffer_size = cpal::BufferSize::Default;
                self.stream_of(format, &config, parts)
            }
            other => other,
        }
    }

    fn stream_of(
        &self,
        format: cpal::SampleFormat,
        config: &cpal::StreamConfig,
        parts: Parts,
    ) -> Result<cpal::Stream, String> {
        let stream = match format {
            cpal::SampleFormat::F32 => self.stream::<f32>(config, parts),
            cpal::SampleFormat::I16 => self.stream::<i16>(config, parts),
            cpal::SampleFormat::I32 => self.stream::<i32>(config, parts),
            cpal::SampleFormat::U16 => self.stream::<u16>(config, parts),
            other => return Err(format!("sample format {other} is not supported")),
        };
        stream.map_err(|e| e.to_string())
    }

    fn stream<T: cpal::SizedSample + cpal::FromSample<f32>>(
        &self,
        config: &cpal::StreamConfig,
        parts: Parts,
    ) -> Result<cpal::Stream, cpal::BuildStreamError> {
        let Parts { buffer, reference, channels, state } = parts;
        let mut mono = Vec::new();
        let running = state.clone();
        running.send_replace(StageState { running: true, error: None, restarts: 0 });
        self.device.build_output_stream(
            config,
            move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
                let frames = data.len() / channels.max(1);
                mono.resize(frames, 0.0);
                lock(&buffer).pull(&mut mono);
                for (frame, &sample) in data.chunks_mut(channels.max(1)).zip(&mono) {
                    frame.fill(T::from_sample(sample));
                }
                if let Some(src) = reference.as_ref().and_then(Input::get) {
                    let bytes: Vec<u8> = mono.iter().flat_map(|s| s.to_le_bytes()).collect();
                    let _ = src.push_buffer(gst::Buffer::from_mut_slice(bytes));
                }
            },
            move |error| {
                tracing::warn!(%error, "the sound card failed; talk-back is not heard");
                state.send_replace(StageState {
                    running: false,
                    error: Some(error.to_string()),
                    restarts: 0,
                });
            },
            None,
        )
    }
}

#[derive(Clone)]
struct Parts {
    buffer: Arc<Mutex<PlayoutBuffer>>,
    reference: Option<Input>,
    channels: usize,
    state: watch::Sender<StageState>,
}
