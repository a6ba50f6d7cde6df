//! The web pages in-process: sign-in and its cookie, the security
//! headers, CSRF, roles and tenancy as in the API, sign-out and a revoked
//! key ending a session, the cashier's order made once per attempt.

use super::*;

/// A page request with the session cookie (and a form body).
async fn page(
    app: &App,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Res {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    if form.is_some() {
        b = b.header("content-type", "application/x-www-form-urlencoded");
    }
    let req = b
        .body(form.map_or_else(Body::empty, |f| Body::from(f.to_owned())))
        .unwrap();
    app.send(req).await
}

fn text(r: &Res) -> String {
    String::from_utf8_lossy(&r.bytes).into_owned()
}

/// The `name="…" value="…"` of a page's hidden field.
fn field(r: &Res, name: &str) -> String {
    let t = text(r);
    let at = t.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
    t[at..].split('"').next().unwrap().to_owned()
}

/// Sign in with `key`; the cookie to send back.
async fn sign_in(app: &App, key: &str) -> String {
    let r = page(
        app,
        "POST",
        "/web/sign-in",
        None,
        Some(&format!("key={key}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    let set = r.headers["set-cookie"].to_str().unwrap().to_owned();
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn signing_in_gives_a_strict_session_and_every_page_its_guards() {
    let app = app_on(sqlite_store().await).await;
    let (_, mk, _, ck) = app.parties().await;

    // Not signed in: pages go to the sign-in form, which is itself guarded.
    let r = page(&app, "GET", "/web/console", None, None).await;
    assert_eq!(
        (r.status, &r.headers["location"]),
        (
            StatusCode::SEE_OTHER,
            &"/web/sign-in".parse::<axum::http::HeaderValue>().unwrap()
        )
    );
    let r = page(&app, "GET", "/web/sign-in", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    for (h, want) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(r.headers[h], want, "{h}");
    }
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!text(&r).contains("<script>"), "no inline script");

    // A wrong key: 401 with the form again; a key posted from another site: 403.
    let r = page(&app, "POST", "/web/sign-in", None, Some("key=qgk_nope")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(text(&r).contains("name=\"key\""));
    let req = Request::builder()
        .method("POST")
        .uri("/web/sign-in")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(Body::from(format!("key={mk}")))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(text(&r).contains("cross_site"));

    // The cookie: HttpOnly, SameSite=Strict, for the session's length.
    let r = page(
        &app,
        "POST",
        "/web/sign-in",
        None,
        Some(&format!("key={mk}")),
    )
    .await;
    let set = r.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly")
            && set.contains("SameSite=Strict")
            && set.contains("Max-Age=28800"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain http by default");
    let merchant = set.split(';').next().unwrap().to_owned();
    let r = page(&app, "GET", "/web/console", Some(&merchant), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert!(text(&r).contains("id=\"count-today\""));

    // The wrong role gets 403, another merchant's order 404.
    let consumer = sign_in(&app, &ck).await;
    let r = page(&app, "GET", "/web/console", Some(&consumer), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let (_, mk2, _, _) = app.parties().await;
    let other = app
        .call(
            "POST",
            "/v1/orders",
            Some(&mk2),
            Some(json!({ "amount": "5.00" })),
            &[],
        )
        .await;
    let oid = other.json["id"].as_str().unwrap();
    let r = page(
        &app,
        "GET",
        &format!("/web/cashier/orders/{oid}"),
        Some(&merchant),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A form without the session's token is refused and makes nothing.
    let cashier = page(&app, "GET", "/web/cashier", Some(&merchant), None).await;
    let (csrf, attempt) = (field(&cashier, "csrf"), field(&cashier, "attempt"));
    let r = page(
        &app,
        "POST",
        "/web/cashier",
        Some(&merchant),
        Some(&format!("csrf=forged&attempt={attempt}&amount=36.50")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(text(&r).contains("csrf_mismatch"));
    // Twice the same attempt (a double press): one order.
    let form = format!("csrf={csrf}&attempt={attempt}&amount=36.50");
    let a = page(&app, "POST", "/web/cashier", Some(&merchant), Some(&form)).await;
    let b = page(&app, "POST", "/web/cashier", Some(&merchant), Some(&form)).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", text(&a));
    assert_eq!(a.headers["location"], b.headers["location"]);
    let order = page(
        &app,
        "GET",
        a.headers["location"].to_str().unwrap(),
        Some(&merchant),
        None,
    )
    .await;
    assert!(text(&order).contains("data-status=\"open\"") && text(&order).contains("<svg"));
    // A bad amount is the API's refusal, as a page.
    let r = page(
        &app,
        "POST",
        "/web/cashier",
        Some(&merchant),
        Some(&format!("csrf={csrf}&attempt=web_other&amount=1e3")),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // An old form sent again with another sale (the back button): no
    // earlier order is shown for it, but a fresh form.
    let r = page(
        &app,
        "POST",
        "/web/cashier",
        Some(&merchant),
        Some(&format!("csrf={csrf}&attempt={attempt}&amount=40.00")),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert_ne!(field(&r, "attempt"), attempt, "a new attempt number");
    assert!(text(&r).contains("value=\"40.00\""), "the amount kept");

    // Signing out ends the session here and for a copied cookie.
    let r = page(
        &app,
        "POST",
        "/web/sign-out",
        Some(&merchant),
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = page(&app, "GET", "/web/console", Some(&merchant), None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "signed out");
    let r = page(
        &app,
        "POST",
        "/web/codes",
        Some(&merchant),
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(text(&r).contains("session_ended"));
}

#[tokio::test]
async fn a_session_ends_with_its_time_or_its_key() {
    let app = app_on(sqlite_store().await).await;
    let (mid, mk, _, _) = app.parties().await;
    let cookie = sign_in(&app, &mk).await;
    app.clock.advance_seconds(8 * 3600 - 1);
    assert_eq!(
        page(&app, "GET", "/web/console", Some(&cookie), None)
            .await
            .status,
        StatusCode::OK
    );
    app.clock.advance_seconds(2);
    assert_eq!(
        page(&app, "GET", "/web/console", Some(&cookie), None)
            .await
            .status,
        StatusCode::SEE_OTHER
    );

    // Revoking the key ends its sessions at once.
    let key = app
        .call(
            "POST",
            "/v1/api-keys",
            Some(&app.admin),
            Some(json!({ "role": "merchant", "subject_id": mid })),
            &[],
        )
        .await;
    let (kid, secret) = (
        key.json["id"].as_str().unwrap(),
        key.json["secret"].as_str().unwrap(),
    );
    let cookie = sign_in(&app, secret).await;
    assert_eq!(
        page(&app, "GET", "/web/console", Some(&cookie), None)
            .await
            .status,
        StatusCode::OK
    );
    let r = app
        .call(
            "POST",
            &format!("/v1/api-keys/{kid}/revoke"),
            Some(&app.admin),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(
        page(&app, "GET", "/web/console", Some(&cookie), None)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_poster_names_the_shop_and_prints_on_its_paper() {
    let app = app_on(sqlite_store().await).await;
    let (_, mk, _, _) = app.parties().await;
    let merchant = sign_in(&app, &mk).await;
    let codes = page(&app, "GET", "/web/codes", Some(&merchant), None).await;
    let csrf = field(&codes, "csrf");
    let r = page(
        &app,
        "POST",
        "/web/codes",
        Some(&merchant),
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let at = r.headers["location"].to_str().unwrap().to_owned();
    let poster = page(&app, "GET", &format!("{at}?size=a4"), Some(&merchant), None).await;
    let t = text(&poster);
    for want in [
        "OLD STREET NOODLES",
        "老街面馆",
        "SHANGHAI",
        "扫码付款 · Scan to pay",
        "/assets/page-a4.css",
        "<svg",
    ] {
        assert!(t.contains(want), "{want} not on the poster");
    }
    let css = page(&app, "GET", "/assets/page-a4.css", None, None).await;
    assert!(text(&css).contains("size: A4"));
    let svg = page(&app, "GET", &format!("{at}.svg"), Some(&merchant), None).await;
    assert_eq!(svg.headers["content-type"], "image/svg+xml");
    assert!(text(&svg).contains("OLD STREET NOODLES"));
    // In Chinese when asked.
    let zh = Request::builder()
        .uri(&at)
        .header("cookie", &merchant)
        .header("accept-language", "zh-CN,zh;q=0.9,en;q=0.5")
        .body(Body::empty())
        .unwrap();
    let r = app.send(zh).await;
    assert!(text(&r).contains("lang=\"zh-CN\"") && text(&r).contains("付款前"));
}

#[tokio::test]
async fn a_customer_code_at_the_till_is_charged_once_per_attempt() {
    let app = app_on(sqlite_store().await).await;
    let (_, mk, _, ck) = app.parties().await;
    let merchant = sign_in(&app, &mk).await;
    let code = app
        .call("POST", "/v1/payment-codes", Some(&ck), None, &[])
        .await;
    let digits = code.json["numeric"].as_str().unwrap().to_owned();
    let cashier = page(&app, "GET", "/web/cashier", Some(&merchant), None).await;
    let (csrf, attempt) = (field(&cashier, "csrf"), field(&cashier, "attempt"));
    let form = format!("csrf={csrf}&attempt={attempt}&amount=12.30&auth_code={digits}");
    // The scanner's Enter pressed twice: one payment, charged once.
    let a = page(&app, "POST", "/web/cashier", Some(&merchant), Some(&form)).await;
    let b = page(&app, "POST", "/web/cashier", Some(&merchant), Some(&form)).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", text(&a));
    assert_eq!(a.headers["location"], b.headers["location"]);
    let at = a.headers["location"].to_str().unwrap().to_owned();
    assert!(at.starts_with("/web/payments/pay_"), "{at}");
    let me = app.call("GET", "/v1/me", Some(&ck), None, &[]).await;
    assert_eq!(me.json["balance"], "487.70");
    let p = page(&app, "GET", &at, Some(&merchant), None).await;
    assert!(text(&p).contains("data-status=\"succeeded\""));

    // The same code again under a new attempt: refused as used, as a page
    // (the cashier can act on it).
    let again = format!("csrf={csrf}&attempt=web_second&amount=12.30&auth_code={digits}");
    let r = page(&app, "POST", "/web/cashier", Some(&merchant), Some(&again)).await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert!(
        text(&r).contains("payment_code_already_used"),
        "{}",
        text(&r)
    );

    // A refund from the payment's page, once per attempt; then a cancel
    // is refused (what was refunded stays refunded).
    let p = page(&app, "GET", &at, Some(&merchant), None).await;
    let attempt = field(&p, "attempt");
    let refund = format!("csrf={csrf}&attempt={attempt}&amount=2.30");
    for _ in 0..2 {
        let r = page(
            &app,
            "POST",
            &format!("{at}/refunds"),
            Some(&merchant),
            Some(&refund),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    }
    let me = app.call("GET", "/v1/me", Some(&ck), None, &[]).await;
    assert_eq!(me.json["balance"], "490.00", "refunded once");
    // Another merchant cannot see or refund it.
    let (_, mk2, _, _) = app.parties().await;
    let other = sign_in(&app, &mk2).await;
    let r = page(&app, "GET", &at, Some(&other), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_wallet_shows_a_fresh_code_to_its_customer_only() {
    let app = app_on(sqlite_store().await).await;
    let (_, mk, _, ck) = app.parties().await;
    let consumer = sign_in(&app, &ck).await;
    let r = page(&app, "GET", "/web/", Some(&consumer), None).await;
    assert_eq!(r.headers["location"], "/web/wallet");
    let w = page(&app, "GET", "/web/wallet", Some(&consumer), None).await;
    assert_eq!(w.status, StatusCode::OK);
    assert_eq!(w.headers["cache-control"], "no-store");
    let t = text(&w);
    assert!(t.contains("id=\"balance\">500.00<"), "the balance");
    assert!(
        t.contains("<noscript><meta http-equiv=\"refresh\""),
        "reloads without its script"
    );
    // Each ask is a new code, never the same one.
    let a = page(&app, "GET", "/web/wallet/code", Some(&consumer), None).await;
    let b = page(&app, "GET", "/web/wallet/code", Some(&consumer), None).await;
    let (a, b): (Value, Value) = (
        serde_json::from_slice(&a.bytes).unwrap(),
        serde_json::from_slice(&b.bytes).unwrap(),
    );
    assert_eq!(a["numeric"].as_str().map(str::len), Some(18));
    assert_ne!(a["numeric"], b["numeric"]);
    assert!(a["svg"].as_str().unwrap().starts_with("<svg"));
    // Not for a merchant.
    let merchant = sign_in(&app, &mk).await;
    let r = page(&app, "GET", "/web/wallet", Some(&merchant), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = page(&app, "GET", "/web/wallet/code", Some(&merchant), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_merchant_answers_a_complaint_from_its_inbox() {
    let app = app_on(sqlite_store().await).await;
    let (_, mk, _, ck) = app.parties().await;
    let sc = app
        .call("POST", "/v1/static-codes", Some(&mk), None, &[])
        .await;
    let pay = app
        .call(
            "POST",
            "/v1/scans",
            Some(&ck),
            Some(json!({ "payload": sc.json["payload"], "amount": "50.00" })),
            &[("idempotency-key", "scan-k")],
        )
        .await;
    let k = app
        .call(
            "POST",
            "/v1/complaints",
            Some(&ck),
            Some(json!({ "payment_id": pay.json["id"], "reason": "not_received", "description": "nothing <b>came</b>" })),
            &[("idempotency-key", "k-1")],
        )
        .await;
    let kid = k.json["id"].as_str().unwrap().to_owned();
    let photo = Request::builder()
        .method("POST")
        .uri(format!("/v1/complaints/{kid}/photos"))
        .header("authorization", format!("Bearer {ck}"))
        .header("content-type", "image/png")
        .body(Body::from(b"\x89PNG\r\n\x1a\nphoto".to_vec()))
        .unwrap();
    assert_eq!(app.send(photo).await.status, StatusCode::CREATED);

    let merchant = sign_in(&app, &mk).await;
    let inbox = page(&app, "GET", "/web/complaints", Some(&merchant), None).await;
    assert!(text(&inbox).contains(&kid));
    let at = format!("/web/complaints/{kid}");
    let view = page(&app, "GET", &at, Some(&merchant), None).await;
    let t = text(&view);
    assert!(
        t.contains("nothing &#60;b&#62;came&#60;/b&#62;")
            || t.contains("nothing &lt;b&gt;came&lt;/b&gt;"),
        "the payer's words, escaped"
    );
    assert!(t.contains(&format!("src=\"/web/complaints/{kid}/photos/1\"")));
    let img = page(
        &app,
        "GET",
        &format!("{at}/photos/1"),
        Some(&merchant),
        None,
    )
    .await;
    assert_eq!(
        (img.status, img.headers["content-type"].to_str().unwrap()),
        (StatusCode::OK, "image/png")
    );

    // The answer, sent twice (a double press): one move.
    let (csrf, attempt) = (field(&view, "csrf"), field(&view, "attempt"));
    let form = format!("csrf={csrf}&attempt={attempt}&action=explain&amount=&text=sent+on+Monday");
    for _ in 0..2 {
        let r = page(
            &app,
            "POST",
            &format!("{at}/answer"),
            Some(&merchant),
            Some(&form),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    }
    let k = app
        .call(
            "GET",
            &format!("/v1/complaints/{kid}"),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert_eq!(k.json["status"], "answered");
    assert_eq!(
        k.json["steps"].as_array().map(Vec::len),
        Some(2),
        "answered once"
    );

    // Another merchant sees nothing of it.
    let (_, mk2, _, _) = app.parties().await;
    let other = sign_in(&app, &mk2).await;
    assert_eq!(
        page(&app, "GET", &at, Some(&other), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page(&app, "GET", &format!("{at}/photos/1"), Some(&other), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(!text(&page(&app, "GET", "/web/complaints", Some(&other), None).await).contains(&kid));
}

#[tokio::test]
async fn the_operator_decides_from_the_queue() {
    let app = app_on(sqlite_store().await).await;
    let (_, mk, _, ck) = app.parties().await;
    let sc = app
        .call("POST", "/v1/static-codes", Some(&mk), None, &[])
        .await;
    let pay = app
        .call(
            "POST",
            "/v1/scans",
            Some(&ck),
            Some(json!({ "payload": sc.json["payload"], "amount": "50.00" })),
            &[("idempotency-key", "scan-op")],
        )
        .await;
    // A fraud report, answered by the merchant and escalated by the payer.
    let k = app
        .call(
            "POST",
            "/v1/complaints",
            Some(&ck),
            Some(json!({ "payment_id": pay.json["id"], "reason": "not_authorised", "description": "not me" })),
            &[("idempotency-key", "k-op")],
        )
        .await;
    let kid = k.json["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            "POST",
            &format!("/v1/complaints/{kid}/answer"),
            Some(&mk),
            Some(json!({ "action": "reject", "reason": "it was you" })),
            &[("idempotency-key", "a-op")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let r = app
        .call(
            "POST",
            &format!("/v1/complaints/{kid}/escalate"),
            Some(&ck),
            Some(json!({ "reason": "it was not" })),
            &[("idempotency-key", "e-op")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);

    // Not for a merchant.
    let merchant = sign_in(&app, &mk).await;
    assert_eq!(
        page(&app, "GET", "/web/operator", Some(&merchant), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let admin = sign_in(&app, &app.admin).await;
    let r = page(&app, "GET", "/web/", Some(&admin), None).await;
    assert_eq!(r.headers["location"], "/web/operator");
    let q = page(&app, "GET", "/web/operator", Some(&admin), None).await;
    let t = text(&q);
    assert!(t.contains(&format!("data-kind=\"complaint\" data-id=\"{kid}\"")));
    assert!(t.contains(&format!("data-kind=\"fraud_report\" data-id=\"{kid}\"")));
    let csrf = field(&q, "csrf");

    // The fraud report cleared, once.
    let form = format!("csrf={csrf}&decision=clear&reason=the+payer+knew+the+shop");
    let at = format!("/web/operator/reviews/fraud_report/{kid}");
    let r = page(&app, "POST", &at, Some(&admin), Some(&form)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    let r = page(&app, "POST", &at, Some(&admin), Some(&form)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(text(&r).contains("review_decided"));

    // The complaint decided with a refund, sent twice: refunded once.
    let view = page(
        &app,
        "GET",
        &format!("/web/operator/complaints/{kid}"),
        Some(&admin),
        None,
    )
    .await;
    let attempt = field(&view, "attempt");
    let form = format!(
        "csrf={csrf}&attempt={attempt}&decision=refund&reason=no+proof&amount=&revisit_at="
    );
    for _ in 0..2 {
        let r = page(
            &app,
            "POST",
            &format!("/web/operator/complaints/{kid}/decision"),
            Some(&admin),
            Some(&form),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    }
    let k = app
        .call(
            "GET",
            &format!("/v1/complaints/{kid}"),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (k.json["status"].as_str(), k.json["refunded"].as_str()),
        (Some("resolved"), Some("50.00"))
    );
    let me = app.call("GET", "/v1/me", Some(&ck), None, &[]).await;
    assert_eq!(me.json["balance"], "500.00", "refunded once");
}

/// A signed report in the suite's shape, and its public key.
pub(super) fn signed_report() -> (String, String) {
    use base64::Engine;
    use ring::signature::KeyPair;
    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let key = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let doc = json!({
        "summary": { "total": 2, "pass": 1, "fail": 1, "warn": 0, "skip": 0 },
        "target": { "url": "http://127.0.0.1:8080" },
        "profile": "strict",
        "finished_at": "2026-12-08T03:00:00Z",
        "cases": [
            { "id": "QGC-CPM-SINGLE-USE", "rule": "BCP-CODE-SINGLE-USE", "level": "MUST", "status": "PASS",
              "title": "a code pays once", "exchanges": [{ "method": "POST", "path": "/v1/payments", "status": 201, "response_body": "{\"id\":\"pay_1\"}" }] },
            { "id": "QGC-TENANCY", "rule": "QG-TENANCY", "level": "MUST", "status": "FAIL",
              "title": "<script>alert(1)</script>", "expected": "404", "observed": "200", "exchanges": [] }
        ]
    });
    let file = qrgate_core::evidence::sign(doc, &key);
    let public = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.public_key().as_ref());
    (file, public)
}

/// A multipart form post of the report page.
async fn post_report(app: &App, cookie: &str, csrf: &str, key: &str, file: &str) -> Res {
    let boundary = "qgboundary7";
    let part = |name: &str, extra: &str, value: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{extra}\r\n\r\n{value}\r\n"
        )
    };
    let body = format!(
        "{}{}{}--{boundary}--\r\n",
        part("csrf", "", csrf),
        part("public_key", "", key),
        part(
            "report",
            "; filename=\"evidence.json\"\r\nContent-Type: application/json",
            file
        ),
    );
    let req = Request::builder()
        .method("POST")
        .uri("/web/audit/report")
        .header("cookie", cookie)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap();
    app.send(req).await
}

#[tokio::test]
async fn the_auditor_checks_the_books_and_verifies_a_signed_report() {
    let app = app_on(sqlite_store().await).await;
    let (_, mk, _, _) = app.parties().await;
    let key = app
        .call(
            "POST",
            "/v1/api-keys",
            Some(&app.admin),
            Some(json!({ "role": "auditor" })),
            &[],
        )
        .await;
    let auditor = sign_in(&app, key.json["secret"].as_str().unwrap()).await;
    let r = page(&app, "GET", "/web/", Some(&auditor), None).await;
    assert_eq!(r.headers["location"], "/web/audit");
    let a = page(&app, "GET", "/web/audit", Some(&auditor), None).await;
    let t = text(&a);
    assert!(
        t.contains("data-sound=\"true\"") && t.contains("data-intact=\"true\""),
        "{t}"
    );
    let csrf = field(&a, "csrf");

    let (file, public) = signed_report();
    let r = post_report(&app, &auditor, &csrf, &public, &file).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let t = text(&r);
    assert!(
        t.contains("id=\"verified\"")
            && t.contains("QGC-TENANCY")
            && t.contains("id=\"sum-fail\">1<")
    );
    assert!(
        !t.contains("<script>alert(1)"),
        "the report's text is escaped"
    );
    // One byte changed: refused, and nothing of it shown.
    let changed = file.replace("\"fail\":1", "\"fail\":0");
    let r = post_report(&app, &auditor, &csrf, &public, &changed).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text(&r).contains("report_not_verified") && !text(&r).contains("QGC-TENANCY"));
    // Without the session's CSRF token: refused.
    let r = post_report(&app, &auditor, "forged", &public, &file).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Not for a merchant.
    let merchant = sign_in(&app, &mk).await;
    assert_eq!(
        page(&app, "GET", "/web/audit", Some(&merchant), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

/// A multipart post of the wallet's scan form.
async fn post_photo(app: &App, cookie: &str, csrf: &str, photo: &[u8]) -> Res {
    let boundary = "qgphoto9";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"code.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(photo);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let req = Request::builder()
        .method("POST")
        .uri("/web/wallet/scan")
        .header("cookie", cookie)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap();
    app.send(req).await
}

#[tokio::test]
async fn the_wallet_pays_a_shop_code_read_from_a_photo_once() {
    let app = app_on(sqlite_store().await).await;
    let (_, mk, _, ck) = app.parties().await;
    let sc = app
        .call("POST", "/v1/static-codes", Some(&mk), None, &[])
        .await;
    let id = sc.json["id"].as_str().unwrap();
    let png = app
        .call(
            "GET",
            &format!("/v1/static-codes/{id}.png"),
            Some(&mk),
            None,
            &[],
        )
        .await
        .bytes;
    let consumer = sign_in(&app, &ck).await;
    let w = page(&app, "GET", "/web/wallet", Some(&consumer), None).await;
    let csrf = field(&w, "csrf");

    // Not a picture: said so, nothing paid.
    let r = post_photo(&app, &consumer, &csrf, b"\x89PNG\r\n\x1a\nnot an image").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(text(&r).contains("could not be read"), "{}", text(&r));
    // Without the session's token: refused before the photo is read.
    let r = post_photo(&app, &consumer, "forged", &png).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // The static code: whom it pays, then the amount the payer types.
    let r = post_photo(&app, &consumer, &csrf, &png).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let t = text(&r);
    assert!(t.contains("OLD STREET NOODLES") && t.contains("id=\"pay-amount\""));
    let (attempt, payload) = (field(&r, "attempt"), field(&r, "payload"));
    let payload = payload.replace("&#43;", "+");
    let form = format!(
        "csrf={csrf}&attempt={attempt}&amount=8.80&payload={}",
        payload.replace('+', "%2B")
    );
    let a = page(
        &app,
        "POST",
        "/web/wallet/pay",
        Some(&consumer),
        Some(&form),
    )
    .await;
    let b = page(
        &app,
        "POST",
        "/web/wallet/pay",
        Some(&consumer),
        Some(&form),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", text(&a));
    assert_eq!(
        a.headers["location"], b.headers["location"],
        "a double press pays once"
    );
    let me = app.call("GET", "/v1/me", Some(&ck), None, &[]).await;
    assert_eq!(me.json["balance"], "491.20");
    let paid_at = a.headers["location"].to_str().unwrap().to_owned();
    let p = page(&app, "GET", &paid_at, Some(&consumer), None).await;
    assert!(text(&p).contains("data-status=\"succeeded\""));

    // A complaint about it from the payment's page, sent twice: one
    // complaint, and 8.80 (under the instant-refund limit) back at once.
    let form = format!(
        "csrf={csrf}&attempt={}&reason=wrong_amount&description=the+sign+said+6.80&amount=",
        field(&p, "attempt")
    );
    let at = format!("{paid_at}/complaint");
    let k1 = page(&app, "POST", &at, Some(&consumer), Some(&form)).await;
    let k2 = page(&app, "POST", &at, Some(&consumer), Some(&form)).await;
    assert_eq!(k1.status, StatusCode::SEE_OTHER, "{}", text(&k1));
    assert_eq!(k1.headers["location"], k2.headers["location"]);
    let k = page(
        &app,
        "GET",
        k1.headers["location"].to_str().unwrap(),
        Some(&consumer),
        None,
    )
    .await;
    assert!(
        text(&k).contains("data-status=\"refunded_instantly\""),
        "{}",
        text(&k)
    );
    let me = app.call("GET", "/v1/me", Some(&ck), None, &[]).await;
    assert_eq!(me.json["balance"], "500.00", "refunded once, at once");
    // A photo added to it from its page (the gateway's checks apply).
    let kat = k1.headers["location"].to_str().unwrap().to_owned();
    let boundary = "qgk3";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"r.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(b"\x89PNG\r\n\x1a\nreceipt");
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let req = Request::builder()
        .method("POST")
        .uri(format!("{kat}/photos"))
        .header("cookie", &consumer)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    let kid = kat.rsplit('/').next().unwrap();
    let k = app
        .call(
            "GET",
            &format!("/v1/complaints/{kid}"),
            Some(&ck),
            None,
            &[],
        )
        .await;
    assert_eq!(k.json["photos"].as_array().map(Vec::len), Some(1));
    // A code its merchant revoked: named, but no way to pay it.
    let r = app
        .call(
            "POST",
            &format!("/v1/static-codes/{id}/revoke"),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let r = post_photo(&app, &consumer, &csrf, &png).await;
    let t = text(&r);
    assert!(t.contains("(revoked)") && !t.contains("id=\"pay\""), "{t}");
    // Not for a merchant.
    let merchant = sign_in(&app, &mk).await;
    let own = field(
        &page(&app, "GET", "/web/console", Some(&merchant), None).await,
        "csrf",
    );
    let r = post_photo(&app, &merchant, &own, &png).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!text(&r).contains("csrf_mismatch"), "refused for its role");
}

#[tokio::test]
async fn the_merchant_downloads_statements_and_keeps_its_webhooks() {
    let app = app_on(sqlite_store().await).await;
    let (_, mk, _, _) = app.parties().await;
    let merchant = sign_in(&app, &mk).await;
    let m = page(&app, "GET", "/web/money", Some(&merchant), None).await;
    assert_eq!(m.status, StatusCode::OK, "{}", text(&m));
    let csrf = field(&m, "csrf");
    // Yesterday's trades, as the API serves them.
    let t = text(&m);
    let marker = "id=\"trades-csv\" href=\"";
    let at = t.find(marker).unwrap() + marker.len();
    let link = t[at..].split('"').next().unwrap().to_owned();
    assert!(link.ends_with("/trades.csv"), "{link}");
    let csv = page(&app, "GET", &link, Some(&merchant), None).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", text(&csv));
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(csv.headers.contains_key("repr-digest"));
    let api = app
        .call(
            "GET",
            &link.replace("/web/statements/", "/v1/statements/"),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert_eq!(api.bytes, csv.bytes, "the same file as the API's");
    let r = page(
        &app,
        "GET",
        "/web/statements/2026-11-24/other.csv",
        Some(&merchant),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // An endpoint: its secret shown once, never on a reload.
    let r = page(
        &app,
        "POST",
        "/web/webhooks",
        Some(&merchant),
        Some(&format!(
            "csrf={csrf}&url=https%3A%2F%2F93.184.216.34%2Fqrgate"
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert!(text(&r).contains("id=\"new-secret\""));
    let again = page(&app, "GET", "/web/money", Some(&merchant), None).await;
    assert!(text(&again).contains("93.184.216.34") && !text(&again).contains("id=\"new-secret\""));
    // The form sent again (a reload): not a second endpoint.
    let r = page(
        &app,
        "POST",
        "/web/webhooks",
        Some(&merchant),
        Some(&format!(
            "csrf={csrf}&url=https%3A%2F%2F93.184.216.34%2Fqrgate"
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let list = app
        .call("GET", "/v1/webhook-endpoints", Some(&mk), None, &[])
        .await;
    assert_eq!(list.json["data"].as_array().map(Vec::len), Some(1));
    // A retry of someone else's (or no) delivery: not found.
    let r = page(
        &app,
        "POST",
        "/web/webhooks/deliveries/999999/retry",
        Some(&merchant),
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
