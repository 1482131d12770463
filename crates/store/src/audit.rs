//! The audit log: who did what to which record, when and from where.
//! Rows are only ever inserted; the database refuses updates and deletes
//! (triggers in migration 0004).

use chrono::{DateTime, Utc};

use crate::{AnyRow, Db, Result, Tx, on_read};

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub hospital_id: i64,
    pub at: DateTime<Utc>,
    /// `token:12 (HIS sync)`, `user:admin`, `cli`, `system`.
    pub actor: String,
    pub role: Option<String>,
    /// `patient.view`, `patient.update`, `patient.export`, …
    pub action: String,
    pub subject_type: Option<String>,
    pub subject_id: Option<i64>,
    /// `ok` or `denied`.
    pub outcome: String,
    pub ip: Option<String>,
    /// Never personal data: ids, field names, counts.
    pub detail: Option<String>,
}

const COLUMNS: &str =
    "id, hospital_id, at, actor, role, action, subject_type, subject_id, outcome, ip, detail";

fn from_row(r: &impl AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.col("id")?,
        hospital_id: r.col("hospital_id")?,
        at: r.col("at")?,
        actor: r.col("actor")?,
        role: r.col("role")?,
        action: r.col("action")?,
        subject_type: r.col("subject_type")?,
        subject_id: r.col("subject_id")?,
        outcome: r.col("outcome")?,
        ip: r.col("ip")?,
        detail: r.col("detail")?,
    })
}

/// Appends an entry inside the caller's transaction, so the record of a
/// change commits or rolls back with the change itself.
pub async fn append(tx: &mut Tx, e: &AuditEntry) -> Result<()> {
    let sql = "INSERT INTO audit_log (hospital_id, at, actor, role, action, subject_type, subject_id, outcome, ip, detail) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    tx.exec(
        sql,
        &[
            e.hospital_id.into(),
            e.at.into(),
            (&e.actor).into(),
            e.role.clone().into(),
            (&e.action).into(),
            e.subject_type.clone().into(),
            e.subject_id.into(),
            (&e.outcome).into(),
            e.ip.clone().into(),
            e.detail.clone().into(),
        ],
    )
    .await?;
    Ok(())
}

/// Filters for reading the log; newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub hospital_id: i64,
    pub subject_type: Option<String>,
    pub subject_id: Option<i64>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Entries before this position (time, id): the cursor.
    pub before: Option<(DateTime<Utc>, i64)>,
    pub limit: i64,
}

pub async fn list(db: &Db, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
    let mut conds = vec!["hospital_id = $1".to_string()];
    let mut n = 1;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if q.subject_type.is_some() {
        conds.push(format!("subject_type = {}", next()));
    }
    if q.subject_id.is_some() {
        conds.push(format!("subject_id = {}", next()));
    }
    if q.actor.is_some() {
        conds.push(format!("actor = {}", next()));
    }
    if q.action.is_some() {
        conds.push(format!("action = {}", next()));
    }
    if q.before.is_some() {
        let (t, i) = (next(), next());
        conds.push(format!("(at < {t} OR (at = {t} AND id < {i}))"));
    }
    // By time: reads are written in batches, after changes made later.
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log WHERE {} ORDER BY at DESC, id DESC LIMIT {}",
        conds.join(" AND "),
        q.limit.max(0)
    );
    on_read!(db, p => {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(q.hospital_id);
        if let Some(v) = &q.subject_type { query = query.bind(v); }
        if let Some(v) = q.subject_id { query = query.bind(v); }
        if let Some(v) = &q.actor { query = query.bind(v); }
        if let Some(v) = &q.action { query = query.bind(v); }
        if let Some((t, i)) = q.before { query = query.bind(t).bind(i); }
        let rows = query.fetch_all(p).await?;
        rows.iter().map(from_row).collect()
    })
}
