//! Offer endpoints: `POST /api/connect` (RTCBot-style JSON or plain SDP), `POST /whep`;
//! and what every session's `Location` takes: trickle (`PATCH`) and the end (`DELETE`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, MAX_BODY};
use crate::http::ApiError;
use crate::media::H264Profile;
use crate::rtc::{self, AnswerOptions, Sendable};
use crate::sessions::{Role, SessionId};

const SDP: &str = "application/sdp";
const JSON: &str = "application/json";
const TRICKLE: &str = "application/trickle-ice-sdpfrag";

/// The RTCBot / `RTCSessionDescription` JSON shape.
#[derive(Deserialize)]
struct Description {
    sdp: String,
    #[serde(rename = "type")]
    kind: String,
}

/// The media type of the request, lower-case, without parameters.
fn content_type(headers: &HeaderMap) -> String {
    let value = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    value.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(MAX_BODY),
        _ => ApiError::bad_request(rejection.body_text(), "send the whole request body"),
    })
}

fn utf8(bytes: &Bytes) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("the body is not UTF-8 text", "send the SDP as text"))
}

/// What the robot can send now: the H.264 stream's real profile (robocast's encoders
/// make constrained baseline; a camera's own H.264 is read from its SPS).
fn sendable(app: &AppState) -> Sendable {
    Sendable {
        h264: app.hub.h264.as_ref().map(|f| f.h264_profile().unwrap_or(H264Profile::CONSTRAINED_BASELINE)),
        vp8: app.hub.vp8.is_some(),
        opus: app.hub.audio.is_some(),
    }
}

/// A new session: its id, the answer SDP and the ETag of its ICE state.
struct Opened {
    id: SessionId,
    answer: String,
    etag: String,
}

/// Reserves a slot, answers the offer and registers the session.
async fn open_session(app: &AppState, sdp: String, role: Role) -> Result<Opened, ApiError> {
    // A bad offer is a 400 even when every slot is taken.
    let offer = rtc::offer::Offer::parse(sdp, &sendable(app))?;
    let reservation = app.sessions.reserve(role).await.ok_or_else(|| {
        ApiError::Unavailable(
            format!("the viewer limit of {} is reached", app.config.max_viewers),
            "try again later, or raise max_viewers in the configuration",
        )
    })?;
    let id = reservation.id().clone();
    let span = tracing::info_span!("session", session_id = %id, ?role);
    let options = AnswerOptions { lip_sync: app.config.lip_sync };
    // Only /api/connect sessions carry data channels; WHEP is view-only.
    let (carried, member) = match role {
        Role::Full => {
            let (member, outbox) = app.control.join(id.clone()).await;
            (Some(rtc::Carried { member: member.clone(), outbox }), Some(member))
        }
        Role::Viewer => (None, None),
    };
    let answered = rtc::peer::answer(&app.engine, offer, &app.hub, &app.cancel, span, options, carried).await;
    if answered.is_err()
        && let Some(member) = &member
    {
        member.ended("the offer was refused").await;
    }
    let (answer, peer) = answered?;
    let etag = peer.etag.to_string();
    reservation.attach(peer);
    Ok(Opened { id, answer, etag })
}

fn sdp_created(location: String, opened: Opened) -> Response {
    let headers =
        [(header::CONTENT_TYPE, SDP.to_owned()), (header::LOCATION, location), (header::ETAG, opened.etag)];
    (StatusCode::CREATED, headers, opened.answer).into_response()
}

/// What a `/api/connect` body is, whatever its `Content-Type` says: RTCBot's client, for
/// one, posts JSON without a type (the browser sends `text/plain`).
fn sniff(kind: &str, raw: &[u8]) -> Option<&'static str> {
    match kind {
        SDP | JSON => return Some(if kind == SDP { SDP } else { JSON }),
        _ => {}
    }
    let start = raw.iter().position(|b| !b.is_ascii_whitespace()).map_or(&[][..], |i| &raw[i..]);
    if start.starts_with(b"{") {
        Some(JSON)
    } else if start.starts_with(b"v=") {
        Some(SDP)
    } else {
        None
    }
}

/// `POST /api/connect`: JSON in, JSON out; SDP in, `201` SDP out with `Location`.
pub async fn connect(
    State(app): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = body(raw)?;
    let kind = content_type(&headers);
    let Some(format) = sniff(&kind, &raw) else {
        return Err(ApiError::UnsupportedMediaType(
            kind,
            "application/json (RTCBot style) or application/sdp",
        ));
    };
    if format == SDP {
        let opened = open_session(&app, utf8(&raw)?, Role::Full).await?;
        return Ok(sdp_created(format!("/api/sessions/{}", opened.id), opened));
    }
    let offer: Description = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::bad_request(
            format!("the body is not an offer: {e}"),
            r#"send {"sdp": "<offer SDP>", "type": "offer"}, e.g. JSON.stringify(pc.localDescription)"#,
        )
    })?;
    if offer.kind != "offer" {
        return Err(ApiError::bad_request(
            format!("`type` is `{}`, robocast answers only offers", offer.kind),
            r#"send {"sdp": "...", "type": "offer"}"#,
        ));
    }
    let opened = open_session(&app, offer.sdp, Role::Full).await?;
    let body = json!({ "sdp": opened.answer, "type": "answer", "session": opened.id });
    Ok(([(header::ETAG, opened.etag)], Json(body)).into_response())
}

/// `POST /whep`: a view-only session (draft-ietf-wish-whep).
pub async fn whep(
    State(app): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let kind = content_type(&headers);
    if kind != SDP {
        return Err(ApiError::UnsupportedMediaType(kind, SDP));
    }
    let opened = open_session(&app, utf8(&body(raw)?)?, Role::Viewer).await?;
    Ok(sdp_created(format!("/whep/{}", opened.id), opened))
}

/// The session a `Location` names; any malformed id (bad hex, bad UTF-8) is a 404.
async fn find(app: &AppState, id: Result<Path<String>, PathRejection>) -> Result<rtc::PeerHandle, ApiError> {
    Ok(find_id(app, id).await?.1)
}

async fn find_id(
    app: &AppState,
    id: Result<Path<String>, PathRejection>,
) -> Result<(SessionId, rtc::PeerHandle), ApiError> {
    let id = id.map(|Path(id)| id).unwrap_or_default();
    let not_found = || ApiError::NotFound(id.chars().take(64).collect());
    let id = SessionId::parse(&id).ok_or_else(not_found)?;
    let peer = app.sessions.get(&id).await.ok_or_else(not_found)?;
    Ok((id, peer))
}

/// `POST /api/sessions/{id}/driver`: the session asks for the driver seat.
pub async fn take_seat(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (id, _) = find_id(&app, id).await?;
    match app.control.take_seat(&id).await {
        Ok(()) => Ok(Json(json!({ "driver": id }))),
        Err(refusal) => {
            let (error, hint) = refusal.describe();
            Err(ApiError::Conflict { error, hint, driver: refusal.driver().cloned() })
        }
    }
}

/// `DELETE /api/sessions/{id}/driver`: the session gives the seat up (if it has it).
pub async fn release_seat(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (id, _) = find_id(&app, id).await?;
    Ok(Json(json!({ "driver": app.control.release_seat(&id).await })))
}

/// `PATCH` on a session's `Location`: trickled ICE candidates (RFC 9725 §4.3.1). An
/// `If-Match` must name the session's ETag (or `*`); a new ICE username fragment (an ICE
/// restart) is refused with 422.
pub async fn trickle(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let kind = content_type(&headers);
    if kind != TRICKLE {
        return Err(ApiError::UnsupportedMediaType(kind, TRICKLE));
    }
    let peer = find(&app, id).await?;
    if let Some(given) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
        && given.trim() != "*"
        && given.trim() != &*peer.etag
    {
        return Err(ApiError::PreconditionFailed {
            given: given.trim().into(),
            current: peer.etag.to_string(),
        });
    }
    peer.add_trickle(&utf8(&body(raw)?)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE` on a session's `Location` (`/whep/{id}` or `/api/sessions/{id}`): ends it.
pub async fn end_session(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    find(&app, id).await?.close();
    Ok(StatusCode::OK)
}
