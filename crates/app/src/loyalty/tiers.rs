//! Tier definitions and the re-evaluation of every member that follows a
//! change (and the daily anniversary review).

use chrono::{DateTime, SubsecRound, Utc};
use rapport_domain::ValidationErrors;
use rapport_domain::loyalty::tiers::{MemberTier, TierChange, TierSet, reevaluate_all};
use rapport_store::Tx;
use rapport_store::loyalty::{self as store, Tier, TierHistoryRow};

use super::day_of;
use crate::audit::{self, Actor};
use crate::{App, AppError, Result};
use rapport_domain::loyalty::ledger::window_start;

/// How many members one re-evaluation step reads, locks and decides.
const BATCH: i64 = 1000;

/// The hospital's tiers, lowest first.
pub async fn list(app: &App) -> Result<Vec<Tier>> {
    Ok(store::tiers(&app.db, app.hospital_id).await?)
}

/// The outcome of replacing the definitions.
#[derive(Debug, Clone)]
pub struct Replaced {
    pub tiers: Vec<Tier>,
    /// Members re-evaluated, and how many changed tier.
    pub evaluated: u64,
    pub moved: u64,
}

fn check_code(i: usize, code: &str, errs: &mut ValidationErrors) {
    let ok = !code.is_empty()
        && code.len() <= 40
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        errs.push(
            &format!("tiers[{i}].code"),
            "invalid_format",
            "1 to 40 lowercase letters, digits or _",
        );
    }
}

/// Replaces the tier definitions and re-evaluates every member against
/// them in the same transaction: raised thresholds demote only at each
/// member's anniversary, lowered ones promote at once, a removed tier's
/// members are reassigned.
pub async fn replace(app: &App, actor: &Actor, tiers: Vec<Tier>) -> Result<Replaced> {
    let mut errs = ValidationErrors::default();
    for (i, t) in tiers.iter().enumerate() {
        check_code(i, &t.def.code, &mut errs);
        if t.name.trim().is_empty() || t.name.chars().count() > 100 || t.name.contains('\0') {
            errs.push(
                &format!("tiers[{i}].name"),
                "invalid_length",
                "1 to 100 characters",
            );
        }
        if t.def.rank > 1000 {
            errs.push(&format!("tiers[{i}].rank"), "out_of_range", "0 to 1000");
        }
        if !(0..=super::points::MAX_POINTS * 100).contains(&t.def.threshold_qualifying) {
            errs.push(
                &format!("tiers[{i}].threshold_qualifying"),
                "out_of_range",
                "must not be negative",
            );
        }
    }
    if !errs.0.is_empty() {
        return Err(errs.into());
    }
    TierSet::new(tiers.iter().map(|t| t.def.clone()).collect())
        .map_err(|e| ValidationErrors::single("tiers", "invalid_tiers", e.to_string()))?;
    let now = app.now().trunc_subsecs(6);
    let mut tx = app.db.begin().await?;
    store::lock_program(&mut tx, app.hospital_id).await?;
    store::replace_tiers(&mut tx, app.hospital_id, &tiers, now).await?;
    let (evaluated, moved) = reevaluate(app, &mut tx, now, "definitions changed").await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "loyalty.tiers.replace",
        None,
        Some(
            serde_json::json!({
                "tiers": tiers.iter().map(|t| &t.def.code).collect::<Vec<_>>(),
                "evaluated": evaluated,
                "moved": moved,
            })
            .to_string(),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Replaced {
        tiers: list(app).await?,
        evaluated,
        moved,
    })
}

/// Evaluates every member against the stored definitions at `now`, in
/// batches by id (each batch locked, PostgreSQL), and records each move.
/// Returns (members evaluated, members moved).
pub(crate) async fn reevaluate(
    app: &App,
    tx: &mut Tx,
    now: DateTime<Utc>,
    why: &str,
) -> Result<(u64, u64)> {
    let tiers = store::tiers_tx(tx, app.hospital_id).await?;
    let set = TierSet::new(tiers.into_iter().map(|t| t.def).collect())
        .map_err(|e| AppError::Internal(format!("stored tiers are invalid: {e}")))?;
    let today = day_of(now);
    let (mut after, mut evaluated, mut moved) = (0i64, 0u64, 0u64);
    loop {
        let batch =
            store::review_batch(tx, app.hospital_id, after, BATCH, window_start(now), now).await?;
        let Some(last) = batch.last() else { break };
        after = last.member_id;
        let members: Vec<MemberTier> = batch
            .iter()
            .map(|r| MemberTier {
                member_id: r.member_id.to_string(),
                current: r.tier.clone(),
                qualifying_12m: r.qualifying,
                joined_on: r.joined_on,
            })
            .collect();
        let r = reevaluate_all(&members, today, &set);
        evaluated += members.len() as u64;
        moved += r.moved as u64;
        for ((_, d), m) in r.decisions.into_iter().zip(&batch) {
            if d.change == TierChange::None {
                continue;
            }
            store::set_tier(
                tx,
                app.hospital_id,
                &TierHistoryRow {
                    member_id: m.member_id,
                    on: today,
                    from: Some(m.tier.clone()),
                    to: d.tier,
                    change: store::change_code(d.change).into(),
                    reason: format!("{why}: {}", d.reason),
                    at: now,
                },
            )
            .await?;
        }
    }
    Ok((evaluated, moved))
}
