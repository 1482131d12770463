//! The `rapport` binary itself: exit codes, the demo, `check`, and crashes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::both_engines;
use crate::harness::{Engine, TestDb};

fn rapport(db: &TestDb) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rapport"));
    c.arg("--database-url").arg(&db.url).env("RUST_LOG", "warn");
    c
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args(["--data-dir"])
        .arg(dir.path())
        .args(["token", "create", "--role", "overlord"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("role"));
    let out = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args(["--database-url", "mysql://x", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}

/// Everything the demo wrote, as comparable text.
async fn dump(db: &TestDb) -> (Vec<String>, Vec<(String, String, i64)>) {
    let db = db.open().await;
    let patients = rapport_store::patients::search(
        &db,
        &rapport_store::patients::PatientQuery {
            hospital_id: 1,
            limit: 100_000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let rows: Vec<String> = patients
        .iter()
        .map(|p| {
            format!(
                "{} {:?} {:?}",
                p.patient.patient_id, p.patient.fields, p.aggregates
            )
        })
        .collect();
    let visits = rapport_store::visits::list(
        &db,
        &rapport_store::visits::VisitQuery {
            hospital_id: 1,
            limit: 1_000_000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    (
        rows,
        visits
            .into_iter()
            .map(|v| (v.visit_id, v.visit_date.to_string(), v.amount.minor()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_is_deterministic_believable_and_checks_clean() {
    let a = TestDb::new(Engine::Sqlite).await.unwrap();
    let b = TestDb::new(Engine::Sqlite).await.unwrap();
    for db in [&a, &b] {
        let out = rapport(db)
            .args([
                "demo",
                "--patients",
                "1500",
                "--seed",
                "7",
                "--end-date",
                "2026-06-30",
                "--no-serve",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (pa, va) = dump(&a).await;
    let (pb, vb) = dump(&b).await;
    assert_eq!(pa.len(), 1500);
    assert_eq!(pa, pb, "same seed, same patients");
    assert_eq!(va, vb, "same seed, same visits");
    assert!(va.len() > 1500, "patients return: {} visits", va.len());
    assert!(
        va.iter()
            .all(|v| v.1.as_str() <= "2026-06-30" && v.1.as_str() >= "2021-06-30")
    );

    // Heavy-tailed spend: the top fifth of patients bring most revenue.
    let db = a.open().await;
    let mut spend: Vec<i64> = sqlx_rows(&db, "SELECT monetary FROM patient_aggregates").await;
    spend.sort_unstable_by(|x, y| y.cmp(x));
    let total: i64 = spend.iter().sum();
    let top: i64 = spend.iter().take(spend.len().div_ceil(5)).sum();
    assert!(
        top as f64 / total as f64 > 0.6,
        "top 20% share {}",
        top as f64 / total as f64
    );
    let names = pa.join("\n");
    assert!(
        names.contains("ZhCn") && names.contains("Es") && names.contains("En"),
        "three languages of names"
    );

    let out = rapport(&a).arg("check").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A demo with another seed differs.
    let c = TestDb::new(Engine::Sqlite).await.unwrap();
    let out = rapport(&c)
        .args([
            "demo",
            "--patients",
            "1500",
            "--seed",
            "8",
            "--end-date",
            "2026-06-30",
            "--no-serve",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_ne!(dump(&c).await.1, va);
}

async fn sqlx_rows(db: &rapport_store::Db, sql: &'static str) -> Vec<i64> {
    match db {
        rapport_store::Db::Sqlite { read, .. } => {
            sqlx::query_scalar(sql).fetch_all(read).await.unwrap()
        }
        rapport_store::Db::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await.unwrap(),
    }
}

async fn sqlx_exec(db: &rapport_store::Db, sql: &'static str) {
    match db {
        rapport_store::Db::Sqlite { write, .. } => {
            sqlx::query(sql).execute(write).await.map(|_| ()).unwrap()
        }
        rapport_store::Db::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()).unwrap(),
    }
}

/// A fresh database filled by `rapport demo`.
async fn demo_db(engine: Engine, patients: &str, seed: &str) -> TestDb {
    let db = TestDb::new(engine).await.unwrap();
    let out = rapport(&db)
        .args(["demo", "--patients", patients, "--seed", seed, "--no-serve"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db
}

async fn check_finds_corrupted_aggregates(engine: Engine) {
    let db = demo_db(engine, "300", "1").await;
    let out = rapport(&db).args(["check", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(
        report["checks"][0]["checked"].as_u64(),
        sqlx_rows(&db.open().await, "SELECT COUNT(*) FROM patient_aggregates")
            .await
            .first()
            .map(|n| *n as u64)
    );

    let h = db.open().await;
    sqlx_exec(&h, "UPDATE patient_aggregates SET monetary = monetary + 1 WHERE patient_key = (SELECT MIN(patient_key) FROM patient_aggregates)").await;
    let out = rapport(&db).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL") && text.contains("1 of"), "{text}");
    sqlx_exec(&h, "DELETE FROM patient_aggregates WHERE patient_key = (SELECT MAX(patient_key) FROM patient_aggregates)").await;
    let out = rapport(&db).args(["check", "--json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["checks"][0]["violations"], 2);
    // Aggregates stored for a patient who has no visits at all.
    let app = rapport_app::App::new(h.clone());
    rapport_app::patients::create(
        &app,
        &rapport_app::audit::Actor::cli(),
        "NO-VISITS",
        &Default::default(),
    )
    .await
    .unwrap();
    sqlx_exec(
        &h,
        "INSERT INTO patient_aggregates SELECT (SELECT MAX(id) FROM patients), hospital_id, first_visit, last_visit, visits, \
         visit_days, monetary, first_day_monetary, months_with_visits, cohort_mask FROM patient_aggregates \
         WHERE patient_key = (SELECT MIN(patient_key) FROM patient_aggregates)",
    )
    .await;
    let out = rapport(&db).args(["check", "--json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["checks"][0]["violations"], 3, "{report}");
    assert!(
        report["checks"][0]["problems"]
            .to_string()
            .contains("no visits"),
        "{report}"
    );
}

/// Kills the server with SIGKILL while clients record visits; afterwards
/// every acknowledged visit is stored and every invariant holds.
async fn kill_9_during_writes_loses_nothing_acknowledged(engine: Engine) {
    let db = TestDb::new(engine).await.unwrap();
    let token = rapport(&db)
        .args(["token", "create", "--role", "admin"])
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let mut child = rapport(&db)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Find the address in what the server prints, and keep draining its
    // output so it never writes into a closed pipe.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("serving on http://") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the server printed no address"
        );
    }
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    let client = reqwest::Client::new();
    for p in 0..8 {
        let r = client
            .post(format!("http://{addr}/api/v1/patients"))
            .bearer_auth(&token)
            .json(&json!({"patient_id": format!("K{p}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (client, token, addr) = (client.clone(), token.clone(), addr.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                let vid = format!("W{w}-{i}");
                let r = client
                    .post(format!("http://{addr}/api/v1/visits"))
                    .bearer_auth(&token)
                    .json(&json!({"visit_id": vid, "patient_id": format!("K{}", i % 8), "visit_date": "2026-01-01", "amount": "12.34"}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 201 => acked.push(vid),
                    Ok(r) => panic!("unexpected {}", r.status()),
                    Err(_) => break, // the server is gone
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(
        !acked.is_empty(),
        "no write was acknowledged in {:?}",
        started.elapsed()
    );
    let h = db.open().await;
    let stored: Vec<String> = match &h {
        rapport_store::Db::Sqlite { read, .. } => sqlx::query_scalar("SELECT visit_id FROM visits")
            .fetch_all(read)
            .await
            .unwrap(),
        rapport_store::Db::Postgres(p) => sqlx::query_scalar("SELECT visit_id FROM visits")
            .fetch_all(p)
            .await
            .unwrap(),
    };
    let stored: std::collections::HashSet<String> = stored.into_iter().collect();
    for v in &acked {
        assert!(stored.contains(v), "acknowledged visit {v} lost");
    }
    let out = rapport(&db).arg("check").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `rapport check` verifies the foreign keys: on SQLite every value
/// against its parent (a first load checks them once, before its commit),
/// on PostgreSQL that none is left unvalidated.
async fn check_finds_a_broken_reference(engine: Engine) {
    let db = demo_db(engine, "100", "2").await;
    let keys = |report: &serde_json::Value| {
        report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["check"] == "foreign keys"))
            .cloned()
            .unwrap_or_default()
    };
    let out = rapport(&db).args(["check", "--json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        keys(&report)["checked"].as_u64().unwrap_or(0) >= 4,
        "{report}"
    );

    let h = db.open().await;
    match &h {
        rapport_store::Db::Sqlite { write, .. } => {
            let mut c = write.acquire().await.unwrap();
            for sql in [
                "PRAGMA foreign_keys = OFF",
                "UPDATE visits SET patient_key = 424242 WHERE id = (SELECT MIN(id) FROM visits)",
                // The department and the doctor are verified in one scan.
                "UPDATE visits SET department_id = 424242 WHERE id = (SELECT MAX(id) FROM visits)",
                "PRAGMA foreign_keys = ON",
            ] {
                sqlx::query(sql).execute(&mut *c).await.unwrap();
            }
        }
        rapport_store::Db::Postgres(p) => {
            for sql in [
                "ALTER TABLE visits DROP CONSTRAINT visits_doctor_id_fkey",
                "ALTER TABLE visits ADD CONSTRAINT visits_doctor_id_fkey \
                 FOREIGN KEY (doctor_id) REFERENCES doctors(id) NOT VALID",
            ] {
                sqlx::query(sql).execute(p).await.unwrap();
            }
        }
    }
    let out = rapport(&db).args(["check", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = keys(&report);
    let problems = found["problems"].to_string();
    match engine {
        Engine::Sqlite => {
            assert_eq!(found["violations"], 2, "{report}");
            assert!(
                problems.contains("visits.patient_key: 1 value(s) name no patients row"),
                "{problems}"
            );
            assert!(
                problems.contains("visits.department_id: 1 value(s) name no departments row"),
                "{problems}"
            );
        }
        Engine::Postgres => {
            assert_eq!(found["violations"], 1, "{report}");
            assert!(problems.contains("visits_doctor_id_fkey"), "{problems}");
        }
    }
}

both_engines!(
    check_finds_a_broken_reference,
    check_finds_corrupted_aggregates,
    kill_9_during_writes_loses_nothing_acknowledged
);
