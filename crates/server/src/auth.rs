//! Every `/api/v1` route is registered through [`guarded`], which both
//! wraps it in a layer demanding what the route needs ([`Access`]), and
//! writes that into the OpenAPI document (`x-permission`). The
//! route-by-role test reads the document, so the guard, the documentation
//! and the test cannot drift apart.
//!
//! A caller authenticates with an API token (`Authorization: Bearer`) or
//! with the session cookie of a staff member's login. A cookie is sent by
//! the browser on its own, so cookie requests that change something
//! (POST, PUT, PATCH, DELETE) must also prove they come from our own pages:
//! a same-origin signal (`Sec-Fetch-Site: same-origin`/`none`, or an
//! `Origin` equal to the request's host) *and* the session's CSRF token in
//! `X-CSRF-Token`. Bearer requests carry no ambient credential and are
//! exempt. (tower-http's CSRF layer lets requests without either header
//! through and cannot exempt bearer requests, hence this small check.)

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rapport_app::App;
use rapport_app::sessions::{self, Session};
use rapport_app::tokens::{self, Principal};
use rapport_domain::auth::Permission;
use utoipa::openapi::security::SecurityRequirement;
use utoipa_axum::router::UtoipaMethodRouter;

use crate::error::ApiError;

/// The extension name that carries a route's permission in the OpenAPI
/// document.
pub const PERMISSION_EXTENSION: &str = "x-permission";
/// `x-permission` of routes open to anyone (only logging in).
pub const PUBLIC: &str = "public";
/// `x-permission` of routes open to any authenticated caller.
pub const AUTHENTICATED: &str = "authenticated";
/// The header that carries the CSRF token of cookie requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What a route demands of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// An authenticated caller whose role holds the permission.
    Permission(Permission),
    /// Any authenticated caller.
    Authenticated,
    /// Anyone: no credentials (logging in).
    Public,
}

impl From<Permission> for Access {
    fn from(p: Permission) -> Self {
        Access::Permission(p)
    }
}

impl Access {
    /// The `x-permission` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Permission(p) => p.as_str(),
            Access::Authenticated => AUTHENTICATED,
            Access::Public => PUBLIC,
        }
    }
}

async fn require(
    State((app, perm)): State<(App, Option<Permission>)>,
    req: Request,
    next: Next,
) -> Response {
    check(app, perm, req, next).await
}

/// Demands any authenticated caller (for the OpenAPI document itself).
pub async fn require_token(State(app): State<App>, req: Request, next: Next) -> Response {
    check(app, None, req, next).await
}

async fn check(app: App, perm: Option<Permission>, mut req: Request, next: Next) -> Response {
    let found = authenticate(&app, req.method(), req.uri(), req.headers()).await;
    let (principal, session) = match found {
        Ok(found) => found,
        Err(e) => {
            note_refused(&app, &req, None, &e);
            return e.into_response();
        }
    };
    if let Some(perm) = perm
        && !principal.role.allows(perm)
    {
        let e = ApiError::forbidden(perm.as_str());
        note_refused(&app, &req, Some(&principal), &e);
        return e.into_response();
    }
    req.extensions_mut().insert(principal);
    if let Some(s) = session {
        req.extensions_mut().insert(s);
    }
    next.run(req).await
}

/// Records a refused request in the audit log when it reached for a
/// patient's data (`/patients/…`): who (or `anonymous`), from where, what.
fn note_refused(app: &App, req: &Request, principal: Option<&Principal>, e: &ApiError) {
    let path = req.uri().path();
    let Some(rest) = path
        .strip_prefix("/api/v1/patients")
        .or_else(|| path.strip_prefix("/patients"))
    else {
        return;
    };
    let subject = rest
        .trim_start_matches('/')
        .split('/')
        .next()
        .and_then(|id| id.parse::<i64>().ok());
    let ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let actor = match principal {
        Some(p) => rapport_app::audit::Actor::from_principal(p, ip),
        None => rapport_app::audit::Actor {
            who: "anonymous".into(),
            role: None,
            ip,
        },
    };
    let detail =
        serde_json::json!({"method": req.method().as_str(), "path": path, "code": e.1.code})
            .to_string();
    rapport_app::audit::note(
        app,
        &actor,
        "access.denied",
        subject.map(|id| ("patient", id)),
        "denied",
        Some(detail),
    );
}

fn bearer(headers: &HeaderMap) -> Option<Option<&str>> {
    let v = headers.get(header::AUTHORIZATION)?;
    Some(
        v.to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim),
    )
}

/// The caller: the bearer token when an `Authorization` header is present,
/// else the session cookie (with the CSRF check on unsafe methods).
/// (Parts of the request, not `&Request`: the body is not `Sync`.)
async fn authenticate(
    app: &App,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(Principal, Option<Session>), ApiError> {
    if let Some(token) = bearer(headers) {
        let token = token.ok_or_else(ApiError::unauthenticated)?;
        return match tokens::authenticate(app, token).await? {
            Some(p) => Ok((p, None)),
            None => Err(ApiError::unauthenticated()),
        };
    }
    let cookie = session_cookie(headers).ok_or_else(ApiError::unauthenticated)?;
    let session = sessions::lookup(app, cookie)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    if !method.is_safe() {
        let reason = if !same_origin(headers) {
            Some("the request does not come from this site (Sec-Fetch-Site / Origin)")
        } else {
            match headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
                None => Some("the X-CSRF-Token header is missing"),
                Some(t) if !session.csrf_matches(t) => Some("the X-CSRF-Token header is wrong"),
                Some(_) => None,
            }
        };
        if let Some(reason) = reason {
            tracing::warn!(
                login = %session.principal.name,
                %method,
                path = %uri.path(),
                origin = ?headers.get(header::ORIGIN),
                sec_fetch_site = ?headers.get("sec-fetch-site"),
                reason,
                "CSRF check failed"
            );
            return Err(ApiError::csrf_failed(reason));
        }
    }
    Ok((session.principal.clone(), Some(session)))
}

/// The value of the session cookie, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == sessions::COOKIE)
        .map(|(_, value)| value.trim())
}

/// Whether the browser says the request comes from our own origin:
/// `Sec-Fetch-Site` is `same-origin` or `none` (typed by the user), or,
/// without it, `Origin` names the host the request was sent to. Without
/// either header, no.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    origin_matches_host(origin, host)
}

/// Whether a browser says the request comes from another site. Requests
/// that say nothing (API clients) are not cross-site.
pub fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => false,
        Some(origin) => !headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|host| origin_matches_host(origin, host)),
    }
}

fn origin_matches_host(origin: &str, host: &str) -> bool {
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    matches!(authority, Some(a) if !a.contains('/') && a.eq_ignore_ascii_case(host.trim()))
}

/// The `Set-Cookie` value that opens a session. No `Max-Age`: the cookie
/// ends with the browser; the server ends the session after 12 idle hours
/// or 7 days in any case.
pub fn session_set_cookie(app: &App, value: &str) -> String {
    let secure = if app.secure_cookies { "; Secure" } else { "" };
    format!(
        "{}={value}; HttpOnly; SameSite=Strict; Path=/{secure}",
        sessions::COOKIE
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn session_clear_cookie(app: &App) -> String {
    let secure = if app.secure_cookies { "; Secure" } else { "" };
    format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}",
        sessions::COOKIE
    )
}

/// Guards the routes with `access` and documents it.
pub fn guarded(
    app: &App,
    access: impl Into<Access>,
    routes: UtoipaMethodRouter<App>,
) -> UtoipaMethodRouter<App> {
    let access = access.into();
    let (schemas, mut paths, method_router) = routes;
    for item in paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            let ext = op.extensions.get_or_insert_with(Default::default);
            ext.insert(
                PERMISSION_EXTENSION.to_string(),
                serde_json::Value::String(access.as_str().to_string()),
            );
            op.security = Some(match access {
                // `{}`: no credentials needed.
                Access::Public => vec![SecurityRequirement::default()],
                _ => vec![
                    SecurityRequirement::new("bearer", Vec::<String>::new()),
                    SecurityRequirement::new("session", Vec::<String>::new()),
                ],
            });
        }
    }
    let perm = match access {
        Access::Public => return (schemas, paths, method_router),
        Access::Authenticated => None,
        Access::Permission(p) => Some(p),
    };
    let layer = middleware::from_fn_with_state((app.clone(), perm), require);
    (schemas, paths, method_router.route_layer(layer))
}

/// Whether the caller may see personal data unmasked.
pub fn sees_personal_data(p: &Principal) -> bool {
    p.role.allows(Permission::PersonalData)
}

/// A 403 for a caller that is not a staff member's session.
pub fn session_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "session_required",
        "only a staff member's session can do this; API tokens have no password",
    )
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_signals() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(same_origin(&headers(&[("sec-fetch-site", "none")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!same_origin(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://a:1"),
            ("host", "a:1")
        ])));
        assert!(same_origin(&headers(&[
            ("origin", "http://A:1"),
            ("host", "a:1")
        ])));
        assert!(same_origin(&headers(&[
            ("origin", "https://rapport.example"),
            ("host", "rapport.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "a:1")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "null"),
            ("host", "a:1")
        ])));
        assert!(!same_origin(&headers(&[("host", "a:1")])));
        assert!(!cross_site(&headers(&[("host", "a:1")])));
        assert!(cross_site(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "a:1")
        ])));
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        let h = headers(&[
            ("cookie", "theme=dark; rapport_session=abc ; x=1"),
            ("cookie", "y=2"),
        ]);
        assert_eq!(session_cookie(&h), Some("abc"));
        assert_eq!(
            session_cookie(&headers(&[("cookie", "rapport_sessionx=1")])),
            None
        );
    }
}
