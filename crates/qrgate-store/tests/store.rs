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
        entries: vec![entry(wallet, -amount), entry(MERCHANT, amount)],
    });
    m.payment = Some(PaymentWrite::Insert(payment_row(id, amount, "succeeded")));
    m.events.push(OutboxEvent {
        event_id: format!("evt_{id}"),
        event_type: "payment.succeeded".into(),
        subject_id: id.into(),
        payload: json!({ "id": id, "amount_minor": amount }),
    });
    m.audit = Some(AuditEntry {
        action: "payment.succeeded".into(),
        subject: id.into(),
        details: json!({ "amount_minor": amount }),
    });
    m
}

fn refund(payment_id: &str, refund_no: &str, wallet: &str, amount: i64, captured: i64) -> Movement {
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
        entries: vec![entry(MERCHANT, -amount), entry(wallet, amount)],
    });
    m.payment = Some(PaymentWrite::AddRefunded {
        id: payment_id.into(),
        amount_minor: amount,
        status: PaymentStatus::Succeeded,
    });
    m.refund = Some(Refund {
        id: id.clone(),
        payment_id: payment_id.into(),
        amount_minor: amount,
        currency: Currency::CNY,
        status: "succeeded".into(),
        out_refund_no: refund_no.into(),
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

// ---------- behaviour cases ----------

on_both!(
    migrations_are_recorded_and_not_reapplied,
    |db: Db| async move {
        let (_, report) = db.reopen().await;
        assert!(report.applied.is_empty());
        assert_eq!(report.already, migrations());
        assert_eq!(
            db.scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM qrgate_migrations")
                .await,
            migrations() as i64
        );
    }
);

on_both!(topup_pay_refund_round_trip, |db: Db| async move {
    let s = &db.store;
    accounts(s, 1).await;
    // SQLite chains the entry in the movement; PostgreSQL queues it.
    let chained_at_once = match s {
        AnyStore::Sqlite(_) => Some(1),
        AnyStore::Postgres(_) => None,
    };
    assert!(matches!(
        s.apply(topup("t1", &wallet(0), 10_000)).await.unwrap(),
        Applied::Done { audit_seq } if audit_seq == chained_at_once
    ));
    let log = s.audit_rows(0, 10).await.unwrap();
    assert_eq!(log.len(), 1, "the top-up's entry is in the log when read");
    assert_eq!((log[0].seq, log[0].subject.clone()), (1, wallet(0)));
    s.apply(pay("pay_1", &wallet(0), "c1", 2_500, 100_000))
        .await
        .unwrap();
    assert_eq!(balance(s, &wallet(0)).await, 7_500);
    assert_eq!(balance(s, MERCHANT).await, 2_500);
    assert_eq!(balance(s, CLEARING).await, -10_000);
    assert_eq!(
        s.counter(&CounterKey::stored("daily:acc_wallet_0:2026-11-25".into()))
            .await
            .unwrap(),
        (2_500, 1)
    );
    let p = s.payment("pay_1").await.unwrap().unwrap();
    assert_eq!(
        (
            p.status.as_str(),
            p.amount_minor,
            Some(p.details.mode.as_str())
        ),
        ("succeeded", 2_500, Some("cpm"))
    );

    s.apply(refund("pay_1", "r1", &wallet(0), 1_000, 2_500))
        .await
        .unwrap();
    assert_eq!(balance(s, &wallet(0)).await, 8_500);
    assert_eq!(
        s.payment("pay_1").await.unwrap().unwrap().refunded_minor,
        1_000
    );
    assert_eq!(s.refunds("pay_1").await.unwrap().len(), 1);
    // Refunds reduce nothing that already counted.
    assert_eq!(
        s.counter(&CounterKey::stored("daily:acc_wallet_0:2026-11-25".into()))
            .await
            .unwrap(),
        (2_500, 1)
    );
    assert_sound(s).await;
    let c = s.ledger_check().await.unwrap();
    assert_eq!(c.totals, vec![("CNY".to_string(), 0)]);
    assert_eq!(c.entries, 6);
});

on_both!(refused_movements_change_nothing, |db: Db| async move {
    let s = &db.store;
    accounts(s, 2).await;
    s.apply(topup("t1", &wallet(0), 5_000)).await.unwrap();
    s.apply(pay("pay_1", &wallet(0), "used", 1_000, 3_000))
        .await
        .unwrap();
    let before = fingerprint(&db).await;

    // Insufficient funds: wallet 1 is empty.
    let e = s
        .apply(pay("pay_2", &wallet(1), "c2", 100, 3_000))
        .await
        .unwrap_err();
    assert!(
        matches!(e, MovementError::InsufficientFunds { ref account_id } if account_id.as_str() == "acc_wallet_1"),
        "{e}"
    );
    // A code used before.
    let e = s
        .apply(pay("pay_3", &wallet(0), "used", 100, 3_000))
        .await
        .unwrap_err();
    assert!(matches!(e, MovementError::CodeAlreadyUsed { .. }), "{e}");
    // Over the daily cap: 1000 already + 2001 > 3000.
    let e = s
        .apply(pay("pay_4", &wallet(0), "c4", 2_001, 3_000))
        .await
        .unwrap_err();
    assert!(
        matches!(e, MovementError::LimitExceeded { ref rule, current: 1_000, amount: 2_001, cap: 3_000, .. } if rule == "BCP-LIMIT-C-DAILY"),
        "{e}"
    );
    // Unbalanced posting.
    let mut m = topup("bad", &wallet(0), 10);
    m.posting.as_mut().unwrap().entries[0].amount_minor = -9;
    assert!(matches!(
        s.apply(m).await.unwrap_err(),
        MovementError::Invalid(_)
    ));
    // Unknown account, wrong currency.
    let mut m = topup("bad2", "acc_nobody", 10);
    m.audit = None;
    assert!(matches!(
        s.apply(m).await.unwrap_err(),
        MovementError::UnknownAccount { .. }
    ));
    let mut m = topup("bad3", &wallet(0), 10);
    for e in &mut m.posting.as_mut().unwrap().entries {
        e.currency = Currency::from_code("USD").unwrap();
    }
    assert!(matches!(
        s.apply(m).await.unwrap_err(),
        MovementError::CurrencyMismatch { .. }
    ));
    // Duplicate payment id, refund beyond capture, transition from the wrong state.
    let mut dup = pay("pay_1", &wallet(0), "c5", 10, 3_000);
    dup.posting.as_mut().unwrap().id = "pst_other".into();
    assert!(matches!(
        s.apply(dup).await.unwrap_err(),
        MovementError::DuplicatePayment { .. }
    ));
    // A posting id used before.
    assert!(matches!(
        s.apply(topup("t1", &wallet(0), 5)).await.unwrap_err(),
        MovementError::Invalid(_)
    ));
    assert!(matches!(
        s.apply(refund("pay_1", "r1", &wallet(0), 1_001, 1_000))
            .await
            .unwrap_err(),
        MovementError::LimitExceeded { .. }
    ));
    let mut m = Movement::new(t(9));
    m.payment = Some(PaymentWrite::Transition {
        id: "pay_1".into(),
        from: PaymentStatus::RequiresAction,
        to: PaymentStatus::Canceled,
        details: None,
    });
    assert!(
        matches!(s.apply(m).await.unwrap_err(), MovementError::PaymentStateConflict { ref actual, .. } if *actual == PaymentStatus::Succeeded)
    );
    let mut m = Movement::new(t(9));
    m.payment = Some(PaymentWrite::Transition {
        id: "pay_x".into(),
        from: PaymentStatus::RequiresAction,
        to: PaymentStatus::Canceled,
        details: None,
    });
    assert!(matches!(
        s.apply(m).await.unwrap_err(),
        MovementError::PaymentNotFound { .. }
    ));

    assert_eq!(fingerprint(&db).await, before);
    assert_sound(s).await;
});

on_both!(
    a_burned_code_stays_burned_even_when_the_payment_failed,
    |db: Db| async move {
        let s = &db.store;
        accounts(s, 1).await;
        // The failed payment is itself recorded, burning the code.
        let mut failed = Movement::new(t(2));
        failed.burns.push(CodeBurn {
            key: "code:f1".into(),
            payment_id: Some("pay_f".into()),
            expires_at: t(60_000),
        });
        failed.payment = Some(PaymentWrite::Insert(payment_row("pay_f", 500, "failed")));
        s.apply(failed).await.unwrap();
        s.apply(topup("t1", &wallet(0), 5_000)).await.unwrap();
        let e = s
            .apply(pay("pay_ok", &wallet(0), "f1", 500, 10_000))
            .await
            .unwrap_err();
        assert!(matches!(e, MovementError::CodeAlreadyUsed { .. }));
        assert_eq!(s.purge_codes(t(59_999)).await.unwrap(), 0);
        assert_eq!(s.purge_codes(t(60_001)).await.unwrap(), 1);
    }
);

on_both!(
    a_balance_past_the_ledger_range_is_refused_whole,
    |db: Db| async move {
        let s = &db.store;
        accounts(s, 2).await;
        const SECOND: &str = "acc_clearing_two";
        s.insert(Record::Account(Account {
            id: AccountId::stored(SECOND.into()),
            kind: "external_clearing".into(),
            owner_id: None,
            currency: Currency::CNY,
            allow_negative: true,
            balance_minor: 0,
            created_at: t(0),
        }))
        .await
        .unwrap();
        let near = i64::MAX - 10;
        s.apply(topup("t1", &wallet(0), near)).await.unwrap();
        // Upward: the wallet cannot hold 11 more (from a second source
        // that has the room).
        let mut more = topup("t2", &wallet(0), 11);
        if let Some(p) = more.posting.as_mut() {
            p.entries = vec![entry(SECOND, -11), entry(&wallet(0), 11)];
        }
        let e = s.apply(more).await.unwrap_err();
        assert!(
            matches!(&e, MovementError::BalanceOverflow { account_id } if account_id.as_str() == wallet(0)),
            "{e:?}"
        );
        // Downward: the clearing account may go negative, but not past the range.
        let e = s.apply(topup("t3", &wallet(1), 11)).await.unwrap_err();
        assert!(
            matches!(&e, MovementError::BalanceOverflow { account_id } if account_id.as_str() == CLEARING),
            "{e:?}"
        );
        // Nothing of either moved; what fits still moves.
        assert_eq!(
            (balance(s, &wallet(0)).await, balance(s, CLEARING).await),
            (near, -near)
        );
        assert_eq!(balance(s, SECOND).await, 0);
        s.apply(topup("t4", &wallet(1), 10)).await.unwrap();
        assert_eq!(balance(s, CLEARING).await, -near - 10);
        assert_sound(s).await;
    }
);

on_both!(idempotency_replays_and_refuses_reuse, |db: Db| async move {
    let s = &db.store;
    accounts(s, 1).await;
    s.apply(topup("t1", &wallet(0), 5_000)).await.unwrap();
    let rec = |hash: &str| IdempotencyRecord {
        scope: "merchant:mch_1".into(),
        key: "key-1".into(),
        request_hash: hash.into(),
        response_status: 201,
        response_body: "{\"id\":\"pay_1\"}".into(),
    };
    let mut m = pay("pay_1", &wallet(0), "c1", 1_000, 10_000);
    m.idempotency = Some(rec("h1"));
    assert!(matches!(
        s.apply(m.clone()).await.unwrap(),
        Applied::Done { .. }
    ));
    let before = fingerprint(&db).await;
    // Same key, same request: the stored response, nothing executed again.
    assert_eq!(
        s.apply(m.clone()).await.unwrap(),
        Applied::Replayed {
            status: 201,
            body: "{\"id\":\"pay_1\"}".into()
        }
    );
    // Same key, different request.
    let mut other = pay("pay_2", &wallet(0), "c2", 2_000, 10_000);
    other.idempotency = Some(rec("h2"));
    assert!(matches!(
        s.apply(other).await.unwrap_err(),
        MovementError::IdempotencyKeyReused { .. }
    ));
    // The same key in another scope is another key.
    let mut scoped = pay("pay_3", &wallet(0), "c3", 100, 10_000);
    scoped.idempotency = Some(IdempotencyRecord {
        scope: "merchant:mch_2".into(),
        ..rec("h3")
    });
    assert!(matches!(
        s.apply(scoped).await.unwrap(),
        Applied::Done { .. }
    ));
    let after = fingerprint(&db).await;
    assert_ne!(after, before);
    assert_eq!(balance(s, &wallet(0)).await, 3_900);
    assert_eq!(
        s.idempotency("merchant:mch_1", "key-1")
            .await
            .unwrap()
            .unwrap()
            .request_hash,
        "h1"
    );
    assert_eq!(s.purge_idempotency(t(0)).await.unwrap(), 0);
    assert_eq!(s.purge_idempotency(t(100)).await.unwrap(), 2);
    assert!(
        s.idempotency("merchant:mch_1", "key-1")
            .await
            .unwrap()
            .is_none()
    );
});

on_both!(
    concurrent_same_idempotency_key_executes_once,
    |db: Db| async move {
        let s = db.store.clone();
        accounts(&s, 1).await;
        s.apply(topup("t1", &wallet(0), 100_000)).await.unwrap();
        let mut m = pay("pay_1", &wallet(0), "c1", 1_000, 1_000_000);
        m.idempotency = Some(IdempotencyRecord {
            scope: "merchant:mch_1".into(),
            key: "same".into(),
            request_hash: "h".into(),
            response_status: 201,
            response_body: "{}".into(),
        });
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (s, m) = (s.clone(), m.clone());
                tokio::spawn(async move { s.apply(m).await })
            })
            .collect();
        let mut done = 0;
        let mut replayed = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                Applied::Done { .. } => done += 1,
                Applied::Replayed { .. } => replayed += 1,
            }
        }
        assert_eq!((done, replayed), (1, 31));
        assert_eq!(balance(&s, &wallet(0)).await, 99_000);
    }
);

on_both!(outbox_is_ordered_and_marked_once, |db: Db| async move {
    let s = &db.store;
    accounts(s, 1).await;
    s.apply(topup("t1", &wallet(0), 10_000)).await.unwrap();
    for i in 0..5 {
        s.apply(pay(
            &format!("pay_{i}"),
            &wallet(0),
            &format!("c{i}"),
            100,
            100_000,
        ))
        .await
        .unwrap();
    }
    let pending = s.outbox_pending(10).await.unwrap();
    let ids: Vec<&str> = pending.iter().map(|e| e.subject_id.as_str()).collect();
    assert_eq!(ids, ["pay_0", "pay_1", "pay_2", "pay_3", "pay_4"]);
    assert!(pending.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(pending[0].payload["amount_minor"], 100);
    assert!(s.outbox_mark_delivered(pending[0].seq, t(5)).await.unwrap());
    assert!(!s.outbox_mark_delivered(pending[0].seq, t(6)).await.unwrap());
    assert_eq!(s.outbox_pending(10).await.unwrap().len(), 4);
});

on_both!(
    audit_chain_verifies_and_names_the_first_tampered_row,
    |db: Db| async move {
        let s = &db.store;
        accounts(s, 1).await;
        s.apply(topup("t1", &wallet(0), 10_000)).await.unwrap();
        for i in 0..4 {
            s.apply(pay(
                &format!("pay_{i}"),
                &wallet(0),
                &format!("c{i}"),
                100,
                100_000,
            ))
            .await
            .unwrap();
        }
        assert!(matches!(
            s.verify_audit().await.unwrap(),
            AuditVerdict::Intact { rows: 5, .. }
        ));
        let rows = s.audit_rows(0, 100).await.unwrap();
        assert_eq!(rows.len(), 5);
        assert!(rows.windows(2).all(|w| w[1].prev_hash == w[0].hash));
        // Append-only: the database itself refuses updates and deletes.
        assert!(
            db.raw_err("UPDATE audit_log SET details = '{}' WHERE seq = 3")
                .await
                .contains("append-only")
        );
        assert!(
            db.raw_err("DELETE FROM ledger_entries")
                .await
                .contains("append-only")
        );
        assert!(
            db.raw_err("UPDATE postings SET kind = 'x'")
                .await
                .contains("append-only")
        );
        // Someone with DDL rights tampers anyway: the walk names row 3.
        match &db.at {
            Where::Sqlite(_) => db.raw("DROP TRIGGER audit_log_no_update").await,
            Where::Postgres { .. } => {
                db.raw("DROP TRIGGER audit_log_no_update ON audit_log")
                    .await
            }
        };
        db.raw("UPDATE audit_log SET details = '{\"amount_minor\":1}' WHERE seq = 3")
            .await;
        match s.verify_audit().await.unwrap() {
            AuditVerdict::Broken { seq, .. } => assert_eq!(seq, 3),
            v => panic!("tampering not detected: {v:?}"),
        }
    }
);

on_both!(
    records_are_written_once_and_read_back,
    |db: Db| async move {
        let s = &db.store;
        let m = Merchant {
            id: "mch_1".into(),
            name: "OLD STREET NOODLES".into(),
            city: "SHANGHAI".into(),
            country: "CN".into(),
            mcc: "5812".into(),
            currency: Currency::CNY,
            category: "small_personal".into(),
            name_local: Some("老街面馆".into()),
            owner_ref: None,
            created_at: t(1),
        };
        s.insert(Record::Merchant(m.clone())).await.unwrap();
        assert!(matches!(
            s.insert(Record::Merchant(m.clone())).await,
            Err(StoreError::AlreadyExists(_))
        ));
        assert_eq!(s.merchant("mch_1").await.unwrap(), Some(m));
        let c = Customer {
            id: "cus_1".into(),
            account_class: "II".into(),
            level_a_cap: Some(2_000_000),
            created_at: t(1),
        };
        s.insert(Record::Customer(c.clone())).await.unwrap();
        assert_eq!(s.customer("cus_1").await.unwrap(), Some(c));
        let d = Device {
            id: "dev_1".into(),
            customer_id: "cus_1".into(),
            kid: "devkey23".into(),
            public_key: "pk".into(),
            status: qrgate_core::state::CredentialStatus::Active,
            created_at: t(2),
            enrolled_by: Some("key_c".into()),
            biometric_at: None,
        };
        s.insert(Record::Device(d.clone())).await.unwrap();
        // A key id is enrolled once across all devices.
        let d2 = Device {
            id: "dev_2".into(),
            ..d.clone()
        };
        assert!(matches!(
            s.insert(Record::Device(d2)).await,
            Err(StoreError::AlreadyExists(_))
        ));
        assert_eq!(s.device("dev_1").await.unwrap(), Some(d.clone()));
        assert_eq!(s.devices_of("cus_1").await.unwrap(), vec![d]);
        let k = ApiKey {
            id: "key_1".into(),
            key_hash: "abc".into(),
            role: "merchant".into(),
            subject_id: Some("mch_1".into()),
            created_at: t(3),
            revoked_at: None,
        };
        s.insert(Record::ApiKey(k.clone())).await.unwrap();
        assert_eq!(s.api_key_by_hash("abc").await.unwrap(), Some(k));
        let audit = || AuditEntry {
            action: "api_key.revoked".into(),
            subject: "key_1".into(),
            details: serde_json::json!({}),
        };
        let rows = |v: AuditVerdict| match v {
            AuditVerdict::Intact { rows, .. } => rows,
            broken => panic!("{broken:?}"),
        };
        let before = rows(s.verify_audit().await.unwrap());
        assert!(s.revoke_api_key("key_1", t(4), audit()).await.unwrap());
        assert!(!s.revoke_api_key("key_1", t(5), audit()).await.unwrap());
        assert_eq!(
            rows(s.verify_audit().await.unwrap()),
            before + 1,
            "one audit row, for the revocation that happened"
        );
        assert_eq!(
            s.api_key_by_hash("abc").await.unwrap().unwrap().revoked_at,
            Some(t(4))
        );
        let sc = StaticCode {
            id: "sqr_1".into(),
            merchant_id: "mch_1".into(),
            payload: "000201".into(),
            created_at: t(5),
            revoked_at: None,
        };
        s.insert(Record::StaticCode(sc.clone())).await.unwrap();
        assert_eq!(s.static_code("sqr_1").await.unwrap(), Some(sc));
        // A movement that names the static code is written only while the
        // code is not revoked (the check is inside the write).
        let guarded = || {
            let mut m = Movement::new(t(4));
            m.live_static_code = Some("sqr_1".into());
            m
        };
        s.apply(guarded()).await.unwrap();
        let revoke = CredentialChange::StaticCodeRevoke {
            id: "sqr_1".into(),
            merchant_id: "mch_1".into(),
        };
        let audit = AuditEntry {
            action: "static_code.revoked".into(),
            subject: "sqr_1".into(),
            details: json!({}),
        };
        assert!(s.change_credential(revoke, t(4), audit).await.unwrap());
        assert!(matches!(
            s.apply(guarded()).await.unwrap_err(),
            MovementError::CodeRevoked { .. }
        ));
        let ic = IssuedCode {
            code: "771234".into(),
            customer_id: "cus_1".into(),
            device_id: None,
            expires_at: t(60_000),
            created_at: t(5),
        };
        s.insert(Record::IssuedCode(ic.clone())).await.unwrap();
        assert_eq!(s.issued_code("771234").await.unwrap(), Some(ic));
        let w = WebhookEndpoint {
            id: "we_1".into(),
            merchant_id: "mch_1".into(),
            url: "http://127.0.0.1:9/hook".into(),
            secret: "s".into(),
            created_at: t(6),
            disabled_at: None,
            previous_secret: None,
            previous_until: None,
        };
        s.insert(Record::WebhookEndpoint(w.clone())).await.unwrap();
        assert_eq!(s.webhook_endpoints("mch_1").await.unwrap(), vec![w]);
        assert!(s.merchant("mch_2").await.unwrap().is_none());
        // An issued numeric code is purged once it has expired, not before.
        assert_eq!(s.purge_codes(t(59_999)).await.unwrap(), 0);
        assert!(s.issued_code("771234").await.unwrap().is_some());
        assert_eq!(s.purge_codes(t(60_001)).await.unwrap(), 1);
        assert_eq!(s.issued_code("771234").await.unwrap(), None);
    }
);

on_both!(
    orders_move_with_their_payment_and_expire,
    |db: Db| async move {
        let s = &db.store;
        accounts(s, 1).await;
        s.insert(Record::Merchant(Merchant {
            id: "mch_1".into(),
            name: "M".into(),
            city: "C".into(),
            country: "CN".into(),
            mcc: "5812".into(),
            currency: Currency::CNY,
            category: "regular".into(),
            name_local: None,
            owner_ref: None,
            created_at: t(0),
        }))
        .await
        .unwrap();
        let order = |id: &str, no: &str, expires: i64| Order {
            id: id.into(),
            merchant_id: "mch_1".into(),
            amount_minor: 500,
            currency: Currency::CNY,
            reference: "T1".into(),
            out_trade_no: Some(no.into()),
            status: "open".into(),
            payload: "000201".into(),
            payment_id: None,
            expires_at: t(expires),
            created_at: t(1),
            updated_at: t(1),
        };
        s.insert(Record::Order(order("ord_1", "A1", 900_000)))
            .await
            .unwrap();
        s.insert(Record::Order(order("ord_2", "A2", 10)))
            .await
            .unwrap();
        // out_trade_no is unique per merchant.
        assert!(matches!(
            s.insert(Record::Order(order("ord_3", "A1", 10))).await,
            Err(StoreError::AlreadyExists(_))
        ));
        s.apply(topup("t1", &wallet(0), 5_000)).await.unwrap();
        let mut m = pay("pay_1", &wallet(0), "ord_1", 500, 100_000);
        m.order = Some(OrderTransition {
            id: "ord_1".into(),
            from: "open".into(),
            to: "paid".into(),
            payment_id: Some("pay_1".into()),
        });
        s.apply(m).await.unwrap();
        let o = s.order("ord_1").await.unwrap().unwrap();
        assert_eq!(
            (o.status.as_str(), o.payment_id.as_deref()),
            ("paid", Some("pay_1"))
        );
        // Paying it again fails on the order's state (and changes nothing).
        let before = fingerprint(&db).await;
        let mut again = pay("pay_2", &wallet(0), "other", 500, 100_000);
        again.order = Some(OrderTransition {
            id: "ord_1".into(),
            from: "open".into(),
            to: "paid".into(),
            payment_id: Some("pay_2".into()),
        });
        assert!(
            matches!(s.apply(again).await.unwrap_err(), MovementError::OrderStateConflict { ref actual, .. } if actual == "paid")
        );
        assert_eq!(fingerprint(&db).await, before);
        let due = s.orders_due(t(100), 10).await.unwrap();
        assert_eq!(
            due.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
            ["ord_2"]
        );
        let mut exp = Movement::new(t(100));
        exp.order = Some(OrderTransition {
            id: "ord_2".into(),
            from: "open".into(),
            to: "expired".into(),
            payment_id: None,
        });
        s.apply(exp).await.unwrap();
        assert!(s.orders_due(t(100), 10).await.unwrap().is_empty());
    }
);

on_both!(
    payments_page_newest_first_with_a_cursor,
    |db: Db| async move {
        let s = &db.store;
        for i in 0..7 {
            let mut p = payment_row(
                &format!("pay_{i}"),
                100 + i,
                if i % 2 == 0 { "succeeded" } else { "failed" },
            );
            p.created_at = t(i / 2); // ties on created_at are broken by id
            p.merchant_id = if i == 6 {
                "mch_2".into()
            } else {
                "mch_1".into()
            };
            let mut m = Movement::new(t(i));
            m.payment = Some(PaymentWrite::Insert(p));
            s.apply(m).await.unwrap();
        }
        let q = |after: Option<&str>| PaymentQuery {
            merchant_id: Some("mch_1".into()),
            limit: 4,
            starting_after: after.map(Into::into),
            ..Default::default()
        };
        let (page1, more) = s.list_payments(q(None)).await.unwrap();
        assert!(more);
        assert_eq!(
            page1.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            ["pay_5", "pay_4", "pay_3", "pay_2"]
        );
        let (page2, more) = s.list_payments(q(Some("pay_2"))).await.unwrap();
        assert!(!more);
        assert_eq!(
            page2.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            ["pay_1", "pay_0"]
        );
        let (failed, _) = s
            .list_payments(PaymentQuery {
                status: Some("failed".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(failed.len(), 3);
        assert!(s.list_payments(q(Some("pay_nope"))).await.is_err());
    }
);

on_both!(
    webhook_deliveries_fan_out_once_and_track_attempts,
    |db: Db| async move {
        let s = &db.store;
        accounts(s, 1).await;
        s.insert(Record::Merchant(Merchant {
            id: "mch_1".into(),
            name: "M".into(),
            city: "C".into(),
            country: "CN".into(),
            mcc: "5812".into(),
            currency: Currency::CNY,
            category: "regular".into(),
            name_local: None,
            owner_ref: None,
            created_at: t(0),
        }))
        .await
        .unwrap();
        for id in ["we_1", "we_2"] {
            s.insert(Record::WebhookEndpoint(WebhookEndpoint {
                id: id.into(),
                merchant_id: "mch_1".into(),
                url: "http://127.0.0.1:9/h".into(),
                secret: "s".into(),
                created_at: t(0),
                disabled_at: None,
                previous_secret: None,
                previous_until: None,
            }))
            .await
            .unwrap();
        }
        s.apply(topup("t1", &wallet(0), 1_000)).await.unwrap();
        s.apply(pay("pay_1", &wallet(0), "c1", 100, 10_000))
            .await
            .unwrap();
        let ev = s.outbox_pending(10).await.unwrap().remove(0);
        let d = |ep: &str| NewDelivery {
            endpoint_id: ep.into(),
            merchant_id: "mch_1".into(),
            event_id: ev.event_id.clone(),
            event_type: ev.event_type.clone(),
            body: "{}".into(),
        };
        assert_eq!(
            s.fan_out(vec![(ev.seq, vec![d("we_1"), d("we_2")])], t(10))
                .await
                .unwrap(),
            1
        );
        // Handed over once: the event leaves the outbox, a second fan-out changes nothing.
        assert!(s.outbox_pending(10).await.unwrap().is_empty());
        assert_eq!(
            s.fan_out(vec![(ev.seq, vec![d("we_1")])], t(11))
                .await
                .unwrap(),
            0
        );
        let due = s.deliveries_due(t(10), 10, 10).await.unwrap();
        assert_eq!(due.len(), 2);
        assert!(s.deliveries_due(t(9), 10, 10).await.unwrap().is_empty());
        let id = due[0].id;
        // Two claimants of one attempt (two nodes): one wins.
        let seen = due[0].next_attempt_at;
        assert!(s.claim_delivery(id, seen, t(40)).await.unwrap());
        assert!(!s.claim_delivery(id, seen, t(41)).await.unwrap());
        // Claimed: not due again until the claim runs out.
        assert_eq!(s.deliveries_due(t(12), 10, 10).await.unwrap().len(), 1);
        assert_eq!(s.deliveries_due(t(40), 10, 10).await.unwrap().len(), 2);
        let fail = AttemptResult {
            id,
            claimed_until: t(40),
            at: t(12),
            status_code: Some(500),
            error: Some("HTTP 500".into()),
            status: qrgate_core::state::DeliveryStatus::Pending,
            next_attempt_at: t(10_012),
        };
        // A claimant whose claim is not the current one records nothing.
        let stale = AttemptResult {
            claimed_until: t(41),
            ..fail.clone()
        };
        assert!(!s.record_attempt(stale).await.unwrap());
        assert!(s.record_attempt(fail).await.unwrap());
        assert_eq!(s.deliveries_due(t(12), 10, 10).await.unwrap().len(), 1);
        assert!(s.claim_delivery(id, t(10_012), t(10_042)).await.unwrap());
        let ok = AttemptResult {
            id,
            claimed_until: t(10_042),
            at: t(10_013),
            status_code: Some(200),
            error: None,
            status: qrgate_core::state::DeliveryStatus::Delivered,
            next_attempt_at: t(10_013),
        };
        assert!(s.record_attempt(ok.clone()).await.unwrap());
        assert!(
            !s.record_attempt(ok).await.unwrap(),
            "a delivered delivery takes no more attempts"
        );
        let got = s.delivery(id).await.unwrap().unwrap();
        assert_eq!(
            (
                got.status.as_str(),
                got.attempts,
                got.last_status_code,
                got.delivered_at
            ),
            ("delivered", 2, Some(200), Some(t(10_013)))
        );
        // Redelivery on request.
        assert!(s.retry_delivery(id, t(20_000)).await.unwrap());
        assert_eq!(
            s.delivery(id).await.unwrap().unwrap().status,
            qrgate_core::state::DeliveryStatus::Pending
        );
        assert_eq!(
            s.deliveries_of(&got.endpoint_id, 10).await.unwrap().len(),
            1
        );
        // The other endpoint's delivery waits while it is disabled, and is
        // sent again once it is enabled.
        let other = due[1].endpoint_id.clone();
        let change = |c: EndpointChange| {
            let audit = AuditEntry {
                action: "webhook_endpoint.changed".into(),
                subject: other.clone(),
                details: json!({}),
            };
            async move { s.change_endpoint(c, t(20_001), audit).await }
        };
        let who = |id: &str| (id.to_owned(), "mch_1".to_owned());
        let (id2, m) = who(&other);
        let disable = EndpointChange::Disable {
            id: id2.clone(),
            merchant_id: m.clone(),
        };
        assert!(change(disable.clone()).await.unwrap());
        assert!(!change(disable).await.unwrap(), "already disabled");
        assert!(
            s.deliveries_due(t(20_000), 10, 10)
                .await
                .unwrap()
                .iter()
                .all(|d| d.endpoint_id != other)
        );
        let enable = EndpointChange::Enable {
            id: id2.clone(),
            merchant_id: m.clone(),
        };
        assert!(change(enable).await.unwrap());
        assert!(
            s.deliveries_due(t(20_000), 10, 10)
                .await
                .unwrap()
                .iter()
                .any(|d| d.endpoint_id == other)
        );
        // Another merchant cannot change it.
        let foreign = EndpointChange::Disable {
            id: id2.clone(),
            merchant_id: "mch_2".into(),
        };
        assert!(!change(foreign).await.unwrap());
        // A rotation keeps the old secret beside the new one.
        let rotate = EndpointChange::RotateSecret {
            id: id2.clone(),
            merchant_id: m.clone(),
            secret: "s2".into(),
            previous_until: t(99_000),
        };
        assert!(change(rotate).await.unwrap());
        let eps = s.webhook_endpoints("mch_1").await.unwrap();
        let ep = eps.iter().find(|e| e.id == other).unwrap();
        assert_eq!(
            (
                ep.secret.as_str(),
                ep.previous_secret.as_deref(),
                ep.previous_until
            ),
            ("s2", Some("s"), Some(t(99_000)))
        );
        // Deleted: not listed, not sent to, its pending delivery failed.
        let delete = EndpointChange::Delete {
            id: id2.clone(),
            merchant_id: m.clone(),
        };
        assert!(change(delete.clone()).await.unwrap());
        assert!(!change(delete).await.unwrap(), "already deleted");
        assert!(
            s.webhook_endpoints("mch_1")
                .await
                .unwrap()
                .iter()
                .all(|e| e.id != other)
        );
        let left = s.deliveries_of(&other, 10).await.unwrap();
        assert_eq!(
            (left[0].status.as_str(), left[0].last_error.as_deref()),
            ("failed", Some("endpoint deleted"))
        );
        // At most `cap` live endpoints: one left (we_1), so a cap of 2 takes one more.
        let add = |id: &str| EndpointChange::Add {
            endpoint: WebhookEndpoint {
                id: id.into(),
                merchant_id: "mch_1".into(),
                url: "https://shop.example/h".into(),
                secret: "s".into(),
                created_at: t(20_002),
                disabled_at: None,
                previous_secret: None,
                previous_until: None,
            },
            cap: 2,
        };
        assert!(change(add("we_3")).await.unwrap());
        assert!(matches!(
            change(add("we_4")).await.unwrap_err(),
            MovementError::TooManyEndpoints { cap: 2 }
        ));
        assert_sound(s).await;
    }
);

on_both!(pin_failures_count_and_lock, |db: Db| async move {
    let s = &db.store;
    s.insert(Record::Customer(Customer {
        id: "cus_1".into(),
        account_class: "II".into(),
        level_a_cap: None,
        created_at: t(0),
    }))
    .await
    .unwrap();
    assert!(s.credentials("cus_1").await.unwrap().is_none());
    let audit = |what: &str| AuditEntry {
        action: what.into(),
        subject: "cus_1".into(),
        details: json!({}),
    };
    let set = |hash: &str| CredentialChange::PinSet {
        customer_id: "cus_1".into(),
        hash: hash.into(),
        salt: "bb".into(),
    };
    assert!(
        s.change_credential(set("aa"), t(1), audit("pin.set"))
            .await
            .unwrap()
    );
    // A PIN is set: a second first PIN is refused, whoever sends it.
    assert!(
        !s.change_credential(set("zz"), t(1), audit("pin.set"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.credentials("cus_1").await.unwrap().unwrap().pin_hash,
        "aa"
    );
    assert_eq!(
        s.pin_attempt("cus_1", t(2), 3, t(1_000)).await.unwrap(),
        Some((1, None))
    );
    assert_eq!(
        s.pin_attempt("cus_1", t(3), 3, t(1_000)).await.unwrap(),
        Some((2, None))
    );
    assert_eq!(
        s.pin_attempt("cus_1", t(4), 3, t(1_000)).await.unwrap(),
        Some((3, Some(t(1_000))))
    );
    // Locked: no attempt is taken, and nothing changes.
    assert_eq!(
        s.pin_attempt("cus_1", t(5), 3, t(1_005)).await.unwrap(),
        None
    );
    assert_eq!(s.credentials("cus_1").await.unwrap().unwrap().failures, 3);
    // The lock runs out: the count starts again.
    assert_eq!(
        s.pin_attempt("cus_1", t(1_000), 3, t(2_000)).await.unwrap(),
        Some((1, None))
    );
    s.pin_succeeded("cus_1", t(1_001)).await.unwrap();
    let got = s.credentials("cus_1").await.unwrap().unwrap();
    assert_eq!((got.failures, got.locked_until), (0, None));
    // A change needs the hash that was proven, and keeps a lock in force.
    s.pin_attempt("cus_1", t(1_006), 1, t(2_000)).await.unwrap();
    let replace = |expected: &str, hash: &str| CredentialChange::PinReplace {
        customer_id: "cus_1".into(),
        expected: expected.into(),
        hash: hash.into(),
        salt: "bb".into(),
    };
    assert!(
        !s.change_credential(replace("xx", "cc"), t(1_007), audit("pin.changed"))
            .await
            .unwrap()
    );
    assert!(
        s.change_credential(replace("aa", "cc"), t(1_007), audit("pin.changed"))
            .await
            .unwrap()
    );
    let got = s.credentials("cus_1").await.unwrap().unwrap();
    assert_eq!(
        (got.pin_hash.as_str(), got.failures, got.locked_until),
        ("cc", 1, Some(t(2_000)))
    );
    // An operator reset leaves no PIN (and the lock); then a first PIN may be set again.
    let reset = CredentialChange::PinReset {
        customer_id: "cus_1".into(),
    };
    assert!(
        s.change_credential(reset.clone(), t(1_008), audit("pin.reset"))
            .await
            .unwrap()
    );
    assert!(
        !s.change_credential(reset, t(1_008), audit("pin.reset"))
            .await
            .unwrap()
    );
    let got = s.credentials("cus_1").await.unwrap().unwrap();
    assert!(!got.has_pin());
    assert_eq!(got.locked_until, Some(t(2_000)));
    assert!(
        s.change_credential(set("dd"), t(1_009), audit("pin.set"))
            .await
            .unwrap()
    );
    let got = s.credentials("cus_1").await.unwrap().unwrap();
    assert_eq!(
        (got.pin_hash.as_str(), got.locked_until),
        ("dd", Some(t(2_000)))
    );
    // A refund gives back one attempt, and lifts the lock only when told
    // (the refunded attempt set it); it never goes below 0.
    s.pin_refund("cus_1", t(1_010), false).await.unwrap();
    let got = s.credentials("cus_1").await.unwrap().unwrap();
    assert_eq!((got.failures, got.locked_until), (0, Some(t(2_000))));
    s.pin_refund("cus_1", t(1_011), false).await.unwrap();
    assert_eq!(s.credentials("cus_1").await.unwrap().unwrap().failures, 0);
    for at in [2_000, 2_001, 2_002] {
        s.pin_attempt("cus_1", t(at), 3, t(9_000)).await.unwrap();
    }
    s.pin_refund("cus_1", t(2_003), true).await.unwrap();
    let got = s.credentials("cus_1").await.unwrap().unwrap();
    assert_eq!((got.failures, got.locked_until), (2, None));
    // Every change that happened is in the audit chain.
    let actions: Vec<String> = s
        .audit_rows(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert_eq!(actions, ["pin.set", "pin.changed", "pin.reset", "pin.set"]);
});

// ---------- concurrency ----------

on_both!(
    sixty_four_spends_of_one_code_succeed_once,
    |db: Db| async move {
        let s = db.store.clone();
        accounts(&s, 1).await;
        s.apply(topup("t1", &wallet(0), 1_000_000)).await.unwrap();
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.apply(pay(
                        &format!("pay_{i}"),
                        &wallet(0),
                        "the-one-code",
                        100,
                        1_000_000,
                    ))
                    .await
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(MovementError::CodeAlreadyUsed { .. }) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(ok, 1);
        assert_eq!(balance(&s, &wallet(0)).await, 1_000_000 - 100);
        assert_sound(&s).await;
    }
);

on_both!(
    sixty_four_payments_racing_a_daily_cap_never_pass_it,
    |db: Db| async move {
        let s = db.store.clone();
        accounts(&s, 1).await;
        s.apply(topup("t1", &wallet(0), 10_000_000)).await.unwrap();
        let cap = 100_000; // 1,000.00 CNY
        // Amounts 1,000.00 … 4,150.00 minor units; their sum is far above the cap.
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let s = s.clone();
                let amount = 1_000 + 50 * i;
                tokio::spawn(async move {
                    (
                        amount,
                        s.apply(pay(
                            &format!("pay_{i}"),
                            &wallet(0),
                            &format!("c{i}"),
                            amount,
                            cap,
                        ))
                        .await,
                    )
                })
            })
            .collect();
        let mut accepted = 0;
        for t in tasks {
            let (amount, r) = t.await.unwrap();
            match r {
                Ok(_) => accepted += amount,
                Err(MovementError::LimitExceeded { .. }) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(accepted <= cap);
        assert!(
            accepted > cap - 4_150,
            "the cap should be nearly used: {accepted}"
        );
        assert_eq!(
            s.counter(&CounterKey::stored("daily:acc_wallet_0:2026-11-25".into()))
                .await
                .unwrap()
                .0,
            accepted
        );
        assert_eq!(balance(&s, MERCHANT).await, accepted);
        assert_sound(&s).await;
    }
);

on_both!(
    thirty_two_parallel_refunds_never_exceed_the_capture,
    |db: Db| async move {
        let s = db.store.clone();
        accounts(&s, 1).await;
        s.apply(topup("t1", &wallet(0), 100_000)).await.unwrap();
        s.apply(pay("pay_1", &wallet(0), "c1", 10_000, 1_000_000))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.apply(refund("pay_1", &format!("r{i}"), &wallet(0), 700, 10_000))
                        .await
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(MovementError::LimitExceeded { .. }) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(ok, 14, "14 × 7.00 fits in 100.00, a 15th does not");
        let p = s.payment("pay_1").await.unwrap().unwrap();
        assert_eq!(p.refunded_minor, 9_800);
        assert_eq!(s.refunds("pay_1").await.unwrap().len(), 14);
        assert_eq!(balance(&s, MERCHANT).await, 200);
        assert_sound(&s).await;
    }
);

on_both!(
    audit_entries_of_concurrent_movements_are_chained_exactly_once,
    |db: Db| async move {
        let s = db.store.clone();
        accounts(&s, 1).await;
        s.apply(topup("t1", &wallet(0), 1_000_000)).await.unwrap();
        let payers = spawn_payments(&s, 40, 100, 10_000_000);
        // Two chainers (two gateways) racing the payments and each other.
        let chainers: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move {
                    let mut n = 0;
                    for _ in 0..30 {
                        n += s.chain_audit().await.unwrap();
                        tokio::task::yield_now().await;
                    }
                    n
                })
            })
            .collect();
        for p in payers {
            p.await.unwrap().unwrap();
        }
        let mut chained_by_chainers = 0;
        for c in chainers {
            chained_by_chainers += c.await.unwrap();
        }
        let log = s.audit_rows(0, 1000).await.unwrap();
        assert_eq!(
            log.len(),
            41,
            "each entry chained once: the top-up and 40 payments"
        );
        let mut subjects: Vec<&str> = log.iter().map(|r| r.subject.as_str()).collect();
        subjects.sort_unstable();
        subjects.dedup();
        assert_eq!(subjects.len(), 41, "no entry chained twice");
        assert!(log.iter().enumerate().all(|(i, r)| r.seq == i as i64 + 1));
        match s.verify_audit().await.unwrap() {
            AuditVerdict::Intact { rows, .. } => assert_eq!(rows, 41),
            other => panic!("{other:?}"),
        }
        if matches!(s, AnyStore::Sqlite(_)) {
            assert_eq!(chained_by_chainers, 0, "SQLite chains inline");
        }
        assert_eq!(s.chain_audit().await.unwrap(), 0, "nothing left queued");
        assert_sound(&s).await;
    }
);

on_both!(
    audit_details_are_chained_byte_for_byte,
    |db: Db| async move {
        let s = db.store.clone();
        accounts(&s, 1).await;
        let tricky = json!({ "note": "quote \" backslash \\ newline \n tab \t \u{1} ü 中文 😀", "n": [1, -2.5e3] });
        let mut m = topup("t1", &wallet(0), 100);
        m.audit.as_mut().unwrap().details = tricky.clone();
        s.apply(m).await.unwrap();
        s.chain_audit().await.unwrap();
        let log = s.audit_rows(0, 10).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].details, tricky);
        assert!(matches!(
            s.verify_audit().await.unwrap(),
            AuditVerdict::Intact { rows: 1, .. }
        ));
    }
);

on_both!(
    concurrent_debits_never_take_a_wallet_below_zero,
    |db: Db| async move {
        let s = db.store.clone();
        accounts(&s, 1).await;
        s.apply(topup("t1", &wallet(0), 5_000)).await.unwrap();
        let tasks = spawn_payments(&s, 48, 300, 1_000_000);
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(MovementError::InsufficientFunds { .. }) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(ok, 16);
        assert_eq!(balance(&s, &wallet(0)).await, 200);
        assert_sound(&s).await;
    }
);

on_both!(one_signer_whatever_the_race, |db: Db| async move {
    let s = &db.store;
    assert!(s.load_keys().await.unwrap().is_empty());
    let k = |kid: &str| StoredKey {
        kid: kid.into(),
        state: "active".into(),
        created_at: t(1),
        pkcs8: "AAAA".into(),
    };
    // Two nodes start at once on an empty keyring: one first key is written.
    let (a, b) = tokio::join!(
        s.change_keys(KeyChange::First(k("keyaaaaa")), t(1), None),
        s.change_keys(KeyChange::First(k("keybbbbb")), t(1), None),
    );
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|x| **x).count(), 1);
    assert_eq!(s.load_keys().await.unwrap().len(), 1);
    // Rotations, two at once: each leaves one active key.
    let (a, b) = tokio::join!(
        s.change_keys(KeyChange::Rotate(k("keyccccc")), t(2), None),
        s.change_keys(KeyChange::Rotate(k("keyddddd")), t(2), None),
    );
    assert!(a.is_ok() || b.is_ok(), "{a:?} {b:?}");
    let keys = s.load_keys().await.unwrap();
    assert_eq!(
        keys.iter().filter(|k| k.state == "active").count(),
        1,
        "{keys:?}"
    );
    // Retire: only a verify-only key, with its audit entry.
    let active = keys
        .iter()
        .find(|k| k.state == "active")
        .unwrap()
        .kid
        .clone();
    let old = keys
        .iter()
        .find(|k| k.state == "verify_only")
        .unwrap()
        .kid
        .clone();
    let audit = AuditEntry {
        action: "signing_key.retired".into(),
        subject: old.clone(),
        details: json!({}),
    };
    assert!(
        !s.change_keys(KeyChange::Retire { kid: active }, t(3), Some(audit.clone()))
            .await
            .unwrap()
    );
    assert!(
        s.change_keys(KeyChange::Retire { kid: old.clone() }, t(3), Some(audit))
            .await
            .unwrap()
    );
    let keys = s.load_keys().await.unwrap();
    assert_eq!(keys.iter().find(|k| k.kid == old).unwrap().state, "retired");
    s.ping().await.unwrap();
    assert_sound(s).await;
});

// ---------- seeded model simulation ----------

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
struct Model {
    balances: BTreeMap<String, i64>,
    daily: BTreeMap<String, i64>,
    used: BTreeSet<String>,
    payments: BTreeMap<String, (String, i64, i64)>, // id -> (wallet, amount, refunded)
    refund_nos: BTreeSet<(String, String)>,
    idem: BTreeMap<String, String>, // key -> request hash
}

async fn simulate(db: Db, seed: u64, steps: usize) {
    let s = &db.store;
    let wallets = 3;
    accounts(s, wallets).await;
    let mut m = Model::default();
    for id in [CLEARING.to_string(), MERCHANT.to_string()]
        .into_iter()
        .chain((0..wallets).map(wallet))
    {
        m.balances.insert(id, 0);
    }
    let cap = 20_000;
    let mut rng = Rng(seed);
    for step in 0..steps {
        let w = wallet(rng.below(wallets as u64) as usize);
        let before = fingerprint(&db).await;
        let (movement, expect_ok): (Movement, bool) = match rng.below(5) {
            0 => {
                let amt = 1 + rng.below(8_000) as i64;
                *m.balances.get_mut(&w).unwrap() += amt;
                *m.balances.get_mut(CLEARING).unwrap() -= amt;
                (topup(&format!("s{step}"), &w, amt), true)
            }
            1 | 2 => {
                // A payment, sometimes reusing a code, sometimes over cap or balance.
                let code = if rng.below(6) == 0 && !m.used.is_empty() {
                    m.used.iter().next().unwrap().clone()
                } else {
                    format!("c{step}")
                };
                let amt = 1 + rng.below(6_000) as i64;
                let id = format!("pay_{step}");
                let day = m.daily.get(&w).copied().unwrap_or(0);
                let ok = !m.used.contains(&code) && day + amt <= cap && m.balances[&w] >= amt;
                let mut mv = pay(&id, &w, &code, amt, cap);
                // Sometimes with an idempotency key, sometimes replaying an old one.
                if rng.below(3) == 0 {
                    let key = format!("k{}", rng.below(4));
                    let hash = format!("h{step}");
                    mv.idempotency = Some(IdempotencyRecord {
                        scope: "s".into(),
                        key: key.clone(),
                        request_hash: hash.clone(),
                        response_status: 201,
                        response_body: id.clone(),
                    });
                    if m.idem.contains_key(&key) {
                        // Reused with a different request: refused.
                        let r = s.apply(mv).await;
                        assert!(
                            matches!(r, Err(MovementError::IdempotencyKeyReused { .. })),
                            "step {step}: {r:?}"
                        );
                        assert_eq!(fingerprint(&db).await, before, "step {step}");
                        continue;
                    }
                    if ok {
                        m.idem.insert(key, hash);
                    }
                }
                if ok {
                    m.used.insert(code);
                    *m.daily.entry(w.clone()).or_default() += amt;
                    *m.balances.get_mut(&w).unwrap() -= amt;
                    *m.balances.get_mut(MERCHANT).unwrap() += amt;
                    m.payments.insert(id, (w.clone(), amt, 0));
                }
                (mv, ok)
            }
            3 if !m.payments.is_empty() => {
                let idx = rng.below(m.payments.len() as u64) as usize;
                let (pid, (pw, amt, refunded)) = m
                    .payments
                    .iter()
                    .nth(idx)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .unwrap();
                let r_amt = 1 + rng.below(amt as u64) as i64;
                let no = format!("r{}", rng.below(3));
                let ok = refunded + r_amt <= amt
                    && !m.refund_nos.contains(&(pid.clone(), no.clone()))
                    && m.balances[MERCHANT] >= r_amt;
                if ok {
                    m.refund_nos.insert((pid.clone(), no.clone()));
                    m.payments.get_mut(&pid).unwrap().2 += r_amt;
                    *m.balances.get_mut(MERCHANT).unwrap() -= r_amt;
                    *m.balances.get_mut(&pw).unwrap() += r_amt;
                }
                (refund(&pid, &no, &pw, r_amt, amt), ok)
            }
            _ => {
                // A failure injected mid-movement: unbalanced posting after a burn and a counter.
                let mut mv = pay(&format!("pay_bad{step}"), &w, &format!("cb{step}"), 10, cap);
                mv.posting.as_mut().unwrap().entries[1].amount_minor = 11;
                (mv, false)
            }
        };
        let r = s.apply(movement).await;
        assert_eq!(r.is_ok(), expect_ok, "step {step}: {r:?}");
        if !expect_ok {
            assert_eq!(
                fingerprint(&db).await,
                before,
                "refused step {step} changed something"
            );
        }
        for (id, bal) in &m.balances {
            assert_eq!(balance(s, id).await, *bal, "step {step}, account {id}");
        }
        let check = s.ledger_check().await.unwrap();
        assert!(check.is_sound(), "step {step}: {check:?}");
    }
    assert!(matches!(
        s.verify_audit().await.unwrap(),
        AuditVerdict::Intact { .. }
    ));
}

on_both!(seeded_model_simulation, |db: Db| async move {
    simulate(db, 0x5eed_0001, 250).await;
});

// ---------- the caller's key and the block list, checked with the writes ----------

// A movement that names the caller's key and its parties is written only
// while the key is unrevoked and neither party is blocked; otherwise it is
// refused and writes nothing. On PostgreSQL a passing one is still one
// statement.
on_both!(
    movements_check_the_key_and_the_block_list,
    |db: Db| async move {
        let s = &db.store;
        accounts(s, 1).await;
        s.apply(topup("t1", &wallet(0), 5_000)).await.unwrap();
        for (id, hash) in [("key_live", "h_live"), ("key_gone", "h_gone")] {
            s.insert(Record::ApiKey(ApiKey {
                id: id.into(),
                key_hash: hash.into(),
                role: "merchant".into(),
                subject_id: Some("mch_1".into()),
                created_at: t(0),
                revoked_at: None,
            }))
            .await
            .unwrap();
        }
        let audit = |action: &str, subject: &str| AuditEntry {
            action: action.into(),
            subject: subject.into(),
            details: json!({}),
        };
        assert!(
            s.revoke_api_key("key_gone", t(1), audit("api_key.revoked", "key_gone"))
                .await
                .unwrap()
        );
        for (id, subject) in [
            ("blk_1", "cus_bad"),
            ("blk_2", "cus_bad"),
            ("blk_3", "mch_bad"),
        ] {
            s.insert(Record::Block(Block {
                id: id.into(),
                subject_id: subject.into(),
                reason: "test".into(),
                created_at: t(1),
                lifted_at: None,
            }))
            .await
            .unwrap();
        }
        assert_eq!(
            s.blocked_subjects(10).await.unwrap(),
            vec!["cus_bad".to_string(), "mch_bad".to_string()],
            "each blocked party once, in id order"
        );
        assert_eq!(
            s.blocked_subjects(1).await.unwrap(),
            vec!["cus_bad".to_string()]
        );

        let guarded = |id: &str, code: &str, key: &str, parties: [&str; 2]| {
            let mut m = pay(id, &wallet(0), code, 100, 100_000);
            m.live_api_key = Some(key.into());
            m.unblocked = parties.iter().map(|p| p.to_string()).collect();
            m
        };
        let paths = |db: &Db| match &db.store {
            AnyStore::Postgres(pg) => Some(pg.movement_paths()),
            AnyStore::Sqlite(_) => None,
        };
        let at_start = paths(&db);
        let done = s
            .apply(guarded("pay_1", "c1", "key_live", ["mch_1", "cus_1"]))
            .await
            .unwrap();
        assert!(matches!(done, Applied::Done { .. }), "{done:?}");
        if let (Some(before), Some(after)) = (at_start, paths(&db)) {
            assert_eq!(after.one_statement, before.one_statement + 1, "{after:?}");
            assert_eq!(after.step_by_step, before.step_by_step);
        }

        let before = fingerprint(&db).await;
        let e = s
            .apply(guarded("pay_2", "c2", "key_gone", ["mch_1", "cus_1"]))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, MovementError::ApiKeyRevoked { key_id } if key_id == "key_gone"),
            "{e:?}"
        );
        let e = s
            .apply(guarded("pay_3", "c3", "key_unknown", ["mch_1", "cus_1"]))
            .await
            .unwrap_err();
        assert!(matches!(e, MovementError::ApiKeyRevoked { .. }), "{e:?}");
        let e = s
            .apply(guarded("pay_4", "c4", "key_live", ["mch_1", "cus_bad"]))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, MovementError::PartyBlocked { subject_id } if subject_id == "cus_bad"),
            "{e:?}"
        );
        let e = s
            .apply(guarded("pay_5", "c5", "key_live", ["mch_bad", "cus_1"]))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, MovementError::PartyBlocked { subject_id } if subject_id == "mch_bad"),
            "{e:?}"
        );
        assert_eq!(
            fingerprint(&db).await,
            before,
            "a refused movement wrote something"
        );

        // Lifted (one of two blocks on cus_bad is not enough): paid again.
        assert!(
            s.lift_block("blk_1", t(3), audit("block.lifted", "blk_1"))
                .await
                .unwrap()
        );
        let e = s
            .apply(guarded("pay_6", "c6", "key_live", ["mch_1", "cus_bad"]))
            .await
            .unwrap_err();
        assert!(matches!(e, MovementError::PartyBlocked { .. }), "{e:?}");
        assert!(
            s.lift_block("blk_2", t(3), audit("block.lifted", "blk_2"))
                .await
                .unwrap()
        );
        assert_eq!(
            s.blocked_subjects(10).await.unwrap(),
            vec!["mch_bad".to_string()]
        );
        s.apply(guarded("pay_7", "c7", "key_live", ["mch_1", "cus_bad"]))
            .await
            .unwrap();
        assert_eq!(balance(s, &wallet(0)).await, 4_800);
        assert_sound(s).await;
    }
);

// ---------- PostgreSQL's one-statement movements ----------

/// Movements that pass are written as one statement; one that a guard
/// refuses is written by nothing, and the step-by-step transaction names the
/// refusal (or replays the stored response).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_movements_are_one_statement_unless_refused() {
    let Some(db) = open_pg().await else { return };
    let AnyStore::Postgres(pg) = &db.store else {
        unreachable!()
    };
    let s = &db.store;
    let paths = |one_statement, step_by_step| MovementPaths {
        one_statement,
        step_by_step,
    };
    accounts(s, 1).await;
    s.apply(topup("t1", &wallet(0), 5_000)).await.unwrap();
    let mut m = pay("pay_1", &wallet(0), "c1", 1_000, 1_500);
    m.idempotency = Some(IdempotencyRecord {
        scope: "merchant:mch_1".into(),
        key: "key-1".into(),
        request_hash: "h1".into(),
        response_status: 201,
        response_body: "{\"id\":\"pay_1\"}".into(),
    });
    assert_eq!(
        s.apply(m.clone()).await.unwrap(),
        Applied::Done { audit_seq: None }
    );
    s.apply(refund("pay_1", "r1", &wallet(0), 400, 1_000))
        .await
        .unwrap();
    s.apply(topup("t2", MERCHANT, 1_000)).await.unwrap();
    assert_eq!(pg.movement_paths(), paths(4, 0));
    assert_eq!(balance(s, &wallet(0)).await, 4_400);
    assert_eq!(balance(s, MERCHANT).await, 1_600);
    assert_eq!(
        s.payment("pay_1").await.unwrap().unwrap().refunded_minor,
        400
    );

    let before = fingerprint(&db).await;
    // The same request again: replayed.
    assert_eq!(
        s.apply(m).await.unwrap(),
        Applied::Replayed {
            status: 201,
            body: "{\"id\":\"pay_1\"}".into()
        }
    );
    // Over the daily cap (1,000 + 600 > 1,500): the counter's guard.
    let e = s
        .apply(pay("pay_2", &wallet(0), "c2", 600, 1_500))
        .await
        .unwrap_err();
    assert!(
        matches!(e, MovementError::LimitExceeded { current: 1_000, .. }),
        "{e:?}"
    );
    // More than the wallet holds: the account's guard, after the counter passed.
    let e = s
        .apply(pay("pay_3", &wallet(0), "c3", 4_500, 100_000))
        .await
        .unwrap_err();
    assert!(
        matches!(e, MovementError::InsufficientFunds { .. }),
        "{e:?}"
    );
    // A burnt code: the burn's guard.
    let e = s
        .apply(pay("pay_4", &wallet(0), "c1", 10, 100_000))
        .await
        .unwrap_err();
    assert!(matches!(e, MovementError::CodeAlreadyUsed { .. }), "{e:?}");
    // A second refund past what was captured: the payment's guard.
    let e = s
        .apply(refund("pay_1", "r2", &wallet(0), 700, 10_000))
        .await
        .unwrap_err();
    assert!(
        matches!(e, MovementError::RefundExceedsCaptured { .. }),
        "{e:?}"
    );
    assert_eq!(pg.movement_paths(), paths(4, 5));
    assert_eq!(
        fingerprint(&db).await,
        before,
        "a refused statement wrote something"
    );
    assert_sound(s).await;
    db.drop_schema().await;
}

// ---------- schema parity ----------

#[tokio::test]
async fn sqlite_and_postgres_schemas_match() {
    let sqlite = open_sqlite().await;
    let Some(pg) = open_pg().await else { return };
    let Where::Sqlite(path) = &sqlite.at else {
        unreachable!()
    };
    let Where::Postgres { url, schema } = &pg.at else {
        unreachable!()
    };

    let norm = |t: &str| match t.to_ascii_lowercase().as_str() {
        "bigint" | "integer" | "int8" | "int4" => "integer".to_string(),
        "text" => "text".to_string(),
        "boolean" | "bool" => "boolean".to_string(),
        other => other.to_string(),
    };
    type Schema = (
        BTreeSet<(String, String, String, bool)>,
        BTreeSet<(String, bool, String)>,
        BTreeSet<String>,
        BTreeSet<String>,
    );

    let c = rusqlite::Connection::open(path).unwrap();
    let strings = |sql: &str, arg: &str| -> Vec<String> {
        let mut st = c.prepare(sql).unwrap();
        st.query_map([arg], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let mut lite: Schema = Default::default();
    let tables = strings(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND ?1 = ?1",
        "",
    );
    for tname in &tables {
        let mut st = c
            .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1)")
            .unwrap();
        let cols = st
            .query_map([tname], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .unwrap()
            .map(Result::unwrap);
        for (name, ty, notnull, pk) in cols {
            lite.0
                .insert((tname.clone(), name, norm(&ty), notnull == 1 || pk > 0));
        }
        let mut st = c
            .prepare("SELECT name, \"unique\", origin FROM pragma_index_list(?1)")
            .unwrap();
        let indexes: Vec<(String, i64, String)> = st
            .query_map([tname], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (iname, unique, origin) in indexes {
            let cols = strings(
                "SELECT name FROM pragma_index_info(?1) ORDER BY seqno",
                &iname,
            );
            lite.1.insert((tname.clone(), unique == 1, cols.join(",")));
            if origin == "c" {
                lite.2.insert(iname);
            }
        }
        // A rowid primary key has no index entry: count it as a unique index.
        let pk = strings(
            "SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk",
            tname,
        );
        if !pk.is_empty() {
            lite.1.insert((tname.clone(), true, pk.join(",")));
        }
    }
    for n in strings(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND ?1 = ?1",
        "",
    ) {
        lite.3.insert(n);
    }

    let mut p = sqlx::PgConnection::connect(url).await.unwrap();
    let mut post: Schema = Default::default();
    for r in sqlx::query("SELECT table_name::text, column_name::text, data_type::text, is_nullable::text FROM information_schema.columns WHERE table_schema = $1").bind(schema).fetch_all(&mut p).await.unwrap() {
        post.0.insert((r.get(0), r.get(1), norm(&r.get::<String, _>(2)), r.get::<String, _>(3) == "NO"));
    }
    for r in sqlx::query(
        "SELECT t.relname::text, i.relname::text, ix.indisunique, ix.indisprimary, \
         array_to_string(ARRAY(SELECT a.attname::text FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, n) \
           JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n), ',') \
         FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_namespace ns ON ns.oid = t.relnamespace WHERE ns.nspname = $1",
    )
    .bind(schema)
    .fetch_all(&mut p)
    .await
    .unwrap()
    {
        let (tname, iname, unique, primary): (String, String, bool, bool) = (r.get(0), r.get(1), r.get(2), r.get(3));
        post.1.insert((tname.clone(), unique, r.get(4)));
        let constraint_made = primary || iname.ends_with("_key");
        if !constraint_made {
            post.2.insert(iname);
        }
    }
    for n in sqlx::query_scalar::<_, String>("SELECT DISTINCT trigger_name::text FROM information_schema.triggers WHERE trigger_schema = $1").bind(schema).fetch_all(&mut p).await.unwrap() {
        post.3.insert(n);
    }
    assert_eq!(
        lite.0, post.0,
        "tables, columns, types or nullability differ"
    );
    assert_eq!(lite.1, post.1, "unique constraints or indexes differ");
    assert_eq!(lite.2, post.2, "named indexes differ");
    assert_eq!(lite.3, post.3, "triggers differ");
    assert!(lite.0.len() > 50);
    pg.drop_schema().await;
}

// ---------- crash safety ----------

const CRASH_ENV: &str = "QRGATE_CRASH_TARGET";

/// The body of the child process that the crash tests kill with SIGKILL:
/// eight concurrent streams of top-ups, payments and refunds, forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "run as a child process by the crash_safety tests"]
async fn crash_child() {
    let Ok(target) = std::env::var(CRASH_ENV) else {
        return;
    };
    let round: usize = std::env::var("QRGATE_CRASH_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let store = if let Some(path) = target.strip_prefix("sqlite:") {
        AnyStore::open(&format!("sqlite://{path}"), t(0))
            .await
            .unwrap()
            .0
    } else {
        let (url, schema) = target
            .strip_prefix("postgres:")
            .unwrap()
            .split_once('|')
            .unwrap();
        AnyStore::Postgres(PgStore::open(url, Some(schema), 16, t(0)).await.unwrap().0)
    };
    let streams: Vec<_> = (0..8)
        .map(|k| {
            let s = store.clone();
            tokio::spawn(async move {
                let w = wallet(k % 4);
                for i in 0.. {
                    let id = format!("r{round}_s{k}_{i}");
                    s.apply(topup(&id, &w, 1_000)).await.unwrap();
                    s.apply(pay(&format!("pay_{id}"), &w, &id, 700, i64::MAX / 4))
                        .await
                        .unwrap();
                    s.apply(refund(&format!("pay_{id}"), "r", &w, 200, 700))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for s in streams {
        s.await.unwrap();
    }
}

async fn crash_rounds(db: Db, rounds: u64) {
    accounts(&db.store, 4).await;
    let target = match &db.at {
        Where::Sqlite(p) => format!("sqlite:{}", p.display()),
        Where::Postgres { url, schema } => format!("postgres:{url}|{schema}"),
    };
    let mut rng = Rng(0xc0ffee);
    let mut last_payments = 0;
    for round in 0..rounds {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--test-threads=1",
                "--quiet",
            ])
            .env(CRASH_ENV, &target)
            .env("QRGATE_CRASH_ROUND", round.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(400 + rng.below(600))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let (store, _) = db.reopen().await;
        let check = store.ledger_check().await.unwrap();
        assert!(check.is_sound(), "round {round}: {check:?}");
        assert!(
            matches!(
                store.verify_audit().await.unwrap(),
                AuditVerdict::Intact { .. }
            ),
            "round {round}"
        );
        // Nothing half-written: every payment has its posting, event, burned
        // code and audit row; every refund its posting and its share of refunded_minor.
        for (what, sql) in [
            (
                "payment without posting",
                "SELECT CAST(COUNT(*) AS BIGINT) FROM payments p WHERE NOT EXISTS (SELECT 1 FROM postings x WHERE x.payment_id = p.id AND x.kind = 'payment')",
            ),
            (
                "posting without payment",
                "SELECT CAST(COUNT(*) AS BIGINT) FROM postings x WHERE x.kind = 'payment' AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.id = x.payment_id)",
            ),
            (
                "payment without event",
                "SELECT CAST(COUNT(*) AS BIGINT) FROM payments p WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.subject_id = p.id)",
            ),
            (
                "payment without burned code",
                "SELECT CAST(COUNT(*) AS BIGINT) FROM payments p WHERE NOT EXISTS (SELECT 1 FROM used_codes u WHERE u.payment_id = p.id)",
            ),
            (
                "payment without audit row",
                "SELECT CAST(COUNT(*) AS BIGINT) FROM payments p WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.subject = p.id) AND NOT EXISTS (SELECT 1 FROM audit_queue q WHERE q.subject = p.id)",
            ),
            (
                "refund without posting",
                "SELECT CAST(COUNT(*) AS BIGINT) FROM refunds r WHERE NOT EXISTS (SELECT 1 FROM postings x WHERE x.id = 'pst_' || r.id)",
            ),
            (
                "refunded_minor off",
                "SELECT CAST(COUNT(*) AS BIGINT) FROM payments p WHERE p.refunded_minor <> (SELECT COALESCE(SUM(r.amount_minor), 0) FROM refunds r WHERE r.payment_id = p.id)",
            ),
        ] {
            assert_eq!(db.scalar(sql).await, 0, "round {round}: {what}");
        }
        let payments = db
            .scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM payments")
            .await;
        let counted = db.scalar("SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM counters WHERE counter_key LIKE 'daily:%'").await;
        assert_eq!(
            counted,
            payments * 700,
            "round {round}: daily counters disagree with payments"
        );
        assert!(payments >= last_payments);
        last_payments = payments;
    }
    assert!(last_payments > 0, "the child never got a payment through");
    eprintln!("crash safety: {rounds} SIGKILLs, {last_payments} payments survived intact");
}

on_both!(crash_safety_under_sigkill, |db: Db| async move {
    crash_rounds(db, 5).await;
});

/// The SQLite writer's counters: one transaction per write when writes come
/// one at a time, a savepoint pass for a batch with a refusal, and fewer
/// transactions than writes when many arrive at once (group commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_group_commit_counters() {
    let db = open_sqlite().await;
    let s = &db.store;
    let stats = || match s.write_stats() {
        WriteStats::Sqlite(g) => g,
        other => panic!("a SQLite store reported {other:?}"),
    };
    let start = stats();
    accounts(s, 1).await;
    s.apply(topup("t1", &wallet(0), 1_000_000)).await.unwrap();
    s.apply(pay("pay_x", &wallet(0), "used", 100, 1_000_000))
        .await
        .unwrap();
    let one_by_one = stats();
    let sequential = one_by_one.writes - start.writes;
    assert!(sequential >= 2, "{one_by_one:?}");
    assert_eq!(
        one_by_one.transactions - start.transactions,
        sequential,
        "writes one at a time commit one transaction each"
    );
    assert_eq!(one_by_one.savepoint_passes, start.savepoint_passes);

    let e = s
        .apply(pay("pay_y", &wallet(0), "used", 100, 1_000_000))
        .await
        .unwrap_err();
    assert!(matches!(e, MovementError::CodeAlreadyUsed { .. }), "{e}");
    let refused = stats();
    assert_eq!(refused.savepoint_passes, one_by_one.savepoint_passes + 1);
    assert_eq!(refused.writes, one_by_one.writes + 1);

    let n = 200;
    for h in spawn_payments(s, n, 10, 1_000_000) {
        h.await.unwrap().unwrap();
    }
    let burst = stats();
    let writes = burst.writes - refused.writes;
    let transactions = burst.transactions - refused.transactions;
    assert_eq!(writes, n as u64);
    assert!(
        transactions < writes,
        "{n} concurrent payments took {transactions} transactions"
    );
    assert!(burst.commit_micros > start.commit_micros);
    assert_sound(s).await;
}

/// A posting that names a payment, moving `amount` from the merchant back
/// to `wallet`, with no change to the payment: what a lost guard would let
/// through.
fn bare_payback(id: &str, kind: &str, payment_id: &str, wallet: &str, amount: i64) -> Movement {
    let mut m = Movement::new(t(5));
    m.posting = Some(Posting {
        id: format!("pst_{id}"),
        kind: kind.into(),
        payment_id: Some(payment_id.into()),
        entries: vec![entry(MERCHANT, -amount), entry(wallet, amount)],
    });
    m
}

on_both!(
    the_ledger_check_lists_payments_whose_postings_disagree,
    |db: Db| async move {
        let s = &db.store;
        accounts(s, 1).await;
        s.apply(topup("t1", &wallet(0), 10_000)).await.unwrap();
        for (id, code) in [("pay_a", "ca"), ("pay_b", "cb"), ("pay_c", "cc")] {
            s.apply(pay(id, &wallet(0), code, 2_000, 100_000))
                .await
                .unwrap();
        }
        s.apply(refund("pay_b", "r1", &wallet(0), 500, 2_000))
            .await
            .unwrap();
        assert_sound(s).await;

        // Money back twice: a reversal posting on a payment that stays
        // succeeded, and a refund posting with no refund recorded. The
        // ledger still balances; the payments do not agree with it.
        s.apply(bare_payback("x1", "reversal", "pay_a", &wallet(0), 2_000))
            .await
            .unwrap();
        s.apply(bare_payback("x2", "refund", "pay_b", &wallet(0), 1_500))
            .await
            .unwrap();
        s.apply(bare_payback("x3", "payment", "pay_gone", &wallet(0), 1))
            .await
            .unwrap();
        let c = s.ledger_check().await.unwrap();
        assert!(c.totals.iter().all(|(_, t)| *t == 0), "{c:?}");
        assert!(c.mismatched_accounts.is_empty() && c.negative_accounts.is_empty());
        assert!(!c.is_sound());
        let ids: Vec<&str> = c
            .disagreeing_payments
            .iter()
            .map(|d| d.payment_id.as_str())
            .collect();
        assert_eq!(ids, ["pay_a", "pay_b", "pay_gone"], "{c:?}");
        let a = &c.disagreeing_payments[0];
        assert_eq!(
            (a.status.as_str(), a.captured_minor, a.reversed_minor),
            ("succeeded", 2_000, 2_000)
        );
        assert_eq!(a.problems, ["succeeded but 2000 reversed"]);
        let b = &c.disagreeing_payments[1];
        assert_eq!(
            (b.refunded_minor, b.refunds_minor, b.refunded_posted_minor),
            (500, 500, 2_000)
        );
        assert!(
            b.problems[0].contains("refund postings 2000"),
            "{:?}",
            b.problems
        );
        assert_eq!(c.disagreeing_payments[2].status, "missing");
    }
);

on_both!(
    a_cancel_and_a_refund_of_one_payment_exclude_each_other,
    |db: Db| async move {
        let s = &db.store;
        accounts(s, 1).await;
        s.apply(topup("t1", &wallet(0), 10_000)).await.unwrap();
        s.apply(pay("pay_1", &wallet(0), "c1", 2_000, 100_000))
            .await
            .unwrap();
        s.apply(pay("pay_2", &wallet(0), "c2", 2_000, 100_000))
            .await
            .unwrap();
        let cancel = |id: &str| {
            let mut m = bare_payback(&format!("cancel_{id}"), "reversal", id, &wallet(0), 2_000);
            m.payment = Some(PaymentWrite::Transition {
                id: id.into(),
                from: PaymentStatus::Succeeded,
                to: PaymentStatus::Canceled,
                details: None,
            });
            m
        };
        // Refunded in part: no cancel.
        s.apply(refund("pay_1", "r1", &wallet(0), 100, 2_000))
            .await
            .unwrap();
        let before = fingerprint(&db).await;
        let e = s.apply(cancel("pay_1")).await.unwrap_err();
        assert!(
            matches!(
                e,
                MovementError::PaymentHasRefunds {
                    refunded_minor: 100,
                    ..
                }
            ),
            "{e}"
        );
        // Canceled: no refund.
        s.apply(cancel("pay_2")).await.unwrap();
        let mid = fingerprint(&db).await;
        let e = s
            .apply(refund("pay_2", "r1", &wallet(0), 100, 2_000))
            .await
            .unwrap_err();
        assert!(
            matches!(e, MovementError::PaymentStateConflict { ref actual, .. } if *actual == PaymentStatus::Canceled),
            "{e}"
        );
        // A second cancel is a state conflict, not a duplicate posting id.
        let e = s.apply(cancel("pay_2")).await.unwrap_err();
        assert!(
            matches!(e, MovementError::PaymentStateConflict { ref actual, .. } if *actual == PaymentStatus::Canceled),
            "{e}"
        );
        assert_eq!(fingerprint(&db).await, mid);
        assert_ne!(before, mid);
        assert_sound(s).await;
    }
);
