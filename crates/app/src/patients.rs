//! Registering, reading, editing and finding patients.

use rapport_domain::PatientAggregates;
use rapport_domain::patient::{
    NewPatient, Patient, PatientFields, PatientInput, PatientPatch, Visit,
};
use rapport_store::patients::{self as store};
pub use rapport_store::patients::{DepartmentSpend, PatientQuery, PatientWithAggregates};
use rapport_store::visits::{self as vstore, VisitQuery};

use crate::audit::{self, Actor};
use crate::{App, AppError, Result};

/// Registers a new patient under the hospital's id.
pub async fn create(
    app: &App,
    actor: &Actor,
    patient_id: &str,
    input: &PatientInput,
) -> Result<Patient> {
    let p = NewPatient::parse(patient_id, input, app.today())?;
    let sealed = p
        .fields
        .national_id
        .as_deref()
        .map(|n| app.keys.seal(n))
        .transpose()?;
    let now = app.now();
    let mut tx = app.db.begin().await?;
    let id = store::insert(&mut tx, app.hospital_id, &p, sealed.as_ref(), now).await?;
    // Same national id, or same name and phone, as someone already
    // registered: flag the pair for the desk to review.
    rapport_store::import::flag_duplicates(&mut tx, app.hospital_id, id - 1, &[], now).await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "patient.create",
        Some(("patient", id)),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(Patient {
        id,
        hospital_id: app.hospital_id,
        patient_id: p.patient_id,
        fields: p.fields,
        sealed_national_id: sealed,
        erased_at: None,
        created_at: now,
        updated_at: now,
    })
}

/// Fills `fields.national_id` from the sealed value.
pub(crate) fn open(app: &App, p: &mut Patient) -> Result<()> {
    if let Some(s) = &p.sealed_national_id {
        p.fields.national_id = Some(app.keys.open(&s.ciphertext)?);
    }
    Ok(())
}

/// The names of the fields that differ, for the audit log (never values).
fn changed_fields(a: &PatientFields, b: &PatientFields) -> Vec<&'static str> {
    let mut out = Vec::new();
    macro_rules! cmp {
        ($($f:ident),*) => { $( if a.$f != b.$f { out.push(stringify!($f)); } )* };
    }
    cmp!(
        name,
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
        tags,
        notes,
        national_id
    );
    out
}

/// Applies a partial update; the result is validated as a whole.
pub async fn update(app: &App, actor: &Actor, id: i64, patch: &PatientPatch) -> Result<Patient> {
    let mut tx = app.db.begin().await?;
    let mut p = store::lock(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("patient"))?;
    if p.hospital_id != app.hospital_id || p.erased_at.is_some() {
        return Err(AppError::NotFound("patient"));
    }
    open(app, &mut p)?;
    let new_fields = patch.apply(&p.fields, app.today())?;
    let changed = changed_fields(&p.fields, &new_fields);
    if changed.contains(&"national_id") {
        p.sealed_national_id = new_fields
            .national_id
            .as_deref()
            .map(|n| app.keys.seal(n))
            .transpose()?;
    }
    p.fields = new_fields;
    p.updated_at = app.now();
    store::update(
        &mut tx,
        id,
        &p.fields,
        p.sealed_national_id.as_ref(),
        p.updated_at,
    )
    .await?;
    if !changed.is_empty() {
        let detail = serde_json::json!({ "fields": changed }).to_string();
        audit::record(
            app,
            &mut tx,
            actor,
            "patient.update",
            Some(("patient", id)),
            Some(detail),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(p)
}

/// A household member as the 360° view lists them.
#[derive(Debug, Clone)]
pub struct HouseholdMember {
    pub id: i64,
    pub patient_id: String,
    pub name: String,
}

/// Everything the 360° view shows about one patient.
#[derive(Debug, Clone)]
pub struct PatientView {
    pub patient: Patient,
    pub aggregates: Option<PatientAggregates>,
    /// The most recent visits, newest first.
    pub recent_visits: Vec<Visit>,
    pub departments: Vec<DepartmentSpend>,
    pub household: Vec<HouseholdMember>,
    /// From the latest scores refresh; `None` before one found the
    /// patient active.
    pub scores: Option<crate::analytics::StoredScore>,
}

/// How many visits the 360° view embeds; the rest are paged through the
/// visits list.
pub const VIEW_VISITS: i64 = 20;

/// Above this many visits the department breakdown is left to the
/// database instead of being computed from the fetched visits.
const VIEW_ALL_VISITS: i64 = 500;

pub async fn view(app: &App, actor: &Actor, id: i64) -> Result<PatientView> {
    let PatientWithAggregates {
        mut patient,
        aggregates,
    } = store::get(&app.db, id)
        .await?
        .filter(|p| p.patient.hospital_id == app.hospital_id)
        .ok_or(AppError::NotFound("patient"))?;
    open(app, &mut patient)?;
    audit::note(
        app,
        actor,
        "patient.view",
        Some(("patient", id)),
        "ok",
        None,
    );
    let (recent_visits, departments) = match &aggregates {
        None => (Vec::new(), Vec::new()),
        // One query serves both the timeline and the breakdown for all but
        // the most frequent visitors.
        Some(a) if a.visits <= VIEW_ALL_VISITS => {
            let mut all = vstore::list(
                &app.db,
                &VisitQuery {
                    hospital_id: app.hospital_id,
                    patient_key: Some(id),
                    limit: VIEW_ALL_VISITS,
                    ..Default::default()
                },
            )
            .await?;
            let departments = department_spend(&all);
            all.truncate(VIEW_VISITS as usize);
            (all, departments)
        }
        Some(_) => {
            let recent = vstore::list(
                &app.db,
                &VisitQuery {
                    hospital_id: app.hospital_id,
                    patient_key: Some(id),
                    limit: VIEW_VISITS,
                    ..Default::default()
                },
            )
            .await?;
            (recent, store::department_spend(&app.db, id).await?)
        }
    };
    let household = match &patient.fields.household {
        Some(h) => store::search(
            &app.db,
            &PatientQuery {
                hospital_id: app.hospital_id,
                household: Some(h.clone()),
                limit: 50,
                ..Default::default()
            },
        )
        .await?
        .into_iter()
        .filter(|m| m.patient.id != id)
        .map(|m| HouseholdMember {
            id: m.patient.id,
            patient_id: m.patient.patient_id,
            name: m.patient.fields.name,
        })
        .collect(),
        None => Vec::new(),
    };
    let scores = crate::analytics::patient_scores(app, id).await?;
    Ok(PatientView {
        patient,
        aggregates,
        recent_visits,
        departments,
        household,
        scores,
    })
}

/// Visits and spend per department, largest spend first (then by name),
/// the same order as the store's query.
pub fn department_spend(visits: &[Visit]) -> Vec<DepartmentSpend> {
    let mut by: std::collections::BTreeMap<Option<&str>, DepartmentSpend> = Default::default();
    for v in visits {
        let e = by
            .entry(v.department.as_deref())
            .or_insert_with(|| DepartmentSpend {
                department: v.department.clone(),
                visits: 0,
                monetary: 0,
                last_visit: v.visit_date,
            });
        e.visits += 1;
        e.monetary += v.amount.minor();
        e.last_visit = e.last_visit.max(v.visit_date);
    }
    let mut out: Vec<DepartmentSpend> = by.into_values().collect();
    out.sort_by(|a, b| {
        b.monetary
            .cmp(&a.monetary)
            .then_with(|| a.department.cmp(&b.department))
    });
    out
}

/// Most results one search returns.
pub const MAX_LIMIT: i64 = 200;

/// A page of search results and the cursor of the next page.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub async fn search(app: &App, mut q: PatientQuery) -> Result<Page<PatientWithAggregates>> {
    q.hospital_id = app.hospital_id;
    q.limit = q.limit.clamp(1, MAX_LIMIT);
    let want = q.limit;
    q.limit += 1;
    let mut items = store::search(&app.db, &q).await?;
    let next_cursor = if items.len() as i64 > want {
        items.truncate(want as usize);
        items.last().map(|p| p.patient.id.to_string())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// `Ok` when the patient exists in this hospital.
pub async fn view_exists(app: &App, id: i64) -> Result<()> {
    store::get(&app.db, id)
        .await?
        .filter(|p| p.patient.hospital_id == app.hospital_id)
        .map(|_| ())
        .ok_or(AppError::NotFound("patient"))
}
