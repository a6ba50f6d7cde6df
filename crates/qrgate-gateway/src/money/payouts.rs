//! Payouts: a merchant's available money sent to its bank account through
//! the [`Payouts`](qrgate_processor::bank::Payouts) bank. Making a payout
//! moves the whole available balance to the payout account (the balance
//! guard refuses a second one racing it, and at most one waits per
//! merchant); the bank's answer then moves it on to the bank's clearing
//! account (paid), or back to available (refused for good, or sent back
//! after being paid). A refusal that may pass is asked again later, with
//! the same payout id, so the bank pays once. An attempt is claimed before
//! the bank is asked (one node asks at a time), and an answer that never
//! came is never taken for a refusal: the payout stays pending and the
//! bank is asked again, however often, until it says.

use serde::{Deserialize, Serialize};
use serde_json::json;

use qrgate_core::AccountId;
use qrgate_core::state::PayoutStatus;
use qrgate_processor::bank::BankAnswer;
use qrgate_store::*;

use super::MerchantAccounts;
use crate::events::Event;
use crate::trail::{self, Action, By};
use crate::views::amount;
use crate::{Error, Gateway, Principal};

/// A payout as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "pout_ev5syavwq2ej35gcnslqfgq7fy", "object": "payout", "merchant_id": "mch_6bsdfgzqrkdpgz6gy6p366fdeu", "amount": "129.22", "currency": "CNY", "bank_account": "****0001", "status": "paid", "attempts": 1, "created_at": "2026-11-26T00:10:00.000Z", "updated_at": "2026-11-26T00:10:00.120Z"}))]
pub struct PayoutView {
    pub id: String,
    pub object: String,
    pub merchant_id: String,
    pub amount: String,
    pub currency: String,
    /// The last four digits only.
    pub bank_account: String,
    /// `pending`, `paid`, `failed` (the money is available again) or
    /// `returned` (paid, then sent back; available again).
    pub status: String,
    /// Times the bank was asked.
    pub attempts: i64,
    /// Why the bank refused it (last) or sent it back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl PayoutView {
    pub fn of(p: &Payout) -> PayoutView {
        let last4 = p.bank_account.get(p.bank_account.len().saturating_sub(4)..);
        PayoutView {
            id: p.id.clone(),
            object: "payout".into(),
            merchant_id: p.merchant_id.clone(),
            amount: amount(p.amount_minor, p.currency),
            currency: p.currency.code().into(),
            bank_account: format!("****{}", last4.unwrap_or_default()),
            status: p.status.as_str().into(),
            attempts: p.attempts,
            failure: p.failure.clone(),
            created_at: p.created_at.to_rfc3339(),
            updated_at: p.updated_at.to_rfc3339(),
        }
    }
}

/// Times the bank is asked before a refusal that may pass counts as final.
const MAX_ATTEMPTS: i64 = 5;
/// The wait before the first retry (a minute); each next one waits twice
/// as long.
const RETRY_MS: i64 = 60 * 1000;
/// Pending payouts tried per pass, and payouts one list returns.
const PAGE: i64 = 50;
/// How long an attempt's claim keeps other nodes from asking the bank.
const CLAIM_MS: i64 = 60 * 1000;

/// Which payouts: the last 50 of a merchant, made in a time range.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PayoutListQuery {
    /// The merchant (required for admin and auditor keys).
    pub merchant_id: Option<String>,
    /// Made at or after this time (RFC 3339).
    pub created_gte: Option<String>,
    /// Made before this time (RFC 3339).
    pub created_lt: Option<String>,
}

impl<S: Store> Gateway<S> {
    fn bank_clearing_account(&self) -> AccountId {
        AccountId::bank_clearing(self.bank.name(), crate::CURRENCY)
    }

    /// Pay out a merchant's whole available balance now: the payout made
    /// (and the bank's first answer), or `None` when there is nothing to
    /// pay, no bank account, or a payout of it is already waiting.
    pub async fn pay_out(
        &self,
        by: By<'_>,
        merchant_id: &str,
    ) -> Result<Option<PayoutView>, Error> {
        let merchant = self
            .store
            .merchant(merchant_id)
            .await?
            .ok_or_else(|| Error::not_found("merchant", merchant_id))?;
        let Some(bank_account) = merchant.bank_account.clone() else {
            return Ok(None);
        };
        let acc = MerchantAccounts::of(merchant_id, crate::CURRENCY);
        let available = self
            .store
            .account(&acc.available)
            .await?
            .map_or(0, |a| a.balance_minor);
        if available <= 0 {
            return Ok(None);
        }
        let now = self.now();
        let id = format!(
            "pout_{}",
            self.new_id::<qrgate_core::id::kind::Refund>()?
                .to_string()
                .trim_start_matches("ref_")
        );
        let payout = Payout {
            id: id.clone(),
            merchant_id: merchant_id.to_owned(),
            amount_minor: available,
            currency: crate::CURRENCY,
            bank_account,
            status: PayoutStatus::Pending,
            attempts: 0,
            // Claimed by this node for its first attempt.
            next_attempt_at: now.checked_add_millis(CLAIM_MS).or(Some(now)),
            failure: None,
            bank_reference: None,
            created_at: now,
            updated_at: now,
        };
        let mut m = Movement::new(now);
        // A blocked merchant is not paid (checked with the write).
        m.unblocked = vec![merchant_id.to_owned()];
        // The balance read is advice: the posting's guard takes no more
        // than is there, and the one-pending index refuses a second payout.
        m.posting = Some(
            Posting::lines(
                format!("pst_{id}"),
                "payout",
                None,
                crate::CURRENCY,
                vec![(acc.available, -available), (acc.in_payout, available)],
            )
            .for_merchant(merchant_id),
        );
        m.records.push(Record::Payout(payout.clone()));
        m.audit = Some(trail::entry(
            Action::PayoutCreated,
            id.clone(),
            by,
            json!({ "merchant_id": merchant_id, "amount_minor": available }),
        ));
        match self.store.apply(m).await {
            Ok(_) => {}
            Err(
                MovementError::InsufficientFunds { .. }
                | MovementError::Store(StoreError::AlreadyExists(_)),
            ) => return Ok(None),
            Err(MovementError::PartyBlocked { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let after = self.attempt_payout(payout).await?;
        Ok(Some(PayoutView::of(&after)))
    }

    /// Pay out every merchant's available balance (those with a bank
    /// account and money available); the payouts made. A merchant whose
    /// last payout failed for good or came back is left out until an
    /// operator pays it out by hand (`POST /v1/payouts` naming it): its
    /// bank account does not take money.
    pub async fn pay_out_all(&self, by: By<'_>) -> Result<Vec<PayoutView>, Error> {
        let mut made = Vec::new();
        let mut pages = super::MerchantPages::default();
        loop {
            let ids = pages.next(&self.store).await?;
            if ids.is_empty() {
                return Ok(made);
            }
            for id in ids {
                let last = self.store.payouts_of(&id, (None, None), 1).await?;
                if last.first().is_some_and(|p| {
                    matches!(p.status, PayoutStatus::Failed | PayoutStatus::Returned)
                }) {
                    continue;
                }
                match self.pay_out(by, &id).await {
                    Ok(Some(p)) => made.push(p),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(merchant = %id, error = %e, "a payout could not be made")
                    }
                }
            }
        }
    }

    /// Ask the bank (again) about a pending payout and record its answer.
    /// Another node recording an answer first wins; this one's is dropped
    /// (the bank pays once per payout id).
    async fn attempt_payout(&self, p: Payout) -> Result<Payout, Error> {
        let answer = self
            .within(self.bank.pay(&p.id, &p.bank_account, p.amount_minor))
            .await;
        let now = self.now();
        let attempts = p.attempts + 1;
        let wait = RETRY_MS.saturating_mul(1 << (attempts - 1).clamp(0, 16));
        let later = now.checked_add_millis(wait).unwrap_or(now);
        let paid = matches!(answer, Some(BankAnswer::Paid { .. }));
        let (to, next, failure, reference) = match answer {
            Some(BankAnswer::Paid { reference }) => {
                (PayoutStatus::Paid, None, None, Some(reference))
            }
            // No answer: the bank may have paid. Never a refusal: ask again.
            None => (
                PayoutStatus::Pending,
                Some(later),
                Some("bank_timeout".to_owned()),
                None,
            ),
            Some(BankAnswer::Refused { reason, retry }) if retry && attempts < MAX_ATTEMPTS => {
                (PayoutStatus::Pending, Some(later), Some(reason), None)
            }
            Some(BankAnswer::Refused { reason, .. }) => {
                (PayoutStatus::Failed, None, Some(reason), None)
            }
        };
        let mut after = Payout {
            status: to,
            attempts,
            next_attempt_at: next,
            failure: failure.clone(),
            bank_reference: reference.clone().or(p.bank_reference.clone()),
            updated_at: now,
            ..p.clone()
        };
        let acc = MerchantAccounts::of(&p.merchant_id, p.currency);
        let posting = match to {
            PayoutStatus::Paid => {
                self.ensure_account(&self.bank_clearing_account(), "external_clearing", true)
                    .await?;
                Some((acc.in_payout, self.bank_clearing_account()))
            }
            PayoutStatus::Failed => Some((acc.in_payout, acc.available)),
            _ => None,
        };
        let change = self.payout_change(&p, &after, posting)?;
        if !self.store.change_payout(change).await? {
            if paid {
                // Claims make this one node's answer; if it is not the one
                // recorded, an operator must look.
                tracing::error!(payout = %p.id, "the bank paid a payout whose attempt another node recorded");
            }
            after = self.store.payout(&p.id).await?.unwrap_or(after);
        }
        Ok(after)
    }

    /// The store's step from `before` to `after`: the money moved from one
    /// account to another (if any), and, when it ends or is sent back, the
    /// event and the audit row.
    fn payout_change(
        &self,
        before: &Payout,
        after: &Payout,
        posting: Option<(AccountId, AccountId)>,
    ) -> Result<PayoutChange, Error> {
        before
            .status
            .transition(after.status)
            .map_err(Error::internal)?;
        let view = PayoutView::of(after);
        let (event, action) = match after.status {
            PayoutStatus::Paid => (Some(Event::PayoutPaid(&view)), Some(Action::PayoutPaid)),
            PayoutStatus::Failed => (Some(Event::PayoutFailed(&view)), Some(Action::PayoutFailed)),
            PayoutStatus::Returned => (
                Some(Event::PayoutReturned(&view)),
                Some(Action::PayoutReturned),
            ),
            PayoutStatus::Pending => (None, None),
        };
        let events = match event {
            Some(e) => vec![self.outbox(&after.merchant_id, e)?],
            None => Vec::new(),
        };
        let step = after.attempts;
        Ok(PayoutChange {
            id: before.id.clone(),
            from: before.status,
            attempts_before: before.attempts,
            to: after.status,
            attempts: after.attempts,
            next_attempt_at: after.next_attempt_at,
            failure: after.failure.clone(),
            bank_reference: after.bank_reference.clone(),
            posting: posting.map(|(from, to)| {
                Posting::lines(
                    format!("pst_{}_{}_{step}", before.id, after.status),
                    "payout",
                    None,
                    after.currency,
                    vec![(from, -after.amount_minor), (to, after.amount_minor)],
                )
                .for_merchant(&after.merchant_id)
            }),
            events,
            audit: action.map(|a| {
                trail::entry(
                    a,
                    before.id.clone(),
                    By::Gateway("payouts"),
                    json!({ "merchant_id": after.merchant_id, "amount_minor": after.amount_minor, "attempts": after.attempts, "failure": after.failure }),
                )
            }),
            at: after.updated_at,
        })
    }

    /// The payouts' pass: pending payouts due are asked again, and payouts
    /// the bank sent back return to available. How many changed.
    pub async fn payouts_step(&self) -> Result<usize, Error> {
        let mut changed = 0;
        for p in self.store.payouts_due(self.now(), PAGE).await? {
            let now = self.now();
            let until = now.checked_add_millis(CLAIM_MS).unwrap_or(now);
            // Another node asking the bank for this attempt has claimed it.
            if !self
                .store
                .claim_payout(&p.id, p.attempts, now, until)
                .await?
            {
                continue;
            }
            let (id, before) = (p.id.clone(), p.status);
            match self.attempt_payout(p).await {
                Ok(after) if after.status != before => changed += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(payout = %id, error = %e, "a payout attempt failed; it is asked again");
                }
            }
        }
        for r in self.bank.returns().await {
            let Some(p) = self.store.payout(&r.payout_id).await? else {
                tracing::warn!(payout = %r.payout_id, "the bank sent back a payout it was never sent");
                continue;
            };
            // Recorded already, or not yet recorded paid (the bank reports
            // it again until then).
            if p.status != PayoutStatus::Paid {
                continue;
            }
            let acc = MerchantAccounts::of(&p.merchant_id, p.currency);
            let after = Payout {
                status: PayoutStatus::Returned,
                failure: Some(r.reason.clone()),
                updated_at: self.now(),
                ..p.clone()
            };
            let change = self.payout_change(
                &p,
                &after,
                Some((self.bank_clearing_account(), acc.available)),
            )?;
            if self.store.change_payout(change).await? {
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// A merchant's payouts, newest first (the last [`PAGE`]).
    pub async fn list_payouts(
        &self,
        p: &Principal,
        q: PayoutListQuery,
    ) -> Result<Vec<PayoutView>, Error> {
        let id = self.money_of(p, q.merchant_id.as_deref())?;
        let created =
            crate::payments::created_range(q.created_gte.as_deref(), q.created_lt.as_deref())?;
        Ok(self
            .store
            .payouts_of(id, created, PAGE)
            .await?
            .iter()
            .map(PayoutView::of)
            .collect())
    }
}
