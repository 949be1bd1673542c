//! The one HTTP error type: every failure a client can cause maps to a status and a JSON
//! body `{"error", "hint"}`; internal failures are logged and answered without details.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::rtc::RtcError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{error}")]
    BadRequest { error: String, hint: String },
    #[error("unsupported content type `{0}`")]
    UnsupportedMediaType(String, &'static str),
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
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
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(error: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError::BadRequest { error: error.into(), hint: hint.into() }
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
            ApiError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "see the robocast log (journalctl -u robocast)".into())
            }
        }
    }
}

impl From<(crate::control::SeatKind, crate::control::Refusal)> for ApiError {
    fn from((seat, refusal): (crate::control::SeatKind, crate::control::Refusal)) -> ApiError {
        let (error, hint) = refusal.describe();
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
        (status, Json(body)).into_response()
    }
}
