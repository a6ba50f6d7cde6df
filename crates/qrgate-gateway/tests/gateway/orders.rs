//! Orders, refunds, cancels and tenancy.

use super::*;

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
        let body =
            w.gw.pay_scanned(&w.consumer, &order.payload, None, None, None)
                .await
                .unwrap()
                .into_body();
        let waiting: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(waiting["status"], "requires_action", "{waiting}");
        w.clock.advance_seconds(301);
        assert_eq!(w.gw.expire_requires_action().await.unwrap(), 1);
        // The next attempt steps up again and is confirmed: it pays the
        // order and carries the order's number.
        let body =
            w.gw.pay_scanned(&w.consumer, &order.payload, None, None, None)
                .await
                .unwrap()
                .into_body();
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
        let paid: Value = serde_json::from_str(done.body()).unwrap();
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
        let body =
            w.gw.pay_scanned(&w.consumer, &order.payload, None, None, None)
                .await
                .unwrap()
                .into_body();
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
        let (s1, r1) = split(
            w.gw.refund(&w.merchant, id, "30.00", "R1", None)
                .await
                .unwrap(),
        );
        assert_eq!(s1, Some(Fresh::Created));
        // A retry with the same refund number refunds only once.
        let (s2, r2) = split(
            w.gw.refund(&w.merchant, id, "30.00", "R1", None)
                .await
                .unwrap(),
        );
        assert_eq!(
            (
                s2,
                serde_json::from_str::<Value>(&r2).unwrap()["id"].clone()
            ),
            (
                Some(Fresh::Done),
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
    let body =
        w.gw.cancel(&w.merchant, &id, None)
            .await
            .unwrap()
            .into_body();
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
            qrgate_gateway::payments::ListQuery::default(),
        )
        .await
        .unwrap();
    assert!(list.data.is_empty());
});

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
        assert_eq!(again.fresh(), Some(Fresh::Done));
        assert_eq!(w.balance().await, "4985.00");
    }
);
