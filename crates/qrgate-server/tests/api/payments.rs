//! Payments over HTTP: long polls, stored answers, CPM charges with retries, merchant codes, orders, refunds, cancels and tenancy.

use super::*;

/// A long poll that sees no change answers with the payment when its wait
/// is over, inside the request deadline (this test takes 30 s of real time).
#[tokio::test]
async fn a_thirty_second_long_poll_answers_with_the_payment() {
    let app = app_on(sqlite_store().await).await;
    let (_, mk, _, ck) = app.parties().await;
    let code = app
        .call("POST", "/v1/payment-codes", Some(&ck), None, &[])
        .await;
    let numeric = code.json["numeric"].as_str().unwrap().to_owned();
    let paid = app
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(json!({ "auth_code": numeric, "amount": "2.00" })),
            &[("idempotency-key", "poll-1")],
        )
        .await;
    let id = paid.json["id"].as_str().unwrap();
    let r = app
        .call(
            "GET",
            &format!("/v1/payments/{id}?wait=30"),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.json["id"].as_str(), r.json["status"].as_str()),
        (StatusCode::OK, Some(id), Some("succeeded")),
        "{:?}",
        r.json
    );
    let r = app
        .call(
            "GET",
            &format!("/v1/payments/{id}?wait=31"),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

/// A merchant key revoked after a payment gets no replay of it. The retry
/// goes to a second gateway on the same store (a second process, say) whose
/// copy of the keys still holds the key as live, so the request passes the
/// door; the movement's own key check refuses it, and the stored answer must
/// not be handed out instead.
#[tokio::test]
async fn a_revoked_key_gets_no_stored_answer() {
    let store = sqlite_store().await;
    let app = app_on(store.clone()).await;
    let till = app_on(store).await;
    let (mid, _, _, ck) = app.parties().await;
    let key = app
        .call(
            "POST",
            "/v1/api-keys",
            Some(&app.admin),
            Some(json!({ "role": "merchant", "subject_id": mid })),
            &[],
        )
        .await;
    let (kid, mk) = (
        key.json["id"].as_str().unwrap().to_owned(),
        key.json["secret"].as_str().unwrap().to_owned(),
    );
    let code = app
        .call("POST", "/v1/payment-codes", Some(&ck), None, &[])
        .await;
    let body = json!({ "auth_code": code.json["numeric"], "amount": "3.00" });
    let pay = |body: serde_json::Value| {
        till.call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(body),
            &[("idempotency-key", "pay-revoked")],
        )
    };
    let first = pay(body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.json);
    let revoked = app
        .call(
            "POST",
            &format!("/v1/api-keys/{kid}/revoke"),
            Some(&app.admin),
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{:?}", revoked.json);
    let again = pay(body).await;
    assert_eq!(
        (again.status, err(&again).0),
        (StatusCode::UNAUTHORIZED, "api_key_revoked"),
        "{:?}",
        again.json
    );
    assert!(again.headers.get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn cpm_charge_with_idempotent_retries() {
    let app = app_on(sqlite_store().await).await;
    let (_, mk, _, ck) = app.parties().await;
    let code = app
        .call("POST", "/v1/payment-codes", Some(&ck), None, &[])
        .await;
    assert_eq!(code.status, StatusCode::CREATED);
    let numeric = code.json["numeric"].as_str().unwrap().to_owned();
    let body = json!({ "auth_code": numeric, "amount": "12.30", "out_trade_no": "T-1" });
    let first = app
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(body.clone()),
            &[("idempotency-key", "pay-1")],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.json);
    assert_eq!(first.json["status"], "succeeded");
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = app
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(body.clone()),
            &[("idempotency-key", "pay-1")],
        )
        .await;
    assert_eq!(
        (
            again.status,
            again.headers["idempotent-replayed"].to_str().unwrap()
        ),
        (StatusCode::CREATED, "true")
    );
    assert_eq!(again.bytes, first.bytes);
    let other = app
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(json!({ "auth_code": numeric, "amount": "99.00" })),
            &[("idempotency-key", "pay-1")],
        )
        .await;
    assert_eq!(
        (other.status, err(&other).0),
        (StatusCode::CONFLICT, "idempotency_key_reused")
    );
    // A new key with the same (used) code: refused, single use.
    let reuse = app
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(body),
            &[("idempotency-key", "pay-2")],
        )
        .await;
    assert_eq!(
        (reuse.status, err(&reuse)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            ("payment_code_already_used", Some("BCP-CODE-SINGLE-USE"))
        )
    );
    // Expired code.
    let code = app
        .call("POST", "/v1/payment-codes", Some(&ck), None, &[])
        .await;
    app.clock.advance_seconds(60);
    let r = app
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(json!({ "auth_code": code.json["qr"], "amount": "1.00" })),
            &[("idempotency-key", "pay-3")],
        )
        .await;
    assert_eq!(err(&r), ("payment_code_expired", Some("BCP-CODE-TTL")));
    // The first payment's code has expired too, yet its retry still gets the stored answer.
    let late = app
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(json!({ "auth_code": numeric, "amount": "12.30", "out_trade_no": "T-1" })),
            &[("idempotency-key", "pay-1")],
        )
        .await;
    assert_eq!(
        (
            late.status,
            late.headers["idempotent-replayed"].to_str().unwrap()
        ),
        (StatusCode::CREATED, "true")
    );
    assert_eq!(late.bytes, first.bytes);
    // Over the level-C daily cap: 402 with the rule, recorded as failed; the retry replays the same answer.
    let code = app
        .call("POST", "/v1/payment-codes", Some(&ck), None, &[])
        .await;
    let over = json!({ "auth_code": code.json["numeric"], "amount": "990.00" });
    let r = app
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(over.clone()),
            &[("idempotency-key", "pay-4")],
        )
        .await;
    assert_eq!(
        (r.status, err(&r)),
        (
            StatusCode::PAYMENT_REQUIRED,
            ("limit_exceeded", Some("BCP-LIMIT-C-DAILY"))
        )
    );
    let r2 = app
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(over),
            &[("idempotency-key", "pay-4")],
        )
        .await;
    assert_eq!(
        (r2.status, r2.json["error"]["payment_id"].clone()),
        (
            StatusCode::PAYMENT_REQUIRED,
            r.json["error"]["payment_id"].clone()
        )
    );
    assert_eq!(
        err(&r2).0,
        "limit_exceeded",
        "a replayed error names this request too"
    );
    assert_ne!(
        r2.json["error"]["request_id"],
        r.json["error"]["request_id"]
    );
    let list = app
        .call("GET", "/v1/payments?status=failed", Some(&mk), None, &[])
        .await;
    assert_eq!(list.json["data"].as_array().unwrap().len(), 1);
    let me = app.call("GET", "/v1/me", Some(&ck), None, &[]).await;
    assert_eq!(me.json["balance"], "487.70");
}

#[tokio::test]
async fn merchant_codes_orders_refunds_cancel_and_tenancy() {
    let app = app_on(sqlite_store().await).await;
    let (_, mk, _, ck) = app.parties().await;
    let (_, mk2, _, _) = app.parties().await;
    // Static code, poster images, verification, paying it.
    let sc = app
        .call("POST", "/v1/static-codes", Some(&mk), None, &[])
        .await;
    let id = sc.json["id"].as_str().unwrap();
    let payload = sc.json["payload"].as_str().unwrap().to_owned();
    let png = app
        .call(
            "GET",
            &format!("/v1/static-codes/{id}.png"),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert_eq!(png.headers["content-type"], "image/png");
    assert_eq!(
        qrgate_codes::image::scan(&png.bytes).unwrap()[0].payload,
        payload
    );
    let svg = app
        .call(
            "GET",
            &format!("/v1/static-codes/{id}.svg"),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert!(String::from_utf8(svg.bytes).unwrap().contains("<svg"));
    assert_eq!(
        app.call(
            "GET",
            &format!("/v1/static-codes/{id}.png"),
            Some(&mk2),
            None,
            &[]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let v = app
        .call(
            "POST",
            "/v1/codes/verify",
            None,
            Some(json!({ "payload": payload })),
            &[],
        )
        .await;
    assert_eq!(
        (
            v.json["genuine"].as_bool(),
            v.json["merchant_name"].as_str()
        ),
        (Some(true), Some("OLD STREET NOODLES"))
    );
    let forged = payload.replace("OLD STREET NOODLES", "OLD STREET NOODLEZ");
    let forged = format!(
        "{}{}",
        &forged[..forged.len() - 4],
        qrgate_codes::emv::crc_hex(&forged.as_bytes()[..forged.len() - 4])
    );
    let f = app
        .call(
            "POST",
            "/v1/codes/verify",
            None,
            Some(json!({ "payload": forged })),
            &[],
        )
        .await;
    assert_eq!(
        (f.status, err(&f)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            ("code_bad_signature", Some("BCP-CODE-SIGNED"))
        )
    );
    let p = app
        .call(
            "POST",
            "/v1/scans",
            Some(&ck),
            Some(json!({ "payload": payload, "amount": "20.00" })),
            &[("idempotency-key", "s1")],
        )
        .await;
    assert_eq!(
        (p.status, p.json["risk_level"].as_str()),
        (StatusCode::CREATED, Some("D"))
    );

    // Dynamic order: create, read, pay, pay again refused; close another.
    let o = app
        .call(
            "POST",
            "/v1/orders",
            Some(&mk),
            Some(json!({ "amount": "88.00", "reference": "TABLE-7", "out_trade_no": "A-1" })),
            &[],
        )
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{:?}", o.json);
    let oid = o.json["id"].as_str().unwrap();
    let op = o.json["payload"].as_str().unwrap();
    let paid = app
        .call(
            "POST",
            "/v1/scans",
            Some(&ck),
            Some(json!({ "payload": op })),
            &[("idempotency-key", "s2")],
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED);
    let pid = paid.json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.call("GET", &format!("/v1/orders/{oid}"), Some(&mk), None, &[])
            .await
            .json["status"],
        "paid"
    );
    let again = app
        .call(
            "POST",
            "/v1/scans",
            Some(&ck),
            Some(json!({ "payload": op })),
            &[("idempotency-key", "s3")],
        )
        .await;
    assert_eq!(
        (again.status, err(&again).0),
        (StatusCode::CONFLICT, "order_not_open")
    );
    let o2 = app
        .call(
            "POST",
            "/v1/orders",
            Some(&mk),
            Some(json!({ "amount": "1.00" })),
            &[],
        )
        .await;
    let closed = app
        .call(
            "POST",
            &format!("/v1/orders/{}/close", o2.json["id"].as_str().unwrap()),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert_eq!(closed.json["status"], "closed");

    // Refunds: partial, beyond capture refused, the rest; tenancy.
    let r1 = app
        .call(
            "POST",
            &format!("/v1/payments/{pid}/refunds"),
            Some(&mk),
            Some(json!({ "amount": "8.00", "out_refund_no": "R1" })),
            &[("idempotency-key", "r1")],
        )
        .await;
    assert_eq!(
        (r1.status, r1.json["destination"].as_str()),
        (StatusCode::CREATED, Some("original_funding_source"))
    );
    let big = app
        .call(
            "POST",
            &format!("/v1/payments/{pid}/refunds"),
            Some(&mk),
            Some(json!({ "amount": "80.01", "out_refund_no": "R2" })),
            &[("idempotency-key", "r2")],
        )
        .await;
    assert_eq!(
        (big.status, err(&big)),
        (
            StatusCode::PAYMENT_REQUIRED,
            ("limit_exceeded", Some("BCP-REFUND-CAP"))
        )
    );
    let rest = app
        .call(
            "POST",
            &format!("/v1/payments/{pid}/refunds"),
            Some(&mk),
            Some(json!({ "amount": "80.00", "out_refund_no": "R3" })),
            &[("idempotency-key", "r3")],
        )
        .await;
    assert_eq!(rest.status, StatusCode::CREATED);
    let other = app
        .call("GET", &format!("/v1/payments/{pid}"), Some(&mk2), None, &[])
        .await;
    assert_eq!(
        (other.status, err(&other).0),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let mine = app
        .call("GET", &format!("/v1/payments/{pid}"), Some(&ck), None, &[])
        .await;
    assert_eq!(mine.json["amount_refunded"], "88.00");
    let refunds = app
        .call(
            "GET",
            &format!("/v1/payments/{pid}/refunds"),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert_eq!(refunds.json["data"].as_array().unwrap().len(), 2);

    // Cancel a fresh payment; refund of a canceled payment refused.
    let code = app
        .call("POST", "/v1/payment-codes", Some(&ck), None, &[])
        .await;
    let c = app
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(json!({ "auth_code": code.json["numeric"], "amount": "5.00" })),
            &[("idempotency-key", "c1")],
        )
        .await;
    let cid = c.json["id"].as_str().unwrap();
    let cancel = app
        .call(
            "POST",
            &format!("/v1/payments/{cid}/cancel"),
            Some(&mk),
            None,
            &[("idempotency-key", "x1")],
        )
        .await;
    assert_eq!(
        (cancel.status, cancel.json["status"].as_str()),
        (StatusCode::OK, Some("canceled"))
    );
    let r = app
        .call(
            "POST",
            &format!("/v1/payments/{cid}/refunds"),
            Some(&mk),
            Some(json!({ "amount": "1.00", "out_refund_no": "Z" })),
            &[("idempotency-key", "x2")],
        )
        .await;
    assert_eq!(err(&r).0, "payment_not_refundable");

    // Pagination and the consumer's own list.
    let page = app
        .call("GET", "/v1/payments?limit=1", Some(&mk), None, &[])
        .await;
    assert_eq!(
        (
            page.json["data"].as_array().unwrap().len(),
            page.json["has_more"].as_bool()
        ),
        (1, Some(true))
    );
    let mine = app
        .call("GET", "/v1/me/payments", Some(&ck), None, &[])
        .await;
    assert_eq!(mine.json["data"].as_array().unwrap().len(), 3);
    assert_eq!(
        app.call("GET", "/v1/payments", Some(&mk2), None, &[])
            .await
            .json["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // The books.
    let l = app
        .call("GET", "/v1/ledger/check", Some(&app.admin), None, &[])
        .await;
    assert_eq!(l.json["balanced"], true, "{:?}", l.json);
    let a = app
        .call("GET", "/v1/audit/verify", Some(&app.admin), None, &[])
        .await;
    assert!(a.json.get("Intact").is_some(), "{:?}", a.json);
}

// ---------- real socket ----------
