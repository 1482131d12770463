//! Use cases of the staff console that the API does not have: a user's
//! language, the sortable patient list, and the dashboard's figures with
//! their change against the prior period, cached per day.
//!
//! **Dashboard cache.** The figures take about a second over a million
//! patients (one pass over the aggregates, one over the visits), so they
//! are computed once per as-of day and kept: a request gets the kept
//! figures at once; when they are older than [`DASHBOARD_FRESH`] the
//! request that notices starts a recomputation in the background and
//! still answers with the kept ones. Only the first request of a day (or
//! after a restart) waits, and concurrent first requests share one
//! computation.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate, TimeDelta};
use rapport_analytics::concentration::{CurvePoint, pareto_curve};
use rapport_analytics::{Analysis, analyze_with_scores};
use rapport_store::console::{self as store};
pub use rapport_store::console::{ListQuery, ListRow, ListSort, WindowTotals};

use crate::analytics::MonthTotal;
use crate::{App, AppError, Result};

/// The languages the console speaks, as stored.
pub const LOCALES: [&str; 3] = ["zh-CN", "en", "es"];

/// The language a user chose, if any.
pub async fn locale(app: &App, user_id: i64) -> Result<Option<String>> {
    Ok(store::locale(&app.db, user_id)
        .await?
        .filter(|l| LOCALES.contains(&l.as_str())))
}

/// Stores a user's language; `None` follows the browser again.
pub async fn set_locale(app: &App, user_id: i64, locale: Option<&str>) -> Result<()> {
    if let Some(l) = locale
        && !LOCALES.contains(&l)
    {
        return Err(rapport_domain::ValidationErrors::single(
            "locale",
            "invalid_enum",
            "must be one of zh-CN, en, es",
        )
        .into());
    }
    let mut tx = app.db.begin().await?;
    if !store::set_locale(&mut tx, user_id, locale).await? {
        return Err(AppError::NotFound("user"));
    }
    tx.commit().await?;
    Ok(())
}

/// Largest page of the patient list.
pub const LIST_MAX: i64 = 100;

/// A page of the patient list and whether another follows.
pub async fn patient_list(app: &App, mut q: ListQuery) -> Result<(Vec<ListRow>, bool)> {
    q.hospital_id = app.hospital_id;
    q.limit = q.limit.clamp(1, LIST_MAX);
    let want = q.limit as usize;
    q.limit += 1;
    let mut rows = store::list(&app.db, &q).await?;
    let more = rows.len() > want;
    rows.truncate(want);
    Ok((rows, more))
}

/// Patients found by the search box: exact hospital id or phone, then
/// the start of the name; at most `limit`, and whether there may be more.
pub async fn search(app: &App, text: &str, limit: i64) -> Result<(Vec<ListRow>, bool)> {
    let text = text.trim();
    let limit = limit.clamp(1, LIST_MAX);
    let phone = rapport_domain::patient::normalize_phone(text);
    let mut rows =
        store::search(&app.db, app.hospital_id, text, phone.as_deref(), limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// Length of the KPI periods, in days.
pub const PERIOD_DAYS: i64 = 30;

/// A figure now and in the prior period.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Kpi<T> {
    pub current: T,
    pub previous: T,
}

/// Everything the dashboard draws.
#[derive(Debug, Clone)]
pub struct DashboardFigures {
    pub as_of: NaiveDate,
    /// When these figures were computed.
    pub computed_at: chrono::DateTime<chrono::Utc>,
    /// Patients with a visit on or before the end of each period.
    pub patients: Kpi<u64>,
    /// Patients whose first visit falls in each period.
    pub new_patients: Kpi<u64>,
    pub visits: Kpi<i64>,
    /// Minor units.
    pub revenue: Kpi<i64>,
    /// Of the patients seen in each period, the share who had come before
    /// it; `None` when nobody came.
    pub return_rate: Kpi<Option<f64>>,
    pub analysis: Analysis,
    /// Visits and revenue per month, oldest first.
    pub months: Vec<MonthTotal>,
    /// Revenue (minor units) per segment, in `Segment::ALL` order.
    pub segment_revenue: [i128; 9],
    /// The Pareto curve (share of revenue of the top patients).
    pub pareto: Vec<CurvePoint>,
}

/// Points of the dashboard's Pareto curve.
pub const PARETO_POINTS: usize = 50;

/// Computes the dashboard figures as of `as_of`.
pub async fn compute_dashboard(app: &App, as_of: NaiveDate) -> Result<DashboardFigures> {
    let middle = as_of - TimeDelta::days(PERIOD_DAYS);
    let start = middle - TimeDelta::days(PERIOD_DAYS);
    let (table, months, windows) = tokio::join!(
        crate::analytics::patients(app, as_of, false),
        rapport_store::analytics::visits_by_month(&app.db, app.hospital_id, as_of),
        store::window_totals(&app.db, app.hospital_id, start, middle, as_of),
    );
    let (table, months, (prev, cur)) = (table?, months?, windows?);
    let computed_at = app.now();
    let figures = tokio::task::spawn_blocking(move || {
        let aggs = &table.aggregates;
        let (analysis, rfm) = analyze_with_scores(aggs, as_of);
        let mut revenue = [0i128; 9];
        let (mut patients_prev, mut new_cur, mut new_prev) = (0u64, 0u64, 0u64);
        for (a, s) in aggs.iter().zip(&rfm) {
            revenue[s.segment.index()] += i128::from(a.monetary);
            if a.first_visit <= middle {
                patients_prev += 1;
            }
            if a.first_visit > middle {
                new_cur += 1;
            } else if a.first_visit > start {
                new_prev += 1;
            }
        }
        let monetary: Vec<i64> = aggs.iter().map(|a| a.monetary).collect();
        let pareto = pareto_curve(&monetary, PARETO_POINTS);
        let rate =
            |w: &WindowTotals| (w.patients > 0).then(|| w.returning as f64 / w.patients as f64);
        DashboardFigures {
            as_of,
            computed_at,
            patients: Kpi {
                current: analysis.active_patients,
                previous: patients_prev,
            },
            new_patients: Kpi {
                current: new_cur,
                previous: new_prev,
            },
            visits: Kpi {
                current: cur.visits,
                previous: prev.visits,
            },
            revenue: Kpi {
                current: cur.revenue,
                previous: prev.revenue,
            },
            return_rate: Kpi {
                current: rate(&cur),
                previous: rate(&prev),
            },
            analysis,
            months,
            segment_revenue: revenue,
            pareto,
        }
    })
    .await
    .map_err(|e| AppError::Internal(format!("dashboard computation failed: {e}")))?;
    Ok(figures)
}

/// How long kept figures are served without starting a recomputation.
pub const DASHBOARD_FRESH: Duration = Duration::from_secs(600);

struct Kept {
    figures: Arc<DashboardFigures>,
    at: Instant,
}

/// The dashboard figures kept per as-of day (see the module's
/// documentation). Cheap to clone; clones share the figures.
#[derive(Clone, Default)]
pub struct DashboardCache {
    kept: Arc<Mutex<Option<Kept>>>,
    /// Held while computing, so that concurrent requests share one run.
    computing: Arc<tokio::sync::Mutex<()>>,
}

impl DashboardCache {
    fn get(&self, as_of: NaiveDate) -> Option<(Arc<DashboardFigures>, bool)> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.as_ref()
            .filter(|k| k.figures.as_of == as_of)
            .map(|k| (k.figures.clone(), k.at.elapsed() < DASHBOARD_FRESH))
    }

    fn put(&self, figures: Arc<DashboardFigures>) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        *kept = Some(Kept {
            figures,
            at: Instant::now(),
        });
    }

    /// Forgets the kept figures (the next request recomputes).
    pub fn clear(&self) {
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn compute(&self, app: &App, as_of: NaiveDate) -> Result<Arc<DashboardFigures>> {
        let _running = self.computing.lock().await;
        if let Some((f, true)) = self.get(as_of) {
            return Ok(f);
        }
        let started = Instant::now();
        let f = Arc::new(compute_dashboard(app, as_of).await?);
        tracing::info!(
            %as_of,
            patients = f.analysis.active_patients,
            ms = started.elapsed().as_millis() as u64,
            "dashboard figures computed"
        );
        self.put(f.clone());
        Ok(f)
    }

    /// The figures as of today: kept ones when there are, else computed.
    pub async fn figures(&self, app: &App) -> Result<Arc<DashboardFigures>> {
        let as_of = app.today();
        match self.get(as_of) {
            Some((f, true)) => Ok(f),
            Some((f, false)) => {
                if let Ok(guard) = self.computing.clone().try_lock_owned() {
                    let (cache, app) = (self.clone(), app.clone());
                    tokio::spawn(async move {
                        drop(guard);
                        if let Err(e) = cache.compute(&app, as_of).await {
                            tracing::warn!(error = %e, "dashboard recomputation failed");
                        }
                    });
                }
                Ok(f)
            }
            None => self.compute(app, as_of).await,
        }
    }
}

/// The first day of the month `months` before the month of `d`.
pub fn months_back(d: NaiveDate, months: u32) -> NaiveDate {
    let m0 = d.year() * 12 + d.month0() as i32 - months as i32;
    NaiveDate::from_ymd_opt(m0.div_euclid(12), m0.rem_euclid(12) as u32 + 1, 1).unwrap_or(d)
}

/// List rows of a few patients by platform id (members, duplicate pairs),
/// in the order of `ids`; unknown ids are left out.
pub async fn patient_rows(app: &App, ids: &[i64]) -> Result<Vec<ListRow>> {
    let mut rows = store::rows_by_ids(&app.db, app.hospital_id, ids).await?;
    rows.sort_by_key(|r| ids.iter().position(|i| *i == r.id).unwrap_or(usize::MAX));
    Ok(rows)
}

pub use rapport_store::loyalty::Member;

/// Members found by the membership list's search box: the card number
/// exactly (its check digit must match), else the members among the
/// patients the patient search finds.
pub async fn find_members(app: &App, text: &str, limit: i64) -> Result<Vec<Member>> {
    let text = text.trim();
    let digits = text.replace([' ', '-'], "");
    if digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let id: i64 = digits[2..11].parse().unwrap_or(0);
        if rapport_store::loyalty::card_number(app.hospital_id, id) == digits
            && let Ok(v) = crate::loyalty::get(app, id).await
        {
            return Ok(vec![v.member]);
        }
    }
    let (patients, _) = search(app, text, limit).await?;
    let mut out = Vec::new();
    for p in patients {
        if let Some(v) = crate::loyalty::of_patient(app, p.id).await? {
            out.push(v.member);
        }
    }
    Ok(out)
}

/// The membership figures of the dashboard and the tiers page.
#[derive(Debug, Clone, Default)]
pub struct LoyaltyFigures {
    /// Members per tier code.
    pub per_tier: Vec<(String, i64)>,
    /// Spendable points of every member (the points liability).
    pub liability: i64,
    pub computed_at: chrono::DateTime<chrono::Utc>,
}

/// How long the membership figures are kept: they read every member's
/// row (members per tier through the tier index, the balances for the
/// liability), so pages do not pay that on every render.
pub const LOYALTY_FRESH: Duration = Duration::from_secs(60);

/// Figures and when they were computed.
type KeptLoyalty = Option<(Arc<LoyaltyFigures>, Instant)>;

/// The membership figures, kept for [`LOYALTY_FRESH`]. Cheap to clone.
#[derive(Clone, Default)]
pub struct LoyaltyCache {
    kept: Arc<Mutex<KeptLoyalty>>,
}

impl LoyaltyCache {
    /// Kept figures when fresh, else computed now.
    pub async fn figures(&self, app: &App) -> Result<Arc<LoyaltyFigures>> {
        if let Some((f, at)) = self.kept.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            && at.elapsed() < LOYALTY_FRESH
        {
            return Ok(f.clone());
        }
        let (per_tier, liability) = tokio::join!(
            rapport_store::loyalty::count_by_tier(&app.db, app.hospital_id),
            rapport_store::loyalty::ledger::liability(&app.db, app.hospital_id),
        );
        let f = Arc::new(LoyaltyFigures {
            per_tier: per_tier?,
            liability: liability?,
            computed_at: app.now(),
        });
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some((f.clone(), Instant::now()));
        Ok(f)
    }

    /// Forgets the kept figures (after a change the reader should see).
    pub fn clear(&self) {
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
