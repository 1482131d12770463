//! Membership and loyalty: members, tier definitions and history, and the
//! points ledger (entries, lots, cached balances).
//!
//! The rules live in `rapport_domain::loyalty`; this module only stores
//! and reads what they decide. Every point-moving write happens in a
//! transaction that first locks the member row ([`lock`]), so the cached
//! balance, the lots and the entries change together and in order.

pub mod check;
pub mod ledger;
pub mod referrals;
pub mod reports;
pub mod rewards;
pub mod rules;

use chrono::{DateTime, NaiveDate, Utc};
use rapport_domain::loyalty::FeeCategory;
use rapport_domain::loyalty::ledger::Totals;
use rapport_domain::loyalty::tiers::{Benefits, TierChange, TierDef};

use crate::query::FromAnyRow;
use crate::{AnyRow, Db, Engine, Result, StoreError, Tx, on_read, on_tx};

/// A member as stored, with the patient's hospital id and the cached
/// balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: i64,
    pub hospital_id: i64,
    pub patient_key: i64,
    pub patient_id: String,
    pub member_type: String,
    pub card_no: String,
    pub joined_on: NaiveDate,
    pub status: String,
    pub tier: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub balance: Balance,
}

/// The cached balance of a member: what the entries add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Balance {
    pub available: i64,
    /// Qualifying points as of `qualifying_as_of` (the last write).
    pub qualifying: i64,
    pub qualifying_as_of: Option<DateTime<Utc>>,
    pub lifetime: i64,
    pub totals: Totals,
    /// Number of entries (the next entry's seq).
    pub entries: i64,
    pub last_at: Option<DateTime<Utc>>,
}

pub(crate) const MEMBER_COLUMNS: &str = "m.id, m.hospital_id, m.patient_key, p.patient_id, m.member_type, m.card_no, \
     m.joined_on, m.status, m.tier, m.created_at, m.updated_at, b.available, b.qualifying, b.qualifying_as_of, \
     b.lifetime, b.earned, b.redeemed, b.expired, b.adjusted_in, b.adjusted_out, b.reversed, b.entries, b.last_at";
pub(crate) const MEMBER_FROM: &str = "loyalty_members m JOIN patients p ON p.id = m.patient_key \
     JOIN loyalty_balances b ON b.member_id = m.id";

pub(crate) fn balance_from_row(r: &impl AnyRow) -> Result<Balance> {
    Ok(Balance {
        available: r.col("available")?,
        qualifying: r.col("qualifying")?,
        qualifying_as_of: r.col("qualifying_as_of")?,
        lifetime: r.col("lifetime")?,
        totals: Totals {
            earned: r.col("earned")?,
            redeemed: r.col("redeemed")?,
            expired: r.col("expired")?,
            adjusted_in: r.col("adjusted_in")?,
            adjusted_out: r.col("adjusted_out")?,
            reversed: r.col("reversed")?,
        },
        entries: r.col("entries")?,
        last_at: r.col("last_at")?,
    })
}

impl FromAnyRow for Member {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        member_from_row(r)
    }
}

pub(crate) fn member_from_row(r: &impl AnyRow) -> Result<Member> {
    Ok(Member {
        id: r.col("id")?,
        hospital_id: r.col("hospital_id")?,
        patient_key: r.col("patient_key")?,
        patient_id: r.col("patient_id")?,
        member_type: r.col("member_type")?,
        card_no: r.col::<Option<String>>("card_no")?.unwrap_or_default(),
        joined_on: r.col("joined_on")?,
        status: r.col("status")?,
        tier: r.col("tier")?,
        created_at: r.col("created_at")?,
        updated_at: r.col("updated_at")?,
        balance: balance_from_row(r)?,
    })
}

/// A member to enrol.
#[derive(Debug, Clone)]
pub struct NewMember<'a> {
    pub hospital_id: i64,
    pub patient_key: i64,
    pub member_type: &'a str,
    pub joined_on: NaiveDate,
    pub tier: &'a str,
    pub now: DateTime<Utc>,
}

/// The card number of a member: the hospital, the member id and a Luhn
/// check digit, so that a mistyped digit is caught at the desk.
pub fn card_number(hospital_id: i64, member_id: i64) -> String {
    let body = format!("{:02}{:09}", hospital_id % 100, member_id);
    let mut sum = 0;
    for (i, c) in body.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// Enrols a member with a zero balance; `Conflict("member")` when the
/// patient is already one.
pub async fn insert(tx: &mut Tx, m: &NewMember<'_>) -> Result<(i64, String)> {
    let sql = "INSERT INTO loyalty_members (hospital_id, patient_key, member_type, joined_on, status, tier, \
               created_at, updated_at) VALUES ($1, $2, $3, $4, 'active', $5, $6, $6) RETURNING id";
    let r: (i64,) = on_tx!(tx, c => sqlx::query_as(sql)
        .bind(m.hospital_id)
        .bind(m.patient_key)
        .bind(m.member_type)
        .bind(m.joined_on)
        .bind(m.tier)
        .bind(m.now)
        .fetch_one(&mut *c)
        .await)
    .map_err(|e| StoreError::unique(e, "member"))?;
    let card = card_number(m.hospital_id, r.0);
    on_tx!(tx, c => {
        sqlx::query("UPDATE loyalty_members SET card_no = $2 WHERE id = $1")
            .bind(r.0).bind(&card).execute(&mut *c).await?;
        sqlx::query("INSERT INTO loyalty_balances (member_id, hospital_id, available, qualifying, lifetime, earned, \
                     redeemed, expired, adjusted_in, adjusted_out, reversed, entries) \
                     VALUES ($1, $2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)")
            .bind(r.0).bind(m.hospital_id).execute(&mut *c).await?;
    });
    Ok((r.0, card))
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Member>> {
    let sql = format!("SELECT {MEMBER_COLUMNS} FROM {MEMBER_FROM} WHERE m.id = $1");
    on_read!(db, p => match sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(id).fetch_optional(p).await? {
        Some(r) => Ok(Some(member_from_row(&r)?)),
        None => Ok(None),
    })
}

pub async fn get_tx(tx: &mut Tx, id: i64) -> Result<Option<Member>> {
    let sql = format!("SELECT {MEMBER_COLUMNS} FROM {MEMBER_FROM} WHERE m.id = $1");
    tx.fetch_opt(&sql, &[id.into()]).await
}

/// The member a patient is, if any, with their qualifying points at `at`
/// (earn lots created in `(from, at]`, not reversed by `at`). On SQLite
/// this runs on the synchronous read path: it is part of the 360° view.
pub async fn of_patient(
    db: &Db,
    hospital_id: i64,
    patient_key: i64,
    from: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<Option<(Member, i64)>> {
    let sql = format!(
        "SELECT {MEMBER_COLUMNS}, (SELECT CAST(COALESCE(SUM(l.original), 0) AS BIGINT) FROM loyalty_lots l \
         WHERE l.member_id = m.id AND l.earned AND l.created_at > $1 AND l.created_at <= $2 \
         AND (l.reversed_at IS NULL OR l.reversed_at > $2)) AS qualifying_now \
         FROM {MEMBER_FROM} WHERE m.hospital_id = $3 AND m.patient_key = $4"
    );
    if let Db::Sqlite { sync, .. } = db {
        // The same text as sqlx writes for a time, so comparisons agree.
        let t = |d: DateTime<Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false);
        return Ok(sync
            .query(
                &sql,
                // In the order they appear: rusqlite binds by position.
                &[
                    t(from).into(),
                    t(at).into(),
                    hospital_id.into(),
                    patient_key.into(),
                ],
                |r| Ok((member_from_row(r)?, r.col::<i64>("qualifying_now")?)),
            )?
            .pop());
    }
    on_read!(db, p => match sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(from).bind(at).bind(hospital_id).bind(patient_key).fetch_optional(p).await? {
        Some(r) => Ok(Some((member_from_row(&r)?, r.col::<i64>("qualifying_now")?))),
        None => Ok(None),
    })
}

/// Locks a member row until the transaction ends (PostgreSQL; SQLite's
/// single writer already holds the database) and reads it with its
/// balance. Every point-moving write starts here.
pub async fn lock(tx: &mut Tx, id: i64) -> Result<Option<Member>> {
    let sql = match tx.engine() {
        Engine::Sqlite => format!("SELECT {MEMBER_COLUMNS} FROM {MEMBER_FROM} WHERE m.id = $1"),
        Engine::Postgres => {
            format!("SELECT {MEMBER_COLUMNS} FROM {MEMBER_FROM} WHERE m.id = $1 FOR UPDATE OF m, b")
        }
    };
    tx.fetch_opt(&sql, &[id.into()]).await
}

/// Filters for listing members, by id ascending.
#[derive(Debug, Clone, Default)]
pub struct MemberQuery {
    pub hospital_id: i64,
    pub tier: Option<String>,
    pub status: Option<String>,
    pub after: Option<i64>,
    pub limit: i64,
}

pub async fn list(db: &Db, q: &MemberQuery) -> Result<Vec<Member>> {
    let sql = format!(
        "SELECT {MEMBER_COLUMNS} FROM {MEMBER_FROM} WHERE m.hospital_id = $1 \
         AND ($2 IS NULL OR m.tier = $2) AND ($3 IS NULL OR m.status = $3) AND m.id > $4 \
         ORDER BY m.id LIMIT {}",
        q.limit.max(0)
    );
    on_read!(db, p => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql))
            .bind(q.hospital_id)
            .bind(q.tier.as_deref())
            .bind(q.status.as_deref())
            .bind(q.after.unwrap_or(0))
            .fetch_all(p)
            .await?;
        rows.iter().map(member_from_row).collect()
    })
}

pub async fn set_status(tx: &mut Tx, id: i64, status: &str, now: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE loyalty_members SET status = $2, updated_at = $3 WHERE id = $1")
        .bind(id).bind(status).bind(now).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

/// A tier change to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierHistoryRow {
    pub member_id: i64,
    pub on: NaiveDate,
    pub from: Option<String>,
    pub to: String,
    pub change: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

pub fn change_code(c: TierChange) -> &'static str {
    match c {
        TierChange::Upgrade => "upgrade",
        TierChange::Downgrade => "downgrade",
        TierChange::Reassigned => "reassigned",
        TierChange::None => "none",
    }
}

/// Moves a member to `to` and records why.
pub async fn set_tier(tx: &mut Tx, hospital_id: i64, h: &TierHistoryRow) -> Result<()> {
    tx.exec(
        "UPDATE loyalty_members SET tier = $2, updated_at = $3 WHERE id = $1",
        &[h.member_id.into(), (&h.to).into(), h.at.into()],
    )
    .await?;
    tx.exec(
        "INSERT INTO loyalty_tier_history (hospital_id, member_id, on_date, from_tier, to_tier, change, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            hospital_id.into(),
            h.member_id.into(),
            h.on.into(),
            h.from.as_deref().into(),
            (&h.to).into(),
            (&h.change).into(),
            (&h.reason).into(),
            h.at.into(),
        ],
    )
    .await?;
    Ok(())
}

/// A member's tier history, newest first.
pub async fn tier_history(db: &Db, member_id: i64) -> Result<Vec<TierHistoryRow>> {
    let sql = "SELECT member_id, on_date, from_tier, to_tier, change, reason, at FROM loyalty_tier_history \
               WHERE member_id = $1 ORDER BY id DESC LIMIT 500";
    on_read!(db, p => {
        let rows = sqlx::query(sql).bind(member_id).fetch_all(p).await?;
        rows.iter().map(|r| Ok(TierHistoryRow {
            member_id: r.col("member_id")?,
            on: r.col("on_date")?,
            from: r.col("from_tier")?,
            to: r.col("to_tier")?,
            change: r.col("change")?,
            reason: r.col("reason")?,
            at: r.col("at")?,
        })).collect()
    })
}

/// A tier as configured: the rule's definition and a display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub def: TierDef,
    pub name: String,
}

const CATEGORIES: [(FeeCategory, &str); 5] = [
    (FeeCategory::Registration, "discount_registration_bp"),
    (FeeCategory::Examination, "discount_examination_bp"),
    (FeeCategory::Treatment, "discount_treatment_bp"),
    (FeeCategory::Hospitalisation, "discount_hospitalisation_bp"),
    (FeeCategory::CheckUp, "discount_check_up_bp"),
];

impl FromAnyRow for Tier {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        tier_from_row(r)
    }
}

fn tier_from_row(r: &impl AnyRow) -> Result<Tier> {
    let mut discounts_bp = Vec::new();
    for (cat, col) in CATEGORIES {
        let bp: i32 = r.col(col)?;
        if bp > 0 {
            discounts_bp.push((cat, bp as u32));
        }
    }
    let rank: i32 = r.col("rank")?;
    Ok(Tier {
        name: r.col("name")?,
        def: TierDef {
            code: r.col("code")?,
            rank: rank as u32,
            threshold_qualifying: r.col("threshold_qualifying")?,
            benefits: Benefits {
                discounts_bp,
                priority_lane: r.col("priority_lane")?,
                exclusive_doctor: r.col("exclusive_doctor")?,
                home_visits: r.col("home_visits")?,
                free_annual_check_up: r.col("free_annual_check_up")?,
            },
        },
    })
}

const TIER_SQL: &str = "SELECT code, name, rank, threshold_qualifying, discount_registration_bp, \
     discount_examination_bp, discount_treatment_bp, discount_hospitalisation_bp, discount_check_up_bp, \
     priority_lane, exclusive_doctor, home_visits, free_annual_check_up FROM loyalty_tiers \
     WHERE hospital_id = $1 ORDER BY rank";

/// The hospital's tiers, by rank.
pub async fn tiers(db: &Db, hospital_id: i64) -> Result<Vec<Tier>> {
    on_read!(db, p => {
        let rows = sqlx::query(TIER_SQL).bind(hospital_id).fetch_all(p).await?;
        rows.iter().map(tier_from_row).collect()
    })
}

pub async fn tiers_tx(tx: &mut Tx, hospital_id: i64) -> Result<Vec<Tier>> {
    tx.fetch(TIER_SQL, &[hospital_id.into()]).await
}

/// The programme's settings, locked until the transaction ends (taken by
/// whoever replaces the tier definitions, so two replacements serialise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program {
    pub tiers_version: i64,
    pub points_valid_months: i32,
}

pub async fn lock_program(tx: &mut Tx, hospital_id: i64) -> Result<Program> {
    let sql = match tx.engine() {
        Engine::Sqlite => {
            "SELECT tiers_version, points_valid_months FROM loyalty_programs WHERE hospital_id = $1"
        }
        Engine::Postgres => {
            "SELECT tiers_version, points_valid_months FROM loyalty_programs WHERE hospital_id = $1 FOR UPDATE"
        }
    };
    let r: Option<(i64, i32)> =
        on_tx!(tx, c => sqlx::query_as(sql).bind(hospital_id).fetch_optional(&mut *c).await?);
    let (tiers_version, points_valid_months) =
        r.ok_or(StoreError::NotFound("loyalty programme"))?;
    Ok(Program {
        tiers_version,
        points_valid_months,
    })
}

/// The programme's settings, without a lock.
pub async fn program_tx(tx: &mut Tx, hospital_id: i64) -> Result<Program> {
    let r: Option<(i64, i32)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT tiers_version, points_valid_months FROM loyalty_programs WHERE hospital_id = $1")
        .bind(hospital_id).fetch_optional(&mut *c).await?);
    let (tiers_version, points_valid_months) =
        r.ok_or(StoreError::NotFound("loyalty programme"))?;
    Ok(Program {
        tiers_version,
        points_valid_months,
    })
}

/// Replaces every tier definition (after [`lock_program`]).
pub async fn replace_tiers(
    tx: &mut Tx,
    hospital_id: i64,
    tiers: &[Tier],
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, c => {
        sqlx::query("DELETE FROM loyalty_tiers WHERE hospital_id = $1")
            .bind(hospital_id).execute(&mut *c).await?;
        for t in tiers {
            let b = &t.def.benefits;
            sqlx::query("INSERT INTO loyalty_tiers (hospital_id, code, name, rank, threshold_qualifying, \
                         discount_registration_bp, discount_examination_bp, discount_treatment_bp, \
                         discount_hospitalisation_bp, discount_check_up_bp, priority_lane, exclusive_doctor, \
                         home_visits, free_annual_check_up) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
                .bind(hospital_id)
                .bind(&t.def.code)
                .bind(&t.name)
                .bind(t.def.rank as i32)
                .bind(t.def.threshold_qualifying)
                .bind(b.discount_bp(FeeCategory::Registration) as i32)
                .bind(b.discount_bp(FeeCategory::Examination) as i32)
                .bind(b.discount_bp(FeeCategory::Treatment) as i32)
                .bind(b.discount_bp(FeeCategory::Hospitalisation) as i32)
                .bind(b.discount_bp(FeeCategory::CheckUp) as i32)
                .bind(b.priority_lane)
                .bind(b.exclusive_doctor)
                .bind(b.home_visits)
                .bind(b.free_annual_check_up)
                .execute(&mut *c)
                .await?;
        }
        sqlx::query("UPDATE loyalty_programs SET tiers_version = tiers_version + 1, updated_at = $2 WHERE hospital_id = $1")
            .bind(hospital_id).bind(now).execute(&mut *c).await?;
    });
    Ok(())
}

/// A member as a tier review needs them, with the qualifying points
/// computed from the lots at the review's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRow {
    pub member_id: i64,
    pub tier: String,
    pub joined_on: NaiveDate,
    pub qualifying: i64,
}

/// The next `limit` members after `after` (by id), locked (PostgreSQL),
/// with their qualifying points at `at`: earn lots created in
/// `(from, at]` not reversed by `at`.
pub async fn review_batch(
    tx: &mut Tx,
    hospital_id: i64,
    after: i64,
    limit: i64,
    from: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<Vec<ReviewRow>> {
    let lock = match tx.engine() {
        Engine::Sqlite => "",
        Engine::Postgres => " FOR UPDATE",
    };
    let members_sql = format!(
        "SELECT id, tier, joined_on FROM loyalty_members WHERE hospital_id = $1 AND id > $2 \
         ORDER BY id LIMIT {}{lock}",
        limit.max(0)
    );
    let members: Vec<(i64, String, NaiveDate)> = on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(&*members_sql))
        .bind(hospital_id).bind(after).fetch_all(&mut *c).await?);
    let (Some(first), Some(last)) = (members.first(), members.last()) else {
        return Ok(Vec::new());
    };
    let q_sql = "SELECT l.member_id, CAST(SUM(l.original) AS BIGINT) FROM loyalty_lots l \
                 WHERE l.hospital_id = $1 AND l.member_id >= $2 AND l.member_id <= $3 AND l.earned \
                 AND l.created_at > $4 AND l.created_at <= $5 \
                 AND (l.reversed_at IS NULL OR l.reversed_at > $5) GROUP BY l.member_id";
    let sums: Vec<(i64, i64)> = on_tx!(tx, c => sqlx::query_as(q_sql)
        .bind(hospital_id).bind(first.0).bind(last.0).bind(from).bind(at).fetch_all(&mut *c).await?);
    let sums: std::collections::HashMap<i64, i64> = sums.into_iter().collect();
    Ok(members
        .into_iter()
        .map(|(id, tier, joined_on)| ReviewRow {
            member_id: id,
            tier,
            joined_on,
            qualifying: sums.get(&id).copied().unwrap_or(0),
        })
        .collect())
}

/// Members per tier.
pub async fn count_by_tier(db: &Db, hospital_id: i64) -> Result<Vec<(String, i64)>> {
    on_read!(db, p => Ok(sqlx::query_as(
        "SELECT tier, COUNT(*) FROM loyalty_members WHERE hospital_id = $1 GROUP BY tier ORDER BY tier")
        .bind(hospital_id).fetch_all(p).await?))
}
