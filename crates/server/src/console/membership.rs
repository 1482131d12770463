//! Membership: the member list (filters, search, keyset pages), enrolment,
//! the tiers with their benefits (edited with `loyalty:manage`), the points
//! liability, and the membership card of the 360° page with the desk's
//! point actions.
//!
//! The section has sub-pages ([`SUBPAGES`], drawn as tabs): members and
//! tiers here; earning rules, rewards, referrals and reports in their own
//! modules (`loyalty`, `rewards`, `referrals`, `reports`), mounted with
//! this section's routes. A sub-page whose module is not in use yet is marked
//! `ready: false` and shows a labelled place, never invented figures.
//!
//! Every point-moving form carries an idempotency key chosen when the
//! page was drawn, so a double click or a resent form applies once: the
//! use case answers the second request with the first entry.

use std::sync::atomic::{AtomicU64, Ordering};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use rapport_app::console::{LoyaltyCache, Member};
use rapport_app::loyalty::points::{self, MAX_POINTS};
use rapport_app::loyalty::{self, MEMBER_TYPES, MemberFilter, STATUSES, StoredEntry, Tier, tiers};
use rapport_app::{App, AppError};
use rapport_domain::auth::Permission;
use rapport_domain::loyalty::FeeCategory;
use rapport_domain::loyalty::ledger::EntryKind;
use serde::Deserialize;

use super::guard::url_escape;
use super::i18n::Tr;
use super::{Layout, Page, PageError, PageResult, Section, Staff, html};

pub const PAGE: Page = Page {
    id: "membership",
    path: "/membership",
    title: "nav-membership",
    permission: Some(Permission::MembersRead),
    section: Section::Main,
    icon: "M2 6a2 2 0 0 1 2-2h16a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V6zm2 3v2h16V9H4zm0 5v2h6v-2H4z",
    routes,
};

/// A sub-page of the membership section (a tab).
pub struct SubPage {
    pub id: &'static str,
    pub path: &'static str,
    pub title: &'static str,
    /// What the tab needs beyond the section's `members:read`.
    pub permission: Option<Permission>,
    /// `false`: the module behind it is not in use yet; the tab shows a
    /// labelled place.
    pub ready: bool,
}

/// The membership section's sub-pages, in tab order.
pub static SUBPAGES: &[SubPage] = &[
    SubPage {
        id: "members",
        path: "/membership",
        title: "membership-tab-members",
        permission: None,
        ready: true,
    },
    SubPage {
        id: "tiers",
        path: "/membership/tiers",
        title: "membership-tab-tiers",
        permission: None,
        ready: true,
    },
    SubPage {
        id: "rules",
        path: "/membership/rules",
        title: "membership-tab-rules",
        permission: None,
        ready: true,
    },
    SubPage {
        id: "rewards",
        path: "/membership/rewards",
        title: "membership-tab-rewards",
        permission: None,
        ready: true,
    },
    SubPage {
        id: "referrals",
        path: "/membership/referrals",
        title: "membership-tab-referrals",
        permission: None,
        ready: true,
    },
    SubPage {
        id: "reports",
        path: "/membership/reports",
        title: "membership-tab-reports",
        permission: None,
        ready: true,
    },
];

fn routes() -> Router<App> {
    let mut r = Router::new()
        .route("/membership", get(members))
        .route("/membership/enrol", post(enrol))
        .route("/membership/tiers", get(tiers_page).post(save_tiers))
        .route("/membership/members/{id}/points", post(points_form))
        .route("/membership/members/{id}/adjust", post(adjust_form));
    for s in SUBPAGES.iter().filter(|s| !s.ready) {
        r = r.route(s.path, get(planned));
    }
    r.merge(super::loyalty::routes())
        .merge(super::rewards::routes())
        .merge(super::referrals::routes())
        .merge(super::reports::routes())
}

/// A tab of the section.
pub struct Tab {
    pub href: &'static str,
    pub label: String,
    pub current: bool,
    pub ready: bool,
}

pub fn tabs(staff: &Staff, current: &str) -> Vec<Tab> {
    SUBPAGES
        .iter()
        .filter(|s| s.permission.is_none_or(|p| staff.may(p)))
        .map(|s| Tab {
            href: s.path,
            label: staff.tr.t(s.title),
            current: s.id == current,
            ready: s.ready,
        })
        .collect()
}

/// The name of a tier as the reader sees it: the hospital's own name,
/// except that the four tiers shipped with the product keep their
/// translated names until the hospital renames them.
pub fn tier_label(tr: Tr, code: &str, name: &str) -> String {
    const SHIPPED: [(&str, &str); 4] = [
        ("standard", "Standard"),
        ("silver", "Silver"),
        ("gold", "Gold"),
        ("platinum", "Platinum"),
    ];
    if SHIPPED.iter().any(|(c, n)| *c == code && *n == name) {
        tr.t(&format!("tier-{code}"))
    } else {
        name.to_string()
    }
}

fn tier_name(tr: Tr, all: &[Tier], code: &str) -> String {
    all.iter()
        .find(|t| t.def.code == code)
        .map(|t| tier_label(tr, code, &t.name))
        .unwrap_or_else(|| code.to_string())
}

fn status_label(tr: Tr, s: &str) -> String {
    tr.t(&format!("member-status-{s}"))
}

/// A fresh idempotency key for a form: process, time and a counter, so
/// two forms never share one (across instances too).
pub fn new_key() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "desk-{}-{nanos:x}-{:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------- list

#[derive(Debug, Default, Deserialize)]
pub struct MemberFilterParams {
    q: Option<String>,
    tier: Option<String>,
    status: Option<String>,
    after: Option<String>,
    done: Option<String>,
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

pub struct MemberRowView {
    pub card_no: String,
    pub name: String,
    pub href: String,
    pub patient_id: String,
    pub tier: String,
    pub tier_code: String,
    pub status: String,
    pub available: String,
    pub lifetime: String,
    pub joined: String,
}

pub struct FilterChoice {
    pub code: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "console/membership.html")]
pub struct MembersPage {
    pub l: Layout,
    pub tabs: Vec<Tab>,
    pub q: String,
    pub tiers: Vec<FilterChoice>,
    pub statuses: Vec<FilterChoice>,
    pub member_types: Vec<FilterChoice>,
    pub rows: Vec<MemberRowView>,
    pub searching: bool,
    pub next: Option<String>,
    pub first: Option<String>,
    pub can_enrol: bool,
    pub enrol_patient: String,
    pub enrol_errors: Vec<(String, String)>,
    pub liability: String,
    pub members_total: String,
    pub figures_at: String,
}

async fn member_rows(
    app: &App,
    staff: &Staff,
    all: &[Tier],
    members: Vec<Member>,
) -> Result<Vec<MemberRowView>, AppError> {
    let tr = staff.tr;
    let keys: Vec<i64> = members.iter().map(|m| m.patient_key).collect();
    let patients = rapport_app::console::patient_rows(app, &keys).await?;
    Ok(members
        .into_iter()
        .map(|m| {
            let p = patients.iter().find(|p| p.id == m.patient_key);
            let name = match p {
                Some(p) if p.erased_at.is_some() => tr.t("patient-erased"),
                Some(p) if !p.name.is_empty() => p.name.clone(),
                _ => tr.t("patient-unnamed"),
            };
            MemberRowView {
                card_no: m.card_no.clone(),
                name,
                href: format!("/patients/{}#membership", m.patient_key),
                patient_id: m.patient_id.clone(),
                tier: tier_name(tr, all, &m.tier),
                tier_code: m.tier.clone(),
                status: status_label(tr, &m.status),
                available: tr.num(m.balance.available),
                lifetime: tr.num(m.balance.lifetime),
                joined: tr.date(m.joined_on),
            }
        })
        .collect())
}

async fn members(
    State(app): State<App>,
    Extension(cache): Extension<LoyaltyCache>,
    staff: Staff,
    Query(p): Query<MemberFilterParams>,
) -> PageResult {
    let notice = match p.done.as_deref() {
        Some("enrolled") => Some(staff.tr.t("member-enrolled")),
        _ => None,
    };
    render_members(
        &app,
        &cache,
        &staff,
        &p,
        StatusCode::OK,
        notice,
        String::new(),
        Vec::new(),
    )
    .await
}

/// Members per page of the list.
const MEMBERS_PAGE: i64 = 25;

#[allow(clippy::too_many_arguments)]
async fn render_members(
    app: &App,
    cache: &LoyaltyCache,
    staff: &Staff,
    p: &MemberFilterParams,
    status: StatusCode,
    notice: Option<String>,
    enrol_patient: String,
    enrol_errors: Vec<(String, String)>,
) -> PageResult {
    let tr = staff.tr;
    let err = |e| PageError::from_app(staff, e);
    let all = tiers::list(app).await.map_err(err)?;
    let q = nonempty(&p.q);
    let tier = nonempty(&p.tier).filter(|t| all.iter().any(|x| x.def.code == *t));
    let st = nonempty(&p.status).filter(|s| STATUSES.contains(&s.as_str()));
    let (members, next_cursor) = match &q {
        Some(text) => (
            rapport_app::console::find_members(app, text, MEMBERS_PAGE)
                .await
                .map_err(err)?,
            None,
        ),
        None => {
            let page = loyalty::list(
                app,
                &MemberFilter {
                    tier: tier.clone(),
                    status: st.clone(),
                    cursor: nonempty(&p.after).filter(|a| a.parse::<i64>().is_ok()),
                    limit: MEMBERS_PAGE,
                },
            )
            .await
            .map_err(err)?;
            (page.items, page.next_cursor)
        }
    };
    let rows = member_rows(app, staff, &all, members).await.map_err(err)?;
    let figures = cache.figures(app).await.map_err(err)?;
    let query = |after: Option<&str>| {
        let mut parts = Vec::new();
        if let Some(t) = &tier {
            parts.push(format!("tier={}", url_escape(t)));
        }
        if let Some(s) = &st {
            parts.push(format!("status={s}"));
        }
        if let Some(a) = after {
            parts.push(format!("after={a}"));
        }
        format!("/membership?{}", parts.join("&"))
    };
    let here = query(p.after.as_deref());
    let page = MembersPage {
        l: Layout::for_staff(staff, PAGE.id, tr.t(PAGE.title), &here).with_notice(notice),
        tabs: tabs(staff, "members"),
        searching: q.is_some(),
        q: q.clone().unwrap_or_default(),
        tiers: all
            .iter()
            .map(|t| FilterChoice {
                code: t.def.code.clone(),
                label: tier_label(tr, &t.def.code, &t.name),
                selected: tier.as_deref() == Some(t.def.code.as_str()),
            })
            .collect(),
        statuses: STATUSES
            .iter()
            .map(|s| FilterChoice {
                code: (*s).to_string(),
                label: status_label(tr, s),
                selected: st.as_deref() == Some(*s),
            })
            .collect(),
        member_types: MEMBER_TYPES
            .iter()
            .map(|s| FilterChoice {
                code: (*s).to_string(),
                label: tr.t(&format!("member-type-{}", s.replace('_', "-"))),
                selected: *s == "individual",
            })
            .collect(),
        rows,
        next: next_cursor.map(|c| query(Some(&c))),
        first: (nonempty(&p.after).is_some() && q.is_none()).then(|| query(None)),
        can_enrol: staff.may(Permission::MembersWrite),
        enrol_patient,
        enrol_errors,
        liability: tr.count("points-count", figures.liability),
        members_total: tr.num(figures.per_tier.iter().map(|(_, n)| *n).sum::<i64>()),
        figures_at: tr.datetime(figures.computed_at),
    };
    Ok(html(status, &page))
}

// ------------------------------------------------------------- enrolment

#[derive(Debug, Deserialize)]
pub struct EnrolForm {
    #[serde(default)]
    patient_id: String,
    #[serde(default)]
    member_type: String,
    /// The platform id of the patient when enrolled from the 360° page.
    #[serde(default)]
    from_patient: String,
    /// The referrer's code, when a member brought the patient.
    #[serde(default)]
    referral_code: String,
}

async fn enrol(
    State(app): State<App>,
    Extension(cache): Extension<LoyaltyCache>,
    staff: Staff,
    Form(f): Form<EnrolForm>,
) -> PageResult {
    if !staff.may(Permission::MembersWrite) {
        return Err(PageError::forbidden(&staff));
    }
    let tr = staff.tr;
    let member_type = Some(f.member_type.trim()).filter(|s| !s.is_empty());
    let referral = Some(f.referral_code.trim().to_uppercase()).filter(|s| !s.is_empty());
    let error = match loyalty::enrol(
        &app,
        &staff.actor(),
        f.patient_id.trim(),
        member_type,
        referral.as_deref(),
    )
    .await
    {
        Ok(v) => {
            cache.clear();
            return Ok(Redirect::to(&format!(
                "/patients/{}?done=enrolled#membership",
                v.member.patient_key
            ))
            .into_response());
        }
        Err(AppError::NotFound("patient")) => tr.t("member-error-no-patient"),
        Err(AppError::Conflict {
            code: "already_member",
            ..
        }) => tr.t("member-error-already"),
        Err(AppError::Conflict { code, .. })
            if code.starts_with("referral_")
                || code == "referrer_inactive"
                || code == "already_referred" =>
        {
            tr.t(&format!("enrol-error-{}", code.replace('_', "-")))
        }
        Err(AppError::Validation(v)) if v.0.iter().any(|e| e.field == "referral_code") => {
            tr.t("enrol-error-unknown-referral-code")
        }
        Err(AppError::Validation(v)) => {
            v.0.first()
                .map(|e| super::field_error(tr, e).1)
                .unwrap_or_default()
        }
        Err(e) => return Err(PageError::from_app(&staff, e)),
    };
    if let Ok(key) = f.from_patient.parse::<i64>() {
        return super::patients::render_for_membership(
            &app,
            &staff,
            key,
            StatusCode::CONFLICT,
            MemberFormState {
                errors: vec![("enrol".into(), error)],
                ..Default::default()
            },
        )
        .await;
    }
    render_members(
        &app,
        &cache,
        &staff,
        &MemberFilterParams::default(),
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        f.patient_id,
        vec![("patient_id".into(), error)],
    )
    .await
}

// ------------------------------------------------------------ the card

/// What the desk's point forms show after a refused submission.
#[derive(Debug, Default, Clone)]
pub struct MemberFormState {
    /// `points`, `adjust`, `voucher` or `price`: which form to open.
    pub open: String,
    /// The code of a voucher just issued.
    pub new_voucher: String,
    /// The price quote's lines, result and errors.
    pub price_lines: Vec<super::loyalty::LineForm>,
    pub price: Option<super::loyalty::PriceView>,
    pub price_errors: super::loyalty::FieldErrors,
    pub kind: String,
    pub points: String,
    pub reason: String,
    pub errors: Vec<(String, String)>,
}

pub struct LedgerRow {
    pub at: String,
    pub kind: String,
    pub kind_code: &'static str,
    pub delta: String,
    pub balance: String,
    pub reason: String,
    pub by: String,
}

pub struct TierChangeRow {
    pub on: String,
    pub change: String,
    pub from: String,
    pub to: String,
}

/// The membership card of the 360° page.
pub struct MemberCard {
    pub id: i64,
    pub card_no: String,
    pub tier: String,
    pub tier_code: String,
    pub status: String,
    pub active: bool,
    pub member_type: String,
    pub joined: String,
    pub available: String,
    pub available_raw: i64,
    pub qualifying: String,
    pub lifetime: String,
    /// "320 points to Gold", or that the top tier is reached.
    pub next_tier: String,
    /// 0–100: progress towards the next tier.
    pub progress: i64,
    pub ledger: Vec<LedgerRow>,
    pub more_ledger: bool,
    pub history: Vec<TierChangeRow>,
    pub can_move_points: bool,
    pub can_adjust: bool,
    pub key_points: String,
    pub key_adjust: String,
    pub form: MemberFormState,
    /// Rewards the member can redeem now, for the redeem form.
    pub rewards: Vec<super::loyalty::SelectOption>,
    pub vouchers: Vec<super::rewards::VoucherView>,
    pub key_voucher: String,
    /// The voucher just issued, to point at.
    pub new_voucher: String,
    pub referral: super::referrals::MemberReferrals,
    pub price_lines: Vec<super::loyalty::LineForm>,
    pub price_categories: Vec<Vec<super::loyalty::SelectOption>>,
}

/// The membership part of the 360° page.
pub enum Membership {
    /// The role may not read memberships.
    Hidden,
    /// Not a member; `can_enrol` when the reader may enrol them.
    None {
        can_enrol: bool,
    },
    Member(Box<MemberCard>),
}

impl Membership {
    pub fn card(&self) -> Option<&MemberCard> {
        match self {
            Membership::Member(c) => Some(c),
            _ => None,
        }
    }

    pub fn hidden(&self) -> bool {
        matches!(self, Membership::Hidden)
    }

    pub fn can_enrol(&self) -> bool {
        matches!(self, Membership::None { can_enrol: true })
    }
}

/// Entries shown on the card.
const CARD_LEDGER: i64 = 10;

fn entry_row(tr: Tr, e: StoredEntry) -> LedgerRow {
    let code = match e.entry.kind {
        EntryKind::Earn { .. } => "earn",
        EntryKind::Redeem => "redeem",
        EntryKind::Expire { .. } => "expire",
        EntryKind::Adjust { .. } => "adjust",
        EntryKind::Reverse { .. } => "reverse",
    };
    let by = match &e.entry.actor {
        rapport_domain::loyalty::ledger::Actor::Staff(s) => s.clone(),
        rapport_domain::loyalty::ledger::Actor::Rule(r) => r.clone(),
        rapport_domain::loyalty::ledger::Actor::System => tr.t("ledger-by-system"),
    };
    LedgerRow {
        at: tr.datetime(e.entry.at),
        kind: tr.t(&format!("ledger-kind-{code}")),
        kind_code: code,
        delta: if e.delta > 0 {
            format!("+{}", tr.num(e.delta))
        } else {
            tr.num(e.delta)
        },
        balance: tr.num(e.balance_after),
        reason: e.entry.reason,
        by,
    }
}

/// The membership of patient `key` as the 360° page shows it.
pub async fn card(
    app: &App,
    staff: &Staff,
    key: i64,
    form: MemberFormState,
) -> Result<(Membership, MemberFormState), AppError> {
    if !staff.may(Permission::MembersRead) {
        return Ok((Membership::Hidden, form));
    }
    let Some(v) = loyalty::of_patient(app, key).await? else {
        return Ok((
            Membership::None {
                can_enrol: staff.may(Permission::MembersWrite),
            },
            form,
        ));
    };
    let tr = staff.tr;
    let m = v.member;
    let (all, ledger, history, catalogue, vouchers) = tokio::join!(
        tiers::list(app),
        loyalty::ledger(app, m.id, None, CARD_LEDGER),
        loyalty::tier_history(app, m.id),
        loyalty::rewards::list(app),
        loyalty::rewards::of_member(app, m.id),
    );
    let (all, ledger, history, catalogue, vouchers) =
        (all?, ledger?, history?, catalogue?, vouchers?);
    let now = app.now();
    let current_rank = all
        .iter()
        .find(|t| t.def.code == m.tier)
        .map(|t| t.def.rank);
    let next = all
        .iter()
        .filter(|t| current_rank.is_none_or(|r| t.def.rank > r))
        .min_by_key(|t| t.def.rank);
    let (next_tier, progress) = match next {
        Some(t) => {
            let missing = (t.def.threshold_qualifying - v.qualifying_12m).max(0);
            let mut args = fluent_bundle::FluentArgs::new();
            args.set("tier", tier_label(tr, &t.def.code, &t.name));
            args.set("count", missing);
            args.set("points", tr.num(missing));
            (
                tr.args("member-next-tier", &args),
                if t.def.threshold_qualifying > 0 {
                    (v.qualifying_12m * 100 / t.def.threshold_qualifying).clamp(0, 100)
                } else {
                    100
                },
            )
        }
        None => (tr.t("member-top-tier"), 100),
    };
    let active = m.status == "active";
    let price_lines = if form.price_lines.is_empty() {
        super::loyalty::blank_lines()
    } else {
        form.price_lines.clone()
    };
    let card = MemberCard {
        id: m.id,
        card_no: m.card_no.clone(),
        tier: tier_name(tr, &all, &m.tier),
        tier_code: m.tier.clone(),
        status: status_label(tr, &m.status),
        active,
        member_type: tr.t(&format!("member-type-{}", m.member_type.replace('_', "-"))),
        joined: tr.date(m.joined_on),
        available: tr.num(m.balance.available),
        available_raw: m.balance.available,
        qualifying: tr.num(v.qualifying_12m),
        lifetime: tr.num(m.balance.lifetime),
        next_tier,
        progress,
        more_ledger: ledger.next_cursor.is_some(),
        ledger: ledger.items.into_iter().map(|e| entry_row(tr, e)).collect(),
        history: history
            .into_iter()
            .take(10)
            .map(|h| TierChangeRow {
                on: tr.date(h.on),
                change: tr.t(&format!("tier-change-{}", h.change)),
                from: h
                    .from
                    .as_deref()
                    .map(|c| tier_name(tr, &all, c))
                    .unwrap_or_default(),
                to: tier_name(tr, &all, &h.to),
            })
            .collect(),
        can_move_points: staff.may(Permission::MembersWrite) && active,
        can_adjust: staff.may(Permission::LoyaltyManage),
        key_points: new_key(),
        key_adjust: new_key(),
        form: form.clone(),
        rewards: catalogue
            .iter()
            .filter(|r| r.redeemable_at(now).is_ok())
            .map(|r| super::loyalty::SelectOption {
                code: r.code.clone(),
                label: format!("{} · {}", r.name, tr.count("points-count", r.cost_points)),
                selected: false,
            })
            .collect(),
        vouchers: vouchers
            .iter()
            .take(20)
            .map(|v| super::rewards::voucher_view(tr, v, &catalogue, now))
            .collect(),
        key_voucher: new_key(),
        new_voucher: form.new_voucher.clone(),
        referral: super::referrals::of_member(app, staff, m.id).await?,
        price_categories: price_lines
            .iter()
            .map(|l| super::loyalty::category_choices(tr, &l.category))
            .collect(),
        price_lines,
    };
    Ok((Membership::Member(Box::new(card)), form))
}

#[derive(Debug, Deserialize)]
pub struct PointsForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    points: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    idempotency_key: String,
}

/// Whole points from a form field (`1,200`, `1.200` and `1 200` read as
/// 1200).
fn parse_points(s: &str) -> Option<i64> {
    let digits: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, ',' | '.' | ' ' | '\u{a0}'))
        .collect();
    let (neg, digits) = match digits.strip_prefix('-') {
        Some(d) => (true, d.to_string()),
        None => (
            false,
            digits.strip_prefix('+').unwrap_or(&digits).to_string(),
        ),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 12 {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    Some(if neg { -n } else { n })
}

pub async fn member_of(app: &App, staff: &Staff, id: &str) -> Result<i64, PageError> {
    let id = id.parse::<i64>().map_err(|_| PageError::not_found(staff))?;
    patient_of_member(app, staff, id).await
}

/// The patient (platform id) of member `id`.
pub async fn patient_of_member(app: &App, staff: &Staff, id: i64) -> Result<i64, PageError> {
    let v = loyalty::get(app, id)
        .await
        .map_err(|e| PageError::from_app(staff, e))?;
    Ok(v.member.patient_key)
}

/// What a refused point write tells the desk, and its status.
fn refusal(tr: Tr, e: AppError, available: Option<i64>) -> Result<(StatusCode, String), AppError> {
    Ok(match e {
        AppError::Conflict {
            code: "insufficient_points",
            ..
        } => (
            StatusCode::CONFLICT,
            tr.t1(
                "member-error-insufficient",
                "available",
                tr.num(available.unwrap_or(0)),
            ),
        ),
        AppError::Conflict {
            code: "member_inactive",
            ..
        } => (StatusCode::CONFLICT, tr.t("member-error-inactive")),
        AppError::Conflict {
            code: "idempotency_key_reused",
            ..
        } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            tr.t("member-error-key-reused"),
        ),
        AppError::Validation(v) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            v.0.iter()
                .map(|e| match e.field.as_str() {
                    "points" | "delta" => tr.t("member-error-points"),
                    "reason" => tr.t("member-error-reason"),
                    _ => super::field_error(tr, e).1,
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        e => return Err(e),
    })
}

async fn points_form(
    State(app): State<App>,
    Extension(cache): Extension<LoyaltyCache>,
    staff: Staff,
    Path(id): Path<String>,
    Form(f): Form<PointsForm>,
) -> PageResult {
    if !staff.may(Permission::MembersWrite) {
        return Err(PageError::forbidden(&staff));
    }
    let key = member_of(&app, &staff, &id).await?;
    let member_id: i64 = id.parse().unwrap_or(0);
    let tr = staff.tr;
    let points = parse_points(&f.points).filter(|p| (1..=MAX_POINTS).contains(p));
    let outcome = match points {
        Some(n) => {
            points::earn_or_redeem(
                &app,
                &staff.actor(),
                member_id,
                &f.kind,
                n,
                f.reason.trim(),
                &f.idempotency_key,
            )
            .await
        }
        None => Err(AppError::Validation(
            rapport_domain::ValidationErrors::single("points", "out_of_range", "points"),
        )),
    };
    match outcome {
        Ok(p) => {
            cache.clear();
            let done = if f.kind == "redeem" {
                "redeemed"
            } else {
                "earned"
            };
            let tier = if p.new_tier.is_some() { "&tier=up" } else { "" };
            Ok(
                Redirect::to(&format!("/patients/{key}?done={done}{tier}#membership"))
                    .into_response(),
            )
        }
        Err(e) => {
            let available = loyalty::get(&app, member_id)
                .await
                .ok()
                .map(|v| v.member.balance.available);
            let (status, message) =
                refusal(tr, e, available).map_err(|e| PageError::from_app(&staff, e))?;
            super::patients::render_for_membership(
                &app,
                &staff,
                key,
                status,
                MemberFormState {
                    open: "points".into(),
                    kind: f.kind,
                    points: f.points,
                    reason: f.reason,
                    errors: vec![("points".into(), message)],
                    ..Default::default()
                },
            )
            .await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AdjustForm {
    #[serde(default)]
    delta: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    idempotency_key: String,
}

async fn adjust_form(
    State(app): State<App>,
    Extension(cache): Extension<LoyaltyCache>,
    staff: Staff,
    Path(id): Path<String>,
    Form(f): Form<AdjustForm>,
) -> PageResult {
    if !staff.may(Permission::LoyaltyManage) {
        return Err(PageError::forbidden(&staff));
    }
    let key = member_of(&app, &staff, &id).await?;
    let member_id: i64 = id.parse().unwrap_or(0);
    let outcome = match parse_points(&f.delta).filter(|d| *d != 0 && d.abs() <= MAX_POINTS) {
        Some(d) => {
            points::adjust(
                &app,
                &staff.actor(),
                member_id,
                d,
                f.reason.trim(),
                &f.idempotency_key,
            )
            .await
        }
        None => Err(AppError::Validation(
            rapport_domain::ValidationErrors::single("delta", "out_of_range", "delta"),
        )),
    };
    match outcome {
        Ok(_) => {
            cache.clear();
            Ok(Redirect::to(&format!("/patients/{key}?done=adjusted#membership")).into_response())
        }
        Err(e) => {
            let available = loyalty::get(&app, member_id)
                .await
                .ok()
                .map(|v| v.member.balance.available);
            let (status, message) =
                refusal(staff.tr, e, available).map_err(|e| PageError::from_app(&staff, e))?;
            super::patients::render_for_membership(
                &app,
                &staff,
                key,
                status,
                MemberFormState {
                    open: "adjust".into(),
                    kind: String::new(),
                    points: f.delta,
                    reason: f.reason,
                    errors: vec![("delta".into(), message)],
                    ..Default::default()
                },
            )
            .await
        }
    }
}

// ---------------------------------------------------------------- tiers

pub struct TierView {
    pub index: usize,
    pub code: String,
    pub rank: u32,
    pub name: String,
    pub label: String,
    pub threshold: String,
    pub threshold_raw: i64,
    pub members: String,
    pub discounts: Vec<(String, String, String)>,
    pub perks: Vec<(String, String, bool)>,
}

#[derive(Template)]
#[template(path = "console/membership_tiers.html")]
pub struct TiersPage {
    pub l: Layout,
    pub tabs: Vec<Tab>,
    pub tiers: Vec<TierView>,
    pub chart: String,
    pub liability: String,
    pub figures_at: String,
    pub can_edit: bool,
    pub errors: Vec<(String, String)>,
}

const CATEGORIES: [(FeeCategory, &str); 5] = [
    (FeeCategory::Registration, "registration"),
    (FeeCategory::Examination, "examination"),
    (FeeCategory::Treatment, "treatment"),
    (FeeCategory::Hospitalisation, "hospitalisation"),
    (FeeCategory::CheckUp, "check-up"),
];

const PERKS: [&str; 4] = [
    "priority-lane",
    "exclusive-doctor",
    "home-visits",
    "free-annual-check-up",
];

/// Basis points as a percentage for a form (`500` → `5`, `250` → `2.5`).
fn bp_text(bp: u32) -> String {
    if bp.is_multiple_of(100) {
        (bp / 100).to_string()
    } else {
        let s = format!("{}.{:02}", bp / 100, bp % 100);
        s.trim_end_matches('0').to_string()
    }
}

/// A percentage from a form as basis points (`5` → 500, `2,5` → 250).
fn parse_pct(s: &str) -> Option<u32> {
    let s = s.trim().replace(',', ".");
    if s.is_empty() {
        return Some(0);
    }
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
        || int.len() > 3
    {
        return None;
    }
    let int: u32 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: u32 = format!("{frac:0<2}").parse().ok()?;
    let bp = int * 100 + frac;
    (bp <= 10_000).then_some(bp)
}

#[derive(Deserialize, Default)]
pub struct TiersNotice {
    done: Option<String>,
    evaluated: Option<u64>,
    moved: Option<u64>,
}

async fn tiers_page(
    State(app): State<App>,
    Extension(cache): Extension<LoyaltyCache>,
    staff: Staff,
    Query(n): Query<TiersNotice>,
) -> PageResult {
    let notice = (n.done.as_deref() == Some("saved")).then(|| {
        let tr = staff.tr;
        let mut args = fluent_bundle::FluentArgs::new();
        args.set("evaluated", tr.num(n.evaluated.unwrap_or(0)));
        args.set("moved", n.moved.unwrap_or(0));
        args.set("moved_n", tr.num(n.moved.unwrap_or(0)));
        tr.args("tiers-saved", &args)
    });
    render_tiers(&app, &cache, &staff, StatusCode::OK, notice, Vec::new()).await
}

async fn render_tiers(
    app: &App,
    cache: &LoyaltyCache,
    staff: &Staff,
    status: StatusCode,
    notice: Option<String>,
    errors: Vec<(String, String)>,
) -> PageResult {
    let tr = staff.tr;
    let err = |e| PageError::from_app(staff, e);
    let all = tiers::list(app).await.map_err(err)?;
    let figures = cache.figures(app).await.map_err(err)?;
    let count = |code: &str| {
        figures
            .per_tier
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let views: Vec<TierView> = all
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let b = &t.def.benefits;
            TierView {
                index: i,
                code: t.def.code.clone(),
                rank: t.def.rank,
                name: t.name.clone(),
                label: tier_label(tr, &t.def.code, &t.name),
                threshold: tr.count("points-count", t.def.threshold_qualifying),
                threshold_raw: t.def.threshold_qualifying,
                members: tr.num(count(&t.def.code)),
                discounts: CATEGORIES
                    .iter()
                    .map(|(c, key)| {
                        let bp = b.discount_bp(*c);
                        (
                            key.to_string(),
                            tr.t(&format!("fee-{key}")),
                            if bp == 0 { String::new() } else { bp_text(bp) },
                        )
                    })
                    .collect(),
                perks: PERKS
                    .iter()
                    .zip([
                        b.priority_lane,
                        b.exclusive_doctor,
                        b.home_visits,
                        b.free_annual_check_up,
                    ])
                    .map(|(k, on)| (k.to_string(), tr.t(&format!("perk-{k}")), on))
                    .collect(),
            }
        })
        .collect();
    let bars: Vec<super::charts::HBar> = all
        .iter()
        .map(|t| super::charts::HBar {
            label: tier_label(tr, &t.def.code, &t.name),
            value: count(&t.def.code).max(0) as u64,
            class: format!("tier-bar tier-{}", t.def.rank.min(5)),
            note: String::new(),
        })
        .collect();
    let page = TiersPage {
        l: Layout::for_staff(
            staff,
            PAGE.id,
            tr.t("membership-tab-tiers"),
            "/membership/tiers",
        )
        .with_notice(notice),
        tabs: tabs(staff, "tiers"),
        chart: super::charts::hbars(tr, "svg-tiers", &tr.t("chart-tiers-title"), &bars),
        tiers: views,
        liability: tr.count("points-count", figures.liability),
        figures_at: tr.datetime(figures.computed_at),
        can_edit: staff.may(Permission::LoyaltyManage),
        errors,
    };
    Ok(html(status, &page))
}

async fn save_tiers(
    State(app): State<App>,
    Extension(cache): Extension<LoyaltyCache>,
    staff: Staff,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult {
    if !staff.may(Permission::LoyaltyManage) {
        return Err(PageError::forbidden(&staff));
    }
    let tr = staff.tr;
    let field = |i: usize, name: &str| -> Option<&str> {
        let key = format!("t{i}_{name}");
        pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    };
    let current = tiers::list(&app)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, t) in current.iter().enumerate() {
        let label = tier_label(tr, &t.def.code, &t.name);
        let mut tier = t.clone();
        if let Some(name) = field(i, "name") {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 50 {
                errors.push((
                    format!("t{i}_name"),
                    format!("{label}: {}", tr.t("tiers-error-name")),
                ));
            } else {
                tier.name = name.to_string();
            }
        }
        if let Some(th) = field(i, "threshold") {
            match parse_points(th).filter(|n| *n >= 0) {
                Some(n) => tier.def.threshold_qualifying = n,
                None => errors.push((
                    format!("t{i}_threshold"),
                    format!("{label}: {}", tr.t("tiers-error-threshold")),
                )),
            }
        }
        let mut discounts = Vec::new();
        for (c, key) in CATEGORIES {
            match parse_pct(field(i, &format!("d_{key}")).unwrap_or("")) {
                Some(0) => {}
                Some(bp) => discounts.push((c, bp)),
                None => errors.push((
                    format!("t{i}_d_{key}"),
                    format!("{label}: {}", tr.t("tiers-error-discount")),
                )),
            }
        }
        tier.def.benefits.discounts_bp = discounts;
        let on = |k: &str| field(i, k).is_some();
        tier.def.benefits.priority_lane = on("priority-lane");
        tier.def.benefits.exclusive_doctor = on("exclusive-doctor");
        tier.def.benefits.home_visits = on("home-visits");
        tier.def.benefits.free_annual_check_up = on("free-annual-check-up");
        out.push(tier);
    }
    if errors.is_empty() {
        match tiers::replace(&app, &staff.actor(), out).await {
            Ok(r) => {
                cache.clear();
                return Ok(Redirect::to(&format!(
                    "/membership/tiers?done=saved&evaluated={}&moved={}",
                    r.evaluated, r.moved
                ))
                .into_response());
            }
            Err(AppError::Validation(v)) => {
                errors =
                    v.0.iter()
                        .map(|e| {
                            let (f, m) = super::field_error(tr, e);
                            if e.code == "invalid_tiers" {
                                (f, tr.t("tiers-error-order"))
                            } else {
                                (f, m)
                            }
                        })
                        .collect();
            }
            Err(e) => return Err(PageError::from_app(&staff, e)),
        }
    }
    render_tiers(
        &app,
        &cache,
        &staff,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        errors,
    )
    .await
}

// -------------------------------------------------------------- planned

#[derive(Template)]
#[template(path = "console/membership_planned.html")]
pub struct PlannedPage {
    pub l: Layout,
    pub tabs: Vec<Tab>,
    pub heading: String,
    pub text: String,
}

async fn planned(staff: Staff, uri: axum::http::Uri) -> PageResult {
    let tr = staff.tr;
    let Some(s) = SUBPAGES.iter().find(|s| s.path == uri.path()) else {
        return Err(PageError::not_found(&staff));
    };
    Ok(html(
        StatusCode::OK,
        &PlannedPage {
            l: Layout::for_staff(&staff, PAGE.id, tr.t(s.title), s.path),
            tabs: tabs(&staff, s.id),
            heading: tr.t(s.title),
            text: tr.t(&format!("membership-planned-{}", s.id)),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_numbers() {
        assert_eq!(parse_points("1,200"), Some(1200));
        assert_eq!(parse_points(" 50 "), Some(50));
        assert_eq!(parse_points("-30"), Some(-30));
        assert_eq!(parse_points("+30"), Some(30));
        assert_eq!(parse_points("1e3"), None);
        assert_eq!(parse_points(""), None);
        assert_eq!(parse_pct("5"), Some(500));
        assert_eq!(parse_pct("2,5"), Some(250));
        assert_eq!(parse_pct("0.25"), Some(25));
        assert_eq!(parse_pct(""), Some(0));
        assert_eq!(parse_pct("101"), None);
        assert_eq!(parse_pct("1.234"), None);
        assert_eq!(bp_text(500), "5");
        assert_eq!(bp_text(250), "2.5");
        assert_eq!(bp_text(25), "0.25");
    }

    #[test]
    fn keys_differ() {
        assert_ne!(new_key(), new_key());
    }
}
