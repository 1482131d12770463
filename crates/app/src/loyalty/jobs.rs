//! The scheduled loyalty jobs: expiring due lots, and the daily tier
//! review (upgrades missed, downgrades on anniversaries).

use chrono::{DateTime, SubsecRound, Utc};
use rapport_domain::loyalty::ledger::{EntryKind, Ledger};
use rapport_store::loyalty::ledger as lstore;
use rapport_store::loyalty::{self as store};

use super::points::{Draft, DraftKind, post_in, request_hash};
use crate::audit::{self, Actor};
use crate::{App, Result};

/// What an expiry run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryRun {
    pub members: u64,
    pub lots: u64,
    pub points: i64,
}

/// Expires every lot due at `at`: one transaction per member, each lot an
/// `expire` entry keyed by the lot, so a repeated or interrupted run
/// never expires a lot twice.
pub async fn expire_due(app: &App, at: DateTime<Utc>) -> Result<ExpiryRun> {
    let at = at.trunc_subsecs(6);
    let actor = Actor::system("loyalty.expiry");
    let mut run = ExpiryRun::default();
    let mut after = 0;
    loop {
        let ids = lstore::members_with_due_lots(&app.db, app.hospital_id, at, after, 500).await?;
        let Some(&last) = ids.last() else { break };
        after = last;
        for id in ids {
            let (lots, points) = expire_member(app, &actor, id, at).await?;
            if lots > 0 {
                run.members += 1;
                run.lots += lots;
                run.points += points;
            }
        }
    }
    Ok(run)
}

async fn expire_member(app: &App, actor: &Actor, id: i64, at: DateTime<Utc>) -> Result<(u64, i64)> {
    let mut tx = app.db.begin().await?;
    let Some(member) = store::lock(&mut tx, id).await? else {
        return Ok((0, 0));
    };
    let at = at.max(member.balance.last_at.unwrap_or(at));
    let head = lstore::head(&mut tx, &member, at, lstore::OpenLots::All, None).await?;
    let due = Ledger::resume(head).due_expiries(at);
    let (mut lots, mut points) = (0, 0);
    for e in due {
        let EntryKind::Expire { lot } = e.kind else {
            continue;
        };
        let draft = Draft {
            kind: DraftKind::Expire { seq: lot.0 as i64 },
            points: e.points,
            reason: e.reason,
            request_hash: request_hash(&[&e.idempotency_key]),
            idempotency_key: e.idempotency_key,
            actor: e.actor,
            source: e.source,
            source_visit: None,
            source_campaign: None,
            source_referral: None,
            at: Some(at),
        };
        let posted = post_in(app, &mut tx, actor, id, &draft).await?;
        if !posted.replayed {
            lots += 1;
            points += posted.entry.entry.points;
        }
    }
    tx.commit().await?;
    Ok((lots, points))
}

/// The daily review: evaluates every member today (anniversary
/// downgrades, upgrades not yet applied). Returns (evaluated, moved).
pub async fn review_tiers(app: &App, actor: &Actor) -> Result<(u64, u64)> {
    let now = app.now().trunc_subsecs(6);
    let mut tx = app.db.begin().await?;
    store::lock_program(&mut tx, app.hospital_id).await?;
    let r = super::tiers::reevaluate(app, &mut tx, now, "daily review").await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "loyalty.tiers.review",
        None,
        Some(serde_json::json!({"evaluated": r.0, "moved": r.1}).to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(r)
}

/// `rapport check`: every member's ledger replayed and compared with its
/// lots and cached balance.
pub async fn check_ledgers(app: &App) -> Result<crate::check::CheckResult> {
    let (members, problems) = rapport_store::loyalty::check::ledgers(&app.db).await?;
    Ok(crate::check::CheckResult {
        name: "points ledgers",
        checked: members,
        violations: problems.len() as u64,
        problems: problems
            .iter()
            .take(crate::check::MAX_REPORTED)
            .map(|p| format!("member {}: {}", p.member_id, p.problem))
            .collect(),
    })
}
