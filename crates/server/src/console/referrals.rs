//! Member-gets-member in the console: the referrals sub-page (each
//! referrer's funnel and the programme's referral reward) and the
//! referral part of the membership card (the member's code, made on
//! request, and the patients they brought).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use rapport_app::loyalty::{referrals, reports};
use rapport_app::{App, AppError};
use rapport_domain::auth::Permission;
use serde::Deserialize;

use super::loyalty::{FieldErrors, Pairs, field, form_errors, parse_int};
use super::membership::{PAGE, Tab, tabs};
use super::{Layout, PageError, PageResult, Staff, html};

pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/membership/referrals",
            get(referrals_page).post(save_reward),
        )
        .route("/membership/members/{id}/referral-code", post(make_code))
}

fn patient_name(tr: super::i18n::Tr, p: Option<&rapport_app::console::ListRow>) -> String {
    match p {
        Some(p) if p.erased_at.is_some() => tr.t("patient-erased"),
        Some(p) if !p.name.is_empty() => p.name.clone(),
        _ => tr.t("patient-unnamed"),
    }
}

pub struct ReferredRow {
    pub name: String,
    pub href: String,
    pub status: String,
    pub status_code: String,
    pub registered: String,
}

/// The referral part of the membership card.
#[derive(Default)]
pub struct MemberReferrals {
    pub code: Option<String>,
    pub can_make_code: bool,
    pub invited: String,
    pub registered: String,
    pub first_visit: String,
    pub rewarded: String,
    pub referred: Vec<ReferredRow>,
}

pub async fn of_member(
    app: &App,
    staff: &Staff,
    member_id: i64,
) -> Result<MemberReferrals, AppError> {
    let tr = staff.tr;
    let f = referrals::funnel(app, member_id).await?;
    let keys: Vec<i64> = f
        .referrals
        .iter()
        .take(20)
        .map(|r| r.referred_patient_key)
        .collect();
    let rows = rapport_app::console::patient_rows(app, &keys).await?;
    Ok(MemberReferrals {
        can_make_code: f.code.is_none() && staff.may(Permission::MembersWrite),
        code: f.code,
        invited: tr.num(f.invited),
        registered: tr.num(f.registered),
        first_visit: tr.num(f.first_visit),
        rewarded: tr.num(f.rewarded),
        referred: f
            .referrals
            .iter()
            .take(20)
            .map(|r| ReferredRow {
                name: patient_name(tr, rows.iter().find(|p| p.id == r.referred_patient_key)),
                href: format!("/patients/{}", r.referred_patient_key),
                status: tr.t(&format!("referral-status-{}", r.status.replace('_', "-"))),
                status_code: r.status.clone(),
                registered: tr.date(super::loyalty::local_day(r.registered_at)),
            })
            .collect(),
    })
}

async fn make_code(State(app): State<App>, staff: Staff, Path(id): Path<String>) -> PageResult {
    if !staff.may(Permission::MembersWrite) {
        return Err(PageError::forbidden(&staff));
    }
    let member_id: i64 = id.parse().map_err(|_| PageError::not_found(&staff))?;
    let err = |e| PageError::from_app(&staff, e);
    let key = super::membership::patient_of_member(&app, &staff, member_id).await?;
    referrals::code(&app, &staff.actor(), member_id)
        .await
        .map_err(err)?;
    Ok(Redirect::to(&format!("/patients/{key}?done=referral_code#referrals")).into_response())
}

// ---------------------------------------------------------------- page

pub struct ReferrerView {
    pub name: String,
    pub href: String,
    pub code: String,
    pub invited: String,
    pub registered: String,
    pub first_visit: String,
    pub rewarded: String,
}

#[derive(Template)]
#[template(path = "console/membership_referrals.html")]
pub struct ReferralsPage {
    pub l: Layout,
    pub tabs: Vec<Tab>,
    pub referrers: Vec<ReferrerView>,
    pub reward: String,
    pub reward_raw: String,
    pub can_manage: bool,
    pub errors: FieldErrors,
}

#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
}

/// Referrers listed on the page.
const REFERRERS: i64 = 200;

async fn referrals_page(State(app): State<App>, staff: Staff, Query(d): Query<Done>) -> PageResult {
    let notice = (d.done.as_deref() == Some("saved")).then(|| staff.tr.t("referrals-saved"));
    render(
        &app,
        &staff,
        StatusCode::OK,
        notice,
        None,
        FieldErrors::default(),
    )
    .await
}

async fn render(
    app: &App,
    staff: &Staff,
    status: StatusCode,
    notice: Option<String>,
    typed: Option<String>,
    errors: FieldErrors,
) -> PageResult {
    let tr = staff.tr;
    let err = |e| PageError::from_app(staff, e);
    let (list, settings) =
        tokio::join!(referrals::referrers(app, REFERRERS), reports::settings(app));
    let (list, settings) = (list.map_err(err)?, settings.map_err(err)?);
    let keys: Vec<i64> = list.iter().map(|r| r.patient_key).collect();
    let rows = rapport_app::console::patient_rows(app, &keys)
        .await
        .map_err(err)?;
    let page = ReferralsPage {
        l: Layout::for_staff(
            staff,
            PAGE.id,
            tr.t("membership-tab-referrals"),
            "/membership/referrals",
        )
        .with_notice(notice),
        tabs: tabs(staff, "referrals"),
        referrers: list
            .iter()
            .map(|r| ReferrerView {
                name: patient_name(tr, rows.iter().find(|p| p.id == r.patient_key)),
                href: format!("/patients/{}#referrals", r.patient_key),
                code: r.code.clone(),
                invited: tr.num(r.invited),
                registered: tr.num(r.registered),
                first_visit: tr.num(r.first_visit),
                rewarded: tr.num(r.rewarded),
            })
            .collect(),
        reward: tr.count("points-count", settings.referral_reward_points),
        reward_raw: typed.unwrap_or_else(|| settings.referral_reward_points.to_string()),
        can_manage: staff.may(Permission::LoyaltyManage),
        errors,
    };
    Ok(html(status, &page))
}

async fn save_reward(State(app): State<App>, staff: Staff, Form(p): Form<Pairs>) -> PageResult {
    if !staff.may(Permission::LoyaltyManage) {
        return Err(PageError::forbidden(&staff));
    }
    let tr = staff.tr;
    let typed = field(&p, "referral_reward_points").to_string();
    let mut errors = FieldErrors::default();
    match parse_int(&typed) {
        None => errors.push("referral_reward_points", tr.t("loyalty-error-whole-number")),
        Some(n) => {
            let mut s = reports::settings(&app)
                .await
                .map_err(|e| PageError::from_app(&staff, e))?;
            s.referral_reward_points = n;
            match reports::set_settings(&app, &staff.actor(), s).await {
                Ok(_) => {
                    return Ok(Redirect::to("/membership/referrals?done=saved").into_response());
                }
                Err(e) => {
                    errors = form_errors(tr, e, &[]).map_err(|e| PageError::from_app(&staff, e))?;
                }
            }
        }
    }
    render(
        &app,
        &staff,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        Some(typed),
        errors,
    )
    .await
}
