//! A merchant's business day settled: its figures, what it carried in and
//! out, and what it moved from pending to available.

use serde::{Deserialize, Serialize};

use qrgate_core::{AccountId, Currency, Timestamp};

use super::AuditEntry;

/// One settled business day of one merchant. Written once; a day is
/// settled at most once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    pub merchant_id: String,
    /// `YYYY-MM-DD` in the zone of the limits.
    pub business_date: String,
    pub currency: Currency,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// Payments of the day (gross) and how many.
    pub payments_count: i64,
    pub payments_minor: i64,
    /// Refunds and cancels of the day (gross) and how many.
    pub refunds_count: i64,
    pub refunds_minor: i64,
    /// Fees of the day's payments less fees the day's refunds gave back.
    pub fees_minor: i64,
    /// What the day added to the pending balance: payments − refunds − fees.
    pub net_minor: i64,
    /// The pending balance the day started from that earlier settlements
    /// did not move: a negative day carried forward (or money of days
    /// never settled).
    pub carried_in_minor: i64,
    /// Moved from pending to available (never negative).
    pub settled_minor: i64,
    /// Left in pending for the next day: zero, or a negative balance
    /// (never paid out).
    pub carried_out_minor: i64,
    /// The posting that moved `settled_minor`, if anything moved.
    pub posting_id: Option<String>,
    pub created_at: Timestamp,
}

/// Settle one business day of one merchant: close the day on its pending
/// account, read the day's postings, move the closing balance (when
/// positive) to available, write the settlement and its audit row; or,
/// when the day was settled before, nothing but its settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleDay {
    pub merchant_id: String,
    pub business_date: String,
    pub currency: Currency,
    pub pending: AccountId,
    pub available: AccountId,
    /// The fee revenue: its entries in the merchant's postings are the fees.
    pub fee_revenue: AccountId,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// When it runs: after the day ended.
    pub at: Timestamp,
    pub posting_id: String,
    pub audit: AuditEntry,
}

/// What settling a day came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Settled now.
    Now(Settlement),
    /// Settled before: that settlement, unchanged.
    Before(Settlement),
}

impl Settled {
    pub fn settlement(&self) -> &Settlement {
        match self {
            Settled::Now(s) | Settled::Before(s) => s,
        }
    }
}

/// A payout of a merchant's available money to its bank account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    pub id: String,
    pub merchant_id: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub bank_account: String,
    pub status: qrgate_core::state::PayoutStatus,
    /// Times the bank was asked.
    pub attempts: i64,
    /// When the bank is asked next (while pending).
    pub next_attempt_at: Option<Timestamp>,
    /// Why the bank refused it (last), or sent it back.
    pub failure: Option<String>,
    pub bank_reference: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A payout's step after the bank answered: its new state, and the money
/// and rows that go with it, written only while the payout is still in
/// `from` after `attempts_before` attempts (so two nodes answering the
/// same attempt change it once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutChange {
    pub id: String,
    pub from: qrgate_core::state::PayoutStatus,
    pub attempts_before: i64,
    pub to: qrgate_core::state::PayoutStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub failure: Option<String>,
    pub bank_reference: Option<String>,
    pub posting: Option<super::Posting>,
    pub events: Vec<super::OutboxEvent>,
    pub audit: Option<AuditEntry>,
    pub at: Timestamp,
}
