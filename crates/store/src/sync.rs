//! The synchronous SQLite read path for point reads.
//!
//! sqlx runs every SQLite connection on a thread of its own and hands each
//! query, and each row, across channels; on a small machine those hand-offs
//! cost more than the reads themselves (see docs/benchmarks.md). Point
//! reads (one patient, one patient's visits, a page of search results)
//! take microseconds on a warm cache, so here they run inline on the
//! calling thread on a small pool of read-only connections, with the same
//! SQL text and the same row decoders as the sqlx path. Scans and writes
//! stay on sqlx.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, Value as SqlValue};
use rusqlite::{Connection, OpenFlags, ToSql};

use crate::bulk::Value;
use crate::{Result, StoreError};

/// A pool of read-only rusqlite connections to one database file.
#[derive(Clone)]
pub struct SyncReader {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
    max_idle: usize,
}

impl std::fmt::Debug for SyncReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncReader")
            .field("path", &self.path)
            .finish()
    }
}

impl SyncReader {
    pub fn new(path: &Path, max_idle: usize) -> Self {
        SyncReader {
            path: path.to_path_buf(),
            idle: Default::default(),
            max_idle,
        }
    }

    fn open(&self) -> Result<Connection> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        c.busy_timeout(Duration::from_secs(10))?;
        c.execute_batch("PRAGMA cache_size = -65536; PRAGMA temp_store = memory;")?;
        c.set_prepared_statement_cache_capacity(64);
        Ok(c)
    }

    /// Runs `f` on an idle connection (opening one when none is idle).
    pub fn with<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let conn = self
            .idle
            .lock()
            .map_err(|_| StoreError::Config("read pool poisoned".into()))?
            .pop();
        let conn = match conn {
            Some(c) => c,
            None => self.open()?,
        };
        let out = f(&conn);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push(conn);
        }
        out
    }

    /// Runs a query and maps every row.
    pub fn query<T>(
        &self,
        sql: &str,
        params: &[Value],
        mut map: impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.with(|c| {
            let mut st = c.prepare_cached(sql)?;
            let mut rows = st.query(rusqlite::params_from_iter(params.iter()))?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(map(r)?);
            }
            Ok(out)
        })
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Int(v) => ToSqlOutput::Owned(v.map(SqlValue::Integer).unwrap_or(SqlValue::Null)),
            Value::Text(v) => {
                ToSqlOutput::Owned(v.clone().map(SqlValue::Text).unwrap_or(SqlValue::Null))
            }
            Value::Float(v) => ToSqlOutput::Owned(v.map(SqlValue::Real).unwrap_or(SqlValue::Null)),
            Value::Date(v) => return v.to_sql(),
            Value::Time(v) => return v.to_sql(),
        })
    }
}
