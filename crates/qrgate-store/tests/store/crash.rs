//! Crash safety: a child killed mid-movement leaves whole movements or none.

use super::simulation::Rng;
use super::*;

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
                    s.apply(refund(&format!("pay_{id}"), "r", &w, 200, (700, 0)))
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
                "crash::crash_child",
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
