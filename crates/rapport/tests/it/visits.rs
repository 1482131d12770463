use serde_json::json;

use crate::both_engines;
use crate::harness::{Engine, TestApp};

both_engines!(
    visits_update_aggregates_and_list_newest_first,
    moving_and_deleting_visits_keeps_both_patients_right,
    bad_visits_are_rejected_and_write_nothing
);

async fn visits_update_aggregates_and_list_newest_first(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let id = t.patient("P1", "李娜").await;
    t.visit("V1", "P1", "2026-01-31", "250.00").await;
    t.visit("V2", "P1", "2026-01-31", "50.5").await;
    t.visit("V3", "P1", "2026-03-05", "100").await;
    let (_, v) = t.call("GET", &format!("/api/v1/patients/{id}"), None).await;
    let a = &v["aggregates"];
    assert_eq!(a["first_visit"], "2026-01-31");
    assert_eq!(a["last_visit"], "2026-03-05");
    assert_eq!(a["visits"], 3);
    assert_eq!(a["visit_days"], 2);
    assert_eq!(a["monetary"], "400.50");
    assert_eq!(a["months_with_visits"], 2);
    let ids: Vec<&str> = v["visits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["visit_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["V3", "V2", "V1"]);
    assert_eq!(v["visits"][0]["department"], "Cardiology");
    assert_eq!(v["visits"][0]["doctor_name"], "Dr. Li");
    assert_eq!(v["departments"][0]["monetary"], "400.50");

    // Cursor pagination over the patient's visits.
    let (_, p) = t
        .call(
            "GET",
            &format!("/api/v1/patients/{id}/visits?limit=2"),
            None,
        )
        .await;
    assert_eq!(p["items"].as_array().unwrap().len(), 2);
    let c = p["next_cursor"].as_str().unwrap().to_string();
    let (_, p2) = t
        .call(
            "GET",
            &format!("/api/v1/patients/{id}/visits?limit=2&cursor={c}"),
            None,
        )
        .await;
    assert_eq!(p2["items"][0]["visit_id"], "V1");
    assert_eq!(p2["next_cursor"], serde_json::Value::Null);
    let (_, f) = t
        .call("GET", "/api/v1/visits?from=2026-02-01&to=2026-12-31", None)
        .await;
    assert_eq!(f["items"].as_array().unwrap().len(), 1);
    // Departments and doctors come into being with the visits.
    let (s, deps) = t.call("GET", "/api/v1/departments", None).await;
    assert_eq!(s, 200, "{deps}");
    assert_eq!(deps[0]["name"], "Cardiology");
    assert_eq!(deps[0]["visits"], 3);
    assert_eq!(deps[0]["doctors"], 1);
    let dep = deps[0]["id"].as_i64().unwrap();
    let (_, docs) = t
        .call("GET", &format!("/api/v1/doctors?department={dep}"), None)
        .await;
    assert_eq!(docs[0]["doctor_id"], "D01");
    assert_eq!(docs[0]["name"], "Dr. Li");
    assert_eq!(docs[0]["department"], "Cardiology");
    let (_, none) = t
        .call(
            "GET",
            &format!("/api/v1/doctors?department={}", dep + 1000),
            None,
        )
        .await;
    assert_eq!(none, serde_json::json!([]));
    let (s, _) = t.call("GET", "/api/v1/patients/999999/visits", None).await;
    assert_eq!(s, 404);
}

async fn moving_and_deleting_visits_keeps_both_patients_right(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let a = t.patient("A", "Ana").await;
    let b = t.patient("B", "Bea").await;
    let v1 = t.visit("V1", "A", "2025-06-01", "10.00").await;
    t.visit("V2", "A", "2025-07-01", "20.00").await;
    // Move V1 to patient B, with a new date and amount.
    let (s, moved) = t
        .call(
            "PUT",
            &format!("/api/v1/visits/{}", v1["id"]),
            Some(json!({"visit_id": "V1", "patient_id": "B", "visit_date": "2025-05-01", "amount": "15.25", "kind": "exam"})),
        )
        .await;
    assert_eq!(s, 200, "{moved}");
    assert_eq!(moved["patient_id"], "B");
    let (_, va) = t.call("GET", &format!("/api/v1/patients/{a}"), None).await;
    let (_, vb) = t.call("GET", &format!("/api/v1/patients/{b}"), None).await;
    assert_eq!(
        (
            va["aggregates"]["visits"].as_i64(),
            va["aggregates"]["monetary"].as_str()
        ),
        (Some(1), Some("20.00"))
    );
    assert_eq!(va["aggregates"]["first_visit"], "2025-07-01");
    assert_eq!(
        (
            vb["aggregates"]["visits"].as_i64(),
            vb["aggregates"]["monetary"].as_str()
        ),
        (Some(1), Some("15.25"))
    );
    // Deleting B's only visit removes B's aggregates.
    let (s, _) = t
        .call("DELETE", &format!("/api/v1/visits/{}", v1["id"]), None)
        .await;
    assert_eq!(s, 204);
    let (_, vb) = t.call("GET", &format!("/api/v1/patients/{b}"), None).await;
    assert_eq!(vb["aggregates"], serde_json::Value::Null);
    let (s, _) = t
        .call("DELETE", &format!("/api/v1/visits/{}", v1["id"]), None)
        .await;
    assert_eq!(s, 404);
    let report = rapport_app::check::run(&t.app).await.unwrap();
    assert!(report.iter().all(|r| r.violations == 0), "{report:?}");
}

async fn bad_visits_are_rejected_and_write_nothing(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let id = t.patient("P1", "Li").await;
    t.visit("V1", "P1", "2026-01-01", "1.00").await;
    let cases = [
        (
            json!({"visit_id": "V2", "patient_id": "P1", "visit_date": "2026-01-02", "amount": "-5"}),
            422,
            "amount",
            "negative_amount",
        ),
        (
            json!({"visit_id": "V2", "patient_id": "P1", "visit_date": "2026-02-30", "amount": "5"}),
            422,
            "visit_date",
            "invalid_date",
        ),
        (
            json!({"visit_id": "V2", "patient_id": "P1", "visit_date": "2026-01-02", "amount": "5.555"}),
            422,
            "amount",
            "invalid_amount",
        ),
        (
            json!({"visit_id": "V2", "patient_id": "NOPE", "visit_date": "2026-01-02", "amount": "5"}),
            422,
            "patient_id",
            "unknown_patient",
        ),
        (
            json!({"visit_id": "V2", "patient_id": "P1", "visit_date": "2026-01-02", "amount": "5", "kind": "spa"}),
            422,
            "kind",
            "invalid_enum",
        ),
        (
            json!({"visit_id": "V2", "patient_id": "P1", "visit_date": "2026-01-02", "amount": 5}),
            422,
            "amount",
            "invalid_type",
        ),
        (
            json!({"visit_id": "V2", "patient_id": "P1", "amount": "5"}),
            422,
            "visit_date",
            "required",
        ),
        (
            json!({"visit_id": "V2", "patient_id": "P1", "visit_date": "2026-01-02", "amount": "5", "amt": 1}),
            422,
            "amt",
            "unknown_field",
        ),
    ];
    for (body, status, field, code) in cases {
        let (s, e) = t.call("POST", "/api/v1/visits", Some(body.clone())).await;
        assert_eq!(s, status, "{body} -> {e}");
        assert_eq!(e["errors"][0]["field"], field, "{body} -> {e}");
        assert_eq!(e["errors"][0]["code"], code, "{body} -> {e}");
    }
    let (s, e) = t.call("POST", "/api/v1/visits", Some(json!({"visit_id": "V1", "patient_id": "P1", "visit_date": "2026-01-05", "amount": "9"}))).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("visit_exists")));
    let (_, v) = t.call("GET", &format!("/api/v1/patients/{id}"), None).await;
    assert_eq!(v["aggregates"]["visits"], 1);
    assert_eq!(v["aggregates"]["monetary"], "1.00");
}
