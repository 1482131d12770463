//! The reward catalogue and the vouchers redeemed from it.

use chrono::{DateTime, Utc};
use rapport_domain::loyalty::rewards::{Reward, RewardKind, VoucherStatus};

use crate::{AnyRow, Db, Engine, Result, StoreError, Tx, on_read, on_tx};

const REWARD_COLUMNS: &str = "code, name, kind, cost_points, value_minor, stock, active_from, active_until, \
     voucher_valid_days";

fn reward_from_row(r: &impl AnyRow) -> Result<Reward> {
    let kind: String = r.col("kind")?;
    Ok(Reward {
        code: r.col("code")?,
        name: r.col("name")?,
        kind: RewardKind::from_code(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("reward kind {kind:?}")))?,
        cost_points: r.col("cost_points")?,
        value_minor: r.col("value_minor")?,
        stock: r.col("stock")?,
        active_from: r.col("active_from")?,
        active_until: r.col("active_until")?,
        voucher_valid_days: r.col("voucher_valid_days")?,
    })
}

/// The catalogue, by code.
pub async fn list(db: &Db, hospital_id: i64) -> Result<Vec<Reward>> {
    let sql = format!(
        "SELECT {REWARD_COLUMNS} FROM loyalty_rewards WHERE hospital_id = $1 ORDER BY code"
    );
    on_read!(db, p => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).fetch_all(p).await?;
        rows.iter().map(reward_from_row).collect()
    })
}

/// A reward, locked until the transaction ends (its stock changes).
pub async fn lock(tx: &mut Tx, hospital_id: i64, code: &str) -> Result<Option<Reward>> {
    let lock = match tx.engine() {
        Engine::Sqlite => "",
        Engine::Postgres => " FOR UPDATE",
    };
    let sql = format!(
        "SELECT {REWARD_COLUMNS} FROM loyalty_rewards WHERE hospital_id = $1 AND code = $2{lock}"
    );
    on_tx!(tx, c => match sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).bind(code).fetch_optional(&mut *c).await? {
        Some(r) => Ok(Some(reward_from_row(&r)?)),
        None => Ok(None),
    })
}

pub async fn upsert(tx: &mut Tx, hospital_id: i64, r: &Reward, now: DateTime<Utc>) -> Result<()> {
    let sql = "INSERT INTO loyalty_rewards (hospital_id, code, name, kind, cost_points, value_minor, stock, \
               active_from, active_until, voucher_valid_days, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
               ON CONFLICT (hospital_id, code) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
               cost_points = excluded.cost_points, value_minor = excluded.value_minor, stock = excluded.stock, \
               active_from = excluded.active_from, active_until = excluded.active_until, \
               voucher_valid_days = excluded.voucher_valid_days, updated_at = excluded.updated_at";
    on_tx!(tx, c => sqlx::query(sql)
        .bind(hospital_id)
        .bind(&r.code)
        .bind(&r.name)
        .bind(r.kind.as_str())
        .bind(r.cost_points)
        .bind(r.value_minor)
        .bind(r.stock)
        .bind(r.active_from)
        .bind(r.active_until)
        .bind(r.voucher_valid_days)
        .bind(now)
        .execute(&mut *c)
        .await.map(|_| ()))?;
    Ok(())
}

/// Takes one from a limited stock.
pub async fn take_stock(tx: &mut Tx, hospital_id: i64, code: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE loyalty_rewards SET stock = stock - 1 \
                                WHERE hospital_id = $1 AND code = $2 AND stock IS NOT NULL")
        .bind(hospital_id).bind(code).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

/// Gives one back to a limited stock (a cancelled voucher).
pub async fn return_stock(tx: &mut Tx, hospital_id: i64, code: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE loyalty_rewards SET stock = stock + 1 \
                                WHERE hospital_id = $1 AND code = $2 AND stock IS NOT NULL")
        .bind(hospital_id).bind(code).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

/// A voucher as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voucher {
    pub id: i64,
    pub code: String,
    pub member_id: i64,
    pub reward_code: String,
    pub points: i64,
    pub redeem_seq: i64,
    pub refund_seq: Option<i64>,
    pub idempotency_key: String,
    pub request_hash: String,
    pub status: VoucherStatus,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

const VOUCHER_COLUMNS: &str = "id, code, member_id, reward_code, points, redeem_seq, refund_seq, idempotency_key, \
     request_hash, status, issued_at, expires_at, used_at, cancelled_at";

pub(crate) fn voucher_from_row(r: &impl AnyRow) -> Result<Voucher> {
    let status: String = r.col("status")?;
    Ok(Voucher {
        id: r.col("id")?,
        code: r.col("code")?,
        member_id: r.col("member_id")?,
        reward_code: r.col("reward_code")?,
        points: r.col("points")?,
        redeem_seq: r.col("redeem_seq")?,
        refund_seq: r.col("refund_seq")?,
        idempotency_key: r.col("idempotency_key")?,
        request_hash: r.col("request_hash")?,
        status: VoucherStatus::from_code(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("voucher status {status:?}")))?,
        issued_at: r.col("issued_at")?,
        expires_at: r.col("expires_at")?,
        used_at: r.col("used_at")?,
        cancelled_at: r.col("cancelled_at")?,
    })
}

/// A voucher by its code; locked until the transaction ends (PostgreSQL).
pub async fn lock_voucher(tx: &mut Tx, hospital_id: i64, code: &str) -> Result<Option<Voucher>> {
    let lock = match tx.engine() {
        Engine::Sqlite => "",
        Engine::Postgres => " FOR UPDATE",
    };
    let sql = format!(
        "SELECT {VOUCHER_COLUMNS} FROM loyalty_vouchers WHERE hospital_id = $1 AND code = $2{lock}"
    );
    on_tx!(tx, c => match sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).bind(code).fetch_optional(&mut *c).await? {
        Some(r) => Ok(Some(voucher_from_row(&r)?)),
        None => Ok(None),
    })
}

pub async fn voucher(db: &Db, hospital_id: i64, code: &str) -> Result<Option<Voucher>> {
    let sql = format!(
        "SELECT {VOUCHER_COLUMNS} FROM loyalty_vouchers WHERE hospital_id = $1 AND code = $2"
    );
    on_read!(db, p => match sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).bind(code).fetch_optional(p).await? {
        Some(r) => Ok(Some(voucher_from_row(&r)?)),
        None => Ok(None),
    })
}

/// The voucher a member redeemed with an idempotency key, if any.
pub async fn voucher_by_key(tx: &mut Tx, member_id: i64, key: &str) -> Result<Option<Voucher>> {
    let sql = format!(
        "SELECT {VOUCHER_COLUMNS} FROM loyalty_vouchers WHERE member_id = $1 AND idempotency_key = $2"
    );
    on_tx!(tx, c => match sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(member_id).bind(key).fetch_optional(&mut *c).await? {
        Some(r) => Ok(Some(voucher_from_row(&r)?)),
        None => Ok(None),
    })
}

/// A member's vouchers, newest first.
pub async fn vouchers_of(db: &Db, member_id: i64, limit: i64) -> Result<Vec<Voucher>> {
    let sql = format!(
        "SELECT {VOUCHER_COLUMNS} FROM loyalty_vouchers WHERE member_id = $1 ORDER BY id DESC LIMIT {}",
        limit.max(0)
    );
    on_read!(db, p => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(member_id).fetch_all(p).await?;
        rows.iter().map(voucher_from_row).collect()
    })
}

/// Whether a voucher code is taken.
pub async fn code_taken(tx: &mut Tx, hospital_id: i64, code: &str) -> Result<bool> {
    let r: Option<(i64,)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT id FROM loyalty_vouchers WHERE hospital_id = $1 AND code = $2")
        .bind(hospital_id).bind(code).fetch_optional(&mut *c).await?);
    Ok(r.is_some())
}

pub async fn insert_voucher(tx: &mut Tx, hospital_id: i64, v: &Voucher) -> Result<i64> {
    let sql = "INSERT INTO loyalty_vouchers (hospital_id, code, member_id, reward_code, points, redeem_seq, \
               idempotency_key, request_hash, status, issued_at, expires_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'issued', $9, $10) RETURNING id";
    let r: (i64,) = on_tx!(tx, c => sqlx::query_as(sql)
        .bind(hospital_id)
        .bind(&v.code)
        .bind(v.member_id)
        .bind(&v.reward_code)
        .bind(v.points)
        .bind(v.redeem_seq)
        .bind(&v.idempotency_key)
        .bind(&v.request_hash)
        .bind(v.issued_at)
        .bind(v.expires_at)
        .fetch_one(&mut *c)
        .await)
    .map_err(|e| StoreError::unique(e, "voucher"))?;
    Ok(r.0)
}

pub async fn mark_used(tx: &mut Tx, id: i64, at: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE loyalty_vouchers SET status = 'used', used_at = $2 WHERE id = $1 AND status = 'issued'")
        .bind(id).bind(at).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

pub async fn mark_cancelled(
    tx: &mut Tx,
    id: i64,
    refund_seq: i64,
    at: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE loyalty_vouchers SET status = 'cancelled', cancelled_at = $2, refund_seq = $3 \
                                WHERE id = $1 AND status = 'issued'")
        .bind(id).bind(at).bind(refund_seq).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}
