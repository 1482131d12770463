//! The programme's sub-pages of the membership section: earning rules and
//! campaigns with the earn quote, the rewards catalogue with the voucher
//! lookup, the referral funnels with the referral reward, and the
//! reports (liability, tiers per month, points per month).
//!
//! Handlers read the form, call one use case of `app::loyalty` and draw
//! the page; refusals come back as the app's field paths and are shown
//! next to the field they name. Changing the programme needs
//! `loyalty:manage`; the pages draw no edit controls without it.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rapport_app::loyalty::earning::{self, CampaignInput, QuoteLine, RuleInput};
use rapport_app::loyalty::{MEMBER_TYPES, Tier, tiers};
use rapport_app::{App, AppError};
use rapport_domain::Money;
use rapport_domain::auth::Permission;
use rapport_domain::loyalty::FeeCategory;
use rapport_domain::loyalty::earning::{CampaignEffect, PointsQuote};
use serde::Deserialize;

use super::i18n::Tr;
use super::membership::{PAGE, Tab, tabs, tier_label};
use super::{Layout, PageError, PageResult, Staff, html};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/membership/rules", get(rules_page).post(save_rule))
        .route("/membership/rules/{code}/delete", post(delete_rule))
        .route("/membership/campaigns", post(save_campaign))
        .route("/membership/campaigns/{code}/delete", post(delete_campaign))
        .route("/membership/rules/quote", post(earn_quote))
        .route("/membership/members/{id}/price-quote", post(price_quote))
}

// ---------------------------------------------------------------- forms

/// The pairs of a submitted form.
pub type Pairs = Vec<(String, String)>;

/// A field of a form, trimmed ("" when absent).
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .unwrap_or("")
}

/// A field of a form, `None` when empty.
pub fn opt_field(pairs: &[(String, String)], name: &str) -> Option<String> {
    Some(field(pairs, name))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The errors of a form, by field name, in the reader's language.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors(pub Vec<(String, String)>);

impl FieldErrors {
    /// The message for `field` ("" when it has none).
    pub fn of(&self, field: &str) -> &str {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
            .unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn push(&mut self, field: &str, message: String) {
        self.0.push((field.to_string(), message));
    }

    /// The messages not shown next to any of `shown`.
    pub fn others(&self, shown: &[&str]) -> Vec<String> {
        self.0
            .iter()
            .filter(|(f, _)| !shown.contains(&f.as_str()))
            .map(|(_, m)| m.clone())
            .collect()
    }
}

/// An option of a select.
pub struct SelectOption {
    pub code: String,
    pub label: String,
    pub selected: bool,
}

fn choices(items: Vec<(String, String)>, current: &str) -> Vec<SelectOption> {
    items
        .into_iter()
        .map(|(code, label)| SelectOption {
            selected: code == current,
            code,
            label,
        })
        .collect()
}

pub fn category_label(tr: Tr, c: FeeCategory) -> String {
    tr.t(&format!("fee-{}", c.as_str().replace('_', "-")))
}

pub fn category_choices(tr: Tr, current: &str) -> Vec<SelectOption> {
    choices(
        FeeCategory::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), category_label(tr, *c)))
            .collect(),
        current,
    )
}

fn member_type_label(tr: Tr, t: &str) -> String {
    tr.t(&format!("member-type-{}", t.replace('_', "-")))
}

fn member_type_choices(tr: Tr, current: &str) -> Vec<SelectOption> {
    choices(
        MEMBER_TYPES
            .iter()
            .map(|t| (t.to_string(), member_type_label(tr, t)))
            .collect(),
        current,
    )
}

fn tier_choices(tr: Tr, all: &[Tier], current: &str) -> Vec<SelectOption> {
    choices(
        all.iter()
            .map(|t| (t.def.code.clone(), tier_label(tr, &t.def.code, &t.name)))
            .collect(),
        current,
    )
}

fn tier_text(tr: Tr, all: &[Tier], code: &str) -> String {
    all.iter()
        .find(|t| t.def.code == code)
        .map(|t| tier_label(tr, code, &t.name))
        .unwrap_or_else(|| code.to_string())
}

/// Whole numbers of a form (`1,200` and `1 200` read as 1200).
pub fn parse_int(s: &str) -> Option<i64> {
    let t: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, ',' | ' ' | '\u{a0}'))
        .collect();
    if t.is_empty() || t.len() > 13 {
        return None;
    }
    t.parse().ok()
}

/// Hospital time is UTC+8: the first instant of a day there.
pub fn day_start(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default()) - Duration::hours(8)
}

/// The hospital's day of an instant.
pub fn local_day(t: DateTime<Utc>) -> NaiveDate {
    (t + Duration::hours(8)).date_naive()
}

fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

/// The app's refusal of a form as messages by field; other errors pass.
pub fn form_errors(tr: Tr, e: AppError, rename: &[(&str, &str)]) -> Result<FieldErrors, AppError> {
    let mut out = FieldErrors::default();
    match e {
        AppError::Validation(v) => {
            for fe in &v.0 {
                let (f, m) = super::field_error(tr, fe);
                let key = format!("loyalty-error-{}", fe.code.replace('_', "-"));
                let m = if tr.has(&key) { tr.t(&key) } else { m };
                let f = rename
                    .iter()
                    .find(|(from, _)| *from == f)
                    .map(|(_, to)| to.to_string())
                    .unwrap_or(f);
                out.push(&f, m);
            }
        }
        AppError::Conflict { code, message } => {
            let key = format!("loyalty-error-{}", code.replace('_', "-"));
            if !tr.has(&key) {
                return Err(AppError::Conflict { code, message });
            }
            let m = tr.t(&key);
            let f = match code {
                "rule_exists" | "campaign_exists" => "code",
                _ => "form",
            };
            out.push(f, m);
        }
        e => return Err(e),
    }
    Ok(out)
}

/// A multiplier as the reader sees it: `200` → `×2`, `150` → `×1.5`.
pub fn multiplier_text(tr: Tr, percent: u32) -> String {
    let whole = percent / 100;
    let frac = percent % 100;
    if frac == 0 {
        format!("×{}", tr.num(whole))
    } else {
        let f = format!("{frac:02}");
        let sep = if tr.locale == super::i18n::Locale::Es {
            ","
        } else {
            "."
        };
        format!("×{}{sep}{}", tr.num(whole), f.trim_end_matches('0'))
    }
}

fn effect_text(tr: Tr, e: &CampaignEffect) -> String {
    match e {
        CampaignEffect::MultiplyPercent(p) => multiplier_text(tr, *p),
        CampaignEffect::AddPerLine(n) => tr.t1("campaign-add-per-line", "points", tr.num(*n)),
    }
}

// ---------------------------------------------------------------- rules

pub struct RuleRow {
    pub code: String,
    pub category: String,
    pub member_type: String,
    pub tier: String,
    pub points_per_unit: String,
    pub priority: String,
}

pub struct CampaignRowView {
    pub code: String,
    pub name: String,
    pub window: String,
    pub filters: String,
    pub effect: String,
    pub priority: String,
    pub exclusive: bool,
    pub cap: String,
    /// `active`, `scheduled` or `ended`.
    pub state: &'static str,
    pub state_label: String,
}

/// The values a rule form shows.
#[derive(Default, Clone)]
pub struct RuleForm {
    pub create: bool,
    pub code: String,
    pub category: String,
    pub member_type: String,
    pub tier: String,
    pub points_per_unit: String,
    pub priority: String,
    pub errors: FieldErrors,
}

/// The values a campaign form shows.
#[derive(Default, Clone)]
pub struct CampaignForm {
    pub create: bool,
    pub code: String,
    pub name: String,
    pub starts: String,
    pub ends: String,
    pub department: String,
    pub category: String,
    pub member_type: String,
    pub tier: String,
    pub effect: String,
    pub value: String,
    pub priority: String,
    pub exclusive: bool,
    pub cap: String,
    pub errors: FieldErrors,
}

/// A fee line of a quote form.
#[derive(Debug, Default, Clone)]
pub struct LineForm {
    pub index: usize,
    pub category: String,
    pub department: String,
    pub amount: String,
}

#[derive(Default, Clone)]
pub struct QuoteForm {
    pub member: String,
    pub date: String,
    pub lines: Vec<LineForm>,
    pub errors: FieldErrors,
}

pub struct StepView {
    pub campaign: String,
    pub effect: String,
    pub points: String,
    pub capped: bool,
}

pub struct LineQuoteView {
    pub number: usize,
    pub category: String,
    pub amount: String,
    pub rule: String,
    pub base: String,
    pub steps: Vec<StepView>,
    pub skipped: Vec<String>,
    pub points: String,
}

pub struct QuoteView {
    pub member: String,
    pub total: String,
    pub total_raw: i64,
    pub lines: Vec<LineQuoteView>,
}

#[derive(Template)]
#[template(path = "console/membership_rules.html")]
pub struct RulesPage {
    pub l: Layout,
    pub tabs: Vec<Tab>,
    pub rules: Vec<RuleRow>,
    pub campaigns: Vec<CampaignRowView>,
    pub can_manage: bool,
    pub rule_form: RuleForm,
    pub campaign_form: CampaignForm,
    pub categories_rule: Vec<SelectOption>,
    pub types_rule: Vec<SelectOption>,
    pub tiers_rule: Vec<SelectOption>,
    pub categories_campaign: Vec<SelectOption>,
    pub types_campaign: Vec<SelectOption>,
    pub tiers_campaign: Vec<SelectOption>,
    pub quote_form: QuoteForm,
    pub quote_categories: Vec<Vec<SelectOption>>,
    pub quote: Option<QuoteView>,
    /// `rule` or `campaign`: the form to open.
    pub open: String,
}

/// Quote lines offered by the forms.
pub const QUOTE_LINES: usize = 3;

pub fn blank_lines() -> Vec<LineForm> {
    (0..QUOTE_LINES)
        .map(|i| LineForm {
            index: i,
            category: if i == 0 {
                "treatment".into()
            } else {
                String::new()
            },
            ..Default::default()
        })
        .collect()
}

#[derive(Deserialize, Default)]
pub struct RulesQuery {
    edit_rule: Option<String>,
    edit_campaign: Option<String>,
    done: Option<String>,
}

struct RulesState {
    rule_form: Option<RuleForm>,
    campaign_form: Option<CampaignForm>,
    quote_form: Option<QuoteForm>,
    quote: Option<QuoteView>,
    open: String,
}

async fn rules_page(
    State(app): State<App>,
    staff: Staff,
    Query(q): Query<RulesQuery>,
) -> PageResult {
    let tr = staff.tr;
    let notice = q
        .done
        .as_deref()
        .filter(|d| ["rule", "campaign", "deleted"].contains(d))
        .map(|d| tr.t(&format!("rules-done-{d}")));
    let err = |e| PageError::from_app(&staff, e);
    let mut state = no_state();
    if let Some(code) = q.edit_rule.filter(|_| staff.may(Permission::LoyaltyManage)) {
        let rules = earning::list_rules(&app).await.map_err(err)?;
        let Some(r) = rules.into_iter().find(|r| r.code == code) else {
            return Err(PageError::not_found(&staff));
        };
        state.rule_form = Some(RuleForm {
            create: false,
            code: r.code,
            category: r
                .category
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
            member_type: r.member_type.unwrap_or_default(),
            tier: r.tier.unwrap_or_default(),
            points_per_unit: r.points_per_unit.to_string(),
            priority: r.priority.to_string(),
            errors: FieldErrors::default(),
        });
        state.open = "rule".into();
    }
    if let Some(code) = q
        .edit_campaign
        .filter(|_| staff.may(Permission::LoyaltyManage))
    {
        let all = earning::list_campaigns(&app).await.map_err(err)?;
        let Some(row) = all.into_iter().find(|c| c.campaign.code == code) else {
            return Err(PageError::not_found(&staff));
        };
        let c = row.campaign;
        let (effect, value) = match c.effect {
            CampaignEffect::MultiplyPercent(p) => ("multiply_percent", i64::from(p)),
            CampaignEffect::AddPerLine(n) => ("add_per_line", n),
        };
        state.campaign_form = Some(CampaignForm {
            create: false,
            code: c.code,
            name: row.name,
            starts: local_day(c.starts_at).to_string(),
            ends: local_day(c.ends_at - Duration::seconds(1)).to_string(),
            department: c.department.unwrap_or_default(),
            category: c
                .category
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
            member_type: c.member_type.unwrap_or_default(),
            tier: c.tier.unwrap_or_default(),
            effect: effect.into(),
            value: value.to_string(),
            priority: c.priority.to_string(),
            exclusive: c.exclusive,
            cap: c.cap_per_member.map(|n| n.to_string()).unwrap_or_default(),
            errors: FieldErrors::default(),
        });
        state.open = "campaign".into();
    }
    render_rules(&app, &staff, StatusCode::OK, notice, state).await
}

async fn render_rules(
    app: &App,
    staff: &Staff,
    status: StatusCode,
    notice: Option<String>,
    s: RulesState,
) -> PageResult {
    let tr = staff.tr;
    let err = |e| PageError::from_app(staff, e);
    let (rules, campaigns, all_tiers) = tokio::join!(
        earning::list_rules(app),
        earning::list_campaigns(app),
        tiers::list(app)
    );
    let (rules, campaigns, all_tiers) = (
        rules.map_err(err)?,
        campaigns.map_err(err)?,
        all_tiers.map_err(err)?,
    );
    let any = tr.t("rules-any");
    let now = app.now();
    let rule_rows = rules
        .iter()
        .map(|r| RuleRow {
            code: r.code.clone(),
            category: r
                .category
                .map(|c| category_label(tr, c))
                .unwrap_or_else(|| any.clone()),
            member_type: r
                .member_type
                .as_deref()
                .map(|t| member_type_label(tr, t))
                .unwrap_or_else(|| any.clone()),
            tier: r
                .tier
                .as_deref()
                .map(|t| tier_text(tr, &all_tiers, t))
                .unwrap_or_else(|| any.clone()),
            points_per_unit: tr.num(r.points_per_unit),
            priority: tr.num(r.priority),
        })
        .collect();
    let campaign_rows = campaigns
        .iter()
        .map(|row| {
            let c = &row.campaign;
            let state = if now < c.starts_at {
                "scheduled"
            } else if now >= c.ends_at {
                "ended"
            } else {
                "active"
            };
            let mut filters = Vec::new();
            if let Some(d) = &c.department {
                filters.push(d.clone());
            }
            if let Some(x) = c.category {
                filters.push(category_label(tr, x));
            }
            if let Some(t) = &c.member_type {
                filters.push(member_type_label(tr, t));
            }
            if let Some(t) = &c.tier {
                filters.push(tier_text(tr, &all_tiers, t));
            }
            CampaignRowView {
                code: c.code.clone(),
                name: row.name.clone(),
                window: format!(
                    "{} – {}",
                    tr.date(local_day(c.starts_at)),
                    tr.date(local_day(c.ends_at - Duration::seconds(1)))
                ),
                filters: if filters.is_empty() {
                    any.clone()
                } else {
                    filters.join(" · ")
                },
                effect: effect_text(tr, &c.effect),
                priority: tr.num(c.priority),
                exclusive: c.exclusive,
                cap: c
                    .cap_per_member
                    .map(|n| tr.count("points-count", n))
                    .unwrap_or_else(|| tr.t("rules-no-cap")),
                state,
                state_label: tr.t(&format!("campaign-state-{state}")),
            }
        })
        .collect();
    let rule_form = s.rule_form.unwrap_or_else(|| RuleForm {
        create: true,
        points_per_unit: "1".into(),
        priority: "0".into(),
        ..Default::default()
    });
    let today = app.today();
    let campaign_form = s.campaign_form.unwrap_or_else(|| CampaignForm {
        create: true,
        starts: today.to_string(),
        ends: (today + Duration::days(30)).to_string(),
        effect: "multiply_percent".into(),
        value: "200".into(),
        priority: "10".into(),
        ..Default::default()
    });
    let quote_form = s.quote_form.unwrap_or_else(|| QuoteForm {
        date: today.to_string(),
        lines: blank_lines(),
        ..Default::default()
    });
    let page = RulesPage {
        l: Layout::for_staff(
            staff,
            PAGE.id,
            tr.t("membership-tab-rules"),
            "/membership/rules",
        )
        .with_notice(notice),
        tabs: tabs(staff, "rules"),
        rules: rule_rows,
        campaigns: campaign_rows,
        can_manage: staff.may(Permission::LoyaltyManage),
        categories_rule: category_choices(tr, &rule_form.category),
        types_rule: member_type_choices(tr, &rule_form.member_type),
        tiers_rule: tier_choices(tr, &all_tiers, &rule_form.tier),
        categories_campaign: category_choices(tr, &campaign_form.category),
        types_campaign: member_type_choices(tr, &campaign_form.member_type),
        tiers_campaign: tier_choices(tr, &all_tiers, &campaign_form.tier),
        quote_categories: quote_form
            .lines
            .iter()
            .map(|l| category_choices(tr, &l.category))
            .collect(),
        rule_form,
        campaign_form,
        quote_form,
        quote: s.quote,
        open: s.open,
    };
    Ok(html(status, &page))
}

fn no_state() -> RulesState {
    RulesState {
        rule_form: None,
        campaign_form: None,
        quote_form: None,
        quote: None,
        open: String::new(),
    }
}

async fn save_rule(State(app): State<App>, staff: Staff, Form(p): Form<Pairs>) -> PageResult {
    if !staff.may(Permission::LoyaltyManage) {
        return Err(PageError::forbidden(&staff));
    }
    let tr = staff.tr;
    let mut form = RuleForm {
        create: field(&p, "create") == "1",
        code: field(&p, "code").to_string(),
        category: field(&p, "category").to_string(),
        member_type: field(&p, "member_type").to_string(),
        tier: field(&p, "tier").to_string(),
        points_per_unit: field(&p, "points_per_unit").to_string(),
        priority: field(&p, "priority").to_string(),
        errors: FieldErrors::default(),
    };
    let ppu = parse_int(&form.points_per_unit);
    let prio = parse_int(&form.priority).and_then(|n| i32::try_from(n).ok());
    if ppu.is_none() {
        form.errors
            .push("points_per_unit", tr.t("loyalty-error-whole-number"));
    }
    if prio.is_none() {
        form.errors
            .push("priority", tr.t("loyalty-error-whole-number"));
    }
    if let (Some(ppu), Some(prio)) = (ppu, prio) {
        let input = RuleInput {
            code: form.code.clone(),
            category: opt_field(&p, "category"),
            member_type: opt_field(&p, "member_type"),
            tier: opt_field(&p, "tier"),
            priority: prio,
            points_per_unit: ppu,
        };
        match earning::put_rule(&app, &staff.actor(), &input, form.create).await {
            Ok(_) => return Ok(Redirect::to("/membership/rules?done=rule").into_response()),
            Err(e) => {
                form.errors =
                    form_errors(tr, e, &[]).map_err(|e| PageError::from_app(&staff, e))?;
            }
        }
    }
    let mut s = no_state();
    s.rule_form = Some(form);
    s.open = "rule".into();
    render_rules(&app, &staff, StatusCode::UNPROCESSABLE_ENTITY, None, s).await
}

async fn delete_rule(State(app): State<App>, staff: Staff, Path(code): Path<String>) -> PageResult {
    if !staff.may(Permission::LoyaltyManage) {
        return Err(PageError::forbidden(&staff));
    }
    earning::delete_rule(&app, &staff.actor(), &code)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    Ok(Redirect::to("/membership/rules?done=deleted").into_response())
}

async fn save_campaign(State(app): State<App>, staff: Staff, Form(p): Form<Pairs>) -> PageResult {
    if !staff.may(Permission::LoyaltyManage) {
        return Err(PageError::forbidden(&staff));
    }
    let tr = staff.tr;
    let mut form = CampaignForm {
        create: field(&p, "create") == "1",
        code: field(&p, "code").to_string(),
        name: field(&p, "name").to_string(),
        starts: field(&p, "starts").to_string(),
        ends: field(&p, "ends").to_string(),
        department: field(&p, "department").to_string(),
        category: field(&p, "category").to_string(),
        member_type: field(&p, "member_type").to_string(),
        tier: field(&p, "tier").to_string(),
        effect: field(&p, "effect").to_string(),
        value: field(&p, "value").to_string(),
        priority: field(&p, "priority").to_string(),
        exclusive: !field(&p, "exclusive").is_empty(),
        cap: field(&p, "cap").to_string(),
        errors: FieldErrors::default(),
    };
    let whole = tr.t("loyalty-error-whole-number");
    let starts = parse_day(&form.starts);
    let ends = parse_day(&form.ends);
    if starts.is_none() {
        form.errors.push("starts", tr.t("field-error-invalid-date"));
    }
    if ends.is_none() {
        form.errors.push("ends", tr.t("field-error-invalid-date"));
    }
    if let (Some(a), Some(b)) = (starts, ends)
        && b < a
    {
        form.errors.push("ends", tr.t("loyalty-error-window"));
    }
    let value = parse_int(&form.value);
    if value.is_none() {
        form.errors.push("value", whole.clone());
    }
    let priority = parse_int(&form.priority);
    if priority.is_none() {
        form.errors.push("priority", whole.clone());
    }
    let cap = if form.cap.is_empty() {
        Some(None)
    } else {
        parse_int(&form.cap).map(Some)
    };
    if cap.is_none() {
        form.errors.push("cap", whole);
    }
    if let (Some(a), Some(b), Some(value), Some(priority), Some(cap), true) =
        (starts, ends, value, priority, cap, form.errors.is_empty())
    {
        let input = CampaignInput {
            code: form.code.clone(),
            name: form.name.clone(),
            priority,
            starts_at: day_start(a),
            ends_at: day_start(b + Duration::days(1)),
            department: opt_field(&p, "department"),
            category: opt_field(&p, "category"),
            member_type: opt_field(&p, "member_type"),
            tier: opt_field(&p, "tier"),
            effect: form.effect.clone(),
            value,
            exclusive: form.exclusive,
            cap_per_member: cap,
        };
        match earning::put_campaign(&app, &staff.actor(), &input, form.create).await {
            Ok(_) => return Ok(Redirect::to("/membership/rules?done=campaign").into_response()),
            Err(e) => {
                form.errors = form_errors(
                    tr,
                    e,
                    &[
                        ("effect.value", "value"),
                        ("effect.type", "effect"),
                        ("cap_per_member", "cap"),
                        ("starts_at", "starts"),
                        ("ends_at", "ends"),
                    ],
                )
                .map_err(|e| PageError::from_app(&staff, e))?;
            }
        }
    }
    let mut s = no_state();
    s.campaign_form = Some(form);
    s.open = "campaign".into();
    render_rules(&app, &staff, StatusCode::UNPROCESSABLE_ENTITY, None, s).await
}

async fn delete_campaign(
    State(app): State<App>,
    staff: Staff,
    Path(code): Path<String>,
) -> PageResult {
    if !staff.may(Permission::LoyaltyManage) {
        return Err(PageError::forbidden(&staff));
    }
    earning::delete_campaign(&app, &staff.actor(), &code)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    Ok(Redirect::to("/membership/rules?done=deleted").into_response())
}

/// The fee lines of a quote form (`l{i}_category`, `l{i}_department`,
/// `l{i}_amount`); lines without an amount are left out. Errors are
/// named `l{i}_amount`.
pub fn read_lines(
    tr: Tr,
    p: &[(String, String)],
    with_description: bool,
) -> (Vec<LineForm>, Vec<(usize, QuoteLine, String)>, FieldErrors) {
    let mut forms = Vec::new();
    let mut lines = Vec::new();
    let mut errors = FieldErrors::default();
    for i in 0..QUOTE_LINES {
        let f = LineForm {
            index: i,
            category: field(p, &format!("l{i}_category")).to_string(),
            department: field(p, &format!("l{i}_department")).to_string(),
            amount: field(p, &format!("l{i}_amount")).to_string(),
        };
        if !f.amount.is_empty() {
            match Money::parse(&f.amount.replace(',', ".")) {
                Ok(m) => lines.push((
                    i,
                    QuoteLine {
                        category: f.category.clone(),
                        department: (!with_description && !f.department.is_empty())
                            .then(|| f.department.clone()),
                        amount: m.minor(),
                    },
                    f.department.clone(),
                )),
                Err(_) => errors.push(&format!("l{i}_amount"), tr.t("field-error-invalid-amount")),
            }
        }
        forms.push(f);
    }
    if lines.is_empty() && errors.is_empty() {
        errors.push("l0_amount", tr.t("quote-error-no-lines"));
    }
    (forms, lines, errors)
}

/// `lines[2].amount` (the app's path, over the lines sent) → `l{i}_amount`
/// (the form's field).
pub fn line_errors(
    tr: Tr,
    e: AppError,
    sent: &[(usize, QuoteLine, String)],
    list: &str,
) -> Result<FieldErrors, AppError> {
    let errs = form_errors(tr, e, &[])?;
    Ok(FieldErrors(
        errs.0
            .into_iter()
            .map(|(f, m)| {
                let named = f
                    .strip_prefix(list)
                    .and_then(|r| r.strip_prefix('['))
                    .and_then(|r| r.split_once(']'))
                    .and_then(|(n, rest)| {
                        let n: usize = n.parse().ok()?;
                        let i = sent.get(n)?.0;
                        let part = match rest.trim_start_matches('.') {
                            "category" => "category",
                            "description" | "department" => "department",
                            _ => "amount",
                        };
                        Some(format!("l{i}_{part}"))
                    });
                (named.unwrap_or_else(|| "l0_amount".into()), m)
            })
            .collect(),
    ))
}

pub fn quote_view(
    tr: Tr,
    member: String,
    q: &PointsQuote,
    names: &[(String, String)],
) -> QuoteView {
    let name_of = |code: &str| {
        names
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| code.to_string())
    };
    QuoteView {
        member,
        total: tr.num(q.total),
        total_raw: q.total,
        lines: q
            .lines
            .iter()
            .map(|l| LineQuoteView {
                number: l.line + 1,
                category: category_label(tr, l.category),
                amount: tr.money(l.amount.minor()),
                rule: l.rule.clone().unwrap_or_else(|| tr.t("quote-no-rule")),
                base: tr.num(l.base),
                steps: l
                    .steps
                    .iter()
                    .map(|s| StepView {
                        campaign: name_of(&s.campaign),
                        effect: effect_text(tr, &s.effect),
                        points: format!("+{}", tr.num(s.points)),
                        capped: s.capped,
                    })
                    .collect(),
                skipped: l
                    .skipped
                    .iter()
                    .map(|(c, _)| tr.t1("quote-skipped", "campaign", name_of(c)))
                    .collect(),
                points: tr.num(l.points),
            })
            .collect(),
    }
}

async fn earn_quote(State(app): State<App>, staff: Staff, Form(p): Form<Pairs>) -> PageResult {
    let tr = staff.tr;
    let (lines_form, lines, mut errors) = read_lines(tr, &p, false);
    let member_text = field(&p, "member").to_string();
    let date_text = field(&p, "date").to_string();
    let date = if date_text.is_empty() {
        None
    } else {
        let d = parse_day(&date_text);
        if d.is_none() {
            errors.push("date", tr.t("field-error-invalid-date"));
        }
        d
    };
    let found = if member_text.is_empty() {
        Vec::new()
    } else {
        rapport_app::console::find_members(&app, &member_text, 1)
            .await
            .map_err(|e| PageError::from_app(&staff, e))?
    };
    let mut quote = None;
    match found.first() {
        None => errors.push("member", tr.t("quote-error-member")),
        Some(m) if errors.is_empty() => {
            let sent: Vec<QuoteLine> = lines.iter().map(|(_, l, _)| l.clone()).collect();
            match earning::earn_quote(&app, m.id, date, &sent).await {
                Ok(q) => {
                    let names: Vec<(String, String)> = earning::list_campaigns(&app)
                        .await
                        .map_err(|e| PageError::from_app(&staff, e))?
                        .into_iter()
                        .map(|c| (c.campaign.code, c.name))
                        .collect();
                    quote = Some(quote_view(tr, m.card_no.clone(), &q, &names));
                }
                Err(e) => {
                    errors = line_errors(tr, e, &lines, "lines")
                        .map_err(|e| PageError::from_app(&staff, e))?;
                }
            }
        }
        Some(_) => {}
    }
    let status = if quote.is_some() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut s = no_state();
    s.quote_form = Some(QuoteForm {
        member: member_text,
        date: date_text,
        lines: lines_form,
        errors,
    });
    s.quote = quote;
    render_rules(&app, &staff, status, None, s).await
}

// ---------------------------------------------------------- price quote

/// A priced line of the card's price quote.
#[derive(Debug, Clone)]
pub struct PricedLineView {
    pub description: String,
    pub category: String,
    pub list: String,
    pub discount_pct: String,
    pub discount: String,
    pub net: String,
}

#[derive(Debug, Clone)]
pub struct PriceView {
    pub tier: String,
    pub lines: Vec<PricedLineView>,
    pub total_list: String,
    pub total_discount: String,
    pub total_net: String,
}

/// Basis points as a percentage (`500` → `5 %`, `250` → `2.5 %`).
fn bp_pct(tr: Tr, bp: u32) -> String {
    tr.pct(
        f64::from(bp) / 10_000.0,
        if bp.is_multiple_of(100) { 0 } else { 2 },
    )
}

async fn price_quote(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<String>,
    Form(p): Form<Pairs>,
) -> PageResult {
    let tr = staff.tr;
    let member_id: i64 = id.parse().map_err(|_| PageError::not_found(&staff))?;
    let err = |e| PageError::from_app(&staff, e);
    let key = super::membership::patient_of_member(&app, &staff, member_id).await?;
    let (lines_form, lines, mut errors) = read_lines(tr, &p, true);
    let mut view = None;
    if errors.is_empty() {
        let items: Vec<(QuoteLine, String)> = lines
            .iter()
            .map(|(_, l, d)| (l.clone(), d.clone()))
            .collect();
        match earning::price_quote(&app, member_id, &items).await {
            Ok((tier, q)) => {
                let all = tiers::list(&app).await.map_err(err)?;
                view = Some(PriceView {
                    tier: tier_text(tr, &all, &tier),
                    lines: q
                        .lines
                        .iter()
                        .map(|l| PricedLineView {
                            description: l.description.clone(),
                            category: category_label(tr, l.category),
                            list: tr.money(l.list.minor()),
                            discount_pct: bp_pct(tr, l.discount_bp),
                            discount: tr.money(l.discount.minor()),
                            net: tr.money(l.net.minor()),
                        })
                        .collect(),
                    total_list: tr.money(q.total_list.minor()),
                    total_discount: tr.money(q.total_discount.minor()),
                    total_net: tr.money(q.total_net.minor()),
                });
            }
            Err(e) => errors = line_errors(tr, e, &lines, "items").map_err(err)?,
        }
    }
    let status = if view.is_some() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    super::patients::render_for_membership(
        &app,
        &staff,
        key,
        status,
        super::membership::MemberFormState {
            open: "price".into(),
            price: view,
            price_lines: lines_form,
            price_errors: errors,
            ..Default::default()
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_hospital_days() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(day_start(d).to_rfc3339(), "2026-02-28T16:00:00+00:00");
        assert_eq!(local_day(day_start(d)), d);
        assert_eq!(parse_int("1,200"), Some(1200));
        assert_eq!(parse_int("-5"), Some(-5));
        assert_eq!(parse_int("x"), None);
    }

    #[test]
    fn multipliers_read_naturally() {
        let tr = Tr::new(super::super::i18n::Locale::En);
        assert_eq!(multiplier_text(tr, 200), "×2");
        assert_eq!(multiplier_text(tr, 150), "×1.5");
        assert_eq!(multiplier_text(tr, 125), "×1.25");
    }
}
