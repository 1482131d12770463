//! Moving points: earn, redeem, adjust, reverse (and the expiry job, which
//! goes through the same [`post_in`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Months, SubsecRound, Utc};
use rapport_domain::ValidationErrors;
use rapport_domain::loyalty::ledger::{
    Actor as LedgerActor, Entry, EntryId, EntryKind, Ledger, LedgerError, Lot,
};
use rapport_domain::loyalty::tiers::{TierChange, TierSet, evaluate};
use rapport_store::Tx;
use rapport_store::loyalty::ledger::{self as lstore, OpenLots, StoredEntry};
use rapport_store::loyalty::{self as store, Balance, Member, TierHistoryRow};
use sha2::{Digest, Sha256};

use super::{day_of, member_not_found};
use crate::audit::{self, Actor};
use crate::{App, AppError, Result};

/// Most points one entry may move: far beyond any real visit, small enough
/// that no sum of entries overflows.
pub const MAX_POINTS: i64 = 100_000_000;
/// Longest idempotency key and reason accepted.
pub const MAX_KEY_LEN: usize = 200;
pub const MAX_REASON_LEN: usize = 500;

/// What a write asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftKind {
    Earn,
    Redeem,
    /// Positive or negative; never zero.
    Adjust(i64),
    /// Takes back the earn at this position of the ledger.
    Reverse {
        seq: i64,
        allow_partial: bool,
    },
    /// Expires the due lot created at this position (the expiry job).
    Expire {
        seq: i64,
    },
}

impl DraftKind {
    fn code(&self) -> &'static str {
        match self {
            DraftKind::Earn => "earn",
            DraftKind::Redeem => "redeem",
            DraftKind::Adjust(_) => "adjust",
            DraftKind::Reverse { .. } => "reverse",
            DraftKind::Expire { .. } => "expire",
        }
    }
}

/// A point-moving request, validated.
#[derive(Debug, Clone)]
pub struct Draft {
    pub kind: DraftKind,
    /// For earn and redeem; ignored for adjust (|delta|) and reverse (what
    /// is left of the lot).
    pub points: i64,
    pub reason: String,
    pub idempotency_key: String,
    /// SHA-256 of the request: the same key with another request is refused.
    pub request_hash: String,
    pub actor: LedgerActor,
    pub source: String,
    pub source_visit: Option<i64>,
    pub source_campaign: Option<String>,
    pub source_referral: Option<String>,
    /// The entry's time when a job decides it; otherwise now.
    pub at: Option<DateTime<Utc>>,
}

/// The SHA-256 of a request's parts, for idempotency.
pub fn request_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    crate::tokens::hex(&h.finalize())
}

/// Checks the fields every request carries.
pub fn validate(points: Option<i64>, reason: &str, key: &str) -> Result<()> {
    let mut errs = ValidationErrors::default();
    if let Some(p) = points
        && !(1..=MAX_POINTS).contains(&p)
    {
        errs.push(
            "points",
            "out_of_range",
            format!("must be a whole number from 1 to {MAX_POINTS}"),
        );
    }
    if reason.trim().is_empty() || reason.chars().count() > MAX_REASON_LEN || reason.contains('\0')
    {
        errs.push(
            "reason",
            "invalid_length",
            format!("must say why, in 1 to {MAX_REASON_LEN} characters"),
        );
    }
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.chars().any(char::is_control) {
        errs.push(
            "idempotency_key",
            "invalid_length",
            format!("must be 1 to {MAX_KEY_LEN} bytes without control characters"),
        );
    }
    if errs.0.is_empty() {
        Ok(())
    } else {
        Err(errs.into())
    }
}

/// The outcome of a write.
#[derive(Debug, Clone)]
pub struct Posted {
    pub entry: StoredEntry,
    /// `true` when the key had been applied before with the same request:
    /// nothing changed, `entry` is the original.
    pub replayed: bool,
    /// The tier after the write, when it changed.
    pub new_tier: Option<String>,
}

/// Earns or redeems points at the desk (or through an integration).
pub async fn earn_or_redeem(
    app: &App,
    actor: &Actor,
    member_id: i64,
    kind: &str,
    points: i64,
    reason: &str,
    key: &str,
) -> Result<Posted> {
    let kind = match kind {
        "earn" => DraftKind::Earn,
        "redeem" => DraftKind::Redeem,
        _ => {
            return Err(ValidationErrors::single(
                "kind",
                "invalid_choice",
                "must be earn or redeem",
            )
            .into());
        }
    };
    validate(Some(points), reason, key)?;
    let hash = request_hash(&[kind.code(), &points.to_string(), reason]);
    post(
        app,
        actor,
        member_id,
        Draft {
            kind,
            points,
            reason: reason.to_owned(),
            idempotency_key: key.to_owned(),
            request_hash: hash,
            actor: LedgerActor::Staff(actor.who.clone()),
            source: "api".into(),
            source_visit: None,
            source_campaign: None,
            source_referral: None,
            at: None,
        },
    )
    .await
}

/// Adds (`delta > 0`) or removes points by hand, with a reason.
pub async fn adjust(
    app: &App,
    actor: &Actor,
    member_id: i64,
    delta: i64,
    reason: &str,
    key: &str,
) -> Result<Posted> {
    if delta == 0 {
        return Err(ValidationErrors::single("delta", "out_of_range", "must not be zero").into());
    }
    validate(Some(delta.saturating_abs()), reason, key).map_err(|e| match e {
        AppError::Validation(mut v) => {
            for f in &mut v.0 {
                if f.field == "points" {
                    f.field = "delta".into();
                    f.message =
                        format!("must be a whole number from -{MAX_POINTS} to {MAX_POINTS}, not 0");
                }
            }
            AppError::Validation(v)
        }
        e => e,
    })?;
    let hash = request_hash(&["adjust", &delta.to_string(), reason]);
    post(
        app,
        actor,
        member_id,
        Draft {
            kind: DraftKind::Adjust(delta),
            points: delta.abs(),
            reason: reason.to_owned(),
            idempotency_key: key.to_owned(),
            request_hash: hash,
            actor: LedgerActor::Staff(actor.who.clone()),
            source: "adjustment".into(),
            source_visit: None,
            source_campaign: None,
            source_referral: None,
            at: None,
        },
    )
    .await
}

/// Takes back an earn (what is left of its lot).
pub async fn reverse(
    app: &App,
    actor: &Actor,
    member_id: i64,
    seq: i64,
    allow_partial: bool,
    reason: &str,
    key: &str,
) -> Result<Posted> {
    validate(None, reason, key)?;
    let hash = request_hash(&[
        "reverse",
        &seq.to_string(),
        if allow_partial { "partial" } else { "whole" },
        reason,
    ]);
    post(
        app,
        actor,
        member_id,
        Draft {
            kind: DraftKind::Reverse { seq, allow_partial },
            points: 0,
            reason: reason.to_owned(),
            idempotency_key: key.to_owned(),
            request_hash: hash,
            actor: LedgerActor::Staff(actor.who.clone()),
            source: "reversal".into(),
            source_visit: None,
            source_campaign: None,
            source_referral: None,
            at: None,
        },
    )
    .await
}

/// Posts one entry in a transaction of its own (inline on SQLite: see
/// `Db::begin_inline`).
pub async fn post(app: &App, actor: &Actor, member_id: i64, draft: Draft) -> Result<Posted> {
    let mut tx = app.db.begin_inline().await?;
    let posted = post_in(app, &mut tx, actor, member_id, &draft).await?;
    tx.commit().await?;
    Ok(posted)
}

fn lifetime_of(lots: &BTreeMap<EntryId, Lot>) -> i64 {
    lots.values()
        .filter(|l| l.earned && l.reversed_at.is_none())
        .map(|l| l.original)
        .sum()
}

fn ledger_error(e: LedgerError) -> AppError {
    match e {
        LedgerError::Insufficient {
            requested,
            available,
        } => AppError::Conflict {
            code: "insufficient_points",
            message: format!("{requested} points requested but only {available} available"),
        },
        LedgerError::KeyReused(_) => key_reused(),
        LedgerError::Invalid(m) => ValidationErrors::single("points", "invalid", m).into(),
        LedgerError::Overflow => {
            ValidationErrors::single("points", "out_of_range", "the balance would overflow").into()
        }
        LedgerError::NoSuchLot(_) => AppError::NotFound("earn entry"),
        LedgerError::AlreadyReversed(id) => AppError::Conflict {
            code: "already_reversed",
            message: format!("earn {} was already reversed", id.0),
        },
        e @ LedgerError::ReversalShortfall { .. } => AppError::Conflict {
            code: "reversal_shortfall",
            message: e.to_string(),
        },
        e => AppError::Internal(format!("ledger refused a planned entry: {e}")),
    }
}

pub(crate) fn key_reused() -> AppError {
    AppError::Conflict {
        code: "idempotency_key_reused",
        message: "this idempotency key was already used for a different request".into(),
    }
}

/// Posts one entry inside the caller's transaction: lock, idempotency,
/// domain, write, audit. The caller commits.
pub async fn post_in(
    app: &App,
    tx: &mut Tx,
    actor: &Actor,
    member_id: i64,
    d: &Draft,
) -> Result<Posted> {
    let (member, ctx) = lstore::lock_for_write(tx, member_id, &d.idempotency_key)
        .await?
        .filter(|(m, _)| m.hospital_id == app.hospital_id)
        .ok_or_else(member_not_found)?;
    if let Some((seq, hash)) = &ctx.prior {
        return if *hash == d.request_hash {
            let entry = lstore::by_seq(tx, member_id, *seq)
                .await?
                .ok_or_else(|| AppError::Internal("entry vanished".into()))?;
            Ok(Posted {
                entry,
                replayed: true,
                new_tier: None,
            })
        } else {
            Err(key_reused())
        };
    }
    if member.status != "active" && matches!(d.kind, DraftKind::Earn | DraftKind::Redeem) {
        return Err(AppError::Conflict {
            code: "member_inactive",
            message: format!("the membership is {}", member.status),
        });
    }
    // Entries are applied in time order; a clock that stepped back (or
    // another server's clock) must not make a write fail.
    // Microseconds: what PostgreSQL keeps, so that a replayed answer is
    // the same as the first.
    let now =
        d.at.unwrap_or_else(|| app.now())
            .trunc_subsecs(6)
            .max(member.balance.last_at.unwrap_or(DateTime::<Utc>::MIN_UTC));
    let expires_at = match d.kind {
        DraftKind::Earn | DraftKind::Adjust(1..) => Some(
            now.checked_add_months(Months::new(ctx.points_valid_months.max(1) as u32))
                .ok_or_else(|| AppError::Internal("expiry out of range".into()))?,
        ),
        _ => None,
    };
    let also = match d.kind {
        DraftKind::Reverse { seq, .. } | DraftKind::Expire { seq } => Some(seq),
        _ => None,
    };
    // Only spending needs open lots, and only those that cover it; an
    // earn reads none.
    let open = match d.kind {
        DraftKind::Redeem => OpenLots::ToSpend(d.points),
        DraftKind::Adjust(delta @ ..0) => OpenLots::ToSpend(delta.saturating_abs()),
        _ => OpenLots::None,
    };
    let head = lstore::head(tx, &member, now, open, also).await?;
    let before = head.lots.clone();
    let mut ledger = Ledger::resume(head);
    let (kind, points) = match &d.kind {
        DraftKind::Earn => (
            EntryKind::Earn {
                expires_at: expires_at.unwrap_or(now),
            },
            d.points,
        ),
        DraftKind::Redeem => (EntryKind::Redeem, d.points),
        DraftKind::Adjust(delta) => (
            EntryKind::Adjust {
                delta: *delta,
                expires_at,
            },
            delta.abs(),
        ),
        DraftKind::Reverse { seq, allow_partial } => {
            let lot = u64::try_from(*seq)
                .ok()
                .and_then(|s| before.get(&EntryId(s)))
                .filter(|l| l.earned)
                .ok_or(AppError::NotFound("earn entry"))?;
            (
                EntryKind::Reverse {
                    reverses: EntryId(*seq as u64),
                    allow_partial: *allow_partial,
                },
                lot.remaining,
            )
        }
        DraftKind::Expire { seq } => {
            let lot = u64::try_from(*seq)
                .ok()
                .and_then(|s| before.get(&EntryId(s)))
                .ok_or(AppError::NotFound("lot"))?;
            (
                EntryKind::Expire {
                    lot: EntryId(*seq as u64),
                },
                lot.remaining,
            )
        }
    };
    let entry = Entry {
        kind,
        points,
        at: now,
        idempotency_key: d.idempotency_key.clone(),
        actor: d.actor.clone(),
        reason: d.reason.clone(),
        source: d.source.clone(),
    };
    let applied = ledger.apply(entry.clone()).map_err(ledger_error)?;
    let after = ledger.lots();
    let old = &member.balance;
    let balance = Balance {
        available: ledger.available(),
        qualifying: ledger.qualifying_12m(now),
        qualifying_as_of: Some(now),
        lifetime: old.lifetime + lifetime_of(after) - lifetime_of(&before),
        totals: ledger.totals(),
        entries: ledger.len() as i64,
        last_at: ledger.last_at(),
    };
    let seq = applied.id.0 as i64;
    let id = lstore::write(
        tx,
        &lstore::Write {
            hospital_id: app.hospital_id,
            member_id,
            seq,
            entry: &entry,
            shortfall: applied.shortfall,
            request_hash: &d.request_hash,
            source_visit: d.source_visit,
            source_campaign: d.source_campaign.as_deref(),
            source_referral: d.source_referral.as_deref(),
            lots_before: &before,
            lots_after: after,
            balance: &balance,
        },
    )
    .await?;
    // The domain decides the tier; it only needs asking when the points
    // reach the next threshold or the tier is gone.
    let may_move = !ctx.tier_known || ctx.next_threshold.is_some_and(|t| balance.qualifying >= t);
    let new_tier = if matches!(d.kind, DraftKind::Earn) && may_move {
        upgrade(app, tx, &member, balance.qualifying, now).await?
    } else {
        None
    };
    audit::record(
        app,
        tx,
        actor,
        &format!("points.{}", d.kind.code()),
        Some(("member", member_id)),
        Some(
            serde_json::json!({"entry": id, "seq": seq, "points": points, "available": balance.available})
                .to_string(),
        ),
    )
    .await?;
    Ok(Posted {
        entry: StoredEntry {
            id,
            member_id,
            seq,
            delta: lstore::delta_of(&entry),
            entry,
            balance_after: balance.available,
            shortfall: applied.shortfall,
            request_hash: d.request_hash.clone(),
            source_visit: d.source_visit,
            source_campaign: d.source_campaign.clone(),
            source_referral: d.source_referral.clone(),
        },
        replayed: false,
        new_tier,
    })
}

/// Moves a member up as soon as their qualifying points reach a higher
/// tier (downgrades wait for the anniversary review).
async fn upgrade(
    app: &App,
    tx: &mut Tx,
    member: &Member,
    qualifying: i64,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let tiers = store::tiers_tx(tx, app.hospital_id).await?;
    let set = TierSet::new(tiers.into_iter().map(|t| t.def).collect())
        .map_err(|e| AppError::Internal(format!("stored tiers are invalid: {e}")))?;
    let today = day_of(now);
    let d = evaluate(&member.tier, qualifying, member.joined_on, today, &set);
    if !matches!(d.change, TierChange::Upgrade | TierChange::Reassigned) {
        return Ok(None);
    }
    store::set_tier(
        tx,
        app.hospital_id,
        &TierHistoryRow {
            member_id: member.id,
            on: today,
            from: Some(member.tier.clone()),
            to: d.tier.clone(),
            change: store::change_code(d.change).into(),
            reason: d.reason,
            at: now,
        },
    )
    .await?;
    Ok(Some(d.tier))
}
