//! Handlers: parse and authorise, call the gateway, answer JSON.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use qrgate_codes::image::{RenderOptions, render_png, render_svg};
use qrgate_gateway::parties::{NewCustomer, NewMerchant};
use qrgate_gateway::payments::ListQuery;
use qrgate_gateway::{Error, Kind, Reply, Role};

use super::AppState;
use super::error::{ApiError, bad};
use super::extract::{Auth, Meta, PaymentAuth, StrictJson, StrictQuery, once};
use super::openapi::{
    ChargeRequest, Conventions, ErrorBody, IdemHeader, KeysDoc, OrderRequest, RefundList,
    RefundRequest, ScanRequest, StdErrors, TopupRequest,
};

pub(super) type ApiResult = Result<Response, ApiError>;

/// Every route. None deletes a record: payments, refunds, the ledger and
/// the audit log are kept (rule BCP-RETENTION; the store's append-only
/// triggers refuse deletes underneath).
pub fn routes() -> Router<AppState> {
    super::credentials::routes()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/keys", get(keys))
        .route("/v1/rules", get(rules))
        .route("/v1/codes/verify", post(verify_code))
        .route("/v1/merchants", post(create_merchant))
        .route("/v1/merchants/{id}", get(get_merchant))
        .route("/v1/customers", post(create_customer))
        .route("/v1/customers/{id}", get(get_customer))
        .route("/v1/customers/{id}/topups", post(topup))
        .route("/v1/api-keys", post(create_api_key))
        .route("/v1/api-keys/{id}/revoke", post(revoke_api_key))
        .route("/v1/static-codes", post(create_static_code))
        .route("/v1/static-codes/{file}", get(get_static_code))
        .route("/v1/orders", post(create_order))
        .route("/v1/orders/{id}", get(get_order))
        .route("/v1/orders/{id}/close", post(close_order))
        .route("/v1/payments", post(charge).get(list_payments))
        .route("/v1/payments/{id}", get(get_payment))
        .route("/v1/payments/{id}/refunds", post(refund).get(list_refunds))
        .route("/v1/payments/{id}/cancel", post(cancel))
        .route("/v1/payments/{id}/confirm", post(confirm))
        .route("/v1/me/cards", post(link_card).get(list_cards))
        .route("/v1/customers/{id}/certificates", post(enroll_certificate))
        .route("/v1/blocks", post(create_block))
        .route("/v1/blocks/{id}/lift", post(lift_block))
        .route("/v1/payment-codes", post(issue_payment_code))
        .route("/v1/scans", post(scan))
        .route("/v1/me", get(me))
        .route("/v1/me/payments", get(my_payments))
        .route("/v1/audit/verify", get(audit_verify))
        .route("/v1/audit/log", get(audit_log))
        .route("/v1/ledger/check", get(ledger_check))
        .route("/v1/admin/keys/rotate", post(rotate_keys))
        .route("/v1/admin/keys/{kid}/retire", post(retire_key))
        .route(
            "/v1/webhook-endpoints",
            post(create_webhook_endpoint).get(list_webhook_endpoints),
        )
        .route(
            "/v1/webhook-endpoints/{id}/deliveries",
            get(list_deliveries),
        )
        .route(
            "/v1/webhook-endpoints/{id}",
            axum::routing::delete(delete_webhook_endpoint),
        )
        .route(
            "/v1/webhook-endpoints/{id}/{action}",
            post(change_webhook_endpoint),
        )
        .route("/v1/webhook-deliveries/{id}/retry", post(redeliver))
}

fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, [("content-type", "application/json")], body).into_response()
}

pub(super) fn ok<T: serde::Serialize>(status: StatusCode, v: &T) -> ApiResult {
    let body = serde_json::to_string(v).map_err(|e| ApiError(Error::internal(e)))?;
    Ok(json_response(status.as_u16(), body))
}

/// A money-moving reply: its stored status and body, marked when replayed.
pub(super) fn reply(r: Reply) -> Response {
    let mut res = json_response(r.status, r.body);
    if r.replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    res
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is up")))]
async fn healthz() -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "The database answers"), (status = 503, description = "Not ready", body = ErrorBody)))]
async fn readyz(State(s): State<AppState>) -> ApiResult {
    let store = s.gw.ready().await?;
    ok(
        StatusCode::OK,
        &json!({ "status": "ready", "store": store }),
    )
}

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(s): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render(s.gw.store_kind(), &s.gw.write_stats()),
    )
        .into_response()
}

#[utoipa::path(get, path = "/v1/keys", tag = "public", responses((status = 200, description = "Gateway Ed25519 public keys by key id", body = KeysDoc)))]
async fn keys(State(s): State<AppState>) -> ApiResult {
    ok(StatusCode::OK, &s.gw.public_keys())
}

#[utoipa::path(get, path = "/v1/rules", tag = "public", responses((status = 200, description = "The rules this deployment enforces, with its effective numbers (the catalogue after the deployment's stricter overrides): {object: list, data: [{id, level, statement, value?, unit?}]}")))]
async fn rules(State(s): State<AppState>) -> ApiResult {
    let data: Vec<Value> = s
        .gw
        .catalogue()
        .rules()
        .iter()
        .map(|r| {
            json!({ "id": r.id, "level": r.level, "statement": r.statement, "value": r.value, "unit": r.unit })
        })
        .collect();
    let reach = s.gw.webhook_reach();
    ok(
        StatusCode::OK,
        &json!({
            "object": "list",
            "data": data,
            // Deployment settings an auditor needs to read the webhook rule
            // (QG-WEBHOOK-TARGETS) against.
            "webhooks": { "internal_targets": reach.internal, "local_http": reach.local_http },
        }),
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"payload": "00020101021126590009io.qrgate0130sqr_…6304FF37"}))]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    payload: String,
}

#[utoipa::path(post, path = "/v1/codes/verify", tag = "public", request_body = VerifyBody, responses((status = 200, body = qrgate_gateway::payments::CodeVerification), StdErrors))]
async fn verify_code(State(s): State<AppState>, body: StrictJson<VerifyBody>) -> ApiResult {
    ok(
        StatusCode::OK,
        &s.gw.verify_code(&body.value.payload).await?,
    )
}

#[utoipa::path(post, path = "/v1/merchants", tag = "admin", security(("bearer" = [])), request_body = qrgate_gateway::parties::NewMerchant, responses((status = 201, body = qrgate_gateway::views::MerchantView), StdErrors))]
async fn create_merchant(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: StrictJson<NewMerchant>,
) -> ApiResult {
    ok(
        StatusCode::CREATED,
        &s.gw.create_merchant(&p, body.value).await?,
    )
}

#[utoipa::path(get, path = "/v1/merchants/{id}", tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "mch_…")), responses((status = 200, body = qrgate_gateway::views::MerchantView), StdErrors))]
async fn get_merchant(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.get_merchant(&p, &id).await?)
}

#[utoipa::path(post, path = "/v1/customers", tag = "admin", security(("bearer" = [])), request_body = qrgate_gateway::parties::NewCustomer, responses((status = 201, body = qrgate_gateway::parties::CustomerView), StdErrors))]
async fn create_customer(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: StrictJson<NewCustomer>,
) -> ApiResult {
    ok(
        StatusCode::CREATED,
        &s.gw.create_customer(&p, body.value).await?,
    )
}

#[utoipa::path(get, path = "/v1/customers/{id}", tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "cus_…")), responses((status = 200, body = qrgate_gateway::parties::CustomerView), StdErrors))]
async fn get_customer(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.get_customer(&p, &id).await?)
}

/// Amounts are decimal strings; a JSON number is refused with a clear message.
fn amount_field(v: &Value, field: &str) -> Result<Option<String>, ApiError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(_)) => Err(bad(
            "amount_not_string",
            format!(
                "{field} must be a decimal string such as \"12.30\", not a JSON number (numbers lose precision)"
            ),
        )),
        Some(_) => Err(bad(
            "invalid_request",
            format!("{field} must be a decimal string such as \"12.30\""),
        )),
    }
}

/// Reject fields the endpoint does not know; require the ones it needs.
fn fields(v: &Value, allowed: &[&str], required: &[&str]) -> Result<(), ApiError> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad("invalid_json", "the body must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(
            "unknown_field",
            format!("unknown field {k:?}; expected {}", allowed.join(", ")),
        ));
    }
    if let Some(k) = required.iter().find(|k| !obj.contains_key(**k)) {
        return Err(bad("missing_field", format!("missing field {k:?}")));
    }
    Ok(())
}

fn currency_check(v: &Value) -> Result<(), ApiError> {
    match v.get("currency") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(c)) if c == "CNY" => Ok(()),
        Some(Value::String(c)) => match qrgate_core::Currency::from_code(c) {
            Ok(_) => Err(bad(
                "currency_mismatch",
                format!("{c} does not match the merchant's currency CNY"),
            )),
            Err(e) => Err(bad("unknown_currency", e.to_string())),
        },
        Some(_) => Err(bad(
            "invalid_request",
            "currency must be an ISO 4217 code such as \"CNY\"",
        )),
    }
}

fn opt_str(v: &Value, field: &str) -> Result<Option<String>, ApiError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad("invalid_request", format!("{field} must be a string"))),
    }
}

#[utoipa::path(post, path = "/v1/customers/{id}/topups", tag = "admin", security(("bearer" = [])), params(("id" = String, Path), IdemHeader), request_body = TopupRequest, responses((status = 201, body = qrgate_gateway::parties::TopupView), StdErrors))]
async fn topup(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    meta: Meta,
    body: StrictJson<Value>,
) -> ApiResult {
    let v = &body.value;
    fields(v, &["amount", "currency"], &["amount"])?;
    currency_check(v)?;
    let amount = amount_field(v, "amount")?.unwrap_or_default();
    once(&s, &p, &[Role::Admin], &meta, &body.bytes, |i| {
        s.gw.topup(&p, &id, &amount, Some(i))
    })
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"role": "merchant", "subject_id": "mch_6bsdfgzqrkdpgz6gy6p366fdeu"}))]
#[serde(deny_unknown_fields)]
struct NewKey {
    role: String,
    subject_id: Option<String>,
}

#[utoipa::path(post, path = "/v1/api-keys", tag = "admin", security(("bearer" = [])), request_body = NewKey, responses((status = 201, description = "The secret is shown once", body = qrgate_gateway::parties::ApiKeyCreated), StdErrors))]
async fn create_api_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: StrictJson<NewKey>,
) -> ApiResult {
    let role = Role::parse(&body.value.role).ok_or_else(|| {
        bad(
            "invalid_request",
            "role must be admin, merchant, consumer or auditor",
        )
    })?;
    ok(
        StatusCode::CREATED,
        &s.gw
            .create_api_key(Some(&p), role, body.value.subject_id)
            .await?,
    )
}

#[utoipa::path(post, path = "/v1/api-keys/{id}/revoke", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, description = "Revoked"), StdErrors))]
async fn revoke_api_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    s.gw.revoke_api_key(&p, &id).await?;
    ok(
        StatusCode::OK,
        &json!({ "id": id, "object": "api_key", "revoked": true }),
    )
}

#[utoipa::path(post, path = "/v1/static-codes", tag = "merchant", security(("bearer" = [])), responses((status = 201, body = qrgate_gateway::parties::StaticCodeView), StdErrors))]
async fn create_static_code(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    ok(StatusCode::CREATED, &s.gw.create_static_code(&p).await?)
}

/// `GET /v1/static-codes/{id}`, `{id}.png` (printable poster) or `{id}.svg`.
#[utoipa::path(get, path = "/v1/static-codes/{file}", tag = "merchant", security(("bearer" = [])), params(("file" = String, Path, description = "sqr_… for JSON, sqr_….png or sqr_….svg for a printable poster")), responses((status = 200, description = "JSON, image/png or image/svg+xml", body = qrgate_gateway::parties::StaticCodeView), StdErrors))]
async fn get_static_code(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(file): Path<String>,
) -> ApiResult {
    let (id, ext) = match file.rsplit_once('.') {
        Some((id, ext)) => (id.to_owned(), Some(ext.to_ascii_lowercase())),
        None => (file.clone(), None),
    };
    let sc = s.gw.get_static_code(&p, &id).await?;
    // Posters print: level Q survives smudges, 10 px modules print crisply.
    let opts = RenderOptions {
        correction: qrgate_codes::image::Correction::Q,
        module_px: 10,
        quiet_zone: 4,
    };
    match ext.as_deref() {
        None => ok(StatusCode::OK, &sc),
        Some("png") => {
            let png = render_png(&sc.payload, &opts).map_err(|e| ApiError(Error::internal(e)))?;
            Ok((
                StatusCode::OK,
                [
                    ("content-type", "image/png"),
                    ("cache-control", "private, max-age=86400"),
                ],
                png,
            )
                .into_response())
        }
        Some("svg") => {
            let svg = render_svg(&sc.payload, &opts).map_err(|e| ApiError(Error::internal(e)))?;
            Ok((
                StatusCode::OK,
                [
                    ("content-type", "image/svg+xml"),
                    ("cache-control", "private, max-age=86400"),
                ],
                svg,
            )
                .into_response())
        }
        Some(other) => Err(bad(
            "unsupported_format",
            format!(".{other}: ask for .png or .svg"),
        )),
    }
}

#[utoipa::path(post, path = "/v1/orders", tag = "merchant", security(("bearer" = [])), request_body = OrderRequest, responses((status = 201, body = qrgate_gateway::views::OrderView), StdErrors))]
async fn create_order(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: StrictJson<Value>,
) -> ApiResult {
    let v = &body.value;
    fields(
        v,
        &[
            "amount",
            "currency",
            "reference",
            "out_trade_no",
            "expires_in",
        ],
        &["amount"],
    )?;
    currency_check(v)?;
    let amount = amount_field(v, "amount")?.unwrap_or_default();
    let ttl = match v.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(x) => Some(
            x.as_i64()
                .ok_or_else(|| bad("invalid_request", "expires_in must be whole seconds"))?,
        ),
    };
    ok(
        StatusCode::CREATED,
        &s.gw
            .create_order(
                &p,
                &amount,
                opt_str(v, "reference")?,
                opt_str(v, "out_trade_no")?,
                ttl,
            )
            .await?,
    )
}

#[utoipa::path(get, path = "/v1/orders/{id}", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = qrgate_gateway::views::OrderView), StdErrors))]
async fn get_order(State(s): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult {
    ok(StatusCode::OK, &s.gw.get_order(&p, &id).await?)
}

#[utoipa::path(post, path = "/v1/orders/{id}/close", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = qrgate_gateway::views::OrderView), StdErrors))]
async fn close_order(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.close_order(&p, &id).await?)
}

/// CPM: charge the payment code the cashier scanned.
#[utoipa::path(post, path = "/v1/payments", tag = "merchant", security(("bearer" = [])), params(IdemHeader), request_body = ChargeRequest, responses((status = 201, description = "Succeeded, or requires_action (step-up)", body = qrgate_gateway::views::PaymentView), StdErrors))]
async fn charge(
    State(s): State<AppState>,
    PaymentAuth(p): PaymentAuth,
    meta: Meta,
    body: StrictJson<Value>,
) -> ApiResult {
    let v = &body.value;
    fields(
        v,
        &["auth_code", "amount", "currency", "out_trade_no"],
        &["auth_code", "amount"],
    )?;
    currency_check(v)?;
    let amount = amount_field(v, "amount")?.unwrap_or_default();
    let code = opt_str(v, "auth_code")?.unwrap_or_default();
    p.require(&[Role::Merchant])?;
    let i = meta.idem(&p, &body.bytes)?;
    // No read before the charge: its movement checks the Idempotency-Key in
    // its own transaction and answers a replay with the stored response.
    // Only a charge refused before it reaches the store (say, the code has
    // expired since the first try) looks for a stored answer, which wins.
    match s
        .gw
        .charge(
            &p,
            &code,
            &amount,
            opt_str(v, "out_trade_no")?,
            Some(i.clone()),
        )
        .await
    {
        Ok(r) => Ok(reply(r)),
        // A key revoked since it was read gets no stored answer either.
        Err(e) if e.refuses_the_caller() => Err(e.into()),
        Err(e) => match s.gw.stored_answer(&i).await? {
            Some(stored) => Ok(reply(stored)),
            None => Err(e.into()),
        },
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    wait: Option<u64>,
}

/// `GET /v1/payments/{id}?wait=SECONDS` long-polls until the status changes.
#[utoipa::path(get, path = "/v1/payments/{id}", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path), ("wait" = Option<u64>, Query, description = "long-poll up to this many seconds (max 30) for a change")), responses((status = 200, body = qrgate_gateway::views::PaymentView), StdErrors))]
async fn get_payment(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    StrictQuery(q): StrictQuery<WaitQuery>,
) -> ApiResult {
    let first = s.gw.get_payment(&p, &id).await?;
    let wait = q.wait.unwrap_or(0);
    if wait > super::MAX_WAIT_SECONDS {
        return Err(bad(
            "invalid_request",
            format!("wait must be at most {} seconds", super::MAX_WAIT_SECONDS),
        ));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut current = first.clone();
    while current.status == first.status
        && current.amount_refunded == first.amount_refunded
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
        current = s.gw.get_payment(&p, &id).await?;
    }
    ok(StatusCode::OK, &current)
}

#[utoipa::path(get, path = "/v1/payments", tag = "merchant", security(("bearer" = [])), params(qrgate_gateway::payments::ListQuery), responses((status = 200, body = qrgate_gateway::payments::PaymentList), StdErrors))]
async fn list_payments(
    State(s): State<AppState>,
    Auth(p): Auth,
    StrictQuery(q): StrictQuery<ListQuery>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.list_payments(&p, q).await?)
}

#[utoipa::path(post, path = "/v1/payments/{id}/refunds", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path), IdemHeader), request_body = RefundRequest, responses((status = 201, body = qrgate_gateway::views::RefundView), (status = 200, description = "The refund with this out_refund_no, made before", body = qrgate_gateway::views::RefundView), StdErrors))]
async fn refund(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    meta: Meta,
    body: StrictJson<Value>,
) -> ApiResult {
    let v = &body.value;
    fields(
        v,
        &["amount", "currency", "out_refund_no"],
        &["amount", "out_refund_no"],
    )?;
    currency_check(v)?;
    let amount = amount_field(v, "amount")?.unwrap_or_default();
    let no = opt_str(v, "out_refund_no")?.unwrap_or_default();
    once(&s, &p, &[Role::Merchant], &meta, &body.bytes, |i| {
        s.gw.refund(&p, &id, &amount, &no, Some(i))
    })
    .await
}

#[utoipa::path(get, path = "/v1/payments/{id}/refunds", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, description = "A list of refunds", body = RefundList), StdErrors))]
async fn list_refunds(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        &json!({ "object": "list", "data": s.gw.list_refunds(&p, &id).await?, "has_more": false }),
    )
}

#[utoipa::path(post, path = "/v1/payments/{id}/cancel", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path), IdemHeader), responses((status = 200, body = qrgate_gateway::views::PaymentView), StdErrors))]
async fn cancel(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    meta: Meta,
) -> ApiResult {
    once(&s, &p, &[Role::Merchant], &meta, b"", |i| {
        s.gw.cancel(&p, &id, Some(i))
    })
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewBlock {
    /// A merchant id (`mch_…`) or a customer id (`cus_…`).
    subject_id: String,
    /// Why, for the operator (1 to 200 characters); never shown to the other party.
    reason: String,
}

#[utoipa::path(post, path = "/v1/blocks", tag = "admin", security(("bearer" = [])), request_body = NewBlock, responses((status = 201, description = "The party is blocked: its payments are declined with party_blocked (rule QG-BLOCKLIST) until the block is lifted", body = qrgate_gateway::parties::BlockView), StdErrors))]
async fn create_block(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: StrictJson<NewBlock>,
) -> ApiResult {
    ok(
        StatusCode::CREATED,
        &s.gw
            .block(&p, &body.value.subject_id, &body.value.reason)
            .await?,
    )
}

#[utoipa::path(post, path = "/v1/blocks/{id}/lift", tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "Block id")), responses((status = 200, body = qrgate_gateway::parties::BlockView), StdErrors))]
async fn lift_block(State(s): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult {
    ok(StatusCode::OK, &s.gw.lift_block(&p, &id).await?)
}

/// A certificate's public key (raw Ed25519, base64url).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"public_key": "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"}))]
#[serde(deny_unknown_fields)]
struct NewCertificate {
    public_key: String,
}

#[utoipa::path(post, path = "/v1/customers/{id}/certificates", tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "Customer id")), request_body = NewCertificate, responses((status = 201, description = "The certificate key is enrolled; its signature over a payment's details (with the PIN) lifts a payment to risk level A for a customer with a level-A agreement", body = qrgate_gateway::parties::CertificateView), StdErrors))]
async fn enroll_certificate(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    body: StrictJson<NewCertificate>,
) -> ApiResult {
    ok(
        StatusCode::CREATED,
        &s.gw
            .enroll_certificate(&p, &id, &body.value.public_key)
            .await?,
    )
}

#[utoipa::path(post, path = "/v1/payment-codes", tag = "consumer", security(("bearer" = [])), responses((status = 201, body = qrgate_gateway::payments::PaymentCodeView), StdErrors))]
async fn issue_payment_code(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    ok(StatusCode::CREATED, &s.gw.issue_payment_code(&p).await?)
}

/// MPM: the consumer pays a merchant code they scanned.
#[utoipa::path(post, path = "/v1/scans", tag = "consumer", security(("bearer" = [])), params(IdemHeader), request_body = ScanRequest, responses((status = 201, body = qrgate_gateway::views::PaymentView), StdErrors))]
async fn scan(
    State(s): State<AppState>,
    Auth(p): Auth,
    meta: Meta,
    body: StrictJson<Value>,
) -> ApiResult {
    let v = &body.value;
    fields(
        v,
        &["payload", "amount", "currency", "funding_source"],
        &["payload"],
    )?;
    currency_check(v)?;
    let amount = amount_field(v, "amount")?;
    let payload = opt_str(v, "payload")?.unwrap_or_default();
    let funding_source = opt_str(v, "funding_source")?;
    once(&s, &p, &[Role::Consumer], &meta, &body.bytes, |i| {
        s.gw.pay_scanned(
            &p,
            &payload,
            amount.as_deref(),
            funding_source.as_deref(),
            Some(i),
        )
    })
    .await
}

#[utoipa::path(get, path = "/v1/me", tag = "consumer", security(("bearer" = [])), responses((status = 200, body = qrgate_gateway::parties::CustomerView), StdErrors))]
async fn me(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    let id = p.customer()?.to_owned();
    ok(StatusCode::OK, &s.gw.get_customer(&p, &id).await?)
}

#[utoipa::path(get, path = "/v1/me/payments", tag = "consumer", security(("bearer" = [])), params(qrgate_gateway::payments::ListQuery), responses((status = 200, body = qrgate_gateway::payments::PaymentList), StdErrors))]
async fn my_payments(
    State(s): State<AppState>,
    Auth(p): Auth,
    StrictQuery(q): StrictQuery<ListQuery>,
) -> ApiResult {
    p.customer()?;
    ok(StatusCode::OK, &s.gw.list_payments(&p, q).await?)
}

#[utoipa::path(get, path = "/v1/audit/verify", tag = "auditor", security(("bearer" = [])), responses((status = 200, description = "{\"Intact\": {rows, head}} or {\"Broken\": {seq, reason}}"), StdErrors))]
async fn audit_verify(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    ok(StatusCode::OK, &s.gw.verify_audit(&p).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/audit/log", tag = "auditor", security(("bearer" = [])), params(("after" = Option<i64>, Query), ("limit" = Option<i64>, Query)), responses((status = 200, description = "Audit rows with their hash chain"), StdErrors))]
async fn audit_log(
    State(s): State<AppState>,
    Auth(p): Auth,
    StrictQuery(q): StrictQuery<AuditQuery>,
) -> ApiResult {
    let rows =
        s.gw.audit_log(&p, q.after.unwrap_or(0), q.limit.unwrap_or(100))
            .await?;
    ok(StatusCode::OK, &json!({ "object": "list", "data": rows }))
}

#[utoipa::path(get, path = "/v1/ledger/check", tag = "auditor", security(("bearer" = [])), responses((status = 200, description = "{balanced, check: {totals, mismatched_accounts, negative_accounts, entries, disagreeing_payments}}"), StdErrors))]
async fn ledger_check(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    let c = s.gw.ledger_check(&p).await?;
    ok(
        StatusCode::OK,
        &json!({ "balanced": c.is_sound(), "check": c }),
    )
}

#[utoipa::path(post, path = "/v1/admin/keys/rotate", tag = "admin", security(("bearer" = [])), responses((status = 200, description = "The new active key id and all public keys"), StdErrors))]
async fn rotate_keys(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    p.require(&[Role::Admin])?;
    let kid = s.gw.rotate_keys(&p.key_id).await?;
    ok(
        StatusCode::OK,
        &json!({ "active_kid": kid, "keys": s.gw.public_keys() }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetireQuery {
    invalidate_codes: Option<bool>,
}

/// Retire a signing key that no longer signs (a compromised one): codes it
/// signed are refused from now on. While static codes or open orders it
/// signed are in force, it is refused (409 `key_signs_live_codes`) unless
/// `?invalidate_codes=true`; the answer lists what it made unpayable.
#[utoipa::path(post, path = "/v1/admin/keys/{kid}/retire", tag = "admin", security(("bearer" = [])), params(("kid" = String, Path), ("invalidate_codes" = Option<bool>, Query, description = "retire it even though merchant codes it signed are in force")), responses((status = 200, description = "All public keys, the retired one marked, and what the retirement made unpayable (`invalidated`)"), StdErrors))]
async fn retire_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(kid): Path<String>,
    StrictQuery(q): StrictQuery<RetireQuery>,
) -> ApiResult {
    p.require(&[Role::Admin])?;
    let invalidated =
        s.gw.retire_key(&kid, &p.key_id, q.invalidate_codes.unwrap_or(false))
            .await?;
    ok(
        StatusCode::OK,
        &json!({ "keys": s.gw.public_keys(), "invalidated": invalidated }),
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"url": "https://shop.example/hooks/qrgate"}))]
#[serde(deny_unknown_fields)]
struct NewEndpoint {
    url: String,
}

#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks", security(("bearer" = [])), request_body = NewEndpoint, responses((status = 201, description = "The secret is shown once", body = qrgate_gateway::webhooks::EndpointView), StdErrors))]
async fn create_webhook_endpoint(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: StrictJson<NewEndpoint>,
) -> ApiResult {
    ok(
        StatusCode::CREATED,
        &s.gw.create_webhook_endpoint(&p, &body.value.url).await?,
    )
}

#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks", security(("bearer" = [])), responses((status = 200, description = "The merchant's endpoints"), StdErrors))]
async fn list_webhook_endpoints(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    ok(
        StatusCode::OK,
        &json!({ "object": "list", "data": s.gw.list_webhook_endpoints(&p).await?, "has_more": false }),
    )
}

#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/deliveries", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, description = "Delivery attempts, newest first"), StdErrors))]
async fn list_deliveries(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        &json!({ "object": "list", "data": s.gw.list_deliveries(&p, &id).await?, "has_more": false }),
    )
}

/// Disable (pause; deliveries wait), enable, or rotate the secret of an
/// endpoint (the new secret is in the answer, once; the old one keeps
/// signing beside it for 24 hours).
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/{action}", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path), ("action" = String, Path, description = "disable, enable or rotate-secret")), responses((status = 200, body = qrgate_gateway::webhooks::EndpointView), StdErrors))]
async fn change_webhook_endpoint(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult {
    use qrgate_gateway::webhooks::EndpointAction;
    let action = match action.as_str() {
        "disable" => EndpointAction::Disable,
        "enable" => EndpointAction::Enable,
        "rotate-secret" => EndpointAction::RotateSecret,
        _ => {
            return Err(ApiError(Error::new(
                Kind::NotFound,
                "route_not_found",
                "no such endpoint action; use disable, enable or rotate-secret",
            )));
        }
    };
    ok(
        StatusCode::OK,
        &s.gw.change_webhook_endpoint(&p, &id, action).await?,
    )
}

/// Delete an endpoint: it is no longer listed or sent to, its pending
/// deliveries fail, and none of them can be sent again.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = qrgate_gateway::webhooks::EndpointView), StdErrors))]
async fn delete_webhook_endpoint(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        &s.gw
            .change_webhook_endpoint(&p, &id, qrgate_gateway::webhooks::EndpointAction::Delete)
            .await?,
    )
}

#[utoipa::path(post, path = "/v1/webhook-deliveries/{id}/retry", tag = "webhooks", security(("bearer" = [])), params(("id" = i64, Path)), responses((status = 200, body = qrgate_gateway::webhooks::DeliveryView), StdErrors))]
async fn redeliver(State(s): State<AppState>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError(Error::not_found("webhook delivery", &id)))?;
    ok(StatusCode::OK, &s.gw.redeliver(&p, id).await?)
}

/// Step-up: the payer confirms a `requires_action` payment.
#[utoipa::path(post, path = "/v1/payments/{id}/confirm", tag = "consumer", security(("bearer" = [])), params(("id" = String, Path), IdemHeader), request_body = qrgate_gateway::stepup::Confirmation, responses((status = 200, body = qrgate_gateway::views::PaymentView), StdErrors))]
async fn confirm(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    meta: Meta,
    body: StrictJson<qrgate_gateway::stepup::Confirmation>,
) -> ApiResult {
    let StrictJson { value, bytes } = body;
    once(&s, &p, &[Role::Consumer], &meta, &bytes, |i| {
        s.gw.confirm(&p, &id, value, Some(i))
    })
    .await
}

/// Link a card: the number goes to the processor; the gateway keeps a token.
#[utoipa::path(post, path = "/v1/me/cards", tag = "consumer", security(("bearer" = [])), request_body = qrgate_gateway::funding::NewCard, responses((status = 201, body = qrgate_gateway::funding::CardView), StdErrors))]
async fn link_card(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: StrictJson<qrgate_gateway::funding::NewCard>,
) -> ApiResult {
    p.require(&[Role::Consumer])?;
    ok(
        StatusCode::CREATED,
        &s.gw.link_card(&p, body.value.clone()).await?,
    )
}

#[utoipa::path(get, path = "/v1/me/cards", tag = "consumer", security(("bearer" = [])), responses((status = 200, body = qrgate_gateway::funding::CardList), StdErrors))]
async fn list_cards(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    p.require(&[Role::Consumer])?;
    ok(StatusCode::OK, &s.gw.list_cards(&p).await?)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "qrgate", description = "QR-code payment gateway: merchant and consumer codes, barcode-payment rules, double-entry ledger. Amounts are decimal strings in major units; every money-moving POST takes an Idempotency-Key; errors are {\"error\": {code, message, rule?, request_id, payment_id?}}."),
    paths(
        healthz, readyz, metrics, keys, rules, verify_code,
        create_merchant, get_merchant, create_customer, get_customer, topup, enroll_certificate, create_block, lift_block, create_api_key, revoke_api_key, rotate_keys, retire_key,
        create_static_code, get_static_code, create_order, get_order, close_order,
        charge, get_payment, list_payments, refund, list_refunds, cancel,
        issue_payment_code, scan, confirm, link_card, list_cards, me, my_payments,
        super::credentials::set_pin, super::credentials::reset_pin, super::credentials::enroll_device,
        super::credentials::list_devices, super::credentials::revoke_device, super::credentials::enable_biometric, super::credentials::device_handles,
        super::credentials::enroll_otp, super::credentials::revoke_certificate, super::credentials::revoke_static_code,
        create_webhook_endpoint, list_webhook_endpoints, list_deliveries, redeliver,
        change_webhook_endpoint, delete_webhook_endpoint,
        audit_verify, audit_log, ledger_check,
    ),
    components(schemas(VerifyBody, NewKey, NewEndpoint, NewBlock, NewCertificate, super::credentials::NewDevice, super::credentials::NewPin, super::credentials::PinProof, super::credentials::HandleBatch)),
    modifiers(&Conventions),
    tags(
        (name = "public", description = "No key needed"),
        (name = "admin", description = "Admin keys"),
        (name = "merchant", description = "Merchant keys (one merchant)"),
        (name = "consumer", description = "Consumer keys (one customer)"),
        (name = "webhooks", description = "Merchant webhook endpoints and deliveries"),
        (name = "auditor", description = "Auditor (read-only) or admin keys"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

async fn openapi_json() -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        super::openapi::json(),
    )
        .into_response()
}
