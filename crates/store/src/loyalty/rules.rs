//! Earning rules and campaigns as stored, the earns that visits gave (with
//! their explanation and the campaigns' shares, which a campaign's
//! per-member cap counts), and the programme settings they need.
//!
//! The ledger entry itself is written by `ledger::write`; the rows here are
//! written in the same transaction and say *why* the entry exists.

use chrono::{DateTime, Utc};
use rapport_domain::loyalty::FeeCategory;
use rapport_domain::loyalty::earning::{Campaign, CampaignEffect, EarnRule};

use crate::query::FromAnyRow;
use crate::{AnyRow, Db, Engine, Result, StoreError, Tx, on_read, on_tx};

/// An SQL condition `column IN (the ids of a JSON array bound at $n)`, the
/// same binding (JSON text) on both engines.
pub(crate) fn in_json_ids(tx: &Tx, column: &str, n: usize) -> String {
    if tx.engine() == Engine::Sqlite {
        format!("{column} IN (SELECT value FROM json_each(${n}))")
    } else {
        format!(
            "{column} IN (SELECT CAST(value AS BIGINT) FROM jsonb_array_elements_text(CAST(${n} AS jsonb)))"
        )
    }
}

fn category(r: &impl AnyRow, col: &str) -> Result<Option<FeeCategory>> {
    match r.col::<Option<String>>(col)? {
        None => Ok(None),
        Some(s) => FeeCategory::from_code(&s)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("fee category {s:?}"))),
    }
}

const RULE_SQL: &str = "SELECT code, category, member_type, tier, priority, points_per_unit \
     FROM loyalty_earn_rules WHERE hospital_id = $1 ORDER BY code";

impl FromAnyRow for EarnRule {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        rule_from_row(r)
    }
}

fn rule_from_row(r: &impl AnyRow) -> Result<EarnRule> {
    Ok(EarnRule {
        code: r.col("code")?,
        category: category(r, "category")?,
        member_type: r.col("member_type")?,
        tier: r.col("tier")?,
        priority: r.col("priority")?,
        points_per_unit: u32::try_from(r.col::<i64>("points_per_unit")?)
            .map_err(|_| StoreError::Corrupt("points per unit out of range".into()))?,
    })
}

/// The hospital's base earning rules, by code.
pub async fn rules(db: &Db, hospital_id: i64) -> Result<Vec<EarnRule>> {
    on_read!(db, p => {
        let rows = sqlx::query(RULE_SQL).bind(hospital_id).fetch_all(p).await?;
        rows.iter().map(rule_from_row).collect()
    })
}

pub async fn rules_tx(tx: &mut Tx, hospital_id: i64) -> Result<Vec<EarnRule>> {
    tx.fetch(RULE_SQL, &[hospital_id.into()]).await
}

/// Inserts or replaces a rule (after the set was validated as a whole).
pub async fn upsert_rule(
    tx: &mut Tx,
    hospital_id: i64,
    r: &EarnRule,
    now: DateTime<Utc>,
) -> Result<()> {
    let sql = "INSERT INTO loyalty_earn_rules (hospital_id, code, category, member_type, tier, priority, \
               points_per_unit, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
               ON CONFLICT (hospital_id, code) DO UPDATE SET category = excluded.category, \
               member_type = excluded.member_type, tier = excluded.tier, priority = excluded.priority, \
               points_per_unit = excluded.points_per_unit, updated_at = excluded.updated_at";
    on_tx!(tx, c => sqlx::query(sql)
        .bind(hospital_id)
        .bind(&r.code)
        .bind(r.category.map(FeeCategory::as_str))
        .bind(r.member_type.as_deref())
        .bind(r.tier.as_deref())
        .bind(r.priority)
        .bind(i64::from(r.points_per_unit))
        .bind(now)
        .execute(&mut *c)
        .await.map(|_| ()))?;
    Ok(())
}

/// Deletes a rule; `false` when there was none.
pub async fn delete_rule(tx: &mut Tx, hospital_id: i64, code: &str) -> Result<bool> {
    let r = on_tx!(tx, c => sqlx::query("DELETE FROM loyalty_earn_rules WHERE hospital_id = $1 AND code = $2")
        .bind(hospital_id).bind(code).execute(&mut *c).await?.rows_affected());
    Ok(r > 0)
}

/// A campaign with its display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRow {
    pub name: String,
    pub campaign: Campaign,
}

const CAMPAIGN_SQL: &str = "SELECT code, name, priority, starts_at, ends_at, department, category, member_type, \
     tier, effect, effect_value, exclusive, cap_per_member FROM loyalty_campaigns WHERE hospital_id = $1 \
     ORDER BY priority DESC";

impl FromAnyRow for CampaignRow {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        campaign_from_row(r)
    }
}

fn campaign_from_row(r: &impl AnyRow) -> Result<CampaignRow> {
    let effect: String = r.col("effect")?;
    let value: i64 = r.col("effect_value")?;
    let effect = match effect.as_str() {
        "multiply_percent" => CampaignEffect::MultiplyPercent(
            u32::try_from(value).map_err(|_| StoreError::Corrupt("multiplier".into()))?,
        ),
        "add_per_line" => CampaignEffect::AddPerLine(value),
        other => return Err(StoreError::Corrupt(format!("campaign effect {other:?}"))),
    };
    Ok(CampaignRow {
        name: r.col("name")?,
        campaign: Campaign {
            code: r.col("code")?,
            priority: u32::try_from(r.col::<i64>("priority")?)
                .map_err(|_| StoreError::Corrupt("campaign priority".into()))?,
            starts_at: r.col("starts_at")?,
            ends_at: r.col("ends_at")?,
            department: r.col("department")?,
            category: category(r, "category")?,
            member_type: r.col("member_type")?,
            tier: r.col("tier")?,
            effect,
            exclusive: r.col("exclusive")?,
            cap_per_member: r.col("cap_per_member")?,
        },
    })
}

/// The hospital's campaigns, highest priority first.
pub async fn campaigns(db: &Db, hospital_id: i64) -> Result<Vec<CampaignRow>> {
    on_read!(db, p => {
        let rows = sqlx::query(CAMPAIGN_SQL).bind(hospital_id).fetch_all(p).await?;
        rows.iter().map(campaign_from_row).collect()
    })
}

pub async fn campaigns_tx(tx: &mut Tx, hospital_id: i64) -> Result<Vec<CampaignRow>> {
    tx.fetch(CAMPAIGN_SQL, &[hospital_id.into()]).await
}

/// Inserts or replaces a campaign (after the set was validated).
pub async fn upsert_campaign(
    tx: &mut Tx,
    hospital_id: i64,
    row: &CampaignRow,
    now: DateTime<Utc>,
) -> Result<()> {
    let c = &row.campaign;
    let (effect, value) = match c.effect {
        CampaignEffect::MultiplyPercent(p) => ("multiply_percent", i64::from(p)),
        CampaignEffect::AddPerLine(n) => ("add_per_line", n),
    };
    // The old row goes first: priorities are unique, and a campaign may
    // take a priority another one gives up in the same change.
    let sql = "INSERT INTO loyalty_campaigns (hospital_id, code, name, priority, starts_at, ends_at, department, \
               category, member_type, tier, effect, effect_value, exclusive, cap_per_member, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
    on_tx!(tx, k => {
        sqlx::query("DELETE FROM loyalty_campaigns WHERE hospital_id = $1 AND code = $2")
            .bind(hospital_id).bind(&c.code).execute(&mut *k).await?;
        sqlx::query(sql)
            .bind(hospital_id)
            .bind(&c.code)
            .bind(&row.name)
            .bind(i64::from(c.priority))
            .bind(c.starts_at)
            .bind(c.ends_at)
            .bind(c.department.as_deref())
            .bind(c.category.map(FeeCategory::as_str))
            .bind(c.member_type.as_deref())
            .bind(c.tier.as_deref())
            .bind(effect)
            .bind(value)
            .bind(c.exclusive)
            .bind(c.cap_per_member)
            .bind(now)
            .execute(&mut *k)
            .await?;
    });
    Ok(())
}

pub async fn delete_campaign(tx: &mut Tx, hospital_id: i64, code: &str) -> Result<bool> {
    let r = on_tx!(tx, c => sqlx::query("DELETE FROM loyalty_campaigns WHERE hospital_id = $1 AND code = $2")
        .bind(hospital_id).bind(code).execute(&mut *c).await?.rows_affected());
    Ok(r > 0)
}

/// The programme's settings beyond tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub points_valid_months: i32,
    pub referral_reward_points: i64,
    pub point_value_minor: i64,
}

const SETTINGS_SQL: &str = "SELECT points_valid_months, referral_reward_points, point_value_minor \
     FROM loyalty_programs WHERE hospital_id = $1";

impl FromAnyRow for Settings {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        settings_from_row(r)
    }
}

fn settings_from_row(r: &impl AnyRow) -> Result<Settings> {
    Ok(Settings {
        points_valid_months: r.col("points_valid_months")?,
        referral_reward_points: r.col("referral_reward_points")?,
        point_value_minor: r.col("point_value_minor")?,
    })
}

pub async fn settings(db: &Db, hospital_id: i64) -> Result<Settings> {
    on_read!(db, p => match sqlx::query(SETTINGS_SQL).bind(hospital_id).fetch_optional(p).await? {
        Some(r) => settings_from_row(&r),
        None => Err(StoreError::NotFound("loyalty programme")),
    })
}

pub async fn settings_tx(tx: &mut Tx, hospital_id: i64) -> Result<Settings> {
    tx.fetch_opt(SETTINGS_SQL, &[hospital_id.into()])
        .await?
        .ok_or(StoreError::NotFound("loyalty programme"))
}

/// Writes the settings (after `lock_program`).
pub async fn set_settings(
    tx: &mut Tx,
    hospital_id: i64,
    s: &Settings,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE loyalty_programs SET points_valid_months = $2, referral_reward_points = $3, \
                                point_value_minor = $4, updated_at = $5 WHERE hospital_id = $1")
        .bind(hospital_id).bind(s.points_valid_months).bind(s.referral_reward_points)
        .bind(s.point_value_minor).bind(now).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

/// A member as earning needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberBrief {
    pub id: i64,
    pub patient_key: i64,
    pub member_type: String,
    pub tier: String,
    pub status: String,
}

impl FromAnyRow for MemberBrief {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        Ok(MemberBrief {
            id: r.col("id")?,
            patient_key: r.col("patient_key")?,
            member_type: r.col("member_type")?,
            tier: r.col("tier")?,
            status: r.col("status")?,
        })
    }
}

/// The members among the patients `keys` (one statement for a chunk).
pub async fn members_of_patients(
    tx: &mut Tx,
    hospital_id: i64,
    keys: &[i64],
) -> Result<Vec<MemberBrief>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, patient_key, member_type, tier, status FROM loyalty_members \
         WHERE hospital_id = $1 AND {}",
        in_json_ids(tx, "patient_key", 2)
    );
    let list = serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
    tx.fetch(&sql, &[hospital_id.into(), list.into()]).await
}

/// Whether the hospital has any member or any referral: if not, no
/// visit can earn points or settle a referral.
pub async fn in_use(tx: &mut Tx, hospital_id: i64) -> Result<bool> {
    let used: crate::query::Flag = tx
        .fetch_one(
            "SELECT (EXISTS (SELECT 1 FROM loyalty_members WHERE hospital_id = $1) \
             OR EXISTS (SELECT 1 FROM loyalty_referrals WHERE hospital_id = $1)) AS flag",
            &[hospital_id.into()],
        )
        .await?;
    Ok(used.0)
}

const CAMPAIGN_AWARDED_SQL: &str = "SELECT c.campaign, CAST(SUM(c.points) AS BIGINT) AS points \
     FROM loyalty_earn_campaigns c JOIN loyalty_visit_earns e ON e.member_id = c.member_id AND e.seq = c.seq \
     WHERE c.member_id = $1 AND e.reversed_seq IS NULL GROUP BY c.campaign ORDER BY c.campaign";

/// A campaign and the points it gave.
struct CampaignPoints(String, i64);

impl FromAnyRow for CampaignPoints {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        Ok(CampaignPoints(r.col("campaign")?, r.col("points")?))
    }
}

/// Extra points each campaign has given a member in earns not reversed.
pub async fn campaign_awarded(tx: &mut Tx, member_id: i64) -> Result<Vec<(String, i64)>> {
    let rows: Vec<CampaignPoints> = tx.fetch(CAMPAIGN_AWARDED_SQL, &[member_id.into()]).await?;
    Ok(rows.into_iter().map(|r| (r.0, r.1)).collect())
}

/// [`campaign_awarded`] outside a transaction (quotes).
pub async fn campaign_awarded_db(db: &Db, member_id: i64) -> Result<Vec<(String, i64)>> {
    Ok(on_read!(db, p => sqlx::query_as(CAMPAIGN_AWARDED_SQL)
        .bind(member_id).fetch_all(p).await?))
}

/// An earn a visit gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitEarn {
    pub member_id: i64,
    pub seq: i64,
    pub visit_key: i64,
    pub points: i64,
    pub basis: String,
    /// The explanation as JSON (the domain's `PointsQuote`).
    pub explanation: String,
    pub reversed_seq: Option<i64>,
    pub reversed_at: Option<DateTime<Utc>>,
}

const VISIT_EARN_COLUMNS: &str =
    "member_id, seq, visit_key, points, basis, explanation, reversed_seq, reversed_at";

impl FromAnyRow for VisitEarn {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        visit_earn_from_row(r)
    }
}

fn visit_earn_from_row(r: &impl AnyRow) -> Result<VisitEarn> {
    Ok(VisitEarn {
        member_id: r.col("member_id")?,
        seq: r.col("seq")?,
        visit_key: r.col("visit_key")?,
        points: r.col("points")?,
        basis: r.col("basis")?,
        explanation: r.col("explanation")?,
        reversed_seq: r.col("reversed_seq")?,
        reversed_at: r.col("reversed_at")?,
    })
}

/// Every earn a visit gave, oldest first (reversed ones too).
pub async fn earns_of_visit_tx(tx: &mut Tx, visit_key: i64) -> Result<Vec<VisitEarn>> {
    let sql = format!(
        "SELECT {VISIT_EARN_COLUMNS} FROM loyalty_visit_earns WHERE visit_key = $1 ORDER BY member_id, seq"
    );
    tx.fetch(&sql, &[visit_key.into()]).await
}

pub async fn earns_of_visit(db: &Db, visit_key: i64) -> Result<Vec<VisitEarn>> {
    let sql = format!(
        "SELECT {VISIT_EARN_COLUMNS} FROM loyalty_visit_earns WHERE visit_key = $1 ORDER BY member_id, seq"
    );
    on_read!(db, p => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(visit_key).fetch_all(p).await?;
        rows.iter().map(visit_earn_from_row).collect()
    })
}

/// Records why an earn entry exists, and each campaign's share of it.
pub async fn insert_visit_earn(
    tx: &mut Tx,
    hospital_id: i64,
    e: &VisitEarn,
    campaign_totals: &[(String, i64)],
) -> Result<()> {
    tx.exec(
        "INSERT INTO loyalty_visit_earns (member_id, seq, hospital_id, visit_key, points, basis, explanation) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            e.member_id.into(),
            e.seq.into(),
            hospital_id.into(),
            e.visit_key.into(),
            e.points.into(),
            (&e.basis).into(),
            (&e.explanation).into(),
        ],
    )
    .await?;
    for (campaign, points) in campaign_totals.iter().filter(|(_, p)| *p > 0) {
        tx.exec(
            "INSERT INTO loyalty_earn_campaigns (member_id, seq, campaign, points) VALUES ($1, $2, $3, $4)",
            &[e.member_id.into(), e.seq.into(), campaign.into(), (*points).into()],
        )
        .await?;
    }
    Ok(())
}

/// Marks a visit's earn as reversed by the entry at `reversed_seq`.
pub async fn mark_reversed(
    tx: &mut Tx,
    member_id: i64,
    seq: i64,
    reversed_seq: i64,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.exec(
        "UPDATE loyalty_visit_earns SET reversed_seq = $3, reversed_at = $4 WHERE member_id = $1 AND seq = $2",
        &[member_id.into(), seq.into(), reversed_seq.into(), at.into()],
    )
    .await?;
    Ok(())
}

/// The platform ids of the visits with the hospital's ids `visit_ids`
/// (one statement for a chunk).
pub async fn visit_keys_by_external(
    tx: &mut Tx,
    hospital_id: i64,
    visit_ids: &[&str],
) -> Result<Vec<(String, i64)>> {
    if visit_ids.is_empty() {
        return Ok(Vec::new());
    }
    let cond = match tx.engine() {
        Engine::Sqlite => "visit_id IN (SELECT value FROM json_each($2))",
        Engine::Postgres => "visit_id IN (SELECT jsonb_array_elements_text(CAST($2 AS jsonb)))",
    };
    let sql = format!("SELECT visit_id, id FROM visits WHERE hospital_id = $1 AND {cond}");
    let list = serde_json::to_string(visit_ids).unwrap_or_else(|_| "[]".into());
    let rows: Vec<VisitKey> = tx.fetch(&sql, &[hospital_id.into(), list.into()]).await?;
    Ok(rows.into_iter().map(|r| (r.0, r.1)).collect())
}

/// A visit's hospital id and platform id.
struct VisitKey(String, i64);

impl FromAnyRow for VisitKey {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        Ok(VisitKey(r.col("visit_id")?, r.col("id")?))
    }
}
