//! Consent: per channel and purpose, the latest decision is in force, and
//! no decision means no consent. Messaging asks [`allows`] and nothing else.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::patient::Channel;

/// Why a patient may be contacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Follow-up, reminders and other messages about the patient's care.
    Care,
    /// Campaigns, offers, newsletters.
    Marketing,
}

impl Purpose {
    pub const ALL: &'static [Purpose] = &[Purpose::Care, Purpose::Marketing];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Care => "care",
            Purpose::Marketing => "marketing",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "care" => Some(Purpose::Care),
            "marketing" => Some(Purpose::Marketing),
            _ => None,
        }
    }
}

/// One recorded decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub channel: Channel,
    pub purpose: Purpose,
    pub granted: bool,
    pub at: DateTime<Utc>,
}

/// The decision in force for a channel and purpose: the last one recorded
/// (`history` in the order recorded).
pub fn in_force(history: &[Decision], channel: Channel, purpose: Purpose) -> Option<&Decision> {
    history
        .iter()
        .rev()
        .find(|d| d.channel == channel && d.purpose == purpose)
}

/// Whether a message on `channel` for `purpose` is allowed.
pub fn allows(history: &[Decision], channel: Channel, purpose: Purpose) -> bool {
    in_force(history, channel, purpose).is_some_and(|d| d.granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(channel: Channel, purpose: Purpose, granted: bool, minute: u32) -> Decision {
        Decision {
            channel,
            purpose,
            granted,
            at: DateTime::from_timestamp(1_700_000_000 + i64::from(minute) * 60, 0).unwrap(),
        }
    }

    #[test]
    fn latest_decision_wins_and_silence_is_no() {
        let h = vec![
            d(Channel::Sms, Purpose::Marketing, true, 0),
            d(Channel::Sms, Purpose::Care, true, 1),
            d(Channel::Sms, Purpose::Marketing, false, 2),
        ];
        assert!(
            !allows(&h, Channel::Sms, Purpose::Marketing),
            "withdrawal is immediate"
        );
        assert!(allows(&h, Channel::Sms, Purpose::Care));
        assert!(
            !allows(&h, Channel::Email, Purpose::Care),
            "no decision, no consent"
        );
        assert!(!allows(&[], Channel::Wechat, Purpose::Care));
    }
}
