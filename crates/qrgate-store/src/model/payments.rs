//! Payments, refunds and orders, and the idempotency record a movement
//! keeps with them.

use serde::{Deserialize, Serialize};

use qrgate_core::payment::PaymentDetails;
use qrgate_core::state::PaymentStatus;
use qrgate_core::{Currency, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: String,
    pub merchant_id: String,
    pub customer_id: Option<String>,
    pub status: PaymentStatus,
    pub amount_minor: i64,
    pub currency: Currency,
    pub refunded_minor: i64,
    pub out_trade_no: Option<String>,
    /// The fee the payment costs its merchant when it succeeds (posted to
    /// the fee revenue with it); refunds give back part of it.
    pub fee_minor: i64,
    /// Everything else about the payment, stored as one JSON column.
    pub details: PaymentDetails,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// How a movement changes a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentWrite {
    Insert(Payment),
    /// Move from `from` to `to`; fails if the payment is not in `from`,
    /// or if anything of it was refunded: every status change (completing,
    /// failing, abandoning, reversing in full) is one of a payment with no
    /// refunds, so a cancel cannot pay back what a refund already did.
    Transition {
        id: String,
        from: PaymentStatus,
        to: PaymentStatus,
        details: Option<PaymentDetails>,
    },
    /// Add to the refunded amount, never past the amount, only while the
    /// payment is in `status` (so a refund cannot follow or race a cancel
    /// that reversed it in full), and only while `refunded_before` is what
    /// was refunded: the fee a refund gives back depends on the refunds
    /// before it, so two refunds racing are applied one after the other,
    /// never both on the same figures.
    AddRefunded {
        id: String,
        amount_minor: i64,
        refunded_before: i64,
        status: PaymentStatus,
    },
}

impl PaymentWrite {
    pub fn payment_id(&self) -> &str {
        match self {
            PaymentWrite::Insert(p) => &p.id,
            PaymentWrite::Transition { id, .. } | PaymentWrite::AddRefunded { id, .. } => id,
        }
    }

    /// The write sets the payment's details (so their text must be there).
    pub fn carries_details(&self) -> bool {
        matches!(
            self,
            PaymentWrite::Insert(_)
                | PaymentWrite::Transition {
                    details: Some(_),
                    ..
                }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub id: String,
    pub payment_id: String,
    /// The payment's merchant: `out_refund_no` is unique per merchant.
    pub merchant_id: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub status: String,
    pub out_refund_no: String,
    /// The part of the payment's fee this refund gave back to the merchant.
    pub fee_minor: i64,
    /// The merchant's own notes on the refund.
    pub metadata: qrgate_core::Metadata,
    pub created_at: Timestamp,
}

/// The response to store for an idempotent request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Who may replay it: `merchant:mch_…`, `customer:cus_…`, `admin`.
    pub scope: String,
    pub key: String,
    /// Hex SHA-256 of the canonical request.
    pub request_hash: String,
    pub response_status: u16,
    pub response_body: String,
}

/// An order's status change inside a movement (open → paid, open → expired, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTransition {
    pub id: String,
    pub from: String,
    pub to: String,
    pub payment_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub merchant_id: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub reference: String,
    pub out_trade_no: Option<String>,
    /// `open`, `paid`, `expired`, `closed`.
    pub status: String,
    pub payload: String,
    pub payment_id: Option<String>,
    /// The merchant's own notes on the order (its payment carries them too).
    pub metadata: qrgate_core::Metadata,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A payment code the gateway issued online (numeric form), looked up at charge time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCode {
    pub code: String,
    pub customer_id: String,
    pub device_id: Option<String>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}

/// Which payments to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PaymentQuery {
    pub merchant_id: Option<String>,
    pub customer_id: Option<String>,
    pub status: Option<String>,
    /// Cursor: the id of the last payment of the previous page.
    pub starting_after: Option<String>,
    /// The merchant's own number for the payment.
    pub out_trade_no: Option<String>,
    /// Made at or after this time.
    pub created_gte: Option<qrgate_core::Timestamp>,
    /// Made before this time.
    pub created_lt: Option<qrgate_core::Timestamp>,
    pub limit: i64,
}

/// Which refunds to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RefundQuery {
    pub merchant_id: Option<String>,
    /// The merchant's own number for the refund (unique per merchant).
    pub out_refund_no: Option<String>,
    /// Made at or after this time.
    pub created_gte: Option<Timestamp>,
    /// Made before this time.
    pub created_lt: Option<Timestamp>,
    /// Cursor: the id of the last refund of the previous page.
    pub starting_after: Option<String>,
    pub limit: i64,
}
