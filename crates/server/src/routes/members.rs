//! `/api/v1/members` and `/api/v1/loyalty`: membership, points and tiers.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, NaiveDate, Utc};
use rapport_app::loyalty::points::{self, Posted};
use rapport_app::loyalty::{self, MemberFilter, MemberView, StoredEntry, Tier, jobs, tiers};
use rapport_app::{App, AppError};
use rapport_domain::loyalty::FeeCategory;
use rapport_domain::loyalty::ledger::{Actor as LedgerActor, EntryKind};
use rapport_domain::loyalty::tiers::{Benefits, TierDef};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::default_limit;
use crate::actor::Who;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// Maps the use cases' errors to this API's stable codes.
pub(crate) fn problem(e: AppError) -> ApiError {
    match e {
        AppError::NotFound("member") => ApiError::new(
            StatusCode::NOT_FOUND,
            "member_not_found",
            "no member with this id",
        ),
        AppError::NotFound("patient") => ApiError::new(
            StatusCode::NOT_FOUND,
            "patient_not_found",
            "no patient with this hospital id",
        ),
        AppError::Conflict {
            code: "idempotency_key_reused",
            message,
        } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            message,
        ),
        e => e.into(),
    }
}

/// A patient to enrol.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberIn {
    /// The hospital's id of the patient (as in `POST /patients`).
    pub patient_id: String,
    /// `individual` (default), `family`, `corporate` or `vip_card`.
    pub member_type: Option<String>,
    /// A member's referral code: the referrer is rewarded after this
    /// patient's first paid visit. Refused (409) for oneself
    /// (`referral_self`), someone with the same phone
    /// (`referral_same_phone`) or household (`referral_same_household`), a
    /// patient with paid visits already (`referral_not_new_patient`), or
    /// an inactive referrer (`referrer_inactive`); an unknown code is 422.
    pub referral_code: Option<String>,
}

/// An enrolled member.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberCreated {
    pub id: i64,
    pub card_no: String,
    pub tier: String,
    pub patient_id: String,
    pub member_type: String,
    pub joined_on: NaiveDate,
}

/// Points of a member.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointsOut {
    /// Spendable now.
    pub available: i64,
    /// Earned in the last 12 months (minus reversed earns): decides the tier.
    pub qualifying_12m: i64,
    /// Earned ever (minus reversed earns).
    pub lifetime: i64,
}

/// A member.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOut {
    pub id: i64,
    /// The hospital's id of the patient.
    pub patient_id: String,
    /// The platform id of the patient.
    pub patient: i64,
    pub tier: String,
    pub points: PointsOut,
    pub card_no: String,
    pub member_type: String,
    /// `active`, `suspended` or `closed`.
    pub status: String,
    pub joined_on: NaiveDate,
}

impl From<MemberView> for MemberOut {
    fn from(v: MemberView) -> Self {
        let m = v.member;
        MemberOut {
            id: m.id,
            patient_id: m.patient_id,
            patient: m.patient_key,
            tier: m.tier,
            points: PointsOut {
                available: m.balance.available,
                qualifying_12m: v.qualifying_12m,
                lifetime: m.balance.lifetime,
            },
            card_no: m.card_no,
            member_type: m.member_type,
            status: m.status,
            joined_on: m.joined_on,
        }
    }
}

/// Enrol a patient as a member (in the lowest tier).
#[utoipa::path(post, path = "/members", tag = "members",
    request_body = MemberIn,
    responses(
        (status = 201, body = MemberCreated),
        (status = 404, description = "`patient_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already_member`; a refused referral (`referral_self`, `referral_same_phone`, `referral_same_household`, `referral_not_new_patient`, `referrer_inactive`): nothing written", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(app): State<App>,
    who: Who,
    ApiJson(b): ApiJson<MemberIn>,
) -> ApiResult<impl IntoResponse> {
    let v = loyalty::enrol(
        &app,
        &who.actor,
        &b.patient_id,
        b.member_type.as_deref(),
        b.referral_code.as_deref(),
    )
    .await
    .map_err(problem)?;
    let m = v.member;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/members/{}", m.id))],
        axum::Json(MemberCreated {
            id: m.id,
            card_no: m.card_no,
            tier: m.tier,
            patient_id: m.patient_id,
            member_type: m.member_type,
            joined_on: m.joined_on,
        }),
    ))
}

/// A member with their points.
#[utoipa::path(get, path = "/members/{id}", tag = "members",
    params(("id" = i64, Path, description = "The member's platform id")),
    responses(
        (status = 200, body = MemberOut),
        (status = 404, description = "`member_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<MemberOut>> {
    Ok(axum::Json(
        loyalty::get(&app, id).await.map_err(problem)?.into(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberListParams {
    /// Only members of this tier (its code).
    pub tier: Option<String>,
    /// Only members in this status.
    pub status: Option<String>,
    pub cursor: Option<String>,
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 200)]
    pub limit: i64,
}

/// A page of members.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberPage {
    /// Qualifying points here are as of each member's last entry.
    pub items: Vec<MemberOut>,
    pub next_cursor: Option<String>,
}

fn check_limit(limit: i64) -> ApiResult<()> {
    if (1..=rapport_app::patients::MAX_LIMIT).contains(&limit) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "limit",
            "out_of_range",
            "must be between 1 and 200",
        ))
    }
}

/// Members by id, filtered by tier and status.
#[utoipa::path(get, path = "/members", tag = "members",
    params(MemberListParams),
    responses((status = 200, body = MemberPage), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(app): State<App>,
    ApiQuery(p): ApiQuery<MemberListParams>,
) -> ApiResult<axum::Json<MemberPage>> {
    check_limit(p.limit)?;
    let page = loyalty::list(
        &app,
        &MemberFilter {
            tier: p.tier,
            status: p.status,
            cursor: p.cursor,
            limit: p.limit,
        },
    )
    .await
    .map_err(problem)?;
    Ok(axum::Json(MemberPage {
        items: page
            .items
            .into_iter()
            .map(|m| {
                let q = m.balance.qualifying;
                MemberView {
                    member: m,
                    qualifying_12m: q,
                }
                .into()
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A new status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusIn {
    /// `active`, `suspended` or `closed`. Only active members earn and redeem.
    pub status: String,
}

/// Suspend, close or reactivate a membership.
#[utoipa::path(put, path = "/members/{id}/status", tag = "members",
    params(("id" = i64, Path)),
    request_body = StatusIn,
    responses(
        (status = 200, body = MemberOut),
        (status = 404, description = "`member_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_status(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<StatusIn>,
) -> ApiResult<axum::Json<MemberOut>> {
    Ok(axum::Json(
        loyalty::set_status(&app, &who.actor, id, &b.status)
            .await
            .map_err(problem)?
            .into(),
    ))
}

/// Who or what made an entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryActorOut {
    /// `staff`, `rule` or `system`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: Option<String>,
}

/// One ledger entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntryOut {
    pub id: i64,
    pub member_id: i64,
    /// Position in the member's ledger, from 0.
    pub seq: i64,
    /// `earn`, `redeem`, `expire`, `adjust` or `reverse`.
    pub kind: &'static str,
    /// Points moved (never negative).
    pub points: i64,
    /// The change of the available balance.
    pub delta: i64,
    /// Available points after this entry.
    pub balance_after: i64,
    pub at: DateTime<Utc>,
    /// When the points of an earn or positive adjustment expire.
    pub expires_at: Option<DateTime<Utc>>,
    /// The earn a reversal takes back, or the lot an expiry empties.
    pub lot_seq: Option<i64>,
    /// For a partial reversal: points that had been spent already.
    pub shortfall: i64,
    pub reason: String,
    pub idempotency_key: String,
    pub actor: EntryActorOut,
    pub source: String,
    pub source_visit: Option<i64>,
}

impl From<StoredEntry> for LedgerEntryOut {
    fn from(s: StoredEntry) -> Self {
        let e = s.entry;
        let (kind, expires_at, lot_seq) = match e.kind {
            EntryKind::Earn { expires_at } => ("earn", Some(expires_at), None),
            EntryKind::Redeem => ("redeem", None, None),
            EntryKind::Expire { lot } => ("expire", None, Some(lot.0 as i64)),
            EntryKind::Adjust { expires_at, .. } => ("adjust", expires_at, None),
            EntryKind::Reverse { reverses, .. } => ("reverse", None, Some(reverses.0 as i64)),
        };
        let actor = match e.actor {
            LedgerActor::Staff(s) => EntryActorOut {
                kind: "staff",
                id: Some(s),
            },
            LedgerActor::Rule(r) => EntryActorOut {
                kind: "rule",
                id: Some(r),
            },
            LedgerActor::System => EntryActorOut {
                kind: "system",
                id: None,
            },
        };
        LedgerEntryOut {
            id: s.id,
            member_id: s.member_id,
            seq: s.seq,
            kind,
            points: e.points,
            delta: s.delta,
            balance_after: s.balance_after,
            at: e.at,
            expires_at,
            lot_seq,
            shortfall: s.shortfall,
            reason: e.reason,
            idempotency_key: e.idempotency_key,
            actor,
            source: e.source,
            source_visit: s.source_visit,
        }
    }
}

fn posted(p: Posted) -> impl IntoResponse {
    // A replay answers exactly as the first request did.
    let location = format!("/api/v1/members/{}/ledger", p.entry.member_id);
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(LedgerEntryOut::from(p.entry)),
    )
}

/// Points to earn or redeem.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsIn {
    /// `earn` or `redeem`.
    #[schema(pattern = "^(earn|redeem)$")]
    pub kind: String,
    /// 1 to 100,000,000.
    #[schema(minimum = 1, maximum = 100_000_000)]
    pub points: i64,
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
    /// Chosen by the client, unique per member: a retry with the same key
    /// and body answers as the first request and changes nothing.
    #[schema(min_length = 1, max_length = 200)]
    pub idempotency_key: String,
}

/// Earn or redeem points.
#[utoipa::path(post, path = "/members/{id}/points", tag = "members",
    params(("id" = i64, Path)),
    request_body = PointsIn,
    responses(
        (status = 201, description = "The ledger entry (also for a replay of the same key and body)", body = LedgerEntryOut),
        (status = 404, description = "`member_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`insufficient_points`: nothing changed; `member_inactive`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`: the key was used with another body; or invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn points(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<PointsIn>,
) -> ApiResult<impl IntoResponse> {
    let p = points::earn_or_redeem(
        &app,
        &who.actor,
        id,
        &b.kind,
        b.points,
        &b.reason,
        &b.idempotency_key,
    )
    .await
    .map_err(problem)?;
    Ok(posted(p))
}

/// A manual adjustment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentIn {
    /// Points to add (positive) or remove (negative); never 0.
    #[schema(minimum = -100_000_000, maximum = 100_000_000)]
    pub delta: i64,
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
    #[schema(min_length = 1, max_length = 200)]
    pub idempotency_key: String,
}

/// Add or remove points by hand (never qualifying).
#[utoipa::path(post, path = "/members/{id}/adjustments", tag = "members",
    params(("id" = i64, Path)),
    request_body = AdjustmentIn,
    responses(
        (status = 201, body = LedgerEntryOut),
        (status = 404, description = "`member_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`insufficient_points`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused` or invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn adjust(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<AdjustmentIn>,
) -> ApiResult<impl IntoResponse> {
    let p = points::adjust(&app, &who.actor, id, b.delta, &b.reason, &b.idempotency_key)
        .await
        .map_err(problem)?;
    Ok(posted(p))
}

/// A reversal of an earn.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReversalIn {
    /// The `seq` of the earn entry.
    pub seq: i64,
    /// Take back what is left when part of the earn was spent or expired.
    #[serde(default)]
    pub allow_partial: bool,
    pub reason: String,
    pub idempotency_key: String,
}

/// Take back an earn (a visit refunded, points given in error).
#[utoipa::path(post, path = "/members/{id}/reversals", tag = "members",
    params(("id" = i64, Path)),
    request_body = ReversalIn,
    responses(
        (status = 201, body = LedgerEntryOut),
        (status = 404, description = "`member_not_found`, or no earn at `seq`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already_reversed`; `reversal_shortfall` when part was spent and `allow_partial` is false", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused` or invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reverse(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<ReversalIn>,
) -> ApiResult<impl IntoResponse> {
    let p = points::reverse(
        &app,
        &who.actor,
        id,
        b.seq,
        b.allow_partial,
        &b.reason,
        &b.idempotency_key,
    )
    .await
    .map_err(problem)?;
    Ok(posted(p))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerParams {
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 200)]
    pub limit: i64,
}

/// A page of ledger entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerPage {
    pub items: Vec<LedgerEntryOut>,
    pub next_cursor: Option<String>,
}

/// A member's ledger, newest first.
#[utoipa::path(get, path = "/members/{id}/ledger", tag = "members",
    params(("id" = i64, Path), LedgerParams),
    responses(
        (status = 200, body = LedgerPage),
        (status = 404, description = "`member_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ledger(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(p): ApiQuery<LedgerParams>,
) -> ApiResult<axum::Json<LedgerPage>> {
    check_limit(p.limit)?;
    let page = loyalty::ledger(&app, id, p.cursor.as_deref(), p.limit)
        .await
        .map_err(problem)?;
    Ok(axum::Json(LedgerPage {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A change of tier.
#[derive(Debug, Serialize, ToSchema)]
pub struct TierHistoryOut {
    pub on: NaiveDate,
    pub from: Option<String>,
    pub to: String,
    /// `enrolled`, `upgrade`, `downgrade` or `reassigned`.
    pub change: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// A member's tier changes, newest first.
#[utoipa::path(get, path = "/members/{id}/tier-history", tag = "members",
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = Vec<TierHistoryOut>),
        (status = 404, description = "`member_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn tier_history(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<Vec<TierHistoryOut>>> {
    let rows = loyalty::tier_history(&app, id).await.map_err(problem)?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|h| TierHistoryOut {
                on: h.on,
                from: h.from,
                to: h.to,
                change: h.change,
                reason: h.reason,
                at: h.at,
            })
            .collect(),
    ))
}

/// Discounts in basis points (500 = 5 %) per fee category.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierDiscountsBp {
    #[serde(default)]
    pub registration: u32,
    #[serde(default)]
    pub examination: u32,
    #[serde(default)]
    pub treatment: u32,
    #[serde(default)]
    pub hospitalisation: u32,
    #[serde(default)]
    pub check_up: u32,
}

/// A tier definition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierBody {
    /// Lowercase letters, digits and `_`.
    pub code: String,
    pub name: String,
    /// Higher is better; unique.
    pub rank: u32,
    /// Qualifying points (earned over the rolling 12 months) to reach it;
    /// 0 for the lowest tier, rising strictly with rank.
    pub threshold_qualifying: i64,
    #[serde(default)]
    pub discounts_bp: TierDiscountsBp,
    #[serde(default)]
    pub priority_lane: bool,
    #[serde(default)]
    pub exclusive_doctor: bool,
    #[serde(default)]
    pub home_visits: bool,
    #[serde(default)]
    pub free_annual_check_up: bool,
}

impl From<Tier> for TierBody {
    fn from(t: Tier) -> Self {
        let b = &t.def.benefits;
        TierBody {
            discounts_bp: TierDiscountsBp {
                registration: b.discount_bp(FeeCategory::Registration),
                examination: b.discount_bp(FeeCategory::Examination),
                treatment: b.discount_bp(FeeCategory::Treatment),
                hospitalisation: b.discount_bp(FeeCategory::Hospitalisation),
                check_up: b.discount_bp(FeeCategory::CheckUp),
            },
            priority_lane: b.priority_lane,
            exclusive_doctor: b.exclusive_doctor,
            home_visits: b.home_visits,
            free_annual_check_up: b.free_annual_check_up,
            code: t.def.code,
            name: t.name,
            rank: t.def.rank,
            threshold_qualifying: t.def.threshold_qualifying,
        }
    }
}

impl From<TierBody> for Tier {
    fn from(t: TierBody) -> Self {
        let d = &t.discounts_bp;
        let discounts_bp = [
            (FeeCategory::Registration, d.registration),
            (FeeCategory::Examination, d.examination),
            (FeeCategory::Treatment, d.treatment),
            (FeeCategory::Hospitalisation, d.hospitalisation),
            (FeeCategory::CheckUp, d.check_up),
        ]
        .into_iter()
        .filter(|(_, bp)| *bp > 0)
        .collect();
        Tier {
            name: t.name,
            def: TierDef {
                code: t.code,
                rank: t.rank,
                threshold_qualifying: t.threshold_qualifying,
                benefits: Benefits {
                    discounts_bp,
                    priority_lane: t.priority_lane,
                    exclusive_doctor: t.exclusive_doctor,
                    home_visits: t.home_visits,
                    free_annual_check_up: t.free_annual_check_up,
                },
            },
        }
    }
}

/// The tier definitions, lowest first.
#[utoipa::path(get, path = "/loyalty/tiers", tag = "members",
    responses((status = 200, body = Vec<TierBody>)))]
pub async fn get_tiers(State(app): State<App>) -> ApiResult<axum::Json<Vec<TierBody>>> {
    let t = tiers::list(&app).await.map_err(problem)?;
    Ok(axum::Json(t.into_iter().map(Into::into).collect()))
}

/// New tier definitions.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TiersIn {
    pub tiers: Vec<TierBody>,
}

/// The definitions in force and what the re-evaluation did.
#[derive(Debug, Serialize, ToSchema)]
pub struct TiersReplaced {
    pub tiers: Vec<TierBody>,
    /// Members evaluated against the new definitions.
    pub evaluated: u64,
    /// Members whose tier changed (raised thresholds demote only at each
    /// member's anniversary).
    pub moved: u64,
}

/// Replace the tier definitions; every member is re-evaluated at once.
#[utoipa::path(put, path = "/loyalty/tiers", tag = "members",
    request_body = TiersIn,
    responses(
        (status = 200, body = TiersReplaced),
        (status = 422, description = "`invalid_tiers` and field errors", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_tiers(
    State(app): State<App>,
    who: Who,
    ApiJson(b): ApiJson<TiersIn>,
) -> ApiResult<axum::Json<TiersReplaced>> {
    if b.tiers.len() > 50 {
        return Err(ApiError::invalid("tiers", "too_many", "at most 50 tiers"));
    }
    let r = tiers::replace(
        &app,
        &who.actor,
        b.tiers.into_iter().map(Into::into).collect(),
    )
    .await
    .map_err(problem)?;
    Ok(axum::Json(TiersReplaced {
        tiers: r.tiers.into_iter().map(Into::into).collect(),
        evaluated: r.evaluated,
        moved: r.moved,
    }))
}

/// What a job run did.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoyaltyJobOut {
    pub members: u64,
    /// Lots expired (expiry) or members moved (tier review).
    pub changed: u64,
    /// Points expired.
    pub points: i64,
}

/// Expire every lot that is due now (also run by the nightly job).
#[utoipa::path(post, path = "/loyalty/expiry", tag = "members",
    responses((status = 200, body = LoyaltyJobOut)))]
pub async fn run_expiry(State(app): State<App>) -> ApiResult<axum::Json<LoyaltyJobOut>> {
    let r = jobs::expire_due(&app, app.now()).await.map_err(problem)?;
    Ok(axum::Json(LoyaltyJobOut {
        members: r.members,
        changed: r.lots,
        points: r.points,
    }))
}

/// Review every member's tier today (anniversary downgrades, upgrades).
#[utoipa::path(post, path = "/loyalty/tier-review", tag = "members",
    responses((status = 200, body = LoyaltyJobOut)))]
pub async fn run_tier_review(
    State(app): State<App>,
    who: Who,
) -> ApiResult<axum::Json<LoyaltyJobOut>> {
    let (evaluated, moved) = jobs::review_tiers(&app, &who.actor)
        .await
        .map_err(problem)?;
    Ok(axum::Json(LoyaltyJobOut {
        members: evaluated,
        changed: moved,
        points: 0,
    }))
}
