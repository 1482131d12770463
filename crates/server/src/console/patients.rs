//! Patients: the list (search as you type, filters, sortable columns,
//! pages) and the 360° page with the desk's actions (record a visit,
//! record a consent decision). Contact fields are masked for roles
//! without the personal-data permission, as the API masks them.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{Datelike, NaiveDate};
use rapport_analytics::Segment;
use rapport_app::console::{ListQuery, ListRow, ListSort};
use rapport_app::patients::{self, PatientView};
use rapport_app::privacy::{self, ConsentInput};
use rapport_app::{App, AppError, visits};
use rapport_domain::auth::{Permission, mask};
use rapport_domain::consent::Purpose;
use rapport_domain::patient::{Channel, VisitInput, VisitKind};
use serde::Deserialize;

use super::guard::url_escape;
use super::i18n::Tr;
use super::membership::MemberFormState;
use super::{Layout, Page, PageError, PageResult, Section, Staff, html};

pub const PAGE: Page = Page {
    id: "patients",
    path: "/patients",
    title: "nav-patients",
    permission: Some(Permission::PatientsRead),
    section: Section::Main,
    icon: "M16 11a4 4 0 1 0-4-4 4 4 0 0 0 4 4zm-8 0a3 3 0 1 0-3-3 3 3 0 0 0 3 3zm0 2c-2.7 0-8 1.3-8 4v3h8v-3c0-1 .4-2 1.2-2.8A11 11 0 0 0 8 13zm8 0c-2.7 0-8 1.3-8 4v3h16v-3c0-2.7-5.3-4-8-4z",
    routes,
};

fn routes() -> Router<App> {
    Router::new()
        .route("/patients", get(list))
        .route("/patients/rows", get(rows))
        .route("/patients/{id}", get(show))
        .route("/patients/{id}/visits", post(record_visit))
        .route("/patients/{id}/consents", post(record_consent))
}

/// Rows per page of the list.
pub const PAGE_SIZE: i64 = 25;

/// The list's query string.
#[derive(Debug, Default, Deserialize)]
pub struct PatientListParams {
    pub q: Option<String>,
    pub segment: Option<String>,
    pub churn: Option<String>,
    pub sort: Option<String>,
    pub dir: Option<String>,
    pub page: Option<String>,
}

impl PatientListParams {
    fn q(&self) -> Option<&str> {
        self.q.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    fn segment(&self) -> Option<Segment> {
        self.segment
            .as_deref()
            .and_then(|s| Segment::ALL.iter().copied().find(|x| x.as_str() == s))
    }

    fn churn(&self) -> bool {
        matches!(self.churn.as_deref(), Some("1" | "on" | "true"))
    }

    fn sort(&self) -> ListSort {
        match self.sort.as_deref() {
            Some("name") => ListSort::Name,
            Some("last_visit") => ListSort::LastVisit,
            Some("visits") => ListSort::Visits,
            Some("monetary") => ListSort::Monetary,
            _ => ListSort::Id,
        }
    }

    fn descending(&self) -> bool {
        match self.dir.as_deref() {
            Some("asc") => false,
            Some("desc") => true,
            // Figures read best largest first, names and ids in order.
            _ => matches!(
                self.sort(),
                ListSort::LastVisit | ListSort::Visits | ListSort::Monetary
            ),
        }
    }

    fn page(&self) -> i64 {
        self.page
            .as_deref()
            .and_then(|p| p.parse::<i64>().ok())
            .unwrap_or(1)
            .clamp(1, 10_000)
    }

    /// The query string with some parameters replaced.
    fn with(&self, sort: Option<ListSort>, dir: Option<bool>, page: Option<i64>) -> String {
        let mut parts = Vec::new();
        if let Some(q) = self.q() {
            parts.push(format!("q={}", url_escape(q)));
        }
        if let Some(s) = self.segment() {
            parts.push(format!("segment={}", s.as_str()));
        }
        if self.churn() {
            parts.push("churn=1".to_string());
        }
        let sort = sort.unwrap_or(self.sort());
        if sort != ListSort::Id {
            parts.push(format!("sort={}", sort_code(sort)));
        }
        let desc = dir.unwrap_or(self.descending());
        parts.push(format!("dir={}", if desc { "desc" } else { "asc" }));
        let page = page.unwrap_or(self.page());
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        format!("/patients?{}", parts.join("&"))
    }
}

fn sort_code(s: ListSort) -> &'static str {
    match s {
        ListSort::Id => "id",
        ListSort::Name => "name",
        ListSort::LastVisit => "last_visit",
        ListSort::Visits => "visits",
        ListSort::Monetary => "monetary",
    }
}

/// A row of the table, ready to print.
pub struct RowView {
    pub href: String,
    pub name: String,
    pub patient_id: String,
    pub sex_age: String,
    pub phone: String,
    pub last_visit: String,
    pub visits: String,
    pub monetary: String,
    pub segment: String,
    pub segment_class: String,
    pub churn: bool,
}

fn age(birth_date: Option<NaiveDate>, birth_year: Option<i32>, today: NaiveDate) -> Option<i32> {
    match (birth_date, birth_year) {
        (Some(b), _) => {
            let mut a = today.year() - b.year();
            if (today.month(), today.day()) < (b.month(), b.day()) {
                a -= 1;
            }
            Some(a.max(0))
        }
        (None, Some(y)) => Some((today.year() - y).max(0)),
        _ => None,
    }
}

fn sex_label(tr: Tr, sex: Option<&str>) -> String {
    match sex {
        Some("M") => tr.t("sex-m"),
        Some("F") => tr.t("sex-f"),
        _ => String::new(),
    }
}

fn sex_age(tr: Tr, sex: Option<&str>, age: Option<i32>) -> String {
    let s = sex_label(tr, sex);
    match age {
        Some(a) => {
            let a = tr.count("age-years", i64::from(a));
            if s.is_empty() {
                a
            } else {
                format!("{s} · {a}")
            }
        }
        None => s,
    }
}

fn segment_label(tr: Tr, code: &str) -> String {
    tr.t(&format!("segment-{}", code.replace('_', "-")))
}

fn contact(staff: &Staff, v: Option<&str>) -> String {
    match v {
        Some(v) if staff.sees_personal_data() => v.to_string(),
        Some(v) => mask(v),
        None => String::new(),
    }
}

fn row_view(staff: &Staff, today: NaiveDate, r: ListRow) -> RowView {
    let tr = staff.tr;
    let erased = r.erased_at.is_some();
    RowView {
        href: format!("/patients/{}", r.id),
        name: if erased {
            tr.t("patient-erased")
        } else if r.name.is_empty() {
            tr.t("patient-unnamed")
        } else {
            r.name
        },
        patient_id: r.patient_id,
        sex_age: sex_age(tr, r.sex.as_deref(), age(r.birth_date, r.birth_year, today)),
        phone: contact(staff, r.phone.as_deref()),
        last_visit: tr.opt_date(r.last_visit),
        visits: r.visits.map(|v| tr.num(v)).unwrap_or_default(),
        monetary: r.monetary.map(|m| tr.money(m)).unwrap_or_default(),
        segment: r
            .segment
            .as_deref()
            .map(|s| segment_label(tr, s))
            .unwrap_or_default(),
        segment_class: r
            .segment
            .as_deref()
            .map(|s| format!("seg-{}", s.replace('_', "-")))
            .unwrap_or_default(),
        churn: r.churn_risk.unwrap_or(false),
    }
}

/// The rows for the parameters: a search when `q` is given, else a page
/// of the sorted, filtered list.
async fn find(
    app: &App,
    staff: &Staff,
    p: &PatientListParams,
) -> Result<(Vec<RowView>, bool), AppError> {
    let today = app.today();
    if let Some(q) = p.q() {
        let (rows, more) = rapport_app::console::search(app, q, PAGE_SIZE).await?;
        return Ok((
            rows.into_iter()
                .map(|r| row_view(staff, today, r))
                .collect(),
            more,
        ));
    }
    let (rows, more) = rapport_app::console::patient_list(
        app,
        ListQuery {
            sort: p.sort(),
            descending: p.descending(),
            segment: p.segment().map(|s| s.as_str().to_string()),
            churn_risk: p.churn(),
            offset: (p.page() - 1) * PAGE_SIZE,
            limit: PAGE_SIZE,
            ..Default::default()
        },
    )
    .await?;
    Ok((
        rows.into_iter()
            .map(|r| row_view(staff, today, r))
            .collect(),
        more,
    ))
}

/// A sortable column heading.
pub struct SortHead {
    pub label: String,
    pub href: String,
    /// `ascending`, `descending` or `none` (for `aria-sort`).
    pub aria: &'static str,
    pub class: &'static str,
}

pub struct SegmentOption {
    pub code: &'static str,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "console/patients.html")]
pub struct ListPage {
    pub l: Layout,
    pub q: String,
    pub churn: bool,
    pub segments: Vec<SegmentOption>,
    pub heads: Vec<SortHead>,
    pub rows: Vec<RowView>,
    pub page: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub searching: bool,
    pub masked: bool,
}

#[derive(Template)]
#[template(path = "console/patient_rows.html")]
pub struct RowsFragment {
    pub l: Layout,
    pub rows: Vec<RowView>,
    pub searching: bool,
}

async fn list(
    State(app): State<App>,
    staff: Staff,
    Query(p): Query<PatientListParams>,
) -> PageResult {
    let tr = staff.tr;
    let (rows, more) = find(&app, &staff, &p)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    let head = |key: &str, sort: Option<ListSort>| -> SortHead {
        let label = tr.t(key);
        match sort {
            None => SortHead {
                label,
                href: String::new(),
                aria: "none",
                class: "",
            },
            Some(s) => {
                let active = p.q().is_none() && p.sort() == s;
                let desc = p.descending();
                SortHead {
                    label,
                    // A second click reverses the order.
                    href: p.with(
                        Some(s),
                        Some(if active {
                            !desc
                        } else {
                            !matches!(s, ListSort::Id | ListSort::Name)
                        }),
                        Some(1),
                    ),
                    aria: match (active, desc) {
                        (false, _) => "none",
                        (true, true) => "descending",
                        (true, false) => "ascending",
                    },
                    class: "sortable",
                }
            }
        }
    };
    let heads = vec![
        head("col-name", Some(ListSort::Name)),
        head("col-patient-id", Some(ListSort::Id)),
        head("col-sex-age", None),
        head("col-phone", None),
        head("col-last-visit", Some(ListSort::LastVisit)),
        head("col-visits", Some(ListSort::Visits)),
        head("col-monetary", Some(ListSort::Monetary)),
        head("col-segment", None),
    ];
    let page = p.page();
    let searching = p.q().is_some();
    let here = p.with(None, None, None);
    let page_view = ListPage {
        l: Layout::for_staff(&staff, PAGE.id, tr.t(PAGE.title), &here),
        q: p.q().unwrap_or("").to_string(),
        churn: p.churn(),
        segments: Segment::ALL
            .iter()
            .map(|s| SegmentOption {
                code: s.as_str(),
                label: segment_label(tr, s.as_str()),
                selected: p.segment() == Some(*s),
            })
            .collect(),
        heads,
        rows,
        page,
        prev: (page > 1 && !searching).then(|| p.with(None, None, Some(page - 1))),
        next: (more && !searching).then(|| p.with(None, None, Some(page + 1))),
        searching,
        masked: !staff.sees_personal_data(),
    };
    Ok(html(StatusCode::OK, &page_view))
}

/// The table body for the search box's script.
async fn rows(
    State(app): State<App>,
    staff: Staff,
    Query(p): Query<PatientListParams>,
) -> PageResult {
    let (rows, _) = find(&app, &staff, &p)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    let tr = staff.tr;
    Ok(html(
        StatusCode::OK,
        &RowsFragment {
            l: Layout::for_staff(&staff, PAGE.id, tr.t(PAGE.title), PAGE.path),
            rows,
            searching: p.q().is_some(),
        },
    ))
}

/// A labelled value of the profile.
pub struct Field {
    pub label: String,
    pub value: String,
}

pub struct VisitView {
    pub date: String,
    pub visit_id: String,
    pub kind: String,
    pub department: String,
    pub doctor: String,
    pub amount: String,
}

pub struct ConsentView {
    pub channel: String,
    pub purpose: String,
    /// `granted`, `withdrawn` or `none`.
    pub state: &'static str,
    pub state_label: String,
    pub detail: String,
}

pub struct ConsentHistoryView {
    pub at: String,
    pub channel: String,
    pub purpose: String,
    pub granted: bool,
    pub decision: String,
    pub source: String,
    pub by: String,
}

pub struct Choice {
    pub code: &'static str,
    pub label: String,
}

#[derive(Template)]
#[template(path = "console/patient.html")]
pub struct Patient360Page {
    pub l: Layout,
    pub id: i64,
    pub name: String,
    pub initials: String,
    pub patient_id: String,
    pub subtitle: String,
    pub erased: bool,
    pub masked: bool,
    pub profile: Vec<Field>,
    pub tags: Vec<String>,
    pub stats: Vec<Field>,
    pub has_scores: bool,
    pub scores: Vec<Field>,
    pub segment: String,
    pub segment_class: String,
    pub churn: bool,
    pub scores_note: String,
    pub visits: Vec<VisitView>,
    pub more_visits: bool,
    pub departments: Vec<Field>,
    pub household: Vec<(String, String)>,
    pub consents: Vec<ConsentView>,
    pub consent_history: Vec<ConsentHistoryView>,
    pub can_record_visit: bool,
    pub can_record_consent: bool,
    pub kinds: Vec<Choice>,
    pub channels: Vec<Choice>,
    pub purposes: Vec<Choice>,
    pub today: String,
    pub new_visit_id: String,
    pub department_names: Vec<String>,
    pub visit_form: VisitFormState,
    pub consent_errors: Vec<(String, String)>,
    pub planned: Vec<String>,
    pub membership: super::membership::Membership,
    pub member_form: super::membership::MemberFormState,
}

/// What the visit form shows after a refused submission.
#[derive(Default, Clone)]
pub struct VisitFormState {
    pub open: bool,
    pub visit_id: String,
    pub visit_date: String,
    pub department: String,
    pub kind: String,
    pub amount: String,
    pub errors: Vec<(String, String)>,
}

#[derive(Deserialize)]
pub struct PatientNotice {
    done: Option<String>,
    voucher: Option<String>,
}

async fn show(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<String>,
    Query(d): Query<PatientNotice>,
) -> PageResult {
    let Ok(id) = id.parse::<i64>() else {
        return Err(PageError::not_found(&staff));
    };
    let notice = match d.done.as_deref() {
        Some("visit") => Some(staff.tr.t("patient-visit-recorded")),
        Some("consent") => Some(staff.tr.t("patient-consent-recorded")),
        Some("enrolled") => Some(staff.tr.t("member-enrolled")),
        Some("earned") => Some(staff.tr.t("member-earned")),
        Some("redeemed") => Some(staff.tr.t("member-redeemed")),
        Some("adjusted") => Some(staff.tr.t("member-adjusted")),
        Some("voucher") => Some(staff.tr.t1(
            "member-voucher-issued",
            "code",
            d.voucher.clone().unwrap_or_default(),
        )),
        Some("voucher_used") => Some(staff.tr.t("rewards-done-used")),
        Some("voucher_cancelled") => Some(staff.tr.t("rewards-done-cancelled")),
        Some("referral_code") => Some(staff.tr.t("member-referral-code-made")),
        _ => None,
    };
    let member_form = MemberFormState {
        new_voucher: d.voucher.unwrap_or_default(),
        ..Default::default()
    };
    render_patient(
        &app,
        &staff,
        id,
        StatusCode::OK,
        notice,
        VisitFormState::default(),
        Vec::new(),
        member_form,
    )
    .await
}

/// The 360° page after a refused membership form.
pub async fn render_for_membership(
    app: &App,
    staff: &Staff,
    id: i64,
    status: StatusCode,
    form: MemberFormState,
) -> PageResult {
    render_patient(
        app,
        staff,
        id,
        status,
        None,
        VisitFormState::default(),
        Vec::new(),
        form,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn render_patient(
    app: &App,
    staff: &Staff,
    id: i64,
    status: StatusCode,
    notice: Option<String>,
    visit_form: VisitFormState,
    consent_errors: Vec<(String, String)>,
    member_form: MemberFormState,
) -> PageResult {
    let actor = staff.actor();
    let (view, consent) = tokio::join!(patients::view(app, &actor, id), privacy::consents(app, id));
    let view = view.map_err(|e| PageError::from_app(staff, e))?;
    let consent = consent.map_err(|e| PageError::from_app(staff, e))?;
    let (membership, member_form) = super::membership::card(app, staff, id, member_form)
        .await
        .map_err(|e| PageError::from_app(staff, e))?;
    let today = app.today();
    let page = patient_view(staff, view, consent, today, visit_form, consent_errors);
    let mut page = page;
    page.l = page.l.with_notice(notice);
    if page.erased {
        page.membership = match membership {
            super::membership::Membership::None { .. } => {
                super::membership::Membership::None { can_enrol: false }
            }
            m => m,
        };
    } else {
        page.membership = membership;
    }
    page.member_form = member_form;
    Ok(html(status, &page))
}

fn initials(name: &str) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    if words.len() >= 2 {
        words
            .iter()
            .take(2)
            .filter_map(|w| w.chars().next())
            .collect::<String>()
            .to_uppercase()
    } else {
        name.chars().take(1).collect::<String>().to_uppercase()
    }
}

fn patient_view(
    staff: &Staff,
    v: PatientView,
    c: privacy::ConsentState,
    today: NaiveDate,
    mut visit_form: VisitFormState,
    consent_errors: Vec<(String, String)>,
) -> Patient360Page {
    let tr = staff.tr;
    let p = v.patient;
    let f = p.fields;
    let erased = p.erased_at.is_some();
    let unmasked = staff.sees_personal_data();
    let dash = || "–".to_string();
    let opt = |s: Option<String>| s.filter(|s| !s.is_empty()).unwrap_or_else(dash);
    let name = if erased {
        tr.t("patient-erased")
    } else if f.name.is_empty() {
        tr.t("patient-unnamed")
    } else {
        f.name.clone()
    };
    let age = age(f.birth_date, f.birth_year, today);
    let mut profile = vec![
        Field {
            label: tr.t("field-phone"),
            value: opt(f.phone.as_deref().map(|s| contact(staff, Some(s)))),
        },
        Field {
            label: tr.t("field-email"),
            value: opt(f.email.as_deref().map(|s| contact(staff, Some(s)))),
        },
        Field {
            label: tr.t("field-national-id"),
            value: opt(f.national_id.as_deref().map(|s| contact(staff, Some(s)))),
        },
        Field {
            label: tr.t("field-birth"),
            value: match (f.birth_date, f.birth_year) {
                (Some(d), _) => tr.date(d),
                (None, Some(y)) => y.to_string(),
                _ => dash(),
            },
        },
        Field {
            label: tr.t("field-district"),
            value: opt(f.district.clone()),
        },
        Field {
            label: tr.t("field-source"),
            value: opt(f.source_channel.clone()),
        },
        Field {
            label: tr.t("field-registered"),
            value: tr.opt_date(f.registered_on),
        },
        Field {
            label: tr.t("field-preferred-channel"),
            value: f
                .preferred_channel
                .map(|c| tr.t(&format!("channel-{}", c.as_str())))
                .unwrap_or_else(dash),
        },
        Field {
            label: tr.t("field-preferred-language"),
            value: f
                .preferred_language
                .and_then(|l| super::i18n::Locale::from_code(l.as_str()))
                .map(|l| l.native_name().to_string())
                .unwrap_or_else(dash),
        },
    ];
    if unmasked {
        profile.push(Field {
            label: tr.t("field-notes"),
            value: opt(f.notes.clone()),
        });
    }
    let stats = match &v.aggregates {
        Some(a) => vec![
            Field {
                label: tr.t("stat-visits"),
                value: tr.num(a.visits),
            },
            Field {
                label: tr.t("stat-monetary"),
                value: tr.money(a.monetary),
            },
            Field {
                label: tr.t("stat-first-visit"),
                value: tr.date(a.first_visit),
            },
            Field {
                label: tr.t("stat-last-visit"),
                value: tr.date(a.last_visit),
            },
            Field {
                label: tr.t("stat-recency"),
                value: tr.count("days-ago", (today - a.last_visit).num_days()),
            },
        ],
        None => Vec::new(),
    };
    let (has_scores, scores, segment, segment_class, churn, scores_note) = match &v.scores {
        Some(s) => (
            true,
            vec![
                Field {
                    label: tr.t("score-r"),
                    value: s.r_score.to_string(),
                },
                Field {
                    label: tr.t("score-f"),
                    value: s.f_score.to_string(),
                },
                Field {
                    label: tr.t("score-m"),
                    value: s.m_score.to_string(),
                },
                Field {
                    label: tr.t("score-p-alive"),
                    value: s.p_alive.map(|v| tr.pct(v, 0)).unwrap_or_else(dash),
                },
                Field {
                    label: tr.t("score-expected-visits"),
                    value: s
                        .expected_visits_90d
                        .map(|v| tr.dec(v, 1))
                        .unwrap_or_else(dash),
                },
                Field {
                    label: tr.t("score-clv"),
                    value: s.clv_12m.map(|v| tr.money(v)).unwrap_or_else(dash),
                },
            ],
            segment_label(tr, &s.segment),
            format!("seg-{}", s.segment.replace('_', "-")),
            s.churn_risk,
            tr.t1("score-refreshed", "at", tr.datetime(s.refreshed_at)),
        ),
        None => (
            false,
            Vec::new(),
            String::new(),
            String::new(),
            false,
            tr.t("score-none"),
        ),
    };
    let more_visits = v
        .aggregates
        .as_ref()
        .is_some_and(|a| a.visits > v.recent_visits.len() as i64);
    let visits = v
        .recent_visits
        .iter()
        .map(|x| VisitView {
            date: tr.date(x.visit_date),
            visit_id: x.visit_id.clone(),
            kind: tr.t(&format!("kind-{}", x.kind.as_str())),
            department: x.department.clone().unwrap_or_default(),
            doctor: x
                .doctor_name
                .clone()
                .or_else(|| x.doctor_id.clone())
                .unwrap_or_default(),
            amount: tr.money(x.amount.minor()),
        })
        .collect();
    let department_names = v
        .departments
        .iter()
        .filter_map(|d| d.department.clone())
        .collect();
    let departments = v
        .departments
        .iter()
        .map(|d| Field {
            label: d
                .department
                .clone()
                .unwrap_or_else(|| tr.t("department-none")),
            value: format!(
                "{} · {}",
                tr.count("visits-count", d.visits),
                tr.money(d.monetary)
            ),
        })
        .collect();
    let household = v
        .household
        .iter()
        .map(|h| {
            (
                format!("/patients/{}", h.id),
                format!("{} ({})", h.name, h.patient_id),
            )
        })
        .collect();
    let consents = c
        .in_force
        .iter()
        .map(|(ch, pu, rec)| {
            let (state, state_label, detail) = match rec {
                Some(r) if r.granted => (
                    "granted",
                    tr.t("consent-granted"),
                    format!("{} · {}", tr.datetime(r.recorded_at), r.source),
                ),
                Some(r) => (
                    "withdrawn",
                    tr.t("consent-withdrawn"),
                    format!("{} · {}", tr.datetime(r.recorded_at), r.source),
                ),
                None => ("none", tr.t("consent-none"), String::new()),
            };
            ConsentView {
                channel: tr.t(&format!("channel-{}", ch.as_str())),
                purpose: tr.t(&format!("purpose-{}", pu.as_str())),
                state,
                state_label,
                detail,
            }
        })
        .collect();
    let consent_history = c
        .history
        .iter()
        .rev()
        .map(|r| ConsentHistoryView {
            at: tr.datetime(r.recorded_at),
            channel: tr.t(&format!("channel-{}", r.channel)),
            purpose: tr.t(&format!("purpose-{}", r.purpose)),
            granted: r.granted,
            decision: if r.granted {
                tr.t("consent-granted")
            } else {
                tr.t("consent-withdrawn")
            },
            source: r.source.clone(),
            by: r.recorded_by.clone(),
        })
        .collect();
    if visit_form.visit_date.is_empty() {
        visit_form.visit_date = today.to_string();
    }
    if visit_form.visit_id.is_empty() {
        visit_form.visit_id = format!("C{}", staff_visit_suffix());
    }
    if visit_form.kind.is_empty() {
        visit_form.kind = "outpatient".into();
    }
    let subtitle = [
        sex_age(tr, f.sex.map(|s| s.as_str()), age),
        f.district.clone().unwrap_or_default(),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(" · ");
    Patient360Page {
        l: Layout::for_staff(staff, PAGE.id, name.clone(), &format!("/patients/{}", p.id)),
        id: p.id,
        initials: initials(&name),
        name,
        patient_id: p.patient_id,
        subtitle,
        erased,
        masked: !unmasked,
        profile,
        tags: f.tags,
        stats,
        has_scores,
        scores,
        segment,
        segment_class,
        churn,
        scores_note,
        visits,
        more_visits,
        departments,
        household,
        consents,
        consent_history,
        can_record_visit: staff.may(Permission::VisitsWrite) && !erased,
        can_record_consent: staff.may(Permission::PatientsWrite) && !erased,
        kinds: VisitKind::ALL
            .iter()
            .map(|k| Choice {
                code: k.as_str(),
                label: tr.t(&format!("kind-{}", k.as_str())),
            })
            .collect(),
        channels: Channel::ALL
            .iter()
            .map(|k| Choice {
                code: k.as_str(),
                label: tr.t(&format!("channel-{}", k.as_str())),
            })
            .collect(),
        purposes: Purpose::ALL
            .iter()
            .map(|k| Choice {
                code: k.as_str(),
                label: tr.t(&format!("purpose-{}", k.as_str())),
            })
            .collect(),
        today: today.to_string(),
        new_visit_id: visit_form.visit_id.clone(),
        department_names,
        visit_form,
        consent_errors,
        planned: [
            "planned-follow-ups",
            "planned-messages",
            "planned-surveys",
            "planned-complaints",
        ]
        .iter()
        .map(|k| tr.t(k))
        .collect(),
        membership: super::membership::Membership::Hidden,
        member_form: MemberFormState::default(),
    }
}

/// A visit id for the desk form: the time to the second and a random
/// tail, so two desks do not collide.
fn staff_visit_suffix() -> String {
    let now = chrono::Utc::now() + chrono::Duration::hours(8);
    format!(
        "{}{:03}",
        now.format("%Y%m%d%H%M%S"),
        now.timestamp_subsec_micros() % 1000
    )
}

#[derive(Deserialize)]
pub struct VisitForm {
    #[serde(default)]
    visit_id: String,
    #[serde(default)]
    visit_date: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    amount: String,
}

fn blank(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

async fn record_visit(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<String>,
    Form(f): Form<VisitForm>,
) -> PageResult {
    let Ok(id) = id.parse::<i64>() else {
        return Err(PageError::not_found(&staff));
    };
    if !staff.may(Permission::VisitsWrite) {
        return Err(PageError::forbidden(&staff));
    }
    let view = patients::view(&app, &staff.actor(), id)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    let input = VisitInput {
        visit_id: f.visit_id.trim().to_string(),
        visit_date: f.visit_date.trim().to_string(),
        department: blank(&f.department),
        doctor_id: None,
        doctor_name: None,
        kind: blank(&f.kind),
        amount: f.amount.trim().to_string(),
    };
    match visits::create(&app, &staff.actor(), &view.patient.patient_id, &input).await {
        Ok(_) => Ok(Redirect::to(&format!("/patients/{id}?done=visit#visits")).into_response()),
        Err(AppError::Validation(v)) => {
            let errors =
                v.0.iter()
                    .map(|e| super::field_error(staff.tr, e))
                    .collect();
            let form = VisitFormState {
                open: true,
                visit_id: f.visit_id,
                visit_date: f.visit_date,
                department: f.department,
                kind: f.kind,
                amount: f.amount,
                errors,
            };
            render_patient(
                &app,
                &staff,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                form,
                Vec::new(),
                MemberFormState::default(),
            )
            .await
        }
        Err(AppError::Conflict { .. }) => {
            let form = VisitFormState {
                open: true,
                visit_id: f.visit_id,
                visit_date: f.visit_date,
                department: f.department,
                kind: f.kind,
                amount: f.amount,
                errors: vec![("visit_id".into(), staff.tr.t("field-error-visit-exists"))],
            };
            render_patient(
                &app,
                &staff,
                id,
                StatusCode::CONFLICT,
                None,
                form,
                Vec::new(),
                MemberFormState::default(),
            )
            .await
        }
        Err(e) => Err(PageError::from_app(&staff, e)),
    }
}

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    granted: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    note: String,
}

async fn record_consent(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<String>,
    Form(f): Form<ConsentForm>,
) -> PageResult {
    let Ok(id) = id.parse::<i64>() else {
        return Err(PageError::not_found(&staff));
    };
    if !staff.may(Permission::PatientsWrite) {
        return Err(PageError::forbidden(&staff));
    }
    let input = ConsentInput {
        channel: f.channel,
        purpose: f.purpose,
        granted: f.granted == "yes",
        source: f.source,
        note: blank(&f.note),
    };
    match privacy::record_consent(&app, &staff.actor(), id, &input).await {
        Ok(_) => Ok(Redirect::to(&format!("/patients/{id}?done=consent#consent")).into_response()),
        Err(AppError::Validation(v)) => {
            let errors =
                v.0.iter()
                    .map(|e| super::field_error(staff.tr, e))
                    .collect();
            render_patient(
                &app,
                &staff,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                VisitFormState::default(),
                errors,
                MemberFormState::default(),
            )
            .await
        }
        Err(e) => Err(PageError::from_app(&staff, e)),
    }
}
