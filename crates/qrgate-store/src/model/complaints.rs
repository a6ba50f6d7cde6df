//! A payer's complaint about a payment, and its steps.

use serde::{Deserialize, Serialize};

use qrgate_core::complaint::{ComplaintReason, Resolution};
use qrgate_core::state::ComplaintStatus;
use qrgate_core::{Currency, Timestamp};

/// A complaint as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Complaint {
    pub id: String,
    pub payment_id: String,
    pub merchant_id: String,
    pub customer_id: String,
    /// The static code the payment was made with, if any.
    pub static_code_id: Option<String>,
    pub reason: ComplaintReason,
    pub description: String,
    /// What the payer disputes.
    pub amount_minor: i64,
    pub currency: Currency,
    pub status: ComplaintStatus,
    pub resolution: Option<Resolution>,
    /// Refunded on the spot when it was filed.
    pub instant: bool,
    /// Money returned to the payer under this complaint.
    pub refunded_minor: i64,
    /// When the party whose move it is must have moved (`None`: the
    /// operator's move, or resolved).
    pub due_at: Option<Timestamp>,
    /// The merchant's deadline to have it resolved (QG-COMPLAINT-RESOLVE).
    pub resolve_by: Timestamp,
    pub first_response_at: Option<Timestamp>,
    pub escalated_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    /// A parked ticket comes back to the operator's queue at this time.
    pub revisit_at: Option<Timestamp>,
    pub cap_released_at: Option<Timestamp>,
    /// The refund number of a card refund made under this complaint that
    /// the processor has not confirmed yet.
    pub processor_pending: Option<String>,
    /// Moves made so far; each move is written only from the version it read.
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One step of a complaint: who did what, in their words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintStep {
    pub complaint_id: String,
    /// The complaint's version after this step (1 for the filing).
    pub seq: i64,
    /// `payer`, `merchant`, `operator` or `gateway`.
    pub actor: String,
    /// What was done (`filed`, `refunded_instantly`, `answered`, …).
    pub action: String,
    pub body: Option<String>,
    pub amount_minor: Option<i64>,
    pub created_at: Timestamp,
}

/// A complaint's write inside a movement (so a refund and the complaint
/// step that made it commit together).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComplaintWrite {
    /// A new complaint, refused while its payment has another one that is
    /// not resolved.
    File {
        complaint: Box<Complaint>,
        step: ComplaintStep,
    },
    /// A move of a complaint, written only while it is still in `from` at
    /// `version`.
    Move(ComplaintMove),
    /// Suspend a static code that at least `reporters` payers reported
    /// tampered since `since` (and since the operator last cleared it);
    /// refused (`CodeNotSuspended`) when fewer did, or it is suspended or
    /// revoked already. Counted inside the write.
    SuspendCode {
        code_id: String,
        reporters: i64,
        since: Timestamp,
    },
}

/// A photo a payer added to their complaint (its bytes are read on their
/// own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintPhoto {
    pub complaint_id: String,
    /// 1, 2, … in the order they were added.
    pub seq: i64,
    pub content_type: String,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    pub size_bytes: i64,
    pub created_at: Timestamp,
}

/// A photo to add to complaint `complaint_id` while it is not resolved
/// and has fewer than `max_photos` (whose payer adds it is the caller's
/// check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPhoto {
    pub complaint_id: String,
    pub content_type: String,
    pub sha256: String,
    pub bytes: Vec<u8>,
    pub max_photos: i64,
}

/// A complaint's move: from what it was to what it becomes, and the step
/// that says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintMove {
    pub id: String,
    pub from: ComplaintStatus,
    /// The version it was read at.
    pub version: i64,
    pub to: ComplaintStatus,
    pub resolution: Option<Resolution>,
    pub due_at: Option<Timestamp>,
    pub revisit_at: Option<Timestamp>,
    /// The merchant answered (the first answer is kept).
    pub responded: bool,
    pub escalated: bool,
    /// Money returned to the payer by this move.
    pub refunded_minor: i64,
    /// The refund number of the card refund this move makes, until the
    /// processor confirms it (`None` leaves the column as it is).
    pub processor_pending: Option<String>,
    /// A party's move: written only while its deadline (`due_at`) has not
    /// passed.
    pub within_due: bool,
    pub step: ComplaintStep,
}

/// The operator's decision on something the risk checks flagged for
/// review (one per subject).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// What was flagged: `payment` (by the risk checks) or `fraud_report`
    /// (a complaint saying someone else took the payer's money).
    pub kind: String,
    pub subject_id: String,
    pub merchant_id: String,
    /// `clear` (nothing wrong) or `confirm` (it was what the check feared).
    pub decision: String,
    pub reason: String,
    /// The operator's key id.
    pub decided_by: String,
    pub created_at: Timestamp,
}

/// Which complaints to read, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComplaintQuery {
    pub merchant_id: Option<String>,
    pub customer_id: Option<String>,
    pub payment_id: Option<String>,
    /// Any of these (all when empty).
    pub statuses: Vec<ComplaintStatus>,
    pub created_gte: Option<Timestamp>,
    pub created_lt: Option<Timestamp>,
    /// Older than this complaint (a page's cursor).
    pub starting_after: Option<String>,
    pub limit: i64,
}
