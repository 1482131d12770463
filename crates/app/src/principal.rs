//! Who is calling: an API token or a staff member's web session.

use rapport_domain::auth::Role;

/// Who is calling. `name` and `role` are what most code needs; `kind`
/// says how the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name ("HIS sync") or the staff member's login.
    pub name: String,
    pub role: Role,
    pub kind: PrincipalKind,
}

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// An API token (`Authorization: Bearer`).
    Token { token_id: i64 },
    /// A staff member's web session (the session cookie).
    User {
        user_id: i64,
        login: String,
        session_id: i64,
    },
}

impl Principal {
    /// The API token's id, for token callers.
    pub fn token_id(&self) -> Option<i64> {
        match self.kind {
            PrincipalKind::Token { token_id } => Some(token_id),
            PrincipalKind::User { .. } => None,
        }
    }

    /// The staff account's id, for session callers.
    pub fn user_id(&self) -> Option<i64> {
        match self.kind {
            PrincipalKind::User { user_id, .. } => Some(user_id),
            PrincipalKind::Token { .. } => None,
        }
    }

    /// The staff account's login, for session callers.
    pub fn login(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::User { login, .. } => Some(login),
            PrincipalKind::Token { .. } => None,
        }
    }

    /// The web session's id, for session callers.
    pub fn session_id(&self) -> Option<i64> {
        match self.kind {
            PrincipalKind::User { session_id, .. } => Some(session_id),
            PrincipalKind::Token { .. } => None,
        }
    }
}
