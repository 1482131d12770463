//! Verification of stored invariants against the facts they derive from.

use chrono::NaiveDate;
use rapport_domain::PatientAggregates;
use sqlx::Row;
use tokio_stream_shim::next;

use crate::{AnyRow, Db, Result, on_read};

/// A patient whose stored aggregates differ from a recomputation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateMismatch {
    pub patient_key: i64,
    pub stored: Option<PatientAggregates>,
    pub recomputed: Option<PatientAggregates>,
}

/// Recomputes every patient's aggregates from the visits and lists the
/// patients whose stored row differs (missing, extra or different). Reads
/// the stored aggregates and the visits once each, both in patient order,
/// and merges the two streams: memory stays flat whatever the size.
pub async fn aggregates(db: &Db) -> Result<(u64, Vec<AggregateMismatch>)> {
    let agg_sql = "SELECT patient_key, first_visit, last_visit, visits, visit_days, monetary, first_day_monetary, \
                   months_with_visits, cohort_mask FROM patient_aggregates ORDER BY patient_key";
    let visit_sql =
        "SELECT patient_key, visit_date, amount FROM visits ORDER BY patient_key, visit_date";
    let mut mismatches = Vec::new();
    let mut patients = 0u64;
    on_read!(db, p => {
        let mut stored = sqlx::query(agg_sql).fetch(p);
        let mut rows = sqlx::query(visit_sql).fetch(p);
        // The next stored row not yet matched.
        let mut pending: Option<(i64, PatientAggregates)> = None;
        let mut visits: Vec<(NaiveDate, i64)> = Vec::new();
        let mut current: Option<i64> = None;
        loop {
            let next_visit = match next(&mut rows).await {
                Some(r) => {
                    let r = r?;
                    Some((r.try_get::<i64, _>(0)?, r.try_get::<NaiveDate, _>(1)?, r.try_get::<i64, _>(2)?))
                }
                None => None,
            };
            let key_changed = match (&next_visit, current) {
                (Some((k, _, _)), Some(c)) => *k != c,
                (None, Some(_)) => true,
                _ => false,
            };
            if key_changed && let Some(key) = current {
                patients += 1;
                let recomputed = PatientAggregates::from_sorted(&visits);
                visits.clear();
                // Stored rows of patients without visits come first.
                loop {
                    if pending.is_none() {
                        pending = match next(&mut stored).await {
                            Some(r) => {
                                let r = r?;
                                let a = crate::patients::aggregates_from_row(&r)?
                                    .ok_or_else(|| crate::StoreError::Corrupt("aggregates without first_visit".into()))?;
                                Some((r.col::<i64>("patient_key")?, a))
                            }
                            None => None,
                        };
                    }
                    match pending {
                        Some((k, a)) if k < key => {
                            mismatches.push(AggregateMismatch { patient_key: k, stored: Some(a), recomputed: None });
                            pending = None;
                        }
                        Some((k, a)) if k == key => {
                            if a != recomputed {
                                mismatches.push(AggregateMismatch { patient_key: key, stored: Some(a), recomputed: Some(recomputed) });
                            }
                            pending = None;
                            break;
                        }
                        _ => {
                            mismatches.push(AggregateMismatch { patient_key: key, stored: None, recomputed: Some(recomputed) });
                            break;
                        }
                    }
                }
            }
            match next_visit {
                Some((k, d, amount)) => {
                    current = Some(k);
                    visits.push((d, amount));
                }
                None => break,
            }
        }
        // Whatever is left is stored for patients without visits.
        if let Some((k, a)) = pending {
            mismatches.push(AggregateMismatch { patient_key: k, stored: Some(a), recomputed: None });
        }
        while let Some(r) = next(&mut stored).await {
            let r = r?;
            let a = crate::patients::aggregates_from_row(&r)?;
            mismatches.push(AggregateMismatch { patient_key: r.col::<i64>("patient_key")?, stored: a, recomputed: None });
        }
    });
    mismatches.sort_by_key(|m| m.patient_key);
    Ok((patients, mismatches))
}

mod tokio_stream_shim {
    use std::future::poll_fn;
    use std::pin::Pin;

    use futures_core::Stream;

    /// The next item of a stream, without pulling in a stream-combinator
    /// crate for one method.
    pub async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
        poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
    }
}

/// One column of a foreign key of an SQLite database, as
/// `pragma_foreign_key_list` lists it.
#[derive(Debug, Clone)]
pub(crate) struct ForeignKey {
    pub table: String,
    pub id: i64,
    /// The column's place in the key (0 for its first column).
    pub seq: i64,
    pub parent: String,
    pub from: String,
    /// The parent's column; `None` for the parent's primary key.
    pub to: Option<String>,
    /// Whether the column leads an index of its table (or is its rowid),
    /// so that its distinct values come in order without a scan.
    pub indexed: bool,
}

impl crate::query::FromAnyRow for ForeignKey {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        Ok(ForeignKey {
            table: r.col("tbl")?,
            id: r.col("id")?,
            seq: r.col("seq")?,
            parent: r.col("parent")?,
            from: r.col("col")?,
            to: r.col("target")?,
            indexed: r.col("indexed")?,
        })
    }
}

/// Every foreign-key column of an SQLite database, key by key.
pub(crate) const SQLITE_KEYS: &str = "SELECT m.name AS tbl, k.id AS id, k.seq AS seq, \
     k.\"table\" AS parent, k.\"from\" AS col, k.\"to\" AS target, \
     (EXISTS (SELECT 1 FROM pragma_index_list(m.name) il JOIN pragma_index_info(il.name) ii \
              WHERE ii.seqno = 0 AND ii.name = k.\"from\") \
      OR EXISTS (SELECT 1 FROM pragma_table_info(m.name) ti \
              WHERE ti.name = k.\"from\" AND ti.pk = 1 AND upper(ti.type) = 'INTEGER')) AS indexed \
     FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) k \
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, k.id, k.seq";

/// Whether key `k` is one column onto a named parent column: verified
/// by its values ([`orphans_sql`]), else by SQLite's own check.
fn by_values(keys: &[ForeignKey], k: &ForeignKey) -> bool {
    k.to.is_some()
        && !keys
            .iter()
            .any(|o| o.table == k.table && o.id == k.id && o.seq > 0)
}

/// How the keys are verified: groups whose values are read in one pass
/// over the child. A key whose column leads an index reads that index;
/// the table's other keys verified by their values share one scan of it
/// (a visit's department and doctor: one pass over ten million rows, not
/// two); any other key is a group of its own.
pub(crate) fn key_groups(keys: &[ForeignKey]) -> Vec<Vec<&ForeignKey>> {
    let mut groups: Vec<Vec<&ForeignKey>> = Vec::new();
    let mut scan: Vec<&ForeignKey> = Vec::new();
    for k in keys.iter().filter(|k| k.seq == 0) {
        if scan.first().is_some_and(|s| s.table != k.table) {
            groups.push(std::mem::take(&mut scan));
        }
        match by_values(keys, k) && !k.indexed {
            true => scan.push(k),
            false => groups.push(vec![k]),
        }
    }
    if !scan.is_empty() {
        groups.push(scan);
    }
    groups
}

/// The statement counting the distinct value combinations of a group's
/// keys (from [`key_groups`]) of which some names no parent row: each
/// combination looked up once in the parents, instead of each child row.
pub(crate) fn orphans_sql(keys: &[ForeignKey], group: &[&ForeignKey]) -> String {
    match group {
        [] => "SELECT 0".into(),
        [k] if !by_values(keys, k) => format!(
            "SELECT COUNT(*) FROM pragma_foreign_key_check('{}') WHERE fkid = {}",
            k.table, k.id
        ),
        [first, ..] => {
            let columns: Vec<String> = group
                .iter()
                .enumerate()
                .map(|(i, k)| format!("\"{}\" AS k{i}", k.from))
                .collect();
            let missing: Vec<String> = group
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    format!(
                        "(d.k{i} IS NOT NULL AND NOT EXISTS \
                         (SELECT 1 FROM \"{}\" p WHERE p.\"{}\" = d.k{i}))",
                        k.parent,
                        k.to.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            format!(
                "SELECT COUNT(*) FROM (SELECT DISTINCT {} FROM \"{}\") d WHERE {}",
                columns.join(", "),
                first.table,
                missing.join(" OR ")
            )
        }
    }
}

/// Verifies the foreign keys: on SQLite every key's values against its
/// parent (a first load checks them once, before its commit, rather than
/// row by row); on PostgreSQL, which enforces them, that none is left
/// unvalidated. Returns the keys checked and one line per broken key.
pub async fn references(db: &Db) -> Result<(u64, Vec<String>)> {
    let mut problems = Vec::new();
    match db {
        Db::Sqlite { sync, .. } => {
            let found = sync.with(|c| crate::sync::key_orphans(c, false))?;
            for (k, orphans) in found.iter().filter(|(_, n)| *n > 0) {
                problems.push(format!(
                    "{}.{}: {orphans} value(s) name no {} row",
                    k.table, k.from, k.parent
                ));
            }
            Ok((found.len() as u64, problems))
        }
        Db::Postgres(p) => {
            let keys: Vec<(String, String, bool)> = sqlx::query_as(
                "SELECT CAST(conrelid AS regclass)::text, conname::text, convalidated \
                 FROM pg_constraint WHERE contype = 'f' \
                 AND connamespace = CAST(current_schema() AS regnamespace)",
            )
            .fetch_all(p)
            .await?;
            for (table, name, valid) in &keys {
                if !valid {
                    problems.push(format!("{table}: foreign key {name} is not validated"));
                }
            }
            Ok((keys.len() as u64, problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(table: &str, id: i64, from: &str, parent: &str, indexed: bool) -> ForeignKey {
        ForeignKey {
            table: table.into(),
            id,
            seq: 0,
            parent: parent.into(),
            from: from.into(),
            to: Some("id".into()),
            indexed,
        }
    }

    #[test]
    fn unindexed_keys_of_a_table_share_one_scan() {
        let mut keys = vec![
            key("patients", 0, "hospital_id", "hospitals", true),
            key("visits", 0, "doctor_id", "doctors", false),
            key("visits", 1, "department_id", "departments", false),
            key("visits", 2, "patient_key", "patients", true),
            key("visits", 3, "hospital_id", "hospitals", true),
            key("x", 0, "a", "p", false),
            key("x", 0, "b", "p", false),
        ];
        // A key of two columns goes to SQLite's own check.
        keys[6].seq = 1;
        let groups: Vec<Vec<(&str, &str)>> = key_groups(&keys)
            .iter()
            .map(|g| {
                g.iter()
                    .map(|k| (k.table.as_str(), k.from.as_str()))
                    .collect()
            })
            .collect();
        assert_eq!(
            groups,
            vec![
                vec![("patients", "hospital_id")],
                vec![("visits", "patient_key")],
                vec![("visits", "hospital_id")],
                vec![("visits", "doctor_id"), ("visits", "department_id")],
                vec![("x", "a")],
            ]
        );
        let scan = key_groups(&keys).remove(3);
        let sql = orphans_sql(&keys, &scan);
        assert!(
            sql.contains(
                "SELECT DISTINCT \"doctor_id\" AS k0, \"department_id\" AS k1 FROM \"visits\""
            ),
            "{sql}"
        );
        let composite = key_groups(&keys).remove(4);
        assert!(orphans_sql(&keys, &composite).contains("pragma_foreign_key_check('x')"));
    }
}
