//! The error paths of every endpoint.

use super::*;

#[track_caller]
fn code(r: &Res) -> String {
    err(r).0.to_owned()
}

/// The error paths of every endpoint not covered above.
#[tokio::test]
async fn every_endpoint_refuses_what_it_must() {
    let app = app_on(sqlite_store().await).await;
    let a = Some(app.admin.as_str());
    let (mid, mk, cid, ck) = app.parties().await;
    let (_, mk2, cid2, _) = app.parties().await;

    // Merchants and customers: own or admin only; others 404.
    assert_eq!(
        app.call("GET", &format!("/v1/merchants/{mid}"), Some(&mk), None, &[])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        code(
            &app.call(
                "GET",
                &format!("/v1/merchants/{mid}"),
                Some(&mk2),
                None,
                &[]
            )
            .await
        ),
        "not_found"
    );
    assert_eq!(
        code(
            &app.call("GET", &format!("/v1/merchants/{mid}"), Some(&ck), None, &[])
                .await
        ),
        "not_found"
    );
    assert_eq!(
        app.call("GET", &format!("/v1/customers/{cid}"), Some(&ck), None, &[])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        code(
            &app.call(
                "GET",
                &format!("/v1/customers/{cid2}"),
                Some(&ck),
                None,
                &[]
            )
            .await
        ),
        "not_found"
    );
    assert_eq!(
        code(
            &app.call("GET", &format!("/v1/customers/{cid}"), Some(&mk), None, &[])
                .await
        ),
        "not_found"
    );
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/customers",
                a,
                Some(json!({ "account_class": "IV" })),
                &[]
            )
            .await
        ),
        "invalid_request"
    );
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/customers",
                a,
                Some(json!({ "level_a_daily_cap": "abc" })),
                &[]
            )
            .await
        ),
        "amount_syntax"
    );
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/customers/cus_nope/topups",
                a,
                Some(json!({ "amount": "1.00" })),
                &[("idempotency-key", "t")]
            )
            .await
        ),
        "not_found"
    );

    // API keys.
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/api-keys",
                a,
                Some(json!({ "role": "root" })),
                &[]
            )
            .await
        ),
        "invalid_request"
    );
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/api-keys",
                a,
                Some(json!({ "role": "merchant" })),
                &[]
            )
            .await
        ),
        "invalid_request"
    );
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/api-keys",
                a,
                Some(json!({ "role": "admin", "subject_id": mid })),
                &[]
            )
            .await
        ),
        "invalid_request"
    );
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/api-keys",
                a,
                Some(json!({ "role": "merchant", "subject_id": "mch_aaaaaaaaaaaaaaaaaaaaaaaaaa" })),
                &[]
            )
            .await
        ),
        "not_found"
    );
    assert_eq!(
        code(
            &app.call("POST", "/v1/api-keys/key_nope/revoke", a, None, &[])
                .await
        ),
        "not_found"
    );
    assert_eq!(
        code(
            &app.call("POST", "/v1/admin/keys/rotate", Some(&mk), None, &[])
                .await
        ),
        "forbidden"
    );
    let rotated = app
        .call("POST", "/v1/admin/keys/rotate", a, None, &[])
        .await;
    assert_eq!(rotated.json["keys"]["keys"].as_array().unwrap().len(), 2);

    // Devices, PIN, /me.
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/devices",
                Some(&ck),
                Some(json!({ "public_key": "short" })),
                &[]
            )
            .await
        ),
        "invalid_public_key"
    );
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/devices",
                Some(&mk),
                Some(json!({ "public_key": "x" })),
                &[]
            )
            .await
        ),
        "forbidden"
    );
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/me/pin",
                Some(&ck),
                Some(json!({ "pin": "111111" })),
                &[]
            )
            .await
        ),
        "weak_pin"
    );
    assert_eq!(
        code(&app.call("GET", "/v1/me", Some(&mk), None, &[]).await),
        "forbidden"
    );
    assert_eq!(
        code(
            &app.call("POST", "/v1/payment-codes", Some(&mk), None, &[])
                .await
        ),
        "forbidden"
    );

    // Static codes.
    let sc = app
        .call("POST", "/v1/static-codes", Some(&mk), None, &[])
        .await;
    let sid = sc.json["id"].as_str().unwrap();
    assert_eq!(
        code(
            &app.call(
                "GET",
                &format!("/v1/static-codes/{sid}.gif"),
                Some(&mk),
                None,
                &[]
            )
            .await
        ),
        "unsupported_format"
    );
    assert_eq!(
        code(
            &app.call("GET", "/v1/static-codes/sqr_nope", Some(&mk), None, &[])
                .await
        ),
        "not_found"
    );

    // Orders.
    let r = app
        .call(
            "POST",
            "/v1/orders",
            Some(&mk),
            Some(json!({ "amount": "1.00", "expires_in": 10 })),
            &[],
        )
        .await;
    assert_eq!(err(&r), ("invalid_request", Some("QG-ORDER-TTL")));
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/orders",
                Some(&mk),
                Some(json!({ "amount": "1.00", "reference": "x".repeat(26) })),
                &[]
            )
            .await
        ),
        "invalid_request"
    );
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/orders",
                Some(&mk),
                Some(json!({ "reference": "A" })),
                &[]
            )
            .await
        ),
        "missing_field"
    );
    let o = app
        .call(
            "POST",
            "/v1/orders",
            Some(&mk),
            Some(json!({ "amount": "2.00" })),
            &[],
        )
        .await;
    let oid = o.json["id"].as_str().unwrap();
    assert_eq!(
        code(
            &app.call("GET", &format!("/v1/orders/{oid}"), Some(&mk2), None, &[])
                .await
        ),
        "not_found"
    );
    app.call(
        "POST",
        "/v1/scans",
        Some(&ck),
        Some(json!({ "payload": o.json["payload"] })),
        &[("idempotency-key", "o1")],
    )
    .await;
    assert_eq!(
        code(
            &app.call(
                "POST",
                &format!("/v1/orders/{oid}/close"),
                Some(&mk),
                None,
                &[]
            )
            .await
        ),
        "order_not_open"
    );

    // Scans and code verification.
    let r = app
        .call(
            "POST",
            "/v1/scans",
            Some(&ck),
            Some(json!({ "payload": sc.json["payload"] })),
            &[("idempotency-key", "s1")],
        )
        .await;
    assert_eq!(code(&r), "amount_required");
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/scans",
                Some(&ck),
                Some(json!({ "payload": "hello" })),
                &[("idempotency-key", "s2")]
            )
            .await
        ),
        "code_malformed"
    );
    let pix = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D";
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/codes/verify",
                None,
                Some(json!({ "payload": pix })),
                &[]
            )
            .await
        ),
        "code_not_qrgate"
    );
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/codes/verify",
                None,
                Some(json!({ "payload": "000201" })),
                &[]
            )
            .await
        ),
        "code_malformed"
    );

    // Payments: lists, cancel, confirm.
    assert_eq!(
        code(
            &app.call("GET", "/v1/payments?limit=0", Some(&mk), None, &[])
                .await
        ),
        "invalid_request"
    );
    assert_eq!(
        code(
            &app.call(
                "GET",
                "/v1/payments?starting_after=pay_nope",
                Some(&mk),
                None,
                &[]
            )
            .await
        ),
        "not_found"
    );
    assert_eq!(
        code(
            &app.call("GET", "/v1/payments?colour=red", Some(&mk), None, &[])
                .await
        ),
        "invalid_request"
    );
    assert_eq!(
        code(
            &app.call("GET", "/v1/payments/pay_nope?wait=31", Some(&mk), None, &[])
                .await
        ),
        "not_found"
    );
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/payments/pay_nope/cancel",
                Some(&mk),
                None,
                &[("idempotency-key", "c")]
            )
            .await
        ),
        "not_found"
    );
    assert_eq!(
        code(
            &app.call("POST", "/v1/payments/pay_nope/cancel", Some(&mk), None, &[])
                .await
        ),
        "idempotency_key_required"
    );
    let paid = app
        .call("GET", "/v1/me/payments", Some(&ck), None, &[])
        .await;
    let pid = paid.json["data"][0]["id"].as_str().unwrap();
    let r = app
        .call(
            "POST",
            &format!("/v1/payments/{pid}/confirm"),
            Some(&ck),
            Some(json!({ "pin": "493817" })),
            &[("idempotency-key", "cf")],
        )
        .await;
    assert_eq!(code(&r), "payment_state_conflict");
    assert_eq!(
        code(
            &app.call(
                "GET",
                &format!("/v1/payments/{pid}/refunds"),
                Some(&mk2),
                None,
                &[]
            )
            .await
        ),
        "not_found"
    );

    // Webhooks.
    let r = app
        .call(
            "POST",
            "/v1/webhook-endpoints",
            Some(&mk),
            Some(json!({ "url": "http://shop.example/h" })),
            &[],
        )
        .await;
    assert_eq!(code(&r), "invalid_url");
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/webhook-endpoints",
                Some(&ck),
                Some(json!({ "url": "https://x.example/h" })),
                &[]
            )
            .await
        ),
        "forbidden"
    );
    assert_eq!(
        code(
            &app.call(
                "GET",
                "/v1/webhook-endpoints/we_nope/deliveries",
                Some(&mk),
                None,
                &[]
            )
            .await
        ),
        "not_found"
    );
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/webhook-deliveries/abc/retry",
                Some(&mk),
                None,
                &[]
            )
            .await
        ),
        "not_found"
    );
    assert_eq!(
        code(
            &app.call(
                "POST",
                "/v1/webhook-deliveries/12345/retry",
                Some(&mk),
                None,
                &[]
            )
            .await
        ),
        "not_found"
    );

    // Auditor views.
    assert_eq!(
        code(&app.call("GET", "/v1/audit/log?limit=0", a, None, &[]).await),
        "invalid_request"
    );
    let log = app.call("GET", "/v1/audit/log?limit=2", a, None, &[]).await;
    assert_eq!(log.json["data"].as_array().unwrap().len(), 2);
}
