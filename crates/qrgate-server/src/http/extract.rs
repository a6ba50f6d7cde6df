//! Request extractors: the caller (from the bearer key, rule QG-AUTH),
//! strict JSON bodies (rule QG-INPUT), and the Idempotency-Key with the
//! request's hash.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{Method, request::Parts};
use axum::response::Response;
use serde::de::DeserializeOwned;

use qrgate_gateway::{Error, Idem, Kind, Principal, Reply, Role};

use super::AppState;
use super::error::{ApiError, bad};

/// The authenticated caller.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Auth(state.gw.authenticate(bearer(parts)?).await?))
    }
}

/// The caller of `POST /v1/payments`, whose key may come from a copy up to
/// a second old: every write of that route checks again that the key is
/// unrevoked ([`Gateway::authenticate_for_payment`]).
///
/// [`Gateway::authenticate_for_payment`]: qrgate_gateway::Gateway::authenticate_for_payment
pub struct PaymentAuth(pub Principal);

impl FromRequestParts<AppState> for PaymentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(PaymentAuth(
            state.gw.authenticate_for_payment(bearer(parts)?).await?,
        ))
    }
}

/// The secret of `Authorization: Bearer <key>`.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError(Error::new(
                Kind::Unauthorized,
                "unauthorized",
                "send your API key as Authorization: Bearer <key>",
            ))
        })
}

/// A JSON body: `Content-Type: application/json`, no unknown fields (the
/// target types deny them), no key twice in one object, within the body
/// limit. The raw bytes are kept
/// for the idempotency hash.
pub struct StrictJson<T> {
    pub value: T,
    pub bytes: Bytes,
}

impl<T: DeserializeOwned> FromRequest<AppState> for StrictJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let ct = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !ct.starts_with("application/json") {
            return Err(ApiError(Error::new(
                Kind::BadRequest,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            )));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                bad(
                    "payload_too_large",
                    format!("the body is larger than {} bytes", super::MAX_BODY),
                )
            } else {
                bad("invalid_request", format!("could not read the body: {e}"))
            }
        })?;
        // A key given twice would be read as its last value here and maybe
        // as its first by something in front of the gateway: refused.
        if let Err(qrgate_core::json::JsonProblem::DuplicateKey(key)) =
            qrgate_core::json::check_unique_keys(&bytes)
        {
            return Err(bad(
                "duplicate_key",
                format!("request body: the key {key:?} appears twice in one object; send it once"),
            ));
        }
        // Every body is an object: a struct would also read an array by
        // position, past the field names its checks are written against.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(bad("invalid_json", "the body must be a JSON object"));
        }
        let value = serde_json::from_slice::<T>(&bytes).map_err(|e| {
            let (code, msg) = super::body::refusal(&e);
            bad(code, format!("request body: {msg}"))
        })?;
        Ok(StrictJson { value, bytes })
    }
}

/// What a money-moving request's idempotency is computed over, besides
/// its body: the method, the path and the Idempotency-Key header.
pub struct Meta {
    method: Method,
    path: String,
    key: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Meta {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            key: parts
                .headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    }
}

impl Meta {
    /// The request's idempotency as `p` sends it (the Idempotency-Key is
    /// required on requests that move money).
    pub fn idem(&self, p: &Principal, body: &[u8]) -> Result<Idem, ApiError> {
        Ok(Idem::of_request(
            p,
            self.key.as_deref(),
            self.method.as_str(),
            &self.path,
            body,
            super::routes::render,
        )?)
    }
}

/// Run a money-moving request once: `p` must have one of `roles`; a retry
/// of an earlier request with the same key gets its stored answer before
/// any work is done; otherwise `work` runs with the request's idempotency
/// (its movement stores the answer with the money).
pub async fn once<F, Fut>(
    s: &AppState,
    p: &Principal,
    roles: &[Role],
    meta: &Meta,
    body: &[u8],
    work: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(Idem) -> Fut,
    Fut: Future<Output = Result<Reply, Error>>,
{
    p.require(roles)?;
    let i = meta.idem(p, body)?;
    if let Some(stored) = s.gw.stored_answer(&i).await? {
        return Ok(super::routes::reply(stored));
    }
    Ok(super::routes::reply(work(i).await?))
}

/// A query string, refused in the API's error format (unknown parameters too).
pub struct StrictQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for StrictQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| StrictQuery(q.0))
            .map_err(|e| {
                bad(
                    "invalid_request",
                    format!("query string: {}", e.body_text()),
                )
            })
    }
}
