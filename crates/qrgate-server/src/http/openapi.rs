//! The OpenAPI 3.1 document: generated from the handlers and types
//! (utoipa), served at `/openapi.json`, checked in at `spec/openapi.json`.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};
use utoipa::{IntoParams, IntoResponses, Modify, ToSchema};

use qrgate_gateway::ERROR_CODES;

#[derive(Serialize, ToSchema)]
pub struct RefundList {
    pub object: String,
    pub data: Vec<qrgate_gateway::views::RefundView>,
    pub has_more: bool,
}

/// One public key of `GET /v1/keys`.
#[derive(Serialize, ToSchema)]
pub struct PublicKeyDoc {
    /// Key id, as in merchant codes (26.02) and payment tokens.
    pub kid: String,
    /// `Ed25519`.
    pub alg: String,
    /// Raw 32-byte key, base64url without padding.
    pub public_key: String,
    /// `active`, `verify_only` or `retired`.
    pub state: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"keys": [{"kid": "mf7463bt", "alg": "Ed25519", "public_key": "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg", "state": "active", "created_at": 1795000000000_i64}]}))]
pub struct KeysDoc {
    pub keys: Vec<PublicKeyDoc>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// One of the values of the `ErrorCode` schema.
    #[schema(example = "limit_exceeded")]
    pub code: String,
    pub message: String,
    /// The rule of `spec/rules.toml` that refused the request.
    #[schema(example = "BCP-LIMIT-C-DAILY")]
    pub rule: Option<String>,
    pub request_id: String,
    /// The payment a declined request was recorded as.
    pub payment_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "limit_exceeded", "message": "BCP-LIMIT-C-DAILY: 99999 + 2 would exceed the limit of 100000 (minor units)", "rule": "BCP-LIMIT-C-DAILY", "request_id": "req_rY77MqUWRb8SLLuf", "payment_id": "pay_gqkzze5gcvjkcliypewhufdj3a"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The errors any endpoint may answer with.
#[derive(IntoResponses)]
#[allow(dead_code)] // only describes responses
pub enum StdErrors {
    /// Malformed request: bad JSON, unknown field, bad amount, bad code.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// Missing, unknown or revoked API key.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Declined: a limit (see `rule`) or insufficient funds. Declined payments are recorded.
    #[response(status = 402)]
    Declined(ErrorBody),
    /// The key's role may not do this.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such object, or another tenant's.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// Conflicts with state or an earlier request (idempotency_key_reused, order_not_open, …).
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Well-formed but unusable: expired, used or forged code, wrong PIN.
    #[response(status = 422)]
    Unprocessable(ErrorBody),
    /// Try again with the same Idempotency-Key.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The Idempotency-Key header of money-moving requests.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // only describes the header
pub struct IdemHeader {
    /// Required. Reuse it when retrying; the stored response comes back with `Idempotent-Replayed: true`.
    #[param(rename = "Idempotency-Key")]
    idempotency_key: String,
}

/// Bearer auth, and the list of error codes as a schema.
pub struct Conventions;

impl Modify for Conventions {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("API key: Authorization: Bearer qgk_…"))
                    .build(),
            ),
        );
        let description = ERROR_CODES
            .iter()
            .map(|(c, d)| format!("- `{c}`: {d}"))
            .collect::<Vec<_>>()
            .join("\n");
        let codes = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(ERROR_CODES.iter().map(|(c, _)| *c)))
            .description(Some(format!("Stable error codes.\n\n{description}")))
            .build();
        components
            .schemas
            .insert("ErrorCode".into(), RefOr::T(Schema::Object(codes)));
    }
}

/// The document as pretty JSON with a trailing newline (as checked in).
pub fn json() -> String {
    let (_, doc) = super::routes::routes();
    let mut s = doc.to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}
