//! Card numbers typed by a consumer: never panics; a number that passes is
//! 12 to 19 digits whose Luhn sum is right, and it is returned unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrgate_processor::{brand_of, check_number};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = brand_of(text);
    if let Ok(n) = check_number(text) {
        assert_eq!(n, text);
        assert!((12..=19).contains(&n.len()));
        assert!(n.bytes().all(|b| b.is_ascii_digit()));
    }
});
