//! Ed25519 keys with key ids: one active signer; older keys still verify
//! until retired. Verification fails closed, with a distinct error for an
//! unknown key id, a retired key, a malformed signature and a bad signature.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SecureRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use qrgate_core::Timestamp;

pub const PUBLIC_KEY_LEN: usize = 32;
pub const SIGNATURE_LEN: usize = 64;
/// Characters of a key id.
pub const KEY_ID_LEN: usize = 8;
const KID_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A key id: 8 characters of `a-z` and `2-9` (no `l`, `o`, `0`, `1`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

impl KeyId {
    pub fn parse(s: &str) -> Result<KeyId, KeyError> {
        if s.len() == KEY_ID_LEN && s.bytes().all(|b| KID_ALPHABET.contains(&b)) {
            Ok(KeyId(s.to_owned()))
        } else {
            Err(KeyError::MalformedKeyId(s.to_owned()))
        }
    }

    pub fn generate(rng: &dyn SecureRandom) -> Result<KeyId, KeyError> {
        let mut b = [0_u8; KEY_ID_LEN];
        rng.fill(&mut b).map_err(|_| KeyError::Rng)?;
        Ok(KeyId(
            b.iter()
                .map(|x| KID_ALPHABET[usize::from(x & 31)] as char)
                .collect(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyId {
    type Error = KeyError;
    fn try_from(s: String) -> Result<Self, KeyError> {
        KeyId::parse(&s)
    }
}

impl From<KeyId> for String {
    fn from(k: KeyId) -> String {
        k.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Signs new codes and verifies.
    Active,
    /// Verifies codes signed before a rotation; signs nothing.
    VerifyOnly,
    /// Verifies nothing any more.
    Retired,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key id {0:?} is malformed: expected 8 characters of a-z and 2-9")]
    MalformedKeyId(String),
    #[error("the system random number generator failed")]
    Rng,
    #[error("stored key {kid} is not a valid Ed25519 PKCS#8 document")]
    BadStoredKey { kid: String },
    #[error("key {0} does not exist")]
    NoSuchKey(String),
    #[error("key {0} is the active signer; rotate first, then retire it")]
    RetireActive(String),
    #[error("keyring has {0} active keys; it needs exactly one")]
    ActiveCount(usize),
    #[error("keyring file is not valid JSON: {0}")]
    Json(String),
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("unknown key id {0:?}")]
    UnknownKey(String),
    #[error("key {0} is retired and verifies nothing")]
    RetiredKey(String),
    #[error("signature is malformed: {0}")]
    Malformed(&'static str),
    #[error("signature does not verify")]
    BadSignature,
}

impl SignatureError {
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::UnknownKey(_) => "unknown_key_id",
            SignatureError::RetiredKey(_) => "retired_key",
            SignatureError::Malformed(_) => "signature_malformed",
            SignatureError::BadSignature => "bad_signature",
        }
    }
}

/// Verify an Ed25519 signature with a raw 32-byte public key.
pub fn verify_ed25519(public: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
    if public.len() != PUBLIC_KEY_LEN {
        return Err(SignatureError::Malformed("public key is not 32 bytes"));
    }
    if sig.len() != SIGNATURE_LEN {
        return Err(SignatureError::Malformed("signature is not 64 bytes"));
    }
    UnparsedPublicKey::new(&ED25519, public)
        .verify(msg, sig)
        .map_err(|_| SignatureError::BadSignature)
}

/// Anything that can check a signature made under a key id.
pub trait Verifier: Send + Sync {
    fn verify(&self, kid: &KeyId, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError>;
}

/// A public key as `GET /v1/keys` publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub kid: KeyId,
    /// Always "Ed25519".
    pub alg: String,
    /// Raw 32-byte key, base64url without padding.
    pub public_key: String,
    pub state: KeyState,
    pub created_at: Timestamp,
}

impl PublicKey {
    pub fn raw(&self) -> Option<[u8; PUBLIC_KEY_LEN]> {
        URL_SAFE_NO_PAD
            .decode(&self.public_key)
            .ok()
            .and_then(|v| v.try_into().ok())
    }
}

/// Only public keys: what a consumer app or auditor holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PublicKeySet {
    pub keys: Vec<PublicKey>,
}

impl Verifier for PublicKeySet {
    fn verify(&self, kid: &KeyId, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        let key = self
            .keys
            .iter()
            .find(|k| &k.kid == kid)
            .ok_or_else(|| SignatureError::UnknownKey(kid.to_string()))?;
        if key.state == KeyState::Retired {
            return Err(SignatureError::RetiredKey(kid.to_string()));
        }
        let raw = key
            .raw()
            .ok_or(SignatureError::Malformed("published key is not 32 bytes"))?;
        verify_ed25519(&raw, msg, sig)
    }
}

struct Entry {
    public: PublicKey,
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

/// The gateway's signing keys.
pub struct Keyring {
    entries: Vec<Entry>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.public))
            .finish()
    }
}

/// How a keyring is written to disk or to the database (private keys included).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredKey {
    pub kid: KeyId,
    pub state: KeyState,
    pub created_at: Timestamp,
    /// PKCS#8 v2 document, standard base64.
    pub pkcs8: String,
}

fn new_entry(rng: &dyn SecureRandom, now: Timestamp) -> Result<Entry, KeyError> {
    let doc = Ed25519KeyPair::generate_pkcs8(rng).map_err(|_| KeyError::Rng)?;
    let kid = KeyId::generate(rng)?;
    entry_from(kid.clone(), KeyState::Active, now, doc.as_ref().to_vec())
}

fn entry_from(
    kid: KeyId,
    state: KeyState,
    created_at: Timestamp,
    pkcs8: Vec<u8>,
) -> Result<Entry, KeyError> {
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| KeyError::BadStoredKey {
        kid: kid.to_string(),
    })?;
    let public = PublicKey {
        kid,
        alg: "Ed25519".into(),
        public_key: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        state,
        created_at,
    };
    Ok(Entry {
        public,
        pair,
        pkcs8,
    })
}

/// The RFC 8410 / RFC 5958 (v2, with public key) PKCS#8 document of an Ed25519 seed.
pub fn pkcs8_from_seed(seed: &[u8; 32]) -> Result<Vec<u8>, KeyError> {
    let pair = Ed25519KeyPair::from_seed_unchecked(seed)
        .map_err(|_| KeyError::BadStoredKey { kid: "seed".into() })?;
    let mut doc = vec![
        0x30, 0x53, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    doc.extend_from_slice(seed);
    doc.extend_from_slice(&[0xa1, 0x23, 0x03, 0x21, 0x00]);
    doc.extend_from_slice(pair.public_key().as_ref());
    Ok(doc)
}

impl Keyring {
    /// A new keyring with one active key.
    pub fn generate(rng: &dyn SecureRandom, now: Timestamp) -> Result<Keyring, KeyError> {
        Ok(Keyring {
            entries: vec![new_entry(rng, now)?],
        })
    }

    fn active(&self) -> &Entry {
        // The constructors guarantee exactly one active entry.
        self.entries
            .iter()
            .find(|e| e.public.state == KeyState::Active)
            .unwrap_or(&self.entries[0])
    }

    /// A keyring with one active key derived from a 32-byte Ed25519 seed
    /// (RFC 8032). For test vectors and keys imported from elsewhere; new
    /// keys should come from [`Keyring::generate`].
    pub fn from_seed(
        kid: KeyId,
        seed: &[u8; 32],
        created_at: Timestamp,
    ) -> Result<Keyring, KeyError> {
        Ok(Keyring {
            entries: vec![entry_from(
                kid,
                KeyState::Active,
                created_at,
                pkcs8_from_seed(seed)?,
            )?],
        })
    }

    pub fn active_kid(&self) -> &KeyId {
        &self.active().public.kid
    }

    /// Sign with the active key.
    pub fn sign(&self, msg: &[u8]) -> (KeyId, [u8; SIGNATURE_LEN]) {
        let e = self.active();
        let mut out = [0_u8; SIGNATURE_LEN];
        out.copy_from_slice(e.pair.sign(msg).as_ref());
        (e.public.kid.clone(), out)
    }

    /// Make a new active key; the old one keeps verifying.
    pub fn rotate(&mut self, rng: &dyn SecureRandom, now: Timestamp) -> Result<KeyId, KeyError> {
        let fresh = new_entry(rng, now)?;
        let kid = fresh.public.kid.clone();
        for e in &mut self.entries {
            if e.public.state == KeyState::Active {
                e.public.state = KeyState::VerifyOnly;
            }
        }
        self.entries.push(fresh);
        Ok(kid)
    }

    /// Stop a key from verifying. The active key cannot be retired.
    pub fn retire(&mut self, kid: &KeyId) -> Result<(), KeyError> {
        let e = self
            .entries
            .iter_mut()
            .find(|e| &e.public.kid == kid)
            .ok_or_else(|| KeyError::NoSuchKey(kid.to_string()))?;
        if e.public.state == KeyState::Active {
            return Err(KeyError::RetireActive(kid.to_string()));
        }
        e.public.state = KeyState::Retired;
        Ok(())
    }

    pub fn public_keys(&self) -> PublicKeySet {
        PublicKeySet {
            keys: self.entries.iter().map(|e| e.public.clone()).collect(),
        }
    }

    pub fn to_stored(&self) -> Vec<StoredKey> {
        self.entries
            .iter()
            .map(|e| StoredKey {
                kid: e.public.kid.clone(),
                state: e.public.state,
                created_at: e.public.created_at,
                pkcs8: STANDARD.encode(&e.pkcs8),
            })
            .collect()
    }

    pub fn from_stored(keys: &[StoredKey]) -> Result<Keyring, KeyError> {
        let entries = keys
            .iter()
            .map(|k| {
                let pkcs8 = STANDARD
                    .decode(&k.pkcs8)
                    .map_err(|_| KeyError::BadStoredKey {
                        kid: k.kid.to_string(),
                    })?;
                entry_from(k.kid.clone(), k.state, k.created_at, pkcs8)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let active = entries
            .iter()
            .filter(|e| e.public.state == KeyState::Active)
            .count();
        if active != 1 {
            return Err(KeyError::ActiveCount(active));
        }
        Ok(Keyring { entries })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_stored()).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Keyring, KeyError> {
        let keys: Vec<StoredKey> =
            serde_json::from_str(s).map_err(|e| KeyError::Json(e.to_string()))?;
        Keyring::from_stored(&keys)
    }
}

impl Verifier for Keyring {
    fn verify(&self, kid: &KeyId, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        let e = self
            .entries
            .iter()
            .find(|e| &e.public.kid == kid)
            .ok_or_else(|| SignatureError::UnknownKey(kid.to_string()))?;
        if e.public.state == KeyState::Retired {
            return Err(SignatureError::RetiredKey(kid.to_string()));
        }
        verify_ed25519(e.pair.public_key().as_ref(), msg, sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn rotate_verify_retire() {
        let rng = SystemRandom::new();
        let t = Timestamp::from_unix_millis(0);
        let mut ring = Keyring::generate(&rng, t).unwrap();
        let (k1, s1) = ring.sign(b"hello");
        assert!(ring.verify(&k1, b"hello", &s1).is_ok());
        assert_eq!(
            ring.verify(&k1, b"hellp", &s1),
            Err(SignatureError::BadSignature)
        );
        let k2 = ring.rotate(&rng, t).unwrap();
        assert_ne!(k1, k2);
        assert_eq!(ring.active_kid(), &k2);
        // The old key still verifies what it signed.
        assert!(ring.verify(&k1, b"hello", &s1).is_ok());
        assert!(ring.public_keys().verify(&k1, b"hello", &s1).is_ok());
        assert_eq!(
            ring.retire(&k2),
            Err(KeyError::RetireActive(k2.to_string()))
        );
        ring.retire(&k1).unwrap();
        assert_eq!(
            ring.verify(&k1, b"hello", &s1),
            Err(SignatureError::RetiredKey(k1.to_string()))
        );
        assert_eq!(
            ring.public_keys().verify(&k1, b"hello", &s1),
            Err(SignatureError::RetiredKey(k1.to_string()))
        );
        let unknown = KeyId::parse("zzzzzzzz").unwrap();
        assert!(matches!(
            ring.verify(&unknown, b"x", &s1),
            Err(SignatureError::UnknownKey(_))
        ));
        assert!(matches!(
            ring.verify(&k2, b"x", &s1[..63]),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn stored_round_trip() {
        let rng = SystemRandom::new();
        let t = Timestamp::from_unix_millis(7);
        let mut ring = Keyring::generate(&rng, t).unwrap();
        ring.rotate(&rng, t).unwrap();
        let json = ring.to_json();
        let back = Keyring::from_json(&json).unwrap();
        assert_eq!(back.public_keys().keys, ring.public_keys().keys);
        let (kid, sig) = back.sign(b"m");
        assert!(ring.verify(&kid, b"m", &sig).is_ok());
        assert!(Keyring::from_json("[]").is_err());
    }

    #[test]
    fn key_ids() {
        assert!(KeyId::parse("abcd2345").is_ok());
        assert!(KeyId::parse("abcd234").is_err());
        assert!(KeyId::parse("abcd2341").is_err());
        assert!(KeyId::parse("ABCD2345").is_err());
        let rng = SystemRandom::new();
        let k = KeyId::generate(&rng).unwrap();
        assert_eq!(KeyId::parse(k.as_str()).unwrap(), k);
    }
}

/// An Ed25519 key kept as a base64url seed in a private file (what
/// `qrgate code device-key` and `qrgate-conformance keygen` write).
pub mod seed_file {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ring::signature::Ed25519KeyPair;
    use std::path::Path;

    /// Make a fresh key and write its seed to `path` (mode 0600 on Unix).
    /// Refuses to overwrite an existing file.
    pub fn create(path: &Path) -> Result<Ed25519KeyPair, String> {
        use std::io::Write;
        let mut seed = [0_u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .map_err(|_| "no randomness".to_owned())?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| "key generation failed".to_owned())?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        opts.open(path)
            .and_then(|mut f| writeln!(f, "{}", URL_SAFE_NO_PAD.encode(seed)))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(pair)
    }

    /// Read a key written by [`create`].
    pub fn load(path: &Path) -> Result<Ed25519KeyPair, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let seed = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| format!("{}: not a base64url seed", path.display()))?;
        Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| format!("{}: not a 32-byte Ed25519 seed", path.display()))
    }
}
