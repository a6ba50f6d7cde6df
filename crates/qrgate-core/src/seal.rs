//! Secrets at rest: AES-256-GCM (ring) under a master key (a
//! key-encryption key kept outside the database: a file or the
//! environment). A sealed value is text:
//!
//! `sealed:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`
//!
//! The key id (the first 8 bytes of SHA-256 of the key, hex) names the
//! master key that sealed it, so several keys can be known at once while a
//! rotation re-seals the rows. Each value is bound to where it belongs (the
//! associated data, e.g. `webhook:we_…`), so a sealed value copied into
//! another row does not open. A value without the prefix is a plaintext row
//! from before sealing: it opens as itself, and is re-sealed at start.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::rand::SecureRandom;

const PREFIX: &str = "sealed:v1:";
const KEY_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("a master key is 32 bytes in base64url (43 characters) or hex (64)")]
    BadKey,
    #[error("the value was sealed under master key {0}, which this gateway was not given")]
    UnknownKey(String),
    #[error("a sealed value does not open: it was changed, or belongs to another row")]
    Tampered,
    #[error("no randomness for a nonce")]
    Rng,
}

/// One master key.
pub struct MasterKey {
    id: String,
    key: LessSafeKey,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    pub fn from_bytes(raw: &[u8]) -> Result<MasterKey, SealError> {
        if raw.len() != KEY_LEN {
            return Err(SealError::BadKey);
        }
        let id = hex::encode(&digest(&SHA256, raw).as_ref()[..8]);
        let key = UnboundKey::new(&AES_256_GCM, raw).map_err(|_| SealError::BadKey)?;
        Ok(MasterKey {
            id,
            key: LessSafeKey::new(key),
        })
    }

    /// A key written as base64url (43 characters) or hex (64); white space
    /// around it (a trailing newline in a file) is ignored.
    pub fn parse(text: &str) -> Result<MasterKey, SealError> {
        let t = text.trim();
        let raw = if t.len() == 2 * KEY_LEN {
            (0..t.len())
                .step_by(2)
                .map(|i| t.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or(SealError::BadKey)?
        } else {
            URL_SAFE_NO_PAD.decode(t).map_err(|_| SealError::BadKey)?
        };
        MasterKey::from_bytes(&raw)
    }

    /// A new random key and its base64url text (what goes in the file).
    pub fn generate(rng: &dyn SecureRandom) -> Result<(MasterKey, String), SealError> {
        let mut raw = [0_u8; KEY_LEN];
        rng.fill(&mut raw).map_err(|_| SealError::Rng)?;
        Ok((MasterKey::from_bytes(&raw)?, URL_SAFE_NO_PAD.encode(raw)))
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Seals with the current master key; opens with any key it knows.
#[derive(Debug)]
pub struct Sealer {
    current: MasterKey,
    older: Vec<MasterKey>,
}

impl Sealer {
    pub fn new(current: MasterKey, older: Vec<MasterKey>) -> Sealer {
        Sealer { current, older }
    }

    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    /// Seal `plain` for the place `aad` names.
    pub fn seal(
        &self,
        plain: &str,
        aad: &str,
        rng: &dyn SecureRandom,
    ) -> Result<String, SealError> {
        let mut nonce = [0_u8; NONCE_LEN];
        rng.fill(&mut nonce).map_err(|_| SealError::Rng)?;
        let mut buf = plain.as_bytes().to_vec();
        self.current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SealError::Tampered)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!(
            "{PREFIX}{}:{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(out)
        ))
    }

    /// Open a stored value sealed for `aad`; a plaintext value (from before
    /// sealing) is returned as it is.
    pub fn open(&self, stored: &str, aad: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (kid, body) = rest.split_once(':').ok_or(SealError::Tampered)?;
        let key = std::iter::once(&self.current)
            .chain(&self.older)
            .find(|k| k.id == kid)
            .ok_or_else(|| SealError::UnknownKey(kid.to_owned()))?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Tampered)?;
        if raw.len() < NONCE_LEN {
            return Err(SealError::Tampered);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Tampered)?;
        let mut buf = sealed.to_vec();
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
            .map_err(|_| SealError::Tampered)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Tampered)
    }

    /// Is `stored` sealed under the current key (nothing to re-seal)?
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(kid, _)| kid == self.current.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ring::rand::SystemRandom;

    fn key(n: u8) -> MasterKey {
        MasterKey::from_bytes(&[n; 32]).unwrap()
    }

    #[test]
    fn sealed_values_open_only_where_they_belong_and_under_a_known_key() {
        let rng = SystemRandom::new();
        let s = Sealer::new(key(1), vec![]);
        let sealed = s.seal("whsec_abc", "webhook:we_1", &rng).unwrap();
        assert!(sealed.starts_with("sealed:v1:") && !sealed.contains("whsec_abc"));
        assert!(s.is_current(&sealed));
        assert_eq!(s.open(&sealed, "webhook:we_1").unwrap(), "whsec_abc");
        // Another row's place: refused.
        assert_eq!(s.open(&sealed, "webhook:we_2"), Err(SealError::Tampered));
        // Two seals of one value differ (a fresh nonce each).
        assert_ne!(sealed, s.seal("whsec_abc", "webhook:we_1", &rng).unwrap());
        // A flipped character: refused.
        let mut bad = sealed.clone().into_bytes();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            s.open(std::str::from_utf8(&bad).unwrap(), "webhook:we_1"),
            Err(SealError::Tampered)
        );
        // A plaintext row from before sealing opens as itself.
        assert_eq!(
            s.open("whsec_plain", "webhook:we_1").unwrap(),
            "whsec_plain"
        );
        assert!(!s.is_current("whsec_plain"));
        // After a rotation the old key still opens; a stranger's does not.
        let rotated = Sealer::new(key(2), vec![key(1)]);
        assert_eq!(rotated.open(&sealed, "webhook:we_1").unwrap(), "whsec_abc");
        assert!(!rotated.is_current(&sealed));
        let stranger = Sealer::new(key(3), vec![]);
        assert!(matches!(
            stranger.open(&sealed, "webhook:we_1"),
            Err(SealError::UnknownKey(_))
        ));
    }

    #[test]
    fn keys_parse_from_base64url_or_hex_and_nothing_else() {
        let rng = SystemRandom::new();
        let (k, text) = MasterKey::generate(&rng).unwrap();
        assert_eq!(MasterKey::parse(&format!("{text}\n")).unwrap().id(), k.id());
        let hex: String = [7_u8; 32].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(MasterKey::parse(&hex).unwrap().id(), key(7).id());
        for bad in [
            "",
            "short",
            &"z".repeat(64),
            &URL_SAFE_NO_PAD.encode([1_u8; 16]),
        ] {
            assert!(MasterKey::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            format!("{:?}", key(1)),
            format!("MasterKey({})", key(1).id())
        );
    }

    proptest! {
        #[test]
        fn any_text_round_trips(plain in "\\PC{0,200}", aad in "[a-z_:0-9]{0,20}") {
            let rng = SystemRandom::new();
            let s = Sealer::new(key(9), vec![]);
            let sealed = s.seal(&plain, &aad, &rng).unwrap();
            prop_assert_eq!(s.open(&sealed, &aad).unwrap(), plain);
        }

        #[test]
        fn garbage_never_panics(text in "sealed:v1:[0-9a-f]{16}:\\PC{0,80}") {
            let s = Sealer::new(key(9), vec![]);
            let _ = s.open(&text, "x");
        }
    }
}
