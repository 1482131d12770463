//! Consent, data-rights requests (export, erasure) and the audit log.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rapport_app::App;
use rapport_app::audit;
use rapport_app::audit::AuditQuery;
use rapport_app::privacy::ConsentRecord;
use rapport_app::privacy::{self, ConsentInput};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::default_limit;
use crate::actor::Who;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// A consent decision to record.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentIn {
    /// `sms`, `email`, `wechat` or `phone`.
    pub channel: String,
    /// `care` or `marketing`.
    pub purpose: String,
    /// `false` withdraws consent, at once.
    pub granted: bool,
    /// How it was obtained: `paper_form`, `phone_call`, `wechat`, `web_link`…
    pub source: String,
    pub note: Option<String>,
}

/// A recorded decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentOut {
    pub id: i64,
    pub channel: String,
    pub purpose: String,
    pub granted: bool,
    pub source: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
    pub note: Option<String>,
}

impl From<ConsentRecord> for ConsentOut {
    fn from(r: ConsentRecord) -> Self {
        ConsentOut {
            id: r.id,
            channel: r.channel,
            purpose: r.purpose,
            granted: r.granted,
            source: r.source,
            recorded_by: r.recorded_by,
            recorded_at: r.recorded_at,
            note: r.note,
        }
    }
}

/// The decision in force for one channel and purpose (`granted` is false
/// when no decision was ever recorded: no decision, no consent).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentInForce {
    pub channel: String,
    pub purpose: String,
    pub granted: bool,
    /// The decision in force, `null` when there is none.
    pub decision: Option<ConsentOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Consents {
    pub in_force: Vec<ConsentInForce>,
    /// Every decision, oldest first.
    pub history: Vec<ConsentOut>,
}

/// A patient's consent per channel and purpose, with its history.
#[utoipa::path(get, path = "/patients/{id}/consents", tag = "privacy",
    params(("id" = i64, Path)),
    responses((status = 200, body = Consents), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn consents(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<Consents>> {
    let s = privacy::consents(&app, id).await?;
    Ok(axum::Json(Consents {
        in_force: s
            .in_force
            .into_iter()
            .map(|(c, p, rec)| ConsentInForce {
                channel: c.as_str().into(),
                purpose: p.as_str().into(),
                granted: rec.as_ref().is_some_and(|r| r.granted),
                decision: rec.map(Into::into),
            })
            .collect(),
        history: s.history.into_iter().map(Into::into).collect(),
    }))
}

/// Record a consent decision (grant or withdraw); in force at once.
#[utoipa::path(post, path = "/patients/{id}/consents", tag = "privacy",
    params(("id" = i64, Path)),
    request_body = ConsentIn,
    responses(
        (status = 201, body = ConsentOut),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn record_consent(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<ConsentIn>,
) -> ApiResult<(StatusCode, axum::Json<ConsentOut>)> {
    let input = ConsentInput {
        channel: b.channel,
        purpose: b.purpose,
        granted: b.granted,
        source: b.source,
        note: b.note,
    };
    let rec = privacy::record_consent(&app, &who.actor, id, &input).await?;
    Ok((StatusCode::CREATED, axum::Json(rec.into())))
}

/// Everything held about a patient, unmasked, as JSON (data-access
/// request). Recorded in the audit log.
#[utoipa::path(get, path = "/patients/{id}/export", tag = "privacy",
    params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn export(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    Ok(axum::Json(privacy::export(&app, &who.actor, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseIn {
    /// Why (the request's reference); kept in the audit log.
    pub reason: String,
}

/// Erase a patient's personal data (anonymisation). Visits and figures
/// stay, without anything that names the patient.
#[utoipa::path(post, path = "/patients/{id}/erase", tag = "privacy",
    params(("id" = i64, Path)),
    request_body = EraseIn,
    responses(
        (status = 204),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already_erased`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn erase(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<EraseIn>,
) -> ApiResult<StatusCode> {
    privacy::erase(&app, &who.actor, id, &b.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// `patient` (with `subject_id`): who touched this patient?
    pub subject_type: Option<String>,
    pub subject_id: Option<i64>,
    /// `user:admin`, `token:3 (HIS sync)`…
    pub actor: Option<String>,
    /// `patient.view`, `patient.update`, `patient.export`, `patient.erase`, `consent.record`…
    pub action: Option<String>,
    pub cursor: Option<String>,
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 200)]
    pub limit: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryOut {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub role: Option<String>,
    pub action: String,
    pub subject_type: Option<String>,
    pub subject_id: Option<i64>,
    /// `ok` or `denied`.
    pub outcome: String,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntryOut>,
    pub next_cursor: Option<String>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/audit", tag = "privacy",
    params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn audit_log(
    State(app): State<App>,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> ApiResult<axum::Json<AuditPage>> {
    if !(1..=200).contains(&p.limit) {
        return Err(ApiError::invalid(
            "limit",
            "out_of_range",
            "must be between 1 and 200",
        ));
    }
    let bad_cursor = || {
        ApiError::invalid(
            "cursor",
            "invalid_cursor",
            "is not a cursor this API returned",
        )
    };
    let before = match p.cursor.as_deref() {
        Some(c) => {
            let (t, i) = c.rsplit_once('_').ok_or_else(bad_cursor)?;
            let t = DateTime::parse_from_rfc3339(t)
                .map_err(|_| bad_cursor())?
                .with_timezone(&Utc);
            Some((t, i.parse::<i64>().map_err(|_| bad_cursor())?))
        }
        None => None,
    };
    let mut items = audit::list(
        &app,
        AuditQuery {
            subject_type: p.subject_type,
            subject_id: p.subject_id,
            actor: p.actor,
            action: p.action,
            before,
            limit: p.limit + 1,
            ..Default::default()
        },
    )
    .await?;
    let next_cursor = if items.len() as i64 > p.limit {
        items.truncate(p.limit as usize);
        items.last().map(|e| {
            format!(
                "{}_{}",
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                e.id
            )
        })
    } else {
        None
    };
    Ok(axum::Json(AuditPage {
        items: items
            .into_iter()
            .map(|e| AuditEntryOut {
                id: e.id,
                at: e.at,
                actor: e.actor,
                role: e.role,
                action: e.action,
                subject_type: e.subject_type,
                subject_id: e.subject_id,
                outcome: e.outcome,
                ip: e.ip,
                detail: e.detail,
            })
            .collect(),
        next_cursor,
    }))
}
