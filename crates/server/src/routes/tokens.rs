//! `/api/v1/tokens`: API tokens for integrations (admins only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use rapport_app::App;
use rapport_app::tokens;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// One of admin, manager, marketing, customer_service, membership_desk,
    /// doctor, analyst.
    pub role: String,
    /// What the token is for ("HIS sync").
    pub name: String,
}

/// A new token. `token` is shown this once; only its hash is stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewToken {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenOut {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Create an API token.
#[utoipa::path(post, path = "/tokens", tag = "tokens",
    request_body = CreateToken,
    responses((status = 201, body = NewToken), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(app): State<App>,
    ApiJson(b): ApiJson<CreateToken>,
) -> ApiResult<impl IntoResponse> {
    let (id, token) = tokens::create(&app, &b.role, &b.name).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(NewToken {
            id,
            name: b.name.trim().to_string(),
            role: b.role,
            token,
        }),
    ))
}

/// List API tokens (never the tokens themselves).
#[utoipa::path(get, path = "/tokens", tag = "tokens", responses((status = 200, body = Vec<TokenOut>)))]
pub async fn list(State(app): State<App>) -> ApiResult<axum::Json<Vec<TokenOut>>> {
    let all = tokens::list(&app).await?;
    Ok(axum::Json(
        all.into_iter()
            .map(|t| TokenOut {
                id: t.id,
                name: t.name,
                role: t.role,
                created_at: t.created_at,
                revoked_at: t.revoked_at,
            })
            .collect(),
    ))
}

/// Revoke an API token; it stops working at once.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn revoke(State(app): State<App>, ApiPath(id): ApiPath<i64>) -> ApiResult<StatusCode> {
    tokens::revoke(&app, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
