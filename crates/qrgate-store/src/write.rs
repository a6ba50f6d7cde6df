//! Every kind of write, run by either store's transaction machinery.

use std::future::Future;

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

/// One kind of write the store runs in a transaction (a SQLite writer's
/// batch, or a PostgreSQL transaction retried on serialization failure).
/// Each kind is its own type with its own answer, so a caller gets back what
/// it asked for: there is no shared result enum to match, and no "wrong kind
/// of answer" case to invent an error for.
pub(crate) trait Job: Send + Sync + 'static {
    type Out: Send + 'static;
    fn run<C: Conn>(
        &self,
        c: &mut C,
    ) -> impl Future<Output = Result<Self::Out, MovementError>> + Send;
}

/// `impl Job for $ty`: its answer type and the body, with `$job` the job
/// and `$c` the connection.
macro_rules! job {
    ($ty:ty => $out:ty, |$job:ident, $c:ident| $body:expr) => {
        impl Job for $ty {
            type Out = $out;
            async fn run<C: Conn>(&self, $c: &mut C) -> Result<$out, MovementError> {
                let $job = self;
                Ok($body)
            }
        }
    };
}

/// A money movement, or any [`Movement`]: all of it or nothing.
pub(crate) struct Apply(pub(crate) Prepared);
job!(Apply => Applied, |j, c| ops::apply(c, &j.0).await?);

/// A row written once.
pub(crate) struct Insert(pub(crate) Record);
job!(Insert => (), |j, c| ops::insert(c, &j.0).await?);

/// A change of state that writes its audit row only when it changed
/// something (`true`): a second revocation of the same key is not audited
/// twice.
pub(crate) struct Audited<J> {
    pub(crate) change: J,
    pub(crate) at: Timestamp,
    pub(crate) audit: Option<AuditEntry>,
}

impl<J: Job<Out = bool>> Job for Audited<J> {
    type Out = bool;
    async fn run<C: Conn>(&self, c: &mut C) -> Result<bool, MovementError> {
        let changed = self.change.run(c).await?;
        if let (true, Some(audit)) = (changed, &self.audit) {
            let details = audit.details.to_string();
            ops::append_audit(c, audit, &details, self.at.unix_millis()).await?;
        }
        Ok(changed)
    }
}

pub(crate) struct ChangeKeys(pub(crate) KeyChange);
job!(ChangeKeys => bool, |j, c| ops::change_keys(c, &j.0).await?);

pub(crate) struct RevokeApiKey {
    pub(crate) id: String,
    pub(crate) at: Timestamp,
}
job!(RevokeApiKey => bool, |j, c| ops::revoke_api_key(c, &j.id, j.at).await?);

pub(crate) struct LiftBlock {
    pub(crate) id: String,
    pub(crate) at: Timestamp,
}
job!(LiftBlock => bool, |j, c| ops::lift_block(c, &j.id, j.at).await?);

pub(crate) struct ChangeEndpoint {
    pub(crate) change: EndpointChange,
    pub(crate) at: Timestamp,
}
job!(ChangeEndpoint => bool, |j, c| ops::change_endpoint(c, &j.change, j.at).await?);

pub(crate) struct ChangeCredential {
    pub(crate) change: CredentialChange,
    pub(crate) at: Timestamp,
}
job!(ChangeCredential => bool, |j, c| ops::change_credential(c, &j.change, j.at).await?);

pub(crate) struct ReplaceSecret {
    pub(crate) row: SecretRow,
    pub(crate) value: String,
}
job!(ReplaceSecret => bool, |j, c| ops::replace_secret(c, &j.row, &j.value).await?);

pub(crate) struct AddGatewaySecret {
    pub(crate) name: String,
    pub(crate) value: String,
    pub(crate) at: Timestamp,
}
job!(AddGatewaySecret => bool, |j, c| ops::add_gateway_secret(c, &j.name, &j.value, j.at).await?);

pub(crate) struct MarkDelivered {
    pub(crate) seq: i64,
    pub(crate) at: Timestamp,
}
job!(MarkDelivered => bool, |j, c| ops::outbox_mark_delivered(c, j.seq, j.at).await?);

pub(crate) struct PurgeIdempotency(pub(crate) Timestamp);
job!(PurgeIdempotency => u64, |j, c| ops::purge_idempotency(c, j.0).await?);

pub(crate) struct Settle(pub(crate) SettleDay);
job!(Settle => Settled, |j, c| ops::settle_day(c, &j.0).await?);

pub(crate) struct ClaimPayout {
    pub(crate) id: String,
    pub(crate) attempts: i64,
    pub(crate) now: Timestamp,
    pub(crate) until: Timestamp,
}
job!(ClaimPayout => bool, |j, c| ops::claim_payout(c, &j.id, j.attempts, (j.now, j.until)).await?);

pub(crate) struct ChangePayout(pub(crate) PayoutChange);
job!(ChangePayout => bool, |j, c| ops::change_payout(c, &j.0).await?);

pub(crate) struct ReleaseInstantCap {
    pub(crate) complaint: Complaint,
    pub(crate) at: Timestamp,
}
job!(ReleaseInstantCap => bool, |j, c| ops::release_instant_cap(c, &j.complaint, j.at).await?);

pub(crate) struct EndWebSession {
    pub(crate) token_hash: String,
    pub(crate) at: Timestamp,
}
job!(EndWebSession => bool, |j, c| ops::end_web_session(c, &j.token_hash, j.at).await?);

pub(crate) struct PurgeWebSessions {
    pub(crate) before: Timestamp,
}
job!(PurgeWebSessions => u64, |j, c| ops::purge_web_sessions(c, j.before).await?);

pub(crate) struct AddPhoto {
    pub(crate) photo: NewPhoto,
    pub(crate) at: Timestamp,
}
job!(AddPhoto => bool, |j, c| ops::add_photo(c, &j.photo, j.at).await?);

pub(crate) struct ClearProcessorPending {
    pub(crate) id: String,
    pub(crate) number: String,
}
job!(ClearProcessorPending => bool, |j, c| ops::clear_processor_pending(c, &j.id, &j.number).await?);

pub(crate) struct DeferProcessorRetry {
    pub(crate) id: String,
    pub(crate) number: String,
    pub(crate) next: Timestamp,
}
job!(DeferProcessorRetry => bool, |j, c| ops::defer_processor_retry(c, &j.id, &j.number, j.next).await?);

pub(crate) struct TakeLease {
    pub(crate) name: String,
    pub(crate) holder: String,
    pub(crate) now: Timestamp,
    pub(crate) until: Timestamp,
}
job!(TakeLease => bool, |j, c| ops::take_lease(c, &j.name, &j.holder, (j.now, j.until)).await?);

pub(crate) struct PurgeCodes(pub(crate) Timestamp);
job!(PurgeCodes => u64, |j, c| ops::purge_codes(c, j.0).await?);

pub(crate) struct FanOut {
    pub(crate) events: Vec<(i64, Vec<NewDelivery>)>,
    pub(crate) at: Timestamp,
}
job!(FanOut => u64, |j, c| ops::fan_out(c, &j.events, j.at).await?);

pub(crate) struct RecordAttempt(pub(crate) AttemptResult);
job!(RecordAttempt => bool, |j, c| ops::record_attempt(c, &j.0).await?);

pub(crate) struct RetryDelivery {
    pub(crate) id: i64,
    pub(crate) at: Timestamp,
}
job!(RetryDelivery => bool, |j, c| ops::retry_delivery(c, j.id, j.at).await?);

pub(crate) struct ClaimDelivery {
    pub(crate) id: i64,
    pub(crate) seen: Timestamp,
    pub(crate) until: Timestamp,
}
job!(ClaimDelivery => bool, |j, c| ops::claim_delivery(c, j.id, j.seen, j.until).await?);

pub(crate) struct PinAttempt {
    pub(crate) customer_id: String,
    pub(crate) at: Timestamp,
    pub(crate) lock_after: i64,
    pub(crate) locked_until: Timestamp,
}
job!(PinAttempt => Option<(i64, Option<Timestamp>)>, |j, c| {
    ops::pin_attempt(c, &j.customer_id, j.at, j.lock_after, j.locked_until).await?
});

pub(crate) struct PinSucceeded {
    pub(crate) customer_id: String,
    pub(crate) at: Timestamp,
}
job!(PinSucceeded => (), |j, c| ops::pin_succeeded(c, &j.customer_id, j.at).await?);

pub(crate) struct PinRefund {
    pub(crate) customer_id: String,
    pub(crate) at: Timestamp,
    pub(crate) lift_lock: bool,
}
job!(PinRefund => (), |j, c| ops::pin_refund(c, &j.customer_id, j.at, j.lift_lock).await?);

/// Chain a batch of queued audit entries (PostgreSQL).
pub(crate) struct ChainAudit;
job!(ChainAudit => u64, |_j, c| ops::chain_audit(c).await?);
