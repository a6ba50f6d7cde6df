//! Sealed device handles: how a device-signed payment code names its device
//! without letting a merchant link two payments of one device.
//!
//! A code a device signs offline must tell the gateway which device signed
//! it, and a fixed device id would let every merchant that scans it link
//! the payer's payments across shops. So the gateway hands each device a
//! batch of sealed handles: the device id encrypted with AES-256-GCM under
//! a key only the gateway holds, each with its own random nonce. A device
//! puts a fresh one in each code; to anyone without the gateway's key two
//! handles of one device are unrelated random bytes. The gateway opens the
//! handle to find the device (no table to look up, nothing stored per
//! handle). A device that runs out before it is next online may reuse its
//! last handle: its codes still pay, but those that share a handle can be
//! linked.
//!
//! Layout (44 bytes): nonce (12) ‖ ciphertext of the 16-byte device id (16)
//! ‖ GCM tag (16); the additional data is [`AAD`]. Random 96-bit nonces
//! under one key are safe for about 2^32 handles (NIST SP 800-38D §8.3).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::SecureRandom;

/// Bytes of a sealed handle.
pub const SEALED_LEN: usize = NONCE_LEN + 16 + 16;
/// Binds a seal to its use: a handle is not any other AES-GCM text of ours.
const AAD: &[u8] = b"qrgate-device-handle-v1";

/// A device id sealed for one payment code.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SealedHandle(pub [u8; SEALED_LEN]);

impl std::fmt::Debug for SealedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedHandle({self})")
    }
}

/// Text form: base64url without padding (59 characters), as the API gives it.
impl std::fmt::Display for SealedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sealed handle is 44 bytes in base64url without padding (59 characters)")]
pub struct HandleTextError;

impl std::str::FromStr for SealedHandle {
    type Err = HandleTextError;
    fn from_str(s: &str) -> Result<SealedHandle, HandleTextError> {
        let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| HandleTextError)?;
        let bytes = <[u8; SEALED_LEN]>::try_from(raw.as_slice()).map_err(|_| HandleTextError)?;
        Ok(SealedHandle(bytes))
    }
}

impl serde::Serialize for SealedHandle {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The gateway's key for sealing and opening device handles.
pub struct HandleKey(LessSafeKey);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    #[error("a handle key is 32 bytes")]
    KeyLength,
    #[error("the random generator failed")]
    Random,
    #[error("the handle was not sealed by this gateway, or was altered")]
    NotOurs,
}

impl HandleKey {
    pub fn new(raw: &[u8]) -> Result<HandleKey, HandleError> {
        let key = UnboundKey::new(&AES_256_GCM, raw).map_err(|_| HandleError::KeyLength)?;
        Ok(HandleKey(LessSafeKey::new(key)))
    }

    /// Seal a device id with a fresh random nonce.
    pub fn seal(
        &self,
        device: [u8; 16],
        rng: &dyn SecureRandom,
    ) -> Result<SealedHandle, HandleError> {
        let mut nonce = [0_u8; NONCE_LEN];
        rng.fill(&mut nonce).map_err(|_| HandleError::Random)?;
        let mut body = device;
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut body,
            )
            .map_err(|_| HandleError::Random)?;
        let mut out = [0_u8; SEALED_LEN];
        out[..NONCE_LEN].copy_from_slice(&nonce);
        out[NONCE_LEN..NONCE_LEN + 16].copy_from_slice(&body);
        out[NONCE_LEN + 16..].copy_from_slice(tag.as_ref());
        Ok(SealedHandle(out))
    }

    /// The device id inside a handle this key sealed.
    pub fn open(&self, sealed: &SealedHandle) -> Result<[u8; 16], HandleError> {
        let mut nonce = [0_u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed.0[..NONCE_LEN]);
        let mut body = sealed.0[NONCE_LEN..].to_vec();
        let plain = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut body,
            )
            .map_err(|_| HandleError::NotOurs)?;
        <[u8; 16]>::try_from(&*plain).map_err(|_| HandleError::NotOurs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn handles_of_one_device_differ_and_open_to_it() {
        let rng = SystemRandom::new();
        let key = HandleKey::new(&[7; 32]).unwrap();
        let device = [42; 16];
        let a = key.seal(device, &rng).unwrap();
        let b = key.seal(device, &rng).unwrap();
        assert_ne!(a, b, "two handles of one device must not be equal");
        assert_ne!(a.0[NONCE_LEN..], b.0[NONCE_LEN..]);
        assert_eq!(key.open(&a).unwrap(), device);
        assert_eq!(key.open(&b).unwrap(), device);
        let text = a.to_string();
        assert_eq!(text.len(), 59);
        assert_eq!(text.parse::<SealedHandle>().unwrap(), a);
    }

    #[test]
    fn another_key_or_any_changed_byte_does_not_open() {
        let rng = SystemRandom::new();
        let key = HandleKey::new(&[7; 32]).unwrap();
        let other = HandleKey::new(&[8; 32]).unwrap();
        let h = key.seal([1; 16], &rng).unwrap();
        assert_eq!(other.open(&h), Err(HandleError::NotOurs));
        for i in 0..SEALED_LEN {
            let mut bad = h;
            bad.0[i] ^= 1;
            assert_eq!(key.open(&bad), Err(HandleError::NotOurs), "byte {i}");
        }
        assert!(HandleKey::new(&[0; 31]).is_err());
        assert!("short".parse::<SealedHandle>().is_err());
    }
}
