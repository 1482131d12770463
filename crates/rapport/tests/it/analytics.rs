//! Analytics wired into the product: `analyze`, `clv fit`, `export scores`,
//! `scores refresh` and the `/api/v1/analytics` routes, checked against an
//! independent computation in plain SQL that follows `analytics.md`
//! literally (window functions, integer arithmetic), on both engines.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;

use rapport_store::Db;
use serde_json::{Value, json};

use crate::both_engines;
use crate::harness::{Engine, TestApp, TestDb};

both_engines!(
    analyze_and_export_match_plain_sql,
    refresh_stores_scores_and_the_api_serves_them
);

fn rapport(url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rapport"));
    c.arg("--database-url").arg(url).env("RUST_LOG", "warn");
    c
}

fn run_ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        c,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn demo(url: &str, patients: u64) {
    run_ok(rapport(url).args([
        "demo",
        "--patients",
        &patients.to_string(),
        "--seed",
        "3",
        "--end-date",
        "2026-06-30",
        "--no-serve",
    ]));
}

/// Rows of a query on either engine.
async fn fetch<T>(db: &Db, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    let q = sqlx::AssertSqlSafe(sql.to_string());
    let r = match db {
        Db::Sqlite { read, .. } => sqlx::query_as(q).fetch_all(read).await,
        Db::Postgres(p) => sqlx::query_as(q).fetch_all(p).await,
    };
    r.unwrap_or_else(|e| panic!("{e}\n{sql}"))
}

/// Where the engines' SQL differs: date literals, day differences, months.
struct Dialect(Engine);

impl Dialect {
    fn date(&self, d: &str) -> String {
        match self.0 {
            Engine::Sqlite => format!("'{d}'"),
            Engine::Postgres => format!("DATE '{d}'"),
        }
    }
    /// `later - earlier` in days, as BIGINT.
    fn days(&self, later: &str, earlier: &str) -> String {
        match self.0 {
            Engine::Sqlite => {
                format!("CAST(julianday({later}) - julianday({earlier}) AS INTEGER)")
            }
            Engine::Postgres => format!("CAST({later} - {earlier} AS BIGINT)"),
        }
    }
    /// `year * 12 + month - 1`, as BIGINT.
    fn month_index(&self, d: &str) -> String {
        match self.0 {
            Engine::Sqlite => format!(
                "(CAST(substr({d}, 1, 4) AS INTEGER) * 12 + CAST(substr({d}, 6, 2) AS INTEGER) - 1)"
            ),
            Engine::Postgres => format!(
                "(CAST(EXTRACT(YEAR FROM {d}) AS BIGINT) * 12 + CAST(EXTRACT(MONTH FROM {d}) AS BIGINT) - 1)"
            ),
        }
    }
    /// `YYYY-MM`.
    fn month_label(&self, d: &str) -> String {
        match self.0 {
            Engine::Sqlite => format!("substr({d}, 1, 7)"),
            Engine::Postgres => format!("to_char({d}, 'YYYY-MM')"),
        }
    }
    /// `YYYY-MM-DD` text.
    fn date_text(&self, d: &str) -> String {
        match self.0 {
            Engine::Sqlite => d.to_string(),
            Engine::Postgres => format!("to_char({d}, 'YYYY-MM-DD')"),
        }
    }
}

fn money(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

const SEGMENTS: [&str; 9] = [
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "hibernating",
    "lost",
];

/// `analyze --json` computed with SQL, following `analytics.md` word by
/// word: per-patient summary over the visits up to `as_of`, RANK() scores
/// in integer arithmetic, the segment rules in order, top 20 % by
/// (monetary desc, patient_id asc), Gini with exact integer sums, cohort
/// retention from distinct visit months.
async fn expected_analysis(db: &Db, engine: Engine, as_of: &str) -> Value {
    let d = Dialect(engine);
    let visits = format!(
        "v AS (SELECT patient_key, visit_date, amount FROM visits WHERE hospital_id = 1 AND visit_date <= {})",
        d.date(as_of)
    );
    let summary = format!(
        "{visits}, s AS (SELECT patient_key, CAST(COUNT(*) AS BIGINT) AS visits, CAST(SUM(amount) AS BIGINT) AS monetary, \
         {} AS recency_days FROM v GROUP BY patient_key)",
        d.days(&d.date(as_of), "MAX(visit_date)")
    );
    let (n, total): (i64, Option<i64>) = fetch(
        db,
        &format!(
            "WITH {summary} SELECT CAST(COUNT(*) AS BIGINT), CAST(SUM(monetary) AS BIGINT) FROM s"
        ),
    )
    .await[0];
    let total = total.unwrap_or(0);
    let segments: Vec<(String, i64)> = fetch(
        db,
        &format!(
            "WITH {summary}, n AS (SELECT COUNT(*) AS n FROM s), \
             sc AS (SELECT \
               1 + (5 * (RANK() OVER (ORDER BY recency_days DESC) - 1)) / n.n AS rs, \
               1 + (5 * (RANK() OVER (ORDER BY visits ASC) - 1)) / n.n AS fs, \
               1 + (5 * (RANK() OVER (ORDER BY monetary ASC) - 1)) / n.n AS ms \
               FROM s CROSS JOIN n), \
             g AS (SELECT rs, (fs + ms + 1) / 2 AS fm FROM sc) \
             SELECT CASE \
               WHEN rs >= 4 AND fm >= 4 THEN 'champions' \
               WHEN rs >= 3 AND fm >= 4 THEN 'loyal' \
               WHEN rs >= 4 AND fm >= 2 THEN 'potential_loyalist' \
               WHEN rs >= 4 AND fm = 1 THEN 'new' \
               WHEN rs = 3 AND fm >= 2 THEN 'need_attention' \
               WHEN rs = 3 AND fm = 1 THEN 'about_to_sleep' \
               WHEN rs <= 2 AND fm >= 4 THEN 'at_risk' \
               WHEN rs = 2 AND fm <= 3 THEN 'hibernating' \
               ELSE 'lost' END AS segment, CAST(COUNT(*) AS BIGINT) FROM g GROUP BY 1"
        ),
    )
    .await;
    let segments: HashMap<String, i64> = segments.into_iter().collect();
    let top_k = (n + 4) / 5; // ceil(0.2 n)
    let (top,): (Option<i64>,) = fetch(
        db,
        &format!(
            "WITH {summary}, t AS (SELECT s.monetary, ROW_NUMBER() OVER (ORDER BY s.monetary DESC, p.patient_id ASC) AS rn \
             FROM s JOIN patients p ON p.id = s.patient_key) \
             SELECT CAST(SUM(monetary) AS BIGINT) FROM t WHERE rn <= {top_k}"
        ),
    )
    .await[0];
    let (gini_num,): (Option<i64>,) = fetch(
        db,
        &format!(
            "WITH {summary}, t AS (SELECT monetary, ROW_NUMBER() OVER (ORDER BY monetary ASC) AS i FROM s) \
             SELECT CAST(SUM((2 * i - {n} - 1) * monetary) AS BIGINT) FROM t"
        ),
    )
    .await[0];
    let ratio = |a: i128, b: i128| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let top20 = ratio(i128::from(top.unwrap_or(0)), i128::from(total));
    let gini = ratio(
        i128::from(gini_num.unwrap_or(0)),
        i128::from(n) * i128::from(total),
    );
    let cells: Vec<(String, i64, i64)> = fetch(
        db,
        &format!(
            "WITH {visits}, f AS (SELECT patient_key, MIN(visit_date) AS first_visit FROM v GROUP BY patient_key), \
             m AS (SELECT DISTINCT v.patient_key, {} AS cohort, {} - {} AS k FROM v JOIN f ON f.patient_key = v.patient_key) \
             SELECT cohort, CAST(k AS BIGINT), CAST(COUNT(*) AS BIGINT) FROM m WHERE k < 12 GROUP BY cohort, k ORDER BY cohort, k",
            d.month_label("f.first_visit"),
            d.month_index("v.visit_date"),
            d.month_index("f.first_visit"),
        ),
    )
    .await;
    let month = |label: &str| -> i64 {
        let y: i64 = label[..4].parse().unwrap();
        let m: i64 = label[5..7].parse().unwrap();
        y * 12 + m - 1
    };
    let last = month(as_of);
    let mut by_cohort: BTreeMap<String, [i64; 12]> = BTreeMap::new();
    for (cohort, k, count) in cells {
        by_cohort.entry(cohort).or_insert([0; 12])[k as usize] = count;
    }
    let cohorts: Vec<Value> = by_cohort
        .iter()
        .map(|(cohort, counts)| {
            let size = counts[0];
            let first = month(cohort);
            let retention: Vec<Value> = (0..12)
                .map(|k| {
                    if first + k <= last {
                        json!(counts[k as usize] as f64 / size as f64)
                    } else {
                        Value::Null
                    }
                })
                .collect();
            json!({"cohort": cohort, "size": size, "retention": retention})
        })
        .collect();
    let segs: serde_json::Map<String, Value> = SEGMENTS
        .iter()
        .map(|s| (s.to_string(), json!(segments.get(*s).copied().unwrap_or(0))))
        .collect();
    let v = json!({
        "as_of": as_of,
        "active_patients": n,
        "revenue": money(total),
        "segments": segs,
        "top20_share": top20,
        "gini": gini,
        "cohorts": cohorts,
    });
    // Through JSON text, as the command's output is read, so that equal
    // numbers parse to equal values.
    serde_json::from_str(&v.to_string()).unwrap()
}

fn assert_analysis_matches(actual: &Value, expected: &Value) {
    let keys: Vec<&String> = actual.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 7, "exactly the contract's keys: {keys:?}");
    for k in ["as_of", "active_patients", "revenue", "segments", "cohorts"] {
        assert_eq!(actual[k], expected[k], "{k} differs");
    }
    for k in ["top20_share", "gini"] {
        let (a, e) = (actual[k].as_f64().unwrap(), expected[k].as_f64().unwrap());
        assert!((a - e).abs() < 1e-9, "{k}: {a} vs {e}");
    }
}

/// The CSV of `export scores`, as header and rows of fields (no field of
/// the demo needs quoting).
fn read_csv(path: &std::path::Path) -> (String, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

const SCORES_HEADER: &str = "patient_id,visits,visit_days,monetary,first_visit,last_visit,recency_days,r_score,f_score,m_score,segment,p_alive,expected_visits_90d,clv_12m";

/// Per-patient summary by SQL: hospital id → (visits, visit_days,
/// monetary, first_visit, last_visit, recency_days).
async fn expected_patients(
    db: &Db,
    engine: Engine,
    as_of: &str,
) -> HashMap<String, (i64, i64, String, String, String, i64)> {
    let d = Dialect(engine);
    let rows: Vec<(String, i64, i64, i64, String, String, i64)> = fetch(
        db,
        &format!(
            "SELECT p.patient_id, CAST(COUNT(*) AS BIGINT), CAST(COUNT(DISTINCT v.visit_date) AS BIGINT), \
             CAST(SUM(v.amount) AS BIGINT), {}, {}, {} \
             FROM visits v JOIN patients p ON p.id = v.patient_key \
             WHERE v.hospital_id = 1 AND v.visit_date <= {} GROUP BY p.patient_id",
            d.date_text("MIN(v.visit_date)"),
            d.date_text("MAX(v.visit_date)"),
            d.days(&d.date(as_of), "MAX(v.visit_date)"),
            d.date(as_of),
        ),
    )
    .await;
    rows.into_iter()
        .map(|(id, visits, days, monetary, first, last, recency)| {
            (id, (visits, days, money(monetary), first, last, recency))
        })
        .collect()
}

async fn check_export(
    db: &TestDb,
    h: &Db,
    engine: Engine,
    as_of: &str,
    analysis: &Value,
    dir: &std::path::Path,
) {
    let file = dir.join(format!("scores-{as_of}.csv"));
    let out = run_ok(
        rapport(&db.url)
            .args(["export", "scores"])
            .arg(&file)
            .args(["--as-of", as_of]),
    );
    assert!(out.contains("Wrote the scores of"), "{out}");
    // Every export is in the audit log.
    let sql = "SELECT COUNT(*) FROM audit_log WHERE action = 'export.scores' AND actor = 'cli'";
    let exports: i64 = match h {
        rapport_app::Db::Sqlite { read, .. } => {
            sqlx::query_scalar(sql).fetch_one(read).await.unwrap()
        }
        rapport_app::Db::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
    };
    assert!(exports >= 1, "the export was not audited");
    let (header, rows) = read_csv(&file);
    assert_eq!(header, SCORES_HEADER);
    assert_eq!(
        rows.len() as u64,
        analysis["active_patients"].as_u64().unwrap(),
        "one row per active patient as of {as_of}"
    );
    let want = expected_patients(h, engine, as_of).await;
    assert_eq!(want.len(), rows.len());
    let mut segments: HashMap<String, u64> = HashMap::new();
    for r in &rows {
        assert_eq!(r.len(), 14, "{r:?}");
        let w = want
            .get(&r[0])
            .unwrap_or_else(|| panic!("{} is not active", r[0]));
        let got = (
            r[1].parse::<i64>().unwrap(),
            r[2].parse::<i64>().unwrap(),
            r[3].clone(),
            r[4].clone(),
            r[5].clone(),
            r[6].parse::<i64>().unwrap(),
        );
        assert_eq!(&got, w, "patient {}", r[0]);
        for c in 7..10 {
            let s: u8 = r[c].parse().unwrap();
            assert!((1..=5).contains(&s), "{r:?}");
        }
        *segments.entry(r[10].clone()).or_default() += 1;
        let p_alive: f64 = r[11].parse().unwrap();
        assert!((0.0..=1.0).contains(&p_alive), "{r:?}");
        let expected: f64 = r[12].parse().unwrap();
        assert!(expected >= 0.0, "{r:?}");
        let clv = &r[13];
        let (units, cents) = clv.split_once('.').unwrap();
        assert!(
            units.parse::<i64>().unwrap() >= 0 && cents.len() == 2,
            "{r:?}"
        );
    }
    for s in SEGMENTS {
        assert_eq!(
            segments.get(s).copied().unwrap_or(0),
            analysis["segments"][s].as_u64().unwrap(),
            "segment {s} of the export and of analyze"
        );
    }
    // Written by rename: nothing but the finished files in the folder.
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name.starts_with("scores-") && name.ends_with(".csv"),
            "{name}"
        );
    }
}

async fn analyze_matches_plain_sql(engine: Engine, patients: u64, with_export: bool) {
    let db = TestDb::new(engine).await.unwrap();
    demo(&db.url, patients);
    let h = db.open().await;
    let dir = tempfile::tempdir().unwrap();
    // The end of the demo (stored aggregates), then half a year earlier
    // (aggregates recomputed from the visits up to that day).
    for as_of in ["2026-06-30", "2025-12-31"] {
        let out = run_ok(rapport(&db.url).args(["analyze", "--as-of", as_of, "--json"]));
        let actual: Value = serde_json::from_str(&out).unwrap();
        let expected = expected_analysis(&h, engine, as_of).await;
        assert_analysis_matches(&actual, &expected);
        assert!(actual["active_patients"].as_u64().unwrap() > patients / 2);
        if with_export {
            check_export(&db, &h, engine, as_of, &actual, dir.path()).await;
        }
    }
    // Earlier dates see fewer patients and the text report reads well.
    let text = run_ok(rapport(&db.url).args(["analyze", "--as-of", "2024-01-15"]));
    assert!(text.contains("Analysis as of 2024-01-15"), "{text}");
    assert!(
        text.contains("champions") && text.contains("2024-01"),
        "{text}"
    );
    let out = run_ok(rapport(&db.url).args(["analyze", "--as-of", "2020-01-01", "--json"]));
    let empty: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(empty["active_patients"], 0);
    assert_eq!(empty["revenue"], "0.00");
    let out = rapport(&db.url)
        .args(["analyze", "--as-of", "2026-13-01"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad date is a usage error");
}

async fn analyze_and_export_match_plain_sql(engine: Engine) {
    analyze_matches_plain_sql(engine, 3000, true).await;
}

/// The same on 100,000 patients (SQLite only: about 17 s in a debug build
/// on 2 cores, most of it the demo and the SQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_matches_plain_sql_on_100k_patients() {
    analyze_matches_plain_sql(Engine::Sqlite, 100_000, false).await;
}

fn cdnow(file: &str) -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/cdnow/").to_string() + file
}

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/reference/cdnow_lifetimes_results.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Agreement to 4 significant digits.
fn close4(a: f64, b: f64) -> bool {
    (a - b).abs() <= 5e-5 * b.abs()
}

#[test]
fn clv_fit_on_cdnow_summaries_reproduces_lifetimes() {
    let dir = tempfile::tempdir().unwrap();
    let bin = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rapport"));
        // No database is needed (nor created) for a summary file.
        c.arg("--data-dir").arg(dir.path().join("data"));
        c
    };
    let want = reference();
    let out = run_ok(
        bin()
            .args(["clv", "fit", "--json", "--summary"])
            .arg(cdnow("cdnow_customers_summary.csv")),
    );
    let fit: Value = serde_json::from_str(&out).unwrap();
    for p in ["r", "alpha", "a", "b"] {
        let (got, exp) = (
            fit["bgnbd"][p].as_f64().unwrap(),
            want["bgnbd"]["params"][p].as_f64().unwrap(),
        );
        assert!(close4(got, exp), "{p}: {got} vs lifetimes {exp}");
    }
    let ll = fit["bgnbd"]["log_likelihood"].as_f64().unwrap();
    let want_ll = want["bgnbd"]["total_ll_recomputed_eq6"].as_f64().unwrap();
    assert!((ll - want_ll).abs() < 0.01, "{ll} vs {want_ll}");
    assert_eq!(
        fit["bgnbd"]["customers"].as_u64(),
        want["bgnbd"]["n_customers"].as_u64()
    );
    assert!(
        fit.get("gamma_gamma").is_none(),
        "no monetary column: {fit}"
    );
    assert!(!dir.path().join("data").exists(), "no database was opened");

    let out = run_ok(
        bin()
            .args(["clv", "fit", "--json", "--summary"])
            .arg(cdnow("cdnow_summary_with_monetary.csv")),
    );
    let fit: Value = serde_json::from_str(&out).unwrap();
    for (p, q) in [("p", "p"), ("q", "q"), ("gamma", "v")] {
        let (got, exp) = (
            fit["gamma_gamma"][p].as_f64().unwrap(),
            want["gamma_gamma"]["params"][q].as_f64().unwrap(),
        );
        assert!(close4(got, exp), "{p}: {got} vs lifetimes {exp}");
    }
    assert_eq!(
        fit["gamma_gamma"]["customers"].as_u64(),
        want["gamma_gamma"]["n_repeat_customers"].as_u64()
    );
    let text = run_ok(
        bin()
            .args(["clv", "fit", "--summary"])
            .arg(cdnow("cdnow_summary_with_monetary.csv")),
    );
    assert!(
        text.contains("BG/NBD") && text.contains("Gamma-Gamma"),
        "{text}"
    );

    // A malformed file: exit 1 naming the file, row and column.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "id,frequency,recency,T\n1,2,30.4,38.9\n2,1,oops,38.9\n",
    )
    .unwrap();
    let out = bin()
        .args(["clv", "fit", "--summary"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:3:recency:", bad.display())),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    std::fs::write(&bad, "frequency,recency\n1,2\n").unwrap();
    let out = bin()
        .args(["clv", "fit", "--summary"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:1:T:", bad.display())), "{err}");
    std::fs::write(&bad, "frequency,recency,T\n2,40,30\n").unwrap();
    let out = bin()
        .args(["clv", "fit", "--summary"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":2:T:"));
    let out = bin()
        .args(["clv", "fit", "--as-of", "2026-01-01", "--summary"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "--as-of makes no sense with a file"
    );
}

async fn generate(t: &TestApp, patients: u64) {
    let spec = rapport_app::demo::DemoSpec {
        patients,
        seed: 11,
        end: "2026-06-30".parse().unwrap(),
        years: 5,
    };
    rapport_app::demo::generate(&t.app, &spec, |_| {})
        .await
        .unwrap();
}

/// The stored scores, by patient, without the refresh time.
async fn stored_scores(
    h: &Db,
) -> Vec<(
    i64,
    i64,
    i64,
    i64,
    String,
    Option<f64>,
    Option<f64>,
    Option<i64>,
    i64,
)> {
    fetch(
        h,
        "SELECT patient_key, r_score, f_score, m_score, segment, p_alive, expected_visits_90d, clv_12m, churn_risk \
         FROM patient_scores ORDER BY patient_key",
    )
    .await
}

async fn refresh_stores_scores_and_the_api_serves_them(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let h = t.app.db.clone();
    let newcomer = t.patient("NEW1", "Zhao").await; // no visits: not active

    // Before any refresh there are no scores.
    let (s, e) = t
        .call("GET", &format!("/api/v1/patients/{newcomer}/scores"), None)
        .await;
    assert_eq!((s, e["code"].as_str()), (404, Some("not_found")));
    // With no visits at all the models cannot be fitted: a 409, not a 500.
    let (s, e) = t.call("GET", "/api/v1/analytics/clv", None).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("insufficient_data")));
    let (s, r) = t
        .call("POST", "/api/v1/analytics/scores/refresh", None)
        .await;
    assert_eq!((s, r["patients"].as_u64()), (200, Some(0)), "{r}");

    generate(&t, 800).await;
    let active: Vec<(i64,)> = fetch(&h, "SELECT COUNT(*) FROM patient_aggregates").await;
    let active = active[0].0 as u64;
    assert!(active >= 790, "{active}");

    // Only managers and admins may refresh.
    let mk = t.token("marketing").await;
    let (s, _) = t
        .call_as(&mk, "POST", "/api/v1/analytics/scores/refresh", None)
        .await;
    assert_eq!(s, 403);
    let mgr = t.token("manager").await;
    let (s, first) = t
        .call_as(
            &mgr,
            "POST",
            "/api/v1/analytics/scores/refresh",
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(
        first["patients"].as_u64(),
        Some(active),
        "one row per active patient"
    );
    assert_eq!(first["predicted"].as_u64(), Some(active));
    let as_of = first["as_of"].as_str().unwrap().to_string();
    assert_eq!(as_of, t.app.today().to_string());
    let stored = stored_scores(&h).await;
    assert_eq!(stored.len() as u64, active);
    assert!(
        stored
            .iter()
            .all(|r| r.5.is_some() && r.6.is_some() && r.7.is_some())
    );
    let at_risk = stored.iter().filter(|r| r.8 == 1).count() as u64;
    assert_eq!(first["churn_risk"].as_u64(), Some(at_risk));
    assert!(at_risk > 0 && at_risk < active, "{at_risk} of {active}");

    // The stored scores are those of `export scores` on the same day, and
    // their segments those of `analyze`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scores.csv");
    run_ok(
        rapport(&t._db.url)
            .args(["export", "scores"])
            .arg(&file)
            .args(["--as-of", &as_of]),
    );
    let (header, rows) = read_csv(&file);
    assert_eq!(header, SCORES_HEADER);
    assert_eq!(rows.len(), stored.len());
    let keys: Vec<(i64, String)> = fetch(&h, "SELECT id, patient_id FROM patients").await;
    let key_of: HashMap<String, i64> = keys.into_iter().map(|(k, p)| (p, k)).collect();
    let by_key: HashMap<i64, _> = stored.iter().map(|r| (r.0, r)).collect();
    for r in &rows {
        let s = by_key[&key_of[&r[0]]];
        assert_eq!(
            (
                s.1.to_string(),
                s.2.to_string(),
                s.3.to_string(),
                s.4.clone()
            ),
            (r[7].clone(), r[8].clone(), r[9].clone(), r[10].clone()),
            "patient {}",
            r[0]
        );
        let p_alive: f64 = r[11].parse().unwrap();
        assert!((s.5.unwrap() - p_alive).abs() <= 5e-7, "{r:?} vs {s:?}");
        let ev: f64 = r[12].parse().unwrap();
        assert!((s.6.unwrap() - ev).abs() <= 5e-7, "{r:?} vs {s:?}");
        assert_eq!(money(s.7.unwrap()), r[13], "{r:?}");
        let visit_days: i64 = r[2].parse().unwrap();
        assert_eq!(s.8 == 1, visit_days >= 2 && s.5.unwrap() < 0.5, "{r:?}");
    }
    let analysis: Value = serde_json::from_str(&run_ok(
        rapport(&t._db.url).args(["analyze", "--json", "--as-of", &as_of]),
    ))
    .unwrap();
    for seg in SEGMENTS {
        let n = stored.iter().filter(|r| r.4 == seg).count() as u64;
        assert_eq!(Some(n), analysis["segments"][seg].as_u64(), "{seg}");
    }

    // The patient's scores route.
    let (key, r, f, m, seg, p_alive, ev, clv, churn) = stored[stored.len() / 2].clone();
    let (s, v) = t
        .call("GET", &format!("/api/v1/patients/{key}/scores"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"], key);
    assert_eq!(
        (
            v["r_score"].as_i64(),
            v["f_score"].as_i64(),
            v["m_score"].as_i64()
        ),
        (Some(r), Some(f), Some(m))
    );
    assert_eq!(v["segment"], seg);
    assert_eq!(v["p_alive"].as_f64(), p_alive);
    assert_eq!(v["expected_visits_90d"].as_f64(), ev);
    assert_eq!(v["clv_12m"], money(clv.unwrap()));
    assert_eq!(v["churn_risk"], churn == 1);
    assert_eq!(v["refreshed_at"], first["refreshed_at"]);
    // The 360° view shows the same scores.
    let (_, view) = t
        .call("GET", &format!("/api/v1/patients/{key}"), None)
        .await;
    assert_eq!(view["scores"], v);
    let (s, _) = t
        .call("GET", &format!("/api/v1/patients/{newcomer}/scores"), None)
        .await;
    assert_eq!(s, 404, "a patient without visits has no scores");
    let (_, view) = t
        .call("GET", &format!("/api/v1/patients/{newcomer}"), None)
        .await;
    assert_eq!(view["scores"], serde_json::Value::Null);
    let analyst = t.token("analyst").await;
    let (s, _) = t
        .call_as(
            &analyst,
            "GET",
            &format!("/api/v1/patients/{key}/scores"),
            None,
        )
        .await;
    assert_eq!(s, 403, "scores are patient data");

    // A second refresh stores the same scores, at a later time.
    let (s, second) = t
        .call("POST", "/api/v1/analytics/scores/refresh", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(stored_scores(&h).await, stored);
    assert!(second["refreshed_at"].as_str() > first["refreshed_at"].as_str());
    assert!(second["job_id"].as_i64() > first["job_id"].as_i64());
    let (s, runs) = t.call("GET", "/api/v1/analytics/scores/runs", None).await;
    assert_eq!(s, 200);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3, "three refreshes were run: {runs:?}");
    assert_eq!(runs[0]["id"], second["job_id"]);
    assert!(
        runs.iter()
            .all(|r| r["status"] == "ok" && r["finished_at"].is_string())
    );
    let detail: Value = serde_json::from_str(runs[0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["patients"].as_u64(), Some(active));

    // The dashboard summary agrees with `analyze` and with the visits.
    let (s, sum) = t
        .call("GET", "/api/v1/analytics/summary?as_of=2026-03-31", None)
        .await;
    assert_eq!(s, 200, "{sum}");
    let cli: Value = serde_json::from_str(&run_ok(rapport(&t._db.url).args([
        "analyze",
        "--json",
        "--as-of",
        "2026-03-31",
    ])))
    .unwrap();
    for k in [
        "as_of",
        "active_patients",
        "revenue",
        "segments",
        "top20_share",
        "gini",
        "cohorts",
    ] {
        assert_eq!(sum[k], cli[k], "{k}");
    }
    let (visits, revenue): (i64, i64) = fetch(
        &h,
        &format!(
            "SELECT CAST(COUNT(*) AS BIGINT), CAST(SUM(amount) AS BIGINT) FROM visits WHERE visit_date <= {}",
            Dialect(engine).date("2026-03-31")
        ),
    )
    .await[0];
    let months = sum["months"].as_array().unwrap();
    assert!(months.len() > 40, "five years of months: {}", months.len());
    assert_eq!(months.last().unwrap()["month"], "2026-03");
    assert!(
        months
            .windows(2)
            .all(|w| w[0]["month"].as_str() < w[1]["month"].as_str())
    );
    assert_eq!(
        months
            .iter()
            .map(|m| m["visits"].as_i64().unwrap())
            .sum::<i64>(),
        visits
    );
    let cents = |s: &Value| -> i64 { s.as_str().unwrap().replace('.', "").parse().unwrap() };
    assert_eq!(
        months.iter().map(|m| cents(&m["revenue"])).sum::<i64>(),
        revenue
    );
    assert_eq!(cents(&sum["revenue"]), revenue);
    let breakdown = sum["segment_breakdown"].as_array().unwrap();
    assert_eq!(breakdown.len(), 9);
    assert_eq!(
        breakdown.iter().map(|b| cents(&b["revenue"])).sum::<i64>(),
        revenue
    );
    for b in breakdown {
        assert_eq!(
            b["patients"],
            sum["segments"][b["segment"].as_str().unwrap()]
        );
    }
    let pareto = sum["pareto"].as_array().unwrap();
    assert_eq!(pareto.len(), 51);
    assert_eq!(
        (
            pareto[0]["patient_share"].as_f64(),
            pareto[0]["revenue_share"].as_f64()
        ),
        (Some(0.0), Some(0.0))
    );
    assert_eq!(pareto[50]["revenue_share"].as_f64(), Some(1.0));
    assert_eq!(
        pareto[10]["revenue_share"], sum["top20_share"],
        "20 % of the patients"
    );
    assert!(
        pareto
            .windows(2)
            .all(|w| w[0]["revenue_share"].as_f64() <= w[1]["revenue_share"].as_f64())
    );
    let (s, e) = t
        .call("GET", "/api/v1/analytics/summary?as_of=2026-02-30", None)
        .await;
    assert_eq!((s, e["errors"][0]["field"].as_str()), (422, Some("as_of")));
    let (s, e) = t
        .call("GET", "/api/v1/analytics/summary?pareto_points=0", None)
        .await;
    assert_eq!(
        (s, e["errors"][0]["field"].as_str()),
        (422, Some("pareto_points"))
    );

    // The CLV route is `clv fit --json` on the same day.
    let (s, fit) = t
        .call("GET", "/api/v1/analytics/clv?as_of=2026-06-30", None)
        .await;
    assert_eq!(s, 200, "{fit}");
    let cli: Value = serde_json::from_str(&run_ok(rapport(&t._db.url).args([
        "clv",
        "fit",
        "--json",
        "--as-of",
        "2026-06-30",
    ])))
    .unwrap();
    assert_eq!(fit["bgnbd"], cli["bgnbd"]);
    assert_eq!(fit["gamma_gamma"], cli["gamma_gamma"]);
    assert_eq!(fit["bgnbd"]["customers"].as_u64(), Some(active));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abtest_route_matches_statsmodels_and_names_bad_parameters() {
    let t = TestApp::spawn(Engine::Sqlite).await.unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/reference/abtest_scipy_statsmodels.json"
    );
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let want = &reference["ztest_250of1000_vs_200of1000"];
    let analyst = t.token("analyst").await;
    let (s, v) = t
        .call_as(
            &analyst,
            "GET",
            "/api/v1/analytics/abtest?x_a=250&n_a=1000&x_b=200&n_b=1000",
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let close = |a: &Value, b: &Value| (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-12;
    assert!(
        close(&v["z"], &want["statsmodels_proportions_ztest"][0]),
        "{v}"
    );
    assert!(
        close(&v["p_value"], &want["statsmodels_proportions_ztest"][1]),
        "{v}"
    );
    assert!(close(&v["ci_low"], &want["wald_ci95_diff"][0]), "{v}");
    assert!(close(&v["ci_high"], &want["wald_ci95_diff"][1]), "{v}");
    assert!(close(&v["difference"], &json!(0.05)));
    for (query, field, code) in [
        ("x_a=250&n_a=1000&x_b=200", "n_b", "required"),
        ("x_a=250&n_a=1000&x_b=abc&n_b=10", "x_b", "invalid_number"),
        ("x_a=-1&n_a=1000&x_b=2&n_b=10", "x_a", "invalid_number"),
        ("x_a=1001&n_a=1000&x_b=2&n_b=10", "x_a", "out_of_range"),
        ("x_a=0&n_a=0&x_b=2&n_b=10", "n_a", "out_of_range"),
    ] {
        let (s, e) = t
            .call("GET", &format!("/api/v1/analytics/abtest?{query}"), None)
            .await;
        assert_eq!(s, 422, "{query}: {e}");
        assert_eq!(e["errors"][0]["field"], field, "{query}: {e}");
        assert_eq!(e["errors"][0]["code"], code, "{query}: {e}");
        assert!(e["detail"].as_str().unwrap().contains(field), "{e}");
    }
}
