//! Per-patient aggregates over visits.
//!
//! The store keeps one row of these per patient and rewrites it in the same
//! transaction as every visit insert, update and delete, so analytics never
//! rescans the visits table. The figures are defined in the analytics
//! contract (`first_visit`, `last_visit`, `visits`, `visit_days`,
//! `monetary`); the extra columns (`first_day_monetary`, `months_with_visits`,
//! `cohort_mask`) are what BG/NBD's `monetary_value` and cohort retention need
//! without going back to the visits.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// Number of monthly offsets (0..=11) that cohort retention reports.
pub const COHORT_MONTHS: u32 = 12;

/// The aggregates of one patient with at least one visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientAggregates {
    pub first_visit: NaiveDate,
    pub last_visit: NaiveDate,
    /// Number of visits (rows).
    pub visits: i64,
    /// Number of distinct visit dates.
    pub visit_days: i64,
    /// Sum of amounts, integer minor units.
    pub monetary: i64,
    /// Sum of the amounts of the visits on `first_visit` (minor units); the
    /// repeat-visit spend is `monetary - first_day_monetary`.
    pub first_day_monetary: i64,
    /// Number of distinct calendar months with at least one visit.
    pub months_with_visits: i64,
    /// Bit `k` (0..=11) is set when the patient has a visit in calendar month
    /// `month(first_visit) + k`. Bit 0 is always set.
    pub cohort_mask: i64,
}

/// Index of a calendar month counted from year 0 (`year * 12 + month0`).
pub fn month_index(d: NaiveDate) -> i64 {
    i64::from(d.year()) * 12 + i64::from(d.month0())
}

impl PatientAggregates {
    /// Computes the aggregates from a patient's visits as `(date, amount)`
    /// pairs in any order. `None` when there are no visits.
    pub fn from_visits<I>(visits: I) -> Option<Self>
    where
        I: IntoIterator<Item = (NaiveDate, i64)>,
    {
        let mut v: Vec<(NaiveDate, i64)> = visits.into_iter().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable_by_key(|&(d, _)| d);
        Some(Self::from_sorted(&v))
    }

    /// Same as [`from_visits`](Self::from_visits) for a non-empty slice
    /// sorted by date (not checked beyond a debug assertion).
    pub fn from_sorted(v: &[(NaiveDate, i64)]) -> Self {
        debug_assert!(!v.is_empty());
        debug_assert!(v.windows(2).all(|w| w[0].0 <= w[1].0));
        let first = v[0].0;
        let last = v[v.len() - 1].0;
        let first_month = month_index(first);
        let mut agg = PatientAggregates {
            first_visit: first,
            last_visit: last,
            visits: v.len() as i64,
            visit_days: 0,
            monetary: 0,
            first_day_monetary: 0,
            months_with_visits: 0,
            cohort_mask: 0,
        };
        let mut prev_day: Option<NaiveDate> = None;
        let mut prev_month: Option<i64> = None;
        for &(d, amount) in v {
            agg.monetary += amount;
            if d == first {
                agg.first_day_monetary += amount;
            }
            if prev_day != Some(d) {
                agg.visit_days += 1;
                prev_day = Some(d);
            }
            let m = month_index(d);
            if prev_month != Some(m) {
                agg.months_with_visits += 1;
                prev_month = Some(m);
                let k = m - first_month;
                if k < i64::from(COHORT_MONTHS) {
                    agg.cohort_mask |= 1 << k;
                }
            }
        }
        agg
    }

    /// Repeat visit days (BG/NBD `frequency`).
    pub fn frequency(&self) -> i64 {
        self.visit_days - 1
    }

    /// Mean over repeat visit days of the day's summed amount, in minor
    /// units (0 when there is no repeat day).
    pub fn repeat_monetary_value(&self) -> f64 {
        if self.visit_days <= 1 {
            0.0
        } else {
            (self.monetary - self.first_day_monetary) as f64 / (self.visit_days - 1) as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn empty_has_no_aggregates() {
        assert_eq!(PatientAggregates::from_visits(Vec::new()), None);
    }

    #[test]
    fn counts_days_months_and_cohort_offsets() {
        let a = PatientAggregates::from_visits(vec![
            (d(2024, 3, 5), 100),
            (d(2024, 1, 31), 250),
            (d(2024, 1, 31), 50),
            (d(2025, 1, 2), 10),
            (d(2024, 12, 1), 7),
        ])
        .unwrap();
        assert_eq!(a.first_visit, d(2024, 1, 31));
        assert_eq!(a.last_visit, d(2025, 1, 2));
        assert_eq!(a.visits, 5);
        assert_eq!(a.visit_days, 4);
        assert_eq!(a.monetary, 417);
        assert_eq!(a.first_day_monetary, 300);
        assert_eq!(a.months_with_visits, 4);
        // Jan 2024 = offset 0, Mar = 2, Dec = 11, Jan 2025 = 12 (outside).
        assert_eq!(a.cohort_mask, 0b1000_0000_0101);
        assert_eq!(a.frequency(), 3);
        assert!((a.repeat_monetary_value() - 39.0).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn order_does_not_matter(mut v in proptest::collection::vec((0i64..2000, 0i64..1_000_000), 1..40)) {
            let base = d(2020, 1, 1);
            let visits: Vec<(NaiveDate, i64)> = v.iter().map(|&(o, a)| (base + chrono::Days::new(o as u64), a)).collect();
            let a = PatientAggregates::from_visits(visits.clone()).unwrap();
            v.reverse();
            let rev: Vec<(NaiveDate, i64)> = v.iter().map(|&(o, a)| (base + chrono::Days::new(o as u64), a)).collect();
            prop_assert_eq!(a, PatientAggregates::from_visits(rev).unwrap());
            prop_assert_eq!(a.monetary, visits.iter().map(|x| x.1).sum::<i64>());
            prop_assert!(a.visit_days <= a.visits && a.months_with_visits <= a.visit_days);
            prop_assert_eq!(a.cohort_mask & 1, 1);
        }
    }
}
