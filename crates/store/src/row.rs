//! Reading columns the same way from either engine's rows.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Postgres, Row, Sqlite, Type};

/// A value both engines can decode.
pub trait Col:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}
impl<T> Col for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// A row of either engine; one decoding function serves both.
pub trait AnyRow {
    fn col<T: Col>(&self, name: &str) -> Result<T, sqlx::Error>;
}

impl AnyRow for SqliteRow {
    fn col<T: Col>(&self, name: &str) -> Result<T, sqlx::Error> {
        self.try_get(name)
    }
}

impl AnyRow for PgRow {
    fn col<T: Col>(&self, name: &str) -> Result<T, sqlx::Error> {
        self.try_get(name)
    }
}
