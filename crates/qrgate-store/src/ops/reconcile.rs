//! The ledger's side of a reconciliation: a day's postings, of every
//! merchant, that move a card processor's clearing account, a page at a
//! time in time order.

use qrgate_core::Timestamp;

use crate::db::{Arg, Conn, Row};
use crate::error::StoreError;

use super::*;

/// One posting that moved money through a card processor: a payment
/// (capture), a refund, or a cancel (reversal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardMovement {
    pub posting_id: String,
    /// `payment`, `refund` or `reversal`.
    pub kind: String,
    pub at: Timestamp,
    pub payment_id: Option<String>,
    /// What the posting put on the clearing account (negative for a
    /// payment: the money came from the card).
    pub amount_minor: i64,
    /// The payment's details (JSON text): its authorization's request id.
    pub details: Option<String>,
    /// A refund's number (its processor key is the payment's id and this).
    pub out_refund_no: Option<String>,
}

/// Which card movements: one clearing account, a time range, after a
/// cursor `(time, posting id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardMovementPage {
    pub clearing: qrgate_core::AccountId,
    pub from: Timestamp,
    pub until: Timestamp,
    pub after: Option<(Timestamp, String)>,
    pub limit: i64,
}

/// The columns of a card movement, and the clearing account as `$1`. A
/// refund is found by its payment (an index) and its posting's id.
macro_rules! card_movement_select {
    () => {
        "SELECT s.id AS posting_id, s.kind, s.created_at, s.payment_id, e.amount_minor, p.details, \
           r.out_refund_no \
         FROM postings s JOIN ledger_entries e ON e.posting_id = s.id AND e.account_id = $1 \
         LEFT JOIN payments p ON p.id = s.payment_id \
         LEFT JOIN refunds r ON r.payment_id = s.payment_id AND s.kind = 'refund' AND s.id = 'pst_' || r.id"
    };
}

pub(crate) async fn card_movements<C: Conn>(
    c: &mut C,
    q: &CardMovementPage,
) -> Result<Vec<CardMovement>, StoreError> {
    // The cursor is the range's start (an index range per page).
    let (lower, after_id) = match &q.after {
        Some((t, id)) => (*t, id.as_str()),
        None => (q.from, ""),
    };
    let rows = c
        .rows(
            concat!(
                card_movement_select!(),
                " WHERE s.created_at >= $2 AND s.created_at < $3 \
                   AND (s.created_at > $2 OR s.id > $4) \
                 ORDER BY s.created_at, s.id LIMIT $5"
            ),
            &[
                Arg::Str(q.clearing.as_str()),
                Arg::I64(lower.max(q.from).unix_millis()),
                Arg::I64(q.until.unix_millis()),
                Arg::Str(after_id),
                Arg::I64(q.limit),
            ],
        )
        .await?;
    rows.iter().map(card_movement).collect()
}

/// Every movement of one payment through the clearing account, whatever
/// its day (a record the processor settled on another day than the
/// ledger's is found by its payment).
pub(crate) async fn card_movements_of<C: Conn>(
    c: &mut C,
    clearing: &qrgate_core::AccountId,
    payment_id: &str,
) -> Result<Vec<CardMovement>, StoreError> {
    let rows = c
        .rows(
            concat!(
                card_movement_select!(),
                " WHERE s.payment_id = $2 ORDER BY s.created_at, s.id"
            ),
            &[Arg::Str(clearing.as_str()), Arg::Str(payment_id)],
        )
        .await?;
    rows.iter().map(card_movement).collect()
}

fn card_movement(r: &Row) -> Result<CardMovement, StoreError> {
    Ok(CardMovement {
        posting_id: r.str("posting_id")?,
        kind: r.str("kind")?,
        at: ts(r, "created_at")?,
        payment_id: r.opt_str("payment_id")?,
        amount_minor: r.i64("amount_minor")?,
        details: r.opt_str("details")?,
        out_refund_no: r.opt_str("out_refund_no")?,
    })
}
