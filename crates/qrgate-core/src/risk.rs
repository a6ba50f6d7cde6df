//! Verification elements and the risk level they earn a payment.
//!
//! Elements count by class (296): knowledge (a PIN), possession (a device
//! signature, a one-time password, a digital certificate or electronic
//! signature), inherence (a biometric). A PIN and a fingerprint are two
//! classes; two one-time passwords are one.

use serde::{Deserialize, Serialize};

/// One verification element a payment was proven with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Element {
    /// The consumer's enrolled device signed the code or the confirmation.
    DeviceSignature,
    /// A one-time password (TOTP or gateway-sent).
    OneTimePassword,
    /// An enrolled certificate key signed the transaction details.
    DigitalCertificate,
    /// The payment PIN.
    Pin,
    /// A biometric check done on the device, asserted in its signature.
    Biometric,
}

impl Element {
    /// The name the API and the stored details use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Element::DeviceSignature => "device_signature",
            Element::OneTimePassword => "one_time_password",
            Element::DigitalCertificate => "digital_certificate",
            Element::Pin => "pin",
            Element::Biometric => "biometric",
        }
    }
}

/// The three classes of 296.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementClass {
    Knowledge,
    Possession,
    Inherence,
}

impl Element {
    pub fn class(self) -> ElementClass {
        match self {
            Element::Pin => ElementClass::Knowledge,
            Element::DeviceSignature | Element::OneTimePassword | Element::DigitalCertificate => {
                ElementClass::Possession
            }
            Element::Biometric => ElementClass::Inherence,
        }
    }
}

/// Risk level of a payment (296): A strongest, D any static-code payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RiskLevel {
    A,
    B,
    C,
    D,
}

impl RiskLevel {
    /// The rule id of this level's daily cumulative cap.
    pub fn daily_rule(self) -> &'static str {
        match self {
            RiskLevel::A => "BCP-LIMIT-A-DAILY",
            RiskLevel::B => "BCP-LIMIT-B-DAILY",
            RiskLevel::C => "BCP-LIMIT-C-DAILY",
            RiskLevel::D => "BCP-LIMIT-D-STATIC",
        }
    }

    /// The levels with a higher statutory cap that a payment at this level
    /// also counts toward when the caps are nested (BCP-LIMIT-NESTED = 1):
    /// D toward C and B, C toward B. Level A's cap is by agreement.
    pub fn nested_in(self) -> &'static [RiskLevel] {
        match self {
            RiskLevel::D => &[RiskLevel::C, RiskLevel::B],
            RiskLevel::C => &[RiskLevel::B],
            RiskLevel::B | RiskLevel::A => &[],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::A => "A",
            RiskLevel::B => "B",
            RiskLevel::C => "C",
            RiskLevel::D => "D",
        }
    }
}

/// Derive the level: D for any static-code payment; otherwise A with two or
/// more classes including a certificate, B with two or more classes without
/// one, C with fewer than two classes.
pub fn level(elements: &[Element], static_code: bool) -> RiskLevel {
    if static_code {
        return RiskLevel::D;
    }
    let mut classes: Vec<ElementClass> = elements.iter().map(|e| e.class()).collect();
    classes.sort();
    classes.dedup();
    match classes.len() {
        0 | 1 => RiskLevel::C,
        _ if elements.contains(&Element::DigitalCertificate) => RiskLevel::A,
        _ => RiskLevel::B,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Element::*;
    use proptest::prelude::*;

    #[test]
    fn element_names_are_their_stored_names() {
        for e in [
            DeviceSignature,
            OneTimePassword,
            DigitalCertificate,
            Pin,
            Biometric,
        ] {
            assert_eq!(
                serde_json::to_value(e).unwrap(),
                serde_json::json!(e.as_str())
            );
        }
    }

    #[test]
    fn examples_from_the_rules() {
        assert_eq!(level(&[], false), RiskLevel::C);
        assert_eq!(level(&[DeviceSignature], false), RiskLevel::C);
        assert_eq!(
            level(&[OneTimePassword, OneTimePassword], false),
            RiskLevel::C,
            "two OTPs are one class"
        );
        assert_eq!(
            level(&[DeviceSignature, OneTimePassword], false),
            RiskLevel::C,
            "both possession"
        );
        assert_eq!(
            level(&[Pin, Biometric], false),
            RiskLevel::B,
            "PIN + fingerprint are two"
        );
        assert_eq!(level(&[DeviceSignature, Pin], false), RiskLevel::B);
        assert_eq!(level(&[DigitalCertificate, Pin], false), RiskLevel::A);
        assert_eq!(
            level(&[DigitalCertificate, Pin, Biometric], true),
            RiskLevel::D,
            "static is always D"
        );
    }

    fn any_element() -> impl Strategy<Value = Element> {
        prop_oneof![
            Just(DeviceSignature),
            Just(OneTimePassword),
            Just(DigitalCertificate),
            Just(Pin),
            Just(Biometric)
        ]
    }

    proptest! {
        #[test]
        fn level_depends_only_on_classes_and_certificate(els in proptest::collection::vec(any_element(), 0..8), extra in any_element()) {
            let l = level(&els, false);
            // Repeating an element never changes the level.
            let mut doubled = els.clone();
            doubled.extend(els.iter().copied());
            prop_assert_eq!(level(&doubled, false), l);
            // Adding an element never weakens it.
            let mut more = els.clone();
            more.push(extra);
            prop_assert!(level(&more, false) <= l);
            // Order does not matter.
            let mut rev = els.clone();
            rev.reverse();
            prop_assert_eq!(level(&rev, false), l);
            prop_assert_eq!(level(&els, true), RiskLevel::D);
            if l == RiskLevel::A { prop_assert!(els.contains(&DigitalCertificate)); }
        }
    }
}
