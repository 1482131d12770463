//! Staff accounts: create, list, deactivate, and the first administrator
//! of a new installation. Passwords are hashed with argon2id (the OWASP
//! parameters: 19 MiB, two passes, one lane); the PHC string records the
//! parameters, so hashes made with other ones still verify.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::{Rng, RngCore};
use rapport_domain::ValidationErrors;
use rapport_domain::auth::Role;
use rapport_domain::staff;
pub use rapport_store::users::UserRecord;
use rapport_store::users::{self as store, NewUser};
use rapport_store::{StoreError, sessions as session_store};
use tokio::sync::Semaphore;

use crate::{App, AppError, Result};

/// argon2id with 19 MiB, t = 2, p = 1 (OWASP's first recommendation).
fn hasher() -> Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, Some(32))
        .map_err(|e| AppError::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// At most this many hashes are computed at once: each takes 19 MiB and a
/// core for tens of milliseconds, and a burst of logins must not take the
/// memory or every core.
static HASHING: Semaphore = Semaphore::const_new(4);

async fn on_hashing_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| AppError::Internal(format!("hashing semaphore: {e}")))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(format!("hashing task: {e}")))
}

/// Hashes a password into an argon2id PHC string with a fresh 128-bit salt.
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_owned();
    on_hashing_thread(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        hasher()?
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AppError::Internal(format!("argon2: {e}")))
    })
    .await?
}

/// Whether `password` matches the PHC string `hash`. A malformed stored
/// hash matches nothing (and is logged).
pub async fn verify_password(hash: &str, password: &str) -> Result<bool> {
    let (hash, password) = (hash.to_owned(), password.to_owned());
    on_hashing_thread(move || {
        let argon = hasher()?;
        match argon.verify_password(password.as_bytes(), hash.as_str()) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(e) => {
                tracing::error!(error = %e, "a stored password hash cannot be read");
                Ok(false)
            }
        }
    })
    .await?
}

/// A hash of a random password, verified against when a login is unknown
/// so that an unknown login costs as much time as a wrong password.
pub(crate) async fn dummy_hash() -> Result<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h);
    }
    let h = hash_password(&generate_password()).await?;
    Ok(DUMMY.get_or_init(|| h))
}

/// Letters and digits that cannot be mistaken for one another (no 0/O,
/// 1/l/I).
const UNAMBIGUOUS: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A random 20-character password (about 115 bits).
pub fn generate_password() -> String {
    let mut rng = rand::rng();
    (0..20)
        .map(|_| UNAMBIGUOUS[rng.random_range(0..UNAMBIGUOUS.len())] as char)
        .collect()
}

fn parse_role(role: &str, errors: &mut ValidationErrors) -> Option<Role> {
    let r = Role::from_code(role.trim());
    if r.is_none() {
        let all: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        errors.push(
            "role",
            "invalid_enum",
            format!("must be one of {}", all.join(", ")),
        );
    }
    r
}

/// Creates an account. The display name defaults to the login.
pub async fn create(
    app: &App,
    login: &str,
    role: &str,
    display_name: Option<&str>,
    password: &str,
) -> Result<UserRecord> {
    let mut errors = ValidationErrors::default();
    let login_ok = staff::parse_login(login)
        .map_err(|e| errors.0.extend(e.0))
        .ok();
    let role = parse_role(role, &mut errors);
    let name = staff::parse_display_name(display_name.unwrap_or(login))
        .map_err(|e| errors.0.extend(e.0))
        .ok();
    if let Err(e) = staff::check_password("password", login, password) {
        errors.0.extend(e.0);
    }
    let (Some(login), Some(role), Some(name), true) = (login_ok, role, name, errors.is_empty())
    else {
        return Err(errors.into());
    };
    let hash = hash_password(password).await?;
    let mut tx = app.db.begin().await?;
    let new = NewUser {
        login: &login,
        display_name: &name,
        role: role.as_str(),
        password_hash: &hash,
    };
    let id = match store::insert(&mut tx, &new, app.now()).await {
        Ok(id) => id,
        Err(StoreError::Conflict(_)) => {
            return Err(AppError::Conflict {
                code: "user_exists",
                message: format!("a user with the login {login} exists"),
            });
        }
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    tracing::info!(user_id = id, login = %login, role = %role, "user created");
    get(app, id).await
}

pub async fn list(app: &App) -> Result<Vec<UserRecord>> {
    Ok(store::list(&app.db).await?)
}

pub async fn get(app: &App, id: i64) -> Result<UserRecord> {
    store::get(&app.db, id)
        .await?
        .ok_or(AppError::NotFound("user"))
}

pub async fn find_by_login(app: &App, login: &str) -> Result<UserRecord> {
    let login = login.trim().to_lowercase();
    store::find_by_login(&app.db, &login)
        .await?
        .ok_or(AppError::NotFound("user"))
}

/// Deactivates an account and ends its sessions. Accounts are never
/// deleted (their id stays meaningful in the audit log). The last active
/// administrator cannot be deactivated.
pub async fn deactivate(app: &App, id: i64) -> Result<UserRecord> {
    let user = get(app, id).await?;
    if !user.active {
        return Ok(user);
    }
    let now = app.now();
    let mut tx = app.db.begin().await?;
    if user.role == Role::Admin.as_str()
        && store::count_active_with_role(&mut tx, Role::Admin.as_str()).await? <= 1
    {
        return Err(AppError::Conflict {
            code: "last_admin",
            message: "the last active administrator cannot be deactivated".into(),
        });
    }
    store::deactivate(&mut tx, id).await?;
    let ended = session_store::revoke_all_of_user(&mut tx, id, None, now).await?;
    tx.commit().await?;
    tracing::info!(user_id = id, login = %user.login, sessions_ended = ended, "user deactivated");
    get(app, id).await
}

/// Sets a new password without the current one (an operator's command
/// for a forgotten password): unlocks the account and ends its sessions.
pub async fn reset_password(app: &App, id: i64, password: &str) -> Result<()> {
    let user = get(app, id).await?;
    staff::check_password("password", &user.login, password)?;
    let hash = hash_password(password).await?;
    let now = app.now();
    let mut tx = app.db.begin().await?;
    store::set_password(&mut tx, id, &hash, now).await?;
    store::unlock(&mut tx, id).await?;
    let ended = session_store::revoke_all_of_user(&mut tx, id, None, now).await?;
    tx.commit().await?;
    tracing::info!(user_id = id, login = %user.login, sessions_ended = ended, "password reset");
    Ok(())
}

/// The login of the administrator created on first run.
pub const FIRST_ADMIN: &str = "admin";

/// On a database without any account, creates the administrator `admin`
/// with a random password and returns that password (the only time it is
/// known). `None` when an account exists.
pub async fn ensure_first_admin(app: &App) -> Result<Option<String>> {
    let mut tx = app.db.begin().await?;
    let exists = store::any_exists(&mut tx).await?;
    drop(tx);
    if exists {
        return Ok(None);
    }
    let password = generate_password();
    let hash = hash_password(&password).await?;
    let mut tx = app.db.begin().await?;
    if store::any_exists(&mut tx).await? {
        return Ok(None);
    }
    let new = NewUser {
        login: FIRST_ADMIN,
        display_name: "Administrator",
        role: Role::Admin.as_str(),
        password_hash: &hash,
    };
    match store::insert(&mut tx, &new, app.now()).await {
        Ok(_) => {}
        // Another instance starting at the same time won.
        Err(StoreError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    tracing::info!(login = FIRST_ADMIN, "first administrator created");
    Ok(Some(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_random_and_unambiguous() {
        let a = generate_password();
        assert_eq!(a.chars().count(), 20);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c))
        );
        assert_ne!(a, generate_password());
        assert!(staff::check_password("password", FIRST_ADMIN, &a).is_ok());
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let h = hash_password("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "correct horse battery").await.unwrap());
        assert!(!verify_password(&h, "correct horse battery!").await.unwrap());
        assert!(!verify_password("not a hash", "x").await.unwrap());
        assert_ne!(h, hash_password("correct horse battery").await.unwrap());
    }
}
