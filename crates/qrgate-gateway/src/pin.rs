//! The payment PIN: its shape, its salted hash, and the attempts counted
//! toward the lock-out (shared with one-time passwords).

use std::num::NonZeroU32;

use ring::pbkdf2;
use ring::rand::SecureRandom;

use qrgate_core::Timestamp;
use serde_json::json;

use qrgate_store::{CredentialChange, Credentials, Store};

use crate::trail::{self, Action, By};
use crate::{Error, Gateway, Kind, Principal, Role};

/// PBKDF2 iterations of a PIN hash (OWASP 2023 for PBKDF2-HMAC-SHA256).
const PBKDF2_ITERATIONS: u32 = 600_000;
/// Iterations of a hash made before the pepper (`v2$`) came: still read.
const LEGACY_ITERATIONS: u32 = 100_000;
/// The stored form of a peppered hash: `v2$` + hex.
const V2: &str = "v2$";

/// A PIN hash: HMAC-SHA256 of the PIN under the server's pepper (kept
/// sealed apart from the hashes), then PBKDF2-HMAC-SHA256 with a salt.
/// `v2$` + hex.
pub fn hash_pin(pin: &str, salt: &[u8], pepper: &[u8]) -> String {
    format!("{V2}{}", hex::encode(derive(pin, salt, Some(pepper))))
}

/// What PBKDF2 is run over, and how many times: the peppered PIN (new
/// hashes), or the PIN itself (hashes from before the pepper).
fn pbkdf2_input(pin: &str, pepper: Option<&[u8]>) -> (Vec<u8>, NonZeroU32) {
    let (secret, n) = match pepper {
        Some(p) => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, p);
            (
                ring::hmac::sign(&key, pin.as_bytes()).as_ref().to_vec(),
                PBKDF2_ITERATIONS,
            )
        }
        None => (pin.as_bytes().to_vec(), LEGACY_ITERATIONS),
    };
    (secret, NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

fn derive(pin: &str, salt: &[u8], pepper: Option<&[u8]>) -> [u8; 32] {
    let mut out = [0_u8; 32];
    let (secret, iterations) = pbkdf2_input(pin, pepper);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        &secret,
        &mut out,
    );
    out
}

/// Does `pin` match the stored hash (a `v2$` one with the pepper, or one
/// from before the pepper)? `pbkdf2::verify` compares in constant time.
fn matches(pin: &str, salt: &[u8], stored: &str, pepper: &[u8]) -> bool {
    let (hex_hash, pepper) = match stored.strip_prefix(V2) {
        Some(h) => (h, Some(pepper)),
        None => (stored, None),
    };
    let Some(want) = hex::decode(hex_hash).ok() else {
        return false;
    };
    let (secret, iterations) = pbkdf2_input(pin, pepper);
    pbkdf2::verify(pbkdf2::PBKDF2_HMAC_SHA256, iterations, salt, &secret, &want).is_ok()
}

/// A right PIN: the credentials it was checked against, and whether its
/// attempt was the one that reached the lock-out.
pub(crate) struct PinProof {
    pub(crate) creds: Credentials,
    pub(crate) locked: bool,
}

fn pin_already_set() -> Error {
    Error::new(
        Kind::Conflict,
        "pin_already_set",
        "a payment PIN is set: change it with current_pin, or ask the operator to reset it",
    )
    .with_rule("QG-CREDENTIALS")
}

/// Six digits, not all the same, not a run up or down.
fn check_pin_shape(pin: &str) -> Result<(), Error> {
    let d: Vec<u8> = pin.bytes().collect();
    if d.len() != 6 || !d.iter().all(u8::is_ascii_digit) {
        return Err(Error::bad_request(
            "invalid_pin",
            "the payment PIN is exactly six digits",
        ));
    }
    let same = d.windows(2).all(|w| w[0] == w[1]);
    let up = d.windows(2).all(|w| w[1] == w[0] + 1);
    let down = d.windows(2).all(|w| w[0] == w[1] + 1);
    if same || up || down {
        return Err(Error::bad_request(
            "weak_pin",
            "choose a PIN that is not one digit repeated or a run like 123456",
        ));
    }
    Ok(())
}

impl<S: Store> Gateway<S> {
    /// A salted hash of a new PIN: (hash, salt), hex. PBKDF2 runs on the
    /// blocking pool, not on the async workers that serve requests.
    async fn new_pin_hash(&self, pin: &str) -> Result<(String, String), Error> {
        check_pin_shape(pin)?;
        self.pin_hash_of(pin).await
    }

    /// The salted, peppered hash of a PIN whatever its shape (an old PIN
    /// chosen before today's shape rules is rehashed as it is).
    async fn pin_hash_of(&self, pin: &str) -> Result<(String, String), Error> {
        let mut salt = [0_u8; 16];
        self.rng.fill(&mut salt).map_err(Error::internal)?;
        let pin = pin.to_owned();
        let pepper = self.pin_pepper.clone();
        let hash = tokio::task::spawn_blocking(move || hash_pin(&pin, &salt, &pepper))
            .await
            .map_err(Error::internal)?;
        Ok((hash, hex::encode(salt)))
    }

    /// Set the consumer's payment PIN where there is none yet (or none
    /// since an operator reset it). Changing a PIN is [`Self::change_pin`].
    pub async fn set_pin(&self, p: &Principal, pin: &str) -> Result<(), Error> {
        let customer = p.customer()?.to_owned();
        check_pin_shape(pin)?;
        // PBKDF2 is costly: a PIN that is set is refused before any hash is
        // made (the conditional write below is what guards; this spares the
        // work of a loop of refused calls).
        if self
            .store
            .credentials(&customer)
            .await?
            .is_some_and(|c| c.has_pin())
        {
            return Err(pin_already_set());
        }
        let (hash, salt) = self.new_pin_hash(pin).await?;
        let change = CredentialChange::PinSet {
            customer_id: customer.clone(),
            hash,
            salt,
        };
        if !self
            .credential_change(p, change, Action::PinSet, &customer)
            .await?
        {
            return Err(pin_already_set());
        }
        Ok(())
    }

    /// Change the consumer's PIN. The current one is checked first: it
    /// counts toward the lock-out, and a lock-out in force refuses the
    /// change (a change never clears one).
    pub async fn change_pin(&self, p: &Principal, current: &str, new: &str) -> Result<(), Error> {
        let customer = p.customer()?.to_owned();
        check_pin_shape(new)?;
        // The current PIN is checked (and drawn on QG-RATE-PIN) before the
        // costly hash of the new one is made.
        let proven = self.check_pin(&customer, current).await?;
        let (hash, salt) = self.new_pin_hash(new).await?;
        self.store
            .pin_refund(&customer, self.now(), proven.locked)
            .await?;
        let change = CredentialChange::PinReplace {
            customer_id: customer.clone(),
            expected: proven.creds.pin_hash,
            hash,
            salt,
        };
        if !self
            .credential_change(p, change, Action::PinChanged, &customer)
            .await?
        {
            return Err(Error::new(
                Kind::Conflict,
                "pin_changed",
                "the PIN was changed or reset meanwhile; try again with the current one",
            ));
        }
        Ok(())
    }

    /// An operator's reset: the customer has no PIN until they set a new
    /// one (POST /v1/me/pin without current_pin). A lock-out in force stays.
    pub async fn reset_pin(&self, p: &Principal, customer_id: &str) -> Result<(), Error> {
        p.require(&[Role::Admin])?;
        self.customer_row(customer_id)
            .await?
            .ok_or_else(|| Error::not_found("customer", customer_id))?;
        let change = CredentialChange::PinReset {
            customer_id: customer_id.to_owned(),
        };
        if !self
            .credential_change(p, change, Action::PinReset, customer_id)
            .await?
        {
            return Err(Error::new(
                Kind::Conflict,
                "pin_not_set",
                format!("customer {customer_id} has no PIN to reset"),
            ));
        }
        Ok(())
    }

    /// Check a PIN, counting failures and locking after too many. A right
    /// PIN does not clear the failures by itself: the caller does, once every
    /// element of the confirmation is proven (else a known PIN would let
    /// someone guess one-time passwords without ever locking).
    pub(crate) async fn check_pin(&self, customer: &str, pin: &str) -> Result<PinProof, Error> {
        let now = self.now();
        self.pin_rate(customer, now)?;
        let cr = self
            .store
            .credentials(customer)
            .await?
            .filter(Credentials::has_pin)
            .ok_or_else(|| {
                Error::new(
                    Kind::Conflict,
                    "pin_not_set",
                    "set a payment PIN first (POST /v1/me/pin)",
                )
            })?;
        if let Some(until) = cr.locked_until.filter(|u| *u > now) {
            return Err(Error::new(
                Kind::Conflict,
                "pin_locked",
                format!("too many wrong PINs; try again after {until}"),
            )
            .with_rule("QG-PIN-LOCKOUT"));
        }
        let salt = hex::decode(&cr.pin_salt)
            .ok()
            .ok_or_else(|| Error::internal("stored salt is not hex"))?;
        // The attempt is taken (and counted) before the PIN is checked, so
        // concurrent guesses never get more than the allowed number checked.
        let (left, locks) = self.take_attempt(customer, now).await?;
        // On the blocking pool: PBKDF2 must not stall the async workers.
        let (guess, stored, pepper) =
            (pin.to_owned(), cr.pin_hash.clone(), self.pin_pepper.clone());
        let matches = tokio::task::spawn_blocking(move || matches(&guess, &salt, &stored, &pepper))
            .await
            .map_err(Error::internal)?;
        if matches {
            let mut cr = cr;
            if !cr.pin_hash.starts_with(V2) {
                match self.upgrade_pin_hash(customer, pin, &cr.pin_hash).await {
                    Some((hash, salt)) => (cr.pin_hash, cr.pin_salt) = (hash, salt),
                    // Another check of the same PIN upgraded it first: what
                    // is stored now is what a change must replace, if it is
                    // still this PIN.
                    None => cr = self.still_this_pin(customer, pin, cr).await?,
                }
            }
            // Counted until the whole confirmation is proven (pin_succeeded).
            return Ok(PinProof {
                creds: cr,
                locked: locks.is_some(),
            });
        }
        let msg = match locks {
            Some(u) => format!("wrong PIN; the PIN is now locked until {u}"),
            None => format!("wrong PIN; {left} attempts left before the PIN locks"),
        };
        Err(Error::new(Kind::Unprocessable, "pin_incorrect", msg).with_rule("QG-PIN-LOCKOUT"))
    }

    /// A hash from before the pepper, just matched by the right PIN, is
    /// replaced by a peppered one at today's iterations: with a fresh salt,
    /// and only if the hash is still the one matched (a PIN changed in the
    /// meantime stays changed). A failure here leaves the old hash, which
    /// still works, and does not fail the check. The new (hash, salt) when
    /// it was written.
    async fn upgrade_pin_hash(
        &self,
        customer: &str,
        pin: &str,
        matched: &str,
    ) -> Option<(String, String)> {
        let upgraded = async {
            let (hash, salt) = self.pin_hash_of(pin).await?;
            let change = CredentialChange::PinReplace {
                customer_id: customer.to_owned(),
                expected: matched.to_owned(),
                hash: hash.clone(),
                salt: salt.clone(),
            };
            let audit = trail::entry(
                Action::PinRehashed,
                customer.to_owned(),
                By::Gateway("gateway"),
                json!({ "scheme": "v2" }),
            );
            let written = self
                .store
                .change_credential(change, self.now(), audit)
                .await?;
            Ok::<_, Error>(written.then_some((hash, salt)))
        };
        match upgraded.await {
            Ok(new) => new,
            Err(e) => {
                tracing::warn!(customer, error = %e, "an old PIN hash was not upgraded; it still works");
                None
            }
        }
    }

    /// The credentials as stored now, when `pin` still matches them (a
    /// concurrent check upgraded the hash); otherwise the ones matched.
    async fn still_this_pin(
        &self,
        customer: &str,
        pin: &str,
        matched: Credentials,
    ) -> Result<Credentials, Error> {
        let Some(now) = self.store.credentials(customer).await? else {
            return Ok(matched);
        };
        if now.pin_hash == matched.pin_hash {
            return Ok(matched);
        }
        let Some(salt) = hex::decode(&now.pin_salt).ok() else {
            return Ok(matched);
        };
        let (guess, stored, pepper) = (
            pin.to_owned(),
            now.pin_hash.clone(),
            self.pin_pepper.clone(),
        );
        let same = tokio::task::spawn_blocking(move || matches(&guess, &salt, &stored, &pepper))
            .await
            .map_err(Error::internal)?;
        Ok(if same { now } else { matched })
    }

    /// QG-RATE-PIN: every PIN or one-time-password try of a customer draws
    /// on a per-minute allowance, before anything else (a try while the PIN
    /// is locked counts too).
    pub(crate) fn pin_rate(&self, customer: &str, now: Timestamp) -> Result<(), Error> {
        self.rate.draw(
            crate::limiter::Bucket::Pin,
            customer,
            self.limits.rate_pin,
            now,
            true,
        )
    }

    /// Take one PIN or one-time-password attempt toward the lock-out,
    /// before the secret is checked: the attempts left after it, and the
    /// lock it set if it was the last. `pin_locked` while a lock is in force.
    pub(crate) async fn take_attempt(
        &self,
        customer: &str,
        now: Timestamp,
    ) -> Result<(i64, Option<Timestamp>), Error> {
        let lock_until = now
            .checked_add_seconds(self.limits.pin_lock_minutes * 60)
            .unwrap_or(now);
        match self
            .store
            .pin_attempt(customer, now, self.limits.pin_lockout, lock_until)
            .await?
        {
            Some((failures, locked)) => Ok((
                (self.limits.pin_lockout - failures).max(0),
                locked.filter(|u| *u > now),
            )),
            None => {
                let until = self
                    .store
                    .credentials(customer)
                    .await?
                    .and_then(|c| c.locked_until)
                    .unwrap_or(lock_until);
                Err(Error::new(
                    Kind::Conflict,
                    "pin_locked",
                    format!("too many wrong PINs or one-time passwords; try again after {until}"),
                )
                .with_rule("QG-PIN-LOCKOUT"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_shapes() {
        assert!(check_pin_shape("493817").is_ok());
        for bad in [
            "12345", "1234567", "12a456", "000000", "123456", "654321", "777777",
        ] {
            assert!(check_pin_shape(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pin_hash_depends_on_salt_pin_and_pepper() {
        let (salt, pepper) = (b"salt-one-16bytes", b"pepper-of-32-bytes-for-the-tests");
        let a = hash_pin("493817", salt, pepper);
        assert!(a.starts_with("v2$") && a.len() == 3 + 64, "{a}");
        assert_eq!(a, hash_pin("493817", salt, pepper));
        assert_ne!(a, hash_pin("493818", salt, pepper));
        assert_ne!(a, hash_pin("493817", b"salt-two-16bytes", pepper));
        // Without the pepper (a copy of the database alone) it matches nothing.
        assert_ne!(a, hash_pin("493817", salt, b"another-pepper"));
        assert!(matches("493817", salt, &a, pepper));
        assert!(!matches("493817", salt, &a, b"another-pepper"));
        assert!(!matches("493818", salt, &a, pepper));
        // A hash from before the pepper (100,000 iterations, no prefix) still matches.
        let legacy = hex::encode(derive("493817", salt, None));
        assert!(matches("493817", salt, &legacy, pepper));
        assert!(!matches("111119", salt, &legacy, pepper));
    }
}
