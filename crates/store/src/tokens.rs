//! API tokens, stored as SHA-256 hashes. A token is 256 random bits, so a
//! fast hash is enough: there is nothing to guess, only to look up.

use chrono::{DateTime, Utc};

use crate::{AnyRow, Db, Result, Tx, on_read, on_tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

fn from_row(r: &impl AnyRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: r.col("id")?,
        name: r.col("name")?,
        role: r.col("role")?,
        created_at: r.col("created_at")?,
        revoked_at: r.col("revoked_at")?,
    })
}

pub async fn insert(
    tx: &mut Tx,
    name: &str,
    role: &str,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let r: (i64,) = on_tx!(tx, c => sqlx::query_as(
        "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
        .bind(name).bind(role).bind(token_hash).bind(now).fetch_one(&mut *c).await?);
    Ok(r.0)
}

/// The live (not revoked) token with this hash.
pub async fn find_live(db: &Db, token_hash: &str) -> Result<Option<TokenRecord>> {
    let sql = "SELECT id, name, role, created_at, revoked_at FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL";
    on_read!(db, p => match sqlx::query(sql).bind(token_hash).fetch_optional(p).await? {
        Some(r) => Ok(Some(from_row(&r)?)),
        None => Ok(None),
    })
}

pub async fn list(db: &Db) -> Result<Vec<TokenRecord>> {
    let sql = "SELECT id, name, role, created_at, revoked_at FROM api_tokens ORDER BY id";
    on_read!(db, p => {
        let rows = sqlx::query(sql).fetch_all(p).await?;
        rows.iter().map(from_row).collect()
    })
}

/// Revokes a token; false when there was no live token with that id.
pub async fn revoke(tx: &mut Tx, id: i64, now: DateTime<Utc>) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id).bind(now).execute(&mut *c).await?.rows_affected());
    Ok(n > 0)
}
