//! Verification of stored invariants against the facts they derive from.

use std::collections::HashMap;

use rapport_domain::PatientAggregates;
use sqlx::Row;
use tokio_stream_shim::next;

use crate::{AnyRow, Db, Result, on_read};

/// A patient whose stored aggregates differ from a recomputation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateMismatch {
    pub patient_key: i64,
    pub stored: Option<PatientAggregates>,
    pub recomputed: Option<PatientAggregates>,
}

/// Recomputes every patient's aggregates from the visits and lists the
/// patients whose stored row differs (missing, extra or different). Reads
/// the visits once, in patient order.
pub async fn aggregates(db: &Db) -> Result<(u64, Vec<AggregateMismatch>)> {
    let sql = "SELECT patient_key, first_visit, last_visit, visits, visit_days, monetary, first_day_monetary, \
               months_with_visits, cohort_mask FROM patient_aggregates";
    let mut stored: HashMap<i64, PatientAggregates> = on_read!(db, p => {
        let rows = sqlx::query(sql).fetch_all(p).await?;
        let mut m = HashMap::with_capacity(rows.len());
        for r in &rows {
            if let Some(a) = crate::patients::aggregates_from_row(r)? {
                m.insert(r.col::<i64>("patient_key")?, a);
            }
        }
        m
    });
    let mut mismatches = Vec::new();
    let mut patients = 0u64;
    let mut flush = |key: i64,
                     visits: &mut Vec<(chrono::NaiveDate, i64)>,
                     stored: &mut HashMap<i64, PatientAggregates>| {
        let recomputed = Some(PatientAggregates::from_sorted(visits));
        let have = stored.remove(&key);
        if have != recomputed {
            mismatches.push(AggregateMismatch {
                patient_key: key,
                stored: have,
                recomputed,
            });
        }
        visits.clear();
    };
    on_read!(db, p => {
        let mut rows = sqlx::query("SELECT patient_key, visit_date, amount FROM visits ORDER BY patient_key, visit_date").fetch(p);
        let mut current: Option<i64> = None;
        let mut visits = Vec::new();
        while let Some(r) = next(&mut rows).await {
            let r = r?;
            let key: i64 = r.try_get(0)?;
            if current != Some(key) {
                if let Some(k) = current {
                    flush(k, &mut visits, &mut stored);
                    patients += 1;
                }
                current = Some(key);
            }
            visits.push((r.try_get(1)?, r.try_get(2)?));
        }
        if let Some(k) = current {
            flush(k, &mut visits, &mut stored);
            patients += 1;
        }
    });
    for (key, a) in stored {
        mismatches.push(AggregateMismatch {
            patient_key: key,
            stored: Some(a),
            recomputed: None,
        });
    }
    mismatches.sort_by_key(|m| m.patient_key);
    Ok((patients, mismatches))
}

mod tokio_stream_shim {
    use std::future::poll_fn;
    use std::pin::Pin;

    use futures_core::Stream;

    /// The next item of a stream, without pulling in a stream-combinator
    /// crate for one method.
    pub async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
        poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
    }
}
