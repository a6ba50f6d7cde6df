//! Consumer payment codes (CPM), QR presentation: a compact signed token.
//! Each carries a validity period and a single-use nonce (rule
//! BCP-MODE-CPM-DYNAMIC), and only an opaque device handle, never personal
//! data (BCP-CODE-NO-SENSITIVE).
//!
//! Text form: `QRG:` followed by the RFC 4648 base32 (upper case, no
//! padding) of 103 bytes, so the whole code fits QR alphanumeric mode
//! (169 characters: version 7 at error-correction level M).
//!
//! | bytes  | field |
//! |--------|-------|
//! | 0      | version, 1 |
//! | 1      | signer: 1 = the consumer's enrolled device key, 2 = the gateway |
//! | 2..10  | key id, 8 ASCII characters |
//! | 10..26 | handle: 16 opaque bytes naming the device (no personal data) |
//! | 26..30 | issued at, Unix seconds, big endian |
//! | 30     | validity in seconds, 1 to 60 |
//! | 31..39 | nonce, 8 random bytes (single use) |
//! | 39..103| Ed25519 signature over `"qrgate-cpm-v1\0"` ‖ bytes 0..39 |
//!
//! Decoding ([`UnverifiedToken::decode`]) checks the shape only; the caller
//! looks the public key up by signer, key id and handle, then calls
//! [`UnverifiedToken::verify`] (signature, then time window). Verification
//! is pure CPU and happens outside any database transaction.

use ring::rand::SecureRandom;
use serde::Serialize;

use qrgate_core::Timestamp;

use crate::keyring::{KeyId, SignatureError, verify_ed25519};

pub const PREFIX: &str = "QRG:";
pub const VERSION: u8 = 1;
pub const SIGNED_LEN: usize = 39;
pub const TOKEN_LEN: usize = SIGNED_LEN + 64;
/// The longest validity a token may declare.
pub const MAX_TTL_SECONDS: u8 = 60;
const DOMAIN: &[u8] = b"qrgate-cpm-v1\0";
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

impl Signer {
    fn byte(self) -> u8 {
        match self {
            Signer::Device => 1,
            Signer::Gateway => 2,
        }
    }
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
    pub signer: Signer,
    pub kid: KeyId,
    #[serde(with = "hex16")]
    pub handle: [u8; 16],
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
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl TokenClaims {
    /// Claims for a new token issued now with a fresh random nonce.
    pub fn new(
        signer: Signer,
        kid: KeyId,
        handle: [u8; 16],
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
            signer,
            kid,
            handle,
            issued_at_seconds,
            ttl_seconds,
            nonce,
        })
    }

    fn signed_bytes(&self) -> [u8; SIGNED_LEN] {
        let mut b = [0_u8; SIGNED_LEN];
        b[0] = VERSION;
        b[1] = self.signer.byte();
        b[2..10].copy_from_slice(self.kid.as_str().as_bytes());
        b[10..26].copy_from_slice(&self.handle);
        b[26..30].copy_from_slice(&self.issued_at_seconds.to_be_bytes());
        b[30] = self.ttl_seconds;
        b[31..39].copy_from_slice(&self.nonce);
        b
    }

    /// The message an Ed25519 key signs for these claims.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut m = DOMAIN.to_vec();
        m.extend_from_slice(&self.signed_bytes());
        m
    }

    /// Assemble the token text from the claims and a signature over
    /// [`signing_message`](Self::signing_message).
    pub fn encode(&self, signature: &[u8; 64]) -> String {
        let mut bytes = Vec::with_capacity(TOKEN_LEN);
        bytes.extend_from_slice(&self.signed_bytes());
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
        if bytes.len() != TOKEN_LEN {
            return Err(TokenError::Malformed("wrong length"));
        }
        if bytes[0] != VERSION {
            return Err(TokenError::UnsupportedVersion(bytes[0]));
        }
        let signer = match bytes[1] {
            1 => Signer::Device,
            2 => Signer::Gateway,
            _ => return Err(TokenError::Malformed("unknown signer")),
        };
        let kid = std::str::from_utf8(&bytes[2..10])
            .ok()
            .and_then(|s| KeyId::parse(s).ok())
            .ok_or(TokenError::Malformed("key id is not valid"))?;
        let ttl_seconds = bytes[30];
        if ttl_seconds == 0 || ttl_seconds > MAX_TTL_SECONDS {
            return Err(TokenError::Malformed("validity must be 1 to 60 seconds"));
        }
        let mut handle = [0_u8; 16];
        handle.copy_from_slice(&bytes[10..26]);
        let mut iat = [0_u8; 4];
        iat.copy_from_slice(&bytes[26..30]);
        let mut nonce = [0_u8; 8];
        nonce.copy_from_slice(&bytes[31..39]);
        let mut signature = [0_u8; 64];
        signature.copy_from_slice(&bytes[39..]);
        Ok(UnverifiedToken {
            claims: TokenClaims {
                signer,
                kid,
                handle,
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
        let kid = KeyId::parse("dev23456").unwrap();
        let now = Timestamp::from_unix_millis(1_800_000_000_000);
        let claims = TokenClaims::new(Signer::Device, kid, [7; 16], now, 60, &rng).unwrap();
        let text = claims.sign_with(&kp);
        assert_eq!(text.len(), 4 + 165);
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
        let claims = TokenClaims::new(
            Signer::Gateway,
            KeyId::parse("gw234567").unwrap(),
            [1; 16],
            now,
            30,
            &rng,
        )
        .unwrap();
        let text = claims.sign_with(&kp);
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
                Signer::Device,
                KeyId::parse("dev23456").unwrap(),
                [0; 16],
                now,
                61,
                &rng
            )
            .is_err()
        );
    }
}
