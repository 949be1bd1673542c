//! Configuration: defaults in code, then the TOML file, then `ROBOCAST_*` environment
//! variables, then command-line flags, then [`Config::validate`].
//!
//! clap reads the environment and the flags together (a flag beats its variable), so the
//! layering is: `Config::default()` ← [`FileConfig`] ← [`Overrides`] (clap) ← `validate()`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use crate::auth::Token;
use crate::http::tls::TlsSetting;

/// Everything the daemon needs to run. Every field has a default, so
/// `Config::default()` runs on a test pattern and a tone on any machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address and port of the HTTP server.
    pub listen: SocketAddr,
    /// Video source: `auto`, `test`, `v4l2:/dev/videoN`, `libcamera`, `none`, `gst:<pipeline>`.
    pub video: String,
    /// Audio source: `auto`, `test`, `alsa:<device>`, `pulse`, `none`, `gst:<pipeline>`.
    pub audio: String,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Video target bitrate in kbit/s: the most, on a link that takes it.
    pub bitrate_kbps: u32,
    /// The least video bitrate a viewer's thin link brings the encoder down to, kbit/s.
    pub min_bitrate_kbps: u32,
    /// How many encoded sizes viewers are spread over: 1 (one encoder that follows the
    /// slowest viewer) or 2 (the configured size, and half of it at a quarter of the
    /// bitrate for viewers whose link takes less, encoded only while one watches).
    pub tiers: u8,
    /// Opus bitrate in kbit/s.
    pub audio_bitrate_kbps: u32,
    /// Most viewers at once; the next one gets 503.
    pub max_viewers: usize,
    /// STUN/TURN servers (`stun:host:port`, `turn:user:pass@host:port`), also handed to the page.
    pub ice_servers: Vec<String>,
    /// Video encoder: `auto` (first that works from the table) or an element name.
    pub encoder: String,
    /// Send audio and video as one lip-synced stream (the browser then delays the video to
    /// the audio); by default they are two streams and each plays as soon as it can.
    pub lip_sync: bool,
    /// The control socket robot programs connect to; `None` is off. [`Config::load`] (the
    /// command line) starts from [`crate::control::socket::default_path`], the library's
    /// `Config::default()` from off.
    pub control_socket: Option<PathBuf>,
    /// The dead-man stop fires when the driver is silent this long (milliseconds).
    pub deadman_ms: u64,
    /// Where the talker's voice plays: `auto`, `none`, part of a sound card's name, or
    /// `gst:<sink pipeline>`. [`Config::load`] starts from `auto`, `Config::default()` from
    /// `none` (a library user or a test is not heard unless it asks).
    pub speaker: String,
    /// The speaker's playout buffer (milliseconds): the delay that absorbs network jitter.
    pub speaker_buffer_ms: u32,
    /// Where the talker's camera shows: `auto`, `none`, a sink element, or
    /// `gst:<sink pipeline>`; like `speaker`, `auto` from the command line, `none` by default.
    pub display: String,
    /// Cancel the speaker's echo in the microphone (when both exist).
    pub echo_cancel: bool,
    /// Token that watching needs; `None`: anyone who reaches the port may watch.
    pub viewer_token: Option<Token>,
    /// Token that driving, talking and managing sessions need; `None`: the one kept in
    /// `state_dir`, generated on first start.
    pub operator_token: Option<Token>,
    /// Where robocast keeps what it generates (the operator token). [`Config::load`] starts
    /// from [`crate::auth::default_state_dir`], `Config::default()` from none (a generated
    /// token then lives in memory only).
    pub state_dir: Option<PathBuf>,
    /// Other origins (`https://dashboard.example:3000`) whose pages may call the REST API
    /// and `/api/connect`; `*` is any. WHEP and WHIP take any origin regardless.
    pub allowed_origins: Vec<String>,
    /// A client has this long to send a request's headers, and as long again for its body
    /// (milliseconds); a stalled or trickling request is closed then.
    pub request_timeout_ms: u64,
    /// HTTPS: off, a generated certificate (`auto`), or the user's files. [`Config::load`]
    /// and the library start from off; the packaged configuration sets `auto`.
    pub tls: TlsSetting,
    /// The TURN server's shared secret (coturn's `static-auth-secret`): `turn:` servers
    /// without a password get credentials minted from it per session, valid 12 hours.
    pub turn_secret: Option<Token>,
    /// Offers a minute from one address without the operator token (after a burst of
    /// 20); more get `429`. 0 is no limit.
    pub offers_per_minute: u32,
    /// Sessions at once from one address without the operator token.
    pub max_sessions_per_address: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            video: "auto".into(),
            audio: "auto".into(),
            width: 1280,
            height: 720,
            fps: 30,
            bitrate_kbps: 2500,
            min_bitrate_kbps: 150,
            tiers: 2,
            audio_bitrate_kbps: 64,
            max_viewers: 16,
            ice_servers: Vec::new(),
            encoder: "auto".into(),
            lip_sync: false,
            control_socket: None,
            deadman_ms: 300,
            speaker: "none".into(),
            speaker_buffer_ms: 50,
            display: "none".into(),
            echo_cancel: true,
            viewer_token: None,
            operator_token: None,
            state_dir: None,
            allowed_origins: Vec::new(),
            request_timeout_ms: 10_000,
            tls: TlsSetting::Off,
            turn_secret: None,
            offers_per_minute: 60,
            max_sessions_per_address: 8,
        }
    }
}

/// A configuration value that cannot work, with the field it belongs to and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid `{field}`: {problem}; {fix}")]
    Invalid { field: &'static str, problem: String, fix: String },
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
}

fn invalid(field: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field, problem: problem.into(), fix: fix.into() }
}

/// The TOML file: the same fields as [`Config`], all optional, unknown keys rejected so a
/// typo is an error instead of a silently ignored setting.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub video: Option<String>,
    pub audio: Option<String>,
    pub size: Option<String>,
    pub fps: Option<u32>,
    pub bitrate: Option<u32>,
    pub min_bitrate: Option<u32>,
    pub tiers: Option<u8>,
    pub audio_bitrate: Option<u32>,
    pub max_viewers: Option<usize>,
    pub ice_servers: Option<Vec<String>>,
    pub encoder: Option<String>,
    pub lip_sync: Option<bool>,
    pub control_socket: Option<String>,
    pub deadman_ms: Option<u64>,
    pub speaker: Option<String>,
    pub speaker_buffer_ms: Option<u32>,
    pub display: Option<String>,
    pub echo_cancel: Option<bool>,
    pub viewer_token: Option<String>,
    pub operator_token: Option<String>,
    pub state_dir: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub request_timeout_ms: Option<u64>,
    pub tls: Option<FileTls>,
    pub turn_secret: Option<String>,
    pub offers_per_minute: Option<u32>,
    pub max_sessions_per_address: Option<usize>,
}

/// `tls` in the file: `"auto"`, `"off"`, or `{ cert = "...", key = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FileTls {
    Mode(String),
    Files(TlsFiles),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: String,
    pub key: String,
}

/// Flags, each also readable from a `ROBOCAST_*` variable. Unset means "keep what the
/// file or the defaults say".
#[derive(Debug, Default, Clone, Args)]
pub struct Overrides {
    /// Configuration file (TOML) [default: none]
    #[arg(long, env = "ROBOCAST_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Listen address for HTTP [default: 0.0.0.0:8080]
    #[arg(long, env = "ROBOCAST_LISTEN", value_name = "ADDR:PORT", global = true)]
    pub listen: Option<String>,
    /// Video source: auto, test, v4l2:/dev/videoN, libcamera, none, gst:<pipeline> [default: auto]
    #[arg(long, env = "ROBOCAST_VIDEO", value_name = "SOURCE", global = true)]
    pub video: Option<String>,
    /// Audio source: auto, test, alsa:<device>, pulse, none, gst:<pipeline> [default: auto]
    #[arg(long, env = "ROBOCAST_AUDIO", value_name = "SOURCE", global = true)]
    pub audio: Option<String>,
    /// Picture size [default: 1280x720]
    #[arg(long, env = "ROBOCAST_SIZE", value_name = "WxH", global = true)]
    pub size: Option<String>,
    /// Frames per second [default: 30]
    #[arg(long, env = "ROBOCAST_FPS", value_name = "N", global = true)]
    pub fps: Option<u32>,
    /// Video bitrate in kbit/s, the most on a link that takes it [default: 2500]
    #[arg(long, env = "ROBOCAST_BITRATE", value_name = "KBPS", global = true)]
    pub bitrate: Option<u32>,
    /// Least video bitrate in kbit/s a viewer's thin link brings the encoder down to [default: 150]
    #[arg(long, env = "ROBOCAST_MIN_BITRATE", value_name = "KBPS", global = true)]
    pub min_bitrate: Option<u32>,
    /// Encoded sizes for viewers on different links: 1 or 2 (a half-size one for thin links) [default: 2]
    #[arg(long, env = "ROBOCAST_TIERS", value_name = "N", global = true)]
    pub tiers: Option<u8>,
    /// Opus bitrate in kbit/s [default: 64]
    #[arg(long, env = "ROBOCAST_AUDIO_BITRATE", value_name = "KBPS", global = true)]
    pub audio_bitrate: Option<u32>,
    /// Most viewers at once [default: 16]
    #[arg(long, env = "ROBOCAST_MAX_VIEWERS", value_name = "N", global = true)]
    pub max_viewers: Option<usize>,
    /// STUN/TURN server, repeatable; also handed to the page (stun:host:port, turn:user:pass@host:port)
    #[arg(
        long = "ice-server",
        env = "ROBOCAST_ICE_SERVERS",
        value_delimiter = ',',
        value_name = "URL",
        global = true
    )]
    pub ice_servers: Vec<String>,
    /// Video encoder: auto, or an element name from `robocast devices` [default: auto]
    #[arg(long, env = "ROBOCAST_ENCODER", value_name = "NAME", global = true)]
    pub encoder: Option<String>,
    /// Audio and video as one lip-synced stream; adds the audio's buffering to the video [default: false]
    #[arg(long, env = "ROBOCAST_LIP_SYNC", value_name = "BOOL", global = true, num_args = 0..=1, default_missing_value = "true")]
    pub lip_sync: Option<bool>,
    /// Unix socket for robot programs (JSON lines), `auto` or `off` [default: $RUNTIME_DIRECTORY/control.sock, $XDG_RUNTIME_DIR/robocast.sock or ./robocast.sock]
    #[arg(long, env = "ROBOCAST_CONTROL_SOCKET", value_name = "PATH", global = true)]
    pub control_socket: Option<String>,
    /// Dead-man stop: programs hear `deadman` when the driver is silent this long [default: 300]
    #[arg(long, env = "ROBOCAST_DEADMAN_MS", value_name = "MS", global = true)]
    pub deadman_ms: Option<u64>,
    /// Where talk-back sound plays: auto, none, part of a sound card's name, gst:<sink pipeline> [default: auto]
    #[arg(long, env = "ROBOCAST_SPEAKER", value_name = "SINK", global = true)]
    pub speaker: Option<String>,
    /// Talk-back playout buffer in milliseconds (absorbs network jitter) [default: 50]
    #[arg(long, env = "ROBOCAST_SPEAKER_BUFFER_MS", value_name = "MS", global = true)]
    pub speaker_buffer_ms: Option<u32>,
    /// Where talk-back video shows: auto, none, a sink element (kmssink, ximagesink), gst:<sink pipeline> [default: auto]
    #[arg(long, env = "ROBOCAST_DISPLAY", value_name = "SINK", global = true)]
    pub display: Option<String>,
    /// Echo canceller between the speaker and the microphone: on or off [default: on]
    #[arg(long, env = "ROBOCAST_ECHO_CANCEL", value_name = "on|off", global = true, value_parser = parse_switch)]
    pub echo_cancel: Option<bool>,
    /// Token that watching needs (Authorization: Bearer, or the page's #token=) [default: none, viewing is open]
    #[arg(long, env = "ROBOCAST_VIEWER_TOKEN", hide_env_values = true, value_name = "TOKEN", global = true)]
    pub viewer_token: Option<String>,
    /// Token that driving, talking and managing sessions need [default: generated into the state directory]
    #[arg(
        long,
        env = "ROBOCAST_OPERATOR_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        global = true
    )]
    pub operator_token: Option<String>,
    /// Where robocast keeps the generated operator token [default: $STATE_DIRECTORY, $XDG_STATE_HOME/robocast or ~/.local/state/robocast]
    #[arg(long, env = "ROBOCAST_STATE_DIR", value_name = "DIR", global = true)]
    pub state_dir: Option<String>,
    /// Another origin whose pages may use the REST API and /api/connect, repeatable (WHEP and WHIP take any) [default: none]
    #[arg(
        long = "allowed-origin",
        env = "ROBOCAST_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN",
        global = true
    )]
    pub allowed_origins: Vec<String>,
    /// Time a client has to send a request's headers, and again its body; a stalled request is closed [default: 10000]
    #[arg(long, env = "ROBOCAST_REQUEST_TIMEOUT_MS", value_name = "MS", global = true)]
    pub request_timeout_ms: Option<u64>,
    /// HTTPS: auto (a certificate generated into the state directory) or off; your own certificate goes in the file (tls = { cert, key }) [default: off; the packaged configuration: auto]
    #[arg(long, env = "ROBOCAST_TLS", value_name = "auto|off", global = true)]
    pub tls: Option<String>,
    /// The TURN server's shared secret (coturn's static-auth-secret): short-lived TURN credentials per session [default: none]
    #[arg(long, env = "ROBOCAST_TURN_SECRET", hide_env_values = true, value_name = "SECRET", global = true)]
    pub turn_secret: Option<String>,
    /// Offers a minute from one address without the operator token, after a burst of 20; 0 is no limit [default: 60]
    #[arg(long, env = "ROBOCAST_OFFERS_PER_MINUTE", value_name = "N", global = true)]
    pub offers_per_minute: Option<u32>,
    /// Sessions at once from one address without the operator token [default: 8]
    #[arg(long, env = "ROBOCAST_MAX_SESSIONS_PER_ADDRESS", value_name = "N", global = true)]
    pub max_sessions_per_address: Option<usize>,
}

/// `on`/`off` (also true/false, yes/no, 1/0).
fn parse_switch(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        other => Err(format!("`{other}` is neither on nor off")),
    }
}

impl Config {
    /// Builds the configuration from all layers and validates it.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut config = Config {
            control_socket: Some(crate::control::socket::default_path()),
            speaker: "auto".into(),
            display: "auto".into(),
            state_dir: crate::auth::default_state_dir(),
            ..Config::default()
        };
        if let Some(path) = &overrides.config {
            config.apply_file(&FileConfig::read(path)?)?;
        }
        config.apply_overrides(overrides)?;
        config.validate()?;
        Ok(config)
    }

    pub fn apply_file(&mut self, file: &FileConfig) -> Result<(), ConfigError> {
        self.apply(Layer {
            listen: file.listen.as_deref(),
            video: file.video.as_deref(),
            audio: file.audio.as_deref(),
            size: file.size.as_deref(),
            fps: file.fps,
            bitrate: file.bitrate,
            min_bitrate: file.min_bitrate,
            tiers: file.tiers,
            audio_bitrate: file.audio_bitrate,
            max_viewers: file.max_viewers,
            ice_servers: file.ice_servers.as_deref(),
            encoder: file.encoder.as_deref(),
            lip_sync: file.lip_sync,
            control_socket: file.control_socket.as_deref(),
            deadman_ms: file.deadman_ms,
            speaker: file.speaker.as_deref(),
            speaker_buffer_ms: file.speaker_buffer_ms,
            display: file.display.as_deref(),
            echo_cancel: file.echo_cancel,
            viewer_token: file.viewer_token.as_deref(),
            operator_token: file.operator_token.as_deref(),
            state_dir: file.state_dir.as_deref(),
            allowed_origins: file.allowed_origins.as_deref(),
            request_timeout_ms: file.request_timeout_ms,
            tls: file.tls.as_ref().map(|tls| match tls {
                FileTls::Mode(mode) => TlsLayer::Mode(mode),
                FileTls::Files(files) => TlsLayer::Files(&files.cert, &files.key),
            }),
            turn_secret: file.turn_secret.as_deref(),
            offers_per_minute: file.offers_per_minute,
            max_sessions_per_address: file.max_sessions_per_address,
        })
    }

    pub fn apply_overrides(&mut self, o: &Overrides) -> Result<(), ConfigError> {
        self.apply(Layer {
            listen: o.listen.as_deref(),
            video: o.video.as_deref(),
            audio: o.audio.as_deref(),
            size: o.size.as_deref(),
            fps: o.fps,
            bitrate: o.bitrate,
            min_bitrate: o.min_bitrate,
            tiers: o.tiers,
            audio_bitrate: o.audio_bitrate,
            max_viewers: o.max_viewers,
            ice_servers: (!o.ice_servers.is_empty()).then_some(o.ice_servers.as_slice()),
            encoder: o.encoder.as_deref(),
            lip_sync: o.lip_sync,
            control_socket: o.control_socket.as_deref(),
            deadman_ms: o.deadman_ms,
            speaker: o.speaker.as_deref(),
            speaker_buffer_ms: o.speaker_buffer_ms,
            display: o.display.as_deref(),
            echo_cancel: o.echo_cancel,
            viewer_token: o.viewer_token.as_deref(),
            operator_token: o.operator_token.as_deref(),
            state_dir: o.state_dir.as_deref(),
            allowed_origins: (!o.allowed_origins.is_empty()).then_some(o.allowed_origins.as_slice()),
            request_timeout_ms: o.request_timeout_ms,
            tls: o.tls.as_deref().map(TlsLayer::Mode),
            turn_secret: o.turn_secret.as_deref(),
            offers_per_minute: o.offers_per_minute,
            max_sessions_per_address: o.max_sessions_per_address,
        })
    }

    fn apply(&mut self, layer: Layer<'_>) -> Result<(), ConfigError> {
        if let Some(listen) = layer.listen {
            self.listen = listen.parse().map_err(|_| {
                invalid(
                    "listen",
                    format!("`{listen}` is not ADDR:PORT"),
                    "use e.g. 0.0.0.0:8080 or 127.0.0.1:8080",
                )
            })?;
        }
        if let Some(size) = layer.size {
            (self.width, self.height) = parse_size(size)?;
        }
        set(&mut self.video, layer.video.map(str::to_owned));
        set(&mut self.audio, layer.audio.map(str::to_owned));
        set(&mut self.fps, layer.fps);
        set(&mut self.bitrate_kbps, layer.bitrate);
        set(&mut self.min_bitrate_kbps, layer.min_bitrate);
        set(&mut self.tiers, layer.tiers);
        set(&mut self.audio_bitrate_kbps, layer.audio_bitrate);
        set(&mut self.max_viewers, layer.max_viewers);
        set(&mut self.ice_servers, layer.ice_servers.map(<[String]>::to_vec));
        set(&mut self.encoder, layer.encoder.map(str::to_owned));
        set(&mut self.lip_sync, layer.lip_sync);
        if let Some(socket) = layer.control_socket {
            self.control_socket = match socket.trim() {
                "off" | "none" => None,
                "auto" => Some(crate::control::socket::default_path()),
                "" => return Err(invalid("control_socket", "the path is empty", "give a path, or off")),
                path => Some(PathBuf::from(path)),
            };
        }
        set(&mut self.deadman_ms, layer.deadman_ms);
        set(&mut self.speaker, layer.speaker.map(str::to_owned));
        set(&mut self.speaker_buffer_ms, layer.speaker_buffer_ms);
        set(&mut self.display, layer.display.map(str::to_owned));
        set(&mut self.echo_cancel, layer.echo_cancel);
        let token = |field: &'static str, text: &str| {
            Token::new(text).map_err(|problem| {
                invalid(field, problem, "use a long random string, e.g. the output of `openssl rand -hex 32`")
            })
        };
        if let Some(text) = layer.viewer_token {
            self.viewer_token = Some(token("viewer_token", text)?);
        }
        if let Some(text) = layer.operator_token {
            self.operator_token = Some(token("operator_token", text)?);
        }
        if let Some(text) = layer.turn_secret {
            self.turn_secret = Some(token("turn_secret", text)?);
        }
        set(&mut self.allowed_origins, layer.allowed_origins.map(<[String]>::to_vec));
        set(&mut self.request_timeout_ms, layer.request_timeout_ms);
        set(&mut self.offers_per_minute, layer.offers_per_minute);
        set(&mut self.max_sessions_per_address, layer.max_sessions_per_address);
        match layer.tls {
            Some(TlsLayer::Mode(mode)) => {
                self.tls = TlsSetting::parse(mode).map_err(|problem| {
                    invalid(
                        "tls",
                        problem,
                        "use auto, off, or in the file tls = { cert = \"...\", key = \"...\" }",
                    )
                })?;
            }
            Some(TlsLayer::Files(cert, key)) => {
                if cert.trim().is_empty() || key.trim().is_empty() {
                    return Err(invalid("tls", "cert or key is empty", "give the paths of both PEM files"));
                }
                self.tls = TlsSetting::Files { cert: PathBuf::from(cert), key: PathBuf::from(key) };
            }
            None => {}
        }
        if let Some(dir) = layer.state_dir {
            if dir.trim().is_empty() {
                return Err(invalid("state_dir", "the path is empty", "give a directory robocast may write"));
            }
            self.state_dir = Some(PathBuf::from(dir));
        }
        Ok(())
    }

    /// Checks values that parse but cannot work; each error names the field and the fix.
    /// The bounds of each viewer's link estimate, bit/s: the video and audio bitrates at
    /// most (and at the start), and at least `min_bitrate` of video with the audio.
    pub fn link_bounds(&self) -> crate::congestion::Bounds {
        let audio = u64::from(self.audio_bitrate_kbps) * 1000;
        let max = u64::from(self.bitrate_kbps) * 1000 + audio;
        let min = (u64::from(self.min_bitrate_kbps.min(self.bitrate_kbps)) * 1000 + audio).min(max);
        crate::congestion::Bounds { min, start: max, max }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(16..=3840).contains(&self.width) || !(16..=2160).contains(&self.height) {
            return Err(invalid(
                "size",
                format!("{}x{} is out of range", self.width, self.height),
                "use a size between 16x16 and 3840x2160, e.g. 1280x720",
            ));
        }
        if !self.width.is_multiple_of(2) || !self.height.is_multiple_of(2) {
            return Err(invalid(
                "size",
                format!("{}x{} has an odd side", self.width, self.height),
                "H.264 needs even sides, e.g. 1280x720",
            ));
        }
        if !(1..=120).contains(&self.fps) {
            return Err(invalid("fps", format!("{} is out of range", self.fps), "use 1 to 120, e.g. 30"));
        }
        if !(50..=50_000).contains(&self.bitrate_kbps) {
            return Err(invalid(
                "bitrate",
                format!("{} kbit/s is out of range", self.bitrate_kbps),
                "use 50 to 50000 kbit/s, e.g. 2500",
            ));
        }
        // Above `bitrate`, `bitrate` is the least too (the encoder never moves).
        if !(50..=50_000).contains(&self.min_bitrate_kbps) {
            return Err(invalid(
                "min_bitrate",
                format!("{} kbit/s is out of range", self.min_bitrate_kbps),
                "use 50 to 50000 kbit/s, e.g. 150",
            ));
        }
        if !(1..=2).contains(&self.tiers) {
            return Err(invalid(
                "tiers",
                format!("{} tiers are not supported", self.tiers),
                "use 2 (a half-size picture for viewers on thin links) or 1 (one encoder for all)",
            ));
        }
        if !(6..=510).contains(&self.audio_bitrate_kbps) {
            return Err(invalid(
                "audio_bitrate",
                format!("{} kbit/s is out of range", self.audio_bitrate_kbps),
                "use 6 to 510 kbit/s, e.g. 64",
            ));
        }
        if !(50..=60_000).contains(&self.deadman_ms) {
            return Err(invalid(
                "deadman_ms",
                format!("{} ms is out of range", self.deadman_ms),
                "use 50 to 60000 ms, e.g. 300 (a command stream at 20 Hz sends every 50 ms)",
            ));
        }
        if !(10..=1000).contains(&self.speaker_buffer_ms) {
            return Err(invalid(
                "speaker_buffer_ms",
                format!("{} ms is out of range", self.speaker_buffer_ms),
                "use 10 to 1000 ms, e.g. 50 (more absorbs worse networks, and delays the voice as much)",
            ));
        }
        crate::media::playout::SpeakerSpec::parse(&self.speaker).map_err(|problem| {
            invalid("speaker", problem, "use auto, none, part of a sound card's name, or gst:<sink pipeline>")
        })?;
        crate::media::playout::DisplaySpec::parse(&self.display).map_err(|problem| {
            invalid("display", problem, "use auto, none, a sink element like kmssink, or gst:<sink pipeline>")
        })?;
        if self.viewer_token.is_some() && self.viewer_token == self.operator_token {
            return Err(invalid(
                "viewer_token",
                "it is the operator's token",
                "give viewers a token of their own, or unset viewer_token for open viewing",
            ));
        }
        if !(100..=300_000).contains(&self.request_timeout_ms) {
            return Err(invalid(
                "request_timeout_ms",
                format!("{} ms is out of range", self.request_timeout_ms),
                "use 100 to 300000 ms, e.g. 10000 (a slow mobile link sends an offer in well under a second)",
            ));
        }
        for origin in &self.allowed_origins {
            check_origin(origin).map_err(|problem| {
                invalid(
                    "allowed_origins",
                    problem,
                    "write an origin like https://dashboard.example:3000, or *",
                )
            })?;
        }
        if self.max_sessions_per_address == 0 {
            return Err(invalid(
                "max_sessions_per_address",
                "0 would refuse every viewer",
                "use at least 1, e.g. 8 (a family behind one router shares an address)",
            ));
        }
        if self.max_viewers == 0 {
            return Err(invalid("max_viewers", "0 would refuse everyone", "use at least 1, e.g. 16"));
        }
        crate::media::VideoSource::parse(&self.video).map_err(|e| {
            invalid(
                "video",
                e.to_string(),
                "use auto, test, v4l2:/dev/video0, libcamera, none or gst:<pipeline>",
            )
        })?;
        crate::media::AudioSource::parse(&self.audio).map_err(|e| {
            invalid("audio", e.to_string(), "use auto, test, alsa:<device>, pulse, none or gst:<pipeline>")
        })?;
        if !crate::media::encoder::is_h264_encoder(&self.encoder) {
            return Err(invalid(
                "encoder",
                format!("`{}` is not an H.264 encoder robocast knows", self.encoder),
                "use auto, v4l2h264enc, x264enc or openh264enc",
            ));
        }
        for url in &self.ice_servers {
            crate::rtc::IceServer::parse(url).map_err(|problem| {
                invalid("ice_servers", problem, "use stun:host:port or turn:user:password@host:port")
            })?;
        }
        Ok(())
    }
}

impl FileConfig {
    pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse { path: path.to_owned(), message })
    }

    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

/// One layer's values, borrowed, so the file and the flags share one `apply`.
struct Layer<'a> {
    listen: Option<&'a str>,
    video: Option<&'a str>,
    audio: Option<&'a str>,
    size: Option<&'a str>,
    fps: Option<u32>,
    bitrate: Option<u32>,
    min_bitrate: Option<u32>,
    tiers: Option<u8>,
    audio_bitrate: Option<u32>,
    max_viewers: Option<usize>,
    ice_servers: Option<&'a [String]>,
    encoder: Option<&'a str>,
    lip_sync: Option<bool>,
    control_socket: Option<&'a str>,
    deadman_ms: Option<u64>,
    speaker: Option<&'a str>,
    speaker_buffer_ms: Option<u32>,
    display: Option<&'a str>,
    echo_cancel: Option<bool>,
    viewer_token: Option<&'a str>,
    operator_token: Option<&'a str>,
    state_dir: Option<&'a str>,
    allowed_origins: Option<&'a [String]>,
    request_timeout_ms: Option<u64>,
    tls: Option<TlsLayer<'a>>,
    turn_secret: Option<&'a str>,
    offers_per_minute: Option<u32>,
    max_sessions_per_address: Option<usize>,
}

enum TlsLayer<'a> {
    Mode(&'a str),
    Files(&'a str, &'a str),
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// An origin as a browser sends it: `scheme://host[:port]`, no path; or `*`.
fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| format!("`{origin}` does not start with http:// or https://"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
        return Err(format!("`{origin}` is not an origin (no path, query or spaces)"));
    }
    Ok(())
}

/// Parses `WxH`, e.g. `1280x720`.
pub fn parse_size(size: &str) -> Result<(u32, u32), ConfigError> {
    let bad = || invalid("size", format!("`{size}` is not WxH"), "write it like 1280x720");
    let (w, h) = size.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    Ok((w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        let mut config = Config::default();
        let file = FileConfig::parse("size = \"640x480\"\nfps = 15\nvideo = \"test\"").expect("valid toml");
        config.apply_file(&file).expect("file applies");
        let flags = Overrides { fps: Some(25), ..Default::default() };
        config.apply_overrides(&flags).expect("flags apply");
        assert_eq!((config.width, config.height, config.fps, config.video.as_str()), (640, 480, 25, "test"));
        config.validate().expect("valid");
    }

    #[test]
    fn errors_name_field_and_fix() {
        let config = Config { fps: 0, ..Config::default() };
        let message = config.validate().expect_err("fps 0 is invalid").to_string();
        assert!(message.contains("`fps`") && message.contains("use 1 to 120"), "{message}");
        let err = parse_size("1280by720").expect_err("bad size").to_string();
        assert!(err.contains("`size`") && err.contains("1280x720"), "{err}");
        let err = FileConfig::parse("fsp = 3").expect_err("unknown key");
        assert!(err.contains("fsp"), "{err}");
    }

    #[test]
    fn the_link_bounds_come_from_the_bitrates() {
        let mut config = Config::default();
        let file =
            FileConfig::parse("bitrate = 1000\nmin_bitrate = 300\naudio_bitrate = 32").expect("valid toml");
        config.apply_file(&file).expect("file applies");
        let bounds = config.link_bounds();
        assert_eq!((bounds.min, bounds.start, bounds.max), (332_000, 1_032_000, 1_032_000));
        config.apply_overrides(&Overrides { min_bitrate: Some(5000), ..Default::default() }).expect("flags");
        assert_eq!(config.link_bounds().min, 1_032_000, "a least above the most is the most");
        let low = Config { min_bitrate_kbps: 10, ..Config::default() };
        let message = low.validate().expect_err("10 kbit/s").to_string();
        assert!(message.contains("`min_bitrate`") && message.contains("e.g. 150"), "{message}");
    }

    #[test]
    fn tiers_are_one_or_two() {
        let mut config = Config::default();
        assert_eq!(config.tiers, 2);
        config.apply_file(&FileConfig::parse("tiers = 1").expect("valid toml")).expect("file applies");
        assert_eq!(config.tiers, 1);
        config.apply_overrides(&Overrides { tiers: Some(3), ..Default::default() }).expect("flags apply");
        let message = config.validate().expect_err("3 tiers").to_string();
        assert!(message.contains("`tiers`") && message.contains("use 2"), "{message}");
    }
}
