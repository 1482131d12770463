//! Logging in and out of the console, and the language of the login page.

use std::net::SocketAddr;

use askama::Template;
use axum::Extension;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use rapport_app::sessions::{self, Client};
use rapport_app::{App, AppError};
use serde::Deserialize;

use super::guard::{safe_next, session_of};
use super::i18n::{LANG_COOKIE, Locale, Tr};
use super::{Layout, html};
use crate::auth::{cross_site, session_set_cookie};

pub fn routes() -> Router<App> {
    Router::new().route("/login", get(page).post(submit))
}

#[derive(Template)]
#[template(path = "console/login.html")]
pub struct LoginPage {
    pub l: Layout,
    pub next: String,
    pub login: String,
    pub error: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    lang: Option<String>,
}

fn lang_cookie(app: &App, l: Locale) -> String {
    let secure = if app.secure_cookies { "; Secure" } else { "" };
    format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax{secure}",
        l.code()
    )
}

fn clean_next(next: Option<&str>) -> String {
    next.filter(|n| safe_next(n) && !n.starts_with("/login"))
        .unwrap_or("/")
        .to_string()
}

async fn page(State(app): State<App>, headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    let next = clean_next(q.next.as_deref());
    if session_of(&app, &headers).await.is_some() {
        return Redirect::to(&next).into_response();
    }
    let chosen = q.lang.as_deref().and_then(Locale::from_code);
    let locale = chosen.unwrap_or_else(|| Locale::of_request(&headers));
    let tr = Tr::new(locale);
    let here = format!("/login?next={}", super::guard::url_escape(&next));
    let mut res = html(
        StatusCode::OK,
        &LoginPage {
            l: Layout::anonymous(locale, tr.t("login-title"), &here),
            next,
            login: String::new(),
            error: None,
        },
    );
    if let Some(l) = chosen
        && let Ok(v) = HeaderValue::from_str(&lang_cookie(&app, l))
    {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

async fn submit(
    State(app): State<App>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(f): Form<LoginForm>,
) -> Response {
    let locale = Locale::of_request(&headers);
    let tr = Tr::new(locale);
    let next = clean_next(f.next.as_deref());
    let again = |status: StatusCode, error: String| {
        html(
            status,
            &LoginPage {
                l: Layout::anonymous(locale, tr.t("login-title"), "/login"),
                next: next.clone(),
                login: f.login.clone(),
                error: Some(error),
            },
        )
    };
    // Login CSRF: another site must not log a browser into an account.
    if cross_site(&headers) {
        tracing::warn!(origin = ?headers.get(header::ORIGIN), "cross-site console login refused");
        return again(StatusCode::FORBIDDEN, tr.t("error-csrf-text"));
    }
    if f.login.trim().is_empty() || f.password.is_empty() {
        return again(StatusCode::UNPROCESSABLE_ENTITY, tr.t("login-missing"));
    }
    let client = Client {
        ip: peer.map(|Extension(ConnectInfo(a))| a.ip().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    match sessions::login(&app, &f.login, &f.password, &client).await {
        Ok(opened) => {
            let mut res = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&session_set_cookie(&app, &opened.cookie)) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            res
        }
        Err(AppError::InvalidCredentials) => again(StatusCode::UNAUTHORIZED, tr.t("login-invalid")),
        Err(AppError::AccountLocked { until }) => again(
            StatusCode::LOCKED,
            tr.t1("login-locked", "until", tr.datetime(until)),
        ),
        Err(e) => {
            tracing::error!(error = %e, "console login failed");
            again(
                StatusCode::INTERNAL_SERVER_ERROR,
                tr.t("error-internal-text"),
            )
        }
    }
}
