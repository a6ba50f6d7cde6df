//! Step-up over HTTP: a payment over its cap waits for the payer's confirmation.

use super::*;

#[tokio::test]
async fn step_up_over_http() {
    let app = app_on(sqlite_store().await).await;
    let (_, mk, cid, ck) = app.parties().await;
    let r = app
        .call(
            "POST",
            "/v1/me/pin",
            Some(&ck),
            Some(json!({ "pin": "493817" })),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .call(
            "POST",
            "/v1/me/pin",
            Some(&ck),
            Some(json!({ "pin": "1234" })),
            &[],
        )
        .await;
    assert_eq!(err(&r).0, "invalid_pin");
    // Fund enough for the test and fill the level-C day.
    app.call(
        "POST",
        &format!("/v1/customers/{cid}/topups"),
        Some(&app.admin),
        Some(json!({ "amount": "2000.00" })),
        &[("idempotency-key", "top-2")],
    )
    .await;
    let code = app
        .call("POST", "/v1/payment-codes", Some(&ck), None, &[])
        .await;
    let r = app
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(json!({ "auth_code": code.json["numeric"], "amount": "1000.00" })),
            &[("idempotency-key", "p1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // A device to sign the confirmation.
    let rng = ring::rand::SystemRandom::new();
    let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let kp = ring::signature::Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    use base64::Engine;
    use ring::signature::KeyPair;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // With a PIN set, a device is enrolled with it: the API key alone is
    // not enough.
    let dev = app
        .call(
            "POST",
            "/v1/devices",
            Some(&ck),
            Some(json!({ "public_key": b64.encode(kp.public_key().as_ref()) })),
            &[],
        )
        .await;
    assert_eq!(
        (dev.status, err(&dev).0),
        (StatusCode::FORBIDDEN, "pin_required")
    );
    let dev = app
        .call(
            "POST",
            "/v1/devices",
            Some(&ck),
            Some(json!({ "public_key": b64.encode(kp.public_key().as_ref()), "pin": "493817" })),
            &[],
        )
        .await;
    assert_eq!(dev.status, StatusCode::CREATED);
    // A PIN is changed only with the current one.
    let r = app
        .call(
            "POST",
            "/v1/me/pin",
            Some(&ck),
            Some(json!({ "pin": "271828" })),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::CONFLICT, "pin_already_set")
    );
    let r = app.call("POST", "/v1/me/otp", Some(&ck), None, &[]).await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::FORBIDDEN, "pin_required")
    );
    let code = app
        .call("POST", "/v1/payment-codes", Some(&ck), None, &[])
        .await;
    let p = app
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(json!({ "auth_code": code.json["numeric"], "amount": "50.00" })),
            &[("idempotency-key", "p2")],
        )
        .await;
    assert_eq!(
        (p.status, p.json["status"].as_str()),
        (StatusCode::CREATED, Some("requires_action"))
    );
    let id = p.json["id"].as_str().unwrap();
    let msg = qrgate_gateway::stepup::confirmation_message(
        id,
        "50.00",
        "CNY",
        p.json["merchant_id"].as_str().unwrap(),
    );
    let body = json!({ "pin": "493817", "device_id": dev.json["id"], "device_signature": b64.encode(kp.sign(&msg).as_ref()) });
    let r = app
        .call(
            "POST",
            &format!("/v1/payments/{id}/confirm"),
            Some(&ck),
            Some(body.clone()),
            &[],
        )
        .await;
    assert_eq!(err(&r).0, "idempotency_key_required");
    let r = app
        .call(
            "POST",
            &format!("/v1/payments/{id}/confirm"),
            Some(&ck),
            Some(body.clone()),
            &[("idempotency-key", "c1")],
        )
        .await;
    assert_eq!(
        (
            r.status,
            r.json["status"].as_str(),
            r.json["risk_level"].as_str()
        ),
        (StatusCode::OK, Some("succeeded"), Some("B"))
    );
    let again = app
        .call(
            "POST",
            &format!("/v1/payments/{id}/confirm"),
            Some(&ck),
            Some(body),
            &[("idempotency-key", "c1")],
        )
        .await;
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let polled = app
        .call(
            "GET",
            &format!("/v1/payments/{id}?wait=1"),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert_eq!(polled.json["status"], "succeeded");
}
