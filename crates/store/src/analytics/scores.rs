//! `patient_scores`: the per-patient scores of the latest refresh. A
//! refresh replaces all of a hospital's rows in one transaction, so readers
//! see either the old set or the new one.

use chrono::{DateTime, Utc};

use crate::bulk::{self, Value};
use crate::{AnyRow, Db, Result, Tx, on_read, on_tx};

/// The scores of one patient, as a refresh writes them.
#[derive(Debug, Clone, PartialEq)]
pub struct NewScore {
    pub patient_key: i64,
    pub r_score: u8,
    pub f_score: u8,
    pub m_score: u8,
    /// Segment name (`champions`, …).
    pub segment: &'static str,
    /// `None` when the lifetime-value models could not be fitted.
    pub p_alive: Option<f64>,
    pub expected_visits_90d: Option<f64>,
    /// Lifetime value over 12 months, minor units.
    pub clv_12m: Option<i64>,
    pub churn_risk: bool,
}

/// The stored scores of one patient.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredScore {
    pub patient_key: i64,
    pub hospital_id: i64,
    pub r_score: i64,
    pub f_score: i64,
    pub m_score: i64,
    pub segment: String,
    pub p_alive: Option<f64>,
    pub expected_visits_90d: Option<f64>,
    pub clv_12m: Option<i64>,
    pub churn_risk: bool,
    pub refreshed_at: DateTime<Utc>,
}

const COLUMNS: [&str; 11] = [
    "patient_key",
    "hospital_id",
    "r_score",
    "f_score",
    "m_score",
    "segment",
    "p_alive",
    "expected_visits_90d",
    "clv_12m",
    "churn_risk",
    "refreshed_at",
];

/// Rows handed to `bulk::insert_rows` at a time (bounds the memory of the
/// bound values; the statements inside are smaller).
const BATCH: usize = 8_192;

/// Serialises refreshes of the scores: on PostgreSQL a transaction-scoped
/// advisory lock (two concurrent refreshes would otherwise both insert the
/// rows the other has not committed yet); SQLite's `BEGIN IMMEDIATE`
/// already serialises writers. Call first in the refresh transaction.
pub async fn lock_for_refresh(tx: &mut Tx) -> Result<()> {
    if let Tx::Postgres(t) = tx {
        sqlx::query("SELECT pg_advisory_xact_lock(7273018)")
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}

/// Replaces every stored score of the hospital with `scores`; returns the
/// number of rows written. The rows are taken a batch at a time, so the
/// caller may produce them as they go rather than hold them all.
pub async fn replace_all(
    tx: &mut Tx,
    hospital_id: i64,
    scores: impl IntoIterator<Item = NewScore>,
    refreshed_at: DateTime<Utc>,
) -> Result<u64> {
    on_tx!(tx, c => sqlx::query("DELETE FROM patient_scores WHERE hospital_id = $1")
        .bind(hospital_id)
        .execute(&mut *c)
        .await
        .map(|_| ()))?;
    let mut written = 0;
    let mut scores = scores.into_iter().peekable();
    let mut rows: Vec<Vec<Value>> = Vec::with_capacity(BATCH);
    while scores.peek().is_some() {
        rows.clear();
        rows.extend(scores.by_ref().take(BATCH).map(|s| {
            vec![
                Value::from(s.patient_key),
                Value::from(hospital_id),
                Value::from(i64::from(s.r_score)),
                Value::from(i64::from(s.f_score)),
                Value::from(i64::from(s.m_score)),
                Value::from(s.segment),
                Value::from(s.p_alive),
                Value::from(s.expected_visits_90d),
                Value::from(s.clv_12m),
                Value::from(i64::from(s.churn_risk)),
                Value::from(refreshed_at),
            ]
        }));
        written += bulk::insert_rows(tx, "patient_scores", &COLUMNS, &rows).await?;
    }
    Ok(written)
}

fn from_row(r: &impl AnyRow) -> Result<StoredScore> {
    Ok(StoredScore {
        patient_key: r.col("patient_key")?,
        hospital_id: r.col("hospital_id")?,
        r_score: r.col("r_score")?,
        f_score: r.col("f_score")?,
        m_score: r.col("m_score")?,
        segment: r.col("segment")?,
        p_alive: r.col("p_alive")?,
        expected_visits_90d: r.col("expected_visits_90d")?,
        clv_12m: r.col("clv_12m")?,
        churn_risk: r.col::<i64>("churn_risk")? != 0,
        refreshed_at: r.col("refreshed_at")?,
    })
}

/// The stored scores of one patient (`None` before the first refresh that
/// found them active).
pub async fn get(db: &Db, patient_key: i64) -> Result<Option<StoredScore>> {
    let sql = format!(
        "SELECT {} FROM patient_scores WHERE patient_key = $1",
        COLUMNS.join(", ")
    );
    if let Db::Sqlite { sync, .. } = db {
        return Ok(sync
            .query(&sql, &[patient_key.into()], |r| from_row(r))?
            .pop());
    }
    on_read!(db, p => match sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(patient_key).fetch_optional(p).await? {
        Some(r) => Ok(Some(from_row(&r)?)),
        None => Ok(None),
    })
}

/// How many patients of the hospital have stored scores.
pub async fn count(db: &Db, hospital_id: i64) -> Result<i64> {
    let r: (i64,) = on_read!(db, p => sqlx::query_as("SELECT COUNT(*) FROM patient_scores WHERE hospital_id = $1")
        .bind(hospital_id)
        .fetch_one(p)
        .await?);
    Ok(r.0)
}
