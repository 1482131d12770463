//! Money as integer minor units (fen, cents). Parsed from and printed as
//! decimal strings with at most two places, never through floating point.

use std::fmt;

/// An amount in minor units (1/100 of the currency unit).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Money(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("not a decimal amount with at most two places")]
    Malformed,
    #[error("amount must not be negative")]
    Negative,
    #[error("amount is too large")]
    TooLarge,
}

/// The largest amount accepted from input: 10^13 minor units (100 billion).
pub const MAX_AMOUNT: i64 = 10_000_000_000_000;

impl Money {
    /// Parses `"123"`, `"123.4"`, `"123.45"`, `"-1.00"` (sign allowed, caller
    /// decides), with optional thousands separators stripped by the caller.
    pub fn parse_signed(s: &str) -> Result<Self, MoneyError> {
        let s = s.trim();
        let (neg, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(MoneyError::Malformed);
        }
        if frac.len() > 2
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (body.contains('.') && frac.is_empty())
        {
            return Err(MoneyError::Malformed);
        }
        if int.len() > 15 {
            return Err(MoneyError::TooLarge);
        }
        let mut units: i64 = 0;
        for b in int.bytes() {
            units = units * 10 + i64::from(b - b'0');
        }
        let mut cents: i64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            cents += i64::from(b - b'0') * if i == 0 { 10 } else { 1 };
        }
        let v = units
            .checked_mul(100)
            .and_then(|u| u.checked_add(cents))
            .ok_or(MoneyError::TooLarge)?;
        if v > MAX_AMOUNT {
            return Err(MoneyError::TooLarge);
        }
        Ok(Money(if neg { -v } else { v }))
    }

    /// Parses a non-negative amount.
    pub fn parse(s: &str) -> Result<Self, MoneyError> {
        let m = Self::parse_signed(s)?;
        if m.0 < 0 {
            return Err(MoneyError::Negative);
        }
        Ok(m)
    }

    pub fn minor(self) -> i64 {
        self.0
    }
}

/// Formats minor units as a decimal string with two places.
pub fn format_minor(v: i128) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_minor(i128::from(self.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_decimal_forms() {
        assert_eq!(Money::parse("123").unwrap(), Money(12300));
        assert_eq!(Money::parse("123.4").unwrap(), Money(12340));
        assert_eq!(Money::parse("0.05").unwrap(), Money(5));
        assert_eq!(Money::parse(".5").unwrap(), Money(50));
        assert_eq!(Money::parse_signed("-1.25").unwrap(), Money(-125));
        assert_eq!(Money::parse("-1"), Err(MoneyError::Negative));
        for bad in ["", ".", "1.", "1.234", "1e3", "12a", "1,00", "--1", " . "] {
            assert_eq!(Money::parse(bad), Err(MoneyError::Malformed), "{bad:?}");
        }
        assert_eq!(Money::parse("1000000000000000"), Err(MoneyError::TooLarge));
    }

    proptest! {
        #[test]
        fn display_round_trips(v in 0i64..MAX_AMOUNT) {
            let m = Money(v);
            prop_assert_eq!(Money::parse(&m.to_string()).unwrap(), m);
        }
    }
}
