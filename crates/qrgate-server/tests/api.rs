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

#[path = "api/browser.rs"]
mod browser;
#[path = "api/complaints.rs"]
mod complaints;
#[path = "api/edge.rs"]
mod edge;
#[path = "api/keys.rs"]
mod keys;
#[path = "api/payments.rs"]
mod payments;
#[path = "api/refusals.rs"]
mod refusals;
#[path = "api/socket.rs"]
mod socket;
#[path = "api/stepup.rs"]
mod stepup;
#[path = "api/web.rs"]
mod web;
