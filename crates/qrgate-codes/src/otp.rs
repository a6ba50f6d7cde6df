//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA1,
//! 30-second steps, 6 digits, the parameters every authenticator app
//! speaks; and the RFC 4648 base32 their secrets are written in.

use ring::hmac;

use qrgate_core::Timestamp;

pub const PERIOD_SECONDS: i64 = 30;
pub const DIGITS: usize = 6;
/// Steps of clock drift accepted either side of now.
pub const DRIFT_STEPS: i64 = 1;
const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32, upper case, no padding.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buf, mut bits) = (0_u32, 0_u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(B32[((buf >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(B32[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Inverse of [`base32`]; `None` on any other character.
pub fn unbase32(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0_u32, 0_u32);
    for c in s.bytes() {
        let v = B32.iter().position(|&x| x == c)?;
        buf = (buf << 5) | u32::try_from(v).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buf >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// The code for one time step (RFC 4226 dynamic truncation).
pub fn totp(secret: &[u8], step: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let b = tag.as_ref();
    let off = usize::from(b.last().copied().unwrap_or(0) & 0x0f);
    let word = b
        .get(off..off + 4)
        .map(|w| u32::from_be_bytes([w[0] & 0x7f, w[1], w[2], w[3]]))
        .unwrap_or(0);
    format!("{:06}", word % 1_000_000)
}

/// The time step of `at`.
pub fn step_of(at: Timestamp) -> i64 {
    at.unix_seconds().div_euclid(PERIOD_SECONDS)
}

/// Equal without an early exit, so timing does not tell how much matched.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA1 seed, the low six digits of each 8-digit value.
        let seed = b"12345678901234567890";
        for (t, code) in [
            (59_u64, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(totp(seed, t / 30), code, "t = {t}");
        }
    }

    #[test]
    fn base32_known() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(unbase32("MZXW6YTBOI").unwrap(), b"foobar");
        assert_eq!(unbase32("mzxw"), None);
    }

    proptest! {
        #[test]
        fn base32_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(unbase32(&base32(&bytes)), Some(bytes));
        }

        #[test]
        fn codes_are_six_digits(secret in proptest::collection::vec(any::<u8>(), 1..40), step in any::<u64>()) {
            let c = totp(&secret, step);
            prop_assert_eq!(c.len(), 6);
            prop_assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
