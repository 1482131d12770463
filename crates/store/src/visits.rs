//! Visits, their departments and doctors, and the per-patient aggregates
//! that every visit write keeps current in the same transaction.

use chrono::{DateTime, NaiveDate, Utc};
use rapport_domain::patient::{Visit, VisitFields, VisitKind};
use rapport_domain::{Money, PatientAggregates};

use crate::bulk::Value;
use crate::query::{FromAnyRow, Id};
use crate::{AnyRow, Db, Result, StoreError, Tx, on_read, on_tx};

const COLUMNS: &str = "v.id, v.hospital_id, v.visit_id, v.patient_key, p.patient_id, v.visit_date, \
     d.name AS department, doc.code AS doctor_code, doc.name AS doctor_name, v.kind, v.amount, \
     v.created_at, v.updated_at";
const FROM: &str = "visits v JOIN patients p ON p.id = v.patient_key \
     LEFT JOIN departments d ON d.id = v.department_id LEFT JOIN doctors doc ON doc.id = v.doctor_id";

impl FromAnyRow for Visit {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        visit_from_row(r)
    }
}

fn visit_from_row(r: &impl AnyRow) -> Result<Visit> {
    let kind: String = r.col("kind")?;
    Ok(Visit {
        id: r.col("id")?,
        hospital_id: r.col("hospital_id")?,
        visit_id: r.col("visit_id")?,
        patient_key: r.col("patient_key")?,
        patient_id: r.col("patient_id")?,
        visit_date: r.col("visit_date")?,
        department: r.col("department")?,
        doctor_id: r.col("doctor_code")?,
        doctor_name: r.col("doctor_name")?,
        kind: VisitKind::from_code(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("visit kind {kind:?}")))?,
        amount: Money(r.col("amount")?),
        created_at: r.col("created_at")?,
        updated_at: r.col("updated_at")?,
    })
}

/// The id of a department by name, created when new.
pub async fn department_id(tx: &mut Tx, hospital_id: i64, name: &str) -> Result<i64> {
    let params = [hospital_id.into(), name.into()];
    tx.exec(
        "INSERT INTO departments (hospital_id, name) VALUES ($1, $2) ON CONFLICT (hospital_id, name) DO NOTHING",
        &params,
    )
    .await?;
    let r: Id = tx
        .fetch_one(
            "SELECT id FROM departments WHERE hospital_id = $1 AND name = $2",
            &params,
        )
        .await?;
    Ok(r.0)
}

/// The id of a doctor by the hospital's code, created when new; a given
/// name or department updates the record.
pub async fn doctor_id(
    tx: &mut Tx,
    hospital_id: i64,
    code: &str,
    name: Option<&str>,
    department_id: Option<i64>,
) -> Result<i64> {
    tx.exec(
        "INSERT INTO doctors (hospital_id, code, name, department_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (hospital_id, code) DO UPDATE SET name = COALESCE(excluded.name, doctors.name), \
         department_id = COALESCE(excluded.department_id, doctors.department_id)",
        &[
            hospital_id.into(),
            code.into(),
            name.into(),
            department_id.into(),
        ],
    )
    .await?;
    let r: Id = tx
        .fetch_one(
            "SELECT id FROM doctors WHERE hospital_id = $1 AND code = $2",
            &[hospital_id.into(), code.into()],
        )
        .await?;
    Ok(r.0)
}

async fn resolve_refs(
    tx: &mut Tx,
    hospital_id: i64,
    v: &VisitFields,
) -> Result<(Option<i64>, Option<i64>)> {
    let dept = match &v.department {
        Some(d) => Some(department_id(tx, hospital_id, d).await?),
        None => None,
    };
    let doctor = match &v.doctor_id {
        Some(code) => Some(doctor_id(tx, hospital_id, code, v.doctor_name.as_deref(), dept).await?),
        None => None,
    };
    Ok((dept, doctor))
}

/// Inserts a visit; the caller refreshes the patient's aggregates in the
/// same transaction (see [`refresh_aggregates`]).
pub async fn insert(
    tx: &mut Tx,
    hospital_id: i64,
    patient_key: i64,
    v: &VisitFields,
    now: DateTime<Utc>,
) -> Result<i64> {
    let (dept, doctor) = resolve_refs(tx, hospital_id, v).await?;
    let sql = "INSERT INTO visits (hospital_id, visit_id, patient_key, visit_date, department_id, doctor_id, kind, \
               amount, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id";
    let r: (i64,) = on_tx!(tx, c => sqlx::query_as(sql)
        .bind(hospital_id)
        .bind(&v.visit_id)
        .bind(patient_key)
        .bind(v.visit_date)
        .bind(dept)
        .bind(doctor)
        .bind(v.kind.as_str())
        .bind(v.amount.minor())
        .bind(now)
        .fetch_one(&mut *c)
        .await)
    .map_err(|e| StoreError::unique(e, "visit"))?;
    Ok(r.0)
}

/// Rewrites a visit (possibly moving it to another patient).
pub async fn update(
    tx: &mut Tx,
    id: i64,
    patient_key: i64,
    v: &VisitFields,
    now: DateTime<Utc>,
) -> Result<()> {
    let hospital_id: (i64,) =
        on_tx!(tx, c => sqlx::query_as("SELECT hospital_id FROM visits WHERE id = $1")
        .bind(id).fetch_optional(&mut *c).await?)
        .ok_or(StoreError::NotFound("visit"))?;
    let (dept, doctor) = resolve_refs(tx, hospital_id.0, v).await?;
    let sql = "UPDATE visits SET visit_id = $2, patient_key = $3, visit_date = $4, department_id = $5, doctor_id = $6, \
               kind = $7, amount = $8, updated_at = $9 WHERE id = $1";
    on_tx!(tx, c => sqlx::query(sql)
        .bind(id)
        .bind(&v.visit_id)
        .bind(patient_key)
        .bind(v.visit_date)
        .bind(dept)
        .bind(doctor)
        .bind(v.kind.as_str())
        .bind(v.amount.minor())
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ()))
    .map_err(|e| StoreError::unique(e, "visit"))
}

/// Deletes a visit; returns the patient it belonged to.
pub async fn delete(tx: &mut Tx, id: i64) -> Result<i64> {
    let r: Option<(i64,)> = on_tx!(tx, c => sqlx::query_as("DELETE FROM visits WHERE id = $1 RETURNING patient_key")
        .bind(id).fetch_optional(&mut *c).await?);
    r.map(|r| r.0).ok_or(StoreError::NotFound("visit"))
}

/// Reads a visit inside a transaction.
pub async fn get_tx(tx: &mut Tx, id: i64) -> Result<Option<Visit>> {
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE v.id = $1");
    tx.fetch_opt(&sql, &[id.into()]).await
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Visit>> {
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE v.id = $1");
    on_read!(db, p => match sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(id).fetch_optional(p).await? {
        Some(r) => Ok(Some(visit_from_row(&r)?)),
        None => Ok(None),
    })
}

/// A page of visits, newest first (by date, then id).
#[derive(Debug, Clone, Default)]
pub struct VisitQuery {
    pub hospital_id: i64,
    pub patient_key: Option<i64>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Continue after this (date, id) position.
    pub before: Option<(NaiveDate, i64)>,
    pub limit: i64,
}

pub async fn list(db: &Db, q: &VisitQuery) -> Result<Vec<Visit>> {
    let mut conds = vec!["v.hospital_id = $1".to_string()];
    let mut n = 1;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if q.patient_key.is_some() {
        conds.push(format!("v.patient_key = {}", next()));
    }
    if q.from.is_some() {
        conds.push(format!("v.visit_date >= {}", next()));
    }
    if q.to.is_some() {
        conds.push(format!("v.visit_date <= {}", next()));
    }
    if q.before.is_some() {
        let (d, i) = (next(), next());
        conds.push(format!(
            "(v.visit_date < {d} OR (v.visit_date = {d} AND v.id < {i}))"
        ));
    }
    // The limit is written into the text, not bound: SQLite recompiles a
    // statement whenever a bound LIMIT changes, which costs more than the
    // query itself.
    let sql = format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE {} ORDER BY v.visit_date DESC, v.id DESC LIMIT {}",
        conds.join(" AND "),
        q.limit.max(0)
    );
    if let Db::Sqlite { sync, .. } = db {
        let mut params: Vec<Value> = vec![q.hospital_id.into()];
        params.extend(q.patient_key.map(Value::from));
        params.extend(q.from.map(Value::from));
        params.extend(q.to.map(Value::from));
        if let Some((d, i)) = q.before {
            params.extend([d.into(), i.into()]);
        }
        return sync.query(&sql, &params, |r| visit_from_row(r));
    }
    on_read!(db, p => {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(q.hospital_id);
        if let Some(k) = q.patient_key { query = query.bind(k); }
        if let Some(d) = q.from { query = query.bind(d); }
        if let Some(d) = q.to { query = query.bind(d); }
        if let Some((d, i)) = q.before { query = query.bind(d).bind(i); }
        let rows = query.fetch_all(p).await?;
        rows.iter().map(visit_from_row).collect()
    })
}

/// Recomputes a patient's aggregates from their visits and stores them (or
/// removes them when no visit is left). Call it in the transaction that
/// changed the visits, after locking the patient (`patients::lock`).
pub async fn refresh_aggregates(
    tx: &mut Tx,
    patient_key: i64,
) -> Result<Option<PatientAggregates>> {
    let rows: Vec<DatedAmount> = tx
        .fetch(
            "SELECT visit_date, amount FROM visits WHERE patient_key = $1 ORDER BY visit_date",
            &[patient_key.into()],
        )
        .await?;
    let rows: Vec<(NaiveDate, i64)> = rows.into_iter().map(|r| (r.0, r.1)).collect();
    let agg = if rows.is_empty() {
        None
    } else {
        Some(PatientAggregates::from_sorted(&rows))
    };
    match &agg {
        Some(a) => {
            tx.exec(
                "INSERT INTO patient_aggregates (patient_key, hospital_id, first_visit, last_visit, visits, visit_days, \
                 monetary, first_day_monetary, months_with_visits, cohort_mask) \
                 SELECT id, hospital_id, $2, $3, $4, $5, $6, $7, $8, $9 FROM patients WHERE id = $1 \
                 ON CONFLICT (patient_key) DO UPDATE SET first_visit = excluded.first_visit, \
                 last_visit = excluded.last_visit, visits = excluded.visits, visit_days = excluded.visit_days, \
                 monetary = excluded.monetary, first_day_monetary = excluded.first_day_monetary, \
                 months_with_visits = excluded.months_with_visits, cohort_mask = excluded.cohort_mask",
                &[&[patient_key.into()], &crate::patients::aggregate_values(a)[..]].concat(),
            )
            .await?;
        }
        None => {
            tx.exec(
                "DELETE FROM patient_aggregates WHERE patient_key = $1",
                &[patient_key.into()],
            )
            .await?;
        }
    }
    Ok(agg)
}

struct DatedAmount(NaiveDate, i64);

impl FromAnyRow for DatedAmount {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        Ok(DatedAmount(r.col("visit_date")?, r.col("amount")?))
    }
}

/// Number of visits (all hospitals).
pub async fn count(db: &Db) -> Result<i64> {
    let r: (i64,) =
        on_read!(db, p => sqlx::query_as("SELECT COUNT(*) FROM visits").fetch_one(p).await?);
    Ok(r.0)
}

/// Locks a visit row until the transaction ends (PostgreSQL) and returns
/// its hospital and patient.
pub async fn lock(tx: &mut Tx, id: i64) -> Result<Option<(i64, i64)>> {
    let sql = match tx.engine() {
        crate::Engine::Sqlite => "SELECT hospital_id, patient_key FROM visits WHERE id = $1",
        crate::Engine::Postgres => {
            "SELECT hospital_id, patient_key FROM visits WHERE id = $1 FOR UPDATE"
        }
    };
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(id).fetch_optional(&mut *c).await?))
}

/// A department with its number of doctors and visits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartmentRow {
    pub id: i64,
    pub name: String,
    pub doctors: i64,
    pub visits: i64,
}

/// The hospital's departments, by name.
pub async fn departments(db: &Db, hospital_id: i64) -> Result<Vec<DepartmentRow>> {
    let sql = "SELECT d.id, d.name, \
               (SELECT COUNT(*) FROM doctors doc WHERE doc.department_id = d.id) AS doctors, \
               (SELECT COUNT(*) FROM visits v WHERE v.department_id = d.id) AS visits \
               FROM departments d WHERE d.hospital_id = $1 ORDER BY d.name";
    on_read!(db, p => {
        let rows = sqlx::query(sql).bind(hospital_id).fetch_all(p).await?;
        rows.iter().map(|r| Ok(DepartmentRow {
            id: r.col("id")?,
            name: r.col("name")?,
            doctors: r.col("doctors")?,
            visits: r.col("visits")?,
        })).collect()
    })
}

/// A doctor with their department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorRow {
    pub id: i64,
    pub code: String,
    pub name: Option<String>,
    pub department: Option<String>,
}

/// The hospital's doctors, optionally of one department, by code.
pub async fn doctors(
    db: &Db,
    hospital_id: i64,
    department_id: Option<i64>,
) -> Result<Vec<DoctorRow>> {
    let sql = "SELECT doc.id, doc.code, doc.name, d.name AS department FROM doctors doc \
               LEFT JOIN departments d ON d.id = doc.department_id \
               WHERE doc.hospital_id = $1 AND ($2 IS NULL OR doc.department_id = $2) ORDER BY doc.code";
    on_read!(db, p => {
        let rows = sqlx::query(sql).bind(hospital_id).bind(department_id).fetch_all(p).await?;
        rows.iter().map(|r| Ok(DoctorRow {
            id: r.col("id")?,
            code: r.col("code")?,
            name: r.col("name")?,
            department: r.col("department")?,
        })).collect()
    })
}

/// Visits with `id > after`, in id order, at most `limit`: a keyset scan
/// for exports that stays fast and flat however many visits there are.
pub async fn page_after(db: &Db, hospital_id: i64, after: i64, limit: i64) -> Result<Vec<Visit>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE v.hospital_id = $1 AND v.id > $2 ORDER BY v.id LIMIT {}",
        limit.clamp(1, 100_000)
    );
    on_read!(db, p => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).bind(after).fetch_all(p).await?;
        rows.iter().map(visit_from_row).collect()
    })
}
