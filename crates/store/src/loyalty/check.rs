//! Verification of every points ledger: each member's entries are replayed
//! through the domain ledger and compared with the stored lots and the
//! cached balance. Balances, entries and lots are read as three streams in
//! member order and merged, so memory holds one member's ledger at a time.

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::pin::Pin;

use futures_core::Stream;
use rapport_domain::loyalty::ledger::{EntryId, Ledger, Lot};

use super::Balance;
use super::ledger::{StoredEntry, delta_of, entry_from_row, lot_from_row};
use crate::{AnyRow, Db, Result, on_read};

async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

/// A member whose ledger breaks an invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerProblem {
    pub member_id: i64,
    pub problem: String,
}

/// Compares one member's replayed ledger with what is stored.
pub fn verify(
    balance: Option<&Balance>,
    entries: &[StoredEntry],
    lots: &BTreeMap<EntryId, Lot>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut ledger = Ledger::new();
    let mut running = 0i64;
    for (i, e) in entries.iter().enumerate() {
        if e.seq != i as i64 {
            out.push(format!("entry {} has seq {}, expected {i}", e.id, e.seq));
            return out;
        }
        match ledger.apply(e.entry.clone()) {
            Ok(a) if a.duplicate => {
                out.push(format!(
                    "entry {} repeats idempotency key {:?}",
                    e.id, e.entry.idempotency_key
                ));
                return out;
            }
            Ok(a) if a.shortfall != e.shortfall => out.push(format!(
                "entry {} records shortfall {} but replay gives {}",
                e.id, e.shortfall, a.shortfall
            )),
            Ok(_) => {}
            Err(err) => {
                out.push(format!(
                    "entry {} (seq {}) does not replay: {err}",
                    e.id, e.seq
                ));
                return out;
            }
        }
        if e.delta != delta_of(&e.entry) {
            out.push(format!("entry {} has delta {} for its kind", e.id, e.delta));
        }
        running += e.delta;
        if e.balance_after != running || running < 0 {
            out.push(format!(
                "entry {} says balance {} after it, entries add up to {running}",
                e.id, e.balance_after
            ));
        }
    }
    if let Err(v) = ledger.check() {
        out.push(v.to_string());
    }
    if ledger.lots() != lots {
        out.push(format!(
            "stored lots differ from the entries ({} stored, {} replayed)",
            lots.len(),
            ledger.lots().len()
        ));
    }
    let Some(b) = balance else {
        if !entries.is_empty() || !lots.is_empty() {
            out.push("entries or lots without a balance".to_owned());
        }
        return out;
    };
    let available = ledger.available();
    if b.available < 0 {
        out.push(format!("balance is negative: {}", b.available));
    }
    if b.available != available {
        out.push(format!(
            "balance says {} available, entries say {available}",
            b.available
        ));
    }
    if b.totals != ledger.totals() {
        out.push(format!(
            "balance totals {:?}, entries {:?}",
            b.totals,
            ledger.totals()
        ));
    }
    if b.entries != entries.len() as i64 || b.last_at != ledger.last_at() {
        out.push(format!(
            "balance counts {} entries up to {:?}, there are {} up to {:?}",
            b.entries,
            b.last_at,
            entries.len(),
            ledger.last_at()
        ));
    }
    if b.lifetime != ledger.lifetime() {
        out.push(format!(
            "balance says {} lifetime points, entries say {}",
            b.lifetime,
            ledger.lifetime()
        ));
    }
    if let Some(at) = b.qualifying_as_of
        && b.qualifying != ledger.qualifying_12m(at)
    {
        out.push(format!(
            "balance says {} qualifying points at {at}, entries say {}",
            b.qualifying,
            ledger.qualifying_12m(at)
        ));
    }
    out
}

/// Checks every member's ledger; returns how many members were checked and
/// the problems found (all of them: callers truncate).
pub async fn ledgers(db: &Db) -> Result<(u64, Vec<LedgerProblem>)> {
    let bal_sql = "SELECT member_id, available, qualifying, qualifying_as_of, lifetime, earned, redeemed, expired, \
                   adjusted_in, adjusted_out, reversed, entries, last_at FROM loyalty_balances ORDER BY member_id";
    let entry_sql = "SELECT id, member_id, seq, kind, points, delta, balance_after, at, expires_at, lot_seq, \
                     allow_partial, shortfall, idempotency_key, request_hash, actor_type, actor, reason, source, \
                     source_visit, source_campaign, source_referral FROM loyalty_entries ORDER BY member_id, seq";
    let lot_sql = "SELECT member_id, seq, created_at, expires_at, original, remaining, earned, reversed_at \
                   FROM loyalty_lots ORDER BY member_id, seq";
    let mut problems = Vec::new();
    let mut members = 0u64;
    on_read!(db, p => {
        let mut bals = sqlx::query(bal_sql).fetch(p);
        let mut ents = sqlx::query(entry_sql).fetch(p);
        let mut lts = sqlx::query(lot_sql).fetch(p);
        let mut next_entry: Option<StoredEntry> = match next(&mut ents).await { Some(r) => Some(entry_from_row(&r?)?), None => None };
        let mut next_lot: Option<(i64, EntryId, Lot)> = match next(&mut lts).await {
            Some(r) => { let r = r?; let (id, l) = lot_from_row(&r)?; Some((r.col("member_id")?, id, l)) }
            None => None,
        };
        let mut next_bal: Option<(i64, Balance)> = match next(&mut bals).await {
            Some(r) => { let r = r?; Some((r.col("member_id")?, super::balance_from_row(&r)?)) }
            None => None,
        };
        loop {
            // The smallest member id any stream is at.
            let member = [next_bal.as_ref().map(|b| b.0), next_entry.as_ref().map(|e| e.member_id), next_lot.as_ref().map(|l| l.0)]
                .into_iter().flatten().min();
            let Some(member) = member else { break };
            members += 1;
            let balance = match &next_bal {
                Some((m, _)) if *m == member => {
                    let b = next_bal.take().map(|b| b.1);
                    next_bal = match next(&mut bals).await {
                        Some(r) => { let r = r?; Some((r.col("member_id")?, super::balance_from_row(&r)?)) }
                        None => None,
                    };
                    b
                }
                _ => None,
            };
            let mut entries = Vec::new();
            while next_entry.as_ref().is_some_and(|e| e.member_id == member) {
                entries.extend(next_entry.take());
                next_entry = match next(&mut ents).await { Some(r) => Some(entry_from_row(&r?)?), None => None };
            }
            let mut lots = BTreeMap::new();
            while next_lot.as_ref().is_some_and(|l| l.0 == member) {
                if let Some((_, id, l)) = next_lot.take() {
                    lots.insert(id, l);
                }
                next_lot = match next(&mut lts).await {
                    Some(r) => { let r = r?; let (id, l) = lot_from_row(&r)?; Some((r.col("member_id")?, id, l)) }
                    None => None,
                };
            }
            for problem in verify(balance.as_ref(), &entries, &lots) {
                problems.push(LedgerProblem { member_id: member, problem });
            }
        }
    });
    Ok((members, problems))
}

/// Why points moved, checked against the ledger: every visit earn not
/// reversed points at an existing visit, every earn entry from a visit
/// has its explanation with the same points, and every voucher was paid
/// by a redeem of its points (and a cancelled one refunded by an
/// adjustment of them). Returns the rows checked and one line per
/// violation.
pub async fn reasons(db: &Db) -> Result<(u64, Vec<String>)> {
    let checks: [(&str, &str); 4] = [
        (
            "SELECT e.member_id, e.seq FROM loyalty_visit_earns e WHERE e.reversed_seq IS NULL \
             AND NOT EXISTS (SELECT 1 FROM visits v WHERE v.id = e.visit_key) ORDER BY 1, 2 LIMIT 100",
            "earns for a visit that no longer exists and was not reversed",
        ),
        (
            "SELECT n.member_id, n.seq FROM loyalty_entries n LEFT JOIN loyalty_visit_earns e \
             ON e.member_id = n.member_id AND e.seq = n.seq WHERE n.kind = 'earn' AND n.source_visit IS NOT NULL \
             AND (e.seq IS NULL OR e.points <> n.points OR e.visit_key <> n.source_visit) ORDER BY 1, 2 LIMIT 100",
            "is a visit earn without a matching explanation",
        ),
        (
            "SELECT v.member_id, v.redeem_seq FROM loyalty_vouchers v LEFT JOIN loyalty_entries n \
             ON n.member_id = v.member_id AND n.seq = v.redeem_seq \
             WHERE n.id IS NULL OR n.kind <> 'redeem' OR n.points <> v.points ORDER BY 1, 2 LIMIT 100",
            "pays for a voucher but is not a redeem of its points",
        ),
        (
            "SELECT v.member_id, v.id FROM loyalty_vouchers v LEFT JOIN loyalty_entries n \
             ON n.member_id = v.member_id AND n.seq = v.refund_seq \
             WHERE (v.status = 'cancelled') <> (v.refund_seq IS NOT NULL) \
             OR (v.refund_seq IS NOT NULL AND (n.id IS NULL OR n.kind <> 'adjust' OR n.delta <> v.points)) \
             ORDER BY 1, 2 LIMIT 100",
            "voucher's cancellation and refund disagree",
        ),
    ];
    let mut problems = Vec::new();
    for (sql, what) in checks {
        let rows: Vec<(i64, i64)> = on_read!(db, p => sqlx::query_as(sql).fetch_all(p).await?);
        for (member, n) in rows {
            problems.push(format!("member {member}: entry or voucher {n} {what}"));
        }
    }
    let counted: (i64, i64) = on_read!(db, p => sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM loyalty_visit_earns), (SELECT COUNT(*) FROM loyalty_vouchers)")
        .fetch_one(p).await?);
    Ok(((counted.0 + counted.1) as u64, problems))
}
