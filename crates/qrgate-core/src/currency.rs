//! ISO 4217 currencies: alphabetic code, numeric code and minor-unit exponent.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 4217 currency known to qrgate.
///
/// Only currencies from the table below can be constructed, so holding a
/// `Currency` means the exponent is known and amounts can be converted.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    numeric: u16,
    exponent: u8,
}

/// The currency code is not in qrgate's ISO 4217 table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency {0:?}: expected an ISO 4217 code such as \"CNY\"")]
pub struct UnknownCurrency(pub String);

const fn c(code: &'static str, numeric: u16, exponent: u8) -> Currency {
    Currency {
        code,
        numeric,
        exponent,
    }
}

/// Active ISO 4217 currencies (alphabetic, numeric, minor-unit exponent).
const TABLE: &[Currency] = &[
    c("AED", 784, 2),
    c("ARS", 32, 2),
    c("AUD", 36, 2),
    c("BDT", 50, 2),
    c("BGN", 975, 2),
    c("BHD", 48, 3),
    c("BND", 96, 2),
    c("BRL", 986, 2),
    c("BYN", 933, 2),
    c("CAD", 124, 2),
    c("CHF", 756, 2),
    c("CLF", 990, 4),
    c("CLP", 152, 0),
    c("CNY", 156, 2),
    c("COP", 170, 2),
    c("CZK", 203, 2),
    c("DJF", 262, 0),
    c("DKK", 208, 2),
    c("EGP", 818, 2),
    c("EUR", 978, 2),
    c("GBP", 826, 2),
    c("GHS", 936, 2),
    c("GNF", 324, 0),
    c("HKD", 344, 2),
    c("HUF", 348, 2),
    c("IDR", 360, 2),
    c("ILS", 376, 2),
    c("INR", 356, 2),
    c("IQD", 368, 3),
    c("ISK", 352, 0),
    c("JOD", 400, 3),
    c("JPY", 392, 0),
    c("KES", 404, 2),
    c("KGS", 417, 2),
    c("KHR", 116, 2),
    c("KMF", 174, 0),
    c("KRW", 410, 0),
    c("KWD", 414, 3),
    c("KZT", 398, 2),
    c("LAK", 418, 2),
    c("LKR", 144, 2),
    c("LYD", 434, 3),
    c("MAD", 504, 2),
    c("MMK", 104, 2),
    c("MNT", 496, 2),
    c("MOP", 446, 2),
    c("MXN", 484, 2),
    c("MYR", 458, 2),
    c("NGN", 566, 2),
    c("NOK", 578, 2),
    c("NPR", 524, 2),
    c("NZD", 554, 2),
    c("OMR", 512, 3),
    c("PEN", 604, 2),
    c("PHP", 608, 2),
    c("PKR", 586, 2),
    c("PLN", 985, 2),
    c("PYG", 600, 0),
    c("QAR", 634, 2),
    c("RON", 946, 2),
    c("RUB", 643, 2),
    c("RWF", 646, 0),
    c("SAR", 682, 2),
    c("SEK", 752, 2),
    c("SGD", 702, 2),
    c("THB", 764, 2),
    c("TND", 788, 3),
    c("TRY", 949, 2),
    c("TWD", 901, 2),
    c("UAH", 980, 2),
    c("UGX", 800, 0),
    c("USD", 840, 2),
    c("UYU", 858, 2),
    c("UZS", 860, 2),
    c("VND", 704, 0),
    c("VUV", 548, 0),
    c("XAF", 950, 0),
    c("XOF", 952, 0),
    c("ZAR", 710, 2),
];

impl Currency {
    /// Chinese yuan renminbi, the gateway's default currency.
    pub const CNY: Currency = c("CNY", 156, 2);

    /// Look a currency up by its alphabetic code ("CNY"); exact upper case.
    pub fn from_code(code: &str) -> Result<Currency, UnknownCurrency> {
        TABLE
            .iter()
            .find(|cur| cur.code == code)
            .copied()
            .ok_or_else(|| UnknownCurrency(code.to_owned()))
    }

    /// Look a currency up by its numeric code (156 for CNY), as EMV tag 53 carries it.
    pub fn from_numeric(numeric: u16) -> Option<Currency> {
        TABLE.iter().find(|cur| cur.numeric == numeric).copied()
    }

    /// Parse the three-digit numeric form ("156").
    pub fn from_numeric_str(s: &str) -> Option<Currency> {
        if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<u16>().ok().and_then(Currency::from_numeric)
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn numeric(&self) -> u16 {
        self.numeric
    }

    /// The numeric code as three digits, zero padded ("036" for AUD).
    pub fn numeric_str(&self) -> String {
        format!("{:03}", self.numeric)
    }

    /// Number of decimal places of the minor unit (2 for CNY, 0 for JPY).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    /// Every currency qrgate knows.
    pub fn all() -> &'static [Currency] {
        TABLE
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::from_code(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::from_code(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_unique_codes_and_numbers() {
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                assert_ne!(a.code, b.code);
                assert_ne!(a.numeric, b.numeric, "{} and {}", a.code, b.code);
            }
            assert_eq!(a.code.len(), 3);
            assert!(a.code.bytes().all(|b| b.is_ascii_uppercase()));
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(Currency::from_code("CNY"), Ok(Currency::CNY));
        assert_eq!(Currency::from_numeric_str("156"), Some(Currency::CNY));
        assert_eq!(
            Currency::from_numeric_str("036").map(|c| c.code()),
            Some("AUD")
        );
        assert_eq!(Currency::from_code("JPY").map(|c| c.exponent()), Ok(0));
        assert!(Currency::from_code("cny").is_err());
        assert!(Currency::from_code("XXX").is_err());
        assert_eq!(Currency::from_numeric_str("15"), None);
        assert_eq!(Currency::from_numeric_str("+56"), None);
        assert_eq!(Currency::CNY.numeric_str(), "156");
    }
}
