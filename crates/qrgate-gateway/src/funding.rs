//! Funding sources: the wallet balance, or a linked card through the
//! [`Processor`].
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

use serde::{Deserialize, Serialize};
use serde_json::json;

use qrgate_core::payment::{Funding, FundingCard, PaymentDetails};
use qrgate_core::risk::{Element, RiskLevel};
use qrgate_core::{AccountId, CounterKey, Timestamp};
use qrgate_processor::{AuthRequest, CardDetails, CardError, CardFunding, Outcome, ProcessorError};
use qrgate_store::*;

use crate::{Error, Gateway, Kind, Principal, wallet_account};

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

    /// Whose daily level cap the payment counts toward: the customer's
    /// wallet accounts together, or the single card.
    pub(crate) fn cap_subject<'a>(&'a self, customer: &'a str) -> &'a str {
        match self {
            Source::Wallet => customer,
            Source::Card(c) => &c.id,
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2030}))]
#[serde(deny_unknown_fields)]
pub struct NewCard {
    /// 12 to 19 digits, no spaces. Sent to the processor, never stored.
    pub number: String,
    pub exp_month: u8,
    pub exp_year: u16,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CardView {
    pub id: String,
    pub object: &'static str,
    pub brand: String,
    pub last4: String,
    /// `debit` or `credit`.
    pub funding: String,
    pub exp_month: i64,
    pub exp_year: i64,
    pub created_at: String,
}

impl CardView {
    fn of(c: &Card) -> CardView {
        CardView {
            id: c.id.clone(),
            object: "card",
            brand: c.brand.clone(),
            last4: c.last4.clone(),
            funding: c.funding.clone(),
            exp_month: c.exp_month,
            exp_year: c.exp_year,
            created_at: c.created_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CardList {
    pub object: &'static str,
    pub data: Vec<CardView>,
}

impl From<CardError> for Error {
    fn from(e: CardError) -> Error {
        let kind = match e {
            CardError::Unavailable => Kind::Unavailable,
            CardError::NotATestCard | CardError::Expired => Kind::Unprocessable,
            _ => Kind::BadRequest,
        };
        Error::new(kind, e.code(), e.to_string())
    }
}

fn unavailable(what: &str) -> Error {
    Error::new(
        Kind::Unavailable,
        "processor_unavailable",
        format!("the card processor did not answer ({what}); try again"),
    )
}

/// The (year, month) of a business date `YYYY-MM-DD`.
fn year_month(date: &str) -> (u16, u8) {
    let year = date.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0);
    let month = date.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(0);
    (year, month)
}

impl<S: Store> Gateway<S> {
    /// The processor's clearing account: card money enters and leaves here.
    pub(crate) fn card_clearing_account(&self) -> AccountId {
        AccountId::card_clearing(self.processor.name(), crate::CURRENCY)
    }

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
    async fn within<T>(&self, f: impl Future<Output = T>) -> Option<T> {
        tokio::time::timeout(self.processor_timeout, f).await.ok()
    }

    /// Link a card to the calling consumer: the number goes to the
    /// processor, the gateway keeps its token and last four digits.
    pub async fn link_card(&self, p: &Principal, c: NewCard) -> Result<CardView, Error> {
        let customer = p.customer()?.to_owned();
        let now = self.now();
        let today = year_month(&now.business_date(self.limits.business_offset_minutes));
        let details = CardDetails {
            number: &c.number,
            exp_month: c.exp_month,
            exp_year: c.exp_year,
        };
        let t = self
            .within(self.processor.tokenize(details, today))
            .await
            .ok_or_else(|| unavailable("tokenize"))??;
        let card = Card {
            id: self.new_id::<qrgate_core::id::kind::Card>()?.to_string(),
            customer_id: customer.clone(),
            processor: self.processor.name().into(),
            token: t.token,
            brand: t.brand.into(),
            last4: t.last4,
            funding: t.funding.as_str().into(),
            exp_month: i64::from(c.exp_month),
            exp_year: i64::from(c.exp_year),
            created_at: now,
        };
        self.ensure_clearing(&self.card_clearing_account()).await?;
        let mut m = Movement::new(now);
        m.records.push(Record::Card(card.clone()));
        m.audit = Some(AuditEntry {
            action: "card.linked".into(),
            subject: card.id.clone(),
            details: json!({ "customer_id": customer, "brand": card.brand, "last4": card.last4, "funding": card.funding, "by": p.key_id }),
        });
        self.store.apply(m).await?;
        Ok(CardView::of(&card))
    }

    pub async fn list_cards(&self, p: &Principal) -> Result<CardList, Error> {
        let customer = p.customer()?;
        let cards = self.store.cards_of(customer).await?;
        Ok(CardList {
            object: "list",
            data: cards.iter().map(CardView::of).collect(),
        })
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

    /// Every cap a payment of `amount` from `source` at `level`, proven
    /// with `elements`, counts toward.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn funding_counters(
        &self,
        customer: &str,
        source: &Source,
        merchant: &Merchant,
        level: RiskLevel,
        elements: &[Element],
        amount: i64,
        now: Timestamp,
    ) -> Result<Vec<CounterCharge>, Error> {
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

    /// Authorize a card payment under `request_id`. On approval, the
    /// authorization reference. A lost answer is resolved by a query; one
    /// that stays unknown is reversed and refused with
    /// `card_processor_timeout`. Declines are refused with the issuer's reason.
    pub(crate) async fn authorize_card(
        &self,
        request_id: &str,
        card: &Card,
        amount: i64,
    ) -> Result<String, Error> {
        let req = AuthRequest {
            request_id,
            token: &card.token,
            amount_minor: amount,
            currency: crate::CURRENCY.code(),
        };
        let answer = match self.within(self.processor.authorize(req)).await {
            Some(Ok(outcome)) => Some(outcome),
            Some(Err(ProcessorError::UnknownToken)) => {
                return Err(Error::new(
                    Kind::Unprocessable,
                    "card_not_supported",
                    "the processor no longer knows this card; link it again",
                ));
            }
            // No answer, or an error that leaves the outcome unknown: ask.
            Some(Err(_)) | None => {
                tracing::warn!(request_id, "card authorization unanswered; querying");
                match self.within(self.processor.query(request_id)).await {
                    Some(Ok(found)) => found,
                    _ => None,
                }
            }
        };
        match answer {
            Some(Outcome::Approved { authorization }) => Ok(authorization),
            Some(Outcome::Declined(reason)) => Err(Error::new(
                Kind::Declined,
                reason.code(),
                "the card issuer declined the payment; no money moved",
            )),
            None => {
                // Still unknown: make sure it can never complete, then refuse.
                self.reverse_card(request_id).await;
                Err(Error::new(
                    Kind::Declined,
                    "card_processor_timeout",
                    "the card processor did not answer in time; the authorization was reversed and no money moved",
                ))
            }
        }
    }

    /// Void an authorization. Failures are logged: the processor's own
    /// expiry of unsettled authorizations is the backstop.
    pub(crate) async fn reverse_card(&self, request_id: &str) {
        match self.within(self.processor.reverse(request_id)).await {
            Some(Ok(())) => tracing::info!(request_id, "card authorization reversed"),
            Some(Err(e)) => tracing::error!(request_id, error = %e, "card reversal failed"),
            None => tracing::error!(request_id, "card reversal timed out"),
        }
    }

    /// Return a refund to the card the payment came from (idempotent by
    /// `refund_key`). Wallet payments need no processor call.
    pub(crate) async fn refund_to_card(
        &self,
        details: &PaymentDetails,
        refund_key: &str,
        amount: i64,
    ) -> Result<(), Error> {
        let Some(request_id) = details.funding.card().and_then(|c| c.request_id.as_deref()) else {
            return Ok(());
        };
        match self
            .within(self.processor.refund(request_id, refund_key, amount))
            .await
        {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => {
                tracing::error!(request_id, error = %e, "card refund refused by the processor");
                Err(unavailable("refund"))
            }
            None => Err(unavailable("refund")),
        }
    }
}
