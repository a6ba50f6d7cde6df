//! Hot-path pieces of a payment below HTTP: rule evaluation (risk level,
//! amount parsing), building and checking a ledger posting, and the SQLite
//! store applying whole payment movements, one at a time and 32 at once
//! (group commit). Run: `cargo bench -p qrgate-store --bench ledger`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark fixtures

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

use qrgate_core::risk::{self, Element};
use qrgate_core::{Currency, Money, Timestamp};
use qrgate_store::*;

const CLEARING: &str = "acc_clearing_cny";
const MERCHANT: &str = "acc_mch_bench";

fn t(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_795_000_000_000 + ms)
}

fn entry(account: &str, amount: i64) -> Entry {
    Entry {
        account_id: qrgate_core::AccountId::stored(account.into()),
        amount_minor: amount,
        currency: qrgate_core::Currency::CNY,
    }
}

fn posting(id: &str, from: &str, to: &str, amount: i64) -> Posting {
    Posting {
        id: format!("pst_{id}"),
        kind: "payment".into(),
        payment_id: Some(id.into()),
        merchant_id: None,
        entries: vec![entry(from, -amount), entry(to, amount)],
    }
}

/// What the gateway writes for a CPM payment: idempotency answer, burned
/// code, daily and class counters, posting, payment, event, audit entry.
fn payment(n: u64, wallet: &str) -> Movement {
    let id = format!("pay_{n:012}");
    let mut m = Movement::new(t(2));
    m.idempotency = Some(IdempotencyRecord {
        scope: "key_bench".into(),
        key: format!("idem-{n}"),
        request_hash: "0".repeat(64),
        response_status: 201,
        response_body: json!({ "id": id, "status": "succeeded", "amount": "0.01" }).to_string(),
    });
    m.burns.push(CodeBurn {
        key: format!("cpm:bench:{n}"),
        payment_id: Some(id.clone()),
        expires_at: t(60_000),
    });
    for (key, rule) in [
        ("daily", "BCP-LIMIT-C-DAILY"),
        ("class", "BCP-ACCT-CLASS-III"),
    ] {
        m.counters.push(CounterCharge {
            key: qrgate_core::CounterKey::stored(format!("{key}:{wallet}")),
            amount_minor: 1,
            uses: 1,
            cap_amount: Some(i64::MAX / 2),
            cap_uses: None,
            rule: rule.into(),
        });
    }
    m.posting = Some(posting(&id, wallet, MERCHANT, 1));
    m.payment = Some(PaymentWrite::Insert(Payment {
        id: id.clone(),
        merchant_id: "mch_bench".into(),
        customer_id: Some("cus_bench".into()),
        status: qrgate_core::state::PaymentStatus::Succeeded,
        amount_minor: 1,
        currency: qrgate_core::Currency::CNY,
        refunded_minor: 0,
        out_trade_no: None,
        fee_minor: 0,
        details: serde_json::from_value(json!({
            "mode": "cpm", "risk_level": "C", "verification": ["device_signature"],
            "funding_account": "wallet:cus:CNY", "funding": {"type": "wallet"},
            "settlement_account": "settlement:mch:CNY"
        }))
        .expect("payment details"),
        created_at: t(2),
        updated_at: t(2),
    }));
    m.events.push(OutboxEvent {
        event_id: format!("evt_{n:012}"),
        event_type: "payment.succeeded".into(),
        subject_id: id.clone(),
        merchant_id: None,
        payload: json!({ "merchant_id": "mch_bench", "payment": { "id": id } }),
    });
    m.audit = Some(AuditEntry {
        action: "payment.succeeded".into(),
        subject: id,
        details: json!({ "merchant_id": "mch_bench", "amount_minor": 1 }),
    });
    m
}

async fn store(wallets: usize) -> AnyStore {
    let dir = std::env::temp_dir().join(format!("qrgate-bench-ledger-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let (s, _) = AnyStore::open(&url, t(0)).await.unwrap();
    let account = |id: String, kind: &str, neg: bool| {
        Record::Account(Account {
            id: qrgate_core::AccountId::stored(id),
            kind: kind.into(),
            owner_id: None,
            currency: qrgate_core::Currency::CNY,
            allow_negative: neg,
            balance_minor: 0,
            created_at: t(0),
            closed_until: None,
        })
    };
    s.insert(account(CLEARING.into(), "external_clearing", true))
        .await
        .unwrap();
    s.insert(account(MERCHANT.into(), "merchant_settlement", false))
        .await
        .unwrap();
    for w in 0..wallets {
        let id = format!("acc_wallet_{w}");
        s.insert(account(id.clone(), "consumer_wallet", false))
            .await
            .unwrap();
        let mut top = Movement::new(t(1));
        top.posting = Some(Posting {
            id: format!("pst_topup_{w}"),
            kind: "topup".into(),
            payment_id: None,
            merchant_id: None,
            entries: vec![entry(CLEARING, -1_000_000_000), entry(&id, 1_000_000_000)],
        });
        s.apply(top).await.unwrap();
    }
    s
}

fn benches(c: &mut Criterion) {
    let elements = [Element::DeviceSignature];
    c.bench_function("rule_risk_level_and_amount", |b| {
        b.iter(|| {
            let level = risk::level(black_box(&elements), false);
            let amount = Money::parse_amount(black_box("1234.56"), Currency::CNY).unwrap();
            (level.daily_rule(), amount.minor())
        })
    });
    c.bench_function("ledger_posting_build_and_check", |b| {
        b.iter(|| {
            let p = posting(
                black_box("pay_01"),
                "acc_wallet_0",
                MERCHANT,
                black_box(1_230),
            );
            p.check_balanced().unwrap();
            p
        })
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(store(32));
    let mut n = 0_u64;
    let mut group = c.benchmark_group("sqlite_apply");
    group.sample_size(20);
    group.bench_function("one_payment_movement", |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(s.apply(payment(n, "acc_wallet_0"))).unwrap()
        })
    });
    group.bench_function("32_payment_movements_at_once", |b| {
        b.iter(|| {
            let tasks: Vec<_> = (0..32)
                .map(|w| {
                    n += 1;
                    let (s, m) = (s.clone(), payment(n, &format!("acc_wallet_{w}")));
                    rt.spawn(async move { s.apply(m).await })
                })
                .collect();
            rt.block_on(async {
                for t in tasks {
                    t.await.unwrap().unwrap();
                }
            })
        })
    });
    group.finish();
}

criterion_group!(ledger, benches);
criterion_main!(ledger);
