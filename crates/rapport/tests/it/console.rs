//! The staff console over HTTP: login by form, the page registry's
//! permission checks, masking, CSRF on forms, the desk's visit form, and
//! the stored language. (Browser behaviour itself is tested in
//! headless Chromium by `scripts/e2e`.)

use crate::both_engines;
use crate::harness::{Engine, TestApp};

both_engines!(
    pages_need_a_login_and_the_role_s_permission,
    forms_need_the_csrf_token_and_record_visits,
    each_user_s_language_is_stored,
    membership_forms_apply_once_and_new_pages_follow_roles,
    programme_pages_quote_redeem_refer_and_report,
);

const PW: &str = "correct horse battery";

/// A client that keeps redirects visible.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Logs in through the form; returns the session cookie.
async fn login(t: &TestApp, login: &str, role: &str) -> String {
    rapport_app::users::create(&t.app, login, role, None, PW)
        .await
        .expect("user");
    let res = client()
        .post(t.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(format!(
            "login={login}&password=correct+horse+battery&next=%2Fpatients"
        ))
        .send()
        .await
        .expect("login");
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()["location"], "/patients");
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("rapport_session=")
        .to_string()
}

async fn get(t: &TestApp, cookie: &str, path: &str, lang: &str) -> (u16, String) {
    let res = client()
        .get(t.url(path))
        .header("cookie", format!("rapport_session={cookie}"))
        .header("accept-language", lang)
        .send()
        .await
        .expect("get");
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

async fn post(
    t: &TestApp,
    cookie: &str,
    path: &str,
    body: &str,
    same_origin: bool,
) -> (u16, String, String) {
    let mut r = client()
        .post(t.url(path))
        .header("cookie", format!("rapport_session={cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept-language", "en");
    if same_origin {
        r = r.header("sec-fetch-site", "same-origin");
    } else {
        r = r.header("sec-fetch-site", "cross-site");
    }
    let res = r.body(body.to_string()).send().await.expect("post");
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, res.text().await.unwrap_or_default(), location)
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf_token\" value=\"")
        .expect("a form with a token")
        + 25;
    page[at..at + 64].to_string()
}

async fn pages_need_a_login_and_the_role_s_permission(engine: Engine) {
    let Some(t) = TestApp::spawn(engine).await else {
        return;
    };
    let id = t.patient("P001", "Li Na").await;
    t.visit("V1", "P001", "2026-01-05", "120.00").await;
    let res = client().get(t.url("/patients")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()["location"], "/login?next=/patients");

    let admin = login(&t, "boss", "admin").await;
    let (s, page) = get(&t, &admin, "/dashboard", "en").await;
    assert_eq!(s, 200);
    for chart in ["svg-months", "svg-segments", "svg-pareto", "svg-cohorts"] {
        assert!(page.contains(&format!("id=\"{chart}\"")), "{chart}");
    }
    assert!(page.contains("<html lang=\"en\">"));
    let (s, page) = get(&t, &admin, &format!("/patients/{id}"), "en").await;
    assert_eq!(s, 200);
    assert!(page.contains("13812345678"), "the admin sees the phone");
    assert!(page.contains("CN¥120.00"));

    let marketing = login(&t, "mkt", "marketing").await;
    let (s, page) = get(&t, &marketing, "/patients?sort=monetary", "en").await;
    assert_eq!(s, 200);
    assert!(page.contains("138****5678") && !page.contains("13812345678"));
    assert!(
        !page.contains("href=\"/audit\""),
        "no link to what the role cannot open"
    );
    let (s, page) = get(&t, &marketing, &format!("/patients/{id}"), "en").await;
    assert_eq!(s, 200);
    assert!(page.contains("138****5678") && !page.contains("13812345678"));
    assert!(!page.contains("id=\"visit-form\""));
    for path in ["/audit", "/users", "/tokens"] {
        let (s, page) = get(&t, &marketing, path, "es").await;
        assert_eq!(s, 403, "{path}");
        assert!(
            page.contains("No disponible para su rol"),
            "{path} in Spanish"
        );
    }
    // A form post without the visit permission is refused too.
    let csrf = rapport_app::sessions::csrf_token_for(&marketing);
    let (s, _, _) = post(
        &t,
        &marketing,
        &format!("/patients/{id}/visits"),
        &format!("csrf_token={csrf}&visit_id=X1&visit_date=2026-01-06&amount=1"),
        true,
    )
    .await;
    assert_eq!(s, 403);
    let (_, b) = t.call("GET", &format!("/api/v1/patients/{id}"), None).await;
    assert_eq!(b["aggregates"]["visits"], 1);
    // Viewing the 360° page is audited like the API's read.
    let (_, log) = t
        .call(
            "GET",
            &format!("/api/v1/audit?subject_type=patient&subject_id={id}"),
            None,
        )
        .await;
    let text = log.to_string();
    assert!(
        text.contains("user:mkt") && text.contains("patient.view"),
        "{text}"
    );
}

async fn forms_need_the_csrf_token_and_record_visits(engine: Engine) {
    let Some(t) = TestApp::spawn(engine).await else {
        return;
    };
    let id = t.patient("P001", "Li Na").await;
    let cookie = login(&t, "desk", "admin").await;
    let (_, page) = get(&t, &cookie, &format!("/patients/{id}"), "en").await;
    let csrf = csrf_of(&page);
    let path = format!("/patients/{id}/visits");
    let form = |token: &str, amount: &str| {
        format!(
            "csrf_token={token}&visit_id=D1&visit_date=2026-01-06&kind=outpatient&department=Cardiology&amount={amount}"
        )
    };
    // Without the token, with a wrong one, or from another site: refused.
    let (s, _, _) = post(&t, &cookie, &path, &form("", "12.50"), true).await;
    assert_eq!(s, 403);
    let (s, _, _) = post(&t, &cookie, &path, &form(&"0".repeat(64), "12.50"), true).await;
    assert_eq!(s, 403);
    let (s, _, _) = post(&t, &cookie, &path, &form(&csrf, "12.50"), false).await;
    assert_eq!(s, 403);
    let (_, b) = t.call("GET", &format!("/api/v1/patients/{id}"), None).await;
    assert!(b["aggregates"].is_null(), "nothing was recorded: {b}");
    // A bad amount is explained and records nothing.
    let (s, page, _) = post(&t, &cookie, &path, &form(&csrf, "12.345"), true).await;
    assert_eq!(s, 422);
    assert!(page.contains("at most two decimals"), "{page}");
    // The real thing.
    let (s, _, location) = post(&t, &cookie, &path, &form(&csrf, "12.50"), true).await;
    assert_eq!(s, 303);
    assert_eq!(location, format!("/patients/{id}?done=visit#visits"));
    let (_, b) = t.call("GET", &format!("/api/v1/patients/{id}"), None).await;
    assert_eq!(b["aggregates"]["visits"], 1);
    assert_eq!(b["aggregates"]["monetary"], "12.50");
    assert_eq!(b["visits"][0]["department"], "Cardiology");
    // The same visit id again is a conflict shown in the form.
    let (s, page, _) = post(&t, &cookie, &path, &form(&csrf, "12.50"), true).await;
    assert_eq!(s, 409);
    assert!(page.contains("already exists"));
    // Consent from the desk.
    let (s, _, _) = post(
        &t,
        &cookie,
        &format!("/patients/{id}/consents"),
        &format!("csrf_token={csrf}&channel=sms&purpose=marketing&granted=no&source=desk"),
        true,
    )
    .await;
    assert_eq!(s, 303);
    let (_, page) = get(&t, &cookie, &format!("/patients/{id}"), "en").await;
    assert!(page.contains("state-withdrawn"));
    // Logging out ends the session.
    let (s, _, location) = post(&t, &cookie, "/logout", &format!("csrf_token={csrf}"), true).await;
    assert_eq!((s, location.as_str()), (303, "/login"));
    let (s, _) = get(&t, &cookie, "/patients", "en").await;
    assert_eq!(s, 303);
}

async fn each_user_s_language_is_stored(engine: Engine) {
    let Some(t) = TestApp::spawn(engine).await else {
        return;
    };
    let cookie = login(&t, "lang", "manager").await;
    // First the browser's language, Chinese when it names none we have.
    let (_, page) = get(&t, &cookie, "/settings", "es-MX,es;q=0.9").await;
    assert!(page.contains("<html lang=\"es\">"));
    let (_, page) = get(&t, &cookie, "/settings", "fr").await;
    assert!(page.contains("<html lang=\"zh-CN\">") && page.contains("设置"));
    let csrf = csrf_of(&page);
    let (s, _, location) = post(
        &t,
        &cookie,
        "/settings/language",
        &format!("csrf_token={csrf}&locale=es&here=%2Fpatients"),
        true,
    )
    .await;
    assert_eq!((s, location.as_str()), (303, "/patients"));
    let (_, page) = get(&t, &cookie, "/patients", "en").await;
    assert!(page.contains("<html lang=\"es\">") && page.contains("Pacientes"));
    // An unknown language is refused and changes nothing.
    let (s, _, _) = post(
        &t,
        &cookie,
        "/settings/language",
        &format!("csrf_token={csrf}&locale=xx"),
        true,
    )
    .await;
    assert_eq!(s, 422);
    let (s, _, _) = post(
        &t,
        &cookie,
        "/settings/language",
        &format!("csrf_token={csrf}&locale=auto"),
        true,
    )
    .await;
    assert_eq!(s, 303);
    let (_, page) = get(&t, &cookie, "/patients", "en").await;
    assert!(page.contains("<html lang=\"en\">"));
}

async fn membership_forms_apply_once_and_new_pages_follow_roles(engine: Engine) {
    let Some(t) = TestApp::spawn(engine).await else {
        return;
    };
    let id = t.patient("P001", "Li Na").await;
    let desk = login(&t, "desk", "membership_desk").await;
    let (_, page) = get(&t, &desk, &format!("/patients/{id}"), "en").await;
    assert!(page.contains("id=\"enrol-form\""), "the desk may enrol");
    let csrf = csrf_of(&page);
    let (s, _, location) = post(
        &t,
        &desk,
        "/membership/enrol",
        &format!("csrf_token={csrf}&patient_id=P001&from_patient={id}"),
        true,
    )
    .await;
    assert_eq!(
        (s, location.as_str()),
        (303, &*format!("/patients/{id}?done=enrolled#membership"))
    );
    let member = rapport_app::loyalty::of_patient(&t.app, id)
        .await
        .unwrap()
        .expect("a member");
    let path = format!("/membership/members/{}/points", member.member.id);
    let form = |kind: &str, points: &str, key: &str| {
        format!("csrf_token={csrf}&kind={kind}&points={points}&reason=desk&idempotency_key={key}")
    };
    // The same form twice (a double click): one entry.
    for _ in 0..2 {
        let (s, _, _) = post(&t, &desk, &path, &form("earn", "1%2C200", "k-1"), true).await;
        assert_eq!(s, 303);
    }
    let balance = |t: &TestApp| {
        let app = t.app.clone();
        async move {
            rapport_app::loyalty::of_patient(&app, id)
                .await
                .unwrap()
                .unwrap()
                .member
                .balance
                .available
        }
    };
    assert_eq!(balance(&t).await, 1200);
    // An overdraft is a 409 explained on the page, and changes nothing.
    let (s, page, _) = post(&t, &desk, &path, &form("redeem", "5000", "k-2"), true).await;
    assert_eq!(s, 409);
    assert!(
        page.contains("Not enough points: only 1,200 available"),
        "{page}"
    );
    assert_eq!(balance(&t).await, 1200);
    let (_, page) = get(&t, &desk, &format!("/patients/{id}"), "en").await;
    assert!(page.contains(">Silver<"), "upgraded at once");
    // The desk may not adjust (loyalty:manage).
    let (s, _, _) = post(
        &t,
        &desk,
        &format!("/membership/members/{}/adjust", member.member.id),
        &format!("csrf_token={csrf}&delta=50&reason=x&idempotency_key=k-3"),
        true,
    )
    .await;
    assert_eq!(s, 403);
    // Pages by role: the analyst sees segments, not members, imports or
    // duplicates; the desk sees members but not segments or imports.
    let analyst = login(&t, "numbers", "analyst").await;
    for (path, want) in [
        ("/segments", 200),
        ("/segments/new", 200),
        ("/membership", 403),
        ("/imports", 403),
        ("/duplicates", 403),
    ] {
        assert_eq!(
            get(&t, &analyst, path, "en").await.0,
            want,
            "analyst {path}"
        );
    }
    for (path, want) in [
        ("/membership", 200),
        ("/membership/tiers", 200),
        ("/membership/rewards", 200),
        ("/duplicates", 200),
        ("/segments", 403),
        ("/imports", 403),
    ] {
        assert_eq!(get(&t, &desk, path, "en").await.0, want, "desk {path}");
    }
    let (_, page) = get(&t, &desk, "/membership", "en").await;
    assert!(page.contains("P001") && page.contains("Li Na"));
    // The builder's live count.
    let (_, page) = get(&t, &analyst, "/segments/new", "en").await;
    let csrf = csrf_of(&page);
    let (s, body, _) = post(
        &t,
        &analyst,
        "/segments/count",
        &format!("csrf_token={csrf}&top=all&g0_c0_field=sex&g0_c0_op=is_not_null&g0_c0_value="),
        true,
    )
    .await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(v["n"].is_number(), "{v}");
}

/// The text of the element with `id` (up to its first `<`).
fn text_of<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &page[at..];
    let start = rest.find('>').expect("tag end") + 1;
    let end = rest[start..].find('<').expect("text end");
    &rest[start..start + end]
}

async fn programme_pages_quote_redeem_refer_and_report(engine: Engine) {
    use rapport_domain::loyalty::FeeCategory;
    let Some(t) = TestApp::spawn(engine).await else {
        return;
    };
    let key = t.patient("P010", "Wang Fang").await;
    let boss = login(&t, "boss", "manager").await;
    let today = t.app.today();
    let (_, page) = get(&t, &boss, "/membership/rules", "en").await;
    assert!(page.contains("id=\"rules-empty\""), "no rules yet");
    let csrf = csrf_of(&page);
    let send = |path: &'static str, body: String| {
        let (t, boss) = (&t, &boss);
        async move { post(t, boss, path, &body, true).await }
    };
    // A refused rule names its field, next to the field.
    let (s, page, _) = send(
        "/membership/rules",
        format!("csrf_token={csrf}&create=1&code=Bad+Code&points_per_unit=1&priority=0"),
    )
    .await;
    assert_eq!(s, 422);
    assert!(
        text_of(&page, "code-err").contains("lowercase letters"),
        "{page}"
    );
    let (s, _, at) = send(
        "/membership/rules",
        format!("csrf_token={csrf}&create=1&code=base&points_per_unit=1&priority=0"),
    )
    .await;
    assert_eq!((s, at.as_str()), (303, "/membership/rules?done=rule"));
    // Enrol, and earn enough for Silver.
    let (s, _, _) = send(
        "/membership/enrol",
        format!("csrf_token={csrf}&patient_id=P010&from_patient={key}"),
    )
    .await;
    assert_eq!(s, 303);
    let member = rapport_app::loyalty::of_patient(&t.app, key)
        .await
        .unwrap()
        .unwrap()
        .member;
    let mid = member.id;
    let (s, _, _) = post(
        &t,
        &boss,
        &format!("/membership/members/{mid}/points"),
        &format!("csrf_token={csrf}&kind=earn&points=1200&reason=desk&idempotency_key=e-1"),
        true,
    )
    .await;
    assert_eq!(s, 303);
    // The earn quote, before and after a double-points campaign.
    let quote = |body: String| {
        let (t, boss) = (&t, &boss);
        async move {
            let (s, page, _) = post(t, boss, "/membership/rules/quote", &body, true).await;
            assert_eq!(s, 200, "{page}");
            let at = page.find("data-points=\"").expect("a quote") + 13;
            page[at..at + page[at..].find('"').unwrap()]
                .parse::<i64>()
                .unwrap()
        }
    };
    let q = format!(
        "csrf_token={csrf}&member={}&date={today}&l0_category=treatment&l0_amount=250.00&l1_category=examination&l1_amount=",
        member.card_no
    );
    assert_eq!(quote(q.clone()).await, 250);
    let (s, _, _) = send(
        "/membership/campaigns",
        format!(
            "csrf_token={csrf}&create=1&code=double&name=Double+week&starts={today}&ends={}&effect=multiply_percent&value=200&priority=10",
            today + chrono::Duration::days(6)
        ),
    )
    .await;
    assert_eq!(s, 303);
    assert_eq!(quote(q).await, 500, "doubled");
    let (_, page) = get(&t, &boss, "/membership/rules", "en").await;
    assert!(page.contains("data-campaign=\"double\" data-state=\"active\""));
    assert!(page.contains("×2"));
    // A reward, redeemed twice with one key: one voucher, one redeem.
    let (s, _, _) = send(
        "/membership/rewards",
        format!("csrf_token={csrf}&create=1&code=mug&name=Mug&kind=gift&cost=100&stock=2&from={today}&valid_days=30"),
    )
    .await;
    assert_eq!(s, 303);
    let redeem = format!("csrf_token={csrf}&reward=mug&idempotency_key=v-1");
    let path = format!("/membership/members/{mid}/vouchers");
    let (s1, _, at1) = post(&t, &boss, &path, &redeem, true).await;
    let (s2, _, at2) = post(&t, &boss, &path, &redeem, true).await;
    assert_eq!((s1, s2), (303, 303));
    assert_eq!(at1, at2, "the same voucher");
    let code = at1
        .split("voucher=")
        .nth(1)
        .and_then(|r| r.split('#').next())
        .expect("a voucher code")
        .to_string();
    let balance = rapport_app::loyalty::get(&t.app, mid)
        .await
        .unwrap()
        .member
        .balance
        .available;
    assert_eq!(balance, 1100);
    let (_, page) = get(&t, &boss, &format!("/patients/{key}"), "en").await;
    assert!(page.contains(&format!("data-voucher=\"{code}\" data-state=\"issued\"")));
    let use_path = format!("/membership/vouchers/{code}/use");
    let (s, _, _) = post(
        &t,
        &boss,
        &use_path,
        &format!("csrf_token={csrf}&back=card"),
        true,
    )
    .await;
    assert_eq!(s, 303);
    let (s, page, _) = post(&t, &boss, &use_path, &format!("csrf_token={csrf}"), true).await;
    assert_eq!(s, 409);
    assert!(text_of(&page, "lookup-err").contains("already used"));
    assert_eq!(text_of(&page, "voucher-state"), "Used");
    // Referrals: the code, a refusal (same phone), then a referral.
    let (s, _, _) = post(
        &t,
        &boss,
        &format!("/membership/members/{mid}/referral-code"),
        &format!("csrf_token={csrf}"),
        true,
    )
    .await;
    assert_eq!(s, 303);
    let (_, page) = get(&t, &boss, &format!("/patients/{key}"), "en").await;
    let referral = text_of(&page, "referral-code").to_string();
    assert_eq!(referral.len(), 8);
    t.patient("P011", "Same Phone").await;
    let (s, page, _) = send(
        "/membership/enrol",
        format!("csrf_token={csrf}&patient_id=P011&referral_code={referral}"),
    )
    .await;
    assert_eq!(s, 422);
    assert!(
        page.contains("the referrer has the same phone number"),
        "{page}"
    );
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/patients",
            Some(serde_json::json!({"patient_id": "P012", "name": "Zhao Lei", "phone": "13900000000"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, _, _) = send(
        "/membership/enrol",
        format!(
            "csrf_token={csrf}&patient_id=P012&referral_code={}",
            referral.to_lowercase()
        ),
    )
    .await;
    assert_eq!(s, 303);
    let (_, page) = get(&t, &boss, "/membership/referrals", "en").await;
    let row = &page[page
        .find(&format!("data-code=\"{referral}\""))
        .expect("the referrer")..];
    assert!(row.contains("data-registered>1<") && row.contains("data-rewarded>0<"));
    // Reports: the liability in points and money.
    let (s, page) = get(&t, &boss, "/membership/reports", "en").await;
    assert_eq!(s, 200);
    assert_eq!(text_of(&page, "liability-points"), "1,100 points");
    assert_eq!(text_of(&page, "liability-value"), "CN¥11.00");
    assert!(page.contains("id=\"svg-tiers-months\""));
    // Every new page in Chinese and Spanish, money in each one's format.
    for (lang, money) in [("zh-CN", "¥11.00"), ("es", "11,00\u{a0}CN¥")] {
        for path in [
            "/membership/rules",
            "/membership/rewards",
            "/membership/referrals",
            "/membership/reports",
        ] {
            let (s, page) = get(&t, &boss, path, lang).await;
            assert_eq!(s, 200, "{lang} {path}");
            assert!(
                page.contains(&format!("<html lang=\"{lang}\">")),
                "{lang} {path}"
            );
        }
        let (_, page) = get(&t, &boss, "/membership/reports", lang).await;
        assert_eq!(text_of(&page, "liability-value"), money);
    }
    // The price quote applies the Silver discount per line.
    let tiers = rapport_app::loyalty::tiers::list(&t.app).await.unwrap();
    let silver = tiers.iter().find(|x| x.def.code == "silver").unwrap();
    let cat = FeeCategory::ALL
        .into_iter()
        .find(|c| silver.def.benefits.discount_bp(*c) > 0)
        .expect("a Silver discount");
    let (s, page, _) = post(
        &t,
        &boss,
        &format!("/membership/members/{mid}/price-quote"),
        &format!(
            "csrf_token={csrf}&l0_category={}&l0_department=Scan&l0_amount=333.33",
            cat.as_str()
        ),
        true,
    )
    .await;
    assert_eq!(s, 200, "{page}");
    let discount = 33_333 * i64::from(silver.def.benefits.discount_bp(cat)) / 10_000;
    let net = 33_333 - discount;
    assert_eq!(
        text_of(&page, "price-total-net"),
        format!("CN¥{}.{:02}", net / 100, net % 100)
    );
    assert!(discount > 0);
    // Without loyalty:manage: the pages, no edit controls, edits refused.
    let desk = login(&t, "desk", "membership_desk").await;
    for path in [
        "/membership/rules",
        "/membership/rewards",
        "/membership/referrals",
    ] {
        let (s, page) = get(&t, &desk, path, "en").await;
        assert_eq!(s, 200, "{path}");
        for control in [
            "rule-form",
            "campaign-form",
            "reward-form",
            "referral-reward-form",
        ] {
            assert!(
                !page.contains(&format!("id=\"{control}\"")),
                "{path} {control}"
            );
        }
        assert!(!page.contains("/delete\""), "{path}");
    }
    let (_, page) = get(&t, &desk, "/membership/rules", "en").await;
    let csrf = csrf_of(&page);
    let (s, _, _) = post(
        &t,
        &desk,
        "/membership/rules",
        &format!("csrf_token={csrf}&create=1&code=x&points_per_unit=1&priority=1"),
        true,
    )
    .await;
    assert_eq!(s, 403);
    let analyst = login(&t, "numbers", "analyst").await;
    assert_eq!(get(&t, &analyst, "/membership/reports", "en").await.0, 403);
}
