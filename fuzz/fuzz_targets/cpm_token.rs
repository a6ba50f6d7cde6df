//! Consumer payment tokens: decoding arbitrary text never panics, and no
//! input verifies under a key that never signed anything.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrgate_codes::cpm::UnverifiedToken;
use qrgate_core::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(t) = UnverifiedToken::decode(text) {
        let key = [7_u8; 32];
        let r = t.verify(&key, Timestamp::from_unix_millis(1_795_000_000_000), 5_000);
        assert!(r.is_err());
    }
});
