//! Webhooks: events after registration, signatures, retries, endpoint
//! lifecycle, claims across passes.

use super::*;

on_both!(
    an_endpoint_gets_only_events_written_after_it_was_registered,
    |w: World| async move {
        let sender = FakeSender::default();
        let before = w.charge(&w.device_token(), "2.00").await.unwrap();
        w.clock.advance_seconds(1);
        let ep =
            w.gw.create_webhook_endpoint(&w.merchant, "https://shop.example/late")
                .await
                .unwrap();
        let r = w.gw.dispatch_webhooks(&sender).await.unwrap();
        assert_eq!(r.events_fanned_out, 1, "the earlier event is handed over");
        assert!(
            sender.sent.lock().unwrap().is_empty(),
            "but not to the new endpoint"
        );
        let after = w.charge(&w.device_token(), "3.00").await.unwrap();
        w.gw.dispatch_webhooks(&sender).await.unwrap();
        let sent = sender.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        let event: Value = serde_json::from_str(&sent[0].2).unwrap();
        assert_eq!(event["data"]["payment"]["id"], after["id"]);
        assert_ne!(event["data"]["payment"]["id"], before["id"]);
        assert_eq!(
            w.gw.list_deliveries(&w.merchant, &ep.id, Default::default())
                .await
                .unwrap()
                .len(),
            1
        );
    }
);

on_both!(
    webhooks_are_signed_retried_and_redeliverable,
    |w: World| async move {
        use qrgate_gateway::webhooks::verify_signature;
        let bad =
            w.gw.create_webhook_endpoint(&w.merchant, "http://shop.example/hook")
                .await
                .unwrap_err();
        assert_eq!(bad.code, "invalid_url");
        assert_eq!(
            w.gw.create_webhook_endpoint(&w.consumer, "https://x.example/h")
                .await
                .unwrap_err()
                .code,
            "forbidden"
        );
        let ep =
            w.gw.create_webhook_endpoint(&w.merchant, "https://shop.example/hooks")
                .await
                .unwrap();
        let secret = ep.secret.clone().unwrap();
        assert!(
            w.gw.list_webhook_endpoints(&w.merchant).await.unwrap()[0]
                .secret
                .is_none(),
            "the secret is shown once"
        );

        let sender = FakeSender::default();
        sender.failures.store(2, Ordering::SeqCst);
        let p = w.charge(&w.device_token(), "9.90").await.unwrap();
        // Another merchant's payment is not delivered to this endpoint.
        w.gw.charge(&w.other_merchant, &w.device_token(), "1.00", None, None)
            .await
            .unwrap();
        let r = w.gw.dispatch_webhooks(&sender).await.unwrap();
        assert_eq!((r.events_fanned_out, r.retried), (2, 1));
        let (url, sig, body) = sender.sent.lock().unwrap()[0].clone();
        assert_eq!(url, "https://shop.example/hooks");
        let now = w.clock.now().unix_seconds();
        assert!(verify_signature(&secret, &sig, &body, now, 300));
        let event: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (
                event["type"].as_str(),
                event["data"]["payment"]["id"].as_str()
            ),
            (Some("payment.succeeded"), p["id"].as_str())
        );
        // Not due again before the backoff; due after it; the second failure doubles it.
        assert_eq!(w.gw.dispatch_webhooks(&sender).await.unwrap().retried, 0);
        w.clock.advance_seconds(10);
        assert_eq!(w.gw.dispatch_webhooks(&sender).await.unwrap().retried, 1);
        w.clock.advance_seconds(19);
        assert_eq!(w.gw.dispatch_webhooks(&sender).await.unwrap().delivered, 0);
        w.clock.advance_seconds(1);
        assert_eq!(w.gw.dispatch_webhooks(&sender).await.unwrap().delivered, 1);
        let ds =
            w.gw.list_deliveries(&w.merchant, &ep.id, Default::default())
                .await
                .unwrap();
        assert_eq!(
            (
                ds[0].status.as_str(),
                ds[0].attempts,
                ds[0].last_status_code
            ),
            ("delivered", 3, Some(200))
        );
        // By time: the delivery was made before now, not after it.
        let range = |gte: Option<Timestamp>, lt: Option<Timestamp>| {
            qrgate_gateway::webhooks::CreatedRange {
                created_gte: gte.map(Timestamp::to_rfc3339),
                created_lt: lt.map(Timestamp::to_rfc3339),
            }
        };
        let now = w.clock.now();
        let listed = |r| {
            let (gw, p, id) = (&w.gw, w.merchant.clone(), ep.id.clone());
            async move { gw.list_deliveries(&p, &id, r).await.map(|d| d.len()) }
        };
        assert_eq!(listed(range(None, Some(now))).await, Ok(1));
        assert_eq!(listed(range(Some(now), None)).await, Ok(0));
        assert_eq!(
            listed(range(Some(now), Some(now))).await.unwrap_err().code,
            "invalid_request"
        );
        assert_eq!(
            w.gw.list_deliveries(&w.other_merchant, &ep.id, Default::default())
                .await
                .unwrap_err()
                .code,
            "not_found"
        );
        // Redelivery on request sends the same signed body again.
        let again = w.gw.redeliver(&w.merchant, ds[0].id).await.unwrap();
        assert_eq!(again.status, "pending");
        assert_eq!(w.gw.dispatch_webhooks(&sender).await.unwrap().delivered, 1);
        assert_eq!(sender.sent.lock().unwrap().last().unwrap().2, body);

        // An endpoint that never answers is given up after three days.
        sender.failures.store(i64::MAX, Ordering::SeqCst);
        w.charge(&w.device_token(), "1.00").await.unwrap();
        let mut gave_up = 0;
        for _ in 0..200 {
            let r = w.gw.dispatch_webhooks(&sender).await.unwrap();
            gave_up += r.gave_up;
            if gave_up > 0 {
                break;
            }
            w.clock.advance_seconds(3600);
        }
        assert_eq!(gave_up, 1);
        let failed =
            w.gw.list_deliveries(&w.merchant, &ep.id, Default::default())
                .await
                .unwrap()
                .into_iter()
                .find(|d| d.status == "failed")
                .unwrap();
        assert!(
            failed.attempts > 24,
            "retried for at least a day: {} attempts",
            failed.attempts
        );
    }
);

on_both!(
    webhook_endpoints_point_only_at_the_internet_and_have_a_lifecycle,
    |w: World| async move {
        use qrgate_gateway::webhooks::{EndpointAction, MAX_ENDPOINTS, verify_signature};
        // Internal targets, however they are spelled, are refused.
        for url in [
            "http://127.0.0.1@example.com/",
            "http://127.0.0.1.example.com/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::ffff:10.0.0.1]/h",
            "https://0x7f000001/h",
            "https://localhost/h",
            "https://db.internal.example/h",
            "https://mixed.example/h",
        ] {
            let e =
                w.gw.create_webhook_endpoint(&w.merchant, url)
                    .await
                    .unwrap_err();
            assert_eq!(e.code, "invalid_url", "{url}");
            assert!(
                !e.message.contains("10.20") && !e.message.contains("169.254"),
                "{}",
                e.message
            );
        }
        // At most MAX_ENDPOINTS live endpoints; a deleted one frees a place.
        let mut ids = Vec::new();
        for i in 0..MAX_ENDPOINTS {
            let ep =
                w.gw.create_webhook_endpoint(&w.merchant, &format!("https://shop.example/h{i}"))
                    .await
                    .unwrap();
            assert_eq!(ep.status, "enabled");
            ids.push(ep.id);
        }
        let e =
            w.gw.create_webhook_endpoint(&w.merchant, "https://shop.example/more")
                .await
                .unwrap_err();
        assert_eq!(e.code, "too_many_endpoints");
        for id in &ids[1..] {
            let gone =
                w.gw.change_webhook_endpoint(&w.merchant, id, EndpointAction::Delete)
                    .await
                    .unwrap();
            assert_eq!(gone.status, "deleted");
        }
        assert_eq!(
            w.gw.list_webhook_endpoints(&w.merchant)
                .await
                .unwrap()
                .len(),
            1
        );
        // Another merchant can neither see nor change it.
        let ep = ids[0].clone();
        assert_eq!(
            w.gw.change_webhook_endpoint(&w.other_merchant, &ep, EndpointAction::Disable)
                .await
                .unwrap_err()
                .code,
            "not_found"
        );
        // Disabled: events wait; enabled again: they are sent.
        let sender = FakeSender::default();
        let off =
            w.gw.change_webhook_endpoint(&w.merchant, &ep, EndpointAction::Disable)
                .await
                .unwrap();
        assert_eq!(off.status, "disabled");
        w.clock.advance_seconds(1);
        // A consumer pays an order: the merchant's event names no customer
        // and no card.
        let card = w.link(&w.consumer, "4242424242424242").await;
        let paid = w
            .pay_order(&w.merchant, &w.consumer, "3.00", Some(&card))
            .await
            .unwrap();
        assert!(paid["customer_id"].is_string(), "the payer sees itself");
        w.gw.dispatch_webhooks(&sender).await.unwrap();
        assert!(sender.sent.lock().unwrap().is_empty());
        // Enabled again: the event written while it was disabled waited and
        // is sent now, then the next one.
        w.gw.change_webhook_endpoint(&w.merchant, &ep, EndpointAction::Enable)
            .await
            .unwrap();
        w.clock.advance_seconds(1);
        let next = w
            .pay_order(&w.merchant, &w.consumer, "4.00", Some(&card))
            .await
            .unwrap();
        w.gw.dispatch_webhooks(&sender).await.unwrap();
        let sent = sender.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 2, "{sent:?}");
        let ids: Vec<Value> = sent
            .iter()
            .map(|s| serde_json::from_str::<Value>(&s.2).unwrap()["data"]["payment"]["id"].clone())
            .collect();
        assert_eq!(ids, [paid["id"].clone(), next["id"].clone()]);
        for (_, _, body) in &sent {
            assert!(!body.contains(w.consumer.subject.as_deref().unwrap()));
            assert!(!body.contains(&card), "{body}");
        }
        // A rotation: the new secret is shown once; both sign for a day.
        let old_secret = {
            // The first endpoint's secret was shown at creation only; rotate
            // twice so the test holds both the old and the new one.
            let r1 =
                w.gw.change_webhook_endpoint(&w.merchant, &ep, EndpointAction::RotateSecret)
                    .await
                    .unwrap();
            r1.secret.unwrap()
        };
        let r2 =
            w.gw.change_webhook_endpoint(&w.merchant, &ep, EndpointAction::RotateSecret)
                .await
                .unwrap();
        let new_secret = r2.secret.unwrap();
        assert_ne!(old_secret, new_secret);
        assert!(
            w.gw.list_webhook_endpoints(&w.merchant).await.unwrap()[0]
                .secret
                .is_none()
        );
        w.clock.advance_seconds(1);
        w.pay_order(&w.merchant, &w.consumer, "5.00", Some(&card))
            .await
            .unwrap();
        w.gw.dispatch_webhooks(&sender).await.unwrap();
        let (_, sig, body) = sender.sent.lock().unwrap().last().unwrap().clone();
        let now = w.clock.now().unix_seconds();
        assert!(verify_signature(&new_secret, &sig, &body, now, 300));
        assert!(verify_signature(&old_secret, &sig, &body, now, 300));
        // After the overlap only the new secret signs.
        w.clock.advance_seconds(24 * 3600 + 1);
        w.pay_order(&w.merchant, &w.consumer, "6.00", Some(&card))
            .await
            .unwrap();
        w.gw.dispatch_webhooks(&sender).await.unwrap();
        let (_, sig, body) = sender.sent.lock().unwrap().last().unwrap().clone();
        let now = w.clock.now().unix_seconds();
        assert!(verify_signature(&new_secret, &sig, &body, now, 300));
        assert!(!verify_signature(&old_secret, &sig, &body, now, 300));
        // Every change is in the audit chain.
        let log = w.gw.store().audit_rows(0, 1000).await.unwrap();
        let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
        for a in [
            "webhook_endpoint.created",
            "webhook_endpoint.deleted",
            "webhook_endpoint.disabled",
            "webhook_endpoint.enabled",
            "webhook_endpoint.secret_rotated",
        ] {
            assert!(actions.contains(&a), "{a} not in {actions:?}");
        }
    }
);

/// Posts slowly, counting what it sent.
#[derive(Default)]
struct SlowSender {
    sent: std::sync::Mutex<Vec<String>>,
}

impl qrgate_gateway::webhooks::Sender for SlowSender {
    async fn post(&self, _url: &str, _signature: &str, body: &str) -> Result<u16, String> {
        tokio::time::sleep(Duration::from_millis(30)).await;
        self.sent.lock().unwrap().push(body.into());
        Ok(200)
    }
}

on_both!(
    a_disable_racing_a_dispatch_pass_stops_its_next_attempts,
    |w: World| async move {
        // A pass has read the endpoint and is sending its deliveries one at
        // a time (30 ms each) when the merchant disables it: the attempt in
        // flight may finish, but none starts after the disable committed.
        let ep =
            w.gw.create_webhook_endpoint(&w.merchant, "https://shop.example/d")
                .await
                .unwrap();
        w.clock.advance_seconds(1);
        for _ in 0..6 {
            w.charge(&w.device_token(), "1.00").await.unwrap();
        }
        let sender = SlowSender::default();
        let disable = async {
            // Once the first delivery is out.
            while sender.sent.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            w.gw.change_webhook_endpoint(
                &w.merchant,
                &ep.id,
                qrgate_gateway::webhooks::EndpointAction::Disable,
            )
            .await
            .unwrap();
            sender.sent.lock().unwrap().len()
        };
        let (pass, sent_at_disable) = tokio::join!(w.gw.dispatch_webhooks(&sender), disable);
        pass.unwrap();
        let sent = sender.sent.lock().unwrap().len();
        assert!(sent < 6, "every delivery was sent despite the disable");
        assert!(
            sent <= sent_at_disable + 1,
            "{sent} sent, {sent_at_disable} when the disable committed: an attempt started after it"
        );
        // The rest wait, and go out once it is enabled again.
        w.gw.change_webhook_endpoint(
            &w.merchant,
            &ep.id,
            qrgate_gateway::webhooks::EndpointAction::Enable,
        )
        .await
        .unwrap();
        w.clock.advance_seconds(120);
        while w.gw.dispatch_webhooks(&sender).await.unwrap().delivered > 0 {}
        assert_eq!(sender.sent.lock().unwrap().len(), 6);
    }
);

on_both!(
    overlapping_dispatch_passes_send_each_delivery_once,
    |w: World| async move {
        for i in 0..3 {
            w.gw.create_webhook_endpoint(&w.merchant, &format!("https://shop.example/p{i}"))
                .await
                .unwrap();
        }
        w.clock.advance_seconds(1);
        for _ in 0..6 {
            w.charge(&w.device_token(), "1.00").await.unwrap();
        }
        let sender = SlowSender::default();
        // Four passes at once, as four nodes (or one node's overlapping
        // passes) would run them: every attempt is claimed first.
        let (a, b, c, d) = tokio::join!(
            w.gw.dispatch_webhooks(&sender),
            w.gw.dispatch_webhooks(&sender),
            w.gw.dispatch_webhooks(&sender),
            w.gw.dispatch_webhooks(&sender),
        );
        let delivered: usize = [a, b, c, d].into_iter().map(|r| r.unwrap().delivered).sum();
        // A pass that found nothing due yet: one more, after the others.
        let rest = w.gw.dispatch_webhooks(&sender).await.unwrap().delivered;
        let sent = sender.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 18, "3 endpoints x 6 events");
        assert_eq!(delivered + rest, 18);
        let mut seen = std::collections::BTreeMap::new();
        for body in &sent {
            *seen.entry(body.clone()).or_insert(0) += 1;
        }
        assert!(
            seen.values().all(|n| *n == 3),
            "each event once per endpoint"
        );
    }
);
