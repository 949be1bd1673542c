//! Offer endpoints: `POST /api/connect` (RTCBot-style JSON or plain SDP), `POST /whep`,
//! WHEP trickle (`PATCH`) and the end of a session (`DELETE`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, MAX_BODY};
use crate::http::ApiError;
use crate::rtc;
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

/// Reserves a slot, answers the offer and registers the session.
async fn open_session(app: &AppState, sdp: String, role: Role) -> Result<(SessionId, String), ApiError> {
    // A bad offer is a 400 even when every slot is taken.
    let offer = rtc::offer::Offer::parse(sdp)?;
    let reservation = app.sessions.reserve(role).await.ok_or_else(|| {
        ApiError::Unavailable(
            format!("the viewer limit of {} is reached", app.config.max_viewers),
            "try again later, or raise max_viewers in the configuration",
        )
    })?;
    let id = reservation.id().clone();
    let span = tracing::info_span!("session", session_id = %id, ?role);
    let (answer, peer) = rtc::peer::answer(&app.engine, offer, &app.hub, &app.cancel, span).await?;
    reservation.attach(peer);
    Ok((id, answer))
}

fn sdp_created(location: String, answer: String) -> Response {
    (StatusCode::CREATED, [(header::CONTENT_TYPE, SDP.to_owned()), (header::LOCATION, location)], answer)
        .into_response()
}

/// `POST /api/connect`: JSON in, JSON out; SDP in, `201` SDP out with `Location`.
pub async fn connect(
    State(app): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let kind = content_type(&headers);
    if kind != JSON && kind != SDP {
        return Err(ApiError::UnsupportedMediaType(
            kind,
            "application/json (RTCBot style) or application/sdp",
        ));
    }
    let raw = body(raw)?;
    if kind == SDP {
        let (id, answer) = open_session(&app, utf8(&raw)?, Role::Full).await?;
        return Ok(sdp_created(format!("/api/sessions/{id}"), answer));
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
    let (id, answer) = open_session(&app, offer.sdp, Role::Full).await?;
    Ok(Json(json!({ "sdp": answer, "type": "answer", "session": id })).into_response())
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
    let (id, answer) = open_session(&app, utf8(&body(raw)?)?, Role::Viewer).await?;
    Ok(sdp_created(format!("/whep/{id}"), answer))
}

async fn find(app: &AppState, id: &str) -> Result<rtc::PeerHandle, ApiError> {
    let not_found = || ApiError::NotFound(id.chars().take(64).collect());
    let id = SessionId::parse(id).ok_or_else(not_found)?;
    app.sessions.get(&id).await.ok_or_else(not_found)
}

/// `PATCH /whep/{id}`: trickled ICE candidates.
pub async fn trickle(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let kind = content_type(&headers);
    if kind != TRICKLE {
        return Err(ApiError::UnsupportedMediaType(kind, TRICKLE));
    }
    let peer = find(&app, &id).await?;
    peer.add_trickle(&utf8(&body(raw)?)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /whep/{id}` and `DELETE /api/sessions/{id}`: ends a session.
pub async fn end_session(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    find(&app, &id).await?.close();
    Ok(StatusCode::OK)
}
