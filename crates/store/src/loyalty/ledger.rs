//! The points ledger as stored: append-only entries, the lots they create
//! and consume, and the cached balance.
//!
//! A write reads the ledger's *head* (the balance row and the lots that
//! matter, see `rapport_domain::loyalty::ledger::LedgerHead`), lets the
//! domain apply the entry, and writes back the entry, the lots that changed
//! and the new balance: its cost does not grow with the member's history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rapport_domain::loyalty::ledger::{
    Actor, Entry, EntryId, EntryKind, LedgerHead, Lot, window_start,
};

use super::{Balance, Member};
use crate::bulk::Value;
use crate::query::{FromAnyRow, Id};
use crate::{AnyRow, Db, Result, StoreError, Tx, on_read, on_tx};

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub id: i64,
    pub member_id: i64,
    pub seq: i64,
    pub entry: Entry,
    /// The signed change of the available balance.
    pub delta: i64,
    pub balance_after: i64,
    pub shortfall: i64,
    pub request_hash: String,
    pub source_visit: Option<i64>,
    pub source_campaign: Option<String>,
    pub source_referral: Option<String>,
}

pub fn kind_code(k: &EntryKind) -> &'static str {
    match k {
        EntryKind::Earn { .. } => "earn",
        EntryKind::Redeem => "redeem",
        EntryKind::Expire { .. } => "expire",
        EntryKind::Adjust { .. } => "adjust",
        EntryKind::Reverse { .. } => "reverse",
    }
}

/// The signed change an entry makes to the available balance.
pub fn delta_of(e: &Entry) -> i64 {
    match &e.kind {
        EntryKind::Earn { .. } => e.points,
        EntryKind::Adjust { delta, .. } => *delta,
        _ => -e.points,
    }
}

const ENTRY_COLUMNS: &str = "id, member_id, seq, kind, points, delta, balance_after, at, expires_at, lot_seq, \
     allow_partial, shortfall, idempotency_key, request_hash, actor_type, actor, reason, source, source_visit, \
     source_campaign, source_referral";

impl FromAnyRow for StoredEntry {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        entry_from_row(r)
    }
}

pub(crate) fn entry_from_row(r: &impl AnyRow) -> Result<StoredEntry> {
    let kind: String = r.col("kind")?;
    let expires_at: Option<DateTime<Utc>> = r.col("expires_at")?;
    let lot_seq: Option<i64> = r.col("lot_seq")?;
    let delta: i64 = r.col("delta")?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("ledger entry: {what}"));
    let lot = || {
        lot_seq
            .map(|s| EntryId(s as u64))
            .ok_or_else(|| corrupt("no lot"))
    };
    let kind = match kind.as_str() {
        "earn" => EntryKind::Earn {
            expires_at: expires_at.ok_or_else(|| corrupt("earn without expiry"))?,
        },
        "redeem" => EntryKind::Redeem,
        "expire" => EntryKind::Expire { lot: lot()? },
        "adjust" => EntryKind::Adjust { delta, expires_at },
        "reverse" => EntryKind::Reverse {
            reverses: lot()?,
            allow_partial: r.col("allow_partial")?,
        },
        other => return Err(corrupt(&format!("kind {other:?}"))),
    };
    let actor_type: String = r.col("actor_type")?;
    let actor: String = r.col("actor")?;
    let actor = match actor_type.as_str() {
        "staff" => Actor::Staff(actor),
        "rule" => Actor::Rule(actor),
        "system" => Actor::System,
        other => return Err(corrupt(&format!("actor type {other:?}"))),
    };
    Ok(StoredEntry {
        id: r.col("id")?,
        member_id: r.col("member_id")?,
        seq: r.col("seq")?,
        entry: Entry {
            kind,
            points: r.col("points")?,
            at: r.col("at")?,
            idempotency_key: r.col("idempotency_key")?,
            actor,
            reason: r.col("reason")?,
            source: r.col("source")?,
        },
        delta,
        balance_after: r.col("balance_after")?,
        shortfall: r.col("shortfall")?,
        request_hash: r.col("request_hash")?,
        source_visit: r.col("source_visit")?,
        source_campaign: r.col("source_campaign")?,
        source_referral: r.col("source_referral")?,
    })
}

/// The entry a member applied with `key`, if any.
pub async fn by_key(tx: &mut Tx, member_id: i64, key: &str) -> Result<Option<StoredEntry>> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM loyalty_entries WHERE member_id = $1 AND idempotency_key = $2"
    );
    on_tx!(tx, c => match sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(member_id).bind(key).fetch_optional(&mut *c).await? {
        Some(r) => Ok(Some(entry_from_row(&r)?)),
        None => Ok(None),
    })
}

pub(crate) fn lot_from_row(r: &impl AnyRow) -> Result<(EntryId, Lot)> {
    let seq: i64 = r.col("seq")?;
    Ok((
        EntryId(seq as u64),
        Lot {
            created_at: r.col("created_at")?,
            expires_at: r.col("expires_at")?,
            original: r.col("original")?,
            remaining: r.col("remaining")?,
            earned: r.col("earned")?,
            reversed_at: r.col("reversed_at")?,
        },
    ))
}

const LOT_COLUMNS: &str = "seq, created_at, expires_at, original, remaining, earned, reversed_at";

/// Which lots with points left a ledger head holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenLots {
    /// None: the entry spends nothing.
    None,
    /// Every one (a scheduled expiry run looks for the due ones).
    All,
    /// The first ones in spending order at the entry's time (earliest
    /// expiry, then oldest) whose points cover this many: a redemption or
    /// a negative adjustment plans on them exactly as on every lot, and
    /// when they fall short they are all the spendable lots (see
    /// `rapport_domain::loyalty::ledger::Ledger::resume`). A member who
    /// earns often and spends rarely keeps many lots open; a spend reads
    /// one or two of them.
    ToSpend(i64),
}

/// The head of a locked member's ledger for an entry at `at`: its totals
/// from the balance row, the lots with points left that `open` asks for,
/// the lot named in `also` (the lot an expiry or a reversal refers to),
/// and the qualifying points at `at`.
///
/// The qualifying points are carried forward from the balance row's
/// figure (kept as of its last write, which every lot creation and
/// reversal updates) by taking out the earns that left the 12-month
/// window since, so a write reads only those, not the member's year of
/// earns. `rapport check` compares the kept figure with a replay.
pub async fn head(
    tx: &mut Tx,
    member: &Member,
    at: DateTime<Utc>,
    open: OpenLots,
    also: Option<i64>,
) -> Result<LedgerHead> {
    let b = &member.balance;
    // Earns created in (lo, hi] and not reversed by `rev`: what left the
    // window since the kept figure, or, with nothing kept, the window.
    let (base, sign, lo, hi, rev) = match b.qualifying_as_of {
        Some(as_of) if as_of <= at => (
            b.qualifying,
            -1,
            window_start(as_of),
            window_start(at),
            as_of,
        ),
        _ => (0, 1, window_start(at), at, at),
    };
    let mut params: Vec<Value> = vec![
        member.id.into(),
        lo.into(),
        hi.into(),
        rev.into(),
        also.unwrap_or(-1).into(),
    ];
    // The named lot may be among the open ones: the map below keeps one.
    let open = match open {
        OpenLots::None => String::new(),
        OpenLots::All => format!(
            "SELECT {LOT_COLUMNS} FROM loyalty_lots WHERE member_id = $1 AND remaining > 0 UNION ALL "
        ),
        OpenLots::ToSpend(points) => {
            params.extend([at.into(), points.into()]);
            format!(
                "SELECT {LOT_COLUMNS} FROM (SELECT {LOT_COLUMNS}, \
                 SUM(remaining) OVER (ORDER BY expires_at, seq) AS before_and_this FROM loyalty_lots \
                 WHERE member_id = $1 AND remaining > 0 AND expires_at > $6) o \
                 WHERE before_and_this - remaining < $7 UNION ALL "
            )
        }
    };
    let sql = format!(
        "SELECT q.counted, l.seq, l.created_at, l.expires_at, l.original, l.remaining, l.earned, l.reversed_at \
         FROM (SELECT CAST(COALESCE(SUM(original), 0) AS BIGINT) AS counted FROM loyalty_lots \
               WHERE member_id = $1 AND earned AND created_at > $2 AND created_at <= $3 \
               AND (reversed_at IS NULL OR reversed_at > $4)) q \
         LEFT JOIN ({open}SELECT {LOT_COLUMNS} FROM loyalty_lots WHERE member_id = $1 AND seq = $5) l ON 1 = 1"
    );
    let rows: Vec<HeadRow> = tx.fetch(&sql, &params).await?;
    let counted = rows.first().map_or(0, |r| r.counted);
    let lots: BTreeMap<EntryId, Lot> = rows.into_iter().filter_map(|r| r.lot).collect();
    Ok(LedgerHead {
        entries: b.entries as u64,
        last_at: b.last_at,
        totals: b.totals,
        lots,
        qualifying: Some((at, base + sign * counted)),
    })
}

struct HeadRow {
    counted: i64,
    lot: Option<(EntryId, Lot)>,
}

impl FromAnyRow for HeadRow {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        let seq: Option<i64> = r.col("seq")?;
        Ok(HeadRow {
            counted: r.col("counted")?,
            lot: seq.map(|_| lot_from_row(r)).transpose()?,
        })
    }
}

/// Everything one applied entry writes.
#[derive(Debug, Clone)]
pub struct Write<'a> {
    pub hospital_id: i64,
    pub member_id: i64,
    pub seq: i64,
    pub entry: &'a Entry,
    pub shortfall: i64,
    pub request_hash: &'a str,
    pub source_visit: Option<i64>,
    pub source_campaign: Option<&'a str>,
    pub source_referral: Option<&'a str>,
    /// The lots before and after the entry (the head's and the ledger's).
    pub lots_before: &'a BTreeMap<EntryId, Lot>,
    pub lots_after: &'a BTreeMap<EntryId, Lot>,
    /// The balance after the entry.
    pub balance: &'a Balance,
}

/// Appends the entry, writes the lots it created or changed and the new
/// balance. Returns the entry's id.
pub async fn write(tx: &mut Tx, w: &Write<'_>) -> Result<i64> {
    let e = w.entry;
    let (expires_at, lot_seq, allow_partial) = match &e.kind {
        EntryKind::Earn { expires_at } => (Some(*expires_at), None, false),
        EntryKind::Redeem => (None, None, false),
        EntryKind::Expire { lot } => (None, Some(lot.0 as i64), false),
        EntryKind::Adjust { expires_at, .. } => (*expires_at, None, false),
        EntryKind::Reverse {
            reverses,
            allow_partial,
        } => (None, Some(reverses.0 as i64), *allow_partial),
    };
    let (actor_type, actor) = match &e.actor {
        Actor::Staff(s) => ("staff", s.as_str()),
        Actor::Rule(s) => ("rule", s.as_str()),
        Actor::System => ("system", "system"),
    };
    write_one_call(tx, w, expires_at, lot_seq, allow_partial, actor_type, actor).await
}

/// A member's entries, newest first, before `before_seq`.
pub async fn page(
    db: &Db,
    member_id: i64,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<StoredEntry>> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM loyalty_entries WHERE member_id = $1 AND seq < $2 \
         ORDER BY seq DESC LIMIT {}",
        limit.max(0)
    );
    on_read!(db, p => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*sql))
            .bind(member_id)
            .bind(before_seq.unwrap_or(i64::MAX))
            .fetch_all(p)
            .await?;
        rows.iter().map(entry_from_row).collect()
    })
}

/// One entry of a member by its seq, inside a transaction.
pub async fn by_seq(tx: &mut Tx, member_id: i64, seq: i64) -> Result<Option<StoredEntry>> {
    let sql =
        format!("SELECT {ENTRY_COLUMNS} FROM loyalty_entries WHERE member_id = $1 AND seq = $2");
    tx.fetch_opt(&sql, &[member_id.into(), seq.into()]).await
}

/// The earn entries that a visit gave (for reversing them when the visit
/// goes).
pub async fn earns_of_visit(tx: &mut Tx, visit_id: i64) -> Result<Vec<(i64, i64)>> {
    Ok(on_tx!(tx, c => sqlx::query_as(
        "SELECT member_id, seq FROM loyalty_entries WHERE source_visit = $1 AND kind = 'earn' ORDER BY member_id, seq")
        .bind(visit_id).fetch_all(&mut *c).await?))
}

/// Members of the hospital with lots due to expire at `at`, after `after`.
pub async fn members_with_due_lots(
    db: &Db,
    hospital_id: i64,
    at: DateTime<Utc>,
    after: i64,
    limit: i64,
) -> Result<Vec<i64>> {
    let sql = format!(
        "SELECT DISTINCT member_id FROM loyalty_lots WHERE hospital_id = $1 AND remaining > 0 \
         AND expires_at <= $2 AND member_id > $3 ORDER BY member_id LIMIT {}",
        limit.max(0)
    );
    on_read!(db, p => Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(&*sql))
        .bind(hospital_id).bind(at).bind(after).fetch_all(p).await?))
}

/// Points liability: the spendable points of every member of the hospital.
pub async fn liability(db: &Db, hospital_id: i64) -> Result<i64> {
    let r: (Option<i64>,) = on_read!(db, p => sqlx::query_as(
        "SELECT CAST(SUM(available) AS BIGINT) FROM loyalty_balances WHERE hospital_id = $1")
        .bind(hospital_id).fetch_one(p).await?);
    Ok(r.0.unwrap_or(0))
}

/// A member's qualifying points at `at`: earn lots created in `(from, at]`
/// and not reversed by `at` (the same rule as the domain's
/// `Ledger::qualifying_12m`).
pub async fn qualifying(
    db: &Db,
    member_id: i64,
    from: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<i64> {
    let r: (Option<i64>,) = on_read!(db, p => sqlx::query_as(
        "SELECT CAST(SUM(original) AS BIGINT) FROM loyalty_lots WHERE member_id = $1 AND earned \
         AND created_at > $2 AND created_at <= $3 AND (reversed_at IS NULL OR reversed_at > $3)")
        .bind(member_id).bind(from).bind(at).fetch_one(p).await?);
    Ok(r.0.unwrap_or(0))
}

/// What a point-moving write needs to know besides the ledger's head, read
/// in one statement after the member is locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteContext {
    /// The entry already applied with the request's idempotency key.
    pub prior: Option<(i64, String)>,
    /// How long earned points stay spendable.
    pub points_valid_months: i32,
    /// The lowest threshold of a tier above the member's (none at the top).
    pub next_threshold: Option<i64>,
    /// Whether the member's tier is still defined.
    pub tier_known: bool,
}

pub async fn write_context(tx: &mut Tx, member: &Member, key: &str) -> Result<WriteContext> {
    let sql = "SELECT \
        (SELECT e.seq FROM loyalty_entries e WHERE e.member_id = $1 AND e.idempotency_key = $2) AS prior_seq, \
        (SELECT e.request_hash FROM loyalty_entries e WHERE e.member_id = $1 AND e.idempotency_key = $2) AS prior_hash, \
        (SELECT g.points_valid_months FROM loyalty_programs g WHERE g.hospital_id = $3) AS points_valid_months, \
        (SELECT MIN(t.threshold_qualifying) FROM loyalty_tiers t WHERE t.hospital_id = $3 AND t.rank > \
            (SELECT c.rank FROM loyalty_tiers c WHERE c.hospital_id = $3 AND c.code = $4)) AS next_threshold, \
        (SELECT COUNT(*) FROM loyalty_tiers c WHERE c.hospital_id = $3 AND c.code = $4) AS tier_known";
    tx.fetch_one(
        sql,
        &[
            member.id.into(),
            key.into(),
            member.hospital_id.into(),
            (&member.tier).into(),
        ],
    )
    .await
}

/// [`write`] in one call: the entry, the balance and the lots as several
/// statements on SQLite (one set of parameters) and as data-modifying
/// CTEs of one statement on PostgreSQL, because every call costs a
/// hand-off to sqlx's connection thread (SQLite) or a round trip
/// (PostgreSQL); see docs/benchmarks.md.
#[allow(clippy::too_many_arguments)]
async fn write_one_call(
    tx: &mut Tx,
    w: &Write<'_>,
    expires_at: Option<DateTime<Utc>>,
    lot_seq: Option<i64>,
    allow_partial: bool,
    actor_type: &str,
    actor: &str,
) -> Result<i64> {
    let e = w.entry;
    let b = w.balance;
    let t = &b.totals;
    let mut stmts = vec![
        "INSERT INTO loyalty_entries (hospital_id, member_id, seq, kind, points, delta, balance_after, at, \
         expires_at, lot_seq, allow_partial, shortfall, idempotency_key, request_hash, actor_type, actor, \
         reason, source, source_visit, source_campaign, source_referral) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) \
         RETURNING id"
            .to_owned(),
        "UPDATE loyalty_balances SET available = $22, qualifying = $23, qualifying_as_of = $24, lifetime = $25, \
         earned = $26, redeemed = $27, expired = $28, adjusted_in = $29, adjusted_out = $30, reversed = $31, \
         entries = $32, last_at = $33 WHERE member_id = $2"
            .to_owned(),
    ];
    let mut n = 33;
    let mut changed = Vec::new();
    for (lot, after) in w.lots_after {
        match w.lots_before.get(lot) {
            None => {
                stmts.push(format!(
                    "INSERT INTO loyalty_lots (member_id, seq, hospital_id, earned, created_at, expires_at, original, \
                     remaining, reversed_at) VALUES ($2, ${}, $1, ${}, ${}, ${}, ${}, ${}, ${})",
                    n + 1, n + 2, n + 3, n + 4, n + 5, n + 6, n + 7
                ));
                n += 7;
                changed.push((lot, after, true));
            }
            Some(before) if before != after => {
                stmts.push(format!(
                    "UPDATE loyalty_lots SET remaining = ${}, reversed_at = ${} WHERE member_id = $2 AND seq = ${}",
                    n + 1, n + 2, n + 3
                ));
                n += 3;
                changed.push((lot, after, false));
            }
            Some(_) => {}
        }
    }
    let mut params: Vec<Value> = vec![
        w.hospital_id.into(),
        w.member_id.into(),
        w.seq.into(),
        kind_code(&e.kind).into(),
        e.points.into(),
        delta_of(e).into(),
        b.available.into(),
        e.at.into(),
        expires_at.into(),
        lot_seq.into(),
        allow_partial.into(),
        w.shortfall.into(),
        (&e.idempotency_key).into(),
        w.request_hash.into(),
        actor_type.into(),
        actor.into(),
        (&e.reason).into(),
        (&e.source).into(),
        w.source_visit.into(),
        w.source_campaign.into(),
        w.source_referral.into(),
        b.available.into(),
        b.qualifying.into(),
        b.qualifying_as_of.into(),
        b.lifetime.into(),
        t.earned.into(),
        t.redeemed.into(),
        t.expired.into(),
        t.adjusted_in.into(),
        t.adjusted_out.into(),
        t.reversed.into(),
        b.entries.into(),
        b.last_at.into(),
    ];
    for (lot, l, new) in &changed {
        if *new {
            params.extend([
                (lot.0 as i64).into(),
                l.earned.into(),
                l.created_at.into(),
                l.expires_at.into(),
                l.original.into(),
                l.remaining.into(),
                l.reversed_at.into(),
            ]);
        } else {
            params.extend([
                l.remaining.into(),
                l.reversed_at.into(),
                (lot.0 as i64).into(),
            ]);
        }
    }
    let unique = |e: StoreError| e.on_unique("ledger entry");
    let id: Id = match tx {
        // Inline, each statement costs microseconds: run them one by one.
        Tx::Inline(_) => {
            let id = tx.fetch_one(&stmts[0], &params).await.map_err(unique)?;
            for st in &stmts[1..] {
                tx.exec(st, &params).await.map_err(unique)?;
            }
            id
        }
        // Through sqlx, every call is a hand-off or a round trip: one call.
        Tx::Sqlite(_) => tx
            .fetch_one(&stmts.join("; "), &params)
            .await
            .map_err(unique)?,
        Tx::Postgres(_) => {
            let mut sql = format!("WITH e AS ({})", stmts[0]);
            for (i, st) in stmts.iter().enumerate().skip(1) {
                sql.push_str(&format!(", s{i} AS ({st})"));
            }
            sql.push_str(" SELECT id FROM e");
            tx.fetch_one(&sql, &params).await.map_err(unique)?
        }
    };
    Ok(id.0)
}

impl FromAnyRow for WriteContext {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        context_from_row(r)
    }
}

fn context_from_row(r: &impl AnyRow) -> Result<WriteContext> {
    let seq: Option<i64> = r.col("prior_seq")?;
    let hash: Option<String> = r.col("prior_hash")?;
    Ok(WriteContext {
        prior: seq.zip(hash),
        points_valid_months: r
            .col::<Option<i32>>("points_valid_months")?
            .ok_or(StoreError::NotFound("loyalty programme"))?,
        next_threshold: r.col("next_threshold")?,
        tier_known: r.col::<i64>("tier_known")? > 0,
    })
}

/// Locks a member for a point-moving write and reads what the write needs
/// besides the ledger's head ([`WriteContext`] for the request's key).
/// On PostgreSQL the lock comes first, in a statement of its own, so that
/// the key is looked up after any writer that held the lock committed; on
/// SQLite the transaction already holds the database, and one statement
/// does both.
pub async fn lock_for_write(
    tx: &mut Tx,
    member_id: i64,
    key: &str,
) -> Result<Option<(Member, WriteContext)>> {
    if tx.engine() == crate::Engine::Sqlite {
        let sql = format!(
            "SELECT {cols}, \
             e.seq AS prior_seq, e.request_hash AS prior_hash, \
             (SELECT g.points_valid_months FROM loyalty_programs g WHERE g.hospital_id = m.hospital_id) AS points_valid_months, \
             (SELECT MIN(t.threshold_qualifying) FROM loyalty_tiers t WHERE t.hospital_id = m.hospital_id AND t.rank > \
                 (SELECT c.rank FROM loyalty_tiers c WHERE c.hospital_id = m.hospital_id AND c.code = m.tier)) AS next_threshold, \
             (SELECT COUNT(*) FROM loyalty_tiers c WHERE c.hospital_id = m.hospital_id AND c.code = m.tier) AS tier_known \
             FROM {from} LEFT JOIN loyalty_entries e ON e.member_id = m.id AND e.idempotency_key = $2 \
             WHERE m.id = $1",
            cols = super::MEMBER_COLUMNS,
            from = super::MEMBER_FROM,
        );
        let r: Option<MemberContext> = tx.fetch_opt(&sql, &[member_id.into(), key.into()]).await?;
        return Ok(r.map(|r| (r.0, r.1)));
    }
    let Some(member) = super::lock(tx, member_id).await? else {
        return Ok(None);
    };
    let ctx = write_context(tx, &member, key).await?;
    Ok(Some((member, ctx)))
}

struct MemberContext(Member, WriteContext);

impl FromAnyRow for MemberContext {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        Ok(MemberContext(
            super::member_from_row(r)?,
            context_from_row(r)?,
        ))
    }
}
