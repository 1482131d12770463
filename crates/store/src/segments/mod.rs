//! Saved segments: their definitions, the history of their sizes, and the
//! queries that count and list their members.
//!
//! A segment's rules are stored as the canonical JSON of
//! [`rapport_domain::segment::Rule`] and compiled (see `sql.rs`) to one
//! parameterised condition per query. Counting scans one table of a
//! million narrow rows; on SQLite the scan is split into key ranges read in
//! parallel on blocking threads through the synchronous read path, like
//! the analytics scans. Erased patients are never members.

mod sql;

use chrono::{DateTime, NaiveDate, Utc};
use rapport_domain::PatientAggregates;
use rapport_domain::patient::Patient;
use rapport_domain::segment::Rule;

use crate::analytics::scores::StoredScore;
use crate::bulk::Value;
use crate::patients::{AGG_COLUMNS, COLUMNS, aggregates_from_row, patient_from_row};
use crate::query::bind_values;
use crate::sync::SyncReader;
use crate::{AnyRow, Db, Engine, Result, StoreError, Tx, on_read, on_tx};
use sql::{Tables, compile};

/// A stored segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRow {
    pub id: i64,
    pub hospital_id: i64,
    pub name: String,
    pub description: Option<String>,
    /// Canonical JSON of the rule tree.
    pub rules: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SEGMENT_COLUMNS: &str =
    "id, hospital_id, name, description, rules, created_by, created_at, updated_at";

fn segment_from_row(r: &impl AnyRow) -> Result<SegmentRow> {
    Ok(SegmentRow {
        id: r.col("id")?,
        hospital_id: r.col("hospital_id")?,
        name: r.col("name")?,
        description: r.col("description")?,
        rules: r.col("rules")?,
        created_by: r.col("created_by")?,
        created_at: r.col("created_at")?,
        updated_at: r.col("updated_at")?,
    })
}

/// Inserts a segment; `Conflict("segment")` when the name is taken.
pub async fn insert(
    tx: &mut Tx,
    hospital_id: i64,
    name: &str,
    description: Option<&str>,
    rules: &str,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let sql = "INSERT INTO segments (hospital_id, name, description, rules, created_by, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id";
    let r: (i64,) = on_tx!(tx, c => sqlx::query_as(sql)
        .bind(hospital_id)
        .bind(name)
        .bind(description)
        .bind(rules)
        .bind(created_by)
        .bind(now)
        .fetch_one(&mut *c)
        .await)
    .map_err(|e| StoreError::unique(e, "segment"))?;
    Ok(r.0)
}

/// Reads a segment inside a write transaction and locks it (PostgreSQL;
/// SQLite's single writer already holds the database).
pub async fn lock(tx: &mut Tx, id: i64) -> Result<Option<SegmentRow>> {
    let sql = match tx.engine() {
        Engine::Sqlite => format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE id = $1"),
        Engine::Postgres => {
            format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE id = $1 FOR UPDATE")
        }
    };
    on_tx!(tx, c => match sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(id).fetch_optional(&mut *c).await? {
        Some(r) => Ok(Some(segment_from_row(&r)?)),
        None => Ok(None),
    })
}

/// Rewrites a segment's name, description and rules.
pub async fn update(
    tx: &mut Tx,
    id: i64,
    name: &str,
    description: Option<&str>,
    rules: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let sql = "UPDATE segments SET name = $2, description = $3, rules = $4, updated_at = $5 WHERE id = $1";
    let done = on_tx!(tx, c => sqlx::query(sql)
        .bind(id)
        .bind(name)
        .bind(description)
        .bind(rules)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
    .map_err(|e| StoreError::unique(e, "segment"))?;
    if done == 0 {
        return Err(StoreError::NotFound("segment"));
    }
    Ok(())
}

/// Deletes a segment and its count history.
pub async fn delete(tx: &mut Tx, id: i64) -> Result<()> {
    on_tx!(tx, c => {
        sqlx::query("DELETE FROM segment_counts WHERE segment_id = $1").bind(id).execute(&mut *c).await?;
        sqlx::query("DELETE FROM segments WHERE id = $1").bind(id).execute(&mut *c).await?;
    });
    Ok(())
}

pub async fn get(db: &Db, id: i64) -> Result<Option<SegmentRow>> {
    let sql = format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE id = $1");
    on_read!(db, p => match sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(id).fetch_optional(p).await? {
        Some(r) => Ok(Some(segment_from_row(&r)?)),
        None => Ok(None),
    })
}

/// Every segment of the hospital, by name.
pub async fn list(db: &Db, hospital_id: i64) -> Result<Vec<SegmentRow>> {
    let sql =
        format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE hospital_id = $1 ORDER BY name, id");
    on_read!(db, p => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).fetch_all(p).await?;
        rows.iter().map(segment_from_row).collect()
    })
}

/// One recorded size of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    pub id: i64,
    pub segment_id: i64,
    pub counted_at: DateTime<Utc>,
    pub as_of: NaiveDate,
    pub patients: i64,
    /// `refresh` or `request`.
    pub reason: String,
}

const COUNT_COLUMNS: &str = "id, segment_id, counted_at, as_of, patients, reason";

fn count_from_row(r: &impl AnyRow) -> Result<CountRow> {
    Ok(CountRow {
        id: r.col("id")?,
        segment_id: r.col("segment_id")?,
        counted_at: r.col("counted_at")?,
        as_of: r.col("as_of")?,
        patients: r.col("patients")?,
        reason: r.col("reason")?,
    })
}

pub async fn insert_count(tx: &mut Tx, hospital_id: i64, c: &CountRow) -> Result<i64> {
    let sql = "INSERT INTO segment_counts (hospital_id, segment_id, counted_at, as_of, patients, reason) \
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
    let r: (i64,) = on_tx!(tx, conn => sqlx::query_as(sql)
        .bind(hospital_id)
        .bind(c.segment_id)
        .bind(c.counted_at)
        .bind(c.as_of)
        .bind(c.patients)
        .bind(&c.reason)
        .fetch_one(&mut *conn)
        .await?);
    Ok(r.0)
}

/// The latest `limit` counts of a segment, oldest first.
pub async fn history(db: &Db, segment_id: i64, limit: i64) -> Result<Vec<CountRow>> {
    let sql = format!(
        "SELECT {COUNT_COLUMNS} FROM segment_counts WHERE segment_id = $1 ORDER BY counted_at DESC, id DESC LIMIT {}",
        limit.max(0)
    );
    let mut out: Vec<CountRow> = on_read!(db, p => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(segment_id).fetch_all(p).await?;
        rows.iter().map(count_from_row).collect::<Result<Vec<_>>>()?
    });
    out.reverse();
    Ok(out)
}

/// The latest count of every segment of the hospital that has one.
pub async fn latest_counts(db: &Db, hospital_id: i64) -> Result<Vec<CountRow>> {
    let sql = format!(
        "SELECT {COUNT_COLUMNS} FROM segment_counts WHERE id IN \
         (SELECT MAX(id) FROM segment_counts WHERE hospital_id = $1 GROUP BY segment_id) ORDER BY segment_id"
    );
    on_read!(db, p => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).fetch_all(p).await?;
        rows.iter().map(count_from_row).collect()
    })
}

/// Leaves erased patients out (one probe of a partial index per row).
fn not_erased(key: &str) -> String {
    format!("{key} NOT IN (SELECT id FROM patients WHERE erased_at IS NOT NULL)")
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8)
}

/// Splits `lo..=hi` into at most `parts` contiguous ranges.
fn ranges(lo: i64, hi: i64, parts: usize) -> Vec<(i64, i64)> {
    if hi < lo {
        return Vec::new();
    }
    let span = (hi - lo) as u128 + 1;
    let parts = (parts as u128).min(span).max(1);
    (0..parts)
        .map(|i| {
            let a = lo + (span * i / parts) as i64;
            let b = lo + (span * (i + 1) / parts) as i64 - 1;
            (a, b)
        })
        .collect()
}

fn join_error(e: tokio::task::JoinError) -> StoreError {
    if e.is_panic() {
        std::panic::resume_unwind(e.into_panic());
    }
    StoreError::Config(format!("read task failed: {e}"))
}

/// `$N` placeholders as SQLite's `?N`, which bind by number wherever they
/// appear (rusqlite binds positionally, and `$N` names are numbered in
/// order of appearance).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs `sql` (whose `$2` and `$3` bound the scanned key) once per key
/// range on blocking threads, and returns the first column of each
/// answer row, per range.
async fn sqlite_ranges(
    sync: &SyncReader,
    bounds: (&str, &str),
    sql: String,
    hospital_id: i64,
    params: Vec<Value>,
) -> Result<Vec<Vec<Option<i64>>>> {
    let (table, key) = bounds;
    let bounds_sql =
        format!("SELECT (SELECT MIN({key}) FROM {table}), (SELECT MAX({key}) FROM {table})");
    let s = sync.clone();
    let b: Vec<(Option<i64>, Option<i64>)> = tokio::task::spawn_blocking(move || {
        s.query(&bounds_sql, &[], |r| Ok((r.get(0)?, r.get(1)?)))
    })
    .await
    .map_err(join_error)??;
    let Some((Some(lo), Some(hi))) = b.first().copied() else {
        return Ok(Vec::new());
    };
    let sql = std::sync::Arc::new(numbered(&sql));
    let params = std::sync::Arc::new(params);
    let mut handles = Vec::new();
    for (a, z) in ranges(lo, hi, threads()) {
        let (s, sql, params) = (sync.clone(), sql.clone(), params.clone());
        handles.push(tokio::task::spawn_blocking(move || {
            let mut all = vec![Value::from(hospital_id), Value::from(a), Value::from(z)];
            all.extend(params.iter().cloned());
            s.query(&sql, &all, |r| {
                let n = r.as_ref().column_count();
                (0..n)
                    .map(|i| r.get::<_, Option<i64>>(i).map_err(StoreError::from))
                    .collect::<Result<Vec<_>>>()
            })
        }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.extend(h.await.map_err(join_error)??);
    }
    Ok(out)
}

/// The number of patients matching `rule` (relative dates resolved
/// against `today`).
pub async fn count(db: &Db, hospital_id: i64, rule: &Rule, today: NaiveDate) -> Result<i64> {
    let t = Tables::for_rule(rule, false, false, false);
    let c = compile(rule, db.engine(), today, t.key(), 3);
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE {} AND {key} BETWEEN $2 AND $3 AND {} AND {}",
        t.tables_sql("BETWEEN $2 AND $3"),
        t.hospital(db.engine()),
        not_erased(t.key()),
        c.sql,
        key = t.key(),
    );
    if let Db::Sqlite { sync, .. } = db {
        let parts = sqlite_ranges(sync, t.drive_table(), sql, hospital_id, c.params).await?;
        return Ok(parts.iter().map(|r| r[0].unwrap_or(0)).sum());
    }
    on_read!(db, p => {
        let q = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).bind(i64::MIN).bind(i64::MAX);
        let q = bind_values!(q, &c.params);
        Ok(q.fetch_one(p).await?.0)
    })
}

/// Most rules counted by one statement of [`count_many`].
const RULES_PER_SCAN: usize = 40;
/// Most parameters bound to one statement of [`count_many`].
const MAX_PARAMS: usize = 30_000;

/// The sizes of several segments in one pass over the patients per
/// [`RULES_PER_SCAN`] rules, aligned with `rules`.
pub async fn count_many(
    db: &Db,
    hospital_id: i64,
    rules: &[Rule],
    today: NaiveDate,
) -> Result<Vec<i64>> {
    // Chunks of at most RULES_PER_SCAN rules and MAX_PARAMS parameters
    // (a rule may bind up to ~10,000 values; the engines allow 32,766
    // and 65,535 per statement).
    let mut chunks: Vec<&[Rule]> = Vec::new();
    let (mut start, mut params) = (0, 0);
    for (i, r) in rules.iter().enumerate() {
        let n = compile(r, db.engine(), today, "p.id", 0).params.len();
        if i > start && (i - start >= RULES_PER_SCAN || params + n > MAX_PARAMS) {
            chunks.push(&rules[start..i]);
            (start, params) = (i, 0);
        }
        params += n;
    }
    if start < rules.len() {
        chunks.push(&rules[start..]);
    }
    let mut out = Vec::with_capacity(rules.len());
    for chunk in chunks {
        let uses = |s| chunk.iter().any(|r: &Rule| r.uses(s));
        use rapport_domain::segment::Source;
        // Everyone is scanned: no table may be required of all the rules.
        let t = Tables {
            patients: true,
            aggregates: uses(Source::Aggregates),
            scores: uses(Source::Scores),
            drive: 'p',
            aggregates_required: false,
            scores_required: false,
        };
        let mut params = Vec::new();
        let mut sums = Vec::new();
        for r in chunk {
            let c = compile(r, db.engine(), today, t.key(), 3 + params.len());
            sums.push(format!(
                "CAST(COALESCE(SUM(CASE WHEN {} THEN 1 ELSE 0 END), 0) AS BIGINT)",
                c.sql
            ));
            params.extend(c.params);
        }
        let sql = format!(
            "SELECT {} FROM {} WHERE {} AND p.id BETWEEN $2 AND $3 AND p.erased_at IS NULL",
            sums.join(", "),
            t.tables_sql("BETWEEN $2 AND $3"),
            t.hospital(db.engine()),
        );
        let mut totals = vec![0i64; chunk.len()];
        if let Db::Sqlite { sync, .. } = db {
            for part in sqlite_ranges(sync, t.drive_table(), sql, hospital_id, params).await? {
                for (i, v) in part.into_iter().enumerate() {
                    totals[i] += v.unwrap_or(0);
                }
            }
        } else {
            on_read!(db, p => {
                let q = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).bind(i64::MIN).bind(i64::MAX);
                let row = bind_values!(q, &params).fetch_one(p).await?;
                for (i, t) in totals.iter_mut().enumerate() {
                    *t = sqlx::Row::try_get::<i64, _>(&row, i)?;
                }
            });
        }
        out.extend(totals);
    }
    Ok(out)
}

/// A member of a segment: the patient, their aggregates and stored scores.
#[derive(Debug, Clone)]
pub struct Member {
    pub patient: Patient,
    pub aggregates: Option<PatientAggregates>,
    pub scores: Option<StoredScore>,
}

const SCORE_COLUMNS: &str = "s.r_score AS s_r_score, s.f_score AS s_f_score, s.m_score AS s_m_score, \
     s.segment AS s_segment, s.p_alive AS s_p_alive, s.expected_visits_90d AS s_expected_visits_90d, \
     s.clv_12m AS s_clv_12m, s.churn_risk AS s_churn_risk, s.refreshed_at AS s_refreshed_at";

fn member_from_row(r: &impl AnyRow) -> Result<Member> {
    let patient = patient_from_row(r)?;
    let refreshed: Option<DateTime<Utc>> = r.col("s_refreshed_at")?;
    let scores = match refreshed {
        None => None,
        Some(refreshed_at) => Some(StoredScore {
            patient_key: patient.id,
            hospital_id: patient.hospital_id,
            r_score: r.col("s_r_score")?,
            f_score: r.col("s_f_score")?,
            m_score: r.col("s_m_score")?,
            segment: r.col("s_segment")?,
            p_alive: r.col("s_p_alive")?,
            expected_visits_90d: r.col("s_expected_visits_90d")?,
            clv_12m: r.col("s_clv_12m")?,
            churn_risk: r.col::<i64>("s_churn_risk")? != 0,
            refreshed_at,
        }),
    };
    Ok(Member {
        aggregates: aggregates_from_row(r)?,
        scores,
        patient,
    })
}

/// The largest platform id of the hospital's patients (0 without any).
pub async fn max_key(db: &Db, hospital_id: i64) -> Result<i64> {
    let sql = "SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM patients WHERE hospital_id = $1";
    let r: (i64,) = on_read!(db, p => sqlx::query_as(sql).bind(hospital_id).fetch_one(p).await?);
    Ok(r.0)
}

/// Refreshes PostgreSQL's statistics of the stored scores, which a
/// refresh has just replaced: without them the planner takes the million
/// fresh rows for a few thousand and sorts whole ranges to answer a page
/// of members. SQLite plans without statistics.
pub async fn analyze_scores(db: &Db) -> Result<()> {
    if let Db::Postgres(p) = db {
        sqlx::query("ANALYZE patient_scores").execute(p).await?;
    }
    Ok(())
}

/// The members with a platform id above `after` and at most `upto`, by
/// id, at most `limit`.
pub async fn members(
    db: &Db,
    hospital_id: i64,
    rule: &Rule,
    today: NaiveDate,
    (after, upto): (i64, i64),
    limit: i64,
) -> Result<Vec<Member>> {
    let t = Tables::for_rule(rule, true, true, true);
    let c = compile(rule, db.engine(), today, t.key(), 3);
    // The limit is written into the text (see `patients::search`).
    let sql = format!(
        "SELECT {COLUMNS}, {AGG_COLUMNS}, {SCORE_COLUMNS} FROM {} WHERE {} AND {key} > $2 AND {key} <= $3 \
         AND {} AND {} ORDER BY {key} LIMIT {}",
        t.tables_sql("> $2 AND {} <= $3"),
        t.hospital(db.engine()),
        not_erased(t.key()),
        c.sql,
        limit.max(0),
        key = t.key(),
    );
    if let Db::Sqlite { sync, .. } = db {
        let sync = sync.clone();
        return tokio::task::spawn_blocking(move || {
            let mut all = vec![
                Value::from(hospital_id),
                Value::from(after),
                Value::from(upto),
            ];
            all.extend(c.params);
            sync.query(&numbered(&sql), &all, |r| member_from_row(r))
        })
        .await
        .map_err(join_error)?;
    }
    on_read!(db, p => {
        let q = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).bind(after).bind(upto);
        let rows = bind_values!(q, &c.params).fetch_all(p).await?;
        rows.iter().map(member_from_row).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered() {
        assert_eq!(
            numbered("a = $12 AND b IN ($3, $1) AND '$'"),
            "a = ?12 AND b IN (?3, ?1) AND '$'"
        );
    }

    #[test]
    fn ranges_cover_the_keys_once() {
        assert_eq!(ranges(1, 10, 3), vec![(1, 3), (4, 6), (7, 10)]);
        assert!(ranges(3, 2, 2).is_empty());
    }
}
