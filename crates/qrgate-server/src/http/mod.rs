//! The HTTP API: JSON under `/v1`, health at `/healthz` and `/readyz`,
//! Prometheus metrics at `/metrics`.

mod admin;
mod audit;
mod body;
mod codes;
mod complaints;
mod credentials;
pub mod error;
pub mod extract;
mod me;
mod money;
pub mod openapi;
mod payments;
mod public;
mod routes;
pub mod webhook_sender;
mod webhooks;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use tracing::Instrument;

use qrgate_gateway::{AnyGateway, Error, Kind};

use error::{ApiError, ErrorBody};

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Request counts by route and status, for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
}

impl Metrics {
    fn record(&self, method: &str, route: &str, status: u16) {
        let mut m = match self.requests.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        *m.entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
    }

    /// The request counts, then the store's own figures (from the gateway).
    fn render(&self, store: &str) -> String {
        let m = match self.requests.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let mut out = String::from(
            "# HELP qrgate_http_requests_total HTTP requests by method, route and status.\n# TYPE qrgate_http_requests_total counter\n",
        );
        for ((method, route, status), n) in m.iter() {
            out.push_str(&format!("qrgate_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}\n"));
        }
        out.push_str(store);
        out
    }
}

#[derive(Clone)]
pub struct AppState {
    pub gw: Arc<AnyGateway>,
    pub metrics: Arc<Metrics>,
    rng: Arc<SystemRandom>,
}

pub(crate) use money::statement_download;
pub(crate) use routes::render;

impl AppState {
    /// The randomness the edge draws on (attempt numbers of the pages).
    pub(crate) fn rng(&self) -> &SystemRandom {
        &self.rng
    }

    pub fn new(gw: Arc<AnyGateway>) -> AppState {
        AppState {
            gw,
            metrics: Arc::new(Metrics::default()),
            rng: Arc::new(SystemRandom::new()),
        }
    }
}

/// The request id of the current request (from `X-Request-Id` or made here).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Give each request an id, run it inside a span carrying that id (so every
/// log line of the request names it), render errors with it, echo it back,
/// and count the response.
async fn request_context(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let mut b = [0_u8; 12];
            let _ = state.rng.fill(&mut b);
            format!("req_{}", URL_SAFE_NO_PAD.encode(b))
        });
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = metric_method(req.method()).to_owned();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let started = std::time::Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    if let Some(ErrorBody(e)) = res.extensions_mut().remove::<ErrorBody>() {
        let status = res.status();
        let headers = std::mem::take(res.headers_mut());
        res = (
            status,
            [("content-type", "application/json")],
            error::body(&e, &id),
        )
            .into_response();
        res.headers_mut().extend(headers);
        res.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        span.in_scope(|| {
            tracing::info!(code = e.code, rule = e.rule.as_deref(), "request refused")
        });
    }
    if res.status().as_u16() >= 400 && res.headers().contains_key("idempotent-replayed") {
        res = with_request_id(res, &id).await;
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    let status = res.status().as_u16();
    state.metrics.record(&method, &route, status);
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request done"
        )
    });
    res
}

/// The method as a metrics label: one of the methods HTTP defines, or
/// `other`, so a client inventing methods cannot grow the label set (and
/// the memory behind it) without bound. The route label is already bounded:
/// a route template or `unmatched`.
fn metric_method(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// A stored error answer, replayed: name this request in it.
async fn with_request_id(res: Response, id: &str) -> Response {
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY * 4).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let out = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(mut v) if v.get("error").is_some_and(|e| e.is_object()) => {
            v["error"]["request_id"] = serde_json::Value::String(id.to_owned());
            v.to_string().into_bytes()
        }
        _ => bytes.to_vec(),
    };
    parts.headers.remove("content-length");
    Response::from_parts(parts, Body::from(out))
}

async fn not_found() -> ApiError {
    ApiError(Error::new(
        Kind::NotFound,
        "route_not_found",
        "no such endpoint; see /openapi.json",
    ))
}

async fn method_not_allowed(req: Request<Body>, next: Next) -> Response {
    let res = next.run(req).await;
    if res.status() == StatusCode::METHOD_NOT_ALLOWED
        && res.extensions().get::<ErrorBody>().is_none()
    {
        let allow = res.headers().get(axum::http::header::ALLOW).cloned();
        let mut out = ApiError(Error::new(
            Kind::MethodNotAllowed,
            "method_not_allowed",
            "this endpoint does not take that method (see the Allow header)",
        ))
        .into_response();
        if let Some(a) = allow {
            out.headers_mut().insert(axum::http::header::ALLOW, a);
        }
        return out;
    }
    res
}

/// Longest a request may run before it is stopped.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(40);

/// Longest long poll (`GET /v1/payments/{id}?wait=`), in seconds. It ends
/// well inside [`REQUEST_DEADLINE`], so a poll that sees no change answers
/// with the payment, never with a timeout.
pub const MAX_WAIT_SECONDS: u64 = 30;
const _: () = assert!(MAX_WAIT_SECONDS + 5 < REQUEST_DEADLINE.as_secs());

/// The client's address: the peer of the connection (`serve` records it),
/// or, when the peer is one of the deployment's `trusted_proxies`, the
/// client those proxies name in `X-Forwarded-For`
/// ([`qrgate_core::net::forwarded_client`]); `unknown` when there is no
/// peer (in-process calls). Behind a proxy that is not listed every client
/// has the proxy's address.
fn client_address(req: &Request<Body>, trusted: &[qrgate_core::net::Cidr]) -> String {
    use std::net::IpAddr;
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    // Read lossily: a byte a client put on the left of the header must not
    // make the whole value, with the address the proxy appended on the
    // right, unreadable.
    // Only read at all when the deployment trusts some proxy.
    let forwarded: Vec<String> = if trusted.is_empty() {
        Vec::new()
    } else {
        req.headers()
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    let forwarded = forwarded.iter().map(String::as_str);
    match peer.map(|p| qrgate_core::net::forwarded_client(p, forwarded, trusted)) {
        // An IPv6 client has a whole /64 to pick addresses from: one count.
        Some(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = a.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Some(a) => a.to_string(),
        None => "unknown".to_owned(),
    }
}

/// QG-RATE-PUBLIC: per client address (an IPv6 /64 counts as one), public
/// endpoints that do work (code verification) draw on an allowance, and so
/// does every failed authentication. Once it is spent, code verification
/// and failed authentications are answered 429 until the minute is over; a
/// request with a valid key is never held back by what others sharing its
/// address (a carrier's NAT, a proxy) did.
async fn address_limits(State(state): State<AppState>, req: Request<Body>, next: Next) -> Response {
    let address = client_address(&req, state.gw.trusted_proxies());
    let public = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .is_some_and(|m| m.as_str() == "/v1/codes/verify");
    if public && let Err(e) = state.gw.rate_limit_public(&address, true) {
        return ApiError(e).into_response();
    }
    let res = next.run(req).await;
    if res.status() == StatusCode::UNAUTHORIZED
        && let Err(e) = state.gw.rate_limit_public(&address, true)
    {
        return ApiError(e).into_response();
    }
    res
}

/// Stop a request at [`REQUEST_DEADLINE`] with the API's error JSON (503,
/// `request_timeout`). A write stopped this way rolled back, or committed
/// and is replayed by a retry with the same Idempotency-Key.
async fn deadline(req: Request<Body>, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError(Error::new(
            Kind::Unavailable,
            "request_timeout",
            format!(
                "the request ran longer than {} s and was stopped; retry it (with the same Idempotency-Key if it moves money)",
                REQUEST_DEADLINE.as_secs()
            ),
        ))
        .into_response(),
    }
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let (routes, _) = routes::routes();
    routes
        .merge(crate::web::router(state.clone()))
        .fallback(not_found)
        .layer(middleware::from_fn(method_not_allowed))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(deadline))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            address_limits,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state)
}
