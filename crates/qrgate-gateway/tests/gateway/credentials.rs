//! Credentials, rate limits, the keyring across gateways, secrets at
//! rest, revocations and blocks.

use super::*;

on_both!(
    credentials_have_a_lifecycle_and_a_stolen_key_is_not_a_second_factor,
    |w: World| async move {
        let a = admin();
        let customer = w.consumer.subject.clone().unwrap();
        // The first PIN is set once; changing it needs the current one.
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        assert_eq!(
            w.gw.set_pin(&w.consumer, "271828").await.unwrap_err().code,
            "pin_already_set"
        );
        assert_eq!(
            w.gw.change_pin(&w.consumer, "111119", "271828")
                .await
                .unwrap_err()
                .code,
            "pin_incorrect"
        );
        // Locked after the allowed wrong PINs: even the right one cannot
        // change it, and the lock stays.
        for _ in 0..4 {
            let _ = w.gw.change_pin(&w.consumer, "111119", "271828").await;
        }
        assert_eq!(
            w.gw.change_pin(&w.consumer, "493817", "271828")
                .await
                .unwrap_err()
                .code,
            "pin_locked"
        );
        w.clock.advance_seconds(31 * 60);
        w.gw.change_pin(&w.consumer, "493817", "271828")
            .await
            .unwrap();
        assert_eq!(
            w.gw.change_pin(&w.consumer, "493817", "314159")
                .await
                .unwrap_err()
                .code,
            "pin_incorrect",
            "the old PIN no longer works"
        );
        // A forgotten PIN: the operator resets it; the customer sets a new one.
        assert_eq!(
            w.gw.reset_pin(&w.consumer, &customer)
                .await
                .unwrap_err()
                .code,
            "forbidden"
        );
        w.gw.reset_pin(&a, &customer).await.unwrap();
        w.gw.set_pin(&w.consumer, "314159").await.unwrap();
        // With a PIN, enrolling a device needs it.
        let rng = SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let second = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let pk = URL_SAFE_NO_PAD.encode(second.public_key().as_ref());
        assert_eq!(
            w.gw.enroll_device(&w.consumer, &pk, None)
                .await
                .unwrap_err()
                .code,
            "pin_required"
        );
        let d2 =
            w.gw.enroll_device(&w.consumer, &pk, Some("314159"))
                .await
                .unwrap();
        assert_eq!(w.gw.list_devices(&w.consumer).await.unwrap().len(), 2);
        // A second gateway on the same database, which has the device in
        // its cache from an earlier payment.
        let (gw2, _) = Gateway::start(w.gw.store().clone(), w.clock.clone(), Config::default())
            .await
            .unwrap();
        let merchant2 = w.merchant.clone();
        let offline = w.device_token();
        let idem = || qrgate_gateway::Idem {
            scope: format!("merchant:{}", merchant2.subject.as_deref().unwrap()),
            key: "before-revoke".into(),
            request_hash: "h1".into(),
            render: |_| qrgate_gateway::Said {
                status: 201,
                body: "{}".into(),
            },
        };
        let before = w.device_token();
        let r = gw2
            .charge(&merchant2, &before, "1.00", None, Some(idem()))
            .await;
        assert!(r.is_ok(), "{r:?}");
        // Revoked on the first: an offline code made before is refused on
        // the second at once.
        let revoked = w.gw.revoke_device(&w.consumer, &w.device_id).await.unwrap();
        assert_eq!(revoked.status, "revoked");
        assert_eq!(
            gw2.charge(&merchant2, &offline, "1.00", None, None)
                .await
                .unwrap_err()
                .code,
            "device_revoked"
        );
        // A retry of the payment made before the revocation gets its answer.
        let again = gw2
            .charge(&merchant2, &before, "1.00", None, Some(idem()))
            .await
            .unwrap();
        assert!(again.is_replayed());
        // Another consumer cannot revoke it; an admin can revoke any.
        let other = key_of(&w.gw, Role::Consumer, &customer).await;
        let stranger = {
            let c =
                w.gw.create_customer(
                    &a,
                    NewCustomer {
                        account_class: "II".into(),
                        level_a_daily_cap: None,
                    },
                )
                .await
                .unwrap();
            key_of(&w.gw, Role::Consumer, &c.id).await
        };
        assert_eq!(
            w.gw.revoke_device(&stranger, &d2.id)
                .await
                .unwrap_err()
                .code,
            "not_found"
        );
        let _ = other;
        // Revoking the API key a device was enrolled with revokes the device.
        w.gw.revoke_api_key(&a, &w.consumer.key_id).await.unwrap();
        let listed = w.gw.store().devices_of(&customer).await.unwrap();
        assert!(
            listed
                .iter()
                .all(|d| d.status == qrgate_core::state::CredentialStatus::Revoked),
            "{listed:?}"
        );
        // A merchant revokes a static code: scans are refused.
        let sc = w.gw.create_static_code(&w.merchant).await.unwrap();
        w.gw.revoke_static_code(&w.merchant, &sc.id).await.unwrap();
        assert_eq!(
            w.gw.revoke_static_code(&w.merchant, &sc.id)
                .await
                .unwrap_err()
                .code,
            "code_revoked"
        );
        assert_eq!(
            w.gw.revoke_static_code(&w.other_merchant, &sc.id)
                .await
                .unwrap_err()
                .code,
            "not_found"
        );
        let payer = key_of(&w.gw, Role::Consumer, &customer).await;
        assert_eq!(
            w.gw.pay_scanned(&payer, &sc.payload, Some("1.00"), None, None)
                .await
                .unwrap_err()
                .code,
            "code_revoked"
        );
        // Every change is in the audit chain.
        let actions: Vec<String> =
            w.gw.store()
                .audit_rows(0, 1000)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.action)
                .collect();
        for want in [
            "pin.set",
            "pin.changed",
            "pin.reset",
            "device.enrolled",
            "device.revoked",
            "api_key.revoked",
            "static_code.revoked",
        ] {
            assert!(
                actions.iter().any(|x| x == want),
                "{want} not in {actions:?}"
            );
        }
        w.assert_books_sound().await;
    }
);

on_both!(
    rate_limits_brake_code_issuance_guessing_and_pin_attempts,
    |w: World| async move {
        let limits = w.gw.limits().clone();
        // Payment codes: the allowance of a minute, then 429 until the next.
        for _ in 0..limits.rate_code_issue {
            w.gw.issue_payment_code(&w.consumer).await.unwrap();
        }
        let e = w.gw.issue_payment_code(&w.consumer).await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("rate_limited", Some("QG-RATE-CODE-ISSUE"))
        );
        assert!(matches!(
            e.kind,
            qrgate_gateway::Kind::TooManyRequests {
                retry_after_seconds: 1..=60
            }
        ));
        w.clock.advance_seconds(60);
        let kept = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        // Unknown numeric codes: counted per merchant key; past the allowance
        // every numeric charge waits, a known code included; a QR token does not.
        let rng = SystemRandom::new();
        for _ in 0..limits.rate_unknown_code {
            let guess = qrgate_codes::numeric::generate(&rng).unwrap();
            assert_eq!(
                w.charge(&guess, "1.00").await.unwrap_err().code,
                "payment_code_unknown"
            );
        }
        let e = w.charge(&kept.numeric, "1.00").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("rate_limited", Some("QG-RATE-UNKNOWN-CODE"))
        );
        w.charge(&w.device_token(), "1.00").await.unwrap();
        // Another merchant key is not held back.
        let other = key_of(
            &w.gw,
            Role::Merchant,
            w.merchant.subject.as_deref().unwrap(),
        )
        .await;
        let fresh = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        w.gw.charge(&other, &fresh.numeric, "1.00", None, None)
            .await
            .unwrap();
        // PIN attempts: on top of the lock-out, at most this many a minute.
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        let mut codes = Vec::new();
        for _ in 0..limits.rate_pin {
            let e =
                w.gw.change_pin(&w.consumer, "111119", "271828")
                    .await
                    .unwrap_err();
            codes.push(e.code);
        }
        assert!(
            codes.contains(&"pin_incorrect") && codes.contains(&"pin_locked"),
            "{codes:?}"
        );
        let e =
            w.gw.change_pin(&w.consumer, "111119", "271828")
                .await
                .unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("rate_limited", Some("QG-RATE-PIN"))
        );
        w.assert_books_sound().await;
    }
);

on_both!(
    one_keyring_across_gateways_rotated_on_either_and_restarted,
    |w: World| async move {
        use qrgate_codes::keyring::KeyState;
        let store = w.gw.store().clone();
        let (b, _) = Gateway::start(store.clone(), w.clock.clone(), Config::default())
            .await
            .unwrap();
        let active = |gw: &Gateway<AnyStore>| {
            gw.public_keys()
                .keys
                .iter()
                .filter(|k| k.state == KeyState::Active)
                .map(|k| k.kid.to_string())
                .collect::<Vec<_>>()
        };
        // Rotate on A; B reloads (serve does it every 2 s); a code A signs
        // with the new key pays on B.
        let k1 = w.gw.rotate_keys("test").await.unwrap();
        b.reload_keys().await.unwrap();
        assert_eq!(active(&b), vec![k1.clone()]);
        let c1 = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        let kept = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        b.charge(&w.merchant, &c1.qr, "1.00", None, None)
            .await
            .unwrap();
        // The other way round.
        let k2 = b.rotate_keys("test").await.unwrap();
        w.gw.reload_keys().await.unwrap();
        assert_eq!(active(&w.gw), vec![k2.clone()]);
        let c2 = b.issue_payment_code(&w.consumer).await.unwrap();
        w.charge(&c2.qr, "1.00").await.unwrap();
        // Two rotations at once: the database keeps one active key.
        let (x, y) = tokio::join!(w.gw.rotate_keys("test"), b.rotate_keys("test"));
        assert!(x.is_ok() || y.is_ok(), "{x:?} {y:?}");
        for e in [x.err(), y.err()].into_iter().flatten() {
            assert_eq!(e.code, "rotation_conflict");
        }
        let stored = store.load_keys().await.unwrap();
        assert_eq!(stored.iter().filter(|k| k.state == "active").count(), 1);
        // Retire k1 (compromised) on B: not while another node may still
        // sign with it; then, once A reloads, a code it signed is refused
        // there too; the active key cannot be retired.
        assert_eq!(
            b.retire_key(&k1, "test", false).await.unwrap_err().code,
            "key_recently_rotated"
        );
        w.clock.advance_seconds(10);
        b.retire_key(&k1, "test", false).await.unwrap();
        w.gw.reload_keys().await.unwrap();
        let e = w.charge(&kept.qr, "1.00").await.unwrap_err();
        assert_eq!(e.code, "payment_code_unknown_key");
        let now_active = active(&b).remove(0);
        assert_eq!(
            b.retire_key(&now_active, "test", true)
                .await
                .unwrap_err()
                .code,
            "key_not_retirable"
        );
        // A key that signed a static code still in force is retired only
        // when the operator says so, and the answer names the code.
        let poster = w.gw.create_static_code(&w.merchant).await.unwrap();
        let revoked = w.gw.create_static_code(&w.merchant).await.unwrap();
        w.gw.revoke_static_code(&w.merchant, &revoked.id)
            .await
            .unwrap();
        let signer = b.rotate_keys("test").await;
        w.gw.reload_keys().await.unwrap();
        let _ = signer.unwrap();
        w.clock.advance_seconds(10);
        let e = b.retire_key(&now_active, "test", false).await.unwrap_err();
        assert_eq!(e.code, "key_signs_live_codes", "{e}");
        assert!(e.message.contains("1 static codes"), "{e}");
        let still = w.gw.verify_code(&poster.payload).await.unwrap();
        assert_eq!(still.status, "active");
        let gone = b.retire_key(&now_active, "test", true).await.unwrap();
        let ids: Vec<_> = gone.static_codes.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, vec![poster.id.as_str()]);
        w.gw.reload_keys().await.unwrap();
        assert!(w.gw.verify_code(&poster.payload).await.is_err());
        // Both restart (at once): each loads the one keyring.
        let (r1, r2) = tokio::join!(
            Gateway::start(store.clone(), w.clock.clone(), Config::default()),
            Gateway::start(store.clone(), w.clock.clone(), Config::default()),
        );
        let (r1, r2) = (r1.unwrap().0, r2.unwrap().0);
        assert_eq!(active(&r1), active(&r2));
        assert_eq!(active(&r1).len(), 1);
        // Every change is in the audit chain.
        let actions: Vec<String> = store
            .audit_rows(0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.action)
            .collect();
        assert!(actions.iter().any(|a| a == "signing_key.rotated"));
        assert!(actions.iter().any(|a| a == "signing_key.retired"));
    }
);

on_both!(
    secrets_are_sealed_at_rest_migrated_and_rotated_to_a_new_master_key,
    |w: World| async move {
        use qrgate_core::seal::{MasterKey, Sealer};
        let store = w.gw.store().clone();
        // This world started without a master key: its rows are plaintext.
        let plain_ep =
            w.gw.create_webhook_endpoint(&w.merchant, "https://shop.example/sealed")
                .await
                .unwrap();
        let k1 = || MasterKey::from_bytes(&[1; 32]).unwrap();
        let k2 = || MasterKey::from_bytes(&[2; 32]).unwrap();
        let with = |s: Option<Sealer>| Config {
            sealer: s.map(Arc::new),
            ..Config::default()
        };
        // Started with a master key: every plaintext secret is sealed.
        let (a, _) = Gateway::start(
            store.clone(),
            w.clock.clone(),
            with(Some(Sealer::new(k1(), vec![]))),
        )
        .await
        .unwrap();
        let rows = store.secret_rows().await.unwrap();
        assert!(rows.len() >= 2, "{rows:?}");
        for r in &rows {
            assert!(r.value.starts_with("sealed:v1:"), "{r:?}");
        }
        assert!(
            !rows
                .iter()
                .any(|r| r.value.contains(plain_ep.secret.as_deref().unwrap())),
            "the webhook secret is not stored in the clear"
        );
        // New secrets are sealed when written; they still sign and verify.
        let ep = a
            .create_webhook_endpoint(&w.merchant, "https://shop.example/new")
            .await
            .unwrap();
        let secret = ep.secret.clone().unwrap();
        w.gw.set_pin(&w.consumer, "493817").await.unwrap();
        // The PIN hash is peppered (v2$: HMAC under the sealed pepper, then
        // 600,000 PBKDF2 iterations); the pepper row is sealed like the rest.
        let cr = store
            .credentials(w.consumer.subject.as_deref().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(cr.pin_hash.starts_with("v2$"), "{}", cr.pin_hash);
        assert!(
            store
                .secret_rows()
                .await
                .unwrap()
                .iter()
                .any(|r| r.slot == qrgate_store::SecretSlot::GatewaySecret)
        );
        let otp = a.enroll_otp(&w.consumer, Some("493817")).await.unwrap();
        for r in store.secret_rows().await.unwrap() {
            assert!(r.value.starts_with("sealed:v1:"), "{r:?}");
            assert!(!r.value.contains(&secret) && !r.value.contains(&otp.secret));
        }
        w.clock.advance_seconds(1);
        a.charge(&w.merchant, &w.device_token(), "1.00", None, None)
            .await
            .unwrap();
        let sender = FakeSender::default();
        a.dispatch_webhooks(&sender).await.unwrap();
        let sent = sender.sent.lock().unwrap().clone();
        let (_, sig, body) = sent.iter().find(|s| s.0.ends_with("/new")).unwrap();
        let now = w.clock.now().unix_seconds();
        assert!(qrgate_gateway::webhooks::verify_signature(
            &secret, sig, body, now, 300
        ));
        // Without the master key, or with another one, the gateway cannot
        // read its keys: it refuses to start, and says why.
        for s in [None, Some(Sealer::new(k2(), vec![]))] {
            let e = Gateway::start(store.clone(), w.clock.clone(), with(s))
                .await
                .err()
                .unwrap();
            assert_eq!(e.code, "secrets_unreadable", "{e:?}");
        }
        // Rotation: new key current, old one known; everything is re-sealed,
        // after which the new key alone suffices and the old one alone fails.
        let (_b, _) = Gateway::start(
            store.clone(),
            w.clock.clone(),
            with(Some(Sealer::new(k2(), vec![k1()]))),
        )
        .await
        .unwrap();
        let current = Sealer::new(k2(), vec![]);
        assert!(
            store
                .secret_rows()
                .await
                .unwrap()
                .iter()
                .all(|r| current.is_current(&r.value))
        );
        let (c, _) = Gateway::start(
            store.clone(),
            w.clock.clone(),
            with(Some(Sealer::new(k2(), vec![]))),
        )
        .await
        .unwrap();
        assert!(
            Gateway::start(
                store.clone(),
                w.clock.clone(),
                with(Some(Sealer::new(k1(), vec![])))
            )
            .await
            .is_err()
        );
        // And it still works: codes are signed with the re-sealed signing
        // key, and events with the re-sealed webhook secret.
        let p = c.issue_payment_code(&w.consumer).await.unwrap();
        w.clock.advance_seconds(1);
        c.charge(&w.merchant, &p.qr, "1.00", None, None)
            .await
            .unwrap();
        let after = FakeSender::default();
        c.dispatch_webhooks(&after).await.unwrap();
        let sent = after.sent.lock().unwrap().clone();
        let (_, sig, body) = sent.iter().find(|s| s.0.ends_with("/new")).unwrap();
        let now = w.clock.now().unix_seconds();
        assert!(qrgate_gateway::webhooks::verify_signature(
            &secret, sig, body, now, 300
        ));
        // A plaintext value planted among the sealed ones is refused, not
        // sealed into looking legitimate.
        let row = store
            .secret_rows()
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.slot == qrgate_store::SecretSlot::WebhookSecret)
            .unwrap();
        assert!(
            store
                .replace_secret(row, "whsec_planted".into())
                .await
                .unwrap()
        );
        let e = Gateway::start(
            store.clone(),
            w.clock.clone(),
            with(Some(Sealer::new(k2(), vec![]))),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(e.code, "secrets_unreadable");
        assert!(
            !e.message.contains("whsec") && !e.message.contains("we_"),
            "{}",
            e.message
        );
    }
);

// A gateway keeps the caller's key and the block list for up to a second.
// A revocation or a block made on another gateway within that second still
// stops the payment: its movement checks both again with its writes.
on_both!(
    a_key_revoked_or_a_party_blocked_elsewhere_stops_payments_at_once,
    |w: World| async move {
        let a = admin();
        let config = Config {
            processor_timeout_ms: 300,
            ..Config::default()
        };
        let (other, _) = Gateway::start(w.gw.store().clone(), w.clock.clone(), config)
            .await
            .unwrap();
        let mid = w.merchant.subject.clone().unwrap();
        let cus = w.consumer.subject.clone().unwrap();
        let k =
            w.gw.create_api_key(Some(&a), Role::Merchant, Some(mid.clone()))
                .await
                .unwrap();
        let cashier = w.gw.authenticate_for_payment(&k.secret).await.unwrap();
        w.gw.charge(&cashier, &w.device_token(), "1.00", None, None)
            .await
            .unwrap();

        other.revoke_api_key(&a, &k.id).await.unwrap();
        // This gateway's copy of the key is still fresh …
        let stale = w.gw.authenticate_for_payment(&k.secret).await.unwrap();
        // … but no money moves, and the code is not spent.
        let token = w.device_token();
        let e =
            w.gw.charge(&stale, &token, "10.00", None, None)
                .await
                .unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("api_key_revoked", Some("QG-AUTH"))
        );
        assert_eq!(e.payment_id, None);
        assert_eq!(w.balance().await, "4999.00");
        w.charge(&token, "10.00").await.unwrap();
        // The uncached path and, a second later, the cached one refuse the key.
        assert_eq!(
            w.gw.authenticate(&k.secret).await.unwrap_err().code,
            "api_key_revoked"
        );
        w.clock.advance_seconds(1);
        assert_eq!(
            w.gw.authenticate_for_payment(&k.secret)
                .await
                .unwrap_err()
                .code,
            "api_key_revoked"
        );

        // The block list: read (nobody blocked), then the payer is blocked elsewhere.
        w.charge(&w.device_token(), "1.00").await.unwrap();
        let b = other.block(&a, &cus, "card testing").await.unwrap();
        let token = w.device_token();
        let e = w.charge(&token, "10.00").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("party_blocked", Some("QG-BLOCKLIST"))
        );
        assert!(e.message.contains("payer"), "{}", e.message);
        // Declined and recorded as such, the code spent, no money moved.
        let pid = e.payment_id.clone().unwrap();
        let failed = w.gw.get_payment(&w.merchant, &pid).await.unwrap();
        assert_eq!(failed.status, "failed");
        assert_eq!(
            w.charge(&token, "10.00").await.unwrap_err().code,
            "payment_code_already_used"
        );
        assert_eq!(w.balance().await, "4988.00");
        other.lift_block(&a, &b.id).await.unwrap();
        w.charge(&w.device_token(), "2.00").await.unwrap();
        assert_eq!(w.balance().await, "4986.00");
        let check = w.gw.store().ledger_check().await.unwrap();
        assert!(check.is_sound(), "{check:?}");
    }
);

on_both!(
    blocked_parties_are_declined_until_lifted,
    |w: World| async move {
        let a = admin();
        let cus = w.consumer.subject.clone().unwrap();
        let mid = w.merchant.subject.clone().unwrap();
        assert_eq!(
            w.gw.block(&w.merchant, &cus, "x").await.unwrap_err().code,
            "forbidden"
        );
        assert_eq!(
            w.gw.block(&a, &cus, "  ").await.unwrap_err().code,
            "invalid_reason"
        );
        assert_eq!(
            w.gw.block(&a, "cus_aaaaaaaaaaaaaaaaaaaaaaaaaa", "x")
                .await
                .unwrap_err()
                .code,
            "not_found"
        );
        let b = w.gw.block(&a, &cus, "card testing").await.unwrap();
        let token = w.device_token();
        let e = w.charge(&token, "10.00").await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("party_blocked", Some("QG-BLOCKLIST"))
        );
        assert!(
            e.message.contains("payer") && !e.message.contains("card testing"),
            "{}",
            e.message
        );
        // Recorded as a declined payment; the code is spent; no money moved.
        let pid = e.payment_id.clone().unwrap();
        assert_eq!(
            w.gw.get_payment(&w.merchant, &pid).await.unwrap().status,
            "failed"
        );
        assert_eq!(
            w.charge(&token, "10.00").await.unwrap_err().code,
            "payment_code_already_used"
        );
        assert_eq!(w.balance().await, "5000.00");
        let lifted = w.gw.lift_block(&a, &b.id).await.unwrap();
        assert!(lifted.lifted_at.is_some());
        assert_eq!(
            w.gw.lift_block(&a, &b.id).await.unwrap_err().code,
            "block_already_lifted"
        );
        w.charge(&w.device_token(), "10.00").await.unwrap();
        // A blocked merchant is not paid either; the message names the merchant.
        w.gw.block(&a, &mid, "chargebacks").await.unwrap();
        let e = w.charge(&w.device_token(), "10.00").await.unwrap_err();
        assert_eq!(e.code, "party_blocked");
        assert!(e.message.contains("merchant"), "{}", e.message);
        // Another merchant is unaffected.
        let body =
            w.gw.charge(&w.other_merchant, &w.device_token(), "1.00", None, None)
                .await
                .unwrap()
                .into_body();
        assert!(body.contains("succeeded"));
        assert_eq!(w.balance().await, "4989.00");
        // Admin actions are in the audit chain, with the key that did them.
        let rows = w.gw.store().audit_rows(0, 1000).await.unwrap();
        let actions: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.action.as_str(), r.details["by"].as_str().unwrap_or("")))
            .collect();
        for want in [
            "merchant.created",
            "customer.created",
            "block.created",
            "block.lifted",
        ] {
            assert!(
                actions
                    .iter()
                    .any(|(a, by)| *a == want && *by == "key_admin"),
                "{want} by key_admin missing from {actions:?}"
            );
        }
    }
);
