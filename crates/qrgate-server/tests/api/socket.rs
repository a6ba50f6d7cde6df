//! End to end over a real socket, on SQLite and on PostgreSQL, with a webhook receiver.

use super::*;

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
