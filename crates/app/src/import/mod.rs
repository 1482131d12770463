//! Importing patients and visits from hospital files (CSV or XLSX, read
//! by `rapport-interop`), in bulk.
//!
//! - **All or nothing.** One file is one transaction. Without
//!   `skip_invalid`, the first invalid row stops the writing; the rest of
//!   the file is still read so that every invalid row is reported, and
//!   nothing is committed. With it, invalid rows go to the rejects sink
//!   and the valid ones are committed.
//! - **Upsert.** Rows are matched on the hospital's ids (`patient_id`,
//!   `visit_id`): a new id is inserted, a known one whose content differs
//!   is updated, an identical one is left alone, so importing the same
//!   file twice changes nothing. For patients, only the columns the file
//!   has are compared and written: a file without `email` never clears
//!   an email entered at the desk.
//! - **Chunks.** Rows are read in chunks of a few thousand; each chunk
//!   costs a handful of set-at-a-time statements (`store::import`), and
//!   memory is bounded by the chunk and the aggregates cache whatever the
//!   file's size.
//! - **Aggregates on the way.** New visits update their patients'
//!   aggregates incrementally (`PatientAggregates::add_visit`), kept in a
//!   bounded cache and written once per patient ([`aggregates`]); only a
//!   patient whose visit's date falls between its first and last visit
//!   needs its visit dates read, and only a changed or moved visit
//!   needs a recomputation from the patient's visits.
//! - **First loads.** A visits import into an empty visits table holds
//!   the tables it loads; it reads every patient's key once instead of
//!   per chunk, and looks up only the visit ids and aggregates it may
//!   have written itself ([`first_load`]).
//! - **Duplicates.** New and changed patients that probably are an
//!   existing patient (same national id, or same name and phone) are
//!   flagged for review (`duplicates`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rapport_domain::patient::{NewPatient, PatientFields};
use rapport_interop::csv::{PatientRow, PatientRows, RecordSource, RowError, VisitRow, VisitRows};
use rapport_store::import::{self as store, KnownPatient, NewVisitRow};
use rapport_store::{Tx, bulk, patients as store_patients, visits as store_visits};
use serde::Serialize;

use crate::audit::{self, Actor};
use crate::loyalty::earning::{ChunkVisit, ImportEarning};
use crate::{App, AppError};

mod aggregates;
mod ahead;
mod first_load;
mod lane;
use aggregates::{AggCache, AggState};
use ahead::ReadAhead;
use first_load::{Bloom, PatientKeys};
use lane::Lane;

/// Rows per chunk: large enough that statements are few, small enough
/// that a chunk's rows and lookups stay a few megabytes.
const CHUNK: usize = 8192;

/// Errors kept in a report (all are passed to `on_error`).
const MAX_REPORTED_ERRORS: usize = 1000;

/// How to import.
#[derive(Debug, Clone)]
pub struct Options {
    /// Import the valid rows and reject the others, instead of nothing.
    pub skip_invalid: bool,
    /// Rows per chunk ([`CHUNK`]).
    pub chunk_rows: usize,
    /// Patients whose aggregates a visits import keeps before writing
    /// them ([`aggregates::CACHE_PATIENTS`]).
    pub cache_patients: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            skip_invalid: false,
            chunk_rows: CHUNK,
            cache_patients: aggregates::CACHE_PATIENTS,
        }
    }
}

/// Live counters of an import, read by a progress bar or the API while
/// the import runs.
#[derive(Debug, Default)]
pub struct Progress {
    pub rows: AtomicU64,
    pub rejected: AtomicU64,
}

impl Progress {
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }
}

/// Where rejected rows go (`--skip-invalid REJECTS.csv`): the header as
/// written, then each rejected record as written with its errors.
pub trait Rejects: Send {
    fn header(&mut self, header: &[String]) -> std::io::Result<()>;
    fn reject(&mut self, row: u64, raw: &[String], errors: &[RowError]) -> std::io::Result<()>;
}

/// A rejects file: the original columns, then `row` and `reason`.
pub struct RejectsCsv<W: std::io::Write> {
    out: csv::Writer<W>,
}

impl<W: std::io::Write> RejectsCsv<W> {
    pub fn new(out: W) -> Self {
        RejectsCsv {
            out: csv::Writer::from_writer(out),
        }
    }

    pub fn finish(self) -> std::io::Result<W> {
        self.out
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

impl<W: std::io::Write + Send> Rejects for RejectsCsv<W> {
    fn header(&mut self, header: &[String]) -> std::io::Result<()> {
        let mut h: Vec<&str> = header.iter().map(String::as_str).collect();
        h.push("row");
        h.push("reason");
        self.out.write_record(h).map_err(std::io::Error::other)
    }

    fn reject(&mut self, row: u64, raw: &[String], errors: &[RowError]) -> std::io::Result<()> {
        let reason = errors
            .iter()
            .map(|e| {
                if e.column.is_empty() {
                    e.reason.clone()
                } else {
                    format!("{}: {}", e.column, e.reason)
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        let mut rec: Vec<String> = raw.to_vec();
        rec.push(row.to_string());
        rec.push(reason);
        self.out.write_record(rec).map_err(std::io::Error::other)
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    /// `patients` or `visits`.
    pub kind: String,
    pub file: String,
    /// Data rows read (valid and invalid).
    pub rows_read: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    /// Patients created because a visit named an unknown patient.
    pub patients_created: u64,
    /// New pairs of probable duplicates flagged for review.
    pub duplicates_flagged: u64,
    /// Whether the changes were committed (false when an invalid row
    /// stopped an all-or-nothing import).
    pub committed: bool,
    pub warnings: Vec<String>,
    /// The first invalid rows, `FILE:ROW:COLUMN: reason`.
    pub errors: Vec<String>,
    pub elapsed_ms: u64,
}

impl Report {
    fn error(&mut self, e: &RowError) {
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(e.to_string());
        }
    }
}

/// Rows to import: a CSV or XLSX reader, or rows mapped from FHIR.
pub trait Rows {
    type Row;
    fn next_row(&mut self) -> Option<Result<Self::Row, Vec<RowError>>>;
    /// The cells of the row last read, as written (for rejects).
    fn raw(&self) -> &[String] {
        &[]
    }
    fn header(&self) -> &[String] {
        &[]
    }
    fn warnings(&self) -> &[String] {
        &[]
    }
    /// The patient columns present (a re-import changes only these).
    fn columns(&self) -> Vec<&'static str> {
        Vec::new()
    }
}

impl<S: RecordSource> Rows for PatientRows<S> {
    type Row = PatientRow;
    fn next_row(&mut self) -> Option<Result<PatientRow, Vec<RowError>>> {
        self.next()
    }
    fn raw(&self) -> &[String] {
        PatientRows::raw(self)
    }
    fn header(&self) -> &[String] {
        PatientRows::header(self)
    }
    fn warnings(&self) -> &[String] {
        PatientRows::warnings(self)
    }
    fn columns(&self) -> Vec<&'static str> {
        PatientRows::columns(self)
    }
}

impl<S: RecordSource> Rows for VisitRows<S> {
    type Row = VisitRow;
    fn next_row(&mut self) -> Option<Result<VisitRow, Vec<RowError>>> {
        self.next()
    }
    fn raw(&self) -> &[String] {
        VisitRows::raw(self)
    }
    fn header(&self) -> &[String] {
        VisitRows::header(self)
    }
    fn warnings(&self) -> &[String] {
        VisitRows::warnings(self)
    }
}

/// Rows already in memory (mapped from FHIR resources).
pub struct Listed<T> {
    rows: std::vec::IntoIter<Result<T, Vec<RowError>>>,
    columns: Vec<&'static str>,
}

impl<T> Listed<T> {
    pub fn new(rows: Vec<Result<T, Vec<RowError>>>, columns: Vec<&'static str>) -> Self {
        Listed {
            rows: rows.into_iter(),
            columns,
        }
    }
}

impl<T> Rows for Listed<T> {
    type Row = T;
    fn next_row(&mut self) -> Option<Result<T, Vec<RowError>>> {
        self.rows.next()
    }
    fn columns(&self) -> Vec<&'static str> {
        self.columns.clone()
    }
}

/// Where an import reports as it goes: live counters, the rejects file
/// and each invalid row (the command line prints them at once).
pub struct Sinks<'a> {
    pub progress: &'a Progress,
    pub rejects: Option<&'a mut dyn Rejects>,
    pub on_error: &'a mut (dyn FnMut(&RowError) + Send),
}

/// The running state shared by both kinds of import.
struct Run<'a> {
    report: Report,
    failed: bool,
    progress: &'a Progress,
    rejects: Option<&'a mut dyn Rejects>,
    on_error: &'a mut (dyn FnMut(&RowError) + Send),
    skip_invalid: bool,
    chunk_rows: usize,
    cache_patients: usize,
    started: Instant,
}

impl<'a> Run<'a> {
    fn new(
        kind: &str,
        file: &str,
        warnings: &[String],
        opts: &Options,
        mut sinks: Sinks<'a>,
        header: &[String],
    ) -> Result<Self, AppError> {
        if let Some(r) = sinks.rejects.as_deref_mut() {
            r.header(header)
                .map_err(|e| AppError::Internal(format!("writing rejects: {e}")))?;
        }
        Ok(Run {
            report: Report {
                kind: kind.into(),
                file: file.into(),
                warnings: warnings.to_vec(),
                ..Default::default()
            },
            failed: false,
            progress: sinks.progress,
            rejects: sinks.rejects,
            on_error: sinks.on_error,
            skip_invalid: opts.skip_invalid,
            chunk_rows: opts.chunk_rows.max(1),
            cache_patients: opts.cache_patients,
            started: Instant::now(),
        })
    }
}

impl Run<'_> {
    fn invalid(&mut self, row_raw: (u64, &[String]), errs: &[RowError]) -> Result<(), AppError> {
        self.report.rejected += 1;
        self.progress.rejected.fetch_add(1, Ordering::Relaxed);
        for e in errs {
            (self.on_error)(e);
            self.report.error(e);
        }
        if self.skip_invalid {
            if let Some(r) = self.rejects.as_deref_mut() {
                r.reject(row_raw.0, row_raw.1, errs)
                    .map_err(|e| AppError::Internal(format!("writing rejects: {e}")))?;
            }
        } else {
            self.failed = true;
        }
        Ok(())
    }

    fn read(&mut self) {
        self.report.rows_read += 1;
        self.progress.rows.fetch_add(1, Ordering::Relaxed);
    }
}

/// Applies the file's columns of `new` over `old`.
fn merge_fields(old: &PatientFields, new: &PatientFields, columns: &[&str]) -> PatientFields {
    let mut f = old.clone();
    for c in columns {
        match *c {
            "name" => f.name = new.name.clone(),
            "sex" => f.sex = new.sex,
            "birth_date" => {
                f.birth_date = new.birth_date;
                f.birth_year = new.birth_year;
            }
            "birth_year" if !columns.contains(&"birth_date") || new.birth_date.is_none() => {
                f.birth_year = new.birth_year;
            }
            "phone" => f.phone = new.phone.clone(),
            "email" => f.email = new.email.clone(),
            "district" => f.district = new.district.clone(),
            "source_channel" => f.source_channel = new.source_channel.clone(),
            "registered_on" => f.registered_on = new.registered_on,
            _ => {}
        }
    }
    f
}

async fn finish(app: &App, mut tx: Tx, run: Run<'_>, actor: &Actor) -> Result<Report, AppError> {
    let mut report = run.report;
    if run.failed {
        tx.rollback().await?;
        report.committed = false;
        report.inserted = 0;
        report.updated = 0;
        report.patients_created = 0;
        report.duplicates_flagged = 0;
    } else {
        let detail = serde_json::json!({
            "file": report.file,
            "rows": report.rows_read,
            "inserted": report.inserted,
            "updated": report.updated,
            "rejected": report.rejected,
            "patients_created": report.patients_created,
        });
        audit::record(
            app,
            &mut tx,
            actor,
            &format!("import.{}", report.kind),
            None,
            Some(detail.to_string()),
        )
        .await?;
        tx.commit().await?;
        report.committed = true;
        bulk::analyze(&app.db).await?;
    }
    report.elapsed_ms = run.started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Imports patients.
pub async fn patients(
    app: &App,
    actor: &Actor,
    file: &str,
    rows: impl Rows<Row = PatientRow> + Send + 'static,
    opts: &Options,
    sinks: Sinks<'_>,
) -> Result<Report, AppError> {
    let mut rows = ReadAhead::spawn(rows);
    let mut run = Run::new(
        "patients",
        file,
        rows.warnings(),
        opts,
        sinks,
        rows.header(),
    )?;
    let mut tx = app.db.begin_bulk().await?;
    patients_in(app, &mut tx, &mut run, &mut rows).await?;
    finish(app, tx, run, actor).await
}

/// Reads the next chunk: up to `chunk_rows` valid rows with distinct ids
/// (`key`), invalid rows going to `run`. A row whose id is already in the
/// chunk updates the earlier one, so it waits in `carry` for the next
/// chunk. Returns the chunk and whether the input is exhausted.
fn next_chunk<T>(
    rows: &mut impl Rows<Row = T>,
    run: &mut Run<'_>,
    carry: &mut Option<T>,
    key: impl Fn(&T) -> &str,
) -> Result<(Vec<T>, bool), AppError> {
    let size = run.chunk_rows;
    let mut chunk: Vec<T> = Vec::with_capacity(size);
    let mut seen: HashSet<String> = HashSet::with_capacity(size);
    if let Some(r) = carry.take() {
        seen.insert(key(&r).to_string());
        chunk.push(r);
    }
    while chunk.len() < size {
        match rows.next_row() {
            None => return Ok((chunk, true)),
            Some(Ok(r)) => {
                run.read();
                if !seen.insert(key(&r).to_string()) {
                    *carry = Some(r);
                    break;
                }
                chunk.push(r);
            }
            Some(Err(errs)) => {
                run.read();
                let row = errs.first().map_or(0, |e| e.row);
                run.invalid((row, rows.raw()), &errs)?;
            }
        }
    }
    Ok((chunk, false))
}

async fn patients_in(
    app: &App,
    tx: &mut Tx,
    run: &mut Run<'_>,
    rows: &mut impl Rows<Row = PatientRow>,
) -> Result<(), AppError> {
    let columns = rows.columns();
    let now = app.now();
    let h = app.hospital_id;
    let max_before = bulk::max_id(tx, "patients").await?;
    // A first load holds the patients table (`defer_upkeep`): only the
    // ids it may have written itself can be there.
    let mut written = store::is_empty(tx, "patients")
        .await?
        .then(|| Bloom::new(FIRST_PATIENTS_BITS));
    let deferred = store::defer_upkeep(tx, "patients").await?;
    let mut changed_keys: Vec<i64> = Vec::new();
    let mut carry: Option<PatientRow> = None;
    loop {
        let (chunk, eof) = next_chunk(rows, run, &mut carry, |r| &r.patient.patient_id)?;
        if !run.failed && !chunk.is_empty() {
            patient_chunk(
                tx,
                h,
                &chunk,
                &columns,
                now,
                &mut run.report,
                &mut changed_keys,
                written.as_mut(),
            )
            .await?;
        }
        if eof && carry.is_none() {
            break;
        }
    }
    if !run.failed {
        store::restore_upkeep(tx, &deferred).await?;
        run.report.duplicates_flagged +=
            store::flag_duplicates(tx, h, max_before, &changed_keys, now).await?;
    }
    Ok(())
}

/// The ids of a chunk to look up in the database: all of them, or on a
/// first load (`written`, the filter of the ids it wrote) those it may
/// have written. Every id is noted as written; the chunk's ids are
/// distinct, so noting them as they are tested hides none from another.
fn to_look_up<'a>(
    ids: impl Iterator<Item = &'a String>,
    written: Option<&mut Bloom>,
) -> Vec<String> {
    match written {
        None => ids.cloned().collect(),
        Some(w) => ids
            .filter(|id| w.test_and_add(id.as_str()))
            .cloned()
            .collect(),
    }
}

/// Bits of a first patients load's filter of the ids it wrote: 2^25,
/// 4 MB, 16 bits for each of two million patients.
const FIRST_PATIENTS_BITS: u32 = 25;

#[allow(clippy::too_many_arguments)]
async fn patient_chunk(
    tx: &mut Tx,
    h: i64,
    chunk: &[PatientRow],
    columns: &[&str],
    now: chrono::DateTime<chrono::Utc>,
    report: &mut Report,
    changed_keys: &mut Vec<i64>,
    written: Option<&mut Bloom>,
) -> Result<(), AppError> {
    let ids = to_look_up(chunk.iter().map(|r| &r.patient.patient_id), written);
    let known: HashMap<String, KnownPatient> = store::patients_by_external(tx, h, &ids)
        .await?
        .into_iter()
        .map(|k| (k.patient.patient_id.clone(), k))
        .collect();
    let mut new: Vec<&NewPatient> = Vec::new();
    for r in chunk {
        match known.get(&r.patient.patient_id) {
            None => new.push(&r.patient),
            Some(k) if k.merged_into.is_some() || k.patient.erased_at.is_some() => {
                report.unchanged += 1;
            }
            Some(k) => {
                let merged = merge_fields(&k.patient.fields, &r.patient.fields, columns);
                if merged == k.patient.fields {
                    report.unchanged += 1;
                } else {
                    store_patients::update(
                        tx,
                        k.patient.id,
                        &merged,
                        k.patient.sealed_national_id.as_ref(),
                        now,
                    )
                    .await?;
                    changed_keys.push(k.patient.id);
                    report.updated += 1;
                }
            }
        }
    }
    let keys = bulk::reserve_ids(tx, "patients", new.len()).await?;
    let rows: Vec<(i64, &NewPatient)> = keys.into_iter().zip(new).collect();
    report.inserted += store::insert_patients(tx, h, &rows, now).await?;
    Ok(())
}

/// Caches of the ids of departments and doctors met so far.
#[derive(Default)]
struct Refs {
    departments: HashMap<String, i64>,
    doctors: HashMap<String, i64>,
}

impl Refs {
    async fn resolve(
        &mut self,
        lane: &mut Lane,
        h: i64,
        v: &rapport_domain::patient::VisitFields,
    ) -> Result<(Option<i64>, Option<i64>), AppError> {
        let dept = match &v.department {
            None => None,
            Some(d) => Some(match self.departments.get(d) {
                Some(id) => *id,
                None => {
                    let id = store_visits::department_id(lane.tx().await?, h, d).await?;
                    self.departments.insert(d.clone(), id);
                    id
                }
            }),
        };
        let doctor = match &v.doctor_id {
            None => None,
            Some(code) => Some(match self.doctors.get(code) {
                Some(id) => *id,
                None => {
                    let tx = lane.tx().await?;
                    let id = store_visits::doctor_id(tx, h, code, v.doctor_name.as_deref(), dept)
                        .await?;
                    self.doctors.insert(code.clone(), id);
                    id
                }
            }),
        };
        Ok((dept, doctor))
    }
}

/// Imports visits. A visit naming an unknown patient creates it (with
/// only the hospital's id; a later patients file fills it in).
pub async fn visits(
    app: &App,
    actor: &Actor,
    file: &str,
    rows: impl Rows<Row = VisitRow> + Send + 'static,
    opts: &Options,
    sinks: Sinks<'_>,
) -> Result<Report, AppError> {
    let mut rows = ReadAhead::spawn(rows);
    let mut run = Run::new("visits", file, rows.warnings(), opts, sinks, rows.header())?;
    let tx = begin_visits(app).await?;
    let tx = visits_in(app, actor, tx, &mut run, &mut rows).await?;
    finish(app, tx, run, actor).await
}

/// A visits import's transaction. Into an empty visits table (a first
/// load), foreign keys are verified once before the commit instead of
/// row by row ([`rapport_store::Db::begin_bulk_unchecked`]); were the
/// table filled meanwhile, that verification still covers every row.
async fn begin_visits(app: &App) -> Result<Tx, AppError> {
    Ok(match store::is_empty_now(&app.db, "visits").await? {
        true => app.db.begin_bulk_unchecked().await?,
        false => app.db.begin_bulk().await?,
    })
}

async fn visits_in(
    app: &App,
    actor: &Actor,
    mut tx: Tx,
    run: &mut Run<'_>,
    rows: &mut impl Rows<Row = VisitRow>,
) -> Result<Tx, AppError> {
    let now = app.now();
    let h = app.hospital_id;
    let max_before = bulk::max_id(&mut tx, "patients").await?;
    let first = store::is_empty(&mut tx, "visits").await?;
    let aggregates_empty = store::is_empty(&mut tx, "patient_aggregates").await?;
    // Into empty tables (a first load) the visits' uniqueness (on
    // PostgreSQL), the visits' and the aggregates' secondary indexes are
    // built once at the end, unless a chunk needs them earlier.
    let mut earning = ImportEarning::new(app, actor);
    // Points look the chunks' visits up by id: with members or referrals
    // about, the uniqueness (the index of ids) stays.
    let earns = earning.in_use(&mut tx).await?;
    let mut deferred = match earns {
        true => Vec::new(),
        false => store::defer_unique(&mut tx, "visits").await?,
    };
    let unique_aside = !deferred.is_empty();
    deferred.extend(store::defer_upkeep(&mut tx, "visits").await?);
    deferred.extend(store::defer_upkeep(&mut tx, "patient_aggregates").await?);
    let first = match first {
        true => Some(FirstLoad::start(&mut tx, h).await?),
        false => None,
    };
    let mut load = VisitLoad {
        refs: Refs::default(),
        deferred,
        cache: AggCache::new(
            run.cache_patients,
            first.is_some() && aggregates_empty,
            max_before,
        ),
        first,
        unique_aside,
        earns,
        suspects: Vec::new(),
    };
    let mut carry: Option<VisitRow> = None;
    let mut lane = Lane::new(tx);
    loop {
        let (chunk, eof) = next_chunk(rows, run, &mut carry, |r| &r.visit.visit_id)?;
        if !run.failed && !chunk.is_empty() {
            let chunk = load.set_suspects_aside(chunk);
            let written =
                visit_chunk(&mut lane, h, &chunk, now, &mut load, &mut run.report).await?;
            if !written.is_empty() {
                earning.chunk(lane.tx().await?, &written).await?;
            }
            if load.suspects.len() >= SUSPECTS_HELD {
                store::restore_upkeep(lane.tx().await?, &std::mem::take(&mut load.deferred))
                    .await?;
            }
            if load.deferred.is_empty() && !load.suspects.is_empty() {
                suspects_in(&mut lane, h, now, &mut load, run, &mut earning).await?;
            }
        }
        if eof && carry.is_none() {
            break;
        }
    }
    // What only the streaming needed goes before the aggregates are
    // written and the indexes built.
    load.first = None;
    if !run.failed {
        // The aggregates go in before their indexes are built, then the
        // rows held back are applied with every index in place.
        load.cache.flush(lane.tx().await?, h).await?;
        store::restore_upkeep(lane.tx().await?, &std::mem::take(&mut load.deferred)).await?;
        if !load.suspects.is_empty() {
            suspects_in(&mut lane, h, now, &mut load, run, &mut earning).await?;
            load.cache.flush(lane.tx().await?, h).await?;
        }
    }
    let (mut tx, inserted) = lane.finish().await?;
    run.report.inserted += inserted;
    if !run.failed && run.report.patients_created > 0 {
        run.report.duplicates_flagged +=
            store::flag_duplicates(&mut tx, h, max_before, &[], now).await?;
    }
    Ok(tx)
}

/// Imports a FHIR batch (patients, then visits with their amounts) in
/// one transaction. Resources that do not map onto valid rows are
/// reported like invalid file rows, located by source and entry.
pub async fn fhir(
    app: &App,
    actor: &Actor,
    file: &str,
    batch: &rapport_interop::fhir::FhirBatch,
    opts: &Options,
    sinks: Sinks<'_>,
) -> Result<Report, AppError> {
    let today = app.today();
    let located = |what: &str, id: &str, errs: rapport_domain::ValidationErrors| -> Vec<RowError> {
        errs.0
            .into_iter()
            .map(|e| RowError {
                file: format!("{file} {what}/{id}"),
                row: 0,
                column: e.field,
                reason: e.message,
            })
            .collect()
    };
    let patients: Vec<Result<PatientRow, Vec<RowError>>> = batch
        .patients
        .iter()
        .map(|p| {
            NewPatient::parse(&p.patient_id, &p.input(), today)
                .map(|patient| PatientRow { row: 0, patient })
                .map_err(|e| located("Patient", &p.resource_id, e))
        })
        .collect();
    let visits: Vec<Result<VisitRow, Vec<RowError>>> = batch
        .visits()
        .into_iter()
        .map(|(patient_id, input)| {
            rapport_domain::patient::VisitFields::parse(&input, today)
                .map(|visit| VisitRow {
                    row: 0,
                    patient_id: patient_id.clone(),
                    visit,
                })
                .map_err(|e| located("Encounter", &input.visit_id, e))
        })
        .collect();
    let columns = vec!["name", "sex", "birth_date", "phone", "email", "district"];
    let mut run = Run::new("fhir", file, &[], opts, sinks, &[])?;
    let mut tx = begin_visits(app).await?;
    patients_in(app, &mut tx, &mut run, &mut Listed::new(patients, columns)).await?;
    let tx = visits_in(
        app,
        actor,
        tx,
        &mut run,
        &mut Listed::new(visits, Vec::new()),
    )
    .await?;
    finish(app, tx, run, actor).await
}

/// Rows a first load holds back at most while the visits' uniqueness is
/// set aside ([`VisitLoad::suspects`]); beyond, it is put back early.
const SUSPECTS_HELD: usize = 65_536;

/// Applies the rows held back, now that visit ids can be looked up, in
/// the file's order: chunks of distinct ids, as the file's are read.
async fn suspects_in(
    lane: &mut Lane,
    h: i64,
    now: chrono::DateTime<chrono::Utc>,
    load: &mut VisitLoad,
    run: &mut Run<'_>,
    earning: &mut ImportEarning<'_>,
) -> Result<(), AppError> {
    let mut rows = std::mem::take(&mut load.suspects).into_iter().peekable();
    while rows.peek().is_some() {
        let mut seen = HashSet::new();
        let mut chunk = Vec::new();
        while let Some(r) = rows
            .next_if(|r| chunk.len() < run.chunk_rows && !seen.contains(r.visit.visit_id.as_str()))
        {
            seen.insert(r.visit.visit_id.clone());
            chunk.push(r);
        }
        let written = visit_chunk(lane, h, &chunk, now, load, &mut run.report).await?;
        if !written.is_empty() {
            earning.chunk(lane.tx().await?, &written).await?;
        }
    }
    Ok(())
}

/// What a visits import carries from one chunk to the next.
struct VisitLoad {
    /// Departments and doctors resolved so far.
    refs: Refs,
    /// What [`store::defer_upkeep`] set aside, until it is put back.
    deferred: Vec<String>,
    cache: AggCache,
    /// Set when the visits table was empty at the start.
    first: Option<FirstLoad>,
    /// Whether the visits' uniqueness was set aside (a first load on
    /// PostgreSQL); see [`VisitLoad::blind`].
    unique_aside: bool,
    /// Whether points may be earned ([`ImportEarning::in_use`]): if not,
    /// the chunks' visits are not listed for them.
    earns: bool,
    /// Rows whose ids this load may have written already, held back
    /// while visit ids cannot be looked up: later rows of an id seen
    /// before (they update it), and the few new ids the filter cannot
    /// tell from those.
    suspects: Vec<VisitRow>,
}

impl VisitLoad {
    /// Whether visit ids cannot be looked up now: the uniqueness was set
    /// aside and is not back yet (a lookup would read the whole table).
    fn blind(&self) -> bool {
        self.unique_aside && !self.deferred.is_empty()
    }

    /// While visit ids cannot be looked up, holds back the rows whose ids
    /// may have been written, and returns the others: new visits.
    fn set_suspects_aside(&mut self, chunk: Vec<VisitRow>) -> Vec<VisitRow> {
        let blind = self.blind();
        let Some(f) = self.first.as_mut().filter(|_| blind) else {
            return chunk;
        };
        // Each id is noted as written as it is tested: the chunk's ids
        // are distinct, so that hides none of them from another.
        let (suspects, clear): (Vec<VisitRow>, Vec<VisitRow>) = chunk
            .into_iter()
            .partition(|r| f.visits.test_and_add(r.visit.visit_id.as_str()));
        self.suspects.extend(suspects);
        clear
    }
}

/// What a first load knows of the tables it holds ([`first_load`]).
struct FirstLoad {
    /// Every patient's key, unless the hospital has too many patients.
    patients: Option<PatientKeys>,
    /// The visit ids written so far.
    visits: Bloom,
}

impl FirstLoad {
    /// Visit ids the filter is sized for at 13 bits each: 2^27 bits, 16 MB.
    const VISIT_BITS: u32 = 27;
    /// Patients' keys read per statement.
    const PAGE: i64 = 50_000;

    async fn start(tx: &mut Tx, h: i64) -> Result<FirstLoad, AppError> {
        store::hold_patients(tx).await?;
        let mut keys = Some(PatientKeys::default());
        let mut after = 0;
        while let Some(map) = keys.as_mut() {
            let page = store::patient_keys_page(tx, h, after, Self::PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.0;
            for (_, id, key) in &page {
                if map.insert(id, *key).is_none() {
                    keys = None;
                    break;
                }
            }
            if keys
                .as_ref()
                .is_some_and(|m| m.len() > first_load::MAX_PATIENTS)
            {
                keys = None;
            }
        }
        Ok(FirstLoad {
            patients: keys,
            visits: Bloom::new(Self::VISIT_BITS),
        })
    }
}

async fn visit_chunk(
    lane: &mut Lane,
    h: i64,
    chunk: &[VisitRow],
    now: chrono::DateTime<chrono::Utc>,
    load: &mut VisitLoad,
    report: &mut Report,
) -> Result<Vec<ChunkVisit>, AppError> {
    let blind = load.blind();
    let VisitLoad {
        refs,
        deferred,
        cache,
        first,
        earns,
        ..
    } = load;
    let earns = *earns;
    // Patients: known ones (following merges), unknown ones created. A
    // first load finds each row's key in memory, without a copy of the
    // ids; otherwise the chunk's distinct ids are looked up.
    let mut row_keys: Vec<Option<i64>> = match first.as_ref().and_then(|f| f.patients.as_ref()) {
        Some(map) => chunk.iter().map(|r| map.get(&r.patient_id)).collect(),
        None => {
            let mut pids: Vec<String> = chunk.iter().map(|r| r.patient_id.clone()).collect();
            pids.sort_unstable();
            pids.dedup();
            let found: HashMap<String, i64> =
                store::patient_keys_by_external(lane.tx().await?, h, &pids)
                    .await?
                    .into_iter()
                    .collect();
            chunk
                .iter()
                .map(|r| found.get(&r.patient_id).copied())
                .collect()
        }
    };
    let mut unknown: Vec<&str> = chunk
        .iter()
        .zip(&row_keys)
        .filter(|(_, k)| k.is_none())
        .map(|(r, _)| r.patient_id.as_str())
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        unknown.dedup();
        let tx = lane.tx().await?;
        let ids = bulk::reserve_ids(tx, "patients", unknown.len()).await?;
        let missing: Vec<NewPatient> = unknown
            .iter()
            .map(|p| NewPatient {
                patient_id: (*p).to_owned(),
                fields: PatientFields::default(),
            })
            .collect();
        let rows: Vec<(i64, &NewPatient)> = ids.iter().copied().zip(missing.iter()).collect();
        report.patients_created += store::insert_patients(tx, h, &rows, now).await?;
        for (id, p) in &rows {
            if let Some(f) = first.as_mut()
                && let Some(map) = f.patients.as_mut()
                && map.insert(&p.patient_id, *id).is_none()
            {
                f.patients = None;
            }
        }
        let created: HashMap<&str, i64> = unknown.iter().copied().zip(ids).collect();
        for (r, k) in chunk.iter().zip(row_keys.iter_mut()) {
            if k.is_none() {
                *k = created.get(r.patient_id.as_str()).copied();
            }
        }
    }

    // Visits: new, changed or unchanged. A first load looks up only the
    // ids it may have written; while it is blind nothing is looked up:
    // the rows that reach here are new, noted as they were set apart
    // from the suspects.
    let vids = match blind {
        true => Vec::new(),
        false => to_look_up(
            chunk.iter().map(|r| &r.visit.visit_id),
            first.as_mut().map(|f| &mut f.visits),
        ),
    };
    let known: HashMap<String, store::KnownVisit> = match vids.is_empty() {
        true => HashMap::new(),
        false => store::visits_by_external(lane.tx().await?, h, &vids)
            .await?
            .into_iter()
            .map(|v| (v.visit_id.clone(), v))
            .collect(),
    };
    let mut new_rows: Vec<NewVisitRow<'_>> = Vec::new();
    let mut recompute: HashSet<i64> = HashSet::new();
    // New and changed visits, for the points they earn (`loyalty::earning`)
    // when points can be earned.
    let mut written: Vec<ChunkVisit> = Vec::new();
    for (r, key) in chunk.iter().zip(row_keys) {
        let (dept, doctor) = refs.resolve(lane, h, &r.visit).await?;
        let Some(patient_key) = key else {
            return Err(AppError::Internal(format!(
                "no key for patient {:?}",
                r.patient_id
            )));
        };
        let row = NewVisitRow {
            visit_id: &r.visit.visit_id,
            patient_key,
            visit_date: r.visit.visit_date,
            department_id: dept,
            doctor_id: doctor,
            kind: r.visit.kind.as_str(),
            amount: r.visit.amount.minor(),
        };
        let earn = earns.then(|| ChunkVisit {
            visit_id: r.visit.visit_id.clone(),
            id: None,
            patient_key: row.patient_key,
            old_patient_key: None,
            date: r.visit.visit_date,
            department: r.visit.department.clone(),
            kind: r.visit.kind,
            amount: r.visit.amount,
        });
        match known.get(&r.visit.visit_id) {
            None => {
                new_rows.push(row);
                written.extend(earn);
            }
            Some(k) => {
                let same = k.patient_key == row.patient_key
                    && k.visit_date == row.visit_date
                    && k.department_id == row.department_id
                    && k.doctor_id == row.doctor_id
                    && k.kind == row.kind
                    && k.amount == row.amount;
                if same {
                    report.unchanged += 1;
                } else {
                    store::update_visit(lane.tx().await?, &row, k.id, now).await?;
                    recompute.insert(k.patient_key);
                    recompute.insert(row.patient_key);
                    report.updated += 1;
                    written.extend(earn.map(|e| ChunkVisit {
                        id: Some(k.id),
                        old_patient_key: Some(k.patient_key),
                        ..e
                    }));
                }
            }
        }
    }

    // Aggregates of the patients with new visits, before inserting them.
    let mut touched: Vec<i64> = new_rows
        .iter()
        .map(|v| v.patient_key)
        .filter(|k| !recompute.contains(k))
        .collect();
    touched.sort_unstable();
    touched.dedup();
    let mut states: HashMap<i64, AggState> = cache
        .before(lane, &touched)
        .await?
        .into_iter()
        .map(|(k, b)| (k, AggState::new(b)))
        .collect();
    let mut inside: Vec<i64> = new_rows
        .iter()
        .filter(|v| {
            states
                .get(&v.patient_key)
                .is_some_and(|s| s.inside(v.visit_date))
        })
        .map(|v| v.patient_key)
        .collect();
    inside.sort_unstable();
    inside.dedup();
    if (!inside.is_empty() || !recompute.is_empty()) && !deferred.is_empty() {
        // Reading a patient's visits needs the index: build it now.
        store::restore_upkeep(lane.tx().await?, &std::mem::take(deferred)).await?;
    }
    if !inside.is_empty() {
        for (k, d) in store::visit_dates_of(lane.tx().await?, &inside).await? {
            if let Some(s) = states.get_mut(&k) {
                s.stored_dates.get_or_insert_with(Vec::new).push(d);
            }
        }
    }
    for v in &new_rows {
        if let Some(s) = states.get_mut(&v.patient_key) {
            s.add(v.visit_date, v.amount);
        }
    }

    // On their way while the next chunk is prepared; counted as they land.
    if !new_rows.is_empty() {
        lane.send_visits(store::visit_values(h, &new_rows, now))
            .await?;
    }
    let after = states
        .into_iter()
        .filter_map(|(k, s)| s.now.map(|a| (k, s.before, a)));
    cache.keep(lane, h, after).await?;
    for k in recompute {
        cache.forget(k);
        store_visits::refresh_aggregates(lane.tx().await?, k).await?;
    }
    Ok(written)
}

/// Imports running in this process, for the API's progress view.
#[derive(Default, Clone)]
pub struct Running(Arc<std::sync::Mutex<HashMap<i64, Arc<Progress>>>>);

impl Running {
    pub fn start(&self, id: i64) -> Arc<Progress> {
        let p = Arc::new(Progress::default());
        if let Ok(mut m) = self.0.lock() {
            m.insert(id, p.clone());
        }
        p
    }

    pub fn get(&self, id: i64) -> Option<Arc<Progress>> {
        self.0.lock().ok().and_then(|m| m.get(&id).cloned())
    }

    pub fn end(&self, id: i64) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&id);
        }
    }
}

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Patients,
    Visits,
    Fhir,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "patients" => Some(Kind::Patients),
            "visits" => Some(Kind::Visits),
            "fhir" => Some(Kind::Fhir),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Patients => "patients",
            Kind::Visits => "visits",
            Kind::Fhir => "fhir",
        }
    }
}

/// An uploaded file to import in the background.
pub struct Upload {
    pub kind: Kind,
    /// The name the user gave the file (for the report and errors).
    pub file_name: String,
    /// Where the upload was saved; removed when the import ends.
    pub path: std::path::PathBuf,
    pub encoding: rapport_interop::csv::Encoding,
    pub map: Vec<(String, String)>,
    pub skip_invalid: bool,
}

/// Records the import and runs it in the background; its progress is in
/// [`App::imports`] while it runs, its report in the `imports` table
/// after.
pub async fn start(app: &App, actor: &Actor, up: Upload) -> Result<i64, AppError> {
    let mut tx = app.db.begin().await?;
    let id = rapport_store::imports::start(
        &mut tx,
        app.hospital_id,
        up.kind.as_str(),
        &up.file_name,
        up.skip_invalid,
        &actor.who,
        app.now(),
    )
    .await?;
    tx.commit().await?;
    // Held until the outcome is recorded, so that another server sharing
    // the database can tell this import from one whose server stopped.
    let running = rapport_store::imports::Running::start(&app.db, id).await?;
    let progress = app.imports.start(id);
    let app = app.clone();
    let actor = actor.clone();
    tokio::spawn(async move {
        let outcome = run_upload(&app, &actor, &up, &progress).await;
        let _ = std::fs::remove_file(&up.path);
        let (status, report, rejects) = match outcome {
            Ok((report, rejects)) => {
                let status = if report.committed { "done" } else { "failed" };
                (status, report, rejects)
            }
            Err(e) => (
                "failed",
                Report {
                    kind: up.kind.as_str().into(),
                    file: up.file_name.clone(),
                    errors: vec![e.to_string()],
                    ..Default::default()
                },
                None,
            ),
        };
        let text = serde_json::to_string(&report).unwrap_or_default();
        let saved = async {
            let mut tx = app.db.begin().await?;
            rapport_store::imports::finish(
                &mut tx,
                id,
                status,
                report.rows_read as i64,
                report.rejected as i64,
                &text,
                rejects.as_deref(),
                app.now(),
            )
            .await?;
            tx.commit().await
        };
        if let Err(e) = saved.await {
            tracing::error!(import = id, error = %e, "could not record the end of an import");
        }
        running.end().await;
        app.imports.end(id);
        if moves_scores(&report)
            && let Err(e) = crate::analytics::refresh_scores(&app).await
        {
            tracing::warn!(import = id, error = %e, "score refresh after an import failed");
        }
    });
    Ok(id)
}

async fn run_upload(
    app: &App,
    actor: &Actor,
    up: &Upload,
    progress: &Progress,
) -> Result<(Report, Option<String>), AppError> {
    use rapport_interop::{csv as icsv, xlsx};
    let mut rejects = up.skip_invalid.then(|| RejectsCsv::new(Vec::new()));
    let mut on_error = |_: &RowError| {};
    let sinks = Sinks {
        progress,
        rejects: rejects.as_mut().map(|r| r as &mut dyn Rejects),
        on_error: &mut on_error,
    };
    let opts = Options {
        skip_invalid: up.skip_invalid,
        ..Options::default()
    };
    let header_failed = |errs: Vec<RowError>| Report {
        kind: up.kind.as_str().into(),
        file: up.file_name.clone(),
        rows_read: 0,
        errors: errs.iter().map(ToString::to_string).collect(),
        ..Default::default()
    };
    let read_err = |e: std::io::Error| AppError::Internal(format!("reading the upload: {e}"));
    let report = if up.kind == Kind::Fhir {
        let bytes = std::fs::read(&up.path).map_err(read_err)?;
        let mut reader = rapport_interop::fhir::FhirReader::new();
        let batch = reader
            .add(&up.file_name, &bytes)
            .and_then(|()| reader.finish());
        match batch {
            Ok(batch) => fhir(app, actor, &up.file_name, &batch, &opts, sinks).await?,
            Err(e) => Report {
                kind: "fhir".into(),
                file: up.file_name.clone(),
                errors: vec![e.to_string()],
                ..Default::default()
            },
        }
    } else {
        let csv_opts = icsv::CsvOptions {
            file: up.file_name.clone(),
            encoding: up.encoding,
            map: up.map.clone(),
            today: app.today(),
        };
        let mut head = [0u8; 4];
        let n = {
            use std::io::Read;
            std::fs::File::open(&up.path)
                .and_then(|mut f| f.read(&mut head))
                .map_err(read_err)?
        };
        let is_xlsx = xlsx::looks_like_xlsx(&head[..n]);
        let open = || {
            std::fs::File::open(&up.path)
                .map(|f| std::io::BufReader::with_capacity(1 << 20, f))
                .map_err(read_err)
        };
        let name = &up.file_name;
        match (up.kind, is_xlsx) {
            (Kind::Patients, true) => match xlsx::read_patients(&up.path, &csv_opts) {
                Ok(rows) => patients(app, actor, name, rows, &opts, sinks).await?,
                Err(e) => header_failed(e),
            },
            (Kind::Patients, false) => match icsv::read_patients(open()?, &csv_opts) {
                Ok(rows) => patients(app, actor, name, rows, &opts, sinks).await?,
                Err(e) => header_failed(e),
            },
            (_, true) => match xlsx::read_visits(&up.path, &csv_opts) {
                Ok(rows) => visits(app, actor, name, rows, &opts, sinks).await?,
                Err(e) => header_failed(e),
            },
            (_, false) => match icsv::read_visits(open()?, &csv_opts) {
                Ok(rows) => visits(app, actor, name, rows, &opts, sinks).await?,
                Err(e) => header_failed(e),
            },
        }
    };
    let rejects = match rejects {
        Some(r) if report.rejected > 0 => {
            Some(String::from_utf8_lossy(&r.finish().map_err(read_err)?).into_owned())
        }
        _ => None,
    };
    Ok((report, rejects))
}

/// Whether an import changed enough visits that the stored scores
/// should be refreshed now rather than at night.
pub fn moves_scores(r: &Report) -> bool {
    r.committed && r.kind != "patients" && r.inserted + r.updated >= 10_000
}

/// How long an import must have been recorded as running before another
/// server may judge its server gone (it takes its lock right after).
const ORPHAN_AFTER: chrono::Duration = chrono::Duration::minutes(1);

/// Marks imports that a stopped process left running as failed (their
/// transaction was rolled back with the process). On SQLite, where the
/// one serving process owns the database, every import still running; on
/// PostgreSQL, which several servers share, those whose server no longer
/// holds their lock (`store::imports::Running`).
pub async fn fail_interrupted(app: &App) -> Result<u64, AppError> {
    if app.db.engine() != rapport_store::Engine::Sqlite {
        return Ok(rapport_store::imports::fail_orphaned(&app.db, app.now(), ORPHAN_AFTER).await?);
    }
    let mut tx = app.db.begin().await?;
    let n = rapport_store::imports::fail_interrupted(&mut tx, app.now()).await?;
    tx.commit().await?;
    Ok(n)
}

/// On PostgreSQL, looks every minute for imports whose server stopped
/// (another server sharing the database may never restart); returns at
/// once on SQLite, where [`fail_interrupted`] at start is enough.
pub async fn watch_interrupted(app: App) {
    if app.db.engine() == rapport_store::Engine::Sqlite {
        return;
    }
    let minute = std::time::Duration::from_secs(60);
    // `serve` has just looked, at start.
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + minute, minute);
    loop {
        every.tick().await;
        match fail_interrupted(&app).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                imports = n,
                "imports whose server stopped were marked failed"
            ),
            Err(e) => tracing::warn!(error = %e, "could not look for interrupted imports"),
        }
    }
}

/// An import, with its live progress while it runs.
#[derive(Debug, Clone, Serialize)]
pub struct ImportView {
    pub id: i64,
    pub kind: String,
    pub file_name: String,
    /// `running`, `done` or `failed`.
    pub status: String,
    pub skip_invalid: bool,
    pub rows_read: i64,
    pub rows_rejected: i64,
    pub has_rejects: bool,
    pub actor: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub report: Option<serde_json::Value>,
}

fn view(app: &App, r: rapport_store::imports::ImportRow) -> ImportView {
    let (rows, rejected) = match (r.status.as_str(), app.imports.get(r.id)) {
        ("running", Some(p)) => (p.rows() as i64, p.rejected.load(Ordering::Relaxed) as i64),
        _ => (r.rows_read, r.rows_rejected),
    };
    ImportView {
        id: r.id,
        kind: r.kind,
        file_name: r.file_name,
        status: r.status,
        skip_invalid: r.skip_invalid,
        rows_read: rows,
        rows_rejected: rejected,
        has_rejects: r.has_rejects,
        actor: r.actor,
        started_at: r.started_at,
        finished_at: r.finished_at,
        report: r.report.and_then(|t| serde_json::from_str(&t).ok()),
    }
}

pub async fn get(app: &App, id: i64) -> Result<ImportView, AppError> {
    rapport_store::imports::get(&app.db, app.hospital_id, id)
        .await?
        .map(|r| view(app, r))
        .ok_or(AppError::NotFound("import"))
}

pub async fn list(app: &App, limit: i64) -> Result<Vec<ImportView>, AppError> {
    Ok(
        rapport_store::imports::list(&app.db, app.hospital_id, limit)
            .await?
            .into_iter()
            .map(|r| view(app, r))
            .collect(),
    )
}

pub async fn rejects(app: &App, id: i64) -> Result<String, AppError> {
    rapport_store::imports::rejects(&app.db, app.hospital_id, id)
        .await?
        .ok_or(AppError::NotFound("rejects"))
}
