//! What leaves the store: outbox events and their webhook endpoints and
//! deliveries, and the audit chain.

use serde::{Deserialize, Serialize};

use qrgate_core::Timestamp;
use qrgate_core::state::DeliveryStatus;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEvent {
    pub event_id: String,
    pub event_type: String,
    pub subject_id: String,
    /// The merchant it is for (its webhooks, its events list).
    #[serde(default)]
    pub merchant_id: Option<String>,
    pub payload: serde_json::Value,
}

/// Which of a merchant's events to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventQuery {
    pub merchant_id: String,
    /// Only events of this type (`payment.succeeded`, …).
    pub event_type: Option<String>,
    pub created_gte: Option<Timestamp>,
    pub created_lt: Option<Timestamp>,
    /// Cursor: the sequence number of the last event of the previous page.
    pub before_seq: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRow {
    pub seq: i64,
    pub event_id: String,
    pub event_type: String,
    pub subject_id: String,
    pub payload: serde_json::Value,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// What the audit log records about a movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub action: String,
    pub subject: String,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at: Timestamp,
    pub action: String,
    pub subject: String,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Result of walking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum AuditVerdict {
    Intact {
        rows: i64,
        head: String,
    },
    /// The first row whose hash or link is wrong.
    Broken {
        seq: i64,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: String,
    pub merchant_id: String,
    pub url: String,
    pub secret: String,
    pub created_at: Timestamp,
    /// Paused: nothing is sent (deliveries wait) until it is enabled again.
    pub disabled_at: Option<Timestamp>,
    /// The secret before the last rotation, still signing beside `secret`
    /// until `previous_until`.
    pub previous_secret: Option<String>,
    pub previous_until: Option<Timestamp>,
}

/// A change to one of a merchant's webhook endpoints; each is written with
/// an audit entry. A deleted endpoint is not listed, sent to or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointChange {
    /// Register `endpoint`, refused when its merchant already has `cap`
    /// endpoints that are not deleted.
    Add {
        endpoint: WebhookEndpoint,
        cap: i64,
    },
    Disable {
        id: String,
        merchant_id: String,
    },
    Enable {
        id: String,
        merchant_id: String,
    },
    /// Delete it; its pending deliveries fail ("endpoint deleted").
    Delete {
        id: String,
        merchant_id: String,
    },
    /// A new secret; the old one keeps signing beside it until `previous_until`.
    RotateSecret {
        id: String,
        merchant_id: String,
        secret: String,
        previous_until: Timestamp,
    },
}

/// A webhook delivery: one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub id: i64,
    pub endpoint_id: String,
    pub merchant_id: String,
    pub event_id: String,
    pub event_type: String,
    /// The exact JSON body that is signed and sent.
    pub body: String,
    /// `pending`, `delivered`, `failed` (gave up).
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// A delivery to create when an outbox event is fanned out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDelivery {
    pub endpoint_id: String,
    pub merchant_id: String,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptResult {
    pub id: i64,
    /// The `next_attempt_at` the claim set ([`crate::Store::claim_delivery`]):
    /// the result is recorded only while the claim still holds.
    pub claimed_until: Timestamp,
    pub at: Timestamp,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    /// `delivered`, `pending` (retry at `next_attempt_at`) or `failed`.
    pub status: DeliveryStatus,
    pub next_attempt_at: Timestamp,
}
