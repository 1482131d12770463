//! Tiers: definitions and evaluation.
//!
//! # Why it is shaped like this
//!
//! Three bugs of other loyalty engines are designed out here:
//!
//! - **Promotion on balance.** Evaluation takes *qualifying* points (points
//!   earned in the rolling 12 months, see
//!   [`Ledger::qualifying_12m`](super::ledger::Ledger::qualifying_12m)),
//!   never the spendable balance, so spending points never demotes.
//! - **Silent precedence.** A [`TierSet`] refuses duplicate codes or ranks
//!   and thresholds that do not rise strictly with rank, so "which tier
//!   applies" has exactly one answer.
//! - **Stale tiers after a definition change.** [`reevaluate_all`] runs the
//!   same [`evaluate`] over every member against the new set; the caller
//!   runs it whenever definitions change (and daily).
//!
//! # Rules
//!
//! - The *earned* tier is the highest-ranked tier whose threshold is at most
//!   the qualifying points. The lowest-ranked tier has threshold 0, so every
//!   member has one.
//! - **Upgrade** as soon as the earned tier ranks above the current one.
//! - **Downgrade** only on the membership anniversary (the day and month of
//!   `joined_on`; 29 February joins have their anniversary on 28 February
//!   in other years), straight to the earned tier for the last 12 months.
//!   On other days the member keeps the current tier and the reason says
//!   until when. A raised threshold therefore demotes only at the anniversary.
//! - If the member's current tier code no longer exists in the set, the
//!   member is **reassigned** to the earned tier at once (there is nothing
//!   to hold them at).
//! - Evaluation must run on every anniversary (a daily job): a missed day
//!   postpones a downgrade by a year, in the member's favour.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::{BP_PER_WHOLE, FeeCategory};

/// What a tier gives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Benefits {
    /// Discount per fee category in basis points (500 = 5 %). A category not
    /// listed has no discount.
    pub discounts_bp: Vec<(FeeCategory, u32)>,
    pub priority_lane: bool,
    pub exclusive_doctor: bool,
    pub home_visits: bool,
    pub free_annual_check_up: bool,
}

impl Benefits {
    /// The discount for a category, in basis points (0 if none).
    pub fn discount_bp(&self, category: FeeCategory) -> u32 {
        self.discounts_bp
            .iter()
            .find(|(c, _)| *c == category)
            .map_or(0, |(_, bp)| *bp)
    }
}

/// One tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierDef {
    pub code: String,
    /// Higher is better. Unique in a set.
    pub rank: u32,
    /// Qualifying points (rolling 12 months) needed to reach the tier.
    pub threshold_qualifying: i64,
    pub benefits: Benefits,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TierError {
    #[error("no tiers defined")]
    Empty,
    #[error("tier code {0:?} is defined twice")]
    DuplicateCode(String),
    #[error("two tiers have rank {0}")]
    DuplicateRank(u32),
    #[error("the lowest tier {0:?} must have threshold 0")]
    LowestNotZero(String),
    #[error("tier {0:?} must have a higher threshold than every lower-ranked tier")]
    ThresholdNotRising(String),
    #[error("tier {0:?} has a discount above 100 % or listed twice")]
    BadDiscount(String),
}

/// A validated set of tiers, ordered by rank ascending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierSet {
    tiers: Vec<TierDef>,
}

impl TierSet {
    pub fn new(mut tiers: Vec<TierDef>) -> Result<Self, TierError> {
        tiers.sort_by_key(|t| t.rank);
        let first = tiers.first().ok_or(TierError::Empty)?;
        if first.threshold_qualifying != 0 {
            return Err(TierError::LowestNotZero(first.code.clone()));
        }
        for (i, t) in tiers.iter().enumerate() {
            if tiers[..i].iter().any(|o| o.code == t.code) {
                return Err(TierError::DuplicateCode(t.code.clone()));
            }
            if i > 0 {
                let prev = &tiers[i - 1];
                if prev.rank == t.rank {
                    return Err(TierError::DuplicateRank(t.rank));
                }
                if t.threshold_qualifying <= prev.threshold_qualifying {
                    return Err(TierError::ThresholdNotRising(t.code.clone()));
                }
            }
            let d = &t.benefits.discounts_bp;
            let dup = d
                .iter()
                .enumerate()
                .any(|(j, (c, _))| d[..j].iter().any(|(o, _)| o == c));
            if dup || d.iter().any(|(_, bp)| *bp > BP_PER_WHOLE) {
                return Err(TierError::BadDiscount(t.code.clone()));
            }
        }
        Ok(Self { tiers })
    }

    /// Tiers by rank ascending.
    pub fn tiers(&self) -> &[TierDef] {
        &self.tiers
    }

    pub fn get(&self, code: &str) -> Option<&TierDef> {
        self.tiers.iter().find(|t| t.code == code)
    }

    /// The highest tier whose threshold is at most `qualifying`.
    pub fn earned(&self, qualifying: i64) -> &TierDef {
        self.tiers
            .iter()
            .rev()
            .find(|t| t.threshold_qualifying <= qualifying)
            .unwrap_or(&self.tiers[0])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierChange {
    Upgrade,
    Downgrade,
    /// The current tier no longer exists; moved to the earned tier.
    Reassigned,
    None,
}

/// The outcome of an evaluation: the tier to hold from today, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierDecision {
    pub tier: String,
    pub change: TierChange,
    pub reason: String,
}

/// A row of tier history, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierHistoryEntry {
    pub on: NaiveDate,
    pub from: String,
    pub to: String,
    pub change: TierChange,
    pub reason: String,
}

impl TierDecision {
    /// The history row for this decision, if it changes the tier.
    pub fn history(&self, from: &str, on: NaiveDate) -> Option<TierHistoryEntry> {
        (self.change != TierChange::None).then(|| TierHistoryEntry {
            on,
            from: from.to_owned(),
            to: self.tier.clone(),
            change: self.change,
            reason: self.reason.clone(),
        })
    }
}

/// The anniversary of `joined_on` in `year` (28 February for a 29 February
/// join in a non-leap year).
pub fn anniversary_in(joined_on: NaiveDate, year: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, joined_on.month(), joined_on.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, joined_on.month(), joined_on.day() - 1))
}

/// Whether `today` is a membership anniversary (not the joining day itself).
pub fn is_anniversary(joined_on: NaiveDate, today: NaiveDate) -> bool {
    today > joined_on && anniversary_in(joined_on, today.year()) == Some(today)
}

/// The first anniversary strictly after `today`.
pub fn next_anniversary(joined_on: NaiveDate, today: NaiveDate) -> Option<NaiveDate> {
    let this_year = anniversary_in(joined_on, today.year())?;
    if this_year > today && this_year > joined_on {
        Some(this_year)
    } else {
        anniversary_in(joined_on, today.year() + 1)
    }
}

/// Decides the tier a member holds from `today`. `qualifying_now` is the
/// member's qualifying points for the 12 months up to today.
pub fn evaluate(
    current: &str,
    qualifying_now: i64,
    joined_on: NaiveDate,
    today: NaiveDate,
    defs: &TierSet,
) -> TierDecision {
    let earned = defs.earned(qualifying_now);
    let Some(cur) = defs.get(current) else {
        return TierDecision {
            tier: earned.code.clone(),
            change: TierChange::Reassigned,
            reason: format!(
                "tier {current:?} no longer defined; {qualifying_now} qualifying points earn {:?}",
                earned.code
            ),
        };
    };
    if earned.rank > cur.rank {
        TierDecision {
            tier: earned.code.clone(),
            change: TierChange::Upgrade,
            reason: format!(
                "{qualifying_now} qualifying points reach the {:?} threshold of {}",
                earned.code, earned.threshold_qualifying
            ),
        }
    } else if earned.rank < cur.rank {
        if is_anniversary(joined_on, today) {
            TierDecision {
                tier: earned.code.clone(),
                change: TierChange::Downgrade,
                reason: format!(
                    "anniversary review: {qualifying_now} qualifying points in the last 12 months are below the {:?} threshold of {}",
                    cur.code, cur.threshold_qualifying
                ),
            }
        } else {
            let until = next_anniversary(joined_on, today)
                .map_or_else(|| "the next anniversary".to_owned(), |d| d.to_string());
            TierDecision {
                tier: cur.code.clone(),
                change: TierChange::None,
                reason: format!(
                    "{qualifying_now} qualifying points are below the {:?} threshold of {}; tier held until the anniversary review on {until}",
                    cur.code, cur.threshold_qualifying
                ),
            }
        }
    } else {
        TierDecision {
            tier: cur.code.clone(),
            change: TierChange::None,
            reason: format!("{qualifying_now} qualifying points keep {:?}", cur.code),
        }
    }
}

/// A member as tier re-evaluation needs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberTier {
    pub member_id: String,
    pub current: String,
    pub qualifying_12m: i64,
    pub joined_on: NaiveDate,
}

/// The result of re-evaluating many members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reevaluation {
    /// One decision per member, in input order.
    pub decisions: Vec<(String, TierDecision)>,
    /// How many members change tier.
    pub moved: usize,
}

/// Re-evaluates every member against `defs` (after a definition change, or
/// daily).
pub fn reevaluate_all(members: &[MemberTier], today: NaiveDate, defs: &TierSet) -> Reevaluation {
    let decisions: Vec<_> = members
        .iter()
        .map(|m| {
            let d = evaluate(&m.current, m.qualifying_12m, m.joined_on, today, defs);
            (m.member_id.clone(), d)
        })
        .collect();
    let moved = decisions
        .iter()
        .filter(|(_, d)| d.change != TierChange::None)
        .count();
    Reevaluation { decisions, moved }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loyalty::ledger::{Actor, Entry, EntryKind, Ledger};
    use chrono::{TimeZone, Utc};

    fn tier(code: &str, rank: u32, threshold: i64) -> TierDef {
        TierDef {
            code: code.to_owned(),
            rank,
            threshold_qualifying: threshold,
            benefits: Benefits::default(),
        }
    }

    fn set(silver: i64, gold: i64, platinum: i64) -> TierSet {
        TierSet::new(vec![
            tier("standard", 0, 0),
            tier("silver", 1, silver),
            tier("gold", 2, gold),
            tier("platinum", 3, platinum),
        ])
        .unwrap()
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn upgrade_immediately_on_threshold() {
        let defs = set(1000, 5000, 20000);
        let dec = evaluate("standard", 5000, d(2025, 3, 1), d(2026, 7, 9), &defs);
        assert_eq!(
            (dec.tier.as_str(), dec.change),
            ("gold", TierChange::Upgrade)
        );
        let dec = evaluate("standard", 999, d(2025, 3, 1), d(2026, 7, 9), &defs);
        assert_eq!(dec.change, TierChange::None);
    }

    #[test]
    fn spending_the_balance_does_not_demote() {
        let defs = set(1000, 5000, 20000);
        let at = |day: u32| Utc.with_ymd_and_hms(2026, 5, day, 0, 0, 0).unwrap();
        let e = |kind, points, day, key: &str| Entry {
            kind,
            points,
            at: at(day),
            idempotency_key: key.to_owned(),
            actor: Actor::System,
            reason: String::new(),
            source: String::new(),
        };
        let mut l = Ledger::new();
        l.apply(e(EntryKind::Earn { expires_at: at(28) }, 6000, 1, "a"))
            .unwrap();
        l.apply(e(EntryKind::Redeem, 6000, 2, "b")).unwrap();
        assert_eq!(l.available(), 0);
        let q = l.qualifying_12m(at(3));
        // Even on the anniversary, the tier follows points earned.
        let dec = evaluate("gold", q, d(2025, 5, 3), d(2026, 5, 3), &defs);
        assert_eq!((dec.tier.as_str(), dec.change), ("gold", TierChange::None));
    }

    #[test]
    fn downgrade_only_at_anniversary_to_earned_tier() {
        let defs = set(1000, 5000, 20000);
        let joined = d(2024, 9, 15);
        let dec = evaluate("platinum", 1200, joined, d(2026, 9, 14), &defs);
        assert_eq!(
            (dec.tier.as_str(), dec.change),
            ("platinum", TierChange::None)
        );
        assert!(dec.reason.contains("2026-09-15"), "{}", dec.reason);
        let dec = evaluate("platinum", 1200, joined, d(2026, 9, 15), &defs);
        assert_eq!(
            (dec.tier.as_str(), dec.change),
            ("silver", TierChange::Downgrade)
        );
        // The joining day is not an anniversary.
        assert!(!is_anniversary(joined, joined));
    }

    #[test]
    fn raised_definitions_mid_year_demote_only_at_anniversary() {
        let old = set(1000, 5000, 20000);
        let new = set(2000, 8000, 30000);
        let members = vec![
            MemberTier {
                member_id: "a".into(),
                current: "gold".into(),
                qualifying_12m: 6000,
                joined_on: d(2025, 1, 10),
            },
            MemberTier {
                member_id: "b".into(),
                current: "gold".into(),
                qualifying_12m: 6000,
                joined_on: d(2025, 6, 20),
            },
            MemberTier {
                member_id: "c".into(),
                current: "silver".into(),
                qualifying_12m: 9000,
                joined_on: d(2025, 1, 10),
            },
        ];
        assert_eq!(
            reevaluate_all(&members, d(2026, 6, 20), &old).moved,
            1,
            "c upgrades under the old set"
        );
        let r = reevaluate_all(&members, d(2026, 6, 20), &new);
        assert_eq!(
            r.decisions[0].1.change,
            TierChange::None,
            "a holds gold until January"
        );
        assert_eq!(r.decisions[1].1.tier, "silver", "b's anniversary is today");
        assert_eq!(r.decisions[2].1.tier, "gold");
        assert_eq!(r.moved, 2);
    }

    #[test]
    fn lowered_definitions_upgrade_at_once_and_removed_tier_reassigns() {
        let lowered = set(500, 3000, 10000);
        let dec = evaluate("silver", 3000, d(2025, 1, 1), d(2026, 6, 1), &lowered);
        assert_eq!(
            (dec.tier.as_str(), dec.change),
            ("gold", TierChange::Upgrade)
        );
        let dec = evaluate("diamond", 3000, d(2025, 1, 1), d(2026, 6, 1), &lowered);
        assert_eq!(
            (dec.tier.as_str(), dec.change),
            ("gold", TierChange::Reassigned)
        );
        assert_eq!(dec.history("diamond", d(2026, 6, 1)).unwrap().to, "gold");
    }

    #[test]
    fn leap_day_anniversary() {
        let joined = d(2024, 2, 29);
        assert!(is_anniversary(joined, d(2025, 2, 28)));
        assert!(is_anniversary(joined, d(2028, 2, 29)));
        assert!(!is_anniversary(joined, d(2028, 2, 28)));
    }

    #[test]
    fn invalid_sets_refused() {
        assert_eq!(TierSet::new(vec![]), Err(TierError::Empty));
        assert_eq!(
            TierSet::new(vec![tier("a", 0, 10)]),
            Err(TierError::LowestNotZero("a".into()))
        );
        assert_eq!(
            TierSet::new(vec![tier("a", 0, 0), tier("b", 1, 100), tier("c", 2, 100)]),
            Err(TierError::ThresholdNotRising("c".into()))
        );
        assert_eq!(
            TierSet::new(vec![tier("a", 0, 0), tier("a", 1, 100)]),
            Err(TierError::DuplicateCode("a".into()))
        );
        assert_eq!(
            TierSet::new(vec![tier("a", 0, 0), tier("b", 0, 100)]),
            Err(TierError::DuplicateRank(0))
        );
    }
}
