//! Admin routes: merchants, customers and their top-ups, API keys, the
//! block list, certificates, and the signing keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use qrgate_gateway::Role;
use qrgate_gateway::parties::{NewCustomer, NewMerchant};

use super::AppState;
use super::body::TopupRequest;
use super::error::bad;
use super::extract::{Auth, Meta, StrictJson, StrictQuery, once};
use super::openapi::{IdemHeader, StdErrors};

/// Every route. None deletes a record: payments, refunds, the ledger and
/// the audit log are kept (rule BCP-RETENTION; the store's append-only
/// triggers refuse deletes underneath).
use super::routes::*;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_merchant))
        .routes(routes!(get_merchant))
        .routes(routes!(create_customer))
        .routes(routes!(get_customer))
        .routes(routes!(topup))
        .routes(routes!(create_api_key))
        .routes(routes!(revoke_api_key))
        .routes(routes!(enroll_certificate))
        .routes(routes!(create_block))
        .routes(routes!(lift_block))
        .routes(routes!(rotate_keys))
        .routes(routes!(retire_key))
}

#[utoipa::path(post, path = "/v1/merchants", tag = "admin", security(("bearer" = [])), request_body = qrgate_gateway::parties::NewMerchant, responses((status = 201, body = qrgate_gateway::views::MerchantView), StdErrors))]
pub(super) async fn create_merchant(
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
pub(super) async fn get_merchant(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.get_merchant(&p, &id).await?)
}

#[utoipa::path(post, path = "/v1/customers", tag = "admin", security(("bearer" = [])), request_body = qrgate_gateway::parties::NewCustomer, responses((status = 201, body = qrgate_gateway::parties::CustomerView), StdErrors))]
pub(super) async fn create_customer(
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
pub(super) async fn get_customer(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.get_customer(&p, &id).await?)
}

#[utoipa::path(post, path = "/v1/customers/{id}/topups", tag = "admin", security(("bearer" = [])), params(("id" = String, Path), IdemHeader), request_body = TopupRequest, responses((status = 201, body = qrgate_gateway::parties::TopupView), StdErrors))]
pub(super) async fn topup(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    meta: Meta,
    body: StrictJson<TopupRequest>,
) -> ApiResult {
    let amount = &body.value.amount.0;
    once(&s, &p, &[Role::Admin], &meta, &body.bytes, |i| {
        s.gw.topup(&p, &id, amount, Some(i))
    })
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"role": "merchant", "subject_id": "mch_6bsdfgzqrkdpgz6gy6p366fdeu"}))]
#[serde(deny_unknown_fields)]
pub(super) struct NewKey {
    role: String,
    subject_id: Option<String>,
}

#[utoipa::path(post, path = "/v1/api-keys", tag = "admin", security(("bearer" = [])), request_body = NewKey, responses((status = 201, description = "The secret is shown once", body = qrgate_gateway::parties::ApiKeyCreated), StdErrors))]
pub(super) async fn create_api_key(
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
pub(super) async fn revoke_api_key(
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewBlock {
    /// A merchant id (`mch_…`) or a customer id (`cus_…`).
    subject_id: String,
    /// Why, for the operator (1 to 200 characters); never shown to the other party.
    reason: String,
}

#[utoipa::path(post, path = "/v1/blocks", tag = "admin", security(("bearer" = [])), request_body = NewBlock, responses((status = 201, description = "The party is blocked: its payments are declined with party_blocked (rule QG-BLOCKLIST) until the block is lifted", body = qrgate_gateway::parties::BlockView), StdErrors))]
pub(super) async fn create_block(
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
pub(super) async fn lift_block(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.lift_block(&p, &id).await?)
}

/// A certificate's public key (raw Ed25519, base64url).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"public_key": "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"}))]
#[serde(deny_unknown_fields)]
pub(super) struct NewCertificate {
    public_key: String,
}

#[utoipa::path(post, path = "/v1/customers/{id}/certificates", tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "Customer id")), request_body = NewCertificate, responses((status = 201, description = "The certificate key is enrolled; its signature over a payment's details (with the PIN) lifts a payment to risk level A for a customer with a level-A agreement", body = qrgate_gateway::parties::CertificateView), StdErrors))]
pub(super) async fn enroll_certificate(
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

#[utoipa::path(post, path = "/v1/admin/keys/rotate", tag = "admin", security(("bearer" = [])), responses((status = 200, description = "The new active key id and all public keys"), StdErrors))]
pub(super) async fn rotate_keys(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    p.require(&[Role::Admin])?;
    let kid = s.gw.rotate_keys(&p.key_id).await?;
    ok(
        StatusCode::OK,
        &json!({ "active_kid": kid, "keys": s.gw.public_keys() }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RetireQuery {
    invalidate_codes: Option<bool>,
}

/// Retire a signing key that no longer signs (a compromised one): codes it
/// signed are refused from now on. While static codes or open orders it
/// signed are in force, it is refused (409 `key_signs_live_codes`) unless
/// `?invalidate_codes=true`; the answer lists what it made unpayable.
#[utoipa::path(post, path = "/v1/admin/keys/{kid}/retire", tag = "admin", security(("bearer" = [])), params(("kid" = String, Path), ("invalidate_codes" = Option<bool>, Query, description = "retire it even though merchant codes it signed are in force")), responses((status = 200, description = "All public keys, the retired one marked, and what the retirement made unpayable (`invalidated`)"), StdErrors))]
pub(super) async fn retire_key(
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
