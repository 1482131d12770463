//! `/api/v1/analytics/dashboard`: everything a dashboard draws in one
//! answer. `/analytics/summary` stays as it was.

use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use rapport_analytics::Segment;
use rapport_analytics::dashboard::{PeriodKpis, change};
use rapport_app::App;
use rapport_app::dashboard::{self, Dashboard, DashboardSpec};
use rapport_domain::money::format_minor;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::analytics::{CohortOut, ParetoPointOut, SegmentOut};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiQuery;

/// Months in the series.
const MONTHS: u32 = 24;
/// Segments of the Lorenz curve (101 points).
const LORENZ_POINTS: usize = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DashboardParams {
    /// The analysis date, `YYYY-MM-DD` (default: today in the hospital's
    /// zone). Only visits on or before it count.
    pub as_of: Option<String>,
    /// Length of the KPI period in days, ending with `as_of`, 1 to 366
    /// (default 30); compared with the same number of days before it.
    pub period_days: Option<String>,
}

/// A period of days, both ends included.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardPeriodOut {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// A count in the period and the prior period.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiCountOut {
    pub current: i64,
    pub prior: i64,
    /// `(current - prior) / prior`; `null` when `prior` is 0.
    pub change: Option<f64>,
}

/// An amount in the period and the prior period (decimals with two
/// places).
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiMoneyOut {
    pub current: String,
    pub prior: String,
    /// `(current - prior) / prior`; `null` when `prior` is 0.
    pub change: Option<f64>,
}

/// A rate in the period and the prior period.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiRateOut {
    pub current: f64,
    pub prior: f64,
    /// `current - prior` (a difference of rates, not a ratio).
    pub change: f64,
}

/// The KPIs of the period against the prior period.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpisOut {
    pub period: DashboardPeriodOut,
    pub prior_period: DashboardPeriodOut,
    /// Distinct patients with a visit in the period.
    pub patients: KpiCountOut,
    pub visits: KpiCountOut,
    pub revenue: KpiMoneyOut,
    /// Patients whose first visit is in the period.
    pub new_patients: KpiCountOut,
    /// Share of the period's patients who had visited before it.
    pub return_visit_rate: KpiRateOut,
}

/// Visits and revenue of one calendar month.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardMonthOut {
    /// `YYYY-MM`.
    pub month: String,
    pub visits: i64,
    /// Decimal with two places.
    pub revenue: String,
}

/// Revenue concentration.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConcentrationOut {
    /// Share of revenue of the top 20 % of patients.
    pub top20_share: f64,
    pub gini: f64,
    /// The 80/20 point: the smallest share of patients (largest spenders
    /// first) that holds at least 80 % of the revenue.
    pub patients_for_80_share: f64,
    /// 101 points from (0, 0) to (1, 1): the share of revenue held by the
    /// smallest spenders, for each percent of the patients.
    pub lorenz: Vec<ParetoPointOut>,
}

/// A saved segment's latest recorded size.
#[derive(Debug, Serialize, ToSchema)]
pub struct SavedSegmentSizeOut {
    pub id: i64,
    pub name: String,
    /// `null` before the first count is recorded.
    pub patients: Option<i64>,
    pub counted_at: Option<DateTime<Utc>>,
}

/// The dashboard.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardOut {
    pub as_of: NaiveDate,
    /// Patients with a visit on or before `as_of`.
    pub active_patients: u64,
    /// All revenue up to `as_of`, decimal with two places.
    pub revenue: String,
    pub kpis: KpisOut,
    /// The last 24 calendar months up to `as_of`'s (partial) month, oldest
    /// first, months without visits included.
    pub months: Vec<DashboardMonthOut>,
    /// RFM segments in contract order: patients and revenue.
    pub rfm_segments: Vec<SegmentOut>,
    /// Saved segments by name, with their latest recorded size (counted
    /// after every scores refresh).
    pub saved_segments: Vec<SavedSegmentSizeOut>,
    pub concentration: ConcentrationOut,
    /// Monthly cohorts: retention at offsets 0 to 11.
    pub cohorts: Vec<CohortOut>,
}

fn count(c: i64, p: i64) -> KpiCountOut {
    KpiCountOut {
        current: c,
        prior: p,
        change: change(c as f64, p as f64),
    }
}

fn period(k: &PeriodKpis) -> DashboardPeriodOut {
    DashboardPeriodOut {
        from: k.period.from,
        to: k.period.to,
    }
}

impl From<Dashboard> for DashboardOut {
    fn from(d: Dashboard) -> Self {
        let (c, p) = (d.current, d.prior);
        let a = d.analysis;
        DashboardOut {
            as_of: a.as_of,
            active_patients: a.active_patients,
            revenue: a.revenue,
            kpis: KpisOut {
                period: period(&c),
                prior_period: period(&p),
                patients: count(c.patients, p.patients),
                visits: count(c.visits, p.visits),
                revenue: KpiMoneyOut {
                    current: format_minor(i128::from(c.revenue)),
                    prior: format_minor(i128::from(p.revenue)),
                    change: change(c.revenue as f64, p.revenue as f64),
                },
                new_patients: count(c.new_patients, p.new_patients),
                return_visit_rate: KpiRateOut {
                    current: c.return_visit_rate,
                    prior: p.return_visit_rate,
                    change: c.return_visit_rate - p.return_visit_rate,
                },
            },
            months: d
                .months
                .into_iter()
                .map(|m| DashboardMonthOut {
                    month: m.month,
                    visits: m.visits,
                    revenue: format_minor(i128::from(m.revenue)),
                })
                .collect(),
            rfm_segments: Segment::ALL
                .into_iter()
                .map(|s| SegmentOut {
                    segment: s.as_str().to_string(),
                    patients: a.segments.get(s),
                    revenue: format_minor(d.segment_revenue[s.index()]),
                })
                .collect(),
            saved_segments: d
                .segments
                .into_iter()
                .map(|s| SavedSegmentSizeOut {
                    id: s.row.id,
                    name: s.row.name,
                    patients: s.latest.as_ref().map(|l| l.patients),
                    counted_at: s.latest.map(|l| l.counted_at),
                })
                .collect(),
            concentration: ConcentrationOut {
                top20_share: a.top20_share,
                gini: a.gini,
                patients_for_80_share: d.pareto_80_share,
                lorenz: d
                    .lorenz
                    .into_iter()
                    .map(|p| ParetoPointOut {
                        patient_share: p.patient_share,
                        revenue_share: p.revenue_share,
                    })
                    .collect(),
            },
            cohorts: a
                .cohorts
                .into_iter()
                .map(|c| CohortOut {
                    cohort: c.cohort,
                    size: c.size,
                    retention: c.retention,
                })
                .collect(),
        }
    }
}

/// The dashboard as of a date: KPIs of the last `period_days` days against
/// the days before, visits and revenue of the last 24 months, RFM and
/// saved segment sizes, the Lorenz curve with its 80/20 point, and the
/// cohort matrix. No personal data.
#[utoipa::path(get, path = "/analytics/dashboard", tag = "analytics",
    params(DashboardParams),
    responses(
        (status = 200, body = DashboardOut),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn dashboard(
    State(app): State<App>,
    ApiQuery(q): ApiQuery<DashboardParams>,
) -> ApiResult<axum::Json<DashboardOut>> {
    let as_of = match q.as_of.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => app.today(),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .filter(|d| (1900..=9999).contains(&chrono::Datelike::year(d)))
            .ok_or_else(|| {
                ApiError::invalid("as_of", "invalid_date", "must be a date YYYY-MM-DD")
            })?,
    };
    let period_days = match q.period_days.as_deref().map(str::trim) {
        None | Some("") => 30,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=366).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "period_days",
                    "out_of_range",
                    "must be a whole number from 1 to 366",
                )
            })?,
    };
    let d = dashboard::dashboard(
        &app,
        DashboardSpec {
            as_of,
            period_days,
            months: MONTHS,
            lorenz_points: LORENZ_POINTS,
        },
    )
    .await?;
    Ok(axum::Json(d.into()))
}
