//! Persistence of Rapport on SQLite (the embedded default) and PostgreSQL.
//!
//! Repositories are plain async functions over a [`Db`] (reads) or a
//! [`Tx`] (writes). The caller (the `app` crate) owns transactions: it
//! opens one, calls as many repository functions as the use case needs,
//! and commits. Nothing here knows about HTTP.

pub mod analytics;
pub mod audit;
pub mod bulk;
pub mod check;
pub mod consents;
pub mod console;
pub mod dashboard;
mod db;
pub mod duplicates;
pub mod hospitals;
pub mod import;
pub mod imports;
pub mod loyalty;
pub mod memory;
pub mod migrate;
pub mod patients;
mod query;
mod row;
pub mod segments;
pub mod sessions;
pub mod sync;
pub mod tokens;
pub mod users;
pub mod visits;

pub use db::{Db, Engine, Options, Tx};
pub use row::AnyRow;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (the entity named exists).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A referenced row does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A row names a parent row that does not exist (found when a bulk
    /// load's foreign keys were verified before its commit).
    #[error("broken reference: {0}")]
    Reference(String),
    /// The database could not be opened as configured.
    #[error("{0}")]
    Config(String),
    /// A stored value could not be read back (a corrupt or foreign row).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A repository function that only runs on sqlx's connections was
    /// given an inline transaction (a mistake in the caller).
    #[error("this operation cannot run in an inline transaction")]
    NotInline,
}

impl StoreError {
    /// [`StoreError::unique`] for an error of any connection (sqlx's or
    /// the inline one).
    pub(crate) fn on_unique(self, what: &'static str) -> StoreError {
        match self {
            StoreError::Database(e) => StoreError::unique(e, what),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StoreError::Conflict(what)
            }
            e => e,
        }
    }

    /// Maps a unique violation to `Conflict(what)`, leaving other errors.
    pub(crate) fn unique(e: sqlx::Error, what: &'static str) -> StoreError {
        match &e {
            sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::UniqueViolation => {
                StoreError::Conflict(what)
            }
            _ => StoreError::Database(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
