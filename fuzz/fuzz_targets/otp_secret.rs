//! Base32 (OTP secrets) and one-time-password codes: decoding never panics,
//! and what decodes re-encodes to the same text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrgate_codes::otp;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(bytes) = otp::unbase32(text) {
        // Trailing bits may be dropped, so compare the canonical forms.
        let again = otp::base32(&bytes);
        assert_eq!(otp::unbase32(&again), Some(bytes.clone()));
        let code = otp::totp(&bytes, u64::try_from(text.len()).unwrap_or(0));
        assert_eq!(code.len(), 6);
    }
});
