//! Staff accounts: the rules for logins, display names and passwords, and
//! the lockout schedule after failed logins. Pure functions; hashing and
//! storage live in `rapport-app` and `rapport-store`.

use std::time::Duration;

use crate::ValidationErrors;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (hashing cost grows with the input).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Consecutive failed logins that lock an account.
pub const FAILURES_PER_LOCK: i64 = 5;
/// The first lock; each further one is twice as long.
pub const FIRST_LOCK: Duration = Duration::from_secs(15 * 60);
/// The longest lock.
pub const MAX_LOCK: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses a login: trimmed, lowercased (logins are case-insensitive), 1 to
/// 64 characters of letters, digits, `.`, `_`, `-` and `@`.
pub fn parse_login(login: &str) -> Result<String, ValidationErrors> {
    let login = login.trim().to_lowercase();
    let ok_char = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    let n = login.chars().count();
    if n == 0 || n > 64 || !login.chars().all(ok_char) {
        return Err(ValidationErrors::single(
            "login",
            "invalid_login",
            "must be 1 to 64 letters, digits, '.', '_', '-' or '@'",
        ));
    }
    Ok(login)
}

/// Parses a display name: trimmed, 1 to 100 characters.
pub fn parse_display_name(name: &str) -> Result<String, ValidationErrors> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > 100 || name.chars().any(char::is_control) {
        return Err(ValidationErrors::single(
            "display_name",
            "invalid_text",
            "must be 1 to 100 characters",
        ));
    }
    Ok(name.to_string())
}

/// The password policy: at least [`MIN_PASSWORD_CHARS`] characters, at most
/// [`MAX_PASSWORD_CHARS`], and not the login itself. `field` names the
/// field in the error (`password`, `new_password`).
pub fn check_password(field: &str, login: &str, password: &str) -> Result<(), ValidationErrors> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(ValidationErrors::single(
            field,
            "password_too_short",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(ValidationErrors::single(
            field,
            "password_too_long",
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    if password.trim().to_lowercase() == login.trim().to_lowercase() {
        return Err(ValidationErrors::single(
            field,
            "password_is_login",
            "must not be the login",
        ));
    }
    Ok(())
}

/// How long to lock an account whose consecutive failed logins have just
/// reached `failures`, or `None` when this failure does not lock it.
///
/// Every [`FAILURES_PER_LOCK`]th consecutive failure locks: the first lock
/// lasts [`FIRST_LOCK`], each further lock twice the one before, at most
/// [`MAX_LOCK`]. A successful login resets the count, and with it the
/// doubling.
pub fn lock_after_failures(failures: i64) -> Option<Duration> {
    if failures <= 0 || failures % FAILURES_PER_LOCK != 0 {
        return None;
    }
    let nth = (failures / FAILURES_PER_LOCK - 1).min(16) as u32;
    Some(FIRST_LOCK.saturating_mul(1 << nth).min(MAX_LOCK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_lowercased_and_restricted() {
        assert_eq!(parse_login("  Li.Na@Ward3 ").unwrap(), "li.na@ward3");
        assert_eq!(parse_login("王医生").unwrap(), "王医生");
        for bad in ["", "  ", "a b", "a/b", &"x".repeat(65)] {
            let e = parse_login(bad).unwrap_err();
            assert_eq!(e.0[0].field, "login", "{bad:?}");
        }
    }

    #[test]
    fn password_policy() {
        assert!(check_password("password", "li", "correct horse").is_ok());
        assert!(check_password("password", "li", "短短短短短短短短短短短短").is_ok());
        let e = check_password("password", "li", "elevenchars").unwrap_err();
        assert_eq!(
            (e.0[0].field.as_str(), e.0[0].code),
            ("password", "password_too_short")
        );
        let e = check_password("new_password", "administrator", "Administrator").unwrap_err();
        assert_eq!(
            (e.0[0].field.as_str(), e.0[0].code),
            ("new_password", "password_is_login")
        );
        let e = check_password("password", "li", &"x".repeat(257)).unwrap_err();
        assert_eq!(e.0[0].code, "password_too_long");
        assert!(check_password("password", "li", &"x".repeat(256)).is_ok());
    }

    #[test]
    fn lockout_schedule_doubles_up_to_a_day() {
        let min = |m: u64| Some(Duration::from_secs(m * 60));
        assert_eq!(lock_after_failures(0), None);
        for n in 1..5 {
            assert_eq!(lock_after_failures(n), None);
        }
        assert_eq!(lock_after_failures(5), min(15));
        assert_eq!(lock_after_failures(6), None);
        assert_eq!(lock_after_failures(10), min(30));
        assert_eq!(lock_after_failures(15), min(60));
        assert_eq!(lock_after_failures(20), min(120));
        assert_eq!(lock_after_failures(35), min(960));
        assert_eq!(lock_after_failures(40), min(24 * 60));
        assert_eq!(lock_after_failures(1_000_000), min(24 * 60));
    }
}
