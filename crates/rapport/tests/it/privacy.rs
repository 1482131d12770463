//! National ids sealed at rest, the audit log, consent, export and erasure.

use serde_json::json;

use crate::both_engines;
use crate::harness::{Engine, TestApp};

both_engines!(
    national_ids_are_encrypted_at_rest_and_masked,
    reads_and_changes_land_in_an_append_only_audit_log,
    consent_is_per_channel_and_purpose_with_history,
    export_and_erasure_keep_the_figures,
    check_finds_national_ids_the_keys_cannot_open
);

/// The stored columns that could hold personal data, as text.
type RawPatient = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

async fn raw_patient_row(t: &TestApp, id: i64) -> String {
    let sql = "SELECT patient_id, name, phone, email, national_id_enc, national_id_index, notes FROM patients WHERE id = $1";
    let row: RawPatient = match &t.app.db {
        rapport_app::Db::Sqlite { read, .. } => {
            sqlx::query_as(sql).bind(id).fetch_one(read).await.unwrap()
        }
        rapport_app::Db::Postgres(p) => sqlx::query_as(sql).bind(id).fetch_one(p).await.unwrap(),
    };
    format!("{row:?}")
}

async fn national_ids_are_encrypted_at_rest_and_masked(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/patients",
            Some(json!({"patient_id": "N1", "name": "赵敏", "national_id": "11010519491231002x"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_i64().unwrap();
    let (_, v) = t.call("GET", &format!("/api/v1/patients/{id}"), None).await;
    assert_eq!(v["national_id"], "11010519491231002X");
    let raw = raw_patient_row(&t, id).await;
    assert!(
        !raw.contains("11010519491231002X") && !raw.contains("19491231"),
        "stored in the clear: {raw}"
    );
    assert!(raw.contains("v1."), "sealed: {raw}");

    let mk = t.token("marketing").await;
    let (_, v) = t
        .call_as(&mk, "GET", &format!("/api/v1/patients/{id}"), None)
        .await;
    assert_eq!(v["national_id"], "110***********002X");
    assert_eq!(v["notes"], serde_json::Value::Null);

    let (s, e) = t
        .call(
            "POST",
            "/api/v1/patients",
            Some(json!({"patient_id": "N2", "national_id": "110105194912310021"})),
        )
        .await;
    assert_eq!(
        (s, e["errors"][0]["field"].as_str()),
        (422, Some("national_id"))
    );
    // Changing it re-seals; clearing it removes the ciphertext.
    let (s, p) = t
        .call(
            "PATCH",
            &format!("/api/v1/patients/{id}"),
            Some(json!({"national_id": "E1234567"})),
        )
        .await;
    assert_eq!((s, p["national_id"].as_str()), (200, Some("E1234567")));
    let (_, p) = t
        .call(
            "PATCH",
            &format!("/api/v1/patients/{id}"),
            Some(json!({"national_id": null})),
        )
        .await;
    assert_eq!(p["national_id"], serde_json::Value::Null);
    assert!(raw_patient_row(&t, id).await.contains("None, None"));
}

async fn reads_and_changes_land_in_an_append_only_audit_log(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let id = t.patient("A1", "Li").await;
    let doctor = t.token("doctor").await;
    t.call_as(&doctor, "GET", &format!("/api/v1/patients/{id}"), None)
        .await;
    let (s, _) = t
        .call(
            "PATCH",
            &format!("/api/v1/patients/{id}"),
            Some(json!({"phone": "13900000000", "district": "静安区"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, page) = t
        .call(
            "GET",
            &format!("/api/v1/audit?subject_type=patient&subject_id={id}"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["patient.update", "patient.view", "patient.create"],
        "newest first"
    );
    assert_eq!(items[1]["actor"], "token:2 (test doctor)");
    assert_eq!(items[1]["role"], "doctor");
    assert_eq!(items[1]["ip"], "127.0.0.1");
    let detail = items[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("phone") && detail.contains("district"),
        "{detail}"
    );
    assert!(
        !detail.contains("13900000000"),
        "no values in the log: {detail}"
    );

    // Pages follow each other without gaps or repeats.
    let (_, p1) = t
        .call(
            "GET",
            &format!("/api/v1/audit?subject_type=patient&subject_id={id}&limit=2"),
            None,
        )
        .await;
    let c = p1["next_cursor"].as_str().unwrap().to_string();
    let (s, p2) = t
        .call(
            "GET",
            &format!("/api/v1/audit?subject_type=patient&subject_id={id}&limit=2&cursor={c}"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{p2}");
    assert_eq!(p2["items"][0]["action"], "patient.create");
    assert_eq!(p2["next_cursor"], serde_json::Value::Null);
    let (s, _) = t.call("GET", "/api/v1/audit?cursor=nonsense", None).await;
    assert_eq!(s, 422);

    // Only admins read it.
    let (s, _) = t
        .call_as(&t.token("manager").await, "GET", "/api/v1/audit", None)
        .await;
    assert_eq!(s, 403);
    // The database itself refuses to change or delete an entry.
    let db = &t.app.db;
    for sql in [
        "UPDATE audit_log SET actor = 'nobody'",
        "DELETE FROM audit_log",
    ] {
        let r = match db {
            rapport_app::Db::Sqlite { write, .. } => {
                sqlx::query(sql).execute(write).await.map(|_| ())
            }
            rapport_app::Db::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        };
        assert!(r.is_err(), "{sql} must fail");
        assert!(r.unwrap_err().to_string().contains("append-only"));
    }
    let (_, again) = t
        .call(
            "GET",
            &format!("/api/v1/audit?subject_type=patient&subject_id={id}"),
            None,
        )
        .await;
    assert_eq!(again["items"].as_array().unwrap().len(), 3);
}

async fn consent_is_per_channel_and_purpose_with_history(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let id = t.patient("C1", "Ana").await;
    let url = format!("/api/v1/patients/{id}/consents");
    let (_, c) = t.call("GET", &url, None).await;
    assert_eq!(
        c["in_force"].as_array().unwrap().len(),
        8,
        "4 channels x 2 purposes"
    );
    assert!(
        c["in_force"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["granted"] == false),
        "no decision, no consent"
    );
    let (s, r) = t.call("POST", &url, Some(json!({"channel": "sms", "purpose": "marketing", "granted": true, "source": "paper_form"}))).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["recorded_by"], "token:1 (test admin)");
    t.call(
        "POST",
        &url,
        Some(json!({"channel": "wechat", "purpose": "care", "granted": true, "source": "wechat"})),
    )
    .await;
    let (s, _) = t.call("POST", &url, Some(json!({"channel": "sms", "purpose": "marketing", "granted": false, "source": "phone_call", "note": "asked to stop"}))).await;
    assert_eq!(s, 201);
    let (_, c) = t.call("GET", &url, None).await;
    let f = |ch: &str, pu: &str| {
        c["in_force"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["channel"] == ch && x["purpose"] == pu)
            .unwrap()
            .clone()
    };
    assert_eq!(
        f("sms", "marketing")["granted"],
        false,
        "withdrawal is immediate"
    );
    assert_eq!(f("sms", "marketing")["decision"]["note"], "asked to stop");
    assert_eq!(f("wechat", "care")["granted"], true);
    assert_eq!(c["history"].as_array().unwrap().len(), 3);
    let (s, e) = t
        .call(
            "POST",
            &url,
            Some(json!({"channel": "fax", "purpose": "spam", "granted": true, "source": ""})),
        )
        .await;
    assert_eq!(s, 422);
    let fields: Vec<&str> = e["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["channel", "purpose", "source"]);
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/patients/999999/consents",
            Some(json!({"channel": "sms", "purpose": "care", "granted": true, "source": "x"})),
        )
        .await;
    assert_eq!(s, 404);
}

async fn export_and_erasure_keep_the_figures(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let (_, b) = t
        .call(
            "POST",
            "/api/v1/patients",
            Some(
                json!({"patient_id": "E1", "name": "María López", "phone": "+34600111222",
              "national_id": "X1234567L", "email": "maria@example.es", "household": "HH9"}),
            ),
        )
        .await;
    let id = b["id"].as_i64().unwrap();
    t.visit("EV1", "E1", "2026-01-10", "120.00").await;
    t.visit("EV2", "E1", "2026-02-10", "80.50").await;
    t.call(
        "POST",
        &format!("/api/v1/patients/{id}/consents"),
        Some(json!({"channel": "email", "purpose": "care", "granted": true, "source": "web_link"})),
    )
    .await;

    let (s, x) = t
        .call("GET", &format!("/api/v1/patients/{id}/export"), None)
        .await;
    assert_eq!(s, 200, "{x}");
    assert_eq!(x["patient"]["national_id"], "X1234567L");
    assert_eq!(x["patient"]["phone"], "+34600111222");
    assert_eq!(x["visits"].as_array().unwrap().len(), 2);
    assert_eq!(x["consents"].as_array().unwrap().len(), 1);
    assert!(
        x["access_log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "patient.export")
    );

    let (s, _) = t
        .call_as(
            &t.token("customer_service").await,
            "POST",
            &format!("/api/v1/patients/{id}/erase"),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = t
        .call(
            "POST",
            &format!("/api/v1/patients/{id}/erase"),
            Some(json!({"reason": "request #42"})),
        )
        .await;
    assert_eq!(s, 204);
    let (_, v) = t.call("GET", &format!("/api/v1/patients/{id}"), None).await;
    assert_eq!(v["patient_id"], format!("ERASED-{id}"));
    for f in [
        "phone",
        "email",
        "national_id",
        "household",
        "birth_date",
        "district",
    ] {
        assert_eq!(v[f], serde_json::Value::Null, "{f} erased");
    }
    assert_eq!(v["name"], "");
    assert!(v["erased_at"].is_string());
    assert_eq!(v["aggregates"]["monetary"], "200.50", "figures stay");
    assert_eq!(v["visits"].as_array().unwrap().len(), 2);
    let raw = raw_patient_row(&t, id).await;
    assert!(
        !raw.contains("María") && !raw.contains("600111222") && !raw.contains("v1."),
        "{raw}"
    );
    let (_, c) = t
        .call("GET", &format!("/api/v1/patients/{id}/consents"), None)
        .await;
    assert_eq!(c["history"], json!([]));
    let (s, e) = t
        .call(
            "POST",
            &format!("/api/v1/patients/{id}/erase"),
            Some(json!({"reason": "again"})),
        )
        .await;
    assert_eq!((s, e["code"].as_str()), (409, Some("already_erased")));
    let report = rapport_app::check::run(&t.app).await.unwrap();
    assert!(report.iter().all(|r| r.violations == 0), "{report:?}");
    let (_, log) = t
        .call(
            "GET",
            &format!("/api/v1/audit?subject_id={id}&action=patient.erase"),
            None,
        )
        .await;
    assert_eq!(log["items"][0]["detail"], r#"{"reason":"request #42"}"#);
}

/// `rapport check` opens every sealed national id with the configured
/// keys: the right key passes, a wrong one is reported.
async fn check_finds_national_ids_the_keys_cannot_open(engine: Engine) {
    use rapport_app::crypto::DataKeys;
    let db = crate::harness::TestDb::new(engine).await.unwrap();
    let key = DataKeys::generate_line();
    let app = rapport_app::App::new(db.open().await).with_keys(DataKeys::parse(&key).unwrap());
    let input = rapport_domain::patient::PatientInput {
        national_id: Some("X1234567L".into()),
        ..Default::default()
    };
    rapport_app::patients::create(&app, &rapport_app::audit::Actor::cli(), "K1", &input)
        .await
        .unwrap();
    let check = |k: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rapport"))
            .args(["--database-url", &db.url, "check"])
            .env("RAPPORT_DATA_KEY", k)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let ok = check(&key);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}");
    assert!(text.contains("sealed national ids: 1 verified"), "{text}");
    let wrong = check(&DataKeys::generate_line());
    let text = String::from_utf8_lossy(&wrong.stdout);
    assert_eq!(wrong.status.code(), Some(1), "{text}");
    assert!(text.contains("does not open"), "{text}");
}
