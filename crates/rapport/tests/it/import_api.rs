//! The import and export routes, and duplicates with merging, through
//! the running server on both engines.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both_engines;
use crate::harness::{Engine, TestApp};

async fn upload(t: &TestApp, query: &str, body: &'static [u8]) -> (u16, Value) {
    let r = t
        .client
        .post(t.url(&format!("/api/v1/imports?{query}")))
        .bearer_auth(&t.admin)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls an import until it ends.
async fn finished(t: &TestApp, id: i64) -> Value {
    for _ in 0..1200 {
        let (s, v) = t.call("GET", &format!("/api/v1/imports/{id}"), None).await;
        assert_eq!(s, 200, "{v}");
        if v["status"] != "running" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("import {id} did not finish");
}

const PATIENTS: &[u8] = b"patient_id,name,sex,phone\nP1,Li Na,F,13800000001\nP2,Wang Wei,M,13800000002\nP3,Li Na,F,13800000001\n";
const VISITS: &[u8] = b"visit_id,patient_id,visit_date,amount\nV1,P1,2025-01-02,10\nV2,P3,2025-02-03,20.5\nV3,P3,2025-13-03,1\n";

async fn upload_follow_report_and_rejects(engine: Engine) {
    let Some(t) = TestApp::spawn(engine).await else {
        return;
    };
    let (s, v) = upload(&t, "kind=patients&file_name=p.csv", PATIENTS).await;
    assert_eq!(s, 202, "{v}");
    let done = finished(&t, v["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done");
    assert_eq!(done["report"]["inserted"], 3);
    // P3 has P1's name and phone.
    assert_eq!(done["report"]["duplicates_flagged"], 1);

    // One bad row and no skip: nothing committed, the error located.
    let (_, v) = upload(&t, "kind=visits&file_name=v.csv", VISITS).await;
    let done = finished(&t, v["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["report"]["committed"], false);
    assert_eq!(
        done["report"]["errors"][0]
            .as_str()
            .unwrap()
            .split(": ")
            .next(),
        Some("v.csv:4:visit_date")
    );
    let (_, list) = t.call("GET", "/api/v1/visits?limit=10", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");

    // With skip_invalid: the valid rows go in, the rejects are downloadable.
    let (_, v) = upload(&t, "kind=visits&file_name=v.csv&skip_invalid=true", VISITS).await;
    let id = v["id"].as_i64().unwrap();
    let done = finished(&t, id).await;
    assert_eq!(done["status"], "done");
    assert_eq!(
        (done["rows_read"].as_i64(), done["rows_rejected"].as_i64()),
        (Some(3), Some(1))
    );
    assert_eq!(done["has_rejects"], true);
    let r = t
        .client
        .get(t.url(&format!("/api/v1/imports/{id}/rejects")))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "visit_id,patient_id,visit_date,amount,row,reason");
    assert!(
        lines[1].starts_with("V3,P3,2025-13-03,1,4,visit_date: "),
        "{text}"
    );
    let (_, imports) = t.call("GET", "/api/v1/imports", None).await;
    assert_eq!(imports.as_array().unwrap().len(), 3);

    // Bad parameters are named.
    let (s, v) = upload(&t, "kind=invoices", PATIENTS).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (422, Some("validation_failed")),
        "{v}"
    );
    let (s, _) = upload(&t, "kind=patients&encoding=latin9", PATIENTS).await;
    assert_eq!(s, 422);
    let (s, _) = upload(&t, "kind=patients", b"").await;
    assert_eq!(s, 422);
    // A role without data:import cannot upload.
    let marketing = t.token("marketing").await;
    let r = t
        .client
        .post(t.url("/api/v1/imports?kind=patients"))
        .bearer_auth(&marketing)
        .body(PATIENTS)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    // The patient list: in full for the admin, masked for marketing.
    let get = |token: String, format: &'static str| {
        let c = t.client.clone();
        let url = t.url(&format!("/api/v1/exports/patients?format={format}"));
        async move {
            let r = c.get(url).bearer_auth(token).send().await.unwrap();
            (
                r.status().as_u16(),
                r.headers()["content-type"].to_str().unwrap().to_string(),
                r.bytes().await.unwrap(),
            )
        }
    };
    let (s, ct, body) = get(t.admin.clone(), "csv").await;
    assert_eq!((s, ct.as_str()), (200, "text/csv; charset=utf-8"));
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("P1,Li Na,F,,13800000001,"), "{text}");
    let (_, _, body) = get(marketing.clone(), "csv").await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("P1,Li Na,F,,138****0001,"), "{text}");
    assert!(!text.contains("13800000001"));
    let (s, ct, body) = get(marketing, "xlsx").await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("application/vnd.openxmlformats"));
    assert!(body.starts_with(b"PK\x03\x04"));
}

async fn duplicates_merge_moves_everything(engine: Engine) {
    let Some(t) = TestApp::spawn(engine).await else {
        return;
    };
    let a = t.patient("A1", "Zhao Lei").await;
    let (s, _) = t
        .call(
            "PATCH",
            &format!("/api/v1/patients/{a}"),
            Some(json!({"phone": "13900000000"})),
        )
        .await;
    assert_eq!(s, 200);
    t.visit("VA", "A1", "2025-01-02", "100").await;
    // Registered again at another desk: flagged at once.
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/patients",
            Some(json!({"patient_id": "B1", "name": "Zhao Lei", "phone": "13900000000", "email": "zl@example.com"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let b = b["id"].as_i64().unwrap();
    t.visit("VB", "B1", "2025-03-04", "50").await;
    let (_, page) = t.call("GET", "/api/v1/duplicates", None).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(
        (
            items[0]["patient_id"].as_i64(),
            items[0]["duplicate_of"].as_i64()
        ),
        (Some(b), Some(a))
    );
    assert_eq!(items[0]["reason"], "name_phone");

    let (s, m) = t
        .call(
            "POST",
            &format!("/api/v1/patients/{a}/merge"),
            Some(json!({"duplicate_id": b})),
        )
        .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["visits_moved"], 1);
    let (_, view) = t.call("GET", &format!("/api/v1/patients/{a}"), None).await;
    assert_eq!(view["aggregates"]["visits"], 2, "{view}");
    assert_eq!(view["aggregates"]["monetary"], "150.00", "{view}");
    assert_eq!(view["email"], "zl@example.com", "an empty field is filled");
    let (_, page) = t
        .call("GET", "/api/v1/duplicates?status=merged", None)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    // Merging again is refused; the husk's hospital id now resolves to
    // the kept patient on import.
    let (s, e) = t
        .call(
            "POST",
            &format!("/api/v1/patients/{a}/merge"),
            Some(json!({"duplicate_id": b})),
        )
        .await;
    assert_eq!((s, e["code"].as_str()), (409, Some("patient_merged")));
    let (s, _) = upload(
        &t,
        "kind=visits&file_name=late.csv",
        b"visit_id,patient_id,visit_date,amount\nVC,B1,2025-05-06,7\n",
    )
    .await;
    assert_eq!(s, 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, list) = t.call("GET", "/api/v1/imports?limit=1", None).await;
    let id = list[0]["id"].as_i64().unwrap();
    let done = finished(&t, id).await;
    assert_eq!(done["report"]["inserted"], 1, "{done}");
    let (_, view) = t.call("GET", &format!("/api/v1/patients/{a}"), None).await;
    assert_eq!(view["aggregates"]["visits"], 3);
    let (s, e) = t
        .call(
            "POST",
            &format!("/api/v1/patients/{a}/merge"),
            Some(json!({"duplicate_id": a})),
        )
        .await;
    assert_eq!((s, e["code"].as_str()), (422, Some("validation_failed")));
    let (_, audit) = t
        .call(
            "GET",
            &format!("/api/v1/audit?subject_type=patient&subject_id={a}&action=patient.merge"),
            None,
        )
        .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");

    // Dismissing a pair.
    t.call(
        "POST",
        "/api/v1/patients",
        Some(json!({"patient_id": "C1", "name": "Sun Li", "phone": "13700000000"})),
    )
    .await;
    t.call(
        "POST",
        "/api/v1/patients",
        Some(json!({"patient_id": "C2", "name": "Sun Li", "phone": "13700000000"})),
    )
    .await;
    t.call(
        "POST",
        "/api/v1/patients",
        Some(json!({"patient_id": "C3", "name": "Sun Li"})),
    )
    .await;
    let (_, page) = t.call("GET", "/api/v1/duplicates", None).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "no phone, no flag: {page}");
    let pair = items[0]["id"].as_i64().unwrap();
    let (s, d) = t
        .call("POST", &format!("/api/v1/duplicates/{pair}/dismiss"), None)
        .await;
    assert_eq!((s, d["status"].as_str()), (200, Some("dismissed")), "{d}");
    let (s, e) = t
        .call("POST", &format!("/api/v1/duplicates/{pair}/dismiss"), None)
        .await;
    assert_eq!((s, e["code"].as_str()), (409, Some("duplicate_resolved")));
    let (_, page) = t.call("GET", "/api/v1/duplicates", None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
}

/// Imports recorded as running whose server stopped are marked failed: on
/// SQLite all of them when the server starts; on PostgreSQL, which
/// several servers share, only those older than a minute whose server no
/// longer holds their lock.
async fn interrupted_imports_are_failed(engine: Engine) {
    let Some(t) = TestApp::spawn(engine).await else {
        return;
    };
    let app = &t.app;
    let now = app.now();
    let record = |started| async move {
        let mut tx = app.db.begin().await.unwrap();
        let id = rapport_store::imports::start(
            &mut tx,
            app.hospital_id,
            "visits",
            "v.csv",
            false,
            "test",
            started,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        id
    };
    let gone = record(now - chrono::Duration::minutes(2)).await;
    let elsewhere = record(now - chrono::Duration::minutes(2)).await;
    let young = record(now).await;
    // Another server is running `elsewhere`.
    let held = rapport_store::imports::Running::start(&app.db, elsewhere)
        .await
        .unwrap();
    let status = |id: i64| {
        let t = &t;
        async move {
            let (s, v) = t.call("GET", &format!("/api/v1/imports/{id}"), None).await;
            assert_eq!(s, 200, "{v}");
            v["status"].as_str().unwrap().to_owned()
        }
    };
    let n = rapport_app::import::fail_interrupted(app).await.unwrap();
    if engine == Engine::Postgres {
        assert_eq!(n, 1);
        assert_eq!(
            [
                status(gone).await,
                status(elsewhere).await,
                status(young).await
            ],
            ["failed", "running", "running"]
        );
        held.end().await;
        assert_eq!(rapport_app::import::fail_interrupted(app).await.unwrap(), 1);
        assert_eq!(status(elsewhere).await, "failed");
        assert_eq!(status(young).await, "running");
    } else {
        held.end().await;
        assert_eq!(n, 3);
        for id in [gone, elsewhere, young] {
            assert_eq!(status(id).await, "failed");
        }
    }
    let (_, v) = t
        .call("GET", &format!("/api/v1/imports/{gone}"), None)
        .await;
    assert!(v.to_string().contains("nothing of it was committed"), "{v}");
}

both_engines!(
    upload_follow_report_and_rejects,
    duplicates_merge_moves_everything,
    interrupted_imports_are_failed
);
