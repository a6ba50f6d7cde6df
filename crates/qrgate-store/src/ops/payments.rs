//! Reads of payments, refunds, accounts, counters and idempotency records,
//! and the purges of what is past its keeping time.

use qrgate_core::{AccountId, Timestamp};

use crate::db::{Arg, Conn, Row};
use crate::error::StoreError;
use crate::steps::Params;

use super::*;

// ---------- reads and simple writes ----------

pub(crate) async fn idempotency<C: Conn>(
    c: &mut C,
    scope: &str,
    key: &str,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let rows = c
        .rows(
            "SELECT request_hash, response_status, response_body FROM idempotency WHERE scope = $1 AND idem_key = $2",
            &[Arg::Str(scope), Arg::Str(key)],
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(IdempotencyRecord {
        scope: scope.to_owned(),
        key: key.to_owned(),
        request_hash: r.str("request_hash")?,
        response_status: u16::try_from(r.i64("response_status")?)
            .map_err(|_| StoreError::Corrupt("response status".into()))?,
        response_body: r.str("response_body")?,
    }))
}

/// (amount, uses) of a counter; zeros when it was never charged.
pub(crate) async fn counter<C: Conn>(c: &mut C, key: &str) -> Result<(i64, i64), StoreError> {
    let rows = c
        .rows(
            "SELECT amount_minor, uses FROM counters WHERE counter_key = $1",
            &[Arg::Str(key)],
        )
        .await?;
    match rows.first() {
        Some(r) => Ok((r.i64("amount_minor")?, r.i64("uses")?)),
        None => Ok((0, 0)),
    }
}

impl FromRow for Account {
    fn from_row(r: &Row) -> Result<Account, StoreError> {
        Ok(Account {
            id: qrgate_core::AccountId::stored(r.str("id")?),
            kind: r.str("kind")?,
            owner_id: r.opt_str("owner_id")?,
            currency: parsed(&r.str("currency")?, "currency")?,
            allow_negative: r.bool("allow_negative")?,
            balance_minor: r.i64("balance_minor")?,
            created_at: ts(r, "created_at")?,
            closed_until: r.opt_i64("closed_until")?.map(Timestamp::from_unix_millis),
        })
    }
}

macro_rules! account_columns {
    () => {
        "SELECT id, kind, owner_id, currency, allow_negative, balance_minor, closed_until, created_at FROM accounts "
    };
}

pub(crate) async fn account<C: Conn>(c: &mut C, id: &str) -> Result<Option<Account>, StoreError> {
    const SQL: &str = concat!(account_columns!(), "WHERE id = $1");
    let rows = c.rows(SQL, &[Arg::Str(id)]).await?;
    rows.first().map(Account::from_row).transpose()
}

pub(crate) async fn accounts<C: Conn>(
    c: &mut C,
    ids: &[AccountId],
) -> Result<Vec<Account>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // One text per number of ids (the callers ask for a few).
    let (sql, args) = crate::steps::alone(|q| {
        let marks = ids
            .iter()
            .map(|id| q.p(Arg::Str(id.as_str())))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            concat!(account_columns!(), "WHERE id IN ({}) ORDER BY id"),
            marks
        )
    });
    let rows = c.rows(sql, &args).await?;
    rows.iter().map(Account::from_row).collect()
}

pub(super) const PAYMENT_SELECT: &str = concat!(payment_columns!(), "WHERE id = $1");

/// Payments in one waiting status, oldest first, after a `(created_at, id)`
/// cursor. The literal `IN` term matches the partial index
/// `payments_waiting` (migration 0012), so the walk reads only waiting
/// payments however many others there are.
pub(crate) async fn waiting_payments<C: Conn>(
    c: &mut C,
    status: &str,
    after: Option<(Timestamp, String)>,
    limit: i64,
) -> Result<Vec<Payment>, StoreError> {
    let (after_ts, after_id) =
        after.map_or((i64::MIN, String::new()), |(t, id)| (t.unix_millis(), id));
    let rows = c
        .rows(
            concat!(
                payment_columns!(),
                "WHERE status IN ('requires_action', 'confirming') AND status = $1 \
                 AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4"
            ),
            &[
                Arg::Str(status),
                Arg::I64(after_ts),
                Arg::Str(&after_id),
                Arg::I64(limit),
            ],
        )
        .await?;
    rows.iter().map(Payment::from_row).collect()
}

impl FromRow for Payment {
    fn from_row(r: &Row) -> Result<Payment, StoreError> {
        Ok(Payment {
            id: r.str("id")?,
            merchant_id: r.str("merchant_id")?,
            customer_id: r.opt_str("customer_id")?,
            status: parsed(&r.str("status")?, "payment status")?,
            amount_minor: r.i64("amount_minor")?,
            currency: parsed(&r.str("currency")?, "currency")?,
            refunded_minor: r.i64("refunded_minor")?,
            out_trade_no: r.opt_str("out_trade_no")?,
            fee_minor: r.i64("fee_minor")?,
            details: typed_json(&r.str("details")?)?,
            created_at: ts(r, "created_at")?,
            updated_at: ts(r, "updated_at")?,
        })
    }
}

pub(crate) async fn payment<C: Conn>(c: &mut C, id: &str) -> Result<Option<Payment>, StoreError> {
    let rows = c.rows(PAYMENT_SELECT, &[Arg::Str(id)]).await?;
    rows.first().map(Payment::from_row).transpose()
}

/// The columns of a refund, as [`Refund::from_row`] reads them.
macro_rules! refund_select {
    () => {
        "SELECT r.id, r.payment_id, p.merchant_id, r.amount_minor, r.currency, r.status, \
         r.out_refund_no, r.fee_minor, r.metadata, r.created_at FROM refunds r JOIN payments p ON p.id = r.payment_id"
    };
}

impl FromRow for Refund {
    fn from_row(r: &Row) -> Result<Refund, StoreError> {
        Ok(Refund {
            id: r.str("id")?,
            payment_id: r.str("payment_id")?,
            merchant_id: r.str("merchant_id")?,
            amount_minor: r.i64("amount_minor")?,
            currency: parsed(&r.str("currency")?, "currency")?,
            status: r.str("status")?,
            out_refund_no: r.str("out_refund_no")?,
            fee_minor: r.i64("fee_minor")?,
            metadata: metadata(r, "metadata")?,
            created_at: ts(r, "created_at")?,
        })
    }
}

pub(crate) async fn refunds_of<C: Conn>(
    c: &mut C,
    payment_id: &str,
) -> Result<Vec<Refund>, StoreError> {
    let sql = concat!(
        refund_select!(),
        " WHERE r.payment_id = $1 ORDER BY r.created_at, r.id"
    );
    let rows = c.rows(sql, &[Arg::Str(payment_id)]).await?;
    rows.iter().map(Refund::from_row).collect()
}

/// One refund by its id.
pub(crate) async fn refund<C: Conn>(c: &mut C, id: &str) -> Result<Option<Refund>, StoreError> {
    let sql = concat!(refund_select!(), " WHERE r.id = $1");
    let rows = c.rows(sql, &[Arg::Str(id)]).await?;
    rows.first().map(Refund::from_row).transpose()
}

/// A page of refunds, newest first, as [`RefundQuery`] asks; and whether
/// there are more. A merchant's refunds are one index range
/// (`refunds_merchant_created`); a refund number is unique per merchant,
/// except on refunds from before numbers were (`number_shared`), which are
/// found through their payment only.
pub(crate) async fn list_refunds<C: Conn>(
    c: &mut C,
    q: &RefundQuery,
) -> Result<(Vec<Refund>, bool), StoreError> {
    let limit = q.limit.clamp(1, 100);
    let (after_ts, after_id) = match &q.starting_after {
        Some(id) => match refund(c, id).await? {
            Some(r) => (Some(r.created_at.unix_millis()), Some(r.id)),
            None => {
                return Err(StoreError::Corrupt(format!(
                    "starting_after: no refund {id}"
                )));
            }
        },
        None => (None, None),
    };
    let sql = concat!(
        refund_select!(),
        " WHERE ($1 IS NULL OR r.merchant_id = $1) \
         AND ($2 IS NULL OR (r.out_refund_no = $2 AND NOT r.number_shared)) \
         AND ($3 IS NULL OR r.created_at >= $3) AND ($4 IS NULL OR r.created_at < $4) \
         AND ($5 IS NULL OR r.created_at < $5 OR (r.created_at = $5 AND r.id < $6)) \
         ORDER BY r.created_at DESC, r.id DESC LIMIT $7"
    );
    let rows = c
        .rows(
            sql,
            &[
                Arg::OptStr(q.merchant_id.as_deref()),
                Arg::OptStr(q.out_refund_no.as_deref()),
                Arg::OptI64(q.created_gte.map(|t| t.unix_millis())),
                Arg::OptI64(q.created_lt.map(|t| t.unix_millis())),
                Arg::OptI64(after_ts),
                Arg::OptStr(after_id.as_deref()),
                Arg::I64(limit + 1),
            ],
        )
        .await?;
    let mut page = rows
        .iter()
        .map(Refund::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let more = page.len() as i64 > limit;
    page.truncate(limit as usize);
    Ok((page, more))
}

pub(crate) async fn purge_idempotency<C: Conn>(
    c: &mut C,
    before: Timestamp,
) -> Result<u64, StoreError> {
    Ok(c.exec(
        "DELETE FROM idempotency WHERE created_at < $1",
        &[Arg::I64(before.unix_millis())],
    )
    .await?)
}

/// Burned codes and issued numeric codes that expired before `before`: both
/// are refused by their expiry anyway, and neither table may grow forever.
pub(crate) async fn purge_codes<C: Conn>(c: &mut C, before: Timestamp) -> Result<u64, StoreError> {
    let at = [Arg::I64(before.unix_millis())];
    let used = c
        .exec("DELETE FROM used_codes WHERE expires_at < $1", &at)
        .await?;
    let issued = c
        .exec("DELETE FROM issued_codes WHERE expires_at < $1", &at)
        .await?;
    Ok(used + issued)
}

/// A customer's succeeded payments since `since`: (count, total minor units).
pub(crate) async fn payer_history<C: Conn>(
    c: &mut C,
    customer_id: &str,
    since: Timestamp,
) -> Result<(i64, i64), StoreError> {
    let rows = c
        .rows(
            "SELECT COUNT(*) AS payments, CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS amount FROM payments \
             WHERE customer_id = $1 AND created_at >= $2 AND status = 'succeeded'",
            &[Arg::Str(customer_id), Arg::I64(since.unix_millis())],
        )
        .await?;
    let r = rows.first().ok_or_else(unexpected_none)?;
    Ok((r.i64("payments")?, r.i64("amount")?))
}

/// How many of a merchant's payments succeeded in `[from, to)`, and their
/// amounts added up (one read of the merchant's index range).
pub(crate) async fn payment_totals<C: Conn>(
    c: &mut C,
    merchant_id: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<(i64, i64), StoreError> {
    let rows = c
        .rows(
            "SELECT COUNT(*) AS payments, CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS amount FROM payments \
             WHERE merchant_id = $1 AND created_at >= $2 AND created_at < $3 AND status = 'succeeded'",
            &[
                Arg::Str(merchant_id),
                Arg::I64(from.unix_millis()),
                Arg::I64(to.unix_millis()),
            ],
        )
        .await?;
    let r = rows.first().ok_or_else(unexpected_none)?;
    Ok((r.i64("payments")?, r.i64("amount")?))
}

/// How many distinct customers paid a merchant (succeeded) since `since`.
pub(crate) async fn distinct_payers<C: Conn>(
    c: &mut C,
    merchant_id: &str,
    since: Timestamp,
) -> Result<i64, StoreError> {
    let rows = c
        .rows(
            "SELECT COUNT(DISTINCT customer_id) AS payers FROM payments \
             WHERE merchant_id = $1 AND created_at >= $2 AND status = 'succeeded'",
            &[Arg::Str(merchant_id), Arg::I64(since.unix_millis())],
        )
        .await?;
    let r = rows.first().ok_or_else(unexpected_none)?;
    Ok(r.i64("payers")?)
}

/// A page of payments, newest first, and whether more follow.
pub(crate) async fn list_payments<C: Conn>(
    c: &mut C,
    q: &PaymentQuery,
) -> Result<(Vec<Payment>, bool), StoreError> {
    let limit = q.limit.clamp(1, 100);
    let (after_ts, after_id) = match &q.starting_after {
        Some(id) => match payment(c, id).await? {
            Some(p) => (Some(p.created_at.unix_millis()), Some(p.id)),
            None => {
                return Err(StoreError::Corrupt(format!(
                    "starting_after: no payment {id}"
                )));
            }
        },
        None => (None, None),
    };
    let rows = c
        .rows(
            concat!(
                payment_columns!(),
                "WHERE ($1 IS NULL OR merchant_id = $1) AND ($2 IS NULL OR customer_id = $2) AND ($3 IS NULL OR status = $3) \
             AND ($4 IS NULL OR created_at < $4 OR (created_at = $4 AND id < $5)) \
             AND ($7 IS NULL OR out_trade_no = $7 OR id IN (SELECT payment_id FROM orders \
                  WHERE out_trade_no = $7 AND ($1 IS NULL OR merchant_id = $1) AND payment_id IS NOT NULL)) \
             AND ($8 IS NULL OR created_at >= $8) \
             AND ($9 IS NULL OR created_at < $9) \
             ORDER BY created_at DESC, id DESC LIMIT $6"
            ),
            &[
                Arg::OptStr(q.merchant_id.as_deref()),
                Arg::OptStr(q.customer_id.as_deref()),
                Arg::OptStr(q.status.as_deref()),
                Arg::OptI64(after_ts),
                Arg::OptStr(after_id.as_deref()),
                Arg::I64(limit + 1),
                Arg::OptStr(q.out_trade_no.as_deref()),
                Arg::OptI64(q.created_gte.map(|t| t.unix_millis())),
                Arg::OptI64(q.created_lt.map(|t| t.unix_millis())),
            ],
        )
        .await?;
    let mut page: Vec<Payment> = rows
        .iter()
        .map(Payment::from_row)
        .collect::<Result<_, _>>()?;
    let more = page.len() as i64 > limit;
    page.truncate(limit as usize);
    Ok((page, more))
}
