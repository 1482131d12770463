//! Analytics over the hospital's patients: the figures of `analytics.md`
//! (`analyze`), the lifetime-value fits (`clv fit`), the per-patient scores
//! (`export scores`, the stored `patient_scores` and their nightly refresh)
//! and the dashboard summary.
//!
//! Everything is computed as of a date by `rapport-analytics` over the
//! per-patient aggregates the store loads (see
//! [`rapport_store::analytics::patients_as_of`]). The computations are
//! CPU-bound, so they run on blocking threads and leave the async runtime
//! free to serve requests.
//!
//! **Churn risk.** A patient is flagged `churn_risk` when they came back at
//! least once (two or more visit days, so there is a relationship to lose)
//! and BG/NBD gives them a probability of still being active below one half
//! (`p_alive < 0.5`). When the models cannot be fitted (too few returning
//! patients), the flag falls back to the RFM segments: a returning patient
//! in `at_risk`, `about_to_sleep` or `hibernating`.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveTime, SubsecRound, TimeDelta, Utc};
use rapport_analytics::concentration::{CurvePoint, pareto_curve};
use rapport_analytics::{
    Analysis, ClvFit, ClvFitError, ClvSettings, PatientPrediction, RfmScore, Segment, Summary,
    analyze_with_scores, fit_clv as fit_models, predict_many, summary_from_aggregates,
};
use rapport_domain::PatientAggregates;
pub use rapport_store::analytics::MonthTotal;
pub use rapport_store::analytics::PatientTable;
pub use rapport_store::analytics::jobs::JobRun;
use rapport_store::analytics::jobs::{self, JobStatus};
pub use rapport_store::analytics::scores::StoredScore;
use rapport_store::analytics::scores::{self, NewScore};

use crate::{App, AppError, Result};

/// The name of the scores refresh in `job_runs`.
pub const REFRESH_JOB: &str = "scores_refresh";

/// Horizon of `expected_visits_90d`, in days.
pub const PREDICTION_HORIZON_DAYS: f64 = 90.0;

/// P(alive) below which a returning patient counts as a churn risk.
pub const CHURN_P_ALIVE: f64 = 0.5;

/// Local hour of the nightly refresh, and the hospital's offset from UTC
/// (Asia/Shanghai: UTC+8, no daylight saving).
pub const NIGHTLY_HOUR: u32 = 2;
pub const HOSPITAL_UTC_OFFSET_HOURS: i64 = 8;

fn worker_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Runs CPU-bound work on a blocking thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("analytics task cancelled: {e}"),
    }
}

/// The active patients as of `as_of`.
pub async fn patients(app: &App, as_of: NaiveDate, with_ids: bool) -> Result<PatientTable> {
    Ok(rapport_store::analytics::patients_as_of(&app.db, app.hospital_id, as_of, with_ids).await?)
}

/// The figures of `analyze` as of `as_of`.
pub async fn analyze(app: &App, as_of: NaiveDate) -> Result<Analysis> {
    let started = Instant::now();
    let table = patients(app, as_of, false).await?;
    let loaded = started.elapsed();
    let from_stored = table.from_stored;
    let a = blocking(move || rapport_analytics::analyze(&table.aggregates, as_of)).await;
    tracing::debug!(
        patients = a.active_patients,
        from_stored,
        load_ms = loaded.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "analysis"
    );
    Ok(a)
}

/// What the dashboard draws: the `analyze` figures, visits and revenue per
/// month, revenue per segment and the Pareto curve.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub analysis: Analysis,
    /// Oldest month first; months without visits are absent.
    pub months: Vec<MonthTotal>,
    /// Revenue (minor units) of each segment, in [`Segment::ALL`] order.
    pub segment_revenue: [i128; 9],
    /// Share of revenue of the top patients, `pareto_points + 1` points
    /// from 0 % to 100 % of the patients.
    pub pareto: Vec<CurvePoint>,
}

/// The dashboard as of `as_of`.
pub async fn dashboard(app: &App, as_of: NaiveDate, pareto_points: usize) -> Result<Dashboard> {
    let (table, months) = tokio::join!(
        patients(app, as_of, false),
        rapport_store::analytics::visits_by_month(&app.db, app.hospital_id, as_of)
    );
    let (table, months) = (table?, months?);
    let (analysis, segment_revenue, pareto) = blocking(move || {
        let aggs = &table.aggregates;
        let (analysis, rfm) = analyze_with_scores(aggs, as_of);
        let mut revenue = [0i128; 9];
        for (a, s) in aggs.iter().zip(&rfm) {
            revenue[s.segment.index()] += i128::from(a.monetary);
        }
        let monetary: Vec<i64> = aggs.iter().map(|a| a.monetary).collect();
        (analysis, revenue, pareto_curve(&monetary, pareto_points))
    })
    .await;
    Ok(Dashboard {
        analysis,
        months,
        segment_revenue,
        pareto,
    })
}

fn fit_failed(e: ClvFitError) -> AppError {
    AppError::Conflict {
        code: "insufficient_data",
        message: format!("the lifetime-value models cannot be fitted on these patients: {e}"),
    }
}

/// Fits BG/NBD and, where it can, Gamma-Gamma. `Err` only when BG/NBD
/// fails; a Gamma-Gamma failure leaves it out and is described in the
/// second member.
pub fn fit_what_fits(
    rows: &[Summary],
) -> std::result::Result<(ClvFit, Option<String>), ClvFitError> {
    match fit_models(rows, true) {
        Ok(fit) => Ok((fit, None)),
        Err(ClvFitError::GammaGamma(e)) => {
            let fit = fit_models(rows, false)?;
            Ok((fit, Some(format!("Gamma-Gamma: {e}"))))
        }
        Err(e) => Err(e),
    }
}

/// The lifetime-value fit on the patients as of `as_of`, periods in days;
/// the second member says why Gamma-Gamma is missing, if it is.
/// `Conflict("insufficient_data")` when BG/NBD cannot be fitted.
pub async fn fit_clv(app: &App, as_of: NaiveDate) -> Result<(ClvFit, Option<String>)> {
    let table = patients(app, as_of, false).await?;
    blocking(move || {
        let rows: Vec<Summary> = table
            .aggregates
            .iter()
            .map(|a| summary_from_aggregates(a, as_of))
            .collect();
        fit_what_fits(&rows)
    })
    .await
    .map_err(fit_failed)
}

/// Every active patient's scores as of a date.
#[derive(Debug, Clone)]
pub struct ScoreTable {
    pub as_of: NaiveDate,
    /// Keys, hospital ids and aggregates of the active patients.
    pub patients: PatientTable,
    /// RFM scores, aligned with `patients`.
    pub rfm: Vec<RfmScore>,
    pub analysis: Analysis,
    /// The lifetime-value fit (`None` when BG/NBD could not be fitted).
    pub fit: Option<ClvFit>,
    /// Why the fit, or its Gamma-Gamma half, is missing.
    pub fit_problem: Option<String>,
    /// Aligned with `patients` when `fit` is present, else empty.
    pub predictions: Vec<PatientPrediction>,
}

impl ScoreTable {
    pub fn len(&self) -> usize {
        self.rfm.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rfm.is_empty()
    }

    pub fn prediction(&self, i: usize) -> Option<&PatientPrediction> {
        self.predictions.get(i)
    }

    /// Lifetime value over 12 months in minor units, rounded.
    pub fn clv_minor(&self, i: usize) -> Option<i64> {
        self.prediction(i)
            .and_then(|p| p.clv)
            .filter(|v| v.is_finite())
            .map(|v| (v * 100.0).round() as i64)
    }

    pub fn churn_risk(&self, i: usize) -> bool {
        churn_risk(
            &self.patients.aggregates[i],
            self.rfm[i].segment,
            self.prediction(i),
        )
    }

    /// The row a refresh stores for patient `i`.
    pub fn new_score(&self, i: usize) -> NewScore {
        let s = self.rfm[i];
        let p = self.prediction(i);
        NewScore {
            patient_key: self.patients.keys[i],
            r_score: s.r_score,
            f_score: s.f_score,
            m_score: s.m_score,
            segment: s.segment.as_str(),
            p_alive: p.map(|p| p.p_alive).filter(|v| v.is_finite()),
            expected_visits_90d: p.map(|p| p.expected_visits).filter(|v| v.is_finite()),
            clv_12m: self.clv_minor(i),
            churn_risk: self.churn_risk(i),
        }
    }
}

/// The churn-risk rule of this module's documentation.
pub fn churn_risk(
    agg: &PatientAggregates,
    segment: Segment,
    prediction: Option<&PatientPrediction>,
) -> bool {
    if agg.visit_days < 2 {
        return false;
    }
    match prediction {
        Some(p) => p.p_alive < CHURN_P_ALIVE,
        None => matches!(
            segment,
            Segment::AtRisk | Segment::AboutToSleep | Segment::Hibernating
        ),
    }
}

/// Scores every patient active as of `as_of`: RFM, then BG/NBD and
/// Gamma-Gamma fitted on all of them, and their predictions.
pub async fn compute_scores(app: &App, as_of: NaiveDate) -> Result<ScoreTable> {
    let table = patients(app, as_of, true).await?;
    Ok(blocking(move || score(table, as_of)).await)
}

fn score(table: PatientTable, as_of: NaiveDate) -> ScoreTable {
    let aggs = &table.aggregates;
    let (analysis, rfm) = analyze_with_scores(aggs, as_of);
    let summaries: Vec<Summary> = aggs
        .iter()
        .map(|a| summary_from_aggregates(a, as_of))
        .collect();
    let (fit, fit_problem, predictions) = if summaries.is_empty() {
        (None, Some("no active patients".to_string()), Vec::new())
    } else {
        match fit_what_fits(&summaries) {
            Ok((fit, problem)) => {
                let p = predict_many(
                    &fit,
                    &summaries,
                    PREDICTION_HORIZON_DAYS,
                    &ClvSettings::DAYS_12_MONTHS,
                    worker_threads(),
                );
                (Some(fit), problem, p)
            }
            Err(e) => (None, Some(e.to_string()), Vec::new()),
        }
    };
    ScoreTable {
        as_of,
        patients: table,
        rfm,
        analysis,
        fit,
        fit_problem,
        predictions,
    }
}

/// What a refresh did.
#[derive(Debug, Clone)]
pub struct RefreshReport {
    /// The `job_runs` row of this refresh.
    pub job_id: i64,
    pub as_of: NaiveDate,
    /// Rows stored: one per active patient.
    pub patients: u64,
    /// Patients with P(alive) and expected visits.
    pub predicted: u64,
    pub churn_risk: u64,
    pub fit: Option<ClvFit>,
    pub fit_problem: Option<String>,
    pub refreshed_at: DateTime<Utc>,
    /// Wall time of the whole refresh, and of its parts.
    pub duration: Duration,
    pub load: Duration,
    pub compute: Duration,
    pub store: Duration,
}

impl RefreshReport {
    /// The `detail` recorded in `job_runs`.
    pub fn detail(&self) -> String {
        serde_json::json!({
            "as_of": self.as_of,
            "patients": self.patients,
            "predicted": self.predicted,
            "churn_risk": self.churn_risk,
            "duration_ms": self.duration.as_millis() as u64,
            "fit": self.fit,
            "fit_problem": self.fit_problem,
        })
        .to_string()
    }
}

/// Recomputes every active patient's scores as of today and replaces the
/// stored ones in one transaction; the run is recorded in `job_runs`
/// (status `ok` with a JSON summary, or `failed` with the error).
pub async fn refresh_scores(app: &App) -> Result<RefreshReport> {
    let started = Instant::now();
    let started_at = app.now();
    let mut tx = app.db.begin().await?;
    let job_id = jobs::start(&mut tx, app.hospital_id, REFRESH_JOB, started_at).await?;
    tx.commit().await?;
    let outcome = refresh_inner(app, job_id, started).await;
    if outcome.is_ok() {
        // The saved segments' sizes over the new scores, for their history.
        if let Err(e) = crate::segments::record_all(app, crate::segments::Reason::Refresh).await {
            tracing::error!(error = %e, "cannot record the segment counts after the refresh");
        }
    }
    let (status, detail) = match &outcome {
        Ok(r) => (JobStatus::Ok, r.detail()),
        Err(e) => (JobStatus::Failed, e.to_string()),
    };
    let recorded = async {
        let mut tx = app.db.begin().await?;
        jobs::finish(&mut tx, job_id, app.now(), status, &detail).await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = recorded {
        tracing::error!(job_id, error = %e, "cannot record the end of the scores refresh");
        if outcome.is_ok() {
            return Err(e.into());
        }
    }
    outcome
}

async fn refresh_inner(app: &App, job_id: i64, started: Instant) -> Result<RefreshReport> {
    let as_of = app.today();
    let t0 = Instant::now();
    let table = patients(app, as_of, false).await?;
    let load = t0.elapsed();
    let t1 = Instant::now();
    // The rows are made a batch at a time as they are written, not all
    // at once beside the tables they come from (which would double the
    // refresh's memory).
    let scored = blocking(move || score(table, as_of)).await;
    let predicted = scored.predictions.len() as u64;
    let churn_risk = (0..scored.len()).filter(|i| scored.churn_risk(*i)).count() as u64;
    // What the scoring freed (its summaries) goes back to the system.
    rapport_store::memory::give_back();
    let compute = t1.elapsed();
    let t2 = Instant::now();
    // Microseconds: what both engines store.
    let refreshed_at = app.now().trunc_subsecs(6);
    let mut tx = app.db.begin().await?;
    scores::lock_for_refresh(&mut tx).await?;
    let rows = (0..scored.len()).map(|i| scored.new_score(i));
    let written = scores::replace_all(&mut tx, app.hospital_id, rows, refreshed_at).await?;
    tx.commit().await?;
    let store = t2.elapsed();
    let ScoreTable {
        fit, fit_problem, ..
    } = scored;
    rapport_store::memory::give_back();
    let report = RefreshReport {
        job_id,
        as_of,
        patients: written,
        predicted,
        churn_risk,
        fit,
        fit_problem,
        refreshed_at,
        duration: started.elapsed(),
        load,
        compute,
        store,
    };
    tracing::info!(
        patients = report.patients,
        ms = report.duration.as_millis() as u64,
        "scores refreshed"
    );
    Ok(report)
}

/// The stored scores of a patient of this hospital (`None` before a
/// refresh found them active).
pub async fn patient_scores(app: &App, id: i64) -> Result<Option<StoredScore>> {
    Ok(scores::get(&app.db, id)
        .await?
        .filter(|s| s.hospital_id == app.hospital_id))
}

/// The latest runs of the scores refresh, newest first.
pub async fn refresh_runs(app: &App, limit: i64) -> Result<Vec<JobRun>> {
    Ok(jobs::recent(&app.db, app.hospital_id, REFRESH_JOB, limit).await?)
}

/// The first nightly refresh time strictly after `now`: 02:00 in the
/// hospital's zone (UTC+8), i.e. 18:00 UTC.
pub fn next_nightly_run(now: DateTime<Utc>) -> DateTime<Utc> {
    let offset = TimeDelta::hours(HOSPITAL_UTC_OFFSET_HOURS);
    let local_day = (now + offset).date_naive();
    let at_local =
        local_day.and_time(NaiveTime::from_hms_opt(NIGHTLY_HOUR, 0, 0).unwrap_or_default());
    let today = at_local.and_utc() - offset;
    if today > now {
        today
    } else {
        today + TimeDelta::days(1)
    }
}

/// Refreshes the scores every night at 02:00 hospital time, forever (spawn
/// it; it ends with the runtime). Each run is recorded in `job_runs`; a
/// failed run is logged and the next night tries again.
pub async fn run_nightly(app: App) {
    loop {
        let now = app.now();
        let at = next_nightly_run(now);
        let wait = (at - now).to_std().unwrap_or_default();
        tracing::info!(next = %at, "nightly scores refresh scheduled");
        tokio::time::sleep(wait).await;
        // The timer may fire a hair early; wait for the clock to agree.
        while app.now() < at {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match refresh_scores(&app).await {
            Ok(r) => tracing::info!(
                patients = r.patients,
                ms = r.duration.as_millis() as u64,
                "nightly scores refresh done"
            ),
            Err(e) => tracing::error!(error = %e, "nightly scores refresh failed"),
        }
    }
}

/// Writes the scores CSV of `export scores` (header of `interface.md`, one
/// row per active patient). Needs a table computed with the hospital ids.
pub fn write_scores_csv<W: std::io::Write>(table: &ScoreTable, mut w: W) -> std::io::Result<u64> {
    use rapport_domain::money::format_minor;
    writeln!(
        w,
        "patient_id,visits,visit_days,monetary,first_visit,last_visit,recency_days,r_score,f_score,m_score,segment,p_alive,expected_visits_90d,clv_12m"
    )?;
    let ids = &table.patients.patient_ids;
    for (i, (a, s)) in table.patients.aggregates.iter().zip(&table.rfm).enumerate() {
        let id = ids.get(i).map(String::as_str).unwrap_or("");
        let p = table.prediction(i);
        let num = |v: Option<f64>| {
            v.filter(|x| x.is_finite())
                .map(|x| format!("{x:.6}"))
                .unwrap_or_default()
        };
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(id),
            a.visits,
            a.visit_days,
            format_minor(i128::from(a.monetary)),
            a.first_visit,
            a.last_visit,
            rapport_analytics::rfm::recency_days(a, table.as_of),
            s.r_score,
            s.f_score,
            s.m_score,
            s.segment.as_str(),
            num(p.map(|p| p.p_alive)),
            num(p.map(|p| p.expected_visits)),
            table
                .clv_minor(i)
                .map(|m| format_minor(i128::from(m)))
                .unwrap_or_default(),
        )?;
    }
    w.flush()?;
    Ok(table.len() as u64)
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn nightly_run_is_the_next_two_oclock_in_shanghai() {
        // 02:00 in Shanghai is 18:00 UTC the day before.
        assert_eq!(
            next_nightly_run(utc("2026-06-30T12:00:00Z")),
            utc("2026-06-30T18:00:00Z")
        );
        // Just after: the next night.
        assert_eq!(
            next_nightly_run(utc("2026-06-30T18:00:00Z")),
            utc("2026-07-01T18:00:00Z")
        );
        assert_eq!(
            next_nightly_run(utc("2026-06-30T18:00:01Z")),
            utc("2026-07-01T18:00:00Z")
        );
        // 01:59 local on July 1st (17:59 UTC June 30th): a minute away.
        assert_eq!(
            next_nightly_run(utc("2026-06-30T17:59:00Z")),
            utc("2026-06-30T18:00:00Z")
        );
        // Local midnight has passed (16:30 UTC = 00:30 local): tonight.
        assert_eq!(
            next_nightly_run(utc("2026-06-30T16:30:00Z")),
            utc("2026-06-30T18:00:00Z")
        );
        // Across a year end.
        assert_eq!(
            next_nightly_run(utc("2026-12-31T19:00:00Z")),
            utc("2027-01-01T18:00:00Z")
        );
        for h in 0..48 {
            let now = utc("2026-03-01T00:00:00Z") + TimeDelta::minutes(37 * h);
            let next = next_nightly_run(now);
            assert!(next > now && next - now <= TimeDelta::days(1));
            assert_eq!(next.format("%H:%M:%S").to_string(), "18:00:00");
        }
    }

    #[test]
    fn churn_risk_needs_a_returning_patient() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let once = PatientAggregates::from_visits([(d("2025-01-01"), 100)]).unwrap();
        let twice =
            PatientAggregates::from_visits([(d("2025-01-01"), 100), (d("2025-02-01"), 100)])
                .unwrap();
        let p = |p_alive| PatientPrediction {
            p_alive,
            expected_visits: 0.1,
            clv: None,
        };
        assert!(!churn_risk(&once, Segment::AtRisk, Some(&p(0.1))));
        assert!(!churn_risk(&once, Segment::AtRisk, None));
        assert!(churn_risk(&twice, Segment::Champions, Some(&p(0.49))));
        assert!(!churn_risk(&twice, Segment::AtRisk, Some(&p(0.5))));
        assert!(churn_risk(&twice, Segment::Hibernating, None));
        assert!(!churn_risk(&twice, Segment::Lost, None));
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("P001"), "P001");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
