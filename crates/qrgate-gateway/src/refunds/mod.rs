//! Money going back: refunds (part or all, to the original funding source,
//! once per refund number) and cancels (a full reversal within the cancel
//! window). Each one's guards are in its movement: a refund needs the
//! payment still succeeded, a cancel needs nothing refunded.

mod list;

pub use list::{RefundListQuery, RefundPage};

use serde_json::json;

use qrgate_core::state::PaymentStatus;
use qrgate_core::{CounterKey, Metadata, Money};
use qrgate_store::*;

use crate::events::Event;
use crate::trail::{self, Action, By};
use crate::views::{PaymentView, RefundView};
use crate::{Error, Fresh, Gateway, Idem, Kind, Outcome, Principal, Reply, Role};

impl<S: Store> Gateway<S> {
    /// Refund part or all of a payment to its original funding source.
    pub async fn refund(
        &self,
        p: &Principal,
        payment_id: &str,
        amount: &str,
        out_refund_no: &str,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let none = Metadata::default();
        self.refund_with_metadata(p, payment_id, amount, out_refund_no, &none, idem)
            .await
    }

    /// [`Self::refund`], with the merchant's notes on the refund.
    pub async fn refund_with_metadata(
        &self,
        p: &Principal,
        payment_id: &str,
        amount: &str,
        out_refund_no: &str,
        metadata: &Metadata,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        p.require(&[Role::Merchant])?;
        crate::check_merchant_number("out_refund_no", out_refund_no)?;
        if out_refund_no.starts_with(RULE_REFUND_PREFIX) {
            return Err(Error::bad_request(
                "invalid_request",
                format!(
                    "out_refund_no may not start with {RULE_REFUND_PREFIX:?}: the gateway numbers its own refunds so"
                ),
            ));
        }
        let amount = Money::parse_amount(amount, crate::CURRENCY)?;
        let pay = self.payment_for(p, payment_id).await?;
        let ask = RefundAsk {
            amount,
            out_refund_no,
            metadata,
        };
        self.refund_payment(By::Key(p), &pay, ask, idem).await
    }

    /// A refund the gateway starts on its own because `rule` says so (a
    /// small disputed charge refunded on the spot): the same movement as a
    /// merchant's refund, with the same caps, window and once-per-number
    /// guard, to the same original funding source, and its audit row names
    /// the rule instead of a key. `out_refund_no` is the gateway's own
    /// number for it (a complaint's id), so a retry refunds once; it is
    /// stored as `qg_<number>`, a prefix merchants may not use, so it never
    /// meets a merchant's number.
    pub async fn refund_by_rule(
        &self,
        rule: &'static str,
        payment_id: &str,
        amount: Money,
        out_refund_no: &str,
    ) -> Result<Reply, Error> {
        let out_refund_no = format!("{RULE_REFUND_PREFIX}{out_refund_no}");
        let out_refund_no = out_refund_no.as_str();
        crate::check_merchant_number("out_refund_no", out_refund_no)?;
        if amount.minor() <= 0 {
            return Err(qrgate_core::AmountError::Zero.into());
        }
        let pay = self
            .store
            .payment(payment_id)
            .await?
            .ok_or_else(|| Error::not_found("payment", payment_id))?;
        if amount.currency() != pay.currency {
            return Err(Error::bad_request(
                "currency_mismatch",
                format!(
                    "payment {payment_id} is in {}; a refund of it cannot be in {}",
                    pay.currency,
                    amount.currency()
                ),
            ));
        }
        let ask = RefundAsk {
            amount,
            out_refund_no,
            metadata: &Metadata::default(),
        };
        self.refund_payment(By::Gateway(rule), &pay, ask, None)
            .await
    }

    /// The refund of `pay`, whoever asked: state, the number seen before,
    /// the window, then the one movement whose guards decide.
    async fn refund_payment(
        &self,
        by: By<'_>,
        pay: &Payment,
        ask: RefundAsk<'_>,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let RefundAsk {
            amount,
            out_refund_no,
            metadata,
        } = ask;
        let payment_id = pay.id.as_str();
        if pay.status != PaymentStatus::Succeeded {
            return Err(not_refundable(payment_id, pay.status));
        }
        // A retry with the same refund number refunds only once, and still
        // reaches the processor after the window has closed.
        // Only the payment's own refunds here: a number another payment
        // holds is refused by the refund row's unique index, inside the
        // movement, and named then.
        if let Some(reply) = self
            .refund_made(pay, out_refund_no, amount.minor(), NumberOf::Payment)
            .await?
        {
            return Ok(reply);
        }
        let now = self.now();
        let window_ms = self.limits.refund_window_seconds.saturating_mul(1000);
        if now.millis_since(pay.created_at) > window_ms {
            return Err(Error::new(
                Kind::Conflict,
                "refund_window_closed",
                format!(
                    "payments can be refunded for {} after they succeed",
                    qrgate_core::rules::span(self.limits.refund_window_seconds)
                ),
            )
            .with_rule("BCP-REFUND-WINDOW"));
        }
        let id = self.refund_id()?;
        // The fee given back depends on what was refunded before: the
        // movement is written only while that is still so, and read again
        // when another refund of the payment got there first.
        let mut pay = std::borrow::Cow::Borrowed(pay);
        for attempt in 1.. {
            let ask = RefundAsk {
                amount,
                out_refund_no,
                metadata,
            };
            let refund = new_refund(&pay, &id, ask, now);
            let (m, body) = self.refund_movement(by, &pay, refund, idem.clone())?;
            match self.store.apply(m).await {
                Err(MovementError::RefundedMeanwhile { .. }) if attempt < REFUND_ATTEMPTS => {
                    let now = self.store.payment(payment_id).await?;
                    pay = std::borrow::Cow::Owned(
                        now.ok_or_else(|| Error::not_found("payment", payment_id))?,
                    );
                }
                result => {
                    return self
                        .refund_applied(&pay, result, out_refund_no, amount, body)
                        .await;
                }
            }
        }
        Err(Error::internal("the refund attempts ran out"))
    }

    /// A new refund id.
    pub(crate) fn refund_id(&self) -> Result<String, Error> {
        Ok(self.new_id::<qrgate_core::id::kind::Refund>()?.to_string())
    }

    /// What a refund's movement came to: the refund (and the card given
    /// its money back), a concurrent retry's refund, or the refusal.
    async fn refund_applied(
        &self,
        pay: &Payment,
        result: Result<Applied, MovementError>,
        out_refund_no: &str,
        amount: Money,
        body: String,
    ) -> Result<Reply, Error> {
        let payment_id = pay.id.as_str();
        match result {
            Ok(applied) => {
                self.card_refund_or_retry(
                    pay,
                    &refund_key(payment_id, out_refund_no),
                    amount.minor(),
                    "the refund",
                    "retry with the same out_refund_no",
                )
                .await?;
                Ok(Reply::of(applied, Fresh::Created, body))
            }
            Err(e) => {
                // A concurrent retry with the same number may have won the
                // race (and filled the cap this one was refused by): its
                // refund is the answer.
                match (
                    self.refund_made(pay, out_refund_no, amount.minor(), NumberOf::Merchant)
                        .await?,
                    e,
                ) {
                    (Some(reply), _) => Ok(reply),
                    (None, MovementError::PaymentStateConflict { actual, .. }) => {
                        Err(not_refundable(payment_id, actual))
                    }
                    (None, MovementError::RefundedMeanwhile { .. }) => {
                        Err(crate::error::refund_contended(payment_id))
                    }
                    (None, e) => Err(e.into()),
                }
            }
        }
    }

    /// The one movement of a refund: its two caps (the amount captured,
    /// the count of refunds), the posting back to the payment's source, the
    /// payment's refunded amount, the refund row, its event and audit row.
    pub(crate) fn refund_movement(
        &self,
        by: By<'_>,
        pay: &Payment,
        refund: Refund,
        idem: Option<Idem>,
    ) -> Result<(Movement, String), Error> {
        let amount = Money::from_minor(refund.amount_minor, refund.currency);
        let view = RefundView::of(&refund);
        let body = serde_json::to_string(&view).map_err(Error::internal)?;
        let fee_back = refund.fee_minor;
        let mut m = Movement::new(refund.created_at);
        m.idempotency = idem.map(|i| i.record(&Outcome::Created { view: &body }));
        m.counters.push(CounterCharge {
            key: CounterKey::refunded(&pay.id),
            amount_minor: amount.minor(),
            uses: 0,
            cap_amount: Some(pay.amount_minor),
            cap_uses: None,
            rule: "BCP-REFUND-CAP".into(),
        });
        m.counters.push(CounterCharge {
            key: CounterKey::refund_count(&pay.id),
            amount_minor: 0,
            uses: 1,
            cap_amount: None,
            cap_uses: Some(self.limits.refund_count),
            rule: "BCP-REFUND-COUNT".into(),
        });
        // Back the way the money came (BCP-REFUND-ORIGINAL), out of the
        // merchant's pending account less the fee given back, which the fee
        // revenue returns (QG-FEE-ROUNDING).
        m.posting = Some(
            Posting::lines(
                format!("pst_{}", refund.id),
                "refund",
                Some(&pay.id),
                pay.currency,
                vec![
                    (
                        pay.details.settlement_account.clone(),
                        -(amount.minor() - fee_back),
                    ),
                    (crate::fee_account(&pay.merchant_id), -fee_back),
                    (pay.details.funding_account.clone(), amount.minor()),
                ],
            )
            .for_merchant(&pay.merchant_id),
        );
        m.guard_day(&pay.details.settlement_account);
        m.payment = Some(PaymentWrite::AddRefunded {
            id: pay.id.clone(),
            amount_minor: amount.minor(),
            refunded_before: pay.refunded_minor,
            status: PaymentStatus::Succeeded,
        });
        m.events
            .push(self.outbox(&pay.merchant_id, Event::RefundSucceeded(&view))?);
        m.audit = Some(trail::entry(
            Action::RefundSucceeded,
            refund.id.clone(),
            by,
            json!({ "payment_id": pay.id, "amount_minor": amount.minor(), "fee_minor": fee_back }),
        ));
        m.refund = Some(refund);
        Ok((m, body))
    }

    /// The answer to a refund whose number the merchant used before: the
    /// refund made then, when it was of this payment (after asking the
    /// processor again, idempotent by refund key, in case the first call
    /// never got there), or a conflict when it was of another payment
    /// (looked for only when `among` is the merchant's) or for another
    /// amount. `None` when the number is new there.
    async fn refund_made(
        &self,
        pay: &Payment,
        out_refund_no: &str,
        amount_minor: i64,
        among: NumberOf,
    ) -> Result<Option<Reply>, Error> {
        // The payment's own refunds first: a refund made before numbers
        // were unique per merchant (`number_shared`) is found only there,
        // and its retry must reach the processor again.
        let own = self
            .store
            .refunds(&pay.id)
            .await?
            .into_iter()
            .find(|r| r.out_refund_no == out_refund_no);
        let r = match (own, among) {
            (Some(r), _) => Some(r),
            (None, NumberOf::Payment) => None,
            (None, NumberOf::Merchant) => {
                let (found, _) = self
                    .store
                    .list_refunds(RefundQuery {
                        merchant_id: Some(pay.merchant_id.clone()),
                        out_refund_no: Some(out_refund_no.to_owned()),
                        limit: 1,
                        ..Default::default()
                    })
                    .await?;
                found.into_iter().next()
            }
        };
        let Some(r) = r else {
            return Ok(None);
        };
        if r.payment_id != pay.id {
            return Err(Error::new(
                Kind::Conflict,
                "duplicate_out_refund_no",
                format!(
                    "out_refund_no {out_refund_no:?} is already the number of refund {} of payment {}; \
                     a merchant's refund numbers are unique across its payments",
                    r.id, r.payment_id
                ),
            )
            .with_rule("BCP-REFUND-IDEMPOTENT"));
        }
        if r.amount_minor != amount_minor {
            return Err(Error::new(
                Kind::Conflict,
                "duplicate_out_refund_no",
                "out_refund_no was used for a refund of another amount",
            )
            .with_rule("BCP-REFUND-IDEMPOTENT"));
        }
        self.card_refund_or_retry(
            pay,
            &refund_key(&pay.id, out_refund_no),
            r.amount_minor,
            "the refund",
            "retry with the same out_refund_no",
        )
        .await?;
        Ok(Some(Reply::Fresh(
            Fresh::Done,
            serde_json::to_string(&RefundView::of(&r)).map_err(Error::internal)?,
        )))
    }

    pub async fn list_refunds(
        &self,
        p: &Principal,
        payment_id: &str,
    ) -> Result<Vec<RefundView>, Error> {
        self.payment_for(p, payment_id).await?;
        Ok(self
            .store
            .refunds(payment_id)
            .await?
            .iter()
            .map(|r| RefundView::of(r).for_role(p.role))
            .collect())
    }

    /// Cancel (reverse) a payment: one that succeeded within the cancel
    /// window and has no refunds is reversed in full to its funding source.
    pub async fn cancel(
        &self,
        p: &Principal,
        payment_id: &str,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        p.require(&[Role::Merchant])?;
        let pay = self.payment_for(p, payment_id).await?;
        let now = self.now();
        let status = pay.status;
        if status != PaymentStatus::Succeeded || pay.refunded_minor != 0 {
            return Err(not_cancelable(payment_id, status, pay.refunded_minor));
        }
        let window = self.limits.cancel_window_seconds;
        if now.millis_since(pay.created_at) > window.saturating_mul(1000) {
            return Err(Error::new(
                Kind::Conflict,
                "cancel_window_closed",
                format!(
                    "payments can be canceled within {} of succeeding; use a refund",
                    qrgate_core::rules::span(window)
                ),
            )
            .with_rule("QG-CANCEL-WINDOW"));
        }
        let (m, body) = self.cancel_movement(p, &pay, now, idem)?;
        // The read above is advice; the movement's own guards decide (the
        // payment still succeeded, nothing refunded meanwhile).
        let applied = self.store.apply(m).await.map_err(|e| match e {
            MovementError::PaymentStateConflict { actual, .. } => {
                not_cancelable(payment_id, actual, 0)
            }
            MovementError::PaymentHasRefunds { refunded_minor, .. } => {
                not_cancelable(payment_id, PaymentStatus::Succeeded, refunded_minor)
            }
            e => e.into(),
        })?;
        // Recorded (now or by the first try): return the money to the card.
        self.card_refund_or_retry(
            &pay,
            &cancel_key(payment_id),
            pay.amount_minor,
            "the cancel",
            "call cancel again",
        )
        .await?;
        Ok(Reply::of(applied, Fresh::Done, body))
    }

    /// The one movement of a cancel: the whole amount back to the payment's
    /// source, out of the merchant's pending account less the fee, which
    /// comes back whole; the payment canceled, its event and audit row.
    fn cancel_movement(
        &self,
        p: &Principal,
        pay: &Payment,
        now: qrgate_core::Timestamp,
        idem: Option<Idem>,
    ) -> Result<(Movement, String), Error> {
        let payment_id = pay.id.as_str();
        let mut after = pay.clone();
        after.status = PaymentStatus::Canceled;
        after.updated_at = now;
        let view = PaymentView::of(&after, p.role);
        let body = serde_json::to_string(&view).map_err(Error::internal)?;
        let mut m = Movement::new(now);
        m.idempotency = idem.map(|i| i.record(&Outcome::Done { view: &body }));
        m.posting = Some(
            Posting::lines(
                format!("pst_cancel_{payment_id}"),
                "reversal",
                Some(payment_id),
                pay.currency,
                vec![
                    (
                        pay.details.settlement_account.clone(),
                        -(pay.amount_minor - pay.fee_minor),
                    ),
                    (crate::fee_account(&pay.merchant_id), -pay.fee_minor),
                    (pay.details.funding_account.clone(), pay.amount_minor),
                ],
            )
            .for_merchant(&pay.merchant_id),
        );
        m.guard_day(&pay.details.settlement_account);
        m.payment = Some(crate::payment_move(
            payment_id,
            pay.status,
            PaymentStatus::Canceled,
        )?);
        let event_view = PaymentView::of(&after, Role::Merchant);
        m.events
            .push(self.outbox(&pay.merchant_id, Event::PaymentCanceled(&event_view))?);
        m.audit = Some(trail::entry(
            Action::PaymentCanceled,
            payment_id,
            p.into(),
            json!({ "amount_minor": pay.amount_minor, "fee_minor": pay.fee_minor }),
        ));
        Ok((m, body))
    }

    /// After the ledger recorded a refund or cancel of a card payment, have
    /// the processor return the money (idempotent by `key`). When it does
    /// not answer, say so: the caller retries and the processor call is
    /// repeated, the ledger is not written twice.
    pub(crate) async fn card_refund_or_retry(
        &self,
        pay: &Payment,
        key: &str,
        amount: i64,
        what: &str,
        retry: &str,
    ) -> Result<(), Error> {
        self.return_funds(&pay.details, key, amount)
            .await
            .map_err(|e| Error {
                message: format!(
                    "{what} is recorded, but the card processor has not confirmed returning the money to the card: {retry}"
                ),
                ..e
            })
    }
}

/// Where a refund number is looked for: the payment's own refunds, or
/// all of its merchant's.
#[derive(Clone, Copy)]
enum NumberOf {
    Payment,
    Merchant,
}

/// What a refund asks for: how much, under which number, with which notes.
pub(crate) struct RefundAsk<'a> {
    pub(crate) amount: Money,
    pub(crate) out_refund_no: &'a str,
    pub(crate) metadata: &'a Metadata,
}

/// How many times a refund is tried while other refunds of the same
/// payment land first.
pub(crate) const REFUND_ATTEMPTS: u32 = 8;

/// The row of a refund of `pay` (succeeded, with the fee it gives back as
/// things stand in `pay`).
pub(crate) fn new_refund(
    pay: &Payment,
    id: &str,
    ask: RefundAsk<'_>,
    now: qrgate_core::Timestamp,
) -> Refund {
    Refund {
        id: id.to_owned(),
        payment_id: pay.id.clone(),
        merchant_id: pay.merchant_id.clone(),
        amount_minor: ask.amount.minor(),
        currency: pay.currency,
        status: "succeeded".into(),
        out_refund_no: ask.out_refund_no.into(),
        fee_minor: fee_given_back(pay, ask.amount),
        metadata: ask.metadata.clone(),
        created_at: now,
    }
}

/// The part of `pay`'s fee a refund of `amount` gives back: the fee kept
/// on what was left before it less the fee kept on what is left after it
/// (QG-FEE-ROUNDING), by the schedule the payment was made under.
fn fee_given_back(pay: &Payment, amount: Money) -> i64 {
    let Some(schedule) = pay.details.fee_schedule else {
        return 0;
    };
    let net_before = Money::from_minor(pay.amount_minor - pay.refunded_minor, pay.currency);
    schedule.refunded(net_before, amount).minor()
}

/// How the refund numbers of the gateway's own refunds begin; merchants may
/// not use it.
pub const RULE_REFUND_PREFIX: &str = "qg_";

/// The processor's idempotency key of a refund: one per refund number.
/// The processor's idempotency key of a cancel: a refund of the whole
/// amount (a merchant's refund of the payment and its cancel exclude each
/// other, so the number never meets a refund's).
pub(crate) fn cancel_key(payment_id: &str) -> String {
    format!("{payment_id}:cancel")
}

pub(crate) fn refund_key(payment_id: &str, out_refund_no: &str) -> String {
    format!("{payment_id}:{out_refund_no}")
}

fn not_refundable(payment_id: &str, status: PaymentStatus) -> Error {
    Error::new(
        Kind::Conflict,
        "payment_not_refundable",
        format!("payment {payment_id} is {status}; only succeeded payments can be refunded"),
    )
}

fn not_cancelable(payment_id: &str, status: PaymentStatus, refunded_minor: i64) -> Error {
    let refunded = Money::from_minor(refunded_minor, crate::CURRENCY);
    Error::new(
        Kind::Conflict,
        "payment_not_cancelable",
        format!("payment {payment_id} is {status} with {refunded} refunded; use a refund"),
    )
}
