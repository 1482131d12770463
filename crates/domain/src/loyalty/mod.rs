//! Membership and loyalty: the pure rules.
//!
//! Points and tiers are "data that must never be wrong" (see the design):
//! a balance never goes negative and always equals what its entries say,
//! spendable and qualifying points are separate figures, and the tier follows
//! points *earned*, never the balance. Everything here is data in, data out:
//! the store persists entries and decisions, the app calls these functions
//! inside its transactions.
//!
//! - [`ledger`]: the append-only points ledger as a state machine over
//!   entries (earn, redeem, expire, adjust, reverse), with lots and expiry.
//! - [`tiers`]: tier definitions and evaluation (upgrade at once, downgrade
//!   only at the membership anniversary).
//! - [`earning`]: what a visit earns, with explicit rule precedence and
//!   campaign stacking, and an explanation of every point.
//! - [`pricing`]: tier discounts applied line by line to fee items.

pub mod earning;
pub mod ledger;
pub mod pricing;
pub mod tiers;

use serde::{Deserialize, Serialize};

/// The fee categories that benefits and earning rules refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeeCategory {
    Registration,
    Examination,
    Treatment,
    Hospitalisation,
    CheckUp,
}

/// Basis points: 1/100 of a percent. 10 000 bp = 100 %.
pub const BP_PER_WHOLE: u32 = 10_000;
