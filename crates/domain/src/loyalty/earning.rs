//! Earning: what a visit earns, and why.
//!
//! # Why it is shaped like this
//!
//! Precedence that changes silently (because rules were reordered in a table,
//! or two campaigns happened to be loaded in a different order) is a known
//! failure of other engines. Here the order is a property of the data and
//! ambiguity is refused when the rules are loaded, not discovered later:
//!
//! - [`RuleSet::new`] refuses two base rules that could match the same line
//!   with the same specificity and the same priority.
//! - [`CampaignSet::new`] refuses two campaigns with the same priority.
//!
//! # Semantics, line by line
//!
//! 1. **Base rule**: among the rules matching the line (fee category, member
//!    type, tier; `None` matches anything), the most specific wins (most
//!    fields set), then the highest `priority`. Base points =
//!    `floor(amount_minor × points_per_unit / 100)`: points per whole
//!    currency unit, **rounded down** per line. A line no rule matches earns
//!    nothing, and campaigns do not apply to it.
//! 2. **Campaigns**: those active at `at` (`starts_at <= at < ends_at`) whose
//!    filters match (department, category, member type, tier), taken in
//!    descending `priority`. An `exclusive` campaign applies and stops the
//!    ones after it (they are listed as skipped, with the reason).
//! 3. Of the campaigns that apply, **multipliers first** (in priority order,
//!    each `floor(points × percent / 100)` of the running total, so 200 =
//!    double), **then adds** (fixed points per line, in priority order).
//! 4. **Caps**: a campaign's `cap_per_member` bounds the extra points it
//!    gives a member in total; `MemberProfile::campaign_awarded` says how
//!    much it has given before, and the quote counts across its own lines in
//!    line order. A capped step says so.
//!
//! Every point in [`PointsQuote::total`] is accounted for by a line's
//! `base` plus its steps.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::FeeCategory;
use crate::money::Money;

/// One fee item of a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitLine {
    pub category: FeeCategory,
    pub department: String,
    pub amount: Money,
}

/// The member as earning needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberProfile {
    pub member_type: String,
    pub tier: String,
    /// Extra points each campaign has already given this member (by code).
    pub campaign_awarded: Vec<(String, i64)>,
}

/// A base earning rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarnRule {
    pub code: String,
    pub category: Option<FeeCategory>,
    pub member_type: Option<String>,
    pub tier: Option<String>,
    /// Breaks ties between equally specific rules; higher wins.
    pub priority: i32,
    /// Points per whole currency unit (per 100 minor units).
    pub points_per_unit: u32,
}

impl EarnRule {
    fn specificity(&self) -> u8 {
        u8::from(self.category.is_some())
            + u8::from(self.member_type.is_some())
            + u8::from(self.tier.is_some())
    }

    fn matches(&self, line: &VisitLine, m: &MemberProfile) -> bool {
        self.category.is_none_or(|c| c == line.category)
            && self
                .member_type
                .as_ref()
                .is_none_or(|t| *t == m.member_type)
            && self.tier.as_ref().is_none_or(|t| *t == m.tier)
    }

    fn can_overlap(&self, o: &Self) -> bool {
        fn dim<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
            match (a, b) {
                (Some(x), Some(y)) => x == y,
                _ => true,
            }
        }
        dim(&self.category, &o.category)
            && dim(&self.member_type, &o.member_type)
            && dim(&self.tier, &o.tier)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum CampaignEffect {
    /// Percent of the running points (200 = double). At least 100.
    MultiplyPercent(u32),
    /// Fixed points per matching line.
    AddPerLine(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub code: String,
    /// Unique in a set; higher applies first.
    pub priority: u32,
    pub starts_at: DateTime<Utc>,
    /// Exclusive end.
    pub ends_at: DateTime<Utc>,
    pub department: Option<String>,
    pub category: Option<FeeCategory>,
    pub member_type: Option<String>,
    pub tier: Option<String>,
    pub effect: CampaignEffect,
    /// When it applies, no lower-priority campaign applies to the line.
    pub exclusive: bool,
    /// Most extra points this campaign gives one member, ever.
    pub cap_per_member: Option<i64>,
}

impl Campaign {
    fn matches(&self, line: &VisitLine, m: &MemberProfile, at: DateTime<Utc>) -> bool {
        self.starts_at <= at
            && at < self.ends_at
            && self
                .department
                .as_ref()
                .is_none_or(|d| *d == line.department)
            && self.category.is_none_or(|c| c == line.category)
            && self
                .member_type
                .as_ref()
                .is_none_or(|t| *t == m.member_type)
            && self.tier.as_ref().is_none_or(|t| *t == m.tier)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EarnError {
    #[error("rule code {0:?} is defined twice")]
    DuplicateRule(String),
    #[error("rules {0:?} and {1:?} can match the same line with equal specificity and priority")]
    AmbiguousRules(String, String),
    #[error("campaign code {0:?} is defined twice")]
    DuplicateCampaign(String),
    #[error("campaigns {0:?} and {1:?} have the same priority")]
    SamePriority(String, String),
    #[error("campaign {0:?} is invalid: {1}")]
    InvalidCampaign(String, &'static str),
    #[error("line {0} has a negative amount")]
    NegativeAmount(usize),
    #[error("points overflow")]
    Overflow,
}

impl EarnError {
    /// The field of a rule or campaign definition the refusal is about.
    pub fn field(&self) -> &'static str {
        match self {
            EarnError::DuplicateRule(_) | EarnError::DuplicateCampaign(_) => "code",
            EarnError::AmbiguousRules(..) | EarnError::SamePriority(..) => "priority",
            EarnError::InvalidCampaign(_, why) => match *why {
                "ends before it starts" => "ends_at",
                "negative cap" => "cap_per_member",
                _ => "effect.value",
            },
            EarnError::NegativeAmount(_) => "amount",
            EarnError::Overflow => "points",
        }
    }

    /// A stable code for the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            EarnError::DuplicateRule(_) | EarnError::DuplicateCampaign(_) => "duplicate_code",
            EarnError::AmbiguousRules(..) => "ambiguous_rules",
            EarnError::SamePriority(..) => "same_priority",
            EarnError::InvalidCampaign(..) => "invalid_campaign",
            EarnError::NegativeAmount(_) => "negative_amount",
            EarnError::Overflow => "overflow",
        }
    }
}

/// Validated base rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSet {
    rules: Vec<EarnRule>,
}

impl RuleSet {
    pub fn rules(&self) -> &[EarnRule] {
        &self.rules
    }

    pub fn new(rules: Vec<EarnRule>) -> Result<Self, EarnError> {
        for (i, r) in rules.iter().enumerate() {
            for o in &rules[..i] {
                if o.code == r.code {
                    return Err(EarnError::DuplicateRule(r.code.clone()));
                }
                if o.specificity() == r.specificity()
                    && o.priority == r.priority
                    && o.can_overlap(r)
                {
                    return Err(EarnError::AmbiguousRules(o.code.clone(), r.code.clone()));
                }
            }
        }
        Ok(Self { rules })
    }

    /// The rule that applies to a line, if any.
    pub fn base_rule(&self, line: &VisitLine, m: &MemberProfile) -> Option<&EarnRule> {
        self.rules
            .iter()
            .filter(|r| r.matches(line, m))
            .max_by_key(|r| (r.specificity(), r.priority))
    }
}

/// Validated campaigns, highest priority first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignSet {
    campaigns: Vec<Campaign>,
}

impl CampaignSet {
    pub fn new(mut campaigns: Vec<Campaign>) -> Result<Self, EarnError> {
        for (i, c) in campaigns.iter().enumerate() {
            for o in &campaigns[..i] {
                if o.code == c.code {
                    return Err(EarnError::DuplicateCampaign(c.code.clone()));
                }
                if o.priority == c.priority {
                    return Err(EarnError::SamePriority(o.code.clone(), c.code.clone()));
                }
            }
            let bad = |why| Err(EarnError::InvalidCampaign(c.code.clone(), why));
            if c.ends_at <= c.starts_at {
                return bad("ends before it starts");
            }
            match c.effect {
                CampaignEffect::MultiplyPercent(p) if p < 100 => {
                    return bad("multiplier below 100 %");
                }
                CampaignEffect::AddPerLine(n) if n < 0 => return bad("negative add"),
                _ => {}
            }
            if c.cap_per_member.is_some_and(|cap| cap < 0) {
                return bad("negative cap");
            }
        }
        campaigns.sort_by_key(|c| std::cmp::Reverse(c.priority));
        Ok(Self { campaigns })
    }

    pub fn campaigns(&self) -> &[Campaign] {
        &self.campaigns
    }
}

/// One campaign's contribution to a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub campaign: String,
    pub effect: CampaignEffect,
    /// Extra points this step added (after any cap).
    pub points: i64,
    /// `true` when the member cap cut this step.
    pub capped: bool,
}

/// Why every point of a line was earned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub line: usize,
    pub category: FeeCategory,
    pub amount: Money,
    /// The base rule's code, or `None` when no rule matched.
    pub rule: Option<String>,
    pub base: i64,
    pub steps: Vec<Step>,
    /// Campaigns that matched but did not apply, and why.
    pub skipped: Vec<(String, String)>,
    /// `base` + the steps' points.
    pub points: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsQuote {
    pub total: i64,
    pub lines: Vec<Explanation>,
    /// Extra points per campaign in this quote (to add to the member's
    /// `campaign_awarded` when the earn is recorded).
    pub campaign_totals: Vec<(String, i64)>,
}

/// What these visit lines would earn this member at `at`, and why.
pub fn quote_points(
    visit_lines: &[VisitLine],
    member: &MemberProfile,
    rules: &RuleSet,
    campaigns: &CampaignSet,
    at: DateTime<Utc>,
) -> Result<PointsQuote, EarnError> {
    let mut campaign_totals: Vec<(String, i64)> = Vec::new();
    let mut lines = Vec::with_capacity(visit_lines.len());
    let mut total: i64 = 0;
    for (i, line) in visit_lines.iter().enumerate() {
        if line.amount.0 < 0 {
            return Err(EarnError::NegativeAmount(i));
        }
        let mut ex = Explanation {
            line: i,
            category: line.category,
            amount: line.amount,
            rule: None,
            base: 0,
            steps: Vec::new(),
            skipped: Vec::new(),
            points: 0,
        };
        if let Some(rule) = rules.base_rule(line, member) {
            let base = i128::from(line.amount.0) * i128::from(rule.points_per_unit) / 100;
            ex.base = i64::try_from(base).map_err(|_| EarnError::Overflow)?;
            ex.rule = Some(rule.code.clone());

            let mut applying: Vec<&Campaign> = Vec::new();
            let mut stopped_by: Option<&str> = None;
            for c in campaigns
                .campaigns()
                .iter()
                .filter(|c| c.matches(line, member, at))
            {
                if let Some(by) = stopped_by {
                    ex.skipped.push((
                        c.code.clone(),
                        format!("exclusive campaign {by:?} has higher priority"),
                    ));
                } else {
                    applying.push(c);
                    if c.exclusive {
                        stopped_by = Some(&c.code);
                    }
                }
            }
            let multipliers = applying
                .iter()
                .filter(|c| matches!(c.effect, CampaignEffect::MultiplyPercent(_)));
            let adds = applying
                .iter()
                .filter(|c| matches!(c.effect, CampaignEffect::AddPerLine(_)));
            let mut points = ex.base;
            for c in multipliers.chain(adds) {
                let extra = match c.effect {
                    CampaignEffect::MultiplyPercent(p) => {
                        let after = i128::from(points) * i128::from(p) / 100;
                        i64::try_from(after).map_err(|_| EarnError::Overflow)? - points
                    }
                    CampaignEffect::AddPerLine(n) => n,
                };
                let given_here = campaign_totals
                    .iter()
                    .find(|(code, _)| *code == c.code)
                    .map_or(0, |(_, n)| *n);
                let (granted, capped) = match c.cap_per_member {
                    Some(cap) => {
                        let before = member
                            .campaign_awarded
                            .iter()
                            .find(|(code, _)| *code == c.code)
                            .map_or(0, |(_, n)| *n);
                        let room = (cap - before - given_here).max(0);
                        (extra.min(room), extra > room)
                    }
                    None => (extra, false),
                };
                points = points.checked_add(granted).ok_or(EarnError::Overflow)?;
                match campaign_totals.iter_mut().find(|(code, _)| *code == c.code) {
                    Some((_, n)) => *n += granted,
                    None => campaign_totals.push((c.code.clone(), granted)),
                }
                ex.steps.push(Step {
                    campaign: c.code.clone(),
                    effect: c.effect,
                    points: granted,
                    capped,
                });
            }
            ex.points = points;
        }
        total = total.checked_add(ex.points).ok_or(EarnError::Overflow)?;
        lines.push(ex);
    }
    Ok(PointsQuote {
        total,
        lines,
        campaign_totals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(month: u32, day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month, day, 12, 0, 0).unwrap()
    }

    fn rule(
        code: &str,
        cat: Option<FeeCategory>,
        tier: Option<&str>,
        prio: i32,
        ppu: u32,
    ) -> EarnRule {
        EarnRule {
            code: code.into(),
            category: cat,
            member_type: None,
            tier: tier.map(Into::into),
            priority: prio,
            points_per_unit: ppu,
        }
    }

    fn campaign(code: &str, priority: u32, effect: CampaignEffect) -> Campaign {
        Campaign {
            code: code.into(),
            priority,
            starts_at: at(3, 1),
            ends_at: at(4, 1),
            department: None,
            category: None,
            member_type: None,
            tier: None,
            effect,
            exclusive: false,
            cap_per_member: None,
        }
    }

    fn line(cat: FeeCategory, dept: &str, minor: i64) -> VisitLine {
        VisitLine {
            category: cat,
            department: dept.into(),
            amount: Money(minor),
        }
    }

    fn member(tier: &str) -> MemberProfile {
        MemberProfile {
            member_type: "patient".into(),
            tier: tier.into(),
            campaign_awarded: vec![],
        }
    }

    fn rules() -> RuleSet {
        RuleSet::new(vec![
            rule("all", None, None, 0, 1),
            rule("treatment", Some(FeeCategory::Treatment), None, 0, 2),
            rule(
                "gold-treatment",
                Some(FeeCategory::Treatment),
                Some("gold"),
                0,
                3,
            ),
        ])
        .unwrap()
    }

    #[test]
    fn most_specific_rule_wins_and_rounds_down() {
        let lines = [
            line(FeeCategory::Treatment, "cardio", 10_099),
            line(FeeCategory::Registration, "cardio", 1_050),
        ];
        let q = quote_points(
            &lines,
            &member("gold"),
            &rules(),
            &CampaignSet::default(),
            at(1, 1),
        )
        .unwrap();
        assert_eq!(q.lines[0].rule.as_deref(), Some("gold-treatment"));
        assert_eq!(q.lines[0].base, 302, "100.99 × 3 = 302.97, floored");
        assert_eq!(q.lines[1].base, 10);
        assert_eq!(q.total, 312);
        let q = quote_points(
            &lines,
            &member("silver"),
            &rules(),
            &CampaignSet::default(),
            at(1, 1),
        )
        .unwrap();
        assert_eq!(q.lines[0].rule.as_deref(), Some("treatment"));
    }

    #[test]
    fn ambiguous_rules_and_equal_priorities_are_refused() {
        let r = RuleSet::new(vec![
            rule("a", Some(FeeCategory::Treatment), None, 0, 1),
            rule("b", None, Some("gold"), 0, 2),
        ]);
        assert_eq!(r, Err(EarnError::AmbiguousRules("a".into(), "b".into())));
        // An explicit priority resolves it.
        assert!(
            RuleSet::new(vec![
                rule("a", Some(FeeCategory::Treatment), None, 1, 1),
                rule("b", None, Some("gold"), 0, 2),
            ])
            .is_ok()
        );
        let c = CampaignSet::new(vec![
            campaign("x", 5, CampaignEffect::AddPerLine(1)),
            campaign("y", 5, CampaignEffect::AddPerLine(1)),
        ]);
        assert_eq!(c, Err(EarnError::SamePriority("x".into(), "y".into())));
    }

    #[test]
    fn double_points_in_a_department_for_a_month() {
        let mut double = campaign("cardio-x2", 10, CampaignEffect::MultiplyPercent(200));
        double.department = Some("cardio".into());
        let set = CampaignSet::new(vec![double]).unwrap();
        let lines = [
            line(FeeCategory::Examination, "cardio", 5_000),
            line(FeeCategory::Examination, "eye", 5_000),
        ];
        let q = quote_points(&lines, &member("std"), &rules(), &set, at(3, 15)).unwrap();
        assert_eq!((q.lines[0].points, q.lines[1].points), (100, 50));
        assert_eq!(q.lines[0].steps[0].points, 50);
        // Outside the window: no bonus. The end is exclusive.
        let q = quote_points(&lines, &member("std"), &rules(), &set, at(4, 1)).unwrap();
        assert_eq!(q.total, 100);
    }

    #[test]
    fn multipliers_before_adds_and_exclusive_stops_lower_priority() {
        let add = campaign("add10", 30, CampaignEffect::AddPerLine(10));
        let mul = campaign("x3", 20, CampaignEffect::MultiplyPercent(300));
        let low = campaign("x2", 10, CampaignEffect::MultiplyPercent(200));
        let set = CampaignSet::new(vec![low.clone(), mul.clone(), add.clone()]).unwrap();
        let lines = [line(FeeCategory::Registration, "any", 1_000)]; // base 10
        let q = quote_points(&lines, &member("std"), &rules(), &set, at(3, 2)).unwrap();
        // 10 × 3 × 2 = 60, then + 10.
        assert_eq!(q.total, 70);
        let codes: Vec<_> = q.lines[0]
            .steps
            .iter()
            .map(|s| s.campaign.as_str())
            .collect();
        assert_eq!(codes, ["x3", "x2", "add10"]);

        let mut mul_excl = mul;
        mul_excl.exclusive = true;
        let set = CampaignSet::new(vec![low, mul_excl, add]).unwrap();
        let q = quote_points(&lines, &member("std"), &rules(), &set, at(3, 2)).unwrap();
        // add10 (higher priority) and x3 apply; x2 is skipped.
        assert_eq!(q.total, 40);
        assert_eq!(q.lines[0].skipped.len(), 1);
        assert_eq!(q.lines[0].skipped[0].0, "x2");
    }

    #[test]
    fn per_member_cap_counts_history_and_earlier_lines() {
        let mut c = campaign("bonus", 1, CampaignEffect::AddPerLine(30));
        c.cap_per_member = Some(100);
        let set = CampaignSet::new(vec![c]).unwrap();
        let mut m = member("std");
        m.campaign_awarded = vec![("bonus".into(), 50)];
        let lines = vec![line(FeeCategory::Registration, "any", 0); 3];
        let q = quote_points(&lines, &m, &rules(), &set, at(3, 2)).unwrap();
        let steps: Vec<_> = q
            .lines
            .iter()
            .map(|l| (l.steps[0].points, l.steps[0].capped))
            .collect();
        assert_eq!(steps, [(30, false), (20, true), (0, true)]);
        assert_eq!(q.campaign_totals, [("bonus".to_owned(), 50)]);
    }

    #[test]
    fn unmatched_line_earns_nothing_and_negative_refused() {
        let only_treatment =
            RuleSet::new(vec![rule("t", Some(FeeCategory::Treatment), None, 0, 1)]).unwrap();
        let set =
            CampaignSet::new(vec![campaign("add", 1, CampaignEffect::AddPerLine(5))]).unwrap();
        let q = quote_points(
            &[line(FeeCategory::CheckUp, "x", 9_999)],
            &member("s"),
            &only_treatment,
            &set,
            at(3, 2),
        )
        .unwrap();
        assert_eq!((q.total, q.lines[0].rule.clone()), (0, None));
        let e = quote_points(
            &[line(FeeCategory::CheckUp, "x", -1)],
            &member("s"),
            &only_treatment,
            &set,
            at(3, 2),
        );
        assert_eq!(e, Err(EarnError::NegativeAmount(0)));
    }

    proptest! {
        #[test]
        fn every_point_is_explained(amounts in proptest::collection::vec(0i64..10_000_000, 0..10), cap in 0i64..500) {
            let mut a = campaign("a", 3, CampaignEffect::MultiplyPercent(150));
            a.cap_per_member = Some(cap);
            let set = CampaignSet::new(vec![a, campaign("b", 2, CampaignEffect::AddPerLine(7))]).unwrap();
            let lines: Vec<_> = amounts.iter().map(|m| line(FeeCategory::Treatment, "d", *m)).collect();
            let q = quote_points(&lines, &member("gold"), &rules(), &set, at(3, 2)).unwrap();
            let sum: i64 = q.lines.iter().map(|l| l.base + l.steps.iter().map(|s| s.points).sum::<i64>()).sum();
            prop_assert_eq!(sum, q.total);
            let a_total: i64 = q.lines.iter().flat_map(|l| &l.steps).filter(|s| s.campaign == "a").map(|s| s.points).sum();
            prop_assert!(a_total <= cap);
            prop_assert!(q.lines.iter().all(|l| l.points >= l.base && l.base >= 0));
        }
    }
}
