//! What the staff console reads beyond the other repositories: a user's
//! chosen language, the patient list in the orders it sorts by, and the
//! dashboard's totals over two consecutive windows of days.

use chrono::{DateTime, NaiveDate, Utc};

use crate::bulk::Value;
use crate::{AnyRow, Db, Engine, Result, Tx, on_read, on_tx};

/// The language a user chose (`None`: follow the browser).
pub async fn locale(db: &Db, user_id: i64) -> Result<Option<String>> {
    let sql = "SELECT locale FROM users WHERE id = $1";
    if let Db::Sqlite { sync, .. } = db {
        let rows = sync.query(sql, &[user_id.into()], |r| {
            r.col::<Option<String>>("locale")
        })?;
        return Ok(rows.into_iter().next().flatten());
    }
    let r: Option<(Option<String>,)> =
        on_read!(db, p => sqlx::query_as(sql).bind(user_id).fetch_optional(p).await?);
    Ok(r.and_then(|r| r.0))
}

/// Stores a user's language (`None`: follow the browser).
pub async fn set_locale(tx: &mut Tx, user_id: i64, locale: Option<&str>) -> Result<bool> {
    let sql = "UPDATE users SET locale = $2 WHERE id = $1";
    let n = on_tx!(tx, c => sqlx::query(sql).bind(user_id).bind(locale).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// The orders of the patient list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListSort {
    /// Registration order (the platform id).
    #[default]
    Id,
    Name,
    LastVisit,
    Visits,
    Monetary,
}

/// One page of the patient list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub hospital_id: i64,
    pub sort: ListSort,
    pub descending: bool,
    /// Only patients in this RFM segment (from the stored scores).
    pub segment: Option<String>,
    /// Only patients the stored scores flag as a churn risk.
    pub churn_risk: bool,
    pub offset: i64,
    pub limit: i64,
}

/// A row of the patient list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListRow {
    pub id: i64,
    pub patient_id: String,
    pub name: String,
    pub sex: Option<String>,
    pub birth_year: Option<i32>,
    pub birth_date: Option<NaiveDate>,
    pub phone: Option<String>,
    pub erased_at: Option<DateTime<Utc>>,
    pub last_visit: Option<NaiveDate>,
    pub visits: Option<i64>,
    pub monetary: Option<i64>,
    pub segment: Option<String>,
    pub churn_risk: Option<bool>,
}

fn list_row(r: &impl AnyRow) -> Result<ListRow> {
    Ok(ListRow {
        id: r.col("id")?,
        patient_id: r.col("patient_id")?,
        name: r.col("name")?,
        sex: r.col("sex")?,
        birth_year: r.col("birth_year")?,
        birth_date: r.col("birth_date")?,
        phone: r.col("phone")?,
        erased_at: r.col("erased_at")?,
        last_visit: r.col("last_visit")?,
        visits: r.col("visits")?,
        monetary: r.col("monetary")?,
        segment: r.col("segment")?,
        churn_risk: r.col::<Option<i64>>("churn_risk")?.map(|v| v != 0),
    })
}

/// The SQL text of a list page: sorting by an aggregate walks that
/// aggregate's index (patients without visits are not in it); sorting by
/// id or name walks the patients.
fn list_sql(engine: Engine, q: &ListQuery) -> (String, bool) {
    let dir = if q.descending { "DESC" } else { "ASC" };
    let by_aggregate = match q.sort {
        ListSort::LastVisit => Some("a.last_visit"),
        ListSort::Visits => Some("a.visits"),
        ListSort::Monetary => Some("a.monetary"),
        ListSort::Id | ListSort::Name => None,
    };
    let mut conds = Vec::new();
    let mut segment = false;
    if q.segment.is_some() {
        conds.push("s.segment = $2".to_string());
        segment = true;
    }
    if q.churn_risk {
        conds.push("s.churn_risk = 1".to_string());
    }
    let scores_join = if conds.is_empty() {
        "LEFT JOIN"
    } else {
        "JOIN"
    };
    let cols = "p.id, p.patient_id, p.name, p.sex, p.birth_year, p.birth_date, p.phone, p.erased_at, \
                a.last_visit, a.visits, a.monetary, s.segment, s.churn_risk";
    let (from, order) = match by_aggregate {
        Some(col) => {
            conds.insert(0, "a.hospital_id = $1".into());
            (
                format!(
                    "FROM patient_aggregates a JOIN patients p ON p.id = a.patient_key \
                     {scores_join} patient_scores s ON s.patient_key = a.patient_key"
                ),
                format!("{col} {dir}, a.patient_key {dir}"),
            )
        }
        None => {
            // On SQLite `+` keeps the planner off the hospital's indexes
            // for the id order, so that it walks the table in key order
            // and stops after a page instead of sorting every patient.
            let hospital = match (engine, q.sort) {
                (Engine::Sqlite, ListSort::Id) => "+p.hospital_id = $1",
                _ => "p.hospital_id = $1",
            };
            conds.insert(0, hospital.into());
            let order = match q.sort {
                ListSort::Name => match engine {
                    Engine::Sqlite => format!("p.name {dir}, p.id {dir}"),
                    Engine::Postgres => format!("p.name COLLATE \"C\" {dir}, p.id {dir}"),
                },
                _ => format!("p.id {dir}"),
            };
            (
                format!(
                    "FROM patients p LEFT JOIN patient_aggregates a ON a.patient_key = p.id \
                     {scores_join} patient_scores s ON s.patient_key = p.id"
                ),
                order,
            )
        }
    };
    // Limit and offset are written into the text (as `visits::list`).
    (
        format!(
            "SELECT {cols} {from} WHERE {} ORDER BY {order} LIMIT {} OFFSET {}",
            conds.join(" AND "),
            q.limit.clamp(0, 500),
            q.offset.max(0)
        ),
        segment,
    )
}

/// A page of the patient list.
pub async fn list(db: &Db, q: &ListQuery) -> Result<Vec<ListRow>> {
    let (sql, with_segment) = list_sql(db.engine(), q);
    let segment = q.segment.clone().unwrap_or_default();
    if let Db::Sqlite { sync, .. } = db {
        let mut params: Vec<Value> = vec![q.hospital_id.into()];
        if with_segment {
            params.push(Value::from(segment.as_str()));
        }
        return sync.query(&sql, &params, |r| list_row(r));
    }
    on_read!(db, pool => {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(q.hospital_id);
        if with_segment {
            query = query.bind(&segment);
        }
        let rows = query.fetch_all(pool).await?;
        rows.iter().map(list_row).collect()
    })
}

/// The columns and joins of a list row, for a condition on `p`.
fn search_sql(cond: &str, order: &str, limit: i64) -> String {
    format!(
        "SELECT p.id, p.patient_id, p.name, p.sex, p.birth_year, p.birth_date, p.phone, p.erased_at, \
         a.last_visit, a.visits, a.monetary, s.segment, s.churn_risk \
         FROM patients p LEFT JOIN patient_aggregates a ON a.patient_key = p.id \
         LEFT JOIN patient_scores s ON s.patient_key = p.id \
         WHERE p.hospital_id = $1 AND {cond} ORDER BY {order} LIMIT {}",
        limit.clamp(0, 500)
    )
}

async fn rows(db: &Db, sql: &str, hospital_id: i64, value: &str) -> Result<Vec<ListRow>> {
    if let Db::Sqlite { sync, .. } = db {
        return sync.query(sql, &[hospital_id.into(), Value::from(value)], |r| {
            list_row(r)
        });
    }
    on_read!(db, pool => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(hospital_id).bind(value).fetch_all(pool).await?;
        rows.iter().map(list_row).collect()
    })
}

/// Patients whose hospital id or phone is `text` exactly, then those
/// whose name starts with it (in name order): each through its own index,
/// so a common surname costs one page of the name index, not a scan.
pub async fn search(
    db: &Db,
    hospital_id: i64,
    text: &str,
    phone: Option<&str>,
    limit: i64,
) -> Result<Vec<ListRow>> {
    let mut out = rows(
        db,
        &search_sql("p.patient_id = $2", "p.id", limit),
        hospital_id,
        text,
    )
    .await?;
    if let Some(phone) = phone {
        out.extend(
            rows(
                db,
                &search_sql("p.phone = $2", "p.id", limit),
                hospital_id,
                phone,
            )
            .await?,
        );
    }
    let (name_from, name_order) = match db.engine() {
        Engine::Sqlite => ("p.name >= $2 AND p.name < $3", "p.name, p.id"),
        Engine::Postgres => (
            "p.name COLLATE \"C\" >= $2 AND p.name COLLATE \"C\" < $3",
            "p.name COLLATE \"C\", p.id",
        ),
    };
    let sql = search_sql(name_from, name_order, limit);
    let end = format!("{text}\u{10FFFF}");
    let named: Vec<ListRow> = if let Db::Sqlite { sync, .. } = db {
        sync.query(
            &sql,
            &[
                hospital_id.into(),
                Value::from(text),
                Value::from(end.as_str()),
            ],
            |r| list_row(r),
        )?
    } else {
        on_read!(db, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).bind(text).bind(&end).fetch_all(pool).await?;
            rows.iter().map(list_row).collect::<Result<Vec<_>>>()?
        })
    };
    out.extend(named);
    let mut seen = std::collections::HashSet::new();
    out.retain(|r| seen.insert(r.id));
    out.truncate(limit.max(0) as usize);
    Ok(out)
}

/// Visits, revenue and patients in a window of days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowTotals {
    pub visits: i64,
    /// Minor units.
    pub revenue: i64,
    /// Distinct patients with a visit in the window.
    pub patients: i64,
    /// Of those, the ones whose first visit came before the window.
    pub returning: i64,
}

/// Totals of two consecutive windows: `(previous, current)` where the
/// previous window is `(start, middle]` and the current `(middle, end]`.
pub async fn window_totals(
    db: &Db,
    hospital_id: i64,
    start: NaiveDate,
    middle: NaiveDate,
    end: NaiveDate,
) -> Result<(WindowTotals, WindowTotals)> {
    // On SQLite `+` keeps the planner off the (hospital_id, visit_id)
    // index: a scan in table order is faster than one through it.
    let hospital = match db.engine() {
        Engine::Sqlite => "+v.hospital_id",
        Engine::Postgres => "v.hospital_id",
    };
    let sql = format!(
        "SELECT CAST(CASE WHEN v.visit_date > $3 THEN 1 ELSE 0 END AS BIGINT) AS cur, \
         COUNT(*) AS visits, CAST(COALESCE(SUM(v.amount), 0) AS BIGINT) AS revenue, \
         COUNT(DISTINCT v.patient_key) AS patients, \
         COUNT(DISTINCT CASE WHEN (v.visit_date > $3 AND a.first_visit <= $3) \
             OR (v.visit_date <= $3 AND a.first_visit <= $2) THEN v.patient_key END) AS returners \
         FROM visits v JOIN patient_aggregates a ON a.patient_key = v.patient_key \
         WHERE {hospital} = $1 AND v.visit_date > $2 AND v.visit_date <= $4 GROUP BY 1"
    );
    let rows: Vec<(i64, i64, i64, i64, i64)> = on_read!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(&*sql))
        .bind(hospital_id).bind(start).bind(middle).bind(end).fetch_all(p).await?);
    let mut out = (WindowTotals::default(), WindowTotals::default());
    for (cur, visits, revenue, patients, returning) in rows {
        let t = WindowTotals {
            visits,
            revenue,
            patients,
            returning,
        };
        if cur == 1 {
            out.1 = t;
        } else {
            out.0 = t;
        }
    }
    Ok(out)
}

/// List rows of the patients `ids` of the hospital (one statement through
/// the primary key; the ids are integers written into the text), in no
/// particular order. For pages that show a few patients beside other
/// records (members, duplicate pairs).
pub async fn rows_by_ids(db: &Db, hospital_id: i64, ids: &[i64]) -> Result<Vec<ListRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = ids.iter().take(500).map(i64::to_string).collect();
    let cond = format!("p.id IN ({})", list.join(", "));
    // `+` keeps SQLite from reading the hospital's million entries of an
    // index on `hospital_id` instead of the few rows by id (109 ms → 6 ms).
    let sql = format!(
        "SELECT p.id, p.patient_id, p.name, p.sex, p.birth_year, p.birth_date, p.phone, p.erased_at, \
         a.last_visit, a.visits, a.monetary, s.segment, s.churn_risk \
         FROM patients p LEFT JOIN patient_aggregates a ON a.patient_key = p.id \
         LEFT JOIN patient_scores s ON s.patient_key = p.id \
         WHERE +p.hospital_id = $1 AND {cond}"
    );
    if let Db::Sqlite { sync, .. } = db {
        return sync.query(&sql, &[hospital_id.into()], |r| list_row(r));
    }
    on_read!(db, pool => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(hospital_id).fetch_all(pool).await?;
        rows.iter().map(list_row).collect()
    })
}
