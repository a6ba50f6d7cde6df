//! Finding payments: by the merchant's own number, by time, by status; only
//! the caller's own; and bad filters refused.

use super::*;
use qrgate_gateway::payments::ListQuery;

on_both!(
    payments_are_found_by_number_time_and_status,
    |w: World| async move {
        let numbered = |n: &str| Some(n.to_owned());
        let first =
            w.gw.charge(
                &w.merchant,
                &w.device_token(),
                "1.00",
                numbered("T-100"),
                None,
            )
            .await
            .unwrap()
            .into_body();
        let first: Value = serde_json::from_str(&first).unwrap();
        let between = w.clock.now();
        w.clock.advance_seconds(60);
        w.gw.charge(
            &w.merchant,
            &w.device_token(),
            "2.00",
            numbered("T-200"),
            None,
        )
        .await
        .unwrap();
        let list = |q: ListQuery| {
            let gw = &w.gw;
            let p = w.merchant.clone();
            async move { gw.list_payments(&p, q).await }
        };
        let amounts = |l: qrgate_gateway::payments::PaymentList| {
            l.data.iter().map(|p| p.amount.clone()).collect::<Vec<_>>()
        };

        let by_number = list(ListQuery {
            out_trade_no: numbered("T-100"),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(amounts(by_number.clone()), ["1.00"]);
        assert_eq!(by_number.data[0].id, first["id"].as_str().unwrap());
        // An order's number finds the payment that paid it.
        w.clock.advance_seconds(1);
        let order =
            w.gw.create_order(&w.merchant, "3.00", None, numbered("O-300"), None)
                .await
                .unwrap();
        let paid =
            w.gw.pay_scanned(&w.consumer, &order.payload, None, None, None)
                .await
                .unwrap()
                .into_body();
        let paid: Value = serde_json::from_str(&paid).unwrap();
        let by_order_number = list(ListQuery {
            out_trade_no: numbered("O-300"),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(by_order_number.data.len(), 1);
        assert_eq!(by_order_number.data[0].id, paid["id"].as_str().unwrap());
        // Another merchant's number is not found by this one.
        let none =
            w.gw.list_payments(
                &w.other_merchant,
                ListQuery {
                    out_trade_no: numbered("T-100"),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(none.data.is_empty());

        // Time: [gte, lt), newest first.
        let cut = Timestamp::from_unix_millis(between.unix_millis() + 30_000).to_rfc3339();
        let after = list(ListQuery {
            created_gte: Some(cut.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(amounts(after), ["3.00", "2.00"]);
        let before = list(ListQuery {
            created_lt: Some(cut),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(amounts(before), ["1.00"]);
        let all = list(ListQuery {
            created_gte: Some(START.into()),
            status: Some("succeeded".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(amounts(all), ["3.00", "2.00", "1.00"]);

        // Bad filters are refused, with what is wrong.
        for (q, says) in [
            (
                ListQuery {
                    created_gte: Some("yesterday".into()),
                    ..Default::default()
                },
                "created_gte must be an RFC 3339 time",
            ),
            (
                ListQuery {
                    created_gte: Some(START.into()),
                    created_lt: Some(START.into()),
                    ..Default::default()
                },
                "created_gte must be before created_lt",
            ),
            (
                ListQuery {
                    status: Some("paid".into()),
                    ..Default::default()
                },
                "is not a payment status",
            ),
            (
                ListQuery {
                    out_trade_no: Some("has space".into()),
                    ..Default::default()
                },
                "out_trade_no must be",
            ),
        ] {
            let e = list(q).await.unwrap_err();
            assert_eq!(e.code, "invalid_request");
            assert!(e.message.contains(says), "{}", e.message);
        }
    }
);

on_both!(a_merchant_catches_up_on_its_events, |w: World| async move {
    use qrgate_gateway::money::EventListQuery;
    let body =
        w.gw.charge(&w.merchant, &w.device_token(), "3.00", None, None)
            .await
            .unwrap()
            .into_body();
    let pay: Value = serde_json::from_str(&body).unwrap();
    let id = pay["id"].as_str().unwrap();
    w.clock.advance_seconds(5);
    w.gw.refund(&w.merchant, id, "1.00", "R1", None)
        .await
        .unwrap();
    let list = |p: Principal, q: EventListQuery| {
        let gw = &w.gw;
        async move { gw.list_events(&p, q).await }
    };
    let all = list(w.merchant.clone(), EventListQuery::default())
        .await
        .unwrap();
    let types: Vec<&str> = all.data.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["refund.succeeded", "payment.succeeded"],
        "newest first"
    );
    assert_eq!(all.data[1].data["payment"]["id"], id);
    assert_eq!(
        all.data[1].data["merchant_id"],
        w.merchant.subject.clone().unwrap()
    );
    // A page of one, then the next after it.
    let first = list(
        w.merchant.clone(),
        EventListQuery {
            limit: Some(1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(first.has_more);
    let next = list(
        w.merchant.clone(),
        EventListQuery {
            limit: Some(1),
            starting_after: Some(first.data[0].id.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (next.data[0].event_type.as_str(), next.has_more),
        ("payment.succeeded", false)
    );
    // By type and by time.
    let paid = list(
        w.merchant.clone(),
        EventListQuery {
            event_type: Some("payment.succeeded".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(paid.data.len(), 1);
    let later = list(
        w.merchant.clone(),
        EventListQuery {
            created_gte: Some(w.clock.now().to_rfc3339()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(later.data.len(), 1, "only the refund is that recent");
    // Another merchant sees none of them, nor may it page from one.
    let other = list(w.other_merchant.clone(), EventListQuery::default())
        .await
        .unwrap();
    assert!(other.data.is_empty());
    let e = list(
        w.other_merchant.clone(),
        EventListQuery {
            starting_after: Some(first.data[0].id.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "not_found");
    // Admins name the merchant; bad input is refused.
    let me = w.merchant.subject.clone();
    let by_admin = list(
        admin(),
        EventListQuery {
            merchant_id: me,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(by_admin, all);
    for q in [
        EventListQuery {
            limit: Some(0),
            ..Default::default()
        },
        EventListQuery {
            limit: Some(101),
            ..Default::default()
        },
        EventListQuery {
            created_lt: Some("yesterday".into()),
            ..Default::default()
        },
    ] {
        let e = list(w.merchant.clone(), q).await.unwrap_err();
        assert_eq!(e.code, "invalid_request");
    }
    assert_eq!(
        list(w.consumer.clone(), EventListQuery::default())
            .await
            .unwrap_err()
            .code,
        "forbidden"
    );
});
