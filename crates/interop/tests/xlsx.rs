//! Excel workbooks: lists written by `table` open again with the import
//! reader; rows, columns and errors are located as a spreadsheet user sees
//! them.

use std::fs::File;

use chrono::NaiveDate;
use rapport_domain::Money;
use rapport_domain::patient::Sex;
use rapport_interop::csv::{CsvOptions, Encoding, parse_map};
use rapport_interop::table::{Cell, Format, TableWriter};
use rapport_interop::xlsx;

fn opts(file: &str, map: &[&str]) -> CsvOptions {
    CsvOptions {
        file: file.to_string(),
        encoding: Encoding::Auto,
        map: map.iter().map(|m| parse_map(m).unwrap()).collect(),
        today: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
    }
}

fn write(path: &std::path::Path, header: &[&str], rows: &[Vec<Cell<'_>>]) {
    let f = File::create(path).unwrap();
    let mut w = TableWriter::new(Format::Xlsx, f, header).unwrap();
    for r in rows {
        w.row(r).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn a_written_workbook_reads_back_as_patients_with_numbers_as_typed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patients.xlsx");
    write(
        &path,
        &["病人编号", "name", "sex", "phone", "birth_year", "note"],
        &[
            vec![
                Cell::Text("P1"),
                Cell::Text("张三 & <Co>"),
                Cell::Text("男"),
                Cell::Int(13812345678),
                Cell::Int(1980),
                Cell::Text("x"),
            ],
            vec![Cell::Empty; 6],
            vec![
                Cell::Text("P2"),
                Cell::Text("Ana"),
                Cell::Text("F"),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
            ],
        ],
    );
    let head = std::fs::read(&path).unwrap();
    assert!(xlsx::looks_like_xlsx(&head));
    let rows =
        xlsx::read_patients(&path, &opts("patients.xlsx", &["病人编号=patient_id"])).unwrap();
    assert_eq!(rows.warnings().len(), 1, "{:?}", rows.warnings());
    assert!(rows.columns().contains(&"phone"));
    let rows: Vec<_> = rows.map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].row, 2);
    assert_eq!(rows[0].patient.patient_id, "P1");
    assert_eq!(rows[0].patient.fields.name, "张三 & <Co>");
    assert_eq!(rows[0].patient.fields.sex, Some(Sex::Male));
    assert_eq!(rows[0].patient.fields.phone.as_deref(), Some("13812345678"));
    assert_eq!(rows[0].patient.fields.birth_year, Some(1980));
    // The empty spreadsheet row is skipped; P2 is on row 4.
    assert_eq!(rows[1].row, 4);
    assert_eq!(rows[1].patient.fields.sex, Some(Sex::Female));
}

#[test]
fn visits_in_a_workbook_keep_money_exact_and_errors_name_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("visits.xlsx");
    write(
        &path,
        &["visit_id", "patient_id", "visit_date", "amount"],
        &[
            vec![
                Cell::Text("V1"),
                Cell::Text("P1"),
                Cell::Text("2025-03-04"),
                Cell::Money(12345),
            ],
            vec![
                Cell::Text("V2"),
                Cell::Text("P1"),
                Cell::Text("2025/13/04"),
                Cell::Money(1000),
            ],
            vec![
                Cell::Text("V3"),
                Cell::Text("P2"),
                Cell::Text("20250305"),
                Cell::Float(0.1),
            ],
        ],
    );
    let rows: Vec<_> = xlsx::read_visits(&path, &opts("visits.xlsx", &[]))
        .unwrap()
        .collect();
    assert_eq!(rows.len(), 3);
    let v1 = rows[0].as_ref().unwrap();
    assert_eq!(v1.visit.amount, Money(12345));
    let err = rows[1].as_ref().unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(
        err[0].to_string().split(": ").next(),
        Some("visits.xlsx:3:visit_date")
    );
    let v3 = rows[2].as_ref().unwrap();
    assert_eq!(v3.visit.amount, Money(10));
    assert_eq!(
        v3.visit.visit_date,
        NaiveDate::from_ymd_opt(2025, 3, 5).unwrap()
    );
}

#[test]
fn a_file_that_is_not_a_workbook_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.xlsx");
    std::fs::write(&path, b"PK\x03\x04 not really a zip").unwrap();
    let err = match xlsx::read_patients(&path, &opts("bad.xlsx", &[])) {
        Err(e) => e,
        Ok(_) => panic!("a broken workbook opened"),
    };
    assert_eq!(err.len(), 1);
    assert!(err[0].to_string().starts_with("bad.xlsx:1::"), "{}", err[0]);
}
