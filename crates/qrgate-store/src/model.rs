//! What the store persists, and the one write it offers: a [`Movement`],
//! applied all-or-nothing in one database transaction.

use serde::{Deserialize, Serialize};

use qrgate_core::payment::PaymentDetails;
use qrgate_core::state::{CredentialStatus, DeliveryStatus, PaymentStatus};
use qrgate_core::{AccountId, CounterKey, Currency, Money, Timestamp};

/// A ledger account. `allow_negative` is false for customer wallets and
/// merchant settlement; true for the external clearing account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    /// `consumer_wallet`, `merchant_settlement`, `fees`, `external_clearing`.
    pub kind: String,
    pub owner_id: Option<String>,
    pub currency: Currency,
    pub allow_negative: bool,
    pub balance_minor: i64,
    pub created_at: Timestamp,
}

/// One line of a posting, in minor units: positive adds to the account's
/// balance, negative takes from it. A posting's entries sum to zero per currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub account_id: AccountId,
    pub amount_minor: i64,
    pub currency: Currency,
}

/// A set of entries that balances per currency (checked before anything is written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub id: String,
    /// `payment`, `refund`, `topup`, `reversal`, …
    pub kind: String,
    pub payment_id: Option<String>,
    pub entries: Vec<Entry>,
}

impl Posting {
    /// `amount` from one account to another: the one shape every posting
    /// of the gateway has.
    pub fn transfer(
        id: String,
        kind: &str,
        payment_id: Option<&str>,
        from: AccountId,
        to: AccountId,
        amount: Money,
    ) -> Posting {
        Posting {
            id,
            kind: kind.into(),
            payment_id: payment_id.map(str::to_owned),
            entries: vec![
                Entry {
                    account_id: from,
                    amount_minor: -amount.minor(),
                    currency: amount.currency(),
                },
                Entry {
                    account_id: to,
                    amount_minor: amount.minor(),
                    currency: amount.currency(),
                },
            ],
        }
    }

    /// Entries are non-empty, non-zero, and sum to zero in every currency
    /// (rule QG-LEDGER-BALANCED, checked before anything is written).
    pub fn check_balanced(&self) -> Result<(), String> {
        if self.entries.len() < 2 {
            return Err(format!("posting {} needs at least two entries", self.id));
        }
        let mut sums: Vec<(Currency, i128)> = Vec::new();
        for e in &self.entries {
            if e.amount_minor == 0 {
                return Err(format!("posting {} has a zero entry", self.id));
            }
            match sums.iter_mut().find(|(c, _)| *c == e.currency) {
                Some((_, s)) => *s += i128::from(e.amount_minor),
                None => sums.push((e.currency, i128::from(e.amount_minor))),
            }
        }
        match sums.iter().find(|(_, s)| *s != 0) {
            Some((c, s)) => Err(format!(
                "posting {} does not balance in {c}: off by {s}",
                self.id
            )),
            None => Ok(()),
        }
    }
}

/// Add to a counter (a customer's daily total, a payment's refunded amount,
/// a count of refunds) unless the result would pass its cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterCharge {
    pub key: CounterKey,
    pub amount_minor: i64,
    pub uses: i64,
    pub cap_amount: Option<i64>,
    pub cap_uses: Option<i64>,
    /// The rule id to cite when the cap stops the movement.
    pub rule: String,
}

/// Burn a one-time code (payment token nonce, numeric code, order): a
/// second burn of the same key fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeBurn {
    pub key: String,
    pub payment_id: Option<String>,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: String,
    pub merchant_id: String,
    pub customer_id: Option<String>,
    pub status: PaymentStatus,
    pub amount_minor: i64,
    pub currency: Currency,
    pub refunded_minor: i64,
    pub out_trade_no: Option<String>,
    /// Everything else about the payment, stored as one JSON column.
    pub details: PaymentDetails,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// How a movement changes a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentWrite {
    Insert(Payment),
    /// Move from `from` to `to`; fails if the payment is not in `from`,
    /// or if anything of it was refunded: every status change (completing,
    /// failing, abandoning, reversing in full) is one of a payment with no
    /// refunds, so a cancel cannot pay back what a refund already did.
    Transition {
        id: String,
        from: PaymentStatus,
        to: PaymentStatus,
        details: Option<PaymentDetails>,
    },
    /// Add to the refunded amount, never past the amount, and only while
    /// the payment is in `status` (so a refund cannot follow or race a
    /// cancel that reversed it in full).
    AddRefunded {
        id: String,
        amount_minor: i64,
        status: PaymentStatus,
    },
}

impl PaymentWrite {
    pub fn payment_id(&self) -> &str {
        match self {
            PaymentWrite::Insert(p) => &p.id,
            PaymentWrite::Transition { id, .. } | PaymentWrite::AddRefunded { id, .. } => id,
        }
    }

    /// The write sets the payment's details (so their text must be there).
    pub fn carries_details(&self) -> bool {
        matches!(
            self,
            PaymentWrite::Insert(_)
                | PaymentWrite::Transition {
                    details: Some(_),
                    ..
                }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub id: String,
    pub payment_id: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub status: String,
    pub out_refund_no: String,
    pub created_at: Timestamp,
}

/// The response to store for an idempotent request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Who may replay it: `merchant:mch_…`, `customer:cus_…`, `admin`.
    pub scope: String,
    pub key: String,
    /// Hex SHA-256 of the canonical request.
    pub request_hash: String,
    pub response_status: u16,
    pub response_body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEvent {
    pub event_id: String,
    pub event_type: String,
    pub subject_id: String,
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRow {
    pub seq: i64,
    pub event_id: String,
    pub event_type: String,
    pub subject_id: String,
    pub payload: serde_json::Value,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// What the audit log records about a movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub action: String,
    pub subject: String,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at: Timestamp,
    pub action: String,
    pub subject: String,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Everything one money movement writes. Applied in one transaction: the
/// idempotency record first (a replay stops there), then code burns,
/// counters (sorted by key), the posting (accounts sorted by id), the
/// payment, order and refund rows, outbox events and finally the audit row.
/// Any failure rolls all of it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub at: Timestamp,
    /// Written only while this API key is not revoked: the caller's key is
    /// checked again with the writes, so a key read from a cache a moment
    /// before it was revoked (here or on another gateway) moves nothing.
    pub live_api_key: Option<String>,
    /// Written only while this device is active: a code it signed offline
    /// moves nothing once it is revoked (here or on another gateway).
    pub live_device: Option<String>,
    /// Written only while this static code is not revoked (a revocation
    /// racing a scan of it moves nothing once it has committed).
    pub live_static_code: Option<String>,
    /// Written only while none of these parties (merchant or customer ids)
    /// is on the block list, checked with the writes for the same reason.
    pub unblocked: Vec<String>,
    pub idempotency: Option<IdempotencyRecord>,
    pub burns: Vec<CodeBurn>,
    pub counters: Vec<CounterCharge>,
    pub posting: Option<Posting>,
    pub payment: Option<PaymentWrite>,
    pub order: Option<OrderTransition>,
    pub refund: Option<Refund>,
    pub events: Vec<OutboxEvent>,
    /// Rows written once in the same transaction (admin actions: a merchant
    /// and its account, a key, a block, …), so they and their audit row
    /// are one write.
    pub records: Vec<Record>,
    pub audit: Option<AuditEntry>,
}

/// The outcome of a movement that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Written; the audit row's sequence number, if one was written.
    Done { audit_seq: Option<i64> },
    /// The same idempotency key and request were seen before: the stored response.
    Replayed { status: u16, body: String },
}

/// The balance check of the whole ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerCheck {
    /// Sum of all entries per currency (zero when the ledger balances).
    pub totals: Vec<(String, i64)>,
    /// Accounts whose stored balance differs from the sum of their entries.
    pub mismatched_accounts: Vec<String>,
    /// Accounts below zero that may not be.
    pub negative_accounts: Vec<String>,
    pub entries: i64,
    /// Payments whose postings disagree with what their state says moved
    /// (at most [`LedgerCheck::MAX_LISTED`] of them, by id). A ledger can
    /// balance while money left twice; this is what shows it.
    pub disagreeing_payments: Vec<PaymentDisagreement>,
}

impl LedgerCheck {
    /// Most disagreeing payments listed by one check.
    pub const MAX_LISTED: i64 = 1000;

    pub fn is_sound(&self) -> bool {
        self.totals.iter().all(|(_, t)| *t == 0)
            && self.mismatched_accounts.is_empty()
            && self.negative_accounts.is_empty()
            && self.disagreeing_payments.is_empty()
    }
}

/// One payment's state beside the postings that name it. Each posted
/// figure is the money a posting of that kind moved (the sum of its
/// positive entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentDisagreement {
    pub payment_id: String,
    /// The payment's status, or `missing` when postings name a payment
    /// that does not exist.
    pub status: String,
    pub amount_minor: i64,
    /// What the payment row says was refunded.
    pub refunded_minor: i64,
    /// The sum of its refund records.
    pub refunds_minor: i64,
    /// Moved by `payment` postings.
    pub captured_minor: i64,
    /// Moved by `refund` postings.
    pub refunded_posted_minor: i64,
    /// Moved by `reversal` (cancel) postings.
    pub reversed_minor: i64,
    /// Moved by postings of any other kind that name the payment.
    pub other_minor: i64,
    /// What disagrees, in words.
    pub problems: Vec<String>,
}

impl PaymentDisagreement {
    /// What the state and the postings disagree on; empty when they agree.
    /// The rules: refunded and reversed money never exceed what was
    /// captured; the refunds, the payment's refunded amount and the refund
    /// postings agree; a succeeded payment was captured in full and not
    /// reversed; a canceled one was reversed in full (or never captured) and
    /// not refunded; any other state moved nothing.
    pub fn problems_of(&self) -> Vec<String> {
        let mut out = Vec::new();
        let (captured, refunded, reversed) = (
            self.captured_minor,
            self.refunded_posted_minor,
            self.reversed_minor,
        );
        if self.status == "missing" {
            out.push("postings name a payment that does not exist".to_owned());
            return out;
        }
        if refunded.saturating_add(reversed) > captured {
            out.push(format!(
                "refunded {refunded} + reversed {reversed} exceed captured {captured}"
            ));
        }
        if refunded != self.refunded_minor || self.refunds_minor != self.refunded_minor {
            out.push(format!(
                "refund postings {refunded}, refund records {} and the payment's refunded amount {} differ",
                self.refunds_minor, self.refunded_minor
            ));
        }
        if self.other_minor != 0 {
            out.push(format!(
                "{} moved by postings of another kind",
                self.other_minor
            ));
        }
        match self.status.as_str() {
            "succeeded" => {
                if captured != self.amount_minor {
                    out.push(format!(
                        "succeeded for {} but {captured} captured",
                        self.amount_minor
                    ));
                }
                if reversed != 0 {
                    out.push(format!("succeeded but {reversed} reversed"));
                }
            }
            "canceled" => {
                if reversed != captured || (captured != 0 && captured != self.amount_minor) {
                    out.push(format!(
                        "canceled with {captured} captured and {reversed} reversed"
                    ));
                }
                if self.refunded_minor != 0 || refunded != 0 {
                    out.push("canceled after refunds".to_owned());
                }
            }
            other => {
                if captured != 0 || reversed != 0 || refunded != 0 {
                    out.push(format!("{other} but money moved"));
                }
            }
        }
        out
    }
}

/// Result of walking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum AuditVerdict {
    Intact {
        rows: i64,
        head: String,
    },
    /// The first row whose hash or link is wrong.
    Broken {
        seq: i64,
        reason: String,
    },
}

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

impl Movement {
    /// An empty movement at `at`; fill in what it writes.
    pub fn new(at: Timestamp) -> Movement {
        Movement {
            at,
            live_api_key: None,
            live_device: None,
            live_static_code: None,
            unblocked: Vec::new(),
            idempotency: None,
            burns: Vec::new(),
            counters: Vec::new(),
            posting: None,
            payment: None,
            order: None,
            refund: None,
            events: Vec::new(),
            records: Vec::new(),
            audit: None,
        }
    }
}

/// An order's status change inside a movement (open → paid, open → expired, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTransition {
    pub id: String,
    pub from: String,
    pub to: String,
    pub payment_id: Option<String>,
}

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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub merchant_id: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub reference: String,
    pub out_trade_no: Option<String>,
    /// `open`, `paid`, `expired`, `closed`.
    pub status: String,
    pub payload: String,
    pub payment_id: Option<String>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A payment code the gateway issued online (numeric form), looked up at charge time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCode {
    pub code: String,
    pub customer_id: String,
    pub device_id: Option<String>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: String,
    pub merchant_id: String,
    pub url: String,
    pub secret: String,
    pub created_at: Timestamp,
    /// Paused: nothing is sent (deliveries wait) until it is enabled again.
    pub disabled_at: Option<Timestamp>,
    /// The secret before the last rotation, still signing beside `secret`
    /// until `previous_until`.
    pub previous_secret: Option<String>,
    pub previous_until: Option<Timestamp>,
}

/// A change to one of a merchant's webhook endpoints; each is written with
/// an audit entry. A deleted endpoint is not listed, sent to or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointChange {
    /// Register `endpoint`, refused when its merchant already has `cap`
    /// endpoints that are not deleted.
    Add {
        endpoint: WebhookEndpoint,
        cap: i64,
    },
    Disable {
        id: String,
        merchant_id: String,
    },
    Enable {
        id: String,
        merchant_id: String,
    },
    /// Delete it; its pending deliveries fail ("endpoint deleted").
    Delete {
        id: String,
        merchant_id: String,
    },
    /// A new secret; the old one keeps signing beside it until `previous_until`.
    RotateSecret {
        id: String,
        merchant_id: String,
        secret: String,
        previous_until: Timestamp,
    },
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

/// A row that is written once, outside money movements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    Account(Account),
    Merchant(Merchant),
    Customer(Customer),
    Device(Device),
    Certificate(Certificate),
    Card(Card),
    Otp(OtpEnrollment),
    Block(Block),
    ApiKey(ApiKey),
    StaticCode(StaticCode),
    Order(Order),
    IssuedCode(IssuedCode),
    WebhookEndpoint(WebhookEndpoint),
}

/// Which payments to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PaymentQuery {
    pub merchant_id: Option<String>,
    pub customer_id: Option<String>,
    pub status: Option<String>,
    /// Cursor: the id of the last payment of the previous page.
    pub starting_after: Option<String>,
    pub limit: i64,
}

/// A webhook delivery: one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub id: i64,
    pub endpoint_id: String,
    pub merchant_id: String,
    pub event_id: String,
    pub event_type: String,
    /// The exact JSON body that is signed and sent.
    pub body: String,
    /// `pending`, `delivered`, `failed` (gave up).
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// A delivery to create when an outbox event is fanned out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDelivery {
    pub endpoint_id: String,
    pub merchant_id: String,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptResult {
    pub id: i64,
    /// The `next_attempt_at` the claim set ([`crate::Store::claim_delivery`]):
    /// the result is recorded only while the claim still holds.
    pub claimed_until: Timestamp,
    pub at: Timestamp,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    /// `delivered`, `pending` (retry at `next_attempt_at`) or `failed`.
    pub status: DeliveryStatus,
    pub next_attempt_at: Timestamp,
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
