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
        let i = column_index(self.as_ref(), name)?;
        if let Some(v) = self.get_ref(i).ok().and_then(iso_time_or_date) {
            return Ok(v);
        }
        Ok(self.get(i)?)
    }
}

thread_local! {
    /// Where the last column found on this thread was, plus one.
    static NEXT_COLUMN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The position of column `name`. Decoders read columns in about the
/// order the query selects them, so the search starts just after the
/// column found last, which makes a row of n columns cost about n name
/// comparisons instead of n²/2 (rusqlite's lookup starts from the first
/// column every time). Spellings that differ in case fall back to
/// rusqlite's own lookup, which ignores case.
fn column_index(st: &rusqlite::Statement<'_>, name: &str) -> rusqlite::Result<usize> {
    let n = st.column_count();
    let start = NEXT_COLUMN.get();
    for k in 0..n {
        let i = (start + k) % n;
        if st.column_name(i).is_ok_and(|c| c == name) {
            NEXT_COLUMN.set(i + 1);
            return Ok(i);
        }
    }
    st.column_index(name)
}

/// `YYYY-MM-DD` (how dates are stored as text) read without a format
/// parser; another spelling of a valid date through chrono's `%F`.
pub(crate) fn iso_date(v: ValueRef<'_>) -> Option<NaiveDate> {
    let ValueRef::Text(t) = v else { return None };
    if t.len() == 10 && t[4] == b'-' && t[7] == b'-' {
        let num = |s: &[u8]| -> Option<u32> {
            s.iter().try_fold(0u32, |acc, &c| {
                c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
            })
        };
        if let (Some(y), Some(m), Some(d)) = (num(&t[..4]), num(&t[5..7]), num(&t[8..])) {
            return NaiveDate::from_ymd_opt(y as i32, m, d);
        }
    }
    NaiveDate::parse_from_str(std::str::from_utf8(t).ok()?, "%F").ok()
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
        *s = Some(iso_date(v)?);
    } else if let Some(s) = slot.downcast_mut::<Option<Option<NaiveDate>>>() {
        *s = Some(nullable(v, iso_date)?);
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};

    use super::AnyRow;

    /// Decodes one row of `sql` with `f`.
    fn with_row<R>(sql: &str, f: impl FnOnce(&rusqlite::Row<'_>) -> R) -> R {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let mut st = c.prepare(sql).unwrap();
        let mut rows = st.query([]).unwrap();
        f(rows.next().unwrap().unwrap())
    }

    #[test]
    fn times_and_dates_read_in_every_spelling_stored() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap();
        let half = t + chrono::Duration::milliseconds(500);
        let sql = format!(
            "SELECT '2026-11-22T08:00:00.5+00:00' AS a, '2026-11-22T16:00:00+08:00' AS b, \
             '2026-11-22 08:00:00' AS c, NULL AS d, '2026-11-22' AS e, NULL AS f, {} AS g",
            t.timestamp()
        );
        with_row(&sql, |r| {
            assert_eq!(r.col::<DateTime<Utc>>("a").unwrap(), half);
            // Another offset is the same instant.
            assert_eq!(r.col::<DateTime<Utc>>("b").unwrap(), t);
            // Not RFC 3339: rusqlite's decoder takes over.
            assert_eq!(r.col::<DateTime<Utc>>("c").unwrap(), t);
            assert_eq!(r.col::<Option<DateTime<Utc>>>("d").unwrap(), None);
            assert_eq!(r.col::<Option<DateTime<Utc>>>("a").unwrap(), Some(half));
            assert_eq!(
                r.col::<NaiveDate>("e").unwrap(),
                NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
            );
            assert_eq!(r.col::<Option<NaiveDate>>("f").unwrap(), None);
            // Seconds since the epoch, as rusqlite reads an integer.
            assert_eq!(r.col::<DateTime<Utc>>("g").unwrap(), t);
            // A text that is no time is an error, not a default.
            assert!(r.col::<DateTime<Utc>>("e").is_err());
            assert!(r.col::<NaiveDate>("a").is_err());
        });
    }

    #[test]
    fn columns_are_found_in_any_order_and_case() {
        with_row("SELECT 1 AS one, 'two' AS two, 3 AS Three", |r| {
            assert_eq!(r.col::<i64>("three").unwrap(), 3);
            assert_eq!(r.col::<i64>("one").unwrap(), 1);
            assert_eq!(r.col::<String>("two").unwrap(), "two");
            assert_eq!(r.col::<i64>("one").unwrap(), 1);
            assert_eq!(r.col::<i64>("THREE").unwrap(), 3);
            assert!(r.col::<i64>("four").is_err());
        });
    }
}
