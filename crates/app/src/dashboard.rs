//! What the dashboard draws, in one request: the `analyze` figures (RFM
//! segment sizes, concentration, the cohort matrix), visits and revenue by
//! month over the last months, the KPIs of a period against the period
//! before, the Lorenz curve with its 80/20 point, and the sizes of the
//! saved segments. Definitions: `docs/analytics.md` ("Dashboard").
//!
//! The per-patient figures come from the aggregates in memory; the visit
//! series and the distinct patients of the two periods from one indexed
//! range of the visits, read while the aggregates load.

use chrono::NaiveDate;
use rapport_analytics::concentration::CurvePoint;
use rapport_analytics::dashboard::{
    DayTotal, MonthFigures, Period, PeriodKpis, lorenz_and_pareto_point, month_series, series_start,
};
use rapport_analytics::{Analysis, analyze_with_scores};
use rapport_store::dashboard as store;

use crate::segments::{self, Segment};
use crate::{App, Result};

/// What to compute.
#[derive(Debug, Clone, Copy)]
pub struct DashboardSpec {
    pub as_of: NaiveDate,
    /// Length of the KPI period, in days, ending with `as_of`.
    pub period_days: u32,
    /// Calendar months of the series, ending with `as_of`'s month.
    pub months: u32,
    /// Segments of the Lorenz curve (`points + 1` points).
    pub lorenz_points: usize,
}

#[derive(Debug, Clone)]
pub struct Dashboard {
    pub analysis: Analysis,
    /// Revenue (minor units) of each RFM segment, in `Segment::ALL` order.
    pub segment_revenue: [i128; 9],
    /// Every month of the series, oldest first.
    pub months: Vec<MonthFigures>,
    pub current: PeriodKpis,
    pub prior: PeriodKpis,
    pub lorenz: Vec<CurvePoint>,
    /// The smallest share of patients (largest spenders first) holding 80 %
    /// of the revenue.
    pub pareto_80_share: f64,
    /// The saved segments with their latest recorded counts.
    pub segments: Vec<Segment>,
}

fn days(rows: Vec<store::DayRow>) -> Vec<DayTotal> {
    rows.into_iter()
        .map(|r| DayTotal {
            date: r.date,
            visits: r.visits,
            revenue: r.revenue,
        })
        .collect()
}

pub async fn dashboard(app: &App, spec: DashboardSpec) -> Result<Dashboard> {
    let as_of = spec.as_of;
    let current = Period::ending(as_of, spec.period_days);
    let prior = current.prior();
    let from = series_start(as_of, spec.months).min(prior.from);
    let (table, day_rows, now_patients, prior_patients, saved) = tokio::join!(
        crate::analytics::patients(app, as_of, false),
        store::day_totals(&app.db, app.hospital_id, from, as_of),
        store::distinct_patients(&app.db, app.hospital_id, current.from, current.to),
        store::distinct_patients(&app.db, app.hospital_id, prior.from, prior.to),
        segments::list(app),
    );
    let (table, day_rows) = (table?, days(day_rows?));
    let (now_patients, prior_patients, saved) = (now_patients?, prior_patients?, saved?);
    let months = spec.months;
    let points = spec.lorenz_points;
    let d = tokio::task::spawn_blocking(move || {
        let aggs = &table.aggregates;
        let (analysis, rfm) = analyze_with_scores(aggs, as_of);
        let mut segment_revenue = [0i128; 9];
        for (a, s) in aggs.iter().zip(&rfm) {
            segment_revenue[s.segment.index()] += i128::from(a.monetary);
        }
        let monetary: Vec<i64> = aggs.iter().map(|a| a.monetary).collect();
        let (lorenz, pareto_80_share) = lorenz_and_pareto_point(&monetary, points);
        Dashboard {
            analysis,
            segment_revenue,
            months: month_series(&day_rows, as_of, months),
            current: PeriodKpis::new(current, &day_rows, now_patients, aggs),
            prior: PeriodKpis::new(prior, &day_rows, prior_patients, aggs),
            lorenz,
            pareto_80_share,
            segments: Vec::new(),
        }
    })
    .await
    .map_err(|e| crate::AppError::Internal(format!("dashboard task failed: {e}")))?;
    Ok(Dashboard {
        segments: saved,
        ..d
    })
}
