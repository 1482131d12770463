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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::SecondsFormat;
use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};

use crate::check::ForeignKey;

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
        self.with(|c| query_on(c, sql, params, &mut map))
    }
}

/// Runs a query on `conn`, its statement prepared once and cached, and
/// maps every row: the one body of the inline reads and writes.
fn query_on<T>(
    conn: &Connection,
    sql: &str,
    params: &[Value],
    map: &mut impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut st = conn.prepare_cached(sql)?;
    bind_by_number(&mut st, params)?;
    let mut rows = st.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(map(r)?);
    }
    Ok(out)
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Int(v) => ToSqlOutput::Owned(v.map(SqlValue::Integer).unwrap_or(SqlValue::Null)),
            Value::Text(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Value::Text(None) => ToSqlOutput::Owned(SqlValue::Null),
            Value::Float(v) => ToSqlOutput::Owned(v.map(SqlValue::Real).unwrap_or(SqlValue::Null)),
            Value::Bool(v) => ToSqlOutput::Owned(
                v.map(|b| SqlValue::Integer(b as i64))
                    .unwrap_or(SqlValue::Null),
            ),
            // ISO 8601, as rusqlite writes a date, without its format
            // string.
            Value::Date(v) => ToSqlOutput::Owned(
                v.map(|d| SqlValue::Text(d.to_string()))
                    .unwrap_or(SqlValue::Null),
            ),
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
fn open_rw(path: &Path) -> Result<Connection> {
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
    Ok(c)
}

/// The gate connection's page cache, in KiB: the pages point writes touch
/// (balances, lots, the ledger's and the audit log's indexes), which are
/// spread over the whole ledger as it grows.
const CACHE_KIB: i64 = 16_384;
/// Its page cache during a bulk load, in KiB. A load touches pages all
/// over the patients table (lookups by the hospital's id, except in a
/// first visits load, which reads the keys once); a page evicted
/// mid-transaction goes to the log and is read back from it. The import
/// keeps the patients' aggregates itself (about 50 MB, see
/// `app::import::aggregates`) and, in a first load, the patients' keys
/// and its filters (about 60 MB): together they stay within its memory
/// bound.
const BULK_CACHE_KIB: i64 = 65_536;

/// Most transactions committed together in one group.
const MAX_GROUP: usize = 64;
/// How long a transaction whose group is still open waits before closing
/// the group itself (when the writer it was handed to went away).
const GROUP_NUDGE: Duration = Duration::from_millis(5);
/// How often the checkpointer looks at the write-ahead log.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The gate's connection and the group of transactions open on it.
pub struct Writer {
    conn: Connection,
    /// A transaction (a group) is open on `conn`.
    open: bool,
    /// The number of the open group, or of the last one.
    group: u64,
    /// Transactions that joined the open group.
    members: usize,
}

/// What became of the groups: the last one finished, and the recent ones
/// whose commit failed.
#[derive(Debug, Default)]
struct Finished {
    group: u64,
    failed: Vec<u64>,
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
///
/// **Group commit.** A commit costs more than a short transaction's
/// statements (the log's pages are written, the page cache is walked). So
/// when an inline transaction ends while other writers wait, it does not
/// commit: it hands the still-open transaction to the next writer, which
/// joins it under a savepoint, and waits until the group commits. The
/// last of a group (no one waiting, or [`MAX_GROUP`] members) commits for
/// all; every member learns the outcome before it answers, so nothing is
/// reported done before it is durable, and a member that fails rolls back
/// its savepoint alone. A sqlx transaction finishes an open group before
/// it starts.
///
/// **Checkpoints** run on a thread of their own (passive: they never
/// block a writer), not inside the commit of whoever crossed the log's
/// size threshold.
#[derive(Clone)]
pub struct WriteGate {
    writer: Arc<tokio::sync::Mutex<Writer>>,
    waiting: Arc<AtomicUsize>,
    finished: Arc<tokio::sync::watch::Sender<Finished>>,
}

impl std::fmt::Debug for WriteGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteGate").finish_non_exhaustive()
    }
}

/// Counts a writer waiting for the gate, until it has it (or gives up).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WriteGate {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = open_rw(path)?;
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -{CACHE_KIB}; \
             PRAGMA journal_size_limit = {LOG_LIMIT_BYTES};"
        ))?;
        conn.set_prepared_statement_cache_capacity(128);
        let writer = Arc::new(tokio::sync::Mutex::new(Writer {
            conn,
            open: false,
            group: 0,
            members: 0,
        }));
        let finished = Arc::new(tokio::sync::watch::Sender::new(Finished::default()));
        spawn_checkpointer(path, Arc::downgrade(&writer), Arc::downgrade(&finished))?;
        Ok(WriteGate {
            writer,
            waiting: Arc::new(AtomicUsize::new(0)),
            finished,
        })
    }

    async fn lock(&self) -> tokio::sync::OwnedMutexGuard<Writer> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        self.writer.clone().lock_owned().await
    }

    /// Waits for the gate, for a write through another connection: an open
    /// group is committed first.
    pub async fn enter(&self) -> tokio::sync::OwnedMutexGuard<Writer> {
        let mut w = self.lock().await;
        // Its members learn of a failure; this writer starts afresh.
        let _ = self.finish_group(&mut w);
        w
    }

    /// Commits the open group, if any, and tells its members.
    fn finish_group(&self, w: &mut Writer) -> Result<()> {
        finish_group(w, &self.finished)
    }

    /// Waits until `group` is finished; closes it if nobody else does.
    async fn await_group(&self, group: u64) -> Result<()> {
        let mut rx = self.finished.subscribe();
        loop {
            let outcome = tokio::time::timeout(GROUP_NUDGE, async {
                rx.wait_for(|f| f.group >= group)
                    .await
                    .map(|f| !f.failed.contains(&group))
            })
            .await;
            match outcome {
                Ok(Ok(true)) => return Ok(()),
                Ok(Ok(false)) => {
                    return Err(StoreError::Config(
                        "the write could not be committed".into(),
                    ));
                }
                Ok(Err(_)) => return Err(StoreError::Config("the database was closed".into())),
                Err(_) => {
                    let mut w = self.lock().await;
                    if w.open && w.group == group {
                        let _ = self.finish_group(&mut w);
                    }
                }
            }
        }
    }
}

/// Commits the open group, if any, and tells its members.
fn finish_group(w: &mut Writer, finished: &tokio::sync::watch::Sender<Finished>) -> Result<()> {
    if !w.open {
        return Ok(());
    }
    let r = w.conn.control("COMMIT");
    if r.is_err() {
        let _ = w.conn.execute_batch("ROLLBACK");
    }
    w.open = false;
    let group = w.group;
    finished.send_modify(|f| {
        f.group = group;
        if r.is_err() {
            f.failed.push(group);
            let excess = f.failed.len().saturating_sub(64);
            f.failed.drain(..excess);
        }
    });
    Ok(r?)
}

/// Runs a transaction-control statement (`BEGIN`, `SAVEPOINT`, …),
/// prepared once: every inline transaction runs two or three of them.
trait Control {
    fn control(&self, sql: &str) -> rusqlite::Result<()>;
}

impl Control for Connection {
    fn control(&self, sql: &str) -> rusqlite::Result<()> {
        self.prepare_cached(sql)?.raw_execute().map(|_| ())
    }
}

/// Log frames (pages) beyond which the checkpointer restarts the log.
const RESTART_FRAMES: i64 = 65_536;
/// What the log is cut back to when it restarts (`journal_size_limit`,
/// every writing connection): a bulk load grows it to gigabytes.
pub(crate) const LOG_LIMIT_BYTES: i64 = RESTART_FRAMES * 4096;

/// Checkpoints the write-ahead log every [`CHECKPOINT_EVERY`] while the
/// gate lives. A passive checkpoint copies what it can without waiting;
/// but the log only starts over from its beginning when a writer begins
/// while every frame is copied and no reader needs the log, which a
/// steady stream of grouped writes and point reads never allows. So once
/// the log passes [`RESTART_FRAMES`], the checkpointer takes the gate
/// (writers queue behind it), commits any open group, and restarts the
/// log (waiting for the readers of the moment, which are short); the file
/// keeps its space for reuse, cut back to `journal_size_limit`.
fn spawn_checkpointer(
    path: &Path,
    writer: std::sync::Weak<tokio::sync::Mutex<Writer>>,
    finished: std::sync::Weak<tokio::sync::watch::Sender<Finished>>,
) -> Result<()> {
    let conn = open_rw(path)?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while writer.strong_count() > 0 {
                std::thread::sleep(CHECKPOINT_EVERY);
                // Busy or not, the next round tries again.
                let frames: i64 = conn
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
                    .unwrap_or(0);
                if frames < RESTART_FRAMES {
                    continue;
                }
                let (Some(writer), Some(finished)) = (writer.upgrade(), finished.upgrade()) else {
                    break;
                };
                let mut w = writer.blocking_lock();
                let _ = finish_group(&mut w, &finished);
                let _ = w
                    .conn
                    .query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
            }
        })
        .map_err(|e| StoreError::Config(format!("cannot start the checkpointer: {e}")))?;
    Ok(())
}

/// A write transaction whose statements run inline on the calling thread,
/// on the gate's connection: no hand-off to another thread per statement.
/// Statements are prepared once and cached on the connection. It may
/// share its commit with other inline transactions ([`WriteGate`]).
///
/// Repository functions that take a [`crate::Tx`] say whether they accept
/// this kind; those that do not answer [`StoreError::NotInline`].
pub struct InlineTx {
    w: Option<tokio::sync::OwnedMutexGuard<Writer>>,
    gate: WriteGate,
    /// Joined an open group: this transaction is a savepoint in it.
    savepoint: bool,
    /// A bulk load: the page cache is enlarged until it ends.
    bulk: bool,
    /// Foreign keys are not checked row by row; every one is verified
    /// before the commit ([`InlineTx::begin_unchecked`]).
    unchecked: bool,
}

impl InlineTx {
    /// Starts a transaction; `join` lets it join an open group (short
    /// transactions), otherwise the group is committed first (a bulk
    /// load, whose savepoint would journal every page it touches).
    pub(crate) async fn begin(gate: &WriteGate, join: bool) -> Result<Self> {
        Self::begin_with(gate, join, false).await
    }

    /// A bulk load's transaction without the row-by-row foreign-key
    /// checks: each inserted row's parents are looked up where they lie,
    /// which for rows pointing at random patients among millions is a
    /// read of the disk or the log per row, most of such a load's time.
    /// Instead, before the commit, every foreign key of the database is
    /// verified once, in key order ([`verify_references`]); a violation
    /// fails the commit and the transaction rolls back.
    pub(crate) async fn begin_unchecked(gate: &WriteGate) -> Result<Self> {
        Self::begin_with(gate, false, true).await
    }

    async fn begin_with(gate: &WriteGate, join: bool, unchecked: bool) -> Result<Self> {
        let mut w = gate.lock().await;
        if w.open && !join {
            let _ = gate.finish_group(&mut w);
        }
        if unchecked {
            // Outside a transaction, or SQLite ignores it.
            w.conn.execute_batch("PRAGMA foreign_keys = OFF")?;
        }
        if !join {
            w.conn
                .execute_batch(&format!("PRAGMA cache_size = -{BULK_CACHE_KIB}"))?;
        }
        let savepoint = if w.open {
            w.conn.control("SAVEPOINT tx")?;
            true
        } else {
            w.conn.control("BEGIN IMMEDIATE")?;
            w.open = true;
            w.group += 1;
            w.members = 0;
            false
        };
        w.members += 1;
        Ok(InlineTx {
            w: Some(w),
            gate: gate.clone(),
            savepoint,
            bulk: !join,
            unchecked,
        })
    }

    fn writer(&mut self) -> Result<&mut Writer> {
        self.w
            .as_deref_mut()
            .ok_or_else(|| StoreError::Config("the transaction has ended".into()))
    }

    fn conn(&mut self) -> Result<&Connection> {
        Ok(&self.writer()?.conn)
    }

    /// Writes the transaction's dirty pages to the log (it stays open)
    /// and frees the page cache, giving the memory back: a bulk load's
    /// cache is mostly dirty pages, which shrinking the cache alone does
    /// not free.
    pub(crate) fn release_cache(&mut self) -> Result<()> {
        let conn = self.conn()?;
        conn.cache_flush()?;
        conn.release_memory()?;
        crate::memory::give_back();
        Ok(())
    }

    /// Ends the transaction; answers once its group is committed.
    pub(crate) async fn commit(mut self) -> Result<()> {
        if self.savepoint {
            // On failure the guard stays here and `drop` rolls back.
            self.conn()?.control("RELEASE tx")?;
        }
        let mut w = self
            .w
            .take()
            .ok_or_else(|| StoreError::Config("the transaction has ended".into()))?;
        let group = w.group;
        if self.bulk {
            let r = match self.unchecked {
                true => verify_references(&w.conn),
                false => Ok(()),
            };
            let r = r.and_then(|()| self.gate.finish_group(&mut w));
            if r.is_err() {
                let _ = w.conn.execute_batch("ROLLBACK");
                w.open = false;
            }
            restore_cache(&w);
            restore_checks(&w, self.unchecked);
            return r;
        }
        if self.gate.waiting.load(Ordering::SeqCst) > 0 && w.members < MAX_GROUP {
            drop(w);
            self.gate.await_group(group).await
        } else {
            self.gate.finish_group(&mut w)
        }
    }

    pub(crate) fn rollback(self) -> Result<()> {
        drop(self);
        Ok(())
    }

    /// Runs one statement; returns the rows it changed.
    pub(crate) fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let mut st = self.conn()?.prepare_cached(sql)?;
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
        query_on(self.conn()?, sql, params, &mut map)
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
        let mut st = self.conn()?.prepare_cached(&sql)?;
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
    /// An unfinished transaction rolls back: its savepoint alone when it
    /// joined a group (the group goes on), the whole transaction when it
    /// began one (it is then the group's only member).
    fn drop(&mut self) {
        let Some(mut w) = self.w.take() else {
            return;
        };
        if self.savepoint {
            let _ = w.conn.execute_batch("ROLLBACK TO tx; RELEASE tx");
            w.members -= 1;
            if self.gate.waiting.load(Ordering::SeqCst) == 0 {
                let _ = self.gate.finish_group(&mut w);
            }
        } else {
            // Fails only when no transaction is open, which is the goal.
            let _ = w.conn.execute_batch("ROLLBACK");
            w.open = false;
        }
        if self.bulk {
            restore_cache(&w);
            restore_checks(&w, self.unchecked);
        }
    }
}

/// Turns the row-by-row foreign-key checks back on after a transaction
/// that had them off.
fn restore_checks(w: &Writer, unchecked: bool) {
    if unchecked {
        let _ = w.conn.execute_batch("PRAGMA foreign_keys = ON");
    }
}

/// Verifies every foreign key of the database, as `PRAGMA
/// foreign_key_check` would, but key by key ([`key_orphans`]).
pub(crate) fn verify_references(conn: &Connection) -> Result<()> {
    match key_orphans(conn, true)?.into_iter().find(|(_, n)| *n > 0) {
        Some((k, _)) => Err(StoreError::Reference(format!(
            "{}.{} names a {} row that does not exist",
            k.table, k.from, k.parent
        ))),
        None => Ok(()),
    }
}

/// Every foreign key of the database with how many of its distinct
/// values name no parent row, or with `first` only up to the first key
/// that has some. Each key's distinct values are read (in index order
/// where an index leads with the key, a table's other keys in one scan,
/// [`crate::check::key_groups`]) and each is looked up once in its
/// parent, instead of one lookup per child row in the child's order.
pub(crate) fn key_orphans(conn: &Connection, first: bool) -> Result<Vec<(ForeignKey, i64)>> {
    let keys = query_on(conn, crate::check::SQLITE_KEYS, &[], &mut |r| {
        <ForeignKey as crate::query::FromAnyRow>::from_any(r)
    })?;
    // The distinct values of a scan go to a temporary file, not memory.
    conn.execute_batch("PRAGMA temp_store = FILE")?;
    let found = orphans_by_key(conn, &keys, first);
    conn.execute_batch("PRAGMA temp_store = MEMORY")?;
    Ok(found?.into_iter().map(|(k, n)| (k.clone(), n)).collect())
}

fn orphans_by_key<'k>(
    conn: &Connection,
    keys: &'k [ForeignKey],
    first: bool,
) -> Result<Vec<(&'k ForeignKey, i64)>> {
    let orphans = |group: &[&ForeignKey]| -> Result<i64> {
        Ok(conn.query_row(&crate::check::orphans_sql(keys, group), [], |r| r.get(0))?)
    };
    let mut out = Vec::new();
    for group in crate::check::key_groups(keys) {
        if orphans(&group)? == 0 {
            out.extend(group.into_iter().map(|k| (k, 0)));
            continue;
        }
        // Which of the group's keys: each on its own.
        for k in group {
            let n = orphans(&[k])?;
            out.push((k, n));
            if first && n > 0 {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// Shrinks the page cache back after a bulk load and gives its pages back
/// to the allocator: a bulk load fills the cache with pages of the tables
/// it loaded, which later writes seldom need, and what follows a large
/// import (the score refresh) needs the memory.
fn restore_cache(w: &Writer) {
    // A cache left large only costs memory.
    let _ = w.conn.execute_batch(&format!(
        "PRAGMA cache_size = -{CACHE_KIB}; PRAGMA shrink_memory;"
    ));
    crate::memory::give_back();
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

    struct Count(i64);

    impl FromAnyRow for Count {
        fn from_any(r: &impl AnyRow) -> Result<Self> {
            Ok(Count(r.col("n")?))
        }
    }

    /// Many writers at once share commits: every transaction that was told
    /// it committed is in the database, every one that rolled back (its
    /// savepoint inside a group, or its whole transaction) is not, and
    /// sqlx writers in between finish open groups.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn grouped_commits_keep_exactly_the_committed_writes() {
        let dir = std::env::temp_dir().join(format!("rapport-group-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let db = Db::open(Some(&url), &dir, &Options::default())
            .await
            .unwrap();
        let mut tx = db.begin().await.unwrap();
        tx.exec("CREATE TABLE g (k INTEGER PRIMARY KEY)", &[])
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut tasks = Vec::new();
        for k in 0..400i64 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                if k % 50 == 25 {
                    // A writer through sqlx, in the middle of the groups.
                    let mut tx = db.begin().await.unwrap();
                    tx.exec("INSERT INTO g (k) VALUES ($1)", &[k.into()])
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                    return true;
                }
                let mut tx = db.begin_inline().await.unwrap();
                tx.exec("INSERT INTO g (k) VALUES ($1)", &[k.into()])
                    .await
                    .unwrap();
                if k % 7 == 3 {
                    // A failed use case: nothing of it may remain.
                    drop(tx);
                    return false;
                }
                if k % 11 == 5 {
                    // A refused statement inside a transaction that
                    // then commits what it did before.
                    let dup = tx.exec("INSERT INTO g (k) VALUES ($1)", &[k.into()]).await;
                    assert!(dup.is_err());
                }
                tx.commit().await.unwrap();
                true
            }));
        }
        let mut expected = 0;
        for t in tasks {
            if t.await.unwrap() {
                expected += 1;
            }
        }
        let mut tx = db.begin().await.unwrap();
        let n: Count = tx
            .fetch_one("SELECT COUNT(*) AS n FROM g", &[])
            .await
            .unwrap();
        let rolled_back: Count = tx
            .fetch_one(
                "SELECT COUNT(*) AS n FROM g WHERE k % 7 = 3 AND k % 50 <> 25",
                &[],
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(n.0, expected);
        assert_eq!(rolled_back.0, 0);
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
