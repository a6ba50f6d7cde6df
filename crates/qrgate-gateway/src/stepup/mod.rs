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

/// What the step-up decision reads: what the payer has enrolled, and the
/// room left under the level-B and level-A daily caps. Read once, before
/// deciding; the movement's conditional writes check the caps again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StepUpFacts {
    pub(crate) has_pin: bool,
    pub(crate) has_device: bool,
    pub(crate) has_otp: bool,
    /// Over the password-free count: only sets with the PIN will do.
    pub(crate) need_pin: bool,
    pub(crate) amount: i64,
    /// Level B's daily total so far, and its cap.
    pub(crate) b_used: i64,
    pub(crate) b_cap: i64,
    /// Level A's daily total so far and the payer's agreed cap, when the
    /// payer has an agreement and an active certificate.
    pub(crate) level_a: Option<(i64, i64)>,
}

/// Whether a payment proven with `elements` can step up, and how: pure,
/// so every case is a row of the table in the tests below.
pub(crate) fn decide(elements: &[Element], f: &StepUpFacts) -> StepUp {
    // Step-up is for payers who set it up: without a PIN, decline.
    if !f.has_pin {
        return StepUp::NoPin;
    }
    // Sets that make two classes with what is already proven; a biometric
    // is asserted inside a device signature, so it brings one.
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
        if risk::level(&all, false) <= RiskLevel::B && !add.is_empty() && !accepts.contains(&add) {
            accepts.push(add);
        }
    };
    if f.has_device {
        offer(&[Element::Pin, Element::DeviceSignature]);
    }
    if f.has_otp {
        offer(&[Element::Pin, Element::OneTimePassword]);
    }
    if f.has_device {
        offer(&[Element::DeviceSignature, Element::Biometric]);
    }
    if f.need_pin {
        accepts.retain(|set| set.contains(&Element::Pin));
    }
    if accepts.is_empty() {
        return StepUp::NoPin;
    }
    if f.b_used.saturating_add(f.amount) <= f.b_cap {
        return StepUp::Needs(Offer {
            target: RiskLevel::B,
            accepts,
        });
    }
    // Level A: a customer with an agreed level-A cap and an active
    // certificate can prove PIN + certificate signature.
    match f.level_a {
        None => StepUp::LevelBFull {
            used: f.b_used,
            cap: f.b_cap,
        },
        Some((used, cap)) if used.saturating_add(f.amount) > cap => {
            StepUp::LevelAFull { used, cap }
        }
        Some(_) => StepUp::Needs(Offer {
            target: RiskLevel::A,
            accepts: vec![vec![Element::Pin, Element::DigitalCertificate]],
        }),
    }
}

impl<S: Store> Gateway<S> {
    /// What would raise this payment to level B (or A), if the cap has
    /// room and the payer can step up: the facts are read here, the
    /// decision is [`decide`].
    pub(crate) async fn step_up_elements(
        &self,
        customer: &str,
        source: &Source,
        elements: &[Element],
        amount: i64,
        now: Timestamp,
        need_pin: bool,
    ) -> Result<StepUp, Error> {
        let has_pin = self
            .store
            .credentials(customer)
            .await?
            .is_some_and(|c| c.has_pin());
        if !has_pin {
            return Ok(StepUp::NoPin);
        }
        let has_device = self
            .store
            .devices_of(customer)
            .await?
            .iter()
            .any(|d| d.status == CredentialStatus::Active);
        let has_otp = self.store.otp_enrollment(customer).await?.is_some();
        let subject = source.cap_subject(customer);
        let b = self
            .daily_charge(customer, subject, RiskLevel::B, amount, now)
            .await?;
        let (b_used, _) = self.store.counter(&b.key).await?;
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
        let level_a = if has_agreement && has_certificate {
            let a = self
                .daily_charge(customer, subject, RiskLevel::A, amount, now)
                .await?;
            let (a_used, _) = self.store.counter(&a.key).await?;
            Some((a_used, a.cap_amount.unwrap_or(0)))
        } else {
            None
        };
        let facts = StepUpFacts {
            has_pin,
            has_device,
            has_otp,
            need_pin,
            amount,
            b_used,
            b_cap: self.limits.daily_b,
            level_a,
        };
        Ok(decide(elements, &facts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Element::{
        Biometric, DeviceSignature as Dev, DigitalCertificate as Cert, OneTimePassword as Otp, Pin,
    };

    const FACTS: StepUpFacts = StepUpFacts {
        has_pin: true,
        has_device: true,
        has_otp: false,
        need_pin: false,
        amount: 100,
        b_used: 0,
        b_cap: 1_000,
        level_a: None,
    };

    fn needs(target: RiskLevel, accepts: &[&[Element]]) -> StepUp {
        StepUp::Needs(Offer {
            target,
            accepts: accepts.iter().map(|s| s.to_vec()).collect(),
        })
    }

    /// Every case of the decision, one row each: what is proven, what the
    /// payer has and the room left, and what the payer is offered.
    #[test]
    fn the_step_up_table() {
        let with = |f: fn(&mut StepUpFacts)| {
            let mut x = FACTS;
            f(&mut x);
            x
        };
        let rows: Vec<(&str, Vec<Element>, StepUpFacts, StepUp)> = vec![
            (
                "no PIN: no step-up",
                vec![],
                with(|f| f.has_pin = false),
                StepUp::NoPin,
            ),
            (
                "PIN only, nothing to pair it with",
                vec![],
                with(|f| f.has_device = false),
                StepUp::NoPin,
            ),
            (
                "a code without a signature: PIN + device, or the biometric",
                vec![],
                FACTS,
                needs(RiskLevel::B, &[&[Pin, Dev], &[Dev, Biometric]]),
            ),
            (
                "a device-signed code: the PIN completes it",
                vec![Dev],
                FACTS,
                needs(RiskLevel::B, &[&[Pin], &[Dev, Biometric]]),
            ),
            (
                "with an authenticator app too",
                vec![Dev],
                with(|f| f.has_otp = true),
                needs(RiskLevel::B, &[&[Pin], &[Pin, Otp], &[Dev, Biometric]]),
            ),
            (
                "over the password-free count: only sets with the PIN",
                vec![Dev],
                with(|f| f.need_pin = true),
                needs(RiskLevel::B, &[&[Pin]]),
            ),
            (
                "exactly at level B's cap still fits",
                vec![Dev],
                with(|f| f.b_used = 900),
                needs(RiskLevel::B, &[&[Pin], &[Dev, Biometric]]),
            ),
            (
                "level B full, no agreement: refused citing B",
                vec![Dev],
                with(|f| f.b_used = 901),
                StepUp::LevelBFull {
                    used: 901,
                    cap: 1_000,
                },
            ),
            (
                "level B full, agreement and certificate: level A",
                vec![Dev],
                with(|f| {
                    f.b_used = 1_000;
                    f.level_a = Some((0, 5_000));
                }),
                needs(RiskLevel::A, &[&[Pin, Cert]]),
            ),
            (
                "level A full too: refused citing A",
                vec![Dev],
                with(|f| {
                    f.b_used = 1_000;
                    f.level_a = Some((4_950, 5_000));
                }),
                StepUp::LevelAFull {
                    used: 4_950,
                    cap: 5_000,
                },
            ),
        ];
        for (what, elements, facts, want) in rows {
            assert_eq!(decide(&elements, &facts), want, "{what}");
        }
    }
}
