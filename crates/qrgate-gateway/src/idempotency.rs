//! Idempotency of money-moving requests: the key a client sends, the hash
//! of the request it names, and the answer stored with the movement so that
//! a retry gets the same answer without anything moving again (rule
//! QG-IDEMPOTENCY). The HTTP edge reads the header and the body; what a key
//! may be and what a retry gets is decided here.

use qrgate_store::Store;

use crate::{Error, Gateway, Kind, Principal};

/// A request's idempotency: who may replay it, the key, and the request's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idem {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
}

impl Idem {
    /// What to store so that a replay of this request answers `status` and `body`.
    pub fn record(self, status: u16, body: String) -> qrgate_store::IdempotencyRecord {
        qrgate_store::IdempotencyRecord {
            scope: self.scope,
            key: self.key,
            request_hash: self.request_hash,
            response_status: status,
            response_body: body,
        }
    }
}

/// The stored response of a money-moving request: what to answer now and on
/// every replay of its Idempotency-Key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// JSON.
    pub body: String,
    /// True when this is the stored response of an earlier request.
    pub replayed: bool,
}

impl Reply {
    pub fn new(status: u16, body: String) -> Reply {
        Reply {
            status,
            body,
            replayed: false,
        }
    }

    /// The answer for an applied movement: `status` and `body` when it ran
    /// now, the stored answer when it was a replay.
    pub fn of(applied: qrgate_store::Applied, status: u16, body: String) -> Reply {
        match applied {
            qrgate_store::Applied::Done { .. } => Reply::new(status, body),
            qrgate_store::Applied::Replayed { status, body } => Reply {
                status,
                body,
                replayed: true,
            },
        }
    }
}

/// The longest Idempotency-Key accepted.
pub const MAX_KEY_LEN: usize = 255;

impl Idem {
    /// The idempotency of a request by `p`: `key` as the client sent it
    /// (1 to 255 visible ASCII characters), and the request it names
    /// (method, path and the body's JSON with its keys sorted, so that a
    /// retry formatted differently is the same request).
    pub fn of_request(
        p: &Principal,
        key: Option<&str>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Idem, Error> {
        let key = key.ok_or_else(|| {
            Error::bad_request(
                "idempotency_key_required",
                "this request moves money: send an Idempotency-Key header (e.g. a UUID) and reuse it when you retry",
            )
        })?;
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ));
        }
        let canonical_body = serde_json::from_slice::<serde_json::Value>(body)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let request_hash =
            qrgate_store::sha256_hex(format!("{method}\n{path}\n{canonical_body}").as_bytes());
        Ok(Idem {
            scope: format!(
                "{}:{}",
                p.role.as_str(),
                p.subject.as_deref().unwrap_or(&p.key_id)
            ),
            key: key.to_owned(),
            request_hash,
        })
    }
}

impl<S: Store> Gateway<S> {
    /// The stored answer of an earlier request with this key, before any
    /// work is done: the same request gets it again (marked replayed); a
    /// different request under the same key is refused.
    pub async fn stored_answer(&self, i: &Idem) -> Result<Option<Reply>, Error> {
        match self.store.idempotency(&i.scope, &i.key).await? {
            Some(rec) if rec.request_hash == i.request_hash => Ok(Some(Reply {
                status: rec.response_status,
                body: rec.response_body,
                replayed: true,
            })),
            Some(_) => Err(Error::new(
                Kind::Conflict,
                "idempotency_key_reused",
                format!(
                    "Idempotency-Key {:?} was used with a different request; use a new key for a new request",
                    i.key
                ),
            )
            .with_rule("QG-IDEMPOTENCY")),
            None => Ok(None),
        }
    }
}
