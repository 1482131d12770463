//! The visit scans behind the dashboard: visits and revenue per day over
//! a date range, and the distinct patients of a range. Both read the
//! `visits_date` index alone (`hospital_id, visit_date, patient_key,
//! amount`), so a range costs what it holds, not the whole table. On
//! SQLite the range is split into one part per core, read in parallel on
//! blocking threads through the synchronous read path.

use chrono::NaiveDate;

use crate::bulk::Value;
use crate::{AnyRow, Db, Result, StoreError, on_read};

/// Visits and revenue of one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRow {
    pub date: NaiveDate,
    pub visits: i64,
    /// Minor units.
    pub revenue: i64,
}

const DAYS_SQL: &str = "SELECT visit_date, COUNT(*) AS visits, CAST(SUM(amount) AS BIGINT) AS revenue \
     FROM visits WHERE hospital_id = $1 AND visit_date BETWEEN $2 AND $3 GROUP BY visit_date ORDER BY visit_date";

fn day_from_row(r: &impl AnyRow) -> Result<DayRow> {
    Ok(DayRow {
        date: r.col("visit_date")?,
        visits: r.col("visits")?,
        revenue: r.col("revenue")?,
    })
}

fn join_error(e: tokio::task::JoinError) -> StoreError {
    if e.is_panic() {
        std::panic::resume_unwind(e.into_panic());
    }
    StoreError::Config(format!("read task failed: {e}"))
}

/// Visits and revenue of every day from `from` to `to` (inclusive) with a
/// visit, oldest first.
pub async fn day_totals(
    db: &Db,
    hospital_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DayRow>> {
    if to < from {
        return Ok(Vec::new());
    }
    if let Db::Sqlite { sync, .. } = db {
        let days = (to - from).num_days() + 1;
        let parts = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 8) as i64;
        let mut handles = Vec::new();
        for i in 0..parts.min(days) {
            let a = from + chrono::Duration::days(days * i / parts);
            let b = from + chrono::Duration::days(days * (i + 1) / parts - 1);
            let sync = sync.clone();
            handles.push(tokio::task::spawn_blocking(move || {
                sync.query(
                    DAYS_SQL,
                    &[Value::from(hospital_id), Value::from(a), Value::from(b)],
                    |r| day_from_row(r),
                )
            }));
        }
        let mut out = Vec::new();
        for h in handles {
            out.extend(h.await.map_err(join_error)??);
        }
        return Ok(out);
    }
    on_read!(db, p => {
        let rows = sqlx::query(DAYS_SQL).bind(hospital_id).bind(from).bind(to).fetch_all(p).await?;
        rows.iter().map(day_from_row).collect()
    })
}

/// The number of distinct patients with a visit from `from` to `to`.
pub async fn distinct_patients(
    db: &Db,
    hospital_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<i64> {
    let sql = "SELECT COUNT(DISTINCT patient_key) AS n FROM visits \
               WHERE hospital_id = $1 AND visit_date BETWEEN $2 AND $3";
    if let Db::Sqlite { sync, .. } = db {
        let sync = sync.clone();
        let r = tokio::task::spawn_blocking(move || {
            sync.query(
                sql,
                &[Value::from(hospital_id), Value::from(from), Value::from(to)],
                |r| r.col::<i64>("n"),
            )
        })
        .await
        .map_err(join_error)??;
        return Ok(r.first().copied().unwrap_or(0));
    }
    let r: (i64,) = on_read!(db, p => sqlx::query_as(sql).bind(hospital_id).bind(from).bind(to).fetch_one(p).await?);
    Ok(r.0)
}
