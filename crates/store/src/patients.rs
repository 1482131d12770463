//! Patients: insert, read, update, search.

use chrono::{DateTime, NaiveDate, Utc};
use rapport_domain::PatientAggregates;
use rapport_domain::patient::{
    Channel, Language, NewPatient, Patient, PatientFields, SealedId, Sex,
};

use crate::bulk::Value;
use crate::query::Id;
use crate::{AnyRow, Db, Engine, Result, StoreError, Tx, on_read, on_tx};

pub(crate) const COLUMNS: &str = "p.id, p.hospital_id, p.patient_id, p.name, p.sex, p.birth_date, p.birth_year, p.phone, \
     p.email, p.district, p.source_channel, p.registered_on, p.preferred_channel, p.preferred_language, \
     p.household, p.tags, p.notes, p.national_id_enc, p.national_id_index, p.erased_at, p.created_at, p.updated_at";

pub(crate) const AGG_COLUMNS: &str = "a.first_visit, a.last_visit, a.visits, a.visit_days, a.monetary, \
     a.first_day_monetary, a.months_with_visits, a.cohort_mask";

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {v:?}"))
}

pub(crate) fn patient_from_row(r: &impl AnyRow) -> Result<Patient> {
    let sex: Option<String> = r.col("sex")?;
    let channel: Option<String> = r.col("preferred_channel")?;
    let lang: Option<String> = r.col("preferred_language")?;
    let tags: String = r.col("tags")?;
    Ok(Patient {
        id: r.col("id")?,
        hospital_id: r.col("hospital_id")?,
        patient_id: r.col("patient_id")?,
        fields: PatientFields {
            name: r.col("name")?,
            sex: sex
                .map(|s| Sex::from_code(&s).ok_or_else(|| corrupt("sex", &s)))
                .transpose()?,
            birth_date: r.col("birth_date")?,
            birth_year: r.col("birth_year")?,
            phone: r.col("phone")?,
            email: r.col("email")?,
            district: r.col("district")?,
            source_channel: r.col("source_channel")?,
            registered_on: r.col("registered_on")?,
            preferred_channel: channel
                .map(|s| Channel::from_code(&s).ok_or_else(|| corrupt("channel", &s)))
                .transpose()?,
            preferred_language: lang
                .map(|s| Language::from_code(&s).ok_or_else(|| corrupt("language", &s)))
                .transpose()?,
            household: r.col("household")?,
            tags: serde_json::from_str(&tags).map_err(|_| corrupt("tags", &tags))?,
            notes: r.col("notes")?,
            national_id: None,
        },
        sealed_national_id: match (
            r.col::<Option<String>>("national_id_enc")?,
            r.col::<Option<String>>("national_id_index")?,
        ) {
            (Some(ciphertext), Some(index)) => Some(SealedId { ciphertext, index }),
            _ => None,
        },
        erased_at: r.col("erased_at")?,
        created_at: r.col("created_at")?,
        updated_at: r.col("updated_at")?,
    })
}

/// The stored aggregate columns after `patient_key, hospital_id`, in
/// [`AGG_COLUMNS`]' order, as values to bind.
pub fn aggregate_values(a: &PatientAggregates) -> [Value; 8] {
    [
        a.first_visit.into(),
        a.last_visit.into(),
        a.visits.into(),
        a.visit_days.into(),
        a.monetary.into(),
        a.first_day_monetary.into(),
        a.months_with_visits.into(),
        a.cohort_mask.into(),
    ]
}

pub(crate) fn aggregates_from_row(r: &impl AnyRow) -> Result<Option<PatientAggregates>> {
    let first: Option<NaiveDate> = r.col("first_visit")?;
    let Some(first_visit) = first else {
        return Ok(None);
    };
    Ok(Some(PatientAggregates {
        first_visit,
        last_visit: r.col("last_visit")?,
        visits: r.col("visits")?,
        visit_days: r.col("visit_days")?,
        monetary: r.col("monetary")?,
        first_day_monetary: r.col("first_day_monetary")?,
        months_with_visits: r.col("months_with_visits")?,
        cohort_mask: r.col("cohort_mask")?,
    }))
}

fn tags_json(f: &PatientFields) -> String {
    serde_json::to_string(&f.tags).unwrap_or_else(|_| "[]".into())
}

/// Binds the editable fields in the order insert and update list them:
/// name, sex, birth_date, birth_year, phone, email, district,
/// source_channel, registered_on, preferred_channel, preferred_language,
/// household, tags, notes.
fn field_values(f: &PatientFields) -> [Value; 14] {
    [
        (&f.name).into(),
        f.sex.map(Sex::as_str).into(),
        f.birth_date.into(),
        f.birth_year.map(i64::from).into(),
        f.phone.clone().into(),
        f.email.clone().into(),
        f.district.clone().into(),
        f.source_channel.clone().into(),
        f.registered_on.into(),
        f.preferred_channel.map(Channel::as_str).into(),
        f.preferred_language.map(Language::as_str).into(),
        f.household.clone().into(),
        tags_json(f).into(),
        f.notes.clone().into(),
    ]
}

/// The sealed national id's two columns.
fn sealed_values(sealed: Option<&SealedId>) -> [Value; 2] {
    [
        sealed.map(|s| s.ciphertext.as_str()).into(),
        sealed.map(|s| s.index.as_str()).into(),
    ]
}

/// Inserts a patient; `Conflict("patient")` when the hospital id exists.
/// The national id goes in only sealed (`fields.national_id` is ignored).
pub async fn insert(
    tx: &mut Tx,
    hospital_id: i64,
    p: &NewPatient,
    sealed: Option<&SealedId>,
    now: DateTime<Utc>,
) -> Result<i64> {
    let f = &p.fields;
    let sql = "INSERT INTO patients (hospital_id, patient_id, name, sex, birth_date, birth_year, phone, email, \
               district, source_channel, registered_on, preferred_channel, preferred_language, household, tags, \
               notes, created_at, updated_at, national_id_enc, national_id_index) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $18, $19) RETURNING id";
    let mut params = vec![hospital_id.into(), (&p.patient_id).into()];
    params.extend(field_values(f));
    params.push(now.into());
    params.extend(sealed_values(sealed));
    let id: Id = tx
        .fetch_one(sql, &params)
        .await
        .map_err(|e| e.on_unique("patient"))?;
    Ok(id.0)
}

/// Rewrites every editable field of a patient, the sealed national id
/// included (`None` clears it).
pub async fn update(
    tx: &mut Tx,
    id: i64,
    f: &PatientFields,
    sealed: Option<&SealedId>,
    now: DateTime<Utc>,
) -> Result<()> {
    let sql = "UPDATE patients SET name = $2, sex = $3, birth_date = $4, birth_year = $5, phone = $6, email = $7, \
               district = $8, source_channel = $9, registered_on = $10, preferred_channel = $11, \
               preferred_language = $12, household = $13, tags = $14, notes = $15, updated_at = $16, \
               national_id_enc = $17, national_id_index = $18 WHERE id = $1";
    let mut params = vec![id.into()];
    params.extend(field_values(f));
    params.push(now.into());
    params.extend(sealed_values(sealed));
    let done = tx.exec(sql, &params).await?;
    if done == 0 {
        return Err(StoreError::NotFound("patient"));
    }
    Ok(())
}

/// Replaces the hospital id and marks the patient erased (the fields are
/// cleared by the caller through [`update`]).
pub async fn mark_erased(
    tx: &mut Tx,
    id: i64,
    placeholder_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE patients SET patient_id = $2, erased_at = $3, updated_at = $3 WHERE id = $1")
        .bind(id).bind(placeholder_id).bind(now).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

/// Platform ids of the patients whose national id has this blind index.
pub async fn keys_by_national_id(db: &Db, hospital_id: i64, index: &str) -> Result<Vec<i64>> {
    let sql =
        "SELECT id FROM patients WHERE hospital_id = $1 AND national_id_index = $2 ORDER BY id";
    let rows: Vec<(i64,)> =
        on_read!(db, p => sqlx::query_as(sql).bind(hospital_id).bind(index).fetch_all(p).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Reads a patient inside a write transaction and locks its row until the
/// transaction ends (PostgreSQL; SQLite's single writer already holds the
/// database). Everything that rewrites a patient's aggregates, points or
/// profile takes this lock first, so concurrent writers serialise per
/// patient.
pub async fn lock(tx: &mut Tx, id: i64) -> Result<Option<Patient>> {
    let sql = match tx.engine() {
        Engine::Sqlite => format!("SELECT {COLUMNS} FROM patients p WHERE p.id = $1"),
        Engine::Postgres => format!("SELECT {COLUMNS} FROM patients p WHERE p.id = $1 FOR UPDATE"),
    };
    on_tx!(tx, c => match sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(id).fetch_optional(&mut *c).await? {
        Some(r) => Ok(Some(patient_from_row(&r)?)),
        None => Ok(None),
    })
}

/// The platform id of a patient by the hospital's id, inside a transaction.
pub async fn key_by_patient_id(
    tx: &mut Tx,
    hospital_id: i64,
    patient_id: &str,
) -> Result<Option<i64>> {
    let sql = "SELECT id FROM patients WHERE hospital_id = $1 AND patient_id = $2";
    let r: Option<(i64,)> = on_tx!(tx, c => sqlx::query_as(sql).bind(hospital_id).bind(patient_id).fetch_optional(&mut *c).await?);
    Ok(r.map(|r| r.0))
}

/// A patient with their aggregates (`None` before the first visit).
#[derive(Debug, Clone)]
pub struct PatientWithAggregates {
    pub patient: Patient,
    pub aggregates: Option<PatientAggregates>,
}

fn with_aggregates(r: &impl AnyRow) -> Result<PatientWithAggregates> {
    Ok(PatientWithAggregates {
        patient: patient_from_row(r)?,
        aggregates: aggregates_from_row(r)?,
    })
}

/// Reads one patient and their aggregates.
pub async fn get(db: &Db, id: i64) -> Result<Option<PatientWithAggregates>> {
    let sql = format!(
        "SELECT {COLUMNS}, {AGG_COLUMNS} FROM patients p \
         LEFT JOIN patient_aggregates a ON a.patient_key = p.id WHERE p.id = $1"
    );
    if let Db::Sqlite { sync, .. } = db {
        return Ok(sync
            .query(&sql, &[id.into()], |r| with_aggregates(r))?
            .pop());
    }
    on_read!(db, pool => match sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(id).fetch_optional(pool).await? {
        Some(r) => Ok(Some(with_aggregates(&r)?)),
        None => Ok(None),
    })
}

/// Search criteria; all given criteria must match.
#[derive(Debug, Clone, Default)]
pub struct PatientQuery {
    pub hospital_id: i64,
    /// Free text: a hospital id or phone number (exact), or a name prefix.
    pub q: Option<String>,
    /// Name prefix.
    pub name: Option<String>,
    /// Phone number, exact after normalisation.
    pub phone: Option<String>,
    /// The hospital's id, exact.
    pub patient_id: Option<String>,
    pub household: Option<String>,
    /// Only patients with a platform id greater than this (the cursor).
    pub after: Option<i64>,
    pub limit: i64,
}

/// The smallest string greater than every string starting with `prefix`.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// Searches patients, ordered by platform id.
pub async fn search(db: &Db, q: &PatientQuery) -> Result<Vec<PatientWithAggregates>> {
    let name_range = match db.engine() {
        Engine::Sqlite => "(p.name >= $N AND p.name < $M)",
        Engine::Postgres => "(p.name COLLATE \"C\" >= $N AND p.name COLLATE \"C\" < $M)",
    };
    let mut conds = vec!["p.hospital_id = $1".to_string()];
    let mut binds: Vec<String> = Vec::new();
    let param = |binds: &mut Vec<String>, v: String| {
        binds.push(v);
        format!("${}", binds.len() + 1)
    };
    if let Some(text) = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let a = param(&mut binds, text.to_string());
        let mut alts = vec![format!("p.patient_id = {a}")];
        if let Some(phone) = rapport_domain::patient::normalize_phone(text) {
            let b = param(&mut binds, phone);
            alts.push(format!("p.phone = {b}"));
        }
        let n = param(&mut binds, text.to_string());
        let m = param(&mut binds, prefix_end(text));
        alts.push(name_range.replace("$N", &n).replace("$M", &m));
        conds.push(format!("({})", alts.join(" OR ")));
    }
    if let Some(name) = q.name.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let n = param(&mut binds, name.to_string());
        let m = param(&mut binds, prefix_end(name));
        conds.push(name_range.replace("$N", &n).replace("$M", &m));
    }
    if let Some(phone) = q.phone.as_deref() {
        let v =
            rapport_domain::patient::normalize_phone(phone).unwrap_or_else(|| phone.to_string());
        conds.push(format!("p.phone = {}", param(&mut binds, v)));
    }
    if let Some(pid) = q.patient_id.as_deref() {
        conds.push(format!(
            "p.patient_id = {}",
            param(&mut binds, pid.to_string())
        ));
    }
    if let Some(h) = q.household.as_deref() {
        conds.push(format!(
            "p.household = {}",
            param(&mut binds, h.to_string())
        ));
    }
    let after_param = binds.len() + 2;
    // The limit is written into the text (see `visits::list`).
    let sql = format!(
        "SELECT {COLUMNS}, {AGG_COLUMNS} FROM patients p LEFT JOIN patient_aggregates a ON a.patient_key = p.id \
         WHERE {} AND p.id > ${after_param} ORDER BY p.id LIMIT {}",
        conds.join(" AND "),
        q.limit.max(0)
    );
    if let Db::Sqlite { sync, .. } = db {
        let mut params: Vec<Value> = vec![q.hospital_id.into()];
        params.extend(binds.iter().map(|b| Value::from(b.as_str())));
        params.push(q.after.unwrap_or(0).into());
        return sync.query(&sql, &params, |r| with_aggregates(r));
    }
    on_read!(db, pool => {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(q.hospital_id);
        for b in &binds {
            query = query.bind(b);
        }
        let rows = query.bind(q.after.unwrap_or(0)).fetch_all(pool).await?;
        rows.iter().map(with_aggregates).collect()
    })
}

/// Spend and visits of one patient per department, largest spend first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartmentSpend {
    pub department: Option<String>,
    pub visits: i64,
    pub monetary: i64,
    pub last_visit: NaiveDate,
}

pub async fn department_spend(db: &Db, patient_key: i64) -> Result<Vec<DepartmentSpend>> {
    let sql = "SELECT d.name AS department, COUNT(*) AS visits, CAST(SUM(v.amount) AS BIGINT) AS monetary, \
               MAX(v.visit_date) AS last_visit FROM visits v LEFT JOIN departments d ON d.id = v.department_id \
               WHERE v.patient_key = $1 GROUP BY d.name ORDER BY 3 DESC, 1";
    on_read!(db, pool => {
        let rows = sqlx::query(sql).bind(patient_key).fetch_all(pool).await?;
        rows.iter().map(|r| Ok(DepartmentSpend {
            department: r.col("department")?,
            visits: r.col("visits")?,
            monetary: r.col("monetary")?,
            last_visit: r.col("last_visit")?,
        })).collect()
    })
}

/// Number of patients (all hospitals).
pub async fn count(db: &Db) -> Result<i64> {
    let r: (i64,) =
        on_read!(db, p => sqlx::query_as("SELECT COUNT(*) FROM patients").fetch_one(p).await?);
    Ok(r.0)
}

/// Every sealed national id, with its patient's platform id, in id order.
pub async fn sealed_national_ids(db: &Db) -> Result<Vec<(i64, String)>> {
    let sql =
        "SELECT id, national_id_enc FROM patients WHERE national_id_enc IS NOT NULL ORDER BY id";
    Ok(on_read!(db, p => sqlx::query_as(sql).fetch_all(p).await?))
}

/// Patients with `id > after` that were not merged into another, in id
/// order, at most `limit`: a keyset scan for exports.
pub async fn page_after(db: &Db, hospital_id: i64, after: i64, limit: i64) -> Result<Vec<Patient>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM patients p WHERE p.hospital_id = $1 AND p.id > $2 AND p.merged_into IS NULL \
         ORDER BY p.id LIMIT {}",
        limit.clamp(1, 100_000)
    );
    on_read!(db, p => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).bind(after).fetch_all(p).await?;
        rows.iter().map(patient_from_row).collect()
    })
}

/// The aggregates of `keys` (patients without visits are absent).
pub async fn aggregates_of(
    db: &Db,
    keys: &[i64],
) -> Result<std::collections::HashMap<i64, PatientAggregates>> {
    if keys.is_empty() {
        return Ok(Default::default());
    }
    let list = serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
    let within = match db.engine() {
        Engine::Sqlite => "a.patient_key IN (SELECT value FROM json_each($1))",
        Engine::Postgres => {
            "a.patient_key IN (SELECT value::bigint FROM jsonb_array_elements_text($1::jsonb))"
        }
    };
    let sql =
        format!("SELECT a.patient_key, {AGG_COLUMNS} FROM patient_aggregates a WHERE {within}");
    on_read!(db, p => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(&list).fetch_all(p).await?;
        rows.iter()
            .map(|r| Ok((r.col::<i64>("patient_key")?, aggregates_from_row(r)?)))
            .filter_map(|x: Result<(i64, Option<PatientAggregates>)>| match x {
                Ok((k, Some(a))) => Some(Ok((k, a))),
                Ok((_, None)) => None,
                Err(e) => Some(Err(e)),
            })
            .collect()
    })
}
