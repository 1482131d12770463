//! Membership and loyalty use cases: enrolment, points, tiers and the
//! scheduled jobs.
//!
//! Every point-moving write follows one script ([`points::post`]): open a
//! transaction, lock the member row, look up the idempotency key, resume
//! the member's ledger from its head, let the domain apply the entry,
//! write the entry, the changed lots and the new balance, record the
//! audit entry, commit. The row lock serialises writers of one member on
//! PostgreSQL, across processes; SQLite's single writer serialises all.

pub mod earning;
pub mod jobs;
pub mod points;
pub mod referrals;
pub mod reports;
pub mod rewards;
pub mod tiers;

use chrono::{DateTime, NaiveDate, Utc};
use rapport_domain::ValidationErrors;
use rapport_domain::loyalty::ledger::window_start;
use rapport_store::loyalty::{self as store, Member, MemberQuery, TierHistoryRow};
use rapport_store::patients as pstore;
use rapport_store::{StoreError, loyalty::ledger as lstore};

use crate::audit::{self, Actor};
use crate::patients::{MAX_LIMIT, Page};
use crate::{App, AppError, Result};

pub use rapport_store::loyalty::ledger::StoredEntry;
pub use rapport_store::loyalty::rewards::Voucher;
pub use rapport_store::loyalty::rules::{CampaignRow, Settings, VisitEarn};
pub use rapport_store::loyalty::{Balance, Tier};

/// The kinds of membership.
pub const MEMBER_TYPES: [&str; 4] = ["individual", "family", "corporate", "vip_card"];
/// The states of a membership.
pub const STATUSES: [&str; 3] = ["active", "suspended", "closed"];

/// A member as the API shows them: the stored row and the qualifying
/// points of the 12 months up to now.
#[derive(Debug, Clone)]
pub struct MemberView {
    pub member: Member,
    pub qualifying_12m: i64,
}

pub(crate) fn member_not_found() -> AppError {
    AppError::NotFound("member")
}

/// Enrols the patient with the hospital's id `patient_id`; they start in
/// the lowest tier.
pub async fn enrol(
    app: &App,
    actor: &Actor,
    patient_id: &str,
    member_type: Option<&str>,
    referral_code: Option<&str>,
) -> Result<MemberView> {
    let member_type = member_type.unwrap_or("individual");
    if !MEMBER_TYPES.contains(&member_type) {
        return Err(ValidationErrors::single(
            "member_type",
            "invalid_choice",
            format!("must be one of {}", MEMBER_TYPES.join(", ")),
        )
        .into());
    }
    if patient_id.contains('\0') {
        return Err(AppError::NotFound("patient"));
    }
    let mut tx = app.db.begin().await?;
    let key = pstore::key_by_patient_id(&mut tx, app.hospital_id, patient_id)
        .await?
        .ok_or(AppError::NotFound("patient"))?;
    let tiers = store::tiers_tx(&mut tx, app.hospital_id).await?;
    let lowest = tiers
        .first()
        .map(|t| t.def.code.clone())
        .ok_or_else(|| AppError::Internal("no tiers are defined".into()))?;
    // A referral is checked before anything is written: a refused one
    // enrols nobody.
    let referrer = match referral_code {
        Some(code) => Some((
            referrals::check_enrolment(app, &mut tx, code, key).await?,
            code,
        )),
        None => None,
    };
    let now = app.now();
    let today = app.today();
    let (id, card) = store::insert(
        &mut tx,
        &store::NewMember {
            hospital_id: app.hospital_id,
            patient_key: key,
            member_type,
            joined_on: today,
            tier: &lowest,
            now,
        },
    )
    .await
    .map_err(|e| match e {
        StoreError::Conflict(_) => AppError::Conflict {
            code: "already_member",
            message: format!("patient {patient_id:?} is already a member"),
        },
        e => e.into(),
    })?;
    store::set_tier(
        &mut tx,
        app.hospital_id,
        &TierHistoryRow {
            member_id: id,
            on: today,
            from: None,
            to: lowest,
            change: "enrolled".into(),
            reason: "enrolled in the lowest tier".into(),
            at: now,
        },
    )
    .await?;
    if let Some((referrer, code)) = referrer {
        rapport_store::loyalty::referrals::insert(
            &mut tx,
            app.hospital_id,
            referrer,
            code,
            key,
            id,
            now,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => AppError::Conflict {
                code: "already_referred",
                message: "this patient was already referred".into(),
            },
            e => e.into(),
        })?;
    }
    audit::record(
        app,
        &mut tx,
        actor,
        "member.enrol",
        Some(("member", id)),
        Some(serde_json::json!({"patient": key, "card_no": card}).to_string()),
    )
    .await?;
    let member = store::get_tx(&mut tx, id)
        .await?
        .ok_or_else(member_not_found)?;
    tx.commit().await?;
    Ok(MemberView {
        member,
        qualifying_12m: 0,
    })
}

/// Reads a member of this hospital.
pub async fn get(app: &App, id: i64) -> Result<MemberView> {
    let member = store::get(&app.db, id)
        .await?
        .filter(|m| m.hospital_id == app.hospital_id)
        .ok_or_else(member_not_found)?;
    let now = app.now();
    let qualifying_12m = lstore::qualifying(&app.db, id, window_start(now), now).await?;
    Ok(MemberView {
        member,
        qualifying_12m,
    })
}

/// The membership of a patient (platform id), if enrolled.
pub async fn of_patient(app: &App, patient_key: i64) -> Result<Option<MemberView>> {
    let now = app.now();
    Ok(store::of_patient(
        &app.db,
        app.hospital_id,
        patient_key,
        window_start(now),
        now,
    )
    .await?
    .filter(|(m, _)| m.hospital_id == app.hospital_id)
    .map(|(member, qualifying_12m)| MemberView {
        member,
        qualifying_12m,
    }))
}

/// Filters for listing members.
#[derive(Debug, Clone, Default)]
pub struct MemberFilter {
    pub tier: Option<String>,
    pub status: Option<String>,
    pub cursor: Option<String>,
    pub limit: i64,
}

/// Members by id, a page at a time.
pub async fn list(app: &App, f: &MemberFilter) -> Result<Page<Member>> {
    let after = match f.cursor.as_deref() {
        Some(c) => Some(c.parse::<i64>().map_err(|_| {
            ValidationErrors::single(
                "cursor",
                "invalid_cursor",
                "is not a cursor this API returned",
            )
        })?),
        None => None,
    };
    if let Some(s) = f.status.as_deref()
        && !STATUSES.contains(&s)
    {
        return Err(ValidationErrors::single(
            "status",
            "invalid_choice",
            format!("must be one of {}", STATUSES.join(", ")),
        )
        .into());
    }
    if f.tier.as_deref().is_some_and(|t| t.contains('\0')) {
        return Err(
            ValidationErrors::single("tier", "invalid_format", "is not a tier code").into(),
        );
    }
    let want = f.limit.clamp(1, MAX_LIMIT);
    let mut items = store::list(
        &app.db,
        &MemberQuery {
            hospital_id: app.hospital_id,
            tier: f.tier.clone(),
            status: f.status.clone(),
            after,
            limit: want + 1,
        },
    )
    .await?;
    let next_cursor = if items.len() as i64 > want {
        items.truncate(want as usize);
        items.last().map(|m| m.id.to_string())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// Suspends, closes or reactivates a membership. Points stay; only active
/// members earn and redeem.
pub async fn set_status(app: &App, actor: &Actor, id: i64, status: &str) -> Result<MemberView> {
    if !STATUSES.contains(&status) {
        return Err(ValidationErrors::single(
            "status",
            "invalid_choice",
            format!("must be one of {}", STATUSES.join(", ")),
        )
        .into());
    }
    let mut tx = app.db.begin().await?;
    let m = store::lock(&mut tx, id)
        .await?
        .filter(|m| m.hospital_id == app.hospital_id)
        .ok_or_else(member_not_found)?;
    if m.status != status {
        store::set_status(&mut tx, id, status, app.now()).await?;
        audit::record(
            app,
            &mut tx,
            actor,
            "member.status",
            Some(("member", id)),
            Some(serde_json::json!({"from": m.status, "to": status}).to_string()),
        )
        .await?;
    }
    tx.commit().await?;
    get(app, id).await
}

/// A member's tier history, newest first.
pub async fn tier_history(app: &App, id: i64) -> Result<Vec<TierHistoryRow>> {
    get(app, id).await?;
    Ok(store::tier_history(&app.db, id).await?)
}

/// A member's ledger, newest first, a page at a time (the cursor is the
/// position of the last entry shown).
pub async fn ledger(
    app: &App,
    id: i64,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<StoredEntry>> {
    let before = match cursor {
        Some(c) => Some(c.parse::<i64>().ok().filter(|s| *s >= 0).ok_or_else(|| {
            ValidationErrors::single(
                "cursor",
                "invalid_cursor",
                "is not a cursor this API returned",
            )
        })?),
        None => None,
    };
    store::get(&app.db, id)
        .await?
        .filter(|m| m.hospital_id == app.hospital_id)
        .ok_or_else(member_not_found)?;
    let want = limit.clamp(1, MAX_LIMIT);
    let mut items = lstore::page(&app.db, id, before, want + 1).await?;
    let next_cursor = if items.len() as i64 > want {
        items.truncate(want as usize);
        items.last().map(|e| e.seq.to_string())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// Today's date of the hospital for a time (see [`App::today`]).
pub(crate) fn day_of(at: DateTime<Utc>) -> NaiveDate {
    (at + chrono::Duration::hours(8)).date_naive()
}
