//! `/api/v1/visits`: record, correct, delete and list visits.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::NaiveDate;
use rapport_app::App;
use rapport_app::patients::MAX_LIMIT;
use rapport_app::visits::{self, VisitFilter};
use rapport_domain::patient::{Visit, VisitInput};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::default_limit;
use crate::actor::Who;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// A visit to record (or, with PUT, the full new state of one).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitIn {
    /// The hospital's id for the visit; unique within the hospital.
    pub visit_id: String,
    /// The hospital's id of the patient (who must exist).
    pub patient_id: String,
    /// `YYYY-MM-DD`.
    pub visit_date: String,
    /// Department name; created when new.
    pub department: Option<String>,
    /// The hospital's id of the doctor; created when new.
    pub doctor_id: Option<String>,
    pub doctor_name: Option<String>,
    /// `outpatient` (default), `inpatient`, `exam`, `checkup`, `telehealth`.
    pub kind: Option<String>,
    /// Amount as a decimal string with at most two places, `>= 0`.
    pub amount: String,
}

/// A recorded visit.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitOut {
    pub id: i64,
    pub visit_id: String,
    /// The platform id of the patient.
    pub patient: i64,
    /// The hospital's id of the patient.
    pub patient_id: String,
    pub visit_date: NaiveDate,
    pub department: Option<String>,
    pub doctor_id: Option<String>,
    pub doctor_name: Option<String>,
    pub kind: String,
    /// Decimal with two places.
    pub amount: String,
}

impl From<Visit> for VisitOut {
    fn from(v: Visit) -> Self {
        VisitOut {
            id: v.id,
            visit_id: v.visit_id,
            patient: v.patient_key,
            patient_id: v.patient_id,
            visit_date: v.visit_date,
            department: v.department,
            doctor_id: v.doctor_id,
            doctor_name: v.doctor_name,
            kind: v.kind.as_str().to_string(),
            amount: v.amount.to_string(),
        }
    }
}

/// A page of visits.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitPage {
    pub items: Vec<VisitOut>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only visits of this patient (platform id).
    pub patient: Option<i64>,
    /// From this date (inclusive).
    pub from: Option<NaiveDate>,
    /// To this date (inclusive).
    pub to: Option<NaiveDate>,
    pub cursor: Option<String>,
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 200)]
    pub limit: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    pub cursor: Option<String>,
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 200)]
    pub limit: i64,
}

fn input(b: VisitIn) -> (String, VisitInput) {
    (
        b.patient_id,
        VisitInput {
            visit_id: b.visit_id,
            visit_date: b.visit_date,
            department: b.department,
            doctor_id: b.doctor_id,
            doctor_name: b.doctor_name,
            kind: b.kind,
            amount: b.amount,
        },
    )
}

/// Record a visit; the patient's aggregates change with it.
#[utoipa::path(post, path = "/visits", tag = "visits",
    request_body = VisitIn,
    responses(
        (status = 201, body = VisitOut),
        (status = 409, description = "`visit_exists`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(app): State<App>,
    who: Who,
    ApiJson(b): ApiJson<VisitIn>,
) -> ApiResult<impl IntoResponse> {
    let (patient_id, input) = input(b);
    let v = visits::create(&app, &who.actor, &patient_id, &input).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/visits/{}", v.id))],
        axum::Json(VisitOut::from(v)),
    ))
}

/// One visit.
#[utoipa::path(get, path = "/visits/{id}", tag = "visits",
    params(("id" = i64, Path)),
    responses((status = 200, body = VisitOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<VisitOut>> {
    Ok(axum::Json(visits::get(&app, id).await?.into()))
}

/// Replace a visit (correct its date, amount, patient…).
#[utoipa::path(put, path = "/visits/{id}", tag = "visits",
    params(("id" = i64, Path)),
    request_body = VisitIn,
    responses(
        (status = 200, body = VisitOut),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn replace(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<VisitIn>,
) -> ApiResult<axum::Json<VisitOut>> {
    let (patient_id, input) = input(b);
    Ok(axum::Json(
        visits::update(&app, &who.actor, id, &patient_id, &input)
            .await?
            .into(),
    ))
}

/// Delete a visit (recorded in error).
#[utoipa::path(delete, path = "/visits/{id}", tag = "visits",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    visits::delete(&app, &who.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn check_limit(limit: i64) -> ApiResult<()> {
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "limit",
            "out_of_range",
            "must be between 1 and 200",
        ))
    }
}

/// Visits, newest first.
#[utoipa::path(get, path = "/visits", tag = "visits",
    params(ListParams),
    responses((status = 200, body = VisitPage), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(app): State<App>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<axum::Json<VisitPage>> {
    check_limit(p.limit)?;
    let page = visits::list(
        &app,
        &VisitFilter {
            patient_key: p.patient,
            from: p.from,
            to: p.to,
            cursor: p.cursor,
            limit: p.limit,
        },
    )
    .await?;
    Ok(axum::Json(VisitPage {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A patient's visits, newest first.
#[utoipa::path(get, path = "/patients/{id}/visits", tag = "visits",
    params(("id" = i64, Path, description = "The platform's patient id"), PageParams),
    responses((status = 200, body = VisitPage), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn of_patient(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<axum::Json<VisitPage>> {
    check_limit(p.limit)?;
    rapport_app::patients::view_exists(&app, id).await?;
    let page = visits::list(
        &app,
        &VisitFilter {
            patient_key: Some(id),
            cursor: p.cursor,
            limit: p.limit,
            ..Default::default()
        },
    )
    .await?;
    Ok(axum::Json(VisitPage {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A department of the hospital.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepartmentListItem {
    pub id: i64,
    pub name: String,
    /// Doctors whose home department this is.
    pub doctors: i64,
    /// Visits recorded in it.
    pub visits: i64,
}

/// The hospital's departments, by name.
#[utoipa::path(get, path = "/departments", tag = "visits",
    responses((status = 200, body = Vec<DepartmentListItem>)))]
pub async fn departments(State(app): State<App>) -> ApiResult<axum::Json<Vec<DepartmentListItem>>> {
    let rows = visits::departments(&app).await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|d| DepartmentListItem {
                id: d.id,
                name: d.name,
                doctors: d.doctors,
                visits: d.visits,
            })
            .collect(),
    ))
}

/// A doctor of the hospital.
#[derive(Debug, Serialize, ToSchema)]
pub struct DoctorOut {
    pub id: i64,
    /// The hospital's id for the doctor (`doctor_id` in visits).
    pub doctor_id: String,
    pub name: Option<String>,
    pub department: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DoctorParams {
    /// Only doctors of this department (its id).
    pub department: Option<i64>,
}

/// The hospital's doctors, by their hospital id.
#[utoipa::path(get, path = "/doctors", tag = "visits",
    params(DoctorParams),
    responses((status = 200, body = Vec<DoctorOut>)))]
pub async fn doctors(
    State(app): State<App>,
    ApiQuery(p): ApiQuery<DoctorParams>,
) -> ApiResult<axum::Json<Vec<DoctorOut>>> {
    let rows = visits::doctors(&app, p.department).await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|d| DoctorOut {
                id: d.id,
                doctor_id: d.code,
                name: d.name,
                department: d.department,
            })
            .collect(),
    ))
}
