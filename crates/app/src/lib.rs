//! Use cases of Rapport: one function per thing a user does. Each opens
//! its own transaction, calls the store and the domain rules, and commits;
//! the HTTP server and the command line are thin shells around these.

pub mod analytics;
pub mod audit;
pub mod check;
pub mod console;
pub mod crypto;
pub mod dashboard;
pub mod demo;
pub mod duplicates;
pub mod export;
pub mod import;
pub mod loyalty;
pub mod patients;
pub mod principal;
pub mod privacy;
pub mod segments;
pub mod sessions;
pub mod tokens;
pub mod users;
pub mod visits;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use rapport_domain::ValidationErrors;
pub use rapport_store::{Db, Engine, Options, StoreError};

/// The source of "now"; tests substitute a fixed clock.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The application: a database, the hospital it serves, and a clock.
#[derive(Clone)]
pub struct App {
    pub db: Db,
    pub hospital_id: i64,
    clock: Clock,
    pub(crate) token_cache: tokens::TokenCache,
    /// Whether session cookies carry `Secure` (the server is reached over
    /// HTTPS, directly or behind a proxy).
    pub secure_cookies: bool,
    pub(crate) audit: audit::AuditBuffer,
    /// The keys that seal national ids (see `crypto`).
    pub keys: Arc<crypto::DataKeys>,
    /// Imports running in this process.
    pub imports: import::Running,
}

impl App {
    pub fn new(db: Db) -> Self {
        App {
            audit: audit::AuditBuffer::start(db.clone()),
            keys: Arc::new(crypto::DataKeys::none()),
            db,
            hospital_id: 1,
            clock: Arc::new(Utc::now),
            token_cache: Default::default(),
            secure_cookies: false,
            imports: Default::default(),
        }
    }

    pub fn with_keys(mut self, keys: crypto::DataKeys) -> Self {
        self.keys = Arc::new(keys);
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Today's date. Dates are calendar dates of the hospital; until
    /// hospitals carry their own zone in configuration this is UTC+8
    /// (China Standard Time, no daylight saving).
    pub fn today(&self) -> NaiveDate {
        (self.now() + chrono::Duration::hours(8)).date_naive()
    }
}

/// What a use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid input: {0}")]
    Validation(#[from] ValidationErrors),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A conflict with a stable code (`patient_exists`).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("not permitted")]
    Forbidden,
    /// A login or password that does not match (`invalid_credentials`).
    #[error("invalid login or password")]
    InvalidCredentials,
    /// Too many failed logins (`account_locked`).
    #[error("the account is locked until {until}")]
    AccountLocked { until: DateTime<Utc> },
    /// A failure inside the program (a hashing thread that died).
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<crypto::CryptoError> for AppError {
    fn from(e: crypto::CryptoError) -> Self {
        match e {
            crypto::CryptoError::NoKey => AppError::Validation(ValidationErrors::single(
                "national_id",
                "no_data_key",
                "national ids cannot be stored: no data key is configured",
            )),
            other => AppError::Store(StoreError::Corrupt(other.to_string())),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AppError::NotFound(what),
            StoreError::Conflict(what) => AppError::Conflict {
                code: match what {
                    "patient" => "patient_exists",
                    "visit" => "visit_exists",
                    _ => "conflict",
                },
                message: format!("{what} already exists"),
            },
            e => AppError::Store(e),
        }
    }
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;
