//! Staff accounts. Logins arrive lowercased (the app parses them); the
//! password is an argon2id PHC string made by the app.

use chrono::{DateTime, Utc};

use crate::{AnyRow, Db, Result, StoreError, Tx, on_read, on_tx};

/// A staff account, without its password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: i64,
    pub login: String,
    pub display_name: String,
    pub role: String,
    pub active: bool,
    pub failed_logins: i64,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub password_changed_at: DateTime<Utc>,
}

/// An account with its password hash, for checking a password.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: UserRecord,
    pub password_hash: String,
}

/// `SELECT` of every column but the password hash, followed by `$rest`.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, login, display_name, role, active, failed_logins, locked_until, created_at, password_changed_at",
            $rest
        )
    };
}

fn from_row(r: &impl AnyRow) -> Result<UserRecord> {
    Ok(UserRecord {
        id: r.col("id")?,
        login: r.col("login")?,
        display_name: r.col("display_name")?,
        role: r.col("role")?,
        active: r.col("active")?,
        failed_logins: r.col("failed_logins")?,
        locked_until: r.col("locked_until")?,
        created_at: r.col("created_at")?,
        password_changed_at: r.col("password_changed_at")?,
    })
}

/// The fields of a new account.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub login: &'a str,
    pub display_name: &'a str,
    pub role: &'a str,
    pub password_hash: &'a str,
}

/// Inserts an account; `Conflict("user")` when the login is taken.
pub async fn insert(tx: &mut Tx, u: &NewUser<'_>, now: DateTime<Utc>) -> Result<i64> {
    let sql = "INSERT INTO users (login, display_name, role, password_hash, active, failed_logins, created_at, password_changed_at) \
               VALUES ($1, $2, $3, $4, $5, 0, $6, $6) RETURNING id";
    let r: (i64,) = on_tx!(tx, c => sqlx::query_as(sql)
        .bind(u.login).bind(u.display_name).bind(u.role).bind(u.password_hash).bind(true).bind(now)
        .fetch_one(&mut *c).await.map_err(|e| StoreError::unique(e, "user"))?);
    Ok(r.0)
}

/// Whether any account exists (active or not).
pub async fn any_exists(tx: &mut Tx) -> Result<bool> {
    let r: Option<(i64,)> = on_tx!(tx, c => sqlx::query_as("SELECT id FROM users LIMIT 1").fetch_optional(&mut *c).await?);
    Ok(r.is_some())
}

pub async fn list(db: &Db) -> Result<Vec<UserRecord>> {
    let sql = select!(" FROM users ORDER BY id");
    on_read!(db, p => {
        let rows = sqlx::query(sql).fetch_all(p).await?;
        rows.iter().map(from_row).collect()
    })
}

pub async fn get(db: &Db, id: i64) -> Result<Option<UserRecord>> {
    let sql = select!(" FROM users WHERE id = $1");
    on_read!(db, p => match sqlx::query(sql).bind(id).fetch_optional(p).await? {
        Some(r) => Ok(Some(from_row(&r)?)),
        None => Ok(None),
    })
}

pub async fn find_by_login(db: &Db, login: &str) -> Result<Option<UserRecord>> {
    let sql = select!(" FROM users WHERE login = $1");
    on_read!(db, p => match sqlx::query(sql).bind(login).fetch_optional(p).await? {
        Some(r) => Ok(Some(from_row(&r)?)),
        None => Ok(None),
    })
}

/// The account with this login and its password hash.
pub async fn credentials_by_login(db: &Db, login: &str) -> Result<Option<Credentials>> {
    let sql = select!(", password_hash FROM users WHERE login = $1");
    on_read!(db, p => match sqlx::query(sql).bind(login).fetch_optional(p).await? {
        Some(r) => Ok(Some(Credentials { user: from_row(&r)?, password_hash: r.col("password_hash")? })),
        None => Ok(None),
    })
}

/// The account with this id and its password hash.
pub async fn credentials_by_id(db: &Db, id: i64) -> Result<Option<Credentials>> {
    let sql = select!(", password_hash FROM users WHERE id = $1");
    on_read!(db, p => match sqlx::query(sql).bind(id).fetch_optional(p).await? {
        Some(r) => Ok(Some(Credentials { user: from_row(&r)?, password_hash: r.col("password_hash")? })),
        None => Ok(None),
    })
}

/// Counts one more failed login and returns the new count.
pub async fn record_failure(tx: &mut Tx, id: i64) -> Result<i64> {
    let r: (i64,) = on_tx!(tx, c => sqlx::query_as(
        "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins")
        .bind(id).fetch_one(&mut *c).await?);
    Ok(r.0)
}

pub async fn lock_until(tx: &mut Tx, id: i64, until: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE users SET locked_until = $2 WHERE id = $1")
        .bind(id).bind(until).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

/// Clears the failure count after a correct password, unless the account
/// is (still or meanwhile) locked at `now` or inactive; false then.
pub async fn record_success(tx: &mut Tx, id: i64, now: DateTime<Utc>) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE users SET failed_logins = 0, locked_until = NULL \
         WHERE id = $1 AND active = $3 AND (locked_until IS NULL OR locked_until <= $2)")
        .bind(id).bind(now).bind(true).execute(&mut *c).await?.rows_affected());
    Ok(n > 0)
}

pub async fn set_password(
    tx: &mut Tx,
    id: i64,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE users SET password_hash = $2, password_changed_at = $3 WHERE id = $1")
        .bind(id).bind(password_hash).bind(now).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

/// Clears the failure count and any lock.
pub async fn unlock(tx: &mut Tx, id: i64) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
        .bind(id).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

/// Marks an account inactive; false when there is no such active account.
pub async fn deactivate(tx: &mut Tx, id: i64) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query("UPDATE users SET active = $2 WHERE id = $1 AND active = $3")
        .bind(id).bind(false).bind(true).execute(&mut *c).await?.rows_affected());
    Ok(n > 0)
}

/// Active accounts holding `role`.
pub async fn count_active_with_role(tx: &mut Tx, role: &str) -> Result<i64> {
    let r: (i64,) = on_tx!(tx, c => sqlx::query_as(
        "SELECT COUNT(*) FROM users WHERE role = $1 AND active = $2")
        .bind(role).bind(true).fetch_one(&mut *c).await?);
    Ok(r.0)
}
