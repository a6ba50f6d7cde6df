//! Numeric payment codes typed or scanned at a till: never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrgate_codes::numeric;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if numeric::validate(text).is_ok() {
        assert_eq!(text.len(), numeric::LEN);
        assert_eq!(numeric::classify(text), Some(numeric::Issuer::Qrgate));
    }
});
