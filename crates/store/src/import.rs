//! The bulk side of imports: set-at-a-time lookups and writes for chunks
//! of rows, so a file of millions of rows costs a few statements per few
//! thousand rows, not several per row.
//!
//! Lists of ids travel as one parameter (a JSON array read by `json_each`
//! on SQLite, a `text[]` on PostgreSQL): one statement text whatever the
//! chunk's size, and no per-placeholder cost.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rapport_domain::PatientAggregates;
use rapport_domain::patient::{NewPatient, Patient, Sex};

use crate::bulk::{self, Value};
use crate::patients::{COLUMNS, patient_from_row};
use crate::{AnyRow, Result, Tx, on_tx};

/// `column IN (the list)` for one bound parameter `$n`.
fn in_list(tx: &Tx, column: &str, n: usize) -> String {
    match tx {
        Tx::Sqlite(_) => format!("{column} IN (SELECT value FROM json_each(${n}))"),
        Tx::Postgres(_) => format!("{column} = ANY(${n}::text[])"),
    }
}

fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Binds a list for [`in_list`]: JSON text on SQLite, an array on
/// PostgreSQL.
macro_rules! bind_list {
    ($tx:expr, $sql:expr, $pre:expr, $list:expr, $as:ty) => {{
        let sql: &str = $sql;
        let list: &[String] = $list;
        match $tx {
            Tx::Sqlite(t) => {
                sqlx::query_as::<_, $as>(sqlx::AssertSqlSafe(sql))
                    .bind($pre)
                    .bind(json_list(list))
                    .fetch_all(&mut **t)
                    .await?
            }
            Tx::Postgres(t) => {
                sqlx::query_as::<_, $as>(sqlx::AssertSqlSafe(sql))
                    .bind($pre)
                    .bind(list)
                    .fetch_all(&mut **t)
                    .await?
            }
        }
    }};
}

/// A patient already in the database, found by the hospital's id.
#[derive(Debug, Clone)]
pub struct KnownPatient {
    pub patient: Patient,
    /// Set when the patient was merged into another: its visits go there.
    pub merged_into: Option<i64>,
}

/// The patients among `ids` (hospital ids) that exist.
pub async fn patients_by_external(
    tx: &mut Tx,
    hospital_id: i64,
    ids: &[String],
) -> Result<Vec<KnownPatient>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS}, p.merged_into FROM patients p WHERE p.hospital_id = $1 AND {}",
        in_list(tx, "p.patient_id", 2)
    );
    fn known(r: &impl AnyRow) -> Result<KnownPatient> {
        Ok(KnownPatient {
            patient: patient_from_row(r)?,
            merged_into: r.col("merged_into")?,
        })
    }
    // Each arm builds its own query: its engine is fixed by where it runs.
    match tx {
        Tx::Sqlite(t) => {
            let q = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id);
            let rows = q.bind(json_list(ids)).fetch_all(&mut **t).await?;
            rows.iter().map(known).collect()
        }
        Tx::Postgres(t) => {
            let q = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id);
            let rows = q.bind(ids).fetch_all(&mut **t).await?;
            rows.iter().map(known).collect()
        }
    }
}

/// The keys of the patients among `ids` that exist, following merges:
/// `(hospital id, key)`, the key being the patient's or, for a merged
/// patient, the one it was merged into.
pub async fn patient_keys_by_external(
    tx: &mut Tx,
    hospital_id: i64,
    ids: &[String],
) -> Result<Vec<(String, i64)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT patient_id, COALESCE(merged_into, id) FROM patients WHERE hospital_id = $1 AND {}",
        in_list(tx, "patient_id", 2)
    );
    Ok(bind_list!(tx, &sql, hospital_id, ids, (String, i64)))
}

const PATIENT_COLUMNS: &[&str] = &[
    "id",
    "hospital_id",
    "patient_id",
    "name",
    "sex",
    "birth_date",
    "birth_year",
    "phone",
    "email",
    "district",
    "source_channel",
    "registered_on",
    "tags",
    "created_at",
    "updated_at",
];

/// Inserts new patients under ids from [`bulk::reserve_ids`].
pub async fn insert_patients(
    tx: &mut Tx,
    hospital_id: i64,
    rows: &[(i64, &NewPatient)],
    now: DateTime<Utc>,
) -> Result<u64> {
    let values: Vec<Vec<Value>> = rows
        .iter()
        .map(|(id, p)| {
            let f = &p.fields;
            vec![
                Value::from(*id),
                Value::from(hospital_id),
                Value::from(p.patient_id.as_str()),
                Value::from(f.name.as_str()),
                Value::from(f.sex.map(|s: Sex| s.as_str().to_string())),
                Value::from(f.birth_date),
                Value::from(f.birth_year.map(i64::from)),
                Value::from(f.phone.clone()),
                Value::from(f.email.clone()),
                Value::from(f.district.clone()),
                Value::from(f.source_channel.clone()),
                Value::from(f.registered_on),
                Value::from(serde_json::to_string(&f.tags).unwrap_or_else(|_| "[]".into())),
                Value::from(now),
                Value::from(now),
            ]
        })
        .collect();
    bulk::write_rows(tx, "patients", PATIENT_COLUMNS, &values).await
}

/// A visit already in the database, found by the hospital's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownVisit {
    pub id: i64,
    pub visit_id: String,
    pub patient_key: i64,
    pub visit_date: NaiveDate,
    pub department_id: Option<i64>,
    pub doctor_id: Option<i64>,
    pub kind: String,
    pub amount: i64,
}

/// The visits among `ids` (hospital visit ids) that exist.
pub async fn visits_by_external(
    tx: &mut Tx,
    hospital_id: i64,
    ids: &[String],
) -> Result<Vec<KnownVisit>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, visit_id, patient_key, visit_date, department_id, doctor_id, kind, amount \
         FROM visits WHERE hospital_id = $1 AND {}",
        in_list(tx, "visit_id", 2)
    );
    type Row = (
        i64,
        String,
        i64,
        NaiveDate,
        Option<i64>,
        Option<i64>,
        String,
        i64,
    );
    let rows: Vec<Row> = bind_list!(tx, &sql, hospital_id, ids, Row);
    Ok(rows
        .into_iter()
        .map(|r| KnownVisit {
            id: r.0,
            visit_id: r.1,
            patient_key: r.2,
            visit_date: r.3,
            department_id: r.4,
            doctor_id: r.5,
            kind: r.6,
            amount: r.7,
        })
        .collect())
}

/// A new visit, its references resolved.
#[derive(Debug, Clone)]
pub struct NewVisitRow<'a> {
    pub visit_id: &'a str,
    pub patient_key: i64,
    pub visit_date: NaiveDate,
    pub department_id: Option<i64>,
    pub doctor_id: Option<i64>,
    pub kind: &'static str,
    pub amount: i64,
}

const VISIT_COLUMNS: &[&str] = &[
    "hospital_id",
    "visit_id",
    "patient_key",
    "visit_date",
    "department_id",
    "doctor_id",
    "kind",
    "amount",
    "created_at",
    "updated_at",
];

pub async fn insert_visits(
    tx: &mut Tx,
    hospital_id: i64,
    rows: &[NewVisitRow<'_>],
    now: DateTime<Utc>,
) -> Result<u64> {
    let values: Vec<Vec<Value>> = rows
        .iter()
        .map(|v| {
            vec![
                Value::from(hospital_id),
                Value::from(v.visit_id),
                Value::from(v.patient_key),
                Value::from(v.visit_date),
                Value::from(v.department_id),
                Value::from(v.doctor_id),
                Value::from(v.kind),
                Value::from(v.amount),
                Value::from(now),
                Value::from(now),
            ]
        })
        .collect();
    bulk::write_rows(tx, "visits", VISIT_COLUMNS, &values).await
}

/// Rewrites a known visit in place.
pub async fn update_visit(
    tx: &mut Tx,
    v: &NewVisitRow<'_>,
    id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE visits SET patient_key = $2, visit_date = $3, department_id = $4, doctor_id = $5, \
         kind = $6, amount = $7, updated_at = $8 WHERE id = $1")
        .bind(id)
        .bind(v.patient_key)
        .bind(v.visit_date)
        .bind(v.department_id)
        .bind(v.doctor_id)
        .bind(v.kind)
        .bind(v.amount)
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected());
    Ok(())
}

/// The stored aggregates of `keys` (patients without visits are absent).
pub async fn aggregates_of(tx: &mut Tx, keys: &[i64]) -> Result<HashMap<i64, PatientAggregates>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let list: Vec<String> = keys.iter().map(i64::to_string).collect();
    let sql = format!(
        "SELECT patient_key, first_visit, last_visit, visits, visit_days, monetary, first_day_monetary, \
         months_with_visits, cohort_mask FROM patient_aggregates WHERE $1 = $1 AND {}",
        key_list(tx, "patient_key", 2)
    );
    type Row = (i64, NaiveDate, NaiveDate, i64, i64, i64, i64, i64, i64);
    let rows: Vec<Row> = bind_list!(tx, &sql, 0i64, &list, Row);
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.0,
                PatientAggregates {
                    first_visit: r.1,
                    last_visit: r.2,
                    visits: r.3,
                    visit_days: r.4,
                    monetary: r.5,
                    first_day_monetary: r.6,
                    months_with_visits: r.7,
                    cohort_mask: r.8,
                },
            )
        })
        .collect())
}

/// Integer keys as a list parameter (they travel as text, like ids).
fn key_list(tx: &Tx, column: &str, n: usize) -> String {
    match tx {
        Tx::Sqlite(_) => {
            format!("{column} IN (SELECT CAST(value AS INTEGER) FROM json_each(${n}))")
        }
        Tx::Postgres(_) => format!("{column} = ANY(${n}::text[]::bigint[])"),
    }
}

/// The dates of every visit of `keys`, as stored now.
pub async fn visit_dates_of(tx: &mut Tx, keys: &[i64]) -> Result<Vec<(i64, NaiveDate)>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = keys.iter().map(i64::to_string).collect();
    let sql = format!(
        "SELECT patient_key, visit_date FROM visits WHERE $1 = $1 AND {}",
        key_list(tx, "patient_key", 2)
    );
    Ok(bind_list!(tx, &sql, 0i64, &list, (i64, NaiveDate)))
}

const AGG_COLUMNS: &[&str] = &[
    "patient_key",
    "hospital_id",
    "first_visit",
    "last_visit",
    "visits",
    "visit_days",
    "monetary",
    "first_day_monetary",
    "months_with_visits",
    "cohort_mask",
];

fn agg_values(hospital_id: i64, key: i64, a: &PatientAggregates) -> Vec<Value> {
    vec![
        Value::from(key),
        Value::from(hospital_id),
        Value::from(a.first_visit),
        Value::from(a.last_visit),
        Value::from(a.visits),
        Value::from(a.visit_days),
        Value::from(a.monetary),
        Value::from(a.first_day_monetary),
        Value::from(a.months_with_visits),
        Value::from(a.cohort_mask),
    ]
}

/// Writes aggregates: `fresh` for patients that had none (the fast path),
/// `changed` for patients that had some.
pub async fn write_aggregates(
    tx: &mut Tx,
    hospital_id: i64,
    fresh: &[(i64, PatientAggregates)],
    changed: &[(i64, PatientAggregates)],
) -> Result<()> {
    let rows: Vec<Vec<Value>> = fresh
        .iter()
        .map(|(k, a)| agg_values(hospital_id, *k, a))
        .collect();
    bulk::write_rows(tx, "patient_aggregates", AGG_COLUMNS, &rows).await?;
    let rows: Vec<Vec<Value>> = changed
        .iter()
        .map(|(k, a)| agg_values(hospital_id, *k, a))
        .collect();
    bulk::insert_rows_then(
        tx,
        "patient_aggregates",
        AGG_COLUMNS,
        &rows,
        " ON CONFLICT (patient_key) DO UPDATE SET first_visit = excluded.first_visit, \
         last_visit = excluded.last_visit, visits = excluded.visits, visit_days = excluded.visit_days, \
         monetary = excluded.monetary, first_day_monetary = excluded.first_day_monetary, \
         months_with_visits = excluded.months_with_visits, cohort_mask = excluded.cohort_mask",
    )
    .await?;
    Ok(())
}

/// Flags patients among those with `id > after` (or in `changed`) who
/// probably are an older patient: same national id, or same name and
/// phone. Returns how many pairs were new.
pub async fn flag_duplicates(
    tx: &mut Tx,
    hospital_id: i64,
    after: i64,
    changed: &[i64],
    now: DateTime<Utc>,
) -> Result<u64> {
    let list: Vec<String> = changed.iter().map(i64::to_string).collect();
    let scope = format!("(n.id > $2 OR {})", key_list(tx, "n.id", 4));
    let mut total = 0;
    for (reason, on) in [
        ("national_id", "o.national_id_index = n.national_id_index"),
        (
            "name_phone",
            "o.phone = n.phone AND o.name = n.name AND n.name <> ''",
        ),
    ] {
        let sql = format!(
            "INSERT INTO patient_duplicates (hospital_id, patient_key, duplicate_of, reason, detected_at) \
             SELECT n.hospital_id, n.id, MIN(o.id), '{reason}', $3 FROM patients n \
             JOIN patients o ON o.hospital_id = n.hospital_id AND {on} AND o.id < n.id \
             AND o.merged_into IS NULL AND o.erased_at IS NULL \
             WHERE n.hospital_id = $1 AND {scope} AND n.merged_into IS NULL \
             GROUP BY n.hospital_id, n.id \
             ON CONFLICT (patient_key, duplicate_of) DO NOTHING"
        );
        total += match tx {
            Tx::Sqlite(t) => sqlx::query(sqlx::AssertSqlSafe(&*sql))
                .bind(hospital_id)
                .bind(after)
                .bind(now)
                .bind(json_list(&list))
                .execute(&mut **t)
                .await?
                .rows_affected(),
            Tx::Postgres(t) => sqlx::query(sqlx::AssertSqlSafe(&*sql))
                .bind(hospital_id)
                .bind(after)
                .bind(now)
                .bind(&list)
                .execute(&mut **t)
                .await?
                .rows_affected(),
        };
    }
    Ok(total)
}

/// Drops `table`'s secondary (non-unique) indexes inside the transaction
/// when the table is empty, on SQLite, and returns the statements that
/// rebuild them: building an index once from sorted rows is several times
/// faster than growing it by millions of random inserts. The unique
/// indexes stay (lookups need them). Readers never notice: they see the
/// table as it was until the transaction commits, indexes rebuilt.
pub async fn defer_indexes(tx: &mut Tx, table: &str) -> Result<Vec<String>> {
    let Tx::Sqlite(t) = tx else {
        return Ok(Vec::new());
    };
    let empty: (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT NOT EXISTS (SELECT 1 FROM {table})"
    )))
    .fetch_one(&mut **t)
    .await?;
    if empty.0 == 0 {
        return Ok(Vec::new());
    }
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 \
         AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'",
    )
    .bind(table)
    .fetch_all(&mut **t)
    .await?;
    for (name, _) in &indexes {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {name}")))
            .execute(&mut **t)
            .await?;
    }
    Ok(indexes.into_iter().map(|(_, sql)| sql).collect())
}

/// Rebuilds what [`defer_indexes`] dropped. The sort that builds an
/// index spills to temporary files rather than memory (the connection
/// keeps temporary data in memory otherwise), so a build over ten million
/// rows stays within the import's memory bound.
pub async fn restore_indexes(tx: &mut Tx, statements: &[String]) -> Result<()> {
    if statements.is_empty() {
        return Ok(());
    }
    on_tx!(tx, c => sqlx::query("PRAGMA temp_store = FILE").execute(&mut *c).await?.rows_affected());
    for sql in statements {
        on_tx!(tx, c => sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).execute(&mut *c).await?.rows_affected());
    }
    on_tx!(tx, c => sqlx::query("PRAGMA temp_store = MEMORY").execute(&mut *c).await?.rows_affected());
    Ok(())
}
