//! Probable duplicate patients: review, dismiss, merge.
//!
//! Imports and registrations flag pairs (same national id, or same name
//! and phone). Merging moves everything the duplicate owns (visits,
//! consent history, membership with its points) to the patient kept, recomputes the kept patient's
//! aggregates, fills the kept patient's empty fields from the duplicate,
//! and leaves the duplicate as a husk whose hospital id still resolves to
//! the kept patient (so later files naming it land in the right place).
//! The audit log records the merge; nothing is deleted.

use rapport_store::duplicates as store;
pub use rapport_store::duplicates::DuplicatePair;
use rapport_store::{patients as store_patients, visits as store_visits};

use crate::audit::{self, Actor};
use crate::{App, AppError};

type Result<T> = std::result::Result<T, AppError>;

pub async fn list(app: &App, status: &str, after: i64, limit: i64) -> Result<Vec<DuplicatePair>> {
    if !matches!(status, "open" | "dismissed" | "merged") {
        return Err(AppError::Validation(
            rapport_domain::ValidationErrors::single(
                "status",
                "invalid",
                "must be open, dismissed or merged",
            ),
        ));
    }
    Ok(store::list(&app.db, app.hospital_id, status, after, limit).await?)
}

/// The open pairs a patient is in (shown on the 360° view).
pub async fn open_for(app: &App, patient_key: i64) -> Result<Vec<DuplicatePair>> {
    Ok(store::open_for(&app.db, patient_key).await?)
}

/// Marks a pair as not the same person.
pub async fn dismiss(app: &App, actor: &Actor, id: i64) -> Result<DuplicatePair> {
    let mut tx = app.db.begin().await?;
    let pair = store::get(&mut tx, app.hospital_id, id)
        .await?
        .ok_or(AppError::NotFound("duplicate"))?;
    if pair.status != "open" {
        return Err(AppError::Conflict {
            code: "duplicate_resolved",
            message: format!("this pair was already {}", pair.status),
        });
    }
    store::resolve(&mut tx, id, "dismissed", &actor.who, app.now()).await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "duplicate.dismiss",
        Some(("patient", pair.patient_key)),
        Some(format!("{{\"pair\":{id}}}")),
    )
    .await?;
    let pair = store::get(&mut tx, app.hospital_id, id)
        .await?
        .ok_or(AppError::NotFound("duplicate"))?;
    tx.commit().await?;
    Ok(pair)
}

/// What a merge did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Merged {
    pub kept: i64,
    pub merged: i64,
    pub visits_moved: u64,
}

/// Merges patient `from` into `into`.
pub async fn merge(app: &App, actor: &Actor, into: i64, from: i64) -> Result<Merged> {
    if into == from {
        return Err(AppError::Validation(
            rapport_domain::ValidationErrors::single(
                "duplicate_id",
                "invalid",
                "a patient cannot be merged into itself",
            ),
        ));
    }
    let now = app.now();
    let mut tx = app.db.begin().await?;
    // Lock in id order, so two merges of the same pair cannot deadlock.
    let (lo, hi) = (into.min(from), into.max(from));
    let a = store_patients::lock(&mut tx, lo).await?;
    let b = store_patients::lock(&mut tx, hi).await?;
    let (Some(a), Some(b)) = (a, b) else {
        return Err(AppError::NotFound("patient"));
    };
    let (mut keep, dup) = if a.id == into { (a, b) } else { (b, a) };
    if keep.hospital_id != app.hospital_id || dup.hospital_id != app.hospital_id {
        return Err(AppError::NotFound("patient"));
    }
    for p in [&keep, &dup] {
        if store::merged_into(&mut tx, p.id).await?.is_some() {
            return Err(AppError::Conflict {
                code: "patient_merged",
                message: format!("patient {} was already merged into another", p.id),
            });
        }
        if p.erased_at.is_some() {
            return Err(AppError::Conflict {
                code: "patient_erased",
                message: format!("patient {} was erased", p.id),
            });
        }
    }
    if store::is_member(&mut tx, keep.id).await? && store::is_member(&mut tx, dup.id).await? {
        return Err(AppError::Conflict {
            code: "both_members",
            message: "both patients are members: close one membership (its points can be moved by an adjustment) before merging".into(),
        });
    }
    // The kept record wins; its empty fields take the duplicate's.
    let f = &mut keep.fields;
    let d = &dup.fields;
    if f.name.is_empty() {
        f.name.clone_from(&d.name);
    }
    macro_rules! fill {
        ($($field:ident),*) => {$(
            if f.$field.is_none() {
                f.$field = d.$field.clone();
            }
        )*};
    }
    fill!(
        sex,
        birth_date,
        birth_year,
        phone,
        email,
        district,
        source_channel,
        registered_on,
        preferred_channel,
        preferred_language,
        household,
        notes
    );
    for t in &d.tags {
        if !f.tags.contains(t) {
            f.tags.push(t.clone());
        }
    }
    let sealed = keep
        .sealed_national_id
        .clone()
        .or_else(|| dup.sealed_national_id.clone());
    store_patients::update(&mut tx, keep.id, &keep.fields, sealed.as_ref(), now).await?;
    let moved = store::merge(&mut tx, dup.id, keep.id, &actor.who, now).await?;
    store_visits::refresh_aggregates(&mut tx, keep.id).await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "patient.merge",
        Some(("patient", keep.id)),
        Some(format!(
            "{{\"merged\":{},\"visits_moved\":{moved}}}",
            dup.id
        )),
    )
    .await?;
    tx.commit().await?;
    Ok(Merged {
        kept: keep.id,
        merged: dup.id,
        visits_moved: moved,
    })
}
