//! The use cases end to end against a real store (SQLite; Postgres too when
//! QRGATE_TEST_POSTGRES_URL is set), with a manual clock. This file holds
//! the fixtures (the `World`, the stores, `on_both!`); the tests are in
//! `gateway/`, one module per feature, and the race matrix in
//! `gateway/races.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use qrgate_codes::cpm::{Holder, TokenClaims};
use qrgate_core::state::PaymentStatus;
use qrgate_core::{Clock, ManualClock, Timestamp};
use qrgate_gateway::funding::NewCard;
use qrgate_gateway::parties::{NewCustomer, NewMerchant};
use qrgate_gateway::{Config, Fresh, Gateway, Principal, Reply, Role};
use qrgate_processor::Sandbox;
use qrgate_store::{AnyStore, PgStore, Store};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Nanoseconds of the wall clock, so names stay unique across runs whose
/// processes happen to get the same id (a leftover schema or file would be
/// reused, keys and all).
fn run_nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

fn admin() -> Principal {
    Principal {
        key_id: "key_admin".into(),
        role: Role::Admin,
        subject: None,
    }
}

/// A real API key of `role` for `subject`, and the caller it authenticates.
async fn key_of(gw: &Gateway<AnyStore>, role: Role, subject: &str) -> Principal {
    let k = gw
        .create_api_key(Some(&admin()), role, Some(subject.into()))
        .await
        .unwrap();
    gw.authenticate(&k.secret).await.unwrap()
}

/// A regular restaurant in Shanghai named `name`, with the defaults.
fn merchant_form(name: &str) -> NewMerchant {
    NewMerchant::regular(name, "SHANGHAI", "5812")
}

struct World {
    gw: Gateway<AnyStore>,
    sandbox: Arc<Sandbox>,
    clock: Arc<ManualClock>,
    merchant: Principal,
    other_merchant: Principal,
    consumer: Principal,
    device: Ed25519KeyPair,
    device_id: String,
    /// The sealed handles the device got at enrolment; each code takes the
    /// next one.
    handles: Vec<String>,
    next_handle: std::sync::atomic::AtomicUsize,
}

// 2026-11-25 10:00 in Shanghai.
const START: &str = "2026-11-25T02:00:00Z";

async fn world(store: AnyStore) -> World {
    let clock = Arc::new(ManualClock::new(Timestamp::parse_rfc3339(START).unwrap()));
    let (gw, _) = Gateway::start(store, clock.clone(), test_config())
        .await
        .unwrap();
    let sandbox = Arc::new(
        Sandbox::new(Duration::from_millis(20))
            .with_hang(Duration::from_secs(5))
            .with_clock(clock.clone()),
    );
    let gw = gw
        .with_processor(sandbox.clone())
        .with_resolver(Arc::new(FakeResolver));
    let a = admin();
    let nm = |name: &str| NewMerchant {
        name_local: Some("老街面馆".into()),
        ..merchant_form(name)
    };
    let m1 = gw
        .create_merchant(&a, nm("OLD STREET NOODLES"))
        .await
        .unwrap();
    let m2 = gw.create_merchant(&a, nm("OTHER SHOP")).await.unwrap();
    let c = gw
        .create_customer(
            &a,
            NewCustomer {
                account_class: "II".into(),
                level_a_daily_cap: None,
            },
        )
        .await
        .unwrap();
    gw.topup(&a, &c.id, "5000.00", None).await.unwrap();
    let consumer = key_of(&gw, Role::Consumer, &c.id).await;
    let rng = SystemRandom::new();
    let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let device = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    let d = gw
        .enroll_device(
            &consumer,
            &URL_SAFE_NO_PAD.encode(device.public_key().as_ref()),
            None,
        )
        .await
        .unwrap();
    let merchant = key_of(&gw, Role::Merchant, &m1.id).await;
    let other_merchant = key_of(&gw, Role::Merchant, &m2.id).await;
    World {
        gw,
        sandbox,
        clock,
        merchant,
        other_merchant,
        consumer,
        device,
        device_id: d.id,
        handles: d.handles.unwrap(),
        next_handle: Default::default(),
    }
}

/// "12.34" as minor units.
fn minor_units(amount: &str) -> i64 {
    let (units, cents) = amount.split_once('.').unwrap();
    units.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

/// A payment code signed offline by a device, naming it by a sealed handle.
fn device_code(device: &Ed25519KeyPair, handle: &str, now: Timestamp) -> String {
    let holder = Holder::Device {
        sealed: handle.parse().unwrap(),
    };
    TokenClaims::new(holder, now, 60, &SystemRandom::new())
        .unwrap()
        .sign_with(device)
}

impl World {
    /// A payment token signed offline by the consumer's device, now.
    fn device_token(&self) -> String {
        let i = self
            .next_handle
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        device_code(
            &self.device,
            &self.handles[i % self.handles.len()],
            self.clock.now(),
        )
    }

    async fn charge(&self, code: &str, amount: &str) -> Result<Value, qrgate_gateway::Error> {
        let body = self
            .gw
            .charge(&self.merchant, code, amount, None, None)
            .await?
            .into_body();
        Ok(serde_json::from_str(&body).unwrap())
    }

    async fn balance(&self) -> String {
        self.gw
            .get_customer(&admin(), self.consumer.subject.as_deref().unwrap())
            .await
            .unwrap()
            .balance
    }
}

async fn on_sqlite() -> AnyStore {
    let dir = std::env::temp_dir().join(format!(
        "qrgate_gw_{}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst),
        run_nanos()
    ));
    // A directory left by an earlier run (whose process had the same id) is stale.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    AnyStore::open(
        &format!("sqlite://{}", dir.join("g.db").display()),
        Timestamp::from_unix_millis(0),
    )
    .await
    .unwrap()
    .0
}

async fn on_postgres() -> Option<(AnyStore, String)> {
    let Ok(url) = std::env::var("QRGATE_TEST_POSTGRES_URL") else {
        eprintln!("SKIP postgres case: QRGATE_TEST_POSTGRES_URL is not set");
        return None;
    };
    let schema = format!(
        "qrgate_gw_{}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst),
        run_nanos()
    );
    Some((
        AnyStore::Postgres(
            PgStore::open(&url, Some(&schema), 8, Timestamp::from_unix_millis(0))
                .await
                .unwrap()
                .0,
        ),
        schema,
    ))
}

/// Drop a passing test's schema (a failing one keeps it for inspection).
async fn drop_schema(schema: &str) {
    use sqlx::Connection;
    let url = std::env::var("QRGATE_TEST_POSTGRES_URL").unwrap();
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut c)
        .await
        .unwrap();
}

macro_rules! on_both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(world(on_sqlite().await).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some((s, schema)) = on_postgres().await else {
                    return;
                };
                ($body)(world(s).await).await;
                drop_schema(&schema).await;
            }
        }
    };
}

/// Names for the webhook tests: `*.internal.example` resolves to a private
/// address, `mixed.example` to a public and a link-local one, every other
/// name to a public address.
struct FakeResolver;

impl qrgate_gateway::webhooks::Resolver for FakeResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        _port: u16,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<std::net::IpAddr>, String>> + Send + 'a>,
    > {
        let ips: Vec<std::net::IpAddr> = if host.ends_with(".internal.example") {
            vec!["10.20.30.40".parse().unwrap()]
        } else if host == "mixed.example" {
            vec![
                "93.184.215.14".parse().unwrap(),
                "169.254.169.254".parse().unwrap(),
            ]
        } else {
            vec!["93.184.215.14".parse().unwrap()]
        };
        Box::pin(async move { Ok(ips) })
    }
}

/// Records what it is asked to post; fails while `failures` is above zero.
#[derive(Default)]
struct FakeSender {
    sent: std::sync::Mutex<Vec<(String, String, String)>>,
    failures: std::sync::atomic::AtomicI64,
}

impl qrgate_gateway::webhooks::Sender for FakeSender {
    async fn post(&self, url: &str, signature: &str, body: &str) -> Result<u16, String> {
        self.sent
            .lock()
            .unwrap()
            .push((url.into(), signature.into(), body.into()));
        if self.failures.fetch_sub(1, Ordering::SeqCst) > 0 {
            Ok(503)
        } else {
            Ok(200)
        }
    }
}

fn sign_confirmation(w: &World, p: &Value) -> String {
    let msg = qrgate_gateway::stepup::confirmation_message(
        p["id"].as_str().unwrap(),
        p["amount"].as_str().unwrap(),
        "CNY",
        p["merchant_id"].as_str().unwrap(),
    );
    URL_SAFE_NO_PAD.encode(w.device.sign(&msg).as_ref())
}

fn confirmation(
    pin: Option<&str>,
    device: Option<(&str, String)>,
) -> qrgate_gateway::stepup::Confirmation {
    qrgate_gateway::stepup::Confirmation {
        pin: pin.map(Into::into),
        device_id: device.as_ref().map(|(d, _)| (*d).to_owned()),
        device_signature: device.map(|(_, s)| s),
        certificate_id: None,
        certificate_signature: None,
        otp: None,
        biometric: None,
    }
}

/// Store `pin` for the world's consumer as a hash from before the pepper
/// (PBKDF2-HMAC-SHA256 of the PIN itself, 100,000 iterations, no prefix),
/// whatever its shape; the hash.
async fn plant_legacy_pin(w: &World, pin: &str) -> String {
    use qrgate_store::{AuditEntry, CredentialChange};
    let customer = w.consumer.subject.clone().unwrap();
    let salt = [0x5a_u8; 16];
    let mut old = [0_u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(100_000).unwrap(),
        &salt,
        pin.as_bytes(),
        &mut old,
    );
    let legacy = CredentialChange::PinSet {
        customer_id: customer.clone(),
        hash: hex::encode(old),
        salt: hex::encode(salt),
    };
    let audit = AuditEntry {
        action: "pin.set".into(),
        subject: customer,
        details: json!({}),
    };
    assert!(
        w.gw.store()
            .change_credential(legacy, w.clock.now(), audit)
            .await
            .unwrap()
    );
    hex::encode(old)
}

// ---- Cards through the sandbox processor ----

impl World {
    /// A new customer with a funded class II wallet.
    async fn new_consumer(&self) -> Principal {
        let c = self
            .gw
            .create_customer(
                &admin(),
                NewCustomer {
                    account_class: "II".into(),
                    level_a_daily_cap: None,
                },
            )
            .await
            .unwrap();
        key_of(&self.gw, Role::Consumer, &c.id).await
    }

    async fn link(&self, who: &Principal, number: &str) -> String {
        let card = NewCard {
            number: number.into(),
            exp_month: 12,
            exp_year: 2030,
        };
        self.gw.link_card(who, card).await.unwrap().id
    }

    /// A small merchant of the person `owner`.
    async fn small_merchant(&self, name: &str, owner: &str) -> Principal {
        let m = self
            .gw
            .create_merchant(
                &admin(),
                NewMerchant {
                    name: name.into(),
                    city: "SHANGHAI".into(),
                    country: "CN".into(),
                    mcc: "5499".into(),
                    currency: "CNY".into(),
                    category: "small_personal".into(),
                    name_local: None,
                    owner_ref: Some(owner.into()),
                    fee_rate_bps: None,
                    fee_minimum: None,
                    bank_account: None,
                },
            )
            .await
            .unwrap();
        key_of(&self.gw, Role::Merchant, &m.id).await
    }

    /// `payer` pays a new order of `merchant` from `source`.
    async fn pay_order(
        &self,
        merchant: &Principal,
        payer: &Principal,
        amount: &str,
        source: Option<&str>,
    ) -> Result<Value, qrgate_gateway::Error> {
        let order = self
            .gw
            .create_order(merchant, amount, None, None, None)
            .await
            .unwrap();
        let body = self
            .gw
            .pay_scanned(payer, &order.payload, None, source, None)
            .await?
            .into_body();
        Ok(serde_json::from_str(&body).unwrap())
    }

    async fn assert_books_sound(&self) {
        let c = self.gw.store().ledger_check().await.unwrap();
        assert!(c.is_sound(), "{c:?}");
    }

    async fn clearing(&self) -> i64 {
        self.gw
            .store()
            .account(&qrgate_core::AccountId::card_clearing(
                "sandbox",
                qrgate_core::Currency::CNY,
            ))
            .await
            .unwrap()
            .map_or(0, |a| a.balance_minor)
    }
}

// ---- One-time passwords and biometrics as step-up elements ----

impl World {
    /// A dynamic order of 10.00 over the exhausted level-C cap: waiting for step-up.
    async fn waiting_order(&self) -> Value {
        let p = self
            .pay_order(&self.merchant, &self.consumer, "10.00", None)
            .await
            .unwrap();
        assert_eq!(p["status"], "requires_action", "{p}");
        p
    }

    async fn confirm_with(
        &self,
        p: &Value,
        c: qrgate_gateway::stepup::Confirmation,
    ) -> Result<Value, qrgate_gateway::Error> {
        let body = self
            .gw
            .confirm(&self.consumer, p["id"].as_str().unwrap(), c, None)
            .await?
            .into_body();
        Ok(serde_json::from_str(&body).unwrap())
    }
}

fn otp_now(w: &World, secret: &str) -> String {
    let step = qrgate_codes::otp::step_of(w.clock.now());
    qrgate_codes::otp::totp(
        &qrgate_codes::otp::unbase32(secret).unwrap(),
        u64::try_from(step).unwrap(),
    )
}

fn with_otp(pin: Option<&str>, otp: &str) -> qrgate_gateway::stepup::Confirmation {
    qrgate_gateway::stepup::Confirmation {
        otp: Some(otp.into()),
        ..confirmation(pin, None)
    }
}

// ---- Optional limits: password-free count, per-transaction cap, velocity ----

impl World {
    /// Restart the gateway on the same store with these rule overrides.
    async fn reconfigure(&mut self, rules: &[(&str, i64)], by_mcc: &[(&str, i64)]) {
        let config = Config {
            rules: rules.iter().map(|(r, v)| ((*r).to_owned(), *v)).collect(),
            txn_cap_by_mcc: by_mcc.iter().map(|(m, v)| ((*m).to_owned(), *v)).collect(),
            ..test_config()
        };
        let (gw, applied) = Gateway::start(self.gw.store().clone(), self.clock.clone(), config)
            .await
            .unwrap();
        assert_eq!(applied.len(), rules.len());
        self.gw = gw.with_processor(self.sandbox.clone());
    }

    /// Another gateway node on the same store and clock (its own sandbox
    /// processor and bank unless given others).
    async fn node(&self) -> Gateway<AnyStore> {
        Gateway::start(self.gw.store().clone(), self.clock.clone(), test_config())
            .await
            .unwrap()
            .0
    }
}

/// The tests' gateway settings: card calls time out after 300 ms.
fn test_config() -> Config {
    Config {
        processor_timeout_ms: 300,
        ..Config::default()
    }
}

#[path = "gateway/cards.rs"]
mod cards;
#[path = "gateway/catalogue.rs"]
mod catalogue;
#[path = "gateway/codes.rs"]
mod codes;
#[path = "gateway/complaints.rs"]
mod complaints;
#[path = "gateway/credentials.rs"]
mod credentials;
#[path = "gateway/limits.rs"]
mod limits;
#[path = "gateway/lookups.rs"]
mod lookups;
#[path = "gateway/money.rs"]
mod money;
#[path = "gateway/notes.rs"]
mod notes;
#[path = "gateway/orders.rs"]
mod orders;
#[path = "gateway/payouts.rs"]
mod payouts;
#[path = "gateway/races.rs"]
mod races;
#[path = "gateway/reconcile.rs"]
mod reconcile;
#[path = "gateway/refunds.rs"]
mod refunds;
#[path = "gateway/risk.rs"]
mod risk;
#[path = "gateway/settlement.rs"]
mod settlement;
#[path = "gateway/statements.rs"]
mod statements;
#[path = "gateway/stepup.rs"]
mod stepup;
#[path = "gateway/tampering.rs"]
mod tampering;
#[path = "gateway/webhooks.rs"]
mod webhooks;

/// The id in a reply's body (of the payment or refund it made).
fn id_of(r: Reply) -> String {
    serde_json::from_str::<Value>(&r.into_body()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A reply's kind and body.
fn split(r: Reply) -> (Option<Fresh>, String) {
    (r.fresh(), r.into_body())
}
