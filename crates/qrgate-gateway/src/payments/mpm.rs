//! MPM: the consumer scans a merchant's code and pays it (a static code,
//! where the payer enters the amount at level D, or an order's dynamic
//! code), and the public check of a merchant code before paying.

use serde::Serialize;

use qrgate_codes::merchant::{self, MerchantCodeKind};
use qrgate_core::Money;
use qrgate_core::payment::Mode;
use qrgate_core::risk::{self, Element};
use qrgate_core::state::OrderStatus;
use qrgate_store::*;

use super::settle::Sale;
use crate::funding::Source;
use crate::{Error, Gateway, Idem, Kind, Principal, Reply};

/// What `POST /v1/codes/verify` tells about a merchant code.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"genuine": true, "kind": "static", "code_id": "sqr_lrzzauw6gs3zhv23tzmgayahci", "merchant_name": "DEMO NOODLES", "merchant_city": "SHANGHAI", "currency": "CNY", "key_id": "mf7463bt", "status": "active"}))]
pub struct CodeVerification {
    pub genuine: bool,
    pub kind: String,
    pub code_id: String,
    pub merchant_name: String,
    pub merchant_city: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    pub currency: String,
    pub key_id: String,
    /// `active`, `suspended` (reported tampered; QG-COMPLAINT-TAMPER-REPORTS), `revoked`, or the order's status.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// What the payer app shows before paying (BCP-MPM-RISK-PROMPT).
    pub risk_prompt: String,
}

/// Who pays a scanned code, and from where.
struct Payer<'a> {
    p: &'a Principal,
    customer: &'a str,
    source: &'a Source,
}

impl<S: Store> Gateway<S> {
    /// MPM: the consumer scanned a merchant's code and pays it.
    pub async fn pay_scanned(
        &self,
        p: &Principal,
        payload: &str,
        amount: Option<&str>,
        funding_source: Option<&str>,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let customer = p.customer()?.to_owned();
        let now = self.now();
        let verified = merchant::verify(payload, &self.public_keys(), now)?;
        let source = self.source_of(&customer, funding_source).await?;
        let payer = Payer {
            p,
            customer: &customer,
            source: &source,
        };
        match verified.code.kind {
            MerchantCodeKind::Static { code_id } => {
                self.pay_static(&payer, &code_id.to_string(), amount, idem)
                    .await
            }
            MerchantCodeKind::Dynamic {
                order_id,
                amount: code_amount,
                ..
            } => {
                self.pay_order(&payer, &order_id.to_string(), code_amount, amount, idem)
                    .await
            }
        }
    }

    /// A static code: the payer enters the amount; level D (BCP-LIMIT-D-STATIC).
    async fn pay_static(
        &self,
        payer: &Payer<'_>,
        code_id: &str,
        amount: Option<&str>,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let elements: Vec<Element> = Vec::new();
        let sc = self.store.static_code(code_id).await?.ok_or_else(|| {
            Error::new(
                Kind::Unprocessable,
                "code_unknown",
                "this code is not registered with the gateway",
            )
        })?;
        if sc.revoked_at.is_some() {
            return Err(Error::new(
                Kind::Unprocessable,
                "code_revoked",
                "the merchant revoked this code",
            ));
        }
        if sc.suspended_at.is_some() {
            return Err(crate::error::code_suspended());
        }
        let amount = amount.ok_or_else(|| {
            Error::bad_request(
                "amount_required",
                "a static code carries no amount: send the amount the customer entered",
            )
        })?;
        let amount = Money::parse_amount(amount, crate::CURRENCY)?;
        let merchant = self
            .merchant_row(&sc.merchant_id)
            .await?
            .ok_or_else(|| Error::internal("static code without merchant"))?;
        let level = risk::level(&elements, true);
        let sale = Sale {
            mode: Mode::MpmStatic,
            code_kind: None,
            merchant: &merchant,
            customer: payer.customer,
            amount,
            level,
            elements: &elements,
            source: payer.source,
            order: None,
            device: None,
            metadata: None,
            static_code: Some(&sc.id),
        };
        self.settle(payer.p, sale, None, None, idem).await
    }

    /// An order's code: the amount is the order's, and paying it burns the
    /// order (one payment an order).
    async fn pay_order(
        &self,
        payer: &Payer<'_>,
        order_id: &str,
        code_amount: Money,
        amount: Option<&str>,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let elements: Vec<Element> = Vec::new();
        let order = self.store.order(order_id).await?.ok_or_else(|| {
            Error::new(
                Kind::Unprocessable,
                "code_unknown",
                "this order is not registered with the gateway",
            )
        })?;
        if order.status != OrderStatus::Open.as_str() {
            return Err(Error::new(
                Kind::Conflict,
                "order_not_open",
                format!("order {} is {}", order.id, order.status),
            ));
        }
        if let Some(a) = amount {
            let sent = Money::parse_amount(a, crate::CURRENCY)?;
            if sent != code_amount {
                return Err(Error::bad_request(
                    "amount_mismatch",
                    format!("this order is for {code_amount}; omit amount or send exactly that"),
                ));
            }
        }
        let merchant = self
            .merchant_row(&order.merchant_id)
            .await?
            .ok_or_else(|| Error::internal("order without merchant"))?;
        let level = risk::level(&elements, false);
        let burn = CodeBurn {
            key: format!("order:{}", order.id),
            payment_id: None,
            expires_at: order.expires_at,
        };
        let sale = Sale {
            mode: Mode::MpmDynamic,
            code_kind: None,
            merchant: &merchant,
            customer: payer.customer,
            amount: code_amount,
            level,
            elements: &elements,
            source: payer.source,
            order: Some(&order),
            device: None,
            metadata: None,
            static_code: None,
        };
        self.settle(payer.p, sale, Some(burn), None, idem).await
    }

    /// Is this merchant code genuine, whose is it, is it still valid?
    pub async fn verify_code(&self, payload: &str) -> Result<CodeVerification, Error> {
        let v = merchant::verify(payload, &self.public_keys(), self.now())?;
        let d = &v.code.display;
        let mut verified = match v.code.kind {
            MerchantCodeKind::Static { code_id } => {
                let sc = self.store.static_code(&code_id.to_string()).await?;
                CodeVerification {
                    genuine: true,
                    kind: "static".into(),
                    code_id: code_id.to_string(),
                    merchant_name: d.name.clone(),
                    merchant_city: d.city.clone(),
                    amount: None,
                    currency: d.currency.code().into(),
                    key_id: v.key_id.to_string(),
                    status: match sc {
                        None => "unknown".into(),
                        Some(s) if s.revoked_at.is_some() => "revoked".into(),
                        Some(s) if s.suspended_at.is_some() => "suspended".into(),
                        Some(_) => "active".into(),
                    },
                    expires_at: None,
                    risk_prompt: String::new(),
                }
            }
            MerchantCodeKind::Dynamic {
                order_id,
                amount,
                expires_at,
                ..
            } => {
                let o = self.store.order(&order_id.to_string()).await?;
                CodeVerification {
                    genuine: true,
                    kind: "dynamic".into(),
                    code_id: order_id.to_string(),
                    merchant_name: d.name.clone(),
                    merchant_city: d.city.clone(),
                    amount: Some(amount.to_decimal_string()),
                    currency: d.currency.code().into(),
                    key_id: v.key_id.to_string(),
                    status: o.map_or_else(|| "unknown".into(), |o| o.status),
                    expires_at: Some(expires_at.to_rfc3339()),
                    risk_prompt: String::new(),
                }
            }
        };
        verified.risk_prompt = self.scan_prompt(&verified);
        Ok(verified)
    }

    /// BCP-MPM-RISK-PROMPT at scanning: who is paid, what to check, the limit.
    pub(super) fn scan_prompt(&self, v: &CodeVerification) -> String {
        let who = format!("{} ({})", v.merchant_name, v.merchant_city);
        match (v.kind.as_str(), v.status.as_str()) {
            ("static", "active") => format!(
                "You are paying {who} through a static code. Make sure this is the shop you are paying (a code can be stuck over another); payments through static codes are limited to {} a day.",
                crate::money(self.limits.daily_d)
            ),
            ("dynamic", "open") => format!(
                "You are paying {who} {} CNY for an order. Pay only if the amount is what you were asked.",
                v.amount.as_deref().unwrap_or("")
            ),
            (_, "revoked") => format!("{who} revoked this code: do not pay it."),
            (_, status) => format!("This code of {who} cannot be paid now ({status})."),
        }
    }
}
