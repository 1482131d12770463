//! Administration: the audit log, staff accounts and API tokens.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use rapport_app::audit::AuditQuery;
use rapport_app::{App, AppError, tokens, users};
use rapport_domain::auth::{Permission, Role};
use serde::Deserialize;

use super::guard::url_escape;
use super::{Layout, Page, PageError, PageResult, Section, Staff, html, role_key};

pub const AUDIT_PAGE: Page = Page {
    id: "audit",
    path: "/audit",
    title: "nav-audit",
    permission: Some(Permission::AuditRead),
    section: Section::Admin,
    icon: "M9 2h6l1 2h3a1 1 0 0 1 1 1v16a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1h3l1-2zm-2 8v2h10v-2H7zm0 4v2h7v-2H7z",
    routes: audit_routes,
};

pub const USERS_PAGE: Page = Page {
    id: "users",
    path: "/users",
    title: "nav-users",
    permission: Some(Permission::AdminUsers),
    section: Section::Admin,
    icon: "M12 12a5 5 0 1 0-5-5 5 5 0 0 0 5 5zm0 2c-3.3 0-10 1.7-10 5v3h20v-3c0-3.3-6.7-5-10-5z",
    routes: users_routes,
};

pub const TOKENS_PAGE: Page = Page {
    id: "tokens",
    path: "/tokens",
    title: "nav-tokens",
    permission: Some(Permission::AdminUsers),
    section: Section::Admin,
    icon: "M7 14a3 3 0 1 1 3-3 3 3 0 0 1-3 3zm5.6-5A6 6 0 1 0 12.6 13H16v3h3v-3h2V9z",
    routes: tokens_routes,
};

fn audit_routes() -> Router<App> {
    Router::new().route("/audit", get(audit))
}

fn users_routes() -> Router<App> {
    Router::new()
        .route("/users", get(users_page).post(create_user))
        .route("/users/{id}/deactivate", post(deactivate_user))
}

fn tokens_routes() -> Router<App> {
    Router::new()
        .route("/tokens", get(tokens_page).post(create_token))
        .route("/tokens/{id}/revoke", post(revoke_token))
}

/// Entries per page of the audit log.
const AUDIT_PAGE_SIZE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct AuditFilter {
    actor: Option<String>,
    action: Option<String>,
    patient: Option<String>,
    before: Option<String>,
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub subject: String,
    pub subject_href: String,
    pub outcome: String,
    pub denied: bool,
    pub ip: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
pub struct AuditLogPage {
    pub l: Layout,
    pub actor: String,
    pub action: String,
    pub patient: String,
    pub rows: Vec<AuditRow>,
    pub older: Option<String>,
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

async fn audit(State(app): State<App>, staff: Staff, Query(p): Query<AuditFilter>) -> PageResult {
    let tr = staff.tr;
    let before = p.before.as_deref().and_then(|b| {
        let (at, id) = b.rsplit_once('_')?;
        Some((
            DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
            id.parse::<i64>().ok()?,
        ))
    });
    let patient = nonempty(&p.patient);
    let patient_id = patient.as_deref().and_then(|s| s.parse::<i64>().ok());
    let entries = rapport_app::audit::list(
        &app,
        AuditQuery {
            actor: nonempty(&p.actor),
            action: nonempty(&p.action),
            subject_type: patient_id.map(|_| "patient".to_string()),
            subject_id: patient_id,
            before,
            limit: AUDIT_PAGE_SIZE + 1,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| PageError::from_app(&staff, e))?;
    let more = entries.len() as i64 > AUDIT_PAGE_SIZE;
    let shown = &entries[..entries.len().min(AUDIT_PAGE_SIZE as usize)];
    let older = more.then(|| shown.last()).flatten().map(|e| {
        let mut q = vec![format!(
            "before={}",
            url_escape(&format!("{}_{}", e.at.to_rfc3339(), e.id))
        )];
        for (k, v) in [
            ("actor", &p.actor),
            ("action", &p.action),
            ("patient", &p.patient),
        ] {
            if let Some(v) = nonempty(v) {
                q.push(format!("{k}={}", url_escape(&v)));
            }
        }
        format!("/audit?{}", q.join("&"))
    });
    let rows = shown
        .iter()
        .map(|e| AuditRow {
            at: tr.datetime(e.at),
            actor: e.actor.clone(),
            role: e
                .role
                .as_deref()
                .and_then(Role::from_code)
                .map(|r| tr.t(&role_key(r)))
                .unwrap_or_default(),
            action: e.action.clone(),
            subject: match (&e.subject_type, e.subject_id) {
                (Some(t), Some(id)) => format!("{t} {id}"),
                _ => String::new(),
            },
            subject_href: match (e.subject_type.as_deref(), e.subject_id) {
                (Some("patient"), Some(id)) => format!("/patients/{id}"),
                _ => String::new(),
            },
            denied: e.outcome != "ok",
            outcome: e.outcome.clone(),
            ip: e.ip.clone().unwrap_or_default(),
            detail: e.detail.clone().unwrap_or_default(),
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        &AuditLogPage {
            l: Layout::for_staff(
                &staff,
                AUDIT_PAGE.id,
                tr.t(AUDIT_PAGE.title),
                AUDIT_PAGE.path,
            ),
            actor: p.actor.unwrap_or_default(),
            action: p.action.unwrap_or_default(),
            patient: p.patient.unwrap_or_default(),
            rows,
            older,
        },
    ))
}

pub struct UserRow {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub role: String,
    pub active: bool,
    pub locked: bool,
    pub created: String,
    pub is_me: bool,
}

pub struct RoleOption {
    pub code: &'static str,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "console/users.html")]
pub struct UsersPage {
    pub l: Layout,
    pub rows: Vec<UserRow>,
    pub roles: Vec<RoleOption>,
    pub form_login: String,
    pub form_name: String,
    pub errors: Vec<(String, String)>,
}

#[derive(Deserialize, Default)]
pub struct AdminNotice {
    done: Option<String>,
}

async fn render_users(
    app: &App,
    staff: &Staff,
    status: StatusCode,
    notice: Option<String>,
    form: &UserForm,
    errors: Vec<(String, String)>,
) -> PageResult {
    let tr = staff.tr;
    let now = app.now();
    let list = users::list(app)
        .await
        .map_err(|e| PageError::from_app(staff, e))?;
    let rows = list
        .into_iter()
        .map(|u| UserRow {
            is_me: u.id == staff.user_id,
            id: u.id,
            login: u.login,
            name: u.display_name,
            role: Role::from_code(&u.role)
                .map(|r| tr.t(&role_key(r)))
                .unwrap_or(u.role),
            active: u.active,
            locked: u.locked_until.is_some_and(|t| t > now),
            created: tr.date((u.created_at + chrono::Duration::hours(8)).date_naive()),
        })
        .collect();
    let roles = Role::ALL
        .iter()
        .map(|r| RoleOption {
            code: r.as_str(),
            label: tr.t(&role_key(*r)),
            selected: form.role == r.as_str(),
        })
        .collect();
    Ok(html(
        status,
        &UsersPage {
            l: Layout::for_staff(
                staff,
                USERS_PAGE.id,
                tr.t(USERS_PAGE.title),
                USERS_PAGE.path,
            )
            .with_notice(notice),
            rows,
            roles,
            form_login: form.login.clone(),
            form_name: form.display_name.clone(),
            errors,
        },
    ))
}

async fn users_page(
    State(app): State<App>,
    staff: Staff,
    Query(d): Query<AdminNotice>,
) -> PageResult {
    let notice = match d.done.as_deref() {
        Some("created") => Some(staff.tr.t("users-created")),
        Some("deactivated") => Some(staff.tr.t("users-deactivated")),
        _ => None,
    };
    render_users(
        &app,
        &staff,
        StatusCode::OK,
        notice,
        &UserForm::default(),
        Vec::new(),
    )
    .await
}

#[derive(Deserialize, Default)]
pub struct UserForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

async fn create_user(State(app): State<App>, staff: Staff, Form(f): Form<UserForm>) -> PageResult {
    let name = Some(f.display_name.trim()).filter(|s| !s.is_empty());
    match users::create(&app, f.login.trim(), &f.role, name, &f.password).await {
        Ok(_) => Ok(Redirect::to("/users?done=created").into_response()),
        Err(AppError::Validation(v)) => {
            let errors =
                v.0.iter()
                    .map(|e| super::field_error(staff.tr, e))
                    .collect();
            render_users(
                &app,
                &staff,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                &f,
                errors,
            )
            .await
        }
        Err(AppError::Conflict { .. }) => {
            let errors = vec![("login".to_string(), staff.tr.t("field-error-user-exists"))];
            render_users(&app, &staff, StatusCode::CONFLICT, None, &f, errors).await
        }
        Err(e) => Err(PageError::from_app(&staff, e)),
    }
}

async fn deactivate_user(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<String>,
) -> PageResult {
    let Ok(id) = id.parse::<i64>() else {
        return Err(PageError::not_found(&staff));
    };
    match users::deactivate(&app, id).await {
        Ok(_) => Ok(Redirect::to("/users?done=deactivated").into_response()),
        Err(AppError::Conflict { .. }) => {
            let errors = vec![("user".to_string(), staff.tr.t("users-last-admin"))];
            render_users(
                &app,
                &staff,
                StatusCode::CONFLICT,
                None,
                &UserForm::default(),
                errors,
            )
            .await
        }
        Err(e) => Err(PageError::from_app(&staff, e)),
    }
}

pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub created: String,
    pub revoked: String,
}

#[derive(Template)]
#[template(path = "console/tokens.html")]
pub struct TokensPage {
    pub l: Layout,
    pub rows: Vec<TokenRow>,
    pub roles: Vec<RoleOption>,
    /// A token just made: shown once.
    pub new_token: String,
    pub errors: Vec<(String, String)>,
}

async fn render_tokens(
    app: &App,
    staff: &Staff,
    status: StatusCode,
    notice: Option<String>,
    new_token: String,
    errors: Vec<(String, String)>,
) -> PageResult {
    let tr = staff.tr;
    let list = tokens::list(app)
        .await
        .map_err(|e| PageError::from_app(staff, e))?;
    let rows = list
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            name: t.name,
            role: Role::from_code(&t.role)
                .map(|r| tr.t(&role_key(r)))
                .unwrap_or(t.role),
            created: tr.datetime(t.created_at),
            revoked: t.revoked_at.map(|r| tr.datetime(r)).unwrap_or_default(),
        })
        .collect();
    let roles = Role::ALL
        .iter()
        .map(|r| RoleOption {
            code: r.as_str(),
            label: tr.t(&role_key(*r)),
            selected: false,
        })
        .collect();
    Ok(html(
        status,
        &TokensPage {
            l: Layout::for_staff(
                staff,
                TOKENS_PAGE.id,
                tr.t(TOKENS_PAGE.title),
                TOKENS_PAGE.path,
            )
            .with_notice(notice),
            rows,
            roles,
            new_token,
            errors,
        },
    ))
}

async fn tokens_page(
    State(app): State<App>,
    staff: Staff,
    Query(d): Query<AdminNotice>,
) -> PageResult {
    let notice = match d.done.as_deref() {
        Some("revoked") => Some(staff.tr.t("tokens-revoked")),
        _ => None,
    };
    render_tokens(
        &app,
        &staff,
        StatusCode::OK,
        notice,
        String::new(),
        Vec::new(),
    )
    .await
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

async fn create_token(
    State(app): State<App>,
    staff: Staff,
    Form(f): Form<TokenForm>,
) -> PageResult {
    match tokens::create(&app, &f.role, f.name.trim()).await {
        Ok((_, token)) => {
            let notice = Some(staff.tr.t("tokens-created"));
            let mut res =
                render_tokens(&app, &staff, StatusCode::CREATED, notice, token, Vec::new()).await?;
            res.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            Ok(res)
        }
        Err(AppError::Validation(v)) => {
            let errors =
                v.0.iter()
                    .map(|e| super::field_error(staff.tr, e))
                    .collect();
            render_tokens(
                &app,
                &staff,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                String::new(),
                errors,
            )
            .await
        }
        Err(e) => Err(PageError::from_app(&staff, e)),
    }
}

async fn revoke_token(State(app): State<App>, staff: Staff, Path(id): Path<String>) -> PageResult {
    let Ok(id) = id.parse::<i64>() else {
        return Err(PageError::not_found(&staff));
    };
    tokens::revoke(&app, id)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    Ok(Redirect::to("/tokens?done=revoked").into_response())
}
