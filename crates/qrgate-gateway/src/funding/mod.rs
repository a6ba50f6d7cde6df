//! Funding sources: the wallet balance, or a linked card through the
//! [`Processor`](qrgate_processor::Processor).
//!
//! The rest of the gateway sees a source only through this module: the
//! source a payer chose ([`Source`]), the account it pays from, what a
//! payment records about it ([`Funding`]), the caps it counts toward, and
//! three calls around the movement: hold the money at the source before it
//! (`hold_funds`), release the hold when the movement is refused or the
//! payment lapses (`release_funds`), and give money back on a refund or
//! cancel (`return_funds`). A new source is a variant of `Source` and of
//! `Funding`, and a module beside `card.rs` with its calls.
//!
//! A card payment is authorized with the processor before its movement is
//! applied (outside any database transaction); when the movement is then
//! refused (a cap, a state conflict) the authorization is reversed. An
//! authorization whose answer does not arrive within the deadline is
//! resolved by a query, and reversed when that stays unknown, so a timeout
//! never leaves a payment half-done. Money moves in the ledger from the
//! processor's clearing account (`clearing:card:<processor>:CNY`) to the
//! merchant; refunds go back the same way (BCP-REFUND-ORIGINAL).
//!
//! Caps that depend on the source:
//! - a wallet payment counts toward the customer's daily level cap and the
//!   wallet's class cap (43);
//! - a card payment counts toward that card's own daily level cap (296:
//!   each bank card has its own), not the wallet class cap;
//! - a credit-card payment to a small merchant (onboarded with a personal
//!   ID only) counts toward the person's credit receipts per day and per
//!   month (BCP-SMALL-MERCHANT-CREDIT-DAY / -MONTH), across all their
//!   merchant entries (`owner_ref`).

use std::future::Future;

use qrgate_core::payment::{Funding, FundingCard, PaymentDetails};
use qrgate_core::risk::{Element, RiskLevel};
use qrgate_core::{AccountId, CounterKey, Timestamp};
use qrgate_processor::CardFunding;
use qrgate_store::*;

use crate::{Error, Gateway, wallet_account};

mod card;

pub use card::{CardList, CardView, NewCard};

/// Where a payment's money comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Wallet,
    Card(Card),
}

impl Source {
    fn is_credit(&self) -> bool {
        matches!(self, Source::Card(c) if c.funding == CardFunding::Credit.as_str())
    }

    /// The money is held at the source before the movement (and so a
    /// confirmation claims the payment before it holds it).
    pub(crate) fn holds(&self) -> bool {
        matches!(self, Source::Card(_))
    }

    /// Whose daily level cap the payment counts toward: the customer's
    /// wallet accounts together, or the single card.
    pub(crate) fn cap_subject<'a>(&'a self, customer: &'a str) -> &'a str {
        match self {
            Source::Wallet => customer,
            Source::Card(c) => &c.id,
        }
    }
}

/// What the caps of a payment depend on: who pays whom how much, from
/// which source, at which level with which elements proven.
pub(crate) struct Counted<'a> {
    pub(crate) customer: &'a str,
    pub(crate) source: &'a Source,
    pub(crate) merchant: &'a Merchant,
    pub(crate) level: RiskLevel,
    pub(crate) elements: &'a [Element],
    pub(crate) amount: i64,
}

impl<S: Store> Gateway<S> {
    /// BCP-TXN-CAP: the most one payment to this merchant may be (the
    /// lower of the general cap and its category's), if any.
    pub(crate) fn txn_cap(&self, merchant: &Merchant) -> Option<i64> {
        let by_mcc = self.config.txn_cap_by_mcc.get(&merchant.mcc).copied();
        match (self.limits.txn_cap, by_mcc) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Run a processor call under the deployment's deadline.
    pub(super) async fn within<T>(&self, f: impl Future<Output = T>) -> Option<T> {
        tokio::time::timeout(self.processor_timeout, f).await.ok()
    }

    /// The source a payer chose: `None` or `"wallet"` for the balance, else
    /// one of the payer's own card ids (another's answers 404).
    pub(crate) async fn source_of(
        &self,
        customer: &str,
        funding_source: Option<&str>,
    ) -> Result<Source, Error> {
        match funding_source {
            None | Some("wallet") => Ok(Source::Wallet),
            Some(id) => {
                let card = self
                    .store
                    .cards_of(customer)
                    .await?
                    .into_iter()
                    .find(|c| c.id == id)
                    .ok_or_else(|| Error::not_found("card", id))?;
                Ok(Source::Card(card))
            }
        }
    }

    /// The source recorded on a payment (for confirmations and refunds).
    pub(crate) async fn source_recorded(
        &self,
        customer: &str,
        details: &PaymentDetails,
    ) -> Result<Source, Error> {
        let card = details.funding.card().map(|c| c.card_id.as_str());
        self.source_of(customer, card).await
    }

    /// The ledger account the payment takes from.
    pub(crate) fn source_account(&self, customer: &str, source: &Source) -> AccountId {
        match source {
            Source::Wallet => wallet_account(customer),
            Source::Card(_) => self.card_clearing_account(),
        }
    }

    /// What the payment records about its source (no card number).
    pub(crate) fn source_details(&self, source: &Source) -> Funding {
        match source {
            Source::Wallet => Funding::Wallet,
            Source::Card(c) => Funding::Card(FundingCard {
                card_id: c.id.clone(),
                brand: c.brand.clone(),
                last4: c.last4.clone(),
                funding: c.funding.clone(),
                processor: c.processor.clone(),
                request_id: None,
                authorization: None,
                reversed: false,
            }),
        }
    }

    /// Every cap a payment counts toward, at `now`.
    pub(crate) async fn funding_counters(
        &self,
        c: &Counted<'_>,
        now: Timestamp,
    ) -> Result<Vec<CounterCharge>, Error> {
        let &Counted {
            customer,
            source,
            merchant,
            level,
            elements,
            amount,
        } = c;
        let subject = source.cap_subject(customer);
        let mut counters = vec![
            self.daily_charge(customer, subject, level, amount, now)
                .await?,
        ];
        if self.limits.nested_caps {
            for wider in level.nested_in() {
                counters.push(
                    self.daily_charge(customer, subject, *wider, amount, now)
                        .await?,
                );
            }
        }
        if let Some(n) = self.limits.password_free_count
            && !elements.contains(&Element::Pin)
        {
            let day = now.business_date(self.limits.business_offset_minutes);
            counters.push(CounterCharge {
                key: CounterKey::password_free(customer, &day),
                amount_minor: 0,
                uses: 1,
                cap_amount: None,
                cap_uses: Some(n),
                rule: "BCP-PASSWORD-FREE-COUNT".into(),
            });
        }
        if let Some(n) = self.limits.velocity_per_minute {
            counters.push(CounterCharge {
                key: CounterKey::velocity(customer, now.unix_seconds().div_euclid(60)),
                amount_minor: 0,
                uses: 1,
                cap_amount: None,
                cap_uses: Some(n),
                rule: "QG-VELOCITY-CUSTOMER".into(),
            });
        }
        if *source == Source::Wallet {
            counters.push(self.class_charge(customer, amount, now).await?);
        }
        if source.is_credit() && merchant.category == "small_personal" {
            let owner = merchant.owner_ref.as_deref().unwrap_or(&merchant.id);
            let day = now.business_date(self.limits.business_offset_minutes);
            let month = day.get(..7).unwrap_or(&day).to_owned();
            counters.push(CounterCharge {
                key: CounterKey::small_credit(owner, &day),
                amount_minor: amount,
                uses: 1,
                cap_amount: Some(self.limits.small_credit_day),
                cap_uses: None,
                rule: "BCP-SMALL-MERCHANT-CREDIT-DAY".into(),
            });
            counters.push(CounterCharge {
                key: CounterKey::small_credit(owner, &month),
                amount_minor: amount,
                uses: 1,
                cap_amount: Some(self.limits.small_credit_month),
                cap_uses: None,
                rule: "BCP-SMALL-MERCHANT-CREDIT-MONTH".into(),
            });
        }
        Ok(counters)
    }

    /// Hold the money at `source` under `request_id` before the movement,
    /// recording the hold (or the refused attempt) on `recorded`. The
    /// wallet holds nothing: the movement itself takes the balance.
    pub(crate) async fn hold_funds(
        &self,
        source: &Source,
        request_id: &str,
        amount: i64,
        recorded: &mut Funding,
    ) -> Result<(), Error> {
        match source {
            Source::Wallet => Ok(()),
            Source::Card(card) => match self.authorize_card(request_id, card, amount).await {
                Ok(authorization) => {
                    recorded.record_hold(request_id, Some(authorization), false);
                    Ok(())
                }
                Err(declined) => {
                    // authorize_card released an authorization that got no answer.
                    let released = declined.code == "card_processor_timeout";
                    recorded.record_hold(request_id, None, released);
                    Err(declined)
                }
            },
        }
    }

    /// Release the hold recorded on `recorded`, so it can never settle (the
    /// movement was refused, replayed or failed; the payment lapsed).
    pub(crate) async fn release_funds(&self, recorded: &mut Funding) {
        if let (Funding::Card(_), Some(request_id)) = (&*recorded, recorded.hold()) {
            self.reverse_card(request_id).await;
            recorded.mark_released();
        }
    }

    /// Give `amount` back to the source a payment came from, after the
    /// ledger recorded its refund or cancel (idempotent by `refund_key`).
    pub(crate) async fn return_funds(
        &self,
        details: &PaymentDetails,
        refund_key: &str,
        amount: i64,
    ) -> Result<(), Error> {
        match (&details.funding, details.funding.hold()) {
            (Funding::Card(_), Some(request_id)) => {
                self.refund_to_card(request_id, refund_key, amount).await
            }
            _ => Ok(()),
        }
    }
}
