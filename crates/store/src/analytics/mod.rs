//! Reading what analytics computes over, and storing what it computes.
//!
//! - [`patients_as_of`] loads every patient's [`PatientAggregates`] as of a
//!   date: the stored aggregates when the date is on or after the latest
//!   visit, otherwise a recomputation from the visits (streamed once, in
//!   patient order).
//! - [`visits_by_month`] sums visits and revenue per calendar month.
//! - [`scores`] holds the per-patient scores of the last refresh, [`jobs`]
//!   the log of background job runs.
//!
//! Loading a million patients is on the critical path of `analyze`, so on
//! SQLite the scan bypasses sqlx: it reads the database file through
//! `rusqlite` on blocking threads, one per patient-key range, decoding only
//! the columns it needs (dates are parsed from their fixed `YYYY-MM-DD`
//! text by hand). PostgreSQL streams the rows through sqlx.

pub mod jobs;
pub mod scores;
mod sqlite_scan;

use chrono::NaiveDate;
use rapport_domain::PatientAggregates;
use sqlx::Row;

use crate::{Db, Result, StoreError, on_read};

/// Every active patient's aggregates, ordered by platform id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatientTable {
    /// Platform ids (`patients.id`), ascending.
    pub keys: Vec<i64>,
    /// The hospital's ids (`patients.patient_id`), aligned with `keys`;
    /// empty unless asked for.
    pub patient_ids: Vec<String>,
    /// Aggregates as of the requested date, aligned with `keys`.
    pub aggregates: Vec<PatientAggregates>,
    /// Whether the stored aggregates served as they are (`false`: they
    /// were recomputed from the visits up to the date).
    pub from_stored: bool,
}

impl PatientTable {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The aggregates of every patient of `hospital_id` with at least one visit
/// on or before `as_of`, computed over those visits only. With `with_ids`
/// the hospital's patient ids come along.
///
/// When `as_of` is on or after every stored `last_visit`, the stored
/// aggregates are exactly that and are returned as read. Otherwise each
/// patient's aggregates are recomputed from their visits up to `as_of`.
pub async fn patients_as_of(
    db: &Db,
    hospital_id: i64,
    as_of: NaiveDate,
    with_ids: bool,
) -> Result<PatientTable> {
    let mut stored = stored_aggregates(db, hospital_id, with_ids).await?;
    let latest = stored.aggregates.iter().map(|a| a.last_visit).max();
    if latest.is_none_or(|l| l <= as_of) {
        stored.from_stored = true;
        return Ok(stored);
    }
    stored.aggregates = Vec::new();
    let (keys, aggregates) = recompute_from_visits(db, hospital_id, as_of).await?;
    let patient_ids = if with_ids {
        // Every patient with a visit has a stored row, so the ids are all
        // in the stored table, which is sorted by key like `keys`.
        let mut ids = Vec::with_capacity(keys.len());
        let mut j = 0;
        for k in &keys {
            while j < stored.keys.len() && stored.keys[j] < *k {
                j += 1;
            }
            if stored.keys.get(j) != Some(k) {
                return Err(StoreError::Corrupt(format!(
                    "patient {k} has visits but no aggregates (run `rapport check`)"
                )));
            }
            ids.push(std::mem::take(&mut stored.patient_ids[j]));
        }
        ids
    } else {
        Vec::new()
    };
    Ok(PatientTable {
        keys,
        patient_ids,
        aggregates,
        from_stored: false,
    })
}

/// The stored aggregates of every patient of the hospital, by key.
pub async fn stored_aggregates(db: &Db, hospital_id: i64, with_ids: bool) -> Result<PatientTable> {
    if let Some(path) = sqlite_scan::file_of(db) {
        return sqlite_scan::stored_aggregates(path, hospital_id, with_ids).await;
    }
    let sql = if with_ids {
        "SELECT a.patient_key, a.first_visit, a.last_visit, a.visits, a.visit_days, a.monetary, \
         a.first_day_monetary, a.months_with_visits, a.cohort_mask, p.patient_id \
         FROM patient_aggregates a JOIN patients p ON p.id = a.patient_key \
         WHERE a.hospital_id = $1 ORDER BY a.patient_key"
    } else {
        "SELECT a.patient_key, a.first_visit, a.last_visit, a.visits, a.visit_days, a.monetary, \
         a.first_day_monetary, a.months_with_visits, a.cohort_mask \
         FROM patient_aggregates a WHERE a.hospital_id = $1 ORDER BY a.patient_key"
    };
    let mut t = PatientTable::default();
    on_read!(db, p => {
        let mut rows = sqlx::query(sql).bind(hospital_id).fetch(p);
        while let Some(r) = next(&mut rows).await {
            let r = r?;
            t.keys.push(r.try_get(0)?);
            t.aggregates.push(PatientAggregates {
                first_visit: r.try_get(1)?,
                last_visit: r.try_get(2)?,
                visits: r.try_get(3)?,
                visit_days: r.try_get(4)?,
                monetary: r.try_get(5)?,
                first_day_monetary: r.try_get(6)?,
                months_with_visits: r.try_get(7)?,
                cohort_mask: r.try_get(8)?,
            });
            if with_ids {
                t.patient_ids.push(r.try_get(9)?);
            }
        }
    });
    Ok(t)
}

/// Recomputes the aggregates of every patient with a visit on or before
/// `as_of` from those visits: keys ascending and the aggregates.
pub async fn recompute_from_visits(
    db: &Db,
    hospital_id: i64,
    as_of: NaiveDate,
) -> Result<(Vec<i64>, Vec<PatientAggregates>)> {
    if let Some(path) = sqlite_scan::file_of(db) {
        return sqlite_scan::recompute_from_visits(path, hospital_id, as_of).await;
    }
    let sql = "SELECT patient_key, visit_date, amount FROM visits \
               WHERE hospital_id = $1 AND visit_date <= $2 ORDER BY patient_key, visit_date";
    let mut acc = Accumulator::default();
    on_read!(db, p => {
        let mut rows = sqlx::query(sql).bind(hospital_id).bind(as_of).fetch(p);
        while let Some(r) = next(&mut rows).await {
            let r = r?;
            acc.push(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        }
    });
    Ok(acc.finish())
}

/// Groups a stream of `(patient_key, visit_date, amount)` sorted by key and
/// date into per-patient aggregates.
#[derive(Default)]
pub(crate) struct Accumulator {
    keys: Vec<i64>,
    aggregates: Vec<PatientAggregates>,
    current: Option<i64>,
    visits: Vec<(NaiveDate, i64)>,
}

impl Accumulator {
    pub(crate) fn push(&mut self, key: i64, date: NaiveDate, amount: i64) {
        if self.current != Some(key) {
            self.flush();
            self.current = Some(key);
        }
        self.visits.push((date, amount));
    }

    fn flush(&mut self) {
        if let Some(k) = self.current.take()
            && !self.visits.is_empty()
        {
            self.keys.push(k);
            self.aggregates
                .push(PatientAggregates::from_sorted(&self.visits));
            self.visits.clear();
        }
    }

    pub(crate) fn finish(mut self) -> (Vec<i64>, Vec<PatientAggregates>) {
        self.flush();
        (self.keys, self.aggregates)
    }
}

/// Visits and revenue in one calendar month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthTotal {
    /// `YYYY-MM`.
    pub month: String,
    pub visits: i64,
    /// Minor units.
    pub revenue: i64,
}

/// Visits and revenue per calendar month of the hospital, for visits on or
/// before `as_of`, oldest month first (months without visits are absent).
pub async fn visits_by_month(
    db: &Db,
    hospital_id: i64,
    as_of: NaiveDate,
) -> Result<Vec<MonthTotal>> {
    if let Some(path) = sqlite_scan::file_of(db) {
        let months = sqlite_scan::visits_by_month(path, hospital_id, as_of).await?;
        return Ok(months
            .into_iter()
            .map(|(m, visits, revenue)| MonthTotal {
                month: format!("{:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1),
                visits,
                revenue,
            })
            .collect());
    }
    // The month of a date is text on SQLite and a date on PostgreSQL.
    let sql = match db.engine() {
        crate::Engine::Sqlite => {
            "SELECT substr(visit_date, 1, 7) AS month, COUNT(*) AS visits, CAST(SUM(amount) AS BIGINT) AS revenue \
             FROM visits WHERE +hospital_id = $1 AND visit_date <= $2 GROUP BY 1 ORDER BY 1"
        }
        crate::Engine::Postgres => {
            "SELECT to_char(visit_date, 'YYYY-MM') AS month, COUNT(*) AS visits, CAST(SUM(amount) AS BIGINT) AS revenue \
             FROM visits WHERE hospital_id = $1 AND visit_date <= $2 GROUP BY 1 ORDER BY 1"
        }
    };
    let rows: Vec<(String, i64, i64)> =
        on_read!(db, p => sqlx::query_as(sql).bind(hospital_id).bind(as_of).fetch_all(p).await?);
    Ok(rows
        .into_iter()
        .map(|(month, visits, revenue)| MonthTotal {
            month,
            visits,
            revenue,
        })
        .collect())
}

/// The next item of a stream (without a stream-combinator crate).
pub(crate) async fn next<S: futures_core::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn accumulator_groups_by_patient() {
        let mut acc = Accumulator::default();
        acc.push(3, d("2024-01-01"), 100);
        acc.push(3, d("2024-01-01"), 50);
        acc.push(3, d("2024-02-03"), 7);
        acc.push(9, d("2023-05-05"), 1);
        let (keys, aggs) = acc.finish();
        assert_eq!(keys, vec![3, 9]);
        assert_eq!(
            aggs[0],
            PatientAggregates::from_visits([
                (d("2024-01-01"), 100),
                (d("2024-01-01"), 50),
                (d("2024-02-03"), 7)
            ])
            .unwrap()
        );
        assert_eq!(aggs[1].monetary, 1);
        assert_eq!(Accumulator::default().finish(), (vec![], vec![]));
    }
}
