//! The use cases end to end against a real store (SQLite; Postgres too when
//! QRGATE_TEST_POSTGRES_URL is set), with a manual clock.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use qrgate_codes::cpm::{Holder, TokenClaims};
use qrgate_core::{Clock, ManualClock, Timestamp};
use qrgate_gateway::funding::NewCard;
use qrgate_gateway::parties::{NewCustomer, NewMerchant};
use qrgate_gateway::{Config, Gateway, Principal, Reply, Role};
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
    let config = Config {
        processor_timeout_ms: 300,
        ..Config::default()
    };
    let (gw, _) = Gateway::start(store, clock.clone(), config).await.unwrap();
    let sandbox =
        Arc::new(Sandbox::new(Duration::from_millis(20)).with_hang(Duration::from_secs(5)));
    let gw = gw
        .with_processor(sandbox.clone())
        .with_resolver(Arc::new(FakeResolver));
    let a = admin();
    let nm = |name: &str| NewMerchant {
        name: name.into(),
        city: "SHANGHAI".into(),
        country: "CN".into(),
        mcc: "5812".into(),
        currency: "CNY".into(),
        category: "regular".into(),
        name_local: Some("老街面馆".into()),
        owner_ref: None,
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
        let Reply { body, .. } = self
            .gw
            .charge(&self.merchant, code, amount, None, None)
            .await?;
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

on_both!(device_signed_code_pays_once, |w: World| async move {
    let token = w.device_token();
    let p = w.charge(&token, "36.50").await.unwrap();
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["amount"], "36.50");
    assert_eq!(p["mode"], "cpm");
    assert_eq!(p["risk_level"], "C");
    assert!(
        p.get("customer_id").is_none(),
        "merchants do not see who paid"
    );
    assert_eq!(w.balance().await, "4963.50");
    let e = w.charge(&token, "1.00").await.unwrap_err();
    assert_eq!(
        (e.code, e.rule.as_deref()),
        ("payment_code_already_used", Some("BCP-CODE-SINGLE-USE"))
    );
    assert_eq!(w.balance().await, "4963.50");
});

on_both!(
    codes_of_one_device_share_nothing_a_merchant_could_link,
    |w: World| async move {
        use qrgate_codes::cpm::UnverifiedToken;
        let (a, b) = (w.device_token(), w.device_token());
        let holder = |t: &str| UnverifiedToken::decode(t).unwrap().claims.holder;
        let (Holder::Device { sealed: ha }, Holder::Device { sealed: hb }) =
            (holder(&a), holder(&b))
        else {
            panic!("not device codes");
        };
        assert_ne!(ha, hb);
        // No byte of the device id, and no fixed key id, in either code.
        let id = *w
            .device_id
            .parse::<qrgate_core::id::DeviceId>()
            .unwrap()
            .as_bytes();
        for sealed in [ha, hb] {
            assert!(
                !sealed
                    .0
                    .windows(4)
                    .any(|win| id.windows(4).any(|d| d == win))
            );
        }
        // Both pay, from the one device.
        for (t, amount) in [(&a, "1.00"), (&b, "2.00")] {
            let p = w.charge(t, amount).await.unwrap();
            assert_eq!(p["status"], "succeeded", "{p}");
        }
        assert_eq!(w.balance().await, "4997.00");
        // A handle another gateway sealed names no device here.
        let foreign = qrgate_codes::handle::HandleKey::new(&[9; 32])
            .unwrap()
            .seal(id, &SystemRandom::new())
            .unwrap();
        let e = w
            .charge(
                &device_code(&w.device, &foreign.to_string(), w.clock.now()),
                "1.00",
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, "payment_code_unknown_key");
        assert_eq!(w.balance().await, "4997.00");
    }
);

on_both!(
    a_device_gets_more_handles_only_for_itself_while_active,
    |w: World| async move {
        let batch =
            w.gw.device_handles(&w.consumer, &w.device_id, Some(100))
                .await
                .unwrap();
        assert_eq!(batch.handles.len(), 100);
        let distinct: std::collections::HashSet<_> = batch.handles.iter().collect();
        assert_eq!(distinct.len(), 100);
        let p = w
            .charge(
                &device_code(&w.device, &batch.handles[99], w.clock.now()),
                "3.00",
            )
            .await
            .unwrap();
        assert_eq!(p["status"], "succeeded");
        let default =
            w.gw.device_handles(&w.consumer, &w.device_id, None)
                .await
                .unwrap();
        assert_eq!(default.handles.len(), 20);
        for n in [0, 101] {
            let e =
                w.gw.device_handles(&w.consumer, &w.device_id, Some(n))
                    .await
                    .unwrap_err();
            assert_eq!(e.code, "invalid_count");
        }
        let stranger = w.new_consumer().await;
        let e =
            w.gw.device_handles(&stranger, &w.device_id, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "not_found");
        let e =
            w.gw.device_handles(&w.merchant, &w.device_id, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "forbidden");
        w.gw.revoke_device(&w.consumer, &w.device_id).await.unwrap();
        let e =
            w.gw.device_handles(&w.consumer, &w.device_id, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "device_revoked");
    }
);

on_both!(
    expired_and_forged_codes_are_refused,
    |w: World| async move {
        let token = w.device_token();
        w.clock.advance_seconds(60);
        let e = w.charge(&token, "1.00").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("payment_code_expired", Some("BCP-CODE-TTL"))
        );
        // Tampered: one character of the signature changed.
        let fresh = w.device_token();
        let mut chars: Vec<char> = fresh.chars().collect();
        let i = chars.len() - 3;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let e = w
            .charge(&chars.into_iter().collect::<String>(), "1.00")
            .await
            .unwrap_err();
        assert!(e.code.starts_with("payment_code_"), "{e}");
        // Foreign codes are named.
        let e = w.charge("134567890123456789", "1.00").await.unwrap_err();
        assert_eq!(e.code, "payment_code_foreign");
        assert!(e.message.contains("WeChat Pay"));
        assert_eq!(
            w.charge("hello", "1.00").await.unwrap_err().code,
            "payment_code_malformed"
        );
        assert_eq!(w.balance().await, "5000.00");
    }
);

on_both!(
    online_code_is_single_use_across_both_presentations,
    |w: World| async move {
        let code = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        assert_eq!(code.numeric.len(), 18);
        assert!(code.qr.starts_with("QRG:"));
        w.charge(&code.qr, "10.00").await.unwrap();
        let e = w.charge(&code.numeric, "10.00").await.unwrap_err();
        assert_eq!(e.code, "payment_code_already_used");
        let code2 = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        w.charge(&code2.numeric, "5.00").await.unwrap();
        assert_eq!(w.balance().await, "4985.00");
        let code3 = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        w.clock.advance_seconds(61);
        assert_eq!(
            w.charge(&code3.numeric, "1.00").await.unwrap_err().code,
            "payment_code_expired"
        );
    }
);

on_both!(
    level_c_daily_cap_at_the_boundary_and_the_day_turns,
    |w: World| async move {
        // C: 1000.00 per customer per business day.
        w.charge(&w.device_token(), "999.99").await.unwrap();
        w.charge(&w.device_token(), "0.01").await.unwrap();
        let token = w.device_token();
        let e = w.charge(&token, "0.01").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("limit_exceeded", Some("BCP-LIMIT-C-DAILY"))
        );
        assert_eq!(w.balance().await, "4000.00");
        // The declined payment is recorded and its code stays burned.
        let list =
            w.gw.list_payments(
                &w.merchant,
                qrgate_gateway::payments::ListQuery {
                    limit: Some(10),
                    starting_after: None,
                    status: Some("failed".into()),
                },
            )
            .await
            .unwrap();
        assert_eq!(list.data.len(), 1);
        assert_eq!(
            list.data[0].failure.as_ref().unwrap().rule.as_deref(),
            Some("BCP-LIMIT-C-DAILY")
        );
        assert_eq!(
            w.charge(&token, "0.01").await.unwrap_err().code,
            "payment_code_already_used"
        );
        // Across merchants: the cap limits the payer.
        let other =
            w.gw.charge(&w.other_merchant, &w.device_token(), "0.01", None, None)
                .await
                .unwrap_err();
        assert_eq!(other.code, "limit_exceeded");
        // 23:59:59 in Shanghai is still the same day; midnight starts a new one.
        w.clock
            .set(Timestamp::parse_rfc3339("2026-11-25T15:59:59Z").unwrap());
        assert_eq!(
            w.charge(&w.device_token(), "0.01").await.unwrap_err().code,
            "limit_exceeded"
        );
        w.clock
            .set(Timestamp::parse_rfc3339("2026-11-25T16:00:00Z").unwrap());
        w.charge(&w.device_token(), "1000.00").await.unwrap();
    }
);

on_both!(
    static_code_is_level_d_with_its_own_cap,
    |w: World| async move {
        let sc = w.gw.create_static_code(&w.merchant).await.unwrap();
        let v = w.gw.verify_code(&sc.payload).await.unwrap();
        assert_eq!(
            (v.kind.as_str(), v.status.as_str(), v.merchant_name.as_str()),
            ("static", "active", "OLD STREET NOODLES")
        );
        let e =
            w.gw.pay_scanned(&w.consumer, &sc.payload, None, None, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "amount_required");
        let Reply { body, .. } =
            w.gw.pay_scanned(&w.consumer, &sc.payload, Some("500.00"), None, None)
                .await
                .unwrap();
        let p: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (p["mode"].as_str(), p["risk_level"].as_str()),
            (Some("mpm_static"), Some("D"))
        );
        let e =
            w.gw.pay_scanned(&w.consumer, &sc.payload, Some("0.01"), None, None)
                .await
                .unwrap_err();
        assert_eq!(e.rule.as_deref(), Some("BCP-LIMIT-D-STATIC"));
        // Level C (dynamic) still has room: the caps are per level.
        let order =
            w.gw.create_order(&w.merchant, "20.00", None, None, None)
                .await
                .unwrap();
        w.gw.pay_scanned(&w.consumer, &order.payload, None, None, None)
            .await
            .unwrap();
    }
);

on_both!(
    a_failed_or_lapsed_attempt_leaves_the_order_payable,
    |w: World| async move {
        let order =
            w.gw.create_order(&w.merchant, "30.00", None, Some("O-7".into()), Some(3600))
                .await
                .unwrap();
        // The card is declined: the attempt is recorded, the order stays open.
        let nofunds = w.link(&w.consumer, "4000000000009995").await;
        let e =
            w.gw.pay_scanned(&w.consumer, &order.payload, None, Some(&nofunds), None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "card_declined_insufficient_funds");
        let failed =
            w.gw.get_payment(&w.consumer, e.payment_id.as_deref().unwrap())
                .await
                .unwrap();
        assert_eq!(
            (failed.status.as_str(), failed.order_id.as_deref()),
            ("failed", Some(order.id.as_str()))
        );
        assert_eq!(
            w.gw.get_order(&w.merchant, &order.id).await.unwrap().status,
            "open"
        );
        // Over the level-C cap with a PIN set: a step-up that lapses does
        // not hold the order or its number either.
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        w.charge(&w.device_token(), "999.00").await.unwrap();
        let Reply { body, .. } =
            w.gw.pay_scanned(&w.consumer, &order.payload, None, None, None)
                .await
                .unwrap();
        let waiting: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(waiting["status"], "requires_action", "{waiting}");
        w.clock.advance_seconds(301);
        assert_eq!(w.gw.expire_requires_action().await.unwrap(), 1);
        // The next attempt steps up again and is confirmed: it pays the
        // order and carries the order's number.
        let Reply { body, .. } =
            w.gw.pay_scanned(&w.consumer, &order.payload, None, None, None)
                .await
                .unwrap();
        let again: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(again["status"], "requires_action", "{again}");
        let id = again["id"].as_str().unwrap();
        let sig = sign_confirmation(&w, &again);
        let done =
            w.gw.confirm(
                &w.consumer,
                id,
                confirmation(Some("493817"), Some((&w.device_id, sig))),
                None,
            )
            .await
            .unwrap();
        let paid: Value = serde_json::from_str(&done.body).unwrap();
        assert_eq!(
            (paid["status"].as_str(), paid["out_trade_no"].as_str()),
            (Some("succeeded"), Some("O-7"))
        );
        let o = w.gw.get_order(&w.merchant, &order.id).await.unwrap();
        assert_eq!(
            (o.status.as_str(), o.payment_id.as_deref()),
            ("paid", Some(id))
        );
        // Paid once: the order refuses any further attempt.
        assert_eq!(
            w.gw.pay_scanned(&w.consumer, &order.payload, None, None, None)
                .await
                .unwrap_err()
                .code,
            "order_not_open"
        );
        // A payment code, by contrast, stays used after a failed charge.
        let code = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        let e = w.charge(&code.numeric, "999999.00").await.unwrap_err();
        assert_ne!(e.code, "payment_code_already_used");
        assert_eq!(
            w.charge(&code.numeric, "1.00").await.unwrap_err().code,
            "payment_code_already_used"
        );
        w.assert_books_sound().await;
    }
);

on_both!(
    dynamic_order_is_paid_once_and_expires,
    |w: World| async move {
        let order =
            w.gw.create_order(
                &w.merchant,
                "88.00",
                Some("T-42".into()),
                Some("A-1".into()),
                Some(300),
            )
            .await
            .unwrap();
        assert_eq!(order.status, "open");
        let e =
            w.gw.pay_scanned(&w.consumer, &order.payload, Some("80.00"), None, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "amount_mismatch");
        let Reply { body, .. } =
            w.gw.pay_scanned(&w.consumer, &order.payload, None, None, None)
                .await
                .unwrap();
        let p: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (p["order_id"].as_str(), p["out_trade_no"].as_str()),
            (Some(order.id.as_str()), Some("A-1"))
        );
        assert_eq!(
            w.gw.get_order(&w.merchant, &order.id).await.unwrap().status,
            "paid"
        );
        assert_eq!(
            w.gw.pay_scanned(&w.consumer, &order.payload, None, None, None)
                .await
                .unwrap_err()
                .code,
            "order_not_open"
        );
        // out_trade_no is unique per merchant, across orders and charges:
        // the number names one thing.
        assert_eq!(
            w.gw.create_order(&w.merchant, "1.00", None, Some("A-1".into()), None)
                .await
                .unwrap_err()
                .code,
            "duplicate_out_trade_no"
        );
        let before = w.balance().await;
        let e =
            w.gw.charge(
                &w.merchant,
                &w.device_token(),
                "1.00",
                Some("A-1".into()),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, "duplicate_out_trade_no");
        w.gw.charge(
            &w.merchant,
            &w.device_token(),
            "1.00",
            Some("C-1".into()),
            None,
        )
        .await
        .unwrap();
        let e =
            w.gw.create_order(&w.merchant, "1.00", None, Some("C-1".into()), None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "duplicate_out_trade_no");
        assert_eq!(minor_units(&w.balance().await), minor_units(&before) - 100);
        // Another merchant's numbers are its own.
        w.gw.create_order(&w.other_merchant, "1.00", None, Some("C-1".into()), None)
            .await
            .unwrap();
        w.assert_books_sound().await;
        let o2 =
            w.gw.create_order(&w.merchant, "1.00", None, None, Some(60))
                .await
                .unwrap();
        w.clock.advance_seconds(61);
        assert_eq!(w.gw.expire_orders().await.unwrap(), 1);
        assert_eq!(
            w.gw.get_order(&w.merchant, &o2.id).await.unwrap().status,
            "expired"
        );
        let e =
            w.gw.pay_scanned(&w.consumer, &o2.payload, None, None, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "code_expired");
        // Another merchant sees nothing.
        assert_eq!(
            w.gw.get_order(&w.other_merchant, &order.id)
                .await
                .unwrap_err()
                .code,
            "not_found"
        );
    }
);

on_both!(
    refunds_go_back_once_and_never_beyond_capture,
    |w: World| async move {
        let p = w.charge(&w.device_token(), "100.00").await.unwrap();
        let id = p["id"].as_str().unwrap();
        let Reply {
            status: s1,
            body: r1,
            ..
        } =
            w.gw.refund(&w.merchant, id, "30.00", "R1", None)
                .await
                .unwrap();
        assert_eq!(s1, 201);
        // A retry with the same refund number refunds only once.
        let Reply {
            status: s2,
            body: r2,
            ..
        } =
            w.gw.refund(&w.merchant, id, "30.00", "R1", None)
                .await
                .unwrap();
        assert_eq!(
            (
                s2,
                serde_json::from_str::<Value>(&r2).unwrap()["id"].clone()
            ),
            (
                200,
                serde_json::from_str::<Value>(&r1).unwrap()["id"].clone()
            )
        );
        assert_eq!(
            w.gw.refund(&w.merchant, id, "30.01", "R1", None)
                .await
                .unwrap_err()
                .code,
            "duplicate_out_refund_no"
        );
        let e =
            w.gw.refund(&w.merchant, id, "70.01", "R2", None)
                .await
                .unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("limit_exceeded", Some("BCP-REFUND-CAP"))
        );
        w.gw.refund(&w.merchant, id, "70.00", "R3", None)
            .await
            .unwrap();
        assert_eq!(w.balance().await, "5000.00");
        assert_eq!(
            w.gw.get_payment(&w.merchant, id)
                .await
                .unwrap()
                .amount_refunded,
            "100.00"
        );
        assert_eq!(
            w.gw.refund(&w.other_merchant, id, "1.00", "X", None)
                .await
                .unwrap_err()
                .code,
            "not_found"
        );
        let c = w.gw.store().ledger_check().await.unwrap();
        assert!(c.is_sound(), "{c:?}");
    }
);

on_both!(cancel_reverses_within_the_window, |w: World| async move {
    let p = w.charge(&w.device_token(), "12.00").await.unwrap();
    let id = p["id"].as_str().unwrap().to_owned();
    let body = w.gw.cancel(&w.merchant, &id, None).await.unwrap().body;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "canceled"
    );
    assert_eq!(w.balance().await, "5000.00");
    assert_eq!(
        w.gw.cancel(&w.merchant, &id, None).await.unwrap_err().code,
        "payment_not_cancelable"
    );
    let p2 = w.charge(&w.device_token(), "12.00").await.unwrap();
    w.clock.advance_seconds(16 * 60);
    assert_eq!(
        w.gw.cancel(&w.merchant, p2["id"].as_str().unwrap(), None)
            .await
            .unwrap_err()
            .code,
        "cancel_window_closed"
    );
});

on_both!(tenancy_hides_other_tenants_objects, |w: World| async move {
    let p = w.charge(&w.device_token(), "1.00").await.unwrap();
    let id = p["id"].as_str().unwrap();
    assert_eq!(
        w.gw.get_payment(&w.other_merchant, id)
            .await
            .unwrap_err()
            .code,
        "not_found"
    );
    assert_eq!(
        w.gw.get_payment(&w.consumer, id).await.unwrap().customer_id,
        w.consumer.subject
    );
    let stranger = Principal {
        key_id: "k".into(),
        role: Role::Consumer,
        subject: Some("cus_aaaaaaaaaaaaaaaaaaaaaaaaaa".into()),
    };
    assert_eq!(
        w.gw.get_payment(&stranger, id).await.unwrap_err().code,
        "not_found"
    );
    assert_eq!(
        w.gw.create_static_code(&w.consumer).await.unwrap_err().code,
        "forbidden"
    );
    let list =
        w.gw.list_payments(
            &w.other_merchant,
            qrgate_gateway::payments::ListQuery {
                limit: None,
                starting_after: None,
                status: None,
            },
        )
        .await
        .unwrap();
    assert!(list.data.is_empty());
});

#[tokio::test]
async fn keys_survive_restart_and_rotation_keeps_old_codes_valid() {
    let store = on_sqlite().await;
    let w = world(store.clone()).await;
    let sc = w.gw.create_static_code(&w.merchant).await.unwrap();
    let old = w.gw.public_keys().keys[0].kid.clone();
    let new = w.gw.rotate_keys("test").await.unwrap();
    assert_ne!(old.to_string(), new);
    assert!(w.gw.verify_code(&sc.payload).await.unwrap().genuine);
    // A second gateway on the same store sees both keys.
    let (gw2, _) = Gateway::start(store, w.clock.clone(), Config::default())
        .await
        .unwrap();
    assert_eq!(gw2.public_keys().keys.len(), 2);
    assert!(gw2.verify_code(&sc.payload).await.unwrap().genuine);
}

#[tokio::test]
async fn loosening_a_must_rule_is_refused_at_start() {
    let store = on_sqlite().await;
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(0)));
    let mut config = Config::default();
    config.rules.insert("BCP-LIMIT-C-DAILY".into(), 200_000);
    let e = Gateway::start(store.clone(), clock.clone(), config.clone())
        .await
        .err()
        .unwrap();
    assert!(e.message.contains("allow_loosening"), "{e}");
    config.rules.insert("BCP-LIMIT-C-DAILY".into(), 50_000);
    let (gw, applied) = Gateway::start(store, clock, config).await.unwrap();
    assert_eq!(gw.limits().daily_c, 50_000);
    assert_eq!(applied.len(), 1);
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

on_both!(
    an_endpoint_gets_only_events_written_after_it_was_registered,
    |w: World| async move {
        let sender = FakeSender::default();
        let before = w.charge(&w.device_token(), "2.00").await.unwrap();
        w.clock.advance_seconds(1);
        let ep =
            w.gw.create_webhook_endpoint(&w.merchant, "https://shop.example/late")
                .await
                .unwrap();
        let r = w.gw.dispatch_webhooks(&sender).await.unwrap();
        assert_eq!(r.events_fanned_out, 1, "the earlier event is handed over");
        assert!(
            sender.sent.lock().unwrap().is_empty(),
            "but not to the new endpoint"
        );
        let after = w.charge(&w.device_token(), "3.00").await.unwrap();
        w.gw.dispatch_webhooks(&sender).await.unwrap();
        let sent = sender.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        let event: Value = serde_json::from_str(&sent[0].2).unwrap();
        assert_eq!(event["data"]["payment"]["id"], after["id"]);
        assert_ne!(event["data"]["payment"]["id"], before["id"]);
        assert_eq!(
            w.gw.list_deliveries(&w.merchant, &ep.id)
                .await
                .unwrap()
                .len(),
            1
        );
    }
);

on_both!(
    webhooks_are_signed_retried_and_redeliverable,
    |w: World| async move {
        use qrgate_gateway::webhooks::verify_signature;
        let bad =
            w.gw.create_webhook_endpoint(&w.merchant, "http://shop.example/hook")
                .await
                .unwrap_err();
        assert_eq!(bad.code, "invalid_url");
        assert_eq!(
            w.gw.create_webhook_endpoint(&w.consumer, "https://x.example/h")
                .await
                .unwrap_err()
                .code,
            "forbidden"
        );
        let ep =
            w.gw.create_webhook_endpoint(&w.merchant, "https://shop.example/hooks")
                .await
                .unwrap();
        let secret = ep.secret.clone().unwrap();
        assert!(
            w.gw.list_webhook_endpoints(&w.merchant).await.unwrap()[0]
                .secret
                .is_none(),
            "the secret is shown once"
        );

        let sender = FakeSender::default();
        sender.failures.store(2, Ordering::SeqCst);
        let p = w.charge(&w.device_token(), "9.90").await.unwrap();
        // Another merchant's payment is not delivered to this endpoint.
        w.gw.charge(&w.other_merchant, &w.device_token(), "1.00", None, None)
            .await
            .unwrap();
        let r = w.gw.dispatch_webhooks(&sender).await.unwrap();
        assert_eq!((r.events_fanned_out, r.retried), (2, 1));
        let (url, sig, body) = sender.sent.lock().unwrap()[0].clone();
        assert_eq!(url, "https://shop.example/hooks");
        let now = w.clock.now().unix_seconds();
        assert!(verify_signature(&secret, &sig, &body, now, 300));
        let event: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (
                event["type"].as_str(),
                event["data"]["payment"]["id"].as_str()
            ),
            (Some("payment.succeeded"), p["id"].as_str())
        );
        // Not due again before the backoff; due after it; the second failure doubles it.
        assert_eq!(w.gw.dispatch_webhooks(&sender).await.unwrap().retried, 0);
        w.clock.advance_seconds(10);
        assert_eq!(w.gw.dispatch_webhooks(&sender).await.unwrap().retried, 1);
        w.clock.advance_seconds(19);
        assert_eq!(w.gw.dispatch_webhooks(&sender).await.unwrap().delivered, 0);
        w.clock.advance_seconds(1);
        assert_eq!(w.gw.dispatch_webhooks(&sender).await.unwrap().delivered, 1);
        let ds = w.gw.list_deliveries(&w.merchant, &ep.id).await.unwrap();
        assert_eq!(
            (
                ds[0].status.as_str(),
                ds[0].attempts,
                ds[0].last_status_code
            ),
            ("delivered", 3, Some(200))
        );
        assert_eq!(
            w.gw.list_deliveries(&w.other_merchant, &ep.id)
                .await
                .unwrap_err()
                .code,
            "not_found"
        );
        // Redelivery on request sends the same signed body again.
        let again = w.gw.redeliver(&w.merchant, ds[0].id).await.unwrap();
        assert_eq!(again.status, "pending");
        assert_eq!(w.gw.dispatch_webhooks(&sender).await.unwrap().delivered, 1);
        assert_eq!(sender.sent.lock().unwrap().last().unwrap().2, body);

        // An endpoint that never answers is given up after three days.
        sender.failures.store(i64::MAX, Ordering::SeqCst);
        w.charge(&w.device_token(), "1.00").await.unwrap();
        let mut gave_up = 0;
        for _ in 0..200 {
            let r = w.gw.dispatch_webhooks(&sender).await.unwrap();
            gave_up += r.gave_up;
            if gave_up > 0 {
                break;
            }
            w.clock.advance_seconds(3600);
        }
        assert_eq!(gave_up, 1);
        let failed =
            w.gw.list_deliveries(&w.merchant, &ep.id)
                .await
                .unwrap()
                .into_iter()
                .find(|d| d.status == "failed")
                .unwrap();
        assert!(
            failed.attempts > 24,
            "retried for at least a day: {} attempts",
            failed.attempts
        );
    }
);

on_both!(
    webhook_endpoints_point_only_at_the_internet_and_have_a_lifecycle,
    |w: World| async move {
        use qrgate_gateway::webhooks::{EndpointAction, MAX_ENDPOINTS, verify_signature};
        // Internal targets, however they are spelled, are refused.
        for url in [
            "http://127.0.0.1@example.com/",
            "http://127.0.0.1.example.com/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::ffff:10.0.0.1]/h",
            "https://0x7f000001/h",
            "https://localhost/h",
            "https://db.internal.example/h",
            "https://mixed.example/h",
        ] {
            let e =
                w.gw.create_webhook_endpoint(&w.merchant, url)
                    .await
                    .unwrap_err();
            assert_eq!(e.code, "invalid_url", "{url}");
            assert!(
                !e.message.contains("10.20") && !e.message.contains("169.254"),
                "{}",
                e.message
            );
        }
        // At most MAX_ENDPOINTS live endpoints; a deleted one frees a place.
        let mut ids = Vec::new();
        for i in 0..MAX_ENDPOINTS {
            let ep =
                w.gw.create_webhook_endpoint(&w.merchant, &format!("https://shop.example/h{i}"))
                    .await
                    .unwrap();
            assert_eq!(ep.status, "enabled");
            ids.push(ep.id);
        }
        let e =
            w.gw.create_webhook_endpoint(&w.merchant, "https://shop.example/more")
                .await
                .unwrap_err();
        assert_eq!(e.code, "too_many_endpoints");
        for id in &ids[1..] {
            let gone =
                w.gw.change_webhook_endpoint(&w.merchant, id, EndpointAction::Delete)
                    .await
                    .unwrap();
            assert_eq!(gone.status, "deleted");
        }
        assert_eq!(
            w.gw.list_webhook_endpoints(&w.merchant)
                .await
                .unwrap()
                .len(),
            1
        );
        // Another merchant can neither see nor change it.
        let ep = ids[0].clone();
        assert_eq!(
            w.gw.change_webhook_endpoint(&w.other_merchant, &ep, EndpointAction::Disable)
                .await
                .unwrap_err()
                .code,
            "not_found"
        );
        // Disabled: events wait; enabled again: they are sent.
        let sender = FakeSender::default();
        let off =
            w.gw.change_webhook_endpoint(&w.merchant, &ep, EndpointAction::Disable)
                .await
                .unwrap();
        assert_eq!(off.status, "disabled");
        w.clock.advance_seconds(1);
        // A consumer pays an order: the merchant's event names no customer
        // and no card.
        let card = w.link(&w.consumer, "4242424242424242").await;
        let paid = w
            .pay_order(&w.merchant, &w.consumer, "3.00", Some(&card))
            .await
            .unwrap();
        assert!(paid["customer_id"].is_string(), "the payer sees itself");
        w.gw.dispatch_webhooks(&sender).await.unwrap();
        assert!(sender.sent.lock().unwrap().is_empty());
        // Enabled again: the event written while it was disabled waited and
        // is sent now, then the next one.
        w.gw.change_webhook_endpoint(&w.merchant, &ep, EndpointAction::Enable)
            .await
            .unwrap();
        w.clock.advance_seconds(1);
        let next = w
            .pay_order(&w.merchant, &w.consumer, "4.00", Some(&card))
            .await
            .unwrap();
        w.gw.dispatch_webhooks(&sender).await.unwrap();
        let sent = sender.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 2, "{sent:?}");
        let ids: Vec<Value> = sent
            .iter()
            .map(|s| serde_json::from_str::<Value>(&s.2).unwrap()["data"]["payment"]["id"].clone())
            .collect();
        assert_eq!(ids, [paid["id"].clone(), next["id"].clone()]);
        for (_, _, body) in &sent {
            assert!(!body.contains(w.consumer.subject.as_deref().unwrap()));
            assert!(!body.contains(&card), "{body}");
        }
        // A rotation: the new secret is shown once; both sign for a day.
        let old_secret = {
            // The first endpoint's secret was shown at creation only; rotate
            // twice so the test holds both the old and the new one.
            let r1 =
                w.gw.change_webhook_endpoint(&w.merchant, &ep, EndpointAction::RotateSecret)
                    .await
                    .unwrap();
            r1.secret.unwrap()
        };
        let r2 =
            w.gw.change_webhook_endpoint(&w.merchant, &ep, EndpointAction::RotateSecret)
                .await
                .unwrap();
        let new_secret = r2.secret.unwrap();
        assert_ne!(old_secret, new_secret);
        assert!(
            w.gw.list_webhook_endpoints(&w.merchant).await.unwrap()[0]
                .secret
                .is_none()
        );
        w.clock.advance_seconds(1);
        w.pay_order(&w.merchant, &w.consumer, "5.00", Some(&card))
            .await
            .unwrap();
        w.gw.dispatch_webhooks(&sender).await.unwrap();
        let (_, sig, body) = sender.sent.lock().unwrap().last().unwrap().clone();
        let now = w.clock.now().unix_seconds();
        assert!(verify_signature(&new_secret, &sig, &body, now, 300));
        assert!(verify_signature(&old_secret, &sig, &body, now, 300));
        // After the overlap only the new secret signs.
        w.clock.advance_seconds(24 * 3600 + 1);
        w.pay_order(&w.merchant, &w.consumer, "6.00", Some(&card))
            .await
            .unwrap();
        w.gw.dispatch_webhooks(&sender).await.unwrap();
        let (_, sig, body) = sender.sent.lock().unwrap().last().unwrap().clone();
        let now = w.clock.now().unix_seconds();
        assert!(verify_signature(&new_secret, &sig, &body, now, 300));
        assert!(!verify_signature(&old_secret, &sig, &body, now, 300));
        // Every change is in the audit chain.
        let log = w.gw.store().audit_rows(0, 1000).await.unwrap();
        let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
        for a in [
            "webhook_endpoint.created",
            "webhook_endpoint.deleted",
            "webhook_endpoint.disabled",
            "webhook_endpoint.enabled",
            "webhook_endpoint.secret_rotated",
        ] {
            assert!(actions.contains(&a), "{a} not in {actions:?}");
        }
    }
);

/// Posts slowly, counting what it sent.
#[derive(Default)]
struct SlowSender {
    sent: std::sync::Mutex<Vec<String>>,
}

impl qrgate_gateway::webhooks::Sender for SlowSender {
    async fn post(&self, _url: &str, _signature: &str, body: &str) -> Result<u16, String> {
        tokio::time::sleep(Duration::from_millis(30)).await;
        self.sent.lock().unwrap().push(body.into());
        Ok(200)
    }
}

on_both!(
    a_disable_racing_a_dispatch_pass_stops_its_next_attempts,
    |w: World| async move {
        // A pass has read the endpoint and is sending its deliveries one at
        // a time (30 ms each) when the merchant disables it: the attempt in
        // flight may finish, but none starts after the disable committed.
        let ep =
            w.gw.create_webhook_endpoint(&w.merchant, "https://shop.example/d")
                .await
                .unwrap();
        w.clock.advance_seconds(1);
        for _ in 0..6 {
            w.charge(&w.device_token(), "1.00").await.unwrap();
        }
        let sender = SlowSender::default();
        let disable = async {
            // Once the first delivery is out.
            while sender.sent.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            w.gw.change_webhook_endpoint(
                &w.merchant,
                &ep.id,
                qrgate_gateway::webhooks::EndpointAction::Disable,
            )
            .await
            .unwrap();
            sender.sent.lock().unwrap().len()
        };
        let (pass, sent_at_disable) = tokio::join!(w.gw.dispatch_webhooks(&sender), disable);
        pass.unwrap();
        let sent = sender.sent.lock().unwrap().len();
        assert!(sent < 6, "every delivery was sent despite the disable");
        assert!(
            sent <= sent_at_disable + 1,
            "{sent} sent, {sent_at_disable} when the disable committed: an attempt started after it"
        );
        // The rest wait, and go out once it is enabled again.
        w.gw.change_webhook_endpoint(
            &w.merchant,
            &ep.id,
            qrgate_gateway::webhooks::EndpointAction::Enable,
        )
        .await
        .unwrap();
        w.clock.advance_seconds(120);
        while w.gw.dispatch_webhooks(&sender).await.unwrap().delivered > 0 {}
        assert_eq!(sender.sent.lock().unwrap().len(), 6);
    }
);

on_both!(
    overlapping_dispatch_passes_send_each_delivery_once,
    |w: World| async move {
        for i in 0..3 {
            w.gw.create_webhook_endpoint(&w.merchant, &format!("https://shop.example/p{i}"))
                .await
                .unwrap();
        }
        w.clock.advance_seconds(1);
        for _ in 0..6 {
            w.charge(&w.device_token(), "1.00").await.unwrap();
        }
        let sender = SlowSender::default();
        // Four passes at once, as four nodes (or one node's overlapping
        // passes) would run them: every attempt is claimed first.
        let (a, b, c, d) = tokio::join!(
            w.gw.dispatch_webhooks(&sender),
            w.gw.dispatch_webhooks(&sender),
            w.gw.dispatch_webhooks(&sender),
            w.gw.dispatch_webhooks(&sender),
        );
        let delivered: usize = [a, b, c, d].into_iter().map(|r| r.unwrap().delivered).sum();
        // A pass that found nothing due yet: one more, after the others.
        let rest = w.gw.dispatch_webhooks(&sender).await.unwrap().delivered;
        let sent = sender.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 18, "3 endpoints x 6 events");
        assert_eq!(delivered + rest, 18);
        let mut seen = std::collections::BTreeMap::new();
        for body in &sent {
            *seen.entry(body.clone()).or_insert(0) += 1;
        }
        assert!(
            seen.values().all(|n| *n == 3),
            "each event once per endpoint"
        );
    }
);

on_both!(
    class_one_wallet_pays_at_most_1000_since_opening,
    |w: World| async move {
        let a = admin();
        let c =
            w.gw.create_customer(
                &a,
                NewCustomer {
                    account_class: "I".into(),
                    level_a_daily_cap: None,
                },
            )
            .await
            .unwrap();
        w.gw.topup(&a, &c.id, "5000.00", None).await.unwrap();
        let consumer = key_of(&w.gw, Role::Consumer, &c.id).await;
        let pay = |amount: &'static str| {
            let w = &w;
            let consumer = consumer.clone();
            async move {
                let code = w.gw.issue_payment_code(&consumer).await.unwrap();
                w.gw.charge(&w.merchant, &code.numeric, amount, None, None)
                    .await
            }
        };
        pay("600.00").await.unwrap();
        // Next day: the daily cap resets, the class-I total does not.
        w.clock.advance_seconds(86_400);
        pay("400.00").await.unwrap();
        w.clock.advance_seconds(86_400);
        let e = pay("0.01").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("limit_exceeded", Some("BCP-ACCT-CLASS-I"))
        );
        // A class II wallet in the same days is not affected.
        w.charge(&w.device_token(), "1.00").await.unwrap();
    }
);

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

on_both!(
    over_the_b_cap_a_certificate_steps_up_to_a_within_the_agreement,
    |w: World| async move {
        let a = admin();
        // A customer with a level-A agreement of 11,000.00 a day.
        let c =
            w.gw.create_customer(
                &a,
                NewCustomer {
                    account_class: "III".into(),
                    level_a_daily_cap: Some("11000.00".into()),
                },
            )
            .await
            .unwrap();
        w.gw.topup(&a, &c.id, "20000.00", None).await.unwrap();
        let consumer = key_of(&w.gw, Role::Consumer, &c.id).await;
        let rng = SystemRandom::new();
        let key = |rng: &SystemRandom| {
            let doc = Ed25519KeyPair::generate_pkcs8(rng).unwrap();
            Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap()
        };
        let device = key(&rng);
        let d =
            w.gw.enroll_device(
                &consumer,
                &URL_SAFE_NO_PAD.encode(device.public_key().as_ref()),
                None,
            )
            .await
            .unwrap();
        w.gw.set_pin(&consumer, "493817").await.unwrap();
        let handles = d.handles.unwrap();
        let token = || device_code(&device, &handles[0], w.clock.now());
        // Without a certificate, 5,500.00 is over B and cannot reach A.
        let e = w.charge(&token(), "5500.00").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("limit_exceeded", Some("BCP-LIMIT-B-DAILY"))
        );
        // Only an admin enrolls certificates; a key is enrolled once.
        let cert = key(&rng);
        let cert_pk = URL_SAFE_NO_PAD.encode(cert.public_key().as_ref());
        assert_eq!(
            w.gw.enroll_certificate(&consumer, &c.id, &cert_pk)
                .await
                .unwrap_err()
                .code,
            "forbidden"
        );
        let crt = w.gw.enroll_certificate(&a, &c.id, &cert_pk).await.unwrap();
        assert_eq!(
            w.gw.enroll_certificate(&a, &c.id, &cert_pk)
                .await
                .unwrap_err()
                .code,
            "certificate_key_in_use"
        );
        let confirm = |sig: Option<String>| qrgate_gateway::stepup::Confirmation {
            pin: Some("493817".into()),
            device_id: None,
            device_signature: None,
            certificate_id: sig.as_ref().map(|_| crt.id.clone()),
            certificate_signature: sig,
            otp: None,
            biometric: None,
        };
        let sign = |p: &Value, k: &Ed25519KeyPair| {
            let msg = qrgate_gateway::stepup::confirmation_message(
                p["id"].as_str().unwrap(),
                p["amount"].as_str().unwrap(),
                "CNY",
                p["merchant_id"].as_str().unwrap(),
            );
            URL_SAFE_NO_PAD.encode(k.sign(&msg).as_ref())
        };
        for round in 0..2 {
            let p = w.charge(&token(), "5500.00").await.unwrap();
            assert_eq!(p["status"], "requires_action");
            assert_eq!(
                p["next_action"]["elements"],
                json!(["pin", "digital_certificate"])
            );
            let id = p["id"].as_str().unwrap();
            if round == 0 {
                let e =
                    w.gw.confirm(&consumer, id, confirm(None), None)
                        .await
                        .unwrap_err();
                assert_eq!(e.code, "certificate_signature_required");
                // Without the signature the PIN is not even tried: five wrong
                // PINs sent that way do not lock it.
                for _ in 0..5 {
                    let wrong = qrgate_gateway::stepup::Confirmation {
                        pin: Some("111119".into()),
                        ..confirm(None)
                    };
                    let e = w.gw.confirm(&consumer, id, wrong, None).await.unwrap_err();
                    assert_eq!(e.code, "certificate_signature_required");
                }
                assert!(
                    w.gw.get_customer(&a, &c.id)
                        .await
                        .unwrap()
                        .pin_locked_until
                        .is_none()
                );
                // Signed by the device key instead of the certificate: refused.
                let e =
                    w.gw.confirm(&consumer, id, confirm(Some(sign(&p, &device))), None)
                        .await
                        .unwrap_err();
                assert_eq!(
                    (e.code, e.rule.as_deref()),
                    ("certificate_signature_invalid", Some("BCP-ELEMENTS"))
                );
                assert_eq!(
                    w.gw.get_payment(&consumer, id).await.unwrap().status,
                    "requires_action"
                );
            }
            let done =
                w.gw.confirm(&consumer, id, confirm(Some(sign(&p, &cert))), None)
                    .await
                    .unwrap();
            let v: Value = serde_json::from_str(&done.body).unwrap();
            assert_eq!(
                (v["status"].as_str(), v["risk_level"].as_str()),
                (Some("succeeded"), Some("A"))
            );
            assert_eq!(
                v["verification"],
                json!(["device_signature", "digital_certificate", "pin"])
            );
        }
        // 11,000.00 used: the agreement's cap, exactly. One cent more at A is refused.
        let e = w.charge(&token(), "5000.01").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("limit_exceeded", Some("BCP-LIMIT-A-DAILY"))
        );
        assert_eq!(
            w.gw.get_customer(&a, &c.id).await.unwrap().balance,
            "9000.00"
        );
        let check = w.gw.store().ledger_check().await.unwrap();
        assert!(check.is_sound(), "{check:?}");
    }
);

on_both!(
    the_sweeper_ends_every_lapsed_step_up_however_many_wait,
    |w: World| async move {
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        w.charge(&w.device_token(), "1000.00").await.unwrap();
        // 500 payments over the level-C cap wait for their payer.
        for _ in 0..500 {
            let p = w.charge(&w.device_token(), "1.00").await.unwrap();
            assert_eq!(p["status"], "requires_action");
        }
        // Not due yet: nothing ends.
        assert_eq!(w.gw.expire_requires_action().await.unwrap(), 0);
        w.clock.advance_seconds(301);
        // One sweep ends them all, the oldest included.
        assert_eq!(w.gw.expire_requires_action().await.unwrap(), 500);
        assert_eq!(w.gw.expire_requires_action().await.unwrap(), 0);
        assert_eq!(w.balance().await, "4000.00");
        w.assert_books_sound().await;
    }
);

on_both!(
    credentials_have_a_lifecycle_and_a_stolen_key_is_not_a_second_factor,
    |w: World| async move {
        let a = admin();
        let customer = w.consumer.subject.clone().unwrap();
        // The first PIN is set once; changing it needs the current one.
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        assert_eq!(
            w.gw.set_pin(&w.consumer, "271828").await.unwrap_err().code,
            "pin_already_set"
        );
        assert_eq!(
            w.gw.change_pin(&w.consumer, "111119", "271828")
                .await
                .unwrap_err()
                .code,
            "pin_incorrect"
        );
        // Locked after the allowed wrong PINs: even the right one cannot
        // change it, and the lock stays.
        for _ in 0..4 {
            let _ = w.gw.change_pin(&w.consumer, "111119", "271828").await;
        }
        assert_eq!(
            w.gw.change_pin(&w.consumer, "493817", "271828")
                .await
                .unwrap_err()
                .code,
            "pin_locked"
        );
        w.clock.advance_seconds(31 * 60);
        w.gw.change_pin(&w.consumer, "493817", "271828")
            .await
            .unwrap();
        assert_eq!(
            w.gw.change_pin(&w.consumer, "493817", "314159")
                .await
                .unwrap_err()
                .code,
            "pin_incorrect",
            "the old PIN no longer works"
        );
        // A forgotten PIN: the operator resets it; the customer sets a new one.
        assert_eq!(
            w.gw.reset_pin(&w.consumer, &customer)
                .await
                .unwrap_err()
                .code,
            "forbidden"
        );
        w.gw.reset_pin(&a, &customer).await.unwrap();
        w.gw.set_pin(&w.consumer, "314159").await.unwrap();
        // With a PIN, enrolling a device needs it.
        let rng = SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let second = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let pk = URL_SAFE_NO_PAD.encode(second.public_key().as_ref());
        assert_eq!(
            w.gw.enroll_device(&w.consumer, &pk, None)
                .await
                .unwrap_err()
                .code,
            "pin_required"
        );
        let d2 =
            w.gw.enroll_device(&w.consumer, &pk, Some("314159"))
                .await
                .unwrap();
        assert_eq!(w.gw.list_devices(&w.consumer).await.unwrap().len(), 2);
        // A second gateway on the same database, which has the device in
        // its cache from an earlier payment.
        let (gw2, _) = Gateway::start(w.gw.store().clone(), w.clock.clone(), Config::default())
            .await
            .unwrap();
        let merchant2 = w.merchant.clone();
        let offline = w.device_token();
        let idem = || qrgate_gateway::Idem {
            scope: format!("merchant:{}", merchant2.subject.as_deref().unwrap()),
            key: "before-revoke".into(),
            request_hash: "h1".into(),
        };
        let before = w.device_token();
        let r = gw2
            .charge(&merchant2, &before, "1.00", None, Some(idem()))
            .await;
        assert!(r.is_ok(), "{r:?}");
        // Revoked on the first: an offline code made before is refused on
        // the second at once.
        let revoked = w.gw.revoke_device(&w.consumer, &w.device_id).await.unwrap();
        assert_eq!(revoked.status, "revoked");
        assert_eq!(
            gw2.charge(&merchant2, &offline, "1.00", None, None)
                .await
                .unwrap_err()
                .code,
            "device_revoked"
        );
        // A retry of the payment made before the revocation gets its answer.
        let again = gw2
            .charge(&merchant2, &before, "1.00", None, Some(idem()))
            .await
            .unwrap();
        assert!(again.replayed);
        // Another consumer cannot revoke it; an admin can revoke any.
        let other = key_of(&w.gw, Role::Consumer, &customer).await;
        let stranger = {
            let c =
                w.gw.create_customer(
                    &a,
                    NewCustomer {
                        account_class: "II".into(),
                        level_a_daily_cap: None,
                    },
                )
                .await
                .unwrap();
            key_of(&w.gw, Role::Consumer, &c.id).await
        };
        assert_eq!(
            w.gw.revoke_device(&stranger, &d2.id)
                .await
                .unwrap_err()
                .code,
            "not_found"
        );
        let _ = other;
        // Revoking the API key a device was enrolled with revokes the device.
        w.gw.revoke_api_key(&a, &w.consumer.key_id).await.unwrap();
        let listed = w.gw.store().devices_of(&customer).await.unwrap();
        assert!(listed.iter().all(|d| d.status == "revoked"), "{listed:?}");
        // A merchant revokes a static code: scans are refused.
        let sc = w.gw.create_static_code(&w.merchant).await.unwrap();
        w.gw.revoke_static_code(&w.merchant, &sc.id).await.unwrap();
        assert_eq!(
            w.gw.revoke_static_code(&w.merchant, &sc.id)
                .await
                .unwrap_err()
                .code,
            "code_revoked"
        );
        assert_eq!(
            w.gw.revoke_static_code(&w.other_merchant, &sc.id)
                .await
                .unwrap_err()
                .code,
            "not_found"
        );
        let payer = key_of(&w.gw, Role::Consumer, &customer).await;
        assert_eq!(
            w.gw.pay_scanned(&payer, &sc.payload, Some("1.00"), None, None)
                .await
                .unwrap_err()
                .code,
            "code_revoked"
        );
        // Every change is in the audit chain.
        let actions: Vec<String> =
            w.gw.store()
                .audit_rows(0, 1000)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.action)
                .collect();
        for want in [
            "pin.set",
            "pin.changed",
            "pin.reset",
            "device.enrolled",
            "device.revoked",
            "api_key.revoked",
            "static_code.revoked",
        ] {
            assert!(
                actions.iter().any(|x| x == want),
                "{want} not in {actions:?}"
            );
        }
        w.assert_books_sound().await;
    }
);

on_both!(
    the_level_caps_are_separate_by_default_and_nested_when_the_catalogue_says,
    |w: World| async move {
        let a = admin();
        let sc = w.gw.create_static_code(&w.merchant).await.unwrap();
        // Separate buckets (the default): C full, a static payment still fits D.
        let code = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        w.charge(&code.numeric, "1000.00").await.unwrap();
        w.gw.pay_scanned(&w.consumer, &sc.payload, Some("100.00"), None, None)
            .await
            .unwrap();
        // Nested (BCP-LIMIT-NESTED = 1) on a second gateway of the same database.
        let nested = Config {
            rules: [("BCP-LIMIT-NESTED".to_owned(), 1)].into_iter().collect(),
            ..Config::default()
        };
        let (gw2, _) = Gateway::start(w.gw.store().clone(), w.clock.clone(), nested)
            .await
            .unwrap();
        assert!(gw2.limits().nested_caps && !w.gw.limits().nested_caps);
        let payer =
            w.gw.create_customer(
                &a,
                NewCustomer {
                    account_class: "II".into(),
                    level_a_daily_cap: None,
                },
            )
            .await
            .unwrap();
        w.gw.topup(&a, &payer.id, "3000.00", None).await.unwrap();
        let ck = key_of(&w.gw, Role::Consumer, &payer.id).await;
        let code = gw2.issue_payment_code(&ck).await.unwrap();
        gw2.charge(&w.merchant, &code.numeric, "1000.00", None, None)
            .await
            .unwrap();
        // A static payment now counts toward C too: refused, citing C.
        let e = gw2
            .pay_scanned(&ck, &sc.payload, Some("0.01"), None, None)
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("limit_exceeded", Some("BCP-LIMIT-C-DAILY"))
        );
        // Nothing moved by the refusal.
        assert_eq!(
            w.gw.get_customer(&a, &payer.id).await.unwrap().balance,
            "2000.00"
        );
        // The catalogue takes 0 or 1 only.
        let bad = Config {
            rules: [("BCP-LIMIT-NESTED".to_owned(), 2)].into_iter().collect(),
            ..Config::default()
        };
        assert!(
            Gateway::start(w.gw.store().clone(), w.clock.clone(), bad)
                .await
                .is_err()
        );
        w.assert_books_sound().await;
    }
);

on_both!(
    rate_limits_brake_code_issuance_guessing_and_pin_attempts,
    |w: World| async move {
        let limits = w.gw.limits().clone();
        // Payment codes: the allowance of a minute, then 429 until the next.
        for _ in 0..limits.rate_code_issue {
            w.gw.issue_payment_code(&w.consumer).await.unwrap();
        }
        let e = w.gw.issue_payment_code(&w.consumer).await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("rate_limited", Some("QG-RATE-CODE-ISSUE"))
        );
        assert!(matches!(
            e.kind,
            qrgate_gateway::Kind::TooManyRequests {
                retry_after_seconds: 1..=60
            }
        ));
        w.clock.advance_seconds(60);
        let kept = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        // Unknown numeric codes: counted per merchant key; past the allowance
        // every numeric charge waits, a known code included; a QR token does not.
        let rng = SystemRandom::new();
        for _ in 0..limits.rate_unknown_code {
            let guess = qrgate_codes::numeric::generate(&rng).unwrap();
            assert_eq!(
                w.charge(&guess, "1.00").await.unwrap_err().code,
                "payment_code_unknown"
            );
        }
        let e = w.charge(&kept.numeric, "1.00").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("rate_limited", Some("QG-RATE-UNKNOWN-CODE"))
        );
        w.charge(&w.device_token(), "1.00").await.unwrap();
        // Another merchant key is not held back.
        let other = key_of(
            &w.gw,
            Role::Merchant,
            w.merchant.subject.as_deref().unwrap(),
        )
        .await;
        let fresh = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        w.gw.charge(&other, &fresh.numeric, "1.00", None, None)
            .await
            .unwrap();
        // PIN attempts: on top of the lock-out, at most this many a minute.
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        let mut codes = Vec::new();
        for _ in 0..limits.rate_pin {
            let e =
                w.gw.change_pin(&w.consumer, "111119", "271828")
                    .await
                    .unwrap_err();
            codes.push(e.code);
        }
        assert!(
            codes.contains(&"pin_incorrect") && codes.contains(&"pin_locked"),
            "{codes:?}"
        );
        let e =
            w.gw.change_pin(&w.consumer, "111119", "271828")
                .await
                .unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("rate_limited", Some("QG-RATE-PIN"))
        );
        w.assert_books_sound().await;
    }
);

on_both!(
    a_merchant_refused_by_a_cap_learns_the_limit_not_the_payers_spending,
    |w: World| async move {
        // The payer spends 987.65 at one shop, then another shop charges 20.00.
        w.charge(&w.device_token(), "987.65").await.unwrap();
        let code = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        let e =
            w.gw.charge(&w.other_merchant, &code.numeric, "20.00", None, None)
                .await
                .unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("limit_exceeded", Some("BCP-LIMIT-C-DAILY"))
        );
        for spent in ["98765", "987.65", "100765", "1007.65"] {
            assert!(!e.message.contains(spent), "{}", e.message);
        }
        // Nor does the failed payment the merchant can read.
        let failed =
            w.gw.get_payment(&w.other_merchant, e.payment_id.as_deref().unwrap())
                .await
                .unwrap();
        let text = serde_json::to_string(&failed).unwrap();
        assert!(
            !text.contains("98765") && !text.contains("987.65"),
            "{text}"
        );
        assert!(failed.customer_id.is_none());
    }
);

on_both!(
    one_keyring_across_gateways_rotated_on_either_and_restarted,
    |w: World| async move {
        use qrgate_codes::keyring::KeyState;
        let store = w.gw.store().clone();
        let (b, _) = Gateway::start(store.clone(), w.clock.clone(), Config::default())
            .await
            .unwrap();
        let active = |gw: &Gateway<AnyStore>| {
            gw.public_keys()
                .keys
                .iter()
                .filter(|k| k.state == KeyState::Active)
                .map(|k| k.kid.to_string())
                .collect::<Vec<_>>()
        };
        // Rotate on A; B reloads (serve does it every 2 s); a code A signs
        // with the new key pays on B.
        let k1 = w.gw.rotate_keys("test").await.unwrap();
        b.reload_keys().await.unwrap();
        assert_eq!(active(&b), vec![k1.clone()]);
        let c1 = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        let kept = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        b.charge(&w.merchant, &c1.qr, "1.00", None, None)
            .await
            .unwrap();
        // The other way round.
        let k2 = b.rotate_keys("test").await.unwrap();
        w.gw.reload_keys().await.unwrap();
        assert_eq!(active(&w.gw), vec![k2.clone()]);
        let c2 = b.issue_payment_code(&w.consumer).await.unwrap();
        w.charge(&c2.qr, "1.00").await.unwrap();
        // Two rotations at once: the database keeps one active key.
        let (x, y) = tokio::join!(w.gw.rotate_keys("test"), b.rotate_keys("test"));
        assert!(x.is_ok() || y.is_ok(), "{x:?} {y:?}");
        for e in [x.err(), y.err()].into_iter().flatten() {
            assert_eq!(e.code, "rotation_conflict");
        }
        let stored = store.load_keys().await.unwrap();
        assert_eq!(stored.iter().filter(|k| k.state == "active").count(), 1);
        // Retire k1 (compromised) on B: not while another node may still
        // sign with it; then, once A reloads, a code it signed is refused
        // there too; the active key cannot be retired.
        assert_eq!(
            b.retire_key(&k1, "test", false).await.unwrap_err().code,
            "key_recently_rotated"
        );
        w.clock.advance_seconds(10);
        b.retire_key(&k1, "test", false).await.unwrap();
        w.gw.reload_keys().await.unwrap();
        let e = w.charge(&kept.qr, "1.00").await.unwrap_err();
        assert_eq!(e.code, "payment_code_unknown_key");
        let now_active = active(&b).remove(0);
        assert_eq!(
            b.retire_key(&now_active, "test", true)
                .await
                .unwrap_err()
                .code,
            "key_not_retirable"
        );
        // A key that signed a static code still in force is retired only
        // when the operator says so, and the answer names the code.
        let poster = w.gw.create_static_code(&w.merchant).await.unwrap();
        let revoked = w.gw.create_static_code(&w.merchant).await.unwrap();
        w.gw.revoke_static_code(&w.merchant, &revoked.id)
            .await
            .unwrap();
        let signer = b.rotate_keys("test").await;
        w.gw.reload_keys().await.unwrap();
        let _ = signer.unwrap();
        w.clock.advance_seconds(10);
        let e = b.retire_key(&now_active, "test", false).await.unwrap_err();
        assert_eq!(e.code, "key_signs_live_codes", "{e}");
        assert!(e.message.contains("1 static codes"), "{e}");
        let still = w.gw.verify_code(&poster.payload).await.unwrap();
        assert_eq!(still.status, "active");
        let gone = b.retire_key(&now_active, "test", true).await.unwrap();
        let ids: Vec<_> = gone.static_codes.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, vec![poster.id.as_str()]);
        w.gw.reload_keys().await.unwrap();
        assert!(w.gw.verify_code(&poster.payload).await.is_err());
        // Both restart (at once): each loads the one keyring.
        let (r1, r2) = tokio::join!(
            Gateway::start(store.clone(), w.clock.clone(), Config::default()),
            Gateway::start(store.clone(), w.clock.clone(), Config::default()),
        );
        let (r1, r2) = (r1.unwrap().0, r2.unwrap().0);
        assert_eq!(active(&r1), active(&r2));
        assert_eq!(active(&r1).len(), 1);
        // Every change is in the audit chain.
        let actions: Vec<String> = store
            .audit_rows(0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.action)
            .collect();
        assert!(actions.iter().any(|a| a == "signing_key.rotated"));
        assert!(actions.iter().any(|a| a == "signing_key.retired"));
    }
);

on_both!(
    secrets_are_sealed_at_rest_migrated_and_rotated_to_a_new_master_key,
    |w: World| async move {
        use qrgate_core::seal::{MasterKey, Sealer};
        let store = w.gw.store().clone();
        // This world started without a master key: its rows are plaintext.
        let plain_ep =
            w.gw.create_webhook_endpoint(&w.merchant, "https://shop.example/sealed")
                .await
                .unwrap();
        let k1 = || MasterKey::from_bytes(&[1; 32]).unwrap();
        let k2 = || MasterKey::from_bytes(&[2; 32]).unwrap();
        let with = |s: Option<Sealer>| Config {
            sealer: s.map(Arc::new),
            ..Config::default()
        };
        // Started with a master key: every plaintext secret is sealed.
        let (a, _) = Gateway::start(
            store.clone(),
            w.clock.clone(),
            with(Some(Sealer::new(k1(), vec![]))),
        )
        .await
        .unwrap();
        let rows = store.secret_rows().await.unwrap();
        assert!(rows.len() >= 2, "{rows:?}");
        for r in &rows {
            assert!(r.value.starts_with("sealed:v1:"), "{r:?}");
        }
        assert!(
            !rows
                .iter()
                .any(|r| r.value.contains(plain_ep.secret.as_deref().unwrap())),
            "the webhook secret is not stored in the clear"
        );
        // New secrets are sealed when written; they still sign and verify.
        let ep = a
            .create_webhook_endpoint(&w.merchant, "https://shop.example/new")
            .await
            .unwrap();
        let secret = ep.secret.clone().unwrap();
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        // The PIN hash is peppered (v2$: HMAC under the sealed pepper, then
        // 600,000 PBKDF2 iterations); the pepper row is sealed like the rest.
        let cr = store
            .credentials(w.consumer.subject.as_deref().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(cr.pin_hash.starts_with("v2$"), "{}", cr.pin_hash);
        assert!(
            store
                .secret_rows()
                .await
                .unwrap()
                .iter()
                .any(|r| r.slot == qrgate_store::SecretSlot::GatewaySecret)
        );
        let otp = a.enroll_otp(&w.consumer, Some("493817")).await.unwrap();
        for r in store.secret_rows().await.unwrap() {
            assert!(r.value.starts_with("sealed:v1:"), "{r:?}");
            assert!(!r.value.contains(&secret) && !r.value.contains(&otp.secret));
        }
        w.clock.advance_seconds(1);
        a.charge(&w.merchant, &w.device_token(), "1.00", None, None)
            .await
            .unwrap();
        let sender = FakeSender::default();
        a.dispatch_webhooks(&sender).await.unwrap();
        let sent = sender.sent.lock().unwrap().clone();
        let (_, sig, body) = sent.iter().find(|s| s.0.ends_with("/new")).unwrap();
        let now = w.clock.now().unix_seconds();
        assert!(qrgate_gateway::webhooks::verify_signature(
            &secret, sig, body, now, 300
        ));
        // Without the master key, or with another one, the gateway cannot
        // read its keys: it refuses to start, and says why.
        for s in [None, Some(Sealer::new(k2(), vec![]))] {
            let e = Gateway::start(store.clone(), w.clock.clone(), with(s))
                .await
                .err()
                .unwrap();
            assert_eq!(e.code, "secrets_unreadable", "{e:?}");
        }
        // Rotation: new key current, old one known; everything is re-sealed,
        // after which the new key alone suffices and the old one alone fails.
        let (_b, _) = Gateway::start(
            store.clone(),
            w.clock.clone(),
            with(Some(Sealer::new(k2(), vec![k1()]))),
        )
        .await
        .unwrap();
        let current = Sealer::new(k2(), vec![]);
        assert!(
            store
                .secret_rows()
                .await
                .unwrap()
                .iter()
                .all(|r| current.is_current(&r.value))
        );
        let (c, _) = Gateway::start(
            store.clone(),
            w.clock.clone(),
            with(Some(Sealer::new(k2(), vec![]))),
        )
        .await
        .unwrap();
        assert!(
            Gateway::start(
                store.clone(),
                w.clock.clone(),
                with(Some(Sealer::new(k1(), vec![])))
            )
            .await
            .is_err()
        );
        // And it still works: codes are signed with the re-sealed signing
        // key, and events with the re-sealed webhook secret.
        let p = c.issue_payment_code(&w.consumer).await.unwrap();
        w.clock.advance_seconds(1);
        c.charge(&w.merchant, &p.qr, "1.00", None, None)
            .await
            .unwrap();
        let after = FakeSender::default();
        c.dispatch_webhooks(&after).await.unwrap();
        let sent = after.sent.lock().unwrap().clone();
        let (_, sig, body) = sent.iter().find(|s| s.0.ends_with("/new")).unwrap();
        let now = w.clock.now().unix_seconds();
        assert!(qrgate_gateway::webhooks::verify_signature(
            &secret, sig, body, now, 300
        ));
        // A plaintext value planted among the sealed ones is refused, not
        // sealed into looking legitimate.
        let row = store
            .secret_rows()
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.slot == qrgate_store::SecretSlot::WebhookSecret)
            .unwrap();
        assert!(
            store
                .replace_secret(row, "whsec_planted".into())
                .await
                .unwrap()
        );
        let e = Gateway::start(
            store.clone(),
            w.clock.clone(),
            with(Some(Sealer::new(k2(), vec![]))),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(e.code, "secrets_unreadable");
        assert!(
            !e.message.contains("whsec") && !e.message.contains("we_"),
            "{}",
            e.message
        );
    }
);

on_both!(over_the_c_cap_a_pin_steps_up_to_b, |w: World| async move {
    w.gw.set_pin(&w.consumer, "493817").await.unwrap();
    assert_eq!(
        w.gw.set_pin(&w.consumer, "123456").await.unwrap_err().code,
        "weak_pin"
    );
    w.charge(&w.device_token(), "999.00").await.unwrap();
    // 999 + 100 > 1000 (C) but fits B (5000): requires_action, naming the PIN.
    let p = w.charge(&w.device_token(), "100.00").await.unwrap();
    assert_eq!(p["status"], "requires_action");
    assert_eq!(p["next_action"]["elements"], json!(["pin"]));
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(w.balance().await, "4001.00", "nothing moved yet");
    // A wrong PIN never completes it and counts toward lock-out.
    let e =
        w.gw.confirm(&w.consumer, &id, confirmation(Some("111119"), None), None)
            .await
            .unwrap_err();
    assert_eq!(
        (e.code, e.rule.as_deref()),
        ("pin_incorrect", Some("QG-PIN-LOCKOUT"))
    );
    assert!(e.message.contains("4 attempts left"), "{}", e.message);
    assert_eq!(
        w.gw.get_payment(&w.consumer, &id).await.unwrap().status,
        "requires_action"
    );
    // Only the payer confirms.
    assert_eq!(
        w.gw.confirm(&w.merchant, &id, confirmation(Some("493817"), None), None)
            .await
            .unwrap_err()
            .code,
        "forbidden"
    );
    let done =
        w.gw.confirm(&w.consumer, &id, confirmation(Some("493817"), None), None)
            .await
            .unwrap();
    let v: Value = serde_json::from_str(&done.body).unwrap();
    assert_eq!(
        (v["status"].as_str(), v["risk_level"].as_str()),
        (Some("succeeded"), Some("B"))
    );
    assert_eq!(v["verification"], json!(["device_signature", "pin"]));
    assert!(v.get("next_action").is_none());
    assert_eq!(w.balance().await, "3901.00");
    assert_eq!(
        w.gw.confirm(&w.consumer, &id, confirmation(Some("493817"), None), None)
            .await
            .unwrap_err()
            .code,
        "payment_state_conflict"
    );
    // Beyond B as well: declined outright.
    let e = w.charge(&w.device_token(), "4900.01").await.unwrap_err();
    assert_eq!(
        (e.code, e.rule.as_deref()),
        ("limit_exceeded", Some("BCP-LIMIT-B-DAILY"))
    );
    let c = w.gw.store().ledger_check().await.unwrap();
    assert!(c.is_sound(), "{c:?}");
});

on_both!(
    online_codes_need_pin_and_device_signature_and_lapse,
    |w: World| async move {
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        w.charge(&w.device_token(), "1000.00").await.unwrap();
        let code = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        let p = w.charge(&code.numeric, "20.00").await.unwrap();
        assert_eq!(
            p["next_action"]["elements"],
            json!(["pin", "device_signature"])
        );
        let id = p["id"].as_str().unwrap();
        let e =
            w.gw.confirm(&w.consumer, id, confirmation(Some("493817"), None), None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "device_signature_required");
        let forged = URL_SAFE_NO_PAD.encode([7_u8; 64]);
        let e =
            w.gw.confirm(
                &w.consumer,
                id,
                confirmation(Some("493817"), Some((&w.device_id, forged))),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, "device_signature_invalid");
        let sig = sign_confirmation(&w, &p);
        let ok =
            w.gw.confirm(
                &w.consumer,
                id,
                confirmation(Some("493817"), Some((&w.device_id, sig))),
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&ok.body).unwrap()["risk_level"],
            "B"
        );
        // An unconfirmed one lapses after QG-STEPUP-TTL and moves no money.
        let code = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        let p = w.charge(&code.numeric, "30.00").await.unwrap();
        w.clock.advance_seconds(301);
        assert_eq!(w.gw.expire_requires_action().await.unwrap(), 1);
        let lapsed =
            w.gw.get_payment(&w.consumer, p["id"].as_str().unwrap())
                .await
                .unwrap();
        assert_eq!(lapsed.status, "canceled");
        assert_eq!(w.balance().await, "3980.00");
    }
);

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

on_both!(
    an_old_pin_that_breaks_todays_shape_rules_is_upgraded_too,
    |w: World| async move {
        let customer = w.consumer.subject.clone().unwrap();
        plant_legacy_pin(&w, "123456").await;
        w.charge(&w.device_token(), "1000.00").await.unwrap();
        let p = w.charge(&w.device_token(), "10.00").await.unwrap();
        let id = p["id"].as_str().unwrap();
        let ok =
            w.gw.confirm(&w.consumer, id, confirmation(Some("123456"), None), None)
                .await
                .unwrap();
        assert_eq!(ok.status, 200, "{}", ok.body);
        let stored = w.gw.store().credentials(&customer).await.unwrap().unwrap();
        assert!(stored.pin_hash.starts_with("v2$"), "{}", stored.pin_hash);
        // A change from it works (the new one must meet the rules).
        w.gw.change_pin(&w.consumer, "123456", "271828")
            .await
            .unwrap();
    }
);

on_both!(
    a_pin_hash_from_before_the_pepper_is_upgraded_when_the_pin_is_used,
    |w: World| async move {
        let customer = w.consumer.subject.clone().unwrap();
        let old = plant_legacy_pin(&w, "493817").await;
        let salt = hex::encode([0x5a_u8; 16]);
        // A wrong PIN upgrades nothing.
        w.charge(&w.device_token(), "1000.00").await.unwrap();
        let p = w.charge(&w.device_token(), "10.00").await.unwrap();
        let id = p["id"].as_str().unwrap();
        let e =
            w.gw.confirm(&w.consumer, id, confirmation(Some("000001"), None), None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "pin_incorrect");
        let stored = w.gw.store().credentials(&customer).await.unwrap().unwrap();
        assert_eq!(stored.pin_hash, old);
        // The right one pays, and the hash is peppered now, with a new salt.
        let ok =
            w.gw.confirm(&w.consumer, id, confirmation(Some("493817"), None), None)
                .await
                .unwrap();
        assert_eq!(ok.status, 200, "{}", ok.body);
        let stored = w.gw.store().credentials(&customer).await.unwrap().unwrap();
        assert!(stored.pin_hash.starts_with("v2$"), "{}", stored.pin_hash);
        assert_ne!(stored.pin_salt, salt);
        let rows = w.gw.store().audit_rows(0, 10_000).await.unwrap();
        assert!(
            rows.iter()
                .any(|r| r.action == "pin.rehashed" && r.subject == customer)
        );
        // The same PIN still works, and changes, under the new hash.
        w.gw.change_pin(&w.consumer, "493817", "271828")
            .await
            .unwrap();
        let p = w.charge(&w.device_token(), "10.00").await.unwrap();
        let id = p["id"].as_str().unwrap();
        let ok =
            w.gw.confirm(&w.consumer, id, confirmation(Some("271828"), None), None)
                .await
                .unwrap();
        assert_eq!(ok.status, 200, "{}", ok.body);
    }
);

on_both!(five_wrong_pins_lock_the_pin, |w: World| async move {
    w.gw.set_pin(&w.consumer, "493817").await.unwrap();
    w.charge(&w.device_token(), "1000.00").await.unwrap();
    let p = w.charge(&w.device_token(), "10.00").await.unwrap();
    let id = p["id"].as_str().unwrap();
    for _ in 0..4 {
        assert_eq!(
            w.gw.confirm(&w.consumer, id, confirmation(Some("000001"), None), None)
                .await
                .unwrap_err()
                .code,
            "pin_incorrect"
        );
    }
    let e =
        w.gw.confirm(&w.consumer, id, confirmation(Some("000001"), None), None)
            .await
            .unwrap_err();
    assert!(e.message.contains("locked"), "{}", e.message);
    // Even the right PIN is refused while locked.
    assert_eq!(
        w.gw.confirm(&w.consumer, id, confirmation(Some("493817"), None), None)
            .await
            .unwrap_err()
            .code,
        "pin_locked"
    );
    assert_eq!(w.balance().await, "4000.00");
});

// A gateway keeps the caller's key and the block list for up to a second.
// A revocation or a block made on another gateway within that second still
// stops the payment: its movement checks both again with its writes.
on_both!(
    a_key_revoked_or_a_party_blocked_elsewhere_stops_payments_at_once,
    |w: World| async move {
        let a = admin();
        let config = Config {
            processor_timeout_ms: 300,
            ..Config::default()
        };
        let (other, _) = Gateway::start(w.gw.store().clone(), w.clock.clone(), config)
            .await
            .unwrap();
        let mid = w.merchant.subject.clone().unwrap();
        let cus = w.consumer.subject.clone().unwrap();
        let k =
            w.gw.create_api_key(Some(&a), Role::Merchant, Some(mid.clone()))
                .await
                .unwrap();
        let cashier = w.gw.authenticate_for_payment(&k.secret).await.unwrap();
        w.gw.charge(&cashier, &w.device_token(), "1.00", None, None)
            .await
            .unwrap();

        other.revoke_api_key(&a, &k.id).await.unwrap();
        // This gateway's copy of the key is still fresh …
        let stale = w.gw.authenticate_for_payment(&k.secret).await.unwrap();
        // … but no money moves, and the code is not spent.
        let token = w.device_token();
        let e =
            w.gw.charge(&stale, &token, "10.00", None, None)
                .await
                .unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("api_key_revoked", Some("QG-AUTH"))
        );
        assert_eq!(e.payment_id, None);
        assert_eq!(w.balance().await, "4999.00");
        w.charge(&token, "10.00").await.unwrap();
        // The uncached path and, a second later, the cached one refuse the key.
        assert_eq!(
            w.gw.authenticate(&k.secret).await.unwrap_err().code,
            "api_key_revoked"
        );
        w.clock.advance_seconds(1);
        assert_eq!(
            w.gw.authenticate_for_payment(&k.secret)
                .await
                .unwrap_err()
                .code,
            "api_key_revoked"
        );

        // The block list: read (nobody blocked), then the payer is blocked elsewhere.
        w.charge(&w.device_token(), "1.00").await.unwrap();
        let b = other.block(&a, &cus, "card testing").await.unwrap();
        let token = w.device_token();
        let e = w.charge(&token, "10.00").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("party_blocked", Some("QG-BLOCKLIST"))
        );
        assert!(e.message.contains("payer"), "{}", e.message);
        // Declined and recorded as such, the code spent, no money moved.
        let pid = e.payment_id.clone().unwrap();
        let failed = w.gw.get_payment(&w.merchant, &pid).await.unwrap();
        assert_eq!(failed.status, "failed");
        assert_eq!(
            w.charge(&token, "10.00").await.unwrap_err().code,
            "payment_code_already_used"
        );
        assert_eq!(w.balance().await, "4988.00");
        other.lift_block(&a, &b.id).await.unwrap();
        w.charge(&w.device_token(), "2.00").await.unwrap();
        assert_eq!(w.balance().await, "4986.00");
        let check = w.gw.store().ledger_check().await.unwrap();
        assert!(check.is_sound(), "{check:?}");
    }
);

on_both!(
    blocked_parties_are_declined_until_lifted,
    |w: World| async move {
        let a = admin();
        let cus = w.consumer.subject.clone().unwrap();
        let mid = w.merchant.subject.clone().unwrap();
        assert_eq!(
            w.gw.block(&w.merchant, &cus, "x").await.unwrap_err().code,
            "forbidden"
        );
        assert_eq!(
            w.gw.block(&a, &cus, "  ").await.unwrap_err().code,
            "invalid_reason"
        );
        assert_eq!(
            w.gw.block(&a, "cus_aaaaaaaaaaaaaaaaaaaaaaaaaa", "x")
                .await
                .unwrap_err()
                .code,
            "not_found"
        );
        let b = w.gw.block(&a, &cus, "card testing").await.unwrap();
        let token = w.device_token();
        let e = w.charge(&token, "10.00").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("party_blocked", Some("QG-BLOCKLIST"))
        );
        assert!(
            e.message.contains("payer") && !e.message.contains("card testing"),
            "{}",
            e.message
        );
        // Recorded as a declined payment; the code is spent; no money moved.
        let pid = e.payment_id.clone().unwrap();
        assert_eq!(
            w.gw.get_payment(&w.merchant, &pid).await.unwrap().status,
            "failed"
        );
        assert_eq!(
            w.charge(&token, "10.00").await.unwrap_err().code,
            "payment_code_already_used"
        );
        assert_eq!(w.balance().await, "5000.00");
        let lifted = w.gw.lift_block(&a, &b.id).await.unwrap();
        assert!(lifted.lifted_at.is_some());
        assert_eq!(
            w.gw.lift_block(&a, &b.id).await.unwrap_err().code,
            "block_already_lifted"
        );
        w.charge(&w.device_token(), "10.00").await.unwrap();
        // A blocked merchant is not paid either; the message names the merchant.
        w.gw.block(&a, &mid, "chargebacks").await.unwrap();
        let e = w.charge(&w.device_token(), "10.00").await.unwrap_err();
        assert_eq!(e.code, "party_blocked");
        assert!(e.message.contains("merchant"), "{}", e.message);
        // Another merchant is unaffected.
        let Reply { body, .. } =
            w.gw.charge(&w.other_merchant, &w.device_token(), "1.00", None, None)
                .await
                .unwrap();
        assert!(body.contains("succeeded"));
        assert_eq!(w.balance().await, "4989.00");
        // Admin actions are in the audit chain, with the key that did them.
        let rows = w.gw.store().audit_rows(0, 1000).await.unwrap();
        let actions: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.action.as_str(), r.details["by"].as_str().unwrap_or("")))
            .collect();
        for want in [
            "merchant.created",
            "customer.created",
            "block.created",
            "block.lifted",
        ] {
            assert!(
                actions
                    .iter()
                    .any(|(a, by)| *a == want && *by == "key_admin"),
                "{want} by key_admin missing from {actions:?}"
            );
        }
    }
);

on_both!(
    refunds_close_365_days_after_the_payment,
    |w: World| async move {
        let p = w.charge(&w.device_token(), "20.00").await.unwrap();
        let id = p["id"].as_str().unwrap();
        // One second before the window closes: accepted.
        w.clock.advance_seconds(365 * 86_400 - 1);
        w.gw.refund(&w.merchant, id, "5.00", "W1", None)
            .await
            .unwrap();
        // Two seconds later: refused with the rule, nothing paid back.
        w.clock.advance_seconds(2);
        let e =
            w.gw.refund(&w.merchant, id, "5.00", "W2", None)
                .await
                .unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("refund_window_closed", Some("BCP-REFUND-WINDOW"))
        );
        assert!(e.message.contains("365 days"), "{}", e.message);
        // A retry of the refund made inside the window still answers it
        // (so a card refund the processor missed can be asked again).
        let again =
            w.gw.refund(&w.merchant, id, "5.00", "W1", None)
                .await
                .unwrap();
        assert_eq!(again.status, 200);
        assert_eq!(w.balance().await, "4985.00");
    }
);

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
        let Reply { body, .. } = self
            .gw
            .pay_scanned(payer, &order.payload, None, source, None)
            .await?;
        Ok(serde_json::from_str(&body).unwrap())
    }

    async fn assert_books_sound(&self) {
        let c = self.gw.store().ledger_check().await.unwrap();
        assert!(c.is_sound(), "{c:?}");
    }

    async fn clearing(&self) -> i64 {
        self.gw
            .store()
            .account("clearing:card:sandbox:CNY")
            .await
            .unwrap()
            .map_or(0, |a| a.balance_minor)
    }
}

on_both!(
    card_payments_come_from_the_card_and_refunds_go_back_to_it,
    |w: World| async move {
        let credit = w.link(&w.consumer, "4242424242424242").await;
        let cards = w.gw.list_cards(&w.consumer).await.unwrap();
        let shown = serde_json::to_string(&cards).unwrap();
        assert!(shown.contains("\"last4\":\"4242\"") && shown.contains("\"credit\""));
        assert!(!shown.contains("424242424242"), "no card number: {shown}");
        // Someone else's card is not a funding source of this payer.
        let other = w.new_consumer().await;
        assert_eq!(
            w.pay_order(&w.merchant, &other, "1.00", Some(&credit))
                .await
                .unwrap_err()
                .code,
            "not_found"
        );
        let wallet_before = w.balance().await;
        let p = w
            .pay_order(&w.merchant, &w.consumer, "120.00", Some(&credit))
            .await
            .unwrap();
        assert_eq!(p["status"], "succeeded");
        assert_eq!(
            (
                p["funding"]["type"].as_str(),
                p["funding"]["last4"].as_str()
            ),
            (Some("card"), Some("4242"))
        );
        assert_eq!(w.balance().await, wallet_before, "the wallet is untouched");
        assert_eq!(w.clearing().await, -12_000);
        let id = p["id"].as_str().unwrap();
        let auth = w.sandbox.authorization(id).unwrap();
        assert!(!auth.reversed);
        w.gw.refund(&w.merchant, id, "20.00", "R1", None)
            .await
            .unwrap();
        // A retry with the same refund number returns nothing twice.
        w.gw.refund(&w.merchant, id, "20.00", "R1", None)
            .await
            .unwrap();
        assert_eq!(w.sandbox.authorization(id).unwrap().refunded_minor, 2_000);
        assert_eq!(w.clearing().await, -10_000);
        // The card's daily level-C cap is its own: the wallet still has 1,000.00.
        w.charge(&w.device_token(), "1000.00").await.unwrap();
        w.assert_books_sound().await;
    }
);

on_both!(
    declines_and_processor_timeouts_move_no_money,
    |w: World| async move {
        let before = w.clearing().await;
        let nofunds = w.link(&w.consumer, "4000000000009995").await;
        let e = w
            .pay_order(&w.merchant, &w.consumer, "10.00", Some(&nofunds))
            .await
            .unwrap_err();
        assert_eq!(e.code, "card_declined_insufficient_funds");
        let failed =
            w.gw.get_payment(&w.consumer, e.payment_id.as_deref().unwrap())
                .await
                .unwrap();
        assert_eq!(failed.status, "failed");
        let fraud = w.link(&w.consumer, "4100000000000019").await;
        let e = w
            .pay_order(&w.merchant, &w.consumer, "10.00", Some(&fraud))
            .await
            .unwrap_err();
        assert_eq!(e.code, "card_declined_suspected_fraud");
        // The answer is lost; a query finds the authorization approved.
        let lost = w.link(&w.consumer, "4000000000000119").await;
        let p = w
            .pay_order(&w.merchant, &w.consumer, "10.00", Some(&lost))
            .await
            .unwrap();
        assert_eq!(p["status"], "succeeded");
        // Nothing answers: reversed, refused, recorded.
        let silent = w.link(&w.consumer, "4000000000000127").await;
        let e = w
            .pay_order(&w.merchant, &w.consumer, "10.00", Some(&silent))
            .await
            .unwrap_err();
        assert_eq!(e.code, "card_processor_timeout");
        let id = e.payment_id.unwrap();
        assert!(w.sandbox.authorization(&id).unwrap().reversed);
        let recorded = w.gw.store().payment(&id).await.unwrap().unwrap();
        assert_eq!(recorded.details["funding"]["reversed"], json!(true));
        assert_eq!(
            w.gw.get_payment(&w.consumer, &id).await.unwrap().status,
            "failed"
        );
        // Slow but within the deadline: approved.
        let slow = w.link(&w.consumer, "4000000000000259").await;
        w.pay_order(&w.merchant, &w.consumer, "10.00", Some(&slow))
            .await
            .unwrap();
        assert_eq!(
            w.clearing().await,
            before - 2_000,
            "only the two approvals moved money"
        );
        w.assert_books_sound().await;
        let bad = NewCard {
            number: "4242424242424241".into(),
            exp_month: 12,
            exp_year: 2030,
        };
        assert_eq!(
            w.gw.link_card(&w.consumer, bad).await.unwrap_err().code,
            "card_number_invalid"
        );
        let expired = NewCard {
            number: "4242424242424242".into(),
            exp_month: 10,
            exp_year: 2026,
        };
        assert_eq!(
            w.gw.link_card(&w.consumer, expired).await.unwrap_err().code,
            "card_expired"
        );
    }
);

on_both!(
    small_merchant_credit_receipts_are_capped_per_person_per_day,
    |w: World| async move {
        // One person behind two merchant entries; another person's shop.
        let stall = w.small_merchant("FRUIT STALL", "kyc-1").await;
        let stall2 = w.small_merchant("FRUIT STALL 2", "kyc-1").await;
        let other = w.small_merchant("TEA STALL", "kyc-2").await;
        let alice = w.new_consumer().await;
        let bob = w.new_consumer().await;
        let alice_credit = w.link(&alice, "4242424242424242").await;
        let bob_credit = w.link(&bob, "4242424242424242").await;
        let bob_debit = w.link(&bob, "6200000000000005").await;
        w.pay_order(&stall, &alice, "600.00", Some(&alice_credit))
            .await
            .unwrap();
        w.pay_order(&stall2, &bob, "399.99", Some(&bob_credit))
            .await
            .unwrap();
        // Exactly at the cap (1,000.00) is allowed.
        w.pay_order(&stall, &bob, "0.01", Some(&bob_credit))
            .await
            .unwrap();
        let e = w
            .pay_order(&stall2, &bob, "0.01", Some(&bob_credit))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("limit_exceeded", Some("BCP-SMALL-MERCHANT-CREDIT-DAY"))
        );
        // Refused after the card was authorized: the authorization is reversed.
        assert!(
            w.sandbox
                .authorization(e.payment_id.as_deref().unwrap())
                .unwrap()
                .reversed
        );
        // Debit cards and another person's stall are outside this cap.
        w.pay_order(&stall, &bob, "50.00", Some(&bob_debit))
            .await
            .unwrap();
        w.pay_order(&other, &bob, "50.00", Some(&bob_credit))
            .await
            .unwrap();
        // The next business day (Shanghai) starts afresh.
        w.clock
            .set(Timestamp::parse_rfc3339("2026-11-25T16:00:00Z").unwrap());
        w.pay_order(&stall2, &alice, "1000.00", Some(&alice_credit))
            .await
            .unwrap();
        w.assert_books_sound().await;
    }
);

on_both!(
    concurrent_credit_payments_race_the_small_merchant_cap,
    |w: World| async move {
        let stall = w.small_merchant("NOODLE CART", "kyc-9").await;
        let mut payers = Vec::new();
        for _ in 0..8 {
            let c = w.new_consumer().await;
            let card = w.link(&c, "4242424242424242").await;
            payers.push((c, card));
        }
        // Eight 300.00 payments against a 1,000.00 cap: exactly three fit.
        let w = Arc::new(w);
        let mut tasks = tokio::task::JoinSet::new();
        for (c, card) in payers {
            let (w, stall) = (w.clone(), stall.clone());
            tasks.spawn(async move { w.pay_order(&stall, &c, "300.00", Some(&card)).await });
        }
        let results = tasks.join_all().await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 3, "{results:?}");
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(e.rule.as_deref(), Some("BCP-SMALL-MERCHANT-CREDIT-DAY"));
            let auth = w.sandbox.authorization(e.payment_id.as_deref().unwrap());
            assert!(auth.unwrap().reversed);
        }
        assert_eq!(w.clearing().await, -90_000);
        w.assert_books_sound().await;
    }
);

on_both!(
    the_monthly_credit_cap_counts_across_days,
    |w: World| async move {
        let stall = w.small_merchant("FLOWER STALL", "kyc-m").await;
        let mut cards = Vec::new();
        for _ in 0..12 {
            let c = w.new_consumer().await;
            let card = w.link(&c, "4242424242424242").await;
            cards.push((c, card));
        }
        // Ten days at the day cap fill the month's 10,000.00, the 11th is refused.
        for (day, (c, card)) in cards.iter().take(10).enumerate() {
            w.clock.set(
                Timestamp::parse_rfc3339(&format!("2026-11-{:02}T02:00:00Z", day + 1)).unwrap(),
            );
            w.pay_order(&stall, c, "1000.00", Some(card)).await.unwrap();
        }
        w.clock
            .set(Timestamp::parse_rfc3339("2026-11-20T02:00:00Z").unwrap());
        let (c, card) = &cards[10];
        let e = w
            .pay_order(&stall, c, "0.01", Some(card))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("limit_exceeded", Some("BCP-SMALL-MERCHANT-CREDIT-MONTH"))
        );
        // December 1st in Shanghai (Nov 30, 16:00 UTC) is a new month.
        w.clock
            .set(Timestamp::parse_rfc3339("2026-11-30T16:00:00Z").unwrap());
        w.pay_order(&stall, c, "0.01", Some(card)).await.unwrap();
        let (c, card) = &cards[11];
        w.pay_order(&stall, c, "999.99", Some(card)).await.unwrap();
        w.assert_books_sound().await;
    }
);

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
        let Reply { body, .. } = self
            .gw
            .confirm(&self.consumer, p["id"].as_str().unwrap(), c, None)
            .await?;
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

on_both!(
    a_pin_and_a_one_time_password_step_up_to_level_b_once_per_code,
    |w: World| async move {
        assert_eq!(
            w.gw.enroll_otp(&w.consumer, None).await.unwrap_err().code,
            "pin_not_set"
        );
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        let otp = w.gw.enroll_otp(&w.consumer, Some("493817")).await.unwrap();
        assert!(otp.otpauth_uri.contains(&otp.secret));
        w.charge(&w.device_token(), "1000.00").await.unwrap();
        let p = w.waiting_order().await;
        let accepts = &p["next_action"]["accepts"];
        assert!(
            accepts
                .as_array()
                .unwrap()
                .contains(&json!(["pin", "one_time_password"])),
            "{accepts}"
        );
        // An OTP alone is one class: not enough, and nothing is spent.
        let e = w
            .confirm_with(&p, with_otp(None, &otp_now(&w, &otp.secret)))
            .await
            .unwrap_err();
        assert_eq!(e.code, "pin_required");
        let e = w
            .confirm_with(&p, with_otp(Some("493817"), "000000"))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("otp_incorrect", Some("QG-PIN-LOCKOUT"))
        );
        let code = otp_now(&w, &otp.secret);
        let done = w
            .confirm_with(&p, with_otp(Some("493817"), &code))
            .await
            .unwrap();
        assert_eq!(
            (done["status"].as_str(), done["risk_level"].as_str()),
            (Some("succeeded"), Some("B"))
        );
        assert_eq!(done["verification"], json!(["one_time_password", "pin"]));
        // The same code a second time is refused; the next step's code works.
        let p2 = w.waiting_order().await;
        let e = w
            .confirm_with(&p2, with_otp(Some("493817"), &code))
            .await
            .unwrap_err();
        assert_eq!(e.code, "otp_reused");
        w.clock.advance_seconds(30);
        let done = w
            .confirm_with(&p2, with_otp(Some("493817"), &otp_now(&w, &otp.secret)))
            .await
            .unwrap();
        assert_eq!(done["status"], "succeeded");
        // Wrong codes count toward the same lock-out as wrong PINs (in a
        // fresh minute: each try draws on QG-RATE-PIN twice, PIN and code).
        let p3 = w.waiting_order().await;
        w.clock.advance_seconds(60);
        for _ in 0..5 {
            let e = w
                .confirm_with(&p3, with_otp(Some("493817"), "000000"))
                .await
                .unwrap_err();
            assert!(["otp_incorrect", "pin_locked"].contains(&e.code), "{e:?}");
        }
        w.clock.advance_seconds(60);
        let e = w
            .confirm_with(&p3, with_otp(Some("493817"), &otp_now(&w, &otp.secret)))
            .await
            .unwrap_err();
        assert_eq!(e.code, "pin_locked");
        w.assert_books_sound().await;
    }
);

on_both!(
    a_biometric_inside_the_device_signature_steps_up_without_the_pin,
    |w: World| async move {
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        w.charge(&w.device_token(), "1000.00").await.unwrap();
        let p = w.waiting_order().await;
        assert!(
            p["next_action"]["accepts"]
                .as_array()
                .unwrap()
                .contains(&json!(["device_signature", "biometric"]))
        );
        let plain = sign_confirmation(&w, &p);
        let biometric = |sig: String| qrgate_gateway::stepup::Confirmation {
            biometric: Some(true),
            ..confirmation(None, Some((&w.device_id, sig)))
        };
        // Biometrics count only once turned on for the device, with the PIN
        // (a stolen API key is not enough), and no PIN attempt is spent on
        // the refusal.
        assert_eq!(
            w.confirm_with(&p, biometric(plain.clone()))
                .await
                .unwrap_err()
                .code,
            "biometric_not_enabled"
        );
        assert_eq!(
            w.gw.enable_biometric(&w.consumer, &w.device_id, None)
                .await
                .unwrap_err()
                .code,
            "pin_required"
        );
        assert_eq!(
            w.gw.enable_biometric(&w.consumer, &w.device_id, Some("111119"))
                .await
                .unwrap_err()
                .code,
            "pin_incorrect"
        );
        let d =
            w.gw.enable_biometric(&w.consumer, &w.device_id, Some("493817"))
                .await
                .unwrap();
        assert!(d.biometric);
        // A signature made without the biometric assertion does not carry one.
        assert_eq!(
            w.confirm_with(&p, biometric(plain.clone()))
                .await
                .unwrap_err()
                .code,
            "device_signature_invalid"
        );
        // A device signature alone is one class.
        assert_eq!(
            w.confirm_with(&p, confirmation(None, Some((&w.device_id, plain))))
                .await
                .unwrap_err()
                .code,
            "pin_required"
        );
        let mut msg = qrgate_gateway::stepup::confirmation_message(
            p["id"].as_str().unwrap(),
            "10.00",
            "CNY",
            p["merchant_id"].as_str().unwrap(),
        );
        msg.extend_from_slice(qrgate_gateway::stepup::BIOMETRIC_SUFFIX);
        let sig = URL_SAFE_NO_PAD.encode(w.device.sign(&msg).as_ref());
        let done = w.confirm_with(&p, biometric(sig)).await.unwrap();
        assert_eq!(
            (done["status"].as_str(), done["risk_level"].as_str()),
            (Some("succeeded"), Some("B"))
        );
        assert_eq!(
            done["verification"],
            json!(["device_signature", "biometric"])
        );
        w.assert_books_sound().await;
    }
);

// ---- Optional limits: password-free count, per-transaction cap, velocity ----

impl World {
    /// Restart the gateway on the same store with these rule overrides.
    async fn reconfigure(&mut self, rules: &[(&str, i64)], by_mcc: &[(&str, i64)]) {
        let config = Config {
            processor_timeout_ms: 300,
            rules: rules.iter().map(|(r, v)| ((*r).to_owned(), *v)).collect(),
            txn_cap_by_mcc: by_mcc.iter().map(|(m, v)| ((*m).to_owned(), *v)).collect(),
            ..Config::default()
        };
        let (gw, applied) = Gateway::start(self.gw.store().clone(), self.clock.clone(), config)
            .await
            .unwrap();
        assert_eq!(applied.len(), rules.len());
        self.gw = gw.with_processor(self.sandbox.clone());
    }
}

on_both!(
    past_the_password_free_count_a_payment_asks_for_the_pin,
    |mut w: World| async move {
        w.reconfigure(&[("BCP-PASSWORD-FREE-COUNT", 3)], &[]).await;
        for _ in 0..3 {
            w.charge(&w.device_token(), "1.00").await.unwrap();
        }
        // No PIN to step up with: declined, recorded, nothing moved.
        let e = w.charge(&w.device_token(), "1.00").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("limit_exceeded", Some("BCP-PASSWORD-FREE-COUNT"))
        );
        assert!(e.payment_id.is_some());
        assert_eq!(w.balance().await, "4997.00");
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        let p = w.charge(&w.device_token(), "2.00").await.unwrap();
        assert_eq!(p["status"], "requires_action");
        let accepts = p["next_action"]["accepts"].as_array().unwrap();
        assert!(
            accepts
                .iter()
                .all(|set| set.as_array().unwrap().contains(&json!("pin"))),
            "only sets with the PIN: {accepts:?}"
        );
        let done = w
            .confirm_with(&p, confirmation(Some("493817"), None))
            .await
            .unwrap();
        assert_eq!(
            (done["status"].as_str(), done["risk_level"].as_str()),
            (Some("succeeded"), Some("B"))
        );
        // The next business day counts afresh.
        w.clock
            .set(Timestamp::parse_rfc3339("2026-11-25T16:00:00Z").unwrap());
        w.charge(&w.device_token(), "1.00").await.unwrap();
        w.assert_books_sound().await;
    }
);

on_both!(
    a_single_payment_stays_within_the_transaction_cap_of_its_category,
    |mut w: World| async move {
        w.reconfigure(&[("BCP-TXN-CAP", 50_000)], &[("5812", 20_000)])
            .await;
        // The world's merchants are restaurants (5812): 200.00 at most.
        w.charge(&w.device_token(), "200.00").await.unwrap();
        let e = w.charge(&w.device_token(), "200.01").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("limit_exceeded", Some("BCP-TXN-CAP"))
        );
        assert!(e.message.contains("200.00"), "{}", e.message);
        // Another category has only the general cap.
        let shop =
            w.gw.create_merchant(
                &admin(),
                NewMerchant {
                    name: "GROCER".into(),
                    city: "SHANGHAI".into(),
                    country: "CN".into(),
                    mcc: "5411".into(),
                    currency: "CNY".into(),
                    category: "regular".into(),
                    name_local: None,
                    owner_ref: None,
                },
            )
            .await
            .unwrap();
        let shop = key_of(&w.gw, Role::Merchant, &shop.id).await;
        w.pay_order(&shop, &w.consumer, "500.00", None)
            .await
            .unwrap();
        let e = w
            .pay_order(&shop, &w.consumer, "500.01", None)
            .await
            .unwrap_err();
        assert_eq!(e.rule.as_deref(), Some("BCP-TXN-CAP"));
        assert_eq!(w.balance().await, "4300.00");
        // A category cap above the general one is a configuration error.
        let config = Config {
            rules: [("BCP-TXN-CAP".to_owned(), 50_000)].into_iter().collect(),
            txn_cap_by_mcc: [("5812".to_owned(), 60_000)].into_iter().collect(),
            ..Config::default()
        };
        let e = Gateway::start(w.gw.store().clone(), w.clock.clone(), config)
            .await
            .err()
            .unwrap();
        assert!(e.message.contains("above BCP-TXN-CAP"), "{}", e.message);
    }
);

on_both!(
    more_payments_a_minute_than_the_velocity_limit_are_declined,
    |mut w: World| async move {
        w.reconfigure(&[("QG-VELOCITY-CUSTOMER", 3)], &[]).await;
        // Align to the start of a minute so all four fall in it.
        let now = w.clock.now().unix_seconds();
        w.clock
            .set(Timestamp::from_unix_millis((now / 60 * 60 + 60) * 1000));
        for _ in 0..3 {
            w.charge(&w.device_token(), "1.00").await.unwrap();
        }
        let e = w.charge(&w.device_token(), "1.00").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("limit_exceeded", Some("QG-VELOCITY-CUSTOMER"))
        );
        assert!(e.message.contains("uses"), "{}", e.message);
        w.clock.advance_seconds(60);
        w.charge(&w.device_token(), "1.00").await.unwrap();
        assert_eq!(w.balance().await, "4996.00");
    }
);

// ---- The code and the rule catalogue agree ----

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The non-test part of every `.rs` file under `dir`: (path, text).
fn sources(dir: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![repo_root().join(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap().to_owned();
                let name = p.strip_prefix(repo_root()).unwrap().display().to_string();
                out.push((name, code));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_rule_is_cited_by_the_code_and_the_code_cites_no_other() {
    let catalogue = qrgate_core::rules::Catalogue::builtin().unwrap();
    let all: Vec<(String, String)> = sources("crates")
        .into_iter()
        .filter(|(p, _)| p.contains("/src/"))
        .collect();
    let text: String = all.iter().map(|(_, t)| t.as_str()).collect();
    let is_id_char = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-';
    for r in catalogue.rules() {
        let cited = text.match_indices(&r.id).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            let after = text[i + r.id.len()..].chars().next();
            !before.is_some_and(is_id_char) && !after.is_some_and(is_id_char)
        });
        assert!(cited, "rule {} is not cited anywhere in the code", r.id);
    }
    // Every rule id the code names ("BCP-…" or "QG-…" in a string) exists.
    for (path, t) in &all {
        for prefix in ["\"BCP-", "\"QG-"] {
            for (i, _) in t.match_indices(prefix) {
                let id: String = t[i + 1..].chars().take_while(|c| is_id_char(*c)).collect();
                assert!(
                    catalogue.get(&id).is_some(),
                    "{path} names rule {id}, which spec/rules.toml does not have"
                );
            }
        }
    }
}

/// Every number the gateway enforces comes from the catalogue: counters
/// take their caps from `Limits` (filled only from the catalogue), and every
/// other numeric literal of 60 or more in the gateway's code is listed
/// here with what it is (a new one fails until it is classified).
#[test]
fn the_gateway_enforces_no_number_outside_the_catalogue() {
    const NOT_LIMITS: &[(&str, &str, &str)] = &[
        (
            "credentials.rs",
            "100",
            "most sealed device handles one request gives",
        ),
        (
            "idempotency.rs",
            "255",
            "input shape: Idempotency-Key length",
        ),
        ("jobs.rs", "3_600_000", "milliseconds per hour"),
        (
            "jobs.rs",
            "60_000",
            "keep expired codes a minute past expiry",
        ),
        ("jobs.rs", "600", "purge every 600 ticks of 1 s"),
        ("jobs.rs", "100", "audit chaining every 100 ms"),
        ("jobs.rs", "500", "webhook dispatch every 500 ms"),
        ("codes.rs", "60", "schema example: valid_seconds"),
        ("mod.rs", "100", "page size of list queries"),
        ("settle.rs", "201", "HTTP status"),
        ("settle.rs", "402", "HTTP status"),
        ("settle.rs", "422", "HTTP status"),
        ("funding.rs", "60", "seconds per minute (velocity window)"),
        ("funding.rs", "2030", "schema example: exp_year"),
        ("lib.rs", "60", "minutes per hour / seconds per minute"),
        (
            "lib.rs",
            "10_000",
            "wait after a rotation before the replaced key may be retired",
        ),
        ("lib.rs", "1000", "milliseconds per second"),
        ("lib.rs", "999", "rounding milliseconds up to seconds"),
        (
            "lib.rs",
            "3000",
            "processor_timeout_ms default (deployment setting)",
        ),
        ("otp.rs", "1000", "milliseconds per second"),
        ("orders.rs", "60", "seconds per minute"),
        ("orders.rs", "200", "HTTP status"),
        ("merchants.rs", "64", "input shape: owner_ref length"),
        ("blocks.rs", "200", "input shape: block reason length"),
        ("customers.rs", "201", "HTTP status"),
        (
            "fresh.rs",
            "1_000",
            "how long a copy of a key or the block list is trusted (ms)",
        ),
        (
            "fresh.rs",
            "10_000",
            "size bounds of the key and block-list caches",
        ),
        ("risk.rs", "60_000", "milliseconds per minute"),
        ("risk.rs", "86_400_000", "milliseconds per day"),
        ("rows.rs", "100_000", "size of the in-memory row cache"),
        (
            "audit.rs",
            "1000",
            "most audit rows one page of the log returns",
        ),
        ("pin.rs", "60", "seconds per minute"),
        (
            "pin.rs",
            "100_000",
            "PBKDF2 iterations of a PIN hash from before the pepper",
        ),
        ("pin.rs", "600_000", "PBKDF2 iterations of the PIN hash"),
        (
            "lib.rs",
            "64",
            "input shape: out_trade_no / out_refund_no length",
        ),
        ("refunds.rs", "200", "HTTP status"),
        ("refunds.rs", "201", "HTTP status"),
        ("refunds.rs", "1000", "milliseconds per second"),
        ("stepup.rs", "200", "HTTP status"),
        ("lapse.rs", "200", "sweeper batch size"),
        (
            "lapse.rs",
            "60_000",
            "grace of a confirming claim past its deadline",
        ),
        ("stepup.rs", "201", "HTTP status"),
        (
            "webhooks.rs",
            "60",
            "seconds a delivery attempt stays claimed",
        ),
        ("webhooks.rs", "100", "page size of the delivery list"),
        (
            "limiter.rs",
            "100_000",
            "most rate-limit keys kept in memory",
        ),
        (
            "limiter.rs",
            "60_000",
            "milliseconds per minute: the window",
        ),
        ("limiter.rs", "999", "rounding milliseconds up to seconds"),
        ("limiter.rs", "1000", "milliseconds per second"),
        (
            "webhooks.rs",
            "200",
            "HTTP status; outbox and delivery batch sizes",
        ),
        ("webhooks.rs", "1000", "milliseconds per second"),
        ("webhooks.rs", "2026", "schema example: a timestamp"),
        (
            "webhooks.rs",
            "3600",
            "delivery retry backoff ceiling (delivery policy)",
        ),
    ];
    let mut unlisted = Vec::new();
    for (path, code) in sources("crates/qrgate-gateway/src") {
        let file = path.rsplit('/').next().unwrap().to_owned();
        // Drop comments and string literals.
        let mut clean = String::new();
        for line in code.lines() {
            let line = line.split("//").next().unwrap();
            let mut in_str = false;
            let mut prev = ' ';
            for c in line.chars() {
                if c == '"' && prev != '\\' {
                    in_str = !in_str;
                } else if !in_str {
                    clean.push(c);
                }
                prev = c;
            }
            clean.push('\n');
        }
        assert!(
            !clean.contains("cap_amount: Some(0")
                && !clean
                    .split("cap_amount: Some(")
                    .chain(clean.split("cap_uses: Some("))
                    .skip(1)
                    .any(|rest| rest.starts_with(|c: char| c.is_ascii_digit())),
            "{path}: a counter cap written as a literal number"
        );
        let chars: Vec<char> = clean.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let starts = chars[i].is_ascii_digit()
                && (i == 0
                    || !(chars[i - 1].is_alphanumeric()
                        || chars[i - 1] == '_'
                        || chars[i - 1] == '.'));
            if !starts {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '_') {
                j += 1;
            }
            let lit: String = chars[i..j].iter().collect();
            let value: i64 = lit.replace('_', "").parse().unwrap_or(0);
            if value >= 60 && !NOT_LIMITS.iter().any(|(f, l, _)| *f == file && *l == lit) {
                unlisted.push(format!("{file}: {lit}"));
            }
            i = j;
        }
    }
    assert!(
        unlisted.is_empty(),
        "numbers in the gateway that are neither from the catalogue nor classified: {unlisted:?}"
    );
    // Limits has no number of its own: every field is read from the catalogue.
    let lib =
        std::fs::read_to_string(repo_root().join("crates/qrgate-gateway/src/lib.rs")).unwrap();
    let fields = lib
        .split("pub struct Limits {")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap()
        .matches("pub ")
        .count();
    let body = lib.split("pub fn from_catalogue").nth(1).unwrap();
    let body = &body[..body.find("\n    }\n").unwrap()];
    let reads = body.matches("c.value(\"").count() + body.matches("c.optional_value(\"").count();
    assert_eq!(
        reads, fields,
        "every Limits field is read from the catalogue"
    );
}

// ---- Risk checks that flag for review ----

/// The risk checks of a payment as an admin sees them: (rule, decision).
async fn checks_of(w: &World, payment: &Value) -> Vec<(String, String)> {
    let id = payment["id"].as_str().unwrap();
    w.gw.get_payment(&admin(), id)
        .await
        .unwrap()
        .risk_checks
        .unwrap()
        .iter()
        .map(|c| {
            (
                c.rule.clone(),
                serde_json::to_value(c.decision)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

on_both!(
    an_unusually_large_payment_is_flagged_not_refused,
    |w: World| async move {
        // Too little history: allowed without a flag.
        let p = w
            .pay_order(&w.merchant, &w.consumer, "600.00", None)
            .await
            .unwrap();
        assert!(
            checks_of(&w, &p)
                .await
                .contains(&("QG-ANOMALY-AMOUNT".into(), "allow".into()))
        );
        for _ in 0..3 {
            w.charge(&w.device_token(), "10.00").await.unwrap();
        }
        // Average now (600 + 30) / 4 = 157.50; 10x is 1,575.00.
        w.clock.advance_seconds(86_400);
        let p = w
            .pay_order(&w.merchant, &w.consumer, "900.00", None)
            .await
            .unwrap();
        assert!(
            checks_of(&w, &p)
                .await
                .contains(&("QG-ANOMALY-AMOUNT".into(), "allow".into()))
        );
        for _ in 0..20 {
            w.charge(&w.device_token(), "1.00").await.unwrap();
        }
        // 25 payments averaging 1,550.00 / 25 = 62.00: 700.00 is more than 10x.
        w.clock.advance_seconds(86_400);
        let p = w
            .pay_order(&w.merchant, &w.consumer, "700.00", None)
            .await
            .unwrap();
        assert_eq!(p["status"], "succeeded", "flagged, not refused");
        assert!(
            p.get("risk_checks").is_none(),
            "the payer does not see the checks"
        );
        let checks = checks_of(&w, &p).await;
        assert!(
            checks.contains(&("QG-ANOMALY-AMOUNT".into(), "flag_for_review".into())),
            "{checks:?}"
        );
        let audit = w.gw.store().audit_rows(0, 1000).await.unwrap();
        assert!(
            audit
                .iter()
                .any(|r| r.subject == p["id"] && r.details["flags"] == json!(["QG-ANOMALY-AMOUNT"]))
        );
    }
);

on_both!(
    a_personal_merchant_paid_by_many_people_is_flagged_and_declines_are_recorded,
    |mut w: World| async move {
        w.reconfigure(&[("QG-PERSONAL-CODE-PAYERS", 2)], &[]).await;
        let stall = w.small_merchant("SNACK STALL", "kyc-s").await;
        // Review at 2 distinct payers: the first two pass, the third is flagged.
        for (i, decision) in ["allow", "allow", "flag_for_review"]
            .into_iter()
            .enumerate()
        {
            let c = w.new_consumer().await;
            w.gw.topup(&admin(), c.subject.as_deref().unwrap(), "10.00", None)
                .await
                .unwrap();
            let p = w.pay_order(&stall, &c, "1.00", None).await.unwrap();
            assert_eq!(p["status"], "succeeded");
            let checks = checks_of(&w, &p).await;
            assert!(
                checks.contains(&("QG-PERSONAL-CODE-PAYERS".into(), decision.into())),
                "payer {i}: {checks:?}"
            );
        }
        // A declined payment records the deciding check.
        let e = w
            .pay_order(&stall, &w.consumer, "5000.00", None)
            .await
            .unwrap_err();
        let checks = checks_of(&w, &json!({ "id": e.payment_id })).await;
        assert!(
            checks.contains(&("BCP-LIMIT-C-DAILY".into(), "decline".into())),
            "{checks:?}"
        );
    }
);

#[path = "gateway/races.rs"]
mod races;
