//! `/api/v1/duplicates`: patients that are probably the same person, and
//! `POST /patients/{id}/merge`.

use axum::extract::State;
use chrono::{DateTime, Utc};
use rapport_app::App;
use rapport_app::duplicates;
use rapport_app::duplicates::DuplicatePair;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::actor::Who;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// A flagged pair: `patient_id` is probably `duplicate_of` (the older
/// record). Ids are the platform's patient ids.
#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicateOut {
    pub id: i64,
    pub patient_id: i64,
    pub duplicate_of: i64,
    /// `national_id` or `name_phone`.
    pub reason: String,
    /// `open`, `dismissed` or `merged`.
    pub status: String,
    pub detected_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
}

impl From<DuplicatePair> for DuplicateOut {
    fn from(p: DuplicatePair) -> Self {
        DuplicateOut {
            id: p.id,
            patient_id: p.patient_key,
            duplicate_of: p.duplicate_of,
            reason: p.reason,
            status: p.status,
            detected_at: p.detected_at,
            resolved_at: p.resolved_at,
            resolved_by: p.resolved_by,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DuplicateParams {
    /// `open` (default), `dismissed` or `merged`.
    pub status: Option<String>,
    /// The last `id` of the previous page.
    pub after: Option<i64>,
    #[serde(default = "super::default_limit")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicatePage {
    pub items: Vec<DuplicateOut>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<i64>,
}

/// Pairs of probable duplicates, oldest first.
#[utoipa::path(get, path = "/duplicates", tag = "patients", params(DuplicateParams),
    responses((status = 200, body = DuplicatePage), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(app): State<App>,
    ApiQuery(q): ApiQuery<DuplicateParams>,
) -> ApiResult<axum::Json<DuplicatePage>> {
    if !(1..=500).contains(&q.limit) {
        return Err(ApiError::invalid(
            "limit",
            "out_of_range",
            "must be 1 to 500",
        ));
    }
    let status = q.status.as_deref().unwrap_or("open");
    let items = duplicates::list(&app, status, q.after.unwrap_or(0), q.limit).await?;
    let next_after = (items.len() as i64 == q.limit)
        .then(|| items.last().map(|p| p.id))
        .flatten();
    Ok(axum::Json(DuplicatePage {
        items: items.into_iter().map(Into::into).collect(),
        next_after,
    }))
}

/// Mark a pair as two different people.
#[utoipa::path(post, path = "/duplicates/{id}/dismiss", tag = "patients",
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = DuplicateOut),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`duplicate_resolved`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn dismiss(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<DuplicateOut>> {
    Ok(axum::Json(
        duplicates::dismiss(&app, &who.actor, id).await?.into(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeIn {
    /// The patient to merge into this one; it keeps its hospital id,
    /// which resolves to this patient from now on.
    pub duplicate_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MergeOut {
    pub kept: i64,
    pub merged: i64,
    pub visits_moved: u64,
}

/// Merge a duplicate into this patient: visits and consent history move
/// here, aggregates are recomputed, empty fields are filled from the
/// duplicate. Recorded in the audit log.
#[utoipa::path(post, path = "/patients/{id}/merge", tag = "patients",
    params(("id" = i64, Path)),
    request_body = MergeIn,
    responses(
        (status = 200, body = MergeOut),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`patient_merged` or `patient_erased`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn merge(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<MergeIn>,
) -> ApiResult<axum::Json<MergeOut>> {
    let m = duplicates::merge(&app, &who.actor, id, b.duplicate_id).await?;
    Ok(axum::Json(MergeOut {
        kept: m.kept,
        merged: m.merged,
        visits_moved: m.visits_moved,
    }))
}
