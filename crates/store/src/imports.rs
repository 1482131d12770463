//! The `imports` table: one row per imported file, with its outcome.

use chrono::{DateTime, Utc};

use crate::{AnyRow, Db, Result, Tx, on_read, on_tx};

/// An import as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    pub id: i64,
    pub kind: String,
    pub file_name: String,
    pub status: String,
    pub skip_invalid: bool,
    pub rows_read: i64,
    pub rows_rejected: i64,
    /// The report as JSON text, once finished.
    pub report: Option<String>,
    pub has_rejects: bool,
    pub actor: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, kind, file_name, status, skip_invalid, rows_read, rows_rejected, report, \
     rejects IS NOT NULL AS has_rejects, actor, started_at, finished_at";

fn from_row(r: &impl AnyRow) -> Result<ImportRow> {
    Ok(ImportRow {
        id: r.col("id")?,
        kind: r.col("kind")?,
        file_name: r.col("file_name")?,
        status: r.col("status")?,
        skip_invalid: r.col("skip_invalid")?,
        rows_read: r.col("rows_read")?,
        rows_rejected: r.col("rows_rejected")?,
        report: r.col("report")?,
        has_rejects: r.col("has_rejects")?,
        actor: r.col("actor")?,
        started_at: r.col("started_at")?,
        finished_at: r.col("finished_at")?,
    })
}

/// Records a started import; returns its id.
pub async fn start(
    tx: &mut Tx,
    hospital_id: i64,
    kind: &str,
    file_name: &str,
    skip_invalid: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let r: (i64,) = on_tx!(tx, c => sqlx::query_as(
        "INSERT INTO imports (hospital_id, kind, file_name, status, skip_invalid, actor, started_at) \
         VALUES ($1, $2, $3, 'running', $4, $5, $6) RETURNING id")
        .bind(hospital_id).bind(kind).bind(file_name).bind(skip_invalid).bind(actor).bind(now)
        .fetch_one(&mut *c).await?);
    Ok(r.0)
}

/// Records how an import ended.
#[allow(clippy::too_many_arguments)]
pub async fn finish(
    tx: &mut Tx,
    id: i64,
    status: &str,
    rows_read: i64,
    rows_rejected: i64,
    report: &str,
    rejects: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE imports SET status = $2, rows_read = $3, rows_rejected = $4, report = $5, rejects = $6, \
         finished_at = $7 WHERE id = $1")
        .bind(id).bind(status).bind(rows_read).bind(rows_rejected).bind(report).bind(rejects).bind(now)
        .execute(&mut *c).await?.rows_affected());
    Ok(())
}

/// Marks imports left `running` by a process that stopped as failed.
pub async fn fail_interrupted(tx: &mut Tx, now: DateTime<Utc>) -> Result<u64> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE imports SET status = 'failed', finished_at = $1, \
         report = '{\"error\":\"the server stopped during the import; nothing of it was committed\"}' \
         WHERE status = 'running'")
        .bind(now).execute(&mut *c).await?.rows_affected());
    Ok(n)
}

pub async fn get(db: &Db, hospital_id: i64, id: i64) -> Result<Option<ImportRow>> {
    let sql = format!("SELECT {COLUMNS} FROM imports WHERE hospital_id = $1 AND id = $2");
    on_read!(db, p => {
        let r = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).bind(id).fetch_optional(p).await?;
        r.as_ref().map(from_row).transpose()
    })
}

/// The latest imports, newest first.
pub async fn list(db: &Db, hospital_id: i64, limit: i64) -> Result<Vec<ImportRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM imports WHERE hospital_id = $1 ORDER BY id DESC LIMIT {}",
        limit.clamp(1, 500)
    );
    on_read!(db, p => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).fetch_all(p).await?;
        rows.iter().map(from_row).collect()
    })
}

/// The rejected rows of an import, as CSV.
pub async fn rejects(db: &Db, hospital_id: i64, id: i64) -> Result<Option<String>> {
    let r: Option<(Option<String>,)> = on_read!(db, p => sqlx::query_as(
        "SELECT rejects FROM imports WHERE hospital_id = $1 AND id = $2")
        .bind(hospital_id).bind(id).fetch_optional(p).await?);
    Ok(r.and_then(|r| r.0))
}

/// The key of the PostgreSQL advisory lock that says import `$1` is
/// running. Advisory locks are per database, not per schema: the schema
/// is part of the key, so that databases holding several schemas (the
/// test suite's) do not mix their imports up.
const RUNNING_LOCK_KEY: &str =
    "hashtextextended('rapport import ' || current_schema() || ' ' || CAST($1 AS TEXT), 0)";

/// While it lives, says that this process is running import `id`: on
/// PostgreSQL a session advisory lock on a connection of its own, which
/// the server lets go when the connection ends, however the process
/// stops; nothing on SQLite, whose one serving process owns every import.
/// Let go with [`Running::end`] (dropped instead, the connection is
/// closed).
pub struct Running {
    conn: Option<(sqlx::pool::PoolConnection<sqlx::Postgres>, i64)>,
}

impl Running {
    pub async fn start(db: &Db, id: i64) -> Result<Running> {
        let Db::Postgres(pool) = db else {
            return Ok(Running { conn: None });
        };
        let mut c = pool.acquire().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT pg_advisory_lock({RUNNING_LOCK_KEY})"
        )))
        .bind(id)
        .execute(&mut *c)
        .await?;
        Ok(Running {
            conn: Some((c, id)),
        })
    }

    /// Lets go of the lock and gives the connection back to the pool.
    pub async fn end(mut self) {
        if let Some((mut c, id)) = self.conn.take() {
            let unlocked = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT pg_advisory_unlock({RUNNING_LOCK_KEY})"
            )))
            .bind(id)
            .execute(&mut *c)
            .await;
            if unlocked.is_err() {
                drop(c.detach());
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Not ended: closing the connection lets go of the lock.
        if let Some((c, _)) = self.conn.take() {
            drop(c.detach());
        }
    }
}

/// On PostgreSQL, marks failed the imports recorded as running for more
/// than `min_age` whose process is gone (nobody holds their [`Running`]
/// lock): several servers share the database, and each import's own
/// server holds that lock while it runs. Returns how many.
pub async fn fail_orphaned(db: &Db, now: DateTime<Utc>, min_age: chrono::Duration) -> Result<u64> {
    let Db::Postgres(pool) = db else {
        return Ok(0);
    };
    let mut c = pool.acquire().await?;
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM imports WHERE status = 'running' AND started_at < $1 ORDER BY id",
    )
    .bind(now - min_age)
    .fetch_all(&mut *c)
    .await?;
    let mut failed = 0;
    for id in ids {
        let free: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT pg_try_advisory_lock({RUNNING_LOCK_KEY})"
        )))
        .bind(id)
        .fetch_one(&mut *c)
        .await?;
        if !free {
            continue;
        }
        let r = sqlx::query(
            "UPDATE imports SET status = 'failed', finished_at = $2, \
             report = '{\"error\":\"the server running the import stopped; nothing of it was committed\"}' \
             WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *c)
        .await;
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT pg_advisory_unlock({RUNNING_LOCK_KEY})"
        )))
        .bind(id)
        .execute(&mut *c)
        .await;
        failed += r?.rows_affected();
    }
    Ok(failed)
}
