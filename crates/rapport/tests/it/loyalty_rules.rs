//! Earning rules and campaigns, quotes, rewards and vouchers, referrals and
//! reports, through the API on both engines, each ending with `check`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use rapport_app::App;
use serde_json::{Value, json};

use crate::both_engines;
use crate::harness::{Engine, TestApp};

/// A clock the test moves by hand: 2026-03-20.
#[derive(Clone)]
struct Clock(Arc<AtomicI64>);

impl Clock {
    fn new() -> Self {
        Clock(Arc::new(AtomicI64::new(
            Utc.with_ymd_and_hms(2026, 3, 20, 2, 0, 0)
                .unwrap()
                .timestamp_micros(),
        )))
    }
    fn advance(&self, d: Duration) {
        self.0
            .fetch_add(d.num_microseconds().unwrap(), Ordering::SeqCst);
    }
    fn clock(&self) -> rapport_app::Clock {
        let c = self.0.clone();
        Arc::new(move || DateTime::from_timestamp_micros(c.load(Ordering::SeqCst)).unwrap())
    }
}

async fn spawn(engine: Engine) -> Option<(TestApp, Clock)> {
    let c = Clock::new();
    let c2 = c.clone();
    let t = TestApp::spawn_with(engine, move |a| a.with_clock(c2.clock())).await?;
    Some((t, c))
}

async fn patient(t: &TestApp, id: &str, phone: &str, household: Option<&str>) {
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/patients",
            Some(json!({"patient_id": id, "name": "N", "phone": phone, "household": household})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
}

async fn enrol(t: &TestApp, id: &str, referral: Option<&str>) -> (u16, Value) {
    t.call(
        "POST",
        "/api/v1/members",
        Some(json!({"patient_id": id, "referral_code": referral})),
    )
    .await
}

async fn member(t: &TestApp, id: &str, phone: &str) -> i64 {
    patient(t, id, phone, None).await;
    let (s, b) = enrol(t, id, None).await;
    assert_eq!(s, 201, "{b}");
    b["id"].as_i64().unwrap()
}

async fn available(t: &TestApp, m: i64) -> i64 {
    let (_, v) = t.call("GET", &format!("/api/v1/members/{m}"), None).await;
    v["points"]["available"].as_i64().unwrap()
}

async fn ledger(t: &TestApp, m: i64) -> Vec<Value> {
    let (s, v) = t
        .call(
            "GET",
            &format!("/api/v1/members/{m}/ledger?limit=200"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["items"].as_array().unwrap().clone()
}

async fn visit(t: &TestApp, vid: &str, pid: &str, date: &str, dept: &str, amount: &str) -> i64 {
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/visits",
            Some(
                json!({"visit_id": vid, "patient_id": pid, "visit_date": date,
                "department": dept, "kind": "outpatient", "amount": amount}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b["id"].as_i64().unwrap()
}

/// A referrer's funnel: (registered, first paid visit, rewarded).
async fn funnel(t: &TestApp, m: i64) -> (i64, i64, i64) {
    let (_, f) = t
        .call("GET", &format!("/api/v1/members/{m}/referrals"), None)
        .await;
    let n = |k: &str| f[k].as_i64().unwrap();
    (n("registered"), n("first_visit"), n("rewarded"))
}

async fn check_clean(app: &App) {
    for r in rapport_app::check::run(app).await.unwrap() {
        assert_eq!(r.violations, 0, "{}: {:?}", r.name, r.problems);
    }
}

fn campaign(code: &str, priority: i64, kind: &str, value: i64) -> Value {
    json!({"code": code, "name": code, "priority": priority,
        "starts_at": "2026-03-01T00:00:00Z", "ends_at": "2026-04-01T00:00:00Z",
        "effect": {"type": kind, "value": value}})
}

async fn post(t: &TestApp, path: &str, body: Value) -> (u16, Value) {
    t.call("POST", path, Some(body)).await
}

fn quote_sum(q: &Value) -> i64 {
    q["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["base"].as_i64().unwrap()
                + l["steps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["points"].as_i64().unwrap())
                    .sum::<i64>()
        })
        .sum()
}

/// A paid visit earns exactly what the quote explains; campaigns in their
/// window and department, caps, exclusivity; deleting or changing the
/// visit reverses; invalid rule sets are refused and change nothing.
async fn visits_earn_as_quoted(engine: Engine) {
    let Some((t, _clock)) = spawn(engine).await else {
        return;
    };
    let m = member(&t, "P-1", "13900000001").await;
    // No rules: a visit earns nothing.
    visit(&t, "V0", "P-1", "2026-03-02", "Cardiology", "50.00").await;
    assert!(ledger(&t, m).await.is_empty());

    let (s, b) = post(
        &t,
        "/api/v1/loyalty/earn-rules",
        json!({"code": "base", "points_per_unit": 1}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = post(
        &t,
        "/api/v1/loyalty/earn-rules",
        json!({"code": "exam", "category": "examination", "points_per_unit": 2}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let mut double = campaign("cardio-x2", 10, "multiply_percent", 200);
    double["department"] = json!("Cardiology");
    let (s, b) = post(&t, "/api/v1/loyalty/campaigns", double).await;
    assert_eq!(s, 201, "{b}");
    let mut bonus = campaign("bonus", 5, "add_per_line", 50);
    bonus["cap_per_member"] = json!(80);
    let (s, b) = post(&t, "/api/v1/loyalty/campaigns", bonus).await;
    assert_eq!(s, 201, "{b}");

    // Refused sets: 422 with the field, and nothing written.
    let (s, b) = post(
        &t,
        "/api/v1/loyalty/campaigns",
        campaign("clash", 10, "add_per_line", 1),
    )
    .await;
    assert_eq!(
        (
            s,
            b["errors"][0]["field"].as_str(),
            b["errors"][0]["code"].as_str()
        ),
        (422, Some("priority"), Some("same_priority")),
        "{b}"
    );
    let (s, b) = post(
        &t,
        "/api/v1/loyalty/earn-rules",
        json!({"code": "gold", "tier": "gold", "points_per_unit": 5}),
    )
    .await;
    assert_eq!(
        (s, b["errors"][0]["code"].as_str()),
        (422, Some("ambiguous_rules")),
        "{b}"
    );
    let (s, b) = post(
        &t,
        "/api/v1/loyalty/campaigns",
        campaign("slow", 3, "multiply_percent", 50),
    )
    .await;
    assert_eq!(
        (s, b["errors"][0]["field"].as_str()),
        (422, Some("effect.value")),
        "{b}"
    );
    let mut late = campaign("late", 4, "add_per_line", 1);
    late["ends_at"] = json!("2026-02-01T00:00:00Z");
    let (s, b) = post(&t, "/api/v1/loyalty/campaigns", late).await;
    assert_eq!(
        (s, b["errors"][0]["field"].as_str()),
        (422, Some("ends_at")),
        "{b}"
    );
    let (_, list) = t.call("GET", "/api/v1/loyalty/campaigns", None).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (_, list) = t.call("GET", "/api/v1/loyalty/earn-rules", None).await;
    assert_eq!(list.as_array().unwrap().len(), 2);

    // The quote: 123 base, doubled in Cardiology (+123), +50 bonus.
    let line = json!({"category": "treatment", "department": "Cardiology", "amount": 12345});
    let (s, q) = post(
        &t,
        "/api/v1/loyalty/earn-quote",
        json!({"member_id": m, "visit_date": "2026-03-10", "lines": [line]}),
    )
    .await;
    assert_eq!(s, 200, "{q}");
    assert_eq!(q["total"], 296, "{q}");
    assert_eq!(quote_sum(&q), 296);
    assert_eq!(q["lines"][0]["rule"], "base");
    let v1 = visit(&t, "V1", "P-1", "2026-03-10", "Cardiology", "123.45").await;
    let l = ledger(&t, m).await;
    assert_eq!(l.len(), 1);
    assert_eq!(
        (
            l[0]["kind"].as_str(),
            l[0]["points"].as_i64(),
            l[0]["source_visit"].as_i64()
        ),
        (Some("earn"), Some(296), Some(v1))
    );
    assert_eq!(l[0]["actor"]["type"], "rule");
    let (_, e) = t
        .call(
            "GET",
            &format!("/api/v1/loyalty/visits/{v1}/earnings"),
            None,
        )
        .await;
    assert_eq!(
        e[0]["explanation"], q,
        "the earn is what the quote explained"
    );

    // The second visit: the bonus is capped at 80 - 50 = 30.
    let (_, q2) = post(
        &t,
        "/api/v1/loyalty/earn-quote",
        json!({"member_id": m, "visit_date": "2026-03-11", "lines": [line]}),
    )
    .await;
    assert_eq!(q2["total"], 276, "{q2}");
    assert_eq!(q2["lines"][0]["steps"][1]["capped"], true);
    let v2 = visit(&t, "V2", "P-1", "2026-03-11", "Cardiology", "123.45").await;
    assert_eq!(available(&t, m).await, 296 + 276);
    // Another department, outside the window: base only (bonus capped).
    visit(&t, "V3", "P-1", "2026-04-02", "Eye", "10.00").await;
    assert_eq!(available(&t, m).await, 296 + 276 + 10);

    // Deleting V1 reverses its earn, and gives its bonus room back.
    let (s, _) = t
        .call("DELETE", &format!("/api/v1/visits/{v1}"), None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(available(&t, m).await, 276 + 10);
    let l = ledger(&t, m).await;
    assert_eq!(
        (l[0]["kind"].as_str(), l[0]["points"].as_i64()),
        (Some("reverse"), Some(296))
    );
    let (_, q3) = post(
        &t,
        "/api/v1/loyalty/earn-quote",
        json!({"member_id": m, "visit_date": "2026-03-12", "lines": [line]}),
    )
    .await;
    assert_eq!(q3["total"], 296, "{q3}");

    // Changing V2's amount reverses and earns again; the same visit
    // written again unchanged does nothing.
    let (s, b) = t
        .call(
            "PUT",
            &format!("/api/v1/visits/{v2}"),
            Some(
                json!({"visit_id": "V2", "patient_id": "P-1", "visit_date": "2026-03-11",
            "department": "Cardiology", "kind": "outpatient", "amount": "20.00"}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // 20 base, doubled 40, + 50 bonus (room 80 after both reversals).
    assert_eq!(available(&t, m).await, 90 + 10);
    let before = ledger(&t, m).await.len();
    let (s, _) = t
        .call(
            "PUT",
            &format!("/api/v1/visits/{v2}"),
            Some(
                json!({"visit_id": "V2", "patient_id": "P-1", "visit_date": "2026-03-11",
            "department": "Cardiology", "kind": "outpatient", "amount": "20.00"}),
            ),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(ledger(&t, m).await.len(), before);

    // An exclusive campaign of higher priority stops the others.
    let mut vip = campaign("vip", 20, "add_per_line", 1);
    vip["exclusive"] = json!(true);
    let (s, b) = post(&t, "/api/v1/loyalty/campaigns", vip).await;
    assert_eq!(s, 201, "{b}");
    let (_, q4) = post(
        &t,
        "/api/v1/loyalty/earn-quote",
        json!({"member_id": m, "visit_date": "2026-03-12", "lines": [line]}),
    )
    .await;
    assert_eq!(q4["total"], 124, "{q4}");
    let skipped: Vec<&str> = q4["lines"][0]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["campaign"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["cardio-x2", "bonus"]);
    let v4 = visit(&t, "V4", "P-1", "2026-03-12", "Cardiology", "123.45").await;
    let (_, e) = t
        .call(
            "GET",
            &format!("/api/v1/loyalty/visits/{v4}/earnings"),
            None,
        )
        .await;
    assert_eq!(e[0]["points"], 124);

    // A non-member's visit earns nothing and writes no ledger.
    patient(&t, "P-2", "13900000002", None).await;
    visit(&t, "V5", "P-2", "2026-03-12", "Cardiology", "99.00").await;

    let (s, _) = t
        .call("DELETE", "/api/v1/loyalty/earn-rules/nope", None)
        .await;
    assert_eq!(s, 404);
    let (s, b) = post(
        &t,
        "/api/v1/loyalty/earn-quote",
        json!({"member_id": m, "lines": [{"category": "food", "amount": -1}]}),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"].as_array().unwrap().len(), 2, "{b}");
    check_clean(&t.app).await;
}

async fn upload(t: &TestApp, body: impl Into<reqwest::Body>) {
    let r = t
        .client
        .post(t.url("/api/v1/imports?kind=visits&file_name=v.csv"))
        .bearer_auth(&t.admin)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let v: Value = r.json().await.unwrap();
    let id = v["id"].as_i64().unwrap();
    for _ in 0..400 {
        let (_, v) = t.call("GET", &format!("/api/v1/imports/{id}"), None).await;
        if v["status"] != "running" {
            assert_eq!(v["status"], "done", "{v}");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("import did not finish");
}

const VISITS: &[u8] = b"visit_id,patient_id,visit_date,department,amount\n\
    I1,M-1,2026-03-02,Cardiology,100.00\nI2,M-1,2026-03-03,Eye,10.50\n\
    I3,NOBODY,2026-03-03,Eye,10.00\nI4,M-2,2026-03-04,Eye,0\n";
const VISITS_CHANGED: &[u8] = b"visit_id,patient_id,visit_date,department,amount\n\
    I1,M-1,2026-03-02,Cardiology,50.00\nI2,M-1,2026-03-03,Eye,10.50\n";

/// Imported visits earn like recorded ones; the same file again awards
/// nothing more; a changed amount reverses and re-earns.
async fn imports_award_once(engine: Engine) {
    let Some((t, _clock)) = spawn(engine).await else {
        return;
    };
    let (s, _) = post(
        &t,
        "/api/v1/loyalty/earn-rules",
        json!({"code": "base", "points_per_unit": 2}),
    )
    .await;
    assert_eq!(s, 201);
    let mut double = campaign("cardio-x2", 10, "multiply_percent", 200);
    double["department"] = json!("Cardiology");
    post(&t, "/api/v1/loyalty/campaigns", double).await;
    let m1 = member(&t, "M-1", "13900000011").await;
    let m2 = member(&t, "M-2", "13900000012").await;
    upload(&t, VISITS).await;
    // I1: 200 doubled = 400; I2: 21; I4 is not paid.
    assert_eq!(available(&t, m1).await, 421);
    assert_eq!(ledger(&t, m1).await.len(), 2);
    assert!(ledger(&t, m2).await.is_empty());
    upload(&t, VISITS).await;
    assert_eq!(available(&t, m1).await, 421);
    assert_eq!(ledger(&t, m1).await.len(), 2);
    upload(&t, VISITS_CHANGED).await;
    assert_eq!(available(&t, m1).await, 200 + 21);
    let kinds: Vec<String> = ledger(&t, m1)
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["earn", "reverse", "earn", "earn"]);
    check_clean(&t.app).await;
}

/// The programme both sides of [`imports_earn_as_recorded`] share: a base
/// rule, a capped Cardiology campaign, a referral reward, a silver tier
/// within reach; members M-1 and M-2, and R-1 who referred M-3.
async fn earning_hospital(engine: Engine) -> Option<TestApp> {
    let (t, _clock) = spawn(engine).await?;
    let (s, b) = post(
        &t,
        "/api/v1/loyalty/earn-rules",
        json!({"code": "base", "points_per_unit": 2}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let mut double = campaign("cardio-x2", 10, "multiply_percent", 200);
    double["department"] = json!("Cardiology");
    double["cap_per_member"] = json!(150);
    let (s, b) = post(&t, "/api/v1/loyalty/campaigns", double).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = t.call("PUT", "/api/v1/loyalty/program",
        Some(json!({"points_valid_months": 24, "referral_reward_points": 300, "point_value_minor": 1}))).await;
    assert_eq!(s, 200, "{b}");
    let (_, tiers) = t.call("GET", "/api/v1/loyalty/tiers", None).await;
    let mut tiers = tiers.as_array().unwrap().clone();
    tiers[1]["threshold_qualifying"] = json!(300);
    let (s, b) = t
        .call(
            "PUT",
            "/api/v1/loyalty/tiers",
            Some(json!({"tiers": tiers})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    member(&t, "M-1", "13900000021").await;
    member(&t, "M-2", "13900000022").await;
    let r = member(&t, "R-1", "13900000023").await;
    let (_, c) = post(&t, &format!("/api/v1/members/{r}/referral-code"), json!({})).await;
    patient(&t, "M-3", "13900000024", None).await;
    let (s, b) = enrol(&t, "M-3", c["code"].as_str()).await;
    assert_eq!(s, 201, "{b}");
    Some(t)
}

/// (visit_id, patient_id, date, department, amount): the first file,
/// then the rows of the second that differ.
const EARN_VISITS: &[(&str, &str, &str, &str, &str)] = &[
    ("E1", "M-1", "2026-03-02", "Cardiology", "100.00"),
    ("E2", "M-1", "2026-03-03", "Eye", "10.50"),
    ("E3", "M-3", "2026-03-03", "Eye", "20.00"),
    ("E4", "M-2", "2026-03-04", "Eye", "0"),
    ("E5", "NOBODY", "2026-03-04", "Eye", "10.00"),
    ("E6", "M-3", "2026-03-05", "Cardiology", "40.00"),
];
const EARN_VISITS_CHANGED: &[(&str, &str, &str, &str, &str)] = &[
    ("E1", "M-1", "2026-03-02", "Cardiology", "50.00"),
    ("E4", "M-2", "2026-03-04", "Eye", "30.00"),
    ("E6", "M-2", "2026-03-05", "Cardiology", "40.00"),
];

fn csv(rows: &[(&str, &str, &str, &str, &str)]) -> String {
    let mut s = String::from("visit_id,patient_id,visit_date,department,amount\n");
    for (v, p, d, dept, a) in rows {
        s.push_str(&format!("{v},{p},{d},{dept},{a}\n"));
    }
    s
}

/// Every member's ledger, and each member's tier and balance, with the
/// platform's visit ids replaced by the hospital's (they are the only
/// thing allowed to differ between the two hospitals).
async fn ledgers(t: &TestApp) -> Vec<Value> {
    let (_, visits) = t.call("GET", "/api/v1/visits?limit=100", None).await;
    let ext: Vec<(i64, String)> = visits["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["id"].as_i64().unwrap(),
                v["visit_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let (_, members) = t.call("GET", "/api/v1/members", None).await;
    let mut out = Vec::new();
    for m in members["items"].as_array().unwrap() {
        let id = m["id"].as_i64().unwrap();
        let (_, full) = t.call("GET", &format!("/api/v1/members/{id}"), None).await;
        out.push(
            json!({"member": m["patient_id"], "tier": full["tier"], "points": full["points"]}),
        );
        for mut e in ledger(t, id).await {
            let mut text = e.to_string();
            if let Some(v) = e["source_visit"].as_i64() {
                let name = &ext.iter().find(|(k, _)| *k == v).unwrap().1;
                text = text
                    .replace(&format!("visit {v} "), &format!("visit {name} "))
                    .replace(&format!("visit:{v}:"), &format!("visit:{name}:"));
                e = serde_json::from_str(&text).unwrap();
                e["source_visit"] = json!(name);
            }
            e.as_object_mut().unwrap().remove("id");
            out.push(e);
        }
    }
    out
}

/// Visits imported (inline on SQLite) earn, re-earn, reverse, promote
/// and reward referrers exactly as the same visits recorded one by one
/// through the API: the two ledgers are the same, entry for entry.
async fn imports_earn_as_recorded(engine: Engine) {
    let Some(imported) = earning_hospital(engine).await else {
        return;
    };
    let Some(recorded) = earning_hospital(engine).await else {
        return;
    };
    upload(&imported, csv(EARN_VISITS)).await;
    upload(&imported, csv(EARN_VISITS_CHANGED)).await;

    patient(&recorded, "NOBODY", "13900000029", None).await;
    let mut ids = std::collections::HashMap::new();
    for (v, p, d, dept, a) in EARN_VISITS {
        ids.insert(*v, visit(&recorded, v, p, d, dept, a).await);
    }
    for (v, p, d, dept, a) in EARN_VISITS_CHANGED {
        let (s, b) = recorded
            .call(
                "PUT",
                &format!("/api/v1/visits/{}", ids[v]),
                Some(json!({"visit_id": v, "patient_id": p, "visit_date": d,
                    "department": dept, "kind": "outpatient", "amount": a})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }

    let got = ledgers(&imported).await;
    assert_eq!(got, ledgers(&recorded).await);
    // The scenario did what it is meant to: a capped campaign, a change
    // reversed and earned again, a promotion, a referrer rewarded once,
    // an earn moved to another member.
    let text = serde_json::to_string(&got).unwrap();
    for needle in [
        r#""kind":"reverse""#,
        r#""tier":"silver""#,
        r#""source":"referral""#,
        r#""idempotency_key":"visit:E1:earn:1""#,
        r#""idempotency_key":"visit:E6:earn:1""#,
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    check_clean(&imported.app).await;
    check_clean(&recorded.app).await;
}

/// Price quotes apply the member's tier discounts line by line.
async fn price_quote_per_tier(engine: Engine) {
    let Some((t, _clock)) = spawn(engine).await else {
        return;
    };
    let m = member(&t, "P-1", "13900000001").await;
    let items = json!([{"category": "registration", "description": "reg", "amount": 1500},
                       {"category": "treatment", "amount": 12345}]);
    let (s, q) = post(
        &t,
        "/api/v1/loyalty/price-quote",
        json!({"member_id": m, "items": items}),
    )
    .await;
    assert_eq!(s, 200, "{q}");
    assert_eq!(
        (q["tier"].as_str(), q["total_discount"].as_i64()),
        (Some("standard"), Some(0))
    );
    let (s, _) = post(
        &t,
        &format!("/api/v1/members/{m}/points"),
        json!({"kind": "earn", "points": 6000, "reason": "x", "idempotency_key": "k"}),
    )
    .await;
    assert_eq!(s, 201);
    let (_, q) = post(
        &t,
        "/api/v1/loyalty/price-quote",
        json!({"member_id": m, "items": items}),
    )
    .await;
    assert_eq!(q["tier"], "gold");
    // Gold: 10 % on registration, 5 % on treatment, rounded down per line.
    assert_eq!(
        (
            q["lines"][0]["discount"].as_i64(),
            q["lines"][0]["discount_bp"].as_i64()
        ),
        (Some(150), Some(1000))
    );
    assert_eq!(q["lines"][1]["discount"], 617);
    assert_eq!(q["total_net"], 1500 + 12345 - 150 - 617);
    let (s, _) = post(
        &t,
        "/api/v1/loyalty/price-quote",
        json!({"member_id": 9999, "items": items}),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = post(
        &t,
        "/api/v1/loyalty/price-quote",
        json!({"member_id": m, "items": [{"category": "treatment", "amount": -5}]}),
    )
    .await;
    assert_eq!(s, 422);
}

async fn count(app: &App, sql: &str) -> i64 {
    let q = sqlx::AssertSqlSafe(sql.to_owned());
    match &app.db {
        rapport_app::Db::Sqlite { read, .. } => sqlx::query_scalar::<_, Option<i64>>(q)
            .fetch_one(read)
            .await
            .unwrap(),
        rapport_app::Db::Postgres(p) => sqlx::query_scalar::<_, Option<i64>>(q)
            .fetch_one(p)
            .await
            .unwrap(),
    }
    .unwrap_or(0)
}

/// Rewards: redemption spends points and issues a voucher; refused ones
/// write nothing; vouchers are used once, before expiry; cancelling
/// gives the points back. Reports equal plain SQL sums.
async fn rewards_vouchers_and_reports(engine: Engine) {
    let Some((t, clock)) = spawn(engine).await else {
        return;
    };
    let (s, b) = t
        .call(
            "PUT",
            "/api/v1/loyalty/rewards/checkup",
            Some(
                json!({"name": "Free check-up", "kind": "check_up", "cost_points": 500, "stock": 1,
            "voucher_valid_days": 30}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = t
        .call(
            "PUT",
            "/api/v1/loyalty/rewards/gift",
            Some(json!({"name": "Umbrella", "kind": "gift", "cost_points": 100})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = t
        .call(
            "PUT",
            "/api/v1/loyalty/rewards/bad",
            Some(json!({"name": "x", "kind": "discount_voucher", "cost_points": 0})),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    let m = member(&t, "P-1", "13900000001").await;
    let earn =
        |p: i64, k: &str| json!({"kind": "earn", "points": p, "reason": "x", "idempotency_key": k});
    post(&t, &format!("/api/v1/members/{m}/points"), earn(400, "e1")).await;

    let url = format!("/api/v1/members/{m}/vouchers");
    let (s, b) = post(
        &t,
        &url,
        json!({"reward": "checkup", "idempotency_key": "r1"}),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (409, Some("insufficient_points")),
        "{b}"
    );
    assert_eq!(available(&t, m).await, 400);
    assert_eq!(ledger(&t, m).await.len(), 1);
    let (_, vs) = t.call("GET", &url, None).await;
    assert!(vs.as_array().unwrap().is_empty());
    let (_, rw) = t.call("GET", "/api/v1/loyalty/rewards", None).await;
    assert_eq!(rw[0]["stock"], 1, "{rw}");

    post(&t, &format!("/api/v1/members/{m}/points"), earn(600, "e2")).await;
    let (s, v) = post(
        &t,
        &url,
        json!({"reward": "checkup", "idempotency_key": "r1"}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(available(&t, m).await, 500);
    let (s, again) = post(
        &t,
        &url,
        json!({"reward": "checkup", "idempotency_key": "r1"}),
    )
    .await;
    assert_eq!((s, &again), (201, &v));
    let (s, b) = post(&t, &url, json!({"reward": "gift", "idempotency_key": "r1"})).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    let (s, b) = post(
        &t,
        &url,
        json!({"reward": "checkup", "idempotency_key": "r2"}),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (409, Some("reward_out_of_stock")));
    let (s, b) = post(
        &t,
        &url,
        json!({"reward": "nothing", "idempotency_key": "r3"}),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (404, Some("reward_not_found")));

    let code = v["code"].as_str().unwrap();
    let (s, u) = post(&t, &format!("/api/v1/vouchers/{code}/use"), json!({})).await;
    assert_eq!((s, u["status"].as_str()), (200, Some("used")), "{u}");
    let (s, b) = post(&t, &format!("/api/v1/vouchers/{code}/use"), json!({})).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("voucher_used")));
    let (s, b) = post(&t, &format!("/api/v1/vouchers/{code}/cancel"), json!({})).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("voucher_used")));
    let (s, b) = t.call("GET", "/api/v1/vouchers/NOSUCHCODE", None).await;
    assert_eq!((s, b["code"].as_str()), (404, Some("voucher_not_found")));

    // Cancel: the points come back as an adjustment, once.
    let (_, g) = post(&t, &url, json!({"reward": "gift", "idempotency_key": "g1"})).await;
    assert_eq!(available(&t, m).await, 400);
    let gcode = g["code"].as_str().unwrap();
    let (s, c) = post(&t, &format!("/api/v1/vouchers/{gcode}/cancel"), json!({})).await;
    assert_eq!((s, c["status"].as_str()), (200, Some("cancelled")), "{c}");
    assert_eq!(available(&t, m).await, 500);
    assert_eq!(ledger(&t, m).await[0]["kind"], "adjust");
    let (s, b) = post(&t, &format!("/api/v1/vouchers/{gcode}/cancel"), json!({})).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("voucher_cancelled")));
    assert_eq!(available(&t, m).await, 500);

    // Expiry: 90 days by default.
    let (_, g2) = post(&t, &url, json!({"reward": "gift", "idempotency_key": "g2"})).await;
    clock.advance(Duration::days(91));
    let g2code = g2["code"].as_str().unwrap();
    let (s, b) = post(&t, &format!("/api/v1/vouchers/{g2code}/use"), json!({})).await;
    assert_eq!((s, b["code"].as_str()), (410, Some("voucher_expired")));

    // Reports equal the sums of the tables.
    let (s, b) = t.call("PUT", "/api/v1/loyalty/program",
        Some(json!({"points_valid_months": 24, "referral_reward_points": 100, "point_value_minor": 3}))).await;
    assert_eq!(s, 200, "{b}");
    let (_, l) = t
        .call("GET", "/api/v1/loyalty/reports/liability", None)
        .await;
    let sum = count(
        &t.app,
        "SELECT CAST(SUM(available) AS BIGINT) FROM loyalty_balances",
    )
    .await;
    assert_eq!(
        (l["points"].as_i64(), l["value_minor"].as_i64()),
        (Some(sum), Some(sum * 3)),
        "{l}"
    );
    let (s, p) = t
        .call(
            "GET",
            "/api/v1/loyalty/reports/points?from=2026-01&to=2026-06",
            None,
        )
        .await;
    assert_eq!(s, 200, "{p}");
    let months = p.as_array().unwrap();
    assert_eq!(months.len(), 6);
    let total = |k: &str| months.iter().map(|m| m[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(
        total("earned"),
        count(
            &t.app,
            "SELECT CAST(SUM(points) AS BIGINT) FROM loyalty_entries WHERE kind = 'earn'"
        )
        .await
    );
    assert_eq!(
        total("redeemed"),
        count(
            &t.app,
            "SELECT CAST(SUM(points) AS BIGINT) FROM loyalty_entries WHERE kind = 'redeem'"
        )
        .await
    );
    assert_eq!(months[2]["earned"], 1000, "everything was earned in March");
    let (_, tr) = t
        .call(
            "GET",
            "/api/v1/loyalty/reports/tiers?from=2026-02&to=2026-03",
            None,
        )
        .await;
    assert_eq!(tr[0]["tiers"], json!([]), "nobody was a member in February");
    assert_eq!(
        tr[1]["tiers"],
        json!([{"tier": "silver", "members": 1}]),
        "{tr}"
    );
    let (s, _) = t
        .call("GET", "/api/v1/loyalty/reports/points?from=2026-13", None)
        .await;
    assert_eq!(s, 422);
    check_clean(&t.app).await;
}

/// Member-gets-member: abuse refused with its code and nothing written;
/// the referrer is rewarded once, after the first paid visit only.
async fn referrals_reward_once(engine: Engine) {
    let Some((t, _clock)) = spawn(engine).await else {
        return;
    };
    let (s, _) = t.call("PUT", "/api/v1/loyalty/program",
        Some(json!({"points_valid_months": 24, "referral_reward_points": 300, "point_value_minor": 1}))).await;
    assert_eq!(s, 200);
    patient(&t, "PA", "13900000001", Some("H1")).await;
    let (_, a) = enrol(&t, "PA", None).await;
    let a = a["id"].as_i64().unwrap();
    let (s, c) = post(&t, &format!("/api/v1/members/{a}/referral-code"), json!({})).await;
    assert_eq!(s, 200, "{c}");
    let code = c["code"].as_str().unwrap().to_owned();
    let (_, again) = post(&t, &format!("/api/v1/members/{a}/referral-code"), json!({})).await;
    assert_eq!(again["code"], code.as_str());
    let (_, inv) = post(
        &t,
        &format!("/api/v1/members/{a}/referral-code/invitations"),
        json!({"count": 5}),
    )
    .await;
    assert_eq!(inv["invited"], 5);

    let (s, b) = enrol(&t, "PA", Some(&code)).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("referral_self")), "{b}");
    patient(&t, "PB", "139-0000-0001", None).await;
    let (s, b) = enrol(&t, "PB", Some(&code)).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (409, Some("referral_same_phone")),
        "{b}"
    );
    patient(&t, "PC", "13900000003", Some("H1")).await;
    let (s, b) = enrol(&t, "PC", Some(&code)).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (409, Some("referral_same_household")),
        "{b}"
    );
    patient(&t, "PD", "13900000004", None).await;
    visit(&t, "VD", "PD", "2026-03-01", "Eye", "10.00").await;
    let (s, b) = enrol(&t, "PD", Some(&code)).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (409, Some("referral_not_new_patient")),
        "{b}"
    );
    patient(&t, "PE", "13900000005", Some("H2")).await;
    let (s, b) = enrol(&t, "PE", Some("ZZZZZZZZ")).await;
    assert_eq!(
        (s, b["errors"][0]["code"].as_str()),
        (422, Some("unknown_referral_code")),
        "{b}"
    );
    let (_, members) = t.call("GET", "/api/v1/members", None).await;
    assert_eq!(
        members["items"].as_array().unwrap().len(),
        1,
        "refused enrolments wrote nothing"
    );

    let (s, b) = enrol(&t, "PE", Some(&code)).await;
    assert_eq!(s, 201, "{b}");
    let (_, f) = t
        .call("GET", &format!("/api/v1/members/{a}/referrals"), None)
        .await;
    assert_eq!(
        (
            f["invited"].as_i64(),
            f["registered"].as_i64(),
            f["first_visit"].as_i64()
        ),
        (Some(5), Some(1), Some(0))
    );
    visit(&t, "VE0", "PE", "2026-03-02", "Eye", "0").await;
    assert_eq!(available(&t, a).await, 0, "an unpaid visit does not count");
    let ve1 = visit(&t, "VE1", "PE", "2026-03-03", "Eye", "20.00").await;
    assert_eq!(available(&t, a).await, 300);
    let l = ledger(&t, a).await;
    assert_eq!(
        (l[0]["source"].as_str(), l[0]["actor"]["id"].as_str()),
        (Some("referral"), Some("referral"))
    );
    let ve2 = visit(&t, "VE2", "PE", "2026-03-04", "Eye", "20.00").await;
    assert_eq!(available(&t, a).await, 300, "rewarded once");
    let (_, f) = t
        .call("GET", &format!("/api/v1/members/{a}/referrals"), None)
        .await;
    assert_eq!(
        (f["first_visit"].as_i64(), f["rewarded"].as_i64()),
        (Some(1), Some(1)),
        "{f}"
    );
    assert_eq!(f["referrals"][0]["rewarded_points"], 300);

    // The visit that earned the reward is deleted: the reward is taken
    // back and given again for the patient's next paid visit, VE2.
    let (s, _) = t
        .call("DELETE", &format!("/api/v1/visits/{ve1}"), None)
        .await;
    assert_eq!(s, 204);
    let l = ledger(&t, a).await;
    let kinds: Vec<_> = l.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["earn", "reverse", "earn"], "{l:?}");
    assert_eq!(l[1]["points"], 300);
    assert_eq!(available(&t, a).await, 300);
    assert_eq!(funnel(&t, a).await, (1, 1, 1));

    // VE2 is refunded (its amount set to 0): the reward goes, and with no
    // other paid visit the referral waits again. Written again unchanged,
    // nothing more happens.
    for _ in 0..2 {
        let (s, b) = t
            .call(
                "PUT",
                &format!("/api/v1/visits/{ve2}"),
                Some(
                    json!({"visit_id": "VE2", "patient_id": "PE", "visit_date": "2026-03-04",
                    "department": "Eye", "kind": "outpatient", "amount": "0"}),
                ),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(available(&t, a).await, 0);
        assert_eq!(funnel(&t, a).await, (1, 0, 0));
        assert_eq!(ledger(&t, a).await.len(), 4);
    }

    // The next paid visit rewards the referrer again.
    visit(&t, "VE3", "PE", "2026-03-05", "Eye", "30.00").await;
    assert_eq!(available(&t, a).await, 300);
    assert_eq!(funnel(&t, a).await, (1, 1, 1));

    // An import that refunds VE3 takes the reward back the same way.
    upload(
        &t,
        &b"visit_id,patient_id,visit_date,department,amount\nVE3,PE,2026-03-05,Eye,0\n"[..],
    )
    .await;
    assert_eq!(available(&t, a).await, 0);
    assert_eq!(funnel(&t, a).await, (1, 0, 0));
    check_clean(&t.app).await;
}

both_engines!(
    visits_earn_as_quoted,
    imports_award_once,
    imports_earn_as_recorded,
    price_quote_per_tier,
    rewards_vouchers_and_reports,
    referrals_reward_once,
);
