//! Read-only REST endpoints: status, sessions, the page's client configuration, health.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{Method, Uri};
use serde_json::{Value, json};

use super::caller::Caller;
use super::{ApiError, AppState};
use crate::auth::Action;
use crate::media::Tiers;

/// `GET /api/status`: sources, chosen encoders, pipeline state, bitrate, viewers.
pub async fn status(State(app): State<AppState>, _watcher: Caller) -> Json<Value> {
    let sessions = app.sessions.list().await;
    let lower = |tiers: &Option<Arc<Tiers>>| tiers.as_ref().and_then(|t| t.feed(1).cloned());
    let (h264_lower, vp8_lower) = (lower(&app.hub.h264_tiers), lower(&app.hub.vp8_tiers));
    let feeds = [
        ("h264", app.hub.h264.as_ref()),
        ("h264_lower", h264_lower.as_ref()),
        ("vp8", app.hub.vp8.as_ref()),
        ("vp8_lower", vp8_lower.as_ref()),
        ("opus", app.hub.audio.as_ref()),
    ];
    let feeds: serde_json::Map<String, Value> = feeds
        .into_iter()
        .filter_map(|(name, feed)| {
            let stats = &feed?.stats;
            Some((
                name.to_owned(),
                json!({
                    "frames": stats.frames.load(Ordering::Relaxed),
                    "bytes": stats.bytes.load(Ordering::Relaxed),
                    "keyframes": stats.keyframes.load(Ordering::Relaxed),
                    "dropped_by_viewers": stats.dropped.load(Ordering::Relaxed),
                    "stale_for_viewers": stats.stale.load(Ordering::Relaxed),
                    "skipped_by_joiners": stats.joiner_skipped.load(Ordering::Relaxed),
                    "joins_from_kept_keyframe": stats.joins_replayed.load(Ordering::Relaxed),
                }),
            ))
        })
        .collect();
    let c = &app.config;
    let control = app.control.status().await;
    let mut talkback = json!(app.hub.playout.status());
    talkback["talker"] = json!(control.as_ref().and_then(|c| c.talker.clone()));
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": app.started.elapsed().as_secs(),
        "pipelines": app.hub.status(),
        "feeds": feeds,
        "video": { "width": c.width, "height": c.height, "fps": c.fps, "target_bitrate_kbps": c.bitrate_kbps },
        "viewers": sessions.len(),
        "max_viewers": c.max_viewers,
        "control": control,
        "talkback": talkback,
    }))
}

/// `GET /api/sessions`: who is connected, who drives and who talks.
pub async fn sessions(State(app): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.may(Action::ManageSessions)?;
    let control = app.control.status().await;
    let talker = control.as_ref().and_then(|c| c.talker.clone());
    let driver = control.and_then(|c| c.driver);
    let sessions: Vec<Value> = app
        .sessions
        .list()
        .await
        .into_iter()
        .map(|session| {
            let driving = driver.as_ref() == Some(&session.id);
            let mut value = json!(session);
            value["driving"] = json!(driving);
            value
        })
        .collect();
    Ok(Json(json!({ "sessions": sessions, "driver": driver, "talker": talker })))
}

/// `GET /api/config`: what the page needs before it makes an offer, for a request that
/// may watch (TURN credentials reach no one else): the ICE servers, and the role its
/// token gives, so the page can say why driving and talking are off.
pub async fn client_config(State(app): State<AppState>, Caller(access): Caller) -> Json<Value> {
    Json(json!({
        "ice_servers": app.engine.ice_servers(),
        "access": access,
        "viewing_open": app.tokens.viewing_is_open(),
    }))
}

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().chars().take(128).collect())
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed { method: method.to_string(), path: uri.path().chars().take(128).collect() }
}
