//! Credential routes: the PIN (set, change, operator reset), devices
//! (enrol, list, revoke, biometrics), one-time passwords, and revoking
//! certificates and static codes. Every change is audited by the gateway.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use qrgate_gateway::Role;

use super::AppState;
use super::error::bad;
use super::extract::{Auth, StrictJson};
use super::openapi::StdErrors;
use super::routes::{ApiResult, ok};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(set_pin))
        .routes(routes!(reset_pin))
        .routes(routes!(enroll_otp))
        .routes(routes!(enroll_device, list_devices))
        .routes(routes!(revoke_device))
        .routes(routes!(enable_biometric))
        .routes(routes!(device_handles))
        .routes(routes!(revoke_certificate))
        .routes(routes!(revoke_static_code))
}

/// Set the first PIN (`pin`), or change it (`pin` and `current_pin`).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"pin": "493817", "current_pin": "271828"}))]
#[serde(deny_unknown_fields)]
pub(super) struct NewPin {
    pin: String,
    /// Needed once a PIN is set: changing it proves the current one.
    current_pin: Option<String>,
}

/// The PIN, for a change to the customer's credentials once one is set.
#[derive(Deserialize, utoipa::ToSchema, Default)]
#[schema(example = json!({"pin": "493817"}))]
#[serde(deny_unknown_fields)]
pub(super) struct PinProof {
    pin: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"public_key": "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg", "pin": "493817"}))]
#[serde(deny_unknown_fields)]
pub(super) struct NewDevice {
    public_key: String,
    /// Needed once the customer has a PIN.
    pin: Option<String>,
}

/// Set the first PIN, or change it with the current one. A change never
/// clears a lock-out; a forgotten PIN is reset by the operator.
#[utoipa::path(post, path = "/v1/me/pin", tag = "consumer", security(("bearer" = [])), request_body = NewPin, responses((status = 200, description = "Set or changed"), StdErrors))]
pub(super) async fn set_pin(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: StrictJson<NewPin>,
) -> ApiResult {
    let b = body.value;
    match b.current_pin.as_deref() {
        None => s.gw.set_pin(&p, &b.pin).await?,
        Some(current) => s.gw.change_pin(&p, current, &b.pin).await?,
    }
    ok(StatusCode::OK, &json!({ "object": "pin", "set": true }))
}

/// The operator resets a customer's forgotten PIN: none until the customer
/// sets a new one; a lock-out in force stays.
#[utoipa::path(post, path = "/v1/customers/{id}/pin/reset", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, description = "Reset"), StdErrors))]
pub(super) async fn reset_pin(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    s.gw.reset_pin(&p, &id).await?;
    ok(StatusCode::OK, &json!({ "object": "pin", "set": false }))
}

/// An optional JSON body: empty means the default.
fn optional<T: serde::de::DeserializeOwned + Default>(
    bytes: &Bytes,
) -> Result<T, super::error::ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if let Err(qrgate_core::json::JsonProblem::DuplicateKey(key)) =
        qrgate_core::json::check_unique_keys(bytes)
    {
        return Err(bad(
            "duplicate_key",
            format!("request body: the key {key:?} appears twice in one object; send it once"),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let code = if e.to_string().contains("unknown field") {
            "unknown_field"
        } else {
            "invalid_json"
        };
        bad(code, format!("request body: {e}"))
    })
}

/// Enroll an authenticator app (TOTP): the secret is shown once. Needs a
/// PIN set, and the PIN (body `{"pin": …}`).
#[utoipa::path(post, path = "/v1/me/otp", tag = "consumer", security(("bearer" = [])), request_body = PinProof, responses((status = 201, body = qrgate_gateway::otp::OtpView), StdErrors))]
pub(super) async fn enroll_otp(State(s): State<AppState>, Auth(p): Auth, body: Bytes) -> ApiResult {
    p.require(&[Role::Consumer])?;
    let proof: PinProof = optional(&body)?;
    ok(
        StatusCode::CREATED,
        &s.gw.enroll_otp(&p, proof.pin.as_deref()).await?,
    )
}

/// Enroll a device's Ed25519 key; once the customer has a PIN, with it.
#[utoipa::path(post, path = "/v1/devices", tag = "consumer", security(("bearer" = [])), request_body = NewDevice, responses((status = 201, body = qrgate_gateway::parties::DeviceView), StdErrors))]
pub(super) async fn enroll_device(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: StrictJson<NewDevice>,
) -> ApiResult {
    let b = body.value;
    ok(
        StatusCode::CREATED,
        &s.gw
            .enroll_device(&p, &b.public_key, b.pin.as_deref())
            .await?,
    )
}

/// The consumer's devices.
#[utoipa::path(get, path = "/v1/devices", tag = "consumer", security(("bearer" = [])), responses((status = 200, description = "The consumer's devices"), StdErrors))]
pub(super) async fn list_devices(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    ok(
        StatusCode::OK,
        &json!({ "object": "list", "data": s.gw.list_devices(&p).await?, "has_more": false }),
    )
}

/// Revoke a device (the consumer's own, or any as admin): codes it signed,
/// offline ones included, move no money from now on.
#[utoipa::path(post, path = "/v1/devices/{id}/revoke", tag = "consumer", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = qrgate_gateway::parties::DeviceView), StdErrors))]
pub(super) async fn revoke_device(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.revoke_device(&p, &id).await?)
}

/// How many sealed handles to give (1 to 100; 20 when left out).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"count": 50}))]
#[serde(deny_unknown_fields)]
pub(super) struct HandleBatch {
    count: Option<u32>,
}

/// More sealed handles for one of the consumer's own active devices: the
/// device puts a fresh one in each code it signs, so merchants cannot link
/// its codes (spec/formats.md §3).
#[utoipa::path(post, path = "/v1/devices/{id}/handles", tag = "consumer", security(("bearer" = [])), params(("id" = String, Path)), request_body = HandleBatch, responses((status = 200, body = qrgate_gateway::parties::DeviceHandlesView), StdErrors))]
pub(super) async fn device_handles(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    body: StrictJson<HandleBatch>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        &s.gw.device_handles(&p, &id, body.value.count).await?,
    )
}

/// Turn on biometric confirmation for a device, with the PIN.
#[utoipa::path(post, path = "/v1/devices/{id}/biometric", tag = "consumer", security(("bearer" = [])), params(("id" = String, Path)), request_body = PinProof, responses((status = 200, body = qrgate_gateway::parties::DeviceView), StdErrors))]
pub(super) async fn enable_biometric(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    body: StrictJson<PinProof>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        &s.gw
            .enable_biometric(&p, &id, body.value.pin.as_deref())
            .await?,
    )
}

/// Revoke a digital certificate (the customer's own, or any as admin).
#[utoipa::path(post, path = "/v1/customers/{id}/certificates/{certificate_id}/revoke", tag = "consumer", security(("bearer" = [])), params(("id" = String, Path), ("certificate_id" = String, Path)), responses((status = 200, description = "Revoked"), StdErrors))]
pub(super) async fn revoke_certificate(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, certificate_id)): Path<(String, String)>,
) -> ApiResult {
    s.gw.revoke_certificate(&p, &id, &certificate_id).await?;
    ok(
        StatusCode::OK,
        &json!({ "object": "certificate", "id": certificate_id, "status": "revoked" }),
    )
}

/// Revoke one of the merchant's static codes: scans are refused from now on.
#[utoipa::path(post, path = "/v1/static-codes/{id}/revoke", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, description = "Revoked"), StdErrors))]
pub(super) async fn revoke_static_code(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    s.gw.revoke_static_code(&p, &id).await?;
    ok(
        StatusCode::OK,
        &json!({ "object": "static_code", "id": id, "status": "revoked" }),
    )
}
