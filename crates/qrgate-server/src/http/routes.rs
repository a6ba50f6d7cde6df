//! The API's router, put together from one module per resource (each
//! lists its routes beside its handlers), the helpers the handlers share
//! (JSON answers, body field checks) and the OpenAPI document.

use axum::Router;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;

use qrgate_gateway::{Error, Reply};

use super::AppState;
use super::error::{ApiError, bad};
use super::openapi::Conventions;

pub(super) type ApiResult = Result<Response, ApiError>;

/// Every route, with the OpenAPI document of it: each module registers
/// its handlers with `routes!`, which takes the path and method from the
/// handler's own `#[utoipa::path]`, so a route cannot be served without
/// being documented, nor documented without being served. None deletes a
/// record: payments, refunds, the ledger and the audit log are kept (rule
/// BCP-RETENTION; the store's append-only triggers refuse deletes
/// underneath).
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(super::credentials::routes())
        .merge(super::public::routes())
        .merge(super::admin::routes())
        .merge(super::codes::routes())
        .merge(super::payments::routes())
        .merge(super::me::routes())
        .merge(super::audit::routes())
        .merge(super::webhooks::routes())
        .split_for_parts()
}

pub(super) fn json_response(status: u16, body: String) -> Response {
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

/// Amounts are decimal strings; a JSON number is refused with a clear message.
pub(super) fn amount_field(v: &Value, field: &str) -> Result<Option<String>, ApiError> {
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
pub(super) fn fields(v: &Value, allowed: &[&str], required: &[&str]) -> Result<(), ApiError> {
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

pub(super) fn currency_check(v: &Value) -> Result<(), ApiError> {
    match v.get("currency") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(c)) if *c == qrgate_gateway::CURRENCY.code() => Ok(()),
        Some(Value::String(c)) => match qrgate_core::Currency::from_code(c) {
            Ok(_) => Err(bad(
                "currency_mismatch",
                format!(
                    "{c} does not match the merchant's currency {}",
                    qrgate_gateway::CURRENCY
                ),
            )),
            Err(e) => Err(bad("unknown_currency", e.to_string())),
        },
        Some(_) => Err(bad(
            "invalid_request",
            "currency must be an ISO 4217 code such as \"CNY\"",
        )),
    }
}

pub(super) fn opt_str(v: &Value, field: &str) -> Result<Option<String>, ApiError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad("invalid_request", format!("{field} must be a string"))),
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "qrgate", description = "QR-code payment gateway: merchant and consumer codes, barcode-payment rules, double-entry ledger. Amounts are decimal strings in major units; every money-moving POST takes an Idempotency-Key; errors are {\"error\": {code, message, rule?, request_id, payment_id?}}."),
    components(schemas(super::public::VerifyBody, super::admin::NewKey, super::webhooks::NewEndpoint, super::admin::NewBlock, super::admin::NewCertificate, super::credentials::NewDevice, super::credentials::NewPin, super::credentials::PinProof, super::credentials::HandleBatch)),
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
