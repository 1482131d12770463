//! `/api/v1/session`: staff log in with a login and password and get a
//! session cookie (`rapport_session`, HttpOnly, SameSite=Strict) and a
//! CSRF token for the `X-CSRF-Token` header of their changing requests.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rapport_app::App;
use rapport_app::principal::{Principal, PrincipalKind};
use rapport_app::sessions::{self, Client, Session};
use rapport_app::users;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{
    cross_site, session_clear_cookie, session_cookie, session_required, session_set_cookie,
};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::routes::users::UserOut;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub login: String,
    pub password: String,
}

/// The API token a caller authenticated with.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenRef {
    pub id: i64,
    pub name: String,
}

/// Who is calling. For a session: the user, and the CSRF token to send as
/// `X-CSRF-Token` with every POST, PUT, PATCH and DELETE. For an API
/// token: the token.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionOut {
    /// `session` or `token`.
    pub kind: &'static str,
    pub role: String,
    pub user: Option<UserOut>,
    pub csrf_token: Option<String>,
    /// When the session ends at the latest (it ends earlier after 12 idle
    /// hours).
    pub expires_at: Option<DateTime<Utc>>,
    pub token: Option<TokenRef>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

fn with_cookie(mut res: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Log in. Wrong login or password: 401 `invalid_credentials`. After five
/// consecutive failures the account is locked for 15 minutes (twice as
/// long for each further lock, at most 24 hours): 423 `account_locked`,
/// even with the right password.
#[utoipa::path(post, path = "/session", tag = "session",
    request_body = Login,
    responses(
        (status = 201, body = SessionOut, headers(("set-cookie" = String, description = "rapport_session=…; HttpOnly; SameSite=Strict; Path=/"))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "a browser request from another site (`csrf_failed`)"),
        (status = 423, body = Problem, content_type = "application/problem+json")))]
pub async fn login(
    State(app): State<App>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    ApiJson(b): ApiJson<Login>,
) -> ApiResult<Response> {
    // Login CSRF: another site must not log a browser into an account.
    if cross_site(&headers) {
        tracing::warn!(origin = ?headers.get(header::ORIGIN), "cross-site login refused");
        return Err(ApiError::csrf_failed(
            "a login from another site is not accepted",
        ));
    }
    let client = Client {
        ip: peer.map(|Extension(ConnectInfo(a))| a.ip().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    let opened = sessions::login(&app, &b.login, &b.password, &client).await?;
    let body = SessionOut {
        kind: "session",
        role: opened.role.as_str().to_string(),
        user: Some(UserOut::from(opened.user)),
        csrf_token: Some(opened.csrf_token),
        expires_at: Some(opened.expires_at),
        token: None,
    };
    let res = (StatusCode::CREATED, axum::Json(body)).into_response();
    Ok(with_cookie(res, &session_set_cookie(&app, &opened.cookie)))
}

/// Who am I: the session's user and CSRF token, or the API token.
#[utoipa::path(get, path = "/session", tag = "session",
    responses((status = 200, body = SessionOut), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn current(
    State(app): State<App>,
    headers: HeaderMap,
    Extension(who): Extension<Principal>,
    session: Option<Extension<Session>>,
) -> ApiResult<Response> {
    let body = match (&who.kind, session) {
        (PrincipalKind::User { user_id, .. }, Some(Extension(s))) => SessionOut {
            kind: "session",
            role: who.role.as_str().to_string(),
            user: Some(UserOut::from(users::get(&app, *user_id).await?)),
            csrf_token: session_cookie(&headers).map(sessions::csrf_token_for),
            expires_at: Some(s.expires_at),
            token: None,
        },
        (PrincipalKind::Token { token_id }, _) => SessionOut {
            kind: "token",
            role: who.role.as_str().to_string(),
            user: None,
            csrf_token: None,
            expires_at: None,
            token: Some(TokenRef {
                id: *token_id,
                name: who.name.clone(),
            }),
        },
        (PrincipalKind::User { .. }, None) => return Err(ApiError::unauthenticated()),
    };
    let mut res = axum::Json(body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Log out: ends the session and clears the cookie. With an API token it
/// does nothing (revoke tokens under `/tokens`).
#[utoipa::path(delete, path = "/session", tag = "session", responses((status = 204)))]
pub async fn logout(
    State(app): State<App>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Response> {
    if let Some(id) = who.session_id() {
        sessions::logout(&app, id).await?;
        tracing::info!(login = %who.name, session_id = id, "logged out");
    }
    let res = StatusCode::NO_CONTENT.into_response();
    Ok(with_cookie(res, &session_clear_cookie(&app)))
}

/// Change one's password. A wrong current password is a 422 naming
/// `current_password` and counts towards the lockout. Every other session
/// of the user ends; this one stays.
#[utoipa::path(post, path = "/session/password", tag = "session",
    request_body = ChangePassword,
    responses((status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "an API token (`session_required`)"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 423, body = Problem, content_type = "application/problem+json")))]
pub async fn change_password(
    State(app): State<App>,
    Extension(who): Extension<Principal>,
    ApiJson(b): ApiJson<ChangePassword>,
) -> ApiResult<StatusCode> {
    let PrincipalKind::User {
        user_id,
        session_id,
        ..
    } = who.kind
    else {
        return Err(session_required());
    };
    sessions::change_password(
        &app,
        user_id,
        session_id,
        &b.current_password,
        &b.new_password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
