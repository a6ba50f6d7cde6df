//! What a payment records beside its amount and status: how it was paid,
//! at which risk level with which proof, from which source, what the risk
//! checks said, why it failed, what the payer must still do.
//!
//! Stored as one JSON column (`payments.details`); these types are the only
//! way the gateway reads or writes it, so a misspelt key is a compile error
//! and a row written by an older release still reads (every field that was
//! added later has a default).

use serde::{Deserialize, Serialize};

use crate::risk::{Element, RiskLevel};
use crate::{AccountId, Timestamp};

/// How the payment was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The merchant scanned the consumer's payment code.
    Cpm,
    /// The consumer scanned a merchant's static code.
    MpmStatic,
    /// The consumer scanned an order's (dynamic) code.
    MpmDynamic,
}

impl Mode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Cpm => "cpm",
            Mode::MpmStatic => "mpm_static",
            Mode::MpmDynamic => "mpm_dynamic",
        }
    }

    /// The payer scanned a code the merchant shows (so the payer is told
    /// how to report a payee that was not the one meant).
    pub const fn payer_scanned(self) -> bool {
        matches!(self, Mode::MpmStatic | Mode::MpmDynamic)
    }
}

/// What a risk check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    StepUp,
    Decline,
    FlagForReview,
}

/// One risk check a payment went through: its rule, decision and reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Check {
    pub rule: String,
    pub decision: Decision,
    pub reason: String,
}

impl Check {
    pub fn new(rule: &str, decision: Decision, reason: impl Into<String>) -> Check {
        Check {
            rule: rule.into(),
            decision,
            reason: reason.into(),
        }
    }
}

/// Why a payment failed: the stable error code, the message, the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"code": "limit_exceeded", "message": "BCP-LIMIT-C-DAILY: 99999 + 2 would exceed the limit of 100000 (minor units)", "rule": "BCP-LIMIT-C-DAILY"}))]
pub struct Failure {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// Where the money came from. Never a card number: the processor's token
/// stays on the card's own row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Funding {
    /// Also what a payment recorded before cards existed paid from (such
    /// rows have no `funding`).
    #[default]
    Wallet,
    Card(FundingCard),
}

/// A card payment's source and its authorization with the processor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundingCard {
    pub card_id: String,
    pub brand: String,
    pub last4: String,
    /// `debit` or `credit`: the caps differ.
    pub funding: String,
    pub processor: String,
    /// The processor request that authorized (or tried to) this payment:
    /// the only one it may capture, refund or reverse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    /// The authorization was reversed (refused after authorizing, or no answer).
    #[serde(default, skip_serializing_if = "is_false")]
    pub reversed: bool,
}

impl Funding {
    pub fn card(&self) -> Option<&FundingCard> {
        match self {
            Funding::Card(c) => Some(c),
            Funding::Wallet => None,
        }
    }

    pub fn card_mut(&mut self) -> Option<&mut FundingCard> {
        match self {
            Funding::Card(c) => Some(c),
            Funding::Wallet => None,
        }
    }

    pub const fn kind(&self) -> &'static str {
        match self {
            Funding::Wallet => "wallet",
            Funding::Card(_) => "card",
        }
    }

    /// The request that holds (or tried to hold) the money at the source:
    /// the only one this payment may capture, refund or release. The
    /// wallet holds nothing: the movement itself takes the balance.
    pub fn hold(&self) -> Option<&str> {
        match self {
            Funding::Wallet => None,
            Funding::Card(c) => c.request_id.as_deref(),
        }
    }

    /// Record a hold under `request_id`: granted (`authorization`), or
    /// refused (`None`; `released` when it was released for want of an
    /// answer).
    pub fn record_hold(&mut self, request_id: &str, authorization: Option<String>, released: bool) {
        if let Funding::Card(c) = self {
            c.request_id = Some(request_id.into());
            c.authorization = authorization;
            c.reversed = released;
        }
    }

    /// Forget the hold: a confirmation takes a new one.
    pub fn clear_hold(&mut self) {
        if let Funding::Card(c) = self {
            c.request_id = None;
            c.authorization = None;
            c.reversed = false;
        }
    }

    /// The hold was released: it can never settle.
    pub fn mark_released(&mut self) {
        if let Funding::Card(c) = self {
            c.reversed = true;
        }
    }

    /// What the API may show of the source: never a card number or a
    /// processor reference.
    pub fn shown(&self) -> Shown<'_> {
        match self {
            Funding::Wallet => Shown {
                kind: self.kind(),
                brand: None,
                last4: None,
                funding: None,
                source_id: None,
            },
            Funding::Card(c) => Shown {
                kind: self.kind(),
                brand: Some(&c.brand),
                last4: Some(&c.last4),
                funding: Some(&c.funding),
                source_id: Some(&c.card_id),
            },
        }
    }
}

/// The parts of a source the API shows (see [`Funding::shown`]).
pub struct Shown<'a> {
    pub kind: &'static str,
    pub brand: Option<&'a str>,
    pub last4: Option<&'a str>,
    /// `debit` or `credit`.
    pub funding: Option<&'a str>,
    /// The payer's own id of the source (shown to the payer only).
    pub source_id: Option<&'a str>,
}

/// What the payer of a `requires_action` payment must prove, and by when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextAction {
    /// Always `confirm`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The first acceptable set of elements.
    pub elements: Vec<Element>,
    /// Every set of elements that would do (rows written before this list
    /// existed accept `elements` only).
    #[serde(default)]
    pub accepts: Vec<Vec<Element>>,
    /// The level the confirmation reaches (older rows: B, or A when a
    /// certificate is asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_level: Option<RiskLevel>,
    pub expires_at: String,
    /// The deadline as a number, for the sweeper; not shown by the API.
    pub expires_at_ms: i64,
    pub confirm_url: String,
}

impl NextAction {
    pub fn confirm(
        payment_id: &str,
        accepts: Vec<Vec<Element>>,
        target: RiskLevel,
        expires_at: Timestamp,
    ) -> NextAction {
        NextAction {
            kind: "confirm".into(),
            elements: accepts.first().cloned().unwrap_or_default(),
            accepts,
            target_level: Some(target),
            expires_at: expires_at.to_rfc3339(),
            expires_at_ms: expires_at.unix_millis(),
            confirm_url: format!("/v1/payments/{payment_id}/confirm"),
        }
    }

    pub fn deadline(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.expires_at_ms)
    }

    /// Every acceptable set of elements.
    pub fn accepted(&self) -> Vec<Vec<Element>> {
        if self.accepts.is_empty() {
            vec![self.elements.clone()]
        } else {
            self.accepts.clone()
        }
    }

    /// The level a confirmation reaches.
    pub fn target(&self) -> RiskLevel {
        match self.target_level {
            Some(RiskLevel::A) => RiskLevel::A,
            Some(_) => RiskLevel::B,
            None if self.elements.contains(&Element::DigitalCertificate) => RiskLevel::A,
            None => RiskLevel::B,
        }
    }
}

/// Everything a payment records beside its amount, parties and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDetails {
    pub mode: Mode,
    /// CPM: the kind of code scanned (`online`, `offline`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_kind: Option<String>,
    /// CPM: the device that signed the payer's code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// MPM: the static code scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_code_id: Option<String>,
    /// MPM: the order paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The order's number (the order's row keeps it unique; its attempts do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    pub risk_level: RiskLevel,
    #[serde(default)]
    pub verification: Vec<Element>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_name: Option<String>,
    /// The ledger account paid from (where refunds and cancels return).
    pub funding_account: AccountId,
    #[serde(default)]
    pub funding: Funding,
    pub settlement_account: AccountId,
    /// The merchant's fee schedule when the payment was made: its fee
    /// (the payment row's `fee_minor`) and what each refund gives back of
    /// it follow this, whatever the merchant's schedule is later. Absent
    /// on payments made before fees: no fee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_schedule: Option<crate::fee::FeeSchedule>,
    /// The merchant's own notes on the payment (given with the charge, or
    /// the order's, for a payment of an order).
    #[serde(default, skip_serializing_if = "crate::Metadata::is_empty")]
    pub metadata: crate::Metadata,
    /// 43: the institution compensates level-C balance-payment losses in full.
    #[serde(default, skip_serializing_if = "is_false")]
    pub compensation_eligible: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risk_checks: Vec<Check>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
}

impl PaymentDetails {
    /// Record a decisive check, replacing an earlier entry of the same rule
    /// (an `allow` noted before the store refused it).
    pub fn record_check(&mut self, check: Check) {
        self.risk_checks.retain(|c| c.rule != check.rule);
        self.risk_checks.push(check);
    }

    /// The rules the checks flagged for review.
    pub fn flags(&self) -> Vec<&str> {
        self.risk_checks
            .iter()
            .filter(|c| c.decision == Decision::FlagForReview)
            .map(|c| c.rule.as_str())
            .collect()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row as the releases before typed details wrote it still reads, and
    /// writes back with the same meaning.
    #[test]
    fn an_older_row_reads() {
        let old = serde_json::json!({
            "mode": "cpm", "code_kind": "online", "device_id": null,
            "risk_level": "C", "verification": ["device_signature"],
            "merchant_name": "DEMO", "funding_account": "wallet:cus_1:CNY",
            "funding": {"type": "wallet"}, "settlement_account": "settlement:mch_1:CNY",
            "compensation_eligible": true,
            "risk_checks": [{"rule": "QG-BLOCKLIST", "decision": "allow", "reason": "ok"}],
            "next_action": {"type": "confirm", "elements": ["pin"], "expires_at": "x", "expires_at_ms": 5, "confirm_url": "/v1/payments/p/confirm"}
        });
        let d: PaymentDetails = serde_json::from_value(old).unwrap();
        assert_eq!(d.mode, Mode::Cpm);
        assert!(d.compensation_eligible);
        let next = d.next_action.as_ref().unwrap();
        assert_eq!(next.accepted(), vec![vec![Element::Pin]]);
        assert_eq!(next.target(), RiskLevel::B);
        assert_eq!(next.deadline(), Timestamp::from_unix_millis(5));
        let again: PaymentDetails =
            serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
        assert_eq!(again, d);
    }

    /// Rows from before cards have no `funding`: they paid from the wallet.
    #[test]
    fn a_row_from_before_cards_reads_as_a_wallet_payment() {
        let d: PaymentDetails = serde_json::from_value(serde_json::json!({
            "mode": "cpm", "code_kind": "online", "device_id": null, "risk_level": "C",
            "verification": ["device_signature"], "merchant_name": "DEMO",
            "funding_account": "wallet:cus_1:CNY", "settlement_account": "settlement:mch_1:CNY"
        }))
        .unwrap();
        assert_eq!(d.funding, Funding::Wallet);
        assert_eq!(d.funding.hold(), None);
    }

    #[test]
    fn a_card_source_keeps_its_authorization() {
        let f: Funding = serde_json::from_value(serde_json::json!({
            "type": "card", "card_id": "card_1", "brand": "visa", "last4": "4242",
            "funding": "debit", "processor": "sandbox", "request_id": "pay_1",
            "authorization": "auth_1", "reversed": true
        }))
        .unwrap();
        let c = f.card().unwrap();
        assert_eq!(c.request_id.as_deref(), Some("pay_1"));
        assert!(c.reversed);
        assert_eq!(
            serde_json::to_value(Funding::Wallet).unwrap(),
            serde_json::json!({"type": "wallet"})
        );
    }

    #[test]
    fn a_check_replaces_its_earlier_entry() {
        let mut d: PaymentDetails = serde_json::from_value(serde_json::json!({
            "mode": "mpm_static", "risk_level": "D", "funding_account": "a",
            "funding": {"type": "wallet"}, "settlement_account": "b"
        }))
        .unwrap();
        d.record_check(Check::new("R", Decision::Allow, "fine"));
        d.record_check(Check::new("F", Decision::FlagForReview, "odd"));
        d.record_check(Check::new("R", Decision::Decline, "over"));
        assert_eq!(d.risk_checks.len(), 2);
        assert_eq!(d.risk_checks[1].decision, Decision::Decline);
        assert_eq!(d.flags(), vec!["F"]);
    }
}
