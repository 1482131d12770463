//! `/api/v1/segments`: saved segments. Definitions and counts need
//! `analytics:read` (changing them `segments:manage`); the members, which
//! are patient rows, need `patients:read` and are masked like
//! `GET /patients` for roles without personal data.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use rapport_app::App;
use rapport_app::segments::export::{self, Format};
use rapport_app::segments::{self, CountRow, Member, Reason, Segment, SegmentInput};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};

use super::analytics::PatientScoresOut;
use super::patients::{AggregatesOut, PatientOut, aggregates_out, patient_out};
use crate::actor::Who;
use crate::auth::sees_personal_data;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// A segment to save (or, with PUT, its full new state).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentIn {
    /// Unique within the hospital, 1 to 100 characters.
    pub name: String,
    pub description: Option<String>,
    /// The rule set: a group `{"all": [...]}` / `{"any": [...]}` of
    /// conditions `{"field": "monetary", "op": ">=", "value": "500.00"}`
    /// and groups. Fields: sex, birth_year, age, district, source_channel,
    /// registered_on, has_household, tags, visits, visit_days, monetary,
    /// first_visit, last_visit, recency_days, r_score, f_score, m_score,
    /// rfm_segment, p_alive, expected_visits_90d, clv_12m, churn_risk,
    /// consent.CHANNEL.PURPOSE. Operators: =, !=, <, <=, >, >=, in, not_in,
    /// between, is_null, is_not_null, prefix, contains, contains_any,
    /// contains_all. Dates are `YYYY-MM-DD` or `{"days_ago": N}`.
    #[schema(value_type = Object)]
    pub rules: Value,
}

/// An unsaved rule set to count.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentPreviewIn {
    /// As in `SegmentIn`.
    #[schema(value_type = Object)]
    pub rules: Value,
}

/// One recorded size of a segment.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentCountOut {
    pub patients: i64,
    /// The day relative dates were resolved against.
    pub as_of: NaiveDate,
    pub counted_at: DateTime<Utc>,
    /// `refresh` (after a scores refresh) or `request`.
    pub reason: String,
}

impl From<CountRow> for SegmentCountOut {
    fn from(c: CountRow) -> Self {
        SegmentCountOut {
            patients: c.patients,
            as_of: c.as_of,
            counted_at: c.counted_at,
            reason: c.reason,
        }
    }
}

/// A saved segment.
#[derive(Debug, Serialize, ToSchema)]
pub struct SavedSegmentOut {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// The rule set in canonical form.
    #[schema(value_type = Object)]
    pub rules: Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The latest recorded count; `null` before the first.
    pub latest_count: Option<SegmentCountOut>,
}

impl From<Segment> for SavedSegmentOut {
    fn from(s: Segment) -> Self {
        SavedSegmentOut {
            id: s.row.id,
            name: s.row.name,
            description: s.row.description,
            rules: s.rules.to_json(),
            created_by: s.row.created_by,
            created_at: s.row.created_at,
            updated_at: s.row.updated_at,
            latest_count: s.latest.map(Into::into),
        }
    }
}

/// A live count.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentLiveCountOut {
    /// Patients the rules select now (erased patients excluded).
    pub patients: i64,
    /// Today in the hospital's zone, against which relative dates were
    /// resolved.
    pub as_of: NaiveDate,
}

/// A member: the patient (masked as in `GET /patients`), their aggregates
/// and stored scores.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentMemberOut {
    #[serde(flatten)]
    pub patient: PatientOut,
    /// `null` before the first visit.
    pub aggregates: Option<AggregatesOut>,
    /// `null` when the last scores refresh did not score the patient.
    pub scores: Option<PatientScoresOut>,
}

/// A page of members, by platform id.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentMemberPage {
    pub items: Vec<SegmentMemberOut>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SegmentMembersParams {
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SegmentHistoryParams {
    /// The latest this many counts, 1 to 1000 (default 100).
    pub limit: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SegmentExportParams {
    /// `csv` (the default).
    pub format: Option<String>,
}

fn input(b: SegmentIn) -> SegmentInput {
    SegmentInput {
        name: b.name,
        description: b.description,
        rules: b.rules,
    }
}

fn limit(raw: Option<&str>, default: i64, max: i64) -> ApiResult<i64> {
    match raw.map(str::trim) {
        None | Some("") => Ok(default),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    "out_of_range",
                    format!("must be a whole number from 1 to {max}"),
                )
            }),
    }
}

/// Save a segment.
#[utoipa::path(post, path = "/segments", tag = "segments",
    request_body = SegmentIn,
    responses(
        (status = 201, body = SavedSegmentOut),
        (status = 409, description = "`segment_exists`: the name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; rule errors name their path, e.g. `rules.all[2].value`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(app): State<App>,
    who: Who,
    ApiJson(b): ApiJson<SegmentIn>,
) -> ApiResult<impl IntoResponse> {
    let s = segments::create(&app, &who.actor, &input(b)).await?;
    let location = format!("/api/v1/segments/{}", s.row.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(SavedSegmentOut::from(s)),
    ))
}

/// Every saved segment, by name, with its latest recorded count.
#[utoipa::path(get, path = "/segments", tag = "segments",
    responses((status = 200, body = Vec<SavedSegmentOut>)))]
pub async fn list(State(app): State<App>) -> ApiResult<axum::Json<Vec<SavedSegmentOut>>> {
    let all = segments::list(&app).await?;
    Ok(axum::Json(all.into_iter().map(Into::into).collect()))
}

/// One saved segment.
#[utoipa::path(get, path = "/segments/{id}", tag = "segments",
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = SavedSegmentOut),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<SavedSegmentOut>> {
    Ok(axum::Json(segments::get(&app, id).await?.into()))
}

/// Replace a segment's name, description and rules.
#[utoipa::path(put, path = "/segments/{id}", tag = "segments",
    params(("id" = i64, Path)),
    request_body = SegmentIn,
    responses(
        (status = 200, body = SavedSegmentOut),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`segment_exists`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn replace(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<SegmentIn>,
) -> ApiResult<axum::Json<SavedSegmentOut>> {
    Ok(axum::Json(
        segments::update(&app, &who.actor, id, &input(b))
            .await?
            .into(),
    ))
}

/// Delete a segment and its count history.
#[utoipa::path(delete, path = "/segments/{id}", tag = "segments",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    segments::delete(&app, &who.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The number of patients the segment selects now (not recorded).
#[utoipa::path(get, path = "/segments/{id}/count", tag = "segments",
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = SegmentLiveCountOut),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn count(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<SegmentLiveCountOut>> {
    let (patients, as_of) = segments::count(&app, id).await?;
    Ok(axum::Json(SegmentLiveCountOut { patients, as_of }))
}

/// Count an unsaved rule set (a segment builder's live count).
#[utoipa::path(post, path = "/segments/preview", tag = "segments",
    request_body = SegmentPreviewIn,
    responses(
        (status = 200, body = SegmentLiveCountOut),
        (status = 422, description = "Rule errors name their path, e.g. `rules.any[0].op`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn preview(
    State(app): State<App>,
    ApiJson(b): ApiJson<SegmentPreviewIn>,
) -> ApiResult<axum::Json<SegmentLiveCountOut>> {
    let rules = segments::parse_rules(&b.rules)?;
    let (patients, as_of) = segments::count_rules(&app, &rules).await?;
    Ok(axum::Json(SegmentLiveCountOut { patients, as_of }))
}

/// The recorded counts of a segment, oldest first: one after every scores
/// refresh and one per `POST` here.
#[utoipa::path(get, path = "/segments/{id}/history", tag = "segments",
    params(("id" = i64, Path), SegmentHistoryParams),
    responses(
        (status = 200, body = Vec<SegmentCountOut>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<SegmentHistoryParams>,
) -> ApiResult<axum::Json<Vec<SegmentCountOut>>> {
    let limit = limit(q.limit.as_deref(), 100, segments::MAX_HISTORY)?;
    let h = segments::history(&app, id, limit).await?;
    Ok(axum::Json(h.into_iter().map(Into::into).collect()))
}

/// Count a segment now and record the count in its history.
#[utoipa::path(post, path = "/segments/{id}/history", tag = "segments",
    params(("id" = i64, Path)),
    responses(
        (status = 201, body = SegmentCountOut),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn record(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<(StatusCode, axum::Json<SegmentCountOut>)> {
    let c = segments::record_count(&app, id, Reason::Request).await?;
    Ok((StatusCode::CREATED, axum::Json(c.into())))
}

fn member_out(m: Member, today: NaiveDate, unmasked: bool) -> SegmentMemberOut {
    SegmentMemberOut {
        aggregates: m.aggregates.map(|a| aggregates_out(a, today)),
        scores: m.scores.map(Into::into),
        patient: patient_out(m.patient, unmasked),
    }
}

/// The segment's members now, by platform id, with their aggregates and
/// scores (cursor pages).
#[utoipa::path(get, path = "/segments/{id}/members", tag = "segments",
    params(("id" = i64, Path), SegmentMembersParams),
    responses(
        (status = 200, body = SegmentMemberPage),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn members(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<SegmentMembersParams>,
) -> ApiResult<axum::Json<SegmentMemberPage>> {
    let limit = limit(q.limit.as_deref(), 50, segments::MAX_PAGE)?;
    let after = match q.cursor.as_deref() {
        Some(c) => Some(c.parse::<i64>().map_err(|_| {
            ApiError::invalid(
                "cursor",
                "invalid_cursor",
                "is not a cursor this API returned",
            )
        })?),
        None => None,
    };
    let page = segments::members(&app, id, after, limit).await?;
    let today = app.today();
    let unmasked = sees_personal_data(&who.principal);
    Ok(axum::Json(SegmentMemberPage {
        items: page
            .items
            .into_iter()
            .map(|m| member_out(m, today, unmasked))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// The chunks of an export as a body stream.
struct Chunks(mpsc::Receiver<Result<Vec<u8>, String>>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .poll_recv(cx)
            .map(|c| c.map(|r| r.map(Bytes::from).map_err(std::io::Error::other)))
    }
}

/// Download the members as a file (streamed), masked as in
/// `GET /patients` for roles without personal data. Recorded in the audit
/// log (`segment.export`).
#[utoipa::path(get, path = "/segments/{id}/export", tag = "segments",
    params(("id" = i64, Path), SegmentExportParams),
    responses(
        (status = 200, description = "CSV with a header row: id, patient_id, name, sex, birth_year, phone, email, district, source_channel, registered_on, tags, visits, visit_days, monetary, first_visit, last_visit, recency_days, r_score, f_score, m_score, rfm_segment, p_alive, expected_visits_90d, clv_12m, churn_risk", content_type = "text/csv", body = String),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<SegmentExportParams>,
) -> ApiResult<Response> {
    let format = match q.format.as_deref() {
        None => Format::Csv,
        Some(f) => Format::parse(f).ok_or_else(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
            ApiError::invalid(
                "format",
                "invalid_enum",
                format!("must be one of {}", names.join(", ")),
            )
        })?,
    };
    let unmasked = sees_personal_data(&who.principal);
    let e = export::start(&app, &who.actor, id, format, unmasked).await?;
    Ok((
        [
            (header::CONTENT_TYPE, e.format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", e.file_name),
            ),
        ],
        Body::from_stream(Chunks(e.chunks)),
    )
        .into_response())
}
