//! The log a robot owner reads (`journalctl -u robocast`): robocast's own events at
//! info; the libraries' chatter only when it is an error. webrtc-rs, for one, warns about
//! every normal session end ("Failed to close candidate", "mux: no endpoint", ...): at the
//! default level that is noise, and `ROBOCAST_LOG=debug` shows it again. Colour only when
//! the log goes to a terminal, never into a file or the journal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The filter when `ROBOCAST_LOG` is not set. A target matches by prefix, so `webrtc`
/// covers webrtc-rs's `webrtc_ice`, `webrtc_dtls`, `webrtc_srtp`, ... crates; the others
/// are its RTP/RTCP/SDP/STUN/TURN crates.
pub const DEFAULT_FILTER: &str =
    "warn,robocast=info,webrtc=error,interceptor=error,rtcp=error,rtp=error,sdp=error,stun=error,turn=error";

/// The filter of the one-shot commands (`check`, `devices`): their answer is on standard
/// output, so the log keeps to problems.
pub const COMMAND_FILTER: &str = "warn,webrtc=error";

/// `ROBOCAST_LOG` if set (any `tracing` filter: `debug`, `robocast=debug`, ...), else
/// `default`.
pub fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_env("ROBOCAST_LOG").unwrap_or_else(|_| EnvFilter::new(default))
}

/// Logs to standard error, in colour only if that is a terminal; `default` is the filter
/// unless `ROBOCAST_LOG` says otherwise.
pub fn init(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(filter(default))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
