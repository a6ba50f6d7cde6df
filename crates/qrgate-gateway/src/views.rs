//! What the API shows: amounts as decimal strings with their currency,
//! times as RFC 3339, ids with their prefixes.

use serde::{Deserialize, Serialize};

use qrgate_core::payment::{Check, Funding, NextAction};
use qrgate_core::state::PaymentStatus;
use qrgate_core::{Currency, Element, Metadata, Money, Timestamp};
use qrgate_store::{Merchant, Order, Payment, Refund};

use crate::Role;

/// An amount as the API shows it: a decimal string in its currency's units.
pub fn amount(minor: i64, currency: Currency) -> String {
    Money::from_minor(minor, currency).to_decimal_string()
}

pub use qrgate_core::payment::Failure;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "pay_gqkzze5gcvjkcliypewhufdj3a", "object": "payment", "status": "succeeded", "mode": "cpm", "amount": "12.30", "currency": "CNY", "amount_refunded": "0.00", "merchant_id": "mch_6bsdfgzqrkdpgz6gy6p366fdeu", "merchant_name": "DEMO NOODLES", "risk_level": "C", "verification": ["device_signature"], "out_trade_no": "T-1001", "fee": "0.07", "created_at": "2026-11-25T13:27:48.155Z", "updated_at": "2026-11-25T13:27:48.155Z"}))]
pub struct PaymentView {
    pub id: String,
    pub object: &'static str,
    /// `succeeded`, `failed`, `requires_action`, `confirming` (a card
    /// confirmation is with the processor), `canceled`.
    pub status: String,
    /// `cpm` (merchant scanned the consumer's code), `mpm_static`, `mpm_dynamic`.
    pub mode: String,
    pub amount: String,
    pub currency: String,
    pub amount_refunded: String,
    pub merchant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_name: Option<String>,
    pub risk_level: String,
    pub verification: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// For `requires_action`: what the payer must prove, and by when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextActionView>,
    /// Where the money came from: `{"type": "wallet"}`, or a card with its
    /// brand, last four digits and `debit`/`credit` (and, for the payer,
    /// its `card_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funding: Option<FundingView>,
    /// For the payer of a scanned merchant code: what to do if the payee
    /// was not the one meant (BCP-MPM-RISK-PROMPT at payment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_prompt: Option<String>,
    /// For admins and auditors: the risk checks the payment went through,
    /// each with its rule, decision and reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_checks: Option<Vec<Check>>,
    /// For the merchant, admins and auditors: what the payment costs the
    /// merchant when it succeeds (QG-FEE-ROUNDING; each refund gives part
    /// of it back, shown as its `fee_returned`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee: Option<String>,
    /// The merchant's own notes (up to 20 keys; see the README): for the
    /// merchant, admins and auditors; never shown to the payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    pub metadata: Option<Metadata>,
    pub created_at: String,
    pub updated_at: String,
}

impl PaymentView {
    /// The payment as `audience` may see it: merchants do not see which
    /// customer paid (the id is random, but it would let them link payments).
    pub fn of(p: &Payment, audience: Role) -> PaymentView {
        let d = &p.details;
        let currency = p.currency;
        PaymentView {
            id: p.id.clone(),
            object: "payment",
            status: p.status.as_str().into(),
            mode: d.mode.as_str().into(),
            amount: amount(p.amount_minor, currency),
            currency: currency.code().into(),
            amount_refunded: amount(p.refunded_minor, currency),
            merchant_id: p.merchant_id.clone(),
            customer_id: p.customer_id.clone().filter(|_| audience != Role::Merchant),
            merchant_name: d.merchant_name.clone(),
            risk_level: d.risk_level.as_str().into(),
            verification: d.verification.iter().map(|e| e.as_str().into()).collect(),
            // A payment of an order shows the order's number, which the
            // order's row keeps unique (its attempts do not hold it).
            out_trade_no: p.out_trade_no.clone().or_else(|| d.out_trade_no.clone()),
            order_id: d.order_id.clone(),
            failure: d.failure.clone(),
            next_action: d.next_action.as_ref().map(NextActionView::of),
            funding: Some(FundingView::of(&d.funding, audience)),
            risk_checks: match audience {
                Role::Admin | Role::Auditor => Some(d.risk_checks.clone()),
                _ => None,
            },
            risk_prompt: (audience == Role::Consumer && d.mode.payer_scanned()).then(|| {
                format!(
                    "Paid to {}. If that is not who you meant to pay, report it at once from your payments list; keep this payment id.",
                    d.merchant_name.as_deref().unwrap_or_default()
                )
            }),
            // The fee is charged when the payment succeeds; a failed or
            // waiting one costs nothing, a canceled one gave it back.
            fee: (audience != Role::Consumer && p.status == PaymentStatus::Succeeded)
                .then(|| amount(p.fee_minor, currency)),
            metadata: (audience != Role::Consumer).then(|| d.metadata.clone()),
            created_at: p.created_at.to_rfc3339(),
            updated_at: p.updated_at.to_rfc3339(),
        }
    }
}

/// What the payer of a `requires_action` payment must prove, and by when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"type": "confirm", "elements": ["pin", "device_signature"], "accepts": [["pin", "device_signature"], ["pin", "one_time_password"]], "target_level": "B", "expires_at": "2026-11-25T13:32:48.155Z", "confirm_url": "/v1/payments/pay_gqkzze5gcvjkcliypewhufdj3a/confirm"}))]
pub struct NextActionView {
    /// Always `confirm`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The suggested set of elements.
    pub elements: Vec<String>,
    /// Every set of elements that completes the payment.
    pub accepts: Vec<Vec<String>>,
    /// The level the confirmation reaches.
    pub target_level: String,
    pub expires_at: String,
    pub confirm_url: String,
}

impl NextActionView {
    fn of(a: &NextAction) -> NextActionView {
        let names = |set: &[Element]| set.iter().map(|e| e.as_str().to_owned()).collect();
        NextActionView {
            kind: a.kind.clone(),
            elements: names(&a.elements),
            accepts: a.accepted().iter().map(|s| names(s)).collect(),
            target_level: a.target().as_str().into(),
            expires_at: a.expires_at.clone(),
            confirm_url: a.confirm_url.clone(),
        }
    }
}

/// Where the money came from: the wallet, or a card with its brand, last
/// four digits and `debit`/`credit` (and, for the payer, the card's id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"type": "card", "brand": "visa", "last4": "4242", "funding": "debit"}))]
pub struct FundingView {
    /// `wallet` or `card`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_id: Option<String>,
}

impl FundingView {
    fn of(f: &Funding, audience: Role) -> FundingView {
        let shown = f.shown();
        FundingView {
            kind: shown.kind.into(),
            brand: shown.brand.map(str::to_owned),
            last4: shown.last4.map(str::to_owned),
            funding: shown.funding.map(str::to_owned),
            card_id: shown
                .source_id
                .filter(|_| audience != Role::Merchant)
                .map(str::to_owned),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "ref_ev5syavwq2ej35gcnslqfgq7fy", "object": "refund", "payment_id": "pay_gqkzze5gcvjkcliypewhufdj3a", "amount": "6.50", "currency": "CNY", "status": "succeeded", "out_refund_no": "R1", "destination": "original_funding_source", "fee_returned": "0.04", "created_at": "2026-11-25T13:27:58.174Z"}))]
pub struct RefundView {
    pub id: String,
    pub object: &'static str,
    pub payment_id: String,
    pub amount: String,
    pub currency: String,
    pub status: String,
    pub out_refund_no: String,
    /// Where the money went: always the payment's original funding source.
    pub destination: String,
    /// For the merchant, admins and auditors: the part of the payment's
    /// fee this refund gave back to the merchant (QG-FEE-ROUNDING).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_returned: Option<String>,
    /// The merchant's own notes (up to 20 keys; see the README): for the
    /// merchant, admins and auditors; never shown to the payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    pub metadata: Option<Metadata>,
    pub created_at: String,
}

impl RefundView {
    pub fn of(r: &Refund) -> RefundView {
        RefundView {
            id: r.id.clone(),
            object: "refund",
            payment_id: r.payment_id.clone(),
            amount: amount(r.amount_minor, r.currency),
            currency: r.currency.code().into(),
            status: r.status.clone(),
            out_refund_no: r.out_refund_no.clone(),
            destination: "original_funding_source".into(),
            fee_returned: Some(amount(r.fee_minor, r.currency)),
            metadata: Some(r.metadata.clone()),
            created_at: r.created_at.to_rfc3339(),
        }
    }

    /// The refund as `audience` may see it: the payer does not see the
    /// merchant's fee.
    pub fn for_role(mut self, audience: Role) -> RefundView {
        if audience == Role::Consumer {
            self.fee_returned = None;
            self.metadata = None;
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "ord_aibaeaqcaibaeaqcaibaeaqcai", "object": "order", "merchant_id": "mch_6bsdfgzqrkdpgz6gy6p366fdeu", "amount": "36.50", "currency": "CNY", "reference": "TABLE-7", "status": "open", "payload": "00020101021226730009io.qrgate0130ord_…6304F944", "expires_at": "2026-11-25T13:45:00Z", "created_at": "2026-11-25T13:30:00.000Z"}))]
pub struct OrderView {
    pub id: String,
    pub object: &'static str,
    pub merchant_id: String,
    pub amount: String,
    pub currency: String,
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    /// `open`, `paid`, `expired`, `closed`.
    pub status: String,
    /// The signed EMV payload to show as a QR code.
    pub payload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The merchant's own notes (up to 20 keys; see the README); the
    /// payment of the order carries them too.
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub metadata: Metadata,
    pub expires_at: String,
    pub created_at: String,
}

impl OrderView {
    pub fn of(o: &Order) -> OrderView {
        OrderView {
            id: o.id.clone(),
            object: "order",
            merchant_id: o.merchant_id.clone(),
            amount: amount(o.amount_minor, o.currency),
            currency: o.currency.code().into(),
            reference: o.reference.clone(),
            out_trade_no: o.out_trade_no.clone(),
            status: o.status.clone(),
            payload: o.payload.clone(),
            payment_id: o.payment_id.clone(),
            metadata: o.metadata.clone(),
            expires_at: o.expires_at.to_rfc3339(),
            created_at: o.created_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "mch_6bsdfgzqrkdpgz6gy6p366fdeu", "object": "merchant", "name": "DEMO NOODLES", "name_local": "演示面馆", "city": "SHANGHAI", "country": "CN", "mcc": "5812", "currency": "CNY", "category": "regular", "fees": {"rate_bps": 60, "minimum": "0.00"}, "created_at": "2026-11-25T13:27:45.000Z"}))]
pub struct MerchantView {
    pub id: String,
    pub object: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_local: Option<String>,
    pub city: String,
    pub country: String,
    pub mcc: String,
    pub currency: String,
    pub category: String,
    /// For small merchants: the opaque reference to the person behind them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_ref: Option<String>,
    /// What each payment costs the merchant (QG-FEE-ROUNDING).
    pub fees: FeesView,
    pub created_at: String,
}

/// A merchant's fee schedule as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FeesView {
    /// Basis points of each payment (60 = 0.6%).
    pub rate_bps: u32,
    /// The least a payment costs (while anything of it is kept).
    pub minimum: String,
}

impl MerchantView {
    pub fn of(m: &Merchant) -> MerchantView {
        MerchantView {
            id: m.id.clone(),
            object: "merchant",
            name: m.name.clone(),
            name_local: m.name_local.clone(),
            city: m.city.clone(),
            country: m.country.clone(),
            mcc: m.mcc.clone(),
            currency: m.currency.code().into(),
            category: m.category.clone(),
            owner_ref: m.owner_ref.clone(),
            fees: FeesView {
                rate_bps: m.fees.rate_bps,
                minimum: amount(m.fees.min_fee_minor, m.currency),
            },
            created_at: m.created_at.to_rfc3339(),
        }
    }
}

pub fn ts(t: Timestamp) -> String {
    t.to_rfc3339()
}
