//! Staff accounts and web sessions: login, the cookie, lockout, CSRF,
//! logout, password changes, user administration, `rapport user`, and the
//! first-run administrator.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Value, json};

use crate::both_engines;
use crate::harness::{Engine, TestApp, TestDb};

both_engines!(
    login_cookie_reaches_protected_routes,
    five_failures_lock_the_account_until_the_lock_expires,
    cookie_requests_that_change_things_need_csrf_proof,
    logout_ends_the_session,
    password_change_ends_other_sessions,
    marketing_session_sees_masked_contacts,
    admins_manage_users_over_the_api,
    user_commands_read_the_password_from_stdin,
    first_run_creates_one_admin_with_a_printed_password,
);

const PW: &str = "correct horse battery";

/// A logged-in browser: its cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

/// A request as a browser on the same origin would send it (with the CSRF
/// token on changing methods), or as the test says.
struct Req<'a> {
    method: &'a str,
    path: &'a str,
    cookie: Option<&'a str>,
    csrf: Option<&'a str>,
    origin: Option<String>,
    sec_fetch_site: Option<&'a str>,
    body: Option<Value>,
}

impl<'a> Req<'a> {
    fn new(method: &'a str, path: &'a str) -> Self {
        Req {
            method,
            path,
            cookie: None,
            csrf: None,
            origin: None,
            sec_fetch_site: None,
            body: None,
        }
    }

    /// Same-origin browser request with the session's cookie and token.
    fn as_browser(method: &'a str, path: &'a str, b: &'a Browser) -> Self {
        Req {
            cookie: Some(&b.cookie),
            csrf: Some(&b.csrf),
            sec_fetch_site: Some("same-origin"),
            ..Req::new(method, path)
        }
    }

    fn body(mut self, v: Value) -> Self {
        self.body = Some(v);
        self
    }

    async fn send(self, t: &TestApp) -> (u16, Value, reqwest::header::HeaderMap) {
        let m = reqwest::Method::from_bytes(self.method.as_bytes()).unwrap();
        let mut r = t.client.request(m, t.url(self.path));
        if let Some(c) = self.cookie {
            r = r.header("cookie", format!("rapport_session={c}"));
        }
        if let Some(c) = self.csrf {
            r = r.header("x-csrf-token", c);
        }
        if let Some(o) = self.origin {
            r = r.header("origin", o);
        }
        if let Some(s) = self.sec_fetch_site {
            r = r.header("sec-fetch-site", s);
        }
        if let Some(b) = self.body {
            r = r.json(&b);
        }
        let res = r.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        if status >= 400 {
            assert_eq!(
                headers["content-type"], "application/problem+json",
                "{status}: {text}"
            );
        }
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, v, headers)
    }
}

fn set_cookie(h: &reqwest::header::HeaderMap) -> String {
    h.get("set-cookie")
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap()
        .to_string()
}

async fn try_login(t: &TestApp, login: &str, password: &str) -> (u16, Value, Option<Browser>) {
    let (s, v, h) = Req::new("POST", "/api/v1/session")
        .body(json!({"login": login, "password": password}))
        .send(t)
        .await;
    if s != 201 {
        return (s, v, None);
    }
    let c = set_cookie(&h);
    let cookie = c
        .strip_prefix("rapport_session=")
        .and_then(|r| r.split(';').next())
        .expect("the session cookie")
        .to_string();
    let csrf = v["csrf_token"].as_str().unwrap().to_string();
    (s, v, Some(Browser { cookie, csrf }))
}

async fn login(t: &TestApp, login: &str, password: &str) -> Browser {
    let (s, v, b) = try_login(t, login, password).await;
    assert_eq!(s, 201, "{v}");
    b.unwrap()
}

async fn user(t: &TestApp, login: &str, role: &str) {
    rapport_app::users::create(&t.app, login, role, None, PW)
        .await
        .unwrap();
}

async fn login_cookie_reaches_protected_routes(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    t.patient("P1", "Li").await;
    user(&t, "Li.Na", "doctor").await;

    let (s, v, h) = Req::new("POST", "/api/v1/session")
        .body(json!({"login": "LI.NA", "password": PW}))
        .send(&t)
        .await;
    assert_eq!(s, 201, "{v}");
    let c = set_cookie(&h);
    assert!(c.starts_with("rapport_session="), "{c}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(c.contains(attr), "{attr} in {c}");
    }
    assert!(
        !c.contains("Secure"),
        "no Secure without --secure-cookies: {c}"
    );
    let cookie = c[16..c.find(';').unwrap()].to_string();
    assert_eq!(cookie.len(), 64, "256 bits in hex");
    assert_eq!(v["role"], "doctor");
    assert_eq!(v["user"]["login"], "li.na");
    assert!(v["user"].get("password_hash").is_none());
    let csrf = v["csrf_token"].as_str().unwrap().to_string();
    assert_eq!(csrf.len(), 64);
    let b = Browser { cookie, csrf };

    let (s, page, _) = Req::new("GET", "/api/v1/patients?q=Li")
        .tap_cookie(&b)
        .send(&t)
        .await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(
        page["items"][0]["phone"], "13812345678",
        "doctors see phones"
    );
    let (s, me, _) = Req::new("GET", "/api/v1/session")
        .tap_cookie(&b)
        .send(&t)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (me["kind"].as_str(), me["user"]["login"].as_str()),
        (Some("session"), Some("li.na"))
    );
    assert_eq!(me["csrf_token"].as_str(), Some(b.csrf.as_str()));
    // A doctor's session has a doctor's permissions.
    let (s, e, _) = Req::new("GET", "/api/v1/users")
        .tap_cookie(&b)
        .send(&t)
        .await;
    assert_eq!((s, e["code"].as_str()), (403, Some("forbidden")));
    // The document (also readable with a session) marks logging in public.
    let (s, doc, _) = Req::new("GET", "/api/v1/openapi.json")
        .tap_cookie(&b)
        .send(&t)
        .await;
    assert_eq!(s, 200);
    assert_eq!(doc["paths"]["/session"]["post"]["x-permission"], "public");
    assert_eq!(doc["paths"]["/session"]["post"]["security"], json!([{}]));
    assert_eq!(
        doc["paths"]["/session"]["get"]["x-permission"],
        "authenticated"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["session"]["in"],
        "cookie"
    );
    // Who am I with a token.
    let (s, me) = t.call("GET", "/api/v1/session", None).await;
    assert_eq!((s, me["kind"].as_str()), (200, Some("token")));

    // Only hashes are stored.
    let db = t.app.db.clone();
    let stored = scalar_strings(&db, "SELECT token_hash FROM sessions").await;
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], b.cookie);
    let stored = scalar_strings(&db, "SELECT csrf_token_hash FROM sessions").await;
    assert_ne!(stored[0], b.csrf);
    let hashes = scalar_strings(&db, "SELECT password_hash FROM users").await;
    assert!(hashes[0].starts_with("$argon2id$"), "{}", hashes[0]);

    for (login, password) in [("li.na", "wrong password!"), ("nobody", PW), ("", "")] {
        let (s, e, _) = try_login(&t, login, password).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (401, Some("invalid_credentials")),
            "{login}"
        );
    }
    let (s, e, _) = Req::new("GET", "/api/v1/patients")
        .body(json!({}))
        .send(&t)
        .await;
    assert_eq!((s, e["code"].as_str()), (401, Some("unauthenticated")));
}

impl<'a> Req<'a> {
    /// The cookie only (no CSRF token, no same-origin header).
    fn tap_cookie(mut self, b: &'a Browser) -> Self {
        self.cookie = Some(&b.cookie);
        self
    }
}

async fn scalar_strings(db: &rapport_store::Db, sql: &'static str) -> Vec<String> {
    match db {
        rapport_store::Db::Sqlite { read, .. } => {
            sqlx::query_scalar(sql).fetch_all(read).await.unwrap()
        }
        rapport_store::Db::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await.unwrap(),
    }
}

async fn five_failures_lock_the_account_until_the_lock_expires(engine: Engine) {
    let offset = Arc::new(AtomicI64::new(0));
    let o = offset.clone();
    let t = TestApp::spawn_with(engine, move |app| {
        app.with_clock(Arc::new(move || {
            chrono::Utc::now() + chrono::Duration::seconds(o.load(Ordering::SeqCst))
        }))
    })
    .await
    .unwrap();
    let advance = |minutes: i64| offset.fetch_add(minutes * 60, Ordering::SeqCst);
    user(&t, "li.na", "doctor").await;

    for i in 1..=4 {
        let (s, e, _) = try_login(&t, "li.na", "wrong password!").await;
        assert_eq!(
            (s, e["code"].as_str()),
            (401, Some("invalid_credentials")),
            "{i}"
        );
    }
    let (s, e, _) = try_login(&t, "li.na", "wrong password!").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (423, Some("account_locked")),
        "{e}"
    );
    // Locked: even the right password is refused, and the lock is visible.
    let (s, e, _) = try_login(&t, "li.na", PW).await;
    assert_eq!((s, e["code"].as_str()), (423, Some("account_locked")));
    let (_, list) = t.call("GET", "/api/v1/users", None).await;
    assert_eq!(list[0]["failed_logins"], 5);
    assert!(list[0]["locked_until"].is_string(), "{list}");
    advance(14);
    let (s, _, _) = try_login(&t, "li.na", PW).await;
    assert_eq!(s, 423, "still locked after 14 minutes");
    advance(2);
    login(&t, "li.na", PW).await;
    let (_, list) = t.call("GET", "/api/v1/users", None).await;
    assert_eq!(list[0]["failed_logins"], 0, "a success resets the count");

    // Without a success in between, each further lock is twice as long.
    for _ in 0..5 {
        try_login(&t, "li.na", "wrong password!").await;
    }
    advance(16);
    for _ in 0..4 {
        let (s, _, _) = try_login(&t, "li.na", "wrong password!").await;
        assert_eq!(s, 401, "the first lock has expired");
    }
    let (s, _, _) = try_login(&t, "li.na", "wrong password!").await;
    assert_eq!(s, 423);
    advance(29);
    assert_eq!(
        try_login(&t, "li.na", PW).await.0,
        423,
        "30 minutes this time"
    );
    advance(2);
    assert_eq!(try_login(&t, "li.na", PW).await.0, 201);

    // Sessions end after 12 idle hours, and after 7 days however active.
    let b = login(&t, "li.na", PW).await;
    advance(11 * 60);
    let me = Req::new("GET", "/api/v1/session").tap_cookie(&b);
    assert_eq!(me.send(&t).await.0, 200);
    advance(11 * 60);
    let me = Req::new("GET", "/api/v1/session").tap_cookie(&b);
    assert_eq!(me.send(&t).await.0, 200, "the idle clock slid");
    advance(12 * 60 + 1);
    let me = Req::new("GET", "/api/v1/session").tap_cookie(&b);
    assert_eq!(me.send(&t).await.0, 401, "12 idle hours");
    let b = login(&t, "li.na", PW).await;
    for _ in 0..7 {
        advance(11 * 60);
        let me = Req::new("GET", "/api/v1/session").tap_cookie(&b);
        assert_eq!(me.send(&t).await.0, 200);
    }
    advance(11 * 60 + 24 * 60);
    let me = Req::new("GET", "/api/v1/session").tap_cookie(&b);
    assert_eq!(me.send(&t).await.0, 401, "idle limit");
    let b = login(&t, "li.na", PW).await;
    for _ in 0..16 {
        advance(11 * 60);
        let me = Req::new("GET", "/api/v1/session").tap_cookie(&b);
        if me.send(&t).await.0 == 401 {
            return; // the absolute end, before 7 days + 11 hours
        }
    }
    panic!("a session outlived 7 days");
}

async fn cookie_requests_that_change_things_need_csrf_proof(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    user(&t, "desk", "membership_desk").await;
    let b = login(&t, "desk", PW).await;
    let origin = format!("http://{}", t.addr);
    let patient = |id: &str| json!({"patient_id": id, "name": "Wang"});

    // The cookie alone.
    let r = Req::new("POST", "/api/v1/patients")
        .tap_cookie(&b)
        .body(patient("A"));
    let (s, e, _) = r.send(&t).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("csrf_failed")), "{e}");
    // Same origin, but no token.
    let mut r = Req::as_browser("POST", "/api/v1/patients", &b).body(patient("A"));
    r.csrf = None;
    let (s, e, _) = r.send(&t).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("csrf_failed")));
    // A wrong token.
    let mut r = Req::as_browser("POST", "/api/v1/patients", &b).body(patient("A"));
    r.csrf = Some("0000000000000000000000000000000000000000000000000000000000000000");
    assert_eq!(r.send(&t).await.0, 403);
    // The token, but from another site.
    let mut r = Req::as_browser("POST", "/api/v1/patients", &b).body(patient("A"));
    r.sec_fetch_site = None;
    r.origin = Some("http://evil.example".into());
    let (s, e, _) = r.send(&t).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("csrf_failed")));
    let mut r = Req::as_browser("POST", "/api/v1/patients", &b).body(patient("A"));
    r.sec_fetch_site = Some("cross-site");
    assert_eq!(r.send(&t).await.0, 403);
    // The token, but no same-origin signal at all.
    let mut r = Req::as_browser("POST", "/api/v1/patients", &b).body(patient("A"));
    r.sec_fetch_site = None;
    assert_eq!(r.send(&t).await.0, 403);
    // Both proofs: Sec-Fetch-Site, or an Origin naming this host.
    let r = Req::as_browser("POST", "/api/v1/patients", &b).body(patient("A"));
    let (s, v, _) = r.send(&t).await;
    assert_eq!(s, 201, "{v}");
    let mut r = Req::as_browser("POST", "/api/v1/patients", &b).body(patient("B"));
    r.sec_fetch_site = None;
    r.origin = Some(origin.clone());
    let (s, v, _) = r.send(&t).await;
    assert_eq!(s, 201, "{v}");
    // Reads need no token.
    let (s, _, _) = Req::new("GET", "/api/v1/patients/1")
        .tap_cookie(&b)
        .send(&t)
        .await;
    assert_eq!(s, 200);
    // Bearer requests have no ambient credential: no CSRF proof needed.
    let tok = t.token("membership_desk").await;
    let (s, v) = t
        .call_as(&tok, "POST", "/api/v1/patients", Some(patient("C")))
        .await;
    assert_eq!(s, 201, "{v}");
    // Nothing was written by the refused requests.
    let (_, page) = t.call("GET", "/api/v1/patients?limit=10", None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3, "{page}");
    // Another site cannot log a browser in.
    let mut r = Req::new("POST", "/api/v1/session").body(json!({"login": "desk", "password": PW}));
    r.origin = Some("http://evil.example".into());
    let (s, e, _) = r.send(&t).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("csrf_failed")));
    let mut r = Req::new("POST", "/api/v1/session").body(json!({"login": "desk", "password": PW}));
    r.origin = Some(origin);
    assert_eq!(r.send(&t).await.0, 201);
}

async fn logout_ends_the_session(engine: Engine) {
    let t = TestApp::spawn_with(engine, |mut app| {
        app.secure_cookies = true;
        app
    })
    .await
    .unwrap();
    user(&t, "li.na", "doctor").await;
    let (s, _, h) = Req::new("POST", "/api/v1/session")
        .body(json!({"login": "li.na", "password": PW}))
        .send(&t)
        .await;
    assert_eq!(s, 201);
    assert!(set_cookie(&h).contains("; Secure"), "--secure-cookies");
    let b = login(&t, "li.na", PW).await;
    let other = login(&t, "li.na", PW).await;
    // Logging out is a change: it needs the CSRF proof too.
    let (s, _, _) = Req::new("DELETE", "/api/v1/session")
        .tap_cookie(&b)
        .send(&t)
        .await;
    assert_eq!(s, 403);
    let (s, _, h) = Req::as_browser("DELETE", "/api/v1/session", &b)
        .send(&t)
        .await;
    assert_eq!(s, 204);
    let cleared = set_cookie(&h);
    assert!(
        cleared.starts_with("rapport_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let (s, e, _) = Req::new("GET", "/api/v1/session")
        .tap_cookie(&b)
        .send(&t)
        .await;
    assert_eq!((s, e["code"].as_str()), (401, Some("unauthenticated")));
    let (s, _, _) = Req::new("GET", "/api/v1/session")
        .tap_cookie(&other)
        .send(&t)
        .await;
    assert_eq!(s, 200, "only that session ended");
}

async fn password_change_ends_other_sessions(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    user(&t, "li.na", "doctor").await;
    let a = login(&t, "li.na", PW).await;
    let b = login(&t, "li.na", PW).await;
    let path = "/api/v1/session/password";
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});

    let (s, e, _) = Req::as_browser("POST", path, &a)
        .body(change("not the password", "a much better passphrase"))
        .send(&t)
        .await;
    assert_eq!(
        (s, e["errors"][0]["field"].as_str()),
        (422, Some("current_password")),
        "{e}"
    );
    let (s, e, _) = Req::as_browser("POST", path, &a)
        .body(change(PW, "too short"))
        .send(&t)
        .await;
    assert_eq!(
        (
            s,
            e["errors"][0]["field"].as_str(),
            e["errors"][0]["code"].as_str()
        ),
        (422, Some("new_password"), Some("password_too_short"))
    );
    let (s, e, _) = Req::as_browser("POST", path, &a)
        .body(change(PW, "LI.NA"))
        .send(&t)
        .await;
    assert_eq!(s, 422, "{e}");
    let (s, e, _) = Req::as_browser("POST", path, &a)
        .body(change(PW, "a much better passphrase"))
        .send(&t)
        .await;
    assert_eq!(s, 204, "{e}");
    let (s, _, _) = Req::new("GET", "/api/v1/session")
        .tap_cookie(&a)
        .send(&t)
        .await;
    assert_eq!(s, 200, "the session that changed it stays");
    let (s, _, _) = Req::new("GET", "/api/v1/session")
        .tap_cookie(&b)
        .send(&t)
        .await;
    assert_eq!(s, 401, "every other session ended");
    let (s, e, _) = try_login(&t, "li.na", PW).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("invalid_credentials")));
    login(&t, "li.na", "a much better passphrase").await;
    // API tokens have no password to change.
    let (s, e) = t
        .call("POST", path, Some(change(PW, "a much better passphrase")))
        .await;
    assert_eq!((s, e["code"].as_str()), (403, Some("session_required")));
}

async fn marketing_session_sees_masked_contacts(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let id = t.patient("P1", "Li").await;
    user(&t, "mk", "marketing").await;
    user(&t, "cs", "customer_service").await;
    let mk = login(&t, "mk", PW).await;
    let path = format!("/api/v1/patients/{id}");
    let (s, v, _) = Req::new("GET", &path).tap_cookie(&mk).send(&t).await;
    assert_eq!(s, 200);
    assert_eq!(v["phone"], "138****5678");
    assert_eq!(v["masked"], true);
    let (_, page, _) = Req::new("GET", "/api/v1/patients?q=Li")
        .tap_cookie(&mk)
        .send(&t)
        .await;
    assert_eq!(page["items"][0]["phone"], "138****5678");
    let cs = login(&t, "cs", PW).await;
    let (_, v, _) = Req::new("GET", &path).tap_cookie(&cs).send(&t).await;
    assert_eq!(v["phone"], "13812345678");
}

async fn admins_manage_users_over_the_api(engine: Engine) {
    let t = TestApp::spawn(engine).await.unwrap();
    let (s, v) = t
        .call(
            "POST",
            "/api/v1/users",
            Some(json!({"login": "Dr.Li", "role": "doctor", "display_name": "Dr. Li", "password": PW})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (v["login"].as_str(), v["active"].as_bool()),
        (Some("dr.li"), Some(true))
    );
    let id = v["id"].as_i64().unwrap();
    let (s, e) = t
        .call(
            "POST",
            "/api/v1/users",
            Some(json!({"login": "DR.LI", "role": "doctor", "password": PW})),
        )
        .await;
    assert_eq!((s, e["code"].as_str()), (409, Some("user_exists")));
    let (s, e) = t
        .call(
            "POST",
            "/api/v1/users",
            Some(json!({"login": "wang", "role": "doctor", "password": "short"})),
        )
        .await;
    assert_eq!(
        (s, e["errors"][0]["field"].as_str()),
        (422, Some("password")),
        "{e}"
    );
    let (s, e) = t
        .call(
            "POST",
            "/api/v1/users",
            Some(json!({"login": "wang", "role": "overlord", "password": PW})),
        )
        .await;
    assert_eq!((s, e["errors"][0]["field"].as_str()), (422, Some("role")));
    let (_, list) = t.call("GET", "/api/v1/users", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("password_hash").is_none());

    // An admin's session manages users too.
    user(&t, "boss", "admin").await;
    let boss = login(&t, "boss", PW).await;
    let li = login(&t, "dr.li", PW).await;
    let (s, _, _) = Req::as_browser("DELETE", &format!("/api/v1/users/{id}"), &boss)
        .send(&t)
        .await;
    assert_eq!(s, 204);
    let (s, _, _) = Req::new("GET", "/api/v1/session")
        .tap_cookie(&li)
        .send(&t)
        .await;
    assert_eq!(s, 401, "a deactivated user's sessions end");
    let (s, e, _) = try_login(&t, "dr.li", PW).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("invalid_credentials")));
    // The last active administrator stays.
    let boss_id = rapport_app::users::find_by_login(&t.app, "boss")
        .await
        .unwrap()
        .id;
    let (s, e) = t
        .call("DELETE", &format!("/api/v1/users/{boss_id}"), None)
        .await;
    assert_eq!((s, e["code"].as_str()), (409, Some("last_admin")));
    let (s, _) = t.call("DELETE", "/api/v1/users/999999", None).await;
    assert_eq!(s, 404);
}

fn rapport(db: &TestDb) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rapport"));
    c.arg("--database-url")
        .arg(&db.url)
        .env("RUST_LOG", "warn")
        .env_remove("RAPPORT_SECURE_COOKIES");
    c
}

fn run_with_stdin(mut c: Command, input: &str) -> std::process::Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

async fn user_commands_read_the_password_from_stdin(engine: Engine) {
    let db = TestDb::new(engine).await.unwrap();
    let mut c = rapport(&db);
    c.args([
        "user", "add", "Li.Na", "--role", "doctor", "--name", "Li Na",
    ]);
    let out = run_with_stdin(c, &format!("{PW}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut c = rapport(&db);
    c.args(["user", "add", "wang", "--role", "overlord"]);
    let out = run_with_stdin(c, &format!("{PW}\n"));
    assert_eq!(out.status.code(), Some(2), "a bad role is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("role"));

    let mut c = rapport(&db);
    c.args(["user", "add", "wang", "--role", "doctor"]);
    let out = run_with_stdin(c, "short\n");
    assert_eq!(out.status.code(), Some(1), "a weak password");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("password") && err.contains("12"), "{err}");

    let mut c = rapport(&db);
    c.args(["user", "add", "li.na", "--role", "doctor"]);
    let out = run_with_stdin(c, &format!("{PW}\n"));
    assert_eq!(out.status.code(), Some(1), "the login exists");

    let out = rapport(&db).args(["user", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("li.na\tdoctor\tLi Na\tactive") && !list.contains("wang"),
        "{list}"
    );

    // The password read from stdin works for a login.
    let app = rapport_app::App::new(db.open().await);
    let client = rapport_app::sessions::Client::default();
    rapport_app::sessions::login(&app, "li.na", PW, &client)
        .await
        .unwrap();

    // A forgotten password: the operator sets a new one, which unlocks.
    for _ in 0..5 {
        let _ = rapport_app::sessions::login(&app, "li.na", "wrong password!", &client).await;
    }
    let e = rapport_app::sessions::login(&app, "li.na", PW, &client)
        .await
        .unwrap_err();
    assert!(
        matches!(e, rapport_app::AppError::AccountLocked { .. }),
        "{e:?}"
    );
    let mut c = rapport(&db);
    c.args(["user", "password", "li.na"]);
    let out = run_with_stdin(c, "short\n");
    assert_eq!(out.status.code(), Some(1));
    let mut c = rapport(&db);
    c.args(["user", "password", "li.na"]);
    let out = run_with_stdin(c, "a new passphrase here\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rapport_app::sessions::login(&app, "li.na", "a new passphrase here", &client)
        .await
        .unwrap();

    let out = rapport(&db)
        .args(["user", "deactivate", "LI.NA"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = rapport_app::sessions::login(&app, "li.na", PW, &client)
        .await
        .unwrap_err();
    assert!(
        matches!(e, rapport_app::AppError::InvalidCredentials),
        "{e:?}"
    );
    let out = rapport(&db)
        .args(["user", "deactivate", "nobody"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// Starts `rapport serve` and returns it with its address and its
/// standard output (after the first line).
fn start_server(
    db: &TestDb,
) -> (
    std::process::Child,
    String,
    BufReader<std::process::ChildStdout>,
) {
    let mut child = rapport(db)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, addr, out)
}

async fn first_run_creates_one_admin_with_a_printed_password(engine: Engine) {
    let db = TestDb::new(engine).await.unwrap();
    let (mut child, addr, mut out) = start_server(&db);
    let mut printed = String::new();
    let mut password = None;
    for _ in 0..10 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        printed.push_str(&line);
        if let Some(p) = line.trim().strip_prefix("password") {
            password = Some(p.trim().to_string());
            break;
        }
    }
    let password = password.unwrap_or_else(|| panic!("no password printed: {printed}"));
    assert!(printed.contains("admin"), "{printed}");
    assert!(password.chars().count() >= 20, "{password}");
    let client = reqwest::Client::new();
    let login = |password: String| {
        let client = client.clone();
        let addr = addr.clone();
        async move {
            client
                .post(format!("http://{addr}/api/v1/session"))
                .json(&json!({"login": "admin", "password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    let res = login(password.clone()).await;
    assert_eq!(res.status().as_u16(), 201);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["role"], "admin");
    child.kill().unwrap();
    child.wait().unwrap();

    // The second start creates nobody and prints no password.
    let (mut child, addr, mut out) = start_server(&db);
    let res = client
        .post(format!("http://{addr}/api/v1/session"))
        .json(&json!({"login": "admin", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201, "the same password still works");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(!rest.contains("password"), "printed again: {rest}");
    let h = db.open().await;
    let logins = scalar_strings(&h, "SELECT login FROM users").await;
    assert_eq!(logins, ["admin"]);
}
