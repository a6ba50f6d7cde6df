//! Risk checks that flag for review.

use super::*;

// ---- Risk checks that flag for review ----

/// The risk checks of a payment as an admin sees them: (rule, decision).
async fn checks_of(w: &World, payment: &Value) -> Vec<(String, String)> {
    let id = payment["id"].as_str().unwrap();
    w.gw.get_payment(&admin(), id)
        .await
        .unwrap()
        .risk_checks
        .unwrap()
        .iter()
        .map(|c| {
            (
                c.rule.clone(),
                serde_json::to_value(c.decision)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

on_both!(
    an_unusually_large_payment_is_flagged_not_refused,
    |w: World| async move {
        // Too little history: allowed without a flag.
        let p = w
            .pay_order(&w.merchant, &w.consumer, "600.00", None)
            .await
            .unwrap();
        assert!(
            checks_of(&w, &p)
                .await
                .contains(&("QG-ANOMALY-AMOUNT".into(), "allow".into()))
        );
        for _ in 0..3 {
            w.charge(&w.device_token(), "10.00").await.unwrap();
        }
        // Average now (600 + 30) / 4 = 157.50; 10x is 1,575.00.
        w.clock.advance_seconds(86_400);
        let p = w
            .pay_order(&w.merchant, &w.consumer, "900.00", None)
            .await
            .unwrap();
        assert!(
            checks_of(&w, &p)
                .await
                .contains(&("QG-ANOMALY-AMOUNT".into(), "allow".into()))
        );
        for _ in 0..20 {
            w.charge(&w.device_token(), "1.00").await.unwrap();
        }
        // 25 payments averaging 1,550.00 / 25 = 62.00: 700.00 is more than 10x.
        w.clock.advance_seconds(86_400);
        let p = w
            .pay_order(&w.merchant, &w.consumer, "700.00", None)
            .await
            .unwrap();
        assert_eq!(p["status"], "succeeded", "flagged, not refused");
        assert!(
            p.get("risk_checks").is_none(),
            "the payer does not see the checks"
        );
        let checks = checks_of(&w, &p).await;
        assert!(
            checks.contains(&("QG-ANOMALY-AMOUNT".into(), "flag_for_review".into())),
            "{checks:?}"
        );
        let audit = w.gw.store().audit_rows(0, 1000).await.unwrap();
        assert!(
            audit
                .iter()
                .any(|r| r.subject == p["id"] && r.details["flags"] == json!(["QG-ANOMALY-AMOUNT"]))
        );
    }
);

on_both!(
    a_personal_merchant_paid_by_many_people_is_flagged_and_declines_are_recorded,
    |mut w: World| async move {
        w.reconfigure(&[("QG-PERSONAL-CODE-PAYERS", 2)], &[]).await;
        let stall = w.small_merchant("SNACK STALL", "kyc-s").await;
        // Review at 2 distinct payers: the first two pass, the third is flagged.
        for (i, decision) in ["allow", "allow", "flag_for_review"]
            .into_iter()
            .enumerate()
        {
            let c = w.new_consumer().await;
            w.gw.topup(&admin(), c.subject.as_deref().unwrap(), "10.00", None)
                .await
                .unwrap();
            let p = w.pay_order(&stall, &c, "1.00", None).await.unwrap();
            assert_eq!(p["status"], "succeeded");
            let checks = checks_of(&w, &p).await;
            assert!(
                checks.contains(&("QG-PERSONAL-CODE-PAYERS".into(), decision.into())),
                "payer {i}: {checks:?}"
            );
        }
        // A declined payment records the deciding check.
        let e = w
            .pay_order(&stall, &w.consumer, "5000.00", None)
            .await
            .unwrap_err();
        let checks = checks_of(&w, &json!({ "id": e.payment_id })).await;
        assert!(
            checks.contains(&("BCP-LIMIT-C-DAILY".into(), "decline".into())),
            "{checks:?}"
        );
    }
);
