//! Secrets at rest: the gateway's signing keys, webhook and one-time-password
//! secrets and the PIN pepper are sealed under the deployment's master key
//! (see [`qrgate_core::seal`]), re-sealed at start when a row is plaintext
//! or sealed under an older key, and opened where they are used.

use std::sync::Arc;

use ring::rand::SystemRandom;

use qrgate_codes::keyring::{KeyState, Keyring, StoredKey as CodeKey};
use qrgate_core::Timestamp;
use qrgate_core::seal::Sealer;
use qrgate_store::{Store, StoredKey};

use crate::{Error, Kind};

/// Seals the secrets the gateway keeps at rest (signing keys, webhook and
/// one-time-password secrets) under the deployment's master key, and opens
/// them; without a master key (a library user, a test) they are kept as
/// they are. See [`qrgate_core::seal`].
#[derive(Clone, Default)]
pub(crate) struct Secrets(pub(crate) Option<Arc<Sealer>>, pub(crate) Strict);

/// Whether a plaintext value is still read as itself: only while the rows
/// written before sealing are being sealed at start. Afterwards a value
/// without a seal is one somebody planted in the database, and is refused.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Strict {
    #[default]
    Migrating,
    Sealed,
}

/// Where a secret belongs: what its seal is bound to.
pub(crate) fn secret_place(slot: qrgate_store::SecretSlot, id: &str) -> String {
    use qrgate_store::SecretSlot;
    match slot {
        SecretSlot::GatewayKey => format!("gateway_key:{id}"),
        SecretSlot::WebhookSecret | SecretSlot::WebhookPrevious => format!("webhook:{id}"),
        SecretSlot::OtpSecret => format!("otp:{id}"),
        SecretSlot::GatewaySecret => format!("gateway_secret:{id}"),
    }
}

/// A secret that does not open: the detail (row, key id) goes to the log
/// only; the answer says what to do.
fn unreadable(what: &str, e: impl std::fmt::Display) -> Error {
    tracing::error!(secret = what, error = %e, "a sealed secret does not open");
    Error::new(
        Kind::Unavailable,
        "secrets_unreadable",
        "a sealed secret does not open with this gateway's master key; start it with the key the secrets were sealed under (see its log and `qrgate secrets rotate-master`)",
    )
}

impl Secrets {
    pub(crate) fn seal(&self, plain: &str, place: &str) -> Result<String, Error> {
        match &self.0 {
            None => Ok(plain.to_owned()),
            Some(s) => s
                .seal(plain, place, &SystemRandom::new())
                .map_err(Error::internal),
        }
    }

    pub(crate) fn open(&self, stored: &str, place: &str) -> Result<String, Error> {
        match &self.0 {
            None if stored.starts_with("sealed:") => {
                Err(unreadable(place, "sealed, and no master key was given"))
            }
            None => Ok(stored.to_owned()),
            Some(_) if self.1 == Strict::Sealed && !stored.starts_with("sealed:") => Err(
                unreadable(place, "a plaintext value where a sealed one belongs"),
            ),
            Some(s) => s.open(stored, place).map_err(|e| unreadable(place, e)),
        }
    }

    /// Seal every stored secret that is not sealed under the current master
    /// key (plaintext rows from before sealing, rows of an older key);
    /// how many were re-sealed.
    pub(crate) async fn reseal<S: Store>(&self, store: &S) -> Result<usize, Error> {
        let Some(sealer) = &self.0 else {
            return Ok(0);
        };
        let rows = store.secret_rows().await?;
        // Plaintext rows are sealed only on the first start with a master
        // key (none sealed yet): later, a plaintext row among sealed ones
        // was planted, and is not made to look legitimate.
        let any_sealed = rows.iter().any(|r| r.value.starts_with("sealed:"));
        if let Some(planted) = rows
            .iter()
            .find(|r| any_sealed && !r.value.starts_with("sealed:"))
        {
            return Err(unreadable(
                &secret_place(planted.slot, &planted.id),
                "a plaintext value among sealed ones",
            ));
        }
        let mut n = 0;
        for row in rows {
            if sealer.is_current(&row.value) {
                continue;
            }
            let place = secret_place(row.slot, &row.id);
            let plain = self.open(&row.value, &place)?;
            let sealed = self.seal(&plain, &place)?;
            if store.replace_secret(row, sealed).await? {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// A 32-byte secret of the gateway's own (the PIN pepper, the key that
/// seals device handles): read and opened, or made on first start; of
/// nodes starting at once one writes it and all use that one.
pub(crate) async fn gateway_secret<S: Store>(
    store: &S,
    secrets: &Secrets,
    rng: &SystemRandom,
    now: Timestamp,
    name: &str,
) -> Result<Vec<u8>, Error> {
    use ring::rand::SecureRandom;
    let place = secret_place(qrgate_store::SecretSlot::GatewaySecret, name);
    if store.gateway_secret(name).await?.is_none() {
        let mut raw = [0_u8; 32];
        rng.fill(&mut raw).map_err(Error::internal)?;
        let fresh = secrets.seal(&hex::encode(raw), &place)?;
        store.add_gateway_secret(name, fresh, now).await?;
    }
    let stored = store
        .gateway_secret(name)
        .await?
        .ok_or_else(|| Error::internal(format!("the gateway secret {name} vanished")))?;
    hex::decode(secrets.open(&stored, &place)?)
        .ok()
        .ok_or_else(|| Error::internal(format!("the stored gateway secret {name} is not hex")))
}

pub(crate) fn to_store_keys(ring: &Keyring, secrets: &Secrets) -> Result<Vec<StoredKey>, Error> {
    ring.to_stored()
        .into_iter()
        .map(|k| {
            let kid = k.kid.to_string();
            Ok(StoredKey {
                pkcs8: secrets.seal(
                    &k.pkcs8,
                    &secret_place(qrgate_store::SecretSlot::GatewayKey, &kid),
                )?,
                kid,
                state: serde_json::to_value(k.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                created_at: k.created_at,
            })
        })
        .collect()
}

pub(crate) fn from_store_keys(keys: &[StoredKey], secrets: &Secrets) -> Result<Keyring, Error> {
    let parsed = keys
        .iter()
        .map(|k| {
            Ok(CodeKey {
                kid: qrgate_codes::keyring::KeyId::parse(&k.kid).map_err(Error::internal)?,
                state: serde_json::from_value::<KeyState>(serde_json::Value::String(
                    k.state.clone(),
                ))
                .map_err(Error::internal)?,
                created_at: k.created_at,
                pkcs8: secrets.open(
                    &k.pkcs8,
                    &secret_place(qrgate_store::SecretSlot::GatewayKey, &k.kid),
                )?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Keyring::from_stored(&parsed).map_err(Error::internal)
}
