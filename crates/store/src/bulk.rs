//! Multi-row inserts for bulk loads (the demo generator, imports).
//!
//! Rows go in as statements of many `VALUES` tuples, sized to stay under
//! each engine's parameter limit; the statement text only depends on the
//! row count, so the prepared statement is reused across chunks.

use chrono::{DateTime, NaiveDate, Utc};

use crate::query::{Id, bind_values};
use crate::{Engine, Result, Tx, on_tx};

/// One bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(Option<i64>),
    Float(Option<f64>),
    Text(Option<String>),
    Bool(Option<bool>),
    Date(Option<NaiveDate>),
    Time(Option<DateTime<Utc>>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(Some(v))
    }
}
impl From<Option<f64>> for Value {
    fn from(v: Option<f64>) -> Self {
        Value::Float(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_string()))
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Value::Text(v)
    }
}
impl From<NaiveDate> for Value {
    fn from(v: NaiveDate) -> Self {
        Value::Date(Some(v))
    }
}
impl From<Option<NaiveDate>> for Value {
    fn from(v: Option<NaiveDate>) -> Self {
        Value::Date(v)
    }
}
impl From<DateTime<Utc>> for Value {
    fn from(v: DateTime<Utc>) -> Self {
        Value::Time(Some(v))
    }
}
impl From<Option<DateTime<Utc>>> for Value {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Value::Time(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(Some(v))
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_owned))
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(Some(v.clone()))
    }
}

/// Most parameters in one statement (SQLite's default limit is 32,766).
const MAX_PARAMS: usize = 32_000;

/// The multi-row statement. SQLite gets anonymous `?` placeholders: it
/// resolves named ones (`$N`) by a linear scan per bind, which makes a
/// statement of thousands of parameters quadratic. PostgreSQL needs `$N`.
fn statement(engine: Engine, table: &str, columns: &[&str], rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..columns.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            n += 1;
            match engine {
                Engine::Sqlite => sql.push('?'),
                Engine::Postgres => {
                    sql.push('$');
                    sql.push_str(&n.to_string());
                }
            }
        }
        sql.push(')');
    }
    sql
}

/// Inserts `rows` (each with one value per column) into `table`.
pub async fn insert_rows(
    tx: &mut Tx,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Value>],
) -> Result<u64> {
    insert_rows_then(tx, table, columns, rows, "").await
}

/// [`insert_rows`] with a clause after the values, such as
/// `ON CONFLICT (…) DO UPDATE SET …` (same text on both engines).
pub async fn insert_rows_then(
    tx: &mut Tx,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Value>],
    then: &str,
) -> Result<u64> {
    if let Tx::Inline(t) = tx {
        return t.insert_each(&statement(Engine::Sqlite, table, columns, 1), then, rows);
    }
    let per = (MAX_PARAMS / columns.len()).clamp(1, 1000);
    let mut done = 0;
    let engine = tx.engine();
    let full_sql = statement(engine, table, columns, per) + then;
    for chunk in rows.chunks(per) {
        let owned;
        let sql = if chunk.len() == per {
            &full_sql
        } else {
            owned = statement(engine, table, columns, chunk.len()) + then;
            &owned
        };
        done += on_tx!(tx, c => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(&**sql));
            for row in chunk {
                debug_assert_eq!(row.len(), columns.len());
                q = bind_values!(q, row);
            }
            q.execute(&mut *c).await?.rows_affected()
        });
    }
    Ok(done)
}

/// Writes `rows` into `table` the fastest way each engine has: one
/// prepared single-row insert run per row, inline, on SQLite (multi-row
/// statements in a sqlx transaction), `COPY … FROM STDIN` on PostgreSQL.
pub async fn write_rows(
    tx: &mut Tx,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Value>],
) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    match tx {
        Tx::Sqlite(_) | Tx::Inline(_) => insert_rows(tx, table, columns, rows).await,
        Tx::Postgres(t) => {
            let sql = format!("COPY {table} ({}) FROM STDIN", columns.join(", "));
            let mut copy = t.copy_in_raw(&sql).await?;
            let mut buf = String::with_capacity(64 * 1024);
            for row in rows {
                copy_line(&mut buf, row);
                if buf.len() >= 60 * 1024 {
                    copy.send(std::mem::take(&mut buf).into_bytes()).await?;
                    buf.reserve(64 * 1024);
                }
            }
            if !buf.is_empty() {
                copy.send(buf.into_bytes()).await?;
            }
            Ok(copy.finish().await?)
        }
    }
}

/// One row in COPY's text format: tab-separated, `\N` for NULL,
/// backslash escapes for the separators.
fn copy_line(out: &mut String, row: &[Value]) {
    use std::fmt::Write as _;
    for (i, v) in row.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match v {
            Value::Int(Some(x)) => {
                let _ = write!(out, "{x}");
            }
            Value::Float(Some(x)) => {
                let _ = write!(out, "{x:?}");
            }
            Value::Text(Some(s)) => {
                for c in s.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => out.push(c),
                    }
                }
            }
            Value::Date(Some(d)) => {
                let _ = write!(out, "{d}");
            }
            Value::Bool(Some(b)) => out.push(if *b { 't' } else { 'f' }),
            Value::Time(Some(t)) => {
                let _ = write!(out, "{}", t.to_rfc3339());
            }
            Value::Int(None)
            | Value::Float(None)
            | Value::Text(None)
            | Value::Bool(None)
            | Value::Date(None)
            | Value::Time(None) => out.push_str("\\N"),
        }
    }
    out.push('\n');
}

/// `n` fresh ids for `table`. SQLite's single writer makes the ids after
/// the largest one free for the transaction; PostgreSQL's come from the
/// identity sequence, so concurrent writers never collide with them.
pub async fn reserve_ids(tx: &mut Tx, table: &str, n: usize) -> Result<Vec<i64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    match tx {
        Tx::Sqlite(_) | Tx::Inline(_) => {
            let base = max_id(tx, table).await?;
            Ok((base + 1..=base + n as i64).collect())
        }
        Tx::Postgres(t) => {
            // The sequence named once: `pg_get_serial_sequence` in the
            // select list runs per row and costs ten times the `nextval`.
            let (seq,): (String,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT pg_get_serial_sequence('{table}', 'id')"
            )))
            .fetch_one(&mut **t)
            .await?;
            let sql = format!(
                "SELECT nextval('{}') FROM generate_series(1, $1)",
                seq.replace('\'', "''")
            );
            let ids: Vec<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(&*sql))
                .bind(n as i64)
                .fetch_all(&mut **t)
                .await?;
            Ok(ids.into_iter().map(|r| r.0).collect())
        }
    }
}

/// The largest id in `table` (0 when empty).
pub async fn max_id(tx: &mut Tx, table: &str) -> Result<i64> {
    let sql = format!("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) AS id FROM {table}");
    let r: Id = tx.fetch_one(&sql, &[]).await?;
    Ok(r.0)
}

/// After inserting explicit ids, moves PostgreSQL's identity sequence past
/// them (SQLite's rowid needs nothing).
pub async fn sync_id_sequence(tx: &mut Tx, table: &str) -> Result<()> {
    if let Tx::Postgres(t) = tx {
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), 1))"
        );
        sqlx::query(sqlx::AssertSqlSafe(&*sql))
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}

/// Refreshes the planner's statistics after a bulk load. PostgreSQL plans
/// with guesses until autovacuum gets round to it (a point read on a fresh
/// million-row load took 95 ms instead of 0.1 ms); SQLite's planner does
/// well on our indexes without statistics, so nothing is done there.
pub async fn analyze(db: &crate::Db) -> Result<()> {
    if let crate::Db::Postgres(p) = db {
        sqlx::query("ANALYZE").execute(p).await?;
    }
    Ok(())
}
