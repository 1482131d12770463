//! `/api/v1/imports`: upload a hospital file, follow the import, read its
//! report, download its rejected rows; `/exports/patients`: the patient
//! list as CSV or XLSX.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rapport_app::App;
use rapport_app::import::{self, ImportView, Kind, Upload};
use rapport_domain::auth::Role;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::actor::Who;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiPath, ApiQuery};

/// Largest file accepted (the import itself streams, whatever the size).
const MAX_UPLOAD: u64 = 4 << 30;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// `patients`, `visits` or `fhir`.
    pub kind: String,
    /// The file's name, for the report and error locations.
    pub file_name: Option<String>,
    /// `auto` (default), `utf-8` or `gbk`.
    pub encoding: Option<String>,
    /// Column renames `SOURCE=TARGET`, separated by `;`.
    pub map: Option<String>,
    /// Import the valid rows and keep the invalid ones as rejects,
    /// instead of importing nothing when a row is invalid.
    #[serde(default)]
    pub skip_invalid: bool,
}

/// An import: while `running`, `rows_read` grows; when `done` or
/// `failed`, `report` says what happened.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportOut {
    pub id: i64,
    /// `patients`, `visits` or `fhir`.
    pub kind: String,
    pub file_name: String,
    /// `running`, `done` or `failed` (nothing committed).
    pub status: String,
    pub skip_invalid: bool,
    pub rows_read: i64,
    pub rows_rejected: i64,
    /// Whether `GET /imports/{id}/rejects` has the rejected rows.
    pub has_rejects: bool,
    pub actor: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Counts (inserted, updated, unchanged, rejected, patients_created,
    /// duplicates_flagged), warnings and the first errors as
    /// `FILE:ROW:COLUMN: reason`.
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
}

impl From<ImportView> for ImportOut {
    fn from(v: ImportView) -> Self {
        ImportOut {
            id: v.id,
            kind: v.kind,
            file_name: v.file_name,
            status: v.status,
            skip_invalid: v.skip_invalid,
            rows_read: v.rows_read,
            rows_rejected: v.rows_rejected,
            has_rejects: v.has_rejects,
            actor: v.actor,
            started_at: v.started_at,
            finished_at: v.finished_at,
            report: v.report,
        }
    }
}

static UPLOADS: AtomicU64 = AtomicU64::new(0);

/// Upload a file (the request body, as is: CSV, XLSX, FHIR JSON or
/// NDJSON) and start importing it. Answers at once with the import, whose
/// progress `GET /imports/{id}` shows.
#[utoipa::path(post, path = "/imports", tag = "imports",
    params(UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 202, body = ImportOut),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn upload(
    State(app): State<App>,
    who: Who,
    ApiQuery(q): ApiQuery<UploadParams>,
    body: Body,
) -> ApiResult<(StatusCode, axum::Json<ImportOut>)> {
    let kind = Kind::parse(&q.kind)
        .ok_or_else(|| ApiError::invalid("kind", "invalid", "must be patients, visits or fhir"))?;
    let encoding = match q.encoding.as_deref() {
        None => Default::default(),
        Some(e) => e
            .parse()
            .map_err(|m: String| ApiError::invalid("encoding", "invalid", m))?,
    };
    let map = match q.map.as_deref() {
        None => Vec::new(),
        Some(m) => m
            .split(';')
            .filter(|s| !s.trim().is_empty())
            .map(rapport_interop::csv::parse_map)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| ApiError::invalid("map", "invalid", m))?,
    };
    let file_name = q
        .file_name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("upload.{}", q.kind));
    let path = std::env::temp_dir().join(format!(
        "rapport-upload-{}-{}",
        std::process::id(),
        UPLOADS.fetch_add(1, Ordering::Relaxed)
    ));
    let saved = save(body, &path).await;
    let size = match saved {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    if size == 0 {
        let _ = std::fs::remove_file(&path);
        return Err(ApiError::invalid("body", "required", "the file is empty"));
    }
    let up = Upload {
        kind,
        file_name,
        path,
        encoding,
        map,
        skip_invalid: q.skip_invalid,
    };
    let id = import::start(&app, &who.actor, up).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(import::get(&app, id).await?.into()),
    ))
}

/// Streams the body to `path`; returns its size.
async fn save(body: Body, path: &std::path::Path) -> Result<u64, ApiError> {
    use http_body_util::BodyExt;
    let io = |e: std::io::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "upload_failed",
            format!("the upload could not be saved: {e}"),
        )
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    let mut body = body;
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "upload_interrupted", e.to_string())
        })?;
        if let Some(data) = frame.data_ref() {
            size += data.len() as u64;
            if size > MAX_UPLOAD {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("files up to {} GiB are accepted", MAX_UPLOAD >> 30),
                ));
            }
            file.write_all(data).map_err(io)?;
        }
    }
    file.flush().map_err(io)?;
    Ok(size)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportListParams {
    #[serde(default = "super::default_limit")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: i64,
}

/// The latest imports, newest first.
#[utoipa::path(get, path = "/imports", tag = "imports", params(ImportListParams),
    responses((status = 200, body = Vec<ImportOut>)))]
pub async fn list(
    State(app): State<App>,
    ApiQuery(q): ApiQuery<ImportListParams>,
) -> ApiResult<axum::Json<Vec<ImportOut>>> {
    if !(1..=500).contains(&q.limit) {
        return Err(ApiError::invalid(
            "limit",
            "out_of_range",
            "must be 1 to 500",
        ));
    }
    let all = import::list(&app, q.limit).await?;
    Ok(axum::Json(all.into_iter().map(Into::into).collect()))
}

/// One import: its progress while it runs, its report after.
#[utoipa::path(get, path = "/imports/{id}", tag = "imports",
    params(("id" = i64, Path)),
    responses((status = 200, body = ImportOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<ImportOut>> {
    Ok(axum::Json(import::get(&app, id).await?.into()))
}

/// The rows an import rejected, as CSV: the file's own columns, then
/// `row` and `reason`. Fix them and upload this file again.
#[utoipa::path(get, path = "/imports/{id}/rejects", tag = "imports",
    params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn rejects(State(app): State<App>, ApiPath(id): ApiPath<i64>) -> ApiResult<Response> {
    let csv = import::rejects(&app, id).await?;
    let mut res = csv.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"rejects-{id}.csv\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `csv` (default) or `xlsx`.
    pub format: Option<String>,
}

/// Every patient as a list (CSV or XLSX), with phone and email masked
/// for roles without `personal_data:read`. Recorded in the audit log.
#[utoipa::path(get, path = "/exports/patients", tag = "imports",
    params(ExportParams),
    responses((status = 200, content_type = "text/csv", body = String), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn export_patients(
    State(app): State<App>,
    who: Who,
    ApiQuery(q): ApiQuery<ExportParams>,
) -> ApiResult<Response> {
    let format = rapport_interop::table::Format::parse(q.format.as_deref().unwrap_or("csv"))
        .ok_or_else(|| ApiError::invalid("format", "invalid", "must be csv or xlsx"))?;
    let role: Option<Role> = Some(who.principal.role);
    let (_, out) = rapport_app::export::patient_list(
        &app,
        &who.actor,
        role,
        format,
        std::io::Cursor::new(Vec::new()),
    )
    .await?;
    let mut res = out.into_inner().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"patients.{}\"",
        format.extension()
    )) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}
