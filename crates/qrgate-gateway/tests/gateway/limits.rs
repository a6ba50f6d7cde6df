//! The caps: level C by day, class I for life, separate or nested levels,
//! small-merchant credit caps, and the optional limits.

use super::*;

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
                    status: Some("failed".into()),
                    ..Default::default()
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
            w.gw.create_merchant(&admin(), NewMerchant::regular("GROCER", "SHANGHAI", "5411"))
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
