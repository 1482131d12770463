//! CSV import: encodings, renames, row-by-row parsing, located errors.
//! Files are generated here; expected values are the input data itself.

use std::io::Read;

use chrono::NaiveDate;
use rapport_domain::Money;
use rapport_domain::patient::{Sex, VisitKind};
use rapport_interop::csv::{
    CsvOptions, Encoding, PatientRow, RowError, parse_map, read_patients, read_visits,
};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
}

fn opts(file: &str, encoding: Encoding, map: &[&str]) -> CsvOptions {
    CsvOptions {
        file: file.to_string(),
        encoding,
        map: map.iter().map(|m| parse_map(m).unwrap()).collect(),
        today: today(),
    }
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

const PATIENTS: &str = "病人编号,姓名,性别,birth_date,District,备注\n\
P001,张三,男,1980/02/29,海淀区,VIP\n\
P002,李四,女,19751231,朝阳区,\n\
P003,王五,U,1990-01-02,,\n";

fn read_all(bytes: &[u8], encoding: Encoding) -> (Vec<PatientRow>, Vec<String>) {
    let rows = read_patients(
        bytes,
        &opts(
            "patients.csv",
            encoding,
            &["病人编号=patient_id", "姓名=name", "性别=sex"],
        ),
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let warnings = rows.warnings().to_vec();
    let rows = rows
        .map(|r| r.unwrap_or_else(|e| panic!("{e:?}")))
        .collect();
    (rows, warnings)
}

#[test]
fn utf8_patients_with_renames_chinese_sex_and_date_spellings() {
    let (rows, warnings) = read_all(PATIENTS.as_bytes(), Encoding::Auto);
    assert_eq!(rows.len(), 3);
    let p = &rows[0];
    assert_eq!(p.row, 2);
    assert_eq!(p.patient.patient_id, "P001");
    assert_eq!(p.patient.fields.name, "张三");
    assert_eq!(p.patient.fields.sex, Some(Sex::Male));
    assert_eq!(p.patient.fields.birth_date, Some(d(1980, 2, 29)));
    assert_eq!(p.patient.fields.district.as_deref(), Some("海淀区"));
    assert_eq!(rows[1].patient.fields.sex, Some(Sex::Female));
    assert_eq!(rows[1].patient.fields.birth_date, Some(d(1975, 12, 31)));
    assert_eq!(rows[2].patient.fields.sex, Some(Sex::Unknown));
    assert_eq!(rows[2].patient.fields.birth_date, Some(d(1990, 1, 2)));
    assert_eq!(rows[2].row, 4);
    // The unknown column is reported once, not once per row.
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("备注"), "{warnings:?}");
}

#[test]
fn gbk_and_bom_files_read_like_utf8() {
    let (expected, _) = read_all(PATIENTS.as_bytes(), Encoding::Auto);
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(PATIENTS);
    assert!(!unmappable);
    assert!(
        std::str::from_utf8(&gbk).is_err(),
        "the test file really is GBK"
    );
    assert_eq!(read_all(&gbk, Encoding::Auto).0, expected);
    assert_eq!(read_all(&gbk, Encoding::Gbk).0, expected);
    let bom = [b"\xEF\xBB\xBF".as_slice(), PATIENTS.as_bytes()].concat();
    assert_eq!(read_all(&bom, Encoding::Auto).0, expected);
    assert_eq!(read_all(&bom, Encoding::Utf8).0, expected);
}

#[test]
fn gbk_read_as_utf8_is_an_error_not_mojibake() {
    let (gbk, _, _) = encoding_rs::GBK.encode(PATIENTS);
    let err = match read_patients(&gbk[..], &opts("p.csv", Encoding::Utf8, &[])) {
        Err(e) => e,
        Ok(_) => panic!("a GBK header read as UTF-8 must fail"),
    };
    assert_eq!(err[0].row, 1);
    assert!(err[0].to_string().starts_with("p.csv:1::"), "{}", err[0]);
}

const VISITS: &str = "visit_id,patient_id,visit_date,department,doctor_id,kind,amount\n\
V1,P001,2025-05-17,心内科,D01,inpatient,\"1,234.50\"\n\
V2,P001,2025/05/18,,,,-5.00\n\
V3,P002,2023-02-30,,,outpatient,10\n\
\n\
V4,P002,20250101,,,Telehealth,0.5\n";

#[test]
fn visits_parse_and_errors_name_file_row_and_column() {
    let rows: Vec<_> = read_visits(VISITS.as_bytes(), &opts("visits.csv", Encoding::Auto, &[]))
        .unwrap()
        .collect();
    assert_eq!(rows.len(), 4);
    let v1 = rows[0].as_ref().unwrap();
    assert_eq!((v1.row, v1.patient_id.as_str()), (2, "P001"));
    assert_eq!(v1.visit.visit_date, d(2025, 5, 17));
    assert_eq!(v1.visit.kind, VisitKind::Inpatient);
    assert_eq!(v1.visit.amount, Money(123_450));
    assert_eq!(v1.visit.department.as_deref(), Some("心内科"));

    let neg: &Vec<RowError> = rows[1].as_ref().unwrap_err();
    assert_eq!(neg.len(), 1);
    assert_eq!((neg[0].row, neg[0].column.as_str()), (3, "amount"));
    assert!(
        neg[0].to_string().starts_with("visits.csv:3:amount: "),
        "{}",
        neg[0]
    );

    let bad_date = rows[2].as_ref().unwrap_err();
    assert_eq!(
        (bad_date[0].row, bad_date[0].column.as_str()),
        (4, "visit_date")
    );

    // The blank line 5 is skipped but counted: V4 is on line 6.
    let v4 = rows[3].as_ref().unwrap();
    assert_eq!(v4.row, 6);
    assert_eq!(v4.visit.visit_date, d(2025, 1, 1));
    assert_eq!(v4.visit.kind, VisitKind::Telehealth);
    assert_eq!(v4.visit.amount, Money(50));
}

#[test]
fn a_missing_required_column_fails_before_any_row() {
    let text = "visit_id,patient_id,visit_date\nV1,P1,2025-01-01\n";
    let err = match read_visits(text.as_bytes(), &opts("v.csv", Encoding::Auto, &[])) {
        Err(e) => e,
        Ok(_) => panic!("amount is required"),
    };
    assert_eq!(err.len(), 1);
    assert_eq!(
        err[0].to_string(),
        format!("v.csv:1:amount: {}", err[0].reason)
    );
    // A rename supplies it.
    let text = "visit_id,patient_id,visit_date,金额\nV1,P1,2025-01-01,3\n";
    let rows: Vec<_> = read_visits(
        text.as_bytes(),
        &opts("v.csv", Encoding::Auto, &["金额=amount"]),
    )
    .unwrap()
    .collect();
    assert_eq!(rows[0].as_ref().unwrap().visit.amount, Money(300));
}

#[test]
fn errors_use_the_column_name_written_in_the_file() {
    let text = "ID,Sex\nP1,X\n";
    let rows: Vec<_> = read_patients(
        text.as_bytes(),
        &opts("p.csv", Encoding::Auto, &["ID=patient_id"]),
    )
    .unwrap()
    .collect();
    let e = rows[0].as_ref().unwrap_err();
    assert_eq!(e[0].to_string(), format!("p.csv:2:Sex: {}", e[0].reason));
}

#[test]
fn a_quoted_newline_keeps_the_row_at_the_line_where_the_record_starts() {
    let text = "patient_id,name\nP1,\"two\nlines\"\nP2,ok\n";
    let rows: Vec<_> = read_patients(text.as_bytes(), &opts("p.csv", Encoding::Auto, &[]))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.iter().map(|r| r.row).collect::<Vec<_>>(), [2, 4]);
}

/// A file produced on the fly: the reader never holds it all.
struct Generated {
    next: usize,
    total: usize,
    pending: Vec<u8>,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            if self.next > self.total {
                return Ok(0);
            }
            self.pending = if self.next == 0 {
                "visit_id,patient_id,visit_date,amount\n".into()
            } else {
                format!("V{0},P{1},2024-01-01,{0}.01\n", self.next, self.next % 97).into()
            };
            self.next += 1;
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

#[test]
fn rows_stream_one_at_a_time() {
    let total = 200_000;
    let rows = read_visits(
        Generated {
            next: 0,
            total,
            pending: Vec::new(),
        },
        &opts("big.csv", Encoding::Auto, &[]),
    )
    .unwrap();
    let mut count = 0usize;
    let mut sum: i64 = 0;
    for r in rows {
        let r = r.unwrap();
        count += 1;
        sum += r.visit.amount.minor();
    }
    assert_eq!(count, total);
    // Σ (i + 0.01) for i in 1..=n, in cents.
    let n = total as i64;
    assert_eq!(sum, n * (n + 1) / 2 * 100 + n);
}

#[test]
fn crlf_blank_lines_and_no_final_newline_keep_row_numbers() {
    // (A quoted CR would be refused by the domain as a control character
    // in a name; the quoted newline here is a bare LF.)
    let text = "patient_id,name\r\nP1,\"a\nb\"\r\n\r\n\r\nP2,x\r\nP3,y";
    let rows: Vec<_> = read_patients(text.as_bytes(), &opts("p.csv", Encoding::Auto, &[]))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // Lines: 1 header, 2-3 P1, 4-5 blank, 6 P2, 7 P3.
    assert_eq!(rows.iter().map(|r| r.row).collect::<Vec<_>>(), [2, 6, 7]);
}

#[test]
fn undecodable_bytes_beyond_the_sniffing_window_stop_with_an_error() {
    // 5000 good rows (well past the 64 KiB auto-detection window, so
    // `auto` chooses UTF-8), then a GBK-encoded one.
    let good = 5000;
    let mut bytes = b"patient_id,name\n".to_vec();
    for i in 0..good {
        bytes.extend_from_slice(format!("P{i:05},patient number {i:05}\n").as_bytes());
    }
    assert!(bytes.len() > 64 * 1024);
    bytes.extend_from_slice(&encoding_rs::GBK.encode("PX,张三\n").0);
    let rows: Vec<_> = read_patients(&bytes[..], &opts("p.csv", Encoding::Auto, &[]))
        .unwrap()
        .collect();
    assert_eq!(
        rows.len(),
        good + 1,
        "every good row, then the error, then nothing"
    );
    assert!(rows[..good].iter().all(Result::is_ok));
    let e = &rows[good].as_ref().unwrap_err()[0];
    assert!(e.reason.contains("UTF-8"), "{e}");
    // Header on line 1, good rows on 2..=5001: the bad one is line 5002.
    assert_eq!(e.row, good as u64 + 2, "{e}");
}
