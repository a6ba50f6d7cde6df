//! Filing a complaint: the payer's own succeeded payment, within the
//! window (QG-COMPLAINT-WINDOW), one unresolved complaint per payment. A
//! small disputed amount is refunded in the same transaction
//! (QG-COMPLAINT-INSTANT-REFUND) while the payer is under their caps
//! (QG-COMPLAINT-INSTANT-CAP*); anything else is a ticket for the merchant.

use serde_json::json;

use qrgate_core::complaint::{ComplaintReason, checked_text};
use qrgate_core::state::{ComplaintStatus, PaymentStatus};
use qrgate_core::{CounterKey, Metadata, Money, Timestamp};
use qrgate_store::*;

use super::{ComplaintView, after};
use crate::events::Event;
use crate::refunds::{REFUND_ATTEMPTS, RULE_REFUND_PREFIX, RefundAsk, new_refund, refund_key};
use crate::trail::{self, Action, By};
use crate::{Error, Fresh, Gateway, Idem, Kind, Outcome, Principal, Reply, Role};

/// What a payer files.
#[derive(Debug, Clone)]
pub struct NewComplaint {
    pub payment_id: String,
    /// not_received, wrong_amount, not_authorised, charged_twice,
    /// code_tampered or other.
    pub reason: String,
    pub description: String,
    /// What is disputed (a decimal string); all that is left unrefunded
    /// when absent.
    pub amount: Option<String>,
}

/// What a complaint's refund writes besides the refund itself.
pub(super) struct WithRefund<'a> {
    pub(super) by: By<'a>,
    /// The gateway's refund number (stored with the `qg_` prefix).
    pub(super) number: String,
    pub(super) amount: Money,
    pub(super) complaint: ComplaintWrite,
    pub(super) counters: Vec<CounterCharge>,
    pub(super) events: Vec<OutboxEvent>,
    pub(super) idempotency: Option<IdempotencyRecord>,
    /// Added to the refund's audit row (the complaint, the decision).
    pub(super) audit: serde_json::Value,
}

impl<S: Store> Gateway<S> {
    /// File a complaint about one of the payer's payments. The answer is
    /// the complaint: `refunded_instantly` with the money back in the same
    /// answer, or `open` for the merchant to answer.
    pub async fn file_complaint(
        &self,
        p: &Principal,
        new: NewComplaint,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        p.require(&[Role::Consumer])?;
        let reason: ComplaintReason =
            new.reason
                .parse()
                .map_err(|e: qrgate_core::complaint::UnknownReason| {
                    Error::bad_request("invalid_request", e.to_string())
                })?;
        let description = checked_text("description", &new.description)
            .map_err(|e| Error::bad_request("invalid_request", e.to_string()))?;
        // Someone else's payment answers 404, as a missing one does.
        let pay = self.payment_for(p, &new.payment_id).await?;
        let customer = pay
            .customer_id
            .clone()
            .ok_or_else(|| Error::not_found("payment", &new.payment_id))?;
        let now = self.now();
        let lim = self.limits.complaints;
        let left = pay.amount_minor - pay.refunded_minor;
        let disputed = match &new.amount {
            Some(a) => Money::parse_amount(a, crate::CURRENCY)?,
            None => Money::from_minor(left, pay.currency),
        };
        // A retry finds its complaint even after its refund left nothing.
        if let Some(k) = self.unresolved_complaint(&pay.id).await? {
            let disputed = match &new.amount {
                Some(_) => disputed,
                None => Money::from_minor(k.amount_minor, k.currency),
            };
            return self.filed_before(p, &pay, &k, reason, disputed, idem).await;
        }
        complainable(&pay, now, lim.window_seconds)?;
        if disputed.minor() > left {
            return Err(Error::bad_request(
                "invalid_request",
                format!(
                    "amount is more than the {} of payment {} left unrefunded",
                    Money::from_minor(left, pay.currency),
                    pay.id
                ),
            ));
        }
        self.release_aged_instant_refunds(&customer).await?;
        let id = self
            .new_id::<qrgate_core::id::kind::Complaint>()?
            .to_string();
        let k = self.new_ticket(id, &pay, customer, (reason, description), disputed, now);
        let instant = match self.instant_allowed(&pay, disputed, now).await? {
            true => self.file_instant(p, &pay, &k, idem.clone()).await?,
            false => None,
        };
        let reply = match instant {
            Some(reply) => reply,
            None => self.file_ticket(p, &pay, k, idem).await?,
        };
        if reply.fresh() == Some(Fresh::Created) {
            self.check_rate_alarm(&pay.merchant_id).await;
            if reason == ComplaintReason::CodeTampered
                && let Some(code) = &pay.details.static_code_id
            {
                self.suspend_if_reported(&pay.merchant_id, code).await;
            }
        }
        Ok(reply)
    }

    /// A new complaint about `pay`, open for the merchant until its
    /// deadline.
    fn new_ticket(
        &self,
        id: String,
        pay: &Payment,
        customer_id: String,
        (reason, description): (ComplaintReason, String),
        disputed: Money,
        now: Timestamp,
    ) -> Complaint {
        let lim = self.limits.complaints;
        Complaint {
            id,
            payment_id: pay.id.clone(),
            merchant_id: pay.merchant_id.clone(),
            customer_id,
            static_code_id: pay.details.static_code_id.clone(),
            reason,
            description,
            amount_minor: disputed.minor(),
            currency: pay.currency,
            status: ComplaintStatus::Open,
            resolution: None,
            instant: false,
            refunded_minor: 0,
            due_at: Some(after(now, lim.first_reply_seconds)),
            resolve_by: after(now, lim.resolve_seconds),
            first_response_at: None,
            escalated_at: None,
            resolved_at: None,
            revisit_at: None,
            cap_released_at: None,
            processor_pending: None,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// A ticket for the merchant: the complaint, its first step, the
    /// event and the audit row.
    async fn file_ticket(
        &self,
        p: &Principal,
        pay: &Payment,
        k: Complaint,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let step = first_step(&k, "filed");
        let body = self.complaint_body(&k, &step, p.role)?;
        let mut m = Movement::new(k.created_at);
        let idem_again = idem.clone();
        m.idempotency = idem.map(|i| i.record(&Outcome::Created { view: &body }));
        let merchant_view = ComplaintView::of(&k, std::slice::from_ref(&step), Role::Merchant);
        m.events
            .push(self.outbox(&k.merchant_id, Event::ComplaintCreated(&merchant_view))?);
        m.audit = Some(trail::entry(
            Action::ComplaintFiled,
            k.id.clone(),
            p.into(),
            json!({ "payment_id": k.payment_id, "reason": k.reason, "amount_minor": k.amount_minor }),
        ));
        let reason = k.reason;
        let disputed = Money::from_minor(k.amount_minor, k.currency);
        m.complaint = Some(ComplaintWrite::File {
            complaint: Box::new(k),
            step,
        });
        match self.store.apply(m).await {
            Ok(applied) => Ok(Reply::of(applied, Fresh::Created, body)),
            Err(MovementError::ComplaintOpen { .. }) => {
                self.filed_meanwhile(p, pay, reason, disputed, idem_again)
                    .await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The instant refund: the refund movement with the complaint filed as
    /// `refunded_instantly` and the payer's cap charged, in one
    /// transaction. `None` when the payer's cap refused it (the caller
    /// files a ticket instead).
    async fn file_instant(
        &self,
        p: &Principal,
        pay: &Payment,
        k: &Complaint,
        idem: Option<Idem>,
    ) -> Result<Option<Reply>, Error> {
        let lim = self.limits.complaints;
        let mut k = k.clone();
        k.status = ComplaintStatus::RefundedInstantly;
        k.instant = true;
        k.refunded_minor = k.amount_minor;
        k.first_response_at = Some(k.created_at);
        k.due_at = Some(after(k.created_at, lim.contest_window_seconds));
        let step = first_step(&k, "filed");
        let body = self.complaint_body(&k, &step, p.role)?;
        let merchant_view = ComplaintView::of(&k, std::slice::from_ref(&step), Role::Merchant);
        let amount = Money::from_minor(k.amount_minor, k.currency);
        let with = WithRefund {
            by: By::Gateway("QG-COMPLAINT-INSTANT-REFUND"),
            number: instant_number(&pay.id),
            amount,
            complaint: ComplaintWrite::File {
                complaint: Box::new(k.clone()),
                step,
            },
            counters: vec![CounterCharge {
                key: CounterKey::instant_refunds(&k.customer_id),
                amount_minor: k.amount_minor,
                uses: 1,
                cap_amount: Some(lim.instant_cap_minor),
                cap_uses: Some(lim.instant_cap_count),
                rule: "QG-COMPLAINT-INSTANT-CAP".into(),
            }],
            events: vec![self.outbox(&k.merchant_id, Event::ComplaintCreated(&merchant_view))?],
            idempotency: idem
                .clone()
                .map(|i| i.record(&Outcome::Created { view: &body })),
            audit: json!({ "complaint_id": k.id, "reason": k.reason }),
        };
        match self.refund_with(pay, with).await? {
            Ok(applied) => Ok(Some(Reply::of(applied, Fresh::Created, body))),
            // Another filing on this payment may have got there first (its
            // refund fills the cap, takes the number, or its complaint the
            // payment): then that complaint is the answer. Any other refusal
            // (the payer's cap, the payment's refund count, a refund landing
            // meanwhile) leaves the complaint to the merchant as a ticket.
            Err(e) => match self.unresolved_complaint(&pay.id).await? {
                Some(other) => self
                    .filed_before(p, pay, &other, k.reason, amount, idem)
                    .await
                    .map(Some),
                None if !e.is_refusal() => Err(e.into()),
                None => {
                    // Refunded meanwhile so that less than is disputed is
                    // left: the filing is refused as the refund was.
                    let left = self
                        .store
                        .payment(&pay.id)
                        .await?
                        .map_or(0, |now| now.amount_minor - now.refunded_minor);
                    if left < amount.minor() {
                        return Err(refund_refused(&pay.id, e));
                    }
                    tracing::info!(complaint = %k.id, refusal = %e, "not refunded on the spot: a ticket");
                    Ok(None)
                }
            },
        }
    }

    /// Apply a complaint's refund of `pay`: the merchant's refund movement
    /// (the payment's refund caps, the posting back to the original
    /// source, the refund row) with `with`'s complaint write, counters,
    /// events and idempotency record; tried again while other refunds of
    /// the payment land first. After it commits, a card payment's
    /// processor is asked to return the money (idempotent by the refund's
    /// key). The inner error is the movement's refusal.
    pub(super) async fn refund_with(
        &self,
        pay: &Payment,
        with: WithRefund<'_>,
    ) -> Result<Result<Applied, MovementError>, Error> {
        let number = format!("{RULE_REFUND_PREFIX}{}", with.number);
        crate::check_merchant_number("out_refund_no", &number)?;
        let window_ms = self.limits.refund_window_seconds.saturating_mul(1000);
        if self.now().millis_since(pay.created_at) > window_ms {
            return Err(Error::new(
                Kind::Conflict,
                "refund_window_closed",
                format!(
                    "payments can be refunded for {} after they succeed; payment {} is older",
                    qrgate_core::rules::span(self.limits.refund_window_seconds),
                    pay.id
                ),
            )
            .with_rule("BCP-REFUND-WINDOW"));
        }
        // The refund's number stays on the complaint until the card
        // processor confirms it; the jobs ask the processor again until then.
        let mut write = with.complaint.clone();
        let complaint_id = match &mut write {
            ComplaintWrite::File { complaint, .. } => {
                complaint.processor_pending = Some(number.clone());
                complaint.id.clone()
            }
            ComplaintWrite::Move(mv) => {
                mv.processor_pending = Some(number.clone());
                mv.id.clone()
            }
            ComplaintWrite::SuspendCode { .. } => {
                return Err(Error::internal("a code's suspension makes no refund"));
            }
        };
        let id = self.refund_id()?;
        let none = Metadata::default();
        let mut pay = std::borrow::Cow::Borrowed(pay);
        for attempt in 1..=REFUND_ATTEMPTS {
            let ask = RefundAsk {
                amount: with.amount,
                out_refund_no: &number,
                metadata: &none,
            };
            let refund = new_refund(&pay, &id, ask, self.now());
            let (mut m, _) = self.refund_movement(with.by, &pay, refund, None)?;
            m.idempotency = with.idempotency.clone();
            m.complaint = Some(write.clone());
            m.counters.extend(with.counters.iter().cloned());
            m.events.extend(with.events.iter().cloned());
            if let (Some(a), Some(extra)) = (m.audit.as_mut(), with.audit.as_object()) {
                for (key, v) in extra {
                    a.details[key] = v.clone();
                }
            }
            match self.store.apply(m).await {
                Err(MovementError::RefundedMeanwhile { .. }) if attempt < REFUND_ATTEMPTS => {
                    let now = self.store.payment(&pay.id).await?;
                    pay = std::borrow::Cow::Owned(
                        now.ok_or_else(|| Error::not_found("payment", &pay.id))?,
                    );
                }
                Ok(applied) => {
                    self.confirm_card_refund(&pay, &complaint_id, &number, with.amount.minor())
                        .await;
                    return Ok(Ok(applied));
                }
                Err(e) => return Ok(Err(e)),
            }
        }
        Err(crate::error::refund_contended(&pay.id))
    }

    /// Whether a complaint of `disputed` about `pay` is refunded on the
    /// spot: small enough, still refundable, and the payment's first
    /// instant refund (its number is the payment's, so a race refunds once).
    async fn instant_allowed(
        &self,
        pay: &Payment,
        disputed: Money,
        now: Timestamp,
    ) -> Result<bool, Error> {
        let lim = self.limits.complaints;
        let window_ms = self.limits.refund_window_seconds.saturating_mul(1000);
        if disputed.minor() > lim.instant_max_minor || now.millis_since(pay.created_at) > window_ms
        {
            return Ok(false);
        }
        let (earlier, _) = self
            .store
            .complaints(&ComplaintQuery {
                payment_id: Some(pay.id.clone()),
                limit: 100,
                ..Default::default()
            })
            .await?;
        Ok(!earlier.iter().any(|k| k.instant))
    }

    /// The payment's complaint that is not resolved, if any.
    async fn unresolved_complaint(&self, payment_id: &str) -> Result<Option<Complaint>, Error> {
        let (found, _) = self
            .store
            .complaints(&ComplaintQuery {
                payment_id: Some(payment_id.into()),
                statuses: ComplaintStatus::ALL
                    .into_iter()
                    .filter(|s| *s != ComplaintStatus::Resolved)
                    .collect(),
                limit: 1,
                ..Default::default()
            })
            .await?;
        Ok(found.into_iter().next())
    }

    /// A filing that lost a race to another on the same payment.
    async fn filed_meanwhile(
        &self,
        p: &Principal,
        pay: &Payment,
        reason: ComplaintReason,
        disputed: Money,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        match self.unresolved_complaint(&pay.id).await? {
            Some(k) => self.filed_before(p, pay, &k, reason, disputed, idem).await,
            None => Err(Error::new(
                Kind::Conflict,
                "complaint_state_conflict",
                format!(
                    "another complaint about payment {} was filed and resolved meanwhile; read the payment's complaints",
                    pay.id
                ),
            )),
        }
    }

    /// The answer to a filing on a payment that has an unresolved
    /// complaint: the same complaint again when it is this payer's with the
    /// same reason and amount (a retry; an instant refund's processor is
    /// asked again), else a conflict naming it.
    async fn filed_before(
        &self,
        p: &Principal,
        pay: &Payment,
        k: &Complaint,
        reason: ComplaintReason,
        disputed: Money,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let same = p.subject.as_deref() == Some(k.customer_id.as_str())
            && k.reason == reason
            && k.amount_minor == disputed.minor();
        if !same {
            return Err(Error::new(
                Kind::Conflict,
                "complaint_already_open",
                format!(
                    "payment {} already has complaint {} ({}); follow it there",
                    pay.id, k.id, k.status
                ),
            ));
        }
        // A card refund not yet confirmed is asked for again.
        if let Some(number) = &k.processor_pending
            && let Err(e) = self.retry_card_refund(k, number).await
        {
            tracing::warn!(complaint = %k.id, error = %e, "a complaint's card refund is still not confirmed; the jobs ask again");
        }
        let view = self.get_complaint(p, &k.id).await?;
        let body = serde_json::to_string(&view).map_err(Error::internal)?;
        // Kept under the caller's Idempotency-Key, so a retry of it later
        // is answered the same, not filed anew.
        if let Some(i) = idem {
            let mut m = Movement::new(self.now());
            m.idempotency = Some(i.record(&Outcome::Done { view: &body }));
            match self.store.apply(m).await {
                Ok(Applied::Replayed { status, body }) => {
                    return Ok(Reply::Replayed(crate::Said { status, body }));
                }
                Err(e @ MovementError::IdempotencyKeyReused { .. }) => return Err(e.into()),
                Ok(Applied::Done { .. }) | Err(_) => {}
            }
        }
        Ok(Reply::Fresh(Fresh::Done, body))
    }

    /// Ask the card processor to return a complaint's refund (idempotent by
    /// the refund's key), and note when it confirmed; when it does not
    /// answer, the jobs ask again ([`Self::retry_card_refunds`]).
    async fn confirm_card_refund(
        &self,
        pay: &Payment,
        complaint_id: &str,
        number: &str,
        amount: i64,
    ) {
        match self
            .return_funds(&pay.details, &refund_key(&pay.id, number), amount)
            .await
        {
            Ok(()) => {
                if let Err(e) = self
                    .store
                    .clear_processor_pending(complaint_id, number)
                    .await
                {
                    tracing::warn!(complaint = %complaint_id, error = %e, "a confirmed card refund is still marked pending; the jobs clear it");
                }
            }
            Err(e) => tracing::warn!(
                complaint = %complaint_id, refund = %number, error = %e,
                "the card processor has not confirmed a complaint's refund; the jobs ask it again"
            ),
        }
    }

    /// Ask the processor again for complaint `k`'s unconfirmed refund.
    pub(super) async fn retry_card_refund(&self, k: &Complaint, number: &str) -> Result<(), Error> {
        let (pay, refund) = self.complaint_refund(k, number).await?;
        self.card_refund_or_retry(
            &pay,
            &refund_key(&pay.id, number),
            refund.amount_minor,
            "the complaint's refund",
            "the gateway asks it again",
        )
        .await?;
        self.store.clear_processor_pending(&k.id, number).await?;
        Ok(())
    }

    /// The jobs' pass: ask the processor again for every complaint refund
    /// it has not confirmed. How many it confirmed now.
    pub async fn retry_card_refunds(&self) -> Result<usize, Error> {
        let mut confirmed = 0;
        let now = self.now();
        let due = self
            .store
            .complaints_processor_pending(now, RETRIES_PER_PASS)
            .await?;
        for k in due {
            let Some(number) = k.processor_pending.clone() else {
                continue;
            };
            match self.retry_card_refund(&k, &number).await {
                Ok(()) => confirmed += 1,
                Err(e) => {
                    tracing::warn!(complaint = %k.id, error = %e, "a complaint's card refund is still not confirmed");
                    // The others due get their turn; this one comes back later.
                    let next = now.checked_add_millis(RETRY_AFTER_MS).unwrap_or(now);
                    self.store
                        .defer_processor_retry(&k.id, &number, next)
                        .await?;
                }
            }
        }
        Ok(confirmed)
    }

    /// Give the payer's instant refunds older than the cap's window back
    /// to their cap counter, before it is charged again (each one once,
    /// in its own transaction; a lag only keeps the counter higher).
    async fn release_aged_instant_refunds(&self, customer: &str) -> Result<(), Error> {
        let window = self.limits.complaints.instant_cap_window_seconds;
        let now = self.now();
        let before = after(now, -window);
        for k in self.store.capped_instant_refunds(customer, before).await? {
            self.store.release_instant_cap(k, now).await?;
        }
        Ok(())
    }

    fn complaint_body(
        &self,
        k: &Complaint,
        step: &ComplaintStep,
        role: Role,
    ) -> Result<String, Error> {
        serde_json::to_string(&ComplaintView::of(k, std::slice::from_ref(step), role))
            .map_err(Error::internal)
    }
}

/// Unconfirmed complaint refunds the processor is asked for per pass of
/// the jobs (each call may take the processor's timeout).
const RETRIES_PER_PASS: i64 = 5;

/// How long an unconfirmed refund the processor did not answer waits for
/// its next try.
const RETRY_AFTER_MS: i64 = 60_000;

/// A payment may be complained about: it succeeded, within the window.
fn complainable(pay: &Payment, now: Timestamp, window_seconds: i64) -> Result<(), Error> {
    if pay.status != PaymentStatus::Succeeded {
        return Err(Error::new(
            Kind::Conflict,
            "payment_not_complainable",
            format!(
                "payment {} is {}; only a succeeded payment took money to complain about",
                pay.id, pay.status
            ),
        ));
    }
    if pay.amount_minor - pay.refunded_minor <= 0 {
        return Err(Error::new(
            Kind::Conflict,
            "payment_not_complainable",
            format!("payment {} was refunded in full", pay.id),
        ));
    }
    if now.millis_since(pay.created_at) > window_seconds.saturating_mul(1000) {
        return Err(Error::new(
            Kind::Conflict,
            "complaint_window_closed",
            format!(
                "a payment can be complained about for {} after it was made",
                qrgate_core::rules::span(window_seconds)
            ),
        )
        .with_rule("QG-COMPLAINT-WINDOW"));
    }
    Ok(())
}

/// The step a complaint starts with.
fn first_step(k: &Complaint, action: &str) -> ComplaintStep {
    ComplaintStep {
        complaint_id: k.id.clone(),
        seq: 1,
        actor: "payer".into(),
        action: action.into(),
        body: Some(k.description.clone()),
        amount_minor: Some(k.amount_minor),
        created_at: k.created_at,
    }
}

/// The refund number of a payment's instant refund: one per payment.
pub(super) fn instant_number(payment_id: &str) -> String {
    format!("i_{payment_id}")
}

/// A complaint's refund the movement refused, in the API's words.
pub(super) fn refund_refused(payment_id: &str, e: MovementError) -> Error {
    match e {
        MovementError::PaymentStateConflict { actual, .. } => Error::new(
            Kind::Conflict,
            "payment_not_refundable",
            format!("payment {payment_id} is {actual}; only succeeded payments can be refunded"),
        ),
        e => e.into(),
    }
}
