//! A complaint's moves after filing: the merchant answers (refund,
//! explain, reject) or contests an instant refund; the payer accepts or
//! escalates; the operator decides. Each is one movement, written only
//! while the complaint is still as it was read (status and version).

use serde_json::json;

use qrgate_core::complaint::{Resolution, checked_text};
use qrgate_core::state::ComplaintStatus;
use qrgate_core::{Money, Timestamp};
use qrgate_store::*;

use super::file::{WithRefund, refund_refused};
use super::{ComplaintView, after, complaint_moved, step_to};
use crate::events::Event;
use crate::trail::{self, Action, By};
use crate::{Error, Fresh, Gateway, Idem, Outcome, Principal, Reply, Role};

/// The merchant's answer to an open complaint.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Refund the payer: all that is disputed when `amount` is absent
    /// (the complaint is resolved), or part of it (the payer then accepts
    /// or escalates).
    Refund {
        amount: Option<String>,
        message: Option<String>,
    },
    /// Explain what happened; the payer accepts or escalates.
    Explain { message: String },
    /// Reject the complaint, with the reason; the payer accepts or
    /// escalates.
    Reject { reason: String },
}

/// The payer's move on an answered complaint.
#[derive(Debug, Clone)]
pub enum PayerMove {
    Accept,
    Escalate { reason: String },
}

/// The operator's decision on an escalated or contested complaint.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Escalated: refund the payer (all that is disputed and not yet
    /// refunded when `amount` is absent), as the merchant's refund.
    Refund {
        amount: Option<String>,
        reason: String,
    },
    /// Escalated: the merchant's answer stands.
    Reject { reason: String },
    /// Escalated: the merchant's answer was evasive; it answers again by a
    /// new deadline.
    SendBack { reason: String },
    /// Escalated or contested: set aside until `until`, when it is back in
    /// the queue.
    Park { until: Timestamp, reason: String },
    /// Contested: the merchant bears the instant refund.
    KeepRefund { reason: String },
    /// Contested: the merchant wins; the platform's goodwill account bears
    /// the instant refund (the payer keeps the money).
    Recover { reason: String },
}

/// How far off a parked complaint's revisit may be.
const PARK_AT_MOST_DAYS: i64 = 30;

impl Decision {
    /// A decision by its name (`refund`, `reject`, `send_back`, `park`,
    /// `keep_refund`, `recover`), with the reason, the amount of a refund
    /// (all when absent) and the revisit time of a park (RFC 3339).
    pub fn parse(
        name: &str,
        reason: String,
        amount: Option<String>,
        revisit_at: Option<&str>,
    ) -> Result<Decision, Error> {
        Ok(match name {
            "refund" => Decision::Refund { amount, reason },
            "reject" => Decision::Reject { reason },
            "send_back" => Decision::SendBack { reason },
            "keep_refund" => Decision::KeepRefund { reason },
            "recover" => Decision::Recover { reason },
            "park" => {
                let at = revisit_at.filter(|a| !a.is_empty()).ok_or_else(|| {
                    Error::bad_request("invalid_request", "park needs revisit_at")
                })?;
                let until = Timestamp::parse_rfc3339(at).ok_or_else(|| {
                    Error::bad_request("invalid_request", "revisit_at must be an RFC 3339 time")
                })?;
                Decision::Park { until, reason }
            }
            other => {
                return Err(Error::bad_request(
                    "invalid_request",
                    format!(
                        "decision must be refund, reject, send_back, park, keep_refund or recover; not {other:?}"
                    ),
                ));
            }
        })
    }
}

impl<S: Store> Gateway<S> {
    /// The merchant answers an open complaint (by its deadline; after it
    /// the complaint is the operator's).
    pub async fn answer_complaint(
        &self,
        p: &Principal,
        id: &str,
        answer: Answer,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        p.require(&[Role::Merchant])?;
        let k = self.complaint_for(p, id).await?;
        self.require_status(
            &k,
            &[ComplaintStatus::Open],
            "the merchant answers an open complaint",
        )?;
        let now = self.now();
        let lim = self.limits.complaints;
        match answer {
            Answer::Refund { amount, message } => {
                let message = message.map(|m| text("message", &m)).transpose()?;
                let amount = self.refund_amount(&k, amount.as_deref())?;
                let full = k.refunded_minor + amount.minor() >= k.amount_minor;
                let (to, resolution) = if full {
                    (ComplaintStatus::Resolved, Some(Resolution::MerchantRefund))
                } else {
                    (ComplaintStatus::Answered, None)
                };
                let mut mv = step_to(&k, to, "merchant", "refunded", message, now)?;
                mv.resolution = resolution;
                mv.responded = true;
                mv.within_due = true;
                mv.due_at = (!full).then(|| after(now, lim.payer_reply_seconds));
                self.move_with_refund(p, &k, mv, amount, By::Key(p), json!({}), idem)
                    .await
            }
            Answer::Explain { message } => {
                let body = text("message", &message)?;
                let mut mv = step_to(
                    &k,
                    ComplaintStatus::Answered,
                    "merchant",
                    "explained",
                    Some(body),
                    now,
                )?;
                mv.responded = true;
                mv.within_due = true;
                mv.due_at = Some(after(now, lim.payer_reply_seconds));
                self.move_complaint(p, &k, mv, Action::ComplaintAnswered, By::Key(p), idem)
                    .await
            }
            Answer::Reject { reason } => {
                let body = text("reason", &reason)?;
                let mut mv = step_to(
                    &k,
                    ComplaintStatus::Answered,
                    "merchant",
                    "rejected",
                    Some(body),
                    now,
                )?;
                mv.responded = true;
                mv.within_due = true;
                mv.due_at = Some(after(now, lim.payer_reply_seconds));
                self.move_complaint(p, &k, mv, Action::ComplaintAnswered, By::Key(p), idem)
                    .await
            }
        }
    }

    /// The payer accepts the merchant's answer, or escalates it to the
    /// operator.
    pub async fn payer_moves_complaint(
        &self,
        p: &Principal,
        id: &str,
        payer: PayerMove,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        p.require(&[Role::Consumer])?;
        let k = self.complaint_for(p, id).await?;
        self.require_status(
            &k,
            &[ComplaintStatus::Answered],
            "the payer accepts or escalates an answered complaint",
        )?;
        let now = self.now();
        match payer {
            PayerMove::Accept => {
                let mut mv = step_to(
                    &k,
                    ComplaintStatus::Resolved,
                    "payer",
                    "accepted",
                    None,
                    now,
                )?;
                mv.resolution = Some(Resolution::PayerAccepted);
                mv.within_due = true;
                self.move_complaint(p, &k, mv, Action::ComplaintResolved, By::Key(p), idem)
                    .await
            }
            PayerMove::Escalate { reason } => {
                let body = text("reason", &reason)?;
                let mut mv = step_to(
                    &k,
                    ComplaintStatus::Escalated,
                    "payer",
                    "escalated",
                    Some(body),
                    now,
                )?;
                mv.escalated = true;
                mv.within_due = true;
                self.move_complaint(p, &k, mv, Action::ComplaintEscalated, By::Key(p), idem)
                    .await
            }
        }
    }

    /// The merchant contests an instant refund within its window
    /// (QG-COMPLAINT-CONTEST-WINDOW); the operator then decides who bears
    /// it. The payer keeps the money either way.
    pub async fn contest_complaint(
        &self,
        p: &Principal,
        id: &str,
        reason: String,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        p.require(&[Role::Merchant])?;
        let k = self.complaint_for(p, id).await?;
        self.require_status(
            &k,
            &[ComplaintStatus::RefundedInstantly],
            "only an instant refund can be contested",
        )?;
        let now = self.now();
        if k.due_at.is_some_and(|d| now > d) {
            return Err(
                complaint_moved(&k.id, k.status, "its contest window has closed")
                    .with_rule("QG-COMPLAINT-CONTEST-WINDOW"),
            );
        }
        let body = text("reason", &reason)?;
        let mut mv = step_to(
            &k,
            ComplaintStatus::Contested,
            "merchant",
            "contested",
            Some(body),
            now,
        )?;
        mv.responded = true;
        mv.within_due = true;
        self.move_complaint(p, &k, mv, Action::ComplaintContested, By::Key(p), idem)
            .await
    }

    /// The operator decides an escalated or contested complaint. Every
    /// decision has a reason, kept in the complaint's steps and the audit
    /// chain.
    pub async fn decide_complaint(
        &self,
        p: &Principal,
        id: &str,
        decision: Decision,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        p.require(&[Role::Admin])?;
        let k = self.complaint_for(p, id).await?;
        let first_reply = self.limits.complaints.first_reply_seconds;
        let mv = decision_move(&k, &decision, self.now(), first_reply)?;
        match decision {
            Decision::Refund { amount, .. } => {
                let amount = self.refund_amount(&k, amount.as_deref())?;
                let details = json!({ "decision": "refund", "reason": mv.step.body });
                self.move_with_refund(p, &k, mv, amount, By::Key(p), details, idem)
                    .await
            }
            Decision::Recover { .. } => self.recover_instant(p, &k, mv, idem).await,
            _ => {
                self.move_complaint(p, &k, mv, Action::ComplaintDecided, By::Key(p), idem)
                    .await
            }
        }
    }

    /// A complaint's move with no money: the move and its step, the event,
    /// the audit row (and the idempotency record), in one movement.
    pub(super) async fn move_complaint(
        &self,
        p: &Principal,
        k: &Complaint,
        mv: ComplaintMove,
        action: Action,
        by: By<'_>,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let (m, body) = self.move_movement(k, mv, action, by, p.role, idem).await?;
        let applied = self.store.apply(m).await.map_err(|e| moved_error(k, e))?;
        Ok(Reply::of(applied, Fresh::Done, body))
    }

    /// The movement of a complaint's move without money, and the view of
    /// the complaint after it as `role` sees it.
    pub(super) async fn move_movement(
        &self,
        k: &Complaint,
        mv: ComplaintMove,
        action: Action,
        by: By<'_>,
        role: Role,
        idem: Option<Idem>,
    ) -> Result<(Movement, String), Error> {
        let view = self.view_after(k, &mv, role).await?;
        let body = serde_json::to_string(&view).map_err(Error::internal)?;
        let merchant_view = self.view_after(k, &mv, Role::Merchant).await?;
        let mut m = Movement::new(mv.step.created_at);
        m.idempotency = idem.map(|i| i.record(&Outcome::Done { view: &body }));
        m.events
            .push(self.outbox(&k.merchant_id, complaint_event(&mv, &merchant_view))?);
        m.audit = Some(trail::entry(
            action,
            k.id.clone(),
            by,
            json!({
                "from": mv.from, "to": mv.to, "step": mv.step.action,
                "reason": mv.step.body, "revisit_at": mv.revisit_at.map(|t| t.unix_millis()),
            }),
        ));
        m.complaint = Some(ComplaintWrite::Move(mv));
        Ok((m, body))
    }

    /// A complaint's move that refunds the payer `amount`: the refund
    /// movement (the merchant's money, to the original funding source)
    /// carries the move.
    #[allow(clippy::too_many_arguments)]
    async fn move_with_refund(
        &self,
        p: &Principal,
        k: &Complaint,
        mut mv: ComplaintMove,
        amount: Money,
        by: By<'_>,
        details: serde_json::Value,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        mv.refunded_minor = amount.minor();
        mv.step.amount_minor = Some(amount.minor());
        // One unconfirmed card refund per complaint at a time: the earlier
        // one is asked for again first (the write refuses a second marker
        // in a race).
        if let Some(number) = &k.processor_pending {
            self.retry_card_refund(k, number).await.map_err(|e| Error {
                message: format!(
                    "the complaint's earlier refund {number} is not yet confirmed by the card processor; try again shortly ({})",
                    e.message
                ),
                ..e
            })?;
        }
        let pay = self.complained_payment(k).await?;
        let view = self.view_after(k, &mv, p.role).await?;
        let body = serde_json::to_string(&view).map_err(Error::internal)?;
        let merchant_view = self.view_after(k, &mv, Role::Merchant).await?;
        let mut audit = json!({ "complaint_id": k.id, "step": mv.step.action });
        if let (Some(a), Some(extra)) = (audit.as_object_mut(), details.as_object()) {
            a.extend(extra.clone());
        }
        let with = WithRefund {
            by,
            number: format!("{}_{}", k.id, mv.step.seq),
            amount,
            events: vec![self.outbox(&k.merchant_id, complaint_event(&mv, &merchant_view))?],
            complaint: ComplaintWrite::Move(mv),
            counters: Vec::new(),
            idempotency: idem.map(|i| i.record(&Outcome::Done { view: &body })),
            audit,
        };
        match self.refund_with(&pay, with).await? {
            Ok(applied) => Ok(Reply::of(applied, Fresh::Done, body)),
            Err(
                e @ (MovementError::ComplaintMoved { .. }
                | MovementError::ComplaintPastDue { .. }
                | MovementError::ComplaintRefundPending { .. }),
            ) => Err(moved_error(k, e)),
            Err(e) => Err(refund_refused(&pay.id, e)),
        }
    }

    /// The operator recovers a contested instant refund from the
    /// platform's goodwill account: what the refund took from the
    /// merchant's pending account goes back to it, from goodwill. The payer
    /// keeps the money; the refund itself stands.
    async fn recover_instant(
        &self,
        p: &Principal,
        k: &Complaint,
        mv: ComplaintMove,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let number = format!(
            "{}{}",
            crate::refunds::RULE_REFUND_PREFIX,
            super::file::instant_number(&k.payment_id)
        );
        let (pay, refund) = self.complaint_refund(k, &number).await?;
        // What the refund took from the merchant: the amount less the fee
        // it gave back (the fee stays given back).
        let taken = refund.amount_minor - refund.fee_minor;
        let goodwill = crate::goodwill_account();
        self.ensure_account(&goodwill, "platform_goodwill", true)
            .await?;
        let (mut m, body) = self
            .move_movement(k, mv, Action::ComplaintDecided, By::Key(p), p.role, idem)
            .await?;
        if taken > 0 {
            m.posting = Some(
                Posting::lines(
                    format!("pst_goodwill_{}", k.id),
                    "goodwill",
                    None,
                    pay.currency,
                    vec![
                        (goodwill, -taken),
                        (pay.details.settlement_account.clone(), taken),
                    ],
                )
                .for_merchant(&pay.merchant_id),
            );
        }
        if let Some(a) = m.audit.as_mut() {
            a.details["goodwill_minor"] = json!(taken);
            a.details["refund_id"] = json!(refund.id);
        }
        let applied = self.store.apply(m).await.map_err(|e| moved_error(k, e))?;
        Ok(Reply::of(applied, Fresh::Done, body))
    }

    /// What a refund in `k` returns: `amount` (a decimal string) or all
    /// that is disputed and not yet refunded; never more than that.
    fn refund_amount(&self, k: &Complaint, amount: Option<&str>) -> Result<Money, Error> {
        let left = k.amount_minor - k.refunded_minor;
        let amount = match amount {
            Some(a) => Money::parse_amount(a, k.currency)?,
            None => Money::from_minor(left, k.currency),
        };
        if amount.minor() <= 0 || amount.minor() > left {
            return Err(Error::bad_request(
                "invalid_request",
                format!(
                    "a refund in this complaint is 0.01 to {} (what is disputed and not yet refunded)",
                    Money::from_minor(left, k.currency)
                ),
            ));
        }
        Ok(amount)
    }

    fn require_status(
        &self,
        k: &Complaint,
        allowed: &[ComplaintStatus],
        why: &str,
    ) -> Result<(), Error> {
        if allowed.contains(&k.status) {
            Ok(())
        } else {
            Err(complaint_moved(&k.id, k.status, why))
        }
    }
}

/// The move the operator's decision makes of `k`: which states it is for,
/// where it takes the complaint, the step (with the reason, required),
/// and the new deadline (sent back) or revisit time (parked).
fn decision_move(
    k: &Complaint,
    d: &Decision,
    now: Timestamp,
    first_reply_seconds: i64,
) -> Result<ComplaintMove, Error> {
    use ComplaintStatus::{Contested, Escalated, Open, Resolved};
    type Plan<'a> = (
        &'a [ComplaintStatus],
        ComplaintStatus,
        &'a str,
        &'a str,
        Option<Resolution>,
    );
    let (allowed, to, action, reason, resolution): Plan<'_> = match d {
        Decision::Refund { reason, .. } => (
            &[Escalated],
            Resolved,
            "refund_ordered",
            reason,
            Some(Resolution::OperatorRefund),
        ),
        Decision::Reject { reason } => (
            &[Escalated],
            Resolved,
            "upheld_merchant",
            reason,
            Some(Resolution::OperatorUpheld),
        ),
        Decision::SendBack { reason } => (&[Escalated], Open, "sent_back", reason, None),
        Decision::Park { reason, .. } => {
            (&[Escalated, Contested], k.status, "parked", reason, None)
        }
        Decision::KeepRefund { reason } => (
            &[Contested],
            Resolved,
            "merchant_bears",
            reason,
            Some(Resolution::InstantRefund),
        ),
        Decision::Recover { reason } => (
            &[Contested],
            Resolved,
            "goodwill_bears",
            reason,
            Some(Resolution::InstantRefundRecovered),
        ),
    };
    if !allowed.contains(&k.status) {
        let states: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
        return Err(complaint_moved(
            &k.id,
            k.status,
            &format!(
                "the decision {action} is for a complaint that is {}",
                states.join(" or ")
            ),
        ));
    }
    let mut mv = step_to(
        k,
        to,
        "operator",
        action,
        Some(text("reason", reason)?),
        now,
    )?;
    mv.resolution = resolution;
    match d {
        Decision::SendBack { .. } => mv.due_at = Some(after(now, first_reply_seconds)),
        Decision::Park { until, .. } => {
            // A follow-up, not a way out of the queue: at most as far off
            // as the payer's own reply window (a mistyped year would hide
            // the complaint for decades).
            let latest = super::days_before(now, -PARK_AT_MOST_DAYS);
            if *until <= now || *until > latest {
                return Err(Error::bad_request(
                    "invalid_request",
                    format!(
                        "revisit_at must be in the future and at most {PARK_AT_MOST_DAYS} days from now"
                    ),
                ));
            }
            mv.revisit_at = Some(*until);
        }
        _ => {}
    }
    Ok(mv)
}

/// The event of a move: `complaint.resolved` when it resolves the
/// complaint, `complaint.updated` otherwise.
pub(super) fn complaint_event<'a>(mv: &ComplaintMove, view: &'a ComplaintView) -> Event<'a> {
    if mv.to == ComplaintStatus::Resolved {
        Event::ComplaintResolved(view)
    } else {
        Event::ComplaintUpdated(view)
    }
}

/// A move the movement refused: the complaint moved on meanwhile, or
/// its party's deadline passed.
pub(super) fn moved_error(k: &Complaint, e: MovementError) -> Error {
    match e {
        MovementError::ComplaintRefundPending { id, refund } => Error::new(
            crate::Kind::Unavailable,
            "processor_unavailable",
            format!(
                "complaint {id}'s earlier refund {refund} is not yet confirmed by the card processor; try again shortly"
            ),
        ),
        MovementError::ComplaintPastDue { id, due_at } => Error::new(
            crate::Kind::Conflict,
            "complaint_past_due",
            format!(
                "complaint {id} was due by {}; {}",
                crate::views::ts(due_at),
                match k.status {
                    ComplaintStatus::Open => "it goes to the operator",
                    ComplaintStatus::Answered => "the merchant's answer stands",
                    _ => "its window has closed",
                }
            ),
        ),
        MovementError::ComplaintMoved { actual, .. } => complaint_moved(
            &k.id,
            actual.unwrap_or(k.status),
            "it changed meanwhile; read it again",
        ),
        e => e.into(),
    }
}

fn text(field: &'static str, s: &str) -> Result<String, Error> {
    checked_text(field, s).map_err(|e| Error::bad_request("invalid_request", e.to_string()))
}
