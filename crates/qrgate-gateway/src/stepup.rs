//! Step-up verification. A dynamic payment over its level-C daily cap that
//! would fit level B's goes to `requires_action`, naming the elements that
//! would raise it (the payment PIN, and a device signature when the code did
//! not carry one). The payer confirms with them; a wrong PIN counts toward
//! lock-out and never completes the payment. Unconfirmed payments are
//! canceled after `QG-STEPUP-TTL`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use serde::Deserialize;
use serde_json::json;

use qrgate_codes::keyring::verify_ed25519;
use qrgate_core::risk::{self, Element, RiskLevel};
use qrgate_core::state::{OrderStatus, PaymentStatus};
use qrgate_core::{Money, Timestamp};
use qrgate_store::*;

use crate::funding::Source;
use crate::views::{Failure, PaymentView, amount as fmt_amount};
use crate::{Error, Gateway, Idem, Kind, Principal, Reply};

const CONFIRM_DOMAIN: &str = "qrgate-confirm-v1";

/// The bytes a device signs to confirm a payment.
pub fn confirmation_message(
    payment_id: &str,
    amount: &str,
    currency: &str,
    merchant_id: &str,
) -> Vec<u8> {
    format!("{CONFIRM_DOMAIN}\0{payment_id}\0{amount}\0{currency}\0{merchant_id}").into_bytes()
}

/// Appended to the confirmation message when the device asserts that its
/// biometric check (fingerprint, face) passed for this payment.
pub const BIOMETRIC_SUFFIX: &[u8] = b"\0biometric";

/// An enrolled key's Ed25519 signature over the payment's
/// [`confirmation_message`]: malformed base64 is a 400, a signature that does
/// not verify a 422 citing BCP-ELEMENTS; `code` names which element failed.
fn check_signature(
    public_key: &str,
    signature: &str,
    pay: &Payment,
    biometric: bool,
    code: &'static str,
    signer: &str,
) -> Result<(), Error> {
    let pk = URL_SAFE_NO_PAD
        .decode(public_key)
        .map_err(Error::internal)?;
    let sig = URL_SAFE_NO_PAD.decode(signature).map_err(|_| {
        Error::bad_request(code, format!("the {signer} signature must be base64url"))
    })?;
    let mut msg = confirmation_message(
        &pay.id,
        &fmt_amount(pay.amount_minor, &pay.currency),
        &pay.currency,
        &pay.merchant_id,
    );
    if biometric {
        msg.extend_from_slice(BIOMETRIC_SUFFIX);
    }
    verify_ed25519(&pk, &msg, &sig).map_err(|_| {
        Error::new(
            Kind::Unprocessable,
            code,
            format!("the {signer} signature does not verify over this payment"),
        )
        .with_rule("BCP-ELEMENTS")
    })
}

/// What a waiting payment asks of the payer: reach `target` with any one
/// of the element sets in `accepts` (the first is the suggested one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub target: RiskLevel,
    pub accepts: Vec<Vec<Element>>,
}

/// Whether a payment over its level-C cap can be stepped up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepUp {
    /// Yes: to this level, with any one of these sets of elements.
    Needs(Offer),
    /// No: the payer has nothing enrolled to step up with.
    NoPin,
    /// No: level B's daily cap has no room either (and level A is not
    /// available to this payer: no agreement or no certificate).
    LevelBFull { used: i64, cap: i64 },
    /// No: the payer could reach level A, but its daily cap has no room.
    LevelAFull { used: i64, cap: i64 },
}

impl StepUp {
    /// The refusal when a payment cannot be stepped up to a level with room.
    /// The limit only, never what the payer spent: a merchant reads it.
    pub(crate) fn refusal(&self, _amount: i64) -> Option<Error> {
        let (level, cap) = match self {
            StepUp::LevelBFull { cap, .. } => (RiskLevel::B, cap),
            StepUp::LevelAFull { cap, .. } => (RiskLevel::A, cap),
            _ => return None,
        };
        Some(
            Error::new(
                Kind::Declined,
                "limit_exceeded",
                format!(
                    "over the cap of the payment's level, and level {}'s cap of {cap} (minor units) would be passed too",
                    level.as_str()
                ),
            )
            .with_rule(level.daily_rule()),
        )
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"pin": "493817", "device_id": "dev_aaaaaaaaaaaaaaaaaaaaaaaaae", "device_signature": "x2Iq71kSwVNxgKX…"}))]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    pub pin: Option<String>,
    /// The enrolled device that signed the confirmation.
    pub device_id: Option<String>,
    /// Ed25519 over [`confirmation_message`], base64url.
    pub device_signature: Option<String>,
    /// The enrolled certificate that signed the confirmation (level A).
    pub certificate_id: Option<String>,
    /// Ed25519 by the certificate key over [`confirmation_message`], base64url.
    pub certificate_signature: Option<String>,
    /// The six-digit code of the enrolled authenticator app (TOTP).
    pub otp: Option<String>,
    /// The device asserts its biometric check passed: the device signature
    /// is then over the confirmation message followed by [`BIOMETRIC_SUFFIX`].
    pub biometric: Option<bool>,
}

impl<S: Store> Gateway<S> {
    /// What would raise this payment to level B, if B's daily cap has room
    /// and the payer can step up (has a PIN).
    pub(crate) async fn step_up_elements(
        &self,
        customer: &str,
        source: &Source,
        elements: &[Element],
        amount: i64,
        now: Timestamp,
        need_pin: bool,
    ) -> Result<StepUp, Error> {
        // Step-up is for payers who set it up: without a PIN, decline.
        if !self
            .store
            .credentials(customer)
            .await?
            .is_some_and(|c| c.has_pin())
        {
            return Ok(StepUp::NoPin);
        }
        let has_device = self
            .store
            .devices_of(customer)
            .await?
            .iter()
            .any(|d| d.status == "active");
        let has_otp = self.store.otp_enrollment(customer).await?.is_some();
        // Sets that make two classes with what is already proven; a
        // biometric is asserted inside a device signature, so it brings one.
        let mut accepts: Vec<Vec<Element>> = Vec::new();
        let mut offer = |set: &[Element]| {
            let mut add: Vec<Element> = set
                .iter()
                .copied()
                .filter(|e| {
                    *e == Element::DeviceSignature && set.contains(&Element::Biometric)
                        || !elements.contains(e)
                })
                .collect();
            let mut all = elements.to_vec();
            all.extend(add.iter().copied());
            add.dedup();
            if risk::level(&all, false) <= RiskLevel::B
                && !add.is_empty()
                && !accepts.contains(&add)
            {
                accepts.push(add);
            }
        };
        if has_device {
            offer(&[Element::Pin, Element::DeviceSignature]);
        }
        if has_otp {
            offer(&[Element::Pin, Element::OneTimePassword]);
        }
        if has_device {
            offer(&[Element::DeviceSignature, Element::Biometric]);
        }
        if need_pin {
            // Over the password-free count: only sets with the PIN will do.
            accepts.retain(|set| set.contains(&Element::Pin));
        }
        if accepts.is_empty() {
            return Ok(StepUp::NoPin);
        }
        let subject = source.cap_subject(customer);
        let b = self
            .daily_charge(customer, subject, RiskLevel::B, amount, now)
            .await?;
        let (b_used, _) = self.store.counter(&b.key).await?;
        if b_used.saturating_add(amount) <= self.limits.daily_b {
            return Ok(StepUp::Needs(Offer {
                target: RiskLevel::B,
                accepts,
            }));
        }
        // Level A: a customer with an agreed level-A cap and an active
        // certificate can prove PIN + certificate signature.
        let has_agreement = self
            .customer_row(customer)
            .await?
            .and_then(|c| c.level_a_cap)
            .is_some();
        let has_certificate = self
            .store
            .certificates_of(customer)
            .await?
            .iter()
            .any(|c| c.status == "active");
        if !(has_agreement && has_certificate) {
            return Ok(StepUp::LevelBFull {
                used: b_used,
                cap: self.limits.daily_b,
            });
        }
        let a = self
            .daily_charge(customer, subject, RiskLevel::A, amount, now)
            .await?;
        let (a_used, _) = self.store.counter(&a.key).await?;
        let a_cap = a.cap_amount.unwrap_or(0);
        if a_used.saturating_add(amount) > a_cap {
            return Ok(StepUp::LevelAFull {
                used: a_used,
                cap: a_cap,
            });
        }
        Ok(StepUp::Needs(Offer {
            target: RiskLevel::A,
            accepts: vec![vec![Element::Pin, Element::DigitalCertificate]],
        }))
    }

    /// Record a payment waiting for the payer's confirmation. The consumer
    /// code is burned now (single use); an order is only marked paid on
    /// confirmation, so it can still be paid if this one lapses.
    pub(crate) async fn require_action(
        &self,
        p: &Principal,
        merchant: &Merchant,
        mut waiting: Payment,
        offer: Offer,
        burn: Option<CodeBurn>,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let now = self.now();
        // From the payment's own creation time, so the deadline it shows is
        // exactly QG-STEPUP-TTL after the created_at it shows.
        let expires_at = waiting
            .created_at
            .checked_add_seconds(self.limits.stepup_ttl_seconds)
            .unwrap_or(waiting.created_at);
        let needed = offer.accepts.first().cloned().unwrap_or_default();
        waiting.details["next_action"] = json!({
            "type": "confirm",
            "elements": needed,
            "accepts": offer.accepts,
            "target_level": offer.target.as_str(),
            "expires_at": expires_at.to_rfc3339(),
            "expires_at_ms": expires_at.unix_millis(),
            "confirm_url": format!("/v1/payments/{}/confirm", waiting.id),
        });
        let view = PaymentView::of(&waiting, p.role);
        // Events go to the merchant: the merchant's view, whoever asked.
        let event_view = PaymentView::of(&waiting, crate::Role::Merchant);
        let body = serde_json::to_string(&view).map_err(Error::internal)?;
        let id = waiting.id.clone();
        let mut m = Movement::new(now);
        m.live_api_key = Some(p.key_id.clone());
        m.idempotency = idem.map(|i| i.record(201, body.clone()));
        m.burns
            .extend(burn.filter(|b| !b.key.starts_with("order:")));
        m.payment = Some(PaymentWrite::Insert(waiting));
        m.events.push(OutboxEvent {
            event_id: self.event_id()?,
            event_type: "payment.requires_action".into(),
            subject_id: id.clone(),
            payload: json!({ "merchant_id": merchant.id, "payment": event_view }),
        });
        m.audit = Some(AuditEntry {
            action: "payment.requires_action".into(),
            subject: id,
            details: json!({ "needed": needed, "by": p.key_id }),
        });
        Ok(Reply::of(self.store.apply(m).await?, 201, body))
    }

    /// The payer confirms a `requires_action` payment with the elements it names.
    pub async fn confirm(
        &self,
        p: &Principal,
        payment_id: &str,
        c: Confirmation,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let customer = p.customer()?.to_owned();
        let pay = self.payment_for(p, payment_id).await?;
        if pay.status != PaymentStatus::RequiresAction.as_str() {
            return Err(Error::new(
                Kind::Conflict,
                "payment_state_conflict",
                format!("payment {payment_id} is {}, nothing to confirm", pay.status),
            ));
        }
        let now = self.now();
        let next = pay.details.get("next_action").cloned().unwrap_or_default();
        let expires = next
            .get("expires_at_ms")
            .and_then(|v| v.as_i64())
            .map(Timestamp::from_unix_millis)
            .unwrap_or(now);
        if now >= expires {
            self.cancel_waiting(&pay, PaymentStatus::RequiresAction, "expired")
                .await?;
            return Err(Error::new(
                Kind::Conflict,
                "payment_expired",
                "the time to confirm this payment has passed; it was canceled",
            )
            .with_rule("QG-STEPUP-TTL"));
        }
        let needed: Vec<Element> =
            serde_json::from_value(next.get("elements").cloned().unwrap_or_default())
                .map_err(Error::internal)?;
        let accepts: Vec<Vec<Element>> = match next.get("accepts") {
            Some(a) => serde_json::from_value(a.clone()).map_err(Error::internal)?,
            None => vec![needed.clone()],
        };
        let target = match next.get("target_level").and_then(|t| t.as_str()) {
            Some("A") => RiskLevel::A,
            Some(_) => RiskLevel::B,
            None if needed.contains(&Element::DigitalCertificate) => RiskLevel::A,
            None => RiskLevel::B,
        };
        let mut proven: Vec<Element> =
            serde_json::from_value(pay.details.get("verification").cloned().unwrap_or_default())
                .map_err(Error::internal)?;
        // What the confirmation offers. Everything must be there before any
        // of it is checked, so a missing piece does not spend a PIN attempt.
        let device = match (c.device_id.as_deref(), c.device_signature.as_deref()) {
            (Some(id), Some(sig)) => Some((id, sig)),
            _ => None,
        };
        let certificate = match (
            c.certificate_id.as_deref(),
            c.certificate_signature.as_deref(),
        ) {
            (Some(id), Some(sig)) => Some((id, sig)),
            _ => None,
        };
        let biometric = c.biometric.unwrap_or(false);
        if biometric && device.is_none() {
            return Err(Error::bad_request(
                "device_signature_required",
                "a biometric is asserted inside the enrolled device's signature: send device_id and device_signature with biometric",
            ));
        }
        let mut offered = proven.clone();
        offered.extend(c.pin.as_ref().map(|_| Element::Pin));
        offered.extend(c.otp.as_ref().map(|_| Element::OneTimePassword));
        offered.extend(device.map(|_| Element::DeviceSignature));
        offered.extend(biometric.then_some(Element::Biometric));
        offered.extend(certificate.map(|_| Element::DigitalCertificate));
        if risk::level(&offered, false) > target {
            // Name the first missing element of the suggested set.
            let missing = needed.iter().find(|e| !offered.contains(e));
            let (code, what) = match missing {
                Some(Element::Pin) => ("pin_required", "the payment PIN"),
                Some(Element::DeviceSignature) => (
                    "device_signature_required",
                    "a signature from your enrolled device (device_id and device_signature)",
                ),
                Some(Element::DigitalCertificate) => (
                    "certificate_signature_required",
                    "a signature by your certificate (certificate_id and certificate_signature)",
                ),
                _ => ("elements_insufficient", "more verification elements"),
            };
            return Err(Error::bad_request(
                code,
                format!(
                    "this payment needs {what}; any one of these sets completes it: {}",
                    serde_json::to_string(&accepts).unwrap_or_default()
                ),
            )
            .with_rule("BCP-ELEMENTS"));
        }
        // The device is read (afresh: its status and biometric setting
        // change) before the PIN is tried, so a refusal here spends no
        // PIN attempt.
        let device_row = match device {
            Some((device_id, sig)) => {
                let d = self
                    .store
                    .device(device_id)
                    .await?
                    .filter(|d| d.customer_id == customer && d.status == "active")
                    .ok_or_else(|| {
                        Error::new(
                            Kind::Unprocessable,
                            "device_signature_invalid",
                            "unknown or revoked device",
                        )
                    })?;
                if biometric && d.biometric_at.is_none() {
                    return Err(Error::new(
                        Kind::Unprocessable,
                        "biometric_not_enabled",
                        "biometric confirmation is not turned on for this device (POST /v1/devices/{id}/biometric, with your PIN)",
                    )
                    .with_rule("BCP-ELEMENTS"));
                }
                Some((d, sig))
            }
            None => None,
        };
        // A blocked party is refused before its PIN is tried.
        if let Some(blocked) = self.blocked(&pay.merchant_id, &customer).await? {
            return Err(blocked);
        }
        // Every offered element must be proven. What needs no secret (the
        // signatures, the shape of a one-time password and that one is
        // enrolled) is checked first, so a refusal of it spends no attempt;
        // then the PIN and the one-time password (they count toward the
        // lock-out).
        if let Some((d, sig)) = &device_row {
            check_signature(
                &d.public_key,
                sig,
                &pay,
                biometric,
                "device_signature_invalid",
                "device",
            )?;
            proven.push(Element::DeviceSignature);
            if biometric {
                proven.push(Element::Biometric);
            }
        }
        if let Some((cert_id, sig)) = certificate {
            let cert = self
                .store
                .certificates_of(&customer)
                .await?
                .into_iter()
                .find(|x| x.id == cert_id && x.status == "active")
                .ok_or_else(|| {
                    Error::new(
                        Kind::Unprocessable,
                        "certificate_signature_invalid",
                        "unknown or revoked certificate for this customer",
                    )
                    .with_rule("BCP-ELEMENTS")
                })?;
            check_signature(
                &cert.public_key,
                sig,
                &pay,
                false,
                "certificate_signature_invalid",
                "certificate",
            )?;
            proven.push(Element::DigitalCertificate);
        }
        if let Some(otp) = c.otp.as_deref() {
            self.otp_can_be_tried(&customer, otp).await?;
        }
        if let Some(pin) = c.pin.as_deref() {
            self.check_pin(&customer, pin).await?;
            proven.push(Element::Pin);
        }
        if let Some(otp) = c.otp.as_deref() {
            self.check_otp(&customer, otp).await?;
            proven.push(Element::OneTimePassword);
        }
        // Everything offered is proven: the attempts this confirmation took
        // (a right PIN, a right one-time password) are failures no more.
        if c.pin.is_some() || c.otp.is_some() {
            self.store.pin_succeeded(&customer, now).await?;
        }
        proven.sort();
        proven.dedup();
        let level = risk::level(&proven, false);
        let amount = Money::from_minor(pay.amount_minor, crate::CURRENCY);
        let merchant = self
            .merchant_row(&pay.merchant_id)
            .await?
            .ok_or_else(|| Error::internal("payment without merchant"))?;
        let source = self.source_recorded(&customer, &pay.details).await?;

        let mut details = pay.details.clone();
        if let Some(o) = details.as_object_mut() {
            o.remove("next_action");
        }
        details["risk_level"] = json!(level.as_str());
        details["verification"] = json!(proven);
        let counters = self
            .funding_counters(
                &customer,
                &source,
                &merchant,
                level,
                &proven,
                amount.minor(),
                now,
            )
            .await?;
        let mut authorized = None;
        let mut from = PaymentStatus::RequiresAction;
        if let Source::Card(card) = &source {
            // Claim the payment before the processor is asked, so only one
            // confirmation authorizes the card; the attempt's own request
            // id (recorded with the claim) is the only one it may reverse.
            // The authorization taken when the payment was first tried was
            // reversed when it went to requires_action.
            let mut nonce = [0_u8; 8];
            self.rng.fill(&mut nonce).map_err(Error::internal)?;
            let request_id = format!("{payment_id}.confirm.{}", hex::encode(nonce));
            details["funding"]["request_id"] = json!(request_id);
            // The claim keeps the deadline (next_action) for the sweeper.
            let mut claimed = pay.details.clone();
            claimed["funding"]["request_id"] = json!(request_id);
            self.move_waiting(
                &pay,
                PaymentStatus::RequiresAction,
                PaymentStatus::Confirming,
                claimed,
            )
            .await?;
            from = PaymentStatus::Confirming;
            match self.authorize_card(&request_id, card, amount.minor()).await {
                Ok(authorization) => {
                    details["funding"]["authorization"] = json!(authorization);
                    authorized = Some(request_id);
                }
                Err(declined) => {
                    return self
                        .fail_waiting(p, &pay, from, &merchant, declined, now)
                        .await;
                }
            }
        }
        let mut done = pay.clone();
        done.status = PaymentStatus::Succeeded.as_str().into();
        done.details = details.clone();
        done.updated_at = now;
        let view = PaymentView::of(&done, p.role);
        let body = serde_json::to_string(&view).map_err(Error::internal)?;

        let mut m = Movement::new(now);
        // The block list was read from a copy: checked again here, and the
        // confirming device is still active when the money moves.
        m.unblocked = vec![merchant.id.clone(), customer.clone()];
        m.live_device = device_row.as_ref().map(|(d, _)| d.id.clone());
        m.idempotency = idem.clone().map(|i| i.record(200, body.clone()));
        m.counters = counters;
        m.posting =
            Some(self.payment_posting(payment_id, &customer, &source, &merchant.id, amount));
        from.transition(PaymentStatus::Succeeded)
            .map_err(Error::internal)?;
        m.payment = Some(PaymentWrite::Transition {
            id: payment_id.into(),
            from: from.as_str().into(),
            to: PaymentStatus::Succeeded.as_str().into(),
            details: Some(details.clone()),
        });
        if let Some(order_id) = details.get("order_id").and_then(|v| v.as_str()) {
            m.burns.push(CodeBurn {
                key: format!("order:{order_id}"),
                payment_id: Some(payment_id.into()),
                expires_at: expires,
            });
            m.order = Some(crate::order_move(
                order_id,
                OrderStatus::Open,
                OrderStatus::Paid,
                Some(payment_id.into()),
            )?);
        }
        m.events.push(OutboxEvent {
            event_id: self.event_id()?,
            event_type: "payment.succeeded".into(),
            subject_id: payment_id.into(),
            payload: json!({ "merchant_id": merchant.id, "payment": PaymentView::of(&done, crate::Role::Merchant) }),
        });
        m.audit = Some(AuditEntry {
            action: "payment.confirmed".into(),
            subject: payment_id.into(),
            details: json!({ "risk_level": level.as_str(), "verification": proven, "by": p.key_id }),
        });
        let result = self.store.apply(m).await;
        if let Some(request_id) = &authorized
            && !matches!(result, Ok(Applied::Done { .. }))
        {
            self.reverse_card(request_id).await;
        }
        let refusal = match result {
            Ok(Applied::Done { audit_seq }) => {
                return Ok(Reply::of(Applied::Done { audit_seq }, 200, body));
            }
            Err(
                e @ (MovementError::LimitExceeded { .. }
                | MovementError::InsufficientFunds { .. }
                | MovementError::OrderStateConflict { .. }
                | MovementError::CodeAlreadyUsed { .. }),
            ) => Error::from(e),
            other => {
                // Nothing was kept: give a claim back so the payer can try
                // again (if this fails too, the sweeper ends it at the
                // deadline).
                if from == PaymentStatus::Confirming
                    && let Err(e) = self
                        .move_waiting(
                            &pay,
                            from,
                            PaymentStatus::RequiresAction,
                            pay.details.clone(),
                        )
                        .await
                {
                    tracing::warn!(payment_id, error = %e, "could not give back a confirmation claim");
                }
                return match other {
                    Ok(applied) => Ok(Reply::of(applied, 200, body)),
                    Err(e) => Err(e.into()),
                };
            }
        };
        self.fail_waiting(p, &pay, from, &merchant, refusal, now)
            .await
    }

    /// Move a waiting payment between `from` and `to` (claiming it for a
    /// confirmation, or giving the claim back), with `details`; a payment
    /// no longer in `from` is a state conflict.
    async fn move_waiting(
        &self,
        pay: &Payment,
        from: PaymentStatus,
        to: PaymentStatus,
        details: serde_json::Value,
    ) -> Result<(), Error> {
        from.transition(to).map_err(Error::internal)?;
        let mut m = Movement::new(self.now());
        m.payment = Some(PaymentWrite::Transition {
            id: pay.id.clone(),
            from: from.as_str().into(),
            to: to.as_str().into(),
            details: Some(details),
        });
        match self.store.apply(m).await {
            Ok(_) => Ok(()),
            Err(MovementError::PaymentStateConflict { actual, .. }) => Err(Error::new(
                Kind::Conflict,
                "payment_state_conflict",
                format!("payment {} is {actual}, nothing to confirm", pay.id),
            )
            .with_rule("QG-ONE-OUTCOME")),
            Err(e) => Err(e.into()),
        }
    }

    /// Confirmed but refused (the cap filled up meanwhile, funds, the
    /// order went away, the card was declined): fail the waiting payment.
    async fn fail_waiting(
        &self,
        p: &Principal,
        pay: &Payment,
        from: PaymentStatus,
        merchant: &Merchant,
        refusal: Error,
        now: Timestamp,
    ) -> Result<Reply, Error> {
        let payment_id = pay.id.as_str();
        let mut failed_details = pay.details.clone();
        if let Some(o) = failed_details.as_object_mut() {
            o.remove("next_action");
        }
        failed_details["failure"] = serde_json::to_value(Failure {
            code: refusal.code.into(),
            message: refusal.message.clone(),
            rule: refusal.rule.clone(),
        })
        .map_err(Error::internal)?;
        from.transition(PaymentStatus::Failed)
            .map_err(Error::internal)?;
        let mut m = Movement::new(now);
        m.payment = Some(PaymentWrite::Transition {
            id: payment_id.into(),
            from: from.as_str().into(),
            to: PaymentStatus::Failed.as_str().into(),
            details: Some(failed_details),
        });
        m.events.push(OutboxEvent { event_id: self.event_id()?, event_type: "payment.failed".into(), subject_id: payment_id.into(), payload: json!({ "merchant_id": merchant.id, "payment_id": payment_id, "code": refusal.code }) });
        m.audit = Some(AuditEntry {
            action: "payment.failed".into(),
            subject: payment_id.into(),
            details: json!({ "code": refusal.code, "rule": refusal.rule, "by": p.key_id }),
        });
        self.store.apply(m).await?;
        Err(Error {
            payment_id: Some(payment_id.into()),
            ..refusal
        })
    }

    pub(crate) async fn cancel_waiting(
        &self,
        pay: &Payment,
        from: PaymentStatus,
        why: &str,
    ) -> Result<bool, Error> {
        let mut m = Movement::new(self.now());
        from.transition(PaymentStatus::Canceled)
            .map_err(Error::internal)?;
        let mut details = pay.details.clone();
        if let Some(o) = details.as_object_mut() {
            o.remove("next_action");
        }
        details["cancellation_reason"] = json!(why);
        m.payment = Some(PaymentWrite::Transition {
            id: pay.id.clone(),
            from: from.as_str().into(),
            to: PaymentStatus::Canceled.as_str().into(),
            details: Some(details),
        });
        m.events.push(OutboxEvent {
            event_id: self.event_id()?,
            event_type: "payment.canceled".into(),
            subject_id: pay.id.clone(),
            payload: json!({ "merchant_id": pay.merchant_id, "payment_id": pay.id, "reason": why }),
        });
        m.audit = Some(AuditEntry {
            action: "payment.canceled".into(),
            subject: pay.id.clone(),
            details: json!({ "reason": why }),
        });
        match self.store.apply(m).await {
            Ok(_) => Ok(true),
            Err(MovementError::PaymentStateConflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
