//! Web sessions of staff accounts. Only hashes are stored: the SHA-256 of
//! the cookie value (256 random bits, so a fast hash suffices, as for API
//! tokens) and of the CSRF token.

use chrono::{DateTime, Utc};

use crate::{AnyRow, Db, Result, Tx, on_read, on_tx};

/// A new session's row.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub user_id: i64,
    pub token_hash: &'a str,
    pub csrf_token_hash: &'a str,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

pub async fn insert(tx: &mut Tx, s: &NewSession<'_>, now: DateTime<Utc>) -> Result<i64> {
    let sql = "INSERT INTO sessions (user_id, token_hash, csrf_token_hash, created_at, expires_at, last_seen_at, ip, user_agent) \
               VALUES ($1, $2, $3, $4, $5, $4, $6, $7) RETURNING id";
    let r: (i64,) = on_tx!(tx, c => sqlx::query_as(sql)
        .bind(s.user_id).bind(s.token_hash).bind(s.csrf_token_hash).bind(now).bind(s.expires_at)
        .bind(s.ip).bind(s.user_agent)
        .fetch_one(&mut *c).await?);
    Ok(r.0)
}

/// A live session with its account, as found by its token hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: i64,
    pub user_id: i64,
    pub csrf_token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub login: String,
    pub display_name: String,
    pub role: String,
}

fn from_row(r: &impl AnyRow) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.col("id")?,
        user_id: r.col("user_id")?,
        csrf_token_hash: r.col("csrf_token_hash")?,
        created_at: r.col("created_at")?,
        expires_at: r.col("expires_at")?,
        last_seen_at: r.col("last_seen_at")?,
        login: r.col("login")?,
        display_name: r.col("display_name")?,
        role: r.col("role")?,
    })
}

/// The session with this token hash if it is not revoked, has not reached
/// its absolute end at `now`, and belongs to an active account. The idle
/// limit is the caller's to check against `last_seen_at`.
pub async fn find_live(
    db: &Db,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<SessionRecord>> {
    let sql = "SELECT s.id, s.user_id, s.csrf_token_hash, s.created_at, s.expires_at, s.last_seen_at, \
               u.login, u.display_name, u.role \
               FROM sessions s JOIN users u ON u.id = s.user_id \
               WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND u.active = $3";
    on_read!(db, p => match sqlx::query(sql).bind(token_hash).bind(now).bind(true).fetch_optional(p).await? {
        Some(r) => Ok(Some(from_row(&r)?)),
        None => Ok(None),
    })
}

pub async fn touch(tx: &mut Tx, id: i64, now: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2")
        .bind(id).bind(now).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

/// Revokes one session; false when it was not live.
pub async fn revoke(tx: &mut Tx, id: i64, now: DateTime<Utc>) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id).bind(now).execute(&mut *c).await?.rows_affected());
    Ok(n > 0)
}

/// Revokes every live session of a user except `keep`; returns how many.
pub async fn revoke_all_of_user(
    tx: &mut Tx,
    user_id: i64,
    keep: Option<i64>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL AND id <> $3")
        .bind(user_id).bind(now).bind(keep.unwrap_or(-1)).execute(&mut *c).await?.rows_affected());
    Ok(n)
}
