//! Monthly cohort retention from the per-patient aggregates.
//!
//! The cohort of a patient is the calendar month of the first visit; the
//! aggregates keep a 12-bit mask of the months `cohort + k` (k = 0..=11)
//! with a visit, so retention needs no pass over the visits: one pass over
//! the patients, counting bits into a table indexed by month.

use chrono::NaiveDate;
use rapport_domain::PatientAggregates;
use rapport_domain::aggregates::{COHORT_MONTHS, month_index};
use serde::{Deserialize, Serialize};

/// Number of offsets reported (0..=11).
pub const OFFSETS: usize = COHORT_MONTHS as usize;

/// Retention of one cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortRow {
    /// The cohort month, `YYYY-MM`.
    pub cohort: String,
    /// Patients whose first visit is in that month.
    pub size: u64,
    /// For offsets 0..=11, the share of the cohort with a visit in month
    /// `cohort + k`; `None` when that month is after the analysis month.
    pub retention: Vec<Option<f64>>,
}

/// `YYYY-MM` of a month index (`year * 12 + month0`).
pub fn month_label(index: i64) -> String {
    format!(
        "{:04}-{:02}",
        index.div_euclid(12),
        index.rem_euclid(12) + 1
    )
}

/// One row per non-empty cohort month up to `as_of`'s month, oldest first.
/// Patients whose first visit is after `as_of` are not active and are
/// ignored; offsets after `as_of`'s month are `None` even if the mask has
/// bits there.
pub fn cohort_retention(aggs: &[PatientAggregates], as_of: NaiveDate) -> Vec<CohortRow> {
    let last = month_index(as_of);
    let first = aggs
        .iter()
        .map(|a| month_index(a.first_visit))
        .filter(|&m| m <= last)
        .min();
    let Some(first) = first else {
        return Vec::new();
    };
    let months = (last - first + 1) as usize;
    // counts[m][0] = size, counts[m][1 + k] = patients with bit k.
    let mut counts = vec![[0u64; OFFSETS + 1]; months];
    for a in aggs {
        let m = month_index(a.first_visit);
        if m > last {
            continue;
        }
        let row = &mut counts[(m - first) as usize];
        row[0] += 1;
        let mask = a.cohort_mask;
        for (k, c) in row[1..].iter_mut().enumerate() {
            *c += ((mask >> k) & 1) as u64;
        }
    }
    counts
        .iter()
        .enumerate()
        .filter(|(_, c)| c[0] > 0)
        .map(|(i, c)| {
            let m = first + i as i64;
            let size = c[0];
            let retention = (0..OFFSETS)
                .map(|k| (m + k as i64 <= last).then(|| c[1 + k] as f64 / size as f64))
                .collect();
            CohortRow {
                cohort: month_label(m),
                size,
                retention,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn patient(dates: &[&str]) -> PatientAggregates {
        PatientAggregates::from_visits(dates.iter().map(|s| (d(s), 100))).unwrap()
    }

    /// Cohorts worked by hand, as of 2024-03-15:
    /// - 2023-12: P1 (Dec, Jan, Mar), P2 (Dec, Feb) -> size 2; offset 0: 2/2,
    ///   1 (Jan): 1/2, 2 (Feb): 1/2, 3 (Mar): 1/2, 4.. (Apr 2024 on): null.
    /// - 2024-01: none (no row).
    /// - 2024-02: P3 (Feb only) -> 1.0, 0.0, then null from Apr.
    /// - 2024-03: P4 -> 1.0 then nulls.
    /// - P5 first visits in April, after as_of: ignored.
    #[test]
    fn hand_computed_cohorts() {
        let aggs = [
            patient(&["2023-12-01", "2024-01-20", "2024-03-01"]),
            patient(&["2023-12-31", "2024-02-29"]),
            patient(&["2024-02-10"]),
            patient(&["2024-03-15"]),
            patient(&["2024-04-01"]),
        ];
        let rows = cohort_retention(&aggs, d("2024-03-15"));
        let labels: Vec<&str> = rows.iter().map(|r| r.cohort.as_str()).collect();
        assert_eq!(labels, vec!["2023-12", "2024-02", "2024-03"]);
        assert_eq!(rows[0].size, 2);
        let mut want0 = vec![Some(1.0), Some(0.5), Some(0.5), Some(0.5)];
        want0.resize(12, None);
        assert_eq!(rows[0].retention, want0);
        let mut want1 = vec![Some(1.0), Some(0.0)];
        want1.resize(12, None);
        assert_eq!(rows[1].retention, want1);
        let mut want2 = vec![Some(1.0)];
        want2.resize(12, None);
        assert_eq!(rows[2].retention, want2);
        assert!(cohort_retention(&[], d("2024-03-15")).is_empty());
    }

    #[test]
    fn a_long_history_reports_all_twelve_offsets() {
        let aggs = [patient(&["2022-01-05", "2022-12-31", "2023-01-01"])];
        let rows = cohort_retention(&aggs, d("2024-01-01"));
        assert_eq!(rows.len(), 1);
        let mut want = vec![Some(0.0); 12];
        want[0] = Some(1.0);
        want[11] = Some(1.0);
        assert_eq!(rows[0].retention, want);
        assert_eq!(month_label(month_index(d("0999-02-01"))), "0999-02");
    }
}
