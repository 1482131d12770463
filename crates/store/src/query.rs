//! Statements as data: one SQL text and a list of [`Value`]s, run on
//! whichever connection a [`Tx`] holds (sqlx's SQLite or PostgreSQL, or
//! the inline SQLite connection) and decoded with one function per row
//! type. Repository functions written this way accept every kind of
//! transaction, including [`Tx::Inline`].

use crate::bulk::Value;
use crate::{AnyRow, Result, StoreError, Tx};

/// Binds every value of `params` to a sqlx query, in order.
macro_rules! bind_values {
    ($q:expr, $params:expr) => {{
        let mut q = $q;
        for v in $params {
            q = match v {
                $crate::bulk::Value::Int(x) => q.bind(*x),
                $crate::bulk::Value::Float(x) => q.bind(*x),
                $crate::bulk::Value::Text(x) => q.bind(x.as_deref()),
                $crate::bulk::Value::Bool(x) => q.bind(*x),
                $crate::bulk::Value::Date(x) => q.bind(*x),
                $crate::bulk::Value::Time(x) => q.bind(*x),
            };
        }
        q
    }};
}
pub(crate) use bind_values;

/// A row type that decodes from any engine's row.
pub(crate) trait FromAnyRow: Sized {
    fn from_any(r: &impl AnyRow) -> Result<Self>;
}

/// A single column named `id`.
pub(crate) struct Id(pub i64);

impl FromAnyRow for Id {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        Ok(Id(r.col("id")?))
    }
}

impl Tx {
    /// Runs one statement; returns the rows it changed.
    pub(crate) async fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        Ok(match self {
            Tx::Sqlite(t) => bind_values!(sqlx::query(sqlx::AssertSqlSafe(sql)), params)
                .execute(&mut ***t)
                .await?
                .rows_affected(),
            Tx::Postgres(t) => bind_values!(sqlx::query(sqlx::AssertSqlSafe(sql)), params)
                .execute(&mut **t)
                .await?
                .rows_affected(),
            Tx::Inline(t) => t.exec(sql, params)?,
        })
    }

    /// Runs one query and decodes every row.
    pub(crate) async fn fetch<T: FromAnyRow>(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<T>> {
        match self {
            Tx::Sqlite(t) => {
                let rows = bind_values!(sqlx::query(sqlx::AssertSqlSafe(sql)), params)
                    .fetch_all(&mut ***t)
                    .await?;
                rows.iter().map(T::from_any).collect()
            }
            Tx::Postgres(t) => {
                let rows = bind_values!(sqlx::query(sqlx::AssertSqlSafe(sql)), params)
                    .fetch_all(&mut **t)
                    .await?;
                rows.iter().map(T::from_any).collect()
            }
            Tx::Inline(t) => t.query(sql, params, |r| T::from_any(r)),
        }
    }

    /// Runs one query that finds at most one row.
    pub(crate) async fn fetch_opt<T: FromAnyRow>(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> Result<Option<T>> {
        let mut rows = self.fetch(sql, params).await?;
        if rows.len() > 1 {
            return Err(StoreError::Corrupt(format!(
                "{} rows where one was expected",
                rows.len()
            )));
        }
        Ok(rows.pop())
    }

    /// Runs a query that must find exactly one row.
    pub(crate) async fn fetch_one<T: FromAnyRow>(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> Result<T> {
        self.fetch_opt(sql, params)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a query that always answers found no row".into()))
    }
}

/// A query's one boolean column, named `flag`.
pub(crate) struct Flag(pub bool);

impl FromAnyRow for Flag {
    fn from_any(r: &impl crate::AnyRow) -> Result<Self> {
        Ok(Flag(r.col("flag")?))
    }
}
