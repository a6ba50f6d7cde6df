//! The operator's queue: complaints waiting for a decision (escalated or
//! contested, and not parked), the nearest deadline first, then the
//! payments the risk checks let through but flagged for a person to look
//! at (`flag_for_review`), oldest first; and the operator's decision on a
//! flagged payment (`clear` or `confirm`, with a reason, in the audit
//! chain). The operator is an admin key (see the README, "Complaints").

use serde::{Deserialize, Serialize};
use serde_json::json;

use qrgate_core::Timestamp;
use qrgate_store::{Movement, MovementError, Record, Review, Store, StoreError};

use crate::payments::created_range;
use crate::trail::{self, Action};
use crate::views::{amount, ts};
use crate::{Error, Gateway, Kind, Principal, Role};

/// Which items of the queue.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// `complaint` or `payment` (both when absent).
    pub kind: Option<String>,
    pub merchant_id: Option<String>,
    /// Only items waiting at least this many hours.
    pub min_age_hours: Option<i64>,
    /// Flagged payments made at or after this time (RFC 3339; default 30
    /// days ago).
    pub created_gte: Option<String>,
    /// 1 to 100 of each kind (default 50).
    pub limit: Option<i64>,
}

/// One item of the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReviewItem {
    /// `complaint` or `payment`.
    pub kind: &'static str,
    /// The complaint's or the payment's id.
    pub id: String,
    pub merchant_id: String,
    /// The complaint's status (`escalated`, `contested`), or `flagged`.
    pub status: String,
    /// What it is about: the complaint's reason, or the rules that flagged
    /// the payment.
    pub about: Vec<String>,
    pub amount: String,
    /// When it started waiting (filed, or paid).
    pub since: String,
    /// A complaint's deadline to be resolved (QG-COMPLAINT-RESOLVE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
}

/// The queue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReviewQueue {
    pub object: &'static str,
    pub data: Vec<ReviewItem>,
}

impl<S: Store> Gateway<S> {
    /// The operator's queue (admins; auditors read it too).
    pub async fn reviews(&self, p: &Principal, q: ReviewQuery) -> Result<ReviewQueue, Error> {
        p.require(&[Role::Admin, Role::Auditor])?;
        let now = self.now();
        let limit = q.limit.unwrap_or(50);
        if !(1..=100).contains(&limit) {
            return Err(Error::bad_request(
                "invalid_request",
                "limit must be 1 to 100",
            ));
        }
        let (complaints, payments) = match q.kind.as_deref() {
            None => (true, true),
            Some("complaint") => (true, false),
            Some("payment") => (false, true),
            Some(other) => {
                return Err(Error::bad_request(
                    "invalid_request",
                    format!("kind must be complaint or payment; not {other:?}"),
                ));
            }
        };
        let min_age_ms = match q.min_age_hours {
            Some(h) if !(0..=24 * 366).contains(&h) => {
                return Err(Error::bad_request(
                    "invalid_request",
                    "min_age_hours must be 0 to 8784",
                ));
            }
            h => h.unwrap_or(0) * 3_600_000,
        };
        let old_enough = |since: Timestamp| now.millis_since(since) >= min_age_ms;
        let mut data = Vec::new();
        if complaints {
            let waiting = self
                .store
                .complaints_to_decide(q.merchant_id.as_deref(), now, limit)
                .await?;
            data.extend(
                waiting
                    .iter()
                    .filter(|k| old_enough(k.created_at))
                    .map(|k| ReviewItem {
                        kind: "complaint",
                        id: k.id.clone(),
                        merchant_id: k.merchant_id.clone(),
                        status: k.status.as_str().into(),
                        about: vec![k.reason.as_str().into()],
                        amount: amount(k.amount_minor, k.currency),
                        since: ts(k.created_at),
                        deadline: Some(ts(k.resolve_by)),
                    }),
            );
        }
        if payments {
            let (gte, _) = created_range(q.created_gte.as_deref(), None)?;
            let since = gte.unwrap_or_else(|| crate::complaints::days_before(now, 30));
            let flagged = self
                .store
                .flagged_payments(q.merchant_id.as_deref(), since, limit)
                .await?;
            data.extend(
                flagged
                    .iter()
                    .filter(|p| old_enough(p.created_at))
                    .map(|p| ReviewItem {
                        kind: "payment",
                        id: p.id.clone(),
                        merchant_id: p.merchant_id.clone(),
                        status: "flagged".into(),
                        about: p.details.flags().into_iter().map(str::to_owned).collect(),
                        amount: amount(p.amount_minor, p.currency),
                        since: ts(p.created_at),
                        deadline: None,
                    }),
            );
        }
        Ok(ReviewQueue {
            object: "list",
            data,
        })
    }

    /// The operator's decision on a payment the risk checks flagged:
    /// `clear` (nothing wrong) or `confirm` (it was what the check feared;
    /// blocks and refunds are their own actions). Once per payment.
    pub async fn decide_payment_review(
        &self,
        p: &Principal,
        payment_id: &str,
        decision: &str,
        reason: &str,
    ) -> Result<Review, Error> {
        p.require(&[Role::Admin])?;
        if !matches!(decision, "clear" | "confirm") {
            return Err(Error::bad_request(
                "invalid_request",
                format!("decision must be clear or confirm; not {decision:?}"),
            ));
        }
        let reason = qrgate_core::complaint::checked_text("reason", reason)
            .map_err(|e| Error::bad_request("invalid_request", e.to_string()))?;
        let pay = self.payment_for(p, payment_id).await?;
        if pay.details.flags().is_empty() {
            return Err(Error::new(
                Kind::Conflict,
                "not_flagged",
                format!("payment {payment_id} was not flagged for review"),
            ));
        }
        let now = self.now();
        let review = Review {
            kind: "payment".into(),
            subject_id: pay.id.clone(),
            merchant_id: pay.merchant_id.clone(),
            decision: decision.into(),
            reason,
            decided_by: p.key_id.clone(),
            created_at: now,
        };
        let mut m = Movement::new(now);
        m.audit = Some(trail::entry(
            Action::ReviewDecided,
            pay.id.clone(),
            p.into(),
            json!({ "kind": "payment", "decision": decision, "reason": review.reason, "flags": pay.details.flags() }),
        ));
        m.records.push(Record::Review(review.clone()));
        match self.store.apply(m).await {
            Ok(_) => Ok(review),
            Err(MovementError::Store(StoreError::AlreadyExists(_))) => Err(Error::new(
                Kind::Conflict,
                "review_decided",
                format!("payment {payment_id} was decided on before"),
            )),
            Err(e) => Err(e.into()),
        }
    }
}
