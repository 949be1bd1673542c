//! robocast makes a robot's camera and microphone reachable from any browser over WebRTC,
//! encoded once whatever the number of viewers.
//!
//! # Map
//!
//! ```text
//! media::pipeline (1 supervisor task per track, owns its GStreamer pipeline)
//!     source ─▶ rate limit ─▶ encoder ─▶ appsink ──publish──▶ media::Feed (broadcast,
//!          ▲                                         │        never blocks; keeps the
//!          │                                         │        last key frame for joiners)
//!          └── force-key-unit ◀── throttle ◀── request_keyframe (late joiner, PLI/FIR)
//!                                                    ▼ subscribe (one per viewer track)
//! http::serve (hyper) ─▶ router (axum, CORS) ── POST /api/connect, /whep ──▶ rtc::offer
//!      │                  (codec chosen from the offer) ─▶ rtc::peer::answer ─▶ rtc::pump
//!      └── /api/sessions, /api/status, PATCH/DELETE ──▶ sessions::Sessions (registry task)
//!
//! browser data channels ─▶ rtc::channels ─▶ control hub (seats, dead-man) ─▶ control::socket ─▶ programs
//!
//! browser / WHIP media ─▶ rtc::talk (talker seat asked of the control hub) ─▶ media::playout:
//!     Opus ─▶ opusdec ─▶ playout buffer ─▶ cpal or a gst: sink (▶ echo probe ─▶ webrtcdsp in the mic)
//!     H.264/VP8 ─▶ decoder (hardware first) ─▶ display sink (idle picture between talkers)
//! ```
//!
//! * [`media`] is the only module that touches GStreamer; [`rtc`] the only one that
//!   touches webrtc-rs; [`control`] touches neither. Between them travel robocast's own
//!   types: [`media::EncodedFrame`], [`media::Feed`], [`media::H264Profile`],
//!   [`sessions::SessionId`], [`control::Member`].
//! * State has owners: each pipeline supervisor owns its pipeline, the registry task owns
//!   the session map, the control hub owns the seats, the dead-man and every data-channel
//!   queue, each session's lifetime task owns its peer connection (built from a
//!   webrtc-rs API of its own, with exactly the codecs chosen from its offer). Counters
//!   that the streaming thread writes are atomics.
//! * GStreamer calls that can block run on tokio's blocking pool, never on the runtime's
//!   worker threads.
//! * Shutdown: one [`CancellationToken`]; every session and pipeline holds a child token,
//!   and [`Running::shutdown`] returns once every pipeline is stopped (bounded).
//!
//! # Errors and panics
//!
//! Nothing a client sends can panic the daemon: bad input becomes an [`http::ApiError`]
//! with a status and a hint. No `unwrap` on network or media paths; a failing pipeline is
//! rebuilt, a failing session ends alone.

pub mod auth;
pub mod check;
pub mod config;
pub mod congestion;
pub mod control;
pub mod http;
pub mod logging;
pub mod media;
pub mod notify;
pub mod rtc;
pub mod sessions;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// How long shutdown waits for the server and pipelines before giving up.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// A running daemon, started by [`spawn`].
pub struct Running {
    addr: SocketAddr,
    cancel: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    hub: media::MediaHub,
    /// The control socket's accept task; it removes the socket file when it ends.
    socket: Option<JoinHandle<()>>,
    tokens: Arc<auth::Tokens>,
    tls: Option<http::tls::Tls>,
}

impl Running {
    /// The address the HTTP server listens on (the real port when configured with `:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The operator token in force (configured, kept in the state directory or generated).
    pub fn operator_token(&self) -> &auth::Token {
        self.tokens.operator()
    }

    /// The SHA-256 fingerprint of the HTTPS certificate being served (`None`: plain HTTP).
    pub fn tls_fingerprint(&self) -> Option<String> {
        self.tls.as_ref().map(http::tls::Tls::fingerprint)
    }

    pub fn media(&self) -> &media::MediaHub {
        &self.hub
    }

    /// Ends every session and pipeline and waits, at most [`SHUTDOWN_DEADLINE`], for the
    /// server to stop and every pipeline to be set to `Null` (a camera is released).
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let hub = self.hub.clone();
        let stopped = async move {
            let _ = self.server.await;
            if let Some(socket) = self.socket {
                let _ = socket.await;
            }
            hub.stopped().await;
        };
        if tokio::time::timeout(SHUTDOWN_DEADLINE, stopped).await.is_err() {
            tracing::warn!("robocast did not stop within {SHUTDOWN_DEADLINE:?}; exiting anyway");
        }
    }
}

/// Starts pipelines, the session registry and the HTTP server; returns once listening.
pub async fn spawn(config: Config) -> anyhow::Result<Running> {
    config.validate()?;
    // Tokens before anything opens: an unusable state directory is an error at once.
    let (operator, origin) =
        auth::operator_token(config.operator_token.as_ref(), config.state_dir.as_deref())
            .map_err(|e| anyhow::anyhow!("{e}; {}", e.hint()))?;
    let cancel = CancellationToken::new();
    let names = http::tls::host_names(&rtc::host_addresses());
    let tls = http::tls::start(&config.tls, config.state_dir.as_deref(), &names, cancel.child_token())
        .map_err(|e| anyhow::anyhow!("{e}; {}", e.hint()))?;
    // The socket first: a path in use is an error before any camera is opened.
    let socket_name = config
        .control_socket
        .as_ref()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()).display().to_string());
    let control = control::Control::start(Duration::from_millis(config.deadman_ms), socket_name.clone());
    let socket = match &config.control_socket {
        Some(path) => {
            let listener = control::socket::bind(path).await?;
            let shown = socket_name.as_deref().unwrap_or_default();
            tracing::info!(path = %shown, "control socket: robot programs connect here");
            let serve = control::socket::serve(listener, path.clone(), control.clone(), cancel.child_token());
            Some(tokio::spawn(serve))
        }
        None => None,
    };
    let hub = media::MediaHub::start(&config, cancel.child_token())
        .await
        .map_err(|e| anyhow::anyhow!("{e}; {}", e.hint()))?;
    let engine = rtc::Engine::new(
        &config.ice_servers,
        config.turn_secret.clone(),
        config.link_bounds(),
        u64::from(config.audio_bitrate_kbps) * 1000,
    )?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (in use? try --listen 0.0.0.0:8081)", config.listen))?;
    let addr = listener.local_addr()?;
    let sessions = sessions::Sessions::start(config.max_viewers, config.max_sessions_per_address);
    tokio::spawn(notify::run(hub.clone(), sessions.clone(), control.clone(), cancel.child_token()));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let page = format!("{scheme}://{}/", display_addr(addr));
    if let Some(tls) = &tls {
        tracing::info!(
            "HTTPS certificate SHA-256 fingerprint {} (compare it with what the browser shows)",
            tls.fingerprint()
        );
    }
    match &origin {
        auth::Origin::Generated(path) => tracing::info!(
            "operator token generated into {}; open {page}#token={} to drive and talk (shown this once)",
            path.display(),
            operator.expose()
        ),
        auth::Origin::Kept(path) => {
            tracing::info!("operator token: in {} (open the page with #token=<it> to drive)", path.display())
        }
        auth::Origin::Ephemeral => {
            tracing::info!("operator token: generated for this run only (no state_dir)")
        }
        auth::Origin::Configured => {}
    }
    let tokens = Arc::new(auth::Tokens::new(config.viewer_token.clone(), operator));
    let state = http::AppState {
        tokens: Arc::clone(&tokens),
        offer_limit: Arc::new(http::limits::OfferLimit::new(config.offers_per_minute)),
        sessions,
        control,
        config: Arc::new(config),
        engine,
        hub: hub.clone(),
        cancel: cancel.child_token(),
        started: Instant::now(),
    };
    let request_timeout = Duration::from_millis(state.config.request_timeout_ms);
    let app = http::router(state);
    let stop = cancel.clone();
    let server = tokio::spawn(http::serve(listener, app, request_timeout, tls.clone(), stop));
    tracing::info!(%addr, "robocast listening: open {page}");
    Ok(Running { addr, cancel, server, hub, socket, tokens, tls })
}

/// Runs until `shutdown` resolves; the library form of `robocast` with no subcommand.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let running = spawn(config).await?;
    shutdown.await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// `0.0.0.0:8080` is not an address a browser can open; show `localhost:8080` instead.
fn display_addr(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() { format!("localhost:{}", addr.port()) } else { addr.to_string() }
}
