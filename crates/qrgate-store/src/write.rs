//! Every kind of write, run by either store's transaction machinery.

use qrgate_core::Timestamp;

use crate::db::Conn;
use crate::error::MovementError;
use crate::model::*;
use crate::ops;

pub(crate) enum Work {
    Apply(Box<Movement>),
    Insert(Box<Record>),
    SaveKeys(Vec<StoredKey>),
    MarkDelivered(i64, Timestamp),
    PurgeIdempotency(Timestamp),
    PurgeUsedCodes(Timestamp),
    RevokeApiKey(String, Timestamp, AuditEntry),
    LiftBlock(String, Timestamp, AuditEntry),
    FanOut(Vec<(i64, Vec<NewDelivery>)>, Timestamp),
    RecordAttempt(AttemptResult),
    RetryDelivery(i64, Timestamp),
    SetCredentials(Credentials),
    PinFailed(String, Timestamp, i64, Timestamp),
    PinSucceeded(String, Timestamp),
    ChainAudit,
}

pub(crate) enum Done {
    Applied(Applied),
    Unit,
    Count(u64),
    Flag(bool),
    PinState(i64, Option<Timestamp>),
}

pub(crate) async fn run<C: Conn>(c: &mut C, work: &Work) -> Result<Done, MovementError> {
    Ok(match work {
        Work::Apply(m) => Done::Applied(ops::apply(c, m).await?),
        Work::Insert(r) => {
            ops::insert(c, r).await?;
            Done::Unit
        }
        Work::SaveKeys(k) => {
            ops::save_keys(c, k).await?;
            Done::Unit
        }
        Work::MarkDelivered(seq, at) => Done::Flag(ops::outbox_mark_delivered(c, *seq, *at).await?),
        Work::PurgeIdempotency(t) => Done::Count(ops::purge_idempotency(c, *t).await?),
        Work::PurgeUsedCodes(t) => Done::Count(ops::purge_used_codes(c, *t).await?),
        Work::RevokeApiKey(id, at, audit) => {
            let done = ops::revoke_api_key(c, id, *at).await?;
            if done {
                ops::append_audit(c, audit, at.unix_millis()).await?;
            }
            Done::Flag(done)
        }
        Work::LiftBlock(id, at, audit) => {
            let done = ops::lift_block(c, id, *at).await?;
            if done {
                ops::append_audit(c, audit, at.unix_millis()).await?;
            }
            Done::Flag(done)
        }
        Work::FanOut(events, at) => Done::Count(ops::fan_out(c, events, *at).await?),
        Work::RecordAttempt(a) => Done::Flag(ops::record_attempt(c, a).await?),
        Work::RetryDelivery(id, at) => Done::Flag(ops::retry_delivery(c, *id, *at).await?),
        Work::SetCredentials(cr) => {
            ops::set_credentials(c, cr).await?;
            Done::Unit
        }
        Work::PinFailed(id, at, after, until) => {
            let (n, l) = ops::pin_failed(c, id, *at, *after, *until).await?;
            Done::PinState(n, l)
        }
        Work::ChainAudit => Done::Count(ops::chain_audit(c).await?),
        Work::PinSucceeded(id, at) => {
            ops::pin_succeeded(c, id, *at).await?;
            Done::Unit
        }
    })
}
