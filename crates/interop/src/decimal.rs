//! Decimal text to money, without floating point.
//!
//! FHIR amounts are JSON numbers, and Synthea writes float noise such as
//! `112.41600000000001`. We never compute with `f64`: the number's text,
//! `serde_json::Number::to_string()`, is parsed as an exact decimal
//! ([`Amount`], 18 decimal places), amounts are added exactly, and only
//! the final figure (a visit's amount, a file's sum) is rounded, ONCE, to
//! minor units (1/100) with **round half to even** (banker's rounding:
//! `0.125 → 0.12`, `0.135 → 0.14`), which keeps sums of many rounded
//! amounts unbiased. Rounding each noisy amount before adding would drift:
//! Synthea's `9063.456 + 449.664… + 534.008 + 112.416…` is `10159.544…`,
//! i.e. 10159.54, while the sum of the amounts rounded one by one is
//! 10159.55.
//!
//! Why the text of a `Number` is good enough without serde_json's
//! `arbitrary_precision` feature (which would change number handling for
//! the whole workspace, features being unified): a number written with at
//! most 15 significant digits, which covers every real amount including
//! exact half cents like `0.125`, parses to the nearest `f64` and prints
//! back as the same digits, so we round what was written. Longer numbers
//! are float noise; serde_json's default parser may land one ULP off
//! (`112.41600000000001` prints back as `112.416`), far below half a cent
//! for any amount we accept. An `f64`'s text has at most 17 significant
//! digits, so 18 places hold any amount of at least 0.1 exactly.

use rapport_domain::Money;

/// Decimal places kept by [`Amount`].
pub const SCALE: u32 = 18;

/// An exact decimal amount in units of 10^-18 (of the currency unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(pub i128);

impl Amount {
    /// Parses decimal text (`-12.345`, `1e3`, `2.5E-2`); digits beyond the
    /// 18th place are rounded half to even. `None` if malformed or beyond
    /// about 10^20.
    pub fn parse(text: &str) -> Option<Self> {
        round_scaled(text, SCALE).map(Amount)
    }

    /// Rounds to minor units (1/100), half to even. `None` beyond `i64`.
    pub fn to_money(self) -> Option<Money> {
        let d = 10i128.pow(SCALE - 2);
        let a = self.0.unsigned_abs();
        let (q, r) = (a / d as u128, a % d as u128);
        let half = d as u128 / 2;
        let q = if r > half || (r == half && q % 2 == 1) {
            q + 1
        } else {
            q
        };
        let q = i64::try_from(q).ok()?;
        Some(Money(if self.0 < 0 { -q } else { q }))
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }
}

/// Converts decimal text to minor units (×100), rounding half to even.
/// `None` if malformed or too large.
pub fn decimal_to_minor(text: &str) -> Option<i64> {
    round_scaled(text, 2).and_then(|v| i64::try_from(v).ok())
}

/// `text × 10^scale`, rounded half to even to an integer.
fn round_scaled(text: &str, scale: u32) -> Option<i128> {
    let s = text.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i64>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || !(-400..=400).contains(&exp)
    {
        return None;
    }
    let digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
    let len = digits.len() as i64;
    // Position of the decimal point after scaling.
    let point = int.len() as i64 + exp + i64::from(scale);
    let digit = |i: i64| -> u8 {
        if i < 0 || i >= len {
            0
        } else {
            digits[i as usize]
        }
    };
    let mut kept: i128 = 0;
    for i in 0..point.max(0) {
        kept = kept.checked_mul(10)?.checked_add(i128::from(digit(i)))?;
    }
    let first_dropped = digit(point);
    let rest_nonzero = (point.max(-1) + 1..len).any(|i| digit(i) != 0);
    let round_up = match first_dropped {
        6..=9 => true,
        5 => rest_nonzero || kept % 2 == 1,
        _ => false,
    };
    if round_up {
        kept = kept.checked_add(1)?;
    }
    Some(if neg { -kept } else { kept })
}

/// Minor units as a JSON number with two decimals' worth of precision
/// (`1234` → `12.34`). Exact for every amount below 2^53 / 100, whose
/// shortest decimal form is the two-place one.
pub fn json_number(minor: i64) -> serde_json::Value {
    serde_json::Number::from_f64(minor as f64 / 100.0)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::{Amount, decimal_to_minor as m};

    #[test]
    fn exact_amounts() {
        assert_eq!(m("0"), Some(0));
        assert_eq!(m("255"), Some(25500));
        assert_eq!(m("12.5"), Some(1250));
        assert_eq!(m("12.34"), Some(1234));
        assert_eq!(m("-3.10"), Some(-310));
        assert_eq!(m("1e3"), Some(100000));
        assert_eq!(m("2.5E-2"), Some(2) /* 2.5 cents, half to even */);
    }

    #[test]
    fn float_noise_is_rounded_once_half_even() {
        assert_eq!(m("112.41600000000001"), Some(11242));
        assert_eq!(m("265.52000000000004"), Some(26552));
        assert_eq!(m("0.125"), Some(12));
        assert_eq!(m("0.135"), Some(14));
        assert_eq!(m("0.1250000001"), Some(13));
        assert_eq!(m("-0.125"), Some(-12));
        assert_eq!(m("1e-7"), Some(0));
        assert_eq!(m("0.00000000000000000000006"), Some(0));
    }

    #[test]
    fn amounts_add_exactly_and_round_once() {
        let sum = [
            "9063.456",
            "449.66400000000004",
            "534.008",
            "112.41600000000001",
        ]
        .iter()
        .map(|s| Amount::parse(s).unwrap())
        .try_fold(Amount::default(), Amount::checked_add)
        .unwrap();
        assert_eq!(sum.to_money().map(|m| m.0), Some(1_015_954));
        let one_by_one: i64 = [
            "9063.456",
            "449.66400000000004",
            "534.008",
            "112.41600000000001",
        ]
        .iter()
        .map(|s| m(s).unwrap())
        .sum();
        assert_eq!(one_by_one, 1_015_955);
        for (s, cents) in [
            ("0.125", 12),
            ("0.135", 14),
            ("-0.125", -12),
            ("-2.675", -268),
        ] {
            assert_eq!(
                Amount::parse(s).unwrap().to_money().map(|m| m.0),
                Some(cents),
                "{s}"
            );
            assert_eq!(m(s), Some(cents), "{s}");
        }
    }

    #[test]
    fn number_text_keeps_what_was_written() {
        // The premise of the module: up to 15 significant digits, the text
        // of a parsed number is what was written.
        for s in ["0.125", "265.52", "3910.25", "99999999999.995", "-0.005"] {
            let n: serde_json::Number = serde_json::from_str(s).unwrap();
            assert_eq!(n.to_string(), s);
        }
        // Noise may move by an ULP, never by a cent.
        let n: serde_json::Number = serde_json::from_str("112.41600000000001").unwrap();
        assert_eq!(m(&n.to_string()), Some(11242));
    }

    #[test]
    fn malformed() {
        for s in ["", "-", ".", "1.2.3", "abc", "1e", "--1", "1e99999"] {
            assert_eq!(m(s), None, "{s}");
            assert_eq!(Amount::parse(s), None, "{s}");
        }
        assert_eq!(m("99999999999999999999999"), None);
    }
}
