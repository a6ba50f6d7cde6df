//! qrgate-gateway: the use cases. Every money movement is built here as one
//! [`qrgate_store::Movement`] and applied in one store transaction; the
//! numbers it enforces come from the rule catalogue.

pub mod audit;
pub mod complaints;
mod config;
mod credentials;
mod error;
mod events;
mod fresh;
pub mod funding;
pub mod health;
mod idempotency;
pub mod jobs;
mod lapse;
mod limiter;
pub mod money;
pub mod payments;
mod secrets;
pub(crate) use secrets::secret_place;
use secrets::{Secrets, Strict, from_store_keys, gateway_secret, to_store_keys};
pub mod otp;
pub mod parties;
mod pin;
pub mod refunds;
pub mod reviews;
pub mod risk;
mod rows;
pub mod sessions;
pub mod stepup;
pub mod trail;
pub mod views;
pub mod webhooks;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ring::rand::SystemRandom;
use serde::{Deserialize, Serialize};

use qrgate_codes::keyring::{Keyring, PublicKeySet};
use qrgate_core::rules::Catalogue;
use qrgate_core::{AccountId, Clock, Currency, Timestamp};
use qrgate_processor::{Processor, Sandbox};
use qrgate_store::Store;
use trail::{Action, By};

use config::rules_of;
pub use config::{Config, Limits};

pub use error::{ERROR_CODES, Error, Kind};
pub use health::{AnyGateway, WriteStats};
pub use idempotency::{Fresh, Idem, Outcome, Render, Reply, Said};

/// Who is calling, as established by the API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub key_id: String,
    pub role: Role,
    /// The merchant (merchant role) or customer (consumer role) the key acts for.
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Merchant,
    Consumer,
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Merchant => "merchant",
            Role::Consumer => "consumer",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "merchant" => Some(Role::Merchant),
            "consumer" => Some(Role::Consumer),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }
}

impl Principal {
    pub fn require(&self, roles: &[Role]) -> Result<(), Error> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(Error::forbidden(format!(
                "this needs a key with role {}; yours is {}",
                names.join(" or "),
                self.role.as_str()
            )))
        }
    }

    /// The merchant a merchant key acts for.
    pub fn merchant(&self) -> Result<&str, Error> {
        self.require(&[Role::Merchant])?;
        self.subject
            .as_deref()
            .ok_or_else(|| Error::internal("merchant key without merchant"))
    }

    /// The customer a consumer key acts for.
    pub fn customer(&self) -> Result<&str, Error> {
        self.require(&[Role::Consumer])?;
        self.subject
            .as_deref()
            .ok_or_else(|| Error::internal("consumer key without customer"))
    }
}

/// The gateway: a store, a clock, the signing keys and the rules.
pub struct Gateway<S: Store> {
    pub(crate) store: S,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: SystemRandom,
    pub(crate) keyring: RwLock<Keyring>,
    pub(crate) catalogue: Catalogue,
    pub(crate) limits: Limits,
    pub(crate) config: Config,
    pub(crate) rows: rows::Rows,
    pub(crate) keys: fresh::Keys,
    pub(crate) blocks: fresh::Blocks,
    pub(crate) processor: Arc<dyn Processor>,
    pub(crate) processor_timeout: Duration,
    /// The bank that pays merchants.
    pub(crate) bank: Arc<dyn qrgate_processor::bank::Payouts>,
    pub(crate) resolver: Arc<dyn webhooks::Resolver>,
    pub(crate) rate: limiter::RateLimits,
    pub(crate) secrets: Secrets,
    /// Mixed into every PIN hash (HMAC before PBKDF2); kept sealed in the
    /// database, apart from the hashes.
    pub(crate) pin_pepper: Arc<Vec<u8>>,
    /// Seals the handles that name a device in the codes it signs, so
    /// merchants cannot link them (see [`qrgate_codes::handle`]).
    pub(crate) handle_key: Arc<qrgate_codes::handle::HandleKey>,
    trusted_proxies: Vec<qrgate_core::net::Cidr>,
}

/// How long after a rotation the key it replaced may be retired: every
/// node reloads its keys within 2 s under `serve`, so none signs with it
/// any more.
pub const RETIRE_AFTER_ROTATION_MS: i64 = 10_000;

/// What a key's retirement made unpayable.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Retirement {
    /// Static codes it had signed, not revoked: their merchants need new
    /// ones.
    pub static_codes: Vec<InvalidatedCode>,
    /// Open orders it had signed, not yet expired.
    pub open_orders: usize,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct InvalidatedCode {
    pub id: String,
    pub merchant_id: String,
}

/// The only currency whose limits the catalogue states.
pub const CURRENCY: Currency = Currency::CNY;

/// An amount in minor units of the gateway's currency, for messages
/// (`12.30 CNY`).
pub(crate) fn money(minor: i64) -> qrgate_core::Money {
    qrgate_core::Money::from_minor(minor, CURRENCY)
}

/// The stored signing keys; on the first start, one is proposed first (of
/// nodes starting at once one writes it, and every node loads that one).
async fn first_key<S: Store>(
    store: &S,
    clock: &Arc<dyn Clock>,
    config: &Config,
    rng: &SystemRandom,
) -> Result<Vec<qrgate_store::StoredKey>, Error> {
    let mut stored = store.load_keys().await?;
    if stored.is_empty() {
        // First start: propose a key. Of nodes starting at once one
        // writes it; every node then loads the one that was written.
        let ring = Keyring::generate(rng, clock.now()).map_err(Error::internal)?;
        let secrets = Secrets(config.sealer.clone(), Strict::Migrating);
        if let Some(first) = to_store_keys(&ring, &secrets)?.into_iter().next() {
            let audit = trail::entry(
                Action::SigningKeyCreated,
                first.kid.clone(),
                By::Gateway("first start"),
                serde_json::json!({}),
            );
            store
                .change_keys(
                    qrgate_store::KeyChange::First(first),
                    clock.now(),
                    Some(audit),
                )
                .await?;
        }
        stored = store.load_keys().await?;
    }
    Ok(stored)
}

impl<S: Store> Gateway<S> {
    /// Load (or on first start create) the signing keys and apply the
    /// deployment's rule overrides. Returns the overrides that were applied.
    pub async fn start(
        store: S,
        clock: Arc<dyn Clock>,
        config: Config,
    ) -> Result<(Gateway<S>, Vec<qrgate_core::rules::Applied>), Error> {
        let (catalogue, limits, applied) = rules_of(&config)?;
        if !(5..=1440).contains(&config.web_session_minutes) {
            return Err(Error::bad_request(
                "config_web_session",
                format!(
                    "web_session_minutes must be 5 to 1440; not {}",
                    config.web_session_minutes
                ),
            ));
        }
        let trusted_proxies = config
            .trusted_proxies
            .iter()
            .map(|c| c.parse::<qrgate_core::net::Cidr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                Error::bad_request("config_trusted_proxies", format!("trusted_proxies: {e}"))
            })?;
        let rng = SystemRandom::new();
        let mut stored = first_key(&store, &clock, &config, &rng).await?;
        let secrets = Secrets(config.sealer.clone(), Strict::Migrating);
        // Plaintext rows from before sealing, and rows sealed under an
        // older master key, are sealed under the current one now.
        let resealed = secrets.reseal(&store).await?;
        if resealed > 0 {
            tracing::info!(resealed, "secrets sealed under the current master key");
            stored = store.load_keys().await?;
        }
        // Everything is sealed now: from here on a plaintext value is refused.
        let secrets = Secrets(config.sealer.clone(), Strict::Sealed);
        let keyring = from_store_keys(&stored, &secrets)?;
        let now = clock.now();
        let pin_pepper = Arc::new(gateway_secret(&store, &secrets, &rng, now, "pin_pepper").await?);
        let handle_key = gateway_secret(&store, &secrets, &rng, now, "device_handle_key").await?;
        let handle_key = qrgate_codes::handle::HandleKey::new(&handle_key)
            .map_err(Error::internal)?
            .into();
        // The sandbox processor stamps its settlement records with the
        // gateway's clock, so its days are the gateway's.
        let mut sandbox = Sandbox::default().with_clock(clock.clone());
        if let Some(dir) = &config.sandbox_journal_dir {
            sandbox = sandbox.with_journal_dir(dir).map_err(|e| {
                Error::bad_request(
                    "config_sandbox_journal_dir",
                    format!("sandbox_journal_dir {}: {e}", dir.display()),
                )
            })?;
        }
        Ok((
            Gateway {
                store,
                clock,
                rng,
                keyring: RwLock::new(keyring),
                catalogue,
                limits,
                processor_timeout: Duration::from_millis(config.processor_timeout_ms),
                config,
                rows: rows::Rows::default(),
                keys: fresh::Keys::default(),
                blocks: fresh::Blocks::default(),
                processor: Arc::new(sandbox),
                bank: Arc::new(qrgate_processor::bank::SandboxBank::new()),
                resolver: Arc::new(webhooks::SystemResolver),
                rate: limiter::RateLimits::default(),
                secrets,
                pin_pepper,
                handle_key,
                trusted_proxies,
            },
            applied,
        ))
    }

    /// Pay cards through this processor instead of the built-in sandbox.
    pub fn with_processor(mut self, processor: Arc<dyn Processor>) -> Gateway<S> {
        self.processor = processor;
        self
    }

    /// Pay merchants through this bank instead of the built-in sandbox.
    pub fn with_bank(mut self, bank: Arc<dyn qrgate_processor::bank::Payouts>) -> Gateway<S> {
        self.bank = bank;
        self
    }

    /// What this deployment lets webhooks reach beyond the public internet
    /// (stated in `GET /v1/rules`, so an auditor knows what to expect).
    pub fn webhook_reach(&self) -> qrgate_core::net::Reach {
        self.config.webhook_reach()
    }

    /// Draw on the per-address allowance of public endpoints and failed
    /// authentications (QG-RATE-PUBLIC); 429 when it is spent.
    /// `take`: count this request; otherwise only check one is left.
    pub fn rate_limit_public(&self, address: &str, take: bool) -> Result<(), Error> {
        self.rate.draw(
            limiter::Bucket::Public,
            address,
            self.limits.rate_public,
            self.now(),
            take,
        )
    }

    /// Resolve webhook host names with this resolver instead of the system's.
    pub fn with_resolver(mut self, resolver: Arc<dyn webhooks::Resolver>) -> Gateway<S> {
        self.resolver = resolver;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The proxies whose `X-Forwarded-For` is believed (config
    /// `trusted_proxies`).
    /// Whether the pages' cookies are `Secure` (and HSTS is sent).
    pub fn secure_cookies(&self) -> bool {
        self.config.secure_cookies
    }

    pub fn trusted_proxies(&self) -> &[qrgate_core::net::Cidr] {
        &self.trusted_proxies
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    pub(crate) fn keys_read(&self) -> std::sync::RwLockReadGuard<'_, Keyring> {
        match self.keyring.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Public keys for `GET /v1/keys` (retired keys included, marked).
    pub fn public_keys(&self) -> PublicKeySet {
        self.keys_read().public_keys()
    }

    /// Make a new active signing key; older keys keep verifying. The
    /// database keeps one active key: of two rotations at once (on any
    /// nodes) one wins, the other answers 409. `by` is written into the
    /// audit chain.
    pub async fn rotate_keys(&self, by: &str) -> Result<String, Error> {
        let fresh = Keyring::generate(&self.rng, self.now()).map_err(Error::internal)?;
        let key = to_store_keys(&fresh, &self.secrets)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("no key was generated"))?;
        let kid = key.kid.clone();
        let audit = trail::entry(
            Action::SigningKeyRotated,
            kid.clone(),
            By::Named(by),
            serde_json::json!({}),
        );
        let written = self
            .store
            .change_keys(
                qrgate_store::KeyChange::Rotate(key),
                self.now(),
                Some(audit),
            )
            .await;
        self.reload_keys().await?;
        match written {
            Ok(_) => Ok(kid),
            Err(qrgate_store::MovementError::Store(qrgate_store::StoreError::AlreadyExists(_))) => {
                Err(Error::new(
                    Kind::Conflict,
                    "rotation_conflict",
                    "another rotation made its key active at the same moment; the keys were reloaded",
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Retire a key that only verifies (a compromised one): codes it
    /// signed are refused from now on, on every node once it reloads its
    /// keys (every 2 s under `serve`). The active key cannot be retired:
    /// rotate first. Merchant codes it signed that are still in force
    /// (static codes on the shops' counters, open orders) stop working
    /// with it, so the retirement is refused while there are any unless
    /// `invalidate_codes` says the operator knows; the answer lists them
    /// (their merchants print new static codes with `POST /v1/static-codes`).
    pub async fn retire_key(
        &self,
        kid: &str,
        by: &str,
        invalidate_codes: bool,
    ) -> Result<Retirement, Error> {
        let stored = self.store.load_keys().await?;
        let key = stored
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| Error::not_found("signing key", kid))?;
        let not_retirable = || {
            Error::new(
                Kind::Conflict,
                "key_not_retirable",
                format!(
                    "key {kid} is {}; only a key that no longer signs can be retired (rotate first)",
                    key.state
                ),
            )
        };
        if key.state != "verify_only" {
            return Err(not_retirable());
        }
        // Until every node has reloaded (every 2 s under `serve`), another
        // may still sign codes with the key the rotation replaced; they
        // would escape the count below.
        let rotated = stored
            .iter()
            .filter(|k| k.state == "active")
            .map(|k| k.created_at)
            .max();
        let wait_ms = rotated.map_or(0, |at| {
            RETIRE_AFTER_ROTATION_MS - self.now().millis_since(at)
        });
        if wait_ms > 0 {
            return Err(Error::new(
                Kind::Conflict,
                "key_recently_rotated",
                format!(
                    "key {kid} stopped signing less than {} s ago and other nodes may still sign with it until they reload; retry in {} s",
                    RETIRE_AFTER_ROTATION_MS / 1000,
                    (wait_ms + 999) / 1000
                ),
            ));
        }
        let invalidated = self.codes_signed_by(kid).await?;
        let (codes, orders) = (invalidated.static_codes.len(), invalidated.open_orders);
        if codes + orders > 0 && !invalidate_codes {
            return Err(Error::new(
                Kind::Conflict,
                "key_signs_live_codes",
                format!(
                    "key {kid} signed {codes} static codes and {orders} open orders still in force; retired, it makes them unpayable. Retry with ?invalidate_codes=true to retire it anyway (the answer lists the codes; their merchants print new ones with POST /v1/static-codes)"
                ),
            ));
        }
        let audit = trail::entry(
            Action::SigningKeyRetired,
            kid,
            By::Named(by),
            serde_json::json!({
                "static_codes_invalidated": codes,
                "open_orders_invalidated": orders,
            }),
        );
        let done = self
            .store
            .change_keys(
                qrgate_store::KeyChange::Retire { kid: kid.into() },
                self.now(),
                Some(audit),
            )
            .await?;
        self.reload_keys().await?;
        if !done {
            return Err(not_retirable());
        }
        Ok(invalidated)
    }

    /// The merchant codes in force that name `kid` as their signer.
    async fn codes_signed_by(&self, kid: &str) -> Result<Retirement, Error> {
        let (codes, orders) = self.store.codes_in_force(self.now()).await?;
        let signed = |payload: &str| {
            qrgate_codes::merchant::signer_of(payload).is_some_and(|k| k.as_str() == kid)
        };
        Ok(Retirement {
            static_codes: codes
                .into_iter()
                .filter(|c| signed(&c.payload))
                .map(|c| InvalidatedCode {
                    id: c.id,
                    merchant_id: c.merchant_id,
                })
                .collect(),
            open_orders: orders.iter().filter(|o| signed(&o.payload)).count(),
        })
    }

    /// Re-read the keys from the store (another node may have rotated them).
    pub async fn reload_keys(&self) -> Result<(), Error> {
        let stored = self.store.load_keys().await?;
        if stored.is_empty() {
            return Ok(());
        }
        let ring = from_store_keys(&stored, &self.secrets);
        let mut g = match self.keyring.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match ring {
            Ok(ring) => {
                *g = ring;
                Ok(())
            }
            Err(e) => {
                // The private keys do not open here (the master key moved
                // on): a retirement, which needs none, is still put in force.
                for k in stored.iter().filter(|k| k.state == "retired") {
                    if let Ok(kid) = qrgate_codes::keyring::KeyId::parse(&k.kid) {
                        let _ = g.retire(&kid);
                    }
                }
                Err(e)
            }
        }
    }

    pub(crate) fn new_id<K: qrgate_core::id::IdKind>(
        &self,
    ) -> Result<qrgate_core::id::Id<K>, Error> {
        qrgate_core::id::Id::generate_at(self.now().unix_millis(), &self.rng)
            .map_err(Error::internal)
    }
}

/// An order state change, checked against the transition table.
pub(crate) fn order_move(
    id: &str,
    from: qrgate_core::state::OrderStatus,
    to: qrgate_core::state::OrderStatus,
    payment_id: Option<String>,
) -> Result<qrgate_store::OrderTransition, Error> {
    from.transition(to).map_err(Error::internal)?;
    Ok(qrgate_store::OrderTransition {
        id: id.into(),
        from: from.as_str().into(),
        to: to.as_str().into(),
        payment_id,
    })
}

/// Longest `out_trade_no` or `out_refund_no` a merchant may send.
pub const MERCHANT_NUMBER_MAX: usize = 64;

/// A merchant's own number for a payment, order or refund (`out_trade_no`,
/// `out_refund_no`): 1 to 64 visible ASCII characters, so it prints the same
/// on a statement, a receipt and a log line, and cannot hide a space.
pub(crate) fn check_merchant_number(field: &'static str, v: &str) -> Result<(), Error> {
    if v.is_empty() || v.len() > MERCHANT_NUMBER_MAX || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::bad_request(
            "invalid_request",
            format!(
                "{field} must be 1 to {MERCHANT_NUMBER_MAX} visible ASCII characters (no spaces); reuse it when retrying"
            ),
        ));
    }
    Ok(())
}

/// A payment state change, checked against the transition table.
pub(crate) fn payment_move(
    id: &str,
    from: qrgate_core::state::PaymentStatus,
    to: qrgate_core::state::PaymentStatus,
) -> Result<qrgate_store::PaymentWrite, Error> {
    from.transition(to).map_err(Error::internal)?;
    Ok(qrgate_store::PaymentWrite::Transition {
        id: id.into(),
        from,
        to,
        details: None,
    })
}

/// Account ids.
pub(crate) fn wallet_account(customer: &str) -> AccountId {
    AccountId::wallet(customer, CURRENCY)
}
pub(crate) fn settlement_account(merchant: &str) -> AccountId {
    AccountId::settlement(merchant, CURRENCY)
}
pub(crate) fn fee_account(merchant: &str) -> AccountId {
    AccountId::fees(merchant, CURRENCY)
}
pub(crate) fn goodwill_account() -> AccountId {
    AccountId::goodwill(CURRENCY)
}
pub(crate) fn clearing_account() -> AccountId {
    AccountId::external_clearing(CURRENCY)
}
