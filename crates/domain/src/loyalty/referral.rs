//! Member-gets-member: who may refer whom.
//!
//! A member hands out their referral code; a new patient who enrols with
//! it is *registered* as referred; after the referred patient's first paid
//! visit the referrer is rewarded, once. The refusals below guard against
//! the obvious abuse: referring oneself, or someone who shares one's phone
//! number or household (the same family collecting a bonus for itself),
//! or someone who was a patient with paid visits already (not new).

use serde::{Deserialize, Serialize};

/// A party of a referral as the rules need them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub patient_key: i64,
    pub phone: Option<String>,
    pub household: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReferralRefused {
    #[error("a member cannot refer themselves")]
    SelfReferral,
    #[error("the referrer and the new patient share a phone number")]
    SamePhone,
    #[error("the referrer and the new patient are in the same household")]
    SameHousehold,
    #[error("the patient already had paid visits: only new patients can be referred")]
    NotNew,
}

impl ReferralRefused {
    /// The stable code the API answers.
    pub fn code(self) -> &'static str {
        match self {
            ReferralRefused::SelfReferral => "referral_self",
            ReferralRefused::SamePhone => "referral_same_phone",
            ReferralRefused::SameHousehold => "referral_same_household",
            ReferralRefused::NotNew => "referral_not_new_patient",
        }
    }
}

fn same(a: &Option<String>, b: &Option<String>) -> bool {
    let norm = |s: &Option<String>| {
        s.as_deref()
            .map(|s| {
                s.chars()
                    .filter(|c| !c.is_whitespace() && *c != '-')
                    .collect::<String>()
            })
            .filter(|s| !s.is_empty())
    };
    matches!((norm(a), norm(b)), (Some(x), Some(y)) if x == y)
}

/// Whether `referrer` may refer `referred`, who had `paid_visits` before.
pub fn check(referrer: &Party, referred: &Party, paid_visits: i64) -> Result<(), ReferralRefused> {
    if referrer.patient_key == referred.patient_key {
        return Err(ReferralRefused::SelfReferral);
    }
    if same(&referrer.phone, &referred.phone) {
        return Err(ReferralRefused::SamePhone);
    }
    if same(&referrer.household, &referred.household) {
        return Err(ReferralRefused::SameHousehold);
    }
    if paid_visits > 0 {
        return Err(ReferralRefused::NotNew);
    }
    Ok(())
}

/// The alphabet of referral and voucher codes: no 0/O, 1/I/L, so a code
/// read out at the desk is typed right.
pub const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// Whether `s` could be a code of `len` characters of [`CODE_ALPHABET`].
pub fn is_code(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| CODE_ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(key: i64, phone: Option<&str>, household: Option<&str>) -> Party {
        Party {
            patient_key: key,
            phone: phone.map(Into::into),
            household: household.map(Into::into),
        }
    }

    #[test]
    fn abuse_is_refused_with_its_reason() {
        let a = p(1, Some("138 1234 5678"), Some("H1"));
        assert_eq!(check(&a, &a, 0), Err(ReferralRefused::SelfReferral));
        assert_eq!(
            check(&a, &p(2, Some("13812345678"), None), 0),
            Err(ReferralRefused::SamePhone)
        );
        assert_eq!(
            check(&a, &p(2, None, Some("H1")), 0),
            Err(ReferralRefused::SameHousehold)
        );
        assert_eq!(
            check(&a, &p(2, Some("139"), Some("H2")), 1),
            Err(ReferralRefused::NotNew)
        );
        assert_eq!(check(&a, &p(2, None, None), 0), Ok(()));
        // Empty values are not shared values.
        assert_eq!(
            check(&p(1, Some(""), Some("")), &p(2, Some(" "), Some("")), 0),
            Ok(())
        );
    }
}
