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
    /// 405: the endpoint exists but does not take this method.
    MethodNotAllowed,
    /// 413: the body is larger than this endpoint takes.
    TooLarge,
    /// 415: the body is not of a type this endpoint takes.
    UnsupportedMediaType,
    /// 409: conflicts with the object's state or an earlier request.
    Conflict,
    /// 402: well-formed but declined (limit, funds).
    Declined,
    /// 422: well-formed but unusable (expired, used, forged code).
    Unprocessable,
    /// 503: try again later.
    Unavailable,
    /// 429: over a rate limit; retry after this many seconds.
    TooManyRequests { retry_after_seconds: u64 },
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

    /// What a payment this error refused records about it.
    pub fn failure(&self) -> qrgate_core::payment::Failure {
        qrgate_core::payment::Failure {
            code: self.code.into(),
            message: self.message.clone(),
            rule: self.rule.clone(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Error {
        Error::new(Kind::BadRequest, code, message)
    }

    pub fn not_found(what: &str, id: &str) -> Error {
        Error::new(Kind::NotFound, "not_found", format!("no {what} {id}"))
    }

    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::new(Kind::Forbidden, "forbidden", message).with_rule("QG-AUTH")
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

impl Error {
    /// Whether the caller's credential itself was refused (401: a missing,
    /// unknown or revoked API key). Such a caller gets no stored
    /// idempotent answer: a replay is for the one who may see it.
    pub fn refuses_the_caller(&self) -> bool {
        self.kind == Kind::Unauthorized
    }

    /// The caller's API key was revoked (QG-AUTH).
    pub(crate) fn api_key_revoked() -> Error {
        Error::new(
            Kind::Unauthorized,
            "api_key_revoked",
            "this API key was revoked",
        )
        .with_rule("QG-AUTH")
    }

    /// A party of the payment is on the block list (QG-BLOCKLIST). The
    /// reason stays with the operator; each side learns only which party.
    pub(crate) fn party_blocked(subject_id: &str) -> Error {
        let who = if subject_id.starts_with("mch_") {
            "the merchant"
        } else {
            "the payer"
        };
        Error::new(
            Kind::Declined,
            "party_blocked",
            format!("{who} is blocked from paying or being paid through this gateway"),
        )
        .with_rule("QG-BLOCKLIST")
    }
}

/// Refusals from the store, in API terms.
impl From<MovementError> for Error {
    fn from(e: MovementError) -> Error {
        match e {
            MovementError::ApiKeyRevoked { .. } => Error::api_key_revoked(),
            MovementError::PartyBlocked { subject_id } => Error::party_blocked(&subject_id),
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
            MovementError::LimitExceeded { rule, unit, cap, .. } => {
                let unit = unit.as_str();
                // The limit only, never the count so far: a merchant who
                // charges a customer must not learn what the customer spent
                // elsewhere today (the answer and the failed payment's view
                // go to the merchant).
                Error::new(
                    Kind::Declined,
                    "limit_exceeded",
                    format!("{rule}: this payment would go past the limit of {cap} ({unit})"),
                )
                .with_rule(rule)
            }
            MovementError::InsufficientFunds { .. } => Error::new(Kind::Declined, "insufficient_funds", "the wallet balance is too low for this payment"),
            MovementError::CodeRevoked { .. } => Error::new(
                Kind::Unprocessable,
                "code_revoked",
                "the merchant revoked this code",
            ),
            MovementError::CodeSuspended { .. } => code_suspended(),
            MovementError::CodeNotSuspended { code_id } => Error::new(
                Kind::Conflict,
                "not_suspended",
                format!("static code {code_id} is not due for suspension"),
            )
            .with_rule("QG-COMPLAINT-TAMPER-REPORTS"),
            MovementError::DeviceRevoked { .. } => Error::new(
                Kind::Unprocessable,
                "device_revoked",
                "the device that made this code is revoked",
            )
            .with_rule("QG-CREDENTIALS"),
            MovementError::BalanceOverflow { .. } => Error::new(
                Kind::Unprocessable,
                "balance_overflow",
                "this amount would take a balance past 92233720368547758.07, the most the ledger holds; nothing moved",
            ),
            MovementError::PaymentStateConflict { id, actual, .. } => {
                Error::new(Kind::Conflict, "payment_state_conflict", format!("payment {id} is {actual}"))
                    .with_rule("QG-ONE-OUTCOME")
            }
            MovementError::ComplaintOpen { payment_id } => Error::new(
                Kind::Conflict,
                "complaint_already_open",
                format!("payment {payment_id} already has a complaint that is not resolved; follow it there"),
            ),
            MovementError::ComplaintPastDue { id, .. } => Error::new(
                Kind::Conflict,
                "complaint_past_due",
                format!("complaint {id}: the deadline of this move has passed"),
            ),
            MovementError::ComplaintRefundPending { id, refund } => Error::new(
                Kind::Unavailable,
                "processor_unavailable",
                format!("complaint {id}'s earlier refund {refund} is not yet confirmed by the card processor; try again shortly"),
            ),
            MovementError::ComplaintMoved { id, actual } => Error::new(
                Kind::Conflict,
                "complaint_state_conflict",
                format!(
                    "complaint {id} changed meanwhile{}; read it again",
                    actual.map(|s| format!(" (it is {s})")).unwrap_or_default()
                ),
            ),
            MovementError::PaymentHasRefunds { id, .. } => Error::new(
                Kind::Conflict,
                "payment_state_conflict",
                format!("payment {id} has refunds, so its status cannot change"),
            ),
            MovementError::OrderStateConflict { id, actual, .. } => Error::new(Kind::Conflict, "order_not_open", format!("order {id} is {actual}")),
            MovementError::DuplicateOutTradeNo { out_trade_no } => Error::new(
                Kind::Conflict,
                "duplicate_out_trade_no",
                format!("out_trade_no {out_trade_no:?} was already used by this merchant"),
            ),
            MovementError::DuplicateRefundNo { out_refund_no } => Error::new(
                Kind::Conflict,
                "duplicate_out_refund_no",
                format!("out_refund_no {out_refund_no:?} was already used by this merchant"),
            )
            .with_rule("BCP-REFUND-IDEMPOTENT"),
            MovementError::RefundExceedsCaptured { id } => Error::new(Kind::Declined, "limit_exceeded", format!("refunds of {id} would exceed the captured amount"))
                .with_rule("BCP-REFUND-CAP"),
            MovementError::RefundedMeanwhile { id, .. } => refund_contended(&id),
            MovementError::DayClosed { .. } => Error::new(
                Kind::Conflict,
                "business_day_closed",
                "the business day this was stamped in was settled while it was being written; nothing moved: retry, and it is recorded in the next day",
            )
            .with_rule("QG-SETTLEMENT-CYCLE"),
            MovementError::Store(s) => s.into(),
            other => Error::internal(other),
        }
    }
}

/// A scan of a static code suspended after payers reported it tampered.
pub(crate) fn code_suspended() -> Error {
    Error::new(
        Kind::Unprocessable,
        "code_suspended",
        "this code is suspended while reports that it was tampered with are reviewed; pay another way",
    )
    .with_rule("QG-COMPLAINT-TAMPER-REPORTS")
}

/// Other refunds of a payment kept landing before this one (whose fee
/// given back depends on them): the caller retries with the same number.
pub(crate) fn refund_contended(payment_id: &str) -> Error {
    Error::new(
        Kind::Conflict,
        "refund_contended",
        format!(
            "other refunds of {payment_id} kept landing first; retry with the same out_refund_no"
        ),
    )
}

/// Every error code the API can answer with, and what it means. Listed in
/// the OpenAPI document; a test checks that the code uses no other.
pub const ERROR_CODES: &[(&str, &str)] = &[
    ("amount_empty", "amount is an empty string"),
    ("amount_exponent", "amount uses an exponent (1e3)"),
    ("amount_leading_zero", "amount has a leading zero (012.30)"),
    (
        "amount_mismatch",
        "the amount sent differs from the order's",
    ),
    ("amount_negative", "amount is negative"),
    (
        "amount_not_string",
        "amount is a JSON number; send a decimal string",
    ),
    (
        "amount_required",
        "a static code needs the amount the payer entered",
    ),
    ("amount_syntax", "amount is not a decimal number"),
    (
        "amount_too_large",
        "amount does not fit in 64-bit minor units",
    ),
    (
        "amount_too_many_decimals",
        "amount has more decimals than the currency",
    ),
    ("amount_whitespace", "amount contains white space"),
    ("amount_zero", "amount is zero"),
    ("api_key_revoked", "the API key was revoked"),
    ("cancel_window_closed", "too late to cancel; refund instead"),
    (
        "code_bad_signature",
        "the merchant code's signature does not verify (forged or altered)",
    ),
    ("code_expired", "the dynamic merchant code has expired"),
    (
        "code_invalid",
        "the merchant code cannot be built from this data",
    ),
    ("code_malformed", "not a valid EMV payload or qrgate code"),
    (
        "code_not_qrgate",
        "an EMV code, but not one this gateway issued",
    ),
    (
        "code_retired_key",
        "the merchant code was signed by a retired key",
    ),
    ("code_revoked", "the merchant revoked this static code"),
    (
        "code_suspended",
        "the static code is suspended while payers' reports of tampering are reviewed",
    ),
    ("code_unknown", "a genuine code that is not registered here"),
    (
        "complaint_already_open",
        "the payment has a complaint that is not resolved; follow it",
    ),
    (
        "review_decided",
        "the flagged payment or fraud report was decided on before (once each)",
    ),
    (
        "complaint_past_due",
        "the party's deadline on the complaint passed (answer, accept, escalate, contest)",
    ),
    (
        "complaint_state_conflict",
        "the complaint is not in a state that allows this move (or moved meanwhile)",
    ),
    (
        "complaint_window_closed",
        "the payment is too old to complain about (QG-COMPLAINT-WINDOW)",
    ),
    (
        "code_unknown_key",
        "the merchant code was signed by an unknown key",
    ),
    (
        "config_rule_override",
        "the configuration loosens a rule without allow_loosening",
    ),
    (
        "currency_mismatch",
        "the currency differs from the merchant's",
    ),
    (
        "certificate_key_in_use",
        "this public key is already enrolled as a certificate",
    ),
    (
        "certificate_signature_invalid",
        "the certificate signature does not verify, or the certificate is unknown or revoked",
    ),
    (
        "certificate_signature_required",
        "this confirmation needs a certificate signature (level A)",
    ),
    ("currency_not_supported", "only CNY is supported"),
    (
        "card_number_invalid",
        "the card number is not 12 to 19 digits or its check digit is wrong",
    ),
    (
        "card_expiry_invalid",
        "exp_month or exp_year is out of range",
    ),
    ("card_expired", "the card has expired"),
    (
        "card_not_supported",
        "the processor does not take this card (the sandbox takes only its test cards)",
    ),
    (
        "card_declined_insufficient_funds",
        "the card issuer declined: insufficient funds",
    ),
    (
        "card_declined_suspected_fraud",
        "the card issuer declined: suspected fraud",
    ),
    (
        "card_authorization_reversed",
        "the card authorization was reversed before it completed",
    ),
    (
        "card_processor_timeout",
        "the card processor did not answer; the authorization was reversed, no money moved",
    ),
    (
        "processor_unavailable",
        "the card processor did not answer; retry (refunds: with the same out_refund_no)",
    ),
    (
        "elements_insufficient",
        "the confirmation does not bring the payment to the level it needs",
    ),
    ("invalid_otp", "the one-time password is six digits"),
    (
        "otp_incorrect",
        "wrong one-time password (counts toward the lock-out)",
    ),
    (
        "otp_not_enrolled",
        "no authenticator app is enrolled (POST /v1/me/otp)",
    ),
    ("otp_reused", "the one-time password was already used"),
    (
        "owner_ref_required",
        "a small_personal merchant needs the owner_ref of the person behind it",
    ),
    ("block_already_lifted", "the block was lifted before"),
    (
        "endpoint_exists",
        "a page asked to add a webhook endpoint the merchant has already",
    ),
    (
        "several_codes",
        "the uploaded photo shows more than one genuine payment code",
    ),
    (
        "code_not_found",
        "no QR code was found in the uploaded photo",
    ),
    (
        "report_not_verified",
        "a conformance report did not verify against the public key given",
    ),
    (
        "attempt_refused",
        "a page's form was sent again after its first sending was refused",
    ),
    (
        "csrf_mismatch",
        "a page's form did not carry its session's CSRF token",
    ),
    ("cross_site", "a sign-in posted from another site's page"),
    (
        "session_ended",
        "no page session: never signed in, expired, signed out, or its key revoked",
    ),
    (
        "config_web_session",
        "web_session_minutes is out of its range (5 to 1440)",
    ),
    (
        "config_trusted_proxies",
        "a trusted_proxies entry is not an address block (10.0.0.0/8, fd00::/8, 127.0.0.1)",
    ),
    (
        "config_sandbox_journal_dir",
        "the sandbox processor's journal directory cannot be created or written",
    ),
    (
        "settlement_file_invalid",
        "the processor's settlement file is malformed, cut short or altered (the line is named); nothing was reconciled",
    ),
    (
        "key_recently_rotated",
        "the key stopped signing seconds ago; retry its retirement when every node has reloaded",
    ),
    (
        "key_signs_live_codes",
        "static codes or open orders the key signed are in force; retire with invalidate_codes=true",
    ),
    (
        "invalid_count",
        "a batch of sealed device handles is 1 to 100 handles",
    ),
    (
        "invalid_reason",
        "a block needs a reason of 1 to 200 characters",
    ),
    (
        "party_blocked",
        "the merchant or the payer is on the block list",
    ),
    (
        "balance_overflow",
        "the amount would take a balance past what the ledger holds",
    ),
    (
        "device_revoked",
        "the device that made the code, or confirms, is revoked",
    ),
    (
        "biometric_not_enabled",
        "biometric confirmation is not turned on for this device",
    ),
    (
        "pin_already_set",
        "a PIN is set: change it with current_pin, or have the operator reset it",
    ),
    ("pin_changed", "the PIN was changed or reset meanwhile"),
    ("certificate_revoked", "the certificate is already revoked"),
    (
        "device_signature_invalid",
        "the device signature does not verify",
    ),
    (
        "device_signature_required",
        "this confirmation needs a device signature",
    ),
    (
        "duplicate_out_refund_no",
        "out_refund_no was used for another amount",
    ),
    (
        "duplicate_out_trade_no",
        "out_trade_no was already used by this merchant",
    ),
    (
        "duplicate_key",
        "a key appears twice in one JSON object of the body",
    ),
    (
        "request_timeout",
        "the request ran past the server's deadline and was stopped; retry it",
    ),
    (
        "too_many_endpoints",
        "the merchant has the most webhook endpoints allowed; delete one first",
    ),
    (
        "rotation_conflict",
        "another key rotation happened at the same moment",
    ),
    (
        "key_not_retirable",
        "only a signing key that no longer signs can be retired",
    ),
    (
        "secrets_unreadable",
        "the gateway cannot open its sealed secrets: it was not given their master key",
    ),
    ("forbidden", "the key's role may not do this"),
    ("idempotency_key_required", "send an Idempotency-Key header"),
    (
        "idempotency_key_reused",
        "the Idempotency-Key was used with another request",
    ),
    ("insufficient_funds", "the wallet balance is too low"),
    (
        "internal",
        "an internal error; details are only in the server log",
    ),
    (
        "invalid_idempotency_key",
        "Idempotency-Key must be 1 to 255 visible ASCII characters",
    ),
    (
        "invalid_json",
        "the body is not valid JSON for this endpoint",
    ),
    ("invalid_pin", "the PIN must be six digits"),
    (
        "invalid_public_key",
        "not a raw 32-byte Ed25519 key in base64url",
    ),
    ("invalid_request", "a field has an invalid value"),
    ("invalid_url", "the webhook URL is not acceptable"),
    (
        "limit_exceeded",
        "a limit of the rule named in `rule` would be exceeded",
    ),
    (
        "method_not_allowed",
        "this endpoint does not take that method",
    ),
    ("missing_field", "a required field is missing"),
    (
        "not_found",
        "no such object (or it belongs to another tenant)",
    ),
    ("not_ready", "the database does not answer"),
    ("order_not_open", "the order is paid, expired or closed"),
    ("payload_too_large", "the body is over the size limit"),
    (
        "photo_limit",
        "the complaint already has the most photos it may hold",
    ),
    (
        "photo_too_large",
        "the complaint photo is over its size limit",
    ),
    (
        "photo_type",
        "the complaint photo is not a JPEG or PNG, or not what its Content-Type says",
    ),
    (
        "payment_code_already_used",
        "the consumer's payment code was already used",
    ),
    (
        "payment_code_bad_signature",
        "the payment code's signature does not verify",
    ),
    (
        "payment_code_check_digit",
        "the numeric code's check digit is wrong (mistyped)",
    ),
    ("payment_code_expired", "the payment code has expired"),
    ("payment_code_foreign", "a numeric code of another issuer"),
    ("payment_code_malformed", "not a payment code"),
    (
        "payment_code_not_yet_valid",
        "the code's time is in the future (device clock)",
    ),
    ("payment_code_unknown", "no such payment code"),
    (
        "payment_code_unknown_key",
        "the payment code was signed by an unknown key or device",
    ),
    (
        "payment_expired",
        "the time to confirm the payment has passed",
    ),
    (
        "not_suspended",
        "the static code is not suspended (or not due for suspension)",
    ),
    (
        "not_flagged",
        "the payment was not flagged for review (or the complaint reports no fraud), so there is nothing to decide",
    ),
    ("payment_not_cancelable", "the payment cannot be canceled"),
    (
        "payment_not_complainable",
        "only a succeeded payment with money not yet refunded can be complained about",
    ),
    (
        "payment_not_refundable",
        "only succeeded payments can be refunded",
    ),
    (
        "payment_state_conflict",
        "the payment is not in a state that allows this",
    ),
    ("pin_incorrect", "wrong PIN"),
    ("pin_locked", "too many wrong PINs; locked for a while"),
    ("pin_not_set", "no payment PIN is set"),
    ("pin_required", "this confirmation needs the PIN"),
    (
        "business_day_closed",
        "the business day the request fell in was settled meanwhile; nothing moved: retry",
    ),
    (
        "day_not_over",
        "the business day is not over yet, so it cannot be settled",
    ),
    (
        "settled_later",
        "a later business day of the merchant was settled first; this one's money went with it",
    ),
    (
        "refund_contended",
        "other refunds of the payment kept landing first; retry with the same out_refund_no",
    ),
    ("refund_window_closed", "the payment is too old to refund"),
    ("route_not_found", "no such endpoint"),
    (
        "service_unavailable",
        "the database is unavailable; retry with the same Idempotency-Key",
    ),
    ("unauthorized", "missing or unknown API key"),
    ("unknown_currency", "not an ISO 4217 currency"),
    (
        "unknown_field",
        "the body has a field this endpoint does not know",
    ),
    ("unsupported_format", "ask for .png or .svg"),
    (
        "unsupported_media_type",
        "send Content-Type: application/json",
    ),
    ("weak_pin", "the PIN is too easy to guess"),
];
