//! Idempotency of money-moving requests: the key a client sends, the hash
//! of the request it names, and the answer stored with the movement so that
//! a retry gets the same answer without anything moving again (rule
//! QG-IDEMPOTENCY). The HTTP edge reads the header and the body; what a key
//! may be and what a retry gets is decided here.

use qrgate_store::Store;

use crate::{Error, Gateway, Kind, Principal};

/// What a money-moving request came to, in the gateway's terms. The edge
/// says it in its own protocol (a status and a body) with its [`Render`].
#[derive(Debug)]
pub enum Outcome<'a> {
    /// Something new was made (a payment, a refund, a top-up); `view` is its JSON.
    Created { view: &'a str },
    /// Something that exists changed (a confirmation, a cancel), or one
    /// made before is answered again; `view` is its JSON.
    Done { view: &'a str },
    /// Refused, and the refusal is kept with what it consumed (a payment
    /// code is burned even when the payment fails): every retry is refused
    /// alike.
    Refused(&'a Error),
}

/// The edge's words for an outcome: what it answered, and what every
/// retry of the request is answered again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    pub status: u16,
    pub body: String,
}

/// How the edge says an outcome. It comes with each request's idempotency,
/// so the answer stored with the movement is the edge's own, written once.
pub type Render = fn(&Outcome<'_>) -> Said;

/// A request's idempotency: who may replay it, the key, the request's
/// hash, and how the edge words its answer.
#[derive(Debug, Clone)]
pub struct Idem {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
    pub render: Render,
}

impl Idem {
    /// What to store so that a replay of this request is answered as the
    /// edge answers `outcome` now.
    pub fn record(self, outcome: &Outcome<'_>) -> qrgate_store::IdempotencyRecord {
        let said = (self.render)(outcome);
        qrgate_store::IdempotencyRecord {
            scope: self.scope,
            key: self.key,
            request_hash: self.request_hash,
            response_status: said.status,
            response_body: said.body,
        }
    }
}

/// What a fresh answer is: something made, or something done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fresh {
    Created,
    Done,
}

/// The answer to a money-moving request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Done now: what it was and the view's JSON, for the edge to say.
    Fresh(Fresh, String),
    /// The stored answer of an earlier request with the same key, in the
    /// edge's words.
    Replayed(Said),
}

impl Reply {
    /// The answer for an applied movement: `body` as `fresh` when it ran
    /// now, the stored answer when it was a replay.
    pub fn of(applied: qrgate_store::Applied, fresh: Fresh, body: String) -> Reply {
        match applied {
            qrgate_store::Applied::Done { .. } => Reply::Fresh(fresh, body),
            qrgate_store::Applied::Replayed { status, body } => {
                Reply::Replayed(Said { status, body })
            }
        }
    }

    /// The body: the view's JSON, or the stored answer's.
    pub fn body(&self) -> &str {
        match self {
            Reply::Fresh(_, body) | Reply::Replayed(Said { body, .. }) => body,
        }
    }

    pub fn into_body(self) -> String {
        match self {
            Reply::Fresh(_, body) | Reply::Replayed(Said { body, .. }) => body,
        }
    }

    /// What a fresh answer is; `None` for a replay.
    pub fn fresh(&self) -> Option<Fresh> {
        match self {
            Reply::Fresh(f, _) => Some(*f),
            Reply::Replayed(_) => None,
        }
    }

    pub fn is_replayed(&self) -> bool {
        matches!(self, Reply::Replayed(_))
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
        render: Render,
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
            render,
        })
    }
}

impl<S: Store> Gateway<S> {
    /// The stored answer of an earlier request with this key, before any
    /// work is done: the same request gets it again (marked replayed); a
    /// different request under the same key is refused.
    pub async fn stored_answer(&self, i: &Idem) -> Result<Option<Reply>, Error> {
        match self.store.idempotency(&i.scope, &i.key).await? {
            Some(rec) if rec.request_hash == i.request_hash => Ok(Some(Reply::Replayed(Said {
                status: rec.response_status,
                body: rec.response_body,
            }))),
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
