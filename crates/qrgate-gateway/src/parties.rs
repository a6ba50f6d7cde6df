//! Merchants, customers, devices, API keys, wallets and top-ups, and the
//! merchant codes (static codes and dynamic orders).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use serde_json::json;

use qrgate_codes::emv::LanguageTemplate;
use qrgate_codes::merchant::{MerchantCode, MerchantCodeKind, MerchantDisplay};
use qrgate_core::id::{OrderId, StaticCodeId};
use qrgate_core::state::OrderStatus;
use qrgate_core::{Currency, Money};
use qrgate_store::*;

use crate::Reply;
use crate::fresh::{self, CachedKey, Verdict};
use crate::views::{MerchantView, OrderView, amount};
use crate::{
    CLEARING_ACCOUNT, Error, Gateway, Idem, Kind, Principal, Role, settlement_account,
    wallet_account,
};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "OLD STREET NOODLES", "city": "SHANGHAI", "country": "CN", "mcc": "5812", "currency": "CNY", "category": "small_personal", "owner_ref": "kyc-20931", "name_local": "老街面馆"}))]
#[serde(deny_unknown_fields)]
pub struct NewMerchant {
    pub name: String,
    pub city: String,
    #[serde(default = "cn")]
    pub country: String,
    pub mcc: String,
    #[serde(default = "cny")]
    pub currency: String,
    /// `regular` or `small_personal` (onboarded with a personal ID only).
    #[serde(default = "regular")]
    pub category: String,
    /// The name in Chinese (or another local language), shown in template 64.
    pub name_local: Option<String>,
    /// Required for `small_personal`: an opaque reference to the person
    /// behind the merchant (the acquirer's KYC record id, never the ID
    /// number), the same for all their merchant entries, so caps apply
    /// per person. 1 to 64 of `A-Z a-z 0-9 . _ : -`.
    pub owner_ref: Option<String>,
}

fn cn() -> String {
    "CN".into()
}
fn cny() -> String {
    "CNY".into()
}
fn regular() -> String {
    "regular".into()
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"account_class": "II"}))]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    /// Wallet account class under 43: `I`, `II` (default) or `III`.
    #[serde(default = "class_ii")]
    pub account_class: String,
    /// Daily cap agreed with the customer for level-A payments, decimal string.
    pub level_a_daily_cap: Option<String>,
}

fn class_ii() -> String {
    "II".into()
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "cus_hfrymmz2r26kb3zen56ofpia2u", "object": "customer", "account_class": "II", "balance": "2000.00", "currency": "CNY", "created_at": "2026-11-25T13:27:45.000Z"}))]
pub struct CustomerView {
    pub id: String,
    pub object: &'static str,
    pub account_class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level_a_daily_cap: Option<String>,
    pub balance: String,
    pub currency: String,
    /// Present while the payment PIN is locked (QG-PIN-LOCKOUT, QG-PIN-LOCK-MINUTES).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_locked_until: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "key_3vW1aZ9qP0s", "object": "api_key", "role": "merchant", "subject_id": "mch_6bsdfgzqrkdpgz6gy6p366fdeu", "secret": "qgk_merchant_NlHDhdYqrgkrqCpQ4WNYQewrJef3wBiS", "created_at": "2026-11-25T13:27:45.000Z"}))]
pub struct ApiKeyCreated {
    pub id: String,
    pub object: &'static str,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<String>,
    /// Shown once; only its hash is stored.
    pub secret: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "blk_agrbhgxplpcb4vkb5zkrvmzejy", "object": "block", "subject_id": "cus_hfrymmz2r26kb3zen56ofpia2u", "reason": "card-testing pattern reported by the issuer", "created_at": "2026-11-25T13:27:45.000Z"}))]
pub struct BlockView {
    pub id: String,
    pub object: &'static str,
    pub subject_id: String,
    pub reason: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifted_at: Option<String>,
}

impl BlockView {
    fn of(b: &Block) -> BlockView {
        BlockView {
            id: b.id.clone(),
            object: "block",
            subject_id: b.subject_id.clone(),
            reason: b.reason.clone(),
            created_at: b.created_at.to_rfc3339(),
            lifted_at: b.lifted_at.map(|t| t.to_rfc3339()),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "crt_aaaaaaaaaaaaaaaaaaaaaaaaae", "object": "certificate", "customer_id": "cus_hfrymmz2r26kb3zen56ofpia2u", "status": "active", "created_at": "2026-11-25T13:27:45.000Z"}))]
pub struct CertificateView {
    pub id: String,
    pub object: &'static str,
    pub customer_id: String,
    pub status: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "dev_aaaaaaaaaaaaaaaaaaaaaaaaae", "object": "device", "customer_id": "cus_hfrymmz2r26kb3zen56ofpia2u", "kid": "devkey23", "status": "active", "created_at": "2026-11-25T13:27:45.000Z"}))]
pub struct DeviceView {
    pub id: String,
    pub object: &'static str,
    pub customer_id: String,
    /// The id the gateway gave the device's key (kept for the record; the
    /// codes the device signs carry a sealed handle instead).
    pub kid: String,
    /// `active` or `revoked`.
    pub status: String,
    /// Biometric confirmation was turned on for it (with the PIN).
    pub biometric: bool,
    pub created_at: String,
    /// Only in the answer to the enrolment: the first batch of sealed
    /// handles, one to put in each code the device signs
    /// (`POST /v1/devices/{id}/handles` gives more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handles: Option<Vec<String>>,
}

/// A batch of sealed handles for one device: put a fresh one in each code
/// it signs, so merchants cannot link its codes (spec/formats.md §3).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"object": "device_handles", "device_id": "dev_aaaaaaaaaaaaaaaaaaaaaaaaaa", "handles": ["BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTI"]}))]
pub struct DeviceHandlesView {
    pub object: &'static str,
    pub device_id: String,
    /// Sealed handles, base64url without padding (59 characters each).
    pub handles: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "sqr_lrzzauw6gs3zhv23tzmgayahci", "object": "static_code", "merchant_id": "mch_6bsdfgzqrkdpgz6gy6p366fdeu", "payload": "00020101021126590009io.qrgate0130sqr_…6304FF37", "created_at": "2026-11-25T13:27:50.000Z"}))]
pub struct StaticCodeView {
    pub id: String,
    pub object: &'static str,
    pub merchant_id: String,
    pub payload: String,
    pub created_at: String,
    /// What the merchant must know about displaying a static code (BCP-MPM-RISK-PROMPT).
    pub risk_prompt: &'static str,
}

/// BCP-MPM-RISK-PROMPT at code generation.
pub const STATIC_CODE_PROMPT: &str = "A static code can be covered or swapped by a fraudster's code: display it where staff can see it, check it every day with POST /v1/codes/verify (it must name your shop), do not lend or sell it, and do not use a personal static code to collect payments remotely.";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "top_qxtkpcjg5hblwcjs4dv7kxmfu4", "object": "topup", "customer_id": "cus_hfrymmz2r26kb3zen56ofpia2u", "amount": "500.00", "currency": "CNY", "balance": "2500.00", "created_at": "2026-11-25T13:27:46.000Z"}))]
pub struct TopupView {
    pub id: String,
    pub object: &'static str,
    pub customer_id: String,
    pub amount: String,
    pub currency: String,
    pub balance: String,
    pub created_at: String,
}

/// Hex SHA-256 of an API key secret, as stored.
pub fn key_hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

fn check_len(field: &'static str, v: &str, max: usize) -> Result<(), Error> {
    let n = v.chars().count();
    if n == 0 || n > max || v.trim() != v {
        return Err(Error::bad_request(
            "invalid_request",
            format!("{field} must be 1 to {max} characters without leading or trailing spaces"),
        ));
    }
    Ok(())
}

/// The caller a key names.
fn principal(k: CachedKey) -> Result<Principal, Error> {
    let role = Role::parse(&k.role)
        .ok_or_else(|| Error::internal(format!("key {} has role {:?}", k.key_id, k.role)))?;
    Ok(Principal {
        key_id: k.key_id,
        role,
        subject: k.subject_id,
    })
}

impl<S: Store> Gateway<S> {
    pub async fn create_merchant(
        &self,
        p: &Principal,
        m: NewMerchant,
    ) -> Result<MerchantView, Error> {
        p.require(&[Role::Admin])?;
        check_len("name", &m.name, 25)?;
        check_len("city", &m.city, 15)?;
        if let Some(l) = &m.name_local {
            check_len("name_local", l, 25)?;
        }
        if m.mcc.len() != 4 || !m.mcc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::bad_request(
                "invalid_request",
                "mcc must be four digits (ISO 18245), e.g. 5812",
            ));
        }
        if m.country.len() != 2 || !m.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Error::bad_request(
                "invalid_request",
                "country must be two upper-case letters (ISO 3166-1), e.g. CN",
            ));
        }
        let cur = Currency::from_code(&m.currency)
            .map_err(|e| Error::bad_request("unknown_currency", e.to_string()))?;
        if cur != crate::CURRENCY {
            return Err(Error::bad_request(
                "currency_not_supported",
                "merchants settle in CNY: the barcode-payment limits are stated in CNY",
            ));
        }
        if m.category != "regular" && m.category != "small_personal" {
            return Err(Error::bad_request(
                "invalid_request",
                "category must be regular or small_personal",
            ));
        }
        match (m.category.as_str(), &m.owner_ref) {
            ("small_personal", None) => {
                return Err(Error::bad_request(
                    "owner_ref_required",
                    "a small_personal merchant needs owner_ref: the reference of the person behind it (their credit-card receipts are capped per person, BCP-SMALL-MERCHANT-CREDIT-DAY)",
                ));
            }
            ("regular", Some(_)) => {
                return Err(Error::bad_request(
                    "invalid_request",
                    "owner_ref is only for small_personal merchants",
                ));
            }
            (_, Some(r))
                if r.is_empty()
                    || r.len() > 64
                    || !r
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(&b)) =>
            {
                return Err(Error::bad_request(
                    "invalid_request",
                    "owner_ref must be 1 to 64 of A-Z a-z 0-9 . _ : - (an opaque reference, not an ID number)",
                ));
            }
            _ => {}
        }
        let id = self
            .new_id::<qrgate_core::id::kind::Merchant>()?
            .to_string();
        let now = self.now();
        let row = Merchant {
            id: id.clone(),
            name: m.name,
            city: m.city,
            country: m.country,
            mcc: m.mcc,
            currency: cur.code().into(),
            category: m.category,
            name_local: m.name_local,
            owner_ref: m.owner_ref,
            created_at: now,
        };
        let mut m = Movement::new(now);
        m.records.push(Record::Merchant(row.clone()));
        m.records.push(Record::Account(owned_account(
            settlement_account(&id),
            "merchant_settlement",
            &id,
            now,
        )));
        m.audit = Some(admin_audit(
            Some(p),
            "merchant.created",
            &id,
            json!({ "name": row.name, "category": row.category, "mcc": row.mcc }),
        ));
        self.store.apply(m).await?;
        Ok(MerchantView::of(&row))
    }

    pub async fn get_merchant(&self, p: &Principal, id: &str) -> Result<MerchantView, Error> {
        let visible = match p.role {
            Role::Admin | Role::Auditor => true,
            Role::Merchant => p.subject.as_deref() == Some(id),
            Role::Consumer => false,
        };
        let m = self
            .store
            .merchant(id)
            .await?
            .filter(|_| visible)
            .ok_or_else(|| Error::not_found("merchant", id))?;
        Ok(MerchantView::of(&m))
    }

    pub async fn create_customer(
        &self,
        p: &Principal,
        c: NewCustomer,
    ) -> Result<CustomerView, Error> {
        p.require(&[Role::Admin])?;
        if !["I", "II", "III"].contains(&c.account_class.as_str()) {
            return Err(Error::bad_request(
                "invalid_request",
                "account_class must be I, II or III",
            ));
        }
        let cap = c
            .level_a_daily_cap
            .as_deref()
            .map(|s| Money::parse_amount(s, crate::CURRENCY))
            .transpose()?;
        let id = self
            .new_id::<qrgate_core::id::kind::Customer>()?
            .to_string();
        let now = self.now();
        let mut m = Movement::new(now);
        m.records.push(Record::Customer(Customer {
            id: id.clone(),
            account_class: c.account_class.clone(),
            level_a_cap: cap.map(|m| m.minor()),
            created_at: now,
        }));
        m.records.push(Record::Account(owned_account(
            wallet_account(&id),
            "consumer_wallet",
            &id,
            now,
        )));
        m.audit = Some(admin_audit(
            Some(p),
            "customer.created",
            &id,
            json!({ "account_class": c.account_class, "level_a_daily_cap_minor": cap.map(|m| m.minor()) }),
        ));
        self.store.apply(m).await?;
        Ok(CustomerView {
            id,
            object: "customer",
            account_class: c.account_class,
            level_a_daily_cap: cap.map(|m| m.to_decimal_string()),
            balance: "0.00".into(),
            currency: "CNY".into(),
            pin_locked_until: None,
            created_at: now.to_rfc3339(),
        })
    }

    pub async fn get_customer(&self, p: &Principal, id: &str) -> Result<CustomerView, Error> {
        let visible = match p.role {
            Role::Admin | Role::Auditor => true,
            Role::Consumer => p.subject.as_deref() == Some(id),
            Role::Merchant => false,
        };
        let c = self
            .store
            .customer(id)
            .await?
            .filter(|_| visible)
            .ok_or_else(|| Error::not_found("customer", id))?;
        let bal = self
            .store
            .account(&wallet_account(id))
            .await?
            .map_or(0, |a| a.balance_minor);
        let now = self.now();
        let locked_until = self
            .store
            .credentials(id)
            .await?
            .and_then(|cr| cr.locked_until)
            .filter(|u| *u > now);
        Ok(CustomerView {
            id: c.id,
            object: "customer",
            account_class: c.account_class,
            level_a_daily_cap: c.level_a_cap.map(|m| amount(m, "CNY")),
            balance: amount(bal, "CNY"),
            currency: "CNY".into(),
            pin_locked_until: locked_until.map(|t| t.to_rfc3339()),
            created_at: c.created_at.to_rfc3339(),
        })
    }

    /// Issue an API key. Admin keys may be made only by admins (and at first start).
    pub async fn create_api_key(
        &self,
        p: Option<&Principal>,
        role: Role,
        subject: Option<String>,
    ) -> Result<ApiKeyCreated, Error> {
        if let Some(p) = p {
            p.require(&[Role::Admin])?;
        }
        match (role, &subject) {
            (Role::Merchant, Some(m)) => {
                self.store
                    .merchant(m)
                    .await?
                    .ok_or_else(|| Error::not_found("merchant", m))?;
            }
            (Role::Consumer, Some(c)) => {
                self.store
                    .customer(c)
                    .await?
                    .ok_or_else(|| Error::not_found("customer", c))?;
            }
            (Role::Merchant | Role::Consumer, None) => {
                return Err(Error::bad_request(
                    "invalid_request",
                    "merchant and consumer keys need subject_id (the merchant or customer id)",
                ));
            }
            (Role::Admin | Role::Auditor, Some(_)) => {
                return Err(Error::bad_request(
                    "invalid_request",
                    "admin and auditor keys act for no single subject; omit subject_id",
                ));
            }
            _ => {}
        }
        let mut secret = [0_u8; 24];
        self.rng.fill(&mut secret).map_err(Error::internal)?;
        let secret = format!("qgk_{}_{}", role.as_str(), URL_SAFE_NO_PAD.encode(secret));
        let mut idb = [0_u8; 9];
        self.rng.fill(&mut idb).map_err(Error::internal)?;
        let id = format!("key_{}", URL_SAFE_NO_PAD.encode(idb));
        let now = self.now();
        let mut m = Movement::new(now);
        m.records.push(Record::ApiKey(ApiKey {
            id: id.clone(),
            key_hash: key_hash(&secret),
            role: role.as_str().into(),
            subject_id: subject.clone(),
            created_at: now,
            revoked_at: None,
        }));
        // The secret never enters the audit log; the key id and role do.
        m.audit = Some(admin_audit(
            p,
            "api_key.created",
            &id,
            json!({ "role": role.as_str(), "subject_id": subject }),
        ));
        self.store.apply(m).await?;
        Ok(ApiKeyCreated {
            id,
            object: "api_key",
            role: role.as_str().into(),
            subject_id: subject,
            secret,
            created_at: now.to_rfc3339(),
        })
    }

    pub async fn revoke_api_key(&self, p: &Principal, id: &str) -> Result<(), Error> {
        p.require(&[Role::Admin])?;
        let audit = admin_audit(Some(p), "api_key.revoked", id, json!({}));
        let revoked = self.store.revoke_api_key(id, self.now(), audit).await;
        // After the write, so a read from before it is not kept either.
        self.keys.invalidate();
        if !revoked? {
            return Err(Error::not_found("active API key", id));
        }
        Ok(())
    }

    /// Who holds this secret; `unauthorized` for unknown or revoked keys.
    /// Always asks the store.
    pub async fn authenticate(&self, secret: &str) -> Result<Principal, Error> {
        self.read_key(&key_hash(secret)).await
    }

    /// [`authenticate`](Self::authenticate) for `POST /v1/payments`: the
    /// key may come from a copy up to a second old. Only for routes whose
    /// every write is a payment movement naming the key in
    /// `Movement::live_api_key`, which checks again that it is unrevoked,
    /// so a key revoked on another gateway a moment ago still moves no money.
    pub async fn authenticate_for_payment(&self, secret: &str) -> Result<Principal, Error> {
        let hash = key_hash(secret);
        match self.keys.get(&hash, self.now()) {
            Some(k) => principal(k),
            None => self.read_key(&hash).await,
        }
    }

    async fn read_key(&self, hash: &str) -> Result<Principal, Error> {
        let unauthorized = || {
            Error::new(
                Kind::Unauthorized,
                "unauthorized",
                "missing, unknown or revoked API key: send Authorization: Bearer <key>",
            )
            .with_rule("QG-AUTH")
        };
        let generation = self.keys.generation();
        let read_at = self.now();
        let k = self
            .store
            .api_key_by_hash(hash)
            .await?
            .ok_or_else(unauthorized)?;
        if k.revoked_at.is_some() {
            return Err(Error::api_key_revoked());
        }
        let k = CachedKey {
            key_id: k.id,
            role: k.role,
            subject_id: k.subject_id,
        };
        self.keys.put(hash, k.clone(), read_at, generation);
        principal(k)
    }

    /// Put a merchant or a customer on the block list (QG-BLOCKLIST): from
    /// now on their payments are declined, and recorded as such.
    pub async fn block(
        &self,
        p: &Principal,
        subject_id: &str,
        reason: &str,
    ) -> Result<BlockView, Error> {
        p.require(&[Role::Admin])?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(Error::bad_request(
                "invalid_reason",
                "reason must be 1 to 200 characters: why the party is blocked, for the operator",
            ));
        }
        let exists = if subject_id.starts_with("mch_") {
            self.store.merchant(subject_id).await?.is_some()
        } else if subject_id.starts_with("cus_") {
            self.store.customer(subject_id).await?.is_some()
        } else {
            false
        };
        if !exists {
            return Err(Error::not_found("merchant or customer", subject_id));
        }
        let b = Block {
            id: self.new_id::<qrgate_core::id::kind::Block>()?.to_string(),
            subject_id: subject_id.to_owned(),
            reason: reason.to_owned(),
            created_at: self.now(),
            lifted_at: None,
        };
        let mut m = Movement::new(b.created_at);
        m.records.push(Record::Block(b.clone()));
        m.audit = Some(admin_audit(
            Some(p),
            "block.created",
            &b.id,
            json!({ "subject_id": b.subject_id, "reason": b.reason }),
        ));
        let applied = self.store.apply(m).await;
        // After the write, so a read of the list from before it is not kept either.
        self.blocks.invalidate();
        applied?;
        Ok(BlockView::of(&b))
    }

    /// Lift a block; payments of that party are accepted again.
    pub async fn lift_block(&self, p: &Principal, id: &str) -> Result<BlockView, Error> {
        p.require(&[Role::Admin])?;
        let now = self.now();
        let audit = admin_audit(Some(p), "block.lifted", id, json!({}));
        let lifted = self.store.lift_block(id, now, audit).await;
        self.blocks.invalidate();
        if !lifted? {
            return match self.store.block(id).await? {
                None => Err(Error::not_found("block", id)),
                Some(_) => Err(Error::new(
                    Kind::Conflict,
                    "block_already_lifted",
                    format!("block {id} was already lifted"),
                )),
            };
        }
        let b = self
            .store
            .block(id)
            .await?
            .ok_or_else(|| Error::not_found("block", id))?;
        Ok(BlockView::of(&b))
    }

    /// Refusal when the merchant or the payer is blocked (QG-BLOCKLIST),
    /// from a copy of the block list up to a second old. Every movement
    /// after this check must name both parties in `Movement::unblocked`,
    /// so a block made on another gateway a moment ago still holds.
    pub(crate) async fn blocked(
        &self,
        merchant_id: &str,
        customer_id: &str,
    ) -> Result<Option<Error>, Error> {
        let parties = [merchant_id, customer_id];
        let mut verdict = self.blocks.check(parties, self.now());
        if verdict == Verdict::Unknown {
            let generation = self.blocks.generation();
            let read_at = self.now();
            let subjects = self.store.blocked_subjects(fresh::MAX_BLOCKED + 1).await?;
            self.blocks.put(subjects, read_at, generation);
            verdict = self.blocks.check(parties, read_at);
        }
        let blocked = match verdict {
            Verdict::Blocked(who) => Some(who),
            Verdict::Clear => None,
            // Too long to keep, or invalidated while it was read: ask about these two.
            Verdict::TooMany | Verdict::Unknown => self
                .store
                .active_blocks(merchant_id, customer_id)
                .await?
                .into_iter()
                .next()
                .map(|b| b.subject_id),
        };
        Ok(blocked.map(|who| Error::party_blocked(&who)))
    }

    /// Enroll a customer's digital-certificate key (admin: the operator
    /// issued the certificate after checking the customer's identity). Its
    /// signature over a payment's details is the element of risk level A.
    pub async fn enroll_certificate(
        &self,
        p: &Principal,
        customer: &str,
        public_key: &str,
    ) -> Result<CertificateView, Error> {
        p.require(&[Role::Admin])?;
        let raw = URL_SAFE_NO_PAD
            .decode(public_key)
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| Error::bad_request("invalid_public_key", "public_key must be a raw 32-byte Ed25519 key in base64url without padding (43 characters)"))?;
        self.store
            .customer(customer)
            .await?
            .ok_or_else(|| Error::not_found("customer", customer))?;
        let id = self
            .new_id::<qrgate_core::id::kind::Certificate>()?
            .to_string();
        let now = self.now();
        let mut m = Movement::new(now);
        m.records.push(Record::Certificate(Certificate {
            id: id.clone(),
            customer_id: customer.to_owned(),
            public_key: URL_SAFE_NO_PAD.encode(raw),
            status: "active".into(),
            created_at: now,
        }));
        m.audit = Some(admin_audit(
            Some(p),
            "certificate.enrolled",
            &id,
            json!({ "customer_id": customer }),
        ));
        match self.store.apply(m).await {
            Ok(_) => {}
            Err(MovementError::Store(StoreError::AlreadyExists(_))) => {
                return Err(Error::new(
                    Kind::Conflict,
                    "certificate_key_in_use",
                    "this public key is already enrolled as a certificate",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(CertificateView {
            id,
            object: "certificate",
            customer_id: customer.to_owned(),
            status: "active".into(),
            created_at: now.to_rfc3339(),
        })
    }

    /// Fund a wallet from the external clearing account (card funding).
    pub async fn topup(
        &self,
        p: &Principal,
        customer: &str,
        amount_str: &str,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        p.require(&[Role::Admin])?;
        let amount = Money::parse_amount(amount_str, crate::CURRENCY)?;
        self.store
            .customer(customer)
            .await?
            .ok_or_else(|| Error::not_found("customer", customer))?;
        let now = self.now();
        let id = format!(
            "top_{}",
            self.new_id::<qrgate_core::id::kind::Payment>()?
                .to_string()
                .trim_start_matches("pay_")
        );
        let balance = self
            .store
            .account(&wallet_account(customer))
            .await?
            .map_or(0, |a| a.balance_minor);
        let view = TopupView {
            id: id.clone(),
            object: "topup",
            customer_id: customer.into(),
            amount: amount.to_decimal_string(),
            currency: "CNY".into(),
            balance: crate::views::amount(balance.saturating_add(amount.minor()), "CNY"),
            created_at: now.to_rfc3339(),
        };
        let body = serde_json::to_string(&view).map_err(Error::internal)?;
        let mut m = Movement::new(now);
        m.idempotency = idem.map(|i| i.record(201, body.clone()));
        m.posting = Some(Posting {
            id: format!("pst_{id}"),
            kind: "topup".into(),
            payment_id: None,
            entries: vec![
                Entry {
                    account_id: CLEARING_ACCOUNT.into(),
                    amount_minor: -amount.minor(),
                    currency: "CNY".into(),
                },
                Entry {
                    account_id: wallet_account(customer),
                    amount_minor: amount.minor(),
                    currency: "CNY".into(),
                },
            ],
        });
        m.audit = Some(AuditEntry {
            action: "wallet.topup".into(),
            subject: customer.into(),
            details: json!({ "topup_id": id, "amount_minor": amount.minor(), "by": p.key_id }),
        });
        self.ensure_clearing(CLEARING_ACCOUNT).await?;
        Ok(Reply::of(self.store.apply(m).await?, 201, body))
    }

    /// Create an external clearing account (may go negative) unless it exists.
    pub(crate) async fn ensure_clearing(&self, id: &str) -> Result<(), Error> {
        if self.store.account(id).await?.is_none() {
            match self
                .store
                .insert(Record::Account(Account {
                    id: id.into(),
                    kind: "external_clearing".into(),
                    owner_id: None,
                    currency: "CNY".into(),
                    allow_negative: true,
                    balance_minor: 0,
                    created_at: self.now(),
                }))
                .await
            {
                Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn display(m: &Merchant) -> MerchantDisplay {
        MerchantDisplay {
            name: m.name.clone(),
            city: m.city.clone(),
            country: m.country.clone(),
            mcc: m.mcc.clone(),
            currency: crate::CURRENCY,
            postal_code: None,
            language: m.name_local.as_ref().map(|n| LanguageTemplate {
                language: "ZH".into(),
                name: n.clone(),
                city: None,
            }),
        }
    }

    async fn merchant_of(&self, p: &Principal) -> Result<Merchant, Error> {
        let id = p.merchant()?;
        self.store
            .merchant(id)
            .await?
            .ok_or_else(|| Error::not_found("merchant", id))
    }

    /// A printable static code for the merchant's counter.
    pub async fn create_static_code(&self, p: &Principal) -> Result<StaticCodeView, Error> {
        let m = self.merchant_of(p).await?;
        let id: StaticCodeId = self.new_id()?;
        let code = MerchantCode {
            kind: MerchantCodeKind::Static { code_id: id },
            display: Self::display(&m),
        };
        let payload = code.issue(&self.keys_read())?;
        let now = self.now();
        self.store
            .insert(Record::StaticCode(StaticCode {
                id: id.to_string(),
                merchant_id: m.id.clone(),
                payload: payload.clone(),
                created_at: now,
                revoked_at: None,
            }))
            .await?;
        Ok(StaticCodeView {
            id: id.to_string(),
            object: "static_code",
            merchant_id: m.id,
            payload,
            created_at: now.to_rfc3339(),
            risk_prompt: STATIC_CODE_PROMPT,
        })
    }

    /// A static code's payload; for the owning merchant (or admin) only.
    pub async fn get_static_code(&self, p: &Principal, id: &str) -> Result<StaticCodeView, Error> {
        let sc = self
            .store
            .static_code(id)
            .await?
            .ok_or_else(|| Error::not_found("static code", id))?;
        let visible = p.role == Role::Admin
            || (p.role == Role::Merchant && p.subject.as_deref() == Some(sc.merchant_id.as_str()));
        if !visible {
            return Err(Error::not_found("static code", id));
        }
        Ok(StaticCodeView {
            id: sc.id,
            object: "static_code",
            merchant_id: sc.merchant_id,
            payload: sc.payload,
            created_at: sc.created_at.to_rfc3339(),
            risk_prompt: STATIC_CODE_PROMPT,
        })
    }

    /// A dynamic order code with its amount and expiry.
    pub async fn create_order(
        &self,
        p: &Principal,
        amount_str: &str,
        reference: Option<String>,
        out_trade_no: Option<String>,
        ttl_seconds: Option<i64>,
    ) -> Result<OrderView, Error> {
        let m = self.merchant_of(p).await?;
        let amount = Money::parse_amount(amount_str, crate::CURRENCY)?;
        let max_ttl = self.limits.order_ttl_seconds;
        let ttl = ttl_seconds.unwrap_or(15 * 60);
        if ttl < 30 || ttl > max_ttl {
            return Err(Error::bad_request(
                "invalid_request",
                format!("expires_in must be 30 to {max_ttl} seconds"),
            )
            .with_rule("QG-ORDER-TTL"));
        }
        if let Some(o) = &out_trade_no {
            crate::check_merchant_number("out_trade_no", o)?;
        }
        let id: OrderId = self.new_id()?;
        let reference = match reference {
            Some(r) => {
                check_len("reference", &r, 25)?;
                r
            }
            None => id.to_string().chars().skip(4).take(25).collect(),
        };
        let now = self.now();
        // Whole seconds, as the code carries them.
        let expires_at = qrgate_core::Timestamp::from_unix_seconds(now.unix_seconds() + ttl)
            .ok_or_else(|| Error::internal("expiry overflow"))?;
        let code = MerchantCode {
            kind: MerchantCodeKind::Dynamic {
                order_id: id,
                amount,
                reference: reference.clone(),
                expires_at,
            },
            display: Self::display(&m),
        };
        let payload = code.issue(&self.keys_read())?;
        let order = Order {
            id: id.to_string(),
            merchant_id: m.id,
            amount_minor: amount.minor(),
            currency: "CNY".into(),
            reference,
            out_trade_no,
            status: OrderStatus::Open.as_str().into(),
            payload,
            payment_id: None,
            expires_at,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert(Record::Order(order.clone())).await {
            Ok(()) => Ok(OrderView::of(&order)),
            Err(StoreError::AlreadyExists(_)) => Err(Error::new(
                Kind::Conflict,
                "duplicate_out_trade_no",
                "out_trade_no was already used by this merchant",
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_order(&self, p: &Principal, id: &str) -> Result<OrderView, Error> {
        let o = self
            .store
            .order(id)
            .await?
            .ok_or_else(|| Error::not_found("order", id))?;
        let visible = matches!(p.role, Role::Admin | Role::Auditor)
            || (p.role == Role::Merchant && p.subject.as_deref() == Some(o.merchant_id.as_str()));
        if !visible {
            return Err(Error::not_found("order", id));
        }
        Ok(OrderView::of(&o))
    }

    /// Close an open order so its code can no longer be paid.
    pub async fn close_order(&self, p: &Principal, id: &str) -> Result<OrderView, Error> {
        let view = self.get_order(p, id).await?;
        p.require(&[Role::Merchant])?;
        let mut m = Movement::new(self.now());
        m.order = Some(crate::order_move(
            id,
            OrderStatus::Open,
            OrderStatus::Closed,
            None,
        )?);
        m.events.push(OutboxEvent {
            event_id: self.event_id()?,
            event_type: "order.closed".into(),
            subject_id: id.into(),
            payload: json!({ "order_id": id, "merchant_id": view.merchant_id }),
        });
        m.audit = Some(AuditEntry {
            action: "order.closed".into(),
            subject: id.into(),
            details: json!({ "by": p.key_id }),
        });
        self.store.apply(m).await?;
        self.get_order(p, id).await
    }

    /// Expire open orders whose time has passed; returns how many.
    pub async fn expire_orders(&self) -> Result<usize, Error> {
        let now = self.now();
        let due = self.store.orders_due(now, 200).await?;
        let mut n = 0;
        for o in due {
            let mut m = Movement::new(now);
            m.order = Some(crate::order_move(
                &o.id,
                OrderStatus::Open,
                OrderStatus::Expired,
                None,
            )?);
            m.events.push(OutboxEvent {
                event_id: format!("evt_exp_{}", o.id),
                event_type: "order.expired".into(),
                subject_id: o.id.clone(),
                payload: json!({ "order_id": o.id, "merchant_id": o.merchant_id }),
            });
            m.audit = Some(AuditEntry {
                action: "order.expired".into(),
                subject: o.id.clone(),
                details: json!({}),
            });
            match self.store.apply(m).await {
                Ok(_) => n += 1,
                // Paid or closed meanwhile: nothing to do.
                Err(MovementError::OrderStateConflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }
}

/// Parse a customer, merchant or device id of the right kind, or answer 404.
pub fn parse_id<K: qrgate_core::id::IdKind>(
    what: &str,
    s: &str,
) -> Result<qrgate_core::id::Id<K>, Error> {
    s.parse().map_err(|_| Error::not_found(what, s))
}

/// The audit row of an admin action: what, on what, by which key.
fn admin_audit(
    by: Option<&Principal>,
    action: &str,
    subject: &str,
    mut details: serde_json::Value,
) -> AuditEntry {
    details["by"] = json!(by.map_or("first-start", |p| p.key_id.as_str()));
    AuditEntry {
        action: action.into(),
        subject: subject.into(),
        details,
    }
}

/// A new CNY account of a merchant or customer, empty, never negative.
fn owned_account(id: String, kind: &str, owner: &str, now: qrgate_core::Timestamp) -> Account {
    Account {
        id,
        kind: kind.into(),
        owner_id: Some(owner.into()),
        currency: "CNY".into(),
        allow_negative: false,
        balance_minor: 0,
        created_at: now,
    }
}
