//! Movements raced against each other, and SQLite's group commits.

use super::*;

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
                // As the gateway does: written only while the refunded
                // amount read is still so, read again when another refund
                // got there first.
                tokio::spawn(async move {
                    loop {
                        let before = s.payment("pay_1").await.unwrap().unwrap().refunded_minor;
                        let r = s
                            .apply(refund(
                                "pay_1",
                                &format!("r{i}"),
                                &wallet(0),
                                700,
                                (10_000, before),
                            ))
                            .await;
                        if !matches!(r, Err(MovementError::RefundedMeanwhile { .. })) {
                            return r;
                        }
                    }
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
