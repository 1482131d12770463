//! Web sessions of staff accounts: login with lockout, lookup with sliding
//! expiry, logout, and changing one's password.
//!
//! The cookie value is 256 random bits in hex; the database keeps only its
//! SHA-256. The CSRF token is derived from the cookie value
//! (`SHA-256("rapport-csrf:" ‖ cookie)`), so the server can hand it out
//! again to the page that holds the cookie without storing it; the
//! database keeps only its SHA-256 too. Knowing the CSRF token does not
//! reveal the cookie.

use chrono::{DateTime, Duration, Utc};
use rapport_domain::ValidationErrors;
use rapport_domain::auth::Role;
use rapport_domain::staff;
use rapport_store::sessions::{self as store, NewSession};
use rapport_store::users::{self as user_store, Credentials, UserRecord};
use sha2::{Digest, Sha256};

use crate::principal::{Principal, PrincipalKind};
use crate::tokens::{hash, hex, random_hex256};
use crate::users::{dummy_hash, hash_password, verify_password};
use crate::{App, AppError, Result};

/// The session cookie's name.
pub const COOKIE: &str = "rapport_session";
/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::hours(12);
/// A session ends this long after login, however active.
pub const ABSOLUTE: Duration = Duration::days(7);
/// `last_seen_at` is written at most this often per session.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// Where a login comes from, kept with the session.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A session just opened. `cookie` and `csrf_token` exist only here and in
/// the client.
#[derive(Debug, Clone)]
pub struct Opened {
    pub user: UserRecord,
    pub role: Role,
    pub cookie: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// A live session found by its cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub session_id: i64,
    pub user_id: i64,
    pub display_name: String,
    pub expires_at: DateTime<Utc>,
    csrf_token_hash: String,
}

impl Session {
    /// Whether `token` is this session's CSRF token (compared as hashes,
    /// in constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        constant_time_eq(
            hash(token.trim()).as_bytes(),
            self.csrf_token_hash.as_bytes(),
        )
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The CSRF token that belongs to a session cookie.
pub fn csrf_token_for(cookie: &str) -> String {
    hex(&Sha256::digest(format!("rapport-csrf:{cookie}").as_bytes()))
}

fn well_formed(cookie: &str) -> bool {
    cookie.len() == 64
        && cookie
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn clip(s: Option<&str>, max: usize) -> Option<String> {
    s.map(|s| s.chars().take(max).collect())
}

/// Checks a password for an account, counting failures and locking the
/// account after too many (see [`staff::lock_after_failures`]).
async fn check_counting(app: &App, c: &Credentials, password: &str) -> Result<()> {
    let now = app.now();
    let user = &c.user;
    if let Some(until) = user.locked_until.filter(|u| *u > now) {
        tracing::warn!(login = %user.login, %until, "login refused: the account is locked");
        return Err(AppError::AccountLocked { until });
    }
    if verify_password(&c.password_hash, password).await? {
        let mut tx = app.db.begin().await?;
        let ok = user_store::record_success(&mut tx, user.id, now).await?;
        tx.commit().await?;
        if ok {
            return Ok(());
        }
        // Locked or deactivated while the password was being checked.
        return match user_store::get(&app.db, user.id).await? {
            Some(u) if u.active => Err(AppError::AccountLocked {
                until: u.locked_until.unwrap_or(now),
            }),
            _ => Err(AppError::InvalidCredentials),
        };
    }
    let mut tx = app.db.begin().await?;
    let failures = user_store::record_failure(&mut tx, user.id).await?;
    let lock = staff::lock_after_failures(failures)
        .and_then(|d| Duration::from_std(d).ok())
        .map(|d| now + d);
    if let Some(until) = lock {
        user_store::lock_until(&mut tx, user.id, until).await?;
    }
    tx.commit().await?;
    match lock {
        Some(until) => {
            tracing::warn!(login = %user.login, failures, %until, "account locked after failed logins");
            Err(AppError::AccountLocked { until })
        }
        None => {
            tracing::warn!(login = %user.login, failures, "failed login: wrong password");
            Err(AppError::InvalidCredentials)
        }
    }
}

/// Logs in: checks the password and opens a session. An unknown or
/// inactive login costs the same hashing time as a wrong password and
/// gets the same answer.
pub async fn login(app: &App, login: &str, password: &str, client: &Client) -> Result<Opened> {
    let creds = match staff::parse_login(login) {
        Ok(l) => user_store::credentials_by_login(&app.db, &l).await?,
        Err(_) => None,
    };
    let Some(creds) = creds.filter(|c| c.user.active) else {
        let _ = verify_password(dummy_hash().await?, password).await?;
        tracing::warn!(login = %login.trim(), ip = ?client.ip, "failed login: unknown or inactive login");
        return Err(AppError::InvalidCredentials);
    };
    let role = Role::from_code(&creds.user.role)
        .ok_or_else(|| AppError::Internal(format!("user {} has an unknown role", creds.user.id)))?;
    check_counting(app, &creds, password).await?;
    let now = app.now();
    let cookie = random_hex256();
    let csrf_token = csrf_token_for(&cookie);
    let expires_at = now + ABSOLUTE;
    let mut tx = app.db.begin().await?;
    let session_id = store::insert(
        &mut tx,
        &NewSession {
            user_id: creds.user.id,
            token_hash: &hash(&cookie),
            csrf_token_hash: &hash(&csrf_token),
            expires_at,
            ip: client.ip.as_deref(),
            user_agent: clip(client.user_agent.as_deref(), 512).as_deref(),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(login = %creds.user.login, session_id, ip = ?client.ip, "logged in");
    let user = user_store::get(&app.db, creds.user.id)
        .await?
        .unwrap_or(creds.user);
    Ok(Opened {
        user,
        role,
        cookie,
        csrf_token,
        expires_at,
    })
}

/// The live session of a cookie value, or `None` when it is unknown,
/// malformed, revoked, idle for [`IDLE`], past [`ABSOLUTE`], or its
/// account is inactive. Refreshes the idle clock.
pub async fn lookup(app: &App, cookie: &str) -> Result<Option<Session>> {
    if !well_formed(cookie) {
        return Ok(None);
    }
    let now = app.now();
    let Some(rec) = store::find_live(&app.db, &hash(cookie), now).await? else {
        return Ok(None);
    };
    if now - rec.last_seen_at >= IDLE {
        return Ok(None);
    }
    let Some(role) = Role::from_code(&rec.role) else {
        return Ok(None);
    };
    if now - rec.last_seen_at >= TOUCH_EVERY {
        let mut tx = app.db.begin().await?;
        store::touch(&mut tx, rec.id, now).await?;
        tx.commit().await?;
    }
    Ok(Some(Session {
        principal: Principal {
            name: rec.login.clone(),
            role,
            kind: PrincipalKind::User {
                user_id: rec.user_id,
                login: rec.login,
                session_id: rec.id,
            },
        },
        session_id: rec.id,
        user_id: rec.user_id,
        display_name: rec.display_name,
        expires_at: rec.expires_at,
        csrf_token_hash: rec.csrf_token_hash,
    }))
}

/// Ends a session.
pub async fn logout(app: &App, session_id: i64) -> Result<()> {
    let mut tx = app.db.begin().await?;
    store::revoke(&mut tx, session_id, app.now()).await?;
    tx.commit().await?;
    Ok(())
}

/// Changes a user's password after checking the current one (a wrong one
/// counts towards the lockout), and ends every other session of the user.
pub async fn change_password(
    app: &App,
    user_id: i64,
    session_id: i64,
    current: &str,
    new: &str,
) -> Result<()> {
    let creds = user_store::credentials_by_id(&app.db, user_id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    staff::check_password("new_password", &creds.user.login, new)?;
    if new == current {
        return Err(ValidationErrors::single(
            "new_password",
            "password_unchanged",
            "must differ from the current password",
        )
        .into());
    }
    match check_counting(app, &creds, current).await {
        Ok(()) => {}
        Err(AppError::InvalidCredentials) => {
            return Err(ValidationErrors::single(
                "current_password",
                "incorrect",
                "is not the current password",
            )
            .into());
        }
        Err(e) => return Err(e),
    }
    let hashed = hash_password(new).await?;
    let now = app.now();
    let mut tx = app.db.begin().await?;
    user_store::set_password(&mut tx, user_id, &hashed, now).await?;
    let ended = store::revoke_all_of_user(&mut tx, user_id, Some(session_id), now).await?;
    tx.commit().await?;
    tracing::info!(login = %creds.user.login, other_sessions_ended = ended, "password changed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_are_derived_and_compared_by_hash() {
        let cookie = random_hex256();
        assert!(well_formed(&cookie));
        assert!(!well_formed(&cookie.to_uppercase()));
        let t = csrf_token_for(&cookie);
        assert_eq!(t.len(), 64);
        assert_ne!(t, cookie);
        assert_ne!(t, hash(&cookie), "not the same hash as the stored one");
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
