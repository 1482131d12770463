//! Consent decisions per patient, channel and purpose; the history is kept
//! and the latest decision is in force.

use chrono::{DateTime, Utc};

use crate::{AnyRow, Db, Result, Tx, on_read, on_tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub id: i64,
    pub patient_key: i64,
    pub channel: String,
    pub purpose: String,
    pub granted: bool,
    pub source: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
    pub note: Option<String>,
}

fn from_row(r: &impl AnyRow) -> Result<ConsentRecord> {
    Ok(ConsentRecord {
        id: r.col("id")?,
        patient_key: r.col("patient_key")?,
        channel: r.col("channel")?,
        purpose: r.col("purpose")?,
        granted: r.col::<i32>("granted")? != 0,
        source: r.col("source")?,
        recorded_by: r.col("recorded_by")?,
        recorded_at: r.col("recorded_at")?,
        note: r.col("note")?,
    })
}

pub async fn insert(tx: &mut Tx, hospital_id: i64, c: &ConsentRecord) -> Result<i64> {
    let sql = "INSERT INTO consents (hospital_id, patient_key, channel, purpose, granted, source, recorded_by, recorded_at, note) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
    let r: (i64,) = on_tx!(tx, conn => sqlx::query_as(sql)
        .bind(hospital_id)
        .bind(c.patient_key)
        .bind(&c.channel)
        .bind(&c.purpose)
        .bind(i32::from(c.granted))
        .bind(&c.source)
        .bind(&c.recorded_by)
        .bind(c.recorded_at)
        .bind(&c.note)
        .fetch_one(&mut *conn)
        .await?);
    Ok(r.0)
}

/// Every decision about a patient, oldest first.
pub async fn history(db: &Db, patient_key: i64) -> Result<Vec<ConsentRecord>> {
    let sql = "SELECT id, patient_key, channel, purpose, granted, source, recorded_by, recorded_at, note \
               FROM consents WHERE patient_key = $1 ORDER BY id";
    on_read!(db, p => {
        let rows = sqlx::query(sql).bind(patient_key).fetch_all(p).await?;
        rows.iter().map(from_row).collect()
    })
}

/// Removes a patient's consent history (erasure).
pub async fn delete_for_patient(tx: &mut Tx, patient_key: i64) -> Result<u64> {
    Ok(
        on_tx!(tx, c => sqlx::query("DELETE FROM consents WHERE patient_key = $1")
        .bind(patient_key).execute(&mut *c).await?.rows_affected()),
    )
}
