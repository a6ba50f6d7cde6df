//! Merchant webhook routes: endpoints and their lifecycle, deliveries.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use qrgate_gateway::{Error, Kind};

use super::AppState;
use super::error::ApiError;
use super::extract::{Auth, StrictJson, StrictQuery};
use super::openapi::StdErrors;

/// Every route. None deletes a record: payments, refunds, the ledger and
/// the audit log are kept (rule BCP-RETENTION; the store's append-only
/// triggers refuse deletes underneath).
use super::routes::*;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook_endpoint, list_webhook_endpoints))
        .routes(routes!(list_deliveries))
        .routes(routes!(delete_webhook_endpoint))
        .routes(routes!(change_webhook_endpoint))
        .routes(routes!(redeliver))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"url": "https://shop.example/hooks/qrgate"}))]
#[serde(deny_unknown_fields)]
pub(super) struct NewEndpoint {
    url: String,
}

#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks", security(("bearer" = [])), request_body = NewEndpoint, responses((status = 201, description = "The secret is shown once", body = qrgate_gateway::webhooks::EndpointView), StdErrors))]
pub(super) async fn create_webhook_endpoint(
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
pub(super) async fn list_webhook_endpoints(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    ok(
        StatusCode::OK,
        &json!({ "object": "list", "data": s.gw.list_webhook_endpoints(&p).await?, "has_more": false }),
    )
}

#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/deliveries", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path), qrgate_gateway::webhooks::CreatedRange), responses((status = 200, description = "Delivery attempts, newest first (the last 100 in the range)"), StdErrors))]
pub(super) async fn list_deliveries(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    StrictQuery(range): StrictQuery<qrgate_gateway::webhooks::CreatedRange>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        &json!({ "object": "list", "data": s.gw.list_deliveries(&p, &id, range).await?, "has_more": false }),
    )
}

/// Disable (pause; deliveries wait), enable, or rotate the secret of an
/// endpoint (the new secret is in the answer, once; the old one keeps
/// signing beside it for 24 hours).
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/{action}", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path), ("action" = String, Path, description = "disable, enable or rotate-secret")), responses((status = 200, body = qrgate_gateway::webhooks::EndpointView), StdErrors))]
pub(super) async fn change_webhook_endpoint(
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
pub(super) async fn delete_webhook_endpoint(
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
pub(super) async fn redeliver(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError(Error::not_found("webhook delivery", &id)))?;
    ok(StatusCode::OK, &s.gw.redeliver(&p, id).await?)
}
