//! The acting principal and its address, for the audit log.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use rapport_app::audit::Actor;
use rapport_app::principal::Principal;

use crate::error::ApiError;

/// The caller of a guarded route as an audit actor. Also gives the
/// principal, for decisions such as masking.
pub struct Who {
    pub actor: Actor,
    pub principal: Principal,
}

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(ApiError::unauthenticated)?;
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        Ok(Who {
            actor: Actor::from_principal(&principal, ip),
            principal,
        })
    }
}
