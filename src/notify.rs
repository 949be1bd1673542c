//! systemd integration (`Type=notify`): `READY=1` once the HTTP server listens and the
//! pipelines are built, `STATUS=` lines saying what robocast is doing, and watchdog pings
//! sent from a runtime task, so they stop, and systemd restarts robocast, if the runtime
//! hangs. Outside systemd (`NOTIFY_SOCKET` unset) every call here does nothing.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::control::Control;
use crate::media::{MediaHub, PipelineState, PipelineStatus};
use crate::sessions::Sessions;

/// How long READY waits for the pipelines to be built (encoder probes, device opening);
/// a camera that is missing is reported in STATUS, and robocast is ready regardless.
const SETTLE_LIMIT: Duration = Duration::from_secs(20);

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "cannot notify systemd");
    }
}

/// What the control hub adds to the summary: who drives, who talks, how many programs listen.
#[derive(Default)]
struct Driving {
    driver: Option<String>,
    talker: Option<String>,
    programs: usize,
}

impl Driving {
    async fn of(control: &Control) -> Driving {
        let status = control.status().await;
        Driving {
            driver: status.as_ref().and_then(|s| s.driver.as_ref()).map(|d| d.to_string()),
            talker: status.as_ref().and_then(|s| s.talker.as_ref()).map(|t| t.to_string()),
            programs: status.map_or(0, |s| s.programs),
        }
    }
}

/// A one-line summary of the pipelines, viewers and driving, as `systemctl status` shows it.
fn summary(pipelines: &[PipelineStatus], viewers: usize, driving: &Driving) -> String {
    let tracks: Vec<String> = pipelines
        .iter()
        .map(|p| {
            let state = match p.state {
                PipelineState::Running => format!("{} via {}", p.source, p.encoder.as_deref().unwrap_or("?")),
                PipelineState::Retrying => {
                    format!("retrying {} ({})", p.source, p.error.as_deref().unwrap_or(""))
                }
                other => format!("{} {}", p.source, format!("{other:?}").to_lowercase()),
            };
            format!("{}: {state}", p.kind)
        })
        .collect();
    let driver = match &driving.driver {
        Some(id) => format!("{id} drives"),
        None => "nobody drives".into(),
    };
    let talker = driving.talker.as_ref().map(|t| format!("; {t} talks")).unwrap_or_default();
    format!("{}; {viewers} viewer(s); {driver}; {} program(s){talker}", tracks.join(", "), driving.programs)
}

/// Sends READY when the pipelines have settled, then STATUS on every change (checked
/// every 2 s) and watchdog pings, until `cancel`.
pub async fn run(hub: MediaHub, sessions: Sessions, control: Control, cancel: CancellationToken) {
    let _ = tokio::time::timeout(SETTLE_LIMIT, hub.settled()).await;
    let mut last = summary(&hub.status(), sessions.list().await.len(), &Driving::of(&control).await);
    send(&[NotifyState::Ready, NotifyState::Status(&last)]);
    tracing::info!(status = %last, "ready");
    // Ping at half the watchdog interval, as sd_watchdog_enabled(3) advises.
    let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
    let mut ping = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    let mut refresh = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
                return;
            }
            _ = ping.tick(), if watchdog.is_some() => send(&[NotifyState::Watchdog]),
            _ = refresh.tick() => {
                let now = summary(&hub.status(), sessions.list().await.len(), &Driving::of(&control).await);
                if now != last {
                    send(&[NotifyState::Status(&now)]);
                    last = now;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(kind: &'static str, source: &str, state: PipelineState) -> PipelineStatus {
        PipelineStatus {
            encoder: Some("x264enc".into()),
            state,
            error: Some("no /dev/video0".into()),
            ..PipelineStatus::new(kind, source)
        }
    }

    #[test]
    fn summary_names_each_track_and_keeps_the_source_as_written() {
        let pipelines = [
            status("video", "gst:videotestsrc ! video/x-raw,format=I420", PipelineState::Starting),
            status("audio", "test tone", PipelineState::Running),
        ];
        let driving = Driving {
            driver: Some("00000000000000ab".into()),
            talker: Some("00000000000000cd".into()),
            programs: 1,
        };
        assert_eq!(
            summary(&pipelines, 2, &driving),
            "video: gst:videotestsrc ! video/x-raw,format=I420 starting, audio: test tone via x264enc; \
             2 viewer(s); 00000000000000ab drives; 1 program(s); 00000000000000cd talks"
        );
        let retrying = [status("video", "v4l2:/dev/video0", PipelineState::Retrying)];
        assert_eq!(
            summary(&retrying, 0, &Driving::default()),
            "video: retrying v4l2:/dev/video0 (no /dev/video0); 0 viewer(s); nobody drives; 0 program(s)"
        );
    }
}
