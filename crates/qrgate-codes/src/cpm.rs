//! Consumer payment codes (CPM), QR presentation: a compact signed token.
//! Each carries a validity period and a single-use nonce (rule
//! BCP-MODE-CPM-DYNAMIC), and only opaque bytes naming its holder, never
//! personal data (BCP-CODE-NO-SENSITIVE).
//!
//! Text form: `QRG:` followed by the RFC 4648 base32 (upper case, no
//! padding) of the bytes below, so the whole code is in the QR
//! alphanumeric set. Two layouts, told apart by the first byte:
//!
//! Version 1, signed by the gateway (`POST /v1/payment-codes`), 103 bytes
//! (169 characters, QR version 7 at level M):
//!
//! | bytes  | field |
//! |--------|-------|
//! | 0      | version, 1 |
//! | 1      | signer, 2 = the gateway |
//! | 2..10  | key id, 8 ASCII characters |
//! | 10..26 | handle: the issued numeric code and random bytes |
//! | 26..30 | issued at, Unix seconds, big endian |
//! | 30     | validity in seconds, 1 to 60 |
//! | 31..39 | nonce, 8 random bytes (single use) |
//! | 39..103| Ed25519 signature over `"qrgate-cpm-v1\0"` ‖ bytes 0..39 |
//!
//! Version 2, signed offline by the consumer's enrolled device, 123 bytes
//! (201 characters, QR version 8 at level M). It names its device only by
//! a sealed handle ([`crate::handle`]) the gateway gave the device, a fresh
//! one per code, so a merchant cannot link two codes of one device; no key
//! id either, which would be as fixed as the device:
//!
//! | bytes  | field |
//! |--------|-------|
//! | 0      | version, 2 |
//! | 1      | signer, 1 = the device |
//! | 2..46  | sealed handle, 44 bytes |
//! | 46..50 | issued at, Unix seconds, big endian |
//! | 50     | validity in seconds, 1 to 60 |
//! | 51..59 | nonce, 8 random bytes (single use) |
//! | 59..123| Ed25519 signature over `"qrgate-cpm-v2\0"` ‖ bytes 0..59 |
//!
//! A version 1 code signed by a device (the layout before sealed handles,
//! which carried the device id itself) is refused.
//!
//! Decoding ([`UnverifiedToken::decode`]) checks the shape only; the caller
//! finds the public key from the holder (the gateway's key id, or the
//! device its handle opens to), then calls [`UnverifiedToken::verify`]
//! (signature, then time window). Verification is pure CPU and happens
//! outside any database transaction.

use ring::rand::SecureRandom;
use serde::Serialize;

use qrgate_core::Timestamp;

use crate::handle::{SEALED_LEN, SealedHandle};
use crate::keyring::{KeyId, SignatureError, verify_ed25519};

pub const PREFIX: &str = "QRG:";
/// The layout of gateway-signed codes.
pub const VERSION_GATEWAY: u8 = 1;
/// The layout of device-signed codes (sealed handles).
pub const VERSION_DEVICE: u8 = 2;
/// Signed bytes of a gateway-signed code.
pub const SIGNED_LEN: usize = 39;
pub const TOKEN_LEN: usize = SIGNED_LEN + 64;
/// Signed bytes of a device-signed code.
pub const DEVICE_SIGNED_LEN: usize = 2 + SEALED_LEN + 13;
pub const DEVICE_TOKEN_LEN: usize = DEVICE_SIGNED_LEN + 64;
/// The longest validity a token may declare.
pub const MAX_TTL_SECONDS: u8 = 60;
const DOMAIN_V1: &[u8] = b"qrgate-cpm-v1\0";
const DOMAIN_V2: &[u8] = b"qrgate-cpm-v2\0";
const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Who signed the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signer {
    /// The consumer's device, offline, with its enrolled Ed25519 key.
    Device,
    /// The gateway, online (`POST /v1/payment-codes`).
    Gateway,
}

/// Who the code is for, as the code says it: what the gateway looks the
/// signer's key up by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "signer", rename_all = "snake_case")]
pub enum Holder {
    /// Signed by the gateway's key `kid`; the handle holds the issued
    /// numeric code (first 8 bytes) and random bytes.
    Gateway {
        kid: KeyId,
        #[serde(with = "hex16")]
        handle: [u8; 16],
    },
    /// Signed by a device, named by a handle only the gateway can open.
    Device { sealed: SealedHandle },
}

/// Why a payment token was refused; each has a stable [`code`](Self::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("payment token is malformed: {0}")]
    Malformed(&'static str),
    #[error("payment token version {0} is not supported")]
    UnsupportedVersion(u8),
    #[error("payment token signature rejected: {0}")]
    Signature(#[from] SignatureError),
    #[error("payment token expired at {expired_at}")]
    Expired { expired_at: Timestamp },
    #[error("payment token is not valid until {valid_from}: check the device clock")]
    NotYetValid { valid_from: Timestamp },
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) | TokenError::UnsupportedVersion(_) => {
                "payment_code_malformed"
            }
            TokenError::Signature(SignatureError::UnknownKey(_)) => "payment_code_unknown_key",
            TokenError::Signature(SignatureError::RetiredKey(_)) => "payment_code_unknown_key",
            TokenError::Signature(_) => "payment_code_bad_signature",
            TokenError::Expired { .. } => "payment_code_expired",
            TokenError::NotYetValid { .. } => "payment_code_not_yet_valid",
        }
    }
}

/// The signed content of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenClaims {
    #[serde(flatten)]
    pub holder: Holder,
    pub issued_at_seconds: u32,
    pub ttl_seconds: u8,
    #[serde(with = "hex8")]
    pub nonce: [u8; 8],
}

mod hex16 {
    pub fn serialize<S: serde::Serializer>(b: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&super::hex(b))
    }
}
mod hex8 {
    pub fn serialize<S: serde::Serializer>(b: &[u8; 8], s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&super::hex(b))
    }
}

fn hex(b: &[u8]) -> String {
    ::hex::encode(b)
}

impl TokenClaims {
    /// Claims for a new token issued now with a fresh random nonce.
    pub fn new(
        holder: Holder,
        now: Timestamp,
        ttl_seconds: u8,
        rng: &dyn SecureRandom,
    ) -> Result<TokenClaims, TokenError> {
        if ttl_seconds == 0 || ttl_seconds > MAX_TTL_SECONDS {
            return Err(TokenError::Malformed("validity must be 1 to 60 seconds"));
        }
        let issued_at_seconds = u32::try_from(now.unix_seconds())
            .map_err(|_| TokenError::Malformed("time out of range"))?;
        let mut nonce = [0_u8; 8];
        rng.fill(&mut nonce)
            .map_err(|_| TokenError::Malformed("random generator failed"))?;
        Ok(TokenClaims {
            holder,
            issued_at_seconds,
            ttl_seconds,
            nonce,
        })
    }

    pub fn signer(&self) -> Signer {
        match self.holder {
            Holder::Gateway { .. } => Signer::Gateway,
            Holder::Device { .. } => Signer::Device,
        }
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(DEVICE_SIGNED_LEN);
        match &self.holder {
            Holder::Gateway { kid, handle } => {
                b.extend_from_slice(&[VERSION_GATEWAY, 2]);
                b.extend_from_slice(kid.as_str().as_bytes());
                b.extend_from_slice(handle);
            }
            Holder::Device { sealed } => {
                b.extend_from_slice(&[VERSION_DEVICE, 1]);
                b.extend_from_slice(&sealed.0);
            }
        }
        b.extend_from_slice(&self.issued_at_seconds.to_be_bytes());
        b.push(self.ttl_seconds);
        b.extend_from_slice(&self.nonce);
        b
    }

    /// The message an Ed25519 key signs for these claims.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut m = match self.holder {
            Holder::Gateway { .. } => DOMAIN_V1.to_vec(),
            Holder::Device { .. } => DOMAIN_V2.to_vec(),
        };
        m.extend_from_slice(&self.signed_bytes());
        m
    }

    /// Assemble the token text from the claims and a signature over
    /// [`signing_message`](Self::signing_message).
    pub fn encode(&self, signature: &[u8; 64]) -> String {
        let mut bytes = self.signed_bytes();
        bytes.extend_from_slice(signature);
        format!("{PREFIX}{}", base32_encode(&bytes))
    }

    /// Sign with a raw Ed25519 key pair (a device key, or the gateway's).
    pub fn sign_with(&self, pair: &ring::signature::Ed25519KeyPair) -> String {
        let sig = pair.sign(&self.signing_message());
        let mut s = [0_u8; 64];
        s.copy_from_slice(sig.as_ref());
        self.encode(&s)
    }

    pub fn issued_at(&self) -> Timestamp {
        Timestamp::from_unix_millis(i64::from(self.issued_at_seconds) * 1000)
    }

    pub fn expires_at(&self) -> Timestamp {
        Timestamp::from_unix_millis(
            (i64::from(self.issued_at_seconds) + i64::from(self.ttl_seconds)) * 1000,
        )
    }
}

/// A token whose shape is right but whose signature is not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedToken {
    pub claims: TokenClaims,
    signature: [u8; 64],
}

/// How much a device clock may run ahead of the gateway's.
pub const DEFAULT_MAX_FUTURE_SKEW_MS: i64 = 5_000;

impl UnverifiedToken {
    pub fn decode(text: &str) -> Result<UnverifiedToken, TokenError> {
        let body = text
            .strip_prefix(PREFIX)
            .ok_or(TokenError::Malformed("does not start with QRG:"))?;
        let bytes = base32_decode(body).ok_or(TokenError::Malformed("not canonical base32"))?;
        let (holder, rest) = match (bytes.first(), bytes.get(1)) {
            (Some(&VERSION_GATEWAY), Some(2)) if bytes.len() == TOKEN_LEN => {
                let kid = std::str::from_utf8(&bytes[2..10])
                    .ok()
                    .and_then(|s| KeyId::parse(s).ok())
                    .ok_or(TokenError::Malformed("key id is not valid"))?;
                let mut handle = [0_u8; 16];
                handle.copy_from_slice(&bytes[10..26]);
                (Holder::Gateway { kid, handle }, &bytes[26..])
            }
            (Some(&VERSION_GATEWAY), Some(1)) => {
                return Err(TokenError::Malformed(
                    "a device-signed code must be version 2, with a sealed handle in place of the device id",
                ));
            }
            (Some(&VERSION_DEVICE), Some(1)) if bytes.len() == DEVICE_TOKEN_LEN => {
                let mut sealed = [0_u8; SEALED_LEN];
                sealed.copy_from_slice(&bytes[2..2 + SEALED_LEN]);
                let holder = Holder::Device {
                    sealed: SealedHandle(sealed),
                };
                (holder, &bytes[2 + SEALED_LEN..])
            }
            (Some(&VERSION_DEVICE), Some(2)) => {
                return Err(TokenError::Malformed(
                    "a version 2 code is signed by a device",
                ));
            }
            (Some(&VERSION_GATEWAY | &VERSION_DEVICE), Some(1 | 2)) => {
                return Err(TokenError::Malformed("wrong length"));
            }
            (Some(&VERSION_GATEWAY | &VERSION_DEVICE), _) => {
                return Err(TokenError::Malformed("unknown signer"));
            }
            (Some(&v), _) => return Err(TokenError::UnsupportedVersion(v)),
            (None, _) => return Err(TokenError::Malformed("wrong length")),
        };
        // What is left: issued at (4), validity (1), nonce (8), signature (64).
        let ttl_seconds = rest[4];
        if ttl_seconds == 0 || ttl_seconds > MAX_TTL_SECONDS {
            return Err(TokenError::Malformed("validity must be 1 to 60 seconds"));
        }
        let mut iat = [0_u8; 4];
        iat.copy_from_slice(&rest[..4]);
        let mut nonce = [0_u8; 8];
        nonce.copy_from_slice(&rest[5..13]);
        let mut signature = [0_u8; 64];
        signature.copy_from_slice(&rest[13..]);
        Ok(UnverifiedToken {
            claims: TokenClaims {
                holder,
                issued_at_seconds: u32::from_be_bytes(iat),
                ttl_seconds,
                nonce,
            },
            signature,
        })
    }

    /// Check the signature with the signer's raw public key, then the time
    /// window: `issued_at - skew <= now < issued_at + ttl`.
    pub fn verify(
        self,
        public_key: &[u8],
        now: Timestamp,
        max_future_skew_ms: i64,
    ) -> Result<TokenClaims, TokenError> {
        verify_ed25519(public_key, &self.claims.signing_message(), &self.signature)?;
        let issued = self.claims.issued_at();
        if now.millis_since(issued) < -max_future_skew_ms {
            return Err(TokenError::NotYetValid { valid_from: issued });
        }
        let expires = self.claims.expires_at();
        if now >= expires {
            return Err(TokenError::Expired {
                expired_at: expires,
            });
        }
        Ok(self.claims)
    }
}

fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 8 / 5 + 1);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(B32[((acc >> bits) & 31) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(B32[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Strict decoding: upper case alphabet only, no padding, zero pad bits.
fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for ch in s.bytes() {
        let v = B32.iter().position(|&c| c == ch)? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    if acc != 0 || bits >= 5 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn pair(rng: &SystemRandom) -> Ed25519KeyPair {
        let doc = Ed25519KeyPair::generate_pkcs8(rng).unwrap();
        Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap()
    }

    #[test]
    fn base32_round_trip_and_strictness() {
        for n in 0..40 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base32_decode(&base32_encode(&data)).unwrap(), data);
        }
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert!(base32_decode("MZXW6YTBOJ").is_none(), "non-zero pad bits");
        assert!(base32_decode("mzxw6ytboi").is_none(), "lower case");
        assert!(base32_decode("MZXW6YTBOI=").is_none(), "padding");
    }

    #[test]
    fn sign_decode_verify_and_time_window() {
        let rng = SystemRandom::new();
        let kp = pair(&rng);
        let now = Timestamp::from_unix_millis(1_800_000_000_000);
        let holder = Holder::Device {
            sealed: SealedHandle([7; SEALED_LEN]),
        };
        let claims = TokenClaims::new(holder, now, 60, &rng).unwrap();
        let text = claims.sign_with(&kp);
        assert_eq!(text.len(), 4 + 197);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b':')
        );
        let pk = kp.public_key().as_ref().to_vec();
        let ok = UnverifiedToken::decode(&text)
            .unwrap()
            .verify(&pk, now, 5000)
            .unwrap();
        assert_eq!(ok, claims);
        let later = now.checked_add_seconds(59).unwrap();
        assert!(
            UnverifiedToken::decode(&text)
                .unwrap()
                .verify(&pk, later, 5000)
                .is_ok()
        );
        let at_expiry = now.checked_add_seconds(60).unwrap();
        assert_eq!(
            UnverifiedToken::decode(&text)
                .unwrap()
                .verify(&pk, at_expiry, 5000)
                .unwrap_err()
                .code(),
            "payment_code_expired"
        );
        let early = now.checked_add_millis(-5001).unwrap();
        assert_eq!(
            UnverifiedToken::decode(&text)
                .unwrap()
                .verify(&pk, early, 5000)
                .unwrap_err()
                .code(),
            "payment_code_not_yet_valid"
        );
        let other = pair(&rng);
        assert_eq!(
            UnverifiedToken::decode(&text)
                .unwrap()
                .verify(other.public_key().as_ref(), now, 5000)
                .unwrap_err()
                .code(),
            "payment_code_bad_signature"
        );
    }

    #[test]
    fn every_single_character_change_is_rejected() {
        let rng = SystemRandom::new();
        let kp = pair(&rng);
        let now = Timestamp::from_unix_millis(1_800_000_000_000);
        let holder = Holder::Gateway {
            kid: KeyId::parse("gw234567").unwrap(),
            handle: [1; 16],
        };
        let claims = TokenClaims::new(holder, now, 30, &rng).unwrap();
        let text = claims.sign_with(&kp);
        assert_eq!(text.len(), 4 + 165);
        let pk = kp.public_key().as_ref().to_vec();
        let chars: Vec<char> = text.chars().collect();
        for i in 0..chars.len() {
            for repl in ['A', 'Q', '7', 'z', ':'] {
                if chars[i] == repl {
                    continue;
                }
                let mut m = chars.clone();
                m[i] = repl;
                let m: String = m.into_iter().collect();
                let r = UnverifiedToken::decode(&m).and_then(|t| t.verify(&pk, now, 5000));
                assert!(r.is_err(), "change at {i} to {repl} accepted");
            }
        }
    }

    #[test]
    fn ttl_over_60_is_refused() {
        let rng = SystemRandom::new();
        let now = Timestamp::from_unix_millis(0);
        assert!(
            TokenClaims::new(
                Holder::Device {
                    sealed: SealedHandle([0; SEALED_LEN])
                },
                now,
                61,
                &rng
            )
            .is_err()
        );
    }

    /// The layout before sealed handles (a device-signed version 1 code,
    /// with the device id in it) is refused, however well it is signed.
    #[test]
    fn a_version_1_device_code_is_refused() {
        let rng = SystemRandom::new();
        let kp = pair(&rng);
        let now = Timestamp::from_unix_millis(1_800_000_000_000);
        let holder = Holder::Gateway {
            kid: KeyId::parse("dev23456").unwrap(),
            handle: [7; 16],
        };
        let claims = TokenClaims::new(holder, now, 60, &rng).unwrap();
        let mut bytes = claims.signed_bytes();
        bytes[1] = 1;
        let sig = kp.sign(&[DOMAIN_V1, &bytes].concat());
        bytes.extend_from_slice(sig.as_ref());
        let text = format!("{PREFIX}{}", base32_encode(&bytes));
        let e = UnverifiedToken::decode(&text).unwrap_err();
        assert_eq!(e.code(), "payment_code_malformed");
        assert!(e.to_string().contains("version 2"), "{e}");
    }
}
