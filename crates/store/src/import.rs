//! The bulk side of imports: set-at-a-time lookups and writes for chunks
//! of rows, so a file of millions of rows costs a few statements per few
//! thousand rows, not several per row.
//!
//! Lists of ids travel as one parameter, a JSON array (read by
//! `json_each` on SQLite, `jsonb_array_elements_text` on PostgreSQL): one
//! statement text whatever the chunk's size, and no per-placeholder cost.
//!
//! Every function here accepts an inline transaction
//! ([`crate::Db::begin_inline`]), which is how imports run on SQLite.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rapport_domain::PatientAggregates;
use rapport_domain::patient::{NewPatient, Patient, Sex};

use crate::bulk::{self, Value};
use crate::patients::{COLUMNS, aggregate_values, aggregates_from_row, patient_from_row};
use crate::query::FromAnyRow;
use crate::{AnyRow, Engine, Result, Tx};

/// `column IN (the list)` for one bound parameter `$n` (from [`list`]) of
/// integers, for a short list.
fn key_list(tx: &Tx, column: &str, n: usize) -> String {
    match tx.engine() {
        Engine::Sqlite => {
            format!("{column} IN (SELECT CAST(value AS INTEGER) FROM json_each(${n}))")
        }
        Engine::Postgres => {
            format!("{column} IN (SELECT CAST(jsonb_array_elements_text(${n}::jsonb) AS BIGINT))")
        }
    }
}

/// The type of a list's items.
#[derive(Clone, Copy)]
enum Item {
    Text,
    Int,
}

/// `FROM table alias WHERE filter AND alias.column IN (the list $n)`,
/// the rows of a chunk's ids (distinct), one index probe per id.
///
/// On PostgreSQL the probes are spelled out: a nested loop over the ids
/// into a subquery that cannot be flattened (`OFFSET 0`). Written as
/// `IN (subquery)` or `= ANY(array)`, the planner may hash the ids and
/// scan the whole table, or scan it testing every row against every id,
/// and does on a table filled in this very transaction (no statistics
/// yet): a lookup then costs the table, not the chunk. SQLite's planner
/// probes the index for `IN`.
fn probe(
    tx: &Tx,
    table: &str,
    alias: &str,
    column: &str,
    item: Item,
    n: usize,
    filter: &str,
) -> String {
    match (tx.engine(), item) {
        (Engine::Sqlite, Item::Text) => format!(
            "FROM {table} {alias} WHERE {filter} AND {alias}.{column} IN (SELECT value FROM json_each(${n}))"
        ),
        (Engine::Sqlite, Item::Int) => format!(
            "FROM {table} {alias} WHERE {filter} AND {alias}.{column} IN \
             (SELECT CAST(value AS INTEGER) FROM json_each(${n}))"
        ),
        (Engine::Postgres, item) => {
            let v = match item {
                Item::Text => "k.v",
                Item::Int => "CAST(k.v AS BIGINT)",
            };
            format!(
                "FROM jsonb_array_elements_text(${n}::jsonb) AS k(v) CROSS JOIN LATERAL \
                 (SELECT * FROM {table} {alias} WHERE {filter} AND {alias}.{column} = {v} OFFSET 0) {alias}"
            )
        }
    }
}

/// A list as one parameter: a JSON array.
fn list<T: serde::Serialize>(items: &[T]) -> Value {
    Value::from(serde_json::to_string(items).unwrap_or_else(|_| "[]".into()))
}

/// The patients `p` of hospital `$1` among the hospital ids `$2`.
fn patients_probe(tx: &Tx) -> String {
    probe(
        tx,
        "patients",
        "p",
        "patient_id",
        Item::Text,
        2,
        "p.hospital_id = $1",
    )
}

/// A patient already in the database, found by the hospital's id.
#[derive(Debug, Clone)]
pub struct KnownPatient {
    pub patient: Patient,
    /// Set when the patient was merged into another: its visits go there.
    pub merged_into: Option<i64>,
}

impl FromAnyRow for KnownPatient {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        Ok(KnownPatient {
            patient: patient_from_row(r)?,
            merged_into: r.col("merged_into")?,
        })
    }
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
    let sql = format!("SELECT {COLUMNS}, p.merged_into {}", patients_probe(tx));
    tx.fetch(&sql, &[hospital_id.into(), list(ids)]).await
}

struct PatientKey(String, i64);

impl FromAnyRow for PatientKey {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        Ok(PatientKey(r.col("patient_id")?, r.col("patient_key")?))
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
        "SELECT p.patient_id, COALESCE(p.merged_into, p.id) AS patient_key {}",
        patients_probe(tx)
    );
    let rows: Vec<PatientKey> = tx.fetch(&sql, &[hospital_id.into(), list(ids)]).await?;
    Ok(rows.into_iter().map(|k| (k.0, k.1)).collect())
}

/// A page of the hospital's patients' keys in id order, after row `after`:
/// `(row id, hospital id, key)`, the key following a merge.
pub async fn patient_keys_page(
    tx: &mut Tx,
    hospital_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, String, i64)>> {
    let rows: Vec<PatientKeyRow> = tx
        .fetch(
            "SELECT id, patient_id, COALESCE(merged_into, id) AS patient_key FROM patients \
             WHERE hospital_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            &[hospital_id.into(), after.into(), limit.into()],
        )
        .await?;
    Ok(rows.into_iter().map(|r| (r.0, r.1.0, r.1.1)).collect())
}

struct PatientKeyRow(i64, PatientKey);

impl FromAnyRow for PatientKeyRow {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        Ok(PatientKeyRow(r.col("id")?, PatientKey::from_any(r)?))
    }
}

/// Keeps every other writer off the patients table until the transaction
/// ends (PostgreSQL; on SQLite the bulk transaction already does), so
/// that keys read once stay true for the whole load.
pub async fn hold_patients(tx: &mut Tx) -> Result<()> {
    if tx.engine() == Engine::Postgres {
        tx.exec("LOCK TABLE patients IN SHARE ROW EXCLUSIVE MODE", &[])
            .await?;
    }
    Ok(())
}

/// Whether `table` holds no row, read outside any transaction: a hint,
/// since a writer may fill it before the caller's transaction begins.
pub async fn is_empty_now(db: &crate::Db, table: &str) -> Result<bool> {
    let (empty,): (bool,) = crate::on_read!(db, p => {
        sqlx::query_as(sqlx::AssertSqlSafe(empty_sql(table))).fetch_one(p).await?
    });
    Ok(empty)
}

/// Whether `table` holds no row, as the transaction sees it.
pub async fn is_empty(tx: &mut Tx, table: &str) -> Result<bool> {
    let empty: crate::query::Flag = tx.fetch_one(&empty_sql(table), &[]).await?;
    Ok(empty.0)
}

fn empty_sql(table: &str) -> String {
    format!("SELECT NOT EXISTS (SELECT 1 FROM {table}) AS flag")
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
        "SELECT v.id, v.visit_id, v.patient_key, v.visit_date, v.department_id, v.doctor_id, v.kind, v.amount {}",
        probe(
            tx,
            "visits",
            "v",
            "visit_id",
            Item::Text,
            2,
            "v.hospital_id = $1"
        )
    );
    tx.fetch(&sql, &[hospital_id.into(), list(ids)]).await
}

impl FromAnyRow for KnownVisit {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        Ok(KnownVisit {
            id: r.col("id")?,
            visit_id: r.col("visit_id")?,
            patient_key: r.col("patient_key")?,
            visit_date: r.col("visit_date")?,
            department_id: r.col("department_id")?,
            doctor_id: r.col("doctor_id")?,
            kind: r.col("kind")?,
            amount: r.col("amount")?,
        })
    }
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
    write_visit_values(tx, &visit_values(hospital_id, rows, now)).await
}

/// The rows [`insert_visits`] writes, owned (to be written elsewhere).
pub fn visit_values(
    hospital_id: i64,
    rows: &[NewVisitRow<'_>],
    now: DateTime<Utc>,
) -> Vec<Vec<Value>> {
    rows.iter()
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
        .collect()
}

/// Writes rows from [`visit_values`].
pub async fn write_visit_values(tx: &mut Tx, rows: &[Vec<Value>]) -> Result<u64> {
    bulk::write_rows(tx, "visits", VISIT_COLUMNS, rows).await
}

/// Rewrites a known visit in place.
pub async fn update_visit(
    tx: &mut Tx,
    v: &NewVisitRow<'_>,
    id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.exec(
        "UPDATE visits SET patient_key = $2, visit_date = $3, department_id = $4, doctor_id = $5, \
         kind = $6, amount = $7, updated_at = $8 WHERE id = $1",
        &[
            id.into(),
            v.patient_key.into(),
            v.visit_date.into(),
            v.department_id.into(),
            v.doctor_id.into(),
            v.kind.into(),
            v.amount.into(),
            now.into(),
        ],
    )
    .await?;
    Ok(())
}

/// The stored aggregates of `keys` (patients without visits are absent).
pub async fn aggregates_of(tx: &mut Tx, keys: &[i64]) -> Result<HashMap<i64, PatientAggregates>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT a.patient_key, a.first_visit, a.last_visit, a.visits, a.visit_days, a.monetary, \
         a.first_day_monetary, a.months_with_visits, a.cohort_mask {}",
        probe(
            tx,
            "patient_aggregates",
            "a",
            "patient_key",
            Item::Int,
            1,
            "TRUE"
        )
    );
    let rows: Vec<KeyedAggregates> = tx.fetch(&sql, &[list(keys)]).await?;
    Ok(rows.into_iter().map(|k| (k.0, k.1)).collect())
}

struct KeyedAggregates(i64, PatientAggregates);

impl FromAnyRow for KeyedAggregates {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        let a = aggregates_from_row(r)?
            .ok_or_else(|| crate::StoreError::Corrupt("aggregates without a first visit".into()))?;
        Ok(KeyedAggregates(r.col("patient_key")?, a))
    }
}

struct VisitDate(i64, NaiveDate);

impl FromAnyRow for VisitDate {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        Ok(VisitDate(r.col("patient_key")?, r.col("visit_date")?))
    }
}

/// The dates of every visit of `keys`, as stored now.
pub async fn visit_dates_of(tx: &mut Tx, keys: &[i64]) -> Result<Vec<(i64, NaiveDate)>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT v.patient_key, v.visit_date {}",
        probe(tx, "visits", "v", "patient_key", Item::Int, 1, "TRUE")
    );
    let rows: Vec<VisitDate> = tx.fetch(&sql, &[list(keys)]).await?;
    Ok(rows.into_iter().map(|d| (d.0, d.1)).collect())
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
    let mut v = vec![Value::from(key), Value::from(hospital_id)];
    v.extend(aggregate_values(a));
    v
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
        total += tx
            .exec(
                &sql,
                &[hospital_id.into(), after.into(), now.into(), list(changed)],
            )
            .await?;
    }
    Ok(total)
}

/// Sets aside what makes each row of a load into an empty `table` slow,
/// inside the transaction, and returns the statements that put it back:
///
/// - its secondary (non-unique) indexes: building an index once from
///   sorted rows is several times faster than growing it by millions of
///   random inserts. The unique indexes stay (lookups need them).
/// - on PostgreSQL, its foreign keys: each is checked by a trigger and a
///   query per row (about 20 µs), while adding the key back checks every
///   row in one join.
///
/// Readers see the table as it was until the transaction commits, with
/// everything back. On SQLite they read on; on PostgreSQL dropping an
/// index or a foreign key locks the table, and a foreign key the table it
/// references too, so readers of those wait for the commit. Only a first
/// load into an empty table does this.
pub async fn defer_upkeep(tx: &mut Tx, table: &str) -> Result<Vec<String>> {
    if !is_empty(tx, table).await? {
        return Ok(Vec::new());
    }
    let sql = match tx.engine() {
        Engine::Sqlite => {
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 \
             AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'"
        }
        Engine::Postgres => {
            "SELECT indexname AS name, indexdef AS sql FROM pg_indexes \
             WHERE schemaname = current_schema() AND tablename = $1 AND indexdef NOT LIKE 'CREATE UNIQUE%'"
        }
    };
    let indexes: Vec<IndexDef> = tx.fetch(sql, &[table.into()]).await?;
    for ix in &indexes {
        tx.exec(&format!("DROP INDEX {}", ix.name), &[]).await?;
    }
    let mut restore: Vec<String> = indexes.into_iter().map(|ix| ix.sql).collect();
    if tx.engine() == Engine::Postgres {
        restore.extend(drop_constraints(tx, table, 'f').await?);
        // The rest of the transaction (the duplicate search, lookups)
        // is planned on the loaded table's statistics, not on guesses.
        restore.push(format!("ANALYZE {table}"));
    }
    Ok(restore)
}

/// On PostgreSQL, sets aside the unique constraints of an empty `table`
/// other than its primary key, inside the transaction, and returns the
/// statements that put them back; on SQLite (where they are part of the
/// table) nothing. Each row inserted into a unique index is a search of
/// the index by the key's collation, about a third of a load's inserting
/// on PostgreSQL; the index built once at the end costs a fraction.
///
/// Until the constraints are back, lookups by their keys scan the whole
/// table and duplicates are not refused: the caller must not look rows
/// up by those keys, and must know its rows are distinct (adding the
/// constraint back fails otherwise, and with it the transaction).
pub async fn defer_unique(tx: &mut Tx, table: &str) -> Result<Vec<String>> {
    if tx.engine() != Engine::Postgres || !is_empty(tx, table).await? {
        return Ok(Vec::new());
    }
    drop_constraints(tx, table, 'u').await
}

/// Drops the PostgreSQL constraints of `kind` (`pg_constraint.contype`)
/// on `table`, returning the statements that add them back.
async fn drop_constraints(tx: &mut Tx, table: &str, kind: char) -> Result<Vec<String>> {
    let keys: Vec<IndexDef> = tx
        .fetch(
            "SELECT conname AS name, pg_get_constraintdef(oid) AS sql FROM pg_constraint \
             WHERE conrelid = CAST($1 AS regclass) AND CAST(contype AS TEXT) = $2 ORDER BY conname",
            &[table.into(), kind.to_string().into()],
        )
        .await?;
    let mut restore = Vec::new();
    for key in keys {
        tx.exec(
            &format!("ALTER TABLE {table} DROP CONSTRAINT {}", key.name),
            &[],
        )
        .await?;
        restore.push(format!(
            "ALTER TABLE {table} ADD CONSTRAINT {} {}",
            key.name, key.sql
        ));
    }
    Ok(restore)
}

struct IndexDef {
    name: String,
    sql: String,
}

impl FromAnyRow for IndexDef {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        Ok(IndexDef {
            name: r.col("name")?,
            sql: r.col("sql")?,
        })
    }
}

/// Puts back what [`defer_upkeep`] set aside. On SQLite the sort that
/// builds an index spills to temporary files rather than memory (the
/// connection keeps temporary data in memory otherwise), so a build over
/// ten million rows stays within the import's memory bound; PostgreSQL's
/// server sorts with a larger work area for this transaction.
pub async fn restore_upkeep(tx: &mut Tx, statements: &[String]) -> Result<()> {
    if statements.is_empty() {
        return Ok(());
    }
    let (before, after) = match tx.engine() {
        Engine::Sqlite => (
            "PRAGMA temp_store = FILE",
            Some("PRAGMA temp_store = MEMORY"),
        ),
        Engine::Postgres => ("SET LOCAL maintenance_work_mem = '256MB'", None),
    };
    tx.exec(before, &[]).await?;
    if matches!(tx, Tx::Inline(_)) {
        // SQLite's sorter keeps as much in memory as the page cache may
        // hold, on top of the cache: both shrink for the builds (the end
        // of the bulk transaction restores the cache), and the load's
        // pages go to the log so that their memory is free.
        tx.exec("PRAGMA cache_size = -16384", &[]).await?;
        if let Tx::Inline(t) = tx {
            t.release_cache()?;
        }
    }
    for sql in statements {
        tx.exec(sql, &[]).await?;
    }
    if let Some(after) = after {
        tx.exec(after, &[]).await?;
    }
    Ok(())
}
