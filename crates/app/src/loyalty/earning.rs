//! Earning: the stored rules and campaigns, the points a paid visit gives
//! its patient's membership (and takes back when the visit goes or
//! changes), the referrer's reward after a referred patient's first paid
//! visit, and the quote that explains every point.
//!
//! # How a visit earns
//!
//! A visit carries one amount, so it earns as one line: its category is
//! the one its kind stands for (`FeeCategory::of_visit`), its department
//! is the visit's. The campaigns' windows are matched at noon, hospital
//! time, of the visit's date ([`visit_at`]), so a visit recorded late
//! still gets the campaign of the day it happened. The member's type and
//! tier are read under the member's lock, as are the extra points each
//! campaign has already given them (earns that were reversed give their
//! room back to the cap).
//!
//! The earn is posted through [`points::post_in`] in the visit's
//! transaction with the key `visit:{id}:earn` (`visit:{id}:earn:{n}` for
//! the n-th earn of a visit that changed), so an import run twice awards
//! nothing more. When the visit is deleted, moved to another patient, or
//! its date, department, kind or amount changes, the earns it gave are
//! reversed (whatever is left of them: `allow_partial`) and, if it still
//! earns, it earns again from the current rules.
//!
//! Only active members earn; a visit of a suspended or closed member, or
//! of a patient who is not a member, earns nothing (and is not revisited
//! when they join).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rapport_domain::loyalty::FeeCategory;
use rapport_domain::loyalty::earning::{
    Campaign, CampaignEffect, CampaignSet, EarnError, EarnRule, MemberProfile, PointsQuote,
    RuleSet, VisitLine, quote_points,
};
use rapport_domain::loyalty::ledger::Actor as LedgerActor;
use rapport_domain::patient::{Visit, VisitKind};
use rapport_domain::{Money, ValidationErrors};
use rapport_store::Tx;
use rapport_store::loyalty::referrals::{self as rstore, Pending};
use rapport_store::loyalty::rules::{self as store, CampaignRow, MemberBrief, Settings, VisitEarn};
use rapport_store::loyalty::{self as mstore};

use super::points::{self, Draft, DraftKind};
use super::{MEMBER_TYPES, member_not_found};
use crate::audit::{self, Actor};
use crate::{App, AppError, Result};

/// The moment of a visit for campaign windows: noon of its date in
/// hospital time (UTC+8, as [`App::today`]).
pub fn visit_at(date: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(4, 0, 0).unwrap_or_default())
}

/// What earning needs, loaded once per visit or once per import.
#[derive(Debug, Clone)]
pub struct EarnContext {
    pub rules: RuleSet,
    pub campaigns: CampaignSet,
    pub settings: Settings,
}

impl EarnContext {
    pub async fn load(tx: &mut Tx, hospital_id: i64) -> Result<Self> {
        let rules = store::rules_tx(tx, hospital_id).await?;
        let campaigns = store::campaigns_tx(tx, hospital_id).await?;
        let settings = store::settings_tx(tx, hospital_id).await?;
        Ok(EarnContext {
            rules: RuleSet::new(rules).map_err(|e| {
                AppError::Internal(format!("stored earning rules are invalid: {e}"))
            })?,
            campaigns: CampaignSet::new(campaigns.into_iter().map(|c| c.campaign).collect())
                .map_err(|e| AppError::Internal(format!("stored campaigns are invalid: {e}")))?,
            settings,
        })
    }
}

/// The facts of a visit that earning reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitFacts {
    pub id: i64,
    pub patient_key: i64,
    pub date: NaiveDate,
    pub department: Option<String>,
    pub kind: VisitKind,
    pub amount: Money,
}

impl From<&Visit> for VisitFacts {
    fn from(v: &Visit) -> Self {
        VisitFacts {
            id: v.id,
            patient_key: v.patient_key,
            date: v.visit_date,
            department: v.department.clone(),
            kind: v.kind,
            amount: v.amount,
        }
    }
}

impl VisitFacts {
    /// The lines a visit earns on: none when it was not paid.
    pub fn lines(&self) -> Vec<VisitLine> {
        if self.amount.0 <= 0 {
            return Vec::new();
        }
        vec![VisitLine {
            category: FeeCategory::of_visit(self.kind),
            department: self.department.clone().unwrap_or_default(),
            amount: self.amount,
        }]
    }

    /// What an earn was computed from: when it changes, the earn is redone.
    fn basis(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.date,
            self.department.as_deref().unwrap_or(""),
            self.kind.as_str(),
            self.amount.0
        )
    }
}

fn rule_actor() -> LedgerActor {
    LedgerActor::Rule("visit".into())
}

/// Reverses every earn of the visit that is not reversed yet. Members
/// must be locked by the caller (ascending id) when there are several.
async fn reverse_earns(
    app: &App,
    tx: &mut Tx,
    actor: &Actor,
    visit_id: i64,
    earns: &[VisitEarn],
    why: &str,
) -> Result<()> {
    for e in earns.iter().filter(|e| e.reversed_seq.is_none()) {
        let key = format!("visit:{visit_id}:reverse:{}", e.seq);
        let reason = format!("visit {visit_id} {why}");
        let hash = points::request_hash(&["visit-reverse", &e.seq.to_string(), &reason]);
        let posted = points::post_in(
            app,
            tx,
            actor,
            e.member_id,
            &Draft {
                kind: DraftKind::Reverse {
                    seq: e.seq,
                    allow_partial: true,
                },
                points: 0,
                reason,
                idempotency_key: key,
                request_hash: hash,
                actor: rule_actor(),
                source: "visit".into(),
                source_visit: Some(visit_id),
                source_campaign: None,
                source_referral: None,
                at: None,
            },
        )
        .await?;
        store::mark_reversed(
            tx,
            e.member_id,
            e.seq,
            posted.entry.seq,
            posted.entry.entry.at,
        )
        .await?;
    }
    Ok(())
}

/// Brings a visit's earns in line with the visit: nothing when an earn
/// not reversed was computed from the same facts for the same member;
/// otherwise reverse what it gave and earn again. `member` is the
/// membership of the visit's patient, if any.
pub(crate) async fn settle_visit(
    app: &App,
    tx: &mut Tx,
    actor: &Actor,
    ctx: &EarnContext,
    v: &VisitFacts,
    member: Option<i64>,
) -> Result<()> {
    let earns = store::earns_of_visit_tx(tx, v.id).await?;
    let active: Vec<&VisitEarn> = earns.iter().filter(|e| e.reversed_seq.is_none()).collect();
    let basis = v.basis();
    if let [only] = active.as_slice()
        && Some(only.member_id) == member
        && only.basis == basis
    {
        return Ok(());
    }
    if active.is_empty() && (member.is_none() || v.amount.0 <= 0) {
        return Ok(());
    }
    // Members in ascending id, before any of them is written.
    let mut ids: Vec<i64> = active.iter().map(|e| e.member_id).chain(member).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in &ids {
        mstore::lock(tx, *id).await?;
    }
    reverse_earns(app, tx, actor, v.id, &earns, "changed").await?;
    let Some(member_id) = member else {
        return Ok(());
    };
    let m = mstore::lock(tx, member_id)
        .await?
        .ok_or_else(member_not_found)?;
    if m.status != "active" {
        return Ok(());
    }
    let profile = MemberProfile {
        member_type: m.member_type.clone(),
        tier: m.tier.clone(),
        campaign_awarded: store::campaign_awarded(tx, member_id).await?,
    };
    let q = quote_points(
        &v.lines(),
        &profile,
        &ctx.rules,
        &ctx.campaigns,
        visit_at(v.date),
    )
    .map_err(|e| AppError::Internal(format!("quoting visit {}: {e}", v.id)))?;
    if q.total <= 0 {
        return Ok(());
    }
    let key = if earns.is_empty() {
        format!("visit:{}:earn", v.id)
    } else {
        format!("visit:{}:earn:{}", v.id, earns.len())
    };
    let reason = format!("visit {} on {}", v.id, v.date);
    let campaigns: Vec<&str> = q
        .campaign_totals
        .iter()
        .filter(|(_, p)| *p > 0)
        .map(|(c, _)| c.as_str())
        .collect();
    let hash = points::request_hash(&["visit-earn", &q.total.to_string(), &basis]);
    let posted = points::post_in(
        app,
        tx,
        actor,
        member_id,
        &Draft {
            kind: DraftKind::Earn,
            points: q.total,
            reason,
            idempotency_key: key,
            request_hash: hash,
            actor: rule_actor(),
            source: "visit".into(),
            source_visit: Some(v.id),
            source_campaign: (!campaigns.is_empty()).then(|| campaigns.join(",")),
            source_referral: None,
            at: None,
        },
    )
    .await?;
    if !posted.replayed {
        store::insert_visit_earn(
            tx,
            app.hospital_id,
            &VisitEarn {
                member_id,
                seq: posted.entry.seq,
                visit_key: v.id,
                points: q.total,
                basis,
                explanation: serde_json::to_string(&q)
                    .map_err(|e| AppError::Internal(e.to_string()))?,
                reversed_seq: None,
                reversed_at: None,
            },
            &q.campaign_totals,
        )
        .await?;
    }
    Ok(())
}

/// Rewards the referrer of a referred patient whose first paid visit
/// this is (once: the referral leaves the `registered` state).
pub(crate) async fn settle_referral(
    app: &App,
    tx: &mut Tx,
    actor: &Actor,
    ctx: &EarnContext,
    p: &Pending,
    visit_id: i64,
) -> Result<()> {
    let points = ctx.settings.referral_reward_points;
    let referrer = mstore::lock(tx, p.referrer_member_id)
        .await?
        .ok_or_else(member_not_found)?;
    let now = app.now();
    if points <= 0 || referrer.status != "active" {
        rstore::settle(tx, p.id, visit_id, None, now).await?;
        return Ok(());
    }
    let reason = format!(
        "referral {}: first paid visit of the referred patient",
        p.id
    );
    let hash = points::request_hash(&[
        "referral",
        &p.id.to_string(),
        &visit_id.to_string(),
        &points.to_string(),
    ]);
    // Per visit: a referral reopened when its visit went can be rewarded
    // again on another.
    let key = format!("referral:{}:reward:{visit_id}", p.id);
    let draft = referral_draft(DraftKind::Earn, points, reason, key, hash, &p.code);
    let posted = points::post_in(app, tx, actor, p.referrer_member_id, &draft).await?;
    rstore::settle(
        tx,
        p.id,
        visit_id,
        Some((posted.entry.seq, points)),
        posted.entry.entry.at,
    )
    .await?;
    Ok(())
}

/// An entry the referral rule posts in a referrer's ledger.
fn referral_draft(
    kind: DraftKind,
    points: i64,
    reason: String,
    idempotency_key: String,
    request_hash: String,
    code: &str,
) -> Draft {
    Draft {
        kind,
        points,
        reason,
        idempotency_key,
        request_hash,
        actor: LedgerActor::Rule("referral".into()),
        source: "referral".into(),
        source_visit: None,
        source_campaign: None,
        source_referral: Some(code.to_owned()),
        at: None,
    }
}

/// When the visit that settled a referral (the referred patient's first
/// paid visit) is deleted or no longer paid: what is left of the
/// referrer's reward is taken back (a shortfall, when they already spent
/// it, is recorded on the reversal for a person to settle), and the
/// referral settles on the patient's next paid visit, or waits for one.
pub(crate) async fn unsettle_referral(
    app: &App,
    tx: &mut Tx,
    actor: &Actor,
    patient_key: i64,
    visit_id: i64,
    why: &str,
) -> Result<()> {
    let Some(r) = rstore::settled_by(tx, app.hospital_id, patient_key, visit_id).await? else {
        return Ok(());
    };
    if let Some(seq) = r.rewarded_seq {
        let draft = referral_draft(
            DraftKind::Reverse {
                seq,
                allow_partial: true,
            },
            0,
            format!("referral {}: its first paid visit was {why}", r.id),
            format!("referral:{}:reversal:{visit_id}", r.id),
            points::request_hash(&[
                "referral reversal",
                &r.id.to_string(),
                &visit_id.to_string(),
            ]),
            &r.code,
        );
        let reversal = points::post_in(app, tx, actor, r.referrer_member_id, &draft).await;
        match reversal {
            // Staff took the reward back by hand already.
            Err(AppError::Conflict {
                code: "already_reversed",
                ..
            }) => {}
            other => {
                other?;
            }
        }
    }
    rstore::reopen(tx, r.id).await?;
    if let Some(next) = rstore::first_paid_visit(tx, patient_key, visit_id).await? {
        let ctx = EarnContext::load(tx, app.hospital_id).await?;
        let pending = Pending {
            id: r.id,
            referrer_member_id: r.referrer_member_id,
            code: r.code,
            referred_patient_key: patient_key,
        };
        settle_referral(app, tx, actor, &ctx, &pending, next).await?;
    }
    Ok(())
}

/// After a visit was inserted or rewritten (inside its transaction, with
/// the visit and patient locked): earn, re-earn or reverse, and reward a
/// referrer.
pub(crate) async fn after_visit_written(
    app: &App,
    tx: &mut Tx,
    actor: &Actor,
    visit_id: i64,
) -> Result<()> {
    let v = rapport_store::visits::get_tx(tx, visit_id)
        .await?
        .ok_or(AppError::NotFound("visit"))?;
    let facts = VisitFacts::from(&v);
    if facts.amount.0 <= 0 {
        unsettle_referral(app, tx, actor, v.patient_key, visit_id, "refunded").await?;
    }
    let members = store::members_of_patients(tx, app.hospital_id, &[v.patient_key]).await?;
    let had = store::earns_of_visit_tx(tx, visit_id).await?;
    let pending = if facts.amount.0 > 0 {
        rstore::pending_of(tx, app.hospital_id, &[v.patient_key]).await?
    } else {
        Vec::new()
    };
    if members.is_empty() && had.is_empty() && pending.is_empty() {
        return Ok(());
    }
    let ctx = EarnContext::load(tx, app.hospital_id).await?;
    settle_visit(app, tx, actor, &ctx, &facts, members.first().map(|m| m.id)).await?;
    for p in &pending {
        settle_referral(app, tx, actor, &ctx, p, visit_id).await?;
    }
    Ok(())
}

/// Before a visit of `patient_key` is deleted: its earns are reversed,
/// and a referral it settled goes back.
pub(crate) async fn before_visit_deleted(
    app: &App,
    tx: &mut Tx,
    actor: &Actor,
    visit_id: i64,
    patient_key: i64,
) -> Result<()> {
    let earns = store::earns_of_visit_tx(tx, visit_id).await?;
    let mut ids: Vec<i64> = earns
        .iter()
        .filter(|e| e.reversed_seq.is_none())
        .map(|e| e.member_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    for id in &ids {
        mstore::lock(tx, *id).await?;
    }
    reverse_earns(app, tx, actor, visit_id, &earns, "deleted").await?;
    unsettle_referral(app, tx, actor, patient_key, visit_id, "deleted").await
}

/// What an import needs to award points chunk by chunk: the rules and
/// campaigns are loaded once per file.
pub struct ImportEarning<'a> {
    pub app: &'a App,
    pub actor: &'a Actor,
    ctx: Option<EarnContext>,
    /// Whether the hospital had any member or referral when the import
    /// first asked: if not, the file's visits have nothing to earn or to
    /// settle, and no chunk asks again. A member enrolled while an import
    /// runs misses some of its visits either way: the chunks applied
    /// before the enrolment never see the member.
    in_use: Option<bool>,
}

/// A visit of an import chunk that was inserted or changed.
#[derive(Debug, Clone)]
pub struct ChunkVisit {
    pub visit_id: String,
    /// The platform id when known (changed visits); new ones are looked up.
    pub id: Option<i64>,
    pub patient_key: i64,
    /// The patient it belonged to before a change.
    pub old_patient_key: Option<i64>,
    pub date: NaiveDate,
    pub department: Option<String>,
    pub kind: VisitKind,
    pub amount: Money,
}

impl<'a> ImportEarning<'a> {
    pub fn new(app: &'a App, actor: &'a Actor) -> Self {
        ImportEarning {
            app,
            actor,
            ctx: None,
            in_use: None,
        }
    }

    /// Whether the hospital has any member or referral (asked once).
    pub async fn in_use(&mut self, tx: &mut Tx) -> Result<bool> {
        Ok(match self.in_use {
            Some(used) => used,
            None => *self
                .in_use
                .insert(store::in_use(tx, self.app.hospital_id).await?),
        })
    }

    /// Awards (or re-awards) the points of a chunk's new and changed
    /// visits: one statement finds the members among the chunk's
    /// patients, one the waiting referrals; ledger work happens only for
    /// visits of members and for referred patients' first paid visits.
    pub async fn chunk(&mut self, tx: &mut Tx, visits: &[ChunkVisit]) -> Result<()> {
        if visits.is_empty() {
            return Ok(());
        }
        let h = self.app.hospital_id;
        if !self.in_use(tx).await? {
            return Ok(());
        }
        // Only a visit already stored can have settled a referral: the
        // one it settled goes back if the visit is no longer paid or no
        // longer that patient's.
        for v in visits {
            let Some(id) = v.id else { continue };
            let moved = v.old_patient_key.filter(|k| *k != v.patient_key);
            if let Some(old) = moved {
                unsettle_referral(
                    self.app,
                    tx,
                    self.actor,
                    old,
                    id,
                    "moved to another patient",
                )
                .await?;
            }
            if v.amount.0 <= 0 {
                unsettle_referral(self.app, tx, self.actor, v.patient_key, id, "refunded").await?;
            }
        }
        let mut keys: Vec<i64> = visits
            .iter()
            .flat_map(|v| std::iter::once(v.patient_key).chain(v.old_patient_key))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let members: HashMap<i64, MemberBrief> = store::members_of_patients(tx, h, &keys)
            .await?
            .into_iter()
            .map(|m| (m.patient_key, m))
            .collect();
        let mut paid_keys: Vec<i64> = visits
            .iter()
            .filter(|v| v.amount.0 > 0)
            .map(|v| v.patient_key)
            .collect();
        paid_keys.sort_unstable();
        paid_keys.dedup();
        let mut pending: HashMap<i64, Pending> = rstore::pending_of(tx, h, &paid_keys)
            .await?
            .into_iter()
            .map(|p| (p.referred_patient_key, p))
            .collect();
        let relevant: Vec<&ChunkVisit> = visits
            .iter()
            .filter(|v| {
                members.contains_key(&v.patient_key)
                    || v.old_patient_key.is_some_and(|k| members.contains_key(&k))
                    || (v.amount.0 > 0 && pending.contains_key(&v.patient_key))
            })
            .collect();
        if relevant.is_empty() {
            return Ok(());
        }
        if self.ctx.is_none() {
            self.ctx = Some(EarnContext::load(tx, h).await?);
        }
        let Some(ctx) = self.ctx.as_ref() else {
            return Ok(());
        };
        let unknown: Vec<&str> = relevant
            .iter()
            .filter(|v| v.id.is_none())
            .map(|v| v.visit_id.as_str())
            .collect();
        let ids: HashMap<String, i64> = store::visit_keys_by_external(tx, h, &unknown)
            .await?
            .into_iter()
            .collect();
        for v in relevant {
            let Some(id) = v.id.or_else(|| ids.get(&v.visit_id).copied()) else {
                return Err(AppError::Internal(format!(
                    "imported visit {:?} not found",
                    v.visit_id
                )));
            };
            let facts = VisitFacts {
                id,
                patient_key: v.patient_key,
                date: v.date,
                department: v.department.clone(),
                kind: v.kind,
                amount: v.amount,
            };
            let member = members.get(&v.patient_key).map(|m| m.id);
            let touched_member =
                member.is_some() || v.old_patient_key.is_some_and(|k| members.contains_key(&k));
            if touched_member {
                settle_visit(self.app, tx, self.actor, ctx, &facts, member).await?;
            }
            if v.amount.0 > 0
                && let Some(p) = pending.remove(&v.patient_key)
            {
                settle_referral(self.app, tx, self.actor, ctx, &p, id).await?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------
// Quotes

/// A fee line to quote.
#[derive(Debug, Clone)]
pub struct QuoteLine {
    pub category: String,
    pub department: Option<String>,
    pub amount: i64,
}

fn parse_lines(lines: &[QuoteLine], field: &str) -> Result<Vec<(FeeCategory, String, Money)>> {
    let mut errs = ValidationErrors::default();
    if lines.is_empty() || lines.len() > 100 {
        errs.push(field, "invalid_length", "must hold 1 to 100 lines");
    }
    let mut out = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let cat = FeeCategory::from_code(&l.category);
        if cat.is_none() {
            errs.push(
                &format!("{field}[{i}].category"),
                "invalid_choice",
                "must be registration, examination, treatment, hospitalisation or check_up",
            );
        }
        if !(0..=rapport_domain::money::MAX_AMOUNT).contains(&l.amount) {
            errs.push(
                &format!("{field}[{i}].amount"),
                "out_of_range",
                "must be a whole number of minor units, not negative",
            );
        }
        let dept = l.department.clone().unwrap_or_default();
        if dept.chars().count() > 200 || dept.contains('\0') {
            errs.push(
                &format!("{field}[{i}].department"),
                "invalid_length",
                "at most 200 characters",
            );
        }
        if let Some(c) = cat {
            out.push((c, dept, Money(l.amount)));
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs.into())
    }
}

/// What these lines would earn the member on `date` (default today),
/// and why: the same computation a visit of that day runs.
pub async fn earn_quote(
    app: &App,
    member_id: i64,
    date: Option<NaiveDate>,
    lines: &[QuoteLine],
) -> Result<PointsQuote> {
    let parsed = parse_lines(lines, "lines")?;
    let m = mstore::get(&app.db, member_id)
        .await?
        .filter(|m| m.hospital_id == app.hospital_id)
        .ok_or_else(member_not_found)?;
    let rules = RuleSet::new(store::rules(&app.db, app.hospital_id).await?)
        .map_err(|e| AppError::Internal(format!("stored earning rules are invalid: {e}")))?;
    let campaigns = CampaignSet::new(
        store::campaigns(&app.db, app.hospital_id)
            .await?
            .into_iter()
            .map(|c| c.campaign)
            .collect(),
    )
    .map_err(|e| AppError::Internal(format!("stored campaigns are invalid: {e}")))?;
    let profile = MemberProfile {
        member_type: m.member_type,
        tier: m.tier,
        campaign_awarded: store::campaign_awarded_db(&app.db, member_id).await?,
    };
    let lines: Vec<VisitLine> = parsed
        .into_iter()
        .map(|(category, department, amount)| VisitLine {
            category,
            department,
            amount,
        })
        .collect();
    quote_points(
        &lines,
        &profile,
        &rules,
        &campaigns,
        visit_at(date.unwrap_or_else(|| app.today())),
    )
    .map_err(|e| ValidationErrors::single("lines", e.code(), e.to_string()).into())
}

/// The earns a recorded visit gave, with the explanation of each.
pub async fn visit_earnings(app: &App, visit_id: i64) -> Result<Vec<(VisitEarn, PointsQuote)>> {
    crate::visits::get(app, visit_id).await?;
    let earns = store::earns_of_visit(&app.db, visit_id).await?;
    earns
        .into_iter()
        .map(|e| {
            let q: PointsQuote = serde_json::from_str(&e.explanation)
                .map_err(|err| AppError::Internal(format!("stored explanation: {err}")))?;
            Ok((e, q))
        })
        .collect()
}

/// A price quote: the member's tier benefits applied to fee items.
pub async fn price_quote(
    app: &App,
    member_id: i64,
    items: &[(QuoteLine, String)],
) -> Result<(String, rapport_domain::loyalty::pricing::PriceQuote)> {
    use rapport_domain::loyalty::pricing::{FeeItem, quote_price};
    let lines: Vec<QuoteLine> = items.iter().map(|(l, _)| l.clone()).collect();
    let parsed = parse_lines(&lines, "items")?;
    for (i, (_, d)) in items.iter().enumerate() {
        if d.chars().count() > 200 || d.contains('\0') {
            return Err(ValidationErrors::single(
                &format!("items[{i}].description"),
                "invalid_length",
                "at most 200 characters",
            )
            .into());
        }
    }
    let m = mstore::get(&app.db, member_id)
        .await?
        .filter(|m| m.hospital_id == app.hospital_id)
        .ok_or_else(member_not_found)?;
    let tiers = mstore::tiers(&app.db, app.hospital_id).await?;
    let benefits = tiers
        .into_iter()
        .find(|t| t.def.code == m.tier)
        .map(|t| t.def.benefits)
        .unwrap_or_default();
    let fee_items: Vec<FeeItem> = parsed
        .into_iter()
        .zip(items)
        .map(|((category, _, amount), (_, description))| FeeItem {
            category,
            description: description.clone(),
            amount,
        })
        .collect();
    let q = quote_price(&fee_items, &benefits)
        .map_err(|e| ValidationErrors::single("items", "invalid", e.to_string()))?;
    Ok((m.tier, q))
}

// ---------------------------------------------------------------------
// Configuration: rules and campaigns

fn check_code(errs: &mut ValidationErrors, field: &str, code: &str) {
    let ok = !code.is_empty()
        && code.len() <= 50
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !ok {
        errs.push(
            field,
            "invalid_format",
            "1 to 50 lowercase letters, digits, '_' or '-'",
        );
    }
}

async fn check_filters(
    app: &App,
    tx: &mut Tx,
    errs: &mut ValidationErrors,
    member_type: Option<&str>,
    tier: Option<&str>,
) -> Result<()> {
    if let Some(t) = member_type
        && !MEMBER_TYPES.contains(&t)
    {
        errs.push(
            "member_type",
            "invalid_choice",
            format!("must be one of {}", MEMBER_TYPES.join(", ")),
        );
    }
    if let Some(t) = tier {
        let tiers = mstore::tiers_tx(tx, app.hospital_id).await?;
        if !tiers.iter().any(|x| x.def.code == t) {
            errs.push("tier", "unknown_tier", format!("no tier {t:?} is defined"));
        }
    }
    Ok(())
}

fn earn_error(e: EarnError) -> AppError {
    ValidationErrors::single(e.field(), e.code(), e.to_string()).into()
}

fn parse_category(errs: &mut ValidationErrors, c: Option<&str>) -> Option<FeeCategory> {
    let c = c?;
    let parsed = FeeCategory::from_code(c);
    if parsed.is_none() {
        errs.push(
            "category",
            "invalid_choice",
            "must be registration, examination, treatment, hospitalisation or check_up",
        );
    }
    parsed
}

/// A base rule as the API sends it.
#[derive(Debug, Clone)]
pub struct RuleInput {
    pub code: String,
    pub category: Option<String>,
    pub member_type: Option<String>,
    pub tier: Option<String>,
    pub priority: i32,
    pub points_per_unit: i64,
}

pub async fn list_rules(app: &App) -> Result<Vec<EarnRule>> {
    Ok(store::rules(&app.db, app.hospital_id).await?)
}

/// Creates (`create`: refused when the code exists) or replaces a rule;
/// the whole set must stay unambiguous.
pub async fn put_rule(app: &App, actor: &Actor, r: &RuleInput, create: bool) -> Result<EarnRule> {
    let mut errs = ValidationErrors::default();
    check_code(&mut errs, "code", &r.code);
    let category = parse_category(&mut errs, r.category.as_deref());
    if !(0..=10_000).contains(&r.points_per_unit) {
        errs.push(
            "points_per_unit",
            "out_of_range",
            "must be from 0 to 10,000",
        );
    }
    if !(-1_000_000..=1_000_000).contains(&r.priority) {
        errs.push(
            "priority",
            "out_of_range",
            "must be from -1,000,000 to 1,000,000",
        );
    }
    let mut tx = app.db.begin().await?;
    mstore::lock_program(&mut tx, app.hospital_id).await?;
    check_filters(
        app,
        &mut tx,
        &mut errs,
        r.member_type.as_deref(),
        r.tier.as_deref(),
    )
    .await?;
    if !errs.is_empty() {
        return Err(errs.into());
    }
    let rule = EarnRule {
        code: r.code.clone(),
        category,
        member_type: r.member_type.clone(),
        tier: r.tier.clone(),
        priority: r.priority,
        points_per_unit: r.points_per_unit as u32,
    };
    let mut all = store::rules_tx(&mut tx, app.hospital_id).await?;
    let exists = all.iter().any(|x| x.code == rule.code);
    if create && exists {
        return Err(AppError::Conflict {
            code: "rule_exists",
            message: format!("a rule {:?} exists", rule.code),
        });
    }
    all.retain(|x| x.code != rule.code);
    all.push(rule.clone());
    RuleSet::new(all).map_err(earn_error)?;
    store::upsert_rule(&mut tx, app.hospital_id, &rule, app.now()).await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "loyalty.rule.put",
        None,
        Some(serde_json::json!({"code": rule.code}).to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(rule)
}

pub async fn delete_rule(app: &App, actor: &Actor, code: &str) -> Result<()> {
    let mut tx = app.db.begin().await?;
    mstore::lock_program(&mut tx, app.hospital_id).await?;
    if !store::delete_rule(&mut tx, app.hospital_id, code).await? {
        return Err(AppError::NotFound("earning rule"));
    }
    audit::record(
        app,
        &mut tx,
        actor,
        "loyalty.rule.delete",
        None,
        Some(serde_json::json!({"code": code}).to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A campaign as the API sends it.
#[derive(Debug, Clone)]
pub struct CampaignInput {
    pub code: String,
    pub name: String,
    pub priority: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub department: Option<String>,
    pub category: Option<String>,
    pub member_type: Option<String>,
    pub tier: Option<String>,
    /// `multiply_percent` or `add_per_line`.
    pub effect: String,
    pub value: i64,
    pub exclusive: bool,
    pub cap_per_member: Option<i64>,
}

pub async fn list_campaigns(app: &App) -> Result<Vec<CampaignRow>> {
    Ok(store::campaigns(&app.db, app.hospital_id).await?)
}

pub async fn put_campaign(
    app: &App,
    actor: &Actor,
    c: &CampaignInput,
    create: bool,
) -> Result<CampaignRow> {
    let mut errs = ValidationErrors::default();
    check_code(&mut errs, "code", &c.code);
    if c.name.trim().is_empty() || c.name.chars().count() > 200 || c.name.contains('\0') {
        errs.push("name", "invalid_length", "1 to 200 characters");
    }
    let category = parse_category(&mut errs, c.category.as_deref());
    if c.department
        .as_deref()
        .is_some_and(|d| d.is_empty() || d.chars().count() > 200 || d.contains('\0'))
    {
        errs.push("department", "invalid_length", "1 to 200 characters");
    }
    if !(0..=1_000_000).contains(&c.priority) {
        errs.push("priority", "out_of_range", "must be from 0 to 1,000,000");
    }
    let effect = match c.effect.as_str() {
        "multiply_percent" if (100..=10_000).contains(&c.value) => {
            Some(CampaignEffect::MultiplyPercent(c.value as u32))
        }
        "add_per_line" if (0..=points::MAX_POINTS).contains(&c.value) => {
            Some(CampaignEffect::AddPerLine(c.value))
        }
        "multiply_percent" => {
            errs.push(
                "effect.value",
                "out_of_range",
                "a multiplier is a percent from 100 (no change) to 10,000",
            );
            None
        }
        "add_per_line" => {
            errs.push(
                "effect.value",
                "out_of_range",
                "points added per line: 0 to 100,000,000",
            );
            None
        }
        _ => {
            errs.push(
                "effect.type",
                "invalid_choice",
                "must be multiply_percent or add_per_line",
            );
            None
        }
    };
    if c.cap_per_member
        .is_some_and(|cap| !(0..=points::MAX_POINTS).contains(&cap))
    {
        errs.push("cap_per_member", "out_of_range", "0 to 100,000,000 points");
    }
    let mut tx = app.db.begin().await?;
    mstore::lock_program(&mut tx, app.hospital_id).await?;
    check_filters(
        app,
        &mut tx,
        &mut errs,
        c.member_type.as_deref(),
        c.tier.as_deref(),
    )
    .await?;
    let Some(effect) = effect.filter(|_| errs.is_empty()) else {
        return Err(errs.into());
    };
    let row = CampaignRow {
        name: c.name.clone(),
        campaign: Campaign {
            code: c.code.clone(),
            priority: c.priority as u32,
            starts_at: c.starts_at,
            ends_at: c.ends_at,
            department: c.department.clone(),
            category,
            member_type: c.member_type.clone(),
            tier: c.tier.clone(),
            effect,
            exclusive: c.exclusive,
            cap_per_member: c.cap_per_member,
        },
    };
    let mut all: Vec<Campaign> = store::campaigns_tx(&mut tx, app.hospital_id)
        .await?
        .into_iter()
        .map(|r| r.campaign)
        .collect();
    if create && all.iter().any(|x| x.code == c.code) {
        return Err(AppError::Conflict {
            code: "campaign_exists",
            message: format!("a campaign {:?} exists", c.code),
        });
    }
    all.retain(|x| x.code != c.code);
    all.push(row.campaign.clone());
    CampaignSet::new(all).map_err(earn_error)?;
    store::upsert_campaign(&mut tx, app.hospital_id, &row, app.now()).await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "loyalty.campaign.put",
        None,
        Some(serde_json::json!({"code": c.code}).to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn delete_campaign(app: &App, actor: &Actor, code: &str) -> Result<()> {
    let mut tx = app.db.begin().await?;
    mstore::lock_program(&mut tx, app.hospital_id).await?;
    if !store::delete_campaign(&mut tx, app.hospital_id, code).await? {
        return Err(AppError::NotFound("campaign"));
    }
    audit::record(
        app,
        &mut tx,
        actor,
        "loyalty.campaign.delete",
        None,
        Some(serde_json::json!({"code": code}).to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
