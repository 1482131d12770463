//! Duplicates: pairs of patients that are probably one person, side by
//! side, with dismiss and merge (the merge asks for confirmation; a
//! refused merge says why). Reading needs `patients:read`, acting
//! `patients:write`; contact details are masked as everywhere.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use rapport_app::console::ListRow;
use rapport_app::duplicates;
use rapport_app::{App, AppError};
use rapport_domain::auth::{Permission, mask};
use serde::Deserialize;

use super::{Layout, Page, PageError, PageResult, Section, Staff, html};

pub const PAGE: Page = Page {
    id: "duplicates",
    path: "/duplicates",
    title: "nav-duplicates",
    permission: Some(Permission::PatientsRead),
    section: Section::Main,
    icon: "M8 3h10a2 2 0 0 1 2 2v10h-2V5H8V3zM4 7h10a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V9a2 2 0 0 1 2-2z",
    routes,
};

fn routes() -> Router<App> {
    Router::new()
        .route("/duplicates", get(list))
        .route("/duplicates/{id}/dismiss", post(dismiss))
        .route("/duplicates/{id}/merge", post(merge))
}

/// Pairs per page.
const PAIRS_PAGE: i64 = 10;

pub struct SideField {
    pub label: String,
    pub value: String,
    pub differs: bool,
}

pub struct Side {
    pub id: i64,
    pub href: String,
    pub name: String,
    pub patient_id: String,
    pub fields: Vec<SideField>,
}

pub struct PairView {
    pub id: i64,
    pub reason: String,
    pub detected: String,
    /// The older record first, each with the message id of its role.
    pub sides: Vec<(Side, &'static str)>,
    pub older_id: i64,
    pub older_name: String,
    pub newer_id: i64,
    pub newer_name: String,
}

#[derive(Template)]
#[template(path = "console/duplicates.html")]
pub struct DuplicatesPage {
    pub l: Layout,
    pub pairs: Vec<PairView>,
    pub next: Option<String>,
    pub first: Option<String>,
    pub can_act: bool,
    pub masked: bool,
    pub errors: Vec<(String, String)>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DuplicateListParams {
    after: Option<i64>,
    done: Option<String>,
}

fn side(staff: &Staff, r: Option<&ListRow>, id: i64, other: Option<&ListRow>) -> Side {
    let tr = staff.tr;
    let phone = |r: Option<&ListRow>| match r.and_then(|r| r.phone.as_deref()) {
        Some(p) if staff.sees_personal_data() => p.to_string(),
        Some(p) => mask(p),
        None => "–".into(),
    };
    let birth = |r: Option<&ListRow>| match r {
        Some(r) => match (r.birth_date, r.birth_year) {
            (Some(d), _) => tr.date(d),
            (None, Some(y)) => y.to_string(),
            _ => "–".into(),
        },
        None => "–".into(),
    };
    let sex = |r: Option<&ListRow>| match r.and_then(|r| r.sex.as_deref()) {
        Some("M") => tr.t("sex-m"),
        Some("F") => tr.t("sex-f"),
        _ => "–".into(),
    };
    let visits = |r: Option<&ListRow>| {
        r.and_then(|r| r.visits)
            .map(|v| tr.num(v))
            .unwrap_or_else(|| "0".into())
    };
    let last = |r: Option<&ListRow>| tr.opt_date(r.and_then(|r| r.last_visit));
    let spend = |r: Option<&ListRow>| tr.money(r.and_then(|r| r.monetary).unwrap_or(0));
    let field = |key: &str, f: &dyn Fn(Option<&ListRow>) -> String, compare: bool| SideField {
        label: tr.t(key),
        value: f(r),
        differs: compare && other.is_some() && f(r) != f(other),
    };
    Side {
        id,
        href: format!("/patients/{id}"),
        name: match r {
            Some(r) if r.erased_at.is_some() => tr.t("patient-erased"),
            Some(r) if !r.name.is_empty() => r.name.clone(),
            _ => tr.t("patient-unnamed"),
        },
        patient_id: r.map(|r| r.patient_id.clone()).unwrap_or_default(),
        fields: vec![
            field("field-phone", &phone, true),
            field("field-birth", &birth, true),
            field("dup-sex", &sex, true),
            field("col-visits", &visits, false),
            field("col-last-visit", &last, false),
            field("col-monetary", &spend, false),
        ],
    }
}

async fn render(
    app: &App,
    staff: &Staff,
    p: &DuplicateListParams,
    status: StatusCode,
    notice: Option<String>,
    errors: Vec<(String, String)>,
) -> PageResult {
    let tr = staff.tr;
    let err = |e| PageError::from_app(staff, e);
    let after = p.after.unwrap_or(0).max(0);
    let mut pairs = duplicates::list(app, "open", after, PAIRS_PAGE + 1)
        .await
        .map_err(err)?;
    let more = pairs.len() as i64 > PAIRS_PAGE;
    pairs.truncate(PAIRS_PAGE as usize);
    let ids: Vec<i64> = pairs
        .iter()
        .flat_map(|p| [p.duplicate_of, p.patient_key])
        .collect();
    let rows = rapport_app::console::patient_rows(app, &ids)
        .await
        .map_err(err)?;
    let find = |id: i64| rows.iter().find(|r| r.id == id);
    let views = pairs
        .iter()
        .map(|p| {
            let (older, newer) = (find(p.duplicate_of), find(p.patient_key));
            let (o, n) = (
                side(staff, older, p.duplicate_of, newer),
                side(staff, newer, p.patient_key, older),
            );
            PairView {
                id: p.id,
                reason: tr.t(&format!("dup-reason-{}", p.reason.replace('_', "-"))),
                detected: tr.datetime(p.detected_at),
                older_id: o.id,
                older_name: o.name.clone(),
                newer_id: n.id,
                newer_name: n.name.clone(),
                sides: vec![(o, "dup-older"), (n, "dup-newer")],
            }
        })
        .collect();
    let page = DuplicatesPage {
        l: Layout::for_staff(staff, PAGE.id, tr.t(PAGE.title), PAGE.path).with_notice(notice),
        pairs: views,
        next: more
            .then(|| pairs.last().map(|p| format!("/duplicates?after={}", p.id)))
            .flatten(),
        first: (after > 0).then(|| "/duplicates".to_string()),
        can_act: staff.may(Permission::PatientsWrite),
        masked: !staff.sees_personal_data(),
        errors,
    };
    Ok(html(status, &page))
}

async fn list(
    State(app): State<App>,
    staff: Staff,
    Query(p): Query<DuplicateListParams>,
) -> PageResult {
    let notice = match p.done.as_deref() {
        Some("dismissed") => Some(staff.tr.t("dup-dismissed")),
        Some("merged") => Some(staff.tr.t("dup-merged")),
        _ => None,
    };
    render(&app, &staff, &p, StatusCode::OK, notice, Vec::new()).await
}

fn refusal(staff: &Staff, e: AppError) -> Result<(StatusCode, String), PageError> {
    let tr = staff.tr;
    Ok(match e {
        AppError::Conflict { code, .. } => {
            let key = format!("dup-error-{}", code.replace('_', "-"));
            (
                StatusCode::CONFLICT,
                if tr.has(&key) {
                    tr.t(&key)
                } else {
                    tr.t("dup-error-other")
                },
            )
        }
        AppError::NotFound(_) => (StatusCode::NOT_FOUND, tr.t("dup-error-gone")),
        AppError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, tr.t("dup-error-other")),
        e => return Err(PageError::from_app(staff, e)),
    })
}

async fn dismiss(State(app): State<App>, staff: Staff, Path(id): Path<String>) -> PageResult {
    if !staff.may(Permission::PatientsWrite) {
        return Err(PageError::forbidden(&staff));
    }
    let Ok(id) = id.parse::<i64>() else {
        return Err(PageError::not_found(&staff));
    };
    match duplicates::dismiss(&app, &staff.actor(), id).await {
        Ok(_) => Ok(Redirect::to("/duplicates?done=dismissed").into_response()),
        Err(e) => {
            let (status, m) = refusal(&staff, e)?;
            render(
                &app,
                &staff,
                &DuplicateListParams::default(),
                status,
                None,
                vec![(format!("pair-{id}"), m)],
            )
            .await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct MergeForm {
    #[serde(default)]
    keep: String,
}

async fn merge(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<String>,
    Form(f): Form<MergeForm>,
) -> PageResult {
    if !staff.may(Permission::PatientsWrite) {
        return Err(PageError::forbidden(&staff));
    }
    let Ok(id) = id.parse::<i64>() else {
        return Err(PageError::not_found(&staff));
    };
    // The pair names both patients; the form says which one is kept.
    let pair = duplicates::list(&app, "open", id - 1, 1)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?
        .into_iter()
        .find(|p| p.id == id);
    let Some(pair) = pair else {
        let m = staff.tr.t("dup-error-gone");
        return render(
            &app,
            &staff,
            &DuplicateListParams::default(),
            StatusCode::CONFLICT,
            None,
            vec![(format!("pair-{id}"), m)],
        )
        .await;
    };
    let keep: i64 = f.keep.parse().unwrap_or(pair.duplicate_of);
    let from = if keep == pair.patient_key {
        pair.duplicate_of
    } else {
        pair.patient_key
    };
    let keep = if from == pair.patient_key {
        pair.duplicate_of
    } else {
        pair.patient_key
    };
    match duplicates::merge(&app, &staff.actor(), keep, from).await {
        Ok(_) => Ok(Redirect::to("/duplicates?done=merged").into_response()),
        Err(e) => {
            let (status, m) = refusal(&staff, e)?;
            render(
                &app,
                &staff,
                &DuplicateListParams::default(),
                status,
                None,
                vec![(format!("pair-{id}"), m)],
            )
            .await
        }
    }
}
