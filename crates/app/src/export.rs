//! Writing the database out: FHIR R4 NDJSON for other systems, and patient
//! lists as CSV or XLSX for people, masked per the caller's role.
//!
//! Both read in keyset pages (ids ascending), so memory stays flat
//! whatever the number of patients and visits.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Seek, Write};
use std::path::Path;

use rapport_domain::auth::{Permission, Role, mask};
use rapport_domain::patient::Patient;
use rapport_interop::fhir_export::{self, Department, Doctor};
use rapport_interop::table::{Cell, Format, TableWriter};
use rapport_store::{patients as store_patients, visits as store_visits};
use serde::Serialize;

use crate::audit::{self, Actor};
use crate::{App, AppError};

const PAGE: i64 = 10_000;

/// How many resources of each type were written.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FhirCounts {
    pub patients: usize,
    pub encounters: usize,
    /// One per visit, with its amount.
    pub claims: usize,
    pub practitioners: usize,
    pub organizations: usize,
}

fn io(e: std::io::Error) -> AppError {
    AppError::Internal(format!("writing the export: {e}"))
}

fn create(dir: &Path, name: &str) -> Result<BufWriter<std::fs::File>, AppError> {
    std::fs::File::create(dir.join(name))
        .map(|f| BufWriter::with_capacity(1 << 20, f))
        .map_err(io)
}

/// Writes `Patient.ndjson`, `Encounter.ndjson`, `Practitioner.ndjson` and
/// `Organization.ndjson` into `dir` (created if needed), and
/// `Claim.ndjson` with each visit's amount, so that an export imports
/// back whole.
pub async fn fhir(app: &App, actor: &Actor, dir: &Path) -> Result<FhirCounts, AppError> {
    std::fs::create_dir_all(dir).map_err(io)?;
    let h = app.hospital_id;
    let mut counts = FhirCounts::default();

    let mut out = create(dir, "Patient.ndjson")?;
    let mut after = 0;
    loop {
        let page = store_patients::page_after(&app.db, h, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        counts.patients += fhir_export::write_ndjson(
            &mut out,
            page.iter()
                .map(|p| fhir_export::patient(&p.patient_id, &p.fields)),
        )
        .map_err(io)?;
    }
    out.flush().map_err(io)?;

    let mut doctors: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut departments: BTreeSet<String> = BTreeSet::new();
    let mut out = create(dir, "Encounter.ndjson")?;
    let mut claims = create(dir, "Claim.ndjson")?;
    let currency = rapport_store::hospitals::currency(&app.db, h).await?;
    let mut after = 0;
    loop {
        let page = store_visits::page_after(&app.db, h, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for v in &page {
            if let Some(d) = &v.doctor_id {
                let name = doctors.entry(d.clone()).or_default();
                if name.is_none() {
                    name.clone_from(&v.doctor_name);
                }
            }
            if let Some(d) = &v.department {
                departments.insert(d.clone());
            }
        }
        counts.encounters +=
            fhir_export::write_ndjson(&mut out, page.iter().map(fhir_export::encounter))
                .map_err(io)?;
        counts.claims += fhir_export::write_ndjson(
            &mut claims,
            page.iter().map(|v| fhir_export::claim(v, &currency)),
        )
        .map_err(io)?;
    }
    out.flush().map_err(io)?;
    claims.flush().map_err(io)?;

    counts.practitioners = fhir_export::write_ndjson(
        create(dir, "Practitioner.ndjson")?,
        doctors
            .into_iter()
            .map(|(doctor_id, name)| fhir_export::practitioner(&Doctor { doctor_id, name })),
    )
    .map_err(io)?;
    counts.organizations = fhir_export::write_ndjson(
        create(dir, "Organization.ndjson")?,
        departments
            .into_iter()
            .map(|name| fhir_export::organization(&Department { name })),
    )
    .map_err(io)?;

    let detail = serde_json::json!({"dir": dir.display().to_string(), "counts": counts});
    audit::record_now(app, actor, "export.fhir", Some(detail.to_string())).await?;
    Ok(counts)
}

/// The columns of a patient list.
pub const PATIENT_LIST_COLUMNS: &[&str] = &[
    "patient_id",
    "name",
    "sex",
    "birth_year",
    "phone",
    "email",
    "district",
    "source_channel",
    "registered_on",
    "visits",
    "monetary",
    "first_visit",
    "last_visit",
];

/// Writes every patient (not merged away, not erased) as a list, with
/// phone and email masked for a role without `personal_data:read`.
/// Returns the number of rows.
pub async fn patient_list<W: Write + Seek>(
    app: &App,
    actor: &Actor,
    role: Option<Role>,
    format: Format,
    out: W,
) -> Result<(u64, W), AppError> {
    let unmasked = role.is_none_or(|r| r.allows(Permission::PersonalData));
    let mut w = TableWriter::new(format, out, PATIENT_LIST_COLUMNS).map_err(io)?;
    let h = app.hospital_id;
    let mut after = 0;
    let mut n = 0u64;
    loop {
        let page = store_patients::page_after(&app.db, h, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let keys: Vec<i64> = page.iter().map(|p| p.id).collect();
        let aggs = store_patients::aggregates_of(&app.db, &keys).await?;
        for p in page.iter().filter(|p| p.erased_at.is_none()) {
            write_patient(&mut w, p, aggs.get(&p.id), unmasked)?;
            n += 1;
        }
    }
    let out = w.finish().map_err(io)?;
    let detail = serde_json::json!({"rows": n, "format": format.extension(), "masked": !unmasked});
    audit::record_now(app, actor, "export.patients", Some(detail.to_string())).await?;
    Ok((n, out))
}

fn text(s: &str) -> Cell<'_> {
    if s.is_empty() {
        Cell::Empty
    } else {
        Cell::Text(s)
    }
}

fn opt(s: &Option<String>) -> Cell<'_> {
    s.as_deref().map_or(Cell::Empty, Cell::Text)
}

fn write_patient<W: Write + Seek>(
    w: &mut TableWriter<W>,
    p: &Patient,
    agg: Option<&rapport_domain::PatientAggregates>,
    unmasked: bool,
) -> Result<(), AppError> {
    let f = &p.fields;
    let contact = |v: &Option<String>| -> String {
        match v {
            Some(s) if unmasked => s.clone(),
            Some(s) => mask(s),
            None => String::new(),
        }
    };
    let phone = contact(&f.phone);
    let email = contact(&f.email);
    let birth_year = f.birth_year.map(i64::from);
    let registered = f.registered_on.map(|d| d.to_string()).unwrap_or_default();
    let first = agg.map(|a| a.first_visit.to_string()).unwrap_or_default();
    let last = agg.map(|a| a.last_visit.to_string()).unwrap_or_default();
    w.row(&[
        Cell::Text(&p.patient_id),
        text(&f.name),
        f.sex.map_or(Cell::Empty, |s| Cell::Text(s.as_str())),
        birth_year.map_or(Cell::Empty, Cell::Int),
        text(&phone),
        text(&email),
        opt(&f.district),
        opt(&f.source_channel),
        text(&registered),
        Cell::Int(agg.map_or(0, |a| a.visits)),
        Cell::Money(agg.map_or(0, |a| a.monetary)),
        text(&first),
        text(&last),
    ])
    .map_err(io)
}
