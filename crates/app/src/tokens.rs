//! API tokens: created once and shown once, stored as a SHA-256 hash,
//! checked on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore;
use rapport_domain::ValidationErrors;
use rapport_domain::auth::Role;
use rapport_store::tokens::{self as store, TokenRecord};
use sha2::{Digest, Sha256};

use crate::{App, AppError, Result};

pub use crate::principal::{Principal, PrincipalKind};

/// Prefix that makes tokens recognisable in logs and secret scanners.
pub const PREFIX: &str = "rpt_";

pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// 256 random bits as 64 hexadecimal digits.
pub(crate) fn random_hex256() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// Creates a token and returns it with its id; the plain token exists only
/// in this return value.
pub async fn create(app: &App, role: &str, name: &str) -> Result<(i64, String)> {
    let role = Role::from_code(role).ok_or_else(|| {
        let all: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        ValidationErrors::single(
            "role",
            "invalid_enum",
            format!("must be one of {}", all.join(", ")),
        )
    })?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ValidationErrors::single(
            "name",
            "invalid_text",
            "must be 1 to 100 characters",
        )
        .into());
    }
    let token = format!("{PREFIX}{}", random_hex256());
    let mut tx = app.db.begin().await?;
    let id = store::insert(&mut tx, name, role.as_str(), &hash(&token), app.now()).await?;
    tx.commit().await?;
    Ok((id, token))
}

/// How long a verified token is trusted without asking the database again.
/// Revocation through this process takes effect at once; through another
/// process (the command line, another instance) within this time.
pub const CACHE_TTL: Duration = Duration::from_secs(2);

#[derive(Clone, Default)]
pub(crate) struct TokenCache(Arc<Mutex<HashMap<String, (Principal, Instant)>>>);

impl TokenCache {
    fn get(&self, h: &str) -> Option<Principal> {
        let map = self.0.lock().ok()?;
        map.get(h)
            .filter(|(_, t)| t.elapsed() < CACHE_TTL)
            .map(|(p, _)| p.clone())
    }

    fn put(&self, h: String, p: Principal) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() > 10_000 {
                map.retain(|_, (_, t)| t.elapsed() < CACHE_TTL);
            }
            map.insert(h, (p, Instant::now()));
        }
    }

    fn clear(&self) {
        if let Ok(mut map) = self.0.lock() {
            map.clear();
        }
    }
}

/// The principal of a presented token, or `None` when it is unknown,
/// malformed or revoked.
pub async fn authenticate(app: &App, token: &str) -> Result<Option<Principal>> {
    if !token.starts_with(PREFIX) || token.len() != PREFIX.len() + 64 {
        return Ok(None);
    }
    let h = hash(token);
    if let Some(p) = app.token_cache.get(&h) {
        return Ok(Some(p));
    }
    let Some(rec) = store::find_live(&app.db, &h).await? else {
        return Ok(None);
    };
    let Some(role) = Role::from_code(&rec.role) else {
        return Ok(None);
    };
    let p = Principal {
        name: rec.name,
        role,
        kind: PrincipalKind::Token { token_id: rec.id },
    };
    app.token_cache.put(h, p.clone());
    Ok(Some(p))
}

pub async fn list(app: &App) -> Result<Vec<TokenRecord>> {
    Ok(store::list(&app.db).await?)
}

pub async fn revoke(app: &App, id: i64) -> Result<()> {
    let mut tx = app.db.begin().await?;
    let done = store::revoke(&mut tx, id, app.now()).await?;
    tx.commit().await?;
    app.token_cache.clear();
    if done {
        Ok(())
    } else {
        Err(AppError::NotFound("token"))
    }
}
