//! Money: `i64` minor units plus a [`Currency`]. No floating point anywhere.
//!
//! On the wire an amount is a decimal string in major units (`"12.30"`).
//! [`Money::parse_amount`] accepts exactly one spelling per value a payer
//! can be charged and rejects everything else with a distinct error.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::currency::Currency;

/// Why an amount string was refused. Each variant has a stable [`code`](Self::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount is empty: send a decimal string such as \"12.30\"")]
    Empty,
    #[error("amount contains white space at offset {offset}: send the digits only, e.g. \"12.30\"")]
    Whitespace { offset: usize },
    #[error("amount is negative: amounts are positive; use a refund to return money")]
    Negative,
    #[error("amount is zero: the smallest amount is one minor unit")]
    Zero,
    #[error(
        "amount uses an exponent at offset {offset}: write it out, e.g. \"1000.00\" not \"1e3\""
    )]
    Exponent { offset: usize },
    #[error("amount has a leading zero: write \"{suggestion}\"")]
    LeadingZero { suggestion: String },
    #[error("amount is not a decimal number: unexpected {found:?} at offset {offset}")]
    Syntax { found: char, offset: usize },
    #[error("amount has {found} decimals but {currency} has {max}")]
    TooManyDecimals {
        found: usize,
        max: u8,
        currency: Currency,
    },
    #[error("amount is too large: at most {max} {currency}")]
    TooLarge { max: String, currency: Currency },
}

impl AmountError {
    /// A stable snake_case code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            AmountError::Empty => "amount_empty",
            AmountError::Whitespace { .. } => "amount_whitespace",
            AmountError::Negative => "amount_negative",
            AmountError::Zero => "amount_zero",
            AmountError::Exponent { .. } => "amount_exponent",
            AmountError::LeadingZero { .. } => "amount_leading_zero",
            AmountError::Syntax { .. } => "amount_syntax",
            AmountError::TooManyDecimals { .. } => "amount_too_many_decimals",
            AmountError::TooLarge { .. } => "amount_too_large",
        }
    }
}

/// Arithmetic on money that could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency mismatch: {left} and {right} cannot be combined")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("amount overflow: the result does not fit in 64-bit minor units")]
    Overflow,
}

/// An amount of money in integer minor units of one currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub const fn from_minor(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    pub fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_positive(&self) -> bool {
        self.minor > 0
    }

    /// Parse a positive amount in major units (`"12.30"` for CNY 12.30).
    ///
    /// Accepted: ASCII digits, optionally a `.` followed by at least one and
    /// at most `currency.exponent()` digits; no sign, no exponent, no white
    /// space, no leading zero before other digits; value above zero and within
    /// `i64` minor units.
    pub fn parse_amount(input: &str, currency: Currency) -> Result<Money, AmountError> {
        if input.is_empty() {
            return Err(AmountError::Empty);
        }
        if let Some((offset, _)) = input.char_indices().find(|(_, ch)| ch.is_whitespace()) {
            return Err(AmountError::Whitespace { offset });
        }
        if input.starts_with('-') {
            return Err(AmountError::Negative);
        }
        if let Some(offset) = input.find(['e', 'E']) {
            return Err(AmountError::Exponent { offset });
        }
        let (int_part, frac_part) = match input.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (input, None),
        };
        // Every character must be a digit, apart from the one dot.
        let mut offset = 0;
        for part in [Some(int_part), frac_part].into_iter().flatten() {
            if let Some((i, ch)) = part.char_indices().find(|(_, ch)| !ch.is_ascii_digit()) {
                return Err(AmountError::Syntax {
                    found: ch,
                    offset: offset + i,
                });
            }
            offset += part.len() + 1;
        }
        if int_part.is_empty() {
            return Err(AmountError::Syntax {
                found: '.',
                offset: 0,
            });
        }
        if frac_part == Some("") {
            return Err(AmountError::Syntax {
                found: '.',
                offset: int_part.len(),
            });
        }
        if int_part.len() > 1 && int_part.starts_with('0') {
            let trimmed = int_part.trim_start_matches('0');
            let head = if trimmed.is_empty() { "0" } else { trimmed };
            let suggestion = match frac_part {
                Some(f) => format!("{head}.{f}"),
                None => head.to_owned(),
            };
            return Err(AmountError::LeadingZero { suggestion });
        }
        let decimals = frac_part.map_or(0, str::len);
        if decimals > usize::from(currency.exponent()) {
            return Err(AmountError::TooManyDecimals {
                found: decimals,
                max: currency.exponent(),
                currency,
            });
        }
        let too_large = || AmountError::TooLarge {
            max: Money::from_minor(i64::MAX, currency).to_decimal_string(),
            currency,
        };
        // The syntax is now plain digits with an optional fraction, so the
        // only way rust_decimal can fail is a value beyond its 96-bit range.
        let value = Decimal::from_str_exact(input).map_err(|_| too_large())?;
        let minor = value
            .checked_mul(Decimal::from(10_i64.pow(u32::from(currency.exponent()))))
            .ok_or_else(too_large)?;
        let minor = i64::try_from(minor.trunc()).map_err(|_| too_large())?;
        if minor == 0 {
            return Err(AmountError::Zero);
        }
        Ok(Money { minor, currency })
    }

    /// The amount in major units with exactly `exponent` decimals ("12.30", "-0.05", "100").
    pub fn to_decimal_string(&self) -> String {
        let exp = u32::from(self.currency.exponent());
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if exp == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10_u64.pow(exp);
        format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = exp as usize
        )
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..*self })
    }

    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..*self })
    }

    pub fn checked_neg(&self) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..*self })
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cny(s: &str) -> Result<Money, AmountError> {
        Money::parse_amount(s, Currency::CNY)
    }

    #[test]
    fn accepts_canonical_amounts() {
        assert_eq!(cny("12.30").map(|m| m.minor()), Ok(1230));
        assert_eq!(cny("12.3").map(|m| m.minor()), Ok(1230));
        assert_eq!(cny("12").map(|m| m.minor()), Ok(1200));
        assert_eq!(cny("0.01").map(|m| m.minor()), Ok(1));
        assert_eq!(cny("0.5").map(|m| m.minor()), Ok(50));
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!(Money::parse_amount("500", jpy).map(|m| m.minor()), Ok(500));
        let kwd = Currency::from_code("KWD").unwrap();
        assert_eq!(
            Money::parse_amount("1.234", kwd).map(|m| m.minor()),
            Ok(1234)
        );
    }

    #[test]
    fn rejects_each_bad_spelling_with_its_own_error() {
        assert_eq!(cny("").unwrap_err().code(), "amount_empty");
        assert_eq!(cny(" 1").unwrap_err().code(), "amount_whitespace");
        assert_eq!(cny("1 ").unwrap_err().code(), "amount_whitespace");
        assert_eq!(cny("-1").unwrap_err().code(), "amount_negative");
        assert_eq!(cny("0").unwrap_err().code(), "amount_zero");
        assert_eq!(cny("0.00").unwrap_err().code(), "amount_zero");
        assert_eq!(cny("1e3").unwrap_err().code(), "amount_exponent");
        assert_eq!(cny("1E3").unwrap_err().code(), "amount_exponent");
        assert_eq!(
            cny("12.345").unwrap_err().code(),
            "amount_too_many_decimals"
        );
        assert_eq!(
            cny("12.300").unwrap_err().code(),
            "amount_too_many_decimals"
        );
        assert_eq!(cny("+1").unwrap_err().code(), "amount_syntax");
        assert_eq!(cny("1,00").unwrap_err().code(), "amount_syntax");
        assert_eq!(cny("1_000").unwrap_err().code(), "amount_syntax");
        assert_eq!(cny(".5").unwrap_err().code(), "amount_syntax");
        assert_eq!(cny("5.").unwrap_err().code(), "amount_syntax");
        assert_eq!(cny("1.2.3").unwrap_err().code(), "amount_syntax");
        assert_eq!(cny("١٢").unwrap_err().code(), "amount_syntax");
        assert_eq!(cny("NaN").unwrap_err().code(), "amount_syntax");
        assert_eq!(cny("012.30").unwrap_err().code(), "amount_leading_zero");
        assert_eq!(
            cny("92233720368547758.08").unwrap_err().code(),
            "amount_too_large"
        );
        assert_eq!(
            cny("99999999999999999999999999999999999")
                .unwrap_err()
                .code(),
            "amount_too_large"
        );
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!(
            Money::parse_amount("1.0", jpy).unwrap_err().code(),
            "amount_too_many_decimals"
        );
    }

    #[test]
    fn largest_amount_round_trips() {
        let max = cny("92233720368547758.07").unwrap();
        assert_eq!(max.minor(), i64::MAX);
        assert_eq!(max.to_decimal_string(), "92233720368547758.07");
    }

    #[test]
    fn formats_with_currency_exponent() {
        assert_eq!(
            Money::from_minor(1230, Currency::CNY).to_decimal_string(),
            "12.30"
        );
        assert_eq!(
            Money::from_minor(-5, Currency::CNY).to_decimal_string(),
            "-0.05"
        );
        assert_eq!(
            Money::from_minor(i64::MIN, Currency::CNY).to_decimal_string(),
            "-92233720368547758.08"
        );
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!(Money::from_minor(500, jpy).to_decimal_string(), "500");
        assert_eq!(
            Money::from_minor(1230, Currency::CNY).to_string(),
            "12.30 CNY"
        );
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_round_trips(minor in 1_i64..=i64::MAX, which in 0_usize..4) {
            let c = ["CNY", "JPY", "KWD", "CLF"].map(|c| Currency::from_code(c).unwrap())[which];
            let m = Money::from_minor(minor, c);
            proptest::prop_assert_eq!(Money::parse_amount(&m.to_decimal_string(), c), Ok(m));
        }

        #[test]
        fn parsing_never_panics_and_accepted_values_are_canonical(s in "\\PC{0,30}") {
            if let Ok(m) = Money::parse_amount(&s, Currency::CNY) {
                proptest::prop_assert!(m.minor() > 0);
                // Accepted spellings differ from the canonical one only by missing trailing zeros.
                let canon = m.to_decimal_string();
                proptest::prop_assert!(canon.starts_with(&s) || canon == format!("{s}.00"), "{s} -> {canon}");
            }
        }

        #[test]
        fn checked_add_matches_wide_arithmetic(a in proptest::num::i64::ANY, b in proptest::num::i64::ANY) {
            let r = Money::from_minor(a, Currency::CNY).checked_add(&Money::from_minor(b, Currency::CNY));
            match i64::try_from(i128::from(a) + i128::from(b)) {
                Ok(sum) => proptest::prop_assert_eq!(r.map(|m| m.minor()), Ok(sum)),
                Err(_) => proptest::prop_assert_eq!(r, Err(MoneyError::Overflow)),
            }
        }
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Money::from_minor(i64::MAX, Currency::CNY);
        let one = Money::from_minor(1, Currency::CNY);
        assert_eq!(a.checked_add(&one), Err(MoneyError::Overflow));
        assert_eq!(
            Money::from_minor(i64::MIN, Currency::CNY).checked_sub(&one),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::from_minor(i64::MIN, Currency::CNY).checked_neg(),
            Err(MoneyError::Overflow)
        );
        let usd = Money::from_minor(1, Currency::from_code("USD").unwrap());
        assert!(matches!(
            one.checked_add(&usd),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
        assert_eq!(one.checked_add(&one).map(|m| m.minor()), Ok(2));
    }
}
