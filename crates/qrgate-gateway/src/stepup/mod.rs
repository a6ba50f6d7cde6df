//! Step-up verification. A dynamic payment over its level-C daily cap that
//! would fit level B's goes to `requires_action`, naming the elements that
//! would raise it (the payment PIN, and a device signature when the code did
//! not carry one). The payer confirms with them; a wrong PIN counts toward
//! lock-out and never completes the payment. Unconfirmed payments are
//! canceled after `QG-STEPUP-TTL`.

use qrgate_core::Timestamp;
use qrgate_core::risk::{self, Element, RiskLevel};
use qrgate_core::state::CredentialStatus;
use qrgate_store::*;

use crate::funding::Source;
use crate::{Error, Gateway, Kind};

mod confirm;
mod waiting;

pub use confirm::{BIOMETRIC_SUFFIX, Confirmation, confirmation_message};

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
            .any(|d| d.status == CredentialStatus::Active);
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
            .any(|c| c.status == CredentialStatus::Active);
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
}
