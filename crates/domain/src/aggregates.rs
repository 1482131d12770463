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

    /// The aggregates of a single visit.
    pub fn single(d: NaiveDate, amount: i64) -> Self {
        Self::from_sorted(&[(d, amount)])
    }

    /// Adds one visit without going back to the others: `day_seen` says
    /// whether the patient already had a visit on `d`, `month_seen`
    /// whether one in `d`'s calendar month. Both can be known cheaply:
    /// outside `first_visit..=last_visit` a day is new, and a month is seen
    /// only when it is the first or last visit's month; inside, the caller
    /// looks. Equal to [`from_visits`](Self::from_visits) over all visits.
    pub fn add_visit(&mut self, d: NaiveDate, amount: i64, day_seen: bool, month_seen: bool) {
        self.visits += 1;
        self.monetary += amount;
        if !day_seen {
            self.visit_days += 1;
        }
        if !month_seen {
            self.months_with_visits += 1;
        }
        if d < self.first_visit {
            // Months between the new first visit and the old one hold no
            // visit, so the old offsets move up by the gap; offsets past
            // 11 fall out of the window.
            let shift = month_index(self.first_visit) - month_index(d);
            let window = (1i64 << COHORT_MONTHS) - 1;
            self.cohort_mask = if shift >= i64::from(COHORT_MONTHS) {
                0
            } else {
                (self.cohort_mask << shift) & window
            } | 1;
            self.first_visit = d;
            self.first_day_monetary = amount;
        } else {
            if d == self.first_visit {
                self.first_day_monetary += amount;
            }
            let k = month_index(d) - month_index(self.first_visit);
            if k < i64::from(COHORT_MONTHS) {
                self.cohort_mask |= 1 << k;
            }
        }
        if d > self.last_visit {
            self.last_visit = d;
        }
    }

    /// Whether a visit on `d` is sure to fall on a day and in a month
    /// without visits, or in a month already seen, from the aggregates
    /// alone: `Some((day_seen, month_seen))`, or `None` when only the
    /// visits can tell (`d` within `first_visit..=last_visit`).
    pub fn known_novelty(&self, d: NaiveDate) -> Option<(bool, bool)> {
        let m = month_index(d);
        if d < self.first_visit {
            Some((false, m == month_index(self.first_visit)))
        } else if d > self.last_visit {
            Some((false, m == month_index(self.last_visit)))
        } else if d == self.first_visit || d == self.last_visit {
            Some((true, true))
        } else {
            None
        }
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

        #[test]
        fn adding_visits_one_by_one_equals_computing_from_all(v in proptest::collection::vec((0i64..1500, 0i64..100_000), 1..40)) {
            let base = d(2020, 1, 1);
            let visits: Vec<(NaiveDate, i64)> = v.iter().map(|&(o, a)| (base + chrono::Days::new(o as u64), a)).collect();
            let mut agg = PatientAggregates::single(visits[0].0, visits[0].1);
            for (i, &(day, amount)) in visits.iter().enumerate().skip(1) {
                let before = &visits[..i];
                let (day_seen, month_seen) = agg.known_novelty(day).unwrap_or_else(|| (
                    before.iter().any(|x| x.0 == day),
                    before.iter().any(|x| month_index(x.0) == month_index(day)),
                ));
                if let Some(known) = agg.known_novelty(day) {
                    prop_assert_eq!(known.0, before.iter().any(|x| x.0 == day));
                    prop_assert_eq!(known.1, before.iter().any(|x| month_index(x.0) == month_index(day)));
                }
                agg.add_visit(day, amount, day_seen, month_seen);
                prop_assert_eq!(agg, PatientAggregates::from_visits(visits[..=i].to_vec()).unwrap());
            }
        }
    }
}
