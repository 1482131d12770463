//! `/api/v1/analytics`: the figures of `analytics.md` for dashboards, the
//! lifetime-value fit, the per-patient scores refresh and A/B tests; and
//! `/api/v1/patients/{id}/scores`, a patient's stored scores.

use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use rapport_analytics::abtest::{AbTestError, two_proportion_ztest};
use rapport_analytics::{Segment, SegmentCounts};
use rapport_app::App;
use rapport_app::analytics::{self, Dashboard};
use rapport_domain::money::format_minor;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiPath, ApiQuery};

/// Points of the Pareto curve unless asked otherwise.
const PARETO_POINTS: usize = 50;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfParams {
    /// The analysis date, `YYYY-MM-DD` (default: today in the hospital's
    /// zone). Only visits on or before it count.
    pub as_of: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// The analysis date, `YYYY-MM-DD` (default: today in the hospital's
    /// zone). Only visits on or before it count.
    pub as_of: Option<String>,
    /// Segments of the Pareto curve, 1 to 1000 (default 50: 51 points).
    pub pareto_points: Option<String>,
}

fn as_of(app: &App, raw: Option<&str>) -> ApiResult<NaiveDate> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(app.today()),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| ApiError::invalid("as_of", "invalid_date", "must be a date YYYY-MM-DD")),
    }
}

/// Patients per RFM segment.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentsOut {
    pub champions: u64,
    pub loyal: u64,
    pub potential_loyalist: u64,
    pub new: u64,
    pub need_attention: u64,
    pub about_to_sleep: u64,
    pub at_risk: u64,
    pub hibernating: u64,
    pub lost: u64,
}

impl From<SegmentCounts> for SegmentsOut {
    fn from(c: SegmentCounts) -> Self {
        SegmentsOut {
            champions: c.champions,
            loyal: c.loyal,
            potential_loyalist: c.potential_loyalist,
            new: c.new,
            need_attention: c.need_attention,
            about_to_sleep: c.about_to_sleep,
            at_risk: c.at_risk,
            hibernating: c.hibernating,
            lost: c.lost,
        }
    }
}

/// One segment's size and revenue.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentOut {
    pub segment: String,
    pub patients: u64,
    /// Decimal with two places.
    pub revenue: String,
}

/// Retention of one monthly cohort.
#[derive(Debug, Serialize, ToSchema)]
pub struct CohortOut {
    /// `YYYY-MM` of the first visits.
    pub cohort: String,
    pub size: u64,
    /// Offsets 0 to 11: the share of the cohort with a visit in month
    /// `cohort + k`; `null` after the analysis month.
    pub retention: Vec<Option<f64>>,
}

/// Visits and revenue of one calendar month.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonthOut {
    /// `YYYY-MM`.
    pub month: String,
    pub visits: i64,
    /// Decimal with two places.
    pub revenue: String,
}

/// One point of the Pareto curve.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParetoPointOut {
    /// Share of the patients (largest spenders first), 0 to 1.
    pub patient_share: f64,
    /// Their share of the revenue, 0 to 1.
    pub revenue_share: f64,
}

/// The dashboard: the figures of `rapport analyze --json` plus the series
/// the charts draw.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryOut {
    pub as_of: NaiveDate,
    /// Patients with a visit on or before `as_of`.
    pub active_patients: u64,
    /// Decimal with two places.
    pub revenue: String,
    pub segments: SegmentsOut,
    /// Share of revenue of the top 20 % of patients.
    pub top20_share: f64,
    pub gini: f64,
    pub cohorts: Vec<CohortOut>,
    /// Oldest first; months without visits are absent.
    pub months: Vec<MonthOut>,
    /// Every segment in contract order with its revenue.
    pub segment_breakdown: Vec<SegmentOut>,
    pub pareto: Vec<ParetoPointOut>,
}

impl From<Dashboard> for SummaryOut {
    fn from(d: Dashboard) -> Self {
        let a = d.analysis;
        SummaryOut {
            as_of: a.as_of,
            active_patients: a.active_patients,
            revenue: a.revenue,
            segment_breakdown: Segment::ALL
                .into_iter()
                .map(|s| SegmentOut {
                    segment: s.as_str().to_string(),
                    patients: a.segments.get(s),
                    revenue: format_minor(d.segment_revenue[s.index()]),
                })
                .collect(),
            segments: a.segments.into(),
            top20_share: a.top20_share,
            gini: a.gini,
            cohorts: a
                .cohorts
                .into_iter()
                .map(|c| CohortOut {
                    cohort: c.cohort,
                    size: c.size,
                    retention: c.retention,
                })
                .collect(),
            months: d
                .months
                .into_iter()
                .map(|m| MonthOut {
                    month: m.month,
                    visits: m.visits,
                    revenue: format_minor(i128::from(m.revenue)),
                })
                .collect(),
            pareto: d
                .pareto
                .into_iter()
                .map(|p| ParetoPointOut {
                    patient_share: p.patient_share,
                    revenue_share: p.revenue_share,
                })
                .collect(),
        }
    }
}

/// The dashboard figures as of a date: active patients, revenue, RFM
/// segments, concentration, cohorts, monthly visits and revenue, Pareto
/// curve. No personal data.
#[utoipa::path(get, path = "/analytics/summary", tag = "analytics",
    params(SummaryParams),
    responses(
        (status = 200, body = SummaryOut),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn summary(
    State(app): State<App>,
    ApiQuery(q): ApiQuery<SummaryParams>,
) -> ApiResult<axum::Json<SummaryOut>> {
    let as_of = as_of(&app, q.as_of.as_deref())?;
    let points = match q.pareto_points.as_deref().map(str::trim) {
        None | Some("") => PARETO_POINTS,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "pareto_points",
                    "out_of_range",
                    "must be a whole number from 1 to 1000",
                )
            })?,
    };
    let d = analytics::dashboard(&app, as_of, points).await?;
    Ok(axum::Json(d.into()))
}

/// BG/NBD parameters (periods in days).
#[derive(Debug, Serialize, ToSchema)]
pub struct BgNbdOut {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
    /// Total over the patients (Fader, Hardie & Lee 2005, eq. 6).
    pub log_likelihood: f64,
    pub customers: u64,
}

/// Gamma-Gamma parameters (spend in the currency's major unit).
#[derive(Debug, Serialize, ToSchema)]
pub struct GammaGammaOut {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
    pub log_likelihood: f64,
    /// Patients with repeat visits and positive spend.
    pub customers: u64,
}

/// The lifetime-value models fitted on the active patients.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClvOut {
    pub as_of: NaiveDate,
    pub bgnbd: BgNbdOut,
    /// Absent when it cannot be fitted (see `note`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gamma_gamma: Option<GammaGammaOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Fit BG/NBD and Gamma-Gamma on the patients active as of a date (as
/// `rapport clv fit --json`). 409 `insufficient_data` when the patients
/// cannot identify the model (e.g. nobody came back).
#[utoipa::path(get, path = "/analytics/clv", tag = "analytics",
    params(AsOfParams),
    responses(
        (status = 200, body = ClvOut),
        (status = 409, description = "`insufficient_data`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn clv(
    State(app): State<App>,
    ApiQuery(q): ApiQuery<AsOfParams>,
) -> ApiResult<axum::Json<ClvOut>> {
    let as_of = as_of(&app, q.as_of.as_deref())?;
    let (fit, note) = analytics::fit_clv(&app, as_of).await?;
    let b = fit.bgnbd;
    Ok(axum::Json(ClvOut {
        as_of,
        bgnbd: BgNbdOut {
            r: b.r,
            alpha: b.alpha,
            a: b.a,
            b: b.b,
            log_likelihood: b.log_likelihood,
            customers: b.customers,
        },
        gamma_gamma: fit.gamma_gamma.map(|g| GammaGammaOut {
            p: g.p,
            q: g.q,
            gamma: g.gamma,
            log_likelihood: g.log_likelihood,
            customers: g.customers,
        }),
        note,
    }))
}

/// What a scores refresh did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshOut {
    /// The `job_runs` entry of this refresh.
    pub job_id: i64,
    pub as_of: NaiveDate,
    /// Scores stored: one per active patient.
    pub patients: u64,
    /// Patients with lifetime-value predictions.
    pub predicted: u64,
    pub churn_risk: u64,
    pub refreshed_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// Why predictions are missing or partial, if they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Recompute every active patient's scores (RFM, P(alive), expected
/// visits, lifetime value, churn risk) as of today and replace the stored
/// ones. Runs nightly by itself; this runs it now.
#[utoipa::path(post, path = "/analytics/scores/refresh", tag = "analytics",
    responses((status = 200, body = RefreshOut)))]
pub async fn refresh(State(app): State<App>) -> ApiResult<axum::Json<RefreshOut>> {
    let r = analytics::refresh_scores(&app).await?;
    Ok(axum::Json(RefreshOut {
        job_id: r.job_id,
        as_of: r.as_of,
        patients: r.patients,
        predicted: r.predicted,
        churn_risk: r.churn_risk,
        refreshed_at: r.refreshed_at,
        duration_ms: r.duration.as_millis() as u64,
        note: r.fit_problem,
    }))
}

/// One run of the scores refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRunOut {
    pub id: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `ok` or `failed`.
    pub status: String,
    /// A JSON summary when `ok`, the error when `failed`.
    pub detail: Option<String>,
}

/// The latest 20 runs of the scores refresh, newest first.
#[utoipa::path(get, path = "/analytics/scores/runs", tag = "analytics",
    responses((status = 200, body = Vec<JobRunOut>)))]
pub async fn runs(State(app): State<App>) -> ApiResult<axum::Json<Vec<JobRunOut>>> {
    let runs = analytics::refresh_runs(&app, 20).await?;
    Ok(axum::Json(
        runs.into_iter()
            .map(|r| JobRunOut {
                id: r.id,
                started_at: r.started_at,
                finished_at: r.finished_at,
                status: r.status.as_str().to_string(),
                detail: r.detail,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AbTestParams {
    /// Conversions of variant A.
    pub x_a: Option<String>,
    /// Recipients of variant A (at least 1).
    pub n_a: Option<String>,
    /// Conversions of variant B.
    pub x_b: Option<String>,
    /// Recipients of variant B (at least 1).
    pub n_b: Option<String>,
}

/// The two-proportion z-test of a campaign's variants.
#[derive(Debug, Serialize, ToSchema)]
pub struct AbTestOut {
    /// `x_a / n_a`.
    pub rate_a: f64,
    /// `x_b / n_b`.
    pub rate_b: f64,
    /// `rate_a - rate_b`.
    pub difference: f64,
    /// Pooled z statistic.
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// 95 % Wald interval of the difference.
    pub ci_low: f64,
    pub ci_high: f64,
}

/// Compare the conversion rates of two variants of a campaign: pooled
/// two-proportion z-test (two-sided) and the 95 % Wald interval of the
/// difference, as statsmodels' `proportions_ztest`. Invalid counts are a
/// 422 naming the parameter.
#[utoipa::path(get, path = "/analytics/abtest", tag = "analytics",
    params(AbTestParams),
    responses(
        (status = 200, body = AbTestOut),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn abtest(ApiQuery(q): ApiQuery<AbTestParams>) -> ApiResult<axum::Json<AbTestOut>> {
    let mut problems: Vec<(&'static str, &'static str, &'static str)> = Vec::new();
    let mut count = |name: &'static str, raw: Option<&str>| -> u64 {
        match raw.map(str::trim) {
            None | Some("") => {
                problems.push((name, "required", "is required"));
                0
            }
            Some(s) => s.parse::<u64>().unwrap_or_else(|_| {
                problems.push((name, "invalid_number", "must be a whole number, 0 or more"));
                0
            }),
        }
    };
    let x_a = count("x_a", q.x_a.as_deref());
    let n_a = count("n_a", q.n_a.as_deref());
    let x_b = count("x_b", q.x_b.as_deref());
    let n_b = count("n_b", q.n_b.as_deref());
    if problems.is_empty() {
        for (n, name) in [(n_a, "n_a"), (n_b, "n_b")] {
            if n == 0 {
                problems.push((name, "out_of_range", "must be at least 1"));
            }
        }
        for (x, n, name) in [(x_a, n_a, "x_a"), (x_b, n_b, "x_b")] {
            if x > n {
                problems.push((
                    name,
                    "out_of_range",
                    "must not exceed the number of recipients",
                ));
            }
        }
    }
    if let Some(&(field, code, message)) = problems.first() {
        let mut e = ApiError::invalid(field, code, message);
        for &(field, code, message) in &problems[1..] {
            e.1.errors.push(rapport_domain::FieldError {
                field: field.to_string(),
                code,
                message: message.to_string(),
            });
        }
        let names: Vec<&str> = problems.iter().map(|p| p.0).collect();
        e.1.detail = Some(format!("invalid parameters: {}", names.join(", ")));
        return Err(e);
    }
    let t = two_proportion_ztest(x_a, n_a, x_b, n_b).map_err(|e| match e {
        AbTestError::InvalidCounts => ApiError::invalid("n_a", "out_of_range", e.to_string()),
        AbTestError::InvalidParameter(p) => ApiError::invalid(p, "out_of_range", e.to_string()),
    })?;
    Ok(axum::Json(AbTestOut {
        rate_a: t.rate_a,
        rate_b: t.rate_b,
        difference: t.difference,
        z: t.z,
        p_value: t.p_value,
        ci_low: t.ci_low,
        ci_high: t.ci_high,
    }))
}

/// A patient's scores from the latest refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientScoresOut {
    /// The platform's patient id.
    pub id: i64,
    /// RFM scores, 1 to 5 (5 = best).
    pub r_score: i64,
    pub f_score: i64,
    pub m_score: i64,
    /// `champions`, `loyal`, `potential_loyalist`, `new`, `need_attention`,
    /// `about_to_sleep`, `at_risk`, `hibernating` or `lost`.
    pub segment: String,
    /// Probability that the patient is still active (BG/NBD); `null` when
    /// the model could not be fitted.
    pub p_alive: Option<f64>,
    /// Expected visit days in the next 90 days.
    pub expected_visits_90d: Option<f64>,
    /// Expected revenue over the next 12 months, discounted 1 % a month;
    /// decimal with two places.
    pub clv_12m: Option<String>,
    /// A returning patient who is more likely gone than not.
    pub churn_risk: bool,
    pub refreshed_at: DateTime<Utc>,
}

/// The patient's scores from the latest refresh (404 before a refresh
/// found the patient active).
#[utoipa::path(get, path = "/patients/{id}/scores", tag = "patients",
    params(("id" = i64, Path, description = "The platform's patient id")),
    responses(
        (status = 200, body = PatientScoresOut),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patient_scores(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<PatientScoresOut>> {
    let s = analytics::patient_scores(&app, id)
        .await?
        .ok_or_else(|| ApiError::not_found("scores"))?;
    Ok(axum::Json(s.into()))
}

impl From<analytics::StoredScore> for PatientScoresOut {
    fn from(s: analytics::StoredScore) -> Self {
        PatientScoresOut {
            id: s.patient_key,
            r_score: s.r_score,
            f_score: s.f_score,
            m_score: s.m_score,
            segment: s.segment,
            p_alive: s.p_alive,
            expected_visits_90d: s.expected_visits_90d,
            clv_12m: s.clv_12m.map(|m| format_minor(i128::from(m))),
            churn_risk: s.churn_risk,
            refreshed_at: s.refreshed_at,
        }
    }
}
