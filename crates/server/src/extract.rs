//! Extractors whose every rejection is a problem+json naming what is wrong.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body: 415 without a JSON content type, 413 when too large, 400
/// when not JSON, 422 naming the field when JSON of the wrong shape.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| {
                let v = v.trim().to_ascii_lowercase();
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            })
            .unwrap_or(false);
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the body is too large",
                )
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", e.body_text())
            }
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {e}"),
            )
        })?;
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(v) => Ok(ApiJson(v)),
            Err(e) => {
                let path = e.path().to_string();
                let msg = e.inner().to_string();
                // serde reports a missing field at the parent's path (an
                // unknown one at its own); name the field itself.
                let named = |prefix: &str| {
                    msg.strip_prefix(prefix)
                        .and_then(|r| r.split('`').next())
                        .map(|f| {
                            if path == "." {
                                f.to_string()
                            } else {
                                format!("{path}.{f}")
                            }
                        })
                };
                let (field, code) = if let Some(f) = named("missing field `") {
                    (f, "required")
                } else if msg.starts_with("unknown field `") {
                    (path.clone(), "unknown_field")
                } else if path == "." {
                    ("body".to_string(), "invalid_type")
                } else {
                    (path.clone(), "invalid_type")
                };
                let mut err = ApiError::invalid(&field, code, msg);
                err.1.code = "invalid_body".into();
                err.1.detail = Some(format!("{field}: {}", e.inner()));
                Err(err)
            }
        }
    }
}

/// Query parameters; 422 naming the problem when they do not parse.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| {
                let mut err = ApiError::invalid("query", "invalid_query", e.body_text());
                err.1.code = "invalid_query".into();
                err
            })
    }
}

/// Path parameters; an id that is not a number is 404 (no such resource).
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_| ApiError::not_found("resource"))
    }
}
