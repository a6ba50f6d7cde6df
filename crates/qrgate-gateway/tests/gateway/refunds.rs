//! Refunds the gateway starts on its own (a rule, not a merchant): the same
//! movement and guards as a merchant's refund. The races against merchant
//! refunds and cancels are in `races.rs`.

use super::*;
use qrgate_core::{Currency, Money};

on_both!(
    a_refund_by_rule_moves_money_back_once_within_the_caps,
    |w: World| async move {
        let wallet_before = w.balance().await;
        let p = w.charge(&w.device_token(), "15.00").await.unwrap();
        let pay = p["id"].as_str().unwrap();
        let cny = |minor| Money::from_minor(minor, Currency::CNY);

        // More than was captured: the refund cap refuses, nothing moves.
        let over =
            w.gw.refund_by_rule("QG-TEST-RULE", pay, cny(1_501), "cmp_1")
                .await
                .unwrap_err();
        assert_eq!(
            (over.code, over.rule.as_deref()),
            ("limit_exceeded", Some("BCP-REFUND-CAP"))
        );

        let first =
            w.gw.refund_by_rule("QG-TEST-RULE", pay, cny(1_000), "cmp_1")
                .await
                .unwrap();
        assert!(
            matches!(first, Reply::Fresh(Fresh::Created, _)),
            "{first:?}"
        );
        // The same number again: the refund made then, not a second one.
        let again =
            w.gw.refund_by_rule("QG-TEST-RULE", pay, cny(1_000), "cmp_1")
                .await
                .unwrap();
        assert!(matches!(again, Reply::Fresh(Fresh::Done, _)), "{again:?}");
        let refunds = w.gw.list_refunds(&w.merchant, pay).await.unwrap();
        assert_eq!(refunds.len(), 1);
        // Back to the wallet it came from; the books agree.
        let spent = minor_units(&wallet_before) - minor_units(&w.balance().await);
        assert_eq!(spent, 500);
        w.assert_books_sound().await;

        // The audit row names the rule, not a key.
        let rows = w.gw.store().audit_rows(0, 1000).await.unwrap();
        let row = rows
            .iter()
            .find(|r| r.action == "refund.succeeded")
            .expect("a refund.succeeded row");
        assert_eq!(row.details["by"], "QG-TEST-RULE");
        assert_eq!(row.details["payment_id"], pay);

        // Another currency, an unknown payment, a bad number: refused,
        // nothing moves.
        let usd = Money::from_minor(100, Currency::from_code("USD").unwrap());
        let e =
            w.gw.refund_by_rule("QG-TEST-RULE", pay, usd, "cmp_2")
                .await
                .unwrap_err();
        assert_eq!(e.code, "currency_mismatch");
        let e =
            w.gw.refund_by_rule("QG-TEST-RULE", "pay_nope", cny(100), "cmp_3")
                .await
                .unwrap_err();
        assert_eq!(e.code, "not_found");
        let e =
            w.gw.refund_by_rule("QG-TEST-RULE", pay, cny(100), "no spaces allowed")
                .await
                .unwrap_err();
        assert_eq!(e.code, "invalid_request", "{e:?}");
        let e =
            w.gw.refund_by_rule("QG-TEST-RULE", pay, cny(0), "cmp_4")
                .await
                .unwrap_err();
        assert_eq!(e.code, "amount_zero");
        // The gateway's numbers live apart from the merchant's: stored with
        // a prefix the merchant may not use.
        assert_eq!(refunds[0].out_refund_no, "qg_cmp_1");
        let e =
            w.gw.refund(&w.merchant, pay, "1.00", "qg_cmp_1", None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "invalid_request", "{e:?}");
        // The same number used by the merchant is another refund.
        w.gw.refund(&w.merchant, pay, "1.00", "cmp_1", None)
            .await
            .unwrap();
        assert_eq!(w.gw.list_refunds(&w.merchant, pay).await.unwrap().len(), 2);
        w.assert_books_sound().await;
    }
);
