//! Rewards and vouchers.
//!
//! A reward (a free check-up, a discount voucher, a gift) costs points and
//! may be limited in stock and in time. Redeeming one spends the points
//! (a `redeem` entry) and issues a voucher; the voucher is used once,
//! before it expires, or cancelled, which gives the points back.
//!
//! # Voucher states
//!
//! `issued` → `used` (once, before `expires_at`) or `issued` → `cancelled`.
//! A used or cancelled voucher never changes again; an expired voucher
//! cannot be used, but can still be cancelled (the points come back).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a reward is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    CheckUp,
    DiscountVoucher,
    Gift,
}

impl RewardKind {
    pub const ALL: [RewardKind; 3] = [
        RewardKind::CheckUp,
        RewardKind::DiscountVoucher,
        RewardKind::Gift,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RewardKind::CheckUp => "check_up",
            RewardKind::DiscountVoucher => "discount_voucher",
            RewardKind::Gift => "gift",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A reward of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reward {
    pub code: String,
    pub name: String,
    pub kind: RewardKind,
    pub cost_points: i64,
    /// The value of a discount voucher, in minor units.
    pub value_minor: Option<i64>,
    /// Vouchers left; `None` is unlimited.
    pub stock: Option<i64>,
    pub active_from: DateTime<Utc>,
    /// Exclusive end; `None` is open-ended.
    pub active_until: Option<DateTime<Utc>>,
    pub voucher_valid_days: i32,
}

/// Why a reward definition is refused, with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RewardInvalid {
    pub field: &'static str,
    pub code: &'static str,
    pub message: &'static str,
}

/// Most points a reward may cost and most days a voucher may stay valid.
pub const MAX_COST: i64 = 100_000_000;
pub const MAX_VALID_DAYS: i32 = 3_660;

impl Reward {
    /// Every refusal of the definition (empty when it is valid).
    pub fn problems(&self) -> Vec<RewardInvalid> {
        let mut out = Vec::new();
        let mut bad = |field, code, message| {
            out.push(RewardInvalid {
                field,
                code,
                message,
            })
        };
        if !(1..=MAX_COST).contains(&self.cost_points) {
            bad(
                "cost_points",
                "out_of_range",
                "must be from 1 to 100,000,000",
            );
        }
        if self.stock.is_some_and(|s| s < 0) {
            bad("stock", "out_of_range", "must not be negative");
        }
        if self.active_until.is_some_and(|u| u <= self.active_from) {
            bad(
                "active_until",
                "invalid_window",
                "must be after active_from",
            );
        }
        if !(1..=MAX_VALID_DAYS).contains(&self.voucher_valid_days) {
            bad(
                "voucher_valid_days",
                "out_of_range",
                "must be from 1 to 3,660",
            );
        }
        match (self.kind, self.value_minor) {
            (RewardKind::DiscountVoucher, None) => bad(
                "value_minor",
                "required",
                "a discount voucher needs its value",
            ),
            (RewardKind::DiscountVoucher, Some(v))
                if !(1..=crate::money::MAX_AMOUNT).contains(&v) =>
            {
                bad(
                    "value_minor",
                    "out_of_range",
                    "must be a positive amount in minor units",
                )
            }
            (RewardKind::CheckUp | RewardKind::Gift, Some(_)) => bad(
                "value_minor",
                "not_applicable",
                "only a discount voucher has a value",
            ),
            _ => {}
        }
        out
    }

    /// Whether the reward can be redeemed at `at` (window and stock).
    pub fn redeemable_at(&self, at: DateTime<Utc>) -> Result<(), VoucherError> {
        if at < self.active_from || self.active_until.is_some_and(|u| at >= u) {
            return Err(VoucherError::RewardInactive);
        }
        if self.stock == Some(0) {
            return Err(VoucherError::OutOfStock);
        }
        Ok(())
    }
}

/// The state of a voucher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoucherStatus {
    Issued,
    Used,
    Cancelled,
}

impl VoucherStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VoucherStatus::Issued => "issued",
            VoucherStatus::Used => "used",
            VoucherStatus::Cancelled => "cancelled",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "issued" => Some(VoucherStatus::Issued),
            "used" => Some(VoucherStatus::Used),
            "cancelled" => Some(VoucherStatus::Cancelled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VoucherError {
    #[error("the reward is not offered at this time")]
    RewardInactive,
    #[error("the reward is out of stock")]
    OutOfStock,
    #[error("the voucher was already used")]
    AlreadyUsed,
    #[error("the voucher was cancelled")]
    Cancelled,
    #[error("the voucher has expired")]
    Expired,
}

/// Whether a voucher in `status`, expiring at `expires_at`, can be used at
/// `at`.
pub fn can_use(
    status: VoucherStatus,
    expires_at: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<(), VoucherError> {
    match status {
        VoucherStatus::Used => Err(VoucherError::AlreadyUsed),
        VoucherStatus::Cancelled => Err(VoucherError::Cancelled),
        VoucherStatus::Issued if at >= expires_at => Err(VoucherError::Expired),
        VoucherStatus::Issued => Ok(()),
    }
}

/// Whether a voucher can be cancelled (its points given back).
pub fn can_cancel(status: VoucherStatus) -> Result<(), VoucherError> {
    match status {
        VoucherStatus::Used => Err(VoucherError::AlreadyUsed),
        VoucherStatus::Cancelled => Err(VoucherError::Cancelled),
        VoucherStatus::Issued => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, 0, 0, 0).unwrap()
    }

    fn reward() -> Reward {
        Reward {
            code: "checkup".into(),
            name: "Free check-up".into(),
            kind: RewardKind::CheckUp,
            cost_points: 500,
            value_minor: None,
            stock: Some(1),
            active_from: t(1),
            active_until: Some(t(10)),
            voucher_valid_days: 30,
        }
    }

    #[test]
    fn window_and_stock() {
        let r = reward();
        assert!(r.problems().is_empty());
        assert_eq!(r.redeemable_at(t(1)), Ok(()));
        assert_eq!(r.redeemable_at(t(10)), Err(VoucherError::RewardInactive));
        assert_eq!(
            r.redeemable_at(t(1) - Duration::seconds(1)),
            Err(VoucherError::RewardInactive)
        );
        let empty = Reward {
            stock: Some(0),
            ..reward()
        };
        assert_eq!(empty.redeemable_at(t(2)), Err(VoucherError::OutOfStock));
    }

    #[test]
    fn definitions_name_their_fields() {
        let r = Reward {
            cost_points: 0,
            kind: RewardKind::DiscountVoucher,
            active_until: Some(t(1)),
            ..reward()
        };
        let fields: Vec<_> = r.problems().iter().map(|p| p.field).collect();
        assert_eq!(fields, ["cost_points", "active_until", "value_minor"]);
    }

    #[test]
    fn vouchers_are_used_once_before_expiry() {
        use VoucherStatus::*;
        assert_eq!(can_use(Issued, t(5), t(4)), Ok(()));
        assert_eq!(can_use(Issued, t(5), t(5)), Err(VoucherError::Expired));
        assert_eq!(can_use(Used, t(5), t(4)), Err(VoucherError::AlreadyUsed));
        assert_eq!(can_use(Cancelled, t(5), t(4)), Err(VoucherError::Cancelled));
        assert_eq!(can_cancel(Issued), Ok(()));
        assert_eq!(can_cancel(Used), Err(VoucherError::AlreadyUsed));
    }
}
