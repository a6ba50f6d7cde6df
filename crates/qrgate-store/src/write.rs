//! Every kind of write, run by either store's transaction machinery.

use qrgate_core::Timestamp;

use crate::db::Conn;
use crate::error::MovementError;
use crate::model::*;
use crate::ops;

/// A movement with its JSON already turned into text. The text is made by
/// [`Prepared::new`] on the caller's task, before the movement reaches a
/// store's write path, so the SQLite writer (the one serial stage of a
/// payment) only binds it, and a batch that runs again with savepoints does
/// not serialize it twice. Its fields are private: [`Prepared::new`] is the
/// only way to make one, so the texts always belong to the movement.
pub(crate) struct Prepared {
    movement: Movement,
    texts: Texts,
}

/// The JSON texts a movement writes: payment details, event payloads (in
/// event order), audit details.
pub(crate) struct Texts {
    pub(crate) payment_details: Option<String>,
    pub(crate) payloads: Vec<String>,
    pub(crate) audit_details: Option<String>,
}

impl Prepared {
    pub(crate) fn new(movement: Movement) -> Prepared {
        let texts = Texts {
            payment_details: match &movement.payment {
                // A text that cannot be made is left out, and the write
                // refuses a payment whose details are missing.
                Some(PaymentWrite::Insert(p)) => serde_json::to_string(&p.details).ok(),
                Some(PaymentWrite::Transition { details, .. }) => {
                    details.as_ref().and_then(|d| serde_json::to_string(d).ok())
                }
                _ => None,
            },
            payloads: movement
                .events
                .iter()
                .map(|e| e.payload.to_string())
                .collect(),
            audit_details: movement.audit.as_ref().map(|a| a.details.to_string()),
        };
        Prepared { movement, texts }
    }

    /// A movement whose texts were never made: for tests of the paths that
    /// must refuse it rather than write a row empty or skip it.
    #[cfg(test)]
    pub(crate) fn without_texts(movement: Movement) -> Prepared {
        Prepared {
            movement,
            texts: Texts {
                payment_details: None,
                payloads: Vec::new(),
                audit_details: None,
            },
        }
    }

    pub(crate) fn movement(&self) -> &Movement {
        &self.movement
    }

    pub(crate) fn texts(&self) -> &Texts {
        &self.texts
    }
}

pub(crate) enum Work {
    Apply(Box<Prepared>),
    Insert(Box<Record>),
    ChangeKeys(Box<KeyChange>, Timestamp, Option<AuditEntry>),
    ReplaceSecret(Box<SecretRow>, String),
    AddGatewaySecret(String, String, Timestamp),
    MarkDelivered(i64, Timestamp),
    PurgeIdempotency(Timestamp),
    PurgeCodes(Timestamp),
    RevokeApiKey(String, Timestamp, AuditEntry),
    LiftBlock(String, Timestamp, AuditEntry),
    FanOut(Vec<(i64, Vec<NewDelivery>)>, Timestamp),
    RecordAttempt(AttemptResult),
    RetryDelivery(i64, Timestamp),
    ClaimDelivery(i64, Timestamp, Timestamp),
    ChangeEndpoint(Box<EndpointChange>, Timestamp, AuditEntry),
    ChangeCredential(Box<CredentialChange>, Timestamp, AuditEntry),
    PinAttempt(String, Timestamp, i64, Timestamp),
    PinSucceeded(String, Timestamp),
    PinRefund(String, Timestamp, bool),
    ChainAudit,
}

pub(crate) enum Done {
    Applied(Applied),
    Unit,
    Count(u64),
    Flag(bool),
    PinAttempt(Option<(i64, Option<Timestamp>)>),
}

pub(crate) async fn run<C: Conn>(c: &mut C, work: &Work) -> Result<Done, MovementError> {
    Ok(match work {
        Work::Apply(p) => Done::Applied(ops::apply(c, p).await?),
        Work::Insert(r) => {
            ops::insert(c, r).await?;
            Done::Unit
        }
        Work::ReplaceSecret(row, value) => Done::Flag(ops::replace_secret(c, row, value).await?),
        Work::AddGatewaySecret(name, value, at) => {
            Done::Flag(ops::add_gateway_secret(c, name, value, *at).await?)
        }
        Work::ChangeKeys(change, at, audit) => {
            let done = ops::change_keys(c, change).await?;
            if let (true, Some(audit)) = (done, audit) {
                ops::append_audit(c, audit, &audit.details.to_string(), at.unix_millis()).await?;
            }
            Done::Flag(done)
        }
        Work::MarkDelivered(seq, at) => Done::Flag(ops::outbox_mark_delivered(c, *seq, *at).await?),
        Work::PurgeIdempotency(t) => Done::Count(ops::purge_idempotency(c, *t).await?),
        Work::PurgeCodes(t) => Done::Count(ops::purge_codes(c, *t).await?),
        Work::RevokeApiKey(id, at, audit) => {
            let done = ops::revoke_api_key(c, id, *at).await?;
            if done {
                ops::append_audit(c, audit, &audit.details.to_string(), at.unix_millis()).await?;
            }
            Done::Flag(done)
        }
        Work::LiftBlock(id, at, audit) => {
            let done = ops::lift_block(c, id, *at).await?;
            if done {
                ops::append_audit(c, audit, &audit.details.to_string(), at.unix_millis()).await?;
            }
            Done::Flag(done)
        }
        Work::FanOut(events, at) => Done::Count(ops::fan_out(c, events, *at).await?),
        Work::RecordAttempt(a) => Done::Flag(ops::record_attempt(c, a).await?),
        Work::RetryDelivery(id, at) => Done::Flag(ops::retry_delivery(c, *id, *at).await?),
        Work::ClaimDelivery(id, seen, until) => {
            Done::Flag(ops::claim_delivery(c, *id, *seen, *until).await?)
        }
        Work::ChangeEndpoint(change, at, audit) => {
            let done = ops::change_endpoint(c, change, *at).await?;
            if done {
                ops::append_audit(c, audit, &audit.details.to_string(), at.unix_millis()).await?;
            }
            Done::Flag(done)
        }
        Work::ChangeCredential(change, at, audit) => {
            let done = ops::change_credential(c, change, *at).await?;
            if done {
                ops::append_audit(c, audit, &audit.details.to_string(), at.unix_millis()).await?;
            }
            Done::Flag(done)
        }
        Work::PinAttempt(id, at, after, until) => {
            Done::PinAttempt(ops::pin_attempt(c, id, *at, *after, *until).await?)
        }
        Work::ChainAudit => Done::Count(ops::chain_audit(c).await?),
        Work::PinSucceeded(id, at) => {
            ops::pin_succeeded(c, id, *at).await?;
            Done::Unit
        }
        Work::PinRefund(id, at, lift_lock) => {
            ops::pin_refund(c, id, *at, *lift_lock).await?;
            Done::Unit
        }
    })
}
