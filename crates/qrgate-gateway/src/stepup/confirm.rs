//! Confirming a `requires_action` payment: the payer offers the elements
//! its next action names, each is proven (those that spend no attempt
//! first), and the money moves in one movement at the level reached, or
//! the payment fails with the rule that refused it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use serde::Deserialize;
use serde_json::json;

use qrgate_codes::keyring::verify_ed25519;
use qrgate_core::payment::{NextAction, PaymentDetails};
use qrgate_core::risk::{self, Element};
use qrgate_core::state::{CredentialStatus, OrderStatus, PaymentStatus};
use qrgate_core::{Money, Timestamp};
use qrgate_store::*;

use crate::events::Event;
use crate::funding::{Counted, Source};
use crate::trail::{self, Action};
use crate::views::{PaymentView, amount as fmt_amount};
use crate::{Error, Fresh, Gateway, Idem, Kind, Outcome, Principal, Reply};

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
        &fmt_amount(pay.amount_minor, pay.currency),
        pay.currency.code(),
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

/// What a confirmation offers, read from the request before anything is checked.
struct Offered<'a> {
    pin: Option<&'a str>,
    otp: Option<&'a str>,
    device: Option<(&'a str, &'a str)>,
    certificate: Option<(&'a str, &'a str)>,
    biometric: bool,
}

/// What a confirmation proved, and with which device.
/// What a confirmation reached, for its movement.
struct Reached<'a> {
    merchant: &'a Merchant,
    customer: &'a str,
    source: &'a Source,
    proven: &'a [Element],
    /// The confirming device, which must still be active.
    device: Option<String>,
    /// The state the payment moves from (confirming when a hold was taken).
    from: PaymentStatus,
    /// Until when an order's payment burn is kept.
    expires: Timestamp,
    at: Timestamp,
}

struct Proof {
    customer: String,
    proven: Vec<Element>,
    device: Option<Device>,
}

impl<'a> Offered<'a> {
    /// What the request offers; a biometric is asserted inside a device
    /// signature, so it needs one.
    fn of(c: &'a Confirmation) -> Result<Offered<'a>, Error> {
        let device = c.device_id.as_deref().zip(c.device_signature.as_deref());
        let certificate = c
            .certificate_id
            .as_deref()
            .zip(c.certificate_signature.as_deref());
        let biometric = c.biometric.unwrap_or(false);
        if biometric && device.is_none() {
            return Err(Error::bad_request(
                "device_signature_required",
                "a biometric is asserted inside the enrolled device's signature: send device_id and device_signature with biometric",
            ));
        }
        Ok(Offered {
            pin: c.pin.as_deref(),
            otp: c.otp.as_deref(),
            device,
            certificate,
            biometric,
        })
    }

    /// Everything offered, with what is already `proven`, reaches the
    /// target of `next`. Checked before any of it is, so a missing piece
    /// spends no PIN attempt.
    fn suffices(&self, proven: &[Element], next: &NextAction) -> Result<(), Error> {
        let mut offered = proven.to_vec();
        offered.extend(self.pin.map(|_| Element::Pin));
        offered.extend(self.otp.map(|_| Element::OneTimePassword));
        offered.extend(self.device.map(|_| Element::DeviceSignature));
        offered.extend(self.biometric.then_some(Element::Biometric));
        offered.extend(self.certificate.map(|_| Element::DigitalCertificate));
        if risk::level(&offered, false) <= next.target() {
            return Ok(());
        }
        // Name the first missing element of the suggested set.
        let missing = next.elements.iter().find(|e| !offered.contains(e));
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
        Err(Error::bad_request(
            code,
            format!(
                "this payment needs {what}; any one of these sets completes it: {}",
                serde_json::to_string(&next.accepted()).unwrap_or_default()
            ),
        )
        .with_rule("BCP-ELEMENTS"))
    }
}

impl<S: Store> Gateway<S> {
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
        let next = self.still_waiting(&pay).await?;
        let offered = Offered::of(&c)?;
        offered.suffices(&pay.details.verification, &next)?;
        let proof = self.prove(&customer, &pay, &offered).await?;
        self.complete(p, &pay, proof, next.deadline(), idem).await
    }

    /// What a waiting payment asks for; one past its deadline is canceled.
    async fn still_waiting(&self, pay: &Payment) -> Result<NextAction, Error> {
        if pay.status != PaymentStatus::RequiresAction {
            return Err(Error::new(
                Kind::Conflict,
                "payment_state_conflict",
                format!("payment {} is {}, nothing to confirm", pay.id, pay.status),
            ));
        }
        let now = self.now();
        match &pay.details.next_action {
            Some(next) if now < next.deadline() => Ok(next.clone()),
            _ => {
                self.cancel_waiting(pay, PaymentStatus::RequiresAction, "expired")
                    .await?;
                Err(Error::new(
                    Kind::Conflict,
                    "payment_expired",
                    "the time to confirm this payment has passed; it was canceled",
                )
                .with_rule("QG-STEPUP-TTL"))
            }
        }
    }

    /// Prove every offered element. What needs no secret (the device is
    /// read afresh, the signatures, the shape of a one-time password and
    /// that one is enrolled) is checked first, so a refusal of it spends no
    /// attempt; then the PIN and the one-time password, which count toward
    /// the lock-out. A blocked party is refused before its PIN is tried.
    async fn prove(
        &self,
        customer: &str,
        pay: &Payment,
        offered: &Offered<'_>,
    ) -> Result<Proof, Error> {
        let mut proven = pay.details.verification.clone();
        let device = match offered.device {
            Some((device_id, sig)) => Some((
                self.confirming_device(customer, device_id, offered.biometric)
                    .await?,
                sig,
            )),
            None => None,
        };
        if let Some(blocked) = self.blocked(&pay.merchant_id, customer).await? {
            return Err(blocked);
        }
        if let Some((d, sig)) = &device {
            check_signature(
                &d.public_key,
                sig,
                pay,
                offered.biometric,
                "device_signature_invalid",
                "device",
            )?;
            proven.push(Element::DeviceSignature);
            if offered.biometric {
                proven.push(Element::Biometric);
            }
        }
        if let Some((cert_id, sig)) = offered.certificate {
            let cert = self
                .store
                .certificates_of(customer)
                .await?
                .into_iter()
                .find(|x| x.id == cert_id && x.status == CredentialStatus::Active)
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
                pay,
                false,
                "certificate_signature_invalid",
                "certificate",
            )?;
            proven.push(Element::DigitalCertificate);
        }
        if let Some(otp) = offered.otp {
            self.otp_can_be_tried(customer, otp).await?;
        }
        if let Some(pin) = offered.pin {
            self.check_pin(customer, pin).await?;
            proven.push(Element::Pin);
        }
        if let Some(otp) = offered.otp {
            self.check_otp(customer, otp).await?;
            proven.push(Element::OneTimePassword);
        }
        // Everything offered is proven: the attempts this confirmation took
        // (a right PIN, a right one-time password) are failures no more.
        if offered.pin.is_some() || offered.otp.is_some() {
            self.store.pin_succeeded(customer, self.now()).await?;
        }
        proven.sort();
        proven.dedup();
        Ok(Proof {
            customer: customer.to_owned(),
            proven,
            device: device.map(|(d, _)| d),
        })
    }

    /// The payer's device, read afresh (its status and biometric setting change).
    async fn confirming_device(
        &self,
        customer: &str,
        device_id: &str,
        biometric: bool,
    ) -> Result<Device, Error> {
        let d = self
            .store
            .device(device_id)
            .await?
            .filter(|d| d.customer_id == customer && d.status == CredentialStatus::Active)
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
        Ok(d)
    }

    /// Move the money of a proven confirmation: one movement that checks
    /// the caps again at the level reached. A card is claimed and
    /// authorized first; a refusal fails the payment.
    async fn complete(
        &self,
        p: &Principal,
        pay: &Payment,
        proof: Proof,
        expires: Timestamp,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let now = self.now();
        let Proof {
            customer,
            proven,
            device,
        } = proof;
        let level = risk::level(&proven, false);
        let amount = Money::from_minor(pay.amount_minor, pay.currency);
        let merchant = self
            .merchant_row(&pay.merchant_id)
            .await?
            .ok_or_else(|| Error::internal("payment without merchant"))?;
        let source = self.source_recorded(&customer, &pay.details).await?;
        let mut details = pay.details.clone();
        details.next_action = None;
        details.risk_level = level;
        details.verification = proven.clone();
        let counters = self
            .funding_counters(
                &Counted {
                    customer: &customer,
                    source: &source,
                    merchant: &merchant,
                    level,
                    elements: &proven,
                    amount: amount.minor(),
                },
                now,
            )
            .await?;
        let mut from = PaymentStatus::RequiresAction;
        if source.holds() {
            from = PaymentStatus::Confirming;
            if let Err(declined) = self.claim_and_hold(pay, &source, &mut details).await? {
                return self
                    .fail_waiting(p, pay, from, &merchant, declined, now)
                    .await;
            }
        }
        // Whatever fails between the hold and the movement releases the
        // hold and gives the claim back.
        let reached = Reached {
            merchant: &merchant,
            customer: &customer,
            source: &source,
            proven: &proven,
            device: device.map(|d| d.id),
            from,
            expires,
            at: now,
        };
        let prepared = self.confirm_movement(p, pay, &details, &reached, counters, idem);
        let (m, body) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                self.release_funds(&mut details.funding).await;
                if from == PaymentStatus::Confirming {
                    self.move_waiting(
                        pay,
                        from,
                        PaymentStatus::RequiresAction,
                        pay.details.clone(),
                    )
                    .await?;
                }
                return Err(e);
            }
        };
        let result = self.store.apply(m).await;
        if !matches!(result, Ok(Applied::Done { .. })) {
            self.release_funds(&mut details.funding).await;
        }
        self.completed(p, pay, from, &merchant, result, body).await
    }

    /// The one movement of a proven confirmation: the live checks, the
    /// counters at the level reached, the posting, the payment's move to
    /// succeeded (from `r.from`), the order paid, its event and audit row.
    fn confirm_movement(
        &self,
        p: &Principal,
        pay: &Payment,
        details: &PaymentDetails,
        r: &Reached<'_>,
        counters: Vec<CounterCharge>,
        idem: Option<Idem>,
    ) -> Result<(Movement, String), Error> {
        let (merchant, customer, from, now) = (r.merchant, r.customer, r.from, r.at);
        let level = details.risk_level;
        let mut done = pay.clone();
        done.status = PaymentStatus::Succeeded;
        done.details = details.clone();
        done.updated_at = now;
        let body =
            serde_json::to_string(&PaymentView::of(&done, p.role)).map_err(Error::internal)?;

        let mut m = Movement::new(now);
        // The block list was read from a copy: checked again here, and the
        // confirming device is still active when the money moves.
        m.unblocked = vec![merchant.id.clone(), customer.to_owned()];
        m.live_device = r.device.clone();
        m.idempotency = idem.map(|i| i.record(&Outcome::Done { view: &body }));
        m.counters = counters;
        m.posting = Some(self.payment_posting(pay, r.source));
        m.guard_day(&pay.details.settlement_account);
        from.transition(PaymentStatus::Succeeded)
            .map_err(Error::internal)?;
        m.payment = Some(PaymentWrite::Transition {
            id: pay.id.clone(),
            from,
            to: PaymentStatus::Succeeded,
            details: Some(details.clone()),
        });
        if let Some(order_id) = &details.order_id {
            m.burns.push(CodeBurn {
                key: format!("order:{order_id}"),
                payment_id: Some(pay.id.clone()),
                expires_at: r.expires,
            });
            m.order = Some(crate::order_move(
                order_id,
                OrderStatus::Open,
                OrderStatus::Paid,
                Some(pay.id.clone()),
            )?);
        }
        let event_view = PaymentView::of(&done, crate::Role::Merchant);
        m.events
            .push(self.outbox(&merchant.id, Event::PaymentSucceeded(&event_view))?);
        m.audit = Some(trail::entry(
            Action::PaymentConfirmed,
            pay.id.clone(),
            p.into(),
            json!({ "risk_level": level.as_str(), "verification": r.proven }),
        ));
        Ok((m, body))
    }

    /// Claim a payment whose source holds money before the source is
    /// asked, so only one confirmation holds it; the attempt's own request
    /// id (recorded with the claim) is the only one it may release. The
    /// hold taken when the payment was first tried was released when it
    /// went to requires_action. `Ok(Err(declined))` when the source
    /// refuses the hold.
    async fn claim_and_hold(
        &self,
        pay: &Payment,
        source: &Source,
        details: &mut PaymentDetails,
    ) -> Result<Result<(), Error>, Error> {
        let mut nonce = [0_u8; 8];
        self.rng.fill(&mut nonce).map_err(Error::internal)?;
        let request_id = format!("{}.confirm.{}", pay.id, hex::encode(nonce));
        // The claim keeps the deadline (next_action) for the sweeper.
        let mut claimed = pay.details.clone();
        claimed.funding.record_hold(&request_id, None, false);
        self.move_waiting(
            pay,
            PaymentStatus::RequiresAction,
            PaymentStatus::Confirming,
            claimed,
        )
        .await?;
        Ok(self
            .hold_funds(source, &request_id, pay.amount_minor, &mut details.funding)
            .await)
    }

    /// The answer to a confirmation's movement: a refusal the payment keeps
    /// fails it; anything else that kept nothing gives a claim back so the
    /// payer can try again (if that fails too, the sweeper ends it at the
    /// deadline).
    async fn completed(
        &self,
        p: &Principal,
        pay: &Payment,
        from: PaymentStatus,
        merchant: &Merchant,
        result: Result<Applied, MovementError>,
        body: String,
    ) -> Result<Reply, Error> {
        let refusal = match result {
            Ok(Applied::Done { audit_seq }) => {
                return Ok(Reply::of(Applied::Done { audit_seq }, Fresh::Done, body));
            }
            Err(
                e @ (MovementError::LimitExceeded { .. }
                | MovementError::InsufficientFunds { .. }
                | MovementError::OrderStateConflict { .. }
                | MovementError::CodeAlreadyUsed { .. }),
            ) => Error::from(e),
            other => {
                if from == PaymentStatus::Confirming
                    && let Err(e) = self
                        .move_waiting(
                            pay,
                            from,
                            PaymentStatus::RequiresAction,
                            pay.details.clone(),
                        )
                        .await
                {
                    tracing::warn!(payment_id = pay.id, error = %e, "could not give back a confirmation claim");
                }
                return match other {
                    Ok(applied) => Ok(Reply::of(applied, Fresh::Done, body)),
                    Err(e) => Err(e.into()),
                };
            }
        };
        self.fail_waiting(p, pay, from, merchant, refusal, self.now())
            .await
    }
}
