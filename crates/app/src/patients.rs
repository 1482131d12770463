//! Registering, reading, editing and finding patients.

use rapport_domain::PatientAggregates;
use rapport_domain::patient::{NewPatient, Patient, PatientInput, PatientPatch, Visit};
use rapport_store::patients::{self as store};
pub use rapport_store::patients::{DepartmentSpend, PatientQuery, PatientWithAggregates};
use rapport_store::visits::{self as vstore, VisitQuery};

use crate::{App, AppError, Result};

/// Registers a new patient under the hospital's id.
pub async fn create(app: &App, patient_id: &str, input: &PatientInput) -> Result<Patient> {
    let p = NewPatient::parse(patient_id, input, app.today())?;
    let now = app.now();
    let mut tx = app.db.begin().await?;
    let id = store::insert(&mut tx, app.hospital_id, &p, now).await?;
    tx.commit().await?;
    Ok(Patient {
        id,
        hospital_id: app.hospital_id,
        patient_id: p.patient_id,
        fields: p.fields,
        created_at: now,
        updated_at: now,
    })
}

/// Applies a partial update; the result is validated as a whole.
pub async fn update(app: &App, id: i64, patch: &PatientPatch) -> Result<Patient> {
    let mut tx = app.db.begin().await?;
    let mut p = store::lock(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("patient"))?;
    if p.hospital_id != app.hospital_id {
        return Err(AppError::NotFound("patient"));
    }
    p.fields = patch.apply(&p.fields, app.today())?;
    p.updated_at = app.now();
    store::update(&mut tx, id, &p.fields, p.updated_at).await?;
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
}

/// How many visits the 360° view embeds; the rest are paged through the
/// visits list.
pub const VIEW_VISITS: i64 = 20;

/// Above this many visits the department breakdown is left to the
/// database instead of being computed from the fetched visits.
const VIEW_ALL_VISITS: i64 = 500;

pub async fn view(app: &App, id: i64) -> Result<PatientView> {
    let PatientWithAggregates {
        patient,
        aggregates,
    } = store::get(&app.db, id)
        .await?
        .filter(|p| p.patient.hospital_id == app.hospital_id)
        .ok_or(AppError::NotFound("patient"))?;
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
    Ok(PatientView {
        patient,
        aggregates,
        recent_visits,
        departments,
        household,
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
