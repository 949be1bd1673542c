//! The one HTTP error type: every failure a client can cause maps to a status and a JSON
//! body `{"error", "hint"}`; internal failures are logged and answered without details.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::{Access, Action, Denied};
use crate::rtc::RtcError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{error}")]
    BadRequest { error: String, hint: String },
    #[error("unsupported content type `{0}`")]
    UnsupportedMediaType(String, &'static str),
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request body did not arrive within {} ms", .0.as_millis())]
    Timeout(std::time::Duration),
    /// Too many offers or sessions from one address: `429`, with `Retry-After` when a
    /// wait helps.
    #[error("{0}")]
    TooMany(String, Option<std::time::Duration>, &'static str),
    #[error("no such session `{0}`")]
    NotFound(String),
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("If-Match {given} does not match the session's ETag {current}")]
    PreconditionFailed { given: String, current: String },
    #[error("{0}")]
    Unprocessable(String, &'static str),
    #[error("{0}")]
    Unavailable(String, &'static str),
    /// A seat is taken (or cannot be given): the body also names who holds it, as
    /// `"driver"` or `"talker"`.
    #[error("{error}")]
    Conflict {
        error: String,
        hint: &'static str,
        seat: crate::control::SeatKind,
        holder: Option<crate::sessions::SessionId>,
    },
    /// No usable token: `401` with `WWW-Authenticate: Bearer`.
    #[error("{}", unauthorized_error(*.0))]
    Unauthorized(Denied),
    /// The token is right, its role too small: `403`.
    #[error("{0}")]
    Forbidden(String, &'static str),
    #[error("internal error")]
    Internal(String),
}

fn unauthorized_error(denied: Denied) -> &'static str {
    match denied {
        Denied::Missing => "watching this robot needs a token",
        Denied::Wrong => "the token is not valid here",
        Denied::Malformed => "the Authorization header is not `Bearer <token>`",
    }
}

impl ApiError {
    pub fn bad_request(error: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError::BadRequest { error: error.into(), hint: hint.into() }
    }

    /// The role `access` lacks for `action`, and how to get it.
    pub fn forbidden(access: Access, action: Action) -> ApiError {
        let what = match action {
            Action::Watch => "watching",
            Action::Drive => "driving",
            Action::Message => "sending messages to the robot",
            Action::Talk => "talking through the robot",
            Action::ManageSessions => "listing and changing other sessions",
            Action::UseOwnSession { .. } => "changing an operator's session",
        };
        ApiError::Forbidden(
            format!("{what} needs the operator token; this request has the {} role", access.as_str()),
            "send Authorization: Bearer <operator token> (the page: open it with #token=<operator token>)",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status_and_hint().0
    }

    fn status_and_hint(&self) -> (StatusCode, String) {
        match self {
            ApiError::BadRequest { hint, .. } => (StatusCode::BAD_REQUEST, hint.clone()),
            ApiError::UnsupportedMediaType(_, accepted) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("send Content-Type: {accepted}"))
            }
            ApiError::TooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "an offer is a few kilobytes; send only the SDP".into())
            }
            ApiError::Timeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "send the whole request at once (request_timeout_ms sets how long robocast waits)".into(),
            ),
            ApiError::TooMany(_, _, hint) => (StatusCode::TOO_MANY_REQUESTS, (*hint).into()),
            ApiError::NotFound(_) => (
                StatusCode::NOT_FOUND,
                "the session ended or never existed; GET /api/sessions lists them".into(),
            ),
            ApiError::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, "the Allow header lists the methods this path takes".into())
            }
            ApiError::PreconditionFailed { .. } => (
                StatusCode::PRECONDITION_FAILED,
                "send the ETag robocast gave with the answer in If-Match, or If-Match: *".into(),
            ),
            ApiError::Unprocessable(_, hint) => (StatusCode::UNPROCESSABLE_ENTITY, (*hint).into()),
            ApiError::Unavailable(_, hint) => (StatusCode::SERVICE_UNAVAILABLE, (*hint).into()),
            ApiError::Conflict { hint, .. } => (StatusCode::CONFLICT, (*hint).into()),
            ApiError::Unauthorized(Denied::Missing) => (
                StatusCode::UNAUTHORIZED,
                "send Authorization: Bearer <viewer or operator token> (the page: open it with #token=<token>)".into(),
            ),
            ApiError::Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "send Authorization: Bearer <token> with the viewer or operator token from the robot's configuration \
                 (the operator's is in operator-token in robocast's state directory)"
                    .into(),
            ),
            ApiError::Forbidden(_, hint) => (StatusCode::FORBIDDEN, (*hint).into()),
            ApiError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "see the robocast log (journalctl -u robocast)".into())
            }
        }
    }
}

impl From<(crate::control::SeatKind, crate::control::Refusal)> for ApiError {
    fn from((seat, refusal): (crate::control::SeatKind, crate::control::Refusal)) -> ApiError {
        let (error, hint) = refusal.describe();
        if let crate::control::Refusal::NotOperator(_) = refusal {
            return ApiError::Forbidden(error, hint);
        }
        ApiError::Conflict { error, hint, seat, holder: refusal.holder().map(|(_, id)| id.clone()) }
    }
}

impl From<RtcError> for ApiError {
    fn from(e: RtcError) -> ApiError {
        match e {
            RtcError::BadOffer { problem, hint } => ApiError::BadRequest { error: problem, hint },
            RtcError::IceRestart => ApiError::Unprocessable(
                "ICE restarts are not supported: the fragment has a new ice-ufrag".into(),
                "end this session (DELETE) and POST a new offer; trickle candidates with the original ice-ufrag",
            ),
            RtcError::Internal(detail) => ApiError::Internal(detail),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, hint) = self.status_and_hint();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "request failed");
        } else {
            tracing::debug!(%status, error = %self, "request refused");
        }
        let mut body = json!({ "error": self.to_string(), "hint": hint });
        if let ApiError::Conflict { seat, holder, .. } = &self {
            body[seat.as_str()] = json!(holder);
        }
        let mut response = (status, Json(body)).into_response();
        if let ApiError::TooMany(_, Some(wait), _) = &self {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds.max(1)));
        }
        if let ApiError::Unauthorized(denied) = &self {
            // RFC 6750 §3: what the client should send, and why this one failed.
            let challenge = match denied {
                Denied::Missing => r#"Bearer realm="robocast""#,
                Denied::Wrong => r#"Bearer realm="robocast", error="invalid_token""#,
                Denied::Malformed => r#"Bearer realm="robocast", error="invalid_request""#,
            };
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
