//! The two engines behind one type.
//!
//! `Db` holds either an embedded SQLite database (one writer connection,
//! several readers, WAL) or a PostgreSQL pool. Repositories write one SQL
//! text with `$1` placeholders, which both drivers accept, and dispatch on
//! the engine with the [`on_tx!`] and [`on_read!`] macros; the generic code
//! is compiled once per engine, so each runs with its native types. Where
//! the engines really differ, the two texts stand side by side.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, PgPool, Postgres, Sqlite, SqlitePool};
use tracing::log::LevelFilter;

use crate::StoreError;
use crate::sync::{InlineTx, SyncReader, WriteGate};

/// Which engine a database runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A connected database.
#[derive(Clone, Debug)]
pub enum Db {
    /// `write` has exactly one connection: SQLite has one writer, and
    /// queueing writers in the pool is cheaper than retrying on `BUSY`.
    /// `sync` serves point reads inline (see `sync.rs`); `gate` is the
    /// right to write, held by every write transaction, and the
    /// connection of inline ones.
    Sqlite {
        write: SqlitePool,
        read: SqlitePool,
        sync: SyncReader,
        gate: WriteGate,
    },
    Postgres(PgPool),
}

/// An open write transaction.
pub enum Tx {
    Sqlite(SqliteTx),
    Postgres(sqlx::Transaction<'static, Postgres>),
    /// SQLite, with statements run inline (see [`Db::begin_inline`]).
    Inline(InlineTx),
}

/// A sqlx transaction on SQLite's writer connection, holding the write
/// gate until it ends.
pub struct SqliteTx {
    tx: sqlx::Transaction<'static, Sqlite>,
    _gate: tokio::sync::OwnedMutexGuard<crate::sync::Writer>,
}

impl std::ops::Deref for SqliteTx {
    type Target = sqlx::Transaction<'static, Sqlite>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Runs `$body` with `$c` bound to the transaction's sqlx connection,
/// once per engine. An inline transaction makes the enclosing function
/// return [`StoreError::NotInline`](crate::StoreError::NotInline): such
/// functions are written with `Tx::exec`/`Tx::fetch` instead.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::Tx::Sqlite(t) => {
                let $c = &mut ***t;
                $body
            }
            $crate::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::Tx::Inline(_) => return Err($crate::StoreError::NotInline.into()),
        }
    };
}

/// Runs `$body` with `$p` bound to the pool for reads, once per engine.
#[macro_export]
macro_rules! on_read {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite { read: $p, .. } => $body,
            $crate::Db::Postgres($p) => $body,
        }
    };
}

/// Options for opening a database.
#[derive(Debug, Clone)]
pub struct Options {
    /// Read connections (SQLite) or pool size (PostgreSQL).
    pub max_connections: u32,
}

impl Default for Options {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(2);
        Options {
            max_connections: (cpus * 4).clamp(4, 32),
        }
    }
}

impl Db {
    /// Opens the database named by `url` (`postgres://…`, `sqlite://PATH`),
    /// or `rapport.db` under `data_dir` when there is no URL, and applies
    /// any missing migrations.
    pub async fn open(
        url: Option<&str>,
        data_dir: &Path,
        opts: &Options,
    ) -> Result<Db, StoreError> {
        let db = match url {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Self::open_postgres(u, opts).await?
            }
            Some(u) if u.starts_with("sqlite:") => {
                let path = u
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                Self::open_sqlite(Path::new(path), opts).await?
            }
            Some(u) => {
                return Err(StoreError::Config(format!(
                    "unsupported database URL {u:?}: use postgres://… or sqlite://PATH"
                )));
            }
            None => {
                std::fs::create_dir_all(data_dir).map_err(|e| {
                    StoreError::Config(format!(
                        "cannot create data directory {}: {e}",
                        data_dir.display()
                    ))
                })?;
                Self::open_sqlite(&data_dir.join("rapport.db"), opts).await?
            }
        };
        crate::migrate::run(&db).await?;
        Ok(db)
    }

    async fn open_sqlite(path: &Path, opts: &Options) -> Result<Db, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Config(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let base = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a commit survives a process crash; only an
            // OS crash or power loss can lose the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            // Whichever connection restarts the log cuts it back, as the
            // gate's does: gigabytes of a bulk load would stay on disk.
            .pragma(
                "journal_size_limit",
                crate::sync::LOG_LIMIT_BYTES.to_string(),
            )
            // Bulk statements are long; our own tracing reports timings.
            .log_statements(LevelFilter::Off)
            .log_slow_statements(LevelFilter::Off, Duration::from_secs(60));
        let write = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(base.clone())
            .await?;
        // A local file cannot drop a connection: skip the ping on every
        // acquire, which costs a round trip to the connection's thread.
        let read = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(opts.max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.create_if_missing(false))
            .await?;
        let sync = SyncReader::new(path, opts.max_connections as usize);
        let gate = WriteGate::open(path)?;
        Ok(Db::Sqlite {
            write,
            read,
            sync,
            gate,
        })
    }

    async fn open_postgres(url: &str, opts: &Options) -> Result<Db, StoreError> {
        let co = PgConnectOptions::from_str(url)?
            .log_statements(LevelFilter::Off)
            .log_slow_statements(LevelFilter::Off, Duration::from_secs(60));
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(co)
            .await?;
        Ok(Db::Postgres(pool))
    }

    pub fn engine(&self) -> Engine {
        match self {
            Db::Sqlite { .. } => Engine::Sqlite,
            Db::Postgres(_) => Engine::Postgres,
        }
    }

    /// Starts a write transaction. On SQLite it takes the write lock at
    /// once (`BEGIN IMMEDIATE`), so a transaction that reads before it
    /// writes can never fail half-way with `SQLITE_BUSY`.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Db::Sqlite { write, gate, .. } => {
                let gate = gate.enter().await;
                Tx::Sqlite(SqliteTx {
                    tx: write.begin_with("BEGIN IMMEDIATE").await?,
                    _gate: gate,
                })
            }
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// Starts a write transaction whose statements, on SQLite, run inline
    /// on the calling thread ([`InlineTx`]): for short, frequent writes
    /// (points, one row at a time in bulk loads), where handing every
    /// statement to sqlx's connection thread would cost more than the
    /// statement. Only repository functions written with
    /// `Tx::exec`/`Tx::fetch` accept it. On PostgreSQL it is [`Db::begin`].
    pub async fn begin_inline(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Db::Sqlite { gate, .. } => Tx::Inline(InlineTx::begin(gate, true).await?),
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// [`Db::begin_inline`] for a bulk load: on SQLite it never joins
    /// other transactions' commit group (its savepoint would journal every
    /// page it touches); an open group is committed first.
    pub async fn begin_bulk(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Db::Sqlite { gate, .. } => Tx::Inline(InlineTx::begin(gate, false).await?),
            Db::Postgres(p) => {
                let mut tx = p.begin().await?;
                // A bulk transaction fills tables that were empty or small
                // when its statements were first planned, and PostgreSQL
                // would go on running the plan it made then (a scan of the
                // whole table per lookup, once the table holds millions of
                // rows). Each execution is planned for the table as it is.
                sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
                    .execute(&mut *tx)
                    .await?;
                Tx::Postgres(tx)
            }
        })
    }

    /// [`Db::begin_bulk`] for a load into empty tables: on SQLite the
    /// foreign keys are verified once before the commit rather than row
    /// by row (see `InlineTx::begin_unchecked`). PostgreSQL's loads set
    /// their keys aside themselves ([`crate::import::defer_upkeep`]).
    pub async fn begin_bulk_unchecked(&self) -> Result<Tx, StoreError> {
        match self {
            Db::Sqlite { gate, .. } => Ok(Tx::Inline(InlineTx::begin_unchecked(gate).await?)),
            Db::Postgres(_) => self.begin_bulk().await,
        }
    }

    /// Answers when the database is reachable.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_read!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { write, read, .. } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(p) => p.close().await,
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.tx.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
            Tx::Inline(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Undoes everything the transaction wrote (dropping it does too,
    /// but later; this waits until the database has done it).
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.tx.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
            Tx::Inline(t) => t.rollback()?,
        }
        Ok(())
    }

    pub fn engine(&self) -> Engine {
        match self {
            Tx::Sqlite(_) | Tx::Inline(_) => Engine::Sqlite,
            Tx::Postgres(_) => Engine::Postgres,
        }
    }
}
