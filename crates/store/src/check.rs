//! Verification of stored invariants against the facts they derive from.

use chrono::NaiveDate;
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
/// the stored aggregates and the visits once each, both in patient order,
/// and merges the two streams: memory stays flat whatever the size.
pub async fn aggregates(db: &Db) -> Result<(u64, Vec<AggregateMismatch>)> {
    let agg_sql = "SELECT patient_key, first_visit, last_visit, visits, visit_days, monetary, first_day_monetary, \
                   months_with_visits, cohort_mask FROM patient_aggregates ORDER BY patient_key";
    let visit_sql =
        "SELECT patient_key, visit_date, amount FROM visits ORDER BY patient_key, visit_date";
    let mut mismatches = Vec::new();
    let mut patients = 0u64;
    on_read!(db, p => {
        let mut stored = sqlx::query(agg_sql).fetch(p);
        let mut rows = sqlx::query(visit_sql).fetch(p);
        // The next stored row not yet matched.
        let mut pending: Option<(i64, PatientAggregates)> = None;
        let mut visits: Vec<(NaiveDate, i64)> = Vec::new();
        let mut current: Option<i64> = None;
        loop {
            let next_visit = match next(&mut rows).await {
                Some(r) => {
                    let r = r?;
                    Some((r.try_get::<i64, _>(0)?, r.try_get::<NaiveDate, _>(1)?, r.try_get::<i64, _>(2)?))
                }
                None => None,
            };
            let key_changed = match (&next_visit, current) {
                (Some((k, _, _)), Some(c)) => *k != c,
                (None, Some(_)) => true,
                _ => false,
            };
            if key_changed && let Some(key) = current {
                patients += 1;
                let recomputed = PatientAggregates::from_sorted(&visits);
                visits.clear();
                // Stored rows of patients without visits come first.
                loop {
                    if pending.is_none() {
                        pending = match next(&mut stored).await {
                            Some(r) => {
                                let r = r?;
                                let a = crate::patients::aggregates_from_row(&r)?
                                    .ok_or_else(|| crate::StoreError::Corrupt("aggregates without first_visit".into()))?;
                                Some((r.col::<i64>("patient_key")?, a))
                            }
                            None => None,
                        };
                    }
                    match pending {
                        Some((k, a)) if k < key => {
                            mismatches.push(AggregateMismatch { patient_key: k, stored: Some(a), recomputed: None });
                            pending = None;
                        }
                        Some((k, a)) if k == key => {
                            if a != recomputed {
                                mismatches.push(AggregateMismatch { patient_key: key, stored: Some(a), recomputed: Some(recomputed) });
                            }
                            pending = None;
                            break;
                        }
                        _ => {
                            mismatches.push(AggregateMismatch { patient_key: key, stored: None, recomputed: Some(recomputed) });
                            break;
                        }
                    }
                }
            }
            match next_visit {
                Some((k, d, amount)) => {
                    current = Some(k);
                    visits.push((d, amount));
                }
                None => break,
            }
        }
        // Whatever is left is stored for patients without visits.
        if let Some((k, a)) = pending {
            mismatches.push(AggregateMismatch { patient_key: k, stored: Some(a), recomputed: None });
        }
        while let Some(r) = next(&mut stored).await {
            let r = r?;
            let a = crate::patients::aggregates_from_row(&r)?;
            mismatches.push(AggregateMismatch { patient_key: r.col::<i64>("patient_key")?, stored: a, recomputed: None });
        }
    });
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
