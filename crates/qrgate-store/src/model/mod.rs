//! What the store persists, and the one write it offers: a [`Movement`],
//! applied all-or-nothing in one database transaction.

use serde::{Deserialize, Serialize};

mod complaints;
mod events;
mod keys;
mod ledger;
mod parties;
mod payments;
mod settlement;
mod web;

pub use complaints::*;
pub use events::*;
pub use keys::*;
pub use ledger::*;
pub use parties::*;
pub use payments::*;
pub use settlement::*;
pub use web::*;

use qrgate_core::Timestamp;

/// Everything one money movement writes. Applied in one transaction: the
/// idempotency record first (a replay stops there), then code burns,
/// counters (sorted by key), the posting (accounts sorted by id), the
/// payment, order and refund rows, outbox events and finally the audit row.
/// Any failure rolls all of it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub at: Timestamp,
    /// Written only while this API key is not revoked: the caller's key is
    /// checked again with the writes, so a key read from a cache a moment
    /// before it was revoked (here or on another gateway) moves nothing.
    pub live_api_key: Option<String>,
    /// Written only while this device is active: a code it signed offline
    /// moves nothing once it is revoked (here or on another gateway).
    pub live_device: Option<String>,
    /// Written only while this static code is not revoked (a revocation
    /// racing a scan of it moves nothing once it has committed).
    pub live_static_code: Option<String>,
    /// Written only while the business day of `at` is not settled on this
    /// merchant pending account: for a movement of a merchant's payment
    /// whose posting has no line on that account (a fee that took all of
    /// it), which the balance move would otherwise check.
    pub day_open: Option<qrgate_core::AccountId>,
    /// Written only while none of these parties (merchant or customer ids)
    /// is on the block list, checked with the writes for the same reason.
    pub unblocked: Vec<String>,
    pub idempotency: Option<IdempotencyRecord>,
    pub burns: Vec<CodeBurn>,
    pub counters: Vec<CounterCharge>,
    pub posting: Option<Posting>,
    pub payment: Option<PaymentWrite>,
    pub order: Option<OrderTransition>,
    pub refund: Option<Refund>,
    /// A complaint filed or moved with the money (a movement with one
    /// runs step by step).
    pub complaint: Option<ComplaintWrite>,
    pub events: Vec<OutboxEvent>,
    /// Rows written once in the same transaction (admin actions: a merchant
    /// and its account, a key, a block, …), so they and their audit row
    /// are one write.
    pub records: Vec<Record>,
    pub audit: Option<AuditEntry>,
}

/// The outcome of a movement that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Written; the audit row's sequence number, if one was written.
    Done { audit_seq: Option<i64> },
    /// The same idempotency key and request were seen before: the stored response.
    Replayed { status: u16, body: String },
}

impl Movement {
    /// Guard the business day on the merchant's pending account `pending`
    /// when the posting does not move it (then its balance move, which
    /// checks the day, does not run).
    pub fn guard_day(&mut self, pending: &qrgate_core::AccountId) {
        let moved = self
            .posting
            .as_ref()
            .is_some_and(|p| p.entries.iter().any(|e| &e.account_id == pending));
        self.day_open = (!moved).then(|| pending.clone());
    }

    /// An empty movement at `at`; fill in what it writes.
    pub fn new(at: Timestamp) -> Movement {
        Movement {
            at,
            live_api_key: None,
            live_device: None,
            live_static_code: None,
            day_open: None,
            unblocked: Vec::new(),
            idempotency: None,
            burns: Vec::new(),
            counters: Vec::new(),
            posting: None,
            payment: None,
            order: None,
            refund: None,
            complaint: None,
            events: Vec::new(),
            records: Vec::new(),
            audit: None,
        }
    }
}

/// A row that is written once, outside money movements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    Account(Account),
    Merchant(Merchant),
    Customer(Customer),
    Device(Device),
    Certificate(Certificate),
    Card(Card),
    Otp(OtpEnrollment),
    Block(Block),
    ApiKey(ApiKey),
    StaticCode(StaticCode),
    Order(Order),
    IssuedCode(IssuedCode),
    WebhookEndpoint(WebhookEndpoint),
    Payout(Payout),
    Review(Review),
    WebSession(WebSession),
}
