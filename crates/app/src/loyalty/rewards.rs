//! The reward catalogue and vouchers: redeeming a reward spends points
//! (a `redeem` entry through [`points::post_in`]) and issues a voucher in
//! the same transaction; using it marks it once; cancelling it gives the
//! points back as a positive **adjustment** (a redeem is not an earn, so
//! it cannot be reversed; the refund is a new lot with a fresh expiry and
//! never counts as qualifying points).

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rapport_domain::ValidationErrors;
use rapport_domain::loyalty::ledger::Actor as LedgerActor;
use rapport_domain::loyalty::referral::CODE_ALPHABET;
use rapport_domain::loyalty::rewards::{Reward, RewardKind, VoucherError, can_cancel, can_use};
use rapport_store::loyalty::rewards::{self as store, Voucher};
use rapport_store::loyalty::{self as mstore};

use super::member_not_found;
use super::points::{self, Draft, DraftKind};
use crate::audit::{self, Actor};
use crate::{App, AppError, Result};

/// Length of a voucher code (31 letters and digits: about 49 bits).
pub const VOUCHER_CODE_LEN: usize = 10;

/// A random code of `len` characters of [`CODE_ALPHABET`].
pub(crate) fn random_code(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

fn voucher_error(e: VoucherError) -> AppError {
    let code = match e {
        VoucherError::RewardInactive => "reward_inactive",
        VoucherError::OutOfStock => "reward_out_of_stock",
        VoucherError::AlreadyUsed => "voucher_used",
        VoucherError::Cancelled => "voucher_cancelled",
        VoucherError::Expired => "voucher_expired",
    };
    AppError::Conflict {
        code,
        message: e.to_string(),
    }
}

/// A reward as the API sends it.
#[derive(Debug, Clone)]
pub struct RewardInput {
    pub name: String,
    pub kind: String,
    pub cost_points: i64,
    pub value_minor: Option<i64>,
    pub stock: Option<i64>,
    pub active_from: Option<DateTime<Utc>>,
    pub active_until: Option<DateTime<Utc>>,
    pub voucher_valid_days: Option<i32>,
}

pub async fn list(app: &App) -> Result<Vec<Reward>> {
    Ok(store::list(&app.db, app.hospital_id).await?)
}

/// Creates or replaces a reward of the catalogue.
pub async fn put(app: &App, actor: &Actor, code: &str, r: &RewardInput) -> Result<Reward> {
    let mut errs = ValidationErrors::default();
    let code_ok = !code.is_empty()
        && code.len() <= 50
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !code_ok {
        errs.push(
            "code",
            "invalid_format",
            "1 to 50 lowercase letters, digits, '_' or '-'",
        );
    }
    if r.name.trim().is_empty() || r.name.chars().count() > 200 || r.name.contains('\0') {
        errs.push("name", "invalid_length", "1 to 200 characters");
    }
    let kind = RewardKind::from_code(&r.kind);
    if kind.is_none() {
        errs.push(
            "kind",
            "invalid_choice",
            "must be check_up, discount_voucher or gift",
        );
    }
    let reward = Reward {
        code: code.to_owned(),
        name: r.name.clone(),
        kind: kind.unwrap_or(RewardKind::Gift),
        cost_points: r.cost_points,
        value_minor: r.value_minor,
        stock: r.stock,
        active_from: r.active_from.unwrap_or_else(|| app.now()),
        active_until: r.active_until,
        voucher_valid_days: r.voucher_valid_days.unwrap_or(90),
    };
    if kind.is_some() {
        for p in reward.problems() {
            errs.push(p.field, p.code, p.message);
        }
    }
    if !errs.is_empty() {
        return Err(errs.into());
    }
    let mut tx = app.db.begin().await?;
    store::upsert(&mut tx, app.hospital_id, &reward, app.now()).await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "loyalty.reward.put",
        None,
        Some(serde_json::json!({"code": code}).to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(reward)
}

/// The outcome of a redemption.
#[derive(Debug, Clone)]
pub struct Redeemed {
    pub voucher: Voucher,
    /// `true` when the key had been used with the same request before.
    pub replayed: bool,
}

/// Redeems a reward for a member: spends its points and issues a voucher,
/// in one transaction. The same key and reward again answer the same
/// voucher; another reward with the key is `idempotency_key_reused`.
pub async fn redeem(
    app: &App,
    actor: &Actor,
    member_id: i64,
    reward_code: &str,
    key: &str,
) -> Result<Redeemed> {
    if key.is_empty() || key.len() > points::MAX_KEY_LEN || key.chars().any(char::is_control) {
        return Err(ValidationErrors::single(
            "idempotency_key",
            "invalid_length",
            format!(
                "must be 1 to {} bytes without control characters",
                points::MAX_KEY_LEN
            ),
        )
        .into());
    }
    if reward_code.is_empty() || reward_code.len() > 50 || reward_code.contains('\0') {
        return Err(AppError::NotFound("reward"));
    }
    let hash = points::request_hash(&["voucher", reward_code]);
    let mut tx = app.db.begin().await?;
    mstore::lock(&mut tx, member_id)
        .await?
        .filter(|m| m.hospital_id == app.hospital_id)
        .ok_or_else(member_not_found)?;
    if let Some(v) = store::voucher_by_key(&mut tx, member_id, key).await? {
        return if v.request_hash == hash {
            Ok(Redeemed {
                voucher: v,
                replayed: true,
            })
        } else {
            Err(points::key_reused())
        };
    }
    let reward = store::lock(&mut tx, app.hospital_id, reward_code)
        .await?
        .ok_or(AppError::NotFound("reward"))?;
    let now = app.now();
    reward.redeemable_at(now).map_err(voucher_error)?;
    let posted = points::post_in(
        app,
        &mut tx,
        actor,
        member_id,
        &Draft {
            kind: DraftKind::Redeem,
            points: reward.cost_points,
            reason: format!("reward {}", reward.code),
            idempotency_key: format!("voucher:{key}"),
            request_hash: hash.clone(),
            actor: LedgerActor::Staff(actor.who.clone()),
            source: "reward".into(),
            source_visit: None,
            source_campaign: None,
            source_referral: None,
            at: None,
        },
    )
    .await?;
    store::take_stock(&mut tx, app.hospital_id, &reward.code).await?;
    let mut code = random_code(VOUCHER_CODE_LEN);
    while store::code_taken(&mut tx, app.hospital_id, &code).await? {
        code = random_code(VOUCHER_CODE_LEN);
    }
    let issued_at = posted.entry.entry.at;
    let mut voucher = Voucher {
        id: 0,
        code,
        member_id,
        reward_code: reward.code.clone(),
        points: reward.cost_points,
        redeem_seq: posted.entry.seq,
        refund_seq: None,
        idempotency_key: key.to_owned(),
        request_hash: hash,
        status: rapport_domain::loyalty::rewards::VoucherStatus::Issued,
        issued_at,
        expires_at: issued_at + Duration::days(i64::from(reward.voucher_valid_days)),
        used_at: None,
        cancelled_at: None,
    };
    voucher.id = store::insert_voucher(&mut tx, app.hospital_id, &voucher).await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "voucher.issue",
        Some(("member", member_id)),
        Some(
            serde_json::json!({"voucher": voucher.id, "reward": reward.code, "points": reward.cost_points})
                .to_string(),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Redeemed {
        voucher,
        replayed: false,
    })
}

fn check_voucher_code(code: &str) -> Result<()> {
    if rapport_domain::loyalty::referral::is_code(code, VOUCHER_CODE_LEN) {
        Ok(())
    } else {
        Err(AppError::NotFound("voucher"))
    }
}

/// A voucher by its code.
pub async fn get(app: &App, code: &str) -> Result<Voucher> {
    check_voucher_code(code)?;
    store::voucher(&app.db, app.hospital_id, code)
        .await?
        .ok_or(AppError::NotFound("voucher"))
}

/// A member's vouchers, newest first (at most 200).
pub async fn of_member(app: &App, member_id: i64) -> Result<Vec<Voucher>> {
    super::get(app, member_id).await?;
    Ok(store::vouchers_of(&app.db, member_id, 200).await?)
}

/// Uses a voucher at the desk: once, before it expires.
pub async fn use_voucher(app: &App, actor: &Actor, code: &str) -> Result<Voucher> {
    check_voucher_code(code)?;
    let mut tx = app.db.begin().await?;
    let mut v = store::lock_voucher(&mut tx, app.hospital_id, code)
        .await?
        .ok_or(AppError::NotFound("voucher"))?;
    let now = app.now();
    can_use(v.status, v.expires_at, now).map_err(voucher_error)?;
    store::mark_used(&mut tx, v.id, now).await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "voucher.use",
        Some(("member", v.member_id)),
        Some(serde_json::json!({"voucher": v.id}).to_string()),
    )
    .await?;
    tx.commit().await?;
    v.status = rapport_domain::loyalty::rewards::VoucherStatus::Used;
    v.used_at = Some(now);
    Ok(v)
}

/// Cancels an unused voucher (expired ones too): its points come back as
/// a positive adjustment, and a limited stock gets it back.
pub async fn cancel(app: &App, actor: &Actor, code: &str) -> Result<Voucher> {
    check_voucher_code(code)?;
    let mut tx = app.db.begin().await?;
    // Member before voucher: the order every point write locks in.
    let member_id = store::voucher(&app.db, app.hospital_id, code)
        .await?
        .ok_or(AppError::NotFound("voucher"))?
        .member_id;
    mstore::lock(&mut tx, member_id).await?;
    let mut v = store::lock_voucher(&mut tx, app.hospital_id, code)
        .await?
        .ok_or(AppError::NotFound("voucher"))?;
    can_cancel(v.status).map_err(voucher_error)?;
    let reason = format!("voucher {} cancelled", v.code);
    let posted = points::post_in(
        app,
        &mut tx,
        actor,
        v.member_id,
        &Draft {
            kind: DraftKind::Adjust(v.points),
            points: v.points,
            reason: reason.clone(),
            idempotency_key: format!("voucher:{}:refund", v.id),
            request_hash: points::request_hash(&["voucher-refund", &v.id.to_string()]),
            actor: LedgerActor::Staff(actor.who.clone()),
            source: "voucher".into(),
            source_visit: None,
            source_campaign: None,
            source_referral: None,
            at: None,
        },
    )
    .await?;
    let at = posted.entry.entry.at;
    store::mark_cancelled(&mut tx, v.id, posted.entry.seq, at).await?;
    store::return_stock(&mut tx, app.hospital_id, &v.reward_code).await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "voucher.cancel",
        Some(("member", v.member_id)),
        Some(serde_json::json!({"voucher": v.id, "points": v.points}).to_string()),
    )
    .await?;
    tx.commit().await?;
    v.status = rapport_domain::loyalty::rewards::VoucherStatus::Cancelled;
    v.cancelled_at = Some(at);
    v.refund_seq = Some(posted.entry.seq);
    Ok(v)
}
