//! The staff web console: server-rendered pages on the same binary as the
//! API. askama templates (`templates/console/`, checked at compile time)
//! render view models whose money, dates and numbers are already written
//! in the reader's locale ([`i18n`]); charts are SVG drawn in Rust
//! ([`charts`]); the CSS and the small script are ours and embedded
//! ([`assets`]).
//!
//! **Adding a page** is one entry in [`PAGES`]: its path, the permission
//! it needs, its navigation section, the message id of its title, and the
//! function returning its routes. The registry mounts the routes behind
//! [`guard`], which logs the reader in from the session cookie (or sends
//! them to `/login`), answers 403 when the role lacks the permission,
//! and checks the CSRF token of every form; the navigation lists exactly
//! the pages the role may open.

pub mod admin;
pub mod assets;
pub mod charts;
pub mod dashboard;
pub mod duplicates;
pub mod guard;
pub mod i18n;
pub mod imports;
pub mod login;
pub mod loyalty;
pub mod membership;
pub mod patients;
pub mod referrals;
pub mod reports;
pub mod rewards;
pub mod segments;
pub mod settings;

use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use rapport_app::App;
use rapport_domain::auth::{Permission, Role};

pub use guard::Staff;
use i18n::{Locale, Tr};

/// Where a page appears in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The main list at the top.
    Main,
    /// Administration, below.
    Admin,
    /// The reader's own settings (linked from the account menu too).
    Account,
}

/// A page of the console.
pub struct Page {
    /// A short stable name (`patients`), also the `data-page` of `<body>`.
    pub id: &'static str,
    /// The path of the navigation entry; the page's routes live under it.
    pub path: &'static str,
    /// The message id of its title.
    pub title: &'static str,
    /// The permission it needs; `None`: any staff member.
    pub permission: Option<Permission>,
    pub section: Section,
    /// An SVG path (24×24 box) for the navigation icon.
    pub icon: &'static str,
    /// Its routes (axum paths, absolute).
    pub routes: fn() -> Router<App>,
}

impl Page {
    pub fn allowed(&self, role: Role) -> bool {
        self.permission.is_none_or(|p| role.allows(p))
    }
}

/// Every page, in navigation order.
pub static PAGES: &[Page] = &[
    dashboard::PAGE,
    patients::PAGE,
    membership::PAGE,
    segments::PAGE,
    duplicates::PAGE,
    imports::PAGE,
    admin::AUDIT_PAGE,
    admin::USERS_PAGE,
    admin::TOKENS_PAGE,
    settings::PAGE,
];

/// The page with this id.
pub fn page(id: &str) -> &'static Page {
    PAGES
        .iter()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("no console page {id}"))
}

/// The console's routes: the registry's pages behind their guard, and the
/// public ones (login, language, assets).
pub fn router(app: &App) -> Router<App> {
    let mut r = Router::new()
        .route("/", get(home))
        .route("/assets/{file}", get(assets::serve))
        .merge(login::routes());
    for p in PAGES {
        r = r.merge(
            (p.routes)().route_layer(axum::middleware::from_fn_with_state(
                (app.clone(), p.permission),
                guard::guard,
            )),
        );
    }
    r.layer(axum::Extension(
        rapport_app::console::DashboardCache::default(),
    ))
    .layer(axum::Extension(
        rapport_app::console::LoyaltyCache::default(),
    ))
}

/// `/`: the first page the reader may open, or the login page.
async fn home(
    axum::extract::State(app): axum::extract::State<App>,
    headers: axum::http::HeaderMap,
) -> Response {
    match guard::session_of(&app, &headers).await {
        Some(s) => {
            let role = s.principal.role;
            let target = PAGES
                .iter()
                .find(|p| p.section == Section::Main && p.allowed(role))
                .map(|p| p.path)
                .unwrap_or(settings::PAGE.path);
            Redirect::to(target).into_response()
        }
        None => Redirect::to("/login").into_response(),
    }
}

/// A navigation entry as drawn.
pub struct NavItem {
    pub href: &'static str,
    pub label: String,
    pub icon: &'static str,
    pub current: bool,
    pub id: &'static str,
}

/// A language of the switch.
pub struct LocaleOption {
    pub code: &'static str,
    pub name: &'static str,
    pub selected: bool,
}

/// What the frame of every page needs: language, reader, navigation.
pub struct Layout {
    pub tr: Tr,
    pub lang: &'static str,
    pub title: String,
    pub page_id: &'static str,
    /// Empty when nobody is logged in.
    pub user_name: String,
    pub role_label: String,
    pub main_nav: Vec<NavItem>,
    pub admin_nav: Vec<NavItem>,
    pub account_nav: Vec<NavItem>,
    pub csrf: String,
    pub locales: Vec<LocaleOption>,
    /// Where the language switch returns to.
    pub here: String,
    /// A notice to show once (after a change).
    pub notice: Option<String>,
    /// The fingerprint in the asset URLs.
    pub assets: &'static str,
}

impl Layout {
    /// The frame for a logged-in reader on page `page_id`.
    pub fn for_staff(staff: &Staff, page_id: &'static str, title: String, here: &str) -> Layout {
        let tr = staff.tr;
        let role = staff.principal.role;
        let nav = |section: Section| -> Vec<NavItem> {
            PAGES
                .iter()
                .filter(|p| p.section == section && p.allowed(role))
                .map(|p| NavItem {
                    href: p.path,
                    label: tr.t(p.title),
                    icon: p.icon,
                    current: p.id == page_id,
                    id: p.id,
                })
                .collect()
        };
        Layout {
            lang: tr.locale.code(),
            title,
            page_id,
            user_name: staff.display_name.clone(),
            role_label: tr.t(&role_key(role)),
            main_nav: nav(Section::Main),
            admin_nav: nav(Section::Admin),
            account_nav: nav(Section::Account),
            csrf: staff.csrf.clone(),
            locales: locale_options(tr.locale),
            here: here.to_string(),
            notice: None,
            assets: assets::version(),
            tr,
        }
    }

    /// The frame for someone not logged in.
    pub fn anonymous(locale: Locale, title: String, here: &str) -> Layout {
        let tr = Tr::new(locale);
        Layout {
            lang: locale.code(),
            title,
            page_id: "login",
            user_name: String::new(),
            role_label: String::new(),
            main_nav: Vec::new(),
            admin_nav: Vec::new(),
            account_nav: Vec::new(),
            csrf: String::new(),
            locales: locale_options(locale),
            here: here.to_string(),
            notice: None,
            assets: assets::version(),
            tr,
        }
    }

    pub fn with_notice(mut self, notice: Option<String>) -> Layout {
        self.notice = notice;
        self
    }
}

fn locale_options(current: Locale) -> Vec<LocaleOption> {
    Locale::ALL
        .into_iter()
        .map(|l| LocaleOption {
            code: l.code(),
            name: l.native_name(),
            selected: l == current,
        })
        .collect()
}

/// The message id of a role's name.
pub fn role_key(role: Role) -> String {
    format!("role-{}", role.as_str().replace('_', "-"))
}

/// Headers of every console page: no caching of personal data, no
/// framing, scripts and styles only from us.
pub fn secure_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

/// Renders a template as an HTML answer.
pub fn html(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => {
            let mut res = (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
                .into_response();
            secure_headers(&mut res);
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

/// An error page in the reader's language.
#[derive(Template)]
#[template(path = "console/error.html")]
pub struct ErrorPage {
    pub l: Layout,
    pub status: u16,
    pub heading: String,
    pub message: String,
}

/// An error answer of the console: the page to show.
pub struct PageError(pub StatusCode, pub Box<ErrorPage>);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        html(self.0, self.1.as_ref())
    }
}

impl PageError {
    /// An error page for a logged-in reader.
    pub fn new(staff: &Staff, status: StatusCode, heading_key: &str, message_key: &str) -> Self {
        let tr = staff.tr;
        let l = Layout::for_staff(staff, "", tr.t(heading_key), "/");
        PageError(
            status,
            Box::new(ErrorPage {
                status: status.as_u16(),
                heading: tr.t(heading_key),
                message: tr.t(message_key),
                l,
            }),
        )
    }

    pub fn forbidden(staff: &Staff) -> Self {
        Self::new(
            staff,
            StatusCode::FORBIDDEN,
            "error-forbidden-title",
            "error-forbidden-text",
        )
    }

    pub fn not_found(staff: &Staff) -> Self {
        Self::new(
            staff,
            StatusCode::NOT_FOUND,
            "error-not-found-title",
            "error-not-found-text",
        )
    }

    /// A failure of a use case, as the reader should see it.
    pub fn from_app(staff: &Staff, e: rapport_app::AppError) -> Self {
        use rapport_app::AppError::*;
        match e {
            NotFound(_) => Self::not_found(staff),
            Forbidden => Self::forbidden(staff),
            other => {
                tracing::error!(error = %other, "console request failed");
                Self::new(
                    staff,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "error-internal-title",
                    "error-internal-text",
                )
            }
        }
    }
}

pub type PageResult = Result<Response, PageError>;

/// A field error of a form, in the reader's language: the message id
/// `field-error-CODE` when it exists, else the English message.
pub fn field_error(tr: Tr, e: &rapport_domain::FieldError) -> (String, String) {
    let key = format!("field-error-{}", e.code.replace('_', "-"));
    let text = if tr.has(&key) {
        tr.t(&key)
    } else {
        e.message.clone()
    };
    (e.field.clone(), text)
}
