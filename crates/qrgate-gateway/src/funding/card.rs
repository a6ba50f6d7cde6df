//! Linked cards through the [`Processor`](qrgate_processor::Processor):
//! linking (the number goes to the processor, the gateway keeps its token
//! and last four digits), authorizing a payment, reversing an
//! authorization, refunding to the card.

use serde::{Deserialize, Serialize};
use serde_json::json;

use qrgate_core::AccountId;
use qrgate_processor::{AuthRequest, CardDetails, CardError, Outcome, ProcessorError};
use qrgate_store::*;

use crate::trail::{self, Action};
use crate::{Error, Gateway, Kind, Principal};

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
        self.ensure_account(&self.card_clearing_account(), "external_clearing", true)
            .await?;
        let mut m = Movement::new(now);
        m.records.push(Record::Card(card.clone()));
        m.audit = Some(trail::entry(
            Action::CardLinked,
            card.id.clone(),
            p.into(),
            json!({ "customer_id": customer, "brand": card.brand, "last4": card.last4, "funding": card.funding }),
        ));
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

    /// Authorize a card payment under `request_id`. On approval, the
    /// authorization reference. A lost answer is resolved by a query; one
    /// that stays unknown is reversed and refused with
    /// `card_processor_timeout`. Declines are refused with the issuer's reason.
    pub(super) async fn authorize_card(
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
    pub(super) async fn reverse_card(&self, request_id: &str) {
        match self.within(self.processor.reverse(request_id)).await {
            Some(Ok(())) => tracing::info!(request_id, "card authorization reversed"),
            Some(Err(e)) => tracing::error!(request_id, error = %e, "card reversal failed"),
            None => tracing::error!(request_id, "card reversal timed out"),
        }
    }

    /// Return a refund to the card, against the authorization
    /// `request_id` (idempotent by `refund_key`).
    pub(super) async fn refund_to_card(
        &self,
        request_id: &str,
        refund_key: &str,
        amount: i64,
    ) -> Result<(), Error> {
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
