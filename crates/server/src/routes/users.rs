//! `/api/v1/users`: staff accounts (admins only). Accounts are deactivated,
//! never deleted.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use rapport_app::App;
use rapport_app::users;
use rapport_app::users::UserRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath};

/// A staff account (never its password).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: i64,
    /// Lowercase; logins are case-insensitive.
    pub login: String,
    pub display_name: String,
    pub role: String,
    pub active: bool,
    /// Consecutive failed logins.
    pub failed_logins: i64,
    /// Set while the account is locked after failed logins.
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub password_changed_at: DateTime<Utc>,
}

impl From<UserRecord> for UserOut {
    fn from(u: UserRecord) -> Self {
        UserOut {
            id: u.id,
            login: u.login,
            display_name: u.display_name,
            role: u.role,
            active: u.active,
            failed_logins: u.failed_logins,
            locked_until: u.locked_until,
            created_at: u.created_at,
            password_changed_at: u.password_changed_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub login: String,
    /// One of admin, manager, marketing, customer_service, membership_desk,
    /// doctor, analyst.
    pub role: String,
    /// Defaults to the login.
    pub display_name: Option<String>,
    /// At least 12 characters, not the login.
    pub password: String,
}

/// Create a staff account.
#[utoipa::path(post, path = "/users", tag = "users",
    request_body = CreateUser,
    responses((status = 201, body = UserOut),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`user_exists`"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(app): State<App>,
    ApiJson(b): ApiJson<CreateUser>,
) -> ApiResult<impl IntoResponse> {
    let u = users::create(
        &app,
        &b.login,
        &b.role,
        b.display_name.as_deref(),
        &b.password,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(UserOut::from(u))))
}

/// List staff accounts.
#[utoipa::path(get, path = "/users", tag = "users", responses((status = 200, body = Vec<UserOut>)))]
pub async fn list(State(app): State<App>) -> ApiResult<axum::Json<Vec<UserOut>>> {
    let all = users::list(&app).await?;
    Ok(axum::Json(all.into_iter().map(UserOut::from).collect()))
}

/// Deactivate a staff account: it can no longer log in and its sessions
/// end at once. The last active administrator cannot be deactivated
/// (409 `last_admin`).
#[utoipa::path(delete, path = "/users/{id}", tag = "users",
    params(("id" = i64, Path)),
    responses((status = 204),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn deactivate(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    users::deactivate(&app, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
