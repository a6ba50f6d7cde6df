//! Settling a merchant's business day, reading settlements, and the leases
//! of periodic jobs.
//!
//! Why the figures are whole: the day is first closed on the merchant's
//! pending account (`closed_until`), which takes the account's row lock on
//! PostgreSQL. A movement that touched the account before waited for
//! nothing and is visible to the reads that follow; one that comes after
//! finds the day closed (its guard is re-checked on the locked row) and is
//! refused, so no posting dated in the day can commit after its
//! settlement, and a closed day never changes.

use qrgate_core::{Currency, Timestamp};

use crate::db::{Arg, Conn, Row};
use crate::error::{MovementError, StoreError};

use super::*;

macro_rules! settlement_columns {
    () => {
        "SELECT merchant_id, business_date, currency, starts_at, ends_at, payments_count, payments_minor, \
         refunds_count, refunds_minor, fees_minor, net_minor, carried_in_minor, settled_minor, \
         carried_out_minor, posting_id, created_at FROM settlements "
    };
}

impl FromRow for Settlement {
    fn from_row(r: &Row) -> Result<Settlement, StoreError> {
        Ok(Settlement {
            merchant_id: r.str("merchant_id")?,
            business_date: r.str("business_date")?,
            currency: parsed::<Currency>(&r.str("currency")?, "currency")?,
            starts_at: ts(r, "starts_at")?,
            ends_at: ts(r, "ends_at")?,
            payments_count: r.i64("payments_count")?,
            payments_minor: r.i64("payments_minor")?,
            refunds_count: r.i64("refunds_count")?,
            refunds_minor: r.i64("refunds_minor")?,
            fees_minor: r.i64("fees_minor")?,
            net_minor: r.i64("net_minor")?,
            carried_in_minor: r.i64("carried_in_minor")?,
            settled_minor: r.i64("settled_minor")?,
            carried_out_minor: r.i64("carried_out_minor")?,
            posting_id: r.opt_str("posting_id")?,
            created_at: ts(r, "created_at")?,
        })
    }
}

pub(crate) async fn settlement<C: Conn>(
    c: &mut C,
    merchant_id: &str,
    business_date: &str,
) -> Result<Option<Settlement>, StoreError> {
    const SQL: &str = concat!(
        settlement_columns!(),
        "WHERE merchant_id = $1 AND business_date = $2"
    );
    let rows = c
        .rows(SQL, &[Arg::Str(merchant_id), Arg::Str(business_date)])
        .await?;
    rows.first().map(Settlement::from_row).transpose()
}

/// A merchant's settlements, newest day first, from `from` to `to`
/// (dates, inclusive), at most `limit`.
pub(crate) async fn settlements<C: Conn>(
    c: &mut C,
    merchant_id: &str,
    (from, to): (&str, &str),
    limit: i64,
) -> Result<Vec<Settlement>, StoreError> {
    const SQL: &str = concat!(
        settlement_columns!(),
        "WHERE merchant_id = $1 AND business_date >= $2 AND business_date <= $3 \
         ORDER BY business_date DESC LIMIT $4"
    );
    let rows = c
        .rows(
            SQL,
            &[
                Arg::Str(merchant_id),
                Arg::Str(from),
                Arg::Str(to),
                Arg::I64(limit),
            ],
        )
        .await?;
    rows.iter().map(Settlement::from_row).collect()
}

/// The ids of merchants after `after`, in id order, at most `limit`.
pub(crate) async fn merchant_ids<C: Conn>(
    c: &mut C,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let rows = c
        .rows(
            "SELECT id FROM merchants WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
            &[Arg::OptStr(after), Arg::I64(limit)],
        )
        .await?;
    Ok(rows.iter().map(|r| r.str("id")).collect::<Result<_, _>>()?)
}

/// What a merchant's postings (other than settlements) moved, by kind,
/// in `[from, until)`: how many, into pending, into the fee revenue.
struct DayFigures {
    kind: String,
    count: i64,
    to_pending: i64,
    to_fees: i64,
}

async fn day_figures<C: Conn>(c: &mut C, job: &SettleDay) -> Result<Vec<DayFigures>, StoreError> {
    let rows = c
        .rows(
            "SELECT s.kind, CAST(COUNT(DISTINCT s.id) AS BIGINT) AS n, \
               CAST(COALESCE(SUM(CASE WHEN e.account_id = $4 THEN e.amount_minor ELSE 0 END), 0) AS BIGINT) AS to_pending, \
               CAST(COALESCE(SUM(CASE WHEN e.account_id = $5 THEN e.amount_minor ELSE 0 END), 0) AS BIGINT) AS to_fees \
             FROM postings s JOIN ledger_entries e ON e.posting_id = s.id \
             WHERE s.merchant_id = $1 AND s.created_at >= $2 AND s.created_at < $3 AND s.kind <> 'settlement' \
             GROUP BY s.kind ORDER BY s.kind",
            &[
                Arg::Str(&job.merchant_id),
                Arg::I64(job.starts_at.unix_millis()),
                Arg::I64(job.ends_at.unix_millis()),
                Arg::Str(job.pending.as_str()),
                Arg::Str(job.fee_revenue.as_str()),
            ],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(DayFigures {
                kind: r.str("kind")?,
                count: r.i64("n")?,
                to_pending: r.i64("to_pending")?,
                to_fees: r.i64("to_fees")?,
            })
        })
        .collect()
}

/// What the merchant's postings (other than settlements) dated from
/// `since` on moved into its pending account.
async fn pending_since<C: Conn>(c: &mut C, job: &SettleDay) -> Result<i64, StoreError> {
    let rows = c
        .rows(
            "SELECT CAST(COALESCE(SUM(e.amount_minor), 0) AS BIGINT) AS moved \
             FROM postings s JOIN ledger_entries e ON e.posting_id = s.id \
             WHERE s.merchant_id = $1 AND s.created_at >= $2 AND s.kind <> 'settlement' AND e.account_id = $3",
            &[
                Arg::Str(&job.merchant_id),
                Arg::I64(job.ends_at.unix_millis()),
                Arg::Str(job.pending.as_str()),
            ],
        )
        .await?;
    Ok(rows
        .first()
        .map(|r| r.i64("moved"))
        .transpose()?
        .unwrap_or(0))
}

/// Close the day on the pending account (the lock the rest relies on).
/// `false` when a later day was closed already.
async fn close_day<C: Conn>(c: &mut C, job: &SettleDay) -> Result<bool, MovementError> {
    let n = c
        .exec(
            "UPDATE accounts SET closed_until = $1 WHERE id = $2 \
             AND (closed_until IS NULL OR closed_until <= $1)",
            &[
                Arg::I64(job.ends_at.unix_millis()),
                Arg::Str(job.pending.as_str()),
            ],
        )
        .await?;
    Ok(n == 1)
}

pub(crate) async fn settle_day<C: Conn>(
    c: &mut C,
    job: &SettleDay,
) -> Result<Settled, MovementError> {
    if job.at < job.ends_at {
        return Err(MovementError::Invalid(format!(
            "{} is not over yet: it cannot be settled",
            job.business_date
        )));
    }
    // Settled before: nothing to close again (whatever end this run names).
    if let Some(s) = settlement(c, &job.merchant_id, &job.business_date).await? {
        return Ok(Settled::Before(s));
    }
    if !close_day(c, job).await? {
        // Settled before (idempotent), or a later day was.
        if let Some(s) = settlement(c, &job.merchant_id, &job.business_date).await? {
            return Ok(Settled::Before(s));
        }
        return Err(match account(c, job.pending.as_str()).await? {
            None => MovementError::UnknownAccount {
                account_id: job.pending.clone(),
            },
            Some(a) => MovementError::SettledLater {
                merchant_id: job.merchant_id.clone(),
                business_date: job.business_date.clone(),
                closed_until: a.closed_until.unwrap_or(job.ends_at),
            },
        });
    }
    // Holding the day's lock: a settlement of the same day that committed
    // while this one waited is the answer.
    if let Some(s) = settlement(c, &job.merchant_id, &job.business_date).await? {
        return Ok(Settled::Before(s));
    }
    let balance = account(c, job.pending.as_str())
        .await?
        .ok_or_else(|| MovementError::UnknownAccount {
            account_id: job.pending.clone(),
        })?
        .balance_minor;
    let closing = balance - pending_since(c, job).await?;
    let s = figures(job, &day_figures(c, job).await?, closing);
    if s.settled_minor > 0 {
        let p = Posting::lines(
            job.posting_id.clone(),
            "settlement",
            None,
            job.currency,
            vec![
                (job.pending.clone(), -s.settled_minor),
                (job.available.clone(), s.settled_minor),
            ],
        )
        .for_merchant(&job.merchant_id);
        super::movement::post(c, &p, job.at.unix_millis()).await?;
    }
    insert_settlement(c, &s).await?;
    // The audit row carries what the settlement moved and carried.
    let mut audit = job.audit.clone();
    if let serde_json::Value::Object(d) = &mut audit.details {
        for (k, v) in [
            ("net_minor", s.net_minor),
            ("carried_in_minor", s.carried_in_minor),
            ("settled_minor", s.settled_minor),
            ("carried_out_minor", s.carried_out_minor),
        ] {
            d.insert(k.to_owned(), v.into());
        }
    }
    let details = audit.details.to_string();
    append_audit(c, &audit, &details, job.at.unix_millis()).await?;
    Ok(Settled::Now(s))
}

/// The settlement of a day from its postings' figures and the pending
/// balance it closed with.
fn figures(job: &SettleDay, day: &[DayFigures], closing: i64) -> Settlement {
    let (mut payments, mut refunds) = ((0, 0), (0, 0));
    let (mut fees, mut net) = (0, 0);
    for f in day {
        // Gross: what the merchant got (or gave) plus what went to (or
        // came from) the fee revenue.
        let gross = f.to_pending + f.to_fees;
        match f.kind.as_str() {
            "payment" => payments = (payments.0 + f.count, payments.1 + gross),
            "refund" | "reversal" => refunds = (refunds.0 + f.count, refunds.1 - gross),
            _ => {}
        }
        fees += f.to_fees;
        net += f.to_pending;
    }
    // A negative closing balance moves nothing: it is carried forward.
    let settled = closing.max(0);
    Settlement {
        merchant_id: job.merchant_id.clone(),
        business_date: job.business_date.clone(),
        currency: job.currency,
        starts_at: job.starts_at,
        ends_at: job.ends_at,
        payments_count: payments.0,
        payments_minor: payments.1,
        refunds_count: refunds.0,
        refunds_minor: refunds.1,
        fees_minor: fees,
        net_minor: net,
        carried_in_minor: closing - net,
        settled_minor: settled,
        carried_out_minor: closing - settled,
        posting_id: (settled > 0).then(|| job.posting_id.clone()),
        created_at: job.at,
    }
}

async fn insert_settlement<C: Conn>(c: &mut C, s: &Settlement) -> Result<(), MovementError> {
    c.exec(
        "INSERT INTO settlements (merchant_id, business_date, currency, starts_at, ends_at, payments_count, \
         payments_minor, refunds_count, refunds_minor, fees_minor, net_minor, carried_in_minor, settled_minor, \
         carried_out_minor, posting_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        &[
            Arg::Str(&s.merchant_id),
            Arg::Str(&s.business_date),
            Arg::Str(s.currency.code()),
            Arg::I64(s.starts_at.unix_millis()),
            Arg::I64(s.ends_at.unix_millis()),
            Arg::I64(s.payments_count),
            Arg::I64(s.payments_minor),
            Arg::I64(s.refunds_count),
            Arg::I64(s.refunds_minor),
            Arg::I64(s.fees_minor),
            Arg::I64(s.net_minor),
            Arg::I64(s.carried_in_minor),
            Arg::I64(s.settled_minor),
            Arg::I64(s.carried_out_minor),
            Arg::OptStr(s.posting_id.as_deref()),
            Arg::I64(s.created_at.unix_millis()),
        ],
    )
    .await?;
    Ok(())
}

/// Take (or renew) the lease of job `name` for `holder` until `until`:
/// `true` when it is this holder's now.
pub(crate) async fn take_lease<C: Conn>(
    c: &mut C,
    name: &str,
    holder: &str,
    (now, until): (Timestamp, Timestamp),
) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= $4",
            &[
                Arg::Str(name),
                Arg::Str(holder),
                Arg::I64(until.unix_millis()),
                Arg::I64(now.unix_millis()),
            ],
        )
        .await?;
    Ok(n == 1)
}
