//! The dashboard: KPI cards with their change against the prior period,
//! revenue and visits by month, segment sizes, the Pareto curve and
//! cohort retention, from `rapport_app::console`'s cached figures.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Router};
use rapport_analytics::Segment;
use rapport_app::App;
use rapport_app::console::{DashboardCache, DashboardFigures, Kpi, LoyaltyCache, PERIOD_DAYS};
use rapport_domain::auth::Permission;

use super::charts::{self, CohortLine, HBar, MonthBar};
use super::i18n::Tr;
use super::{Layout, Page, PageError, PageResult, Section, Staff, html};

pub const PAGE: Page = Page {
    id: "dashboard",
    path: "/dashboard",
    title: "nav-dashboard",
    permission: Some(Permission::AnalyticsRead),
    section: Section::Main,
    icon: "M3 13h8V3H3v10zm0 8h8v-6H3v6zm10 0h8V11h-8v10zm0-18v6h8V3h-8z",
    routes,
};

fn routes() -> Router<App> {
    Router::new().route("/dashboard", get(show))
}

/// A KPI card.
pub struct KpiCard {
    pub id: &'static str,
    pub label: String,
    pub value: String,
    /// The change as a signed percentage, or empty.
    pub change: String,
    /// `up`, `down` or `flat`.
    pub trend: &'static str,
    /// "vs 1,234 in the prior 30 days".
    pub prior: String,
}

/// A capability that will have a card once it exists.
pub struct PlannedCard {
    pub label: String,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
pub struct DashboardPage {
    pub l: Layout,
    pub as_of: String,
    pub computed_at: String,
    pub period: String,
    pub kpis: Vec<KpiCard>,
    pub planned: Vec<PlannedCard>,
    pub months_chart: String,
    pub segments_chart: String,
    pub pareto_chart: String,
    pub cohorts_chart: String,
    pub top20: String,
    pub gini: String,
    pub empty: bool,
    /// Members per tier (empty for roles without `members:read`).
    pub members_chart: String,
    pub liability: String,
    pub members_total: String,
}

fn change(tr: Tr, cur: f64, prev: f64) -> (String, &'static str) {
    if prev == 0.0 {
        return (String::new(), "flat");
    }
    let c = (cur - prev) / prev;
    let trend = if c > 0.0005 {
        "up"
    } else if c < -0.0005 {
        "down"
    } else {
        "flat"
    };
    let sign = if c > 0.0 { "+" } else { "" };
    (format!("{sign}{}", tr.pct(c, 1)), trend)
}

fn card<T: Copy>(
    tr: Tr,
    id: &'static str,
    label_key: &str,
    k: Kpi<T>,
    as_f64: impl Fn(T) -> f64,
    fmt: impl Fn(T) -> String,
) -> KpiCard {
    let (change, trend) = change(tr, as_f64(k.current), as_f64(k.previous));
    KpiCard {
        id,
        label: tr.t(label_key),
        value: fmt(k.current),
        change,
        trend,
        prior: tr.t1("kpi-prior", "value", fmt(k.previous)),
    }
}

/// Months shown in the revenue chart.
const CHART_MONTHS: usize = 24;
/// Cohorts shown in the heatmap.
const HEATMAP_COHORTS: usize = 12;

pub fn view(staff: &Staff, f: &DashboardFigures) -> DashboardPage {
    let tr = staff.tr;
    let rate = |r: Option<f64>| r.unwrap_or(0.0);
    let kpis = vec![
        card(
            tr,
            "patients",
            "kpi-patients",
            f.patients,
            |v| v as f64,
            |v| tr.num(v as i64),
        ),
        card(
            tr,
            "visits",
            "kpi-visits",
            f.visits,
            |v| v as f64,
            |v| tr.num(v),
        ),
        card(
            tr,
            "revenue",
            "kpi-revenue",
            f.revenue,
            |v| v as f64,
            |v| tr.money_short(v),
        ),
        card(
            tr,
            "new-patients",
            "kpi-new-patients",
            f.new_patients,
            |v| v as f64,
            |v| tr.num(v as i64),
        ),
        card(
            tr,
            "return-rate",
            "kpi-return-rate",
            Kpi {
                current: rate(f.return_rate.current),
                previous: rate(f.return_rate.previous),
            },
            |v| v,
            |v| tr.pct(v, 1),
        ),
    ];
    let planned = [
        "kpi-nps",
        "kpi-complaints",
        "kpi-follow-ups",
        "kpi-new-members",
    ]
    .iter()
    .map(|k| PlannedCard { label: tr.t(k) })
    .collect();
    let skip = f.months.len().saturating_sub(CHART_MONTHS);
    let months: Vec<MonthBar> = f.months[skip..]
        .iter()
        .map(|m| MonthBar {
            month: m.month.clone(),
            revenue_minor: m.revenue,
            visits: m.visits,
        })
        .collect();
    let total = f.analysis.active_patients.max(1) as f64;
    let segments: Vec<HBar> = Segment::ALL
        .iter()
        .map(|s| {
            let n = f.analysis.segments.get(*s);
            HBar {
                label: tr.t(&format!("segment-{}", s.as_str().replace('_', "-"))),
                value: n,
                class: format!("seg-{}", s.as_str().replace('_', "-")),
                note: format!(
                    "{} · {}",
                    tr.pct(n as f64 / total, 1),
                    tr.money_short(f.segment_revenue[s.index()])
                ),
            }
        })
        .collect();
    let skip = f.analysis.cohorts.len().saturating_sub(HEATMAP_COHORTS);
    let cohorts: Vec<CohortLine> = f.analysis.cohorts[skip..]
        .iter()
        .map(|c| CohortLine {
            cohort: c.cohort.clone(),
            size: c.size,
            retention: c.retention.clone(),
        })
        .collect();
    let l = Layout::for_staff(staff, PAGE.id, tr.t(PAGE.title), PAGE.path);
    DashboardPage {
        as_of: tr.date(f.as_of),
        computed_at: tr.datetime(f.computed_at),
        period: tr.count("kpi-period", PERIOD_DAYS),
        kpis,
        planned,
        months_chart: charts::months(tr, "svg-months", &tr.t("chart-months-title"), &months),
        segments_chart: charts::hbars(tr, "svg-segments", &tr.t("chart-segments-title"), &segments),
        pareto_chart: charts::pareto(
            tr,
            "svg-pareto",
            &tr.t("chart-pareto-title"),
            &f.pareto,
            f.analysis.top20_share,
        ),
        cohorts_chart: charts::cohorts(tr, "svg-cohorts", &tr.t("chart-cohorts-title"), &cohorts),
        top20: tr.pct(f.analysis.top20_share, 1),
        gini: tr.dec(f.analysis.gini, 2),
        empty: f.analysis.active_patients == 0,
        members_chart: String::new(),
        liability: String::new(),
        members_total: String::new(),
        l,
    }
}

async fn show(
    State(app): State<App>,
    Extension(cache): Extension<DashboardCache>,
    Extension(loyalty): Extension<LoyaltyCache>,
    staff: Staff,
) -> PageResult {
    let f = cache
        .figures(&app)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    let mut page = view(&staff, &f);
    if staff.may(Permission::MembersRead) {
        let tr = staff.tr;
        let err = |e| PageError::from_app(&staff, e);
        let (m, tiers) = tokio::join!(
            loyalty.figures(&app),
            rapport_app::loyalty::tiers::list(&app)
        );
        let (m, tiers) = (m.map_err(err)?, tiers.map_err(err)?);
        let total: i64 = m.per_tier.iter().map(|(_, n)| *n).sum();
        let bars: Vec<HBar> = tiers
            .iter()
            .map(|t| {
                let n = m
                    .per_tier
                    .iter()
                    .find(|(c, _)| *c == t.def.code)
                    .map(|(_, n)| *n)
                    .unwrap_or(0);
                HBar {
                    label: super::membership::tier_label(tr, &t.def.code, &t.name),
                    value: n.max(0) as u64,
                    class: format!("tier-bar tier-{}", t.def.rank.min(5)),
                    note: if total > 0 {
                        tr.pct(n as f64 / total as f64, 1)
                    } else {
                        String::new()
                    },
                }
            })
            .collect();
        page.members_chart = charts::hbars(tr, "svg-tiers", &tr.t("chart-tiers-title"), &bars);
        page.liability = tr.count("points-count", m.liability);
        page.members_total = tr.count("members-count", total);
    }
    Ok(html(StatusCode::OK, &page))
}
