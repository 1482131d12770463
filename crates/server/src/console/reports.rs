//! The membership reports sub-page: the points liability (points and
//! their value), members per tier at the end of each month (a chart and
//! its table) and points earned, redeemed, expired, reversed and
//! adjusted per month.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use rapport_app::loyalty::{reports, tiers};
use rapport_app::{App, AppError};
use serde::Deserialize;

use super::charts::{StackedMonth, stacked_months};
use super::membership::{PAGE, Tab, tabs, tier_label};
use super::{Layout, PageError, PageResult, Staff, html};

pub fn routes() -> Router<App> {
    Router::new().route("/membership/reports", get(reports_page))
}

pub struct TierMonthRow {
    pub month: String,
    pub counts: Vec<String>,
}

pub struct PointsMonthRow {
    pub month: String,
    pub earned: String,
    pub redeemed: String,
    pub expired: String,
    pub reversed: String,
    pub adjusted: String,
}

#[derive(Template)]
#[template(path = "console/membership_reports.html")]
pub struct ReportsPage {
    pub l: Layout,
    pub tabs: Vec<Tab>,
    pub from: String,
    pub to: String,
    pub errors: Vec<String>,
    pub liability_points: String,
    pub liability_value: String,
    pub liability_members: String,
    pub point_value: String,
    pub chart: String,
    pub tier_names: Vec<String>,
    pub tier_rows: Vec<TierMonthRow>,
    pub points_rows: Vec<PointsMonthRow>,
}

#[derive(Deserialize, Default)]
pub struct Months {
    from: Option<String>,
    to: Option<String>,
}

async fn reports_page(State(app): State<App>, staff: Staff, Query(q): Query<Months>) -> PageResult {
    let tr = staff.tr;
    let err = |e| PageError::from_app(&staff, e);
    let from = q.from.filter(|s| !s.trim().is_empty());
    let to = q.to.filter(|s| !s.trim().is_empty());
    let liability = reports::liability(&app).await.map_err(err)?;
    let all = tiers::list(&app).await.map_err(err)?;
    let mut errors = Vec::new();
    let (by_tier, by_points) = match tokio::join!(
        reports::tiers_by_month(&app, from.as_deref(), to.as_deref()),
        reports::points_by_month(&app, from.as_deref(), to.as_deref())
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(AppError::Validation(v)), _) | (_, Err(AppError::Validation(v))) => {
            errors =
                v.0.iter()
                    .map(|e| tr.t1("reports-error-months", "field", e.field.clone()))
                    .collect();
            (Vec::new(), Vec::new())
        }
        (Err(e), _) | (_, Err(e)) => return Err(err(e)),
    };
    let legend: Vec<(String, String)> = all
        .iter()
        .map(|t| {
            (
                tier_label(tr, &t.def.code, &t.name),
                format!("stack tier-{}", t.def.rank.min(5)),
            )
        })
        .collect();
    let count_of = |counts: &[(String, i64)], code: &str| {
        counts
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let stacked: Vec<StackedMonth> = by_tier
        .iter()
        .map(|(month, counts)| StackedMonth {
            month: month.clone(),
            parts: all
                .iter()
                .map(|t| count_of(counts, &t.def.code).max(0) as u64)
                .collect(),
        })
        .collect();
    let page = ReportsPage {
        l: Layout::for_staff(
            &staff,
            PAGE.id,
            tr.t("membership-tab-reports"),
            "/membership/reports",
        ),
        tabs: tabs(&staff, "reports"),
        from: from.unwrap_or_default(),
        to: to.unwrap_or_default(),
        errors,
        liability_points: tr.count("points-count", liability.points),
        liability_value: tr.money(liability.value_minor),
        liability_members: tr.num(liability.members),
        point_value: tr.money(liability.point_value_minor),
        chart: stacked_months(
            tr,
            "svg-tiers-months",
            &tr.t("reports-tiers-title"),
            &legend,
            &stacked,
        ),
        tier_names: legend.iter().map(|(n, _)| n.clone()).collect(),
        tier_rows: by_tier
            .iter()
            .map(|(month, counts)| TierMonthRow {
                month: tr.month(month, false),
                counts: all
                    .iter()
                    .map(|t| tr.num(count_of(counts, &t.def.code)))
                    .collect(),
            })
            .collect(),
        points_rows: by_points
            .iter()
            .map(|m| PointsMonthRow {
                month: tr.month(&m.month, false),
                earned: tr.num(m.earned),
                redeemed: tr.num(m.redeemed),
                expired: tr.num(m.expired),
                reversed: tr.num(m.reversed),
                adjusted: tr.num(m.adjusted),
            })
            .collect(),
    };
    Ok(html(StatusCode::OK, &page))
}
