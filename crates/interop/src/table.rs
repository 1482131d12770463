//! Writing lists (patients, a segment's members) as CSV or as an Excel
//! workbook, row by row, with memory bounded whatever the number of rows.
//!
//! The workbook is the smallest valid `.xlsx`: one worksheet whose cells
//! are written in place (inline strings, no shared-string table to hold
//! in memory), numbers as numbers so Excel can sum them, the header row
//! bold and frozen.

use std::io::{self, Seek, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// A file format for lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    /// From a file name's extension or a `format=` parameter.
    pub fn parse(s: &str) -> Option<Format> {
        let ext = s.rsplit('.').next().unwrap_or(s).to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "xlsx" => Some(Format::Xlsx),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
}

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Empty,
    Text(&'a str),
    Int(i64),
    /// Money in minor units, written with two decimals.
    Money(i64),
    Float(f64),
}

impl Cell<'_> {
    fn csv_text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => (*s).to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Money(m) => rapport_domain::money::format_minor(i128::from(*m)),
            Cell::Float(f) => f.to_string(),
        }
    }
}

/// Where rows go.
pub enum TableWriter<W: Write + Seek> {
    Csv(Box<csv::Writer<W>>),
    Xlsx(Box<XlsxWriter<W>>),
}

impl<W: Write + Seek> TableWriter<W> {
    /// Starts a list with its header row.
    pub fn new(format: Format, out: W, header: &[&str]) -> io::Result<Self> {
        let mut w = match format {
            Format::Csv => TableWriter::Csv(Box::new(csv::Writer::from_writer(out))),
            Format::Xlsx => TableWriter::Xlsx(Box::new(XlsxWriter::new(out)?)),
        };
        let cells: Vec<Cell> = header.iter().map(|h| Cell::Text(h)).collect();
        match &mut w {
            TableWriter::Csv(c) => c.write_record(header).map_err(io::Error::other)?,
            TableWriter::Xlsx(x) => x.row(&cells, true)?,
        }
        Ok(w)
    }

    pub fn row(&mut self, cells: &[Cell<'_>]) -> io::Result<()> {
        match self {
            TableWriter::Csv(c) => c
                .write_record(cells.iter().map(Cell::csv_text))
                .map_err(io::Error::other),
            TableWriter::Xlsx(x) => x.row(cells, false),
        }
    }

    /// Ends the file and gives the output back.
    pub fn finish(self) -> io::Result<W> {
        match self {
            TableWriter::Csv(c) => c.into_inner().map_err(|e| io::Error::other(e.to_string())),
            TableWriter::Xlsx(x) => x.finish(),
        }
    }
}

/// A one-sheet workbook written as rows arrive.
pub struct XlsxWriter<W: Write + Seek> {
    zip: ZipWriter<W>,
    row: u64,
    buf: String,
}

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>"#;

const ROOT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;

const WORKBOOK: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#;

const WORKBOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#;

/// Style 0 plain, 1 bold (header), 2 two decimals (money).
const STYLES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/><xf numFmtId="4" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs></styleSheet>"#;

const SHEET_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/></sheetView></sheetViews><sheetData>"#;

const SHEET_TAIL: &str = "</sheetData></worksheet>";

fn zip_err(e: zip::result::ZipError) -> io::Error {
    io::Error::other(e.to_string())
}

/// `A`, `B`, …, `Z`, `AA`, … for a 0-based column.
fn column_name(mut c: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (c % 26) as u8);
        if c < 26 {
            break;
        }
        c = c / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

fn escape_into(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // XML 1.0 forbids most control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}

impl<W: Write + Seek> XlsxWriter<W> {
    pub fn new(out: W) -> io::Result<Self> {
        let mut zip = ZipWriter::new(out);
        let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for (name, body) in [
            ("[Content_Types].xml", CONTENT_TYPES),
            ("_rels/.rels", ROOT_RELS),
            ("xl/workbook.xml", WORKBOOK),
            ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS),
            ("xl/styles.xml", STYLES),
        ] {
            zip.start_file(name, opts).map_err(zip_err)?;
            zip.write_all(body.as_bytes())?;
        }
        zip.start_file("xl/worksheets/sheet1.xml", opts)
            .map_err(zip_err)?;
        zip.write_all(SHEET_HEAD.as_bytes())?;
        Ok(XlsxWriter {
            zip,
            row: 0,
            buf: String::new(),
        })
    }

    fn row(&mut self, cells: &[Cell<'_>], header: bool) -> io::Result<()> {
        use std::fmt::Write as _;
        self.row += 1;
        let r = self.row;
        let b = &mut self.buf;
        b.clear();
        let _ = write!(b, r#"<row r="{r}">"#);
        for (i, c) in cells.iter().enumerate() {
            let at = format!("{}{r}", column_name(i));
            let style = if header { r#" s="1""# } else { "" };
            match c {
                Cell::Empty => {}
                Cell::Text(s) => {
                    let _ = write!(
                        b,
                        r#"<c r="{at}" t="inlineStr"{style}><is><t xml:space="preserve">"#
                    );
                    escape_into(b, s);
                    b.push_str("</t></is></c>");
                }
                Cell::Int(v) => {
                    let _ = write!(b, r#"<c r="{at}"{style}><v>{v}</v></c>"#);
                }
                Cell::Money(m) => {
                    let v = rapport_domain::money::format_minor(i128::from(*m));
                    let _ = write!(b, r#"<c r="{at}" s="2"><v>{v}</v></c>"#);
                }
                Cell::Float(f) if f.is_finite() => {
                    let _ = write!(b, r#"<c r="{at}"{style}><v>{f}</v></c>"#);
                }
                Cell::Float(_) => {}
            }
        }
        b.push_str("</row>");
        self.zip.write_all(b.as_bytes())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.zip.write_all(SHEET_TAIL.as_bytes())?;
        self.zip.finish().map_err(zip_err)
    }
}

#[cfg(test)]
mod tests {
    use super::column_name;

    #[test]
    fn column_names_go_past_z() {
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
        assert_eq!(column_name(27), "AB");
        assert_eq!(column_name(701), "ZZ");
        assert_eq!(column_name(702), "AAA");
    }
}
