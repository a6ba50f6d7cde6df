//! The API's router, put together from one module per resource (each
//! lists its routes beside its handlers), the helpers the handlers share
//! (JSON answers, body field checks) and the OpenAPI document.

use axum::Router;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;

use qrgate_gateway::{Error, Fresh, Outcome, Reply, Said};

use super::AppState;
use super::error::ApiError;
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
        .merge(super::money::routes())
        .merge(super::audit::routes())
        .merge(super::webhooks::routes())
        .merge(super::complaints::routes())
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

/// How the API says what a money-moving request came to: 201 with the
/// view of what was made, 200 with the view of what was done, a refusal as
/// its status and error body (the request id is added to a stored one when
/// it is replayed). The gateway stores this answer with the movement, so a
/// retry is answered exactly as the first request was.
pub(crate) fn render(outcome: &Outcome<'_>) -> Said {
    match outcome {
        Outcome::Created { view } => Said {
            status: StatusCode::CREATED.as_u16(),
            body: (*view).to_owned(),
        },
        Outcome::Done { view } => Said {
            status: StatusCode::OK.as_u16(),
            body: (*view).to_owned(),
        },
        Outcome::Refused(e) => Said {
            status: super::error::status_of(e.kind).as_u16(),
            body: super::error::stored_body(e),
        },
    }
}

/// A money-moving reply: said now, or the stored answer, marked replayed.
pub(super) fn reply(r: Reply) -> Response {
    let said = match r {
        Reply::Fresh(Fresh::Created, view) => render(&Outcome::Created { view: &view }),
        Reply::Fresh(Fresh::Done, view) => render(&Outcome::Done { view: &view }),
        Reply::Replayed(said) => {
            let mut res = json_response(said.status, said.body);
            res.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return res;
        }
    };
    json_response(said.status, said.body)
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
