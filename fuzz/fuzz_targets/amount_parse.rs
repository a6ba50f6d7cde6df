//! Money amounts from the wire: never panics; an accepted amount formats
//! back to a string that parses to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrgate_core::{Currency, Money};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for code in ["CNY", "JPY", "KWD"] {
        let Ok(c) = Currency::from_code(code) else { return };
        if let Ok(m) = Money::parse_amount(text, c) {
            assert!(m.minor() > 0);
            assert_eq!(Money::parse_amount(&m.to_decimal_string(), c), Ok(m));
        }
    }
});
