//! Paying: consumer-presented codes charged by the merchant (CPM), merchant
//! codes scanned and paid by the consumer (MPM, static and dynamic),
//! refunds to the original funding source, cancels, and reading payments.
//!
//! Every outcome that consumed a one-time code is recorded, failures too:
//! a declined payment burns its code (single use even when the payment
//! fails) and is stored as a `failed` payment with the rule that refused it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use serde_json::json;

use qrgate_codes::cpm::{Holder, TokenClaims, UnverifiedToken};
use qrgate_codes::merchant::{self, MerchantCodeKind};
use qrgate_codes::{cpm, numeric};
use qrgate_core::id::{DeviceId, PaymentId};
use qrgate_core::risk::{self, Element, RiskLevel};
use qrgate_core::state::{OrderStatus, PaymentStatus};
use qrgate_core::{Money, Timestamp};
use qrgate_store::*;

use crate::funding::Source;
use crate::risk::{Check, Decision};
use crate::stepup::StepUp;
use crate::views::{Failure, PaymentView};
use crate::{Error, Gateway, Idem, Kind, Principal, Reply, Role, settlement_account};

/// A payment code the gateway issued online, in both presentations.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"object": "payment_code", "numeric": "779204297617292862", "qr": "QRG:AEBGW3DJ…", "expires_at": "2026-11-25T13:28:48.000Z", "valid_seconds": 60}))]
pub struct PaymentCodeView {
    pub object: &'static str,
    /// 18 digits for 1D barcode scanners and manual entry.
    pub numeric: String,
    /// Signed token for the QR presentation.
    pub qr: String,
    pub expires_at: String,
    pub valid_seconds: u8,
}

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
    /// `active`, `revoked`, or the order's status.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// What the payer app shows before paying (BCP-MPM-RISK-PROMPT).
    pub risk_prompt: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub limit: Option<i64>,
    pub starting_after: Option<String>,
    pub status: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"object": "list", "data": [], "has_more": false}))]
pub struct PaymentList {
    pub object: &'static str,
    pub data: Vec<PaymentView>,
    pub has_more: bool,
}

/// The customer and proof behind a charged consumer code.
struct Payer {
    customer: String,
    elements: Vec<Element>,
    burn_key: String,
    burn_expires: Timestamp,
    code_kind: &'static str,
    device_id: Option<String>,
}

/// What is being paid: who pays whom, how much, at which risk level with
/// which proven elements, from which source, for which order.
#[derive(Clone, Copy)]
struct Sale<'a> {
    merchant: &'a Merchant,
    customer: &'a str,
    amount: Money,
    level: RiskLevel,
    elements: &'a [Element],
    source: &'a Source,
    order: Option<&'a Order>,
    /// The device that signed the payer's code: the movement checks it is
    /// still active (a revocation on any gateway stops its codes at once).
    device: Option<&'a str>,
    /// The static code scanned: the movement checks it is not revoked.
    static_code: Option<&'a str>,
}

impl<S: Store> Gateway<S> {
    /// A new event id; time-ordered like the other ids, so the outbox's
    /// unique index on it grows at one end instead of at a random page.
    pub(crate) fn event_id(&self) -> Result<String, Error> {
        Ok(self.new_id::<qrgate_core::id::kind::Event>()?.to_string())
    }

    /// Issue a one-time payment code online: an 18-digit number and a signed
    /// QR token, both valid for the catalogue's code validity, usable once
    /// between them.
    pub async fn issue_payment_code(&self, p: &Principal) -> Result<PaymentCodeView, Error> {
        let customer = p.customer()?.to_owned();
        let now = self.now();
        self.rate.draw(
            crate::limiter::Bucket::CodeIssue,
            &p.key_id,
            self.limits.rate_code_issue,
            now,
            true,
        )?;
        let ttl = self.limits.code_ttl_seconds;
        let numeric = numeric::generate(&self.rng)?;
        let expires_at = now
            .checked_add_seconds(i64::from(ttl))
            .ok_or_else(|| Error::internal("time overflow"))?;
        // The QR token's handle names the numeric code, so both burn as one.
        let n: u64 = numeric.parse().map_err(Error::internal)?;
        let mut handle = [0_u8; 16];
        handle[..8].copy_from_slice(&n.to_be_bytes());
        self.rng.fill(&mut handle[8..]).map_err(Error::internal)?;
        let qr = {
            let ring = self.keys_read();
            let kid = ring.active_kid().clone();
            let claims = TokenClaims::new(Holder::Gateway { kid, handle }, now, ttl, &self.rng)?;
            let (_, sig) = ring.sign(&claims.signing_message());
            claims.encode(&sig)
        };
        self.store
            .insert(Record::IssuedCode(IssuedCode {
                code: numeric.clone(),
                customer_id: customer,
                device_id: None,
                expires_at,
                created_at: now,
            }))
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists(_) => Error::new(
                    Kind::Unavailable,
                    "service_unavailable",
                    "code collision; request a new code",
                ),
                other => other.into(),
            })?;
        Ok(PaymentCodeView {
            object: "payment_code",
            numeric,
            qr,
            expires_at: expires_at.to_rfc3339(),
            valid_seconds: ttl,
        })
    }

    /// [`Self::payer_of`] for a merchant's charge, with the brake on guessing
    /// numeric codes (QG-RATE-UNKNOWN-CODE): once the merchant key has
    /// charged too many unknown ones this minute, numeric charges wait.
    async fn payer_of_for(
        &self,
        p: &Principal,
        code: &str,
        now: Timestamp,
    ) -> Result<Payer, Error> {
        let numeric = code.trim().bytes().all(|b| b.is_ascii_digit());
        let limit = self.limits.rate_unknown_code;
        let bucket = crate::limiter::Bucket::UnknownCode;
        // Taken before the look-up (so guesses sent at once cannot all pass
        // a check), and given back when the code is known after all.
        if numeric {
            self.rate.draw(bucket, &p.key_id, limit, now, true)?;
        }
        let found = self.payer_of(code, now).await;
        if numeric && !matches!(&found, Err(e) if e.code == "payment_code_unknown") {
            self.rate.give_back(bucket, &p.key_id, now);
        }
        found
    }

    /// Identify the payer of a consumer code and what proves it, before any
    /// database write. Signatures are checked here, outside the transaction.
    async fn payer_of(&self, code: &str, now: Timestamp) -> Result<Payer, Error> {
        let code = code.trim();
        if code.starts_with(cpm::PREFIX) {
            let token = UnverifiedToken::decode(code)?;
            let skew = cpm::DEFAULT_MAX_FUTURE_SKEW_MS;
            match &token.claims.holder {
                Holder::Device { sealed } => {
                    let unknown = || {
                        Error::new(
                            Kind::Unprocessable,
                            "payment_code_unknown_key",
                            "the code was signed by a device this gateway does not know",
                        )
                    };
                    // A handle this gateway did not seal names no device.
                    let device = self.handle_key.open(sealed).map_err(|_| unknown())?;
                    let device_id = DeviceId::from_bytes(device).to_string();
                    let d = self.device_row(&device_id).await?.ok_or_else(unknown)?;
                    // The status of a cached row may be stale: the movement
                    // checks it again (Movement::live_device).
                    if d.status != "active" {
                        return Err(Error::new(
                            Kind::Unprocessable,
                            "device_revoked",
                            "the device that made this code is revoked",
                        )
                        .with_rule("QG-CREDENTIALS"));
                    }
                    let pk = URL_SAFE_NO_PAD
                        .decode(&d.public_key)
                        .map_err(Error::internal)?;
                    let claims = token.verify(&pk, now, skew)?;
                    Ok(Payer {
                        customer: d.customer_id,
                        elements: vec![Element::DeviceSignature],
                        burn_key: format!(
                            "cpm:{device_id}:{}:{}",
                            claims.issued_at_seconds,
                            hex::encode(claims.nonce)
                        ),
                        burn_expires: claims.expires_at(),
                        code_kind: "qr_token_device",
                        device_id: Some(device_id),
                    })
                }
                Holder::Gateway { kid, .. } => {
                    let public = self.public_keys();
                    let key = public.keys.iter().find(|k| &k.kid == kid).ok_or_else(|| {
                        Error::new(
                            Kind::Unprocessable,
                            "payment_code_unknown_key",
                            "the code was signed by a key this gateway does not know",
                        )
                    })?;
                    if key.state == qrgate_codes::keyring::KeyState::Retired {
                        return Err(Error::new(
                            Kind::Unprocessable,
                            "payment_code_unknown_key",
                            "the code was signed by a retired key",
                        ));
                    }
                    let raw = key
                        .raw()
                        .ok_or_else(|| Error::internal("bad stored public key"))?;
                    let claims = token.verify(&raw, now, skew)?;
                    let Holder::Gateway { handle, .. } = claims.holder else {
                        return Err(Error::internal("the verified holder changed"));
                    };
                    let mut n = [0_u8; 8];
                    n.copy_from_slice(&handle[..8]);
                    let numeric = format!("{:018}", u64::from_be_bytes(n));
                    self.issued_payer(&numeric, now, "qr_token_gateway").await
                }
            }
        } else if code.bytes().all(|b| b.is_ascii_digit()) && !code.is_empty() {
            numeric::validate(code)?;
            self.issued_payer(code, now, "numeric").await
        } else {
            Err(Error::bad_request(
                "payment_code_malformed",
                "auth_code must be the consumer's 18-digit payment code or its QR token (QRG:…)",
            ))
        }
    }

    async fn issued_payer(
        &self,
        numeric: &str,
        now: Timestamp,
        kind: &'static str,
    ) -> Result<Payer, Error> {
        let issued = self.store.issued_code(numeric).await?.ok_or_else(|| {
            Error::new(
                Kind::Unprocessable,
                "payment_code_unknown",
                "no such payment code: ask the customer to refresh it",
            )
        })?;
        if now >= issued.expires_at {
            return Err(Error::new(
                Kind::Unprocessable,
                "payment_code_expired",
                format!("payment code expired at {}", issued.expires_at),
            )
            .with_rule("BCP-CODE-TTL"));
        }
        // Issued online to an authenticated app: no element is proven at payment time.
        Ok(Payer {
            customer: issued.customer_id,
            elements: Vec::new(),
            burn_key: format!("issued:{numeric}"),
            burn_expires: issued.expires_at,
            code_kind: kind,
            device_id: issued.device_id,
        })
    }

    /// The daily cap of `level`, counted for `subject`: the customer (all
    /// wallet payments together) or one card.
    pub(crate) async fn daily_charge(
        &self,
        customer: &str,
        subject: &str,
        level: RiskLevel,
        amount: i64,
        now: Timestamp,
    ) -> Result<CounterCharge, Error> {
        let cap = match level {
            RiskLevel::A => {
                let c = self.customer_row(customer).await?;
                c.and_then(|c| c.level_a_cap).unwrap_or(self.limits.daily_b)
            }
            RiskLevel::B => self.limits.daily_b,
            RiskLevel::C => self.limits.daily_c,
            RiskLevel::D => self.limits.daily_d,
        };
        Ok(CounterCharge {
            key: format!(
                "daily:{subject}:{}:{}",
                level.as_str(),
                now.business_date(self.limits.business_offset_minutes)
            ),
            amount_minor: amount,
            uses: 1,
            cap_amount: Some(cap),
            cap_uses: None,
            rule: level.daily_rule().into(),
        })
    }

    /// 43: a wallet-balance payment also stays within its account class's cap.
    pub(crate) async fn class_charge(
        &self,
        customer: &str,
        amount: i64,
        now: Timestamp,
    ) -> Result<CounterCharge, Error> {
        let c = self
            .customer_row(customer)
            .await?
            .ok_or_else(|| Error::not_found("customer", customer))?;
        let year = now
            .business_date(self.limits.business_offset_minutes)
            .chars()
            .take(4)
            .collect::<String>();
        let (key, cap, rule) = match c.account_class.as_str() {
            "I" => (
                format!("class:{customer}:I:total"),
                self.limits.class_i_total,
                "BCP-ACCT-CLASS-I",
            ),
            "II" => (
                format!("class:{customer}:II:{year}"),
                self.limits.class_ii_yearly,
                "BCP-ACCT-CLASS-II",
            ),
            "III" => (
                format!("class:{customer}:III:{year}"),
                self.limits.class_iii_yearly,
                "BCP-ACCT-CLASS-III",
            ),
            other => {
                return Err(Error::internal(format!(
                    "customer {customer} has account class {other:?}"
                )));
            }
        };
        Ok(CounterCharge {
            key,
            amount_minor: amount,
            uses: 1,
            cap_amount: Some(cap),
            cap_uses: None,
            rule: rule.into(),
        })
    }

    /// Build and apply a payment: on a refusal that consumed the code, record
    /// the failed payment (burning the code) and answer with the refusal.
    /// A card is authorized before the movement and reversed if the
    /// movement is refused.
    async fn settle(
        &self,
        p: &Principal,
        sale: Sale<'_>,
        burn: Option<CodeBurn>,
        mut details: serde_json::Value,
        out_trade_no: Option<String>,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let Sale {
            merchant,
            customer,
            amount,
            level,
            elements,
            source,
            order,
            ..
        } = sale;
        let now = self.now();
        let id: PaymentId = self.new_id()?;
        let id = id.to_string();
        details["risk_level"] = json!(level.as_str());
        details["verification"] = json!(elements);
        details["merchant_name"] = json!(merchant.name);
        details["funding_account"] = json!(self.source_account(customer, source));
        details["funding"] = self.source_details(source);
        details["settlement_account"] = json!(settlement_account(&merchant.id));
        if level == RiskLevel::C && *source == Source::Wallet {
            // 43: the institution compensates level-C balance-payment losses in full.
            details["compensation_eligible"] = json!(true);
        }
        let row = |status: &str, details: serde_json::Value| Payment {
            id: id.clone(),
            merchant_id: merchant.id.clone(),
            customer_id: Some(customer.to_owned()),
            status: status.into(),
            amount_minor: amount.minor(),
            currency: "CNY".into(),
            refunded_minor: 0,
            out_trade_no: out_trade_no.clone(),
            details,
            created_at: now,
            updated_at: now,
        };
        let refusal = match self
            .try_settle(p, &sale, &burn, &mut details, &row, &idem)
            .await?
        {
            Ok(reply) => return Ok(reply),
            Err(refusal) => refusal,
        };
        // Over the level-C cap but within level B's, or over the
        // password-free count: ask the payer to step up.
        let mut refusal = refusal;
        let password_free = refusal.rule.as_deref() == Some("BCP-PASSWORD-FREE-COUNT");
        if level == RiskLevel::C
            && (refusal.rule.as_deref() == Some(level.daily_rule()) || password_free)
        {
            match self
                .step_up_elements(
                    customer,
                    source,
                    elements,
                    amount.minor(),
                    now,
                    password_free,
                )
                .await?
            {
                StepUp::Needs(offer) => {
                    record_check(
                        &mut details,
                        Check::new(
                            refusal.rule.as_deref().unwrap_or_default(),
                            Decision::StepUp,
                            refusal.message.clone(),
                        ),
                    );
                    if let Some(f) = details.get_mut("funding").and_then(|f| f.as_object_mut()) {
                        // The confirmation authorizes the card afresh.
                        f.remove("request_id");
                        f.remove("authorization");
                        f.remove("reversed");
                    }
                    let waiting = row(PaymentStatus::RequiresAction.as_str(), details.clone());
                    return self
                        .require_action(p, merchant, waiting, offer, burn, idem)
                        .await;
                }
                // Even a stronger verification would not fit: cite the level-B cap.
                full @ (StepUp::LevelBFull { .. } | StepUp::LevelAFull { .. }) => {
                    if let Some(e) = full.refusal(amount.minor()) {
                        refusal = e;
                    }
                }
                StepUp::NoPin => {}
            }
        }
        // Declined: record it. A payment code stays burned (single use even
        // on failure); an order stays payable until it is paid, expires or
        // is closed. Nothing else moves.
        let Some(burn) = burn else {
            return Err(refusal);
        };
        let burn = Some(burn).filter(|_| order.is_none());
        record_check(
            &mut details,
            Check::new(
                refusal.rule.as_deref().unwrap_or(refusal.code),
                Decision::Decline,
                refusal.message.clone(),
            ),
        );
        details["failure"] = serde_json::to_value(Failure {
            code: refusal.code.into(),
            message: refusal.message.clone(),
            rule: refusal.rule.clone(),
        })
        .map_err(Error::internal)?;
        let failed = row(PaymentStatus::Failed.as_str(), details);
        let mut err_body = serde_json::json!({ "error": { "code": refusal.code, "message": refusal.message, "payment_id": id } });
        // The request id is added when the stored answer is replayed.
        if let Some(r) = &refusal.rule {
            err_body["error"]["rule"] = json!(r);
        }
        let status = match refusal.kind {
            Kind::Declined => 402,
            _ => 422,
        };
        let mut m = Movement::new(now);
        m.live_api_key = Some(p.key_id.clone());
        m.idempotency = idem.map(|i| i.record(status, err_body.to_string()));
        m.burns.extend(burn);
        // Events go to the merchant: the merchant's view, whoever asked.
        let fview = PaymentView::of(&failed, Role::Merchant);
        m.payment = Some(PaymentWrite::Insert(failed));
        m.events.push(OutboxEvent {
            event_id: self.event_id()?,
            event_type: "payment.failed".into(),
            subject_id: id.clone(),
            payload: json!({ "merchant_id": merchant.id, "payment": fview }),
        });
        m.audit = Some(AuditEntry {
            action: "payment.failed".into(),
            subject: id.clone(),
            details: json!({ "merchant_id": merchant.id, "amount_minor": amount.minor(), "code": refusal.code, "rule": refusal.rule, "by": p.key_id }),
        });
        match self.store.apply(m).await {
            Ok(Applied::Done { .. }) => Err(Error {
                payment_id: Some(id),
                ..refusal
            }),
            Ok(Applied::Replayed { status, body }) => Ok(Reply {
                status,
                body,
                replayed: true,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The successful path of [`settle`](Self::settle): block list, card
    /// authorization, then the movement. `Ok(Err(refusal))` when the payment
    /// is refused in a way that is recorded (the code is burned); a card
    /// authorization is reversed before a refusal is returned.
    async fn try_settle(
        &self,
        p: &Principal,
        sale: &Sale<'_>,
        burn: &Option<CodeBurn>,
        details: &mut serde_json::Value,
        row: &(dyn Fn(&str, serde_json::Value) -> Payment + Sync),
        idem: &Option<Idem>,
    ) -> Result<Result<Reply, Error>, Error> {
        let &Sale {
            merchant,
            customer,
            amount,
            level,
            elements,
            source,
            order,
            device,
            static_code,
        } = sale;
        if let Some(blocked) = self.blocked(&merchant.id, customer).await? {
            return Ok(Err(blocked));
        }
        if let Some(cap) = self.txn_cap(merchant).filter(|c| amount.minor() > *c) {
            return Ok(Err(Error::new(
                Kind::Declined,
                "limit_exceeded",
                format!(
                    "a single payment to this merchant is at most {} CNY",
                    crate::views::amount(cap, "CNY")
                ),
            )
            .with_rule("BCP-TXN-CAP")));
        }
        let now = self.now();
        let mut checks = vec![Check::new(
            "QG-BLOCKLIST",
            Decision::Allow,
            "neither party is blocked",
        )];
        if let Some(cap) = self.txn_cap(merchant) {
            checks.push(Check::new(
                "BCP-TXN-CAP",
                Decision::Allow,
                format!("within {} CNY a payment", crate::views::amount(cap, "CNY")),
            ));
        }
        if let Some(n) = self.limits.velocity_per_minute {
            checks.push(Check::new(
                "QG-VELOCITY-CUSTOMER",
                Decision::Allow,
                format!("at most {n} payments a minute"),
            ));
        }
        checks.extend(
            self.review_checks(merchant, customer, amount.minor(), now)
                .await?,
        );
        let flags: Vec<&str> = checks
            .iter()
            .filter(|c| c.decision == Decision::FlagForReview)
            .map(|c| c.rule.as_str())
            .collect();
        let flags = json!(flags);
        details["risk_checks"] = json!(checks);
        let counters = self
            .funding_counters(
                customer,
                source,
                merchant,
                level,
                elements,
                amount.minor(),
                now,
            )
            .await?;
        let ok_row = row(PaymentStatus::Succeeded.as_str(), details.clone());
        let id = ok_row.id.clone();
        let mut authorized = false;
        if let Source::Card(card) = source {
            details["funding"]["request_id"] = json!(id);
            match self.authorize_card(&id, card, amount.minor()).await {
                Ok(authorization) => {
                    details["funding"]["authorization"] = json!(authorization);
                    authorized = true;
                }
                Err(declined) => {
                    if declined.code == "card_processor_timeout" {
                        // authorize_card reversed the unanswered authorization.
                        details["funding"]["reversed"] = json!(true);
                    }
                    return Ok(Err(declined));
                }
            }
        }
        let ok_row = Payment {
            details: details.clone(),
            ..ok_row
        };
        let view = PaymentView::of(&ok_row, p.role);
        // Events go to the merchant: the merchant's view, whoever asked.
        let event_view = PaymentView::of(&ok_row, Role::Merchant);
        let body = serde_json::to_string(&view).map_err(Error::internal)?;
        let mut m = Movement::new(now);
        // The key and the block list were read from copies: checked again here.
        m.live_api_key = Some(p.key_id.clone());
        m.live_device = device.map(str::to_owned);
        m.live_static_code = static_code.map(str::to_owned);
        m.unblocked = vec![merchant.id.clone(), customer.to_owned()];
        m.idempotency = idem.clone().map(|i| i.record(201, body.clone()));
        m.burns.extend(burn.clone());
        m.counters = counters;
        m.posting = Some(self.payment_posting(&id, customer, source, &merchant.id, amount));
        m.payment = Some(PaymentWrite::Insert(ok_row));
        m.order = order
            .map(|o| {
                crate::order_move(
                    &o.id,
                    OrderStatus::Open,
                    OrderStatus::Paid,
                    Some(id.clone()),
                )
            })
            .transpose()?;
        let payload = json!({ "merchant_id": merchant.id, "payment": event_view });
        m.events.push(OutboxEvent {
            event_id: self.event_id()?,
            event_type: "payment.succeeded".into(),
            subject_id: id.clone(),
            payload,
        });
        m.audit = Some(AuditEntry {
            action: "payment.succeeded".into(),
            subject: id.clone(),
            details: json!({ "merchant_id": merchant.id, "amount_minor": amount.minor(), "risk_level": level.as_str(), "funding": details["funding"], "flags": flags, "by": p.key_id }),
        });
        let result = self.store.apply(m).await;
        if authorized && !matches!(result, Ok(Applied::Done { .. })) {
            // Refused, replayed or failed: this authorization must not settle.
            self.reverse_card(&id).await;
            details["funding"]["reversed"] = json!(true);
        }
        match result {
            Ok(applied) => Ok(Ok(Reply::of(applied, 201, body))),
            Err(
                e @ (MovementError::LimitExceeded { .. }
                | MovementError::InsufficientFunds { .. }
                | MovementError::PartyBlocked { .. }),
            ) => Ok(Err(Error::from(e))),
            Err(e) => Err(e.into()),
        }
    }

    /// The ledger posting of a payment: from its source to the merchant.
    pub(crate) fn payment_posting(
        &self,
        payment_id: &str,
        customer: &str,
        source: &Source,
        merchant_id: &str,
        amount: Money,
    ) -> Posting {
        Posting {
            id: format!("pst_{payment_id}"),
            kind: "payment".into(),
            payment_id: Some(payment_id.into()),
            entries: vec![
                Entry {
                    account_id: self.source_account(customer, source),
                    amount_minor: -amount.minor(),
                    currency: "CNY".into(),
                },
                Entry {
                    account_id: settlement_account(merchant_id),
                    amount_minor: amount.minor(),
                    currency: "CNY".into(),
                },
            ],
        }
    }

    /// CPM: the merchant's cashier scanned the consumer's payment code.
    pub async fn charge(
        &self,
        p: &Principal,
        auth_code: &str,
        amount: &str,
        out_trade_no: Option<String>,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let merchant_id = p.merchant()?.to_owned();
        if let Some(n) = &out_trade_no {
            crate::check_merchant_number("out_trade_no", n)?;
        }
        let amount = Money::parse_amount(amount, crate::CURRENCY)?;
        let merchant = self
            .merchant_row(&merchant_id)
            .await?
            .ok_or_else(|| Error::not_found("merchant", &merchant_id))?;
        let now = self.now();
        let payer = self.payer_of_for(p, auth_code, now).await?;
        let level = risk::level(&payer.elements, false);
        let burn = CodeBurn {
            key: payer.burn_key.clone(),
            payment_id: None,
            expires_at: payer.burn_expires,
        };
        let details =
            json!({ "mode": "cpm", "code_kind": payer.code_kind, "device_id": payer.device_id });
        let sale = Sale {
            merchant: &merchant,
            customer: &payer.customer,
            amount,
            level,
            elements: &payer.elements,
            source: &Source::Wallet,
            order: None,
            device: payer.device_id.as_deref(),
            static_code: None,
        };
        self.settle(p, sale, Some(burn), details, out_trade_no, idem)
            .await
    }

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
        let elements: Vec<Element> = Vec::new();
        match verified.code.kind {
            MerchantCodeKind::Static { code_id } => {
                let sc = self
                    .store
                    .static_code(&code_id.to_string())
                    .await?
                    .ok_or_else(|| {
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
                let details = json!({ "mode": "mpm_static", "static_code_id": sc.id });
                let sale = Sale {
                    merchant: &merchant,
                    customer: &customer,
                    amount,
                    level,
                    elements: &elements,
                    source: &source,
                    order: None,
                    device: None,
                    static_code: Some(&sc.id),
                };
                self.settle(p, sale, None, details, None, idem).await
            }
            MerchantCodeKind::Dynamic {
                order_id,
                amount: code_amount,
                ..
            } => {
                let order = self
                    .store
                    .order(&order_id.to_string())
                    .await?
                    .ok_or_else(|| {
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
                            format!(
                                "this order is for {} CNY; omit amount or send exactly that",
                                code_amount.to_decimal_string()
                            ),
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
                let mut details = json!({ "mode": "mpm_dynamic", "order_id": order.id });
                if let Some(n) = &order.out_trade_no {
                    // The order holds the merchant's number; a failed or
                    // lapsed attempt must not take it from the next one.
                    details["out_trade_no"] = json!(n);
                }
                let sale = Sale {
                    merchant: &merchant,
                    customer: &customer,
                    amount: code_amount,
                    level,
                    elements: &elements,
                    source: &source,
                    order: Some(&order),
                    device: None,
                    static_code: None,
                };
                self.settle(p, sale, Some(burn), details, None, idem).await
            }
        }
    }

    /// Load a payment the principal may see; others' payments answer 404
    /// exactly like missing ones (rule QG-TENANCY).
    pub async fn payment_for(&self, p: &Principal, id: &str) -> Result<Payment, Error> {
        let pay = self
            .store
            .payment(id)
            .await?
            .ok_or_else(|| Error::not_found("payment", id))?;
        let visible = match p.role {
            Role::Admin | Role::Auditor => true,
            Role::Merchant => p.subject.as_deref() == Some(pay.merchant_id.as_str()),
            Role::Consumer => p.subject.is_some() && p.subject == pay.customer_id,
        };
        if !visible {
            return Err(Error::not_found("payment", id));
        }
        Ok(pay)
    }

    pub async fn get_payment(&self, p: &Principal, id: &str) -> Result<PaymentView, Error> {
        Ok(PaymentView::of(&self.payment_for(p, id).await?, p.role))
    }

    pub async fn list_payments(&self, p: &Principal, q: ListQuery) -> Result<PaymentList, Error> {
        let mut query = PaymentQuery {
            limit: q.limit.unwrap_or(20),
            status: q.status,
            ..Default::default()
        };
        if !(1..=100).contains(&query.limit) {
            return Err(Error::bad_request(
                "invalid_request",
                "limit must be 1 to 100",
            ));
        }
        match p.role {
            Role::Merchant => query.merchant_id = p.subject.clone(),
            Role::Consumer => query.customer_id = p.subject.clone(),
            Role::Admin | Role::Auditor => {}
        }
        if let Some(after) = &q.starting_after {
            // The cursor must be a payment this principal can see.
            self.payment_for(p, after).await?;
            query.starting_after = Some(after.clone());
        }
        let (rows, has_more) = self.store.list_payments(query).await?;
        Ok(PaymentList {
            object: "list",
            data: rows.iter().map(|r| PaymentView::of(r, p.role)).collect(),
            has_more,
        })
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
    fn scan_prompt(&self, v: &CodeVerification) -> String {
        let who = format!("{} ({})", v.merchant_name, v.merchant_city);
        match (v.kind.as_str(), v.status.as_str()) {
            ("static", "active") => format!(
                "You are paying {who} through a static code. Make sure this is the shop you are paying (a code can be stuck over another); payments through static codes are limited to {} CNY a day.",
                crate::views::amount(self.limits.daily_d, "CNY")
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

/// Record a decisive check on a payment's details, replacing an earlier
/// entry of the same rule (an `allow` noted before the store refused it).
fn record_check(details: &mut serde_json::Value, check: Check) {
    let mut checks: Vec<Check> = details
        .get("risk_checks")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    checks.retain(|c| c.rule != check.rule);
    checks.push(check);
    details["risk_checks"] = json!(checks);
}
