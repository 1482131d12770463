//! The reader's own settings: language and password; logging out.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use rapport_app::principal::PrincipalKind;
use rapport_app::{App, AppError, sessions};
use serde::Deserialize;

use super::guard::safe_next;
use super::i18n::{Locale, Tr};
use super::{Layout, Page, PageError, PageResult, Section, Staff, html};
use crate::auth::session_clear_cookie;

pub const PAGE: Page = Page {
    id: "settings",
    path: "/settings",
    title: "nav-settings",
    permission: None,
    section: Section::Account,
    icon: "M12 15.5A3.5 3.5 0 1 0 12 8.5a3.5 3.5 0 0 0 0 7zm7.4-2.5a7.6 7.6 0 0 0 0-2l2-1.6-2-3.4-2.4 1a7.3 7.3 0 0 0-1.7-1L15 3h-4l-.3 2.5a7.3 7.3 0 0 0-1.7 1l-2.4-1-2 3.4 2 1.6a7.6 7.6 0 0 0 0 2l-2 1.6 2 3.4 2.4-1a7.3 7.3 0 0 0 1.7 1L11 21h4l.3-2.5a7.3 7.3 0 0 0 1.7-1l2.4 1 2-3.4z",
    routes,
};

fn routes() -> Router<App> {
    Router::new()
        .route("/settings", get(show))
        .route("/settings/language", post(set_language))
        .route("/settings/password", post(change_password))
        .route("/logout", post(logout))
}

#[derive(Template)]
#[template(path = "console/settings.html")]
pub struct SettingsPage {
    pub l: Layout,
    pub login: String,
    pub follow_browser: bool,
    pub password_errors: Vec<(String, String)>,
}

#[derive(Deserialize)]
pub struct Notice {
    done: Option<String>,
}

fn render(
    staff: &Staff,
    status: StatusCode,
    notice: Option<String>,
    errors: Vec<(String, String)>,
) -> Response {
    let tr = staff.tr;
    let l = Layout::for_staff(staff, PAGE.id, tr.t(PAGE.title), PAGE.path).with_notice(notice);
    html(
        status,
        &SettingsPage {
            l,
            login: staff.principal.name.clone(),
            follow_browser: !staff.locale_chosen,
            password_errors: errors,
        },
    )
}

async fn show(staff: Staff, Query(n): Query<Notice>) -> Response {
    let notice = match n.done.as_deref() {
        Some("password") => Some(staff.tr.t("settings-password-changed")),
        Some("language") => Some(staff.tr.t("settings-language-saved")),
        _ => None,
    };
    render(&staff, StatusCode::OK, notice, Vec::new())
}

#[derive(Deserialize)]
pub struct LanguageForm {
    #[serde(default)]
    locale: String,
    here: Option<String>,
}

async fn set_language(
    State(app): State<App>,
    staff: Staff,
    Form(f): Form<LanguageForm>,
) -> PageResult {
    let choice = match f.locale.as_str() {
        "" | "auto" => None,
        code => Some(Locale::from_code(code).ok_or_else(|| {
            PageError::new(
                &staff,
                StatusCode::UNPROCESSABLE_ENTITY,
                "error-invalid-title",
                "error-invalid-text",
            )
        })?),
    };
    rapport_app::console::set_locale(&app, staff.user_id, choice.map(Locale::code))
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    let back = f
        .here
        .filter(|h| safe_next(h))
        .unwrap_or_else(|| format!("{}?done=language", PAGE.path));
    Ok(Redirect::to(&back).into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

async fn change_password(
    State(app): State<App>,
    staff: Staff,
    Form(f): Form<PasswordForm>,
) -> PageResult {
    let tr: Tr = staff.tr;
    let PrincipalKind::User { session_id, .. } = staff.principal.kind else {
        return Err(PageError::forbidden(&staff));
    };
    if f.new_password != f.confirm_password {
        let e = vec![(
            "confirm_password".to_string(),
            tr.t("settings-password-mismatch"),
        )];
        return Ok(render(&staff, StatusCode::UNPROCESSABLE_ENTITY, None, e));
    }
    match sessions::change_password(
        &app,
        staff.user_id,
        session_id,
        &f.current_password,
        &f.new_password,
    )
    .await
    {
        Ok(()) => Ok(Redirect::to(&format!("{}?done=password", PAGE.path)).into_response()),
        Err(AppError::Validation(v)) => {
            let e = v.0.iter().map(|e| super::field_error(tr, e)).collect();
            Ok(render(&staff, StatusCode::UNPROCESSABLE_ENTITY, None, e))
        }
        Err(AppError::AccountLocked { until }) => {
            let e = vec![(
                "current_password".to_string(),
                tr.t1("login-locked", "until", tr.datetime(until)),
            )];
            Ok(render(&staff, StatusCode::LOCKED, None, e))
        }
        Err(e) => Err(PageError::from_app(&staff, e)),
    }
}

async fn logout(State(app): State<App>, staff: Staff) -> PageResult {
    if let Some(id) = staff.principal.session_id() {
        sessions::logout(&app, id)
            .await
            .map_err(|e| PageError::from_app(&staff, e))?;
        tracing::info!(login = %staff.principal.name, session_id = id, "logged out of the console");
    }
    let mut res = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session_clear_cookie(&app)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}
