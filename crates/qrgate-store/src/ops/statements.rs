//! The rows of a merchant's daily statements, a page at a time, read from
//! the ledger (the merchant's postings of the day) so a statement agrees
//! with the balances by construction.

use qrgate_core::Timestamp;

use crate::db::{Arg, Conn};
use crate::error::StoreError;

use super::*;

/// One money movement of a merchant's day (a payment, refund or cancel
/// posting), with what it moved into the merchant's pending account and
/// into the fee account, and the payment and refund it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeRow {
    pub posting_id: String,
    /// `payment`, `refund` or `reversal`.
    pub kind: String,
    pub at: Timestamp,
    pub payment_id: Option<String>,
    pub to_pending: i64,
    pub to_fees: i64,
    pub out_trade_no: Option<String>,
    /// The payment's details (JSON text), for its mode.
    pub details: Option<String>,
    pub refund_id: Option<String>,
    pub out_refund_no: Option<String>,
    /// The refund's metadata (JSON text), on a refund's row.
    pub refund_metadata: Option<String>,
}

/// One entry on one of a merchant's own accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundRow {
    /// The entry's id: rows of one time are in the order they were written.
    pub entry_id: i64,
    pub posting_id: String,
    pub kind: String,
    pub at: Timestamp,
    pub payment_id: Option<String>,
    pub account_id: String,
    pub amount_minor: i64,
}

/// Which rows: a merchant's accounts and a day, after a keyset cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementPage {
    pub merchant_id: String,
    pub pending: qrgate_core::AccountId,
    pub fees: qrgate_core::AccountId,
    pub available: qrgate_core::AccountId,
    pub in_payout: qrgate_core::AccountId,
    pub from: Timestamp,
    /// Rows before this time only (the day's end, or an earlier "as of").
    pub until: Timestamp,
    /// After this row: (time, posting id) for trades, (time, entry id)
    /// for funds.
    pub after: Option<(Timestamp, String, i64)>,
    pub limit: i64,
}

pub(crate) async fn trade_rows<C: Conn>(
    c: &mut C,
    q: &StatementPage,
) -> Result<Vec<TradeRow>, StoreError> {
    // The cursor is the range's start, so each page is an index range
    // from where the last one ended (not a scan from the day's start):
    // rows of the cursor's millisecond after its posting id, then later.
    // The two sums are per posting (no GROUP BY, which would group the
    // whole rest of the day before the LIMIT).
    let (lower, after_id) = match &q.after {
        Some((t, id, _)) => (*t, id.as_str()),
        None => (q.from, ""),
    };
    let rows = c
        .rows(
            "SELECT s.id AS posting_id, s.kind, s.created_at, s.payment_id, \
               (SELECT CAST(COALESCE(SUM(e.amount_minor), 0) AS BIGINT) FROM ledger_entries e \
                 WHERE e.posting_id = s.id AND e.account_id = $4) AS to_pending, \
               (SELECT CAST(COALESCE(SUM(e.amount_minor), 0) AS BIGINT) FROM ledger_entries e \
                 WHERE e.posting_id = s.id AND e.account_id = $5) AS to_fees, \
               p.out_trade_no, p.details, r.id AS refund_id, r.out_refund_no, r.metadata AS refund_metadata \
             FROM postings s \
             LEFT JOIN payments p ON p.id = s.payment_id \
             LEFT JOIN refunds r ON r.payment_id = s.payment_id AND s.kind = 'refund' AND s.id = 'pst_' || r.id \
             WHERE s.merchant_id = $1 AND s.created_at >= $2 AND s.created_at < $3 \
               AND s.kind IN ('payment', 'refund', 'reversal') \
               AND (s.created_at > $2 OR s.id > $6) \
             ORDER BY s.created_at, s.id LIMIT $7",
            &[
                Arg::Str(&q.merchant_id),
                Arg::I64(lower.max(q.from).unix_millis()),
                Arg::I64(q.until.unix_millis()),
                Arg::Str(q.pending.as_str()),
                Arg::Str(q.fees.as_str()),
                Arg::Str(after_id),
                Arg::I64(q.limit),
            ],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(TradeRow {
                posting_id: r.str("posting_id")?,
                kind: r.str("kind")?,
                at: ts(r, "created_at")?,
                payment_id: r.opt_str("payment_id")?,
                to_pending: r.i64("to_pending")?,
                to_fees: r.i64("to_fees")?,
                out_trade_no: r.opt_str("out_trade_no")?,
                details: r.opt_str("details")?,
                refund_id: r.opt_str("refund_id")?,
                out_refund_no: r.opt_str("out_refund_no")?,
                refund_metadata: r.opt_str("refund_metadata")?,
            })
        })
        .collect()
}

pub(crate) async fn fund_rows<C: Conn>(
    c: &mut C,
    q: &StatementPage,
) -> Result<Vec<FundRow>, StoreError> {
    // As for trades: the cursor is the range's start.
    let (lower, after_entry) = match &q.after {
        Some((t, _, entry)) => (*t, *entry),
        None => (q.from, i64::MIN),
    };
    let rows = c
        .rows(
            "SELECT e.id AS entry_id, s.id AS posting_id, s.kind, s.created_at, s.payment_id, e.account_id, \
               e.amount_minor \
             FROM postings s JOIN ledger_entries e ON e.posting_id = s.id \
             WHERE s.merchant_id = $1 AND s.created_at >= $2 AND s.created_at < $3 \
               AND e.account_id IN ($4, $5, $6) \
               AND (s.created_at > $2 OR e.id > $7) \
             ORDER BY s.created_at, e.id LIMIT $8",
            &[
                Arg::Str(&q.merchant_id),
                Arg::I64(lower.max(q.from).unix_millis()),
                Arg::I64(q.until.unix_millis()),
                Arg::Str(q.pending.as_str()),
                Arg::Str(q.available.as_str()),
                Arg::Str(q.in_payout.as_str()),
                Arg::I64(after_entry),
                Arg::I64(q.limit),
            ],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(FundRow {
                entry_id: r.i64("entry_id")?,
                posting_id: r.str("posting_id")?,
                kind: r.str("kind")?,
                at: ts(r, "created_at")?,
                payment_id: r.opt_str("payment_id")?,
                account_id: r.str("account_id")?,
                amount_minor: r.i64("amount_minor")?,
            })
        })
        .collect()
}

/// Each of `accounts`' balance at `since`: its balance now less what the
/// merchant's postings dated from `since` on moved into it, in one
/// statement (one snapshot, so a movement committing meanwhile is in both
/// figures or in neither).
pub(crate) async fn opening_balances<C: Conn>(
    c: &mut C,
    merchant_id: &str,
    since: Timestamp,
    accounts: [&str; 3],
) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = c
        .rows(
            "SELECT a.id AS account_id, CAST(a.balance_minor - COALESCE((SELECT SUM(e.amount_minor) \
               FROM postings s JOIN ledger_entries e ON e.posting_id = s.id \
               WHERE s.merchant_id = $1 AND s.created_at >= $2 AND e.account_id = a.id), 0) AS BIGINT) AS opening \
             FROM accounts a WHERE a.id IN ($3, $4, $5)",
            &[
                Arg::Str(merchant_id),
                Arg::I64(since.unix_millis()),
                Arg::Str(accounts[0]),
                Arg::Str(accounts[1]),
                Arg::Str(accounts[2]),
            ],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.str("account_id")?, r.i64("opening")?)))
        .collect()
}
