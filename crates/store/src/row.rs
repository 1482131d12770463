//! Reading columns the same way from any engine's rows: sqlx's SQLite and
//! PostgreSQL rows, and rusqlite's rows on the synchronous SQLite read path
//! (see `sync.rs`). One decoding function per entity serves all three.

use std::any::Any;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::ValueRef;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Postgres, Row, Sqlite, Type};

use crate::StoreError;

/// A value every row type can decode.
pub trait Col:
    'static
    + for<'r> Decode<'r, Sqlite>
    + Type<Sqlite>
    + for<'r> Decode<'r, Postgres>
    + Type<Postgres>
    + rusqlite::types::FromSql
{
}
impl<T> Col for T where
    T: 'static
        + for<'r> Decode<'r, Sqlite>
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
        let i = self.as_ref().column_index(name)?;
        if let Some(v) = self.get_ref(i).ok().and_then(iso_time_or_date) {
            return Ok(v);
        }
        Ok(self.get(i)?)
    }
}

/// Times and dates as every writer of ours stores them (RFC 3339 times,
/// ISO 8601 dates), read without rusqlite's decoders, which go through a
/// format string per value and were most of the cost of reading a row
/// with a few times in it (docs/benchmarks.md). `None` when `T` is not a
/// time or a date, or the text is spelled otherwise: the caller then
/// falls back to rusqlite's decoder, which accepts every spelling.
fn iso_time_or_date<T: 'static>(v: ValueRef<'_>) -> Option<T> {
    fn time(v: ValueRef<'_>) -> Option<DateTime<Utc>> {
        let ValueRef::Text(b) = v else { return None };
        let t = DateTime::parse_from_rfc3339(std::str::from_utf8(b).ok()?).ok()?;
        Some(t.with_timezone(&Utc))
    }
    fn date(v: ValueRef<'_>) -> Option<NaiveDate> {
        let ValueRef::Text(b) = v else { return None };
        std::str::from_utf8(b).ok()?.parse().ok()
    }
    fn nullable<X>(v: ValueRef<'_>, f: fn(ValueRef<'_>) -> Option<X>) -> Option<Option<X>> {
        match v {
            ValueRef::Null => Some(None),
            v => f(v).map(Some),
        }
    }
    let mut out: Option<T> = None;
    let slot: &mut dyn Any = &mut out;
    if let Some(s) = slot.downcast_mut::<Option<DateTime<Utc>>>() {
        *s = Some(time(v)?);
    } else if let Some(s) = slot.downcast_mut::<Option<Option<DateTime<Utc>>>>() {
        *s = Some(nullable(v, time)?);
    } else if let Some(s) = slot.downcast_mut::<Option<NaiveDate>>() {
        *s = Some(date(v)?);
    } else if let Some(s) = slot.downcast_mut::<Option<Option<NaiveDate>>>() {
        *s = Some(nullable(v, date)?);
    }
    out
}
