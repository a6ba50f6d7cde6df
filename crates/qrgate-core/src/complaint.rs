//! What a payer's complaint says: why (a fixed category), in their words,
//! and how it ended. The states and their table are in [`crate::state`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why the payer complains; the categories a wallet offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplaintReason {
    /// Paid, but the goods or service never came.
    NotReceived,
    /// Charged another amount than agreed.
    WrongAmount,
    /// The payer did not make this payment.
    NotAuthorised,
    /// Charged twice for one purchase.
    ChargedTwice,
    /// The shop's code looked swapped or stuck over.
    CodeTampered,
    Other,
}

impl ComplaintReason {
    pub const ALL: [ComplaintReason; 6] = [
        ComplaintReason::NotReceived,
        ComplaintReason::WrongAmount,
        ComplaintReason::NotAuthorised,
        ComplaintReason::ChargedTwice,
        ComplaintReason::CodeTampered,
        ComplaintReason::Other,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ComplaintReason::NotReceived => "not_received",
            ComplaintReason::WrongAmount => "wrong_amount",
            ComplaintReason::NotAuthorised => "not_authorised",
            ComplaintReason::ChargedTwice => "charged_twice",
            ComplaintReason::CodeTampered => "code_tampered",
            ComplaintReason::Other => "other",
        }
    }

    /// A reason that says someone else took the payer's money (their
    /// device, or a code laid over the shop's): it raises risk actions as
    /// well as a complaint.
    pub fn is_fraud(self) -> bool {
        matches!(
            self,
            ComplaintReason::NotAuthorised | ComplaintReason::CodeTampered
        )
    }
}

impl FromStr for ComplaintReason {
    type Err = UnknownReason;
    fn from_str(s: &str) -> Result<Self, UnknownReason> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownReason(s.to_owned()))
    }
}

impl fmt::Display for ComplaintReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown complaint reason {0:?}: one of not_received, wrong_amount, not_authorised, charged_twice, code_tampered, other"
)]
pub struct UnknownReason(pub String);

/// How a complaint ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Refunded on the spot, and not contested in time (or the merchant
    /// lost the contest).
    InstantRefund,
    /// Refunded on the spot; the merchant won the contest, and the
    /// platform's goodwill account bore it instead of the merchant.
    InstantRefundRecovered,
    /// The merchant refunded all that was disputed.
    MerchantRefund,
    /// The payer accepted the merchant's answer.
    PayerAccepted,
    /// The payer did not answer within their window: the merchant's answer
    /// stands.
    PayerSilent,
    /// The operator ordered a refund.
    OperatorRefund,
    /// The operator upheld the merchant.
    OperatorUpheld,
}

impl Resolution {
    pub const fn as_str(self) -> &'static str {
        match self {
            Resolution::InstantRefund => "instant_refund",
            Resolution::InstantRefundRecovered => "instant_refund_recovered",
            Resolution::MerchantRefund => "merchant_refund",
            Resolution::PayerAccepted => "payer_accepted",
            Resolution::PayerSilent => "payer_silent",
            Resolution::OperatorRefund => "operator_refund",
            Resolution::OperatorUpheld => "operator_upheld",
        }
    }

    pub const ALL: [Resolution; 7] = [
        Resolution::InstantRefund,
        Resolution::InstantRefundRecovered,
        Resolution::MerchantRefund,
        Resolution::PayerAccepted,
        Resolution::PayerSilent,
        Resolution::OperatorRefund,
        Resolution::OperatorUpheld,
    ];
}

impl FromStr for Resolution {
    type Err = UnknownReason;
    fn from_str(s: &str) -> Result<Self, UnknownReason> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownReason(s.to_owned()))
    }
}

/// The most characters a complaint's text (description, answer, reason)
/// may have.
pub const TEXT_MAX_CHARS: usize = 2000;

/// Why a complaint's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{0} is longer than {TEXT_MAX_CHARS} characters")]
    TooLong(&'static str),
    #[error("{0} contains a control character (only line breaks and tabs are allowed)")]
    Control(&'static str),
}

/// A complaint's free text (`field` names it in the error): trimmed, not
/// empty, at most [`TEXT_MAX_CHARS`] characters, no control characters
/// but line breaks and tabs.
pub fn checked_text(field: &'static str, text: &str) -> Result<String, TextError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(TextError::Empty(field));
    }
    if t.chars().count() > TEXT_MAX_CHARS {
        return Err(TextError::TooLong(field));
    }
    if t.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(TextError::Control(field));
    }
    Ok(t.to_owned())
}

/// The image type `bytes` start with: a PNG signature or a JPEG start of
/// image. Anything else is not taken.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF];
    if bytes.starts_with(PNG) {
        Some("image/png")
    } else if bytes.starts_with(JPEG) {
        Some("image/jpeg")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reasons_round_trip() {
        for r in ComplaintReason::ALL {
            assert_eq!(r.as_str().parse::<ComplaintReason>(), Ok(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        for r in Resolution::ALL {
            assert_eq!(r.as_str().parse::<Resolution>(), Ok(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert!("fraud".parse::<ComplaintReason>().is_err());
        assert!(ComplaintReason::CodeTampered.is_fraud());
        assert!(!ComplaintReason::WrongAmount.is_fraud());
    }

    #[test]
    fn text_limits() {
        assert_eq!(checked_text("d", "  hi \n").unwrap(), "hi");
        assert_eq!(checked_text("d", " \n "), Err(TextError::Empty("d")));
        assert_eq!(
            checked_text("d", &"x".repeat(TEXT_MAX_CHARS + 1)),
            Err(TextError::TooLong("d"))
        );
        assert!(checked_text("d", &"语".repeat(TEXT_MAX_CHARS)).is_ok());
        assert_eq!(checked_text("d", "a\u{0}b"), Err(TextError::Control("d")));
        assert!(checked_text("d", "line\nline\ttab").is_ok());
    }

    proptest! {
        #[test]
        fn accepted_text_is_trimmed_and_bounded(s in "\\PC{0,2100}") {
            if let Ok(t) = checked_text("d", &s) {
                prop_assert!(!t.is_empty());
                prop_assert!(t.chars().count() <= TEXT_MAX_CHARS);
                prop_assert_eq!(t.trim(), t.as_str());
            }
        }
    }
}
