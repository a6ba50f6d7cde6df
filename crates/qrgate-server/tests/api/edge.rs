//! The edge itself: public endpoints, authentication and roles, strict input, odd requests, per-address brakes.

use super::*;

#[tokio::test]
async fn public_endpoints() {
    let app = app_on(sqlite_store().await).await;
    assert_eq!(
        app.call("GET", "/healthz", None, None, &[]).await.status,
        StatusCode::OK
    );
    let r = app.call("GET", "/readyz", None, None, &[]).await;
    assert_eq!(
        (r.status, r.json["store"].as_str()),
        (StatusCode::OK, Some("sqlite"))
    );
    let doc = app.call("GET", "/openapi.json", None, None, &[]).await;
    assert_eq!(
        (doc.status, doc.json["openapi"].as_str()),
        (StatusCode::OK, Some("3.1.0"))
    );
    let k = app.call("GET", "/v1/keys", None, None, &[]).await;
    assert_eq!(k.json["keys"][0]["alg"], "Ed25519");
    let m = app.call("GET", "/metrics", None, None, &[]).await;
    let text = String::from_utf8(m.bytes).unwrap();
    assert!(
        text.contains(
            "qrgate_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 1"
        ),
        "{text}"
    );
    // The writer's counters are there, in Prometheus form (the store's own
    // tests check their values).
    for name in [
        "qrgate_sqlite_transactions_total",
        "qrgate_sqlite_writes_total",
        "qrgate_sqlite_savepoint_passes_total",
        "qrgate_sqlite_commit_seconds_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} counter\n{name} ")),
            "{text}"
        );
    }
    let nf = app.call("GET", "/v1/nope", None, None, &[]).await;
    assert_eq!(
        (nf.status, err(&nf).0),
        (StatusCode::NOT_FOUND, "route_not_found")
    );
    let r = app
        .call(
            "GET",
            "/healthz",
            None,
            None,
            &[("x-request-id", "trace-123")],
        )
        .await;
    assert_eq!(r.headers["x-request-id"], "trace-123");
}

#[tokio::test]
async fn authentication_roles_and_revocation() {
    let app = app_on(sqlite_store().await).await;
    let r = app
        .call("POST", "/v1/merchants", None, Some(json!({})), &[])
        .await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let r = app
        .call(
            "POST",
            "/v1/merchants",
            Some("qgk_admin_nope"),
            Some(json!({})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (_, mk, _, ck) = app.parties().await;
    let r = app
        .call(
            "POST",
            "/v1/merchants",
            Some(&mk),
            Some(json!({ "name": "X", "city": "Y", "mcc": "5812" })),
            &[],
        )
        .await;
    assert_eq!((r.status, err(&r).0), (StatusCode::FORBIDDEN, "forbidden"));
    let r = app
        .call("POST", "/v1/static-codes", Some(&ck), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call("GET", "/v1/ledger/check", Some(&mk), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Revoke the merchant key: it stops working at once.
    let keys = app
        .call(
            "POST",
            "/v1/api-keys",
            Some(&app.admin),
            Some(json!({ "role": "auditor" })),
            &[],
        )
        .await;
    let kid = keys.json["id"].as_str().unwrap();
    let ak = keys.json["secret"].as_str().unwrap();
    assert_eq!(
        app.call("GET", "/v1/audit/verify", Some(ak), None, &[])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.call(
            "POST",
            &format!("/v1/api-keys/{kid}/revoke"),
            Some(&app.admin),
            None,
            &[]
        )
        .await
        .status,
        StatusCode::OK
    );
    let r = app
        .call("GET", "/v1/audit/verify", Some(ak), None, &[])
        .await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::UNAUTHORIZED, "api_key_revoked")
    );
}

#[tokio::test]
async fn input_validation_is_strict() {
    let app = app_on(sqlite_store().await).await;
    let a = Some(app.admin.as_str());
    let r = app
        .call(
            "POST",
            "/v1/merchants",
            a,
            Some(json!({ "name": "A", "city": "B", "mcc": "58" })),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let r = app
        .call(
            "POST",
            "/v1/merchants",
            a,
            Some(json!({ "name": "A", "city": "B", "mcc": "5812", "colour": "red" })),
            &[],
        )
        .await;
    assert_eq!(err(&r).0, "unknown_field");
    let r = app
        .call(
            "POST",
            "/v1/merchants",
            a,
            Some(json!({ "name": "A", "city": "B", "mcc": "5812", "currency": "USD" })),
            &[],
        )
        .await;
    assert_eq!(err(&r).0, "currency_not_supported");
    let req = Request::builder()
        .method("POST")
        .uri("/v1/merchants")
        .header("authorization", format!("Bearer {}", app.admin))
        .header("content-type", "text/plain")
        .body(Body::from("name=A"))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::BAD_REQUEST, "unsupported_media_type")
    );
    let req = Request::builder()
        .method("POST")
        .uri("/v1/merchants")
        .header("authorization", format!("Bearer {}", app.admin))
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    assert_eq!(err(&app.send(req).await).0, "invalid_json");
    // A struct would read an array by position: every body must be an object.
    let (_, mk, _, _) = app.parties().await;
    let r = app
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(json!(["771234567890123452", "12.30", null, null])),
            &[("idempotency-key", "array-body")],
        )
        .await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    let big = json!({ "name": "x".repeat(70_000) });
    let r = app.call("POST", "/v1/merchants", a, Some(big), &[]).await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::BAD_REQUEST, "payload_too_large")
    );
    let r = app.call("DELETE", "/v1/merchants", a, None, &[]).await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );

    let (_, mk, _, _) = app.parties().await;
    let pay = |body: Value, key: &'static str| {
        let mk = mk.clone();
        let app = &app;
        async move {
            app.call(
                "POST",
                "/v1/payments",
                Some(&mk),
                Some(body),
                &[("idempotency-key", key)],
            )
            .await
        }
    };
    for (amount, code) in [
        (json!(12.30), "amount_not_string"),
        (json!("12.345"), "amount_too_many_decimals"),
        (json!("-1"), "amount_negative"),
        (json!("0"), "amount_zero"),
        (json!("1e3"), "amount_exponent"),
        (json!(" 1"), "amount_whitespace"),
        (json!("92233720368547758.08"), "amount_too_large"),
    ] {
        let r = pay(
            json!({ "auth_code": "771234567890123452", "amount": amount }),
            "k",
        )
        .await;
        assert_eq!(
            (r.status, err(&r).0),
            (StatusCode::BAD_REQUEST, code),
            "{amount}"
        );
    }
    let r = pay(
        json!({ "auth_code": "77", "amount": "1.00", "currency": "USD" }),
        "k",
    )
    .await;
    assert_eq!(err(&r).0, "currency_mismatch");
    let r = pay(
        json!({ "auth_code": "77", "amount": "1.00", "currency": "XYZ" }),
        "k",
    )
    .await;
    assert_eq!(err(&r).0, "unknown_currency");
    let r = pay(json!({ "amount": "1.00" }), "k").await;
    assert_eq!(err(&r).0, "missing_field");
    let r = app
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(json!({ "auth_code": "771234567890123452", "amount": "1.00" })),
            &[],
        )
        .await;
    assert_eq!(err(&r).0, "idempotency_key_required");
}

/// Inputs a careless or hostile client sends: every one gets a 4xx with a
/// stable code, and nothing moves.
#[tokio::test]
async fn edges_that_must_not_fall_over() {
    let app = app_on(sqlite_store().await).await;
    let a = Some(app.admin.as_str());
    let (_, mk, cid, ck) = app.parties().await;
    // A key given twice in one object is refused, not read as its last value.
    let req = Request::builder()
        .method("POST")
        .uri(format!("/v1/customers/{cid}/topups"))
        .header("authorization", format!("Bearer {}", app.admin))
        .header("content-type", "application/json")
        .header("idempotency-key", "dup-1")
        .body(Body::from(r#"{"amount":"1.00","amount":"900.00"}"#))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::BAD_REQUEST, "duplicate_key")
    );
    // An amount no balance can hold: a 422 with its own code, no 500.
    let topup = |key: &'static str, amount: &'static str| {
        let (app, cid) = (&app, cid.clone());
        async move {
            app.call(
                "POST",
                &format!("/v1/customers/{cid}/topups"),
                Some(&app.admin),
                Some(json!({ "amount": amount })),
                &[("idempotency-key", key)],
            )
            .await
        }
    };
    let r = topup("big-1", "92233720368547758.07").await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::UNPROCESSABLE_ENTITY, "balance_overflow")
    );
    let c = app
        .call("GET", &format!("/v1/customers/{cid}"), a, None, &[])
        .await;
    assert_eq!(c.json["balance"], "500.00");
    let check = app.call("GET", "/v1/ledger/check", a, None, &[]).await;
    assert_eq!(check.json["balanced"], true, "{:?}", check.json);
    // The merchant's own numbers: at most 64 visible ASCII characters.
    let code = app
        .call("POST", "/v1/payment-codes", Some(&ck), None, &[])
        .await;
    let numeric = code.json["numeric"].as_str().unwrap().to_owned();
    for n in ["x".repeat(65), "T 1".into(), String::new()] {
        let r = app
            .call(
                "POST",
                "/v1/payments",
                Some(&mk),
                Some(json!({ "auth_code": numeric, "amount": "1.00", "out_trade_no": n })),
                &[("idempotency-key", &format!("long-{}", n.len()))],
            )
            .await;
        assert_eq!(
            (r.status, err(&r).0),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{n:?}"
        );
    }
    // The code was not spent by the refusals above.
    let paid = app
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(json!({ "auth_code": numeric, "amount": "1.00", "out_trade_no": "x".repeat(64) })),
            &[("idempotency-key", "long-ok")],
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{:?}", paid.json);
    let id = paid.json["id"].as_str().unwrap();
    let r = app
        .call(
            "POST",
            &format!("/v1/payments/{id}/refunds"),
            Some(&mk),
            Some(json!({ "amount": "1.00", "out_refund_no": "R 1" })),
            &[("idempotency-key", "ref-space")],
        )
        .await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    // Metadata past its limits is refused whole, saying which limit.
    let many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    for (md, says) in [
        (Value::Object(many), "at most 20 keys"),
        (json!({ "a b": "x" }), "metadata key"),
        (json!({ "k": "v".repeat(201) }), "at most 200 characters"),
        (json!({ "k": 5 }), "string"),
    ] {
        let r = app
            .call(
                "POST",
                &format!("/v1/payments/{id}/refunds"),
                Some(&mk),
                Some(json!({ "amount": "1.00", "out_refund_no": "RM", "metadata": md })),
                &[("idempotency-key", &format!("md-{says}"))],
            )
            .await;
        assert_eq!(
            (r.status, err(&r).0),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{:?}",
            r.json
        );
        let message = r.json["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{says}: {message}");
    }
    let r = app
        .call(
            "POST",
            &format!("/v1/payments/{id}/refunds"),
            Some(&mk),
            Some(json!({ "amount": "1.00", "out_refund_no": "RM", "metadata": { "till": "3" } })),
            &[("idempotency-key", "md-ok")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    assert_eq!(r.json["metadata"], json!({ "till": "3" }));
    let found = app
        .call("GET", "/v1/refunds?out_refund_no=RM", Some(&mk), None, &[])
        .await;
    assert_eq!(
        found.json["data"][0]["id"], r.json["id"],
        "{:?}",
        found.json
    );
    let one = app
        .call(
            "GET",
            &format!("/v1/refunds/{}", r.json["id"].as_str().unwrap()),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert_eq!(one.json["out_refund_no"], "RM");
    // Methods nobody defined are counted as one label, not one each.
    for m in ["FOO", "BAR", "BAZ"] {
        let r = app.call(m, "/v1/payments", None, None, &[]).await;
        assert!(r.status.is_client_error(), "{m}: {}", r.status);
    }
    let text = String::from_utf8(app.call("GET", "/metrics", None, None, &[]).await.bytes).unwrap();
    assert!(!text.contains("FOO") && !text.contains("BAZ"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
    // Near the top of the range, the next top-up overflows: refused whole.
    let r = topup("big-2", "92233720368547000.00").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let r = topup("big-3", "1000.00").await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::UNPROCESSABLE_ENTITY, "balance_overflow")
    );
    let check = app.call("GET", "/v1/ledger/check", a, None, &[]).await;
    assert_eq!(check.json["balanced"], true, "{:?}", check.json);
}

/// QG-RATE-PUBLIC: failed authentications from one address draw on an
/// allowance; once spent, keyed requests from it get 429 with Retry-After
/// before any key is looked at.
#[tokio::test]
async fn failed_authentications_from_one_address_are_braked() {
    let app = app_on(sqlite_store().await).await;
    let n = 600;
    for i in 0..n {
        let r = app
            .call("GET", "/v1/me", Some(&format!("qg_wrong_{i}")), None, &[])
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let r = app
        .call("GET", "/v1/me", Some("qg_wrong_more"), None, &[])
        .await;
    assert_eq!(
        (r.status, err(&r)),
        (
            StatusCode::TOO_MANY_REQUESTS,
            ("rate_limited", Some("QG-RATE-PUBLIC"))
        )
    );
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // A valid key from the same address (a shared NAT, a proxy) is not held
    // back; the public read endpoints and health checks are not braked.
    let r = app
        .call("GET", "/v1/merchants/mch_x", Some(&app.admin), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.call("GET", "/healthz", None, None, &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.call("GET", "/v1/rules", None, None, &[]).await.status,
        StatusCode::OK
    );
    app.clock.advance_seconds(60);
    let r = app
        .call("GET", "/v1/me", Some("qg_wrong_after"), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_is_braked_on_its_own() {
    let config = Config {
        trusted_proxies: vec!["10.0.0.0/8".into()],
        ..Config::default()
    };
    let app = app_with(sqlite_store().await, config).await;
    let from = |peer: &str, forwarded: Option<&str>, i: usize| {
        let mut b = Request::builder()
            .method("GET")
            .uri("/v1/me")
            .header("authorization", format!("Bearer qg_wrong_{i}"));
        if let Some(f) = forwarded {
            b = b.header("x-forwarded-for", f);
        }
        let mut req = b.body(Body::empty()).unwrap();
        let addr: std::net::SocketAddr = format!("{peer}:4000").parse().unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(addr));
        req
    };
    // Client A, behind the proxy, spends its allowance (a forged entry on
    // the left of its header does not move its count elsewhere).
    for i in 0..600 {
        let r = app
            .send(from(
                "10.0.0.5",
                Some(&format!("6.6.6.{}, 198.51.100.7", i % 250)),
                i,
            ))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let r = app.send(from("10.0.0.5", Some("198.51.100.7"), 600)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // A byte that is not ASCII on the left of its header does not make it
    // count as the proxy instead.
    let mut req = from("10.0.0.5", None, 700);
    req.headers_mut().insert(
        "x-forwarded-for",
        axum::http::HeaderValue::from_bytes(b"\xff\xfe, 198.51.100.7").unwrap(),
    );
    assert_eq!(app.send(req).await.status, StatusCode::TOO_MANY_REQUESTS);
    // Client B, behind the same proxy, is not held back by A.
    let r = app.send(from("10.0.0.5", Some("198.51.100.8"), 601)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A peer that is no trusted proxy cannot claim to be someone else: it
    // is counted as itself, and A's name does not brake it.
    let r = app
        .send(from("203.0.113.1", Some("198.51.100.7"), 602))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A bad entry in the configuration is refused at start.
    let bad = Config {
        trusted_proxies: vec!["10.0.0.0/33".into()],
        ..Config::default()
    };
    let e = Gateway::start(
        sqlite_store().await,
        Arc::new(ManualClock::new(Timestamp::from_unix_millis(0))),
        bad,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(e.code, "config_trusted_proxies");
}
