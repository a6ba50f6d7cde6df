//! Card numbers: shape, Luhn check digit, brand, expiry.

/// Why a card was refused before any processor call; each has a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("the card number must be 12 to 19 digits, without spaces")]
    Shape,
    #[error("the card number's check digit is wrong (Luhn): check for a typo")]
    CheckDigit,
    #[error("exp_month must be 1 to 12 and exp_year four digits")]
    ExpiryShape,
    #[error("the card has expired")]
    Expired,
    #[error("the sandbox processor accepts only its documented test cards")]
    NotATestCard,
    #[error("the processor could not tokenize the card; try again")]
    Unavailable,
}

impl CardError {
    pub fn code(self) -> &'static str {
        match self {
            CardError::Shape | CardError::CheckDigit => "card_number_invalid",
            CardError::ExpiryShape => "card_expiry_invalid",
            CardError::Expired => "card_expired",
            CardError::NotATestCard => "card_not_supported",
            CardError::Unavailable => "processor_unavailable",
        }
    }
}

/// The number if it is 12 to 19 ASCII digits with a valid Luhn check digit.
pub fn check_number(number: &str) -> Result<String, CardError> {
    let digits = number.as_bytes();
    if !(12..=19).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
        return Err(CardError::Shape);
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            match i % 2 {
                1 if d * 2 > 9 => d * 2 - 9,
                1 => d * 2,
                _ => d,
            }
        })
        .sum();
    if !sum.is_multiple_of(10) {
        return Err(CardError::CheckDigit);
    }
    Ok(number.to_owned())
}

/// The card brand by its leading digits (enough for display).
pub fn brand_of(number: &str) -> &'static str {
    let two = number.get(..2).unwrap_or("");
    match number.as_bytes().first() {
        _ if two == "62" => "unionpay",
        Some(b'4') => "visa",
        Some(b'5') => "mastercard",
        Some(b'3') if two == "34" || two == "37" => "amex",
        _ => "other",
    }
}

/// A card is valid through the last day of its expiry month.
pub(crate) fn check_expiry(month: u8, year: u16, today: (u16, u8)) -> Result<(), CardError> {
    if !(1..=12).contains(&month) || !(2000..=2099).contains(&year) {
        return Err(CardError::ExpiryShape);
    }
    if (year, month) < today {
        return Err(CardError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_numbers() {
        assert!(check_number("4242424242424242").is_ok());
        assert_eq!(check_number("4242424242424241"), Err(CardError::CheckDigit));
        assert_eq!(check_number("4242 4242 4242 4242"), Err(CardError::Shape));
        assert_eq!(check_number("42424242424"), Err(CardError::Shape));
        assert_eq!(brand_of("6200000000000005"), "unionpay");
        assert_eq!(brand_of("4000000000009995"), "visa");
        assert_eq!(check_expiry(11, 2026, (2026, 11)), Ok(()));
        assert_eq!(check_expiry(10, 2026, (2026, 11)), Err(CardError::Expired));
        assert_eq!(
            check_expiry(13, 2026, (2026, 11)),
            Err(CardError::ExpiryShape)
        );
    }

    proptest! {
        /// Changing any one digit of a valid number breaks the check digit.
        #[test]
        fn one_wrong_digit_is_caught(body in "[0-9]{15}", pos in 0_usize..16, delta in 1_u8..10) {
            let mut n: Vec<u8> = body.into_bytes();
            let check = (0..10).find(|c| {
                let mut t = n.clone();
                t.push(b'0' + c);
                check_number(std::str::from_utf8(&t).unwrap_or("")).is_ok()
            });
            prop_assert!(check.is_some());
            n.push(b'0' + check.unwrap_or(0));
            let d = n[pos] - b'0';
            n[pos] = b'0' + (d + delta) % 10;
            prop_assert_eq!(check_number(std::str::from_utf8(&n).unwrap_or("")), Err(CardError::CheckDigit));
        }

        #[test]
        fn never_panics(s in "\\PC{0,30}") {
            let _ = check_number(&s);
            let _ = brand_of(&s);
        }
    }
}
