use rapport_domain::auth::{Permission, Role};
use serde_json::json;

use crate::both_engines;
use crate::harness::{Engine, TestApp};

both_engines!(
    every_route_demands_its_permission,
    tokens_revoked_or_forged_are_refused,
    marketing_sees_masked_contacts
);

/// Fills the `{id}` of a path with a real id where one is needed, so that
/// an allowed call reaches the handler.
fn concrete(path: &str, id: i64) -> String {
    path.replace("{id}", &id.to_string())
}

async fn every_route_demands_its_permission(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let pid = t.patient("P1", "Li").await;
    let (s, doc) = t.call("GET", "/api/v1/openapi.json", None).await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let res = t
        .client
        .get(t.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401, "the document needs a token too");

    let mut tokens = vec![];
    for r in Role::ALL {
        tokens.push((*r, t.token(r.as_str()).await));
    }
    let mut operations = 0;
    let mut public = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let declared = op["x-permission"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} declares no permission"));
            let url = t.url(&format!("/api/v1{}", concrete(path, pid)));
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            if declared == "public" {
                // Exempt from the 401 checks (and only these: see below).
                public.push(format!("{method} {path}"));
                let res = t
                    .client
                    .request(m.clone(), &url)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                assert!(
                    status != 401 && status != 403,
                    "public {method} {path} must be reachable without credentials, got {status}"
                );
                continue;
            }
            // `None`: any authenticated caller.
            let perm = (declared != "authenticated").then(|| {
                Permission::from_code(declared)
                    .unwrap_or_else(|| panic!("{method} {path}: unknown permission {declared}"))
            });
            let allows = |role: &Role| perm.is_none_or(|p| role.allows(p));
            // Bodies are deliberately empty objects: an allowed call then
            // fails validation (422) or succeeds, never 401/403.
            let res = t
                .client
                .request(m.clone(), &url)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status().as_u16(),
                401,
                "{method} {path} without a token"
            );
            let res = t
                .client
                .request(m.clone(), &url)
                .bearer_auth("rpt_forged")
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status().as_u16(),
                401,
                "{method} {path} with a forged token"
            );
            let res = t
                .client
                .request(m.clone(), &url)
                .header("cookie", format!("rapport_session={}", "ab".repeat(32)))
                .header("sec-fetch-site", "same-origin")
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status().as_u16(),
                401,
                "{method} {path} with a forged session cookie"
            );
            for (role, tok) in &tokens {
                if *method == "delete" && allows(role) {
                    continue; // would delete the fixtures; allowed deletes are tested elsewhere
                }
                let res = t
                    .client
                    .request(m.clone(), &url)
                    .bearer_auth(tok)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                if allows(role) {
                    assert!(
                        status != 401 && status != 403,
                        "{role} should reach {method} {path}, got {status}"
                    );
                } else {
                    assert_eq!(status, 403, "{role} must not reach {method} {path}");
                    let p: serde_json::Value = res.json().await.unwrap();
                    assert_eq!(p["code"], "forbidden");
                }
            }
        }
    }
    assert!(operations >= 13, "walked only {operations} operations");
    assert_eq!(
        public,
        ["post /session"],
        "only logging in is open without credentials"
    );
    let health = t.client.get(t.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

async fn tokens_revoked_or_forged_are_refused(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let (s, created) = t
        .call(
            "POST",
            "/api/v1/tokens",
            Some(json!({"role": "doctor", "name": "ward PC"})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let tok = created["token"].as_str().unwrap().to_string();
    let (s, _) = t.call_as(&tok, "GET", "/api/v1/patients", None).await;
    assert_eq!(s, 200);
    let (_, list) = t.call("GET", "/api/v1/tokens", None).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|x| x.get("token").is_none() && x.get("token_hash").is_none())
    );
    let (s, _) = t
        .call("DELETE", &format!("/api/v1/tokens/{}", created["id"]), None)
        .await;
    assert_eq!(s, 204);
    let (s, e) = t.call_as(&tok, "GET", "/api/v1/patients", None).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("unauthenticated")));
    let mut forged = tok.clone();
    forged.replace_range(10..11, if &tok[10..11] == "a" { "b" } else { "a" });
    let (s, _) = t.call_as(&forged, "GET", "/api/v1/patients", None).await;
    assert_eq!(s, 401);
    let (s, e) = t
        .call(
            "POST",
            "/api/v1/tokens",
            Some(json!({"role": "superuser", "name": "x"})),
        )
        .await;
    assert_eq!((s, e["errors"][0]["field"].as_str()), (422, Some("role")));
}

async fn marketing_sees_masked_contacts(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let id = t.patient("P1", "Li").await;
    let mk = t.token("marketing").await;
    let (s, v) = t
        .call_as(&mk, "GET", &format!("/api/v1/patients/{id}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["phone"], "138****5678");
    assert_eq!(v["masked"], true);
    let (_, page) = t.call_as(&mk, "GET", "/api/v1/patients?q=Li", None).await;
    assert_eq!(page["items"][0]["phone"], "138****5678");
    let (_, v) = t
        .call_as(
            &t.token("customer_service").await,
            "GET",
            &format!("/api/v1/patients/{id}"),
            None,
        )
        .await;
    assert_eq!(v["phone"], "13812345678");
}

/// The permission table in docs/security.md says exactly what
/// `Role::allows` does, for every permission.
#[test]
fn the_documented_permission_table_is_the_code() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/security.md"
    ))
    .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(perm) = Permission::from_code(cells[1].trim_matches('`')) else {
            continue;
        };
        let documented: std::collections::BTreeSet<&str> = cells[3].split(", ").collect();
        let actual: std::collections::BTreeSet<&str> = Role::ALL
            .iter()
            .filter(|r| r.allows(perm))
            .map(|r| r.as_str())
            .collect();
        assert_eq!(documented, actual, "roles holding {perm}");
        seen.insert(perm);
    }
    assert_eq!(
        seen.len(),
        Permission::ALL.len(),
        "every permission is in the table"
    );
}
