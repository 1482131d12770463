//! Probable duplicate patients, and merging one patient into another.

use chrono::{DateTime, Utc};

use crate::{AnyRow, Db, Result, Tx, on_read, on_tx};

/// A flagged pair: `patient_key` is probably `duplicate_of` (the older).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicatePair {
    pub id: i64,
    pub patient_key: i64,
    pub duplicate_of: i64,
    pub reason: String,
    pub status: String,
    pub detected_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
}

const COLUMNS: &str =
    "id, patient_key, duplicate_of, reason, status, detected_at, resolved_at, resolved_by";

fn from_row(r: &impl AnyRow) -> Result<DuplicatePair> {
    Ok(DuplicatePair {
        id: r.col("id")?,
        patient_key: r.col("patient_key")?,
        duplicate_of: r.col("duplicate_of")?,
        reason: r.col("reason")?,
        status: r.col("status")?,
        detected_at: r.col("detected_at")?,
        resolved_at: r.col("resolved_at")?,
        resolved_by: r.col("resolved_by")?,
    })
}

/// Pairs with `status`, oldest first after `after` (an id cursor).
pub async fn list(
    db: &Db,
    hospital_id: i64,
    status: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<DuplicatePair>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM patient_duplicates WHERE hospital_id = $1 AND status = $2 AND id > $3 \
         ORDER BY id LIMIT {}",
        limit.clamp(1, 500)
    );
    on_read!(db, p => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).bind(status).bind(after).fetch_all(p).await?;
        rows.iter().map(from_row).collect()
    })
}

/// The open pairs a patient is in.
pub async fn open_for(db: &Db, patient_key: i64) -> Result<Vec<DuplicatePair>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM patient_duplicates WHERE status = 'open' \
         AND (patient_key = $1 OR duplicate_of = $1) ORDER BY id"
    );
    on_read!(db, p => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(patient_key).fetch_all(p).await?;
        rows.iter().map(from_row).collect()
    })
}

pub async fn get(tx: &mut Tx, hospital_id: i64, id: i64) -> Result<Option<DuplicatePair>> {
    let sql =
        format!("SELECT {COLUMNS} FROM patient_duplicates WHERE hospital_id = $1 AND id = $2");
    on_tx!(tx, c => {
        let r = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).bind(id).fetch_optional(&mut *c).await?;
        r.as_ref().map(from_row).transpose()
    })
}

/// Closes a pair (`dismissed` or `merged`).
pub async fn resolve(
    tx: &mut Tx,
    id: i64,
    status: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE patient_duplicates SET status = $2, resolved_by = $3, resolved_at = $4 WHERE id = $1")
        .bind(id).bind(status).bind(by).bind(now).execute(&mut *c).await?.rows_affected());
    Ok(())
}

/// Flags one pair (from a registration); no-op if already flagged.
pub async fn flag(
    tx: &mut Tx,
    hospital_id: i64,
    patient_key: i64,
    duplicate_of: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let (a, b) = (patient_key.max(duplicate_of), patient_key.min(duplicate_of));
    Ok(on_tx!(tx, c => sqlx::query(
        "INSERT INTO patient_duplicates (hospital_id, patient_key, duplicate_of, reason, detected_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (patient_key, duplicate_of) DO NOTHING")
        .bind(hospital_id).bind(a).bind(b).bind(reason).bind(now).execute(&mut *c).await?.rows_affected()))
}

/// Moves everything `from` owns to `into` and marks `from` merged:
/// visits, consent history, membership and points; `from`'s aggregates and scores are dropped
/// (the caller recomputes `into`'s). Open pairs between the two close as
/// merged; other open pairs of `from` are dismissed (it owns nothing any
/// more). Returns the number of visits moved.
pub async fn merge(tx: &mut Tx, from: i64, into: i64, by: &str, now: DateTime<Utc>) -> Result<u64> {
    let moved = on_tx!(tx, c => {
        let moved = sqlx::query("UPDATE visits SET patient_key = $2, updated_at = $3 WHERE patient_key = $1")
            .bind(from).bind(into).bind(now).execute(&mut *c).await?.rows_affected();
        sqlx::query("UPDATE consents SET patient_key = $2 WHERE patient_key = $1")
            .bind(from).bind(into).execute(&mut *c).await?;
        // The membership, with its ledger (keyed by the member), follows
        // the patient; the caller refuses a merge of two members.
        sqlx::query("UPDATE loyalty_members SET patient_key = $2, updated_at = $3 WHERE patient_key = $1")
            .bind(from).bind(into).bind(now).execute(&mut *c).await?;
        sqlx::query("DELETE FROM patient_aggregates WHERE patient_key = $1")
            .bind(from).execute(&mut *c).await?;
        sqlx::query("DELETE FROM patient_scores WHERE patient_key = $1")
            .bind(from).execute(&mut *c).await?;
        sqlx::query("UPDATE patients SET merged_into = $2, updated_at = $3 WHERE id = $1")
            .bind(from).bind(into).bind(now).execute(&mut *c).await?;
        sqlx::query("UPDATE patients SET merged_into = $2 WHERE merged_into = $1")
            .bind(from).bind(into).execute(&mut *c).await?;
        sqlx::query(
            "UPDATE patient_duplicates SET status = CASE WHEN (patient_key = $1 AND duplicate_of = $2) \
             OR (patient_key = $2 AND duplicate_of = $1) THEN 'merged' ELSE 'dismissed' END, \
             resolved_by = $3, resolved_at = $4 \
             WHERE status = 'open' AND (patient_key = $1 OR duplicate_of = $1)")
            .bind(from).bind(into).bind(by).bind(now).execute(&mut *c).await?;
        moved
    });
    Ok(moved)
}

/// The patient `id` was merged into, if it was.
pub async fn merged_into(tx: &mut Tx, id: i64) -> Result<Option<i64>> {
    let r: Option<(Option<i64>,)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT merged_into FROM patients WHERE id = $1").bind(id).fetch_optional(&mut *c).await?);
    Ok(r.and_then(|r| r.0))
}

/// Whether the patient is enrolled as a member.
pub async fn is_member(tx: &mut Tx, patient_key: i64) -> Result<bool> {
    let r: (i64,) = on_tx!(tx, c => sqlx::query_as(
        "SELECT COUNT(*) FROM loyalty_members WHERE patient_key = $1").bind(patient_key).fetch_one(&mut *c).await?);
    Ok(r.0 > 0)
}
