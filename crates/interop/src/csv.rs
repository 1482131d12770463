//! Reading `patients.csv` and `visits.csv` (spec/interface.md, "File
//! formats"), row by row.
//!
//! - **Streaming.** [`read_patients`] and [`read_visits`] return iterators
//!   that decode, split and parse one record at a time: memory stays
//!   bounded (a 64 KiB sniffing window plus one record) whatever the size
//!   of the file, so a million-row export does not need a million-row
//!   buffer, and the caller can stop at the first error or collect them.
//! - **Encodings.** `auto` picks UTF-8 when the file starts with a UTF-8
//!   BOM or its first 64 KiB are valid UTF-8, else GB18030 (a superset of
//!   GBK and GB2312, what Chinese Excel writes). `utf-8` and `gbk` force
//!   one. Decoding is strict: a byte sequence invalid in the chosen
//!   encoding is an error on that row, never a silent U+FFFD; every
//!   complete row before it is still yielded, and the error ends the
//!   iteration (the rest of the file cannot be trusted).
//! - **Columns.** Header names are trimmed and compared case-insensitively
//!   (ASCII) after the `--map SOURCE=TARGET` renames. Unknown columns are
//!   reported once, as warnings, and ignored; a missing required column
//!   is an error before any row is read.
//! - **Validation** is the domain's (`NewPatient::parse`,
//!   `VisitFields::parse`, which use `parse_date`, `Sex::parse_loose`,
//!   `Money::parse`); this module only locates its errors. Each becomes a
//!   [`RowError`], displayed `FILE:ROW:COLUMN: reason`, where ROW is the
//!   1-based line on which the record starts, the header being row 1 (so
//!   an editor's "go to line" lands on it) and COLUMN is the column's name
//!   as written in the file (before `--map`).

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Chain, Cursor, Read};

use chrono::NaiveDate;
use rapport_domain::ValidationErrors;
use rapport_domain::patient::{
    NewPatient, PatientInput, VisitFields, VisitInput, check_external_id,
};

/// `--encoding auto|utf-8|gbk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    #[default]
    Auto,
    Utf8,
    Gbk,
}

impl std::str::FromStr for Encoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Encoding::Auto),
            "utf-8" | "utf8" => Ok(Encoding::Utf8),
            "gbk" | "gb18030" | "gb2312" => Ok(Encoding::Gbk),
            _ => Err(format!(
                "unknown encoding {s:?}: expected auto, utf-8 or gbk"
            )),
        }
    }
}

/// Parses one `--map SOURCE=TARGET`.
pub fn parse_map(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => {
            Ok((a.trim().to_string(), b.trim().to_string()))
        }
        _ => Err(format!("--map {s:?}: expected SOURCE=TARGET")),
    }
}

/// How to read a file.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// The file's name, for error messages.
    pub file: String,
    pub encoding: Encoding,
    /// `--map SOURCE=TARGET` renames, applied to header names.
    pub map: Vec<(String, String)>,
    /// Bounds dates (no birth dates in the future).
    pub today: NaiveDate,
}

/// An invalid row (or header: row 1), located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub file: String,
    /// 1-based line where the record starts; the header is row 1.
    pub row: u64,
    /// The column as named in the file; empty when the whole row is at
    /// fault (wrong number of fields, undecodable bytes).
    pub column: String,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.row, self.column, self.reason
        )
    }
}

impl std::error::Error for RowError {}

/// Bytes read to choose an encoding.
const SNIFF: usize = 64 * 1024;

/// The input with its sniffed head put back in front.
type Rewound<R> = Chain<Cursor<Vec<u8>>, R>;

fn sniff<R: Read>(
    mut input: R,
    encoding: Encoding,
) -> io::Result<(&'static encoding_rs::Encoding, Rewound<R>)> {
    let mut head = Vec::with_capacity(SNIFF);
    (&mut input).take(SNIFF as u64).read_to_end(&mut head)?;
    let enc = match encoding {
        Encoding::Utf8 => encoding_rs::UTF_8,
        Encoding::Gbk => encoding_rs::GB18030,
        Encoding::Auto => {
            if head.starts_with(b"\xEF\xBB\xBF") {
                encoding_rs::UTF_8
            } else {
                match std::str::from_utf8(&head) {
                    Ok(_) => encoding_rs::UTF_8,
                    // Cut in the middle of a character at the window's
                    // end: still UTF-8.
                    Err(e) if e.error_len().is_none() && head.len() == SNIFF => encoding_rs::UTF_8,
                    Err(_) => encoding_rs::GB18030,
                }
            }
        }
    };
    Ok((enc, Cursor::new(head).chain(input)))
}

/// Decodes to UTF-8 on the fly, strictly.
struct DecodeReader<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    eof: bool,
    output: Vec<u8>,
    out_start: usize,
    out_end: usize,
    finished: bool,
    /// A decoding error, returned once the text before it is delivered,
    /// so that every complete row before the bad bytes is read.
    error: Option<io::Error>,
}

impl<R: Read> DecodeReader<R> {
    fn new(inner: R, enc: &'static encoding_rs::Encoding) -> Self {
        DecodeReader {
            inner,
            // Removes a BOM of the encoding (UTF-8's, for UTF-8).
            decoder: enc.new_decoder_with_bom_removal(),
            input: vec![0; 8192],
            in_start: 0,
            in_end: 0,
            eof: false,
            output: vec![0; 8192 * 3 + 16],
            out_start: 0,
            out_end: 0,
            finished: false,
            error: None,
        }
    }
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_start == self.out_end {
            if let Some(e) = self.error.take() {
                self.finished = true;
                return Err(e);
            }
            if self.finished {
                return Ok(0);
            }
            if self.in_start == self.in_end && !self.eof {
                let n = self.inner.read(&mut self.input)?;
                self.in_start = 0;
                self.in_end = n;
                self.eof = n == 0;
            }
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.input[self.in_start..self.in_end],
                &mut self.output,
                self.eof,
            );
            self.in_start += read;
            self.out_start = 0;
            self.out_end = written;
            match result {
                encoding_rs::DecoderResult::Malformed(_, _) => {
                    self.error = Some(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bytes not valid in {}", self.decoder.encoding().name()),
                    ));
                }
                encoding_rs::DecoderResult::InputEmpty if self.eof => self.finished = true,
                _ => {}
            }
        }
        let n = buf.len().min(self.out_end - self.out_start);
        buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
        self.out_start += n;
        Ok(n)
    }
}

/// Counts the lines of what the CSV reader consumes. The `csv` crate's own
/// record positions skip neither blank lines nor CRLF correctly, so rows
/// are located from byte offsets: the line a record ends on, minus the
/// newlines inside its quoted fields. Only the newlines at offsets the
/// reader may still ask about are kept (its read-ahead buffer's worth).
struct LineTracker<R> {
    inner: R,
    offset: u64,
    newlines: std::collections::VecDeque<u64>,
    pruned: u64,
}

impl<R> LineTracker<R> {
    fn new(inner: R) -> Self {
        LineTracker {
            inner,
            offset: 0,
            newlines: std::collections::VecDeque::new(),
            pruned: 0,
        }
    }

    /// The 1-based line of the last byte before `end`.
    fn line_ending_at(&self, end: u64) -> u64 {
        let before = self.pruned + self.newlines.partition_point(|&o| o < end) as u64;
        let ends_with_newline = end > 0 && self.newlines.binary_search(&(end - 1)).is_ok();
        if ends_with_newline {
            before
        } else {
            before + 1
        }
    }

    /// The 1-based line of the byte at `pos`.
    fn line_at(&self, pos: u64) -> u64 {
        self.pruned + self.newlines.partition_point(|&o| o < pos) as u64 + 1
    }

    /// Forgets newlines before `end - 1`.
    fn prune(&mut self, end: u64) {
        while self.newlines.front().is_some_and(|&o| o + 1 < end) {
            self.newlines.pop_front();
            self.pruned += 1;
        }
    }
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' {
                self.newlines.push_back(self.offset + i as u64);
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// The columns a file kind knows, and which are required.
struct Kind {
    known: &'static [&'static str],
    required: &'static [&'static str],
}

const PATIENTS: Kind = Kind {
    known: &[
        "patient_id",
        "name",
        "sex",
        "birth_year",
        "birth_date",
        "district",
        "source_channel",
        "registered_on",
        "phone",
        "email",
    ],
    required: &["patient_id"],
};

const VISITS: Kind = Kind {
    known: &[
        "visit_id",
        "patient_id",
        "visit_date",
        "department",
        "doctor_id",
        "doctor_name",
        "kind",
        "amount",
    ],
    required: &["visit_id", "patient_id", "visit_date", "amount"],
};

/// Where records come from: a CSV file, or a worksheet
/// ([`crate::xlsx`]). Rows are numbered as the user sees them (the line
/// in a text editor, the row in a spreadsheet).
pub trait RecordSource {
    /// The header record and its row number.
    fn header(&mut self) -> Result<(u64, Vec<String>), String>;
    /// The next record into `rec`: `Some(Ok(row))`, `None` at the end, or
    /// `Some(Err((row, reason, fatal)))`; after a fatal error the source
    /// cannot go on.
    fn next_record(&mut self, rec: &mut Vec<String>) -> Option<Result<u64, (u64, String, bool)>>;
}

type Decoded<R> = LineTracker<DecodeReader<Rewound<R>>>;

/// A CSV stream, decoded and located.
pub struct CsvSource<R: Read> {
    reader: csv::Reader<Decoded<R>>,
    record: csv::StringRecord,
}

impl<R: Read> CsvSource<R> {
    fn open(input: R, encoding: Encoding) -> io::Result<Self> {
        let (enc, input) = sniff(input, encoding)?;
        let reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(LineTracker::new(DecodeReader::new(input, enc)));
        Ok(CsvSource {
            reader,
            record: csv::StringRecord::new(),
        })
    }
}

impl<R: Read> RecordSource for CsvSource<R> {
    fn header(&mut self) -> Result<(u64, Vec<String>), String> {
        let h = self.reader.headers().map_err(|e| csv_reason(&e))?;
        Ok((1, h.iter().map(str::to_string).collect()))
    }

    fn next_record(&mut self, rec: &mut Vec<String>) -> Option<Result<u64, (u64, String, bool)>> {
        let result = self.reader.read_record(&mut self.record);
        let end = self.reader.position().byte();
        let tracker = self.reader.get_ref();
        let inner_newlines: u64 = self
            .record
            .iter()
            .map(|f| f.bytes().filter(|&b| b == b'\n').count() as u64)
            .sum();
        let row = if result.is_err() {
            // The record being read when the error came: it starts
            // where the last good one ended.
            tracker.line_at(end)
        } else {
            tracker.line_ending_at(end).saturating_sub(inner_newlines)
        };
        self.reader.get_mut().prune(end);
        match result {
            Ok(false) => None,
            Err(e) => Some(Err((
                row,
                csv_reason(&e),
                matches!(e.kind(), csv::ErrorKind::Io(_)),
            ))),
            Ok(true) => {
                rec.clear();
                rec.extend(self.record.iter().map(str::to_string));
                Some(Ok(row))
            }
        }
    }
}

/// A decoded file with its header resolved.
struct Table<S> {
    file: String,
    source: S,
    /// canonical name → index in the record.
    index: HashMap<&'static str, usize>,
    /// canonical name → the header as written.
    written: HashMap<&'static str, String>,
    width: usize,
    /// The header as written.
    header: Vec<String>,
    /// Set after an I/O or decoding error: the stream cannot go on.
    done: bool,
    record: Vec<String>,
    warnings: Vec<String>,
}

impl<S: RecordSource> Table<S> {
    fn open(mut source: S, opts: &CsvOptions, kind: &Kind) -> Result<Self, Vec<RowError>> {
        let header_err = |row: u64, column: &str, reason: String| RowError {
            file: opts.file.clone(),
            row,
            column: column.to_string(),
            reason,
        };
        let (header_row, headers) = source.header().map_err(|e| vec![header_err(1, "", e)])?;
        let mut index = HashMap::new();
        let mut written = HashMap::new();
        let mut warnings = Vec::new();
        let mut errors = Vec::new();
        let mut mapped_sources = vec![false; opts.map.len()];
        for (i, h) in headers.iter().enumerate() {
            let h_trim = h.trim();
            if h_trim.is_empty() {
                continue;
            }
            let renamed = match opts.map.iter().position(|(s, _)| s == h_trim) {
                Some(m) => {
                    mapped_sources[m] = true;
                    opts.map[m].1.as_str()
                }
                None => h_trim,
            };
            let canonical = renamed.to_ascii_lowercase();
            match kind.known.iter().find(|k| **k == canonical) {
                Some(k) => {
                    if index.insert(*k, i).is_some() {
                        errors.push(header_err(
                            header_row,
                            h,
                            format!("column {k} appears twice"),
                        ));
                    }
                    written.insert(*k, h.to_string());
                }
                None => warnings.push(format!(
                    "{}: unknown column {h:?} ignored (known: {})",
                    opts.file,
                    kind.known.join(", ")
                )),
            }
        }
        for (m, used) in opts.map.iter().zip(mapped_sources) {
            if !used {
                warnings.push(format!(
                    "{}: --map {}={}: no column {:?}",
                    opts.file, m.0, m.1, m.0
                ));
            }
        }
        for r in kind.required {
            if !index.contains_key(r) {
                errors.push(header_err(
                    header_row,
                    r,
                    "required column is missing".to_string(),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Table {
            file: opts.file.clone(),
            source,
            index,
            written,
            width: headers.len(),
            header: headers,
            done: false,
            record: Vec::new(),
            warnings,
        })
    }

    /// Reads the next record: `Some(Ok(row))` with its row number.
    fn next_record(&mut self) -> Option<Result<u64, RowError>> {
        let row_err = |file: &str, row: u64, reason: String| RowError {
            file: file.to_string(),
            row,
            column: String::new(),
            reason,
        };
        if self.done {
            return None;
        }
        loop {
            match self.source.next_record(&mut self.record)? {
                Err((row, reason, fatal)) => {
                    self.done = fatal;
                    return Some(Err(row_err(&self.file, row, reason)));
                }
                Ok(row) => {
                    // A line of nothing but separators is a blank row.
                    if self.record.iter().all(|c| c.trim().is_empty()) {
                        continue;
                    }
                    let width = self
                        .record
                        .iter()
                        .rposition(|c| !c.trim().is_empty())
                        .map_or(0, |i| i + 1);
                    if self.record.len() > self.width && width > self.width {
                        return Some(Err(row_err(
                            &self.file,
                            row,
                            format!(
                                "{} fields, but the header has {}",
                                self.record.len(),
                                self.width
                            ),
                        )));
                    }
                    return Some(Ok(row));
                }
            }
        }
    }

    /// The canonical columns the file has.
    fn columns(&self) -> Vec<&'static str> {
        let mut c: Vec<&'static str> = self.index.keys().copied().collect();
        c.sort_unstable();
        c
    }

    /// The trimmed cell of a canonical column; `None` if absent or empty.
    fn get(&self, column: &str) -> Option<&str> {
        self.index
            .get(column)
            .and_then(|&i| self.record.get(i))
            .map(|c| c.trim())
            .filter(|s| !s.is_empty())
    }

    fn column(&self, canonical: &str) -> String {
        // Domain field names such as `tags[0]` are not columns here.
        self.written
            .get(canonical)
            .cloned()
            .unwrap_or_else(|| canonical.to_string())
    }

    fn errors(&self, row: u64, errs: ValidationErrors) -> Vec<RowError> {
        errs.0
            .into_iter()
            .map(|e| RowError {
                file: self.file.clone(),
                row,
                column: self.column(&e.field),
                reason: e.message,
            })
            .collect()
    }
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
        _ => e.to_string(),
    }
}

/// Strips thousands separators only where they group digits by three
/// (`1,234.50`); anything else (`12,50`) is left for `Money::parse` to
/// reject rather than misread a hundredfold.
fn strip_thousands(s: &str) -> String {
    let (int, frac) = s.split_once('.').map_or((s, None), |(i, f)| (i, Some(f)));
    let digits = int.trim_start_matches(['-', '+']);
    let groups: Vec<&str> = digits.split(',').collect();
    let grouped = groups.len() > 1
        && (1..=3).contains(&groups[0].len())
        && groups[1..].iter().all(|g| g.len() == 3)
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
    if !grouped {
        return s.to_string();
    }
    let mut out = int.replace(',', "");
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// A valid `patients.csv` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRow {
    pub row: u64,
    pub patient: NewPatient,
}

/// A valid `visits.csv` row. The patient is named by the hospital's id;
/// the caller creates it when unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitRow {
    pub row: u64,
    pub patient_id: String,
    pub visit: VisitFields,
}

/// Rows of `patients.csv` (or a worksheet of them): each item a valid
/// row or all of its errors.
pub struct PatientRows<S> {
    table: Table<S>,
    today: NaiveDate,
}

/// Rows of `visits.csv` (or a worksheet of them): each item a valid row
/// or all of its errors.
pub struct VisitRows<S> {
    table: Table<S>,
    today: NaiveDate,
}

/// Opens `patients.csv`. Header problems (a missing `patient_id`, a
/// duplicated column, an undecodable header) are errors on row 1.
pub fn read_patients<R: Read>(
    input: R,
    opts: &CsvOptions,
) -> Result<PatientRows<CsvSource<R>>, Vec<RowError>> {
    patients_from(csv_source(input, opts)?, opts)
}

/// Opens `visits.csv`; see [`read_patients`].
pub fn read_visits<R: Read>(
    input: R,
    opts: &CsvOptions,
) -> Result<VisitRows<CsvSource<R>>, Vec<RowError>> {
    visits_from(csv_source(input, opts)?, opts)
}

fn csv_source<R: Read>(input: R, opts: &CsvOptions) -> Result<CsvSource<R>, Vec<RowError>> {
    CsvSource::open(input, opts.encoding).map_err(|e| {
        vec![RowError {
            file: opts.file.clone(),
            row: 1,
            column: String::new(),
            reason: e.to_string(),
        }]
    })
}

pub(crate) fn patients_from<S: RecordSource>(
    source: S,
    opts: &CsvOptions,
) -> Result<PatientRows<S>, Vec<RowError>> {
    Ok(PatientRows {
        table: Table::open(source, opts, &PATIENTS)?,
        today: opts.today,
    })
}

pub(crate) fn visits_from<S: RecordSource>(
    source: S,
    opts: &CsvOptions,
) -> Result<VisitRows<S>, Vec<RowError>> {
    Ok(VisitRows {
        table: Table::open(source, opts, &VISITS)?,
        today: opts.today,
    })
}

impl<S: RecordSource> PatientRows<S> {
    /// Unknown columns and unused `--map` sources, each once.
    pub fn warnings(&self) -> &[String] {
        &self.table.warnings
    }

    /// The header as written in the file.
    pub fn header(&self) -> &[String] {
        &self.table.header
    }

    /// The cells of the record last read, as written (for a rejects file).
    pub fn raw(&self) -> &[String] {
        &self.table.record
    }

    /// The canonical columns present in the file: a re-import changes
    /// only these fields of a known patient.
    pub fn columns(&self) -> Vec<&'static str> {
        self.table.columns()
    }
}

impl<S: RecordSource> VisitRows<S> {
    /// Unknown columns and unused `--map` sources, each once.
    pub fn warnings(&self) -> &[String] {
        &self.table.warnings
    }

    /// The header as written in the file.
    pub fn header(&self) -> &[String] {
        &self.table.header
    }

    /// The cells of the record last read, as written (for a rejects file).
    pub fn raw(&self) -> &[String] {
        &self.table.record
    }
}

impl<S: RecordSource> Iterator for PatientRows<S> {
    type Item = Result<PatientRow, Vec<RowError>>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = match self.table.next_record()? {
            Ok(row) => row,
            Err(e) => return Some(Err(vec![e])),
        };
        let t2 = &self.table;
        let mut errors = Vec::new();
        let birth_year = match t2.get("birth_year") {
            None => None,
            Some(y) => match y.parse::<i32>() {
                Ok(y) => Some(y),
                Err(_) => {
                    errors.push(RowError {
                        file: t2.file.clone(),
                        row,
                        column: t2.column("birth_year"),
                        reason: "must be a year such as 1980".to_string(),
                    });
                    None
                }
            },
        };
        let s = |c: &str| t2.get(c).map(str::to_string);
        let input = PatientInput {
            name: s("name"),
            sex: s("sex"),
            birth_date: s("birth_date"),
            birth_year,
            phone: s("phone"),
            email: s("email"),
            district: s("district"),
            source_channel: s("source_channel"),
            registered_on: s("registered_on"),
            ..Default::default()
        };
        let patient_id = t2.get("patient_id").unwrap_or_default();
        match NewPatient::parse(patient_id, &input, self.today) {
            Ok(patient) if errors.is_empty() => Some(Ok(PatientRow { row, patient })),
            Ok(_) => Some(Err(errors)),
            Err(e) => {
                errors.extend(t2.errors(row, e));
                Some(Err(errors))
            }
        }
    }
}

impl<S: RecordSource> Iterator for VisitRows<S> {
    type Item = Result<VisitRow, Vec<RowError>>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = match self.table.next_record()? {
            Ok(row) => row,
            Err(e) => return Some(Err(vec![e])),
        };
        let t = &self.table;
        let s = |c: &str| t.get(c).map(str::to_string);
        let input = VisitInput {
            visit_id: s("visit_id").unwrap_or_default(),
            visit_date: s("visit_date").unwrap_or_default(),
            department: s("department"),
            doctor_id: s("doctor_id"),
            doctor_name: s("doctor_name"),
            kind: s("kind"),
            amount: t.get("amount").map(strip_thousands).unwrap_or_default(),
        };
        let patient_id = s("patient_id").unwrap_or_default();
        let mut errs = ValidationErrors::default();
        check_external_id(&mut errs, "patient_id", &patient_id);
        match VisitFields::parse(&input, self.today) {
            Ok(visit) if errs.is_empty() => Some(Ok(VisitRow {
                row,
                patient_id,
                visit,
            })),
            Ok(_) => Some(Err(t.errors(row, errs))),
            Err(e) => {
                // Report in column order: patient_id's error with the rest.
                errs.0.extend(e.0);
                Some(Err(t.errors(row, errs)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::strip_thousands;

    #[test]
    fn thousands_separators_only_when_grouped_by_three() {
        assert_eq!(strip_thousands("1,234.50"), "1234.50");
        assert_eq!(strip_thousands("12,345,678"), "12345678");
        assert_eq!(strip_thousands("12,50"), "12,50");
        assert_eq!(strip_thousands("1,2345"), "1,2345");
        assert_eq!(strip_thousands("99.5"), "99.5");
    }
}
