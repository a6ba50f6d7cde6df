//! qrgate-processor: paying with a linked card.
//!
//! The gateway never sees a card network: it talks to a [`Processor`]
//! through five calls (tokenize, authorize, query, reverse, refund). The
//! card number only passes through [`Processor::tokenize`]; the gateway
//! stores the token, brand, last four digits and whether the card is debit
//! or credit, never the number.
//!
//! Deadlines are the caller's: it wraps every call in its own timeout and,
//! when an authorization's answer is lost, asks [`Processor::query`] what
//! became of it and [`Processor::reverse`]s it when that stays unknown, so a
//! timeout never leaves a payment half-done. Authorizations are idempotent
//! by the caller's request id (the payment id).
//!
//! [`Sandbox`] is a deterministic in-process processor whose behaviour is
//! chosen by the card number ([`TEST_CARDS`]), for tests, demos and the
//! conformance suite.

use std::future::Future;
use std::pin::Pin;

use qrgate_core::Timestamp;

pub mod bank;
mod card;
mod sandbox;
pub mod settlement;
pub use card::{CardError, brand_of, check_number};
pub use sandbox::{Behaviour, JOURNAL_FILE, Sandbox, SandboxAuth, TEST_CARDS, TestCard};

/// A boxed future, so the trait stays object safe (`Arc<dyn Processor>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Whether a card draws on the holder's own money or on credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardFunding {
    Debit,
    Credit,
}

impl CardFunding {
    pub fn as_str(self) -> &'static str {
        match self {
            CardFunding::Debit => "debit",
            CardFunding::Credit => "credit",
        }
    }

    pub fn parse(s: &str) -> Option<CardFunding> {
        match s {
            "debit" => Some(CardFunding::Debit),
            "credit" => Some(CardFunding::Credit),
            _ => None,
        }
    }
}

/// A card as the holder typed it in.
#[derive(Debug, Clone, Copy)]
pub struct CardDetails<'a> {
    pub number: &'a str,
    pub exp_month: u8,
    pub exp_year: u16,
}

/// What the gateway keeps about a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokenized {
    pub token: String,
    pub brand: &'static str,
    pub last4: String,
    pub funding: CardFunding,
}

/// One authorization: `request_id` is the caller's idempotency key.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    pub request_id: &'a str,
    pub token: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
}

/// Why the issuer said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclineReason {
    InsufficientFunds,
    SuspectedFraud,
    /// The request was reversed (voided) before or after it arrived.
    Reversed,
}

impl DeclineReason {
    /// The gateway's stable error code for this decline.
    pub fn code(self) -> &'static str {
        match self {
            DeclineReason::InsufficientFunds => "card_declined_insufficient_funds",
            DeclineReason::SuspectedFraud => "card_declined_suspected_fraud",
            DeclineReason::Reversed => "card_authorization_reversed",
        }
    }
}

/// The answer to an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Approved { authorization: String },
    Declined(DeclineReason),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessorError {
    #[error("the processor does not know this card token")]
    UnknownToken,
    #[error("the processor has no approved authorization {0}")]
    UnknownAuthorization(String),
    #[error("refund of {requested} would pass the {left} left on authorization {request_id}")]
    RefundTooLarge {
        request_id: String,
        requested: i64,
        left: i64,
    },
    #[error("the processor is unavailable: {0}")]
    Unavailable(String),
}

/// A card processor (acquirer or card network gateway).
pub trait Processor: Send + Sync {
    /// A short name, used in account ids (`clearing:card:<name>:CNY`).
    fn name(&self) -> &'static str;

    /// Exchange a card number for a token. `today` is (year, month) in the
    /// deployment's business time zone, to refuse expired cards.
    fn tokenize<'a>(
        &'a self,
        card: CardDetails<'a>,
        today: (u16, u8),
    ) -> BoxFuture<'a, Result<Tokenized, CardError>>;

    /// Ask the issuer to approve a payment.
    fn authorize<'a>(
        &'a self,
        req: AuthRequest<'a>,
    ) -> BoxFuture<'a, Result<Outcome, ProcessorError>>;

    /// What became of an authorization whose answer was lost; `None` when
    /// the processor never received it.
    fn query<'a>(
        &'a self,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Outcome>, ProcessorError>>;

    /// Void an authorization (idempotent). Reversing a request the
    /// processor never saw records a tombstone, so a late copy of it is
    /// declined rather than approved.
    fn reverse<'a>(&'a self, request_id: &'a str) -> BoxFuture<'a, Result<(), ProcessorError>>;

    /// Return money to the card (idempotent by `refund_id`).
    fn refund<'a>(
        &'a self,
        request_id: &'a str,
        refund_id: &'a str,
        amount_minor: i64,
    ) -> BoxFuture<'a, Result<(), ProcessorError>>;

    /// The processor's settlement file for the day `[from, until)`: every
    /// capture, refund and reversal it settled then
    /// ([`settlement`] has the format).
    fn settlement_file<'a>(
        &'a self,
        from: Timestamp,
        until: Timestamp,
    ) -> BoxFuture<'a, Result<String, ProcessorError>>;
}
