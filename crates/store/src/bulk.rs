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

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(
            self,
            Value::Int(None)
                | Value::Float(None)
                | Value::Text(None)
                | Value::Bool(None)
                | Value::Date(None)
                | Value::Time(None)
        )
    }
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
/// statements in a sqlx transaction); on PostgreSQL one `INSERT … SELECT
/// unnest(…), …` with a typed array per column (one value for a column
/// whose rows all have the same).
///
/// Not `COPY` on PostgreSQL: sqlx sends `COPY`'s data and its end as
/// separate small writes on a socket without `TCP_NODELAY`, so the end
/// waited for the server's delayed acknowledgement, about 40 ms per
/// `COPY`, once per chunk of an import (docs/benchmarks.md). A statement
/// goes out in one write and is answered at once.
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
            let mut select = Vec::with_capacity(columns.len());
            let mut arrays = Vec::new();
            for (i, name) in columns.iter().enumerate() {
                match ColumnArray::of(rows, i) {
                    Ok(Some(array)) => {
                        let constant = array.constant();
                        arrays.push((array, constant));
                        select.push(String::new());
                    }
                    // Every value NULL: a literal takes the column's type.
                    Ok(None) => select.push("NULL".to_owned()),
                    Err(why) => {
                        return Err(crate::StoreError::Config(format!("{table}.{name}: {why}")));
                    }
                }
            }
            // At least one array is unnested, or the select gives one row.
            if let Some(first) = arrays.first_mut()
                && first.1
                && arrays.iter().all(|a| a.1)
            {
                arrays[0].1 = false;
            }
            let mut params = arrays.iter().enumerate();
            for s in select.iter_mut().filter(|s| s.is_empty()) {
                let Some((n, (array, constant))) = params.next() else {
                    break;
                };
                let ty = array.sql_type();
                *s = match constant {
                    true => format!("(${}::{ty})[1]", n + 1),
                    false => format!("unnest(${}::{ty})", n + 1),
                };
            }
            let arrays = arrays
                .into_iter()
                .map(|(a, constant)| if constant { a.first() } else { a });
            // Set-returning functions in the select list run in lockstep
            // and stream their rows; `FROM UNNEST(…)` would first copy
            // every row into a tuple store. A column with one value for
            // every row goes as one value, not an array.
            let sql = format!(
                "INSERT INTO {table} ({}) SELECT {}",
                columns.join(", "),
                select.join(", "),
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for a in arrays {
                q = match a {
                    ColumnArray::Int(v) => q.bind(v),
                    ColumnArray::Float(v) => q.bind(v),
                    ColumnArray::Text(v) => q.bind(v),
                    ColumnArray::Bool(v) => q.bind(v),
                    ColumnArray::Date(v) => q.bind(v),
                    ColumnArray::Time(v) => q.bind(v),
                };
            }
            Ok(q.execute(&mut **t).await?.rows_affected())
        }
    }
}

/// One column of rows as a PostgreSQL array.
enum ColumnArray {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    Bool(Vec<Option<bool>>),
    Date(Vec<Option<NaiveDate>>),
    Time(Vec<Option<DateTime<Utc>>>),
}

impl ColumnArray {
    /// Column `i` of `rows` as one array, typed by its values; `None`
    /// when every value is NULL; an error when they differ in type.
    fn of(rows: &[Vec<Value>], i: usize) -> std::result::Result<Option<Self>, &'static str> {
        macro_rules! collect {
            ($variant:ident) => {
                rows.iter()
                    .map(|r| match &r[i] {
                        Value::$variant(x) => Ok(x.clone()),
                        _ => Err("values of different types"),
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map(|v| Some(ColumnArray::$variant(v)))
            };
        }
        match rows.iter().map(|r| &r[i]).find(|v| !v.is_null()) {
            None => Ok(None),
            Some(Value::Int(_)) => collect!(Int),
            Some(Value::Float(_)) => collect!(Float),
            Some(Value::Text(_)) => collect!(Text),
            Some(Value::Bool(_)) => collect!(Bool),
            Some(Value::Date(_)) => collect!(Date),
            Some(Value::Time(_)) => collect!(Time),
        }
    }

    /// Whether every row has the same value (more than one row).
    fn constant(&self) -> bool {
        fn same<T: PartialEq>(v: &[T]) -> bool {
            v.len() > 1 && v.iter().all(|x| *x == v[0])
        }
        match self {
            ColumnArray::Int(v) => same(v),
            ColumnArray::Float(v) => same(v),
            ColumnArray::Text(v) => same(v),
            ColumnArray::Bool(v) => same(v),
            ColumnArray::Date(v) => same(v),
            ColumnArray::Time(v) => same(v),
        }
    }

    /// The array of the first value alone.
    fn first(self) -> Self {
        fn one<T>(v: Vec<T>) -> Vec<T> {
            v.into_iter().take(1).collect()
        }
        match self {
            ColumnArray::Int(v) => ColumnArray::Int(one(v)),
            ColumnArray::Float(v) => ColumnArray::Float(one(v)),
            ColumnArray::Text(v) => ColumnArray::Text(one(v)),
            ColumnArray::Bool(v) => ColumnArray::Bool(one(v)),
            ColumnArray::Date(v) => ColumnArray::Date(one(v)),
            ColumnArray::Time(v) => ColumnArray::Time(one(v)),
        }
    }

    fn sql_type(&self) -> &'static str {
        match self {
            ColumnArray::Int(_) => "int8[]",
            ColumnArray::Float(_) => "float8[]",
            ColumnArray::Text(_) => "text[]",
            ColumnArray::Bool(_) => "bool[]",
            ColumnArray::Date(_) => "date[]",
            ColumnArray::Time(_) => "timestamptz[]",
        }
    }
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

#[cfg(test)]
mod tests {
    use super::{ColumnArray, Value};

    #[test]
    fn a_column_becomes_one_typed_array() {
        let rows = vec![
            vec![
                Value::Int(None),
                Value::Text(Some("a".into())),
                Value::Date(None),
            ],
            vec![Value::Int(Some(7)), Value::Text(None), Value::Date(None)],
        ];
        match ColumnArray::of(&rows, 0) {
            Ok(Some(ColumnArray::Int(v))) => assert_eq!(v, [None, Some(7)]),
            _ => panic!("integers expected"),
        }
        match ColumnArray::of(&rows, 1) {
            Ok(Some(a @ ColumnArray::Text(_))) => assert_eq!(a.sql_type(), "text[]"),
            _ => panic!("texts expected"),
        }
        // All NULL: no array, the statement writes a NULL literal.
        assert!(matches!(ColumnArray::of(&rows, 2), Ok(None)));
        let mixed = vec![
            vec![Value::Int(Some(1))],
            vec![Value::Text(Some("1".into()))],
        ];
        assert!(ColumnArray::of(&mixed, 0).is_err());
    }
}
