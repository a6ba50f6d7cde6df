//! A merchant's money: the fee of each payment, the part each refund and
//! cancel gives back, and the balance read from the merchant's accounts;
//! on both stores, with the books checked after.

use super::*;

fn fee_of(view: &Value) -> i64 {
    minor_units(view["fee"].as_str().unwrap())
}

async fn charge(w: &World, amount: &str) -> Value {
    let body =
        w.gw.charge(&w.merchant, &w.device_token(), amount, None, None)
            .await
            .unwrap()
            .into_body();
    serde_json::from_str(&body).unwrap()
}

async fn refund(w: &World, pay: &str, amount: &str, no: &str) -> Value {
    let body =
        w.gw.refund(&w.merchant, pay, amount, no, None)
            .await
            .unwrap()
            .into_body();
    serde_json::from_str(&body).unwrap()
}

async fn pending(w: &World, p: &Principal) -> String {
    w.gw.balance(p, None).await.unwrap().balances[0]
        .pending
        .clone()
}

async fn assert_books(w: &World) {
    let check = w.gw.ledger_check(&admin()).await.unwrap();
    assert!(check.is_sound(), "{check:?}");
}

on_both!(
    fees_are_charged_and_given_back_in_proportion,
    |w: World| async move {
        let me = w.merchant.subject.clone().unwrap();
        let m = w.gw.get_merchant(&admin(), &me).await.unwrap();
        assert_eq!(
            m.fees.rate_bps, 60,
            "a regular merchant's default (QG-FEE-REGULAR)"
        );
        // 0.6% of 100.00 is 0.60.
        let pay = charge(&w, "100.00").await;
        assert_eq!(pay["fee"], "0.60");
        assert_eq!(pending(&w, &w.merchant).await, "99.40");
        let id = pay["id"].as_str().unwrap();
        // 33.33 back: the fee kept goes from 60 to 40 fen (0.6% of 66.67
        // is 40.002), so 20 fen come back.
        let r1 = refund(&w, id, "33.33", "R1").await;
        assert_eq!(r1["fee_returned"], "0.20");
        assert_eq!(pending(&w, &w.merchant).await, "66.27");
        // The rest: the whole fee is back, the merchant holds nothing.
        let r2 = refund(&w, id, "66.67", "R2").await;
        assert_eq!(r2["fee_returned"], "0.40");
        assert_eq!(pending(&w, &w.merchant).await, "0.00");
        // The payer never sees the merchant's fee.
        let seen = w.gw.get_payment(&w.consumer, id).await.unwrap();
        assert_eq!(seen.fee, None);
        let refunds = w.gw.list_refunds(&w.consumer, id).await.unwrap();
        assert!(refunds.iter().all(|r| r.fee_returned.is_none()));
        // A cancel gives back the whole fee.
        let pay = charge(&w, "12.30").await;
        assert_eq!(pay["fee"], "0.07");
        assert_eq!(pending(&w, &w.merchant).await, "12.23");
        w.gw.cancel(&w.merchant, pay["id"].as_str().unwrap(), None)
            .await
            .unwrap();
        assert_eq!(pending(&w, &w.merchant).await, "0.00");
        assert_books(&w).await;
    }
);

on_both!(
    a_merchant_s_own_schedule_and_minimum_apply,
    |w: World| async move {
        let m =
            w.gw.create_merchant(
                &admin(),
                NewMerchant {
                    mcc: "5499".into(),
                    category: "small_personal".into(),
                    owner_ref: Some("kyc-1".into()),
                    fee_minimum: Some("0.10".into()),
                    ..merchant_form("KIOSK")
                },
            )
            .await
            .unwrap();
        assert_eq!(m.fees.rate_bps, 38, "QG-FEE-SMALL-PERSONAL");
        assert_eq!(m.fees.minimum, "0.10");
        let kiosk = key_of(&w.gw, Role::Merchant, &m.id).await;
        // 0.38% of 5.00 is 1.9 fen: the minimum of 10 fen applies.
        let body =
            w.gw.charge(&kiosk, &w.device_token(), "5.00", None, None)
                .await
                .unwrap()
                .into_body();
        let pay: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(fee_of(&pay), 10);
        assert_eq!(pending(&w, &kiosk).await, "4.90");
        // Half back: the minimum still applies to what is kept.
        let id = pay["id"].as_str().unwrap();
        let body =
            w.gw.refund(&kiosk, id, "2.50", "R1", None)
                .await
                .unwrap()
                .into_body();
        let r: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(r["fee_returned"], "0.00");
        assert_eq!(pending(&w, &kiosk).await, "2.40");
        assert_books(&w).await;

        // Bad schedules are refused with a clear error.
        for (rate, min) in [
            (Some(10_001), None),
            (None, Some("-1")),
            (None, Some("0.001")),
        ] {
            let e =
                w.gw.create_merchant(
                    &admin(),
                    NewMerchant {
                        mcc: "5499".into(),
                        fee_rate_bps: rate,
                        fee_minimum: min.map(str::to_owned),
                        ..merchant_form("BAD")
                    },
                )
                .await
                .unwrap_err();
            assert_eq!(e.code, "invalid_request", "{rate:?} {min:?}: {e:?}");
        }
    }
);

on_both!(
    parallel_partial_refunds_give_back_exactly_the_fee_of_what_was_refunded,
    |w: World| async move {
        let pay = charge(&w, "100.00").await;
        let id = pay["id"].as_str().unwrap().to_owned();
        let w = Arc::new(w);
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (w, id) = (w.clone(), id.clone());
                tokio::spawn(async move {
                    // 8 × 0.83: the fee given back depends on what went
                    // before. Each alone would give back nothing (0.6% of
                    // 99.17 still rounds to 60 fen); one after the other
                    // they give back 4 fen (0.6% of 93.36 is 56.016 fen).
                    w.gw.refund(&w.merchant, &id, "0.83", &format!("R{i}"), None)
                        .await
                        .map(|r| serde_json::from_str::<Value>(&r.into_body()).unwrap())
                })
            })
            .collect();
        let mut back = 0;
        for t in tasks {
            let r = t.await.unwrap().unwrap();
            back += minor_units(r["fee_returned"].as_str().unwrap());
        }
        // The fee kept is the fee of what is left.
        assert_eq!(60 - back, 56);
        let p = w.gw.get_payment(&w.merchant, &id).await.unwrap();
        assert_eq!(p.amount_refunded, "6.64");
        assert_eq!(pending(&w, &w.merchant).await, "92.80");
        assert_books(&w).await;
    }
);

on_both!(
    the_balance_is_for_the_merchant_and_for_admins_and_auditors,
    |w: World| async move {
        charge(&w, "10.00").await;
        let me = w.merchant.subject.clone().unwrap();
        let own = w.gw.balance(&w.merchant, Some(&me)).await.unwrap();
        assert_eq!(own.merchant_id, me);
        assert_eq!(
            (
                own.balances[0].currency.as_str(),
                own.balances[0].pending.as_str(),
                own.balances[0].available.as_str(),
                own.balances[0].in_payout.as_str()
            ),
            ("CNY", "9.94", "0.00", "0.00")
        );
        let k =
            w.gw.create_api_key(Some(&admin()), Role::Auditor, None)
                .await
                .unwrap();
        let auditor = w.gw.authenticate(&k.secret).await.unwrap();
        assert_eq!(w.gw.balance(&auditor, Some(&me)).await.unwrap(), own);
        assert_eq!(w.gw.balance(&admin(), Some(&me)).await.unwrap(), own);
        // Another merchant's balance is not found; the payer may not ask;
        // admins must name the merchant; an unknown one is not found.
        let other =
            w.gw.balance(&w.other_merchant, Some(&me))
                .await
                .unwrap_err();
        assert_eq!(other.code, "not_found");
        let payer = w.gw.balance(&w.consumer, Some(&me)).await.unwrap_err();
        assert_eq!(payer.code, "forbidden");
        let unnamed = w.gw.balance(&admin(), None).await.unwrap_err();
        assert_eq!(unnamed.code, "invalid_request");
        let unknown =
            w.gw.balance(&admin(), Some("mch_nobody"))
                .await
                .unwrap_err();
        assert_eq!(unknown.code, "not_found");
    }
);
