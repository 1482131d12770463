//! Price quotes: a tier's discounts applied to fee items, line by line.
//!
//! # Rules
//!
//! - Each line gets the discount its fee category has in the member's
//!   tier benefits ([`Benefits::discount_bp`]), in basis points.
//! - The discount of a line is `floor(amount × bp / 10 000)` minor units:
//!   **rounded down**, so the member never gets more than the stated
//!   percentage, and the line's net is `amount − discount`.
//! - Rounding is per line, never on the total, so each line printed on a
//!   receipt is exactly what the totals add up to.
//! - A negative line amount is refused: refunds are not priced here.

use serde::{Deserialize, Serialize};

use super::tiers::Benefits;
use super::{BP_PER_WHOLE, FeeCategory};
use crate::money::Money;

/// One fee item to price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeItem {
    pub category: FeeCategory,
    pub description: String,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    pub category: FeeCategory,
    pub description: String,
    pub list: Money,
    pub discount_bp: u32,
    pub discount: Money,
    pub net: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceQuote {
    pub lines: Vec<PricedLine>,
    pub total_list: Money,
    pub total_discount: Money,
    pub total_net: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("line {0} has a negative amount")]
    NegativeAmount(usize),
    #[error("line {0} has a discount above 100 %")]
    BadDiscount(usize),
    #[error("amount overflow")]
    Overflow,
}

/// Prices fee items with the discounts of `benefits`.
pub fn quote_price(items: &[FeeItem], benefits: &Benefits) -> Result<PriceQuote, PricingError> {
    let mut lines = Vec::with_capacity(items.len());
    let (mut list, mut disc, mut net) = (0i64, 0i64, 0i64);
    for (i, item) in items.iter().enumerate() {
        if item.amount.0 < 0 {
            return Err(PricingError::NegativeAmount(i));
        }
        let bp = benefits.discount_bp(item.category);
        if bp > BP_PER_WHOLE {
            return Err(PricingError::BadDiscount(i));
        }
        let d = i128::from(item.amount.0) * i128::from(bp) / i128::from(BP_PER_WHOLE);
        let d = i64::try_from(d).map_err(|_| PricingError::Overflow)?;
        let n = item.amount.0 - d;
        list = list
            .checked_add(item.amount.0)
            .ok_or(PricingError::Overflow)?;
        disc = disc.checked_add(d).ok_or(PricingError::Overflow)?;
        net = net.checked_add(n).ok_or(PricingError::Overflow)?;
        lines.push(PricedLine {
            category: item.category,
            description: item.description.clone(),
            list: item.amount,
            discount_bp: bp,
            discount: Money(d),
            net: Money(n),
        });
    }
    Ok(PriceQuote {
        lines,
        total_list: Money(list),
        total_discount: Money(disc),
        total_net: Money(net),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(category: FeeCategory, minor: i64) -> FeeItem {
        FeeItem {
            category,
            description: "x".into(),
            amount: Money(minor),
        }
    }

    fn gold() -> Benefits {
        Benefits {
            discounts_bp: vec![
                (FeeCategory::Registration, 10_000),
                (FeeCategory::Treatment, 550),
            ],
            ..Benefits::default()
        }
    }

    #[test]
    fn discounts_per_line_rounded_down() {
        let q = quote_price(
            &[
                item(FeeCategory::Registration, 1_500),
                item(FeeCategory::Treatment, 12_345),
                item(FeeCategory::Hospitalisation, 80_000),
            ],
            &gold(),
        )
        .unwrap();
        assert_eq!(q.lines[0].net, Money(0), "free registration");
        // 123.45 × 5.5 % = 6.78975 → 6.78 discount.
        assert_eq!(q.lines[1].discount, Money(678));
        assert_eq!(q.lines[1].net, Money(11_667));
        assert_eq!(q.lines[2].discount, Money(0));
        assert_eq!(q.total_list, Money(93_845));
        assert_eq!(q.total_discount, Money(1_500 + 678));
        assert_eq!(q.total_net, Money(93_845 - 2_178));
    }

    #[test]
    fn negative_amount_refused() {
        assert_eq!(
            quote_price(&[item(FeeCategory::CheckUp, -1)], &gold()),
            Err(PricingError::NegativeAmount(0))
        );
    }

    proptest! {
        #[test]
        fn lines_add_up_and_never_exceed_the_rate(amounts in proptest::collection::vec(0i64..crate::money::MAX_AMOUNT, 0..8), bp in 0u32..=10_000) {
            let b = Benefits { discounts_bp: vec![(FeeCategory::Examination, bp)], ..Benefits::default() };
            let items: Vec<_> = amounts.iter().map(|a| item(FeeCategory::Examination, *a)).collect();
            let q = quote_price(&items, &b).unwrap();
            for l in &q.lines {
                prop_assert_eq!(l.list.0, l.discount.0 + l.net.0);
                prop_assert!(i128::from(l.discount.0) * 10_000 <= i128::from(l.list.0) * i128::from(bp));
                prop_assert!(l.net.0 >= 0);
            }
            prop_assert_eq!(q.total_list.0, q.total_discount.0 + q.total_net.0);
            prop_assert_eq!(q.total_net.0, q.lines.iter().map(|l| l.net.0).sum::<i64>());
        }
    }
}
