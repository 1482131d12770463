//! `job_runs`: one row per run of a background job (the nightly scores
//! refresh, a refresh asked for by hand), written when it starts and
//! completed when it ends.

use chrono::{DateTime, Utc};

use crate::{AnyRow, Db, Result, StoreError, Tx, on_read, on_tx};

/// State of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Running,
    Ok,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Ok => "ok",
            JobStatus::Failed => "failed",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "running" => Some(JobStatus::Running),
            "ok" => Some(JobStatus::Ok),
            "failed" => Some(JobStatus::Failed),
            _ => None,
        }
    }
}

/// One recorded run.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRun {
    pub id: i64,
    pub hospital_id: i64,
    pub job: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: JobStatus,
    pub detail: Option<String>,
}

/// Records the start of a run; returns its id.
pub async fn start(
    tx: &mut Tx,
    hospital_id: i64,
    job: &str,
    started_at: DateTime<Utc>,
) -> Result<i64> {
    let sql = "INSERT INTO job_runs (hospital_id, job, started_at, status) VALUES ($1, $2, $3, $4) RETURNING id";
    let r: (i64,) = on_tx!(tx, c => sqlx::query_as(sql)
        .bind(hospital_id)
        .bind(job)
        .bind(started_at)
        .bind(JobStatus::Running.as_str())
        .fetch_one(&mut *c)
        .await?);
    Ok(r.0)
}

/// Records the end of a run.
pub async fn finish(
    tx: &mut Tx,
    id: i64,
    finished_at: DateTime<Utc>,
    status: JobStatus,
    detail: &str,
) -> Result<()> {
    let sql = "UPDATE job_runs SET finished_at = $2, status = $3, detail = $4 WHERE id = $1";
    let done = on_tx!(tx, c => sqlx::query(sql)
        .bind(id)
        .bind(finished_at)
        .bind(status.as_str())
        .bind(detail)
        .execute(&mut *c)
        .await?
        .rows_affected());
    if done == 0 {
        return Err(StoreError::NotFound("job run"));
    }
    Ok(())
}

fn from_row(r: &impl AnyRow) -> Result<JobRun> {
    let status: String = r.col("status")?;
    Ok(JobRun {
        id: r.col("id")?,
        hospital_id: r.col("hospital_id")?,
        job: r.col("job")?,
        started_at: r.col("started_at")?,
        finished_at: r.col("finished_at")?,
        status: JobStatus::from_code(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("job status {status:?}")))?,
        detail: r.col("detail")?,
    })
}

/// The latest runs of `job` for the hospital, newest first.
pub async fn recent(db: &Db, hospital_id: i64, job: &str, limit: i64) -> Result<Vec<JobRun>> {
    let sql = "SELECT id, hospital_id, job, started_at, finished_at, status, detail FROM job_runs \
               WHERE hospital_id = $1 AND job = $2 ORDER BY id DESC LIMIT $3";
    on_read!(db, p => {
        let rows = sqlx::query(sql).bind(hospital_id).bind(job).bind(limit).fetch_all(p).await?;
        rows.iter().map(from_row).collect()
    })
}
