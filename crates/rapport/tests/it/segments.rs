//! Saved segments and the dashboard, end to end on both engines: rule
//! errors name their path, counts equal a filter written here in Rust over
//! rows read back with plain SQL, members pages cover each member once,
//! exports mask per role and are audited, the history grows on every
//! scores refresh, and the dashboard's series equal plain SQL sums.

use std::collections::{BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate};
use rapport_store::Db;
use serde_json::{Value, json};

use crate::both_engines;
use crate::harness::{Engine, TestApp};

both_engines!(
    rule_errors_name_their_path_and_are_never_500,
    counts_members_and_exports_match_an_independent_filter,
    history_grows_on_every_refresh,
    dashboard_matches_plain_sql,
);

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

/// A date column as `YYYY-MM-DD` text on either engine.
fn date_text(engine: Engine, col: &str) -> String {
    match engine {
        Engine::Sqlite => col.to_string(),
        Engine::Postgres => format!("to_char({col}, 'YYYY-MM-DD')"),
    }
}

fn date_lit(engine: Engine, d: &str) -> String {
    match engine {
        Engine::Sqlite => format!("'{d}'"),
        Engine::Postgres => format!("DATE '{d}'"),
    }
}

async fn generate(t: &TestApp, patients: u64) {
    let spec = rapport_app::demo::DemoSpec {
        patients,
        seed: 5,
        end: "2026-06-30".parse().unwrap(),
        years: 4,
    };
    rapport_app::demo::generate(&t.app, &spec, |_| {})
        .await
        .unwrap();
}

async fn rule_errors_name_their_path_and_are_never_500(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let cases = [
        (
            json!({"name": "a", "rules": {"all": [
                {"field": "sex", "op": "=", "value": "F"},
                {"any": [{"field": "visits", "op": ">=", "value": "three"}]},
                {"field": "monetary", "op": "between", "value": ["9", "1"]}
            ]}}),
            vec![
                ("rules.all[1].any[0].value", "invalid_type"),
                ("rules.all[2].value", "invalid_range"),
            ],
        ),
        (
            json!({"name": "", "rules": {"field": "bogus", "op": "="}}),
            vec![
                ("name", "invalid_text"),
                ("rules.field", "unknown_field_name"),
            ],
        ),
        (
            json!({"name": "x", "rules": {"field": "tags", "op": ">", "value": 1}}),
            vec![("rules.op", "invalid_op")],
        ),
        (
            json!({"name": "x", "rules": "everyone"}),
            vec![("rules", "invalid_type")],
        ),
        (
            json!({"name": "x", "rules": null}),
            vec![("rules", "invalid_type")],
        ),
        (
            json!({"name": "x", "rules": {"all": [{"field": "last_visit", "op": ">=", "value": {"days_ago": -1}}]}}),
            vec![("rules.all[0].value", "invalid_date")],
        ),
    ];
    for (body, want) in cases {
        let (s, e) = t.call("POST", "/api/v1/segments", Some(body.clone())).await;
        assert_eq!(s, 422, "{body}: {e}");
        let got: Vec<(String, String)> = e["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["field"].as_str().unwrap().to_string(),
                    f["code"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want, "{body}");
        // The builder's live count says the same.
        let (s, p) = t
            .call(
                "POST",
                "/api/v1/segments/preview",
                Some(json!({"rules": body["rules"]})),
            )
            .await;
        assert_eq!(s, 422, "{p}");
    }
    // Malformed bodies and parameters: 4xx problem+json, never 500 (the
    // harness checks the content type of every error).
    let url = t.url("/api/v1/segments/preview");
    for raw in ["{", "[]", "{\"rules\": 1, \"x\": 2}", "null", "\"\""] {
        let res = t
            .client
            .post(&url)
            .bearer_auth(&t.admin)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        let s = res.status().as_u16();
        assert!((400..500).contains(&s), "{raw}: {s}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{raw}"
        );
    }
    let deep = |n: usize| {
        (0..n).fold(
            json!({"field": "visits", "op": ">", "value": 1}),
            |r, _| json!({"all": [r]}),
        )
    };
    let (s, e) = t
        .call(
            "POST",
            "/api/v1/segments/preview",
            Some(json!({"rules": deep(10)})),
        )
        .await;
    assert_eq!(
        (
            s,
            e["errors"][0]["code"].as_str(),
            e["errors"][0]["field"].as_str()
        ),
        (
            422,
            Some("too_deep"),
            Some("rules.all[0].all[0].all[0].all[0].all[0].all[0].all")
        )
    );
    // Deeper than the JSON parser goes: unreadable, not a crash.
    let (s, e) = t
        .call(
            "POST",
            "/api/v1/segments/preview",
            Some(json!({"rules": deep(100)})),
        )
        .await;
    assert_eq!((s, e["code"].as_str()), (400, Some("malformed_json")));
    for path in [
        "/api/v1/segments/999/members?limit=0",
        "/api/v1/segments/999/members?cursor=abc",
        "/api/v1/segments/999/history?limit=x",
        "/api/v1/segments/999/export?format=pdf",
        "/api/v1/segments/abc",
        "/api/v1/segments/999",
        "/api/v1/segments/999/count",
        "/api/v1/analytics/dashboard?period_days=0",
        "/api/v1/analytics/dashboard?as_of=2026-13-01",
    ] {
        let (s, e) = t.call("GET", path, None).await;
        assert!((400..500).contains(&s), "{path}: {s} {e}");
    }

    // Names are unique; a valid segment round-trips in canonical form.
    let rules = json!({"all": [{"field": "monetary", "op": ">=", "value": 12.5},
                               {"field": "registered_on", "op": ">=", "value": {"days_ago": 30}}]});
    let (s, a) = t
        .call(
            "POST",
            "/api/v1/segments",
            Some(json!({"name": "Big spenders", "rules": rules})),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["rules"]["all"][0]["value"], "12.50");
    assert_eq!(a["rules"]["all"][1]["value"], json!({"days_ago": 30}));
    let (s, e) = t
        .call(
            "POST",
            "/api/v1/segments",
            Some(json!({"name": "Big spenders", "rules": {"all": []}})),
        )
        .await;
    assert_eq!((s, e["code"].as_str()), (409, Some("segment_exists")));
    let id = a["id"].as_i64().unwrap();
    let (s, e) = t
        .call(
            "PUT",
            &format!("/api/v1/segments/{id}"),
            Some(json!({"name": "Big spenders", "rules": {"any": [{"field": "age", "op": ">", "value": 500}]}})),
        )
        .await;
    assert_eq!(
        (s, e["errors"][0]["field"].as_str()),
        (422, Some("rules.any[0].value"))
    );
}

/// Everything the rules can read about one patient, read back with plain
/// SQL.
#[derive(Debug, Clone)]
struct Facts {
    id: i64,
    sex: Option<String>,
    birth_date: Option<NaiveDate>,
    birth_year: Option<i64>,
    district: Option<String>,
    household: Option<String>,
    tags: Vec<String>,
    erased: bool,
    visits: i64,
    monetary: i64,
    last_visit: Option<NaiveDate>,
    segment: Option<String>,
    r_score: Option<i64>,
    p_alive: Option<f64>,
    clv_12m: Option<i64>,
    churn_risk: Option<bool>,
    sms_marketing: bool,
}

impl Facts {
    fn age(&self, today: NaiveDate) -> Option<i64> {
        match (self.birth_date, self.birth_year) {
            (Some(b), _) => {
                let mut a = i64::from(today.year() - b.year());
                if (today.month(), today.day()) < (b.month(), b.day()) {
                    a -= 1;
                }
                Some(a.max(0))
            }
            (None, Some(y)) => Some((i64::from(today.year()) - y).max(0)),
            _ => None,
        }
    }
}

/// A rule set's meaning, written independently of the store.
type Filter<'a> = Box<dyn Fn(&Facts) -> bool + 'a>;

type FactRow = (
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<f64>,
    Option<i64>,
    Option<i64>,
);

async fn facts(db: &Db, engine: Engine) -> Vec<Facts> {
    let rows: Vec<FactRow> = fetch(
        db,
        &format!(
            "SELECT p.id, p.sex, {}, CAST(p.birth_year AS BIGINT), p.district, p.household, p.tags, \
             CAST(CASE WHEN p.erased_at IS NULL THEN 0 ELSE 1 END AS BIGINT), \
             a.visits, a.monetary, {}, s.segment, s.r_score, s.p_alive, s.clv_12m, s.churn_risk \
             FROM patients p LEFT JOIN patient_aggregates a ON a.patient_key = p.id \
             LEFT JOIN patient_scores s ON s.patient_key = p.id ORDER BY p.id",
            date_text(engine, "p.birth_date"),
            date_text(engine, "a.last_visit"),
        ),
    )
    .await;
    // The decision in force: the latest row per patient, channel and purpose.
    let consents: Vec<(i64, i64, i64)> = fetch(
        db,
        "SELECT patient_key, id, CAST(granted AS BIGINT) FROM consents \
         WHERE channel = 'sms' AND purpose = 'marketing' ORDER BY id",
    )
    .await;
    let mut sms: HashMap<i64, bool> = HashMap::new();
    for (p, _, g) in consents {
        sms.insert(p, g == 1);
    }
    let d = |s: Option<String>| s.map(|s| s.parse::<NaiveDate>().unwrap());
    rows.into_iter()
        .map(|r| Facts {
            id: r.0,
            sex: r.1,
            birth_date: d(r.2),
            birth_year: r.3,
            district: r.4,
            household: r.5,
            tags: serde_json::from_str(&r.6).unwrap(),
            erased: r.7 == 1,
            visits: r.8.unwrap_or(0),
            monetary: r.9.unwrap_or(0),
            last_visit: d(r.10),
            segment: r.11,
            r_score: r.12,
            p_alive: r.13,
            clv_12m: r.14,
            churn_risk: r.15.map(|c| c == 1),
            sms_marketing: sms.get(&r.0).copied().unwrap_or(false),
        })
        .collect()
}

async fn counts_members_and_exports_match_an_independent_filter(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    generate(&t, 600).await;
    // Patients the generator does not make: no visits, no district, no
    // household, a birth year only; consents; one erased patient.
    for (pid, body) in [
        (
            "X1",
            json!({"patient_id": "X1", "name": "No Visits", "sex": "F", "birth_year": 1990, "phone": "13900000001"}),
        ),
        (
            "X2",
            json!({"patient_id": "X2", "name": "=HYPERLINK(\"x\")", "birth_date": "2000-02-29", "tags": ["vip", "new"]}),
        ),
        (
            "X3",
            json!({"patient_id": "X3", "name": "Gone", "sex": "M", "phone": "13900000003"}),
        ),
    ] {
        let (s, b) = t.call("POST", "/api/v1/patients", Some(body)).await;
        assert_eq!(s, 201, "{pid}: {b}");
    }
    let ids: Vec<(i64, String)> = fetch(&t.app.db, "SELECT id, patient_id FROM patients").await;
    let key: HashMap<String, i64> = ids.into_iter().map(|(k, p)| (p, k)).collect();
    for (who, granted) in [("X1", true), ("X2", true), ("X2", false), ("X3", true)] {
        let (s, b) = t
            .call(
                "POST",
                &format!("/api/v1/patients/{}/consents", key[who]),
                Some(json!({"channel": "sms", "purpose": "marketing", "granted": granted, "source": "paper_form"})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
    // A handful of generated patients consent too.
    for k in [3, 5, 8, 13] {
        let (s, b) = t
            .call(
                "POST",
                &format!("/api/v1/patients/{k}/consents"),
                Some(json!({"channel": "sms", "purpose": "marketing", "granted": true, "source": "web_link"})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
    let (s, b) = t
        .call(
            "POST",
            &format!("/api/v1/patients/{}/erase", key["X3"]),
            Some(json!({"reason": "request"})),
        )
        .await;
    assert!(s < 300, "{b}");
    let (s, _) = t
        .call("POST", "/api/v1/analytics/scores/refresh", None)
        .await;
    assert_eq!(s, 200);

    let today = t.app.today();
    let all = facts(&t.app.db, engine).await;
    let erased = all.iter().filter(|f| f.erased).count();
    assert_eq!(erased, 1);
    let prefix = "浦东";
    let days_ago = |n: i64| today - chrono::Duration::days(n);
    let cases: Vec<(Value, Filter<'_>)> = vec![
        (json!({"all": []}), Box::new(|_| true)),
        (
            json!({"all": [
                {"field": "sex", "op": "=", "value": "F"},
                {"field": "visits", "op": ">=", "value": 3},
                {"field": "rfm_segment", "op": "in", "value": ["champions", "loyal", "potential_loyalist"]}
            ]}),
            Box::new(|f| {
                f.sex.as_deref() == Some("F")
                    && f.visits >= 3
                    && f.segment
                        .as_deref()
                        .is_some_and(|s| ["champions", "loyal", "potential_loyalist"].contains(&s))
            }),
        ),
        (
            json!({"any": [
                {"field": "tags", "op": "contains", "value": "vip"},
                {"field": "monetary", "op": ">", "value": "3000.00"}
            ]}),
            Box::new(|f| f.tags.iter().any(|t| t == "vip") || f.monetary > 300_000),
        ),
        (
            json!({"all": [
                {"field": "age", "op": "between", "value": [30, 50]},
                {"field": "district", "op": "prefix", "value": prefix},
                {"field": "recency_days", "op": "<=", "value": 400}
            ]}),
            Box::new(move |f| {
                f.age(today).is_some_and(|a| (30..=50).contains(&a))
                    && f.district.as_deref().is_some_and(|d| d.starts_with(prefix))
                    && f.last_visit.is_some_and(|l| l >= days_ago(400))
            }),
        ),
        (
            json!({"any": [
                {"field": "visits", "op": "<", "value": 1},
                {"field": "consent.sms.marketing", "op": "=", "value": true}
            ]}),
            Box::new(|f| f.visits < 1 || f.sms_marketing),
        ),
        (
            json!({"all": [
                {"field": "p_alive", "op": "<", "value": 0.5},
                {"field": "clv_12m", "op": ">=", "value": "1.00"},
                {"field": "churn_risk", "op": "!=", "value": false},
                {"field": "last_visit", "op": ">=", "value": "2023-01-01"}
            ]}),
            Box::new(|f| {
                f.p_alive.is_some_and(|p| p < 0.5)
                    && f.clv_12m.is_some_and(|c| c >= 100)
                    && f.churn_risk == Some(true)
                    && f.last_visit
                        .is_some_and(|l| l >= "2023-01-01".parse().unwrap())
            }),
        ),
        (
            json!({"all": [
                {"field": "district", "op": "is_null"},
                {"field": "has_household", "op": "=", "value": false},
                {"field": "age", "op": "not_in", "value": [26]}
            ]}),
            Box::new(move |f| {
                f.district.is_none()
                    && f.household.as_deref().is_none_or(str::is_empty)
                    && f.age(today).is_some_and(|a| a != 26)
            }),
        ),
        (
            json!({"any": [
                {"field": "tags", "op": "contains_all", "value": ["vip", "chronic"]},
                {"all": [
                    {"field": "r_score", "op": ">=", "value": 4},
                    {"field": "tags", "op": "is_null"},
                    {"field": "consent.sms.marketing", "op": "!=", "value": true}
                ]}
            ]}),
            Box::new(|f| {
                (f.tags.iter().any(|t| t == "vip") && f.tags.iter().any(|t| t == "chronic"))
                    || (f.r_score.is_some_and(|r| r >= 4) && f.tags.is_empty() && !f.sms_marketing)
            }),
        ),
    ];
    let mut rules_created = Vec::new();
    for (i, (rules, filter)) in cases.iter().enumerate() {
        let want: Vec<i64> = all
            .iter()
            .filter(|f| !f.erased && filter(f))
            .map(|f| f.id)
            .collect();
        let (s, p) = t
            .call(
                "POST",
                "/api/v1/segments/preview",
                Some(json!({"rules": rules})),
            )
            .await;
        assert_eq!(s, 200, "{p}");
        assert_eq!(
            p["patients"].as_i64(),
            Some(want.len() as i64),
            "case {i}: {rules}"
        );
        assert!(
            i == 0 || (want.len() as u64) < 600,
            "case {i} selects everyone"
        );
        let (s, seg) = t
            .call(
                "POST",
                "/api/v1/segments",
                Some(json!({"name": format!("case {i}"), "rules": rules})),
            )
            .await;
        assert_eq!(s, 201, "{seg}");
        let id = seg["id"].as_i64().unwrap();
        rules_created.push(id);
        let (_, c) = t
            .call("GET", &format!("/api/v1/segments/{id}/count"), None)
            .await;
        assert_eq!(c["patients"], p["patients"]);
        assert_eq!(c["as_of"], today.to_string());
        // Pages of 7 cover each member exactly once, in id order.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/segments/{id}/members?limit=7&cursor={c}"),
                None => format!("/api/v1/segments/{id}/members?limit=7"),
            };
            let (s, page) = t.call("GET", &path, None).await;
            assert_eq!(s, 200, "{page}");
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 7);
            seen.extend(items.iter().map(|m| m["id"].as_i64().unwrap()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(seen, want, "case {i}: members");
    }
    // One pass counting every segment at once agrees with the single counts.
    let (s, _) = t
        .call("POST", "/api/v1/analytics/scores/refresh", None)
        .await;
    assert_eq!(s, 200);
    for (i, id) in rules_created.iter().enumerate() {
        let (_, seg) = t.call("GET", &format!("/api/v1/segments/{id}"), None).await;
        let (_, c) = t
            .call("GET", &format!("/api/v1/segments/{id}/count"), None)
            .await;
        assert_eq!(seg["latest_count"]["patients"], c["patients"], "case {i}");
        assert_eq!(seg["latest_count"]["reason"], "refresh");
    }

    // Members carry their scores and masked contacts per role.
    let id = rules_created[4]; // no visits or SMS consent: X1, X2
    let mk = t.token("marketing").await;
    let (s, page) = t
        .call_as(&mk, "GET", &format!("/api/v1/segments/{id}/members"), None)
        .await;
    assert_eq!(s, 200, "{page}");
    let x1 = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["patient_id"] == "X1")
        .unwrap()
        .clone();
    assert_eq!(x1["phone"], "139****0001");
    assert_eq!(x1["masked"], true);
    assert_eq!(x1["aggregates"], Value::Null);
    assert_eq!(x1["scores"], Value::Null);
    let (_, page) = t
        .call("GET", &format!("/api/v1/segments/{id}/members"), None)
        .await;
    let with_scores = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["scores"].is_object())
        .expect("a consenting patient with visits")
        .clone();
    let k = with_scores["id"].as_i64().unwrap();
    let (_, direct) = t
        .call("GET", &format!("/api/v1/patients/{k}/scores"), None)
        .await;
    assert_eq!(with_scores["scores"], direct);

    // Exports: the same members, masked for marketing, in the clear for
    // admins; the analyst (no patients:read) cannot list or export.
    let export = |token: String| {
        let url = t.url(&format!("/api/v1/segments/{id}/export?format=csv"));
        let client = t.client.clone();
        async move {
            let res = client.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(res.status().as_u16(), 200);
            assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
            res.text().await.unwrap()
        }
    };
    let admin_csv = export(t.admin.clone()).await;
    let mk_csv = export(mk.clone()).await;
    let parse = |s: &str| -> Vec<Vec<String>> {
        let mut r = csv_rows(s);
        assert_eq!(r[0][0], "id");
        r.remove(0);
        r
    };
    let (a, m) = (parse(&admin_csv), parse(&mk_csv));
    let want: Vec<String> = all
        .iter()
        .filter(|f| !f.erased && (f.visits < 1 || f.sms_marketing))
        .map(|f| f.id.to_string())
        .collect();
    assert_eq!(a.iter().map(|r| r[0].clone()).collect::<Vec<_>>(), want);
    assert_eq!(m.len(), a.len());
    let row = |rows: &[Vec<String>], pid: &str| rows.iter().find(|r| r[1] == pid).unwrap().clone();
    assert_eq!(row(&a, "X1")[5], "13900000001");
    assert_eq!(row(&m, "X1")[5], "139****0001");
    // A name that a spreadsheet would run as a formula is defused.
    assert_eq!(row(&a, "X2")[2], "'=HYPERLINK(\"x\")");
    assert!(
        !admin_csv.contains("13900000003"),
        "erased patients are never exported"
    );
    let analyst = t.token("analyst").await;
    for path in [
        format!("/api/v1/segments/{id}/members"),
        format!("/api/v1/segments/{id}/export"),
    ] {
        let (s, _) = t.call_as(&analyst, "GET", &path, None).await;
        assert_eq!(s, 403, "{path}");
    }
    let (s, _) = t
        .call_as(
            &analyst,
            "GET",
            &format!("/api/v1/segments/{id}/count"),
            None,
        )
        .await;
    assert_eq!(s, 200, "counts are analytics");
    // Exports and changes are in the audit log.
    rapport_app::audit::flush(&t.app).await;
    let actions: Vec<(String, Option<String>)> = fetch(
        &t.app.db,
        &format!(
            "SELECT action, detail FROM audit_log WHERE subject_type = 'segment' AND subject_id = {id} ORDER BY id"
        ),
    )
    .await;
    let names: Vec<&str> = actions.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        names,
        ["segment.create", "segment.export", "segment.export"]
    );
    assert!(
        actions[1]
            .1
            .as_deref()
            .unwrap()
            .contains("\"masked\":false")
    );
    assert!(actions[2].1.as_deref().unwrap().contains("\"masked\":true"));
    let (s, _) = t
        .call("DELETE", &format!("/api/v1/segments/{id}"), None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = t.call("GET", &format!("/api/v1/segments/{id}"), None).await;
    assert_eq!(s, 404);
    let deleted: Vec<(i64,)> = fetch(
        &t.app.db,
        &format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'segment.delete' AND subject_id = {id}"
        ),
    )
    .await;
    assert_eq!(deleted[0].0, 1);
}

/// RFC 4180 rows (quoted fields with doubled quotes, CRLF).
fn csv_rows(s: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) => quoted = true,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\r', false) => {}
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => field.push(c),
        }
    }
    rows
}

async fn history_grows_on_every_refresh(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    generate(&t, 200).await;
    let mut ids = Vec::new();
    for (name, rules) in [
        (
            "loyal",
            json!({"field": "rfm_segment", "op": "=", "value": "loyal"}),
        ),
        (
            "big",
            json!({"field": "monetary", "op": ">=", "value": "1000"}),
        ),
    ] {
        let (s, b) = t
            .call(
                "POST",
                "/api/v1/segments",
                Some(json!({"name": name, "rules": rules})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(b["latest_count"], Value::Null);
        ids.push(b["id"].as_i64().unwrap());
    }
    let history = |id: i64| {
        let t = &t;
        async move {
            let (s, h) = t
                .call("GET", &format!("/api/v1/segments/{id}/history"), None)
                .await;
            assert_eq!(s, 200, "{h}");
            h.as_array().unwrap().clone()
        }
    };
    assert!(history(ids[0]).await.is_empty());
    // Before any refresh nobody has scores: the RFM segment is empty.
    for round in 1..=2 {
        let (s, _) = t
            .call("POST", "/api/v1/analytics/scores/refresh", None)
            .await;
        assert_eq!(s, 200);
        for id in &ids {
            let h = history(*id).await;
            assert_eq!(h.len(), round, "{h:?}");
            assert!(h.iter().all(|c| c["reason"] == "refresh"));
            let (_, live) = t
                .call("GET", &format!("/api/v1/segments/{id}/count"), None)
                .await;
            assert_eq!(h.last().unwrap()["patients"], live["patients"]);
        }
    }
    assert!(history(ids[0]).await[0]["patients"].as_i64().unwrap() > 0);
    // Asked for: one more entry, newest last.
    let mk = t.token("marketing").await;
    let (s, c) = t
        .call_as(
            &mk,
            "POST",
            &format!("/api/v1/segments/{}/history", ids[1]),
            None,
        )
        .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["reason"], "request");
    let h = history(ids[1]).await;
    assert_eq!(h.len(), 3);
    assert_eq!(h[2], c);
    assert!(
        h.windows(2)
            .all(|w| w[0]["counted_at"].as_str() <= w[1]["counted_at"].as_str())
    );
    let (_, h1) = t
        .call(
            "GET",
            &format!("/api/v1/segments/{}/history?limit=1", ids[1]),
            None,
        )
        .await;
    assert_eq!(h1.as_array().unwrap().as_slice(), &h[2..]);
    let analyst = t.token("analyst").await;
    let (s, _) = t
        .call_as(
            &analyst,
            "GET",
            &format!("/api/v1/segments/{}/history", ids[1]),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let doctor = t.token("doctor").await;
    let (s, _) = t
        .call_as(
            &doctor,
            "POST",
            &format!("/api/v1/segments/{}/history", ids[1]),
            None,
        )
        .await;
    assert_eq!(s, 403);
    // Deleting a segment removes its history with it.
    let (s, _) = t
        .call("DELETE", &format!("/api/v1/segments/{}", ids[1]), None)
        .await;
    assert_eq!(s, 204);
    let left: Vec<(i64,)> = fetch(
        &t.app.db,
        &format!(
            "SELECT COUNT(*) FROM segment_counts WHERE segment_id = {}",
            ids[1]
        ),
    )
    .await;
    assert_eq!(left[0].0, 0);
    // The dashboard lists the remaining segment with its latest size.
    let (_, d) = t.call("GET", "/api/v1/analytics/dashboard", None).await;
    let saved = d["saved_segments"].as_array().unwrap();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0]["id"], ids[0]);
    assert_eq!(saved[0]["patients"], history(ids[0]).await[1]["patients"]);
}

async fn dashboard_matches_plain_sql(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    generate(&t, 500).await;
    let db = &t.app.db;
    let as_of = "2026-03-15";
    let (s, d) = t
        .call(
            "GET",
            &format!("/api/v1/analytics/dashboard?as_of={as_of}&period_days=45"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{d}");
    let cents = |v: &Value| -> i64 { v.as_str().unwrap().replace('.', "").parse().unwrap() };
    let month = match engine {
        Engine::Sqlite => "substr(visit_date, 1, 7)".to_string(),
        Engine::Postgres => "to_char(visit_date, 'YYYY-MM')".to_string(),
    };
    let by_month: Vec<(String, i64, i64)> = fetch(
        db,
        &format!(
            "SELECT {month}, CAST(COUNT(*) AS BIGINT), CAST(SUM(amount) AS BIGINT) FROM visits \
             WHERE visit_date >= {} AND visit_date <= {} GROUP BY 1 ORDER BY 1",
            date_lit(engine, "2024-04-01"),
            date_lit(engine, as_of)
        ),
    )
    .await;
    let months = d["months"].as_array().unwrap();
    assert_eq!(months.len(), 24);
    assert_eq!(months[0]["month"], "2024-04");
    assert_eq!(months[23]["month"], "2026-03");
    let sql: HashMap<String, (i64, i64)> =
        by_month.into_iter().map(|(m, v, r)| (m, (v, r))).collect();
    for m in months {
        let want = sql
            .get(m["month"].as_str().unwrap())
            .copied()
            .unwrap_or((0, 0));
        assert_eq!(
            (m["visits"].as_i64().unwrap(), cents(&m["revenue"])),
            want,
            "{m}"
        );
    }
    let total: i64 = months.iter().map(|m| cents(&m["revenue"])).sum();
    assert_eq!(total, sql.values().map(|v| v.1).sum::<i64>());
    assert!(total > 0);

    // KPIs: 45 days ending 2026-03-15, and the 45 before.
    let kpis = &d["kpis"];
    assert_eq!(
        kpis["period"],
        json!({"from": "2026-01-30", "to": "2026-03-15"})
    );
    assert_eq!(
        kpis["prior_period"],
        json!({"from": "2025-12-16", "to": "2026-01-29"})
    );
    for (key, from, to) in [
        ("current", "2026-01-30", "2026-03-15"),
        ("prior", "2025-12-16", "2026-01-29"),
    ] {
        let range = format!(
            "visit_date >= {} AND visit_date <= {}",
            date_lit(engine, from),
            date_lit(engine, to)
        );
        let (visits, revenue, patients): (i64, i64, i64) = fetch(
            db,
            &format!(
                "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(amount), 0) AS BIGINT), \
                 CAST(COUNT(DISTINCT patient_key) AS BIGINT) FROM visits WHERE {range}"
            ),
        )
        .await[0];
        let (new,): (i64,) = fetch(
            db,
            &format!(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT patient_key, MIN(visit_date) AS f FROM visits \
                 GROUP BY patient_key) x WHERE f >= {} AND f <= {}",
                date_lit(engine, from),
                date_lit(engine, to)
            ),
        )
        .await[0];
        assert_eq!(kpis["visits"][key].as_i64(), Some(visits), "{key}");
        assert_eq!(cents(&kpis["revenue"][key]), revenue, "{key}");
        assert_eq!(kpis["patients"][key].as_i64(), Some(patients), "{key}");
        assert_eq!(kpis["new_patients"][key].as_i64(), Some(new), "{key}");
        let rate = kpis["return_visit_rate"][key].as_f64().unwrap();
        assert!((rate - (patients - new) as f64 / patients as f64).abs() < 1e-12);
    }
    let v = &kpis["visits"];
    let want = (v["current"].as_f64().unwrap() - v["prior"].as_f64().unwrap())
        / v["prior"].as_f64().unwrap();
    assert!((v["change"].as_f64().unwrap() - want).abs() < 1e-12);

    // The Lorenz curve: 101 points from (0, 0) to (1, 1), never falling,
    // never above the diagonal; the 80/20 point is consistent with it.
    let c = &d["concentration"];
    let lorenz = c["lorenz"].as_array().unwrap();
    assert_eq!(lorenz.len(), 101);
    let pt = |p: &Value| {
        (
            p["patient_share"].as_f64().unwrap(),
            p["revenue_share"].as_f64().unwrap(),
        )
    };
    assert_eq!(pt(&lorenz[0]), (0.0, 0.0));
    assert_eq!(pt(&lorenz[100]), (1.0, 1.0));
    assert!(lorenz.windows(2).all(|w| {
        let (a, b) = (pt(&w[0]), pt(&w[1]));
        a.0 <= b.0 && a.1 <= b.1
    }));
    assert!(lorenz.iter().all(|p| pt(p).1 <= pt(p).0 + 1e-12));
    let p80 = c["patients_for_80_share"].as_f64().unwrap();
    assert!(p80 > 0.0 && p80 < 0.8, "{p80}");
    // The bottom (1 - p80) of the patients hold at most 20 %.
    let below = lorenz
        .iter()
        .filter(|p| pt(p).0 <= 1.0 - p80 - 0.01)
        .map(|p| pt(p).1)
        .fold(0.0, f64::max);
    assert!(below <= 0.2 + 1e-9, "{below}");
    // The parts `analyze` has agree with the summary route.
    let (_, sum) = t
        .call(
            "GET",
            &format!("/api/v1/analytics/summary?as_of={as_of}"),
            None,
        )
        .await;
    for (a, b) in [
        ("active_patients", "active_patients"),
        ("revenue", "revenue"),
        ("cohorts", "cohorts"),
    ] {
        assert_eq!(d[a], sum[b], "{a}");
    }
    assert_eq!(c["top20_share"], sum["top20_share"]);
    assert_eq!(c["gini"], sum["gini"]);
    assert_eq!(d["rfm_segments"], sum["segment_breakdown"]);
    let active: BTreeSet<String> = d["rfm_segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["segment"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(active.len(), 9);
}
