//! Who sent a request: the role its `Authorization: Bearer` token gives ([`Caller`]), and
//! the check of what that role may do ([`Caller::may`], after [`crate::auth::allows`]).

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::{ApiError, AppState};
use crate::auth::{self, Access, Action};

/// The role of the request's token. Extracting it answers `401` when viewing needs a
/// token and there is none, or when the token is wrong.
#[derive(Clone, Copy, Debug)]
pub struct Caller(pub Access);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Caller, ApiError> {
        let authorization = parts.headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
        app.tokens.check(authorization).map(Caller).map_err(ApiError::Unauthorized)
    }
}

/// The client's address (`None` for a request that did not come through the server, as
/// in a test that calls the router directly).
#[derive(Clone, Copy, Debug)]
pub struct Client(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Client, Self::Rejection> {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        Ok(Client(peer.map(|c| c.0.ip())))
    }
}

impl Caller {
    /// `403` unless the role may do `action`.
    pub fn may(self, action: Action) -> Result<(), ApiError> {
        if auth::allows(self.0, action) { Ok(()) } else { Err(ApiError::forbidden(self.0, action)) }
    }
}
