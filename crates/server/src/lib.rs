//! The HTTP face of Rapport: the REST API under `/api/v1`, its OpenAPI 3.1
//! document (generated from the handlers), and `/healthz`. Handlers are
//! thin: extract, call one use case in `rapport-app`, shape the answer.

pub mod actor;
pub mod auth;
pub mod console;
pub mod error;
pub mod extract;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use rapport_app::App;
use rapport_domain::auth::Permission;
use routes::{
    analytics, dashboard, duplicates, imports, loyalty, members, patients, privacy, segments,
    session, tokens, users, visits,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Access, guarded};
use crate::error::ApiError;

/// Largest request body accepted (1 MiB); file uploads get their own limit.
pub const BODY_LIMIT: usize = 1024 * 1024;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                rapport_app::sessions::COOKIE,
                "The cookie set by POST /session. Requests that change something also need \
                 X-CSRF-Token and a same-origin Sec-Fetch-Site or Origin header.",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rapport API",
        description = "Patient relationships and membership for hospitals. Every route needs `Authorization: Bearer TOKEN` \
                       or a staff session cookie from `POST /session` (then changing requests also need `X-CSRF-Token`); \
                       the permission each route needs is in its `x-permission` member (`public`: none, \
                       `authenticated`: any caller). Errors are \
                       `application/problem+json` with a stable `code`. Money is a decimal string with two places.",
        version = "1.0.0"
    ),
    servers((url = "/api/v1")),
    modifiers(&BearerAuth),
    components(schemas(error::Problem, error::ProblemField)),
    tags(
        (name = "patients", description = "Patients and their 360° view"),
        (name = "visits", description = "Visits; every change keeps the patient's aggregates current"),
        (name = "tokens", description = "API tokens for integrations"),
        (name = "session", description = "Staff login, logout and password"),
        (name = "users", description = "Staff accounts"),
        (name = "privacy", description = "Consent, data-rights requests and the audit log"),
        (name = "members", description = "Membership, points ledgers and tiers"),
        (name = "loyalty", description = "Earning rules and campaigns, quotes, rewards and vouchers, referrals, programme settings and reports"),
        (name = "analytics", description = "Figures about the patient base, lifetime value, scores and A/B tests; no personal data"),
        (name = "imports", description = "Files from hospital systems in (CSV, XLSX, FHIR), patient lists out"),
        (name = "segments", description = "Saved segments: rule sets over patients, their counts over time, members and exports"),
    )
)]
struct ApiDoc;

/// The API routes and their OpenAPI document.
pub fn api(app: &App) -> (Router<App>, utoipa::openapi::OpenApi) {
    use Permission::*;
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(guarded(app, PatientsWrite, routes!(patients::create)))
        .routes(guarded(app, PatientsRead, routes!(patients::search)))
        .routes(guarded(app, PatientsRead, routes!(patients::get)))
        .routes(guarded(app, PatientsWrite, routes!(patients::update)))
        .routes(guarded(app, VisitsRead, routes!(visits::of_patient)))
        .routes(guarded(app, VisitsWrite, routes!(visits::create)))
        .routes(guarded(app, VisitsRead, routes!(visits::list)))
        .routes(guarded(app, VisitsRead, routes!(visits::get)))
        .routes(guarded(app, VisitsWrite, routes!(visits::replace)))
        .routes(guarded(app, VisitsWrite, routes!(visits::delete)))
        .routes(guarded(app, VisitsRead, routes!(visits::departments)))
        .routes(guarded(app, VisitsRead, routes!(visits::doctors)))
        .routes(guarded(app, PatientsRead, routes!(privacy::consents)))
        .routes(guarded(
            app,
            PatientsWrite,
            routes!(privacy::record_consent),
        ))
        .routes(guarded(app, DataRights, routes!(privacy::export)))
        .routes(guarded(app, DataRights, routes!(privacy::erase)))
        .routes(guarded(app, AuditRead, routes!(privacy::audit_log)))
        .routes(guarded(
            app,
            PatientsRead,
            routes!(analytics::patient_scores),
        ))
        .routes(guarded(app, AnalyticsRead, routes!(analytics::summary)))
        .routes(guarded(app, AnalyticsRead, routes!(analytics::clv)))
        .routes(guarded(app, AnalyticsRead, routes!(analytics::abtest)))
        .routes(guarded(app, AnalyticsRead, routes!(analytics::runs)))
        .routes(guarded(app, AnalyticsManage, routes!(analytics::refresh)))
        .routes(guarded(app, DataImport, routes!(imports::upload)))
        .routes(guarded(app, DataImport, routes!(imports::list)))
        .routes(guarded(app, DataImport, routes!(imports::get)))
        .routes(guarded(app, DataImport, routes!(imports::rejects)))
        .routes(guarded(
            app,
            PatientsRead,
            routes!(imports::export_patients),
        ))
        .routes(guarded(app, PatientsRead, routes!(duplicates::list)))
        .routes(guarded(app, PatientsWrite, routes!(duplicates::dismiss)))
        .routes(guarded(app, PatientsWrite, routes!(duplicates::merge)))
        .routes(guarded(app, AnalyticsRead, routes!(dashboard::dashboard)))
        .routes(guarded(app, SegmentsManage, routes!(segments::create)))
        .routes(guarded(app, AnalyticsRead, routes!(segments::list)))
        .routes(guarded(app, AnalyticsRead, routes!(segments::get)))
        .routes(guarded(app, SegmentsManage, routes!(segments::replace)))
        .routes(guarded(app, SegmentsManage, routes!(segments::delete)))
        .routes(guarded(app, AnalyticsRead, routes!(segments::count)))
        .routes(guarded(app, AnalyticsRead, routes!(segments::preview)))
        .routes(guarded(app, AnalyticsRead, routes!(segments::history)))
        .routes(guarded(app, SegmentsManage, routes!(segments::record)))
        .routes(guarded(app, PatientsRead, routes!(segments::members)))
        .routes(guarded(app, PatientsRead, routes!(segments::export)))
        .routes(guarded(app, AdminUsers, routes!(tokens::create)))
        .routes(guarded(app, AdminUsers, routes!(tokens::list)))
        .routes(guarded(app, AdminUsers, routes!(tokens::revoke)))
        .routes(guarded(app, Access::Public, routes!(session::login)))
        .routes(guarded(
            app,
            Access::Authenticated,
            routes!(session::current),
        ))
        .routes(guarded(
            app,
            Access::Authenticated,
            routes!(session::logout),
        ))
        .routes(guarded(
            app,
            Access::Authenticated,
            routes!(session::change_password),
        ))
        .routes(guarded(app, AdminUsers, routes!(users::create)))
        .routes(guarded(app, AdminUsers, routes!(users::list)))
        .routes(guarded(app, AdminUsers, routes!(users::deactivate)))
        .routes(guarded(app, MembersWrite, routes!(members::create)))
        .routes(guarded(app, MembersRead, routes!(members::list)))
        .routes(guarded(app, MembersRead, routes!(members::get)))
        .routes(guarded(app, MembersWrite, routes!(members::set_status)))
        .routes(guarded(app, MembersWrite, routes!(members::points)))
        .routes(guarded(app, LoyaltyManage, routes!(members::adjust)))
        .routes(guarded(app, LoyaltyManage, routes!(members::reverse)))
        .routes(guarded(app, MembersRead, routes!(members::ledger)))
        .routes(guarded(app, MembersRead, routes!(members::tier_history)))
        .routes(guarded(app, MembersRead, routes!(members::get_tiers)))
        .routes(guarded(app, LoyaltyManage, routes!(members::put_tiers)))
        .routes(guarded(app, LoyaltyManage, routes!(members::run_expiry)))
        .routes(guarded(
            app,
            LoyaltyManage,
            routes!(members::run_tier_review),
        ))
        .routes(guarded(app, MembersRead, routes!(loyalty::list_rules)))
        .routes(guarded(app, LoyaltyManage, routes!(loyalty::create_rule)))
        .routes(guarded(app, LoyaltyManage, routes!(loyalty::put_rule)))
        .routes(guarded(app, LoyaltyManage, routes!(loyalty::delete_rule)))
        .routes(guarded(app, MembersRead, routes!(loyalty::list_campaigns)))
        .routes(guarded(
            app,
            LoyaltyManage,
            routes!(loyalty::create_campaign),
        ))
        .routes(guarded(app, LoyaltyManage, routes!(loyalty::put_campaign)))
        .routes(guarded(
            app,
            LoyaltyManage,
            routes!(loyalty::delete_campaign),
        ))
        .routes(guarded(app, MembersRead, routes!(loyalty::earn_quote)))
        .routes(guarded(app, MembersRead, routes!(loyalty::visit_earnings)))
        .routes(guarded(app, MembersRead, routes!(loyalty::price_quote)))
        .routes(guarded(app, MembersRead, routes!(loyalty::list_rewards)))
        .routes(guarded(app, LoyaltyManage, routes!(loyalty::put_reward)))
        .routes(guarded(app, MembersWrite, routes!(loyalty::redeem)))
        .routes(guarded(app, MembersRead, routes!(loyalty::member_vouchers)))
        .routes(guarded(app, MembersRead, routes!(loyalty::get_voucher)))
        .routes(guarded(app, MembersWrite, routes!(loyalty::use_voucher)))
        .routes(guarded(app, MembersWrite, routes!(loyalty::cancel_voucher)))
        .routes(guarded(app, MembersWrite, routes!(loyalty::referral_code)))
        .routes(guarded(app, MembersWrite, routes!(loyalty::invitations)))
        .routes(guarded(app, MembersRead, routes!(loyalty::funnel)))
        .routes(guarded(app, MembersRead, routes!(loyalty::get_program)))
        .routes(guarded(app, LoyaltyManage, routes!(loyalty::put_program)))
        .routes(guarded(app, MembersRead, routes!(loyalty::liability)))
        .routes(guarded(app, MembersRead, routes!(loyalty::tiers_report)))
        .routes(guarded(app, MembersRead, routes!(loyalty::points_report)))
        .split_for_parts();
    error::document_common_problems(&mut doc);
    (router, doc)
}

/// The OpenAPI document as served.
pub fn openapi(app: &App) -> utoipa::openapi::OpenApi {
    api(app).1
}

async fn healthz(State(app): State<App>) -> Response {
    match app.db.ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is not reachable",
            )
            .into_response()
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

/// The whole HTTP application.
pub fn router(app: App) -> Router {
    let (api, doc) = api(&app);
    let doc = Arc::new(serde_json::to_value(&doc).unwrap_or_default());
    let openapi_json = get(move || {
        let doc = doc.clone();
        async move { Json(doc.as_ref().clone()) }
    })
    .route_layer(middleware::from_fn_with_state(
        app.clone(),
        auth::require_token,
    ));
    let api = api
        .route("/openapi.json", openapi_json)
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        });
    Router::new()
        .route("/healthz", get(healthz))
        .nest("/api/v1", api)
        .merge(console::router(&app))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}

/// Serves until `shutdown` resolves, then drains open requests.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(?addr, "serving");
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
