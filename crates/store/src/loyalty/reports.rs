//! Programme figures: the points liability, members per tier at a date
//! (from the tier history) and points moved per month (from the ledger).

use chrono::{DateTime, NaiveDate, Utc};

use crate::{Db, Result, on_read};

/// Members with a balance row and their spendable points in total.
pub async fn liability(db: &Db, hospital_id: i64) -> Result<(i64, i64)> {
    let r: (i64, Option<i64>) = on_read!(db, p => sqlx::query_as(
        "SELECT COUNT(*), CAST(SUM(available) AS BIGINT) FROM loyalty_balances WHERE hospital_id = $1")
        .bind(hospital_id).fetch_one(p).await?);
    Ok((r.0, r.1.unwrap_or(0)))
}

/// Every tier change of the hospital's members on or before `upto`:
/// `(id, member, day, tier)`, in day order.
pub async fn tier_changes(
    db: &Db,
    hospital_id: i64,
    upto: NaiveDate,
) -> Result<Vec<(i64, i64, NaiveDate, String)>> {
    let sql = "SELECT id, member_id, on_date, to_tier FROM loyalty_tier_history \
               WHERE hospital_id = $1 AND on_date <= $2 ORDER BY on_date, id";
    // Every member's rows: on SQLite, read inline rather than handed
    // across sqlx's connection thread row by row.
    if let Db::Sqlite { sync, .. } = db {
        return sync.query(sql, &[hospital_id.into(), upto.into()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        });
    }
    Ok(on_read!(db, p => sqlx::query_as(sql)
        .bind(hospital_id).bind(upto).fetch_all(p).await?))
}

/// Points per month (hospital time, UTC+8, as `App::today`) and entry
/// kind for entries at `[from, to)`: `(YYYY-MM, kind, points, the sum of
/// the signed changes, entries)`.
pub async fn points_by_month(
    db: &Db,
    hospital_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, String, i64, i64, i64)>> {
    // The month of an instant in hospital time: the engines spell it
    // differently; the rest is the same text.
    let month = match db {
        Db::Sqlite { .. } => "strftime('%Y-%m', at, '+8 hours')",
        Db::Postgres(_) => "to_char((at AT TIME ZONE 'UTC') + INTERVAL '8 hours', 'YYYY-MM')",
    };
    let sql = format!(
        "SELECT {month} AS month, kind, CAST(SUM(points) AS BIGINT) AS points, CAST(SUM(delta) AS BIGINT) AS delta, COUNT(*) AS entries \
         FROM loyalty_entries WHERE hospital_id = $1 AND at >= $2 AND at < $3 \
         GROUP BY {month}, kind ORDER BY 1, 2"
    );
    Ok(on_read!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(&*sql))
        .bind(hospital_id).bind(from).bind(to).fetch_all(p).await?))
}
