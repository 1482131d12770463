//! Membership and points: the API contract, tiers, concurrency (in one
//! server and across a `kill -9`), and a property test of the ledger
//! through the store, each verified by `check`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rapport_app::App;
use rapport_app::audit::Actor;
use rapport_app::loyalty::{self, jobs, points};
use rapport_domain::patient::PatientInput;
use serde_json::{Value, json};

use crate::both_engines;
use crate::harness::{Engine, TestApp, TestDb};

/// A clock the test moves by hand.
#[derive(Clone)]
struct Clock(Arc<AtomicI64>);

impl Clock {
    fn new() -> Self {
        Clock(Arc::new(AtomicI64::new(
            Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0)
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

async fn enrol(t: &TestApp, patient_id: &str) -> i64 {
    t.patient(patient_id, "Member").await;
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/members",
            Some(json!({"patient_id": patient_id})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b["id"].as_i64().unwrap()
}

fn points_body(kind: &str, points: i64, key: &str) -> Value {
    json!({"kind": kind, "points": points, "reason": "desk", "idempotency_key": key})
}

async fn check_clean(app: &App) {
    let report = rapport_app::check::run(app).await.unwrap();
    let ledgers = report
        .iter()
        .find(|r| r.name == "points ledgers")
        .expect("check covers the ledgers");
    assert_eq!(ledgers.violations, 0, "{:?}", ledgers.problems);
    assert!(ledgers.checked > 0);
}

/// The contract of interface.md, answer by answer.
async fn points_api_follows_the_contract(engine: Engine) {
    let Some(t) = TestApp::spawn(engine).await else {
        return;
    };
    let patient = t.patient("P-1", "Wang").await;
    let (s, m) = t
        .call(
            "POST",
            "/api/v1/members",
            Some(json!({"patient_id": "P-1"})),
        )
        .await;
    assert_eq!(s, 201, "{m}");
    assert_eq!(m["tier"], "standard");
    let card = m["card_no"].as_str().unwrap();
    assert_eq!(card.len(), 12, "{card}");
    let id = m["id"].as_i64().unwrap();

    let (s, b) = t
        .call(
            "POST",
            "/api/v1/members",
            Some(json!({"patient_id": "P-1"})),
        )
        .await;
    assert_eq!((s, b["code"].as_str()), (409, Some("already_member")));
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/members",
            Some(json!({"patient_id": "nobody"})),
        )
        .await;
    assert_eq!((s, b["code"].as_str()), (404, Some("patient_not_found")));
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/members",
            Some(json!({"patient_id": "P\u{0}1"})),
        )
        .await;
    assert_eq!((s, b["code"].as_str()), (404, Some("patient_not_found")));

    let (s, v) = t.call("GET", &format!("/api/v1/members/{id}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["patient_id"], "P-1");
    assert_eq!(
        v["points"],
        json!({"available": 0, "qualifying_12m": 0, "lifetime": 0})
    );

    let url = format!("/api/v1/members/{id}/points");
    let (s, first) = t
        .call("POST", &url, Some(points_body("earn", 100, "k1")))
        .await;
    assert_eq!(s, 201, "{first}");
    assert_eq!(
        (first["kind"].as_str(), first["points"].as_i64()),
        (Some("earn"), Some(100))
    );
    assert_eq!(first["balance_after"], 100);
    // The same key and body: the original answer, no second effect.
    let (s, again) = t
        .call("POST", &url, Some(points_body("earn", 100, "k1")))
        .await;
    assert_eq!((s, &again), (201, &first));
    // The same key with another body.
    let (s, b) = t
        .call("POST", &url, Some(points_body("earn", 101, "k1")))
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    let (s, b) = t
        .call("POST", &url, Some(points_body("redeem", 100, "k1")))
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );

    // Redeeming more than available: 409 and nothing changes.
    let (s, b) = t
        .call("POST", &url, Some(points_body("redeem", 101, "r1")))
        .await;
    assert_eq!((s, b["code"].as_str()), (409, Some("insufficient_points")));
    let (_, v) = t.call("GET", &format!("/api/v1/members/{id}"), None).await;
    assert_eq!(v["points"]["available"], 100);
    // A refused request does not claim its key.
    let (s, r) = t
        .call("POST", &url, Some(points_body("redeem", 30, "r1")))
        .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(
        (r["delta"].as_i64(), r["balance_after"].as_i64()),
        (Some(-30), Some(70))
    );

    // Nonsense is refused with a clear 4xx, and changes nothing.
    for bad in [
        points_body("earn", -5, "n1"),
        points_body("earn", 0, "n2"),
        points_body("earn", 1_000_000_000_000, "n3"),
        points_body("gift", 5, "n4"),
        points_body("earn", 5, ""),
        json!({"kind": "earn", "points": 1.5, "reason": "x", "idempotency_key": "n5"}),
        json!({"kind": "earn", "points": 5, "reason": "", "idempotency_key": "n6"}),
        json!({"kind": "earn", "points": 5, "reason": "a\u{0}b", "idempotency_key": "n10"}),
        json!({"kind": "earn", "points": 5, "reason": "x", "idempotency_key": "a\u{0}b"}),
        json!({"kind": "earn", "points": 5, "idempotency_key": "n7"}),
        json!({"kind": "earn", "points": "5", "reason": "x", "idempotency_key": "n8"}),
        json!({"kind": "earn", "points": 99999999999999999999u128.to_string().parse::<f64>().unwrap(), "reason": "x", "idempotency_key": "n9"}),
    ] {
        let (s, b) = t.call("POST", &url, Some(bad.clone())).await;
        assert_eq!(s, 422, "{bad} → {b}");
    }
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/members/999999/points",
            Some(points_body("earn", 5, "x")),
        )
        .await;
    assert_eq!((s, b["code"].as_str()), (404, Some("member_not_found")));
    let (s, b) = t.call("GET", "/api/v1/members/999999", None).await;
    assert_eq!((s, b["code"].as_str()), (404, Some("member_not_found")));
    let (s, _) = t.call("GET", "/api/v1/members/abc", None).await;
    assert_eq!(s, 404);

    // The ledger, newest first, a page at a time.
    t.call("POST", &url, Some(points_body("earn", 7, "k2")))
        .await;
    let (s, p1) = t
        .call("GET", &format!("/api/v1/members/{id}/ledger?limit=2"), None)
        .await;
    assert_eq!(s, 200);
    let keys: Vec<&str> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["idempotency_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["k2", "r1"]);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = t
        .call(
            "GET",
            &format!("/api/v1/members/{id}/ledger?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert_eq!(p2["items"][0], first);
    assert!(p2["next_cursor"].is_null());
    let (s, _) = t
        .call(
            "GET",
            &format!("/api/v1/members/{id}/ledger?cursor=zz"),
            None,
        )
        .await;
    assert_eq!(s, 422);

    // The membership on the patient's 360° view.
    let (_, view) = t
        .call("GET", &format!("/api/v1/patients/{patient}"), None)
        .await;
    assert_eq!(
        view["membership"]["points"],
        json!({"available": 77, "qualifying_12m": 107, "lifetime": 107})
    );
    let other = t.patient("P-2", "Li").await;
    let (_, view) = t
        .call("GET", &format!("/api/v1/patients/{other}"), None)
        .await;
    assert!(view["membership"].is_null());

    // The desk can move points but not adjust them; doctors only read.
    let desk = t.token("membership_desk").await;
    let (s, _) = t
        .call_as(&desk, "POST", &url, Some(points_body("earn", 1, "d1")))
        .await;
    assert_eq!(s, 201);
    let (s, _) = t
        .call_as(
            &desk,
            "POST",
            &format!("/api/v1/members/{id}/adjustments"),
            Some(json!({"delta": 5, "reason": "x", "idempotency_key": "a1"})),
        )
        .await;
    assert_eq!(s, 403);
    let doctor = t.token("doctor").await;
    let (s, _) = t
        .call_as(&doctor, "POST", &url, Some(points_body("earn", 1, "d2")))
        .await;
    assert_eq!(s, 403);

    // A suspended member neither earns nor redeems.
    let (s, _) = t
        .call(
            "PUT",
            &format!("/api/v1/members/{id}/status"),
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = t
        .call("POST", &url, Some(points_body("earn", 1, "s1")))
        .await;
    assert_eq!((s, b["code"].as_str()), (409, Some("member_inactive")));
    let (_, list) = t
        .call("GET", "/api/v1/members?status=suspended", None)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    check_clean(&t.app).await;
}

/// Upgrades at the threshold, history with reasons, redefinitions that
/// report how many members moved; adjustments, reversals and expiry.
async fn tiers_adjustments_reversals_and_expiry(engine: Engine) {
    let clock = Clock::new();
    let c = clock.clone();
    let Some(t) = TestApp::spawn_with(engine, move |a| a.with_clock(c.clock())).await else {
        return;
    };
    let a = enrol(&t, "A").await;
    let b = enrol(&t, "B").await;
    let earn = |m: i64, p: i64, k: &str| {
        let body = points_body("earn", p, k);
        let t = &t;
        async move {
            let (s, e) = t
                .call("POST", &format!("/api/v1/members/{m}/points"), Some(body))
                .await;
            assert_eq!(s, 201, "{e}");
            e
        }
    };
    let e0 = earn(a, 600, "a0").await;
    earn(a, 600, "a1").await;
    earn(b, 300, "b0").await;
    let (_, m) = t.call("GET", &format!("/api/v1/members/{a}"), None).await;
    assert_eq!(m["tier"], "silver", "1200 qualifying points pass 1000");
    let (_, h) = t
        .call("GET", &format!("/api/v1/members/{a}/tier-history"), None)
        .await;
    assert_eq!(h[0]["change"], "upgrade");
    assert!(h[0]["reason"].as_str().unwrap().contains("1200"), "{h}");
    assert_eq!(h[1]["change"], "enrolled");

    // Spending does not demote; a reversal takes back the lot and the
    // qualifying points.
    let url = format!("/api/v1/members/{a}/points");
    t.call("POST", &url, Some(points_body("redeem", 100, "a2")))
        .await;
    let rev = |seq: i64, partial: bool, key: &str| json!({"seq": seq, "allow_partial": partial, "reason": "visit refunded", "idempotency_key": key});
    let rurl = format!("/api/v1/members/{a}/reversals");
    let (s, r) = t.call("POST", &rurl, Some(rev(0, false, "v0"))).await;
    assert_eq!(
        (s, r["code"].as_str()),
        (409, Some("reversal_shortfall")),
        "100 of the first lot were spent"
    );
    let (s, r) = t.call("POST", &rurl, Some(rev(0, true, "v1"))).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(
        (r["points"].as_i64(), r["shortfall"].as_i64()),
        (Some(500), Some(100))
    );
    assert_eq!(r["lot_seq"], e0["seq"]);
    let (s, r) = t.call("POST", &rurl, Some(rev(0, true, "v2"))).await;
    assert_eq!((s, r["code"].as_str()), (409, Some("already_reversed")));
    let (s, _) = t.call("POST", &rurl, Some(rev(2, true, "v3"))).await;
    assert_eq!(s, 404, "seq 2 is a redemption");
    let (_, m) = t.call("GET", &format!("/api/v1/members/{a}"), None).await;
    assert_eq!(
        m["points"],
        json!({"available": 600, "qualifying_12m": 600, "lifetime": 600})
    );
    assert_eq!(
        m["tier"], "silver",
        "a reversal demotes only at the anniversary"
    );

    // Adjustments: in with an expiry, out like a redemption.
    let adj = format!("/api/v1/members/{b}/adjustments");
    let (s, r) = t
        .call(
            "POST",
            &adj,
            Some(json!({"delta": 50, "reason": "goodwill", "idempotency_key": "j1"})),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let (s, r) = t
        .call(
            "POST",
            &adj,
            Some(json!({"delta": -400, "reason": "error", "idempotency_key": "j2"})),
        )
        .await;
    assert_eq!((s, r["code"].as_str()), (409, Some("insufficient_points")));
    let (s, _) = t
        .call(
            "POST",
            &adj,
            Some(json!({"delta": 0, "reason": "x", "idempotency_key": "j3"})),
        )
        .await;
    assert_eq!(s, 422);
    let (s, r) = t
        .call(
            "POST",
            &adj,
            Some(json!({"delta": -20, "reason": "error", "idempotency_key": "j4"})),
        )
        .await;
    assert_eq!((s, r["balance_after"].as_i64()), (201, Some(330)));

    // Lowering the thresholds promotes at once and says how many moved;
    // an invalid set is refused.
    let (_, tiers) = t.call("GET", "/api/v1/loyalty/tiers", None).await;
    let mut tiers = tiers.as_array().unwrap().clone();
    assert_eq!(tiers.len(), 4);
    tiers[1]["threshold_qualifying"] = json!(200);
    tiers[2]["threshold_qualifying"] = json!(500);
    let (s, r) = t
        .call(
            "PUT",
            "/api/v1/loyalty/tiers",
            Some(json!({"tiers": tiers})),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["evaluated"].as_u64(), r["moved"].as_u64()),
        (Some(2), Some(2))
    );
    let (_, m) = t.call("GET", &format!("/api/v1/members/{a}"), None).await;
    assert_eq!(m["tier"], "gold");
    let (_, m) = t.call("GET", &format!("/api/v1/members/{b}"), None).await;
    assert_eq!(m["tier"], "silver");
    let mut bad = tiers.clone();
    bad[2]["threshold_qualifying"] = json!(100);
    let (s, r) = t
        .call("PUT", "/api/v1/loyalty/tiers", Some(json!({"tiers": bad})))
        .await;
    assert_eq!(s, 422, "{r}");
    let (s, r) = t.call("GET", "/api/v1/members?tier=gold", None).await;
    assert_eq!((s, r["items"].as_array().unwrap().len()), (200, 1));

    // Two years on, every lot has expired; a second run finds nothing.
    clock.advance(Duration::days(800));
    let (s, r) = t.call("POST", "/api/v1/loyalty/expiry", None).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (
            r["members"].as_u64(),
            r["changed"].as_u64(),
            r["points"].as_i64()
        ),
        (Some(2), Some(3), Some(930))
    );
    let (_, r) = t.call("POST", "/api/v1/loyalty/expiry", None).await;
    assert_eq!(r["changed"], 0);
    let (_, m) = t.call("GET", &format!("/api/v1/members/{b}"), None).await;
    assert_eq!(m["points"]["available"], 0);
    // The anniversary review demotes to what the last 12 months earned.
    let (s, r) = t.call("POST", "/api/v1/loyalty/tier-review", None).await;
    assert_eq!(s, 200, "{r}");
    check_clean(&t.app).await;
}

/// 64 concurrent clients hammer four members with earns and redeems,
/// repeating idempotency keys; afterwards each ledger adds up, no balance
/// is negative, no key was applied twice, and every 2xx answer is in the
/// ledger.
async fn concurrent_clients_keep_every_ledger_exact(engine: Engine) {
    let Some(t) = TestApp::spawn(engine).await else {
        return;
    };
    let mut members = Vec::new();
    for i in 0..4 {
        members.push(enrol(&t, &format!("C{i}")).await);
    }
    let t = Arc::new(t);
    // Each key has one body, so repeats are true retries; a few keys are
    // then sent with another body on purpose.
    let request = |k: u64| {
        let member = members[(k % 4) as usize];
        let kind = if k.is_multiple_of(3) {
            "redeem"
        } else {
            "earn"
        };
        (
            member,
            points_body(kind, (k % 7 + 1) as i64 * 10, &format!("key-{k}")),
        )
    };
    let mut tasks = Vec::new();
    for c in 0..64u64 {
        let t = t.clone();
        let mine: Vec<(i64, Value)> = (0..25u64)
            // Clients overlap: client c sends keys c*10 … c*10+24, so most
            // keys are sent by two or three clients.
            .map(|i| request(c * 10 + i))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut ok = Vec::new();
            for (member, body) in mine {
                let (s, b) = t
                    .call(
                        "POST",
                        &format!("/api/v1/members/{member}/points"),
                        Some(body.clone()),
                    )
                    .await;
                match s {
                    201 => ok.push((member, body, b)),
                    409 => assert_eq!(b["code"], "insufficient_points", "{b}"),
                    _ => panic!("unexpected {s}: {b}"),
                }
                // A conflicting reuse of a key already answered.
                if ok.len() % 8 == 1 {
                    let (m, body, _) = ok.last().unwrap().clone();
                    let mut other = body.clone();
                    other["points"] = json!(body["points"].as_i64().unwrap() + 1);
                    let (s, b) = t
                        .call("POST", &format!("/api/v1/members/{m}/points"), Some(other))
                        .await;
                    assert_eq!(
                        (s, b["code"].as_str()),
                        (422, Some("idempotency_key_reused"))
                    );
                }
            }
            ok
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await.unwrap());
    }
    assert!(answers.len() > 500, "{} writes succeeded", answers.len());
    // Every 2xx answer for one key is the same entry.
    let mut by_key: HashMap<String, Value> = HashMap::new();
    for (_, body, answer) in &answers {
        let key = body["idempotency_key"].as_str().unwrap().to_string();
        if let Some(prev) = by_key.insert(key, answer.clone()) {
            assert_eq!(&prev, answer, "two answers for one key");
        }
    }
    for member in &members {
        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("/api/v1/members/{member}/ledger?limit=200&cursor={c}"),
                None => format!("/api/v1/members/{member}/ledger?limit=200"),
            };
            let (s, page) = t.call("GET", &url, None).await;
            assert_eq!(s, 200);
            entries.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let keys: HashSet<&str> = entries
            .iter()
            .map(|e| e["idempotency_key"].as_str().unwrap())
            .collect();
        assert_eq!(keys.len(), entries.len(), "a key applied twice");
        let sum: i64 = entries.iter().map(|e| e["delta"].as_i64().unwrap()).sum();
        let (_, m) = t
            .call("GET", &format!("/api/v1/members/{member}"), None)
            .await;
        assert_eq!(m["points"]["available"].as_i64(), Some(sum));
        assert!(sum >= 0);
        // Running balances never went below zero.
        assert!(
            entries
                .iter()
                .all(|e| e["balance_after"].as_i64().unwrap() >= 0)
        );
        for (m, _, answer) in answers.iter().filter(|a| a.0 == *member) {
            assert_eq!(*m, *member);
            assert!(
                entries.iter().any(|e| e == answer),
                "acknowledged entry missing from the ledger: {answer}"
            );
        }
    }
    check_clean(&t.app).await;
}

fn rapport(db: &TestDb) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_rapport"));
    c.arg("--database-url").arg(&db.url).env("RUST_LOG", "warn");
    c
}

/// Starts `rapport serve` and returns the child and its address.
fn serve(db: &TestDb) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = rapport(db)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
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
    (child, addr)
}

/// The request writer `w` sends as its `i`th.
fn kill_body(members: &[i64], w: u64, i: u64) -> (i64, Value) {
    let kind = if i % 3 == 2 { "redeem" } else { "earn" };
    (
        members[((w + i) % 4) as usize],
        points_body(kind, 10, &format!("w{w}-{i}")),
    )
}

/// SIGKILL in the middle of concurrent point writes: after a restart every
/// acknowledged entry is there, retries of every key answer consistently,
/// and `rapport check` passes.
async fn kill_9_during_point_writes_keeps_ledgers_exact(engine: Engine) {
    let db = TestDb::new(engine).await.unwrap();
    let token = rapport(&db)
        .args(["token", "create", "--role", "admin"])
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let (mut child, addr) = serve(&db);
    let client = reqwest::Client::new();
    let mut members = Vec::new();
    for p in 0..4 {
        let r = client
            .post(format!("http://{addr}/api/v1/patients"))
            .bearer_auth(&token)
            .json(&json!({"patient_id": format!("K{p}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let r: Value = client
            .post(format!("http://{addr}/api/v1/members"))
            .bearer_auth(&token)
            .json(&json!({"patient_id": format!("K{p}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        members.push(r["id"].as_i64().unwrap());
    }
    let mut tasks = Vec::new();
    for w in 0..16u64 {
        let (client, token, addr) = (client.clone(), token.clone(), addr.clone());
        let members = members.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                let (m, b) = kill_body(&members, w, i);
                let r = client
                    .post(format!("http://{addr}/api/v1/members/{m}/points"))
                    .bearer_auth(&token)
                    .json(&b)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 201 => {
                        acked.push((m, b, r.json::<Value>().await.unwrap()));
                    }
                    Ok(r) if r.status().as_u16() == 409 => {}
                    Ok(r) => panic!("unexpected {}", r.status()),
                    Err(_) => return (acked, i), // the server is gone
                }
            }
            unreachable!()
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mut acked = Vec::new();
    let mut sent = Vec::new();
    for (w, task) in tasks.into_iter().enumerate() {
        let (a, n) = task.await.unwrap();
        acked.extend(a);
        sent.push((w as u64, n));
    }
    assert!(!acked.is_empty(), "no write was acknowledged");

    let (mut child, addr) = serve(&db);
    // Every acknowledged write answers the same on a retry; the one in
    // flight at the kill either happened or happens now, once.
    for (m, b, first) in &acked {
        let again: Value = client
            .post(format!("http://{addr}/api/v1/members/{m}/points"))
            .bearer_auth(&token)
            .json(b)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(&again, first, "acknowledged entry lost or changed");
    }
    for (w, n) in sent {
        let (m, b) = kill_body(&members, w, n);
        let r = client
            .post(format!("http://{addr}/api/v1/members/{m}/points"))
            .bearer_auth(&token)
            .json(&b)
            .send()
            .await
            .unwrap();
        assert!([201, 409].contains(&r.status().as_u16()));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = rapport(&db).args(["check", "--json"]).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("points ledgers"), "{report}");
}

#[derive(Debug, Clone)]
enum Op {
    Earn(usize, i64),
    Redeem(usize, i64),
    Adjust(usize, i64),
    Reverse(usize, usize, bool),
    Retry(usize),
    Advance(i64),
    Expire,
    Review,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 1..800i64).prop_map(|(m, p)| Op::Earn(m, p)),
        3 => (0..3usize, 1..900i64).prop_map(|(m, p)| Op::Redeem(m, p)),
        1 => (0..3usize, -300..300i64).prop_map(|(m, d)| Op::Adjust(m, d)),
        1 => (0..3usize, 0..40usize, any::<bool>()).prop_map(|(m, s, p)| Op::Reverse(m, s, p)),
        1 => (0..1000usize).prop_map(Op::Retry),
        2 => (0..200i64).prop_map(Op::Advance),
        1 => Just(Op::Expire),
        1 => Just(Op::Review),
    ]
}

async fn run_case(app: &App, clock: &Clock, case: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let actor = Actor::cli();
    let mut members = Vec::new();
    for i in 0..3 {
        let pid = format!("Q{case}-{i}");
        rapport_app::patients::create(app, &actor, &pid, &PatientInput::default())
            .await
            .unwrap();
        members.push(
            loyalty::enrol(app, &actor, &pid, None, None)
                .await
                .unwrap()
                .member
                .id,
        );
    }
    // Model: accepted keys with the answer they got.
    let mut done: Vec<(i64, String, i64, i64)> = Vec::new();
    let mut expected: BTreeMap<i64, i64> = members.iter().map(|m| (*m, 0)).collect();
    for (n, o) in ops.iter().enumerate() {
        let key = format!("op{n}");
        let r = match *o {
            Op::Earn(m, p) => Some((
                members[m],
                p,
                points::earn_or_redeem(app, &actor, members[m], "earn", p, "t", &key).await,
            )),
            Op::Redeem(m, p) => Some((
                members[m],
                -p,
                points::earn_or_redeem(app, &actor, members[m], "redeem", p, "t", &key).await,
            )),
            Op::Adjust(m, d) if d != 0 => Some((
                members[m],
                d,
                points::adjust(app, &actor, members[m], d, "t", &key).await,
            )),
            Op::Reverse(m, s, partial) => {
                let r =
                    points::reverse(app, &actor, members[m], s as i64, partial, "t", &key).await;
                let delta = r.as_ref().map(|p| p.entry.delta).unwrap_or(0);
                Some((members[m], delta, r))
            }
            Op::Retry(i) if !done.is_empty() => {
                let (m, k, p, seq) = done[i % done.len()].clone();
                let kind = if p > 0 { "earn" } else { "redeem" };
                let r = points::earn_or_redeem(app, &actor, m, kind, p.abs(), "t", &k)
                    .await
                    .unwrap();
                prop_assert!(r.replayed);
                prop_assert_eq!(r.entry.seq, seq);
                None
            }
            Op::Advance(days) => {
                clock.advance(Duration::days(days));
                None
            }
            Op::Expire => {
                // Earlier cases' members share the database: compare the
                // whole liability.
                let before = rapport_store::loyalty::ledger::liability(&app.db, 1)
                    .await
                    .unwrap();
                let run = jobs::expire_due(app, app.now()).await.unwrap();
                let after = rapport_store::loyalty::ledger::liability(&app.db, 1)
                    .await
                    .unwrap();
                prop_assert_eq!(before - after, run.points);
                for m in &members {
                    let v = loyalty::get(app, *m).await.unwrap();
                    prop_assert!(v.member.balance.available <= expected[m]);
                    expected.insert(*m, v.member.balance.available);
                }
                None
            }
            Op::Review => {
                jobs::review_tiers(app, &actor).await.unwrap();
                None
            }
            _ => None,
        };
        if let Some((m, delta, r)) = r {
            match r {
                Ok(p) => {
                    prop_assert!(!p.replayed);
                    prop_assert_eq!(p.entry.delta, delta);
                    *expected.get_mut(&m).unwrap() += delta;
                    prop_assert_eq!(p.entry.balance_after, expected[&m]);
                    if matches!(o, Op::Earn(..) | Op::Redeem(..)) {
                        done.push((m, key, delta, p.entry.seq));
                    }
                }
                Err(e) => {
                    let s = e.to_string();
                    prop_assert!(
                        s.contains("requested but only")
                            || s.contains("not found")
                            || s.contains("reversed")
                            || s.contains("remain"),
                        "unexpected refusal {}",
                        s
                    );
                }
            }
        }
        for m in &members {
            let v = loyalty::get(app, *m).await.unwrap();
            prop_assert!(v.member.balance.available >= 0);
            prop_assert_eq!(v.member.balance.available, expected[m]);
        }
    }
    let (_, problems) = rapport_store::loyalty::check::ledgers(&app.db)
        .await
        .unwrap();
    prop_assert!(problems.is_empty(), "{:?} after {:?}", problems, ops);
    Ok(())
}

/// Random interleavings of earn, redeem, adjust, reverse, retries, time
/// passing, expiry and tier reviews, through the store: every ledger
/// checks clean and every balance equals the model's.
async fn random_interleavings_keep_ledgers_exact(engine: Engine) {
    let db = TestDb::new(engine).await.unwrap();
    let clock = Clock::new();
    let app = App::new(db.open().await).with_clock(clock.clock());
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 12,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicUsize::new(0);
    let result = tokio::task::block_in_place(|| {
        runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
            let n = case.fetch_add(1, Ordering::SeqCst);
            handle.block_on(run_case(&app, &clock, n, &ops))
        })
    });
    result.unwrap();
    check_clean(&app).await;
}

both_engines!(
    points_api_follows_the_contract,
    tiers_adjustments_reversals_and_expiry,
    concurrent_clients_keep_every_ledger_exact,
    kill_9_during_point_writes_keeps_ledgers_exact,
    random_interleavings_keep_ledgers_exact,
);
