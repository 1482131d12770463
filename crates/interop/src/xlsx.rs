//! Excel workbooks (`.xlsx`): the first worksheet read as a table, the
//! first non-empty row being the header, with the same columns, checks and
//! `FILE:ROW:COLUMN` errors as CSV (ROW is the spreadsheet's row number).
//!
//! The worksheet is streamed cell by cell on a thread of its own and
//! handed over row by row through a small bounded channel, so memory stays
//! bounded by the workbook's shared strings, not by its number of rows,
//! and unzipping and XML parsing run beside the import.
//!
//! Cells become the text a person would type: whole numbers without a
//! decimal point (a phone number stored as a number stays `13812345678`),
//! other numbers in their shortest exact form, dates as `YYYY-MM-DD`.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use calamine::{DataRef, Reader, Xlsx};
use chrono::{Days, NaiveDate};

use crate::csv::{
    CsvOptions, PatientRows, RecordSource, RowError, VisitRows, patients_from, visits_from,
};

/// Rows in flight between the reading thread and the import.
const IN_FLIGHT: usize = 512;

type Item = Result<(u64, Vec<String>), String>;

/// The first worksheet of a workbook, row by row.
pub struct XlsxSource {
    rows: Receiver<Item>,
}

/// Whether `head` (the first bytes of a file) is a zip archive, as every
/// `.xlsx` is.
pub fn looks_like_xlsx(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04")
}

fn error(opts: &CsvOptions, reason: String) -> Vec<RowError> {
    vec![RowError {
        file: opts.file.clone(),
        row: 1,
        column: String::new(),
        reason,
    }]
}

impl XlsxSource {
    /// Opens the workbook at `path` and starts reading its first sheet.
    pub fn open(path: &Path, opts: &CsvOptions) -> Result<Self, Vec<RowError>> {
        let workbook: Xlsx<BufReader<File>> = calamine::open_workbook(path)
            .map_err(|e| error(opts, format!("not a readable .xlsx workbook: {e}")))?;
        let Some(sheet) = workbook.sheet_names().first().cloned() else {
            return Err(error(opts, "the workbook has no worksheet".into()));
        };
        let (tx, rx) = sync_channel(IN_FLIGHT);
        std::thread::Builder::new()
            .name("xlsx-reader".into())
            .spawn(move || read_sheet(workbook, &sheet, tx))
            .map_err(|e| error(opts, e.to_string()))?;
        Ok(XlsxSource { rows: rx })
    }
}

fn read_sheet(mut workbook: Xlsx<BufReader<File>>, sheet: &str, tx: SyncSender<Item>) {
    let mut reader = match workbook.worksheet_cells_reader(sheet) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Err(e.to_string()));
            return;
        }
    };
    let mut row: Option<u32> = None;
    let mut cells: Vec<String> = Vec::new();
    loop {
        match reader.next_cell() {
            Ok(Some(cell)) => {
                let (r, c) = cell.get_position();
                if row != Some(r) {
                    if let Some(done) = row
                        && tx
                            .send(Ok((u64::from(done) + 1, std::mem::take(&mut cells))))
                            .is_err()
                    {
                        return;
                    }
                    row = Some(r);
                }
                let c = c as usize;
                if cells.len() <= c {
                    cells.resize(c + 1, String::new());
                }
                cells[c] = text(cell.get_value());
            }
            Ok(None) => break,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return;
            }
        }
    }
    if let Some(done) = row {
        let _ = tx.send(Ok((u64::from(done) + 1, cells)));
    }
}

/// The text of a cell.
fn text(v: &DataRef<'_>) -> String {
    match v {
        DataRef::Empty => String::new(),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => number(*f),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(d) => {
            // Serial days since 1899-12-30 (the 1900 date system).
            let days = d.as_f64().floor();
            if d.is_datetime() && (0.0..2_958_466.0).contains(&days) {
                NaiveDate::from_ymd_opt(1899, 12, 30)
                    .and_then(|e| e.checked_add_days(Days::new(days as u64)))
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| number(d.as_f64()))
            } else {
                number(d.as_f64())
            }
        }
        DataRef::Error(e) => format!("#{e:?}"),
    }
}

fn number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

impl RecordSource for XlsxSource {
    fn header(&mut self) -> Result<(u64, Vec<String>), String> {
        loop {
            match self.rows.recv() {
                Ok(Ok((row, cells))) if cells.iter().any(|c| !c.trim().is_empty()) => {
                    return Ok((row, cells));
                }
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err("the first worksheet is empty".into()),
            }
        }
    }

    fn next_record(&mut self, rec: &mut Vec<String>) -> Option<Result<u64, (u64, String, bool)>> {
        match self.rows.recv() {
            Ok(Ok((row, cells))) => {
                *rec = cells;
                Some(Ok(row))
            }
            Ok(Err(e)) => Some(Err((0, e, true))),
            Err(_) => None,
        }
    }
}

/// Opens a workbook of patients; see [`crate::csv::read_patients`].
pub fn read_patients(
    path: &Path,
    opts: &CsvOptions,
) -> Result<PatientRows<XlsxSource>, Vec<RowError>> {
    patients_from(XlsxSource::open(path, opts)?, opts)
}

/// Opens a workbook of visits; see [`crate::csv::read_visits`].
pub fn read_visits(path: &Path, opts: &CsvOptions) -> Result<VisitRows<XlsxSource>, Vec<RowError>> {
    visits_from(XlsxSource::open(path, opts)?, opts)
}
