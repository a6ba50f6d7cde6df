//! Merchants, customers and their credentials: devices, certificates, API
//! keys, static codes, cards, one-time passwords, blocks.

use serde::{Deserialize, Serialize};

use qrgate_core::state::CredentialStatus;
use qrgate_core::{Currency, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    pub id: String,
    pub name: String,
    pub city: String,
    pub country: String,
    pub mcc: String,
    pub currency: Currency,
    /// `regular`, or `small_personal` (onboarded with a personal ID only).
    pub category: String,
    pub name_local: Option<String>,
    /// For `small_personal` merchants: an opaque reference to the person
    /// behind them (never the ID number), so caps apply per person.
    pub owner_ref: Option<String>,
    /// What each payment costs the merchant (its new payments follow it).
    pub fees: qrgate_core::fee::FeeSchedule,
    /// Where payouts go (digits); none: no payouts.
    pub bank_account: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    /// Wallet account class: `I`, `II` or `III`.
    pub account_class: String,
    /// Daily cap agreed with the customer for level-A payments, minor units.
    pub level_a_cap: Option<i64>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    pub customer_id: String,
    pub kid: String,
    /// Raw Ed25519 public key, base64url.
    pub public_key: String,
    /// `active` or `revoked`.
    pub status: CredentialStatus,
    pub created_at: Timestamp,
    /// The API key it was enrolled with: revoking that key revokes it.
    pub enrolled_by: Option<String>,
    /// When the customer turned on biometric confirmation for it.
    pub biometric_at: Option<Timestamp>,
}

/// A change to a credential; each is written with an audit entry and is
/// `false` (nothing written) when there was nothing to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialChange {
    /// Set the PIN where there is none, or none since an admin reset.
    /// Failures and a lock-out in force are kept.
    PinSet {
        customer_id: String,
        hash: String,
        salt: String,
    },
    /// Replace the PIN whose hash is `expected` (the caller proved it).
    PinReplace {
        customer_id: String,
        expected: String,
        hash: String,
        salt: String,
    },
    /// An admin reset: no PIN until the customer sets a new one; failures
    /// and a lock-out in force are kept.
    PinReset { customer_id: String },
    /// Revoke a device (of `customer_id` when given).
    DeviceRevoke {
        id: String,
        customer_id: Option<String>,
    },
    /// Turn on biometric confirmation for an active device of the customer.
    DeviceBiometric { id: String, customer_id: String },
    /// Revoke a digital certificate (of `customer_id` when given).
    CertificateRevoke {
        id: String,
        customer_id: Option<String>,
    },
    /// Revoke a static code of the merchant.
    StaticCodeRevoke { id: String, merchant_id: String },
    /// The operator's decision on the suspension a static code got at
    /// `suspended_at` (and still has): cleared (scans work again, and the
    /// reports so far no longer count) or confirmed (the code is revoked).
    StaticCodeSuspension {
        id: String,
        suspended_at: Timestamp,
        confirmed: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    /// Hex SHA-256 of the secret; the secret itself is never stored.
    pub key_hash: String,
    /// `admin`, `merchant`, `consumer`, `auditor`.
    pub role: String,
    /// The merchant or customer the key acts for.
    pub subject_id: Option<String>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticCode {
    pub id: String,
    pub merchant_id: String,
    pub payload: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// Suspended while several payers' reports of tampering are reviewed
    /// (QG-COMPLAINT-TAMPER-REPORTS).
    pub suspended_at: Option<Timestamp>,
    /// The operator last cleared such a suspension; reports before it no
    /// longer count.
    pub reports_cleared_at: Option<Timestamp>,
}

/// A customer's digital-certificate key (risk level A's signature element).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub id: String,
    pub customer_id: String,
    /// Raw Ed25519 public key, base64url.
    pub public_key: String,
    /// `active` or `revoked`.
    pub status: CredentialStatus,
    pub created_at: Timestamp,
}

/// A customer's linked card: the processor's token, never the number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub id: String,
    pub customer_id: String,
    /// The processor that issued the token (`sandbox`, …).
    pub processor: String,
    pub token: String,
    pub brand: String,
    pub last4: String,
    /// `debit` or `credit`.
    pub funding: String,
    pub exp_month: i64,
    pub exp_year: i64,
    pub created_at: Timestamp,
}

/// A customer's TOTP enrollment (RFC 6238: HMAC-SHA1, 30 s, 6 digits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpEnrollment {
    pub id: String,
    pub customer_id: String,
    /// The shared secret, RFC 4648 base32 without padding.
    pub secret: String,
    pub created_at: Timestamp,
}

/// A merchant or customer on the block list (QG-BLOCKLIST).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub id: String,
    /// A merchant id or a customer id.
    pub subject_id: String,
    /// Why, for the operator; never shown to the other party.
    pub reason: String,
    pub created_at: Timestamp,
    pub lifted_at: Option<Timestamp>,
}

/// A customer's payment PIN as stored: never the PIN itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub customer_id: String,
    /// Hex PBKDF2-HMAC-SHA256 output.
    pub pin_hash: String,
    /// Hex salt.
    pub pin_salt: String,
    /// Wrong PINs since the last right one.
    pub failures: i64,
    pub locked_until: Option<Timestamp>,
    pub updated_at: Timestamp,
}

impl Credentials {
    /// A PIN is set (an admin reset leaves none until the customer sets one).
    pub fn has_pin(&self) -> bool {
        !self.pin_hash.is_empty()
    }
}
