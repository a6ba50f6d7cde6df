//! The Store behaviour suite: every case runs on SQLite and on PostgreSQL
//! (`QRGATE_TEST_POSTGRES_URL`; each test in its own schema). Without the
//! variable the Postgres half prints SKIP; .ci/run always sets it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use qrgate_core::payment::PaymentDetails;
use qrgate_core::state::PaymentStatus;
use qrgate_core::{AccountId, CounterKey, Currency, Timestamp};
use qrgate_store::*;
use serde_json::json;
use sqlx::{Connection, Row};

// ---------- harness ----------

/// How many migration files there are (the store embeds them all).
fn migrations() -> usize {
    std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../migrations/sqlite"
    ))
    .unwrap()
    .filter(|e| {
        e.as_ref()
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "sql")
    })
    .count()
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst),
        nanos % 1_000_000
    )
}

#[derive(Clone)]
enum Where {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

#[derive(Clone)]
struct Db {
    store: AnyStore,
    at: Where,
}

fn t(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_795_000_000_000 + ms)
}

async fn open_sqlite() -> Db {
    let dir = std::env::temp_dir().join(unique("qrgate_store"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("qrgate.db");
    let (store, report) = AnyStore::open(&format!("sqlite://{}", path.display()), t(0))
        .await
        .unwrap();
    assert_eq!(report.applied.len(), migrations());
    Db {
        store,
        at: Where::Sqlite(path),
    }
}

fn pg_url() -> Option<String> {
    match std::env::var("QRGATE_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!("SKIP postgres case: QRGATE_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

async fn open_pg() -> Option<Db> {
    let url = pg_url()?;
    let schema = unique("qrgate_t");
    let (store, report) = PgStore::open(&url, Some(&schema), 16, t(0))
        .await
        .expect("QRGATE_TEST_POSTGRES_URL is set but Postgres is not usable");
    assert_eq!(report.applied.len(), migrations());
    Some(Db {
        store: AnyStore::Postgres(store),
        at: Where::Postgres { url, schema },
    })
}

impl Db {
    /// Reopen the same database (as after a restart).
    async fn reopen(&self) -> (AnyStore, MigrationReport) {
        match &self.at {
            Where::Sqlite(p) => AnyStore::open(&format!("sqlite://{}", p.display()), t(0))
                .await
                .unwrap(),
            Where::Postgres { url, schema } => {
                let (s, r) = PgStore::open(url, Some(schema), 16, t(0)).await.unwrap();
                (AnyStore::Postgres(s), r)
            }
        }
    }

    /// Run raw SQL for inspection or deliberate tampering, outside the store.
    async fn raw(&self, sql: &str) -> Vec<i64> {
        match &self.at {
            Where::Sqlite(p) => {
                let c = rusqlite::Connection::open(p).unwrap();
                let mut st = c.prepare(sql).unwrap();
                let mut rows = st.query([]).unwrap();
                let mut out = Vec::new();
                while let Some(r) = rows.next().unwrap() {
                    out.extend(r.get::<_, i64>(0).ok());
                }
                out
            }
            Where::Postgres { url, schema } => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql(&format!("SET search_path TO {schema}"))
                    .execute(&mut c)
                    .await
                    .unwrap();
                let rows = sqlx::raw_sql(sql).fetch_all(&mut c).await.unwrap();
                rows.iter()
                    .filter_map(|r| r.try_get::<i64, _>(0).ok())
                    .collect()
            }
        }
    }

    async fn raw_err(&self, sql: &str) -> String {
        match &self.at {
            Where::Sqlite(p) => rusqlite::Connection::open(p)
                .unwrap()
                .execute_batch(sql)
                .unwrap_err()
                .to_string(),
            Where::Postgres { url, schema } => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql(&format!("SET search_path TO {schema}"))
                    .execute(&mut c)
                    .await
                    .unwrap();
                sqlx::raw_sql(sql)
                    .execute(&mut c)
                    .await
                    .unwrap_err()
                    .to_string()
            }
        }
    }

    /// Remove a Postgres test schema (kept when a test fails, for inspection).
    async fn drop_schema(&self) {
        if let Where::Postgres { url, schema } = &self.at {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&mut c)
                .await
                .unwrap();
        }
    }

    async fn scalar(&self, sql: &str) -> i64 {
        self.raw(sql).await[0]
    }
}

macro_rules! on_both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = open_sqlite().await;
                ($body)(db).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(db) = open_pg().await else { return };
                ($body)(db.clone()).await;
                db.drop_schema().await;
            }
        }
    };
}

// ---------- fixtures ----------

const CLEARING: &str = "acc_clearing_cny";
const MERCHANT: &str = "acc_mch_m1";

fn wallet(n: usize) -> String {
    format!("acc_wallet_{n}")
}

async fn accounts(s: &AnyStore, wallets: usize) {
    let acc = |id: &str, kind: &str, neg: bool| Account {
        id: AccountId::stored(id.into()),
        kind: kind.into(),
        owner_id: Some(format!("owner_{id}")),
        currency: Currency::CNY,
        allow_negative: neg,
        balance_minor: 0,
        created_at: t(0),
        closed_until: None,
    };
    s.insert(Record::Account(acc(CLEARING, "external_clearing", true)))
        .await
        .unwrap();
    s.insert(Record::Account(acc(MERCHANT, "merchant_settlement", false)))
        .await
        .unwrap();
    for i in 0..wallets {
        s.insert(Record::Account(acc(&wallet(i), "consumer_wallet", false)))
            .await
            .unwrap();
    }
}

fn entry(account: &str, amount: i64) -> Entry {
    Entry {
        account_id: AccountId::stored(account.into()),
        amount_minor: amount,
        currency: Currency::CNY,
    }
}

fn topup(id: &str, wallet: &str, amount: i64) -> Movement {
    let mut m = Movement::new(t(1));
    m.posting = Some(Posting {
        id: format!("pst_{id}"),
        kind: "topup".into(),
        payment_id: None,
        merchant_id: None,
        entries: vec![entry(CLEARING, -amount), entry(wallet, amount)],
    });
    m.audit = Some(AuditEntry {
        action: "wallet.topup".into(),
        subject: wallet.into(),
        details: json!({ "amount_minor": amount }),
    });
    m
}

fn payment_details() -> PaymentDetails {
    serde_json::from_value(json!({
        "mode": "cpm", "risk_level": "C", "funding_account": "wallet:cus_1:CNY",
        "funding": {"type": "wallet"}, "settlement_account": "settlement:mch_1:CNY"
    }))
    .unwrap()
}

fn payment_row(id: &str, amount: i64, status: &str) -> Payment {
    Payment {
        id: id.into(),
        merchant_id: "mch_1".into(),
        customer_id: Some("cus_1".into()),
        status: status.parse().unwrap(),
        amount_minor: amount,
        currency: qrgate_core::Currency::CNY,
        refunded_minor: 0,
        out_trade_no: None,
        fee_minor: 0,
        details: payment_details(),
        created_at: t(2),
        updated_at: t(2),
    }
}

/// `n` payments of `amount` from wallet 0 at once (`pay_0`, `pay_1`, …).
fn spawn_payments(
    s: &AnyStore,
    n: usize,
    amount: i64,
    daily_cap: i64,
) -> Vec<tokio::task::JoinHandle<Result<Applied, MovementError>>> {
    (0..n)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.apply(pay(
                    &format!("pay_{i}"),
                    &wallet(0),
                    &format!("c{i}"),
                    amount,
                    daily_cap,
                ))
                .await
            })
        })
        .collect()
}

/// A complete CPM payment: burn the code, charge the daily counter, move
/// money wallet → merchant, record the payment, an event and an audit row.
fn pay(id: &str, wallet: &str, code: &str, amount: i64, daily_cap: i64) -> Movement {
    let mut m = Movement::new(t(2));
    m.burns.push(CodeBurn {
        key: format!("code:{code}"),
        payment_id: Some(id.into()),
        expires_at: t(60_000),
    });
    m.counters.push(CounterCharge {
        key: CounterKey::stored(format!("daily:{wallet}:2026-11-25")),
        amount_minor: amount,
        uses: 1,
        cap_amount: Some(daily_cap),
        cap_uses: None,
        rule: "BCP-LIMIT-C-DAILY".into(),
    });
    m.posting = Some(Posting {
        id: format!("pst_{id}"),
        kind: "payment".into(),
        payment_id: Some(id.into()),
        merchant_id: None,
        entries: vec![entry(wallet, -amount), entry(MERCHANT, amount)],
    });
    m.payment = Some(PaymentWrite::Insert(payment_row(id, amount, "succeeded")));
    m.events.push(OutboxEvent {
        event_id: format!("evt_{id}"),
        event_type: "payment.succeeded".into(),
        subject_id: id.into(),
        merchant_id: None,
        payload: json!({ "id": id, "amount_minor": amount }),
    });
    m.audit = Some(AuditEntry {
        action: "payment.succeeded".into(),
        subject: id.into(),
        details: json!({ "amount_minor": amount }),
    });
    m
}

/// A refund of `amount` of a payment that captured `captured`, written only
/// while `before` is what was refunded of it.
fn refund(
    payment_id: &str,
    refund_no: &str,
    wallet: &str,
    amount: i64,
    (captured, before): (i64, i64),
) -> Movement {
    let mut m = Movement::new(t(3));
    m.counters.push(CounterCharge {
        key: CounterKey::refunded(payment_id),
        amount_minor: amount,
        uses: 1,
        cap_amount: Some(captured),
        cap_uses: Some(50),
        rule: "BCP-REFUND-CAP".into(),
    });
    let id = format!("ref_{payment_id}_{refund_no}");
    m.posting = Some(Posting {
        id: format!("pst_{id}"),
        kind: "refund".into(),
        payment_id: Some(payment_id.into()),
        merchant_id: None,
        entries: vec![entry(MERCHANT, -amount), entry(wallet, amount)],
    });
    m.payment = Some(PaymentWrite::AddRefunded {
        id: payment_id.into(),
        amount_minor: amount,
        refunded_before: before,
        status: PaymentStatus::Succeeded,
    });
    m.refund = Some(Refund {
        id: id.clone(),
        payment_id: payment_id.into(),
        merchant_id: "mch_1".into(),
        amount_minor: amount,
        currency: Currency::CNY,
        status: "succeeded".into(),
        out_refund_no: refund_no.into(),
        fee_minor: 0,
        metadata: Default::default(),
        created_at: t(3),
    });
    m.audit = Some(AuditEntry {
        action: "refund.succeeded".into(),
        subject: id,
        details: json!({ "amount_minor": amount }),
    });
    m
}

async fn balance(s: &AnyStore, id: &str) -> i64 {
    s.account(&AccountId::stored(id.into()))
        .await
        .unwrap()
        .unwrap()
        .balance_minor
}

/// What must not change when a movement is refused.
async fn fingerprint(db: &Db) -> Vec<i64> {
    let mut v = Vec::new();
    for sql in [
        "SELECT CAST(COALESCE(SUM(balance_minor * (LENGTH(id) + 7)), 0) AS BIGINT) FROM accounts",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM ledger_entries",
        "SELECT CAST(COALESCE(SUM(amount_minor * 3 + uses), 0) AS BIGINT) FROM counters",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM used_codes",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM payments",
        "SELECT CAST(COALESCE(SUM(refunded_minor), 0) AS BIGINT) FROM payments",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM refunds",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM idempotency",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM outbox",
        "SELECT seq FROM audit_head",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM audit_queue",
    ] {
        v.push(db.scalar(sql).await);
    }
    v
}

async fn assert_sound(s: &AnyStore) {
    let check = s.ledger_check().await.unwrap();
    assert!(check.is_sound(), "{check:?}");
    assert!(matches!(
        s.verify_audit().await.unwrap(),
        AuditVerdict::Intact { .. }
    ));
}

#[path = "store/behaviour.rs"]
mod behaviour;
#[path = "store/concurrency.rs"]
mod concurrency;
#[path = "store/crash.rs"]
mod crash;
#[path = "store/ledger.rs"]
mod ledger;
#[path = "store/live_checks.rs"]
mod live_checks;
#[path = "store/one_statement.rs"]
mod one_statement;
#[path = "store/pages.rs"]
mod pages;
#[path = "store/schema.rs"]
mod schema;
#[path = "store/simulation.rs"]
mod simulation;
