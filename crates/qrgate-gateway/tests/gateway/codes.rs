//! Consumer and merchant codes: device-signed and online codes, their
//! single use and expiry, unlinkable handles, static codes, keys that
//! survive a restart.

use super::*;

on_both!(device_signed_code_pays_once, |w: World| async move {
    let token = w.device_token();
    let p = w.charge(&token, "36.50").await.unwrap();
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["amount"], "36.50");
    assert_eq!(p["mode"], "cpm");
    assert_eq!(p["risk_level"], "C");
    assert!(
        p.get("customer_id").is_none(),
        "merchants do not see who paid"
    );
    assert_eq!(w.balance().await, "4963.50");
    let e = w.charge(&token, "1.00").await.unwrap_err();
    assert_eq!(
        (e.code, e.rule.as_deref()),
        ("payment_code_already_used", Some("BCP-CODE-SINGLE-USE"))
    );
    assert_eq!(w.balance().await, "4963.50");
});

on_both!(
    codes_of_one_device_share_nothing_a_merchant_could_link,
    |w: World| async move {
        use qrgate_codes::cpm::UnverifiedToken;
        let (a, b) = (w.device_token(), w.device_token());
        let holder = |t: &str| UnverifiedToken::decode(t).unwrap().claims.holder;
        let (Holder::Device { sealed: ha }, Holder::Device { sealed: hb }) =
            (holder(&a), holder(&b))
        else {
            panic!("not device codes");
        };
        assert_ne!(ha, hb);
        // No byte of the device id, and no fixed key id, in either code.
        let id = *w
            .device_id
            .parse::<qrgate_core::id::DeviceId>()
            .unwrap()
            .as_bytes();
        for sealed in [ha, hb] {
            assert!(
                !sealed
                    .0
                    .windows(4)
                    .any(|win| id.windows(4).any(|d| d == win))
            );
        }
        // Both pay, from the one device.
        for (t, amount) in [(&a, "1.00"), (&b, "2.00")] {
            let p = w.charge(t, amount).await.unwrap();
            assert_eq!(p["status"], "succeeded", "{p}");
        }
        assert_eq!(w.balance().await, "4997.00");
        // A handle another gateway sealed names no device here.
        let foreign = qrgate_codes::handle::HandleKey::new(&[9; 32])
            .unwrap()
            .seal(id, &SystemRandom::new())
            .unwrap();
        let e = w
            .charge(
                &device_code(&w.device, &foreign.to_string(), w.clock.now()),
                "1.00",
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, "payment_code_unknown_key");
        assert_eq!(w.balance().await, "4997.00");
    }
);

on_both!(
    a_device_gets_more_handles_only_for_itself_while_active,
    |w: World| async move {
        let batch =
            w.gw.device_handles(&w.consumer, &w.device_id, Some(100))
                .await
                .unwrap();
        assert_eq!(batch.handles.len(), 100);
        let distinct: std::collections::HashSet<_> = batch.handles.iter().collect();
        assert_eq!(distinct.len(), 100);
        let p = w
            .charge(
                &device_code(&w.device, &batch.handles[99], w.clock.now()),
                "3.00",
            )
            .await
            .unwrap();
        assert_eq!(p["status"], "succeeded");
        let default =
            w.gw.device_handles(&w.consumer, &w.device_id, None)
                .await
                .unwrap();
        assert_eq!(default.handles.len(), 20);
        for n in [0, 101] {
            let e =
                w.gw.device_handles(&w.consumer, &w.device_id, Some(n))
                    .await
                    .unwrap_err();
            assert_eq!(e.code, "invalid_count");
        }
        let stranger = w.new_consumer().await;
        let e =
            w.gw.device_handles(&stranger, &w.device_id, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "not_found");
        let e =
            w.gw.device_handles(&w.merchant, &w.device_id, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "forbidden");
        w.gw.revoke_device(&w.consumer, &w.device_id).await.unwrap();
        let e =
            w.gw.device_handles(&w.consumer, &w.device_id, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "device_revoked");
    }
);

on_both!(
    expired_and_forged_codes_are_refused,
    |w: World| async move {
        let token = w.device_token();
        w.clock.advance_seconds(60);
        let e = w.charge(&token, "1.00").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("payment_code_expired", Some("BCP-CODE-TTL"))
        );
        // Tampered: one character of the signature changed.
        let fresh = w.device_token();
        let mut chars: Vec<char> = fresh.chars().collect();
        let i = chars.len() - 3;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let e = w
            .charge(&chars.into_iter().collect::<String>(), "1.00")
            .await
            .unwrap_err();
        assert!(e.code.starts_with("payment_code_"), "{e}");
        // Foreign codes are named.
        let e = w.charge("134567890123456789", "1.00").await.unwrap_err();
        assert_eq!(e.code, "payment_code_foreign");
        assert!(e.message.contains("WeChat Pay"));
        assert_eq!(
            w.charge("hello", "1.00").await.unwrap_err().code,
            "payment_code_malformed"
        );
        assert_eq!(w.balance().await, "5000.00");
    }
);

on_both!(
    online_code_is_single_use_across_both_presentations,
    |w: World| async move {
        let code = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        assert_eq!(code.numeric.len(), 18);
        assert!(code.qr.starts_with("QRG:"));
        w.charge(&code.qr, "10.00").await.unwrap();
        let e = w.charge(&code.numeric, "10.00").await.unwrap_err();
        assert_eq!(e.code, "payment_code_already_used");
        let code2 = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        w.charge(&code2.numeric, "5.00").await.unwrap();
        assert_eq!(w.balance().await, "4985.00");
        let code3 = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        w.clock.advance_seconds(61);
        assert_eq!(
            w.charge(&code3.numeric, "1.00").await.unwrap_err().code,
            "payment_code_expired"
        );
    }
);

on_both!(
    static_code_is_level_d_with_its_own_cap,
    |w: World| async move {
        let sc = w.gw.create_static_code(&w.merchant).await.unwrap();
        let v = w.gw.verify_code(&sc.payload).await.unwrap();
        assert_eq!(
            (v.kind.as_str(), v.status.as_str(), v.merchant_name.as_str()),
            ("static", "active", "OLD STREET NOODLES")
        );
        let e =
            w.gw.pay_scanned(&w.consumer, &sc.payload, None, None, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "amount_required");
        let body =
            w.gw.pay_scanned(&w.consumer, &sc.payload, Some("500.00"), None, None)
                .await
                .unwrap()
                .into_body();
        let p: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (p["mode"].as_str(), p["risk_level"].as_str()),
            (Some("mpm_static"), Some("D"))
        );
        let e =
            w.gw.pay_scanned(&w.consumer, &sc.payload, Some("0.01"), None, None)
                .await
                .unwrap_err();
        assert_eq!(e.rule.as_deref(), Some("BCP-LIMIT-D-STATIC"));
        // Level C (dynamic) still has room: the caps are per level.
        let order =
            w.gw.create_order(&w.merchant, "20.00", None, None, None)
                .await
                .unwrap();
        w.gw.pay_scanned(&w.consumer, &order.payload, None, None, None)
            .await
            .unwrap();
    }
);

#[tokio::test]
async fn keys_survive_restart_and_rotation_keeps_old_codes_valid() {
    let store = on_sqlite().await;
    let w = world(store.clone()).await;
    let sc = w.gw.create_static_code(&w.merchant).await.unwrap();
    let old = w.gw.public_keys().keys[0].kid.clone();
    let new = w.gw.rotate_keys("test").await.unwrap();
    assert_ne!(old.to_string(), new);
    assert!(w.gw.verify_code(&sc.payload).await.unwrap().genuine);
    // A second gateway on the same store sees both keys.
    let (gw2, _) = Gateway::start(store, w.clock.clone(), Config::default())
        .await
        .unwrap();
    assert_eq!(gw2.public_keys().keys.len(), 2);
    assert!(gw2.verify_code(&sc.payload).await.unwrap().genuine);
}
