//! Every `/api/v1` route is registered through [`guarded`], which both
//! wraps it in a layer demanding a bearer token whose role holds the
//! route's permission, and writes that permission into the OpenAPI
//! document (`x-permission`). The route-by-role test reads the document,
//! so the guard, the documentation and the test cannot drift apart.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rapport_app::App;
use rapport_app::tokens::{self, Principal};
use rapport_domain::auth::Permission;
use utoipa::openapi::security::SecurityRequirement;
use utoipa_axum::router::UtoipaMethodRouter;

use crate::error::ApiError;

/// The extension name that carries a route's permission in the OpenAPI
/// document.
pub const PERMISSION_EXTENSION: &str = "x-permission";

async fn require(
    State((app, perm)): State<(App, Permission)>,
    req: Request,
    next: Next,
) -> Response {
    check(app, Some(perm), req, next).await
}

/// Demands any valid token (for the OpenAPI document itself).
pub async fn require_token(State(app): State<App>, req: Request, next: Next) -> Response {
    check(app, None, req, next).await
}

async fn check(app: App, perm: Option<Permission>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(token) = token else {
        return ApiError::unauthenticated().into_response();
    };
    let principal = match tokens::authenticate(&app, token).await {
        Ok(Some(p)) => p,
        Ok(None) => return ApiError::unauthenticated().into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    if let Some(perm) = perm
        && !principal.role.allows(perm)
    {
        return ApiError::forbidden(perm.as_str()).into_response();
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// Guards the routes with `perm` and documents it.
pub fn guarded(
    app: &App,
    perm: Permission,
    routes: UtoipaMethodRouter<App>,
) -> UtoipaMethodRouter<App> {
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
                serde_json::Value::String(perm.as_str().to_string()),
            );
            op.security = Some(vec![SecurityRequirement::new(
                "bearer",
                Vec::<String>::new(),
            )]);
        }
    }
    let layer = middleware::from_fn_with_state((app.clone(), perm), require);
    (schemas, paths, method_router.route_layer(layer))
}

/// Whether the caller may see personal data unmasked.
pub fn sees_personal_data(p: &Principal) -> bool {
    p.role.allows(Permission::PersonalData)
}
