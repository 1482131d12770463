//! Full scans of an SQLite database for analytics, outside sqlx.
//!
//! sqlx's SQLite driver copies every value of every row through a channel
//! from its worker thread; for a million patients that costs more than the
//! analysis itself. These scans open their own short-lived connections to
//! the same file (WAL lets them read while the pool writes), split the
//! patient keys into one range per core, and read the ranges in parallel on
//! blocking threads, decoding the few columns they need straight from
//! SQLite's buffers.
//!
//! The visit scans write `+hospital_id`: without statistics SQLite takes
//! the unique `(hospital_id, visit_id)` index for the equality and then
//! fetches every visit by rowid in index order (and sorts them), ten times
//! slower than walking the rowid or `visits_patient` range; the unary `+`
//! keeps that index out of the plan.
//!
//! Each range is one statement, hence one consistent snapshot; while
//! visits are being written, two ranges may see the database either side
//! of a commit (every patient's row is still whole). Analytics as of a day
//! does not mind.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rapport_domain::PatientAggregates;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::{Accumulator, PatientTable};
use crate::{Db, Result, StoreError};

/// The database file when `db` is an SQLite file (not in memory).
pub(super) fn file_of(db: &Db) -> Option<PathBuf> {
    match db {
        Db::Sqlite { read, .. } => {
            let opts = read.connect_options();
            let path = opts.get_filename();
            let s = path.to_string_lossy();
            if s.is_empty() || s.starts_with(':') || s.contains("mode=memory") || !path.exists() {
                None
            } else {
                Some(path.to_path_buf())
            }
        }
        Db::Postgres(_) => None,
    }
}

fn lite(e: rusqlite::Error) -> StoreError {
    StoreError::Database(sqlx::Error::Io(std::io::Error::other(e)))
}

fn open(path: &Path) -> Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(lite)?;
    c.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(lite)?;
    // No memory map: it saves at most 5 % here, and the mapped pages of a
    // visits scan would show as a gigabyte of resident memory.
    Ok(c)
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

/// Runs `scan` over the key ranges of `bounds_sql` (which answers the
/// smallest and largest key) in parallel and returns the parts in key order.
async fn parallel<T, F>(path: PathBuf, bounds_sql: &'static str, scan: F) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(&Connection, i64, i64) -> Result<T> + Send + Sync + 'static,
{
    let bounds_path = path.clone();
    let bounds = tokio::task::spawn_blocking(move || -> Result<Option<(i64, i64)>> {
        let c = open(&bounds_path)?;
        let r: (Option<i64>, Option<i64>) = c
            .query_row(bounds_sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(lite)?;
        Ok(r.0.zip(r.1))
    })
    .await
    .map_err(join_error)??;
    let Some((lo, hi)) = bounds else {
        return Ok(Vec::new());
    };
    let scan = std::sync::Arc::new(scan);
    let mut handles = Vec::new();
    for (a, b) in ranges(lo, hi, threads()) {
        let (path, scan) = (path.clone(), scan.clone());
        handles.push(tokio::task::spawn_blocking(move || {
            let c = open(&path)?;
            scan(&c, a, b)
        }));
    }
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.map_err(join_error)??);
    }
    Ok(out)
}

fn join_error(e: tokio::task::JoinError) -> StoreError {
    if e.is_panic() {
        std::panic::resume_unwind(e.into_panic());
    }
    StoreError::Database(sqlx::Error::Io(std::io::Error::other(e)))
}

/// A stored date, or `Corrupt`.
fn date(v: ValueRef<'_>) -> std::result::Result<NaiveDate, StoreError> {
    crate::row::iso_date(v).ok_or_else(|| StoreError::Corrupt(format!("date {v:?}")))
}

fn int(v: ValueRef<'_>) -> std::result::Result<i64, StoreError> {
    match v {
        ValueRef::Integer(i) => Ok(i),
        other => Err(StoreError::Corrupt(format!("integer {other:?}"))),
    }
}

pub(super) async fn stored_aggregates(
    path: PathBuf,
    hospital_id: i64,
    with_ids: bool,
) -> Result<PatientTable> {
    let sql = if with_ids {
        "SELECT a.patient_key, a.first_visit, a.last_visit, a.visits, a.visit_days, a.monetary, \
         a.first_day_monetary, a.months_with_visits, a.cohort_mask, p.patient_id \
         FROM patient_aggregates a JOIN patients p ON p.id = a.patient_key \
         WHERE a.hospital_id = ?1 AND a.patient_key BETWEEN ?2 AND ?3 ORDER BY a.patient_key"
    } else {
        "SELECT a.patient_key, a.first_visit, a.last_visit, a.visits, a.visit_days, a.monetary, \
         a.first_day_monetary, a.months_with_visits, a.cohort_mask \
         FROM patient_aggregates a \
         WHERE a.hospital_id = ?1 AND a.patient_key BETWEEN ?2 AND ?3 ORDER BY a.patient_key"
    };
    let parts = parallel(
        path,
        // Two subqueries: SQLite answers a lone MIN or MAX from the index
        // edge, but scans the table for both in one SELECT.
        "SELECT (SELECT MIN(patient_key) FROM patient_aggregates), (SELECT MAX(patient_key) FROM patient_aggregates)",
        move |c, a, b| {
            let mut st = c.prepare(sql).map_err(lite)?;
            let mut rows = st.query((hospital_id, a, b)).map_err(lite)?;
            let mut t = PatientTable::default();
            // Keys are nearly dense: the range is a good capacity guess.
            let guess = usize::try_from(b - a + 1).unwrap_or(0).min(1 << 26);
            t.keys.reserve(guess);
            t.aggregates.reserve(guess);
            if with_ids {
                t.patient_ids.reserve(guess);
            }
            while let Some(r) = rows.next().map_err(lite)? {
                let g = |i: usize| r.get_ref(i).map_err(lite);
                t.keys.push(int(g(0)?)?);
                t.aggregates.push(PatientAggregates {
                    first_visit: date(g(1)?)?,
                    last_visit: date(g(2)?)?,
                    visits: int(g(3)?)?,
                    visit_days: int(g(4)?)?,
                    monetary: int(g(5)?)?,
                    first_day_monetary: int(g(6)?)?,
                    months_with_visits: int(g(7)?)?,
                    cohort_mask: int(g(8)?)?,
                });
                if with_ids {
                    let id = g(9)?
                        .as_str()
                        .map_err(|e| StoreError::Corrupt(format!("patient_id: {e}")))?;
                    t.patient_ids.push(id.to_string());
                }
            }
            Ok(t)
        },
    )
    .await?;
    let mut out = PatientTable::default();
    let n = parts.iter().map(|p| p.keys.len()).sum();
    out.keys.reserve_exact(n);
    out.aggregates.reserve_exact(n);
    if with_ids {
        out.patient_ids.reserve_exact(n);
    }
    for p in parts {
        out.keys.extend(p.keys);
        out.aggregates.extend(p.aggregates);
        out.patient_ids.extend(p.patient_ids);
    }
    Ok(out)
}

pub(super) async fn recompute_from_visits(
    path: PathBuf,
    hospital_id: i64,
    as_of: NaiveDate,
) -> Result<(Vec<i64>, Vec<PatientAggregates>)> {
    let as_of = as_of.format("%F").to_string();
    let parts = parallel(
        path,
        "SELECT (SELECT MIN(patient_key) FROM visits), (SELECT MAX(patient_key) FROM visits)",
        move |c, a, b| {
            let mut st = c
                .prepare(
                    "SELECT patient_key, visit_date, amount FROM visits \
                     WHERE patient_key BETWEEN ?2 AND ?3 AND +hospital_id = ?1 AND visit_date <= ?4 \
                     ORDER BY patient_key, visit_date",
                )
                .map_err(lite)?;
            let mut rows = st.query((hospital_id, a, b, &as_of)).map_err(lite)?;
            let mut acc = Accumulator::default();
            while let Some(r) = rows.next().map_err(lite)? {
                let g = |i: usize| r.get_ref(i).map_err(lite);
                acc.push(int(g(0)?)?, date(g(1)?)?, int(g(2)?)?);
            }
            Ok(acc.finish())
        },
    )
    .await?;
    let mut keys = Vec::new();
    let mut aggs = Vec::new();
    for (k, a) in parts {
        keys.extend(k);
        aggs.extend(a);
    }
    Ok((keys, aggs))
}

/// Visits and revenue per month index (`year * 12 + month0`) of the visits
/// on or before `as_of`: one pass over the visits table in rowid ranges
/// (sequential reads), bucketed in Rust. SQLite's own `GROUP BY
/// substr(visit_date, 1, 7)` sorts all the visits in a temporary b-tree and
/// takes ten times as long.
pub(super) async fn visits_by_month(
    path: PathBuf,
    hospital_id: i64,
    as_of: NaiveDate,
) -> Result<Vec<(i64, i64, i64)>> {
    let as_of_text = as_of.format("%F").to_string();
    let parts = parallel(
        path,
        "SELECT (SELECT MIN(id) FROM visits), (SELECT MAX(id) FROM visits)",
        move |c, a, b| {
            let mut st = c
                .prepare(
                    "SELECT visit_date, amount FROM visits \
                     WHERE id BETWEEN ?2 AND ?3 AND +hospital_id = ?1 AND visit_date <= ?4",
                )
                .map_err(lite)?;
            let mut rows = st.query((hospital_id, a, b, &as_of_text)).map_err(lite)?;
            let mut months: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
            while let Some(r) = rows.next().map_err(lite)? {
                let g = |i: usize| r.get_ref(i).map_err(lite);
                let m = rapport_domain::aggregates::month_index(date(g(0)?)?);
                let e = months.entry(m).or_default();
                e.0 += 1;
                e.1 += int(g(1)?)?;
            }
            Ok(months)
        },
    )
    .await?;
    let mut all: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
    for part in parts {
        for (m, (n, sum)) in part {
            let e = all.entry(m).or_default();
            e.0 += n;
            e.1 += sum;
        }
    }
    Ok(all.into_iter().map(|(m, (n, sum))| (m, n, sum)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_keys_once() {
        assert_eq!(ranges(1, 10, 3), vec![(1, 3), (4, 6), (7, 10)]);
        assert_eq!(ranges(5, 5, 4), vec![(5, 5)]);
        assert_eq!(ranges(1, 2, 8), vec![(1, 1), (2, 2)]);
        assert!(ranges(3, 2, 2).is_empty());
        let r = ranges(-7, 1_000_003, 7);
        assert_eq!(r.first().unwrap().0, -7);
        assert_eq!(r.last().unwrap().1, 1_000_003);
        assert!(r.windows(2).all(|w| w[0].1 + 1 == w[1].0));
    }

    #[test]
    fn dates_decode_from_text() {
        assert_eq!(
            date(ValueRef::Text(b"2026-06-30")).unwrap(),
            NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
        );
        assert!(date(ValueRef::Text(b"2026-02-30")).is_err());
        assert!(date(ValueRef::Text(b"2026-0a-01")).is_err());
        assert!(date(ValueRef::Integer(3)).is_err());
    }
}
