//! Programme settings and figures: the points liability (points and their
//! money value), members per tier month by month (from the tier history),
//! and points earned, redeemed, expired, adjusted and reversed per month.

use chrono::{Datelike, Months, NaiveDate, TimeZone, Utc};
use rapport_domain::ValidationErrors;
use rapport_store::loyalty::reports as store;
use rapport_store::loyalty::rules::{self as rules_store, Settings};

use crate::audit::{self, Actor};
use crate::{App, Result};

pub async fn settings(app: &App) -> Result<Settings> {
    Ok(rules_store::settings(&app.db, app.hospital_id).await?)
}

/// Replaces the programme settings.
pub async fn set_settings(app: &App, actor: &Actor, s: Settings) -> Result<Settings> {
    let mut errs = ValidationErrors::default();
    if !(1..=120).contains(&s.points_valid_months) {
        errs.push("points_valid_months", "out_of_range", "1 to 120 months");
    }
    if !(0..=super::points::MAX_POINTS).contains(&s.referral_reward_points) {
        errs.push(
            "referral_reward_points",
            "out_of_range",
            "0 to 100,000,000 points",
        );
    }
    if !(0..=1_000_000).contains(&s.point_value_minor) {
        errs.push(
            "point_value_minor",
            "out_of_range",
            "0 to 1,000,000 minor units",
        );
    }
    if !errs.is_empty() {
        return Err(errs.into());
    }
    let mut tx = app.db.begin().await?;
    rapport_store::loyalty::lock_program(&mut tx, app.hospital_id).await?;
    rules_store::set_settings(&mut tx, app.hospital_id, &s, app.now()).await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "loyalty.program",
        None,
        Some(
            serde_json::json!({"points_valid_months": s.points_valid_months,
                "referral_reward_points": s.referral_reward_points, "point_value_minor": s.point_value_minor})
            .to_string(),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(s)
}

/// The points liability now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liability {
    pub members: i64,
    pub points: i64,
    pub point_value_minor: i64,
    /// `points × point_value_minor`.
    pub value_minor: i64,
}

pub async fn liability(app: &App) -> Result<Liability> {
    let (members, points) = store::liability(&app.db, app.hospital_id).await?;
    let s = settings(app).await?;
    Ok(Liability {
        members,
        points,
        point_value_minor: s.point_value_minor,
        value_minor: points.saturating_mul(s.point_value_minor),
    })
}

/// Most months one report covers.
pub const MAX_MONTHS: usize = 60;

/// Parses `YYYY-MM` bounds (default: the 12 months up to this one) into
/// the first day of each month, oldest first.
pub fn months(app: &App, from: Option<&str>, to: Option<&str>) -> Result<Vec<NaiveDate>> {
    let parse = |field: &str, s: &str| -> Result<NaiveDate> {
        NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").map_err(|_| {
            ValidationErrors::single(field, "invalid_month", "must be a month: YYYY-MM").into()
        })
    };
    let today = app.today();
    let this = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today);
    let to = match to {
        Some(s) => parse("to", s)?,
        None => this,
    };
    let from = match from {
        Some(s) => parse("from", s)?,
        None => to.checked_sub_months(Months::new(11)).unwrap_or(to),
    };
    if from > to {
        return Err(
            ValidationErrors::single("from", "invalid_range", "must not be after to").into(),
        );
    }
    let mut out = Vec::new();
    let mut m = from;
    while m <= to {
        if out.len() == MAX_MONTHS {
            return Err(ValidationErrors::single(
                "from",
                "invalid_range",
                format!("at most {MAX_MONTHS} months"),
            )
            .into());
        }
        out.push(m);
        m = m
            .checked_add_months(Months::new(1))
            .unwrap_or(NaiveDate::MAX);
    }
    Ok(out)
}

/// Members per tier at the end of each month.
pub async fn tiers_by_month(
    app: &App,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Vec<(String, Vec<(String, i64)>)>> {
    let mut out = Vec::new();
    for m in months(app, from, to)? {
        let last = m
            .checked_add_months(Months::new(1))
            .and_then(|d| d.pred_opt())
            .unwrap_or(m);
        let counts = store::tiers_on(&app.db, app.hospital_id, last).await?;
        out.push((m.format("%Y-%m").to_string(), counts));
    }
    Ok(out)
}

/// Points moved in a month, per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthPoints {
    pub month: String,
    pub earned: i64,
    pub redeemed: i64,
    pub expired: i64,
    pub reversed: i64,
    /// Positive minus negative adjustments.
    pub adjusted: i64,
    pub entries: i64,
}

pub async fn points_by_month(
    app: &App,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Vec<MonthPoints>> {
    let months = months(app, from, to)?;
    let (Some(first), Some(last)) = (months.first(), months.last()) else {
        return Ok(Vec::new());
    };
    // Hospital months (UTC+8) as instants.
    let start = |d: NaiveDate| {
        Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
            - chrono::Duration::hours(8)
    };
    let end = last.checked_add_months(Months::new(1)).unwrap_or(*last);
    let rows = store::points_by_month(&app.db, app.hospital_id, start(*first), start(end)).await?;
    let mut out: Vec<MonthPoints> = months
        .iter()
        .map(|m| MonthPoints {
            month: m.format("%Y-%m").to_string(),
            ..Default::default()
        })
        .collect();
    for (month, kind, points, delta, entries) in rows {
        let Some(m) = out.iter_mut().find(|x| x.month == month) else {
            continue;
        };
        m.entries += entries;
        match kind.as_str() {
            "earn" => m.earned += points,
            "redeem" => m.redeemed += points,
            "expire" => m.expired += points,
            "reverse" => m.reversed += points,
            _ => m.adjusted += delta,
        }
    }
    Ok(out)
}
