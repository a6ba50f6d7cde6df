//! Signing keys and sealed secrets.

use serde::{Deserialize, Serialize};

use qrgate_core::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    pub kid: String,
    pub state: String,
    pub created_at: Timestamp,
    pub pkcs8: String,
}

/// Where a secret is kept: the gateway seals these at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSlot {
    /// `gateway_keys.pkcs8`, by key id.
    GatewayKey,
    /// `webhook_endpoints.secret`, by endpoint id.
    WebhookSecret,
    /// `webhook_endpoints.previous_secret`, by endpoint id.
    WebhookPrevious,
    /// `otp_enrollments.secret`, by enrollment id.
    OtpSecret,
    /// `gateway_secrets.value`, by name (the PIN pepper).
    GatewaySecret,
}

/// One stored secret (as stored: sealed, or plaintext from before sealing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRow {
    pub slot: SecretSlot,
    pub id: String,
    pub value: String,
}

/// A change to the gateway's signing keys. The database keeps one active
/// key at most (a unique partial index), so no race of nodes leaves two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    /// The first key of an empty keyring, written only while there is
    /// none: of two nodes starting at once, one writes it (`false` for the
    /// other, which then loads the winner's).
    First(StoredKey),
    /// A new active key; the active one keeps verifying (`verify_only`).
    Rotate(StoredKey),
    /// A `verify_only` key stops verifying (the active one cannot be
    /// retired: rotate first). Codes it signed are refused.
    Retire { kid: String },
}
