//! The dashboard's figures beyond `analyze`: the monthly series, the KPIs
//! of a period against the period before, and the concentration curve
//! with its 80/20 point. Definitions are in `docs/analytics.md`
//! ("Dashboard").

use chrono::NaiveDate;
use rapport_domain::PatientAggregates;
use rapport_domain::aggregates::month_index;
use serde::{Deserialize, Serialize};

use crate::cohorts::month_label;
use crate::concentration::CurvePoint;

/// Visits and revenue of one day (the store's scan of a date range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayTotal {
    pub date: NaiveDate,
    pub visits: i64,
    /// Minor units.
    pub revenue: i64,
}

/// Visits and revenue of one calendar month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthFigures {
    /// `YYYY-MM`.
    pub month: String,
    pub visits: i64,
    /// Minor units.
    pub revenue: i64,
}

/// The first day of the month `months - 1` months before `as_of`'s month:
/// the start of a series of `months` calendar months ending with `as_of`'s.
pub fn series_start(as_of: NaiveDate, months: u32) -> NaiveDate {
    let m = month_index(as_of) - i64::from(months.max(1)) + 1;
    let (y, m0) = (m.div_euclid(12), m.rem_euclid(12));
    NaiveDate::from_ymd_opt(y as i32, m0 as u32 + 1, 1).unwrap_or(as_of)
}

/// `months` calendar months ending with `as_of`'s month, oldest first,
/// every month present (0 when it had no visits); days after `as_of` are
/// ignored.
pub fn month_series(days: &[DayTotal], as_of: NaiveDate, months: u32) -> Vec<MonthFigures> {
    let months = months.max(1);
    let last = month_index(as_of);
    let first = last - i64::from(months) + 1;
    let mut out: Vec<MonthFigures> = (first..=last)
        .map(|m| MonthFigures {
            month: month_label(m),
            visits: 0,
            revenue: 0,
        })
        .collect();
    for d in days.iter().filter(|d| d.date <= as_of) {
        let m = month_index(d.date);
        if (first..=last).contains(&m) {
            let e = &mut out[(m - first) as usize];
            e.visits += d.visits;
            e.revenue += d.revenue;
        }
    }
    out
}

/// A period of whole days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// The `days` days ending with `to`.
    pub fn ending(to: NaiveDate, days: u32) -> Period {
        Period {
            from: to - chrono::Duration::days(i64::from(days.max(1)) - 1),
            to,
        }
    }

    /// The period of the same length just before this one.
    pub fn prior(self) -> Period {
        let len = (self.to - self.from).num_days() + 1;
        Period::ending(self.from - chrono::Duration::days(1), len as u32)
    }

    pub fn contains(self, d: NaiveDate) -> bool {
        self.from <= d && d <= self.to
    }
}

/// The KPIs of one period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeriodKpis {
    pub period: Period,
    /// Distinct patients with a visit in the period.
    pub patients: i64,
    pub visits: i64,
    /// Minor units.
    pub revenue: i64,
    /// Patients whose first visit ever is in the period.
    pub new_patients: i64,
    /// Share of the period's patients who had visited before it
    /// (`(patients - new_patients) / patients`; 0 without patients).
    pub return_visit_rate: f64,
}

impl PeriodKpis {
    /// Assembles the KPIs from the period's visit totals, its distinct
    /// patients, and every patient's aggregates (for first visits).
    pub fn new(
        period: Period,
        days: &[DayTotal],
        patients: i64,
        aggs: &[PatientAggregates],
    ) -> PeriodKpis {
        let (visits, revenue) = days
            .iter()
            .filter(|d| period.contains(d.date))
            .fold((0, 0), |(v, r), d| (v + d.visits, r + d.revenue));
        let new_patients = aggs
            .iter()
            .filter(|a| period.contains(a.first_visit))
            .count() as i64;
        let return_visit_rate = if patients > 0 {
            (patients - new_patients).max(0) as f64 / patients as f64
        } else {
            0.0
        };
        PeriodKpis {
            period,
            patients,
            visits,
            revenue,
            new_patients,
            return_visit_rate,
        }
    }
}

/// Relative change from `prior` to `current` (`0.25` = +25 %); `None`
/// when `prior` is 0.
pub fn change(current: f64, prior: f64) -> Option<f64> {
    (prior != 0.0).then(|| (current - prior) / prior)
}

/// The Lorenz curve of `monetary` with `points + 1` points (share of the
/// patients from the smallest spenders up, share of revenue they hold),
/// and the 80/20 point: the smallest share of the patients, largest
/// spenders first, that holds at least 80 % of the revenue (0 when there
/// is no revenue).
pub fn lorenz_and_pareto_point(monetary: &[i64], points: usize) -> (Vec<CurvePoint>, f64) {
    let mut v = monetary.to_vec();
    v.sort_unstable();
    let n = v.len();
    if n == 0 {
        return (Vec::new(), 0.0);
    }
    let total: i128 = v.iter().map(|&x| i128::from(x)).sum();
    let points = points.max(1);
    let mut curve = Vec::with_capacity(points + 1);
    let mut acc: i128 = 0;
    let mut taken = 0usize;
    for j in 0..=points {
        let k = (j as u128 * n as u128).div_ceil(points as u128) as usize;
        while taken < k {
            acc += i128::from(v[taken]);
            taken += 1;
        }
        curve.push(CurvePoint {
            patient_share: k as f64 / n as f64,
            revenue_share: if total == 0 {
                0.0
            } else {
                acc as f64 / total as f64
            },
        });
    }
    // Largest first: the fewest patients whose sum reaches 4/5 of the
    // total, compared in integers.
    let mut top: i128 = 0;
    let mut k = 0usize;
    if total > 0 {
        for &x in v.iter().rev() {
            top += i128::from(x);
            k += 1;
            if 5 * top >= 4 * total {
                break;
            }
        }
    }
    (curve, k as f64 / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn month_series_is_complete_and_ends_with_as_of() {
        let days = [
            DayTotal {
                date: d("2024-07-31"),
                visits: 9,
                revenue: 9,
            },
            DayTotal {
                date: d("2024-08-01"),
                visits: 2,
                revenue: 300,
            },
            DayTotal {
                date: d("2026-06-30"),
                visits: 1,
                revenue: 5,
            },
            DayTotal {
                date: d("2026-07-01"),
                visits: 7,
                revenue: 7,
            },
        ];
        let s = month_series(&days, d("2026-07-01"), 24);
        assert_eq!(s.len(), 24);
        assert_eq!(s[0].month, "2024-08");
        assert_eq!((s[0].visits, s[0].revenue), (2, 300));
        assert_eq!(s[23].month, "2026-07");
        assert_eq!(s[23].visits, 7);
        assert_eq!(s.iter().map(|m| m.visits).sum::<i64>(), 10);
        assert_eq!(series_start(d("2026-07-01"), 24), d("2024-08-01"));
        assert_eq!(series_start(d("2026-01-15"), 1), d("2026-01-01"));
    }

    #[test]
    fn periods_and_kpis() {
        let p = Period::ending(d("2026-06-30"), 30);
        assert_eq!(p.from, d("2026-06-01"));
        assert_eq!(p.prior(), Period::ending(d("2026-05-31"), 30));
        let aggs = [
            PatientAggregates::from_visits([(d("2026-06-03"), 100)]).unwrap(),
            PatientAggregates::from_visits([(d("2026-01-03"), 100), (d("2026-06-05"), 1)]).unwrap(),
        ];
        let days = [
            DayTotal {
                date: d("2026-06-03"),
                visits: 1,
                revenue: 100,
            },
            DayTotal {
                date: d("2026-06-05"),
                visits: 1,
                revenue: 1,
            },
        ];
        let k = PeriodKpis::new(p, &days, 2, &aggs);
        assert_eq!((k.visits, k.revenue, k.new_patients), (2, 101, 1));
        assert_eq!(k.return_visit_rate, 0.5);
        assert_eq!(change(3.0, 2.0), Some(0.5));
        assert_eq!(change(3.0, 0.0), None);
    }

    #[test]
    fn lorenz_ends_and_the_80_20_point() {
        // 10 patients: one holds 91 of 100.
        let mut x = vec![1i64; 9];
        x.push(91);
        let (c, p) = lorenz_and_pareto_point(&x, 100);
        assert_eq!(c.len(), 101);
        assert_eq!((c[0].patient_share, c[0].revenue_share), (0.0, 0.0));
        assert_eq!((c[100].patient_share, c[100].revenue_share), (1.0, 1.0));
        assert!(
            c.windows(2)
                .all(|w| w[0].revenue_share <= w[1].revenue_share)
        );
        assert_eq!(p, 0.1);
        // Equal spend: 80 % of the patients hold 80 %.
        let (_, p) = lorenz_and_pareto_point(&[5; 10], 10);
        assert_eq!(p, 0.8);
        assert_eq!(lorenz_and_pareto_point(&[0, 0], 4).1, 0.0);
    }
}
