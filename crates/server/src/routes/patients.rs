//! `/api/v1/patients`: register, read (the 360° view), edit and search.

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rapport_app::App;
use rapport_app::patients::PatientQuery;
use rapport_app::patients::{self, PatientView};
use rapport_domain::PatientAggregates;
use rapport_domain::auth::mask;
use rapport_domain::money::format_minor;
use rapport_domain::patient::{Patient, PatientInput, PatientPatch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::visits::VisitOut;
use super::{default_limit, double_option};
use crate::actor::Who;
use crate::auth::sees_personal_data;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// A new patient. Only `patient_id` (the hospital's own id) is required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePatient {
    /// The hospital's id for the patient; unique within the hospital.
    pub patient_id: String,
    pub name: Option<String>,
    /// `M`, `F` or `U` (also `男`, `女`).
    pub sex: Option<String>,
    /// `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    pub birth_year: Option<i32>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub district: Option<String>,
    pub source_channel: Option<String>,
    /// `YYYY-MM-DD`.
    pub registered_on: Option<String>,
    /// `sms`, `email`, `wechat` or `phone`.
    pub preferred_channel: Option<String>,
    /// `zh-CN`, `en` or `es`.
    pub preferred_language: Option<String>,
    /// A household key shared by family members.
    pub household: Option<String>,
    pub tags: Option<Vec<String>>,
    pub notes: Option<String>,
    /// National id (resident identity card or passport number); stored
    /// encrypted.
    pub national_id: Option<String>,
}

/// The answer to a registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    /// The platform's id, used in every other route.
    pub id: i64,
    pub patient_id: String,
}

/// A partial update (JSON merge patch): absent fields stay, `null` clears.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePatient {
    #[serde(default, deserialize_with = "double_option")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub sex: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub birth_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub birth_year: Option<Option<i32>>,
    #[serde(default, deserialize_with = "double_option")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub district: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub source_channel: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub registered_on: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub preferred_channel: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub preferred_language: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub household: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub tags: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double_option")]
    pub notes: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub national_id: Option<Option<String>>,
}

/// A patient's profile. Phone and email are masked (`138****5678`) for
/// roles without the personal-data permission; `masked` says so.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientOut {
    pub id: i64,
    pub patient_id: String,
    pub name: String,
    pub sex: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub birth_year: Option<i32>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub district: Option<String>,
    pub source_channel: Option<String>,
    pub registered_on: Option<NaiveDate>,
    pub preferred_channel: Option<String>,
    pub preferred_language: Option<String>,
    pub household: Option<String>,
    pub tags: Vec<String>,
    /// Free-text notes; hidden (`null`) for roles without personal data.
    pub notes: Option<String>,
    /// Masked (`110***********002X`) for roles without personal data.
    pub national_id: Option<String>,
    pub masked: bool,
    /// When the patient's personal data was erased on request.
    pub erased_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Per-patient aggregates over all visits.
#[derive(Debug, Serialize, ToSchema)]
pub struct AggregatesOut {
    pub first_visit: NaiveDate,
    pub last_visit: NaiveDate,
    pub visits: i64,
    pub visit_days: i64,
    /// Total spend, decimal with two places.
    pub monetary: String,
    pub months_with_visits: i64,
    /// Days from the last visit to today.
    pub recency_days: i64,
}

/// Visits and spend in one department.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepartmentOut {
    pub department: Option<String>,
    pub visits: i64,
    pub monetary: String,
    pub last_visit: NaiveDate,
}

/// Another member of the patient's household.
#[derive(Debug, Serialize, ToSchema)]
pub struct HouseholdMemberOut {
    pub id: i64,
    pub patient_id: String,
    pub name: String,
}

/// The 360° view of a patient.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientViewOut {
    #[serde(flatten)]
    pub patient: PatientOut,
    /// Age in whole years today, from the birth date or year.
    pub age: Option<i32>,
    /// `null` before the first visit.
    pub aggregates: Option<AggregatesOut>,
    /// The latest visits, newest first (at most 20; page through
    /// `/api/v1/patients/{id}/visits` for all).
    pub visits: Vec<VisitOut>,
    /// Spend per department, largest first.
    pub departments: Vec<DepartmentOut>,
    pub household_members: Vec<HouseholdMemberOut>,
    /// R/F/M, segment, P(alive), expected visits, 12-month value and churn
    /// risk from the latest scores refresh; `null` before one.
    pub scores: Option<super::analytics::PatientScoresOut>,
    /// The patient's membership and points; `null` when not enrolled.
    pub membership: Option<super::members::MemberOut>,
}

/// One search hit.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientListItem {
    #[serde(flatten)]
    pub patient: PatientOut,
    pub aggregates: Option<AggregatesOut>,
}

/// A page of patients.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientPage {
    pub items: Vec<PatientListItem>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Free text: a hospital id or phone (exact) or the start of a name.
    pub q: Option<String>,
    /// The start of the name.
    pub name: Option<String>,
    /// A phone number (exact).
    pub phone: Option<String>,
    /// The hospital's id (exact).
    pub patient_id: Option<String>,
    /// Members of this household.
    pub household: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 200)]
    pub limit: i64,
}

pub(crate) fn patient_out(p: Patient, unmasked: bool) -> PatientOut {
    let f = p.fields;
    let m = |v: Option<String>| if unmasked { v } else { v.map(|s| mask(&s)) };
    PatientOut {
        id: p.id,
        patient_id: p.patient_id,
        name: f.name,
        sex: f.sex.map(|s| s.as_str().to_string()),
        birth_date: f.birth_date,
        birth_year: f.birth_year,
        phone: m(f.phone),
        email: m(f.email),
        district: f.district,
        source_channel: f.source_channel,
        registered_on: f.registered_on,
        preferred_channel: f.preferred_channel.map(|c| c.as_str().to_string()),
        preferred_language: f.preferred_language.map(|c| c.as_str().to_string()),
        household: f.household,
        tags: f.tags,
        notes: if unmasked { f.notes } else { None },
        national_id: m(f.national_id),
        masked: !unmasked,
        erased_at: p.erased_at,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

pub(crate) fn aggregates_out(a: PatientAggregates, today: NaiveDate) -> AggregatesOut {
    AggregatesOut {
        first_visit: a.first_visit,
        last_visit: a.last_visit,
        visits: a.visits,
        visit_days: a.visit_days,
        monetary: format_minor(i128::from(a.monetary)),
        months_with_visits: a.months_with_visits,
        recency_days: (today - a.last_visit).num_days(),
    }
}

fn age(birth_date: Option<NaiveDate>, birth_year: Option<i32>, today: NaiveDate) -> Option<i32> {
    match (birth_date, birth_year) {
        (Some(b), _) => {
            let mut a = today.year() - b.year();
            if (today.month(), today.day()) < (b.month(), b.day()) {
                a -= 1;
            }
            Some(a.max(0))
        }
        (None, Some(y)) => Some((today.year() - y).max(0)),
        _ => None,
    }
}

/// Register a patient.
#[utoipa::path(post, path = "/patients", tag = "patients",
    request_body = CreatePatient,
    responses(
        (status = 201, description = "Registered", body = Created),
        (status = 409, description = "`patient_exists`: the hospital id is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    axum::extract::State(app): axum::extract::State<App>,
    who: Who,
    ApiJson(body): ApiJson<CreatePatient>,
) -> ApiResult<impl IntoResponse> {
    let input = PatientInput {
        name: body.name,
        sex: body.sex,
        birth_date: body.birth_date,
        birth_year: body.birth_year,
        phone: body.phone,
        email: body.email,
        district: body.district,
        source_channel: body.source_channel,
        registered_on: body.registered_on,
        preferred_channel: body.preferred_channel,
        preferred_language: body.preferred_language,
        household: body.household,
        tags: body.tags,
        notes: body.notes,
        national_id: body.national_id,
    };
    let p = patients::create(&app, &who.actor, &body.patient_id, &input).await?;
    let location = format!("/api/v1/patients/{}", p.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(Created {
            id: p.id,
            patient_id: p.patient_id,
        }),
    ))
}

/// The patient's 360° view: profile, aggregates, latest visits, spend per
/// department, household.
#[utoipa::path(get, path = "/patients/{id}", tag = "patients",
    params(("id" = i64, Path, description = "The platform's patient id")),
    responses(
        (status = 200, body = PatientViewOut),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    axum::extract::State(app): axum::extract::State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<PatientViewOut>> {
    let PatientView {
        patient,
        aggregates,
        recent_visits,
        departments,
        household,
        scores,
    } = patients::view(&app, &who.actor, id).await?;
    let membership = rapport_app::loyalty::of_patient(&app, id).await?;
    let today = app.today();
    let unmasked = sees_personal_data(&who.principal);
    Ok(axum::Json(PatientViewOut {
        membership: membership.map(Into::into),
        scores: scores.map(Into::into),
        age: age(patient.fields.birth_date, patient.fields.birth_year, today),
        patient: patient_out(patient, unmasked),
        aggregates: aggregates.map(|a| aggregates_out(a, today)),
        visits: recent_visits.into_iter().map(VisitOut::from).collect(),
        departments: departments
            .into_iter()
            .map(|d| DepartmentOut {
                department: d.department,
                visits: d.visits,
                monetary: format_minor(i128::from(d.monetary)),
                last_visit: d.last_visit,
            })
            .collect(),
        household_members: household
            .into_iter()
            .map(|h| HouseholdMemberOut {
                id: h.id,
                patient_id: h.patient_id,
                name: h.name,
            })
            .collect(),
    }))
}

/// Edit a patient (merge patch).
#[utoipa::path(patch, path = "/patients/{id}", tag = "patients",
    params(("id" = i64, Path, description = "The platform's patient id")),
    request_body = UpdatePatient,
    responses(
        (status = 200, body = PatientOut),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    axum::extract::State(app): axum::extract::State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<UpdatePatient>,
) -> ApiResult<axum::Json<PatientOut>> {
    let patch = PatientPatch {
        name: b.name,
        sex: b.sex,
        birth_date: b.birth_date,
        birth_year: b.birth_year,
        phone: b.phone,
        email: b.email,
        district: b.district,
        source_channel: b.source_channel,
        registered_on: b.registered_on,
        preferred_channel: b.preferred_channel,
        preferred_language: b.preferred_language,
        household: b.household,
        tags: b.tags,
        notes: b.notes,
        national_id: b.national_id,
    };
    let p = patients::update(&app, &who.actor, id, &patch).await?;
    Ok(axum::Json(patient_out(
        p,
        sees_personal_data(&who.principal),
    )))
}

/// Search patients by name, phone or hospital id.
#[utoipa::path(get, path = "/patients", tag = "patients",
    params(SearchParams),
    responses(
        (status = 200, body = PatientPage),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn search(
    axum::extract::State(app): axum::extract::State<App>,
    who: Who,
    ApiQuery(p): ApiQuery<SearchParams>,
) -> ApiResult<axum::Json<PatientPage>> {
    if !(1..=patients::MAX_LIMIT).contains(&p.limit) {
        return Err(ApiError::invalid(
            "limit",
            "out_of_range",
            "must be between 1 and 200",
        ));
    }
    let after = match p.cursor.as_deref() {
        Some(c) => Some(c.parse::<i64>().map_err(|_| {
            ApiError::invalid(
                "cursor",
                "invalid_cursor",
                "is not a cursor this API returned",
            )
        })?),
        None => None,
    };
    let page = patients::search(
        &app,
        PatientQuery {
            q: p.q,
            name: p.name,
            phone: p.phone,
            patient_id: p.patient_id,
            household: p.household,
            after,
            limit: p.limit,
            ..Default::default()
        },
    )
    .await?;
    let today = app.today();
    let unmasked = sees_personal_data(&who.principal);
    Ok(axum::Json(PatientPage {
        items: page
            .items
            .into_iter()
            .map(|p| PatientListItem {
                patient: patient_out(p.patient, unmasked),
                aggregates: p.aggregates.map(|a| aggregates_out(a, today)),
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}
