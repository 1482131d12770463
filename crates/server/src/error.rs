//! Errors as `application/problem+json` (RFC 9457) with a stable `code`
//! member that clients and the console translate. Internal details never
//! leave the server: they go to the log with the request id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rapport_app::AppError;
use rapport_domain::FieldError;
use serde::Serialize;
use utoipa::ToSchema;

/// A problem details document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the `code` member identifies the problem.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Stable machine-readable code, e.g. `patient_exists`.
    pub code: String,
    /// Field errors, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<ProblemField>)]
    pub errors: Vec<FieldError>,
}

/// One field at fault.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub code: String,
    pub message: String,
}

/// An error answer (boxed: handlers return it in every `Result`).
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub Box<Problem>);

impl ApiError {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        ApiError(
            status,
            Box::new(Problem {
                kind: "about:blank",
                title: status.canonical_reason().unwrap_or("Error").to_string(),
                status: status.as_u16(),
                detail: Some(detail.into()),
                code: code.to_string(),
                errors: Vec::new(),
            }),
        )
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid bearer token or session cookie is required",
        )
    }

    /// A cookie request that changes something without proof that it
    /// comes from our own pages.
    pub fn csrf_failed(reason: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            format!("cross-site request refused: {reason}"),
        )
    }

    pub fn forbidden(permission: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this role lacks the permission {permission}"),
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "the request has invalid fields",
        );
        e.1.errors.push(FieldError {
            field: field.to_string(),
            code,
            message: message.into(),
        });
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.0, axum::Json(*self.1)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.0 == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was not read, so the connection cannot
            // carry another request: say so, or a client's pool reuses it
            // and its next request fails.
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.0 == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Validation(v) => {
                let mut a = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    v.summary(),
                );
                a.1.errors = v.0;
                a
            }
            AppError::NotFound(what) => ApiError::not_found(what),
            AppError::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            AppError::Forbidden => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", "not permitted")
            }
            AppError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "the login or the password is wrong",
            ),
            // 423 Locked: the account is locked for everyone, not this
            // client throttled (429).
            AppError::AccountLocked { until } => ApiError::new(
                StatusCode::LOCKED,
                "account_locked",
                format!(
                    "too many failed logins: the account is locked until {}",
                    until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            ),
            AppError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error occurred; it has been logged",
                )
            }
            AppError::Store(e) => {
                tracing::error!(error = %e, "store error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error occurred; it has been logged",
                )
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Documents on every operation the problems any route can answer
/// (malformed or oversized requests, missing credentials, a refused
/// permission, invalid fields), where the operation does not document
/// them itself, so the document lists every status a client can receive.
pub fn document_common_problems(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let problem = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    };
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            let mut codes = vec![
                ("400", "`malformed_json` or another unreadable request"),
                ("401", "`unauthenticated`: no valid credentials"),
                (
                    "403",
                    "`forbidden`: the caller's role lacks the permission; `csrf_failed` for cookie requests",
                ),
                ("404", "`not_found`"),
                (
                    "422",
                    "Invalid parameters or fields; `errors` names each one",
                ),
            ];
            if op.request_body.is_some() {
                codes.push(("413", "`payload_too_large`"));
                codes.push(("415", "`unsupported_media_type`: the body must be JSON"));
            }
            for (code, description) in codes {
                op.responses
                    .responses
                    .entry(code.to_string())
                    .or_insert_with(|| problem(description));
            }
        }
    }
}
