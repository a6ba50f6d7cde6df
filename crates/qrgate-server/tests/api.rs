//! The HTTP API: in-process (tower `oneshot`) for endpoints and their error
//! paths, and over a real socket end to end on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use qrgate_core::{Clock, ManualClock, Timestamp};
use qrgate_gateway::{Config, Gateway, Role};
use qrgate_server::http::{AppState, router};
use qrgate_store::{AnyStore, PgStore};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Nanoseconds of the wall clock, so names stay unique across runs whose
/// processes happen to get the same id (a leftover schema or file would be
/// reused, keys and all).
fn run_nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

struct App {
    router: axum::Router,
    clock: Arc<ManualClock>,
    admin: String,
}

async fn sqlite_store() -> AnyStore {
    let dir = std::env::temp_dir().join(format!(
        "qrgate_api_{}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst),
        run_nanos()
    ));
    // A directory left by an earlier run (whose process had the same id) is stale.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    AnyStore::open(
        &format!("sqlite://{}", dir.join("api.db").display()),
        Timestamp::from_unix_millis(0),
    )
    .await
    .unwrap()
    .0
}

async fn app_on(store: AnyStore) -> App {
    app_with(store, Config::default()).await
}

async fn app_with(store: AnyStore, config: Config) -> App {
    let clock = Arc::new(ManualClock::new(
        Timestamp::parse_rfc3339("2026-11-25T02:00:00Z").unwrap(),
    ));
    let (gw, _) = Gateway::start(store, clock.clone(), config).await.unwrap();
    let admin = gw
        .create_api_key(None, Role::Admin, None)
        .await
        .unwrap()
        .secret;
    App {
        router: router(AppState::new(Arc::new(gw))),
        clock,
        admin,
    }
}

struct Res {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: Value,
    bytes: Vec<u8>,
}

impl App {
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Res {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        let req = b
            .body(body.map_or_else(Body::empty, |v| Body::from(v.to_string())))
            .unwrap();
        self.send(req).await
    }

    async fn send(&self, req: Request<Body>) -> Res {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Res {
            status,
            headers,
            json,
            bytes,
        }
    }

    /// Admin creates a merchant and a customer with a funded wallet; keys for each.
    async fn parties(&self) -> (String, String, String, String) {
        let m = self.call("POST", "/v1/merchants", Some(&self.admin), Some(json!({ "name": "OLD STREET NOODLES", "city": "SHANGHAI", "mcc": "5812", "name_local": "老街面馆" })), &[]).await;
        assert_eq!(m.status, StatusCode::CREATED, "{:?}", m.json);
        let mid = m.json["id"].as_str().unwrap().to_owned();
        let mk = self
            .call(
                "POST",
                "/v1/api-keys",
                Some(&self.admin),
                Some(json!({ "role": "merchant", "subject_id": mid })),
                &[],
            )
            .await;
        let c = self
            .call(
                "POST",
                "/v1/customers",
                Some(&self.admin),
                Some(json!({})),
                &[],
            )
            .await;
        let cid = c.json["id"].as_str().unwrap().to_owned();
        let t = self
            .call(
                "POST",
                &format!("/v1/customers/{cid}/topups"),
                Some(&self.admin),
                Some(json!({ "amount": "500.00" })),
                &[("idempotency-key", &format!("top-{cid}"))],
            )
            .await;
        assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.json);
        let ck = self
            .call(
                "POST",
                "/v1/api-keys",
                Some(&self.admin),
                Some(json!({ "role": "consumer", "subject_id": cid })),
                &[],
            )
            .await;
        (
            mid,
            mk.json["secret"].as_str().unwrap().to_owned(),
            cid,
            ck.json["secret"].as_str().unwrap().to_owned(),
        )
    }
}

#[track_caller]
fn err(r: &Res) -> (&str, Option<&str>) {
    assert!(
        r.json["error"]["request_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "error without request id: {:?}",
        r.json
    );
    (
        r.json["error"]["code"].as_str().unwrap_or_default(),
        r.json["error"]["rule"].as_str(),
    )
}

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

async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
    idem: Option<&str>,
) -> (u16, String, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    if let Some(i) = idem {
        req.push_str(&format!("Idempotency-Key: {i}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// A webhook receiver on loopback: records (Qrgate-Signature, body) of each POST, answers 200.
async fn receiver() -> (
    std::net::SocketAddr,
    Arc<std::sync::Mutex<Vec<(String, String)>>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0_u8; 4096];
                loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let header = |name: &str| {
                        head.lines().find_map(|l| {
                            l.split_once(':')
                                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v.trim().to_owned())
                        })
                    };
                    let len: usize = header("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if body.len() < len {
                        continue;
                    }
                    sink.lock().unwrap().push((
                        header("qrgate-signature").unwrap_or_default(),
                        body[..len].to_owned(),
                    ));
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    return;
                }
            });
        }
    });
    (addr, got)
}

async fn end_to_end(store: AnyStore) {
    let clock: Arc<dyn Clock> = Arc::new(qrgate_core::SystemClock);
    let (gw, _) = Gateway::start(
        store,
        clock,
        Config {
            // The test's receiver listens on loopback over plain http.
            allow_local_http_webhooks: true,
            ..Config::default()
        },
    )
    .await
    .unwrap();
    let admin = gw
        .create_api_key(None, Role::Admin, None)
        .await
        .unwrap()
        .secret;
    let gw = Arc::new(gw);
    let app = router(AppState::new(gw.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let a = Some(admin.as_str());

    let (s, _, m) = http(
        addr,
        "POST",
        "/v1/merchants",
        a,
        Some(json!({ "name": "E2E SHOP", "city": "HANGZHOU", "mcc": "5411" })),
        None,
    )
    .await;
    assert_eq!(s, 201, "{m}");
    let (_, _, mk) = http(
        addr,
        "POST",
        "/v1/api-keys",
        a,
        Some(json!({ "role": "merchant", "subject_id": m["id"] })),
        None,
    )
    .await;
    let mk = mk["secret"].as_str().unwrap().to_owned();
    let (hook_addr, received) = receiver().await;
    let (s, _, ep) = http(
        addr,
        "POST",
        "/v1/webhook-endpoints",
        Some(&mk),
        Some(json!({ "url": format!("http://{hook_addr}/hooks") })),
        None,
    )
    .await;
    assert_eq!(s, 201, "{ep}");
    let secret = ep["secret"].as_str().unwrap().to_owned();
    let (_, _, c) = http(addr, "POST", "/v1/customers", a, Some(json!({})), None).await;
    let cid = c["id"].as_str().unwrap().to_owned();
    let (s, _, _) = http(
        addr,
        "POST",
        &format!("/v1/customers/{cid}/topups"),
        a,
        Some(json!({ "amount": "300.00" })),
        Some("t1"),
    )
    .await;
    assert_eq!(s, 201);
    let (_, _, ck) = http(
        addr,
        "POST",
        "/v1/api-keys",
        a,
        Some(json!({ "role": "consumer", "subject_id": cid })),
        None,
    )
    .await;
    let ck = ck["secret"].as_str().unwrap().to_owned();

    // Static code: scan and pay.
    let (_, _, sc) = http(addr, "POST", "/v1/static-codes", Some(&mk), None, None).await;
    let (s, _, p) = http(
        addr,
        "POST",
        "/v1/scans",
        Some(&ck),
        Some(json!({ "payload": sc["payload"], "amount": "10.00" })),
        Some("e1"),
    )
    .await;
    assert_eq!((s, p["mode"].as_str()), (201, Some("mpm_static")));
    // Order: pay.
    let (_, _, o) = http(
        addr,
        "POST",
        "/v1/orders",
        Some(&mk),
        Some(json!({ "amount": "50.00" })),
        None,
    )
    .await;
    let (s, _, po) = http(
        addr,
        "POST",
        "/v1/scans",
        Some(&ck),
        Some(json!({ "payload": o["payload"] })),
        Some("e2"),
    )
    .await;
    assert_eq!(s, 201);
    // CPM: the consumer shows a code, the merchant charges it; replay.
    let (_, _, code) = http(addr, "POST", "/v1/payment-codes", Some(&ck), None, None).await;
    let charge = json!({ "auth_code": code["qr"], "amount": "20.00" });
    let (s, _, pc) = http(
        addr,
        "POST",
        "/v1/payments",
        Some(&mk),
        Some(charge.clone()),
        Some("e3"),
    )
    .await;
    assert_eq!(s, 201);
    let (s, head, pc2) = http(
        addr,
        "POST",
        "/v1/payments",
        Some(&mk),
        Some(charge),
        Some("e3"),
    )
    .await;
    assert_eq!((s, pc2["id"].clone()), (201, pc["id"].clone()));
    assert!(head.contains("idempotent-replayed: true"));
    // Partial refund, full refund, cancel.
    let poid = po["id"].as_str().unwrap();
    let (s, _, _) = http(
        addr,
        "POST",
        &format!("/v1/payments/{poid}/refunds"),
        Some(&mk),
        Some(json!({ "amount": "20.00", "out_refund_no": "R1" })),
        Some("e4"),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _, _) = http(
        addr,
        "POST",
        &format!("/v1/payments/{poid}/refunds"),
        Some(&mk),
        Some(json!({ "amount": "30.00", "out_refund_no": "R2" })),
        Some("e5"),
    )
    .await;
    assert_eq!(s, 201);
    let pcid = pc["id"].as_str().unwrap();
    let (s, _, cx) = http(
        addr,
        "POST",
        &format!("/v1/payments/{pcid}/cancel"),
        Some(&mk),
        None,
        Some("e6"),
    )
    .await;
    assert_eq!((s, cx["status"].as_str()), (200, Some("canceled")));
    // Tenancy: another merchant cannot see it.
    let (_, _, m2) = http(
        addr,
        "POST",
        "/v1/merchants",
        a,
        Some(json!({ "name": "OTHER", "city": "HANGZHOU", "mcc": "5411" })),
        None,
    )
    .await;
    let (_, _, mk2) = http(
        addr,
        "POST",
        "/v1/api-keys",
        a,
        Some(json!({ "role": "merchant", "subject_id": m2["id"] })),
        None,
    )
    .await;
    let (s, _, _) = http(
        addr,
        "GET",
        &format!("/v1/payments/{poid}"),
        mk2["secret"].as_str(),
        None,
        None,
    )
    .await;
    assert_eq!(s, 404);
    // Balance: 300 - 10 - 50 + 50 - 20 + 20 = 290.
    let (_, _, me) = http(addr, "GET", "/v1/me", Some(&ck), None, None).await;
    assert_eq!(me["balance"], "290.00");
    let (_, _, l) = http(addr, "GET", "/v1/ledger/check", a, None, None).await;
    assert_eq!(l["balanced"], true);

    // Webhooks reach the local receiver, signed with the endpoint's secret.
    let sender = qrgate_server::http::webhook_sender::HttpSender::new(qrgate_core::net::Reach {
        internal: false,
        local_http: true,
    })
    .unwrap();
    let r = gw.dispatch_webhooks(&sender).await.unwrap();
    assert!(r.delivered >= 5, "{r:?}");
    let got = received.lock().unwrap().clone();
    let types: Vec<String> = got
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<Value>(b).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for t in ["payment.succeeded", "refund.succeeded", "payment.canceled"] {
        assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (sig, body) in &got {
        assert!(
            qrgate_gateway::webhooks::verify_signature(&secret, sig, body, now, 300),
            "bad signature {sig}"
        );
    }
    let (_, _, ds) = http(
        addr,
        "GET",
        &format!(
            "/v1/webhook-endpoints/{}/deliveries",
            ep["id"].as_str().unwrap()
        ),
        Some(&mk),
        None,
        None,
    )
    .await;
    assert!(
        ds["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "delivered"),
        "{ds}"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_over_a_socket_on_sqlite() {
    end_to_end(sqlite_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_over_a_socket_on_postgres() {
    let Ok(url) = std::env::var("QRGATE_TEST_POSTGRES_URL") else {
        eprintln!("SKIP end_to_end_over_a_socket_on_postgres: QRGATE_TEST_POSTGRES_URL is not set");
        return;
    };
    let schema = format!(
        "qrgate_api_{}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst),
        run_nanos()
    );
    let store = AnyStore::Postgres(
        PgStore::open(&url, Some(&schema), 8, Timestamp::from_unix_millis(0))
            .await
            .unwrap()
            .0,
    );
    end_to_end(store).await;
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut c)
        .await
        .unwrap();
}

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

#[tokio::test]
async fn retiring_a_key_that_signed_live_codes_needs_the_operator_to_say_so() {
    let app = app_on(sqlite_store().await).await;
    let a = Some(app.admin.as_str());
    let (_, mk, _, ck) = app.parties().await;
    let sc = app
        .call("POST", "/v1/static-codes", Some(&mk), None, &[])
        .await;
    let sid = sc.json["id"].as_str().unwrap().to_owned();
    let signer = app.call("GET", "/v1/keys", None, None, &[]).await.json["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated = app
        .call("POST", "/v1/admin/keys/rotate", a, None, &[])
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.json);
    let retire = format!("/v1/admin/keys/{signer}/retire");
    let r = app.call("POST", &retire, a, None, &[]).await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::CONFLICT, "key_recently_rotated")
    );
    app.clock.advance_seconds(10);
    let r = app.call("POST", &retire, a, None, &[]).await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::CONFLICT, "key_signs_live_codes")
    );
    let r = app
        .call(
            "POST",
            &format!("{retire}?invalidate_codes=maybe"),
            a,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.json);
    let r = app
        .call(
            "POST",
            &format!("{retire}?invalidate_codes=true"),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert_eq!(err(&r).0, "forbidden");
    let r = app
        .call(
            "POST",
            &format!("{retire}?invalidate_codes=true"),
            a,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["invalidated"]["static_codes"][0]["id"], sid.as_str());
    assert_eq!(r.json["invalidated"]["open_orders"], 0);
    // The code on the counter no longer pays.
    let payload = sc.json["payload"].as_str().unwrap();
    let scan = app
        .call(
            "POST",
            "/v1/scans",
            Some(&ck),
            Some(json!({ "payload": payload, "amount": "1.00" })),
            &[("idempotency-key", "scan-after-retire")],
        )
        .await;
    assert_eq!(
        scan.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        scan.json
    );
}
