//! `/api/v1/loyalty/…`, `/members/{id}/…` and `/vouchers/…`: earning
//! rules and campaigns, quotes, rewards and vouchers, referrals, the
//! programme settings and reports. Semantics: docs/loyalty.md.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, NaiveDate, Utc};
use rapport_app::loyalty::earning::{self, CampaignInput, QuoteLine, RuleInput};
use rapport_app::loyalty::{CampaignRow, Settings, Voucher, referrals, reports, rewards};
use rapport_app::{App, AppError};
use rapport_domain::loyalty::earning::{CampaignEffect, EarnRule, Explanation, PointsQuote};
use rapport_domain::loyalty::rewards::Reward;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::members::problem as member_problem;
use crate::actor::Who;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// Maps the use cases' errors to this API's stable codes.
fn problem(e: AppError) -> ApiError {
    match e {
        AppError::NotFound("reward") => ApiError::new(
            StatusCode::NOT_FOUND,
            "reward_not_found",
            "no reward with this code",
        ),
        AppError::NotFound("voucher") => ApiError::new(
            StatusCode::NOT_FOUND,
            "voucher_not_found",
            "no voucher with this code",
        ),
        AppError::NotFound("earning rule") => ApiError::new(
            StatusCode::NOT_FOUND,
            "rule_not_found",
            "no earning rule with this code",
        ),
        AppError::NotFound("campaign") => ApiError::new(
            StatusCode::NOT_FOUND,
            "campaign_not_found",
            "no campaign with this code",
        ),
        AppError::NotFound("visit") => ApiError::new(
            StatusCode::NOT_FOUND,
            "visit_not_found",
            "no visit with this id",
        ),
        // Gone: the voucher existed and will never be usable again.
        AppError::Conflict {
            code: "voucher_expired",
            message,
        } => ApiError::new(StatusCode::GONE, "voucher_expired", message),
        e => member_problem(e),
    }
}

// ---------------------------------------------------------------------
// Earning rules

/// A base earning rule: points per whole currency unit for the lines it
/// matches. Among the rules matching a line the most specific wins (most
/// of `category`, `member_type`, `tier` set), then the highest priority.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    /// Lowercase letters, digits, `_`, `-`.
    pub code: String,
    /// `registration`, `examination`, `treatment`, `hospitalisation`,
    /// `check_up`; absent matches any.
    pub category: Option<String>,
    /// `individual`, `family`, `corporate`, `vip_card`; absent matches any.
    pub member_type: Option<String>,
    /// A tier code; absent matches any.
    pub tier: Option<String>,
    #[serde(default)]
    pub priority: i32,
    /// Points per 100 minor units (rounded down per line), 0 to 10,000.
    pub points_per_unit: i64,
}

impl From<EarnRule> for RuleBody {
    fn from(r: EarnRule) -> Self {
        RuleBody {
            code: r.code,
            category: r.category.map(|c| c.as_str().to_owned()),
            member_type: r.member_type,
            tier: r.tier,
            priority: r.priority,
            points_per_unit: i64::from(r.points_per_unit),
        }
    }
}

impl From<&RuleBody> for RuleInput {
    fn from(b: &RuleBody) -> Self {
        RuleInput {
            code: b.code.clone(),
            category: b.category.clone(),
            member_type: b.member_type.clone(),
            tier: b.tier.clone(),
            priority: b.priority,
            points_per_unit: b.points_per_unit,
        }
    }
}

/// The earning rules, by code.
#[utoipa::path(get, path = "/loyalty/earn-rules", tag = "loyalty",
    responses((status = 200, body = Vec<RuleBody>)))]
pub async fn list_rules(State(app): State<App>) -> ApiResult<axum::Json<Vec<RuleBody>>> {
    let r = earning::list_rules(&app).await.map_err(problem)?;
    Ok(axum::Json(r.into_iter().map(Into::into).collect()))
}

/// Add an earning rule.
#[utoipa::path(post, path = "/loyalty/earn-rules", tag = "loyalty",
    request_body = RuleBody,
    responses(
        (status = 201, body = RuleBody),
        (status = 409, description = "`rule_exists`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "field errors; `ambiguous_rules` (on `priority`) when two rules could match the same line with equal specificity and priority", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_rule(
    State(app): State<App>,
    who: Who,
    ApiJson(b): ApiJson<RuleBody>,
) -> ApiResult<impl IntoResponse> {
    let r = earning::put_rule(&app, &who.actor, &(&b).into(), true)
        .await
        .map_err(problem)?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/loyalty/earn-rules/{}", r.code),
        )],
        axum::Json(RuleBody::from(r)),
    ))
}

/// Create or replace the earning rule `code`.
#[utoipa::path(put, path = "/loyalty/earn-rules/{code}", tag = "loyalty",
    params(("code" = String, Path)),
    request_body = RuleBody,
    responses(
        (status = 200, body = RuleBody),
        (status = 422, description = "field errors; `ambiguous_rules`; `code` differs from the path", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_rule(
    State(app): State<App>,
    who: Who,
    ApiPath(code): ApiPath<String>,
    ApiJson(b): ApiJson<RuleBody>,
) -> ApiResult<axum::Json<RuleBody>> {
    if b.code != code {
        return Err(ApiError::invalid(
            "code",
            "path_mismatch",
            "must equal the code in the path",
        ));
    }
    let r = earning::put_rule(&app, &who.actor, &(&b).into(), false)
        .await
        .map_err(problem)?;
    Ok(axum::Json(r.into()))
}

/// Remove an earning rule.
#[utoipa::path(delete, path = "/loyalty/earn-rules/{code}", tag = "loyalty",
    params(("code" = String, Path)),
    responses(
        (status = 204),
        (status = 404, description = "`rule_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_rule(
    State(app): State<App>,
    who: Who,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<StatusCode> {
    earning::delete_rule(&app, &who.actor, &code)
        .await
        .map_err(problem)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------
// Campaigns

/// What a campaign does to the lines it matches.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EffectBody {
    /// `multiply_percent` (200 = double the running points; 100 to
    /// 10,000) or `add_per_line` (points added to each matching line).
    #[serde(rename = "type")]
    pub kind: String,
    pub value: i64,
}

/// A campaign: extra points in a window, for the lines it matches.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignBody {
    pub code: String,
    pub name: String,
    /// Unique among campaigns; higher applies first.
    pub priority: i64,
    /// The window `[starts_at, ends_at)`; a visit is in it when noon of
    /// its date (hospital time) is.
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Only visits of this department (exact name).
    pub department: Option<String>,
    pub category: Option<String>,
    pub member_type: Option<String>,
    pub tier: Option<String>,
    pub effect: EffectBody,
    /// When it applies, no lower-priority campaign applies to the line.
    #[serde(default)]
    pub exclusive: bool,
    /// Most extra points this campaign gives one member, ever (earns that
    /// were reversed do not count).
    pub cap_per_member: Option<i64>,
}

impl From<CampaignRow> for CampaignBody {
    fn from(r: CampaignRow) -> Self {
        let c = r.campaign;
        let (kind, value) = match c.effect {
            CampaignEffect::MultiplyPercent(p) => ("multiply_percent", i64::from(p)),
            CampaignEffect::AddPerLine(n) => ("add_per_line", n),
        };
        CampaignBody {
            code: c.code,
            name: r.name,
            priority: i64::from(c.priority),
            starts_at: c.starts_at,
            ends_at: c.ends_at,
            department: c.department,
            category: c.category.map(|c| c.as_str().to_owned()),
            member_type: c.member_type,
            tier: c.tier,
            effect: EffectBody {
                kind: kind.into(),
                value,
            },
            exclusive: c.exclusive,
            cap_per_member: c.cap_per_member,
        }
    }
}

impl From<&CampaignBody> for CampaignInput {
    fn from(b: &CampaignBody) -> Self {
        CampaignInput {
            code: b.code.clone(),
            name: b.name.clone(),
            priority: b.priority,
            starts_at: b.starts_at,
            ends_at: b.ends_at,
            department: b.department.clone(),
            category: b.category.clone(),
            member_type: b.member_type.clone(),
            tier: b.tier.clone(),
            effect: b.effect.kind.clone(),
            value: b.effect.value,
            exclusive: b.exclusive,
            cap_per_member: b.cap_per_member,
        }
    }
}

/// The campaigns, highest priority first.
#[utoipa::path(get, path = "/loyalty/campaigns", tag = "loyalty",
    responses((status = 200, body = Vec<CampaignBody>)))]
pub async fn list_campaigns(State(app): State<App>) -> ApiResult<axum::Json<Vec<CampaignBody>>> {
    let r = earning::list_campaigns(&app).await.map_err(problem)?;
    Ok(axum::Json(r.into_iter().map(Into::into).collect()))
}

/// Add a campaign.
#[utoipa::path(post, path = "/loyalty/campaigns", tag = "loyalty",
    request_body = CampaignBody,
    responses(
        (status = 201, body = CampaignBody),
        (status = 409, description = "`campaign_exists`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "field errors; `same_priority` (on `priority`); `invalid_campaign` (on `ends_at`, `effect.value`, `cap_per_member`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_campaign(
    State(app): State<App>,
    who: Who,
    ApiJson(b): ApiJson<CampaignBody>,
) -> ApiResult<impl IntoResponse> {
    let r = earning::put_campaign(&app, &who.actor, &(&b).into(), true)
        .await
        .map_err(problem)?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/loyalty/campaigns/{}", r.campaign.code),
        )],
        axum::Json(CampaignBody::from(r)),
    ))
}

/// Create or replace the campaign `code`.
#[utoipa::path(put, path = "/loyalty/campaigns/{code}", tag = "loyalty",
    params(("code" = String, Path)),
    request_body = CampaignBody,
    responses(
        (status = 200, body = CampaignBody),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_campaign(
    State(app): State<App>,
    who: Who,
    ApiPath(code): ApiPath<String>,
    ApiJson(b): ApiJson<CampaignBody>,
) -> ApiResult<axum::Json<CampaignBody>> {
    if b.code != code {
        return Err(ApiError::invalid(
            "code",
            "path_mismatch",
            "must equal the code in the path",
        ));
    }
    let r = earning::put_campaign(&app, &who.actor, &(&b).into(), false)
        .await
        .map_err(problem)?;
    Ok(axum::Json(r.into()))
}

/// Remove a campaign (points it gave stay).
#[utoipa::path(delete, path = "/loyalty/campaigns/{code}", tag = "loyalty",
    params(("code" = String, Path)),
    responses(
        (status = 204),
        (status = 404, description = "`campaign_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_campaign(
    State(app): State<App>,
    who: Who,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<StatusCode> {
    earning::delete_campaign(&app, &who.actor, &code)
        .await
        .map_err(problem)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------
// Quotes

/// A fee line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineIn {
    /// `registration`, `examination`, `treatment`, `hospitalisation`,
    /// `check_up`.
    pub category: String,
    /// For earning: the department (campaign filters).
    pub department: Option<String>,
    /// For pricing: printed on the quote.
    #[serde(default)]
    pub description: String,
    /// Minor units, not negative.
    pub amount: i64,
}

/// What to quote points for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EarnQuoteIn {
    pub member_id: i64,
    /// The visit's date (default today): decides which campaigns are on.
    pub visit_date: Option<NaiveDate>,
    pub lines: Vec<LineIn>,
}

/// One campaign's contribution to a line.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepOut {
    pub campaign: String,
    /// `multiply_percent` or `add_per_line`.
    pub effect: String,
    pub value: i64,
    /// Extra points this step added (after the cap).
    pub points: i64,
    /// The member cap cut this step.
    pub capped: bool,
}

/// A campaign that matched a line but did not apply.
#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedOut {
    pub campaign: String,
    pub reason: String,
}

/// Why every point of a line is earned: `points = base + Σ steps.points`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineExplanationOut {
    pub line: usize,
    pub category: String,
    pub amount: i64,
    /// The base rule's code; absent when no rule matched (the line earns
    /// nothing, and no campaign applies to it).
    pub rule: Option<String>,
    pub base: i64,
    pub steps: Vec<StepOut>,
    pub skipped: Vec<SkippedOut>,
    pub points: i64,
}

/// What lines earn, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct EarnQuoteOut {
    /// The sum of the lines' points.
    pub total: i64,
    pub lines: Vec<LineExplanationOut>,
}

fn explanation(l: Explanation) -> LineExplanationOut {
    LineExplanationOut {
        line: l.line,
        category: l.category.as_str().to_owned(),
        amount: l.amount.0,
        rule: l.rule,
        base: l.base,
        steps: l
            .steps
            .into_iter()
            .map(|s| {
                let (effect, value) = match s.effect {
                    CampaignEffect::MultiplyPercent(p) => ("multiply_percent", i64::from(p)),
                    CampaignEffect::AddPerLine(n) => ("add_per_line", n),
                };
                StepOut {
                    campaign: s.campaign,
                    effect: effect.into(),
                    value,
                    points: s.points,
                    capped: s.capped,
                }
            })
            .collect(),
        skipped: l
            .skipped
            .into_iter()
            .map(|(campaign, reason)| SkippedOut { campaign, reason })
            .collect(),
        points: l.points,
    }
}

fn quote_out(q: PointsQuote) -> EarnQuoteOut {
    EarnQuoteOut {
        total: q.total,
        lines: q.lines.into_iter().map(explanation).collect(),
    }
}

/// What these fee lines would earn the member, and why (base rule, each
/// campaign step, caps, skipped campaigns). Writes nothing.
#[utoipa::path(post, path = "/loyalty/earn-quote", tag = "loyalty",
    request_body = EarnQuoteIn,
    responses(
        (status = 200, body = EarnQuoteOut),
        (status = 404, description = "`member_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn earn_quote(
    State(app): State<App>,
    ApiJson(b): ApiJson<EarnQuoteIn>,
) -> ApiResult<axum::Json<EarnQuoteOut>> {
    let lines: Vec<QuoteLine> = b
        .lines
        .iter()
        .map(|l| QuoteLine {
            category: l.category.clone(),
            department: l.department.clone(),
            amount: l.amount,
        })
        .collect();
    let q = earning::earn_quote(&app, b.member_id, b.visit_date, &lines)
        .await
        .map_err(problem)?;
    Ok(axum::Json(quote_out(q)))
}

/// An earn a visit gave, with its explanation.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitEarnOut {
    pub member_id: i64,
    /// The earn entry's position in the member's ledger.
    pub seq: i64,
    pub points: i64,
    /// The reversal's position, when the visit was deleted or changed.
    pub reversed_seq: Option<i64>,
    pub reversed_at: Option<DateTime<Utc>>,
    pub explanation: EarnQuoteOut,
}

/// The points a recorded visit earned, and why (reversed earns too).
#[utoipa::path(get, path = "/loyalty/visits/{id}/earnings", tag = "loyalty",
    params(("id" = i64, Path, description = "The visit's platform id")),
    responses(
        (status = 200, body = Vec<VisitEarnOut>),
        (status = 404, description = "`visit_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn visit_earnings(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<Vec<VisitEarnOut>>> {
    let r = earning::visit_earnings(&app, id).await.map_err(problem)?;
    Ok(axum::Json(
        r.into_iter()
            .map(|(e, q)| VisitEarnOut {
                member_id: e.member_id,
                seq: e.seq,
                points: e.points,
                reversed_seq: e.reversed_seq,
                reversed_at: e.reversed_at,
                explanation: quote_out(q),
            })
            .collect(),
    ))
}

/// What to price.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceQuoteIn {
    pub member_id: i64,
    pub items: Vec<LineIn>,
}

/// A priced line: `list = discount + net`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PricedLineOut {
    pub category: String,
    pub description: String,
    pub list: i64,
    /// The tier's discount for the category, in basis points.
    pub discount_bp: u32,
    /// `floor(list × discount_bp / 10,000)`.
    pub discount: i64,
    pub net: i64,
}

/// Discounted prices (minor units) with the tier benefit of each line.
#[derive(Debug, Serialize, ToSchema)]
pub struct PriceQuoteOut {
    pub member_id: i64,
    pub tier: String,
    pub lines: Vec<PricedLineOut>,
    pub total_list: i64,
    pub total_discount: i64,
    pub total_net: i64,
}

/// Price fee items with the member's tier discounts. Writes nothing.
#[utoipa::path(post, path = "/loyalty/price-quote", tag = "loyalty",
    request_body = PriceQuoteIn,
    responses(
        (status = 200, body = PriceQuoteOut),
        (status = 404, description = "`member_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn price_quote(
    State(app): State<App>,
    ApiJson(b): ApiJson<PriceQuoteIn>,
) -> ApiResult<axum::Json<PriceQuoteOut>> {
    let items: Vec<(QuoteLine, String)> = b
        .items
        .iter()
        .map(|l| {
            (
                QuoteLine {
                    category: l.category.clone(),
                    department: None,
                    amount: l.amount,
                },
                l.description.clone(),
            )
        })
        .collect();
    let (tier, q) = earning::price_quote(&app, b.member_id, &items)
        .await
        .map_err(problem)?;
    Ok(axum::Json(PriceQuoteOut {
        member_id: b.member_id,
        tier,
        lines: q
            .lines
            .into_iter()
            .map(|l| PricedLineOut {
                category: l.category.as_str().to_owned(),
                description: l.description,
                list: l.list.0,
                discount_bp: l.discount_bp,
                discount: l.discount.0,
                net: l.net.0,
            })
            .collect(),
        total_list: q.total_list.0,
        total_discount: q.total_discount.0,
        total_net: q.total_net.0,
    }))
}

// ---------------------------------------------------------------------
// Rewards and vouchers

/// A reward of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct RewardOut {
    pub code: String,
    pub name: String,
    /// `check_up`, `discount_voucher` or `gift`.
    pub kind: String,
    pub cost_points: i64,
    pub value_minor: Option<i64>,
    /// Vouchers left; absent is unlimited.
    pub stock: Option<i64>,
    pub active_from: DateTime<Utc>,
    pub active_until: Option<DateTime<Utc>>,
    pub voucher_valid_days: i32,
}

impl From<Reward> for RewardOut {
    fn from(r: Reward) -> Self {
        RewardOut {
            code: r.code,
            name: r.name,
            kind: r.kind.as_str().into(),
            cost_points: r.cost_points,
            value_minor: r.value_minor,
            stock: r.stock,
            active_from: r.active_from,
            active_until: r.active_until,
            voucher_valid_days: r.voucher_valid_days,
        }
    }
}

/// A reward definition.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardIn {
    pub name: String,
    /// `check_up`, `discount_voucher` (needs `value_minor`) or `gift`.
    pub kind: String,
    pub cost_points: i64,
    pub value_minor: Option<i64>,
    pub stock: Option<i64>,
    /// Default: now.
    pub active_from: Option<DateTime<Utc>>,
    pub active_until: Option<DateTime<Utc>>,
    /// How long a voucher stays usable (default 90 days).
    pub voucher_valid_days: Option<i32>,
}

/// The reward catalogue.
#[utoipa::path(get, path = "/loyalty/rewards", tag = "loyalty",
    responses((status = 200, body = Vec<RewardOut>)))]
pub async fn list_rewards(State(app): State<App>) -> ApiResult<axum::Json<Vec<RewardOut>>> {
    let r = rewards::list(&app).await.map_err(problem)?;
    Ok(axum::Json(r.into_iter().map(Into::into).collect()))
}

/// Create or replace the reward `code`.
#[utoipa::path(put, path = "/loyalty/rewards/{code}", tag = "loyalty",
    params(("code" = String, Path)),
    request_body = RewardIn,
    responses(
        (status = 200, body = RewardOut),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_reward(
    State(app): State<App>,
    who: Who,
    ApiPath(code): ApiPath<String>,
    ApiJson(b): ApiJson<RewardIn>,
) -> ApiResult<axum::Json<RewardOut>> {
    let r = rewards::put(
        &app,
        &who.actor,
        &code,
        &rewards::RewardInput {
            name: b.name,
            kind: b.kind,
            cost_points: b.cost_points,
            value_minor: b.value_minor,
            stock: b.stock,
            active_from: b.active_from,
            active_until: b.active_until,
            voucher_valid_days: b.voucher_valid_days,
        },
    )
    .await
    .map_err(problem)?;
    Ok(axum::Json(r.into()))
}

/// A voucher.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoucherOut {
    /// What the desk types or scans.
    pub code: String,
    pub member_id: i64,
    pub reward: String,
    pub points: i64,
    /// `issued`, `used` or `cancelled`.
    pub status: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// The redeem entry that paid for it.
    pub redeem_seq: i64,
    /// The adjustment that gave the points back.
    pub refund_seq: Option<i64>,
}

impl From<Voucher> for VoucherOut {
    fn from(v: Voucher) -> Self {
        VoucherOut {
            code: v.code,
            member_id: v.member_id,
            reward: v.reward_code,
            points: v.points,
            status: v.status.as_str().into(),
            issued_at: v.issued_at,
            expires_at: v.expires_at,
            used_at: v.used_at,
            cancelled_at: v.cancelled_at,
            redeem_seq: v.redeem_seq,
            refund_seq: v.refund_seq,
        }
    }
}

/// A reward to redeem.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemIn {
    /// The reward's code.
    pub reward: String,
    /// The same key and reward again answer the same voucher.
    pub idempotency_key: String,
}

/// Redeem a reward: spends its points and issues a voucher.
#[utoipa::path(post, path = "/members/{id}/vouchers", tag = "loyalty",
    params(("id" = i64, Path)),
    request_body = RedeemIn,
    responses(
        (status = 201, description = "The voucher (also for a replay of the same key and reward)", body = VoucherOut),
        (status = 404, description = "`member_not_found`, `reward_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`insufficient_points`, `reward_inactive`, `reward_out_of_stock`, `member_inactive`: nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused` or invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn redeem(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<RedeemIn>,
) -> ApiResult<impl IntoResponse> {
    let r = rewards::redeem(&app, &who.actor, id, &b.reward, &b.idempotency_key)
        .await
        .map_err(problem)?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/vouchers/{}", r.voucher.code),
        )],
        axum::Json(VoucherOut::from(r.voucher)),
    ))
}

/// A member's vouchers, newest first.
#[utoipa::path(get, path = "/members/{id}/vouchers", tag = "loyalty",
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = Vec<VoucherOut>),
        (status = 404, description = "`member_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn member_vouchers(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<Vec<VoucherOut>>> {
    let v = rewards::of_member(&app, id).await.map_err(problem)?;
    Ok(axum::Json(v.into_iter().map(Into::into).collect()))
}

/// A voucher by its code.
#[utoipa::path(get, path = "/vouchers/{code}", tag = "loyalty",
    params(("code" = String, Path)),
    responses(
        (status = 200, body = VoucherOut),
        (status = 404, description = "`voucher_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_voucher(
    State(app): State<App>,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<axum::Json<VoucherOut>> {
    Ok(axum::Json(
        rewards::get(&app, &code).await.map_err(problem)?.into(),
    ))
}

/// Use a voucher at the desk (once, before it expires).
#[utoipa::path(post, path = "/vouchers/{code}/use", tag = "loyalty",
    params(("code" = String, Path)),
    responses(
        (status = 200, body = VoucherOut),
        (status = 404, description = "`voucher_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`voucher_used`, `voucher_cancelled`", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`voucher_expired`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn use_voucher(
    State(app): State<App>,
    who: Who,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<axum::Json<VoucherOut>> {
    Ok(axum::Json(
        rewards::use_voucher(&app, &who.actor, &code)
            .await
            .map_err(problem)?
            .into(),
    ))
}

/// Cancel an unused voucher: its points come back as a positive
/// adjustment (a new lot with a fresh expiry, not qualifying).
#[utoipa::path(post, path = "/vouchers/{code}/cancel", tag = "loyalty",
    params(("code" = String, Path)),
    responses(
        (status = 200, body = VoucherOut),
        (status = 404, description = "`voucher_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`voucher_used`, `voucher_cancelled`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel_voucher(
    State(app): State<App>,
    who: Who,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<axum::Json<VoucherOut>> {
    Ok(axum::Json(
        rewards::cancel(&app, &who.actor, &code)
            .await
            .map_err(problem)?
            .into(),
    ))
}

// ---------------------------------------------------------------------
// Referrals

/// A member's referral code.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralCodeOut {
    pub code: String,
    /// Invitations the member handed out.
    pub invited: i64,
}

/// The member's referral code (made on the first call).
#[utoipa::path(post, path = "/members/{id}/referral-code", tag = "loyalty",
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = ReferralCodeOut),
        (status = 404, description = "`member_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn referral_code(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<ReferralCodeOut>> {
    let c = referrals::code(&app, &who.actor, id)
        .await
        .map_err(problem)?;
    Ok(axum::Json(ReferralCodeOut {
        code: c.code,
        invited: c.invited,
    }))
}

/// Invitations handed out.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationsIn {
    /// 1 to 1,000.
    pub count: i64,
}

/// Count invitations the member handed out (the funnel's first step).
#[utoipa::path(post, path = "/members/{id}/referral-code/invitations", tag = "loyalty",
    params(("id" = i64, Path)),
    request_body = InvitationsIn,
    responses(
        (status = 200, body = ReferralCodeOut),
        (status = 404, description = "`member_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn invitations(
    State(app): State<App>,
    who: Who,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<InvitationsIn>,
) -> ApiResult<axum::Json<ReferralCodeOut>> {
    let c = referrals::invited(&app, &who.actor, id, b.count)
        .await
        .map_err(problem)?;
    Ok(axum::Json(ReferralCodeOut {
        code: c.code,
        invited: c.invited,
    }))
}

/// One referral.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralOut {
    pub id: i64,
    /// The platform id of the referred patient.
    pub patient: i64,
    pub member_id: Option<i64>,
    /// `registered`, `first_visit` (no reward: the referrer was inactive
    /// or the reward is 0) or `rewarded`.
    pub status: String,
    pub registered_at: DateTime<Utc>,
    pub first_visit_at: Option<DateTime<Utc>>,
    pub rewarded_points: Option<i64>,
    pub rewarded_at: Option<DateTime<Utc>>,
}

/// A referrer's funnel.
#[derive(Debug, Serialize, ToSchema)]
pub struct FunnelOut {
    pub code: Option<String>,
    pub invited: i64,
    pub registered: i64,
    /// Referred patients who had their first paid visit.
    pub first_visit: i64,
    pub rewarded: i64,
    /// Newest first, at most 500.
    pub referrals: Vec<ReferralOut>,
}

/// A member's referral funnel: invited, registered, first visit, rewarded.
#[utoipa::path(get, path = "/members/{id}/referrals", tag = "loyalty",
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = FunnelOut),
        (status = 404, description = "`member_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn funnel(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<FunnelOut>> {
    let f = referrals::funnel(&app, id).await.map_err(problem)?;
    Ok(axum::Json(FunnelOut {
        code: f.code,
        invited: f.invited,
        registered: f.registered,
        first_visit: f.first_visit,
        rewarded: f.rewarded,
        referrals: f
            .referrals
            .into_iter()
            .map(|r| ReferralOut {
                id: r.id,
                patient: r.referred_patient_key,
                member_id: r.referred_member_id,
                status: r.status,
                registered_at: r.registered_at,
                first_visit_at: r.first_visit_at,
                rewarded_points: r.rewarded_points,
                rewarded_at: r.rewarded_at,
            })
            .collect(),
    }))
}

// ---------------------------------------------------------------------
// Programme settings and reports

/// The programme's settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramBody {
    /// How long earned points stay spendable (1 to 120).
    pub points_valid_months: i32,
    /// Points the referrer gets after the referred patient's first paid
    /// visit (0: none).
    pub referral_reward_points: i64,
    /// What one point is worth, in minor units (for the liability).
    pub point_value_minor: i64,
}

impl From<Settings> for ProgramBody {
    fn from(s: Settings) -> Self {
        ProgramBody {
            points_valid_months: s.points_valid_months,
            referral_reward_points: s.referral_reward_points,
            point_value_minor: s.point_value_minor,
        }
    }
}

/// The programme's settings.
#[utoipa::path(get, path = "/loyalty/program", tag = "loyalty",
    responses((status = 200, body = ProgramBody)))]
pub async fn get_program(State(app): State<App>) -> ApiResult<axum::Json<ProgramBody>> {
    Ok(axum::Json(
        reports::settings(&app).await.map_err(problem)?.into(),
    ))
}

/// Replace the programme's settings.
#[utoipa::path(put, path = "/loyalty/program", tag = "loyalty",
    request_body = ProgramBody,
    responses(
        (status = 200, body = ProgramBody),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_program(
    State(app): State<App>,
    who: Who,
    ApiJson(b): ApiJson<ProgramBody>,
) -> ApiResult<axum::Json<ProgramBody>> {
    let s = reports::set_settings(
        &app,
        &who.actor,
        Settings {
            points_valid_months: b.points_valid_months,
            referral_reward_points: b.referral_reward_points,
            point_value_minor: b.point_value_minor,
        },
    )
    .await
    .map_err(problem)?;
    Ok(axum::Json(s.into()))
}

/// The points liability.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiabilityOut {
    pub members: i64,
    /// Spendable points of every member.
    pub points: i64,
    pub point_value_minor: i64,
    /// `points × point_value_minor`.
    pub value_minor: i64,
}

/// Outstanding points and their money value.
#[utoipa::path(get, path = "/loyalty/reports/liability", tag = "loyalty",
    responses((status = 200, body = LiabilityOut)))]
pub async fn liability(State(app): State<App>) -> ApiResult<axum::Json<LiabilityOut>> {
    let l = reports::liability(&app).await.map_err(problem)?;
    Ok(axum::Json(LiabilityOut {
        members: l.members,
        points: l.points,
        point_value_minor: l.point_value_minor,
        value_minor: l.value_minor,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthsParams {
    /// First month, `YYYY-MM` (default: 11 months before `to`).
    pub from: Option<String>,
    /// Last month, `YYYY-MM` (default: this month). At most 60 months.
    pub to: Option<String>,
}

/// Members of one tier.
#[derive(Debug, Serialize, ToSchema)]
pub struct TierCountOut {
    pub tier: String,
    pub members: i64,
}

/// Members per tier at the end of a month.
#[derive(Debug, Serialize, ToSchema)]
pub struct TierMonthOut {
    pub month: String,
    pub tiers: Vec<TierCountOut>,
}

/// Members per tier at the end of each month (from the tier history).
#[utoipa::path(get, path = "/loyalty/reports/tiers", tag = "loyalty",
    params(MonthsParams),
    responses((status = 200, body = Vec<TierMonthOut>), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn tiers_report(
    State(app): State<App>,
    ApiQuery(p): ApiQuery<MonthsParams>,
) -> ApiResult<axum::Json<Vec<TierMonthOut>>> {
    let r = reports::tiers_by_month(&app, p.from.as_deref(), p.to.as_deref())
        .await
        .map_err(problem)?;
    Ok(axum::Json(
        r.into_iter()
            .map(|(month, tiers)| TierMonthOut {
                month,
                tiers: tiers
                    .into_iter()
                    .map(|(tier, members)| TierCountOut { tier, members })
                    .collect(),
            })
            .collect(),
    ))
}

/// Points moved in a month (hospital time).
#[derive(Debug, Serialize, ToSchema)]
pub struct PointsMonthOut {
    pub month: String,
    pub earned: i64,
    pub redeemed: i64,
    pub expired: i64,
    pub reversed: i64,
    /// Positive minus negative adjustments (voucher refunds included).
    pub adjusted: i64,
    pub entries: i64,
}

/// Points earned, redeemed, expired, reversed and adjusted per month.
#[utoipa::path(get, path = "/loyalty/reports/points", tag = "loyalty",
    params(MonthsParams),
    responses((status = 200, body = Vec<PointsMonthOut>), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn points_report(
    State(app): State<App>,
    ApiQuery(p): ApiQuery<MonthsParams>,
) -> ApiResult<axum::Json<Vec<PointsMonthOut>>> {
    let r = reports::points_by_month(&app, p.from.as_deref(), p.to.as_deref())
        .await
        .map_err(problem)?;
    Ok(axum::Json(
        r.into_iter()
            .map(|m| PointsMonthOut {
                month: m.month,
                earned: m.earned,
                redeemed: m.redeemed,
                expired: m.expired,
                reversed: m.reversed,
                adjusted: m.adjusted,
                entries: m.entries,
            })
            .collect(),
    ))
}
