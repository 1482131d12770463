//! The rewards sub-page (the catalogue, edited with `loyalty:manage`, and
//! the desk's voucher lookup by code) and the voucher actions of the
//! membership card: redeem a reward, use or cancel a voucher.
//!
//! Redeeming carries an idempotency key chosen when the card was drawn,
//! like the card's point forms: a resent form answers the first voucher.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use chrono::{DateTime, Duration, Utc};
use rapport_app::console::LoyaltyCache;
use rapport_app::loyalty::rewards::{self, RewardInput};
use rapport_app::loyalty::{self, Voucher};
use rapport_app::{App, AppError};
use rapport_domain::Money;
use rapport_domain::auth::Permission;
use rapport_domain::loyalty::rewards::{Reward, RewardKind, VoucherStatus};
use serde::Deserialize;

use super::i18n::Tr;
use super::loyalty::{
    FieldErrors, Pairs, SelectOption, day_start, field, form_errors, local_day, opt_field,
    parse_int,
};
use super::membership::{MemberFormState, PAGE, Tab, tabs};
use super::{Layout, PageError, PageResult, Staff, html};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/membership/rewards", get(rewards_page).post(save_reward))
        .route("/membership/members/{id}/vouchers", post(redeem))
        .route("/membership/vouchers/{code}/use", post(use_voucher))
        .route("/membership/vouchers/{code}/cancel", post(cancel_voucher))
}

pub fn kind_label(tr: Tr, k: RewardKind) -> String {
    tr.t(&format!("reward-kind-{}", k.as_str().replace('_', "-")))
}

/// A voucher as the card and the lookup show it.
pub struct VoucherView {
    pub code: String,
    pub reward: String,
    pub points: String,
    /// `issued`, `used`, `cancelled` or `expired`.
    pub state: &'static str,
    pub state_label: String,
    pub issued: String,
    pub expires: String,
    pub member_id: i64,
    /// Whether it can still be used or cancelled.
    pub open: bool,
}

pub fn voucher_view(tr: Tr, v: &Voucher, rewards: &[Reward], now: DateTime<Utc>) -> VoucherView {
    let state = match v.status {
        VoucherStatus::Issued if now >= v.expires_at => "expired",
        s => s.as_str(),
    };
    VoucherView {
        code: v.code.clone(),
        reward: rewards
            .iter()
            .find(|r| r.code == v.reward_code)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| v.reward_code.clone()),
        points: tr.count("points-count", v.points),
        state,
        state_label: tr.t(&format!("voucher-state-{state}")),
        issued: tr.datetime(v.issued_at),
        expires: tr.date(local_day(v.expires_at - Duration::seconds(1))),
        member_id: v.member_id,
        open: v.status == VoucherStatus::Issued,
    }
}

/// A voucher action refused: the message the desk reads.
pub fn voucher_refusal(tr: Tr, e: AppError) -> Result<(StatusCode, String), AppError> {
    let (status, key) = match &e {
        AppError::NotFound("voucher") => (StatusCode::NOT_FOUND, "voucher-error-not-found"),
        AppError::NotFound("reward") => (StatusCode::NOT_FOUND, "voucher-error-no-reward"),
        AppError::Conflict { code, .. } => match *code {
            "voucher_used" => (StatusCode::CONFLICT, "voucher-error-used"),
            "voucher_cancelled" => (StatusCode::CONFLICT, "voucher-error-cancelled"),
            "voucher_expired" => (StatusCode::GONE, "voucher-error-expired"),
            "reward_inactive" => (StatusCode::CONFLICT, "voucher-error-inactive"),
            "reward_out_of_stock" => (StatusCode::CONFLICT, "voucher-error-stock"),
            "insufficient_points" => (StatusCode::CONFLICT, "voucher-error-points"),
            "member_inactive" => (StatusCode::CONFLICT, "member-error-inactive"),
            "idempotency_key_reused" => {
                (StatusCode::UNPROCESSABLE_ENTITY, "member-error-key-reused")
            }
            _ => return Err(e),
        },
        _ => return Err(e),
    };
    Ok((status, tr.t(key)))
}

// ------------------------------------------------------------ catalogue

pub struct RewardRow {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub cost: String,
    pub value: String,
    pub stock: String,
    pub window: String,
    pub valid_days: String,
    pub active: bool,
}

#[derive(Default, Clone)]
pub struct RewardForm {
    pub create: bool,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub cost: String,
    pub value: String,
    pub stock: String,
    pub from: String,
    pub until: String,
    pub valid_days: String,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "console/membership_rewards.html")]
pub struct RewardsPage {
    pub l: Layout,
    pub tabs: Vec<Tab>,
    pub rewards: Vec<RewardRow>,
    pub can_manage: bool,
    pub can_write: bool,
    pub form: RewardForm,
    pub kinds: Vec<SelectOption>,
    pub open_form: bool,
    pub lookup: String,
    pub voucher: Option<VoucherView>,
    pub voucher_member: String,
    pub voucher_href: String,
    pub lookup_error: String,
}

#[derive(Deserialize, Default)]
pub struct RewardsQuery {
    edit: Option<String>,
    voucher: Option<String>,
    done: Option<String>,
}

async fn rewards_page(
    State(app): State<App>,
    staff: Staff,
    Query(q): Query<RewardsQuery>,
) -> PageResult {
    let tr = staff.tr;
    let notice = q
        .done
        .as_deref()
        .filter(|d| ["saved", "used", "cancelled"].contains(d))
        .map(|d| tr.t(&format!("rewards-done-{d}")));
    let mut form = None;
    if let Some(code) = q.edit.filter(|_| staff.may(Permission::LoyaltyManage)) {
        let all = rewards::list(&app)
            .await
            .map_err(|e| PageError::from_app(&staff, e))?;
        let Some(r) = all.into_iter().find(|r| r.code == code) else {
            return Err(PageError::not_found(&staff));
        };
        form = Some(RewardForm {
            create: false,
            code: r.code,
            name: r.name,
            kind: r.kind.as_str().into(),
            cost: r.cost_points.to_string(),
            value: r
                .value_minor
                .map(|v| Money(v).to_string())
                .unwrap_or_default(),
            stock: r.stock.map(|s| s.to_string()).unwrap_or_default(),
            from: local_day(r.active_from).to_string(),
            until: r
                .active_until
                .map(|t| local_day(t - Duration::seconds(1)).to_string())
                .unwrap_or_default(),
            valid_days: r.voucher_valid_days.to_string(),
            errors: FieldErrors::default(),
        });
    }
    let lookup = q.voucher.unwrap_or_default().trim().to_uppercase();
    render(&app, &staff, StatusCode::OK, notice, form, lookup, None).await
}

async fn render(
    app: &App,
    staff: &Staff,
    status: StatusCode,
    notice: Option<String>,
    form: Option<RewardForm>,
    lookup: String,
    lookup_error: Option<String>,
) -> PageResult {
    let tr = staff.tr;
    let err = |e| PageError::from_app(staff, e);
    let all = rewards::list(app).await.map_err(err)?;
    let now = app.now();
    let rows = all
        .iter()
        .map(|r| RewardRow {
            code: r.code.clone(),
            name: r.name.clone(),
            kind: kind_label(tr, r.kind),
            cost: tr.count("points-count", r.cost_points),
            value: r.value_minor.map(|v| tr.money(v)).unwrap_or_default(),
            stock: r
                .stock
                .map(|s| tr.num(s))
                .unwrap_or_else(|| tr.t("rewards-unlimited")),
            window: match r.active_until {
                Some(u) => format!(
                    "{} – {}",
                    tr.date(local_day(r.active_from)),
                    tr.date(local_day(u - Duration::seconds(1)))
                ),
                None => tr.t1("rewards-from", "date", tr.date(local_day(r.active_from))),
            },
            valid_days: tr.count("days-count", i64::from(r.voucher_valid_days)),
            active: r.redeemable_at(now).is_ok(),
        })
        .collect();
    let open_form = form.is_some();
    let form = form.unwrap_or_else(|| RewardForm {
        create: true,
        kind: "gift".into(),
        from: app.today().to_string(),
        valid_days: "90".into(),
        ..Default::default()
    });
    let mut voucher = None;
    let mut voucher_member = String::new();
    let mut voucher_href = String::new();
    let mut lookup_error = lookup_error.unwrap_or_default();
    if !lookup.is_empty() {
        match rewards::get(app, &lookup).await {
            Ok(v) => {
                let m = loyalty::get(app, v.member_id).await.map_err(err)?;
                voucher_member = m.member.card_no.clone();
                voucher_href = format!("/patients/{}#membership", m.member.patient_key);
                voucher = Some(voucher_view(tr, &v, &all, now));
            }
            Err(AppError::NotFound(_)) if lookup_error.is_empty() => {
                lookup_error = tr.t("voucher-error-not-found")
            }
            Err(AppError::NotFound(_)) => {}
            Err(e) => return Err(err(e)),
        }
    }
    let page = RewardsPage {
        l: Layout::for_staff(
            staff,
            PAGE.id,
            tr.t("membership-tab-rewards"),
            "/membership/rewards",
        )
        .with_notice(notice),
        tabs: tabs(staff, "rewards"),
        rewards: rows,
        can_manage: staff.may(Permission::LoyaltyManage),
        can_write: staff.may(Permission::MembersWrite),
        kinds: RewardKind::ALL
            .iter()
            .map(|k| SelectOption {
                code: k.as_str().into(),
                label: kind_label(tr, *k),
                selected: k.as_str() == form.kind,
            })
            .collect(),
        form,
        open_form,
        lookup,
        voucher,
        voucher_member,
        voucher_href,
        lookup_error,
    };
    Ok(html(status, &page))
}

async fn save_reward(State(app): State<App>, staff: Staff, Form(p): Form<Pairs>) -> PageResult {
    if !staff.may(Permission::LoyaltyManage) {
        return Err(PageError::forbidden(&staff));
    }
    let tr = staff.tr;
    let mut form = RewardForm {
        create: field(&p, "create") == "1",
        code: field(&p, "code").into(),
        name: field(&p, "name").into(),
        kind: field(&p, "kind").into(),
        cost: field(&p, "cost").into(),
        value: field(&p, "value").into(),
        stock: field(&p, "stock").into(),
        from: field(&p, "from").into(),
        until: field(&p, "until").into(),
        valid_days: field(&p, "valid_days").into(),
        errors: FieldErrors::default(),
    };
    let whole = tr.t("loyalty-error-whole-number");
    let cost = parse_int(&form.cost);
    if cost.is_none() {
        form.errors.push("cost", whole.clone());
    }
    let value = match opt_field(&p, "value") {
        None => Some(None),
        Some(v) => Money::parse(&v.replace(',', "."))
            .ok()
            .map(|m| Some(m.minor())),
    };
    if value.is_none() {
        form.errors
            .push("value", tr.t("field-error-invalid-amount"));
    }
    let stock = match opt_field(&p, "stock") {
        None => Some(None),
        Some(s) => parse_int(&s).map(Some),
    };
    if stock.is_none() {
        form.errors.push("stock", whole.clone());
    }
    let day = |s: &str, f: &str, errors: &mut FieldErrors| -> Option<Option<DateTime<Utc>>> {
        if s.is_empty() {
            return Some(None);
        }
        let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        if d.is_none() {
            errors.push(f, tr.t("field-error-invalid-date"));
        }
        d.map(|d| Some(day_start(d)))
    };
    let from = day(&form.from.clone(), "from", &mut form.errors);
    let until = day(&form.until.clone(), "until", &mut form.errors)
        .map(|u| u.map(|t| t + Duration::days(1)));
    let valid = match opt_field(&p, "valid_days") {
        None => Some(None),
        Some(s) => parse_int(&s).and_then(|n| i32::try_from(n).ok()).map(Some),
    };
    if valid.is_none() {
        form.errors.push("valid_days", whole);
    }
    if let (Some(cost), Some(value), Some(stock), Some(from), Some(until), Some(valid), true) = (
        cost,
        value,
        stock,
        from,
        until,
        valid,
        form.errors.is_empty(),
    ) {
        let input = RewardInput {
            name: form.name.clone(),
            kind: form.kind.clone(),
            cost_points: cost,
            value_minor: value,
            stock,
            active_from: from,
            active_until: until,
            voucher_valid_days: valid,
        };
        let exists = form.create
            && rewards::list(&app)
                .await
                .map_err(|e| PageError::from_app(&staff, e))?
                .iter()
                .any(|r| r.code == form.code);
        if exists {
            form.errors.push("code", tr.t("rewards-error-exists"));
        } else {
            match rewards::put(&app, &staff.actor(), &form.code, &input).await {
                Ok(_) => {
                    return Ok(Redirect::to("/membership/rewards?done=saved").into_response());
                }
                Err(e) => {
                    form.errors = form_errors(
                        tr,
                        e,
                        &[
                            ("cost_points", "cost"),
                            ("value_minor", "value"),
                            ("active_from", "from"),
                            ("active_until", "until"),
                            ("voucher_valid_days", "valid_days"),
                        ],
                    )
                    .map_err(|e| PageError::from_app(&staff, e))?;
                }
            }
        }
    }
    render(
        &app,
        &staff,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        Some(form),
        String::new(),
        None,
    )
    .await
}

// ------------------------------------------------------------- vouchers

#[derive(Deserialize)]
pub struct RedeemForm {
    #[serde(default)]
    reward: String,
    #[serde(default)]
    idempotency_key: String,
}

async fn redeem(
    State(app): State<App>,
    Extension(cache): Extension<LoyaltyCache>,
    staff: Staff,
    Path(id): Path<String>,
    Form(f): Form<RedeemForm>,
) -> PageResult {
    if !staff.may(Permission::MembersWrite) {
        return Err(PageError::forbidden(&staff));
    }
    let member_id: i64 = id.parse().map_err(|_| PageError::not_found(&staff))?;
    let key = super::membership::patient_of_member(&app, &staff, member_id).await?;
    match rewards::redeem(
        &app,
        &staff.actor(),
        member_id,
        &f.reward,
        &f.idempotency_key,
    )
    .await
    {
        Ok(r) => {
            cache.clear();
            Ok(Redirect::to(&format!(
                "/patients/{key}?done=voucher&voucher={}#membership",
                r.voucher.code
            ))
            .into_response())
        }
        Err(e) => {
            let (status, message) =
                voucher_refusal(staff.tr, e).map_err(|e| PageError::from_app(&staff, e))?;
            super::patients::render_for_membership(
                &app,
                &staff,
                key,
                status,
                MemberFormState {
                    open: "voucher".into(),
                    errors: vec![("voucher".into(), message)],
                    ..Default::default()
                },
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct VoucherActionForm {
    /// `card`: back to the member's card; else the lookup.
    #[serde(default)]
    back: String,
}

async fn voucher_action(
    app: App,
    cache: LoyaltyCache,
    staff: Staff,
    code: String,
    back: String,
    cancel: bool,
) -> PageResult {
    if !staff.may(Permission::MembersWrite) {
        return Err(PageError::forbidden(&staff));
    }
    let code = code.trim().to_uppercase();
    let outcome = if cancel {
        rewards::cancel(&app, &staff.actor(), &code).await
    } else {
        rewards::use_voucher(&app, &staff.actor(), &code).await
    };
    let done = if cancel { "cancelled" } else { "used" };
    let on_card = back == "card";
    match outcome {
        Ok(v) => {
            cache.clear();
            if on_card {
                let key = super::membership::patient_of_member(&app, &staff, v.member_id).await?;
                Ok(
                    Redirect::to(&format!("/patients/{key}?done=voucher_{done}#membership"))
                        .into_response(),
                )
            } else {
                Ok(
                    Redirect::to(&format!("/membership/rewards?voucher={code}&done={done}"))
                        .into_response(),
                )
            }
        }
        Err(e) => {
            let (status, message) =
                voucher_refusal(staff.tr, e).map_err(|e| PageError::from_app(&staff, e))?;
            if on_card && let Ok(v) = rewards::get(&app, &code).await {
                let key = super::membership::patient_of_member(&app, &staff, v.member_id).await?;
                return super::patients::render_for_membership(
                    &app,
                    &staff,
                    key,
                    status,
                    MemberFormState {
                        errors: vec![("voucher".into(), message)],
                        ..Default::default()
                    },
                )
                .await;
            }
            render(&app, &staff, status, None, None, code, Some(message)).await
        }
    }
}

async fn use_voucher(
    State(app): State<App>,
    Extension(cache): Extension<LoyaltyCache>,
    staff: Staff,
    Path(code): Path<String>,
    Form(f): Form<VoucherActionForm>,
) -> PageResult {
    voucher_action(app, cache, staff, code, f.back, false).await
}

async fn cancel_voucher(
    State(app): State<App>,
    Extension(cache): Extension<LoyaltyCache>,
    staff: Staff,
    Path(code): Path<String>,
    Form(f): Form<VoucherActionForm>,
) -> PageResult {
    voucher_action(app, cache, staff, code, f.back, true).await
}
