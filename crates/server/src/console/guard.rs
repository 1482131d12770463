//! Who reads a console page: the session cookie's staff member, their
//! language, and the CSRF proof of every form they send.
//!
//! The same rules as the API's cookie requests (`crate::auth`): a request
//! that changes something must come from our own origin (`Sec-Fetch-Site`
//! or `Origin`) and carry the session's CSRF token, here as the form
//! field `csrf_token` (or the `X-CSRF-Token` header of a script).

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rapport_app::App;
use rapport_app::audit::Actor;
use rapport_app::principal::Principal;
use rapport_app::sessions::{self, Session};
use rapport_domain::auth::Permission;

use super::i18n::{self, Locale, Tr};
use super::{ErrorPage, Layout, PageError, html};
use crate::auth::{CSRF_HEADER, same_origin, session_cookie};

/// Largest form the console accepts.
pub const FORM_LIMIT: usize = 64 * 1024;

/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";

/// A logged-in staff member reading the console.
#[derive(Debug, Clone)]
pub struct Staff {
    pub principal: Principal,
    pub user_id: i64,
    pub display_name: String,
    pub tr: Tr,
    /// Whether the language is the user's stored choice.
    pub locale_chosen: bool,
    /// The CSRF token for the page's forms.
    pub csrf: String,
    pub ip: Option<String>,
}

impl Staff {
    pub fn may(&self, p: Permission) -> bool {
        self.principal.role.allows(p)
    }

    pub fn actor(&self) -> Actor {
        Actor::from_principal(&self.principal, self.ip.clone())
    }

    /// Whether phone, email, national id and notes show unmasked.
    pub fn sees_personal_data(&self) -> bool {
        self.may(Permission::PersonalData)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        parts
            .extensions
            .get::<Staff>()
            .cloned()
            .ok_or_else(|| Redirect::to("/login").into_response())
    }
}

/// The live session of the request's cookie.
pub async fn session_of(app: &App, headers: &HeaderMap) -> Option<Session> {
    let cookie = session_cookie(headers)?;
    match sessions::lookup(app, cookie).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "session lookup failed");
            None
        }
    }
}

/// Where to send someone who is not logged in: the login page, which
/// returns here afterwards.
fn to_login(req: &Request) -> Response {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let next = if req.method().is_safe() && target != "/" {
        format!("?next={}", url_escape(target))
    } else {
        String::new()
    };
    Redirect::to(&format!("/login{next}")).into_response()
}

/// Percent-encodes a query value.
pub fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a `next` target is a path of ours (not `//evil`, not a URL).
pub fn safe_next(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
}

/// The field `name` of an urlencoded form.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded_pairs(body)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Decodes `application/x-www-form-urlencoded`.
pub fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &[u8]) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    let hex = std::str::from_utf8(&s[i + 1..i + 3]).ok();
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = decode(it.next().unwrap_or(b""));
            let v = decode(it.next().unwrap_or(b""));
            (k, v)
        })
        .collect()
}

/// The reader's locale: their stored choice, else the language cookie,
/// else the browser's languages, else Chinese.
async fn locale_of(app: &App, user_id: i64, headers: &HeaderMap) -> (Locale, bool) {
    let stored = rapport_app::console::locale(app, user_id)
        .await
        .ok()
        .flatten()
        .and_then(|c| Locale::from_code(&c));
    match stored {
        Some(l) => (l, true),
        None => (Locale::of_request(headers), false),
    }
}

/// A bare page for someone refused before they are known.
fn refused(locale: Locale, status: StatusCode, heading: &str, message: &str) -> Response {
    let tr = Tr::new(locale);
    html(
        status,
        &ErrorPage {
            l: Layout::anonymous(locale, tr.t(heading), "/"),
            status: status.as_u16(),
            heading: tr.t(heading),
            message: tr.t(message),
        },
    )
}

/// The registry's guard of a page (see the module documentation of
/// `console`).
pub async fn guard(
    State((app, permission)): State<(App, Option<Permission>)>,
    req: Request,
    next: Next,
) -> Response {
    let Some(session) = session_of(&app, req.headers()).await else {
        return to_login(&req);
    };
    let (locale, chosen) = locale_of(&app, session.user_id, req.headers()).await;
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let csrf = session_cookie(req.headers())
        .map(sessions::csrf_token_for)
        .unwrap_or_default();
    let staff = Staff {
        principal: session.principal.clone(),
        user_id: session.user_id,
        display_name: session.display_name.clone(),
        tr: Tr::new(locale),
        locale_chosen: chosen,
        csrf,
        ip,
    };
    if let Some(p) = permission
        && !staff.may(p)
    {
        tracing::info!(login = %staff.principal.name, path = %req.uri().path(), permission = p.as_str(), "console page refused");
        // Refused reaches for a patient's record are audited, as the API's are.
        if let Some(rest) = req.uri().path().strip_prefix("/patients") {
            let subject = rest
                .trim_start_matches('/')
                .split('/')
                .next()
                .and_then(|id| id.parse::<i64>().ok());
            let detail = serde_json::json!({"method": req.method().as_str(), "path": req.uri().path(), "code": "forbidden"}).to_string();
            rapport_app::audit::note(
                &app,
                &staff.actor(),
                "access.denied",
                subject.map(|id| ("patient", id)),
                "denied",
                Some(detail),
            );
        }
        return PageError::forbidden(&staff).into_response();
    }
    let mut req = req;
    if !req.method().is_safe() {
        if !same_origin(req.headers()) {
            tracing::warn!(login = %staff.principal.name, path = %req.uri().path(), "console form from another site refused");
            return refused(
                locale,
                StatusCode::FORBIDDEN,
                "error-csrf-title",
                "error-csrf-text",
            );
        }
        // A script's request proves itself in a header, and its body is
        // left to the handler (a file upload streams); a form's token is
        // a field of its body, read here up to the form limit.
        let header_ok = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| session.csrf_matches(t));
        if !header_ok {
            let (parts, body) = req.into_parts();
            let bytes: Bytes = match axum::body::to_bytes(body, FORM_LIMIT).await {
                Ok(b) => b,
                Err(_) => {
                    return refused(
                        locale,
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "error-too-large-title",
                        "error-too-large-text",
                    );
                }
            };
            let token = form_field(&bytes, CSRF_FIELD);
            if !token.is_some_and(|t| session.csrf_matches(&t)) {
                tracing::warn!(login = %staff.principal.name, path = %parts.uri.path(), "console form without a valid CSRF token refused");
                return refused(
                    locale,
                    StatusCode::FORBIDDEN,
                    "error-csrf-title",
                    "error-csrf-text",
                );
            }
            req = Request::from_parts(parts, Body::from(bytes));
        }
    }
    req.extensions_mut().insert(staff);
    req.extensions_mut().insert(session.principal);
    next.run(req).await
}

/// The language of the request for pages without a session.
pub fn anonymous_locale(headers: &HeaderMap) -> Locale {
    i18n::Locale::of_request(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode() {
        let p = form_urlencoded_pairs(b"a=1&b=x+y&c=%E4%B8%AD&d=%zz&e=100%25&f");
        assert_eq!(
            p,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "中".into()),
                ("d".into(), "%zz".into()),
                ("e".into(), "100%".into()),
                ("f".into(), "".into()),
            ]
        );
        assert_eq!(
            form_field(b"x=1&csrf_token=abc", "csrf_token").as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn next_targets_stay_on_the_site() {
        assert!(safe_next("/patients?q=li"));
        assert!(!safe_next("//evil.example"));
        assert!(!safe_next("https://evil.example"));
        assert!(!safe_next("/\\evil"));
        assert_eq!(url_escape("/patients?q=李"), "/patients%3Fq%3D%E6%9D%8E");
    }
}
