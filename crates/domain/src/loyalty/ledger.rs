//! The points ledger: an append-only list of entries and the state they
//! imply, as a pure state machine.
//!
//! # Why it is shaped like this
//!
//! Every point that can be spent lives in a **lot**: an earn creates one, a
//! positive adjustment creates one. Redemption, expiry, negative adjustments
//! and reversals only ever take points out of lots, so the spendable balance
//! is by construction the sum of the lot remainders, and no lot can go below
//! zero, so neither can the balance. [`Ledger::check`] proves the three
//! views agree (lots, running totals, and a recount of the entries).
//!
//! Each entry's `points` is exactly the number of points it moved, so the
//! balance can be recomputed from the entries alone, with no hidden state:
//! `earns + positive adjusts − redeems − expires − negative adjusts −
//! reversals`.
//!
//! # Rules
//!
//! - Entries are applied in time order: an entry whose `at` is before the
//!   last applied entry is refused ([`LedgerError::OutOfOrder`]).
//! - **Idempotency**: a key already applied with an identical entry returns
//!   the original result ([`Applied::duplicate`] is `true`) and changes
//!   nothing; the same key with a different entry is
//!   [`LedgerError::KeyReused`]. A refused entry does not claim its key.
//! - **Any refused entry changes nothing** (everything is validated before
//!   anything is mutated).
//! - **Redeem** (and a negative **adjust**) consumes lots that have not
//!   expired at the entry's time, oldest expiry first, then oldest lot
//!   first. A lot whose expiry has passed but that has not yet been expired
//!   is *not* spendable ([`Ledger::spendable_at`]); asking for more than is
//!   spendable is [`LedgerError::Insufficient`].
//! - **Expire** takes exactly a due lot's remainder; [`Ledger::due_expiries`]
//!   builds these entries for a scheduled run, with a key derived from the
//!   lot so that re-running the schedule is harmless.
//! - **Reverse** (of an earn) takes exactly what is left in the earn's lot.
//!   If part of the lot was already spent or expired, the reversal is
//!   refused ([`LedgerError::ReversalShortfall`]) unless the entry says
//!   `allow_partial`; then it takes what is left and [`Applied::shortfall`]
//!   reports the difference for a person to settle. The balance never goes
//!   negative and the ledger never records a debt.
//! - **Qualifying** points (which decide the tier) are earns in the rolling
//!   12 months, minus the *full* original points of earns reversed since:
//!   a reversed visit never qualified, whatever was spent in between.
//!   Redemption, expiry and adjustments do not change qualifying points, so
//!   spending points never demotes anyone.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Months, Utc};
use serde::{Deserialize, Serialize};

/// Position of an entry in the ledger (0-based), assigned on apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntryId(pub u64);

/// Who or what caused an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "id")]
pub enum Actor {
    /// A staff member (login or id).
    Staff(String),
    /// An earning rule or campaign (its code).
    Rule(String),
    /// A scheduled job (expiry).
    System,
}

/// What an entry does. Data that only one kind needs lives in its variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EntryKind {
    /// Creates a lot of `points` expiring at `expires_at`. Qualifying.
    Earn { expires_at: DateTime<Utc> },
    /// Spends `points` from the oldest lots.
    Redeem,
    /// Removes the whole remainder (`points`) of the due `lot`.
    Expire { lot: EntryId },
    /// `delta > 0` creates a lot expiring at `expires_at` (required);
    /// `delta < 0` takes points like a redemption. Never qualifying.
    /// `points` must equal `delta.abs()`.
    Adjust {
        delta: i64,
        expires_at: Option<DateTime<Utc>>,
    },
    /// Reverses the earn `reverses`: takes what is left of its lot
    /// (`points`), refused if that is less than the earn unless
    /// `allow_partial`.
    Reverse {
        reverses: EntryId,
        allow_partial: bool,
    },
}

/// One ledger entry. `points` is always the (non-negative) number of points
/// the entry moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: EntryKind,
    pub points: i64,
    pub at: DateTime<Utc>,
    pub idempotency_key: String,
    pub actor: Actor,
    pub reason: String,
    /// Where it came from (visit id, order id, job name …).
    pub source: String,
}

/// The result of applying an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub id: EntryId,
    /// `true` when the key had already been applied with the same entry.
    pub duplicate: bool,
    /// For a partial reversal: points of the earn that could not be taken
    /// back because they had been spent or had expired. Otherwise 0.
    pub shortfall: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("idempotency key {0:?} was already used for a different entry")]
    KeyReused(String),
    #[error("entry at {at} is before the last entry at {last}")]
    OutOfOrder {
        at: DateTime<Utc>,
        last: DateTime<Utc>,
    },
    #[error("invalid entry: {0}")]
    Invalid(&'static str),
    #[error("{requested} points requested but only {available} spendable")]
    Insufficient { requested: i64, available: i64 },
    #[error("entry {0:?} is not a lot that can be expired or reversed here")]
    NoSuchLot(EntryId),
    #[error("lot {lot:?} is not due until {expires_at}")]
    NotDue {
        lot: EntryId,
        expires_at: DateTime<Utc>,
    },
    #[error("points must equal the lot's remainder {remaining}")]
    WrongAmount { remaining: i64 },
    #[error("earn {0:?} was already reversed")]
    AlreadyReversed(EntryId),
    #[error(
        "earn {earn:?} had {earned} points, only {remaining} remain; reversal refused without allow_partial"
    )]
    ReversalShortfall {
        earn: EntryId,
        earned: i64,
        remaining: i64,
    },
    #[error("arithmetic overflow")]
    Overflow,
}

/// A lot of spendable points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub original: i64,
    pub remaining: i64,
    /// `true` for lots created by an earn (qualifying, reversible).
    pub earned: bool,
    /// When the earn was reversed, if it was.
    pub reversed_at: Option<DateTime<Utc>>,
}

/// Running totals by kind (points actually moved).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub earned: i64,
    pub redeemed: i64,
    pub expired: i64,
    pub adjusted_in: i64,
    pub adjusted_out: i64,
    pub reversed: i64,
}

impl Totals {
    /// What the totals leave spendable: earns and positive adjustments
    /// minus everything taken out (`None` on overflow).
    pub fn balance(&self) -> Option<i64> {
        self.earned
            .checked_add(self.adjusted_in)?
            .checked_sub(self.redeemed)?
            .checked_sub(self.expired)?
            .checked_sub(self.adjusted_out)?
            .checked_sub(self.reversed)
    }
}

/// A broken invariant found by [`Ledger::check`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ledger invariant broken: {0}")]
pub struct InvariantViolation(pub String);

/// What a stored ledger needs to take new entries without replaying its
/// history: see [`Ledger::resume`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerHead {
    /// How many entries the ledger has (the next entry's id).
    pub entries: u64,
    /// When the last entry was applied.
    pub last_at: Option<DateTime<Utc>>,
    /// The running totals of all entries so far.
    pub totals: Totals,
    /// The lots the next entries touch: every lot that still has points
    /// when they spend (redeem, negative adjustment, a scheduled expiry
    /// run), or, for one spending entry, the first lots in spending order
    /// that cover it (see [`Ledger::resume`]); and the lot an expiry or a
    /// reversal names. An earn or a positive adjustment needs none.
    pub lots: BTreeMap<EntryId, Lot>,
    /// The ledger's qualifying points (all its lots, held or not) at a
    /// time: [`Ledger::qualifying_12m`] at that time then counts the lots
    /// the head does not hold as this figure says. `None`: only the held
    /// lots count.
    pub qualifying: Option<(DateTime<Utc>, i64)>,
}

/// The start of the rolling 12-month window that ends at `at` (exclusive):
/// qualifying points count earns created in `(window_start(at), at]`.
pub fn window_start(at: DateTime<Utc>) -> DateTime<Utc> {
    at.checked_sub_months(Months::new(12))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The qualifying points of `lots` at `at`: the original points of the
/// earns created in the window ending at `at` and not reversed by then.
fn qualifying_of<'a>(lots: impl Iterator<Item = &'a Lot>, at: DateTime<Utc>) -> i64 {
    let from = window_start(at);
    lots.filter(|l| l.earned && l.created_at > from && l.created_at <= at)
        .filter(|l| !matches!(l.reversed_at, Some(r) if r <= at))
        .map(|l| l.original)
        .sum()
}

/// The state implied by a sequence of entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Entries before the held ones (a resumed ledger), with their totals
    /// and the time of the last of them.
    base: u64,
    base_totals: Totals,
    base_last_at: Option<DateTime<Utc>>,
    entries: Vec<Entry>,
    /// Shortfall reported for each entry (non-zero only for partial reversals).
    shortfalls: Vec<i64>,
    keys: HashMap<String, EntryId>,
    lots: BTreeMap<EntryId, Lot>,
    totals: Totals,
    /// Qualifying points of the lots a resumed ledger does not hold.
    unheld_qualifying: i64,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a ledger from stored entries, in order.
    pub fn replay<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Result<Self, LedgerError> {
        let mut l = Self::new();
        for e in entries {
            l.apply(e.clone())?;
        }
        Ok(l)
    }

    /// Continues a stored ledger from its head instead of replaying every
    /// entry: new entries get ids from `head.entries` on, are checked
    /// against `head.last_at`, and take points from `head.lots`.
    ///
    /// The rules are the same as for a replayed ledger provided the head
    /// holds the lots the entries touch (before spending, every lot with
    /// points left, or only the first ones in spending order, earliest
    /// expiry then oldest, that cover what is spent, which give the same
    /// plan and, when they fall short, are all the spendable lots; the lot
    /// an expiry or a reversal names), and, for
    /// [`Self::qualifying_12m`] at the head's qualifying time, the
    /// ledger's qualifying points then. [`Self::available`] comes from the
    /// totals; [`Self::lifetime`] and [`Self::entries`] cover only what the
    /// head holds and what was applied since. Idempotency keys of earlier
    /// entries are not known here: the caller looks them up before
    /// applying.
    pub fn resume(head: LedgerHead) -> Self {
        let unheld_qualifying = head.qualifying.map_or(0, |(at, points)| {
            points - qualifying_of(head.lots.values(), at)
        });
        Ledger {
            base: head.entries,
            base_totals: head.totals,
            base_last_at: head.last_at,
            totals: head.totals,
            lots: head.lots,
            unheld_qualifying,
            ..Self::default()
        }
    }

    /// Entries applied to this ledger (after the head, for a resumed one).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// How many entries the ledger has in all (the next entry's id).
    pub fn len(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the last entry was applied.
    pub fn last_at(&self) -> Option<DateTime<Utc>> {
        self.entries.last().map(|e| e.at).or(self.base_last_at)
    }

    pub fn lots(&self) -> &BTreeMap<EntryId, Lot> {
        &self.lots
    }

    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Spendable points: what the totals leave, which is the sum of all lot
    /// remainders ([`Self::check`]), including lots past their expiry that
    /// the schedule has not expired yet.
    pub fn available(&self) -> i64 {
        self.totals
            .balance()
            .unwrap_or_else(|| self.lots.values().map(|l| l.remaining).sum())
    }

    /// Points that can actually be redeemed at `at` (lots not yet expired).
    pub fn spendable_at(&self, at: DateTime<Utc>) -> i64 {
        self.lots
            .values()
            .filter(|l| l.expires_at > at)
            .map(|l| l.remaining)
            .sum()
    }

    /// Points earned in the 12 months up to `at` (`(at − 12 months, at]`),
    /// minus the full original points of those earns reversed at or before
    /// `at`. Redemption, expiry and adjustments do not count. A resumed
    /// ledger counts the lots its head did not hold as they stood at the
    /// head's qualifying time ([`LedgerHead::qualifying`]).
    pub fn qualifying_12m(&self, at: DateTime<Utc>) -> i64 {
        self.unheld_qualifying + qualifying_of(self.lots.values(), at)
    }

    /// All points ever earned, minus earns that were reversed.
    pub fn lifetime(&self) -> i64 {
        self.lots
            .values()
            .filter(|l| l.earned && l.reversed_at.is_none())
            .map(|l| l.original)
            .sum()
    }

    /// Lots with points in spending order at `at`: not expired at `at`,
    /// earliest expiry first, then oldest lot first.
    fn spending_order(&self, at: DateTime<Utc>) -> Vec<(EntryId, i64)> {
        let mut v: Vec<_> = self
            .lots
            .iter()
            .filter(|(_, l)| l.remaining > 0 && l.expires_at > at)
            .map(|(id, l)| (l.expires_at, *id, l.remaining))
            .collect();
        v.sort();
        v.into_iter().map(|(_, id, r)| (id, r)).collect()
    }

    /// Plans taking `points` from lots at `at`: (lot, amount) pairs.
    fn plan_take(
        &self,
        points: i64,
        at: DateTime<Utc>,
    ) -> Result<Vec<(EntryId, i64)>, LedgerError> {
        let available = self.spendable_at(at);
        if points > available {
            return Err(LedgerError::Insufficient {
                requested: points,
                available,
            });
        }
        let mut left = points;
        let mut plan = Vec::new();
        for (id, rem) in self.spending_order(at) {
            if left == 0 {
                break;
            }
            let take = rem.min(left);
            plan.push((id, take));
            left -= take;
        }
        Ok(plan)
    }

    /// The Expire entries a scheduled run at `at` must apply: one per lot
    /// that is due (`expires_at <= at`) and still has points. Keys are
    /// `expire:<lot>` so that a repeated run cannot expire a lot twice.
    pub fn due_expiries(&self, at: DateTime<Utc>) -> Vec<Entry> {
        self.lots
            .iter()
            .filter(|(_, l)| l.remaining > 0 && l.expires_at <= at)
            .map(|(id, l)| Entry {
                kind: EntryKind::Expire { lot: *id },
                points: l.remaining,
                at,
                idempotency_key: format!("expire:{}", id.0),
                actor: Actor::System,
                reason: format!("lot expired at {}", l.expires_at),
                source: "expiry".to_owned(),
            })
            .collect()
    }

    /// Applies [`Self::due_expiries`] at `at`.
    pub fn expire_due(&mut self, at: DateTime<Utc>) -> Result<Vec<Applied>, LedgerError> {
        self.due_expiries(at)
            .into_iter()
            .map(|e| self.apply(e))
            .collect()
    }

    /// Applies one entry; see the module documentation for the rules. On
    /// error nothing changes.
    pub fn apply(&mut self, entry: Entry) -> Result<Applied, LedgerError> {
        if let Some(&id) = self.keys.get(&entry.idempotency_key) {
            let idx = (id.0 - self.base) as usize;
            return if self.entries[idx] == entry {
                Ok(Applied {
                    id,
                    duplicate: true,
                    shortfall: self.shortfalls[idx],
                })
            } else {
                Err(LedgerError::KeyReused(entry.idempotency_key))
            };
        }
        if entry.idempotency_key.is_empty() {
            return Err(LedgerError::Invalid("idempotency key is empty"));
        }
        if let Some(last) = self.last_at().filter(|l| entry.at < *l) {
            return Err(LedgerError::OutOfOrder { at: entry.at, last });
        }
        if entry.points < 0 {
            return Err(LedgerError::Invalid("points must not be negative"));
        }
        let id = EntryId(self.len());

        // Validate and plan; mutate only after this block.
        let mut totals = self.totals;
        let mut shortfall = 0;
        enum Effect {
            NewLot(Lot),
            Take(Vec<(EntryId, i64)>),
            Reverse(EntryId),
        }
        let effect = match &entry.kind {
            EntryKind::Earn { expires_at } => {
                if entry.points == 0 {
                    return Err(LedgerError::Invalid("an earn must have points"));
                }
                if *expires_at <= entry.at {
                    return Err(LedgerError::Invalid(
                        "a lot must expire after it is created",
                    ));
                }
                totals.earned = totals
                    .earned
                    .checked_add(entry.points)
                    .ok_or(LedgerError::Overflow)?;
                Effect::NewLot(Lot {
                    created_at: entry.at,
                    expires_at: *expires_at,
                    original: entry.points,
                    remaining: entry.points,
                    earned: true,
                    reversed_at: None,
                })
            }
            EntryKind::Redeem => {
                if entry.points == 0 {
                    return Err(LedgerError::Invalid("a redemption must have points"));
                }
                totals.redeemed += entry.points;
                Effect::Take(self.plan_take(entry.points, entry.at)?)
            }
            EntryKind::Adjust { delta, expires_at } => {
                if *delta == 0 || delta.checked_abs() != Some(entry.points) {
                    return Err(LedgerError::Invalid(
                        "adjust points must equal |delta| and be non-zero",
                    ));
                }
                if *delta > 0 {
                    let Some(exp) = expires_at else {
                        return Err(LedgerError::Invalid(
                            "a positive adjustment needs an expiry",
                        ));
                    };
                    if *exp <= entry.at {
                        return Err(LedgerError::Invalid(
                            "a lot must expire after it is created",
                        ));
                    }
                    totals.adjusted_in = totals
                        .adjusted_in
                        .checked_add(entry.points)
                        .ok_or(LedgerError::Overflow)?;
                    Effect::NewLot(Lot {
                        created_at: entry.at,
                        expires_at: *exp,
                        original: entry.points,
                        remaining: entry.points,
                        earned: false,
                        reversed_at: None,
                    })
                } else {
                    if expires_at.is_some() {
                        return Err(LedgerError::Invalid("a negative adjustment has no expiry"));
                    }
                    totals.adjusted_out += entry.points;
                    Effect::Take(self.plan_take(entry.points, entry.at)?)
                }
            }
            EntryKind::Expire { lot } => {
                let l = self.lots.get(lot).ok_or(LedgerError::NoSuchLot(*lot))?;
                if l.expires_at > entry.at {
                    return Err(LedgerError::NotDue {
                        lot: *lot,
                        expires_at: l.expires_at,
                    });
                }
                if l.remaining == 0 || entry.points != l.remaining {
                    return Err(LedgerError::WrongAmount {
                        remaining: l.remaining,
                    });
                }
                totals.expired += entry.points;
                Effect::Take(vec![(*lot, entry.points)])
            }
            EntryKind::Reverse {
                reverses,
                allow_partial,
            } => {
                let l = self
                    .lots
                    .get(reverses)
                    .filter(|l| l.earned)
                    .ok_or(LedgerError::NoSuchLot(*reverses))?;
                if l.reversed_at.is_some() {
                    return Err(LedgerError::AlreadyReversed(*reverses));
                }
                if entry.points != l.remaining {
                    return Err(LedgerError::WrongAmount {
                        remaining: l.remaining,
                    });
                }
                if l.remaining < l.original && !allow_partial {
                    return Err(LedgerError::ReversalShortfall {
                        earn: *reverses,
                        earned: l.original,
                        remaining: l.remaining,
                    });
                }
                shortfall = l.original - l.remaining;
                totals.reversed += entry.points;
                Effect::Reverse(*reverses)
            }
        };

        // Commit.
        match effect {
            Effect::NewLot(lot) => {
                self.lots.insert(id, lot);
            }
            Effect::Take(plan) => {
                for (lot, take) in plan {
                    if let Some(l) = self.lots.get_mut(&lot) {
                        l.remaining -= take;
                    }
                }
            }
            Effect::Reverse(lot) => {
                if let Some(l) = self.lots.get_mut(&lot) {
                    l.remaining = 0;
                    l.reversed_at = Some(entry.at);
                }
            }
        }
        self.totals = totals;
        self.keys.insert(entry.idempotency_key.clone(), id);
        self.entries.push(entry);
        self.shortfalls.push(shortfall);
        Ok(Applied {
            id,
            duplicate: false,
            shortfall,
        })
    }

    /// Checks every invariant: no lot negative or above its original;
    /// available ≥ 0; running totals == a recount of the entries; and, for
    /// a ledger that holds every lot (not resumed), available == the sum
    /// of lot remainders.
    pub fn check(&self) -> Result<(), InvariantViolation> {
        let bad = |s: String| Err(InvariantViolation(s));
        for (id, l) in &self.lots {
            if l.remaining < 0 || l.remaining > l.original {
                return bad(format!(
                    "lot {} has remainder {} of {}",
                    id.0, l.remaining, l.original
                ));
            }
        }
        let lots_sum: i64 = self.lots.values().map(|l| l.remaining).sum();
        if lots_sum < 0 {
            return bad(format!("available is negative: {lots_sum}"));
        }
        let Some(by_totals) = self.totals.balance() else {
            return bad("totals overflow".to_owned());
        };
        let mut recount = self.base_totals;
        for e in &self.entries {
            match &e.kind {
                EntryKind::Earn { .. } => recount.earned += e.points,
                EntryKind::Redeem => recount.redeemed += e.points,
                EntryKind::Expire { .. } => recount.expired += e.points,
                EntryKind::Adjust { delta, .. } if *delta > 0 => recount.adjusted_in += e.points,
                EntryKind::Adjust { .. } => recount.adjusted_out += e.points,
                EntryKind::Reverse { .. } => recount.reversed += e.points,
            }
        }
        if recount != self.totals {
            return bad(format!(
                "totals {:?} differ from entries {recount:?}",
                self.totals
            ));
        }
        if by_totals < 0 {
            return bad(format!("available is negative: {by_totals}"));
        }
        // A resumed ledger holds only some lots: their sum is not the
        // balance.
        if self.base == 0 && by_totals != lots_sum {
            return bad(format!("entries say {by_totals}, lots say {lots_sum}"));
        }
        if self.entries.len() != self.shortfalls.len() || self.keys.len() != self.entries.len() {
            return bad("entry bookkeeping out of step".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
