//! A payment waiting for its payer: recorded as `requires_action` with the
//! next action it asks for, claimed by a card confirmation, failed when the
//! confirmation is refused, canceled when it lapses.

use serde_json::json;

use qrgate_core::Timestamp;
use qrgate_core::payment::{NextAction, PaymentDetails};
use qrgate_core::state::PaymentStatus;
use qrgate_store::*;

use super::Offer;
use crate::events::Event;
use crate::trail::{self, Action, By};
use crate::views::PaymentView;
use crate::{Error, Fresh, Gateway, Idem, Kind, Outcome, Principal, Reply};

impl<S: Store> Gateway<S> {
    /// Record a payment waiting for the payer's confirmation. The consumer
    /// code is burned now (single use); an order is only marked paid on
    /// confirmation, so it can still be paid if this one lapses.
    pub(crate) async fn require_action(
        &self,
        p: &Principal,
        merchant: &Merchant,
        mut waiting: Payment,
        offer: Offer,
        burn: Option<CodeBurn>,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let now = self.now();
        // From the payment's own creation time, so the deadline it shows is
        // exactly QG-STEPUP-TTL after the created_at it shows.
        let expires_at = waiting
            .created_at
            .checked_add_seconds(self.limits.stepup_ttl_seconds)
            .unwrap_or(waiting.created_at);
        let next = NextAction::confirm(&waiting.id, offer.accepts, offer.target, expires_at);
        let needed = next.elements.clone();
        waiting.details.next_action = Some(next);
        let view = PaymentView::of(&waiting, p.role);
        // Events go to the merchant: the merchant's view, whoever asked.
        let event_view = PaymentView::of(&waiting, crate::Role::Merchant);
        let body = serde_json::to_string(&view).map_err(Error::internal)?;
        let id = waiting.id.clone();
        let mut m = Movement::new(now);
        m.live_api_key = Some(p.key_id.clone());
        m.idempotency = idem.map(|i| i.record(&Outcome::Created { view: &body }));
        m.burns
            .extend(burn.filter(|b| !b.key.starts_with("order:")));
        m.payment = Some(PaymentWrite::Insert(waiting));
        m.events
            .push(self.outbox(&merchant.id, Event::PaymentRequiresAction(&event_view))?);
        m.audit = Some(trail::entry(
            Action::PaymentRequiresAction,
            id,
            p.into(),
            json!({ "needed": needed }),
        ));
        Ok(Reply::of(self.store.apply(m).await?, Fresh::Created, body))
    }

    /// Move a waiting payment between `from` and `to` (claiming it for a
    /// confirmation, or giving the claim back), with `details`; a payment
    /// no longer in `from` is a state conflict.
    pub(super) async fn move_waiting(
        &self,
        pay: &Payment,
        from: PaymentStatus,
        to: PaymentStatus,
        details: PaymentDetails,
    ) -> Result<(), Error> {
        from.transition(to).map_err(Error::internal)?;
        let mut m = Movement::new(self.now());
        m.payment = Some(PaymentWrite::Transition {
            id: pay.id.clone(),
            from,
            to,
            details: Some(details),
        });
        match self.store.apply(m).await {
            Ok(_) => Ok(()),
            Err(MovementError::PaymentStateConflict { actual, .. }) => Err(Error::new(
                Kind::Conflict,
                "payment_state_conflict",
                format!("payment {} is {actual}, nothing to confirm", pay.id),
            )
            .with_rule("QG-ONE-OUTCOME")),
            Err(e) => Err(e.into()),
        }
    }

    /// Confirmed but refused (the cap filled up meanwhile, funds, the
    /// order went away, the card was declined): fail the waiting payment.
    pub(super) async fn fail_waiting(
        &self,
        p: &Principal,
        pay: &Payment,
        from: PaymentStatus,
        merchant: &Merchant,
        refusal: Error,
        now: Timestamp,
    ) -> Result<Reply, Error> {
        let payment_id = pay.id.as_str();
        let mut failed_details = pay.details.clone();
        failed_details.next_action = None;
        failed_details.failure = Some(refusal.failure());
        from.transition(PaymentStatus::Failed)
            .map_err(Error::internal)?;
        let mut m = Movement::new(now);
        m.payment = Some(PaymentWrite::Transition {
            id: payment_id.into(),
            from,
            to: PaymentStatus::Failed,
            details: Some(failed_details),
        });
        m.events.push(self.outbox(
            &merchant.id,
            Event::WaitingPaymentFailed {
                payment_id,
                code: refusal.code,
            },
        )?);
        m.audit = Some(trail::entry(
            Action::PaymentFailed,
            payment_id,
            p.into(),
            json!({ "code": refusal.code, "rule": refusal.rule }),
        ));
        self.store.apply(m).await?;
        Err(Error {
            payment_id: Some(payment_id.into()),
            ..refusal
        })
    }

    pub(crate) async fn cancel_waiting(
        &self,
        pay: &Payment,
        from: PaymentStatus,
        why: &str,
    ) -> Result<bool, Error> {
        let mut m = Movement::new(self.now());
        from.transition(PaymentStatus::Canceled)
            .map_err(Error::internal)?;
        let mut details = pay.details.clone();
        details.next_action = None;
        details.cancellation_reason = Some(why.into());
        m.payment = Some(PaymentWrite::Transition {
            id: pay.id.clone(),
            from,
            to: PaymentStatus::Canceled,
            details: Some(details),
        });
        m.events.push(self.outbox(
            &pay.merchant_id,
            Event::WaitingPaymentCanceled {
                payment_id: &pay.id,
                reason: why,
            },
        )?);
        m.audit = Some(trail::entry(
            Action::PaymentCanceled,
            pay.id.clone(),
            By::Gateway("step-up lapsed"),
            json!({ "reason": why }),
        ));
        match self.store.apply(m).await {
            Ok(_) => Ok(true),
            Err(MovementError::PaymentStateConflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
