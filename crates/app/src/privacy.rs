//! The patient's rights over their data: consent, a full export, and
//! erasure by anonymisation. Every one of these is recorded in the audit
//! log in the transaction that performs it.

use rapport_domain::ValidationErrors;
use rapport_domain::consent::{self, Decision, Purpose};
use rapport_domain::patient::{Channel, PatientFields};
use rapport_store::audit::AuditQuery;
pub use rapport_store::consents::ConsentRecord;
use rapport_store::consents::{self as store};
use rapport_store::patients as pstore;
use rapport_store::visits::{self as vstore, VisitQuery};
use serde_json::{Value, json};

use crate::audit::{self, Actor};
use crate::{App, AppError, Result};

/// A consent decision as received.
#[derive(Debug, Clone, Default)]
pub struct ConsentInput {
    pub channel: String,
    pub purpose: String,
    pub granted: bool,
    /// How it was obtained: `paper_form`, `phone_call`, `wechat`, `web_link`…
    pub source: String,
    pub note: Option<String>,
}

/// Records a decision; it is in force at once.
pub async fn record_consent(
    app: &App,
    actor: &Actor,
    patient: i64,
    c: &ConsentInput,
) -> Result<ConsentRecord> {
    let mut errs = ValidationErrors::default();
    let channel = Channel::from_code(&c.channel);
    if channel.is_none() {
        errs.push(
            "channel",
            "invalid_enum",
            format!("must be one of {}", Channel::expected()),
        );
    }
    if Purpose::from_code(&c.purpose).is_none() {
        errs.push("purpose", "invalid_enum", "must be one of care, marketing");
    }
    let source = c.source.trim();
    if source.is_empty() || source.chars().count() > 50 || source.chars().any(char::is_control) {
        errs.push("source", "invalid_text", "must be 1 to 50 characters");
    }
    if c.note.as_deref().is_some_and(|n| n.chars().count() > 500) {
        errs.push("note", "too_long", "must be at most 500 characters");
    }
    errs.into_result(())?;
    let mut tx = app.db.begin().await?;
    let p = pstore::lock(&mut tx, patient)
        .await?
        .filter(|p| p.hospital_id == app.hospital_id && p.erased_at.is_none());
    if p.is_none() {
        return Err(AppError::NotFound("patient"));
    }
    let mut rec = ConsentRecord {
        id: 0,
        patient_key: patient,
        channel: c.channel.clone(),
        purpose: c.purpose.clone(),
        granted: c.granted,
        source: source.to_string(),
        recorded_by: actor.who.clone(),
        recorded_at: app.now(),
        note: c.note.clone(),
    };
    rec.id = store::insert(&mut tx, app.hospital_id, &rec).await?;
    let detail =
        json!({"channel": rec.channel, "purpose": rec.purpose, "granted": rec.granted}).to_string();
    audit::record(
        app,
        &mut tx,
        actor,
        "consent.record",
        Some(("patient", patient)),
        Some(detail),
    )
    .await?;
    tx.commit().await?;
    Ok(rec)
}

/// A patient's consent: the decision in force per channel and purpose, and
/// the whole history.
pub struct ConsentState {
    pub in_force: Vec<(Channel, Purpose, Option<ConsentRecord>)>,
    pub history: Vec<ConsentRecord>,
}

pub async fn consents(app: &App, patient: i64) -> Result<ConsentState> {
    crate::patients::view_exists(app, patient).await?;
    let history = store::history(&app.db, patient).await?;
    let decisions: Vec<(Decision, &ConsentRecord)> = history
        .iter()
        .filter_map(|r| {
            Some((
                Decision {
                    channel: Channel::from_code(&r.channel)?,
                    purpose: Purpose::from_code(&r.purpose)?,
                    granted: r.granted,
                    at: r.recorded_at,
                },
                r,
            ))
        })
        .collect();
    let only: Vec<Decision> = decisions.iter().map(|d| d.0.clone()).collect();
    let mut in_force = Vec::new();
    for ch in Channel::ALL {
        for pu in Purpose::ALL {
            let rec = consent::in_force(&only, *ch, *pu).and_then(|d| {
                decisions
                    .iter()
                    .rev()
                    .find(|(x, _)| x == d)
                    .map(|(_, r)| (*r).clone())
            });
            in_force.push((*ch, *pu, rec));
        }
    }
    Ok(ConsentState { in_force, history })
}

/// Everything held about one patient, as JSON, with personal data in the
/// clear (national id opened). Recorded as `patient.export`.
pub async fn export(app: &App, actor: &Actor, patient: i64) -> Result<Value> {
    let found = pstore::get(&app.db, patient)
        .await?
        .filter(|p| p.patient.hospital_id == app.hospital_id);
    let Some(mut p) = found else {
        return Err(AppError::NotFound("patient"));
    };
    crate::patients::open(app, &mut p.patient)?;
    let visits = vstore::list(
        &app.db,
        &VisitQuery {
            hospital_id: app.hospital_id,
            patient_key: Some(patient),
            limit: 1_000_000,
            ..Default::default()
        },
    )
    .await?;
    let consents = store::history(&app.db, patient).await?;
    let mut tx = app.db.begin().await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "patient.export",
        Some(("patient", patient)),
        None,
    )
    .await?;
    tx.commit().await?;
    let accesses = audit::list(
        app,
        AuditQuery {
            subject_type: Some("patient".into()),
            subject_id: Some(patient),
            limit: 10_000,
            ..Default::default()
        },
    )
    .await?;
    let f = &p.patient.fields;
    Ok(json!({
        "exported_at": app.now(),
        "patient": {
            "id": p.patient.id,
            "patient_id": p.patient.patient_id,
            "name": f.name,
            "sex": f.sex.map(|s| s.as_str()),
            "birth_date": f.birth_date,
            "birth_year": f.birth_year,
            "national_id": f.national_id,
            "phone": f.phone,
            "email": f.email,
            "district": f.district,
            "source_channel": f.source_channel,
            "registered_on": f.registered_on,
            "preferred_channel": f.preferred_channel.map(|c| c.as_str()),
            "preferred_language": f.preferred_language.map(|l| l.as_str()),
            "household": f.household,
            "tags": f.tags,
            "notes": f.notes,
            "created_at": p.patient.created_at,
            "updated_at": p.patient.updated_at,
            "erased_at": p.patient.erased_at,
        },
        "aggregates": p.aggregates.map(|a| json!({
            "first_visit": a.first_visit, "last_visit": a.last_visit, "visits": a.visits,
            "visit_days": a.visit_days, "monetary": rapport_domain::money::format_minor(i128::from(a.monetary)),
        })),
        "visits": visits.iter().map(|v| json!({
            "visit_id": v.visit_id, "visit_date": v.visit_date, "department": v.department,
            "doctor_id": v.doctor_id, "doctor_name": v.doctor_name, "kind": v.kind.as_str(), "amount": v.amount.to_string(),
        })).collect::<Vec<_>>(),
        "consents": consents.iter().map(|c| json!({
            "channel": c.channel, "purpose": c.purpose, "granted": c.granted, "source": c.source,
            "recorded_by": c.recorded_by, "recorded_at": c.recorded_at, "note": c.note,
        })).collect::<Vec<_>>(),
        "access_log": accesses.iter().map(|e| json!({
            "at": e.at, "actor": e.actor, "role": e.role, "action": e.action, "outcome": e.outcome,
        })).collect::<Vec<_>>(),
    }))
}

/// Erases a patient's personal data by anonymisation: every personal field
/// is cleared, the hospital id is replaced by `ERASED-<id>`, consent
/// history is removed. Visits stay (without anything that names the
/// patient) so revenue, aggregates and ledgers keep adding up.
pub async fn erase(app: &App, actor: &Actor, patient: i64, reason: &str) -> Result<()> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(ValidationErrors::single(
            "reason",
            "invalid_text",
            "must be 1 to 200 characters",
        )
        .into());
    }
    let mut tx = app.db.begin().await?;
    let p = pstore::lock(&mut tx, patient)
        .await?
        .filter(|p| p.hospital_id == app.hospital_id);
    let Some(p) = p else {
        return Err(AppError::NotFound("patient"));
    };
    if p.erased_at.is_some() {
        return Err(AppError::Conflict {
            code: "already_erased",
            message: "this patient was already erased".into(),
        });
    }
    let now = app.now();
    pstore::update(&mut tx, patient, &PatientFields::default(), None, now).await?;
    pstore::mark_erased(&mut tx, patient, &format!("ERASED-{patient}"), now).await?;
    store::delete_for_patient(&mut tx, patient).await?;
    let detail = json!({ "reason": reason }).to_string();
    audit::record(
        app,
        &mut tx,
        actor,
        "patient.erase",
        Some(("patient", patient)),
        Some(detail),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
