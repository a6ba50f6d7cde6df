//! API errors: `{"error": {"code", "message", "rule"?, "request_id"}}`.
//!
//! Handlers return [`ApiError`]; its response carries the error in an
//! extension, and the request-id middleware renders the body, so every
//! error names its request. 5xx bodies reveal nothing internal.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use qrgate_gateway::{Error, Kind};

#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub fn status_of(kind: Kind) -> StatusCode {
    match kind {
        Kind::BadRequest => StatusCode::BAD_REQUEST,
        Kind::Unauthorized => StatusCode::UNAUTHORIZED,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::Declined => StatusCode::PAYMENT_REQUIRED,
        Kind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The rendered error, attached to the response for the middleware.
#[derive(Debug, Clone)]
pub struct ErrorBody(pub Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.0.kind);
        let mut r = status.into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
        }
        if let Kind::TooManyRequests {
            retry_after_seconds,
        } = self.0.kind
        {
            r.headers_mut()
                .insert("retry-after", HeaderValue::from(retry_after_seconds));
        }
        r.extensions_mut().insert(ErrorBody(self.0));
        r
    }
}

/// The JSON body of an error for a request id.
pub fn body(e: &Error, request_id: &str) -> String {
    let mut v = value(e);
    v["error"]["request_id"] = json!(request_id);
    v.to_string()
}

/// The JSON body of a refusal kept with its movement: without a request
/// id, which each replay adds for itself.
pub fn stored_body(e: &Error) -> String {
    value(e).to_string()
}

fn value(e: &Error) -> serde_json::Value {
    let mut v = json!({ "error": { "code": e.code, "message": e.message } });
    if let Some(rule) = &e.rule {
        v["error"]["rule"] = json!(rule);
    }
    if let Some(p) = &e.payment_id {
        v["error"]["payment_id"] = json!(p);
    }
    v
}

pub fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError(Error::bad_request(code, message))
}
