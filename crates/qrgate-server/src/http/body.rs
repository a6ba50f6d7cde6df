//! The bodies of the money routes, typed: unknown fields refused, required
//! fields required, amounts only as decimal strings, a currency only if it
//! is the gateway's. A field's own refusal keeps its stable error code: a
//! deserializer here fails with `"<code>: <message>"` and [`refusal`]
//! turns that back into the code (see [`BODY_CODES`]).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use utoipa::ToSchema;

/// The codes the deserializers of this module refuse with.
pub(super) const BODY_CODES: &[&str] =
    &["amount_not_string", "currency_mismatch", "unknown_currency"];

/// The stable code and message of a body serde refused: one of ours, an
/// unknown or missing field, a value of the wrong type, or no JSON at all.
pub(super) fn refusal(e: &serde_json::Error) -> (&'static str, String) {
    let msg = e.to_string();
    if let Some(code) = BODY_CODES
        .iter()
        .find(|c| msg.starts_with(&format!("{c}: ")))
    {
        // Our own message, without serde's " at line 1 column 20".
        let text = &msg[code.len() + 2..];
        let text = text.rsplit_once(" at line ").map_or(text, |(t, _)| t);
        return (code, text.to_owned());
    }
    let code = match e.classify() {
        serde_json::error::Category::Data if msg.contains("unknown field") => "unknown_field",
        serde_json::error::Category::Data if msg.contains("missing field") => "missing_field",
        serde_json::error::Category::Data => "invalid_request",
        _ => "invalid_json",
    };
    (code, msg)
}

/// An amount in major units as a JSON string (`"12.30"`). A JSON number is
/// refused: a binary float cannot hold every amount of cents. The string is
/// parsed (places, sign, size) by the gateway against the currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecimalAmount(pub String);

impl<'de> Deserialize<'de> for DecimalAmount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DecimalAmount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a decimal string such as \"12.30\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DecimalAmount, E> {
                Ok(DecimalAmount(s.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<DecimalAmount, E> {
                Err(not_a_string())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<DecimalAmount, E> {
                Err(not_a_string())
            }
            #[allow(clippy::disallowed_types)] // only to refuse it
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<DecimalAmount, E> {
                Err(not_a_string())
            }
        }
        d.deserialize_any(V)
    }
}

fn not_a_string<E: de::Error>() -> E {
    E::custom(
        "amount_not_string: an amount must be a decimal string such as \"12.30\", not a JSON number (numbers lose precision)",
    )
}

/// A currency a body names: only the gateway's own is accepted (the
/// barcode-payment limits are stated in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SameCurrency;

impl<'de> Deserialize<'de> for SameCurrency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        let ours = qrgate_gateway::CURRENCY;
        match qrgate_core::Currency::from_code(&code) {
            Ok(c) if c == ours => Ok(SameCurrency),
            Ok(_) => Err(de::Error::custom(format!(
                "currency_mismatch: {code} does not match the merchant's currency {ours}"
            ))),
            Err(e) => Err(de::Error::custom(format!("unknown_currency: {e}"))),
        }
    }
}

/// `POST /v1/payments`: charge the payment code the cashier scanned.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeRequest {
    /// The consumer's 18-digit code or its `QRG:` token.
    #[schema(example = "771234567890123452")]
    pub auth_code: String,
    /// Decimal string in major units.
    #[schema(value_type = String, example = "12.30")]
    pub amount: DecimalAmount,
    #[schema(value_type = Option<String>, example = "CNY")]
    #[allow(dead_code)] // checked as it is read: a body may name only our currency
    pub currency: Option<SameCurrency>,
    /// The merchant's own order number, unique per merchant.
    pub out_trade_no: Option<String>,
    /// Your own notes: up to 20 keys (1-40 of letters, digits, `_-.`), each
    /// a text of up to 200 characters. Returned in views, webhooks and
    /// the trade statement; never shown to the payer.
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>, example = json!({"till": "3"}))]
    pub metadata: Option<qrgate_core::Metadata>,
}

/// `POST /v1/scans`: pay a scanned merchant code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// The EMV payload read from the merchant's QR code.
    pub payload: String,
    /// Needed for static codes; for order codes, omit or send exactly the order's amount.
    #[schema(value_type = Option<String>, example = "8.00")]
    pub amount: Option<DecimalAmount>,
    #[schema(value_type = Option<String>)]
    #[allow(dead_code)] // checked as it is read: a body may name only our currency
    pub currency: Option<SameCurrency>,
    /// `wallet` (the default) or one of the payer's card ids (`crd_…`, from `POST /v1/me/cards`).
    pub funding_source: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    #[schema(value_type = String, example = "36.50")]
    pub amount: DecimalAmount,
    #[schema(value_type = Option<String>)]
    #[allow(dead_code)] // checked as it is read: a body may name only our currency
    pub currency: Option<SameCurrency>,
    /// Shown to the payer (EMV 62/05), at most 25 characters.
    pub reference: Option<String>,
    pub out_trade_no: Option<String>,
    /// Seconds until the code expires (30 to QG-ORDER-TTL; default 900).
    pub expires_in: Option<i64>,
    /// Your own notes: up to 20 keys (1-40 of letters, digits, `_-.`), each
    /// a text of up to 200 characters. Returned in views, webhooks and
    /// the trade statement; never shown to the payer.
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>, example = json!({"till": "3"}))]
    pub metadata: Option<qrgate_core::Metadata>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    #[schema(value_type = String, example = "6.50")]
    pub amount: DecimalAmount,
    #[schema(value_type = Option<String>)]
    #[allow(dead_code)] // checked as it is read: a body may name only our currency
    pub currency: Option<SameCurrency>,
    /// Your refund number, unique across your refunds; a retry with the
    /// same number refunds once.
    pub out_refund_no: String,
    /// Your own notes: up to 20 keys (1-40 of letters, digits, `_-.`), each
    /// a text of up to 200 characters. Returned in views, webhooks and
    /// the trade statement; never shown to the payer.
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>, example = json!({"till": "3"}))]
    pub metadata: Option<qrgate_core::Metadata>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopupRequest {
    #[schema(value_type = String, example = "500.00")]
    pub amount: DecimalAmount,
    #[schema(value_type = Option<String>)]
    #[allow(dead_code)] // checked as it is read: a body may name only our currency
    pub currency: Option<SameCurrency>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> (&'static str, String) {
        refusal(&serde_json::from_str::<ChargeRequest>(body).err().unwrap())
    }

    #[test]
    fn each_refusal_keeps_its_code() {
        let ok: ChargeRequest =
            serde_json::from_str(r#"{"auth_code": "77", "amount": "1.00", "currency": "CNY"}"#)
                .unwrap();
        assert_eq!(ok.amount, DecimalAmount("1.00".into()));
        for (body, code) in [
            (
                r#"{"auth_code": "77", "amount": 12.30}"#,
                "amount_not_string",
            ),
            (r#"{"auth_code": "77", "amount": 12}"#, "amount_not_string"),
            (r#"{"auth_code": "77", "amount": true}"#, "invalid_request"),
            (
                r#"{"auth_code": "77", "amount": "1", "currency": "USD"}"#,
                "currency_mismatch",
            ),
            (
                r#"{"auth_code": "77", "amount": "1", "currency": "XYZ"}"#,
                "unknown_currency",
            ),
            (
                r#"{"auth_code": "77", "amount": "1", "tip": "1"}"#,
                "unknown_field",
            ),
            (r#"{"amount": "1"}"#, "missing_field"),
            (r#"{"auth_code": 77, "amount": "1"}"#, "invalid_request"),
            (r#"{"auth_code": "77", "#, "invalid_json"),
        ] {
            assert_eq!(refused(body).0, code, "{body}");
        }
        assert!(
            !refused(r#"{"auth_code": "77", "amount": 1}"#)
                .1
                .starts_with("amount_not_string")
        );
    }

    #[test]
    fn null_is_absent() {
        let r: ScanRequest =
            serde_json::from_str(r#"{"payload": "p", "amount": null, "currency": null}"#).unwrap();
        assert!(r.amount.is_none() && r.currency.is_none());
    }
}

/// A payer's complaint about one of their payments.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplaintRequest {
    pub payment_id: String,
    /// not_received, wrong_amount, not_authorised, charged_twice,
    /// code_tampered or other.
    pub reason: String,
    /// What happened, in the payer's words (up to 2,000 characters).
    pub description: String,
    /// What is disputed; all that is left unrefunded when absent.
    #[schema(value_type = Option<String>, example = "15.00")]
    pub amount: Option<DecimalAmount>,
}

/// The merchant's answer to an open complaint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplaintAnswerRequest {
    /// refund, explain or reject.
    pub action: String,
    /// refund: how much (all that is disputed when absent).
    #[schema(value_type = Option<String>, example = "50.00")]
    pub amount: Option<DecimalAmount>,
    /// refund (optional) and explain: the message to the payer.
    pub message: Option<String>,
    /// reject: why.
    pub reason: Option<String>,
}

/// A reason (escalating, contesting).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    pub reason: String,
}

/// The operator's decision on an escalated or contested complaint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Escalated: refund, reject, send_back or park. Contested:
    /// keep_refund (the merchant bears it), recover (the platform's
    /// goodwill bears it) or park.
    pub decision: String,
    /// Why: kept in the complaint's steps and the audit chain.
    pub reason: String,
    /// refund: how much (all that is disputed and not refunded when absent).
    #[schema(value_type = Option<String>, example = "50.00")]
    pub amount: Option<DecimalAmount>,
    /// park: when it is back in the queue (RFC 3339).
    pub revisit_at: Option<String>,
}

/// The operator's decision on a flagged payment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecisionRequest {
    /// clear (nothing wrong) or confirm (it was what the check feared).
    pub decision: String,
    /// Why: kept in the audit chain.
    pub reason: String,
}
