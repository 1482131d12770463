//! Segments: the saved segments with their sizes, and the builder.
//!
//! The builder is one form: a top combinator (all / any) over groups, each
//! group a combinator over conditions (field, operator, value). The form
//! is read into the JSON rule set of `rapport_domain::segment` on the
//! server (so without the script the buttons still work by posting the
//! form back); the script posts the same form to `/segments/count` as the
//! reader types and shows the live count. Saving needs
//! `segments:manage`; the members' preview and the export need
//! `patients:read` (contact details masked as everywhere).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use rapport_app::segments::{self, Reason, SegmentInput};
use rapport_app::{App, AppError};
use rapport_domain::auth::{Permission, mask};
use rapport_domain::consent::Purpose;
use rapport_domain::patient::Channel;
use rapport_domain::segment::{DateValue, Field, Kind, Op, Rule, Scalar, Source};
use serde::Deserialize;
use serde_json::{Value, json};

use super::i18n::Tr;
use super::{Layout, Page, PageError, PageResult, Section, Staff, html};

pub const PAGE: Page = Page {
    id: "segments",
    path: "/segments",
    title: "nav-segments",
    permission: Some(Permission::AnalyticsRead),
    section: Section::Main,
    icon: "M12 2a10 10 0 1 0 10 10h-10V2zm2 0v8h8a10 10 0 0 0-8-8z",
    routes,
};

fn routes() -> Router<App> {
    Router::new()
        .route("/segments", get(list))
        .route("/segments/new", get(new))
        .route("/segments/build", post(build))
        .route("/segments/count", post(live_count))
        .route("/segments/{id}", get(show))
        .route("/segments/{id}/record", post(record))
}

// ------------------------------------------------------------------ list

pub struct SegmentRowView {
    pub href: String,
    pub name: String,
    pub description: String,
    pub size: String,
    pub counted: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "console/segments.html")]
pub struct SegmentsListPage {
    pub l: Layout,
    pub rows: Vec<SegmentRowView>,
    pub can_manage: bool,
}

async fn list(State(app): State<App>, staff: Staff) -> PageResult {
    let tr = staff.tr;
    let all = segments::list(&app)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    let rows = all
        .into_iter()
        .map(|s| SegmentRowView {
            href: format!("/segments/{}", s.row.id),
            name: s.row.name,
            description: s.row.description.unwrap_or_default(),
            size: s
                .latest
                .as_ref()
                .map(|c| tr.count("patients-count", c.patients))
                .unwrap_or_else(|| "–".into()),
            counted: s
                .latest
                .as_ref()
                .map(|c| tr.datetime(c.counted_at))
                .unwrap_or_default(),
            updated: tr.datetime(s.row.updated_at),
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        &SegmentsListPage {
            l: Layout::for_staff(&staff, PAGE.id, tr.t(PAGE.title), PAGE.path),
            rows,
            can_manage: staff.may(Permission::SegmentsManage),
        },
    ))
}

// ------------------------------------------------------- the form model

/// A condition as the form holds it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CondForm {
    pub field: String,
    pub op: String,
    pub value: String,
}

/// A group as the form holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupForm {
    pub any: bool,
    pub conds: Vec<CondForm>,
}

impl Default for GroupForm {
    fn default() -> Self {
        GroupForm {
            any: false,
            conds: vec![CondForm {
                field: "last_visit".into(),
                op: ">=".into(),
                value: "365".into(),
            }],
        }
    }
}

/// The whole builder form.
#[derive(Debug, Clone, PartialEq)]
pub struct BuilderForm {
    pub id: Option<i64>,
    pub name: String,
    pub description: String,
    pub any: bool,
    pub groups: Vec<GroupForm>,
}

impl Default for BuilderForm {
    fn default() -> Self {
        BuilderForm {
            id: None,
            name: String::new(),
            description: String::new(),
            any: false,
            groups: vec![GroupForm::default()],
        }
    }
}

const MAX_GROUPS: usize = 10;
const MAX_CONDS: usize = 20;

impl BuilderForm {
    /// Reads the posted fields: `top`, `gI_op`, `gI_cJ_field|op|value`.
    pub fn from_pairs(pairs: &[(String, String)]) -> BuilderForm {
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let mut groups = Vec::new();
        for g in 0..MAX_GROUPS {
            let mut conds = Vec::new();
            for c in 0..MAX_CONDS {
                let Some(field) = get(&format!("g{g}_c{c}_field")) else {
                    continue;
                };
                conds.push(CondForm {
                    field,
                    op: get(&format!("g{g}_c{c}_op")).unwrap_or_default(),
                    value: get(&format!("g{g}_c{c}_value")).unwrap_or_default(),
                });
            }
            if !conds.is_empty() {
                groups.push(GroupForm {
                    any: get(&format!("g{g}_op")).as_deref() == Some("any"),
                    conds,
                });
            }
        }
        BuilderForm {
            id: get("id").and_then(|s| s.parse().ok()),
            name: get("name").unwrap_or_default(),
            description: get("description").unwrap_or_default(),
            any: get("top").as_deref() == Some("any"),
            groups,
        }
    }

    /// The rule set as JSON, and for each condition the JSON path the
    /// domain names in its errors with (group, condition).
    pub fn to_json(&self) -> (Value, Vec<(String, usize, usize)>) {
        let top = if self.any { "any" } else { "all" };
        let mut paths = Vec::new();
        let groups: Vec<Value> = self
            .groups
            .iter()
            .enumerate()
            .map(|(gi, g)| {
                let conds: Vec<Value> = g.conds.iter().map(cond_json).collect();
                if conds.len() == 1 {
                    paths.push((format!("rules.{top}[{gi}]"), gi, 0));
                    conds.into_iter().next().unwrap_or(Value::Null)
                } else {
                    let op = if g.any { "any" } else { "all" };
                    for ci in 0..conds.len() {
                        paths.push((format!("rules.{top}[{gi}].{op}[{ci}]"), gi, ci));
                    }
                    json!({ op: conds })
                }
            })
            .collect();
        (json!({ top: groups }), paths)
    }

    /// The form of a saved rule set, when the builder can show it (two
    /// levels of groups).
    pub fn from_rule(rule: &Rule) -> Option<BuilderForm> {
        let (any, children) = match rule {
            Rule::All(v) => (false, v),
            Rule::Any(v) => (true, v),
            Rule::Cond(_) => (false, &vec![rule.clone()]),
        };
        let mut groups = Vec::new();
        for child in children {
            match child {
                Rule::Cond(c) => groups.push(GroupForm {
                    any: false,
                    conds: vec![cond_form(c)],
                }),
                Rule::All(v) | Rule::Any(v) => {
                    let conds = v
                        .iter()
                        .map(|r| match r {
                            Rule::Cond(c) => Some(cond_form(c)),
                            _ => None,
                        })
                        .collect::<Option<Vec<_>>>()?;
                    if conds.is_empty() {
                        return None;
                    }
                    groups.push(GroupForm {
                        any: matches!(child, Rule::Any(_)),
                        conds,
                    });
                }
            }
        }
        Some(BuilderForm {
            any,
            groups,
            ..Default::default()
        })
    }
}

fn bool_of(s: &str) -> Option<bool> {
    match s.trim().to_lowercase().as_str() {
        "yes" | "true" | "1" | "是" | "sí" | "si" | "y" => Some(true),
        "no" | "false" | "0" | "否" | "n" => Some(false),
        _ => None,
    }
}

/// One value as the domain reads it for the field's kind; what does not
/// convert stays text, and the domain names the error.
fn scalar_json(kind: Kind, s: &str) -> Value {
    let s = s.trim();
    match kind {
        Kind::Int => s
            .replace([',', ' '], "")
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| json!(s)),
        Kind::Float => s
            .replace(',', ".")
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::from)
            .unwrap_or_else(|| json!(s)),
        Kind::Date => match s.parse::<i64>() {
            Ok(n) => json!({"days_ago": n}),
            Err(_) => json!(s),
        },
        Kind::Bool => bool_of(s).map(Value::from).unwrap_or_else(|| json!(s)),
        Kind::Money | Kind::Text | Kind::Choice(_) | Kind::Tags => json!(s),
    }
}

fn cond_json(c: &CondForm) -> Value {
    let field = Field::parse(&c.field);
    let kind = field.map(|f| f.kind()).unwrap_or(Kind::Text);
    let op = Op::parse(&c.op);
    let list = |s: &str| -> Vec<Value> {
        s.split([',', '，', ';', '；'])
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| scalar_json(kind, v))
            .collect()
    };
    match op {
        Some(Op::IsNull | Op::IsNotNull) => json!({"field": c.field, "op": c.op}),
        Some(Op::In | Op::NotIn | Op::Between | Op::ContainsAny | Op::ContainsAll) => {
            json!({"field": c.field, "op": c.op, "value": list(&c.value)})
        }
        _ => json!({"field": c.field, "op": c.op, "value": scalar_json(kind, &c.value)}),
    }
}

fn scalar_text(s: &Scalar) -> String {
    match s {
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => f.to_string(),
        Scalar::Money(m) => rapport_domain::money::format_minor(i128::from(*m)),
        Scalar::Text(t) => t.clone(),
        Scalar::Date(DateValue::On(d)) => d.format("%Y-%m-%d").to_string(),
        Scalar::Date(DateValue::DaysAgo(n)) => n.to_string(),
        Scalar::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
    }
}

fn cond_form(c: &rapport_domain::segment::Condition) -> CondForm {
    CondForm {
        field: c.field.name(),
        op: c.op.as_str().to_string(),
        value: c
            .values
            .iter()
            .map(scalar_text)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The rule set of a form, or the messages of what is wrong in it.
fn parse_form(tr: Tr, f: &BuilderForm) -> Result<Rule, Vec<String>> {
    let (json, paths) = f.to_json();
    segments::parse_rules(&json).map_err(|e| match e {
        AppError::Validation(v) => v.0.iter().map(|e| rule_error(tr, e, &paths)).collect(),
        other => vec![other.to_string()],
    })
}

fn rule_error(tr: Tr, e: &rapport_domain::FieldError, paths: &[(String, usize, usize)]) -> String {
    let key = format!("seg-error-{}", e.code.replace('_', "-"));
    let text = if tr.has(&key) {
        tr.t(&key)
    } else {
        tr.t("seg-error-other")
    };
    let at = paths
        .iter()
        .filter(|(p, _, _)| e.field == *p || e.field.starts_with(&format!("{p}.")))
        .max_by_key(|(p, _, _)| p.len());
    match at {
        Some((_, g, c)) => {
            let mut args = fluent_bundle::FluentArgs::new();
            args.set("group", (*g + 1) as i64);
            args.set("condition", (*c + 1) as i64);
            format!("{} {text}", tr.args("seg-error-at", &args))
        }
        None => text,
    }
}

// ----------------------------------------------------------- the builder

pub struct FieldOption {
    pub name: String,
    pub label: String,
}

pub struct FieldGroup {
    pub label: String,
    pub fields: Vec<FieldOption>,
}

pub struct OpOption {
    pub code: &'static str,
    pub label: String,
}

pub struct CondView {
    pub g: usize,
    pub c: usize,
    pub field: String,
    pub op: String,
    pub value: String,
    /// The datalist of suggested values for the field, or empty.
    pub list: &'static str,
    pub ops: Vec<OpOption>,
}

pub struct GroupView {
    pub g: usize,
    pub any: bool,
    pub conds: Vec<CondView>,
}

pub struct MemberView {
    pub href: String,
    pub name: String,
    pub patient_id: String,
    pub phone: String,
    pub visits: String,
    pub monetary: String,
    pub last_visit: String,
}

pub struct HistoryView {
    pub at: String,
    pub size: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "console/segment.html")]
pub struct BuilderPage {
    pub l: Layout,
    pub id: Option<i64>,
    pub name: String,
    pub description: String,
    pub any: bool,
    pub groups: Vec<GroupView>,
    pub fields: Vec<FieldGroup>,
    pub rfm: Vec<(String, String)>,
    pub count: String,
    pub errors: Vec<String>,
    pub can_save: bool,
    pub too_deep: bool,
    pub rules_json: String,
    pub history: Vec<HistoryView>,
    pub chart: String,
    pub members: Vec<MemberView>,
    pub show_members: bool,
    pub masked: bool,
    pub export_href: String,
}

fn field_label(tr: Tr, f: Field) -> String {
    match f {
        Field::Consent(ch, pu) => {
            let mut args = fluent_bundle::FluentArgs::new();
            args.set("channel", tr.t(&format!("channel-{}", ch.as_str())));
            args.set("purpose", tr.t(&format!("purpose-{}", pu.as_str())));
            tr.args("seg-field-consent", &args)
        }
        f => tr.t(&format!("seg-field-{}", f.name().replace('_', "-"))),
    }
}

fn all_fields() -> Vec<Field> {
    let mut v: Vec<Field> = Field::NAMED.iter().map(|(_, f)| *f).collect();
    for ch in Channel::ALL {
        for pu in Purpose::ALL {
            v.push(Field::Consent(*ch, *pu));
        }
    }
    v
}

fn field_groups(tr: Tr) -> Vec<FieldGroup> {
    [
        (Source::Patient, "seg-source-patient"),
        (Source::Aggregates, "seg-source-aggregates"),
        (Source::Scores, "seg-source-scores"),
        (Source::Consents, "seg-source-consents"),
    ]
    .into_iter()
    .map(|(src, key)| FieldGroup {
        label: tr.t(key),
        fields: all_fields()
            .into_iter()
            .filter(|f| f.source() == src)
            .map(|f| FieldOption {
                name: f.name(),
                label: field_label(tr, f),
            })
            .collect(),
    })
    .collect()
}

fn op_key(op: Op) -> String {
    format!("seg-op-{}", op.as_str().replace('_', "-"))
        .replace("seg-op-!=", "seg-op-ne")
        .replace("seg-op-<=", "seg-op-le")
        .replace("seg-op->=", "seg-op-ge")
        .replace("seg-op-<", "seg-op-lt")
        .replace("seg-op->", "seg-op-gt")
        .replace("seg-op-=", "seg-op-eq")
}

fn ops_for(tr: Tr, field: Option<Field>) -> Vec<OpOption> {
    let ops = match field {
        Some(f) => Op::allowed(f),
        None => Op::ALL.iter().map(|(_, o)| *o).collect(),
    };
    ops.into_iter()
        .map(|o| OpOption {
            code: o.as_str(),
            label: tr.t(&op_key(o)),
        })
        .collect()
}

fn list_of(field: Option<Field>) -> &'static str {
    match field.map(|f| (f, f.kind())) {
        Some((Field::Sex, _)) => "dl-sex",
        Some((Field::RfmSegment, _)) => "dl-rfm",
        Some((_, Kind::Bool)) => "dl-bool",
        _ => "",
    }
}

struct Extra {
    count: String,
    errors: Vec<String>,
    too_deep: bool,
    rules_json: String,
}

async fn render_builder(
    app: &App,
    staff: &Staff,
    status: StatusCode,
    notice: Option<String>,
    f: &BuilderForm,
    extra: Extra,
) -> PageResult {
    let tr = staff.tr;
    let err = |e| PageError::from_app(staff, e);
    let groups = f
        .groups
        .iter()
        .enumerate()
        .map(|(g, gr)| GroupView {
            g,
            any: gr.any,
            conds: gr
                .conds
                .iter()
                .enumerate()
                .map(|(c, cf)| {
                    let field = Field::parse(&cf.field);
                    CondView {
                        g,
                        c,
                        field: cf.field.clone(),
                        op: cf.op.clone(),
                        value: cf.value.clone(),
                        list: list_of(field),
                        ops: ops_for(tr, field),
                    }
                })
                .collect(),
        })
        .collect();
    let (mut history, mut members, mut chart) = (Vec::new(), Vec::new(), String::new());
    let show_members = f.id.is_some() && staff.may(Permission::PatientsRead);
    if let Some(id) = f.id {
        let rows = segments::history(app, id, 30).await.map_err(err)?;
        let bars: Vec<super::charts::HBar> = rows
            .iter()
            .take(10)
            .rev()
            .map(|r| super::charts::HBar {
                label: tr.date(r.as_of),
                value: r.patients.max(0) as u64,
                class: "hbar-count".into(),
                note: String::new(),
            })
            .collect();
        if !bars.is_empty() {
            chart = super::charts::hbars(tr, "svg-segment-history", &tr.t("seg-history"), &bars);
        }
        history = rows
            .into_iter()
            .map(|r| HistoryView {
                at: tr.datetime(r.counted_at),
                size: tr.count("patients-count", r.patients),
                reason: tr.t(&format!("seg-reason-{}", r.reason)),
            })
            .collect();
        if show_members {
            let unmasked = staff.sees_personal_data();
            let page = segments::members(app, id, None, 20).await.map_err(err)?;
            members = page
                .items
                .into_iter()
                .map(|m| {
                    let p = m.patient;
                    MemberView {
                        href: format!("/patients/{}", p.id),
                        name: if p.erased_at.is_some() {
                            tr.t("patient-erased")
                        } else if p.fields.name.is_empty() {
                            tr.t("patient-unnamed")
                        } else {
                            p.fields.name.clone()
                        },
                        patient_id: p.patient_id.clone(),
                        phone: match p.fields.phone.as_deref() {
                            Some(v) if unmasked => v.to_string(),
                            Some(v) => mask(v),
                            None => String::new(),
                        },
                        visits: m
                            .aggregates
                            .as_ref()
                            .map(|a| tr.num(a.visits))
                            .unwrap_or_else(|| "0".into()),
                        monetary: m
                            .aggregates
                            .as_ref()
                            .map(|a| tr.money(a.monetary))
                            .unwrap_or_default(),
                        last_visit: tr.opt_date(m.aggregates.as_ref().map(|a| a.last_visit)),
                    }
                })
                .collect();
        }
    }
    let title = if f.name.trim().is_empty() {
        tr.t("seg-new")
    } else {
        f.name.clone()
    };
    let here = match f.id {
        Some(id) => format!("/segments/{id}"),
        None => "/segments/new".into(),
    };
    let page = BuilderPage {
        l: Layout::for_staff(staff, PAGE.id, title, &here).with_notice(notice),
        id: f.id,
        name: f.name.clone(),
        description: f.description.clone(),
        any: f.any,
        groups,
        fields: field_groups(tr),
        rfm: rapport_analytics::Segment::ALL
            .iter()
            .map(|s| {
                (
                    s.as_str().to_string(),
                    tr.t(&format!("segment-{}", s.as_str().replace('_', "-"))),
                )
            })
            .collect(),
        count: extra.count,
        errors: extra.errors,
        can_save: staff.may(Permission::SegmentsManage),
        too_deep: extra.too_deep,
        rules_json: extra.rules_json,
        history,
        chart,
        members,
        show_members,
        masked: !staff.sees_personal_data(),
        export_href: f
            .id
            .map(|id| format!("/api/v1/segments/{id}/export?format=csv"))
            .unwrap_or_default(),
    };
    Ok(html(status, &page))
}

/// The count of a form's rules as shown, or its errors.
async fn count_text(app: &App, tr: Tr, f: &BuilderForm) -> Result<(String, Vec<String>), AppError> {
    match parse_form(tr, f) {
        Ok(rule) => {
            let (n, _) = segments::count_rules(app, &rule).await?;
            Ok((tr.count("patients-count", n), Vec::new()))
        }
        Err(errors) => Ok(("–".into(), errors)),
    }
}

/// A new segment: the page draws at once; the script counts it.
async fn new(State(app): State<App>, staff: Staff) -> PageResult {
    render_builder(
        &app,
        &staff,
        StatusCode::OK,
        None,
        &BuilderForm::default(),
        Extra {
            count: "–".into(),
            errors: Vec::new(),
            too_deep: false,
            rules_json: String::new(),
        },
    )
    .await
}

#[derive(Deserialize, Default)]
pub struct SegmentNotice {
    done: Option<String>,
}

async fn show(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<String>,
    Query(n): Query<SegmentNotice>,
) -> PageResult {
    let Ok(id) = id.parse::<i64>() else {
        return Err(PageError::not_found(&staff));
    };
    let tr = staff.tr;
    let s = segments::get(&app, id)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    let (mut f, too_deep) = match BuilderForm::from_rule(&s.rules) {
        Some(f) => (f, false),
        None => (BuilderForm::default(), true),
    };
    f.id = Some(id);
    f.name = s.row.name.clone();
    f.description = s.row.description.clone().unwrap_or_default();
    let notice = match n.done.as_deref() {
        Some("saved") => Some(tr.t("seg-saved")),
        Some("recorded") => Some(tr.t("seg-recorded")),
        _ => None,
    };
    render_builder(
        &app,
        &staff,
        StatusCode::OK,
        notice,
        &f,
        Extra {
            // The last recorded size draws at once; the script counts now.
            count: s
                .latest
                .as_ref()
                .map(|c| tr.count("patients-count", c.patients))
                .unwrap_or_else(|| "–".into()),
            errors: Vec::new(),
            too_deep,
            rules_json: if too_deep {
                serde_json::to_string_pretty(&s.rules.to_json()).unwrap_or_default()
            } else {
                String::new()
            },
        },
    )
    .await
}

/// The builder's buttons: add a group or a condition, remove a
/// condition, count, save.
async fn build(
    State(app): State<App>,
    staff: Staff,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult {
    let tr = staff.tr;
    let mut f = BuilderForm::from_pairs(&pairs);
    let act = pairs
        .iter()
        .find(|(k, _)| k == "act")
        .map(|(_, v)| v.as_str())
        .unwrap_or("count");
    if let Some(g) = act.strip_prefix("add_condition:") {
        if let Some(gr) = g.parse::<usize>().ok().and_then(|g| f.groups.get_mut(g))
            && gr.conds.len() < MAX_CONDS
        {
            gr.conds.push(CondForm {
                field: "visits".into(),
                op: ">=".into(),
                value: "1".into(),
            });
        }
    } else if act == "add_group" {
        if f.groups.len() < MAX_GROUPS {
            f.groups.push(GroupForm::default());
        }
    } else if let Some(at) = act.strip_prefix("remove:") {
        if let Some((g, c)) = at.split_once('_')
            && let (Ok(g), Ok(c)) = (g.parse::<usize>(), c.parse::<usize>())
            && let Some(gr) = f.groups.get_mut(g)
            && c < gr.conds.len()
        {
            gr.conds.remove(c);
            if gr.conds.is_empty() {
                f.groups.remove(g);
            }
        }
    } else if act == "save" {
        if !staff.may(Permission::SegmentsManage) {
            return Err(PageError::forbidden(&staff));
        }
        let (json, _) = f.to_json();
        let mut errors = Vec::new();
        if let Err(e) = parse_form(tr, &f) {
            errors = e;
        } else {
            let input = SegmentInput {
                name: f.name.clone(),
                description: Some(f.description.clone()),
                rules: json,
            };
            let saved = match f.id {
                Some(id) => segments::update(&app, &staff.actor(), id, &input).await,
                None => segments::create(&app, &staff.actor(), &input).await,
            };
            match saved {
                Ok(s) => {
                    // The new definition's size goes into its history.
                    if let Err(e) = segments::record_count(&app, s.row.id, Reason::Request).await {
                        tracing::warn!(error = %e, "could not record a segment's count");
                    }
                    return Ok(
                        Redirect::to(&format!("/segments/{}?done=saved", s.row.id)).into_response()
                    );
                }
                Err(AppError::Conflict {
                    code: "segment_exists",
                    ..
                }) => errors.push(tr.t("seg-error-name-taken")),
                Err(AppError::Validation(v)) => {
                    for e in &v.0 {
                        errors.push(if e.field == "name" {
                            tr.t("seg-error-name")
                        } else if e.field == "description" {
                            tr.t("seg-error-description")
                        } else {
                            rule_error(tr, e, &f.to_json().1)
                        });
                    }
                }
                Err(e) => return Err(PageError::from_app(&staff, e)),
            }
        }
        let (count, _) = count_text(&app, tr, &f)
            .await
            .map_err(|e| PageError::from_app(&staff, e))?;
        return render_builder(
            &app,
            &staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            &f,
            Extra {
                count,
                errors,
                too_deep: false,
                rules_json: String::new(),
            },
        )
        .await;
    }
    let (count, errors) = count_text(&app, tr, &f)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    render_builder(
        &app,
        &staff,
        StatusCode::OK,
        None,
        &f,
        Extra {
            count,
            errors,
            too_deep: false,
            rules_json: String::new(),
        },
    )
    .await
}

/// The live count for the builder's script: `{"count": "1,234 patients",
/// "n": 1234, "errors": []}`.
async fn live_count(
    State(app): State<App>,
    staff: Staff,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let tr = staff.tr;
    let f = BuilderForm::from_pairs(&pairs);
    let body = match parse_form(tr, &f) {
        Ok(rule) => match segments::count_rules(&app, &rule).await {
            Ok((n, _)) => json!({"count": tr.count("patients-count", n), "n": n, "errors": []}),
            Err(e) => {
                tracing::error!(error = %e, "live segment count failed");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    axum::Json(json!({"errors": [tr.t("error-internal-text")]})),
                )
                    .into_response();
            }
        },
        Err(errors) => json!({"count": "–", "n": null, "errors": errors}),
    };
    let mut res = axum::Json(body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Records the segment's size now in its history.
async fn record(State(app): State<App>, staff: Staff, Path(id): Path<String>) -> PageResult {
    if !staff.may(Permission::SegmentsManage) {
        return Err(PageError::forbidden(&staff));
    }
    let Ok(id) = id.parse::<i64>() else {
        return Err(PageError::not_found(&staff));
    };
    segments::record_count(&app, id, Reason::Request)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    Ok(Redirect::to(&format!("/segments/{id}?done=recorded#history")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn the_form_reads_into_the_rule_set_and_back() {
        let f = BuilderForm::from_pairs(&pairs(&[
            ("top", "all"),
            ("g0_op", "all"),
            ("g0_c0_field", "sex"),
            ("g0_c0_op", "="),
            ("g0_c0_value", "F"),
            ("g1_op", "any"),
            ("g1_c0_field", "rfm_segment"),
            ("g1_c0_op", "in"),
            ("g1_c0_value", "champions, loyal"),
            ("g1_c1_field", "last_visit"),
            ("g1_c1_op", ">="),
            ("g1_c1_value", "180"),
            ("g1_c2_field", "consent.sms.marketing"),
            ("g1_c2_op", "="),
            ("g1_c2_value", "yes"),
        ]));
        let (json, paths) = f.to_json();
        assert_eq!(
            json,
            json!({"all": [
                {"field": "sex", "op": "=", "value": "F"},
                {"any": [
                    {"field": "rfm_segment", "op": "in", "value": ["champions", "loyal"]},
                    {"field": "last_visit", "op": ">=", "value": {"days_ago": 180}},
                    {"field": "consent.sms.marketing", "op": "=", "value": true},
                ]},
            ]})
        );
        assert_eq!(paths[0], ("rules.all[0]".to_string(), 0, 0));
        assert_eq!(paths[2], ("rules.all[1].any[1]".to_string(), 1, 1));
        let rule = segments::parse_rules(&json).expect("valid");
        let back = BuilderForm::from_rule(&rule).expect("two levels");
        assert_eq!(back.groups, f.groups);
    }

    #[test]
    fn errors_name_the_condition() {
        let f = BuilderForm::from_pairs(&pairs(&[
            ("g0_c0_field", "visits"),
            ("g0_c0_op", ">="),
            ("g0_c0_value", "many"),
        ]));
        let errs = parse_form(Tr::new(super::super::i18n::Locale::En), &f).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("Group 1, condition 1:"), "{errs:?}");
    }

    #[test]
    fn operator_labels_exist() {
        for (_, op) in Op::ALL {
            let key = op_key(*op);
            assert!(Tr::new(super::super::i18n::Locale::En).has(&key), "{key}");
        }
        for f in all_fields() {
            if !matches!(f, Field::Consent(..)) {
                let key = format!("seg-field-{}", f.name().replace('_', "-"));
                assert!(Tr::new(super::super::i18n::Locale::En).has(&key), "{key}");
            }
        }
    }
}
