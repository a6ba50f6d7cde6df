//! Typed, prefixed random identifiers: `mch_…`, `pay_…`.
//!
//! An id is a prefix, an underscore and 26 lowercase base32 characters
//! (RFC 4648 alphabet) holding 128 bits: all random ([`Id::generate`]) or a
//! millisecond timestamp and 80 random bits ([`Id::generate_at`]). The type says what the id
//! names, so a `PaymentId` cannot be passed where a `MerchantId` is wanted.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;

use ring::rand::SecureRandom;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Characters of the random part.
pub const ID_BODY_LEN: usize = 26;

/// What an id string was wrong about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("id {found:?} should start with \"{expected}_\"")]
    WrongPrefix {
        expected: &'static str,
        found: String,
    },
    #[error("id {0:?} is malformed: expected a prefix, '_' and 26 characters of a-z, 2-7")]
    Malformed(String),
    #[error("the system random number generator failed")]
    Rng,
}

/// What kind of thing an id names; supplies the prefix.
pub trait IdKind: 'static {
    const PREFIX: &'static str;
}

/// An identifier of a `K`.
pub struct Id<K: IdKind> {
    bytes: [u8; 16],
    _kind: PhantomData<fn() -> K>,
}

impl<K: IdKind> Id<K> {
    /// A fresh id from a cryptographic random source.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, IdError> {
        let mut bytes = [0_u8; 16];
        rng.fill(&mut bytes).map_err(|_| IdError::Rng)?;
        Ok(Self::from_bytes(bytes))
    }

    /// A fresh id whose first 48 bits are the creation time in Unix
    /// milliseconds and the other 80 random: ids made close together sort
    /// close together, so inserting them touches the right-hand end of an
    /// index instead of a random page. 80 random bits keep them unguessable.
    pub fn generate_at(unix_millis: i64, rng: &dyn SecureRandom) -> Result<Self, IdError> {
        let mut bytes = [0_u8; 16];
        rng.fill(&mut bytes[6..]).map_err(|_| IdError::Rng)?;
        let ms = u64::try_from(unix_millis).unwrap_or(0).to_be_bytes();
        bytes[..6].copy_from_slice(&ms[2..]);
        Ok(Self::from_bytes(bytes))
    }

    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Id {
            bytes,
            _kind: PhantomData,
        }
    }

    /// The 16 bytes (used where a compact binary form is needed).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.bytes
    }

    pub fn prefix() -> &'static str {
        K::PREFIX
    }

    fn body(&self) -> [u8; ID_BODY_LEN] {
        let mut out = [0_u8; ID_BODY_LEN];
        let mut acc: u32 = 0;
        let mut bits = 0_u32;
        let mut n = 0;
        for &b in &self.bytes {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out[n] = ALPHABET[((acc >> bits) & 31) as usize];
                n += 1;
            }
        }
        // 128 bits = 25 full groups + 3 bits, padded with zeros on the right.
        out[n] = ALPHABET[((acc << (5 - bits)) & 31) as usize];
        out
    }
}

fn decode_body(body: &str) -> Option<[u8; 16]> {
    if body.len() != ID_BODY_LEN {
        return None;
    }
    let mut out = [0_u8; 16];
    let mut acc: u32 = 0;
    let mut bits = 0_u32;
    let mut n = 0;
    for ch in body.bytes() {
        let v = ALPHABET.iter().position(|&a| a == ch)? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            if n < 16 {
                out[n] = ((acc >> bits) & 0xff) as u8;
            }
            n += 1;
        }
        acc &= (1 << bits) - 1;
    }
    // Canonical form only: the 2 padding bits must be zero.
    if n != 16 || acc != 0 {
        return None;
    }
    Some(out)
}

impl<K: IdKind> FromStr for Id<K> {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let Some((prefix, body)) = s.split_once('_') else {
            return Err(IdError::Malformed(s.to_owned()));
        };
        if prefix != K::PREFIX {
            return Err(IdError::WrongPrefix {
                expected: K::PREFIX,
                found: s.to_owned(),
            });
        }
        decode_body(body)
            .map(Self::from_bytes)
            .ok_or_else(|| IdError::Malformed(s.to_owned()))
    }
}

impl<K: IdKind> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = self.body();
        f.write_str(K::PREFIX)?;
        f.write_str("_")?;
        // The alphabet is ASCII, so this never fails.
        f.write_str(std::str::from_utf8(&body).map_err(|_| fmt::Error)?)
    }
}

impl<K: IdKind> fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<K: IdKind> Clone for Id<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: IdKind> Copy for Id<K> {}
impl<K: IdKind> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl<K: IdKind> Eq for Id<K> {}
impl<K: IdKind> Hash for Id<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}
impl<K: IdKind> PartialOrd for Id<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: IdKind> Ord for Id<K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}

impl<K: IdKind> Serialize for Id<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de, K: IdKind> Deserialize<'de> for Id<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

macro_rules! id_kinds {
    ($($(#[$doc:meta])* $alias:ident => $kind:ident, $prefix:literal;)*) => {
        /// Marker types naming what an id identifies.
        pub mod kind {
            $(
                #[derive(Debug)]
                pub enum $kind {}
                impl super::IdKind for $kind {
                    const PREFIX: &'static str = $prefix;
                }
            )*
        }
        $( $(#[$doc])* pub type $alias = Id<kind::$kind>; )*
    };
}

id_kinds! {
    /// A merchant (`mch_`).
    MerchantId => Merchant, "mch";
    /// A consumer / customer (`cus_`).
    CustomerId => Customer, "cus";
    /// A consumer device with an enrolled key (`dev_`).
    DeviceId => Device, "dev";
    /// A merchant's static collection code (`sqr_`).
    StaticCodeId => StaticCode, "sqr";
    /// A merchant's dynamic order (`ord_`).
    OrderId => Order, "ord";
    /// A payment (`pay_`).
    PaymentId => Payment, "pay";
    /// A refund (`ref_`).
    RefundId => Refund, "ref";
    /// A customer's digital certificate key (`crt_`).
    CertificateId => Certificate, "crt";
    /// A block-list entry (`blk_`).
    BlockId => Block, "blk";
    /// A customer's linked card (`crd_`).
    CardId => Card, "crd";
    /// A customer's one-time-password enrollment (`otp_`).
    OtpId => Otp, "otp";
    /// An outbox event, delivered to webhooks (`evt_`).
    EventId => Event, "evt";
    /// A payer's complaint about a payment (`cmp_`).
    ComplaintId => Complaint, "cmp";
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn display_parse_round_trip() {
        let rng = SystemRandom::new();
        for _ in 0..100 {
            let id = PaymentId::generate(&rng).unwrap();
            let s = id.to_string();
            assert!(s.starts_with("pay_"));
            assert_eq!(s.len(), 4 + ID_BODY_LEN);
            assert_eq!(s.parse::<PaymentId>().unwrap(), id);
        }
    }

    #[test]
    fn time_ordered_ids_carry_the_millisecond_and_differ_in_the_rest() {
        let rng = SystemRandom::new();
        let at = 1_795_000_000_123_i64;
        let a = PaymentId::generate_at(at, &rng).unwrap();
        let b = PaymentId::generate_at(at, &rng).unwrap();
        let later = PaymentId::generate_at(at + 1, &rng).unwrap();
        assert_eq!(&a.as_bytes()[..6], &at.to_be_bytes()[2..]);
        assert_eq!(a.as_bytes()[..6], b.as_bytes()[..6]);
        assert_ne!(a, b, "80 random bits");
        assert!(later.as_bytes()[..6] > a.as_bytes()[..6]);
        // Same millisecond: the first 9 characters (45 bits) are shared.
        assert_eq!(a.to_string()[..4 + 9], b.to_string()[..4 + 9]);
        assert_eq!(a.to_string().parse::<PaymentId>().unwrap(), a);
    }

    #[test]
    fn known_vectors() {
        let zero = MerchantId::from_bytes([0; 16]);
        assert_eq!(zero.to_string(), "mch_aaaaaaaaaaaaaaaaaaaaaaaaaa");
        let ff = MerchantId::from_bytes([0xff; 16]);
        // RFC 4648: sixteen 0xff bytes encode as 25 '7's then '4' (bits 111 + 00 padding).
        assert_eq!(ff.to_string(), format!("mch_{}4", "7".repeat(25)));
    }

    #[test]
    fn rejects_wrong_prefix_and_non_canonical() {
        let rng = SystemRandom::new();
        let id = PaymentId::generate(&rng).unwrap().to_string();
        let as_merchant = id.parse::<MerchantId>();
        assert!(matches!(as_merchant, Err(IdError::WrongPrefix { .. })));
        assert!(matches!(
            "pay_".parse::<PaymentId>(),
            Err(IdError::Malformed(_))
        ));
        assert!(matches!(
            "pay".parse::<PaymentId>(),
            Err(IdError::Malformed(_))
        ));
        assert!(
            "pay_AAAAAAAAAAAAAAAAAAAAAAAAAA"
                .parse::<PaymentId>()
                .is_err()
        );
        // Last character must have its two padding bits clear: 'b' (=1) is not canonical.
        assert!(
            "pay_aaaaaaaaaaaaaaaaaaaaaaaaab"
                .parse::<PaymentId>()
                .is_err()
        );
        assert!(
            "pay_aaaaaaaaaaaaaaaaaaaaaaaaae"
                .parse::<PaymentId>()
                .is_ok()
        );
    }
}
