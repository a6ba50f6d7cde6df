//! Public and operations routes: health, readiness, metrics, the public
//! keys and rules, the check of a merchant code, the API description.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::StrictJson;
use super::openapi::{ErrorBody, KeysDoc, StdErrors};

/// Every route. None deletes a record: payments, refunds, the ledger and
/// the audit log are kept (rule BCP-RETENTION; the store's append-only
/// triggers refuse deletes underneath).
use super::routes::*;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .route("/openapi.json", get(openapi_json))
        .routes(routes!(keys))
        .routes(routes!(rules))
        .routes(routes!(verify_code))
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is up")))]
pub(super) async fn healthz() -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "The database answers"), (status = 503, description = "Not ready", body = ErrorBody)))]
pub(super) async fn readyz(State(s): State<AppState>) -> ApiResult {
    let store = s.gw.ready().await?;
    ok(
        StatusCode::OK,
        &json!({ "status": "ready", "store": store }),
    )
}

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub(super) async fn metrics(State(s): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics
            .render(&(s.gw.store_metrics() + &s.gw.complaint_gauges().await)),
    )
        .into_response()
}

#[utoipa::path(get, path = "/v1/keys", tag = "public", responses((status = 200, description = "Gateway Ed25519 public keys by key id", body = KeysDoc)))]
pub(super) async fn keys(State(s): State<AppState>) -> ApiResult {
    ok(StatusCode::OK, &s.gw.public_keys())
}

#[utoipa::path(get, path = "/v1/rules", tag = "public", responses((status = 200, description = "The rules this deployment enforces, with its effective numbers (the catalogue after the deployment's stricter overrides): {object: list, data: [{id, level, statement, value?, unit?}]}")))]
pub(super) async fn rules(State(s): State<AppState>) -> ApiResult {
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
pub(super) struct VerifyBody {
    payload: String,
}

#[utoipa::path(post, path = "/v1/codes/verify", tag = "public", request_body = VerifyBody, responses((status = 200, body = qrgate_gateway::payments::CodeVerification), StdErrors))]
pub(super) async fn verify_code(
    State(s): State<AppState>,
    body: StrictJson<VerifyBody>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        &s.gw.verify_code(&body.value.payload).await?,
    )
}

pub(super) async fn openapi_json() -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        super::openapi::json(),
    )
        .into_response()
}
