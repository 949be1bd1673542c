//! Offer endpoints: `POST /api/connect` (RTCBot-style JSON or plain SDP), `POST /whep`,
//! `POST /whip`;
//! and what every session's `Location` takes: trickle (`PATCH`) and the end (`DELETE`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::caller::{Caller, Client};
use super::{AppState, MAX_BODY};
use crate::auth::{Access, Action};
use crate::control::SeatKind;
use crate::http::ApiError;
use crate::media::H264Profile;
use crate::rtc::{self, AnswerOptions, Sendable};
use crate::sessions::{Refused, Role, SessionId};

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

fn utf8(bytes: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("the body is not UTF-8 text", "send the SDP as text"))
}

/// What the robot can send now: the H.264 stream's real profile (robocast's encoders
/// make constrained baseline; a camera's own H.264 is read from its SPS).
fn sendable(app: &AppState) -> Sendable {
    let playout = &app.hub.playout;
    let display = playout.display.is_some();
    Sendable {
        h264: app.hub.h264.as_ref().map(|f| f.h264_profile().unwrap_or(H264Profile::CONSTRAINED_BASELINE)),
        vp8: app.hub.vp8.is_some(),
        opus: app.hub.audio.is_some(),
        play_h264: display,
        play_vp8: display,
        play_opus: playout.speaker.is_some(),
    }
}

/// A new session: its id, the answer SDP and the ETag of its ICE state.
struct Opened {
    id: SessionId,
    answer: String,
    etag: String,
}

/// Reserves a slot, answers the offer and registers the session, opened with `access`
/// from `client`.
async fn open_session(
    app: &AppState,
    sdp: String,
    role: Role,
    access: Access,
    client: Client,
) -> Result<Opened, ApiError> {
    // Offers from one address come at a bounded rate, but for the operator's.
    if let (Access::Viewer, Some(address)) = (access, client.0) {
        app.offer_limit.take(address, std::time::Instant::now()).map_err(|wait| {
            ApiError::TooMany(
                format!("too many offers from {address}"),
                Some(wait),
                "wait as long as Retry-After says; robocast takes a burst of 20 offers, then offers_per_minute",
            )
        })?;
    }
    // A bad offer is a 400 even when every slot is taken.
    let offer = rtc::offer::Offer::parse(sdp, &sendable(app))?;
    let reservation =
        app.sessions.reserve(role, access, client.0).await.map_err(|refused| match refused {
            Refused::Full { .. } => ApiError::Unavailable(
                refused.to_string(),
                "try again later, or raise max_viewers in the configuration",
            ),
            Refused::PerAddress { .. } => ApiError::TooMany(
                refused.to_string(),
                None,
                "end a session first (DELETE its Location), or raise max_sessions_per_address",
            ),
            Refused::Random(_) | Refused::Stopped => ApiError::Internal(refused.to_string()),
        })?;
    let id = reservation.id().clone();
    // WHIP pushes media to the speaker and display: one talker at a time, decided now.
    if role == Role::Talker {
        app.control
            .take_seat(SeatKind::Talker, &id, access)
            .await
            .map_err(|refusal| ApiError::from((SeatKind::Talker, refusal)))?;
    }
    let span = tracing::info_span!("session", session_id = %id, ?role);
    let options = AnswerOptions { lip_sync: app.config.lip_sync };
    // Only /api/connect sessions carry data channels; WHEP is view-only and cannot talk.
    let (carried, member) = match role {
        Role::Full => {
            let (member, outbox) = app.control.join(id.clone(), access).await;
            (Some(rtc::Carried { member: member.clone(), outbox }), Some(member))
        }
        Role::Viewer | Role::Talker => (None, None),
    };
    let talk = (role != Role::Viewer).then(|| rtc::TalkContext {
        id: id.clone(),
        access,
        control: app.control.clone(),
        playout: app.hub.playout.clone(),
    });
    let attached = rtc::Attached { carried, talk };
    let answered =
        rtc::peer::answer(&app.engine, offer, &app.hub, &app.cancel, span, options, attached).await;
    if answered.is_err() {
        if let Some(member) = &member {
            member.ended("the offer was refused").await;
        }
        if role == Role::Talker {
            app.control.release_seat(SeatKind::Talker, &id).await;
        }
    }
    let (answer, peer) = answered?;
    if role == Role::Talker {
        peer.talk_claimed();
    }
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

/// What a `/api/connect` body offers: the SDP, and whether it came as JSON (then the
/// answer goes back as JSON too). `content_type` is the request's media type, lower-case,
/// without parameters. Pure, so it can be fuzzed (`fuzz/`, target `connect_body`).
pub fn read_connect_body(content_type: &str, body: &[u8]) -> Result<(String, bool), ApiError> {
    let Some(format) = sniff(content_type, body) else {
        return Err(ApiError::UnsupportedMediaType(
            content_type.to_owned(),
            "application/json (RTCBot style) or application/sdp",
        ));
    };
    if format == SDP {
        return Ok((utf8(body)?, false));
    }
    // Read as a whole object first: serde_json skips the fields a struct ignores without
    // checking them (invalid UTF-8 or a lone surrogate inside an unknown field passed),
    // and serde reads a struct from an array too (`["v=0...","offer"]`); neither is an
    // offer. Found by fuzzing (targets `connect_body`, `socket_line`).
    let object = serde_json::from_slice::<serde_json::Map<String, Value>>(body);
    let offer = object.and_then(|object| Description::deserialize(Value::Object(object))).map_err(|e| {
        ApiError::bad_request(
            format!("the body is not an offer: {e}"),
            r#"send {"sdp": "<offer SDP>", "type": "offer"}, e.g. JSON.stringify(pc.localDescription)"#,
        )
    })?;
    if crate::control::has_private_key(body) {
        return Err(ApiError::bad_request(
            format!("the body uses the key `{}`, which robocast cannot read", crate::control::RAW_VALUE_KEY),
            r#"send {"sdp": "<offer SDP>", "type": "offer"}"#,
        ));
    }
    if offer.kind != "offer" {
        return Err(ApiError::bad_request(
            format!("`type` is `{}`, robocast answers only offers", offer.kind),
            r#"send {"sdp": "...", "type": "offer"}"#,
        ));
    }
    Ok((offer.sdp, true))
}

/// `POST /api/connect`: JSON in, JSON out; SDP in, `201` SDP out with `Location`.
pub async fn connect(
    State(app): State<AppState>,
    client: Client,
    Caller(access): Caller,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = body(raw)?;
    let (sdp, as_json) = read_connect_body(&content_type(&headers), &raw)?;
    let opened = open_session(&app, sdp, Role::Full, access, client).await?;
    if !as_json {
        return Ok(sdp_created(format!("/api/sessions/{}", opened.id), opened));
    }
    let body = json!({ "sdp": opened.answer, "type": "answer", "session": opened.id, "access": access });
    Ok(([(header::ETAG, opened.etag)], Json(body)).into_response())
}

/// `POST /whep`: a view-only session (draft-ietf-wish-whep).
pub async fn whep(
    State(app): State<AppState>,
    client: Client,
    Caller(access): Caller,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let kind = content_type(&headers);
    if kind != SDP {
        return Err(ApiError::UnsupportedMediaType(kind, SDP));
    }
    let opened = open_session(&app, utf8(&body(raw)?)?, Role::Viewer, access, client).await?;
    Ok(sdp_created(format!("/whep/{}", opened.id), opened))
}

/// `POST /whip`: media pushed to the robot's speaker and display (RFC 9725).
pub async fn whip(
    State(app): State<AppState>,
    client: Client,
    caller: Caller,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.may(Action::Talk)?;
    let kind = content_type(&headers);
    if kind != SDP {
        return Err(ApiError::UnsupportedMediaType(kind, SDP));
    }
    let sdp = utf8(&body(raw)?)?;
    let playable = sendable(&app);
    if !playable.play_opus && !playable.play_h264 {
        return Err(ApiError::Unavailable(
            "this robot has neither a speaker nor a display".into(),
            "set `speaker` and `display` in the configuration (robocast devices lists them)",
        ));
    }
    let info = rtc::offer::inspect(&sdp, &playable)?;
    if info.talk_audio.is_none() && info.talk_video.is_none() {
        return Err(ApiError::bad_request(
            "the offer sends nothing robocast can play",
            "send Opus audio or H.264/VP8 video on sendonly sections (a WHIP client does)",
        ));
    }
    let opened = open_session(&app, sdp, Role::Talker, caller.0, client).await?;
    Ok(sdp_created(format!("/whip/{}", opened.id), opened))
}

/// The session a `Location` names, when `caller` may use it (`403` for a viewer's
/// request on an operator's session); any malformed id (bad hex, bad UTF-8) is a 404.
async fn find(
    app: &AppState,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<(SessionId, rtc::PeerHandle, Access), ApiError> {
    let id = id.map(|Path(id)| id).unwrap_or_default();
    let not_found = || ApiError::NotFound(id.chars().take(64).collect());
    let id = SessionId::parse(&id).ok_or_else(not_found)?;
    let (peer, owner) = app.sessions.get(&id).await.ok_or_else(not_found)?;
    caller.may(Action::UseOwnSession { owner })?;
    Ok((id, peer, owner))
}

/// `POST /api/sessions/{id}/driver`: the session asks for the driver seat.
pub async fn take_driver(
    app: State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    take(app, caller, id, SeatKind::Driver).await
}

/// `DELETE /api/sessions/{id}/driver`: the session gives the seat up (if it has it).
pub async fn release_driver(
    app: State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    release(app, caller, id, SeatKind::Driver).await
}

/// `POST /api/sessions/{id}/talker`: the session asks for the speaker and display before
/// it sends (its media arriving takes the seat too).
pub async fn take_talker(
    app: State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    take(app, caller, id, SeatKind::Talker).await
}

/// `DELETE /api/sessions/{id}/talker`: the session stops talking.
pub async fn release_talker(
    app: State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    release(app, caller, id, SeatKind::Talker).await
}

fn seat_action(seat: SeatKind) -> Action {
    match seat {
        SeatKind::Driver => Action::Drive,
        SeatKind::Talker => Action::Talk,
    }
}

/// A seat for the session: the request needs the operator's token, and the hub gives the
/// seat only to a session that was opened with it.
async fn take(
    State(app): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    seat: SeatKind,
) -> Result<Json<Value>, ApiError> {
    caller.may(seat_action(seat))?;
    let (id, peer, owner) = find(&app, caller, id).await?;
    app.control.take_seat(seat, &id, owner).await.map_err(|refusal| ApiError::from((seat, refusal)))?;
    if seat == SeatKind::Talker {
        peer.talk_claimed();
    }
    Ok(Json(json!({ seat.as_str(): id })))
}

async fn release(
    State(app): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    seat: SeatKind,
) -> Result<Json<Value>, ApiError> {
    let (id, peer, _) = find(&app, caller, id).await?;
    let holder = app.control.release_seat(seat, &id).await;
    if seat == SeatKind::Talker {
        peer.talk_released();
    }
    Ok(Json(json!({ seat.as_str(): holder })))
}

/// `PATCH` on a session's `Location`: trickled ICE candidates (RFC 9725 §4.3.1). An
/// `If-Match` must name the session's ETag (or `*`); a new ICE username fragment (an ICE
/// restart) is refused with 422.
pub async fn trickle(
    State(app): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let kind = content_type(&headers);
    if kind != TRICKLE {
        return Err(ApiError::UnsupportedMediaType(kind, TRICKLE));
    }
    let (_, peer, _) = find(&app, caller, id).await?;
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

/// `DELETE` on a session's `Location` (`/whep/{id}`, `/whip/{id}` or
/// `/api/sessions/{id}`): ends it. A viewer may end its own session; an operator any.
/// `GET /api/sessions/{id}`: one session as `/api/sessions` lists it (its link estimate,
/// tier, frames), for whoever may end it: the session itself (the page shows its own link)
/// or an operator.
pub async fn show_session(
    State(app): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let (id, _, _) = find(&app, caller, id).await?;
    let info = app.sessions.list().await.into_iter().find(|s| s.id == id);
    let info = info.ok_or_else(|| ApiError::NotFound(id.to_string()))?;
    Ok(Json(serde_json::json!(info)))
}

pub async fn end_session(
    State(app): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    find(&app, caller, id).await?.1.close();
    Ok(StatusCode::OK)
}
