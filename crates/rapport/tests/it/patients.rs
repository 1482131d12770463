use serde_json::json;

use crate::both_engines;
use crate::harness::{Engine, TestApp};

both_engines!(
    register_read_update_and_view,
    duplicate_hospital_id_is_409_and_writes_nothing,
    search_by_name_phone_id_with_cursor
);

async fn register_read_update_and_view(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/patients",
            Some(json!({"patient_id": "H-001", "name": "王芳", "phone": "138-1234-5678", "sex": "女",
                        "birth_date": "1980/05/06", "email": "Wang.Fang@QQ.com", "preferred_language": "zh-CN",
                        "household": "HH1", "tags": ["vip", "vip", "chronic"]})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["patient_id"], "H-001");
    let id = b["id"].as_i64().unwrap();

    let (s, v) = t.call("GET", &format!("/api/v1/patients/{id}"), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "王芳");
    assert_eq!(v["phone"], "13812345678");
    assert_eq!(v["email"], "Wang.Fang@qq.com");
    assert_eq!(v["sex"], "F");
    assert_eq!(v["birth_date"], "1980-05-06");
    assert_eq!(v["birth_year"], 1980);
    assert_eq!(v["tags"], json!(["vip", "chronic"]));
    assert_eq!(v["aggregates"], serde_json::Value::Null);
    assert_eq!(v["visits"], json!([]));
    assert_eq!(v["masked"], false);

    // A household member shows up in the view.
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/patients",
            Some(json!({"patient_id": "H-002", "name": "王小明", "household": "HH1"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (_, v) = t.call("GET", &format!("/api/v1/patients/{id}"), None).await;
    assert_eq!(v["household_members"][0]["patient_id"], "H-002");

    // Merge patch: absent stays, null clears, values are validated.
    let (s, p) = t
        .call(
            "PATCH",
            &format!("/api/v1/patients/{id}"),
            Some(json!({"email": null, "district": "浦东新区"})),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["email"], serde_json::Value::Null);
    assert_eq!(p["district"], "浦东新区");
    assert_eq!(p["phone"], "13812345678");
    let (s, e) = t
        .call(
            "PATCH",
            &format!("/api/v1/patients/{id}"),
            Some(json!({"birth_date": "2023-02-29"})),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(e["errors"][0]["field"], "birth_date");
    let (_, v) = t.call("GET", &format!("/api/v1/patients/{id}"), None).await;
    assert_eq!(
        v["birth_date"], "1980-05-06",
        "a rejected patch changes nothing"
    );
}

async fn duplicate_hospital_id_is_409_and_writes_nothing(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let id = t.patient("P1", "Ana García").await;
    let (s, e) = t
        .call(
            "POST",
            "/api/v1/patients",
            Some(json!({"patient_id": "P1", "name": "Someone Else"})),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(e["code"], "patient_exists");
    let (_, v) = t.call("GET", &format!("/api/v1/patients/{id}"), None).await;
    assert_eq!(v["name"], "Ana García");
    let (_, page) = t.call("GET", "/api/v1/patients?patient_id=P1", None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

async fn search_by_name_phone_id_with_cursor(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    for i in 0..7 {
        let (s, _) = t
            .call("POST", "/api/v1/patients", Some(json!({"patient_id": format!("Z{i}"), "name": format!("张{i}"), "phone": format!("1390000000{i}")})))
            .await;
        assert_eq!(s, 201);
    }
    t.patient("L1", "李雷").await;
    t.patient("E1", "Emma Smith").await;

    let (_, p) = t
        .call("GET", "/api/v1/patients?name=%E5%BC%A0&limit=3", None)
        .await;
    let names: Vec<&str> = p["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["张0", "张1", "张2"]);
    let mut seen = names.len();
    let mut cursor = p["next_cursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let (_, p) = t
            .call(
                "GET",
                &format!("/api/v1/patients?name=%E5%BC%A0&limit=3&cursor={c}"),
                None,
            )
            .await;
        let items = p["items"].as_array().unwrap();
        assert!(
            items
                .iter()
                .all(|i| i["name"].as_str().unwrap().starts_with('张'))
        );
        seen += items.len();
        cursor = p["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(seen, 7, "every 张 exactly once across pages");

    let (_, p) = t
        .call("GET", "/api/v1/patients?q=139-0000-0004", None)
        .await;
    assert_eq!(p["items"][0]["patient_id"], "Z4");
    assert_eq!(p["items"].as_array().unwrap().len(), 1);
    let (_, p) = t.call("GET", "/api/v1/patients?q=E1", None).await;
    assert_eq!(p["items"][0]["name"], "Emma Smith");
    let (_, p) = t.call("GET", "/api/v1/patients?q=Emm", None).await;
    assert_eq!(p["items"][0]["patient_id"], "E1");
    let (_, p) = t.call("GET", "/api/v1/patients?q=nobody", None).await;
    assert_eq!(p["items"], json!([]));
    assert_eq!(p["next_cursor"], serde_json::Value::Null);
    let (s, e) = t.call("GET", "/api/v1/patients?limit=0", None).await;
    assert_eq!((s, e["errors"][0]["field"].as_str()), (422, Some("limit")));
    let (s, _) = t.call("GET", "/api/v1/patients?cursor=abc", None).await;
    assert_eq!(s, 422);
}
