//! Movements one at a time: round trips, refusals that change nothing, idempotency, the outbox, parties, keys, PINs.

use super::*;

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

    s.apply(refund("pay_1", "r1", &wallet(0), 1_000, (2_500, 0)))
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
        s.apply(refund("pay_1", "r1", &wallet(0), 1_001, (1_000, 0)))
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
            closed_until: None,
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
            fees: qrgate_core::fee::FeeSchedule::NONE,
            bank_account: None,
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
            suspended_at: None,
            reports_cleared_at: None,
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
            fees: qrgate_core::fee::FeeSchedule::NONE,
            bank_account: None,
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
            metadata: Default::default(),
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
            fees: qrgate_core::fee::FeeSchedule::NONE,
            bank_account: None,
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
            s.deliveries_of(&got.endpoint_id, (None, None), 10)
                .await
                .unwrap()
                .len(),
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
        let left = s.deliveries_of(&other, (None, None), 10).await.unwrap();
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
