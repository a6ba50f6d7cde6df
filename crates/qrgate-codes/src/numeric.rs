//! Consumer payment codes, numeric presentation: 18 digits for 1D barcode
//! scanners and manual entry, allocated online and looked up server-side.
//!
//! Layout: the issuer prefix [`PREFIX`] (two digits, outside the ranges
//! other issuers use), 15 random digits, and a Luhn check digit so a
//! mistyped code is refused before any lookup.
//!
//! Known issuer ranges, used to say "foreign payment code (looks like …)":
//! WeChat Pay 18 digits starting 10–15; Alipay 16–24 digits starting 25–30;
//! UnionPay 19 digits starting 62. These are routing hints, not proof.

use ring::rand::SecureRandom;
use serde::Serialize;

pub const PREFIX: &str = "77";
pub const LEN: usize = 18;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumericCodeError {
    #[error("payment code must be digits only")]
    NotDigits,
    #[error(
        "foreign payment code: it looks like a {issuer} code; this gateway only accepts its own"
    )]
    Foreign { issuer: &'static str },
    #[error("payment code must be {LEN} digits starting with {PREFIX}")]
    Unrecognised,
    #[error("payment code check digit is wrong: it was mistyped or misread")]
    CheckDigit,
    #[error("the system random number generator failed")]
    Rng,
}

impl NumericCodeError {
    pub fn code(&self) -> &'static str {
        match self {
            NumericCodeError::NotDigits | NumericCodeError::Unrecognised => {
                "payment_code_malformed"
            }
            NumericCodeError::Foreign { .. } => "payment_code_foreign",
            NumericCodeError::CheckDigit => "payment_code_check_digit",
            NumericCodeError::Rng => "internal",
        }
    }
}

/// What a digit string looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Issuer {
    Qrgate,
    WechatPay,
    Alipay,
    UnionPay,
}

impl Issuer {
    pub fn name(self) -> &'static str {
        match self {
            Issuer::Qrgate => "qrgate",
            Issuer::WechatPay => "WeChat Pay",
            Issuer::Alipay => "Alipay",
            Issuer::UnionPay => "UnionPay",
        }
    }
}

/// Classify a digit string by length and prefix. `None`: nobody we know.
pub fn classify(digits: &str) -> Option<Issuer> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let prefix: u32 = digits.get(..2)?.parse().ok()?;
    let len = digits.len();
    match (len, prefix) {
        (LEN, 77) => Some(Issuer::Qrgate),
        (18, 10..=15) => Some(Issuer::WechatPay),
        (16..=24, 25..=30) => Some(Issuer::Alipay),
        (19, 62) => Some(Issuer::UnionPay),
        _ => None,
    }
}

fn luhn_check_digit(payload: &[u8]) -> u8 {
    // Digits from the right, doubling every second one starting with the rightmost.
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    ((10 - (sum % 10)) % 10) as u8
}

/// A fresh 18-digit code: prefix, 15 uniform random digits, Luhn digit.
pub fn generate(rng: &dyn SecureRandom) -> Result<String, NumericCodeError> {
    let mut digits: Vec<u8> = PREFIX.bytes().map(|b| b - b'0').collect();
    while digits.len() < LEN - 1 {
        let mut b = [0_u8; 8];
        rng.fill(&mut b).map_err(|_| NumericCodeError::Rng)?;
        for x in b {
            // Rejection sampling keeps digits uniform: 250 = 25 * 10.
            if x < 250 && digits.len() < LEN - 1 {
                digits.push(x % 10);
            }
        }
    }
    let check = luhn_check_digit(&digits);
    digits.push(check);
    Ok(digits.iter().map(|d| char::from(b'0' + d)).collect())
}

/// Validate a scanned or typed numeric code as ours, before any lookup.
pub fn validate(input: &str) -> Result<(), NumericCodeError> {
    if input.is_empty() || !input.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NumericCodeError::NotDigits);
    }
    match classify(input) {
        Some(Issuer::Qrgate) => {}
        Some(other) => {
            return Err(NumericCodeError::Foreign {
                issuer: other.name(),
            });
        }
        None => return Err(NumericCodeError::Unrecognised),
    }
    let digits: Vec<u8> = input.bytes().map(|b| b - b'0').collect();
    let (body, check) = digits.split_at(LEN - 1);
    if luhn_check_digit(body) != check[0] {
        return Err(NumericCodeError::CheckDigit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn generated_codes_validate() {
        let rng = SystemRandom::new();
        for _ in 0..1000 {
            let c = generate(&rng).unwrap();
            assert_eq!(c.len(), LEN);
            assert!(c.starts_with(PREFIX));
            assert_eq!(validate(&c), Ok(()));
        }
    }

    #[test]
    fn luhn_known_value() {
        // 7992739871 has check digit 3 (the classic Luhn example).
        let d: Vec<u8> = "7992739871".bytes().map(|b| b - b'0').collect();
        assert_eq!(luhn_check_digit(&d), 3);
    }

    #[test]
    fn single_digit_errors_are_caught() {
        let rng = SystemRandom::new();
        let c = generate(&rng).unwrap();
        for i in 2..LEN {
            for d in b'0'..=b'9' {
                let mut m = c.clone().into_bytes();
                if m[i] == d {
                    continue;
                }
                m[i] = d;
                let m = String::from_utf8(m).unwrap();
                assert_eq!(validate(&m), Err(NumericCodeError::CheckDigit), "{m}");
            }
        }
    }

    #[test]
    fn foreign_codes_are_named() {
        assert!(
            validate("134567890123456789")
                .unwrap_err()
                .to_string()
                .contains("WeChat Pay")
        );
        assert_eq!(
            validate("281234567890123456").unwrap_err(),
            NumericCodeError::Foreign { issuer: "Alipay" }
        );
        assert_eq!(
            validate("6212345678901234567").unwrap_err(),
            NumericCodeError::Foreign { issuer: "UnionPay" }
        );
        assert_eq!(
            validate("12345").unwrap_err(),
            NumericCodeError::Unrecognised
        );
        assert_eq!(
            validate("77123456789012345a").unwrap_err(),
            NumericCodeError::NotDigits
        );
        assert_eq!(classify("771234567890123456"), Some(Issuer::Qrgate));
    }
}
