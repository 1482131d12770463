//! Recording, correcting and deleting visits. Every change rewrites the
//! patient's aggregates in the same transaction, after locking the patient,
//! and settles the points the visit earns its patient's membership (and a
//! referrer's reward) there too (`loyalty::earning`).

use chrono::NaiveDate;
use rapport_domain::ValidationErrors;
use rapport_domain::patient::{Visit, VisitFields, VisitInput};
use rapport_store::Tx;
use rapport_store::patients as pstore;
use rapport_store::visits::{self as store, VisitQuery};

use crate::audit::{self, Actor};
use crate::patients::{MAX_LIMIT, Page};
use crate::{App, AppError, Result};

/// The platform id of the patient with the hospital's id `patient_id`;
/// a 422 naming `patient_id` when there is none.
async fn key_of(app: &App, tx: &mut Tx, patient_id: &str) -> Result<i64> {
    pstore::key_by_patient_id(tx, app.hospital_id, patient_id)
        .await?
        .ok_or_else(|| {
            ValidationErrors::single(
                "patient_id",
                "unknown_patient",
                format!("no patient with id {patient_id:?}"),
            )
            .into()
        })
}

async fn patient_key(app: &App, tx: &mut Tx, patient_id: &str) -> Result<i64> {
    let key = key_of(app, tx, patient_id).await?;
    pstore::lock(tx, key).await?;
    Ok(key)
}

/// Locks a visit of this hospital (visit before patient, everywhere, so
/// writers cannot deadlock) and returns its patient's key.
async fn locked_visit(app: &App, tx: &mut Tx, id: i64) -> Result<i64> {
    match store::lock(tx, id).await? {
        Some((hospital, key)) if hospital == app.hospital_id => Ok(key),
        _ => Err(AppError::NotFound("visit")),
    }
}

/// Records a visit of the patient with the hospital's id `patient_id`.
pub async fn create(
    app: &App,
    actor: &Actor,
    patient_id: &str,
    input: &VisitInput,
) -> Result<Visit> {
    let v = VisitFields::parse(input, app.today())?;
    let mut tx = app.db.begin().await?;
    let key = patient_key(app, &mut tx, patient_id).await?;
    let id = store::insert(&mut tx, app.hospital_id, key, &v, app.now()).await?;
    store::refresh_aggregates(&mut tx, key).await?;
    crate::loyalty::earning::after_visit_written(app, &mut tx, actor, id).await?;
    finish(app, tx, actor, "visit.create", key, id).await
}

/// Reads the written visit back, records the change and commits.
async fn finish(
    app: &App,
    mut tx: Tx,
    actor: &Actor,
    action: &str,
    patient: i64,
    id: i64,
) -> Result<Visit> {
    let visit = store::get_tx(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("visit"))?;
    audit::record(
        app,
        &mut tx,
        actor,
        action,
        Some(("patient", patient)),
        Some(visit_detail(id)),
    )
    .await?;
    tx.commit().await?;
    Ok(visit)
}

/// The audit detail of a visit change: its id, nothing clinical.
fn visit_detail(id: i64) -> String {
    serde_json::json!({ "visit": id }).to_string()
}

/// Rewrites a visit; when it moves to another patient, both patients'
/// aggregates are refreshed.
pub async fn update(
    app: &App,
    actor: &Actor,
    id: i64,
    patient_id: &str,
    input: &VisitInput,
) -> Result<Visit> {
    let v = VisitFields::parse(input, app.today())?;
    let mut tx = app.db.begin().await?;
    let old_key = locked_visit(app, &mut tx, id).await?;
    // Lock in key order so two moves in opposite directions cannot deadlock.
    let new_key = key_of(app, &mut tx, patient_id).await?;
    let mut keys = [old_key, new_key];
    keys.sort_unstable();
    pstore::lock(&mut tx, keys[0]).await?;
    if keys[1] != keys[0] {
        pstore::lock(&mut tx, keys[1]).await?;
    }
    store::update(&mut tx, id, new_key, &v, app.now()).await?;
    store::refresh_aggregates(&mut tx, new_key).await?;
    if old_key != new_key {
        store::refresh_aggregates(&mut tx, old_key).await?;
        crate::loyalty::earning::unsettle_referral(
            app,
            &mut tx,
            actor,
            old_key,
            id,
            "moved to another patient",
        )
        .await?;
        audit::record(
            app,
            &mut tx,
            actor,
            "visit.move",
            Some(("patient", old_key)),
            Some(visit_detail(id)),
        )
        .await?;
    }
    crate::loyalty::earning::after_visit_written(app, &mut tx, actor, id).await?;
    finish(app, tx, actor, "visit.update", new_key, id).await
}

pub async fn delete(app: &App, actor: &Actor, id: i64) -> Result<()> {
    let mut tx = app.db.begin().await?;
    let key = locked_visit(app, &mut tx, id).await?;
    pstore::lock(&mut tx, key).await?;
    crate::loyalty::earning::before_visit_deleted(app, &mut tx, actor, id, key).await?;
    store::delete(&mut tx, id).await?;
    store::refresh_aggregates(&mut tx, key).await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "visit.delete",
        Some(("patient", key)),
        Some(visit_detail(id)),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn get(app: &App, id: i64) -> Result<Visit> {
    store::get(&app.db, id)
        .await?
        .filter(|v| v.hospital_id == app.hospital_id)
        .ok_or(AppError::NotFound("visit"))
}

/// Filters for listing visits.
#[derive(Debug, Clone, Default)]
pub struct VisitFilter {
    pub patient_key: Option<i64>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub cursor: Option<String>,
    pub limit: i64,
}

fn parse_cursor(c: &str) -> Option<(NaiveDate, i64)> {
    let (d, i) = c.split_once('_')?;
    Some((
        NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?,
        i.parse().ok()?,
    ))
}

/// Visits newest first, a page at a time.
pub async fn list(app: &App, f: &VisitFilter) -> Result<Page<Visit>> {
    let before = match f.cursor.as_deref() {
        Some(c) => Some(parse_cursor(c).ok_or_else(|| {
            ValidationErrors::single(
                "cursor",
                "invalid_cursor",
                "is not a cursor this API returned",
            )
        })?),
        None => None,
    };
    let want = f.limit.clamp(1, MAX_LIMIT);
    let mut items = store::list(
        &app.db,
        &VisitQuery {
            hospital_id: app.hospital_id,
            patient_key: f.patient_key,
            from: f.from,
            to: f.to,
            before,
            limit: want + 1,
        },
    )
    .await?;
    let next_cursor = if items.len() as i64 > want {
        items.truncate(want as usize);
        items.last().map(|v| format!("{}_{}", v.visit_date, v.id))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

pub use rapport_store::visits::{DepartmentRow, DoctorRow};

/// The hospital's departments with their numbers of doctors and visits.
pub async fn departments(app: &App) -> Result<Vec<DepartmentRow>> {
    Ok(store::departments(&app.db, app.hospital_id).await?)
}

/// The hospital's doctors, optionally of one department.
pub async fn doctors(app: &App, department: Option<i64>) -> Result<Vec<DoctorRow>> {
    Ok(store::doctors(&app.db, app.hospital_id, department).await?)
}
