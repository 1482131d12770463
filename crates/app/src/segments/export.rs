//! Exporting a segment's members as a file, streamed page by page.
//!
//! The rows are produced once, as typed cells ([`Cell`]); a [`Format`]
//! turns them into bytes. CSV is the only format today; another (XLSX)
//! is one more variant of [`Format`] and one more [`TableWriter`].
//! Contact fields are masked unless the caller may see personal data, as
//! in the patient routes; national ids and notes are never exported.

use chrono::NaiveDate;
use rapport_domain::auth::mask;
use rapport_domain::money::format_minor;
use rapport_store::segments::{self as store, Member};
use serde_json::json;
use tokio::sync::mpsc;

use crate::audit::{self, Actor};
use crate::{App, AppError, Result};

/// Patient keys read per query while exporting.
const WINDOW: i64 = 20_000;

/// A file format of exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
}

impl Format {
    pub const ALL: &'static [Format] = &[Format::Csv];

    pub fn parse(s: &str) -> Option<Format> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    fn writer(self) -> Box<dyn TableWriter> {
        match self {
            Format::Csv => Box::new(CsvWriter),
        }
    }
}

/// One value of an exported row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Int(i64),
    Float(f64),
    /// Minor units.
    Money(i64),
    Date(NaiveDate),
    Bool(bool),
}

/// Writes a table in one format: a header, rows, an end.
pub trait TableWriter: Send {
    fn header(&mut self, out: &mut Vec<u8>, columns: &[&str]);
    fn row(&mut self, out: &mut Vec<u8>, cells: &[Cell]);
    fn finish(&mut self, out: &mut Vec<u8>);
}

/// RFC 4180 CSV, UTF-8, CRLF line ends. Text that a spreadsheet would
/// read as a formula (starting with `=`, `+`, `-`, `@`) gets a leading
/// apostrophe.
struct CsvWriter;

fn csv_text(out: &mut Vec<u8>, s: &str) {
    let guarded = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = guarded || s.contains([',', '"', '\n', '\r']);
    if quote {
        out.push(b'"');
    }
    if guarded {
        out.push(b'\'');
    }
    for b in s.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    if quote {
        out.push(b'"');
    }
}

impl TableWriter for CsvWriter {
    fn header(&mut self, out: &mut Vec<u8>, columns: &[&str]) {
        let cells: Vec<Cell> = columns.iter().map(|c| Cell::Text(c.to_string())).collect();
        self.row(out, &cells);
    }

    fn row(&mut self, out: &mut Vec<u8>, cells: &[Cell]) {
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match c {
                Cell::Empty => {}
                Cell::Text(s) => csv_text(out, s),
                Cell::Int(v) => out.extend_from_slice(v.to_string().as_bytes()),
                Cell::Float(v) => out.extend_from_slice(format!("{v:.6}").as_bytes()),
                Cell::Money(v) => out.extend_from_slice(format_minor(i128::from(*v)).as_bytes()),
                Cell::Date(d) => out.extend_from_slice(d.format("%Y-%m-%d").to_string().as_bytes()),
                Cell::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    fn finish(&mut self, _: &mut Vec<u8>) {}
}

/// The exported columns, in order.
pub const COLUMNS: &[&str] = &[
    "id",
    "patient_id",
    "name",
    "sex",
    "birth_year",
    "phone",
    "email",
    "district",
    "source_channel",
    "registered_on",
    "tags",
    "visits",
    "visit_days",
    "monetary",
    "first_visit",
    "last_visit",
    "recency_days",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "p_alive",
    "expected_visits_90d",
    "clv_12m",
    "churn_risk",
];

/// The cells of one member, masked unless `unmasked`.
pub fn cells(m: &Member, today: NaiveDate, unmasked: bool) -> Vec<Cell> {
    let f = &m.patient.fields;
    let text = |s: &Option<String>| s.clone().map(Cell::Text).unwrap_or(Cell::Empty);
    let contact = |s: &Option<String>| match s {
        Some(v) if unmasked => Cell::Text(v.clone()),
        Some(v) => Cell::Text(mask(v)),
        None => Cell::Empty,
    };
    let a = m.aggregates.as_ref();
    let s = m.scores.as_ref();
    let opt = |v: Option<Cell>| v.unwrap_or(Cell::Empty);
    vec![
        Cell::Int(m.patient.id),
        Cell::Text(m.patient.patient_id.clone()),
        Cell::Text(f.name.clone()),
        opt(f.sex.map(|s| Cell::Text(s.as_str().into()))),
        opt(f.birth_year.map(|y| Cell::Int(i64::from(y)))),
        contact(&f.phone),
        contact(&f.email),
        text(&f.district),
        text(&f.source_channel),
        opt(f.registered_on.map(Cell::Date)),
        Cell::Text(f.tags.join(";")),
        Cell::Int(a.map_or(0, |a| a.visits)),
        Cell::Int(a.map_or(0, |a| a.visit_days)),
        Cell::Money(a.map_or(0, |a| a.monetary)),
        opt(a.map(|a| Cell::Date(a.first_visit))),
        opt(a.map(|a| Cell::Date(a.last_visit))),
        opt(a.map(|a| Cell::Int((today - a.last_visit).num_days()))),
        opt(s.map(|s| Cell::Int(s.r_score))),
        opt(s.map(|s| Cell::Int(s.f_score))),
        opt(s.map(|s| Cell::Int(s.m_score))),
        opt(s.map(|s| Cell::Text(s.segment.clone()))),
        opt(s.and_then(|s| s.p_alive).map(Cell::Float)),
        opt(s.and_then(|s| s.expected_visits_90d).map(Cell::Float)),
        opt(s.and_then(|s| s.clv_12m).map(Cell::Money)),
        opt(s.map(|s| Cell::Bool(s.churn_risk))),
    ]
}

/// An export under way: its chunks arrive on `chunks`; an `Err` item means
/// the export broke off (the error is logged).
pub struct Export {
    pub format: Format,
    /// A file name for `Content-Disposition`.
    pub file_name: String,
    pub chunks: mpsc::Receiver<std::result::Result<Vec<u8>, String>>,
}

/// Starts exporting a segment's members. The export is recorded in the
/// audit log (`segment.export`) before the first byte is sent.
pub async fn start(
    app: &App,
    actor: &Actor,
    id: i64,
    format: Format,
    unmasked: bool,
) -> Result<Export> {
    let segment = super::get(app, id).await?;
    let mut tx = app.db.begin().await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "segment.export",
        Some(("segment", id)),
        Some(
            json!({"name": segment.row.name, "format": format.as_str(), "masked": !unmasked})
                .to_string(),
        ),
    )
    .await?;
    tx.commit().await?;
    let (tx, rx) = mpsc::channel(4);
    let app = app.clone();
    let today = app.today();
    tokio::spawn(async move {
        let mut w = format.writer();
        let mut buf = Vec::with_capacity(64 * 1024);
        w.header(&mut buf, COLUMNS);
        // Windows of keys, not `LIMIT` pages: each query reads a bounded
        // range whatever the plan, so the whole export reads each
        // patient once.
        let last = match store::max_key(&app.db, app.hospital_id).await {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(segment = id, error = %e, "segment export failed");
                let _ = tx.send(Err(AppError::from(e).to_string())).await;
                return;
            }
        };
        let mut after = 0;
        while after < last {
            let upto = after.saturating_add(WINDOW);
            let page = match store::members(
                &app.db,
                app.hospital_id,
                &segment.rules,
                today,
                (after, upto),
                WINDOW,
            )
            .await
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(segment = id, error = %e, "segment export failed");
                    let _ = tx.send(Err(AppError::from(e).to_string())).await;
                    return;
                }
            };
            for m in &page {
                w.row(&mut buf, &cells(m, today, unmasked));
            }
            after = upto;
            if buf.len() >= 256 * 1024 && tx.send(Ok(std::mem::take(&mut buf))).await.is_err() {
                // The client went away.
                return;
            }
        }
        w.finish(&mut buf);
        let _ = tx.send(Ok(buf)).await;
    });
    Ok(Export {
        format,
        file_name: format!("segment-{id}.{}", format.as_str()),
        chunks: rx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let mut out = Vec::new();
        CsvWriter.row(
            &mut out,
            &[
                Cell::Text("a,b".into()),
                Cell::Text("=1+1".into()),
                Cell::Text("say \"hi\"".into()),
                Cell::Money(12345),
                Cell::Empty,
                Cell::Bool(true),
            ],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a,b\",\"'=1+1\",\"say \"\"hi\"\"\",123.45,,true\r\n"
        );
    }
}
