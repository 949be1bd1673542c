//! The HTTP server: the robot page, the offer endpoints and the REST API.
//!
//! [`router`] is a plain function of the application state, so handlers are tested with
//! `tower::ServiceExt::oneshot` without a socket, and the daemon serves the same router.

mod api;
mod assets;
mod caller;
pub mod error;
pub mod limits;
mod offer;
mod serve;
pub mod tls;
mod wire;

pub use offer::read_connect_body;
pub use serve::serve;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, patch, post};
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use error::ApiError;

use crate::config::Config;
use crate::control::Control;
use crate::media::MediaHub;
use crate::rtc::Engine;
use crate::sessions::Sessions;

/// Largest request body: offers are a few kilobytes; this leaves room for many candidates.
pub const MAX_BODY: usize = 64 * 1024;

/// Everything a handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// The tokens requests are checked against.
    pub tokens: Arc<crate::auth::Tokens>,
    /// Offers per minute from one address.
    pub offer_limit: Arc<limits::OfferLimit>,
    pub engine: Arc<Engine>,
    pub hub: MediaHub,
    pub sessions: Sessions,
    pub control: Control,
    /// Parent of every session's token: cancelling it ends them all (shutdown).
    pub cancel: CancellationToken,
    pub started: Instant,
}

pub fn router(state: AppState) -> Router {
    let cors = cors(&state.config.allowed_origins);
    Router::new()
        .route("/", get(assets::index))
        .route("/robocast.js", get(assets::client_js))
        .route("/robocast-channels.js", get(assets::client_channels_js))
        .route("/robocast-drive.js", get(assets::client_drive_js))
        .route("/robocast-talk.js", get(assets::client_talk_js))
        .route("/robocast-http.js", get(assets::client_http_js))
        .route("/robocast-input.js", get(assets::client_input_js))
        .route("/robocast-media.js", get(assets::client_media_js))
        .route("/app.js", get(assets::app_js))
        .route("/style.css", get(assets::style_css))
        .route("/favicon.svg", get(assets::favicon))
        .route("/favicon.ico", get(assets::favicon))
        .route("/api/config", get(api::client_config))
        .route("/api/connect", post(offer::connect))
        .route("/api/sessions", get(api::sessions))
        .route(
            "/api/sessions/{id}",
            get(offer::show_session).patch(offer::trickle).delete(offer::end_session),
        )
        .route("/api/sessions/{id}/driver", post(offer::take_driver).delete(offer::release_driver))
        .route("/api/sessions/{id}/talker", post(offer::take_talker).delete(offer::release_talker))
        .route("/api/status", get(api::status))
        .route("/whep", post(offer::whep))
        .route("/whep/{id}", patch(offer::trickle).delete(offer::end_session))
        .route("/whip", post(offer::whip))
        .route("/whip/{id}", patch(offer::trickle).delete(offer::end_session))
        .route("/healthz", get(api::healthz))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            Duration::from_millis(state.config.request_timeout_ms),
            read_body,
        ))
        .layer(cors)
        .layer(axum::middleware::map_response(accept_post))
        .with_state(state)
}

/// Reads the whole body (at most [`MAX_BODY`]) within `deadline` before any handler runs:
/// a body trickled at a byte a second is cut off (`408`, connection closed) instead of
/// holding its task for as long as the client likes.
async fn read_body(
    State(deadline): State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(deadline, axum::body::to_bytes(body, MAX_BODY)).await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return ApiError::TooLarge(MAX_BODY).into_response(),
        Err(_) => {
            let mut response = ApiError::Timeout(deadline).into_response();
            let close = axum::http::HeaderValue::from_static("close");
            response.headers_mut().insert(axum::http::header::CONNECTION, close);
            return response;
        }
    };
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

/// WHIP and WHEP clients learn what to post from `OPTIONS` (RFC 9725 §4.1): the CORS
/// layer answers every `OPTIONS`; this adds `Accept-Post` on the offer endpoints.
async fn accept_post(
    method: axum::http::Method,
    uri: axum::http::Uri,
    mut response: axum::response::Response,
) -> axum::response::Response {
    if method == axum::http::Method::OPTIONS && matches!(uri.path(), "/whip" | "/whep") {
        let sdp = axum::http::HeaderValue::from_static("application/sdp");
        response.headers_mut().insert(axum::http::HeaderName::from_static("accept-post"), sdp);
    }
    response
}

/// Browsers on another origin send a preflight first and read only the headers exposed
/// here. A WHEP or WHIP player on any origin works (its token is a header, never a
/// cookie); the rest (a dashboard, a page using `/robocast.js` with `base`) only from
/// `allowed_origins`.
fn cors(allowed: &[String]) -> CorsLayer {
    use axum::http::{HeaderValue, Method, header};
    let any = allowed.iter().any(|o| o == "*");
    let allowed: Vec<HeaderValue> = allowed.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    let origin = AllowOrigin::predicate(move |origin: &HeaderValue, request: &axum::http::request::Parts| {
        let path = request.uri.path();
        let ingest = ["/whep", "/whip"].iter().any(|p| path == *p || path.starts_with(&format!("{p}/")));
        any || ingest || allowed.contains(origin)
    });
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::IF_MATCH])
        .expose_headers([
            header::LOCATION,
            header::LINK,
            header::ETAG,
            header::HeaderName::from_static("accept-post"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}
