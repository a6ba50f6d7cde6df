//! Merchant code verification on arbitrary text: never panics, never
//! accepts a code the fuzzer forged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrgate_codes::keyring::{KeyId, Keyring};
use qrgate_codes::merchant;
use qrgate_core::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(kid) = KeyId::parse("fuzzkey2") else { return };
    let Ok(ring) = Keyring::from_seed(kid, &[5; 32], Timestamp::from_unix_millis(0)) else { return };
    let r = merchant::verify(text, &ring.public_keys(), Timestamp::from_unix_millis(1_795_000_000_000));
    assert!(r.is_err());
});
