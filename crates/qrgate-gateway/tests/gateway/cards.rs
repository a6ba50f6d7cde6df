//! Cards through the sandbox processor.

use super::*;

on_both!(
    card_payments_come_from_the_card_and_refunds_go_back_to_it,
    |w: World| async move {
        let credit = w.link(&w.consumer, "4242424242424242").await;
        let cards = w.gw.list_cards(&w.consumer).await.unwrap();
        let shown = serde_json::to_string(&cards).unwrap();
        assert!(shown.contains("\"last4\":\"4242\"") && shown.contains("\"credit\""));
        assert!(!shown.contains("424242424242"), "no card number: {shown}");
        // Someone else's card is not a funding source of this payer.
        let other = w.new_consumer().await;
        assert_eq!(
            w.pay_order(&w.merchant, &other, "1.00", Some(&credit))
                .await
                .unwrap_err()
                .code,
            "not_found"
        );
        let wallet_before = w.balance().await;
        let p = w
            .pay_order(&w.merchant, &w.consumer, "120.00", Some(&credit))
            .await
            .unwrap();
        assert_eq!(p["status"], "succeeded");
        assert_eq!(
            (
                p["funding"]["type"].as_str(),
                p["funding"]["last4"].as_str()
            ),
            (Some("card"), Some("4242"))
        );
        assert_eq!(w.balance().await, wallet_before, "the wallet is untouched");
        assert_eq!(w.clearing().await, -12_000);
        let id = p["id"].as_str().unwrap();
        let auth = w.sandbox.authorization(id).unwrap();
        assert!(!auth.reversed);
        w.gw.refund(&w.merchant, id, "20.00", "R1", None)
            .await
            .unwrap();
        // A retry with the same refund number returns nothing twice.
        w.gw.refund(&w.merchant, id, "20.00", "R1", None)
            .await
            .unwrap();
        assert_eq!(w.sandbox.authorization(id).unwrap().refunded_minor, 2_000);
        assert_eq!(w.clearing().await, -10_000);
        // The card's daily level-C cap is its own: the wallet still has 1,000.00.
        w.charge(&w.device_token(), "1000.00").await.unwrap();
        w.assert_books_sound().await;
    }
);

on_both!(
    declines_and_processor_timeouts_move_no_money,
    |w: World| async move {
        let before = w.clearing().await;
        let nofunds = w.link(&w.consumer, "4000000000009995").await;
        let e = w
            .pay_order(&w.merchant, &w.consumer, "10.00", Some(&nofunds))
            .await
            .unwrap_err();
        assert_eq!(e.code, "card_declined_insufficient_funds");
        let failed =
            w.gw.get_payment(&w.consumer, e.payment_id.as_deref().unwrap())
                .await
                .unwrap();
        assert_eq!(failed.status, "failed");
        let fraud = w.link(&w.consumer, "4100000000000019").await;
        let e = w
            .pay_order(&w.merchant, &w.consumer, "10.00", Some(&fraud))
            .await
            .unwrap_err();
        assert_eq!(e.code, "card_declined_suspected_fraud");
        // The answer is lost; a query finds the authorization approved.
        let lost = w.link(&w.consumer, "4000000000000119").await;
        let p = w
            .pay_order(&w.merchant, &w.consumer, "10.00", Some(&lost))
            .await
            .unwrap();
        assert_eq!(p["status"], "succeeded");
        // Nothing answers: reversed, refused, recorded.
        let silent = w.link(&w.consumer, "4000000000000127").await;
        let e = w
            .pay_order(&w.merchant, &w.consumer, "10.00", Some(&silent))
            .await
            .unwrap_err();
        assert_eq!(e.code, "card_processor_timeout");
        let id = e.payment_id.unwrap();
        assert!(w.sandbox.authorization(&id).unwrap().reversed);
        let recorded = w.gw.store().payment(&id).await.unwrap().unwrap();
        assert!(recorded.details.funding.card().unwrap().reversed);
        assert_eq!(
            w.gw.get_payment(&w.consumer, &id).await.unwrap().status,
            "failed"
        );
        // Slow but within the deadline: approved.
        let slow = w.link(&w.consumer, "4000000000000259").await;
        w.pay_order(&w.merchant, &w.consumer, "10.00", Some(&slow))
            .await
            .unwrap();
        assert_eq!(
            w.clearing().await,
            before - 2_000,
            "only the two approvals moved money"
        );
        w.assert_books_sound().await;
        let bad = NewCard {
            number: "4242424242424241".into(),
            exp_month: 12,
            exp_year: 2030,
        };
        assert_eq!(
            w.gw.link_card(&w.consumer, bad).await.unwrap_err().code,
            "card_number_invalid"
        );
        let expired = NewCard {
            number: "4242424242424242".into(),
            exp_month: 10,
            exp_year: 2026,
        };
        assert_eq!(
            w.gw.link_card(&w.consumer, expired).await.unwrap_err().code,
            "card_expired"
        );
    }
);
