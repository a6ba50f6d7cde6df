//! Step-up: PIN, certificate, OTP and biometric confirmation, lapses,
//! PIN lock-out and the upgrade of old PIN hashes.

use super::*;

on_both!(
    over_the_b_cap_a_certificate_steps_up_to_a_within_the_agreement,
    |w: World| async move {
        let a = admin();
        // A customer with a level-A agreement of 11,000.00 a day.
        let c =
            w.gw.create_customer(
                &a,
                NewCustomer {
                    account_class: "III".into(),
                    level_a_daily_cap: Some("11000.00".into()),
                },
            )
            .await
            .unwrap();
        w.gw.topup(&a, &c.id, "20000.00", None).await.unwrap();
        let consumer = key_of(&w.gw, Role::Consumer, &c.id).await;
        let rng = SystemRandom::new();
        let key = |rng: &SystemRandom| {
            let doc = Ed25519KeyPair::generate_pkcs8(rng).unwrap();
            Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap()
        };
        let device = key(&rng);
        let d =
            w.gw.enroll_device(
                &consumer,
                &URL_SAFE_NO_PAD.encode(device.public_key().as_ref()),
                None,
            )
            .await
            .unwrap();
        w.gw.set_pin(&consumer, "493817").await.unwrap();
        let handles = d.handles.unwrap();
        let token = || device_code(&device, &handles[0], w.clock.now());
        // Without a certificate, 5,500.00 is over B and cannot reach A.
        let e = w.charge(&token(), "5500.00").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("limit_exceeded", Some("BCP-LIMIT-B-DAILY"))
        );
        // Only an admin enrolls certificates; a key is enrolled once.
        let cert = key(&rng);
        let cert_pk = URL_SAFE_NO_PAD.encode(cert.public_key().as_ref());
        assert_eq!(
            w.gw.enroll_certificate(&consumer, &c.id, &cert_pk)
                .await
                .unwrap_err()
                .code,
            "forbidden"
        );
        let crt = w.gw.enroll_certificate(&a, &c.id, &cert_pk).await.unwrap();
        assert_eq!(
            w.gw.enroll_certificate(&a, &c.id, &cert_pk)
                .await
                .unwrap_err()
                .code,
            "certificate_key_in_use"
        );
        let confirm = |sig: Option<String>| qrgate_gateway::stepup::Confirmation {
            pin: Some("493817".into()),
            device_id: None,
            device_signature: None,
            certificate_id: sig.as_ref().map(|_| crt.id.clone()),
            certificate_signature: sig,
            otp: None,
            biometric: None,
        };
        let sign = |p: &Value, k: &Ed25519KeyPair| {
            let msg = qrgate_gateway::stepup::confirmation_message(
                p["id"].as_str().unwrap(),
                p["amount"].as_str().unwrap(),
                "CNY",
                p["merchant_id"].as_str().unwrap(),
            );
            URL_SAFE_NO_PAD.encode(k.sign(&msg).as_ref())
        };
        for round in 0..2 {
            let p = w.charge(&token(), "5500.00").await.unwrap();
            assert_eq!(p["status"], "requires_action");
            assert_eq!(
                p["next_action"]["elements"],
                json!(["pin", "digital_certificate"])
            );
            let id = p["id"].as_str().unwrap();
            if round == 0 {
                let e =
                    w.gw.confirm(&consumer, id, confirm(None), None)
                        .await
                        .unwrap_err();
                assert_eq!(e.code, "certificate_signature_required");
                // Without the signature the PIN is not even tried: five wrong
                // PINs sent that way do not lock it.
                for _ in 0..5 {
                    let wrong = qrgate_gateway::stepup::Confirmation {
                        pin: Some("111119".into()),
                        ..confirm(None)
                    };
                    let e = w.gw.confirm(&consumer, id, wrong, None).await.unwrap_err();
                    assert_eq!(e.code, "certificate_signature_required");
                }
                assert!(
                    w.gw.get_customer(&a, &c.id)
                        .await
                        .unwrap()
                        .pin_locked_until
                        .is_none()
                );
                // Signed by the device key instead of the certificate: refused.
                let e =
                    w.gw.confirm(&consumer, id, confirm(Some(sign(&p, &device))), None)
                        .await
                        .unwrap_err();
                assert_eq!(
                    (e.code, e.rule.as_deref()),
                    ("certificate_signature_invalid", Some("BCP-ELEMENTS"))
                );
                assert_eq!(
                    w.gw.get_payment(&consumer, id).await.unwrap().status,
                    "requires_action"
                );
            }
            let done =
                w.gw.confirm(&consumer, id, confirm(Some(sign(&p, &cert))), None)
                    .await
                    .unwrap();
            let v: Value = serde_json::from_str(done.body()).unwrap();
            assert_eq!(
                (v["status"].as_str(), v["risk_level"].as_str()),
                (Some("succeeded"), Some("A"))
            );
            assert_eq!(
                v["verification"],
                json!(["device_signature", "digital_certificate", "pin"])
            );
        }
        // 11,000.00 used: the agreement's cap, exactly. One cent more at A is refused.
        let e = w.charge(&token(), "5000.01").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("limit_exceeded", Some("BCP-LIMIT-A-DAILY"))
        );
        assert_eq!(
            w.gw.get_customer(&a, &c.id).await.unwrap().balance,
            "9000.00"
        );
        let check = w.gw.store().ledger_check().await.unwrap();
        assert!(check.is_sound(), "{check:?}");
    }
);

on_both!(
    the_sweeper_ends_every_lapsed_step_up_however_many_wait,
    |w: World| async move {
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        w.charge(&w.device_token(), "1000.00").await.unwrap();
        // 500 payments over the level-C cap wait for their payer.
        for _ in 0..500 {
            let p = w.charge(&w.device_token(), "1.00").await.unwrap();
            assert_eq!(p["status"], "requires_action");
        }
        // Not due yet: nothing ends.
        assert_eq!(w.gw.expire_requires_action().await.unwrap(), 0);
        w.clock.advance_seconds(301);
        // One sweep ends them all, the oldest included.
        assert_eq!(w.gw.expire_requires_action().await.unwrap(), 500);
        assert_eq!(w.gw.expire_requires_action().await.unwrap(), 0);
        assert_eq!(w.balance().await, "4000.00");
        w.assert_books_sound().await;
    }
);

on_both!(over_the_c_cap_a_pin_steps_up_to_b, |w: World| async move {
    w.gw.set_pin(&w.consumer, "493817").await.unwrap();
    assert_eq!(
        w.gw.set_pin(&w.consumer, "123456").await.unwrap_err().code,
        "weak_pin"
    );
    w.charge(&w.device_token(), "999.00").await.unwrap();
    // 999 + 100 > 1000 (C) but fits B (5000): requires_action, naming the PIN.
    let p = w.charge(&w.device_token(), "100.00").await.unwrap();
    assert_eq!(p["status"], "requires_action");
    assert_eq!(p["next_action"]["elements"], json!(["pin"]));
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(w.balance().await, "4001.00", "nothing moved yet");
    // A wrong PIN never completes it and counts toward lock-out.
    let e =
        w.gw.confirm(&w.consumer, &id, confirmation(Some("111119"), None), None)
            .await
            .unwrap_err();
    assert_eq!(
        (e.code, e.rule.as_deref()),
        ("pin_incorrect", Some("QG-PIN-LOCKOUT"))
    );
    assert!(e.message.contains("4 attempts left"), "{}", e.message);
    assert_eq!(
        w.gw.get_payment(&w.consumer, &id).await.unwrap().status,
        "requires_action"
    );
    // Only the payer confirms.
    assert_eq!(
        w.gw.confirm(&w.merchant, &id, confirmation(Some("493817"), None), None)
            .await
            .unwrap_err()
            .code,
        "forbidden"
    );
    let done =
        w.gw.confirm(&w.consumer, &id, confirmation(Some("493817"), None), None)
            .await
            .unwrap();
    let v: Value = serde_json::from_str(done.body()).unwrap();
    assert_eq!(
        (v["status"].as_str(), v["risk_level"].as_str()),
        (Some("succeeded"), Some("B"))
    );
    assert_eq!(v["verification"], json!(["device_signature", "pin"]));
    assert!(v.get("next_action").is_none());
    assert_eq!(w.balance().await, "3901.00");
    assert_eq!(
        w.gw.confirm(&w.consumer, &id, confirmation(Some("493817"), None), None)
            .await
            .unwrap_err()
            .code,
        "payment_state_conflict"
    );
    // Beyond B as well: declined outright.
    let e = w.charge(&w.device_token(), "4900.01").await.unwrap_err();
    assert_eq!(
        (e.code, e.rule.as_deref()),
        ("limit_exceeded", Some("BCP-LIMIT-B-DAILY"))
    );
    let c = w.gw.store().ledger_check().await.unwrap();
    assert!(c.is_sound(), "{c:?}");
});

on_both!(
    online_codes_need_pin_and_device_signature_and_lapse,
    |w: World| async move {
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        w.charge(&w.device_token(), "1000.00").await.unwrap();
        let code = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        let p = w.charge(&code.numeric, "20.00").await.unwrap();
        assert_eq!(
            p["next_action"]["elements"],
            json!(["pin", "device_signature"])
        );
        let id = p["id"].as_str().unwrap();
        let e =
            w.gw.confirm(&w.consumer, id, confirmation(Some("493817"), None), None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "device_signature_required");
        let forged = URL_SAFE_NO_PAD.encode([7_u8; 64]);
        let e =
            w.gw.confirm(
                &w.consumer,
                id,
                confirmation(Some("493817"), Some((&w.device_id, forged))),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, "device_signature_invalid");
        let sig = sign_confirmation(&w, &p);
        let ok =
            w.gw.confirm(
                &w.consumer,
                id,
                confirmation(Some("493817"), Some((&w.device_id, sig))),
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(ok.body()).unwrap()["risk_level"],
            "B"
        );
        // An unconfirmed one lapses after QG-STEPUP-TTL and moves no money.
        let code = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        let p = w.charge(&code.numeric, "30.00").await.unwrap();
        w.clock.advance_seconds(301);
        assert_eq!(w.gw.expire_requires_action().await.unwrap(), 1);
        let lapsed =
            w.gw.get_payment(&w.consumer, p["id"].as_str().unwrap())
                .await
                .unwrap();
        assert_eq!(lapsed.status, "canceled");
        assert_eq!(w.balance().await, "3980.00");
    }
);

on_both!(
    an_old_pin_that_breaks_todays_shape_rules_is_upgraded_too,
    |w: World| async move {
        let customer = w.consumer.subject.clone().unwrap();
        plant_legacy_pin(&w, "123456").await;
        w.charge(&w.device_token(), "1000.00").await.unwrap();
        let p = w.charge(&w.device_token(), "10.00").await.unwrap();
        let id = p["id"].as_str().unwrap();
        let ok =
            w.gw.confirm(&w.consumer, id, confirmation(Some("123456"), None), None)
                .await
                .unwrap();
        assert_eq!(ok.fresh(), Some(Fresh::Done), "{}", ok.body());
        let stored = w.gw.store().credentials(&customer).await.unwrap().unwrap();
        assert!(stored.pin_hash.starts_with("v2$"), "{}", stored.pin_hash);
        // A change from it works (the new one must meet the rules).
        w.gw.change_pin(&w.consumer, "123456", "271828")
            .await
            .unwrap();
    }
);

on_both!(
    a_pin_hash_from_before_the_pepper_is_upgraded_when_the_pin_is_used,
    |w: World| async move {
        let customer = w.consumer.subject.clone().unwrap();
        let old = plant_legacy_pin(&w, "493817").await;
        let salt = hex::encode([0x5a_u8; 16]);
        // A wrong PIN upgrades nothing.
        w.charge(&w.device_token(), "1000.00").await.unwrap();
        let p = w.charge(&w.device_token(), "10.00").await.unwrap();
        let id = p["id"].as_str().unwrap();
        let e =
            w.gw.confirm(&w.consumer, id, confirmation(Some("000001"), None), None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "pin_incorrect");
        let stored = w.gw.store().credentials(&customer).await.unwrap().unwrap();
        assert_eq!(stored.pin_hash, old);
        // The right one pays, and the hash is peppered now, with a new salt.
        let ok =
            w.gw.confirm(&w.consumer, id, confirmation(Some("493817"), None), None)
                .await
                .unwrap();
        assert_eq!(ok.fresh(), Some(Fresh::Done), "{}", ok.body());
        let stored = w.gw.store().credentials(&customer).await.unwrap().unwrap();
        assert!(stored.pin_hash.starts_with("v2$"), "{}", stored.pin_hash);
        assert_ne!(stored.pin_salt, salt);
        let rows = w.gw.store().audit_rows(0, 10_000).await.unwrap();
        assert!(
            rows.iter()
                .any(|r| r.action == "pin.rehashed" && r.subject == customer)
        );
        // The same PIN still works, and changes, under the new hash.
        w.gw.change_pin(&w.consumer, "493817", "271828")
            .await
            .unwrap();
        let p = w.charge(&w.device_token(), "10.00").await.unwrap();
        let id = p["id"].as_str().unwrap();
        let ok =
            w.gw.confirm(&w.consumer, id, confirmation(Some("271828"), None), None)
                .await
                .unwrap();
        assert_eq!(ok.fresh(), Some(Fresh::Done), "{}", ok.body());
    }
);

on_both!(five_wrong_pins_lock_the_pin, |w: World| async move {
    w.gw.set_pin(&w.consumer, "493817").await.unwrap();
    w.charge(&w.device_token(), "1000.00").await.unwrap();
    let p = w.charge(&w.device_token(), "10.00").await.unwrap();
    let id = p["id"].as_str().unwrap();
    for _ in 0..4 {
        assert_eq!(
            w.gw.confirm(&w.consumer, id, confirmation(Some("000001"), None), None)
                .await
                .unwrap_err()
                .code,
            "pin_incorrect"
        );
    }
    let e =
        w.gw.confirm(&w.consumer, id, confirmation(Some("000001"), None), None)
            .await
            .unwrap_err();
    assert!(e.message.contains("locked"), "{}", e.message);
    // Even the right PIN is refused while locked.
    assert_eq!(
        w.gw.confirm(&w.consumer, id, confirmation(Some("493817"), None), None)
            .await
            .unwrap_err()
            .code,
        "pin_locked"
    );
    assert_eq!(w.balance().await, "4000.00");
});

on_both!(
    a_pin_and_a_one_time_password_step_up_to_level_b_once_per_code,
    |w: World| async move {
        assert_eq!(
            w.gw.enroll_otp(&w.consumer, None).await.unwrap_err().code,
            "pin_not_set"
        );
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        let otp = w.gw.enroll_otp(&w.consumer, Some("493817")).await.unwrap();
        assert!(otp.otpauth_uri.contains(&otp.secret));
        w.charge(&w.device_token(), "1000.00").await.unwrap();
        let p = w.waiting_order().await;
        let accepts = &p["next_action"]["accepts"];
        assert!(
            accepts
                .as_array()
                .unwrap()
                .contains(&json!(["pin", "one_time_password"])),
            "{accepts}"
        );
        // An OTP alone is one class: not enough, and nothing is spent.
        let e = w
            .confirm_with(&p, with_otp(None, &otp_now(&w, &otp.secret)))
            .await
            .unwrap_err();
        assert_eq!(e.code, "pin_required");
        let e = w
            .confirm_with(&p, with_otp(Some("493817"), "000000"))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("otp_incorrect", Some("QG-PIN-LOCKOUT"))
        );
        let code = otp_now(&w, &otp.secret);
        let done = w
            .confirm_with(&p, with_otp(Some("493817"), &code))
            .await
            .unwrap();
        assert_eq!(
            (done["status"].as_str(), done["risk_level"].as_str()),
            (Some("succeeded"), Some("B"))
        );
        assert_eq!(done["verification"], json!(["one_time_password", "pin"]));
        // The same code a second time is refused; the next step's code works.
        let p2 = w.waiting_order().await;
        let e = w
            .confirm_with(&p2, with_otp(Some("493817"), &code))
            .await
            .unwrap_err();
        assert_eq!(e.code, "otp_reused");
        w.clock.advance_seconds(30);
        let done = w
            .confirm_with(&p2, with_otp(Some("493817"), &otp_now(&w, &otp.secret)))
            .await
            .unwrap();
        assert_eq!(done["status"], "succeeded");
        // Wrong codes count toward the same lock-out as wrong PINs (in a
        // fresh minute: each try draws on QG-RATE-PIN twice, PIN and code).
        let p3 = w.waiting_order().await;
        w.clock.advance_seconds(60);
        for _ in 0..5 {
            let e = w
                .confirm_with(&p3, with_otp(Some("493817"), "000000"))
                .await
                .unwrap_err();
            assert!(["otp_incorrect", "pin_locked"].contains(&e.code), "{e:?}");
        }
        w.clock.advance_seconds(60);
        let e = w
            .confirm_with(&p3, with_otp(Some("493817"), &otp_now(&w, &otp.secret)))
            .await
            .unwrap_err();
        assert_eq!(e.code, "pin_locked");
        w.assert_books_sound().await;
    }
);

on_both!(
    a_biometric_inside_the_device_signature_steps_up_without_the_pin,
    |w: World| async move {
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        w.charge(&w.device_token(), "1000.00").await.unwrap();
        let p = w.waiting_order().await;
        assert!(
            p["next_action"]["accepts"]
                .as_array()
                .unwrap()
                .contains(&json!(["device_signature", "biometric"]))
        );
        let plain = sign_confirmation(&w, &p);
        let biometric = |sig: String| qrgate_gateway::stepup::Confirmation {
            biometric: Some(true),
            ..confirmation(None, Some((&w.device_id, sig)))
        };
        // Biometrics count only once turned on for the device, with the PIN
        // (a stolen API key is not enough), and no PIN attempt is spent on
        // the refusal.
        assert_eq!(
            w.confirm_with(&p, biometric(plain.clone()))
                .await
                .unwrap_err()
                .code,
            "biometric_not_enabled"
        );
        assert_eq!(
            w.gw.enable_biometric(&w.consumer, &w.device_id, None)
                .await
                .unwrap_err()
                .code,
            "pin_required"
        );
        assert_eq!(
            w.gw.enable_biometric(&w.consumer, &w.device_id, Some("111119"))
                .await
                .unwrap_err()
                .code,
            "pin_incorrect"
        );
        let d =
            w.gw.enable_biometric(&w.consumer, &w.device_id, Some("493817"))
                .await
                .unwrap();
        assert!(d.biometric);
        // A signature made without the biometric assertion does not carry one.
        assert_eq!(
            w.confirm_with(&p, biometric(plain.clone()))
                .await
                .unwrap_err()
                .code,
            "device_signature_invalid"
        );
        // A device signature alone is one class.
        assert_eq!(
            w.confirm_with(&p, confirmation(None, Some((&w.device_id, plain))))
                .await
                .unwrap_err()
                .code,
            "pin_required"
        );
        let mut msg = qrgate_gateway::stepup::confirmation_message(
            p["id"].as_str().unwrap(),
            "10.00",
            "CNY",
            p["merchant_id"].as_str().unwrap(),
        );
        msg.extend_from_slice(qrgate_gateway::stepup::BIOMETRIC_SUFFIX);
        let sig = URL_SAFE_NO_PAD.encode(w.device.sign(&msg).as_ref());
        let done = w.confirm_with(&p, biometric(sig)).await.unwrap();
        assert_eq!(
            (done["status"].as_str(), done["risk_level"].as_str()),
            (Some("succeeded"), Some("B"))
        );
        assert_eq!(
            done["verification"],
            json!(["device_signature", "biometric"])
        );
        w.assert_books_sound().await;
    }
);
