//! The one error type of the use cases: a kind that maps to an HTTP status,
//! a stable snake_case code, a message that says what to do, and the rule
//! id when a rule refused the request.

use serde::Serialize;

use qrgate_codes::cpm::TokenError;
use qrgate_codes::merchant::MerchantCodeError;
use qrgate_codes::numeric::NumericCodeError;
use qrgate_core::AmountError;
use qrgate_store::{MovementError, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// 400: the request is malformed.
    BadRequest,
    /// 401: no valid API key.
    Unauthorized,
    /// 403: the key's role may not do this.
    Forbidden,
    /// 404: no such object (or another tenant's).
    NotFound,
    /// 409: conflicts with the object's state or an earlier request.
    Conflict,
    /// 402: well-formed but declined (limit, funds).
    Declined,
    /// 422: well-formed but unusable (expired, used, forged code).
    Unprocessable,
    /// 503: try again later.
    Unavailable,
    /// 500: a bug or corrupt data; details are only in the log.
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    #[serde(skip)]
    pub kind: Kind,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The payment a declined request was recorded as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
}

impl Error {
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Error {
        Error {
            kind,
            code,
            message: message.into(),
            rule: None,
            payment_id: None,
        }
    }

    pub fn with_rule(mut self, rule: impl Into<String>) -> Error {
        self.rule = Some(rule.into());
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Error {
        Error::new(Kind::BadRequest, code, message)
    }

    pub fn not_found(what: &str, id: &str) -> Error {
        Error::new(Kind::NotFound, "not_found", format!("no {what} {id}"))
    }

    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::new(Kind::Forbidden, "forbidden", message)
    }

    pub fn internal(detail: impl std::fmt::Display) -> Error {
        tracing::error!(detail = %detail, "internal error");
        Error::new(
            Kind::Internal,
            "internal",
            "internal error; it has been logged",
        )
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        if e.is_retryable() {
            tracing::warn!(error = %e, "store unavailable");
            Error::new(
                Kind::Unavailable,
                "service_unavailable",
                "the database is unavailable; retry with the same Idempotency-Key",
            )
        } else {
            Error::internal(e)
        }
    }
}

impl From<AmountError> for Error {
    fn from(e: AmountError) -> Error {
        Error::bad_request(e.code(), e.to_string())
    }
}

impl From<TokenError> for Error {
    fn from(e: TokenError) -> Error {
        let kind = match e {
            TokenError::Malformed(_) | TokenError::UnsupportedVersion(_) => Kind::BadRequest,
            _ => Kind::Unprocessable,
        };
        let mut err = Error::new(kind, e.code(), e.to_string());
        if matches!(
            e,
            TokenError::Expired { .. } | TokenError::NotYetValid { .. }
        ) {
            err = err.with_rule("BCP-CODE-TTL");
        }
        err
    }
}

impl From<NumericCodeError> for Error {
    fn from(e: NumericCodeError) -> Error {
        let kind = match e {
            NumericCodeError::Foreign { .. } => Kind::Unprocessable,
            NumericCodeError::Rng => return Error::internal(e),
            _ => Kind::BadRequest,
        };
        Error::new(kind, e.code(), e.to_string())
    }
}

impl From<MerchantCodeError> for Error {
    fn from(e: MerchantCodeError) -> Error {
        let kind = match e {
            MerchantCodeError::Emv(_)
            | MerchantCodeError::Malformed(_)
            | MerchantCodeError::NotQrgate => Kind::BadRequest,
            MerchantCodeError::Build(_) => Kind::BadRequest,
            _ => Kind::Unprocessable,
        };
        let mut err = Error::new(kind, e.code(), e.to_string());
        if matches!(e, MerchantCodeError::Signature(_)) {
            err = err.with_rule("BCP-CODE-SIGNED");
        }
        err
    }
}

/// Refusals from the store, in API terms.
impl From<MovementError> for Error {
    fn from(e: MovementError) -> Error {
        match e {
            MovementError::IdempotencyKeyReused { key, .. } => Error::new(
                Kind::Conflict,
                "idempotency_key_reused",
                format!("Idempotency-Key {key:?} was used with a different request; use a new key for a new request"),
            )
            .with_rule("QG-IDEMPOTENCY"),
            MovementError::CodeAlreadyUsed { .. } => Error::new(
                Kind::Unprocessable,
                "payment_code_already_used",
                "this code was already used; ask the customer to refresh their payment code",
            )
            .with_rule("BCP-CODE-SINGLE-USE"),
            MovementError::LimitExceeded { rule, current, amount, cap, .. } => Error::new(
                Kind::Declined,
                "limit_exceeded",
                format!("{rule}: {current} + {amount} would exceed the limit of {cap} (minor units)"),
            )
            .with_rule(rule),
            MovementError::InsufficientFunds { .. } => Error::new(Kind::Declined, "insufficient_funds", "the wallet balance is too low for this payment"),
            MovementError::PaymentStateConflict { id, actual, .. } => {
                Error::new(Kind::Conflict, "payment_state_conflict", format!("payment {id} is {actual}"))
            }
            MovementError::OrderStateConflict { id, actual, .. } => Error::new(Kind::Conflict, "order_not_open", format!("order {id} is {actual}")),
            MovementError::DuplicateOutTradeNo { out_trade_no } => Error::new(
                Kind::Conflict,
                "duplicate_out_trade_no",
                format!("out_trade_no {out_trade_no:?} was already used by this merchant"),
            ),
            MovementError::RefundExceedsCaptured { id } => Error::new(Kind::Declined, "limit_exceeded", format!("refunds of {id} would exceed the captured amount"))
                .with_rule("BCP-REFUND-CAP"),
            MovementError::Store(s) => s.into(),
            other => Error::internal(other),
        }
    }
}
