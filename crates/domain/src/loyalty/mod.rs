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
//! - [`rewards`]: the reward catalogue's rules and the life of a voucher.
//! - [`referral`]: who may refer whom (member-gets-member).

pub mod earning;
pub mod ledger;
pub mod pricing;
pub mod referral;
pub mod rewards;
pub mod tiers;

use serde::{Deserialize, Serialize};

use crate::patient::VisitKind;

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

impl FeeCategory {
    pub const ALL: [FeeCategory; 5] = [
        FeeCategory::Registration,
        FeeCategory::Examination,
        FeeCategory::Treatment,
        FeeCategory::Hospitalisation,
        FeeCategory::CheckUp,
    ];

    /// The spelling in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            FeeCategory::Registration => "registration",
            FeeCategory::Examination => "examination",
            FeeCategory::Treatment => "treatment",
            FeeCategory::Hospitalisation => "hospitalisation",
            FeeCategory::CheckUp => "check_up",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The fee category of a recorded visit: a visit carries one amount,
    /// which earns as one line of the category its kind stands for.
    pub fn of_visit(kind: VisitKind) -> Self {
        match kind {
            VisitKind::Outpatient | VisitKind::Telehealth => FeeCategory::Treatment,
            VisitKind::Inpatient => FeeCategory::Hospitalisation,
            VisitKind::Exam => FeeCategory::Examination,
            VisitKind::Checkup => FeeCategory::CheckUp,
        }
    }
}

/// Basis points: 1/100 of a percent. 10 000 bp = 100 %.
pub const BP_PER_WHOLE: u32 = 10_000;
