//! Reading columns the same way from any engine's rows: sqlx's SQLite and
//! PostgreSQL rows, and rusqlite's rows on the synchronous SQLite read path
//! (see `sync.rs`). One decoding function per entity serves all three.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Postgres, Row, Sqlite, Type};

use crate::StoreError;

/// A value every row type can decode.
pub trait Col:
    for<'r> Decode<'r, Sqlite>
    + Type<Sqlite>
    + for<'r> Decode<'r, Postgres>
    + Type<Postgres>
    + rusqlite::types::FromSql
{
}
impl<T> Col for T where
    T: for<'r> Decode<'r, Sqlite>
        + Type<Sqlite>
        + for<'r> Decode<'r, Postgres>
        + Type<Postgres>
        + rusqlite::types::FromSql
{
}

/// A row of any engine.
pub trait AnyRow {
    fn col<T: Col>(&self, name: &str) -> Result<T, StoreError>;
}

impl AnyRow for SqliteRow {
    fn col<T: Col>(&self, name: &str) -> Result<T, StoreError> {
        Ok(self.try_get(name)?)
    }
}

impl AnyRow for PgRow {
    fn col<T: Col>(&self, name: &str) -> Result<T, StoreError> {
        Ok(self.try_get(name)?)
    }
}

impl AnyRow for rusqlite::Row<'_> {
    fn col<T: Col>(&self, name: &str) -> Result<T, StoreError> {
        Ok(self.get(name)?)
    }
}
