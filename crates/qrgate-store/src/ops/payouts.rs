//! Payouts: reading them, and a payout's step after the bank answered.

use qrgate_core::state::PayoutStatus;
use qrgate_core::{Currency, Timestamp};

use crate::db::{Arg, Conn, Row};
use crate::error::{MovementError, StoreError};
use crate::steps;

use super::*;

macro_rules! payout_columns {
    () => {
        "SELECT id, merchant_id, amount_minor, currency, bank_account, status, attempts, next_attempt_at, \
         failure, bank_reference, created_at, updated_at FROM payouts "
    };
}

impl FromRow for Payout {
    fn from_row(r: &Row) -> Result<Payout, StoreError> {
        Ok(Payout {
            id: r.str("id")?,
            merchant_id: r.str("merchant_id")?,
            amount_minor: r.i64("amount_minor")?,
            currency: parsed::<Currency>(&r.str("currency")?, "currency")?,
            bank_account: r.str("bank_account")?,
            status: parsed::<PayoutStatus>(&r.str("status")?, "payout status")?,
            attempts: r.i64("attempts")?,
            next_attempt_at: opt_ts(r, "next_attempt_at")?,
            failure: r.opt_str("failure")?,
            bank_reference: r.opt_str("bank_reference")?,
            created_at: ts(r, "created_at")?,
            updated_at: ts(r, "updated_at")?,
        })
    }
}

pub(crate) async fn payout<C: Conn>(c: &mut C, id: &str) -> Result<Option<Payout>, StoreError> {
    const SQL: &str = concat!(payout_columns!(), "WHERE id = $1");
    let rows = c.rows(SQL, &[Arg::Str(id)]).await?;
    rows.first().map(Payout::from_row).transpose()
}

/// A merchant's payouts, newest first, at most `limit`.
pub(crate) async fn payouts_of<C: Conn>(
    c: &mut C,
    merchant_id: &str,
    created: (Option<Timestamp>, Option<Timestamp>),
    limit: i64,
) -> Result<Vec<Payout>, StoreError> {
    const SQL: &str = concat!(
        payout_columns!(),
        "WHERE merchant_id = $1 AND ($2 IS NULL OR created_at >= $2) AND ($3 IS NULL OR created_at < $3) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    );
    let (gte, lt) = created;
    let rows = c
        .rows(
            SQL,
            &[
                Arg::Str(merchant_id),
                Arg::OptI64(gte.map(Timestamp::unix_millis)),
                Arg::OptI64(lt.map(Timestamp::unix_millis)),
                Arg::I64(limit),
            ],
        )
        .await?;
    rows.iter().map(Payout::from_row).collect()
}

/// Pending payouts due for an attempt at `now`, oldest due first. The
/// literal status matches the partial index `payouts_pending`.
pub(crate) async fn payouts_due<C: Conn>(
    c: &mut C,
    now: Timestamp,
    limit: i64,
) -> Result<Vec<Payout>, StoreError> {
    const SQL: &str = concat!(
        payout_columns!(),
        "WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2"
    );
    let rows = c
        .rows(SQL, &[Arg::I64(now.unix_millis()), Arg::I64(limit)])
        .await?;
    rows.iter().map(Payout::from_row).collect()
}

/// Claim a pending payout's next attempt (one node asks the bank at a
/// time): move its next attempt to `until`, while it is still pending
/// after `attempts` attempts and due at `now`.
pub(crate) async fn claim_payout<C: Conn>(
    c: &mut C,
    id: &str,
    attempts: i64,
    (now, until): (Timestamp, Timestamp),
) -> Result<bool, MovementError> {
    let n = c
        .exec(
            "UPDATE payouts SET next_attempt_at = $1 WHERE id = $2 AND status = 'pending' \
             AND attempts = $3 AND next_attempt_at <= $4",
            &[
                Arg::I64(until.unix_millis()),
                Arg::Str(id),
                Arg::I64(attempts),
                Arg::I64(now.unix_millis()),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Apply a payout's step: `false` (nothing written) when it is no longer
/// in `from` after `attempts_before` attempts.
pub(crate) async fn change_payout<C: Conn>(
    c: &mut C,
    ch: &PayoutChange,
) -> Result<bool, MovementError> {
    let at = ch.at.unix_millis();
    let n = c
        .exec(
            "UPDATE payouts SET status = $1, attempts = $2, next_attempt_at = $3, failure = $4, \
             bank_reference = COALESCE($5, bank_reference), updated_at = $6 \
             WHERE id = $7 AND status = $8 AND attempts = $9",
            &[
                Arg::Str(ch.to.as_str()),
                Arg::I64(ch.attempts),
                Arg::OptI64(ch.next_attempt_at.map(|t| t.unix_millis())),
                Arg::OptStr(ch.failure.as_deref()),
                Arg::OptStr(ch.bank_reference.as_deref()),
                Arg::I64(at),
                Arg::Str(&ch.id),
                Arg::Str(ch.from.as_str()),
                Arg::I64(ch.attempts_before),
            ],
        )
        .await?;
    if n == 0 {
        return Ok(false);
    }
    if let Some(p) = &ch.posting {
        super::movement::post(c, p, at).await?;
    }
    for e in &ch.events {
        let payload = e.payload.to_string();
        let (sql, args) = steps::alone(|q| steps::outbox(q, e, &payload, at));
        c.exec(sql, &args).await?;
    }
    if let Some(a) = &ch.audit {
        let details = a.details.to_string();
        append_audit(c, a, &details, at).await?;
    }
    Ok(true)
}
