//! The events a merchant's webhooks receive, written into the outbox with
//! the movement that caused them. Every event type and the shape of its
//! payload is spelled here once.
//!
//! Two types have two shapes today: `payment.failed` and `payment.canceled`
//! carry the payment's view when a sale or a cancel ends it, but only its
//! id (and the refusal's code, or the reason) when a waiting payment ends.
//! Receivers must accept both; the variants below keep them apart so that
//! unifying them is one change here.

use serde_json::json;

use qrgate_store::{OutboxEvent, Store};

use crate::complaints::{ComplaintFigures, ComplaintView};
use crate::money::PayoutView;
use crate::views::{PaymentView, RefundView};
use crate::{Error, Gateway};

/// One event, with what its payload carries. Views are the merchant's.
pub(crate) enum Event<'a> {
    PaymentSucceeded(&'a PaymentView),
    PaymentRequiresAction(&'a PaymentView),
    /// A sale refused by the rules, recorded as a failed payment.
    PaymentFailed(&'a PaymentView),
    /// A waiting payment whose confirmation was refused.
    WaitingPaymentFailed {
        payment_id: &'a str,
        code: &'a str,
    },
    /// A payment reversed in full within the cancel window.
    PaymentCanceled(&'a PaymentView),
    /// A waiting payment that lapsed or was abandoned.
    WaitingPaymentCanceled {
        payment_id: &'a str,
        reason: &'a str,
    },
    RefundSucceeded(&'a RefundView),
    /// A payer filed a complaint (refunded at once, or a ticket).
    ComplaintCreated(&'a ComplaintView),
    /// A complaint moved (answered, escalated, contested, sent back, parked).
    ComplaintUpdated(&'a ComplaintView),
    ComplaintResolved(&'a ComplaintView),
    /// The merchant's complaint rate passed QG-COMPLAINT-RATE-ALARM.
    ComplaintRateAlarm(&'a ComplaintFigures),
    /// Several payers reported a static code tampered
    /// (QG-COMPLAINT-TAMPER-REPORTS): scans of it are refused until the
    /// operator clears it.
    StaticCodeSuspended {
        code_id: &'a str,
        /// The number of payers whose reports suspend a code.
        threshold: i64,
    },
    OrderClosed {
        order_id: &'a str,
    },
    OrderExpired {
        order_id: &'a str,
    },
    PayoutPaid(&'a PayoutView),
    /// Refused by the bank for good: the money is available again.
    PayoutFailed(&'a PayoutView),
    /// Paid, then sent back by the bank: the money is available again.
    PayoutReturned(&'a PayoutView),
}

impl Event<'_> {
    /// The event's type, as webhooks name it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Event::PaymentSucceeded(_) => "payment.succeeded",
            Event::PaymentRequiresAction(_) => "payment.requires_action",
            Event::PaymentFailed(_) | Event::WaitingPaymentFailed { .. } => "payment.failed",
            Event::PaymentCanceled(_) | Event::WaitingPaymentCanceled { .. } => "payment.canceled",
            Event::RefundSucceeded(_) => "refund.succeeded",
            Event::ComplaintCreated(_) => "complaint.created",
            Event::ComplaintUpdated(_) => "complaint.updated",
            Event::ComplaintResolved(_) => "complaint.resolved",
            Event::ComplaintRateAlarm(_) => "complaint.rate_alarm",
            Event::StaticCodeSuspended { .. } => "static_code.suspended",
            Event::OrderClosed { .. } => "order.closed",
            Event::OrderExpired { .. } => "order.expired",
            Event::PayoutPaid(_) => "payout.paid",
            Event::PayoutFailed(_) => "payout.failed",
            Event::PayoutReturned(_) => "payout.returned",
        }
    }

    /// The id of what the event is about.
    fn subject(&self) -> &str {
        match self {
            Event::PaymentSucceeded(v)
            | Event::PaymentRequiresAction(v)
            | Event::PaymentFailed(v)
            | Event::PaymentCanceled(v) => &v.id,
            Event::WaitingPaymentFailed { payment_id, .. }
            | Event::WaitingPaymentCanceled { payment_id, .. } => payment_id,
            Event::RefundSucceeded(r) => &r.id,
            Event::ComplaintCreated(c)
            | Event::ComplaintUpdated(c)
            | Event::ComplaintResolved(c) => &c.id,
            Event::ComplaintRateAlarm(f) => f.merchant_id.as_deref().unwrap_or_default(),
            Event::StaticCodeSuspended { code_id, .. } => code_id,
            Event::OrderClosed { order_id } | Event::OrderExpired { order_id } => order_id,
            Event::PayoutPaid(v) | Event::PayoutFailed(v) | Event::PayoutReturned(v) => &v.id,
        }
    }

    fn payload(&self, merchant_id: &str) -> serde_json::Value {
        match self {
            Event::PaymentSucceeded(v)
            | Event::PaymentRequiresAction(v)
            | Event::PaymentFailed(v)
            | Event::PaymentCanceled(v) => json!({ "merchant_id": merchant_id, "payment": v }),
            Event::WaitingPaymentFailed { payment_id, code } => {
                json!({ "merchant_id": merchant_id, "payment_id": payment_id, "code": code })
            }
            Event::WaitingPaymentCanceled { payment_id, reason } => {
                json!({ "merchant_id": merchant_id, "payment_id": payment_id, "reason": reason })
            }
            Event::RefundSucceeded(r) => json!({ "merchant_id": merchant_id, "refund": r }),
            Event::ComplaintCreated(c)
            | Event::ComplaintUpdated(c)
            | Event::ComplaintResolved(c) => {
                json!({ "merchant_id": merchant_id, "complaint": c })
            }
            Event::ComplaintRateAlarm(f) => json!({ "merchant_id": merchant_id, "figures": f }),
            Event::StaticCodeSuspended { code_id, threshold } => json!({
                "merchant_id": merchant_id,
                "static_code_id": code_id,
                "status": "suspended",
                "threshold": threshold,
                "rule": "QG-COMPLAINT-TAMPER-REPORTS",
            }),
            Event::OrderClosed { order_id } | Event::OrderExpired { order_id } => {
                json!({ "order_id": order_id, "merchant_id": merchant_id })
            }
            Event::PayoutPaid(v) | Event::PayoutFailed(v) | Event::PayoutReturned(v) => {
                json!({ "merchant_id": merchant_id, "payout": v })
            }
        }
    }
}

impl Event<'_> {
    /// The outbox row of this event for `merchant_id`'s webhooks, under
    /// `event_id` (unique: a second row with it is not written).
    pub(crate) fn row(&self, event_id: String, merchant_id: &str) -> OutboxEvent {
        OutboxEvent {
            event_id,
            event_type: self.kind().into(),
            subject_id: self.subject().into(),
            merchant_id: Some(merchant_id.to_owned()),
            payload: self.payload(merchant_id),
        }
    }
}

impl<S: Store> Gateway<S> {
    /// The outbox row of `event` for `merchant_id`'s webhooks, under a new id.
    pub(crate) fn outbox(&self, merchant_id: &str, event: Event<'_>) -> Result<OutboxEvent, Error> {
        Ok(event.row(self.event_id()?, merchant_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The payloads webhook receivers already parse, shape by shape.
    #[test]
    fn payloads_keep_their_shapes() {
        let e = Event::WaitingPaymentCanceled {
            payment_id: "pay_1",
            reason: "expired",
        };
        assert_eq!(e.kind(), "payment.canceled");
        assert_eq!(e.subject(), "pay_1");
        assert_eq!(
            e.payload("mch_1"),
            json!({ "merchant_id": "mch_1", "payment_id": "pay_1", "reason": "expired" })
        );
        let e = Event::OrderExpired { order_id: "ord_1" };
        assert_eq!(
            (e.kind(), e.payload("mch_1")),
            (
                "order.expired",
                json!({ "order_id": "ord_1", "merchant_id": "mch_1" })
            )
        );
    }
}
