//! Refund numbers and metadata: a merchant's `out_refund_no` is unique
//! across its payments and finds its refund; metadata given with an order,
//! a charge or a refund comes back in views, events and the trade
//! statement, and never to the payer. Both stores.

use qrgate_core::Metadata;
use qrgate_gateway::money::{EventListQuery, StatementKind};
use qrgate_gateway::refunds::RefundListQuery;

use super::*;

fn notes(json: Value) -> Metadata {
    serde_json::from_value(json).unwrap()
}

/// A charge of `amount` from the world's consumer; the payment id.
async fn paid(w: &World, p: &Principal, amount: &str, metadata: &Metadata) -> String {
    id_of(
        w.gw.charge_with_metadata(p, &w.device_token(), amount, None, metadata, None)
            .await
            .unwrap(),
    )
}

on_both!(
    refund_numbers_are_unique_per_merchant_and_find_their_refund,
    |w: World| async move {
        let none = Metadata::default();
        let a = paid(&w, &w.merchant, "30.00", &none).await;
        let b = paid(&w, &w.merchant, "20.00", &none).await;
        let why = notes(json!({ "reason": "cold soup" }));
        let first =
            w.gw.refund_with_metadata(&w.merchant, &a, "5.00", "R-1", &why, None)
                .await
                .unwrap();
        let (fresh, body) = split(first);
        assert_eq!(fresh, Some(Fresh::Created));
        let refund: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(refund["metadata"], json!({ "reason": "cold soup" }));

        // The same number on another payment of the merchant is refused,
        // and names the refund that has it; nothing moved.
        let taken =
            w.gw.refund(&w.merchant, &b, "5.00", "R-1", None)
                .await
                .err()
                .unwrap();
        assert_eq!(taken.code, "duplicate_out_refund_no");
        assert!(
            taken.message.contains(refund["id"].as_str().unwrap()),
            "{}",
            taken.message
        );
        let b_now = w.gw.get_payment(&w.merchant, &b).await.unwrap();
        assert_eq!(b_now.amount_refunded, "0.00");
        // A retry on its own payment is the refund made then.
        let again =
            w.gw.refund(&w.merchant, &a, "5.00", "R-1", None)
                .await
                .unwrap();
        let (fresh, body) = split(again);
        assert_eq!(fresh, Some(Fresh::Done));
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["id"],
            refund["id"]
        );
        // Another merchant's numbers are its own.
        let theirs = paid(&w, &w.other_merchant, "9.00", &none).await;
        w.gw.refund(&w.other_merchant, &theirs, "1.00", "R-1", None)
            .await
            .unwrap();

        // Found by number, by id, by time; only the caller's own.
        let find = |p: Principal, q: RefundListQuery| {
            let gw = &w.gw;
            async move { gw.list_all_refunds(&p, q).await }
        };
        let by_number = find(
            w.merchant.clone(),
            RefundListQuery {
                out_refund_no: Some("R-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(by_number.data.len(), 1);
        assert_eq!(by_number.data[0].id, refund["id"].as_str().unwrap());
        assert_eq!(by_number.data[0].payment_id, a);
        let id = refund["id"].as_str().unwrap();
        let one = w.gw.get_refund(&w.merchant, id).await.unwrap();
        assert_eq!(one.out_refund_no, "R-1");
        assert_eq!(
            w.gw.get_refund(&w.other_merchant, id)
                .await
                .err()
                .unwrap()
                .code,
            "not_found"
        );
        // The payer sees the refund of its payment, without the
        // merchant's fee and notes.
        let payer_view = w.gw.get_refund(&w.consumer, id).await.unwrap();
        assert_eq!((payer_view.fee_returned, payer_view.metadata), (None, None));
        w.clock.advance_seconds(60);
        let later = w.clock.now();
        w.gw.refund(&w.merchant, &b, "2.00", "R-2", None)
            .await
            .unwrap();
        let since = find(
            w.merchant.clone(),
            RefundListQuery {
                created_gte: Some(later.to_rfc3339()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            since
                .data
                .iter()
                .map(|r| r.out_refund_no.as_str())
                .collect::<Vec<_>>(),
            ["R-2"]
        );
        let page = find(
            w.merchant.clone(),
            RefundListQuery {
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(page.has_more);
        assert_eq!(page.data[0].out_refund_no, "R-2", "newest first");
        let rest = find(
            w.merchant.clone(),
            RefundListQuery {
                starting_after: Some(page.data[0].id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(rest.data.len(), 1);
        assert_eq!(rest.data[0].out_refund_no, "R-1");
        let mine_only = find(w.other_merchant.clone(), RefundListQuery::default())
            .await
            .unwrap();
        assert_eq!(mine_only.data.len(), 1);
        // Admins and auditors name a merchant, or see all.
        let all = find(admin(), RefundListQuery::default()).await.unwrap();
        assert_eq!(all.data.len(), 3);
        for (q, code) in [
            (
                RefundListQuery {
                    limit: Some(0),
                    ..Default::default()
                },
                "invalid_request",
            ),
            (
                RefundListQuery {
                    created_lt: Some("yesterday".into()),
                    ..Default::default()
                },
                "invalid_request",
            ),
            (
                RefundListQuery {
                    starting_after: Some(
                        mine_only.data[0].id.clone(), // another merchant's
                    ),
                    ..Default::default()
                },
                "not_found",
            ),
        ] {
            assert_eq!(find(w.merchant.clone(), q).await.err().unwrap().code, code);
        }
        assert_eq!(
            find(w.consumer.clone(), RefundListQuery::default())
                .await
                .err()
                .unwrap()
                .code,
            "forbidden"
        );
        let check = w.gw.ledger_check(&admin()).await.unwrap();
        assert!(check.is_sound(), "{check:?}");
    }
);

on_both!(
    one_refund_number_raced_on_two_payments_refunds_once,
    |w: World| async move {
        let none = Metadata::default();
        let a = paid(&w, &w.merchant, "10.00", &none).await;
        let b = paid(&w, &w.merchant, "10.00", &none).await;
        let (x, y) = tokio::join!(
            w.gw.refund(&w.merchant, &a, "4.00", "SAME", None),
            w.gw.refund(&w.merchant, &b, "4.00", "SAME", None),
        );
        let won = [&x, &y].iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "{x:?} {y:?}");
        let lost = [x, y].into_iter().find_map(Result::err).unwrap();
        assert_eq!(lost.code, "duplicate_out_refund_no");
        let mut refunded = 0;
        for id in [&a, &b] {
            let view = w.gw.get_payment(&w.merchant, id).await.unwrap();
            refunded += view
                .amount_refunded
                .replace('.', "")
                .parse::<i64>()
                .unwrap();
        }
        assert_eq!(refunded, 400, "refunded once");
        let check = w.gw.ledger_check(&admin()).await.unwrap();
        assert!(check.is_sound(), "{check:?}");
    }
);

on_both!(
    metadata_comes_back_in_views_events_and_statements,
    |w: World| async move {
        let till = notes(json!({ "till": "3", "cashier": "Li" }));
        let order =
            w.gw.create_order_with_metadata(&w.merchant, "8.00", None, None, None, &till)
                .await
                .unwrap();
        assert_eq!(order.metadata, till);
        let by_scan =
            w.gw.pay_scanned(&w.consumer, &order.payload, None, None, None)
                .await
                .unwrap()
                .into_body();
        let by_scan: Value = serde_json::from_str(&by_scan).unwrap();
        assert!(
            by_scan.get("metadata").is_none(),
            "the payer does not see the merchant's notes: {by_scan}"
        );
        let order_payment = by_scan["id"].as_str().unwrap().to_owned();
        let seen = w.gw.get_payment(&w.merchant, &order_payment).await.unwrap();
        assert_eq!(
            seen.metadata.as_ref(),
            Some(&till),
            "a payment of an order carries the order's notes"
        );
        let sku = notes(json!({ "sku": "=cmd|' /C calc'!A0" }));
        let charged = paid(&w, &w.merchant, "12.00", &sku).await;
        w.gw.refund_with_metadata(
            &w.merchant,
            &charged,
            "2.00",
            "RM-1",
            &notes(json!({ "why": "late" })),
            None,
        )
        .await
        .unwrap();
        let empty = w.gw.get_payment(&w.merchant, &charged).await.unwrap();
        assert_eq!(empty.metadata, Some(sku.clone()));

        // Events carry them, as webhooks do.
        let events =
            w.gw.list_events(&w.merchant, EventListQuery::default())
                .await
                .unwrap();
        let refund_event = events
            .data
            .iter()
            .find(|e| e.event_type == "refund.succeeded")
            .unwrap();
        assert_eq!(
            refund_event.data["refund"]["metadata"],
            json!({ "why": "late" }),
            "{}",
            refund_event.data
        );
        let paid_event = events
            .data
            .iter()
            .find(|e| {
                e.event_type == "payment.succeeded"
                    && e.data["payment"]["id"] == order_payment.as_str()
            })
            .unwrap();
        assert_eq!(
            paid_event.data["payment"]["metadata"],
            json!({ "cashier": "Li", "till": "3" })
        );

        // And the trade statement: the payment's on its rows, the
        // refund's on the refund's row; a value is never a formula.
        w.clock.advance_seconds(120);
        let day = qrgate_core::day::BusinessDay::of(w.clock.now(), 480).to_string();
        let (_, mut reader) =
            w.gw.statement(&w.merchant, None, &day, StatementKind::Trades)
                .await
                .unwrap();
        let mut body = String::new();
        while let Some(chunk) = reader.next_chunk(&w.gw).await.unwrap() {
            body.push_str(&chunk);
        }
        assert!(
            body.contains(r#","{""cashier"":""Li"",""till"":""3""}""#),
            "{body}"
        );
        assert!(body.contains(r#","{""why"":""late""}""#), "{body}");
        assert!(
            body.contains(r#""{""sku"":""=cmd|' /C calc'!A0""}""#),
            "JSON text starts with a brace, never a formula: {body}"
        );
    }
);
