//! Settling a sale, for every way of paying: the level's daily cap and the
//! account class's yearly cap, the risk checks, step-up when the level
//! needs more proof, and the one movement that moves the money; a refused
//! sale is recorded as a failed payment with the rule that refused it.
//!
//! Every outcome that consumed a one-time code is recorded, failures too:
//! a declined payment burns its code (single use even when the payment
//! fails) and is stored as a `failed` payment with the rule that refused it.

use serde_json::json;

use qrgate_core::fee::FeeSchedule;
use qrgate_core::id::PaymentId;
use qrgate_core::payment::{Check, Decision, Mode, PaymentDetails};
use qrgate_core::risk::{Element, RiskLevel};
use qrgate_core::state::{OrderStatus, PaymentStatus};
use qrgate_core::{CounterKey, Money, Timestamp};
use qrgate_store::*;

use crate::events::Event;
use crate::funding::{Counted, Source};
use crate::stepup::{Offer, StepUp};
use crate::trail::{self, Action};
use crate::views::PaymentView;
use crate::{
    Error, Fresh, Gateway, Idem, Outcome, Principal, Reply, Role, Said, settlement_account,
};

/// What is being paid: who pays whom, how much, at which risk level with
/// which proven elements, from which source, for which order.
#[derive(Clone, Copy)]
pub(super) struct Sale<'a> {
    pub(super) mode: Mode,
    /// CPM: the kind of code the payer showed.
    pub(super) code_kind: Option<&'a str>,
    pub(super) merchant: &'a Merchant,
    pub(super) customer: &'a str,
    pub(super) amount: Money,
    pub(super) level: RiskLevel,
    pub(super) elements: &'a [Element],
    pub(super) source: &'a Source,
    pub(super) order: Option<&'a Order>,
    /// The device that signed the payer's code: the movement checks it is
    /// still active (a revocation on any gateway stops its codes at once).
    pub(super) device: Option<&'a str>,
    /// The static code scanned: the movement checks it is not revoked.
    pub(super) static_code: Option<&'a str>,
    /// CPM: the merchant's notes given with the charge (a payment of an
    /// order carries the order's).
    pub(super) metadata: Option<&'a qrgate_core::Metadata>,
}

/// What follows a refused sale: a step-up offer (with the refusal it
/// answers), or the decline.
enum AfterRefusal {
    StepUp(Offer, Error),
    Decline(Error),
}

impl<S: Store> Gateway<S> {
    /// A new event id; time-ordered like the other ids, so the outbox's
    /// unique index on it grows at one end instead of at a random page.
    pub(crate) fn event_id(&self) -> Result<String, Error> {
        Ok(self.new_id::<qrgate_core::id::kind::Event>()?.to_string())
    }

    /// The daily cap of `level`, counted for `subject`: the customer (all
    /// wallet payments together) or one card.
    pub(crate) async fn daily_charge(
        &self,
        customer: &str,
        subject: &str,
        level: RiskLevel,
        amount: i64,
        now: Timestamp,
    ) -> Result<CounterCharge, Error> {
        let cap = match level {
            RiskLevel::A => {
                let c = self.customer_row(customer).await?;
                c.and_then(|c| c.level_a_cap).unwrap_or(self.limits.daily_b)
            }
            RiskLevel::B => self.limits.daily_b,
            RiskLevel::C => self.limits.daily_c,
            RiskLevel::D => self.limits.daily_d,
        };
        Ok(CounterCharge {
            key: CounterKey::daily(
                subject,
                level,
                &now.business_date(self.limits.business_offset_minutes),
            ),
            amount_minor: amount,
            uses: 1,
            cap_amount: Some(cap),
            cap_uses: None,
            rule: level.daily_rule().into(),
        })
    }

    /// 43: a wallet-balance payment also stays within its account class's cap.
    pub(crate) async fn class_charge(
        &self,
        customer: &str,
        amount: i64,
        now: Timestamp,
    ) -> Result<CounterCharge, Error> {
        let c = self
            .customer_row(customer)
            .await?
            .ok_or_else(|| Error::not_found("customer", customer))?;
        let year = now
            .business_date(self.limits.business_offset_minutes)
            .chars()
            .take(4)
            .collect::<String>();
        let (key, cap, rule) = match c.account_class.as_str() {
            "I" => (
                CounterKey::class_total(customer),
                self.limits.class_i_total,
                "BCP-ACCT-CLASS-I",
            ),
            "II" => (
                CounterKey::class_yearly(customer, "II", &year),
                self.limits.class_ii_yearly,
                "BCP-ACCT-CLASS-II",
            ),
            "III" => (
                CounterKey::class_yearly(customer, "III", &year),
                self.limits.class_iii_yearly,
                "BCP-ACCT-CLASS-III",
            ),
            other => {
                return Err(Error::internal(format!(
                    "customer {customer} has account class {other:?}"
                )));
            }
        };
        Ok(CounterCharge {
            key,
            amount_minor: amount,
            uses: 1,
            cap_amount: Some(cap),
            cap_uses: None,
            rule: rule.into(),
        })
    }

    /// Build and apply a payment: on a refusal that consumed the code, record
    /// the failed payment (burning the code) and answer with the refusal.
    /// A card is authorized before the movement and reversed if the
    /// movement is refused.
    pub(super) async fn settle(
        &self,
        p: &Principal,
        sale: Sale<'_>,
        burn: Option<CodeBurn>,
        out_trade_no: Option<String>,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let Sale {
            merchant,
            customer,
            amount,
            order,
            ..
        } = sale;
        let now = self.now();
        let id: PaymentId = self.new_id()?;
        let id = id.to_string();
        let mut details = self.new_details(&sale);
        let row = |status: PaymentStatus, details: PaymentDetails| Payment {
            id: id.clone(),
            merchant_id: merchant.id.clone(),
            customer_id: Some(customer.to_owned()),
            status,
            amount_minor: amount.minor(),
            currency: amount.currency(),
            refunded_minor: 0,
            out_trade_no: out_trade_no.clone(),
            // What it costs the merchant when it succeeds (QG-FEE-ROUNDING).
            fee_minor: merchant.fees.charge(amount).minor(),
            details,
            created_at: now,
            updated_at: now,
        };
        let refusal = match self
            .try_settle(p, &sale, &burn, &mut details, &row, &idem)
            .await?
        {
            Ok(reply) => return Ok(reply),
            Err(refusal) => refusal,
        };
        let refusal = match self.step_up_or(&sale, refusal, now).await? {
            AfterRefusal::StepUp(offer, refusal) => {
                details.record_check(Check::new(
                    refusal.rule.as_deref().unwrap_or_default(),
                    Decision::StepUp,
                    refusal.message.clone(),
                ));
                // The confirmation holds the money afresh.
                details.funding.clear_hold();
                let waiting = row(PaymentStatus::RequiresAction, details);
                return self
                    .require_action(p, merchant, waiting, offer, burn, idem)
                    .await;
            }
            AfterRefusal::Decline(refusal) => refusal,
        };
        // Declined: record it. A payment code stays burned (single use even
        // on failure); an order stays payable until it is paid, expires or
        // is closed. Nothing else moves.
        let Some(burn) = burn else {
            return Err(refusal);
        };
        let burn = Some(burn).filter(|_| order.is_none());
        details.record_check(Check::new(
            refusal.rule.as_deref().unwrap_or(refusal.code),
            Decision::Decline,
            refusal.message.clone(),
        ));
        details.failure = Some(refusal.failure());
        let failed = row(PaymentStatus::Failed, details);
        self.record_failed(p, merchant, failed, refusal, burn, idem)
            .await
    }

    /// The details a new payment starts with: how it was made, at which
    /// level, from which source, into which settlement account.
    fn new_details(&self, sale: &Sale<'_>) -> PaymentDetails {
        let Sale {
            merchant,
            customer,
            level,
            elements,
            source,
            order,
            ..
        } = *sale;
        PaymentDetails {
            mode: sale.mode,
            code_kind: sale.code_kind.map(str::to_owned),
            device_id: sale.device.map(str::to_owned),
            static_code_id: sale.static_code.map(str::to_owned),
            order_id: order.map(|o| o.id.clone()),
            // The order holds the merchant's number; a failed or lapsed
            // attempt must not take it from the next one.
            out_trade_no: order.and_then(|o| o.out_trade_no.clone()),
            risk_level: level,
            verification: elements.to_vec(),
            merchant_name: Some(merchant.name.clone()),
            funding_account: self.source_account(customer, source),
            funding: self.source_details(source),
            settlement_account: settlement_account(&merchant.id),
            fee_schedule: Some(merchant.fees).filter(|f| *f != FeeSchedule::NONE),
            metadata: order
                .map(|o| &o.metadata)
                .or(sale.metadata)
                .cloned()
                .unwrap_or_default(),
            // 43: the institution compensates level-C balance-payment losses in full.
            compensation_eligible: level == RiskLevel::C && *source == Source::Wallet,
            risk_checks: Vec::new(),
            failure: None,
            next_action: None,
            cancellation_reason: None,
        }
    }

    /// A refused sale at level C that a stronger verification could save
    /// (over the level-C cap but within level B's, or over the
    /// password-free count): the step-up to offer. Otherwise the refusal
    /// to decline with (level B's cap when even B would not fit).
    async fn step_up_or(
        &self,
        sale: &Sale<'_>,
        refusal: Error,
        now: Timestamp,
    ) -> Result<AfterRefusal, Error> {
        let password_free = refusal.rule.as_deref() == Some("BCP-PASSWORD-FREE-COUNT");
        let over_c = refusal.rule.as_deref() == Some(sale.level.daily_rule());
        if sale.level != RiskLevel::C || !(over_c || password_free) {
            return Ok(AfterRefusal::Decline(refusal));
        }
        let step_up = self
            .step_up_elements(
                sale.customer,
                sale.source,
                sale.elements,
                sale.amount.minor(),
                now,
                password_free,
            )
            .await?;
        Ok(match step_up {
            StepUp::Needs(offer) => AfterRefusal::StepUp(offer, refusal),
            // Even a stronger verification would not fit: cite the level-B cap.
            full @ (StepUp::LevelBFull { .. } | StepUp::LevelAFull { .. }) => {
                AfterRefusal::Decline(full.refusal(sale.amount.minor()).unwrap_or(refusal))
            }
            StepUp::NoPin => AfterRefusal::Decline(refusal),
        })
    }

    /// Record a sale the rules refused as a failed payment, with the code
    /// it burned; every retry of the request gets the same refusal.
    async fn record_failed(
        &self,
        p: &Principal,
        merchant: &Merchant,
        failed: Payment,
        refusal: Error,
        burn: Option<CodeBurn>,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let id = failed.id.clone();
        let amount = failed.amount_minor;
        let refusal = Error {
            payment_id: Some(id.clone()),
            ..refusal
        };
        let mut m = Movement::new(failed.created_at);
        m.live_api_key = Some(p.key_id.clone());
        m.idempotency = idem.map(|i| i.record(&Outcome::Refused(&refusal)));
        m.burns.extend(burn);
        // Events go to the merchant: the merchant's view, whoever asked.
        let fview = PaymentView::of(&failed, Role::Merchant);
        m.payment = Some(PaymentWrite::Insert(failed));
        m.events
            .push(self.outbox(&merchant.id, Event::PaymentFailed(&fview))?);
        m.audit = Some(trail::entry(
            Action::PaymentFailed,
            id.clone(),
            p.into(),
            json!({ "merchant_id": merchant.id, "amount_minor": amount, "code": refusal.code, "rule": refusal.rule }),
        ));
        match self.store.apply(m).await {
            Ok(Applied::Done { .. }) => Err(refusal),
            Ok(Applied::Replayed { status, body }) => Ok(Reply::Replayed(Said { status, body })),
            Err(e) => Err(e.into()),
        }
    }

    /// The successful path of [`settle`](Self::settle): block list, card
    /// authorization, then the movement. `Ok(Err(refusal))` when the payment
    /// is refused in a way that is recorded (the code is burned); a card
    /// authorization is reversed before a refusal is returned.
    pub(super) async fn try_settle(
        &self,
        p: &Principal,
        sale: &Sale<'_>,
        burn: &Option<CodeBurn>,
        details: &mut PaymentDetails,
        row: &(dyn Fn(PaymentStatus, PaymentDetails) -> Payment + Sync),
        idem: &Option<Idem>,
    ) -> Result<Result<Reply, Error>, Error> {
        let &Sale {
            merchant,
            customer,
            amount,
            level,
            elements,
            source,
            ..
        } = sale;
        let now = self.now();
        details.risk_checks = match self.sale_checks(merchant, customer, amount, now).await? {
            Ok(checks) => checks,
            Err(refused) => return Ok(Err(refused)),
        };
        let counters = self
            .funding_counters(
                &Counted {
                    customer,
                    source,
                    merchant,
                    level,
                    elements,
                    amount: amount.minor(),
                },
                now,
            )
            .await?;
        let ok_row = row(PaymentStatus::Succeeded, details.clone());
        let id = ok_row.id.clone();
        if let Err(declined) = self
            .hold_funds(source, &id, amount.minor(), &mut details.funding)
            .await
        {
            return Ok(Err(declined));
        }
        // Whatever fails between the hold and the movement releases the hold.
        let ok_row = Payment {
            details: details.clone(),
            ..ok_row
        };
        let prepared = self.sale_movement(p, sale, ok_row, burn, counters, idem);
        let (m, body) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                self.release_funds(&mut details.funding).await;
                return Err(e);
            }
        };
        let result = self.store.apply(m).await;
        if !matches!(result, Ok(Applied::Done { .. })) {
            // Refused, replayed or failed: what was held must not settle.
            self.release_funds(&mut details.funding).await;
        }
        match result {
            Ok(applied) => Ok(Ok(Reply::of(applied, Fresh::Created, body))),
            Err(
                e @ (MovementError::LimitExceeded { .. }
                | MovementError::InsufficientFunds { .. }
                | MovementError::PartyBlocked { .. }),
            ) => Ok(Err(Error::from(e))),
            Err(e) => Err(e.into()),
        }
    }

    /// The one movement of a successful sale: the live checks, the
    /// idempotency record, the code burn, the counters, the posting, the
    /// payment, the order paid, its event and audit row.
    fn sale_movement(
        &self,
        p: &Principal,
        sale: &Sale<'_>,
        ok_row: Payment,
        burn: &Option<CodeBurn>,
        counters: Vec<CounterCharge>,
        idem: &Option<Idem>,
    ) -> Result<(Movement, String), Error> {
        let &Sale {
            merchant,
            customer,
            amount,
            level,
            source,
            order,
            device,
            static_code,
            ..
        } = sale;
        let now = ok_row.created_at;
        let id = ok_row.id.clone();
        let (funding, flags) = (json!(ok_row.details.funding), json!(ok_row.details.flags()));
        let view = PaymentView::of(&ok_row, p.role);
        // Events go to the merchant: the merchant's view, whoever asked.
        let event_view = PaymentView::of(&ok_row, Role::Merchant);
        let body = serde_json::to_string(&view).map_err(Error::internal)?;
        let mut m = Movement::new(now);
        // The key and the block list were read from copies: checked again here.
        m.live_api_key = Some(p.key_id.clone());
        m.live_device = device.map(str::to_owned);
        m.live_static_code = static_code.map(str::to_owned);
        m.unblocked = vec![merchant.id.clone(), customer.to_owned()];
        m.idempotency = idem
            .clone()
            .map(|i| i.record(&Outcome::Created { view: &body }));
        m.burns.extend(burn.clone());
        m.counters = counters;
        m.posting = Some(self.payment_posting(&ok_row, source));
        m.guard_day(&settlement_account(&merchant.id));
        m.payment = Some(PaymentWrite::Insert(ok_row));
        m.order = order
            .map(|o| {
                crate::order_move(
                    &o.id,
                    OrderStatus::Open,
                    OrderStatus::Paid,
                    Some(id.clone()),
                )
            })
            .transpose()?;
        m.events
            .push(self.outbox(&merchant.id, Event::PaymentSucceeded(&event_view))?);
        m.audit = Some(trail::entry(
            Action::PaymentSucceeded,
            id.clone(),
            p.into(),
            json!({ "merchant_id": merchant.id, "amount_minor": amount.minor(), "risk_level": level.as_str(), "funding": funding, "flags": flags }),
        ));
        Ok((m, body))
    }

    /// The checks a sale goes through before its movement: the block list
    /// and the single-payment cap refuse it (`Ok(Err(refusal))`); the
    /// velocity cap is noted (the movement's counter enforces it); the
    /// review checks only flag.
    async fn sale_checks(
        &self,
        merchant: &Merchant,
        customer: &str,
        amount: Money,
        now: Timestamp,
    ) -> Result<Result<Vec<Check>, Error>, Error> {
        if let Some(blocked) = self.blocked(&merchant.id, customer).await? {
            return Ok(Err(blocked));
        }
        let facts = self
            .sale_facts(merchant, customer, amount.minor(), now)
            .await?;
        Ok(crate::risk::decide_sale(
            &facts,
            &crate::risk::CheckRules::of(&self.limits),
        ))
    }

    /// The ledger posting of a payment: from its source to the merchant's
    /// pending account, less its fee, which goes to the fee revenue
    /// (QG-FEE-ROUNDING).
    pub(crate) fn payment_posting(&self, pay: &Payment, source: &Source) -> Posting {
        let customer = pay.customer_id.as_deref().unwrap_or_default();
        Posting::lines(
            format!("pst_{}", pay.id),
            "payment",
            Some(&pay.id),
            pay.currency,
            vec![
                (self.source_account(customer, source), -pay.amount_minor),
                (
                    settlement_account(&pay.merchant_id),
                    pay.amount_minor - pay.fee_minor,
                ),
                (crate::fee_account(&pay.merchant_id), pay.fee_minor),
            ],
        )
        .for_merchant(&pay.merchant_id)
    }
}
