//! `rapport import` and `rapport export`, through the binary, on both
//! engines: upserts, all-or-nothing, rejects, encodings, workbooks,
//! aggregates kept on the way, duplicates, FHIR in and out.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use rapport_app::Db;
use rapport_domain::PatientAggregates;
use rapport_interop::table::{Cell, Format, TableWriter};

use crate::both_engines;
use crate::harness::{Engine, TestDb};

fn rapport(db: &TestDb) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rapport"));
    c.arg("--database-url").arg(&db.url).env("RUST_LOG", "warn");
    c
}

fn run(db: &TestDb, args: &[&str]) -> Output {
    let out = rapport(db).args(args).output().unwrap();
    eprintln!(
        "$ rapport {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn report(db: &TestDb, args: &[&str]) -> (i32, serde_json::Value) {
    let mut a = args.to_vec();
    a.push("--json");
    let out = run(db, &a);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), v)
}

async fn rows(db: &Db, sql: &str) -> Vec<Vec<String>> {
    let q = sqlx::AssertSqlSafe(sql.to_string());
    match db {
        Db::Sqlite { read, .. } => {
            use sqlx::Row;
            let rs = sqlx::query(q).fetch_all(read).await.unwrap();
            rs.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| {
                            r.try_get::<Option<String>, _>(i)
                                .map(|s| s.unwrap_or_default())
                                .or_else(|_| r.try_get::<i64, _>(i).map(|v| v.to_string()))
                                .unwrap()
                        })
                        .collect()
                })
                .collect()
        }
        Db::Postgres(p) => {
            use sqlx::Row;
            let rs = sqlx::query(q).fetch_all(p).await.unwrap();
            rs.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| {
                            r.try_get::<Option<String>, _>(i)
                                .map(|s| s.unwrap_or_default())
                                .or_else(|_| r.try_get::<i64, _>(i).map(|v| v.to_string()))
                                .unwrap()
                        })
                        .collect()
                })
                .collect()
        }
    }
}

/// Patients and visits as text, for comparisons.
async fn dump(db: &Db) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let p = rows(
        db,
        "SELECT patient_id, name, COALESCE(sex, ''), COALESCE(CAST(birth_date AS TEXT), ''), \
         COALESCE(CAST(birth_year AS TEXT), ''), COALESCE(phone, ''), COALESCE(email, ''), \
         COALESCE(district, '') FROM patients WHERE merged_into IS NULL ORDER BY patient_id",
    )
    .await;
    let v = rows(
        db,
        "SELECT v.visit_id, p.patient_id, CAST(v.visit_date AS TEXT), COALESCE(d.name, ''), \
         COALESCE(doc.code, ''), v.kind, CAST(v.amount AS TEXT) FROM visits v \
         JOIN patients p ON p.id = v.patient_key LEFT JOIN departments d ON d.id = v.department_id \
         LEFT JOIN doctors doc ON doc.id = v.doctor_id ORDER BY v.visit_id",
    )
    .await;
    (p, v)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const PATIENTS: &str = "patient_id,name,sex,birth_year,phone,email\n\
P1,张三,男,1980,13812345678,zs@example.com\n\
P2,Ana García,F,1975,,\n\
P3,John,M,,13900000000,\n";

const VISITS: &str = "visit_id,patient_id,visit_date,department,doctor_id,kind,amount\n\
V1,P1,2025-01-05,Cardiology,D1,outpatient,100.50\n\
V2,P1,2025/03/07,Cardiology,D1,exam,20\n\
V3,P2,20250401,ENT,D2,outpatient,5\n\
V4,P9,2025-04-02,ENT,,checkup,1234.56\n";

async fn upsert_all_or_nothing_and_rejects(engine: Engine) {
    let Some(tdb) = TestDb::new(engine).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "patients.csv", PATIENTS);
    let v = write(dir.path(), "visits.csv", VISITS);

    let (code, r) = report(&tdb, &["import", "patients", s(&p)]);
    assert_eq!(code, 0);
    assert_eq!(
        (r["inserted"].as_u64(), r["committed"].as_bool()),
        (Some(3), Some(true))
    );
    let (code, r) = report(&tdb, &["import", "visits", s(&v)]);
    assert_eq!(code, 0);
    assert_eq!(r["inserted"], 4);
    assert_eq!(r["patients_created"], 1);
    let db = tdb.open().await;
    let first = dump(&db).await;
    assert_eq!(first.0.len(), 4);
    assert_eq!(
        first.1[0],
        [
            "V1",
            "P1",
            "2025-01-05",
            "Cardiology",
            "D1",
            "outpatient",
            "10050"
        ]
    );
    assert_eq!(
        first.1[3],
        ["V4", "P9", "2025-04-02", "ENT", "", "checkup", "123456"]
    );

    // The same files again change nothing.
    let (_, r) = report(&tdb, &["import", "patients", s(&p)]);
    assert_eq!(
        (
            r["inserted"].as_u64(),
            r["updated"].as_u64(),
            r["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(3))
    );
    let (_, r) = report(&tdb, &["import", "visits", s(&v)]);
    assert_eq!(
        (
            r["inserted"].as_u64(),
            r["updated"].as_u64(),
            r["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(4))
    );
    assert_eq!(dump(&db).await, first);

    // A changed row updates; a file without a column leaves that field.
    let p2 = write(dir.path(), "p2.csv", "patient_id,name\nP1,张三丰\n");
    let (_, r) = report(&tdb, &["import", "patients", s(&p2)]);
    assert_eq!(r["updated"], 1);
    let after = dump(&db).await;
    assert_eq!(after.0[0][1], "张三丰");
    assert_eq!(
        after.0[0][5], "13812345678",
        "a missing column keeps the phone"
    );
    let v2 = write(
        dir.path(),
        "v2.csv",
        "visit_id,patient_id,visit_date,amount\nV2,P2,2025-03-07,30\n",
    );
    let (_, r) = report(&tdb, &["import", "visits", s(&v2)]);
    assert_eq!(r["updated"], 1);
    let out = run(&tdb, &["check"]);
    assert!(out.status.success(), "aggregates after a moved visit");

    // One bad row: nothing imported, every bad row located.
    let before = dump(&db).await;
    let bad = write(
        dir.path(),
        "bad.csv",
        "visit_id,patient_id,visit_date,amount\nV10,P1,2025-05-01,10\nV11,P1,2025-13-01,10\nV12,,2025-05-02,x\n",
    );
    let out = run(&tdb, &["import", "visits", s(&bad)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let bad_name = s(&bad);
    assert!(err.contains(&format!("{bad_name}:3:visit_date: ")), "{err}");
    assert!(err.contains(&format!("{bad_name}:4:patient_id: ")), "{err}");
    assert!(err.contains(&format!("{bad_name}:4:amount: ")), "{err}");
    assert_eq!(dump(&db).await, before, "nothing was written");

    // With --skip-invalid the valid row goes in and the others are kept.
    let rejects = dir.path().join("rejects.csv");
    let out = run(
        &tdb,
        &["import", "visits", s(&bad), "--skip-invalid", s(&rejects)],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&rejects).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "visit_id,patient_id,visit_date,amount,row,reason");
    assert_eq!(lines.len(), 3);
    assert!(
        lines[1].starts_with("V11,P1,2025-13-01,10,3,visit_date: "),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with("V12,,2025-05-02,x,4,"), "{}", lines[2]);
    let now = dump(&db).await;
    assert_eq!(now.1.len(), before.1.len() + 1);
    assert!(now.1.iter().any(|r| r[0] == "V10"));
    assert!(run(&tdb, &["check"]).status.success());
}

async fn encodings_maps_and_workbooks(engine: Engine) {
    let Some(tdb) = TestDb::new(engine).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // GBK, as Chinese Excel saves CSV, with Chinese headers renamed.
    let text = "病人编号,姓名,性别\nG1,王五,女\nG2,赵六,男\n";
    let (gbk, _, _) = encoding_rs::GBK.encode(text);
    let p = dir.path().join("gbk.csv");
    std::fs::write(&p, &gbk).unwrap();
    let (code, r) = report(
        &tdb,
        &[
            "import",
            "patients",
            s(&p),
            "--map",
            "病人编号=patient_id",
            "--map",
            "姓名=name",
            "--map",
            "性别=sex",
        ],
    );
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["inserted"], 2);
    // A workbook of visits.
    let x = dir.path().join("visits.xlsx");
    let f = std::fs::File::create(&x).unwrap();
    let mut w = TableWriter::new(
        Format::Xlsx,
        f,
        &["visit_id", "patient_id", "visit_date", "amount"],
    )
    .unwrap();
    w.row(&[
        Cell::Text("X1"),
        Cell::Text("G1"),
        Cell::Text("2025-02-03"),
        Cell::Money(9999),
    ])
    .unwrap();
    w.row(&[
        Cell::Text("X2"),
        Cell::Text("G2"),
        Cell::Text("2025-02-04"),
        Cell::Int(12),
    ])
    .unwrap();
    w.finish().unwrap();
    let (code, r) = report(&tdb, &["import", "visits", s(&x)]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["inserted"], 2);
    let db = tdb.open().await;
    let (p, v) = dump(&db).await;
    assert_eq!(p[0][..3], ["G1", "王五", "F"]);
    assert_eq!(v[0][..3], ["X1", "G1", "2025-02-03"]);
    assert_eq!(v[0][6], "9999");
    assert_eq!(v[1][6], "1200");

    // Patient lists out: CSV in full from the command line, XLSX that
    // reads back.
    let list = dir.path().join("list.xlsx");
    assert!(
        run(&tdb, &["export", "patients", s(&list)])
            .status
            .success()
    );
    let opts = rapport_interop::csv::CsvOptions {
        file: "list.xlsx".into(),
        encoding: Default::default(),
        map: vec![],
        today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
    };
    let back: Vec<_> = rapport_interop::xlsx::read_patients(&list, &opts)
        .unwrap()
        .map(|r| r.unwrap().patient.fields.name)
        .collect();
    assert_eq!(back, ["王五", "赵六"]);
}

/// Stored aggregates equal a recomputation from the stored visits.
async fn assert_aggregates_exact(db: &Db) {
    let v = rows(db, "SELECT CAST(patient_key AS TEXT), CAST(visit_date AS TEXT), CAST(amount AS TEXT) FROM visits ORDER BY patient_key, visit_date").await;
    let mut expected: std::collections::BTreeMap<i64, Vec<(chrono::NaiveDate, i64)>> =
        Default::default();
    for r in v {
        expected
            .entry(r[0].parse().unwrap())
            .or_default()
            .push((r[1].parse().unwrap(), r[2].parse().unwrap()));
    }
    let a = rows(db, "SELECT CAST(patient_key AS TEXT), CAST(first_visit AS TEXT), CAST(last_visit AS TEXT), CAST(visits AS TEXT), CAST(visit_days AS TEXT), CAST(monetary AS TEXT), CAST(first_day_monetary AS TEXT), CAST(months_with_visits AS TEXT), CAST(cohort_mask AS TEXT) FROM patient_aggregates ORDER BY patient_key").await;
    assert_eq!(a.len(), expected.len());
    for r in a {
        let key: i64 = r[0].parse().unwrap();
        let want = PatientAggregates::from_sorted(&expected[&key]);
        let got = PatientAggregates {
            first_visit: r[1].parse().unwrap(),
            last_visit: r[2].parse().unwrap(),
            visits: r[3].parse().unwrap(),
            visit_days: r[4].parse().unwrap(),
            monetary: r[5].parse().unwrap(),
            first_day_monetary: r[6].parse().unwrap(),
            months_with_visits: r[7].parse().unwrap(),
            cohort_mask: r[8].parse().unwrap(),
        };
        assert_eq!(got, want, "patient {key}");
    }
}

async fn aggregates_stay_exact_over_random_import_batches(engine: Engine) {
    for case in 0..3 {
        random_batches(engine, case).await;
    }
}

async fn random_batches(engine: Engine, case: u64) {
    let Some(tdb) = TestDb::new(engine).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Batches of visits over a few patients: dates in any order, days
    // and months repeated, ids re-used (updates, moves).
    let visit = (0u8..40, 0u8..5, 0u16..900, 0u32..50_000);
    let batches = proptest::collection::vec(proptest::collection::vec(visit, 1..30), 1..5);
    let mut runner = TestRunner::new_with_rng(
        Config {
            failure_persistence: None,
            ..Config::default()
        },
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &[case as u8 + 1; 32],
        ),
    );
    let tree = batches.new_tree(&mut runner).unwrap();
    let batches = tree.current();
    let base = chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
    for (i, batch) in batches.iter().enumerate() {
        let mut text = String::from("visit_id,patient_id,visit_date,amount\n");
        for (id, patient, day, cents) in batch {
            let d = base + chrono::Days::new(u64::from(*day));
            text.push_str(&format!(
                "V{id},P{patient},{d},{}.{:02}\n",
                cents / 100,
                cents % 100
            ));
        }
        let f = write(dir.path(), &format!("b{i}.csv"), &text);
        let out = run(&tdb, &["import", "visits", s(&f)]);
        assert!(out.status.success(), "case {case}");
    }
    let db = tdb.open().await;
    assert_aggregates_exact(&db).await;
    assert!(run(&tdb, &["check"]).status.success());
}

/// Every index and foreign key of the tables an import loads, as the
/// catalogue spells them.
async fn upkeep(db: &Db, engine: Engine) -> Vec<Vec<String>> {
    let sql = match engine {
        Engine::Sqlite => {
            "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index' \
             AND tbl_name IN ('patients', 'visits', 'patient_aggregates') AND sql IS NOT NULL \
             UNION ALL SELECT 'fk', m.name, f.\"table\" || '.' || f.\"to\" \
             FROM sqlite_master m, pragma_foreign_key_list(m.name) f \
             WHERE m.name IN ('patients', 'visits', 'patient_aggregates') ORDER BY 1, 2, 3"
        }
        Engine::Postgres => {
            "SELECT tablename, indexname, indexdef FROM pg_indexes \
             WHERE schemaname = current_schema() \
             AND tablename IN ('patients', 'visits', 'patient_aggregates') \
             UNION ALL SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) \
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
             WHERE k.contype = 'f' AND c.relnamespace = CAST(current_schema() AS regnamespace) \
             AND c.relname IN ('patients', 'visits', 'patient_aggregates') \
             ORDER BY 1, 2, 3"
        }
    };
    rows(db, sql).await
}

/// Imports `text` as the CSV file `file` (visits or patients) through
/// the application, with no terminal to report to.
async fn import_csv(
    app: &rapport_app::App,
    file: &str,
    text: String,
    opts: &rapport_app::import::Options,
    visits: bool,
) -> rapport_app::import::Report {
    use rapport_app::import::{self, Progress, Sinks};
    use rapport_interop::csv as icsv;
    let options = icsv::CsvOptions {
        file: file.into(),
        encoding: icsv::Encoding::Auto,
        map: Vec::new(),
        today: app.today(),
    };
    let input = std::io::Cursor::new(text.into_bytes());
    let progress = Progress::default();
    let mut on_error = |_: &icsv::RowError| {};
    let sinks = Sinks {
        progress: &progress,
        rejects: None,
        on_error: &mut on_error,
    };
    let actor = rapport_app::audit::Actor::cli();
    let report = match visits {
        true => {
            let rows = icsv::read_visits(input, &options).unwrap();
            import::visits(app, &actor, file, rows, opts, sinks).await
        }
        false => {
            let rows = icsv::read_patients(input, &options).unwrap();
            import::patients(app, &actor, file, rows, opts, sinks).await
        }
    };
    report.unwrap()
}

/// Files larger than a chunk, read in chunks of 16 rows with aggregates
/// kept for at most 8 patients at a time: a first load (indexes and
/// foreign keys set aside, then put back, early when a chunk needs
/// them), then a second file over the stored patients, with dates in
/// any order and visits moved between patients.
async fn aggregates_stay_exact_across_chunks_and_cache_flushes(engine: Engine) {
    use rapport_app::import::Options;
    let Some(tdb) = TestDb::new(engine).await else {
        return;
    };
    let app = rapport_app::App::new(tdb.open().await);
    let schema = upkeep(&app.db, engine).await;
    assert!(
        schema.iter().any(|r| r[2].contains("REFERENCES patients"))
            || schema.iter().any(|r| r[0] == "fk" && r[2] == "patients.id"),
        "foreign keys listed: {schema:?}"
    );
    let opts = Options {
        chunk_rows: 16,
        cache_patients: 8,
        ..Options::default()
    };
    let base = chrono::NaiveDate::from_ymd_opt(2022, 1, 1).unwrap();
    // A fixed pseudo-random sequence (splitmix64), `below(n)` in 0..n.
    let mut state = 7u64;
    let mut below = |n: u64| {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    };
    let mut expected = std::collections::BTreeMap::new();
    for (file, ordered) in [("first", true), ("second", false)] {
        let mut text = String::from("visit_id,patient_id,visit_date,amount\n");
        let mut day = 0u64;
        for _ in 0..300 {
            // The first file in date order, as a hospital's export; the
            // second in any order, re-using ids of the first.
            let d = if ordered {
                day += below(3);
                day
            } else {
                below(700)
            };
            let (v, p, date) = (below(400), below(40), base + chrono::Days::new(d));
            let (units, cents) = (below(5000), below(100));
            text.push_str(&format!("V{v},P{p},{date},{units}.{cents:02}\n"));
            // The last row of an id is what the database holds.
            expected.insert(
                format!("V{v}"),
                [
                    format!("P{p}"),
                    date.to_string(),
                    (units * 100 + cents).to_string(),
                ],
            );
        }
        let report = import_csv(&app, file, text, &opts, true).await;
        assert!(report.committed, "{file}: {report:?}");
        assert!(report.inserted > 0, "{file}");
        if !ordered {
            assert!(report.updated > 0, "{file}: some visits change");
        }
        assert_aggregates_exact(&app.db).await;
        assert_eq!(upkeep(&app.db, engine).await, schema, "{file}");
        let stored = rows(
            &app.db,
            "SELECT v.visit_id, p.patient_id, CAST(v.visit_date AS TEXT), v.amount FROM visits v \
             JOIN patients p ON p.id = v.patient_key ORDER BY v.visit_id",
        )
        .await;
        let want: Vec<Vec<String>> = expected
            .iter()
            .map(|(v, [p, d, a])| vec![v.clone(), p.clone(), d.clone(), a.clone()])
            .collect();
        assert_eq!(stored, want, "{file}: every row's last version");
    }
    assert!(run(&tdb, &["check"]).status.success());
}

fn synthea() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/fhir/synthea")
}

async fn fhir_in_matches_the_manifest_and_round_trips(engine: Engine) {
    let Some(tdb) = TestDb::new(engine).await else {
        return;
    };
    let manifest: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(synthea().join("../MANIFEST.json")).unwrap())
            .unwrap();
    let (mut patients, mut encounters, mut cents) = (0u64, 0u64, 0i64);
    for (k, v) in &manifest {
        if !k.starts_with("synthea/") {
            continue;
        }
        patients += v["resource_counts"]["Patient"].as_u64().unwrap_or(0);
        encounters += v["resource_counts"]["Encounter"].as_u64().unwrap_or(0);
        if let Some(sum) = v.get("claim_total_sum") {
            cents += (sum.as_f64().unwrap() * 100.0).round() as i64;
        }
    }
    let (code, r) = report(&tdb, &["import", "fhir", s(&synthea())]);
    assert_eq!(code, 0, "{r}");
    let db = tdb.open().await;
    let (p, v) = dump(&db).await;
    assert_eq!(p.len() as u64, patients);
    assert_eq!(v.len() as u64, encounters);
    let total: i64 = v.iter().map(|r| r[6].parse::<i64>().unwrap()).sum();
    assert_eq!(total, cents);
    // Importing the same bundles again changes nothing.
    let (_, r) = report(&tdb, &["import", "fhir", s(&synthea())]);
    assert_eq!(r["inserted"], 0);

    // Out, and into an empty database: the same patients and visits.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fhir");
    assert!(run(&tdb, &["export", "fhir", s(&out)]).status.success());
    for f in ["Patient", "Encounter", "Practitioner", "Organization"] {
        assert!(out.join(format!("{f}.ndjson")).exists());
    }
    let Some(empty) = TestDb::new(engine).await else {
        return;
    };
    let (code, _) = report(&empty, &["import", "fhir", s(&out)]);
    assert_eq!(code, 0);
    let db2 = empty.open().await;
    assert_eq!(dump(&db2).await, dump(&db).await);
    validate_against_schema(&out);
}

/// Validates every exported resource against the official R4 JSON schema
/// when Python's jsonschema is available (CI installs it for the fuzzer).
fn validate_against_schema(dir: &Path) {
    let schema = synthea().join("../schema/fhir.schema.json");
    let script = r#"
import json, sys, pathlib
try:
    import jsonschema
except ImportError:
    print("SKIP"); sys.exit(0)
schema = json.load(open(sys.argv[1]))
v = jsonschema.Draft6Validator(schema)
n = 0
for f in pathlib.Path(sys.argv[2]).glob("*.ndjson"):
    for line in open(f):
        errs = list(v.iter_errors(json.loads(line)))
        if errs:
            print(f, errs[0].message); sys.exit(1)
        n += 1
print("OK", n)
"#;
    if !schema.exists() {
        return;
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&schema)
        .arg(dir)
        .output();
    if let Ok(out) = out {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

async fn duplicates_are_flagged_on_import(engine: Engine) {
    let Some(tdb) = TestDb::new(engine).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "a.csv",
        "patient_id,name,phone\nA1,Li Na,13800000001\nA2,Wang,13800000002\n",
    );
    assert!(run(&tdb, &["import", "patients", s(&p)]).status.success());
    let p = write(
        dir.path(),
        "b.csv",
        "patient_id,name,phone\nB1,Li Na,13800000001\nB2,Wang,13800000009\n",
    );
    let (_, r) = report(&tdb, &["import", "patients", s(&p)]);
    assert_eq!(r["duplicates_flagged"], 1);
    let db = tdb.open().await;
    let d = rows(&db, "SELECT p.patient_id, o.patient_id, d.reason, d.status FROM patient_duplicates d JOIN patients p ON p.id = d.patient_key JOIN patients o ON o.id = d.duplicate_of").await;
    assert_eq!(d, [["B1", "A1", "name_phone", "open"]]);
    // Flagged once: a re-import flags nothing new.
    let (_, r) = report(&tdb, &["import", "patients", s(&p)]);
    assert_eq!(r["duplicates_flagged"], 0);
}

/// A first patients load in chunks of two, ids coming back in later
/// chunks: each later row updates the patient, the last one wins.
async fn a_first_patients_load_updates_ids_it_wrote(engine: Engine) {
    use rapport_app::import::Options;
    let Some(tdb) = TestDb::new(engine).await else {
        return;
    };
    let app = rapport_app::App::new(tdb.open().await);
    let text = "patient_id,name,phone\nA,Li,13800000001\nB,Wang,13800000002\n\
                A,Li Na,13800000003\nC,Zhao,13800000004\nB,Wang Wei,13800000005\n\
                A,Li Na Na,13800000006\n";
    let opts = Options {
        chunk_rows: 2,
        ..Options::default()
    };
    let report = import_csv(&app, "p.csv", text.to_string(), &opts, false).await;
    assert!(report.committed, "{report:?}");
    assert_eq!((report.inserted, report.updated), (3, 3), "{report:?}");
    let stored = rows(
        &app.db,
        "SELECT patient_id, name, phone FROM patients ORDER BY patient_id",
    )
    .await;
    assert_eq!(
        stored,
        [
            ["A", "Li Na Na", "13800000006"],
            ["B", "Wang Wei", "13800000005"],
            ["C", "Zhao", "13800000004"],
        ]
    );
}

/// Bulk writes keep every row, whichever columns are the same in every
/// row (sent once on PostgreSQL), all NULL, or all the same.
async fn bulk_writes_keep_every_row(engine: Engine) {
    use rapport_store::bulk::{self, Value};
    let Some(tdb) = TestDb::new(engine).await else {
        return;
    };
    let db = tdb.open().await;
    let at = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
        .unwrap()
        .to_utc();
    let mut tx = db.begin_bulk().await.unwrap();
    let row = |name: &str, email: Option<&str>| {
        vec![
            Value::from(1i64),
            Value::from(name),
            Value::from(name),
            Value::from(email),
            Value::from("[]"),
            Value::from(at),
            Value::from(at),
        ]
    };
    let columns = [
        "hospital_id",
        "patient_id",
        "name",
        "email",
        "tags",
        "created_at",
        "updated_at",
    ];
    let written = bulk::write_rows(
        &mut tx,
        "patients",
        &columns,
        &[
            row("W1", None),
            row("W2", None),
            row("W3", Some("w3@example.org")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(written, 3);
    // Every column the same in both rows: still two rows.
    let run = vec![
        Value::from(1i64),
        Value::from("bulk-probe"),
        Value::from(at),
        Value::from("ok"),
    ];
    let written = bulk::write_rows(
        &mut tx,
        "job_runs",
        &["hospital_id", "job", "started_at", "status"],
        &[run.clone(), run],
    )
    .await
    .unwrap();
    assert_eq!(written, 2);
    tx.commit().await.unwrap();
    let got = rows(
        &db,
        "SELECT COUNT(*) FROM job_runs WHERE job = 'bulk-probe'",
    )
    .await;
    assert_eq!(got, [["2"]]);
    let got = rows(
        &db,
        "SELECT patient_id, name, COALESCE(email, '-') FROM patients WHERE patient_id LIKE 'W%' ORDER BY patient_id",
    )
    .await;
    assert_eq!(
        got,
        [
            ["W1", "W1", "-"],
            ["W2", "W2", "-"],
            ["W3", "W3", "w3@example.org"]
        ]
    );
}

/// A first load's transaction (foreign keys verified before the commit
/// on SQLite, not row by row) still refuses a visit naming a patient who
/// does not exist, writes nothing of it, and leaves the checks on for
/// the transactions after it.
async fn a_first_load_refuses_a_broken_reference(engine: Engine) {
    use rapport_store::import::{NewVisitRow, insert_visits};
    let Some(tdb) = TestDb::new(engine).await else {
        return;
    };
    let app = rapport_app::App::new(tdb.open().await);
    let h = app.hospital_id;
    let orphan = |visit_id| NewVisitRow {
        visit_id,
        patient_key: 424_242,
        visit_date: chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
        department_id: None,
        doctor_id: None,
        kind: "exam",
        amount: 100,
    };
    let now = chrono::Utc::now();
    let mut tx = app.db.begin_bulk_unchecked().await.unwrap();
    let outcome = match insert_visits(&mut tx, h, &[orphan("V1")], now).await {
        Ok(n) => {
            assert_eq!(n, 1);
            tx.commit().await
        }
        Err(e) => Err(e),
    };
    let err = outcome.expect_err("a visit of no patient is refused");
    if engine == Engine::Sqlite {
        assert!(
            matches!(err, rapport_store::StoreError::Reference(ref m) if m.contains("visits.patient_key")),
            "{err:?}"
        );
    }
    assert_eq!(rapport_store::visits::count(&app.db).await.unwrap(), 0);
    // Row-by-row checks are back: the next transaction fails at the insert.
    let mut tx = app.db.begin_bulk().await.unwrap();
    assert!(
        insert_visits(&mut tx, h, &[orphan("V2")], now)
            .await
            .is_err()
    );
}

both_engines!(
    a_first_load_refuses_a_broken_reference,
    a_first_patients_load_updates_ids_it_wrote,
    bulk_writes_keep_every_row,
    upsert_all_or_nothing_and_rejects,
    encodings_maps_and_workbooks,
    aggregates_stay_exact_over_random_import_batches,
    aggregates_stay_exact_across_chunks_and_cache_flushes,
    fhir_in_matches_the_manifest_and_round_trips,
    duplicates_are_flagged_on_import,
);
