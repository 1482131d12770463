//! Programme settings and figures: the points liability (points and their
//! money value), members per tier month by month (from the tier history),
//! and points earned, redeemed, expired, adjusted and reversed per month.

use std::collections::{BTreeMap, HashMap};

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

/// Members per tier at the end of each month: each member's latest tier
/// change (the last recorded) on or before the month's last day; members
/// who joined later are not counted. One read of the history, swept
/// month by month.
pub async fn tiers_by_month(
    app: &App,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Vec<(String, Vec<(String, i64)>)>> {
    let months = months(app, from, to)?;
    let last_day = |m: NaiveDate| {
        m.checked_add_months(Months::new(1))
            .and_then(|d| d.pred_opt())
            .unwrap_or(m)
    };
    let Some(upto) = months.last().map(|m| last_day(*m)) else {
        return Ok(Vec::new());
    };
    let changes = store::tier_changes(&app.db, app.hospital_id, upto).await?;
    Ok(tiers_at_month_ends(&months, &changes, last_day))
}

/// The sweep of [`tiers_by_month`]: `changes` in day order.
fn tiers_at_month_ends(
    months: &[NaiveDate],
    changes: &[(i64, i64, NaiveDate, String)],
    last_day: impl Fn(NaiveDate) -> NaiveDate,
) -> Vec<(String, Vec<(String, i64)>)> {
    // member → (id of the change that holds, tier)
    let mut latest: HashMap<i64, (i64, &str)> = HashMap::new();
    let mut next = 0;
    let mut out = Vec::with_capacity(months.len());
    for m in months {
        let end = last_day(*m);
        while let Some((id, member, on, tier)) = changes.get(next) {
            if *on > end {
                break;
            }
            let e = latest.entry(*member).or_insert((*id, tier));
            if *id >= e.0 {
                *e = (*id, tier);
            }
            next += 1;
        }
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for (_, tier) in latest.values() {
            *counts.entry(tier).or_default() += 1;
        }
        out.push((
            m.format("%Y-%m").to_string(),
            counts.into_iter().map(|(t, n)| (t.to_owned(), n)).collect(),
        ));
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The latest change (by record) on or before each month's end holds,
    /// even when a later record carries an earlier day.
    #[test]
    fn month_ends_count_each_member_s_latest_change() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        let months = [d(2026, 1, 1), d(2026, 2, 1), d(2026, 3, 1)];
        let last = |m: NaiveDate| {
            m.checked_add_months(Months::new(1))
                .unwrap()
                .pred_opt()
                .unwrap()
        };
        let changes = vec![
            (1, 10, d(2026, 1, 5), "standard".to_string()),
            (2, 11, d(2026, 1, 20), "standard".to_string()),
            (4, 10, d(2026, 2, 3), "silver".to_string()),
            // recorded after the silver upgrade but dated before it
            (5, 10, d(2026, 2, 2), "gold".to_string()),
            (3, 12, d(2026, 3, 1), "gold".to_string()),
        ];
        let got = tiers_at_month_ends(&months, &changes, last);
        let want = |v: &[(&str, i64)]| {
            v.iter()
                .map(|(t, n)| (t.to_string(), *n))
                .collect::<Vec<_>>()
        };
        assert_eq!(got[0], ("2026-01".into(), want(&[("standard", 2)])));
        assert_eq!(
            got[1],
            ("2026-02".into(), want(&[("gold", 1), ("standard", 1)]))
        );
        assert_eq!(
            got[2],
            ("2026-03".into(), want(&[("gold", 2), ("standard", 1)]))
        );
    }
}
