//! Imports: upload a patients or visits file (CSV or XLSX, with its
//! encoding and the skip-invalid choice), follow it while it runs, read
//! its report, download its rejected rows; the past imports.
//!
//! The file goes up as the body of a script's request (the CSRF token in
//! its header, so the guard leaves the body to stream to a temporary
//! file), then `rapport_app::import::start` runs it in the background as
//! for `POST /api/v1/imports`. The import's page asks for its panel again
//! every second while it runs.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rapport_app::App;
use rapport_app::import::{self, ImportView, Kind, Upload};
use rapport_domain::auth::Permission;
use serde::Deserialize;
use serde_json::json;

use super::i18n::Tr;
use super::{Layout, Page, PageError, PageResult, Section, Staff, html};

pub const PAGE: Page = Page {
    id: "imports",
    path: "/imports",
    title: "nav-imports",
    permission: Some(Permission::DataImport),
    section: Section::Admin,
    icon: "M5 20h14v-2H5v2zm7-18-5.5 5.5 1.4 1.4L11 5.8V16h2V5.8l3.1 3.1 1.4-1.4L12 2z",
    routes,
};

fn routes() -> Router<App> {
    Router::new()
        .route("/imports", get(list))
        .route("/imports/upload", post(upload))
        .route("/imports/{id}", get(show))
        .route("/imports/{id}/panel", get(panel))
        .route("/imports/{id}/rejects", get(rejects))
}

/// Largest file the console takes (the API takes larger ones).
const MAX_UPLOAD: u64 = 1 << 30;

/// How many past imports the list shows.
const LIST_LIMIT: i64 = 50;

pub struct ImportRow {
    pub href: String,
    pub file_name: String,
    pub kind: String,
    pub status: String,
    pub status_code: String,
    pub rows: String,
    pub rejected: String,
    pub started: String,
    pub actor: String,
}

fn kind_label(tr: Tr, k: &str) -> String {
    tr.t(&format!("import-kind-{k}"))
}

fn status_label(tr: Tr, s: &str) -> String {
    tr.t(&format!("import-status-{s}"))
}

fn row(tr: Tr, v: &ImportView) -> ImportRow {
    ImportRow {
        href: format!("/imports/{}", v.id),
        file_name: v.file_name.clone(),
        kind: kind_label(tr, &v.kind),
        status: status_label(tr, &v.status),
        status_code: v.status.clone(),
        rows: tr.num(v.rows_read),
        rejected: tr.num(v.rows_rejected),
        started: tr.datetime(v.started_at),
        actor: v.actor.clone(),
    }
}

#[derive(Template)]
#[template(path = "console/imports.html")]
pub struct ImportsListPage {
    pub l: Layout,
    pub rows: Vec<ImportRow>,
}

async fn list(State(app): State<App>, staff: Staff) -> PageResult {
    let tr = staff.tr;
    let all = import::list(&app, LIST_LIMIT)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    Ok(html(
        StatusCode::OK,
        &ImportsListPage {
            l: Layout::for_staff(&staff, PAGE.id, tr.t(PAGE.title), PAGE.path),
            rows: all.iter().map(|v| row(tr, v)).collect(),
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct ConsoleUploadParams {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    encoding: String,
    #[serde(default)]
    file_name: String,
    #[serde(default)]
    skip_invalid: Option<String>,
}

static UPLOADS: AtomicU64 = AtomicU64::new(0);

fn refused(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Saves the body to `path`, up to [`MAX_UPLOAD`] bytes; the size.
async fn save(body: Body, path: &std::path::Path) -> Result<u64, StatusCode> {
    use http_body_util::BodyExt;
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?,
    );
    let mut body = body;
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| StatusCode::BAD_REQUEST)?;
        if let Some(data) = frame.data_ref() {
            size += data.len() as u64;
            if size > MAX_UPLOAD {
                return Err(StatusCode::PAYLOAD_TOO_LARGE);
            }
            file.write_all(data)
                .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        }
    }
    file.flush()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(size)
}

/// The upload: `{"location": "/imports/ID"}`, or `{"error": "…"}`.
async fn upload(
    State(app): State<App>,
    staff: Staff,
    Query(q): Query<ConsoleUploadParams>,
    body: Body,
) -> Response {
    let tr = staff.tr;
    let kind = match Kind::parse(&q.kind) {
        Some(k @ (Kind::Patients | Kind::Visits)) => k,
        _ => return refused(StatusCode::UNPROCESSABLE_ENTITY, tr.t("import-error-kind")),
    };
    let encoding = match q.encoding.trim() {
        "" => Default::default(),
        e => match e.parse() {
            Ok(e) => e,
            Err(_) => {
                return refused(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    tr.t("import-error-encoding"),
                );
            }
        },
    };
    let file_name: String = q
        .file_name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let lower = file_name.to_lowercase();
    if !(lower.ends_with(".csv") || lower.ends_with(".xlsx") || lower.ends_with(".txt")) {
        return refused(StatusCode::UNPROCESSABLE_ENTITY, tr.t("import-error-type"));
    }
    let path = std::env::temp_dir().join(format!(
        "rapport-console-upload-{}-{}",
        std::process::id(),
        UPLOADS.fetch_add(1, Ordering::Relaxed)
    ));
    let size = match save(body, &path).await {
        Ok(n) => n,
        Err(status) => {
            let _ = std::fs::remove_file(&path);
            let key = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "import-error-too-large"
            } else {
                "import-error-upload"
            };
            return refused(status, tr.t(key));
        }
    };
    if size == 0 {
        let _ = std::fs::remove_file(&path);
        return refused(StatusCode::UNPROCESSABLE_ENTITY, tr.t("import-error-empty"));
    }
    let up = Upload {
        kind,
        file_name,
        path,
        encoding,
        map: Vec::new(),
        skip_invalid: matches!(q.skip_invalid.as_deref(), Some("1" | "on" | "true")),
    };
    match import::start(&app, &staff.actor(), up).await {
        Ok(id) => (
            StatusCode::ACCEPTED,
            Json(json!({ "id": id, "location": format!("/imports/{id}") })),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console import could not start");
            refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                tr.t("error-internal-text"),
            )
        }
    }
}

/// The figures of a report, as stored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StoredReport {
    rows_read: u64,
    inserted: u64,
    updated: u64,
    unchanged: u64,
    rejected: u64,
    patients_created: u64,
    duplicates_flagged: u64,
    committed: bool,
    warnings: Vec<String>,
    errors: Vec<String>,
    elapsed_ms: u64,
}

pub struct Figure {
    pub id: &'static str,
    pub label: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "console/import_panel.html")]
pub struct Panel {
    pub l: Layout,
    pub id: i64,
    pub status: String,
    pub status_code: String,
    pub summary: String,
    pub figures: Vec<Figure>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
    pub has_rejects: bool,
    pub duplicates: bool,
}

fn panel_view(staff: &Staff, v: &ImportView) -> Panel {
    let tr = staff.tr;
    let r: StoredReport = v
        .report
        .clone()
        .and_then(|j| serde_json::from_value(j).ok())
        .unwrap_or_default();
    let running = v.status == "running";
    let mut figures = vec![
        Figure {
            id: "rows",
            label: tr.t("import-rows"),
            value: tr.num(if running {
                v.rows_read
            } else {
                r.rows_read as i64
            }),
        },
        Figure {
            id: "rejected",
            label: tr.t("import-rejected"),
            value: tr.num(if running {
                v.rows_rejected
            } else {
                r.rejected as i64
            }),
        },
    ];
    if !running {
        for (id, key, n) in [
            ("inserted", "import-inserted", r.inserted),
            ("updated", "import-updated", r.updated),
            ("unchanged", "import-unchanged", r.unchanged),
            (
                "created-patients",
                "import-patients-created",
                r.patients_created,
            ),
            ("duplicates", "import-duplicates", r.duplicates_flagged),
        ] {
            figures.push(Figure {
                id,
                label: tr.t(key),
                value: tr.num(n as i64),
            });
        }
    }
    let summary = match v.status.as_str() {
        "running" => tr.t("import-summary-running"),
        "done" if r.rejected > 0 => tr.t("import-summary-done-skipped"),
        "done" => tr.t("import-summary-done"),
        _ if !r.committed && r.rejected > 0 => tr.t("import-summary-all-or-nothing"),
        _ => tr.t("import-summary-failed"),
    };
    Panel {
        l: Layout::for_staff(staff, PAGE.id, v.file_name.clone(), PAGE.path),
        id: v.id,
        status: status_label(tr, &v.status),
        status_code: v.status.clone(),
        summary: if running || r.elapsed_ms == 0 {
            summary
        } else {
            format!(
                "{summary} {}",
                tr.t1(
                    "import-elapsed",
                    "seconds",
                    tr.dec(r.elapsed_ms as f64 / 1000.0, 1)
                )
            )
        },
        figures,
        warnings: r.warnings,
        errors: r.errors,
        has_rejects: v.has_rejects,
        duplicates: r.duplicates_flagged > 0 && staff.may(Permission::PatientsRead),
    }
}

#[derive(Template)]
#[template(path = "console/import.html")]
pub struct ImportPage {
    pub l: Layout,
    pub file_name: String,
    pub meta: String,
    /// The panel, drawn (the script fetches it again while running).
    pub panel: String,
}

fn parse_id(staff: &Staff, id: &str) -> Result<i64, PageError> {
    id.parse::<i64>().map_err(|_| PageError::not_found(staff))
}

async fn show(State(app): State<App>, staff: Staff, Path(id): Path<String>) -> PageResult {
    let id = parse_id(&staff, &id)?;
    let tr = staff.tr;
    let v = import::get(&app, id)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    let mut meta = vec![
        kind_label(tr, &v.kind),
        tr.datetime(v.started_at),
        v.actor.clone(),
    ];
    if v.skip_invalid {
        meta.push(tr.t("import-skip-invalid-on"));
    }
    let page = ImportPage {
        l: Layout::for_staff(
            &staff,
            PAGE.id,
            v.file_name.clone(),
            &format!("/imports/{id}"),
        ),
        file_name: v.file_name.clone(),
        meta: meta.join(" · "),
        panel: panel_view(&staff, &v).render().unwrap_or_default(),
    };
    Ok(html(StatusCode::OK, &page))
}

async fn panel(State(app): State<App>, staff: Staff, Path(id): Path<String>) -> PageResult {
    let id = parse_id(&staff, &id)?;
    let v = import::get(&app, id)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    Ok(html(StatusCode::OK, &panel_view(&staff, &v)))
}

async fn rejects(State(app): State<App>, staff: Staff, Path(id): Path<String>) -> PageResult {
    let id = parse_id(&staff, &id)?;
    let csv = import::rejects(&app, id)
        .await
        .map_err(|e| PageError::from_app(&staff, e))?;
    let mut res = csv.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"rejects-{id}.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    super::secure_headers(&mut res);
    Ok(res)
}
