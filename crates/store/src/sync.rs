//! The synchronous SQLite read path for point reads.
//!
//! sqlx runs every SQLite connection on a thread of its own and hands each
//! query, and each row, across channels; on a small machine those hand-offs
//! cost more than the reads themselves (see docs/benchmarks.md). Point
//! reads (one patient, one patient's visits, a page of search results)
//! take microseconds on a warm cache, so here they run inline on the
//! calling thread on a small pool of read-only connections, with the same
//! SQL text and the same row decoders as the sqlx path. Scans and writes
//! stay on sqlx, except the short write transactions that run inline on
//! the [`WriteGate`]'s connection (see [`InlineTx`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::SecondsFormat;
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
            Value::Bool(v) => ToSqlOutput::Owned(
                v.map(|b| SqlValue::Integer(b as i64))
                    .unwrap_or(SqlValue::Null),
            ),
            Value::Date(v) => return v.to_sql(),
            // The text sqlx writes (`2026-11-22T08:00:00.5+00:00`): stored
            // times compare as text, so every writer and every bound
            // parameter must spell them the same way.
            Value::Time(v) => ToSqlOutput::Owned(
                v.map(|t| SqlValue::Text(t.to_rfc3339_opts(SecondsFormat::AutoSi, false)))
                    .unwrap_or(SqlValue::Null),
            ),
        })
    }
}

/// Opens a read-write connection with the settings every SQLite
/// connection of ours has.
fn open_writer(path: &Path) -> Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    c.busy_timeout(Duration::from_secs(10))?;
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -16384; PRAGMA temp_store = memory;",
    )?;
    c.set_prepared_statement_cache_capacity(128);
    Ok(c)
}

/// The right to write to an SQLite database, and the connection that
/// inline transactions write with.
///
/// SQLite has one writer at a time. Every write transaction of ours holds
/// this gate while it runs, whether it writes through sqlx's writer
/// connection or inline on the gate's own connection, so the two never
/// wait on each other's file locks (SQLite's busy handler sleeps, and a
/// queue of writers sleeping in turn is slow). Waiting writers queue in
/// the order they came (tokio's mutex is fair).
#[derive(Clone)]
pub struct WriteGate {
    conn: Arc<tokio::sync::Mutex<Connection>>,
}

impl std::fmt::Debug for WriteGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteGate").finish_non_exhaustive()
    }
}

impl WriteGate {
    pub fn open(path: &Path) -> Result<Self> {
        Ok(WriteGate {
            conn: Arc::new(tokio::sync::Mutex::new(open_writer(path)?)),
        })
    }

    /// Waits for the gate.
    pub async fn enter(&self) -> tokio::sync::OwnedMutexGuard<Connection> {
        self.conn.clone().lock_owned().await
    }
}

/// A write transaction whose statements run inline on the calling thread,
/// on the gate's connection: no hand-off to another thread per statement.
/// Statements are prepared once and cached on the connection.
///
/// Repository functions that take a [`crate::Tx`] say whether they accept
/// this kind; those that do not answer [`StoreError::NotInline`].
pub struct InlineTx {
    conn: tokio::sync::OwnedMutexGuard<Connection>,
    open: bool,
}

impl InlineTx {
    pub(crate) async fn begin(gate: &WriteGate) -> Result<Self> {
        let conn = gate.enter().await;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(InlineTx { conn, open: true })
    }

    pub(crate) fn commit(mut self) -> Result<()> {
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(())
    }

    pub(crate) fn rollback(mut self) -> Result<()> {
        self.open = false;
        self.conn.execute_batch("ROLLBACK")?;
        Ok(())
    }

    /// Runs one statement; returns the rows it changed.
    pub(crate) fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let mut st = self.conn.prepare_cached(sql)?;
        bind_by_number(&mut st, params)?;
        Ok(st.raw_execute()? as u64)
    }

    /// Runs one query and maps every row.
    pub(crate) fn query<T>(
        &mut self,
        sql: &str,
        params: &[Value],
        mut map: impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut st = self.conn.prepare_cached(sql)?;
        bind_by_number(&mut st, params)?;
        let mut rows = st.raw_query();
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(map(r)?);
        }
        Ok(out)
    }

    /// Runs the single-row statement `insert` + `then` once per row of
    /// `rows` (bound by position); returns the rows changed.
    pub(crate) fn insert_each(
        &mut self,
        insert: &str,
        then: &str,
        rows: &[Vec<Value>],
    ) -> Result<u64> {
        let sql = format!("{insert}{then}");
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut done = 0;
        for row in rows {
            for (i, v) in row.iter().enumerate() {
                st.raw_bind_parameter(i + 1, v)?;
            }
            done += st.raw_execute()? as u64;
        }
        Ok(done)
    }
}

impl Drop for InlineTx {
    fn drop(&mut self) {
        if self.open {
            // Nothing to report to: the caller is gone. SQLite rolls back
            // an open transaction on its own if even this fails.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Binds `params` to `st` by number: `$N` (and `?N`) take `params[N-1]`,
/// wherever and however often they appear; a bare `?` takes the value at
/// its position. This is how sqlx binds, so one SQL text serves both.
pub(crate) fn bind_by_number(st: &mut rusqlite::Statement<'_>, params: &[Value]) -> Result<()> {
    for i in 1..=st.parameter_count() {
        let n = match st.parameter_name(i) {
            Some(name) => name
                .trim_start_matches(['$', '?', ':', '@'])
                .parse::<usize>()
                .map_err(|_| StoreError::Config(format!("parameter {name} is not numbered")))?,
            None => i,
        };
        let v = params
            .get(n.wrapping_sub(1))
            .ok_or_else(|| StoreError::Config(format!("no value for parameter ${n}")))?;
        st.raw_bind_parameter(i, v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::query::FromAnyRow;
    use crate::{AnyRow, Db, Options};

    struct Row4(String, i64, String, Option<i64>, String);

    impl FromAnyRow for Row4 {
        fn from_any(r: &impl AnyRow) -> Result<Self> {
            Ok(Row4(
                r.col("a")?,
                r.col("b")?,
                r.col("c")?,
                r.col("d")?,
                r.col("kind")?,
            ))
        }
    }

    /// The inline connection binds `$N` by number (reused, out of order)
    /// and spells every value as sqlx does, so rows written either way
    /// are the same bytes and compare equal.
    #[tokio::test]
    async fn inline_statements_bind_and_store_values_as_sqlx_does() {
        let dir = std::env::temp_dir().join(format!("rapport-inline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let db = Db::open(Some(&url), &dir, &Options::default())
            .await
            .unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap() + Duration::microseconds(500);
        let insert = "INSERT INTO t (a, b, c, d) VALUES ($3, $1, $2, $4)";
        let params = [Value::from(7), at.into(), "x".into(), Value::Int(None)];
        let mut tx = db.begin().await.unwrap();
        tx.exec("CREATE TABLE t (a TEXT, b INTEGER, c TEXT, d INTEGER)", &[])
            .await
            .unwrap();
        tx.exec(insert, &params).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = db.begin_inline().await.unwrap();
        assert!(matches!(tx, crate::Tx::Inline(_)));
        tx.exec(insert, &params).await.unwrap();
        let select =
            "SELECT a, b, c, d, typeof(c) AS kind FROM t WHERE c = $2 AND b = $1 ORDER BY rowid";
        let rows: Vec<Row4> = tx.fetch(select, &params).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(rows.len(), 2, "both rows match the same bound time");
        for r in &rows {
            assert_eq!(
                (r.0.as_str(), r.1, r.2.as_str(), r.3, r.4.as_str()),
                ("x", 7, "2026-11-22T08:00:00.000500+00:00", None, "text")
            );
        }

        // A dropped inline transaction rolls back and frees the gate.
        {
            let mut tx = db.begin_inline().await.unwrap();
            tx.exec(insert, &params).await.unwrap();
        }
        let mut tx = db.begin().await.unwrap();
        let rows: Vec<Row4> = tx.fetch(select, &params).await.unwrap();
        assert_eq!(rows.len(), 2);
        // Functions written for sqlx refuse an inline transaction.
        tx.commit().await.unwrap();
        let mut tx = db.begin_inline().await.unwrap();
        assert!(matches!(
            crate::users::any_exists(&mut tx).await,
            Err(crate::StoreError::NotInline)
        ));
        drop(tx);
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
