//! A complaint's photos (type, size and count checked, stored, read by
//! the parties only) and the suspension of a static code several payers
//! report tampered, with the operator's decision on it; raced on both
//! stores.

use qrgate_gateway::complaints::NewComplaint;
use qrgate_gateway::money::EventListQuery;
use qrgate_gateway::reviews::ReviewQuery;
use qrgate_gateway::{Error, Kind};
use qrgate_store::ComplaintStore;
use tokio::sync::Barrier;

use super::*;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F'];

/// A distinct PNG-looking picture number `n`.
fn png(n: usize) -> Vec<u8> {
    let mut b = PNG.to_vec();
    b.extend_from_slice(n.to_string().as_bytes());
    b
}

fn tampered(payment: &str, amount: &str) -> NewComplaint {
    NewComplaint {
        payment_id: payment.into(),
        reason: "code_tampered".into(),
        description: "a sticker was over the shop's code".into(),
        amount: Some(amount.into()),
    }
}

impl World {
    /// A ticket (50.00 is past the instant refund) of the world's payer.
    async fn ticket(&self) -> String {
        let pay = self.charge(&self.device_token(), "50.00").await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let c = NewComplaint {
            payment_id: pay,
            reason: "not_received".into(),
            description: "nothing came".into(),
            amount: None,
        };
        let r = self
            .gw
            .file_complaint(&self.consumer, c, None)
            .await
            .unwrap();
        serde_json::from_str::<Value>(&r.into_body()).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `payer` pays 30.00 with static code `payload` and reports it
    /// tampered; the complaint's id.
    async fn report_tampered(&self, payer: &Principal, payload: &str) -> Result<String, Error> {
        let pay = self
            .gw
            .pay_scanned(payer, payload, Some("30.00"), None, None)
            .await?;
        let pay = id_of(pay);
        let r = self
            .gw
            .file_complaint(payer, tampered(&pay, "30.00"), None)
            .await?;
        Ok(id_of(r))
    }

    /// A new payer with 1,000.00 in their wallet.
    async fn funded_payer(&self) -> Principal {
        let p = self.new_consumer().await;
        self.gw
            .topup(&admin(), p.subject.as_deref().unwrap(), "1000.00", None)
            .await
            .unwrap();
        p
    }

    async fn code_status(&self, id: &str) -> &'static str {
        self.gw
            .get_static_code(&self.merchant, id)
            .await
            .unwrap()
            .status
    }

    async fn suspensions(&self) -> usize {
        let q = EventListQuery {
            event_type: Some("static_code.suspended".into()),
            ..Default::default()
        };
        self.gw
            .list_events(&self.merchant, q)
            .await
            .unwrap()
            .data
            .len()
    }

    async fn audited(&self, action: &str) -> usize {
        self.gw
            .store()
            .audit_rows(0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.action == action)
            .count()
    }
}

on_both!(
    photos_are_checked_stored_and_capped,
    |w: World| async move {
        let k = w.ticket().await;
        let lim = w.gw.limits().complaints;
        let add = |bytes: Vec<u8>, ct: &'static str| {
            let (gw, who, k) = (&w.gw, w.consumer.clone(), k.clone());
            async move { gw.add_complaint_photo(&who, &k, Some(ct), &bytes).await }
        };
        let (first, fresh) = add(png(1), "image/png").await.unwrap();
        assert_eq!((first.seq, fresh), (1, Fresh::Created));
        assert_eq!(first.url, format!("/v1/complaints/{k}/photos/1"));
        // The same picture again is the stored photo, not a second one.
        let (again, fresh) = add(png(1), "image/png").await.unwrap();
        assert_eq!((again, fresh), (first.clone(), Fresh::Done));

        // Type: the bytes decide and the declared type must agree.
        let e = add(JPEG.to_vec(), "image/png").await.unwrap_err();
        assert_eq!((e.kind, e.code), (Kind::UnsupportedMediaType, "photo_type"));
        let e = add(b"GIF89a....".to_vec(), "image/gif").await.unwrap_err();
        assert_eq!(e.code, "photo_type");
        let e = add(b"<svg onload=alert(1)>".to_vec(), "image/png")
            .await
            .unwrap_err();
        assert_eq!(e.code, "photo_type");
        // Size: one byte over the rule is refused, the rule at most is taken.
        let max = usize::try_from(lim.photo_max_bytes).unwrap();
        let mut big = png(0);
        big.resize(max + 1, 7);
        let e = add(big.clone(), "image/png").await.unwrap_err();
        assert_eq!(
            (e.kind, e.code, e.rule.as_deref()),
            (
                Kind::TooLarge,
                "photo_too_large",
                Some("QG-COMPLAINT-PHOTO-BYTES")
            )
        );
        big.truncate(max);
        assert_eq!(add(big.clone(), "image/png").await.unwrap().0.seq, 2);
        // JPEG too, then the cap.
        let mut jpeg = JPEG.to_vec();
        jpeg.push(1);
        assert_eq!(
            add(jpeg, "image/jpeg").await.unwrap().0.content_type,
            "image/jpeg"
        );
        let mut n = 3;
        while n < lim.photos_max {
            n += 1;
            add(png(usize::try_from(n).unwrap()), "image/png")
                .await
                .unwrap();
        }
        let e = add(png(99), "image/png").await.unwrap_err();
        assert_eq!(
            (e.kind, e.code, e.rule.as_deref()),
            (Kind::Conflict, "photo_limit", Some("QG-COMPLAINT-PHOTOS"))
        );

        // Read back byte for byte by the merchant; listed with the complaint.
        let (v, bytes) = w.gw.complaint_photo(&w.merchant, &k, 2).await.unwrap();
        assert_eq!((v.size_bytes, bytes), (lim.photo_max_bytes, big));
        let view = w.gw.get_complaint(&w.merchant, &k).await.unwrap();
        assert_eq!(
            view.photos.iter().map(|p| p.seq).collect::<Vec<_>>(),
            (1..=lim.photos_max).collect::<Vec<_>>()
        );
        // Nobody else reads or adds them; a merchant does not add them.
        let e =
            w.gw.complaint_photo(&w.other_merchant, &k, 1)
                .await
                .unwrap_err();
        assert_eq!(e.code, "not_found");
        let stranger = w.funded_payer().await;
        let e =
            w.gw.add_complaint_photo(&stranger, &k, Some("image/png"), &png(50))
                .await
                .unwrap_err();
        assert_eq!(e.code, "not_found");
        let e =
            w.gw.add_complaint_photo(&w.merchant, &k, Some("image/png"), &png(51))
                .await
                .unwrap_err();
        assert_eq!(e.kind, Kind::Forbidden);
        let e = w.gw.complaint_photo(&w.consumer, &k, 9).await.unwrap_err();
        assert_eq!(e.code, "not_found");
    }
);

on_both!(
    a_resolved_complaint_takes_no_photos,
    |w: World| async move {
        // An instant refund: resolved once the contest window passes.
        let pay = w.charge(&w.device_token(), "5.00").await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let c = NewComplaint {
            payment_id: pay,
            reason: "wrong_amount".into(),
            description: "charged 5, the sign said 3".into(),
            amount: None,
        };
        let k = id_of(w.gw.file_complaint(&w.consumer, c, None).await.unwrap());
        w.gw.add_complaint_photo(&w.consumer, &k, Some("image/png"), &png(1))
            .await
            .unwrap();
        w.clock
            .advance_seconds(w.gw.limits().complaints.contest_window_seconds + 1);
        w.gw.sweep_complaints().await.unwrap();
        let e =
            w.gw.add_complaint_photo(&w.consumer, &k, Some("image/png"), &png(2))
                .await
                .unwrap_err();
        assert_eq!(e.code, "complaint_state_conflict");
        assert_eq!(
            w.gw.get_complaint(&w.consumer, &k)
                .await
                .unwrap()
                .photos
                .len(),
            1
        );
    }
);

on_both!(photos_raced_never_pass_the_cap, |w: World| async move {
    let k = w.ticket().await;
    let max = w.gw.limits().complaints.photos_max;
    let n = usize::try_from(max).unwrap() + 3;
    let barrier = Barrier::new(n);
    let tries = (0..n).map(|i| {
        let (w, k, b) = (&w, &k, &barrier);
        async move {
            b.wait().await;
            w.gw.add_complaint_photo(&w.consumer, k, Some("image/png"), &png(i))
                .await
        }
    });
    let mut created = 0;
    for r in futures_util::future::join_all(tries).await {
        match r {
            Ok((_, Fresh::Created)) => created += 1,
            Ok((_, Fresh::Done)) => panic!("distinct pictures are not the same photo"),
            Err(e) => assert_eq!(e.code, "photo_limit", "{e:?}"),
        }
    }
    let stored = w.gw.store().complaint_photos(&k).await.unwrap();
    assert_eq!(
        (created, stored.len()),
        (max, usize::try_from(max).unwrap())
    );
    assert_eq!(
        stored.iter().map(|p| p.seq).collect::<Vec<_>>(),
        (1..=max).collect::<Vec<_>>()
    );
});

on_both!(
    a_code_several_payers_report_is_suspended_until_the_operator_decides,
    |w: World| async move {
        let sc = w.gw.create_static_code(&w.merchant).await.unwrap();
        let need = usize::try_from(w.gw.limits().complaints.tamper_reporters).unwrap();
        let payers = {
            let mut v = Vec::new();
            for _ in 0..need + 2 {
                v.push(w.funded_payer().await);
            }
            v
        };
        // One payer reporting twice is one reporter.
        w.report_tampered(&payers[0], &sc.payload).await.unwrap();
        w.report_tampered(&payers[0], &sc.payload).await.unwrap();
        for p in &payers[1..need - 1] {
            w.report_tampered(p, &sc.payload).await.unwrap();
        }
        assert_eq!(w.code_status(&sc.id).await, "active");
        // Another kind of complaint about a payment with the code does not count.
        let pay = id_of(
            w.gw.pay_scanned(&payers[need], &sc.payload, Some("30.00"), None, None)
                .await
                .unwrap(),
        );
        let mut other = tampered(&pay, "30.00");
        other.reason = "not_received".into();
        w.gw.file_complaint(&payers[need], other, None)
            .await
            .unwrap();
        assert_eq!(w.code_status(&sc.id).await, "active");

        w.report_tampered(&payers[need - 1], &sc.payload)
            .await
            .unwrap();
        assert_eq!(w.code_status(&sc.id).await, "suspended");
        let e =
            w.gw.pay_scanned(&payers[need + 1], &sc.payload, Some("1.00"), None, None)
                .await
                .unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("code_suspended", Some("QG-COMPLAINT-TAMPER-REPORTS"))
        );
        assert_eq!(
            w.gw.verify_code(&sc.payload).await.unwrap().status,
            "suspended"
        );
        assert_eq!(
            (
                w.suspensions().await,
                w.audited("static_code.suspended").await
            ),
            (1, 1)
        );

        // First in the operator's queue; decided by an admin only.
        let q =
            w.gw.reviews(&admin(), ReviewQuery::default())
                .await
                .unwrap();
        assert_eq!(
            (q.data[0].kind, q.data[0].id.as_str()),
            ("static_code", sc.id.as_str())
        );
        let e =
            w.gw.decide_review(&w.merchant, "static_code", &sc.id, "clear", "mine")
                .await
                .unwrap_err();
        assert_eq!(e.kind, Kind::Forbidden);
        let r =
            w.gw.decide_review(
                &admin(),
                "static_code",
                &sc.id,
                "clear",
                "the sticker was the shop's own",
            )
            .await
            .unwrap();
        assert_eq!(
            (r.kind.as_str(), r.decision.as_str()),
            ("static_code", "clear")
        );
        assert_eq!(w.code_status(&sc.id).await, "active");
        let e =
            w.gw.decide_review(&admin(), "static_code", &sc.id, "confirm", "again")
                .await
                .unwrap_err();
        assert_eq!((e.kind, e.code), (Kind::Conflict, "not_suspended"));
        w.gw.pay_scanned(&payers[need + 1], &sc.payload, Some("1.00"), None, None)
            .await
            .unwrap();

        // Cleared reports no longer count: it takes `need` new reporters.
        w.clock.advance_seconds(1);
        for p in &payers[..need - 1] {
            w.report_tampered(p, &sc.payload).await.unwrap();
        }
        assert_eq!(w.code_status(&sc.id).await, "active");
        w.report_tampered(&payers[need + 1], &sc.payload)
            .await
            .unwrap();
        assert_eq!(w.code_status(&sc.id).await, "suspended");
        w.gw.decide_review(
            &admin(),
            "static_code",
            &sc.id,
            "confirm",
            "a fraudster's code over it",
        )
        .await
        .unwrap();
        assert_eq!(w.code_status(&sc.id).await, "revoked");
        assert_eq!(
            (
                w.suspensions().await,
                w.audited("static_code.reinstated").await,
                w.audited("static_code.revoked").await
            ),
            (2, 1, 1)
        );
        w.assert_books_sound().await;
    }
);

on_both!(
    reports_older_than_the_window_do_not_count,
    |w: World| async move {
        let sc = w.gw.create_static_code(&w.merchant).await.unwrap();
        let lim = w.gw.limits().complaints;
        let need = usize::try_from(lim.tamper_reporters).unwrap();
        for _ in 0..need - 1 {
            let p = w.funded_payer().await;
            w.report_tampered(&p, &sc.payload).await.unwrap();
        }
        w.clock.advance_seconds(lim.tamper_window_seconds + 1);
        let p = w.funded_payer().await;
        w.report_tampered(&p, &sc.payload).await.unwrap();
        assert_eq!(w.code_status(&sc.id).await, "active");
    }
);

on_both!(
    reports_filed_together_suspend_the_code_once,
    |w: World| async move {
        let sc = w.gw.create_static_code(&w.merchant).await.unwrap();
        let need = usize::try_from(w.gw.limits().complaints.tamper_reporters).unwrap();
        // Everyone has paid; exactly the number of reports that suspends races.
        let mut paid = Vec::new();
        for _ in 0..need {
            let p = w.funded_payer().await;
            let pay = id_of(
                w.gw.pay_scanned(&p, &sc.payload, Some("30.00"), None, None)
                    .await
                    .unwrap(),
            );
            paid.push((p, pay));
        }
        let barrier = Barrier::new(paid.len());
        let reports = paid.iter().map(|(p, pay)| {
            let (w, b) = (&w, &barrier);
            async move {
                b.wait().await;
                w.gw.file_complaint(p, tampered(pay, "30.00"), None).await
            }
        });
        for r in futures_util::future::join_all(reports).await {
            r.unwrap();
        }
        assert_eq!(w.code_status(&sc.id).await, "suspended");
        assert_eq!(
            (
                w.suspensions().await,
                w.audited("static_code.suspended").await
            ),
            (1, 1)
        );
        w.assert_books_sound().await;
    }
);

on_both!(
    two_decisions_on_one_suspension_at_once_make_one,
    |w: World| async move {
        let sc = w.gw.create_static_code(&w.merchant).await.unwrap();
        let need = usize::try_from(w.gw.limits().complaints.tamper_reporters).unwrap();
        for _ in 0..need {
            let p = w.funded_payer().await;
            w.report_tampered(&p, &sc.payload).await.unwrap();
        }
        assert_eq!(w.code_status(&sc.id).await, "suspended");
        let barrier = Barrier::new(3);
        let decide = |d: &'static str| {
            let (w, b, id) = (&w, &barrier, sc.id.clone());
            async move {
                b.wait().await;
                w.gw.decide_review(&admin(), "static_code", &id, d, "looked at it")
                    .await
            }
        };
        let (a, b, m) = tokio::join!(decide("clear"), decide("confirm"), async {
            barrier.wait().await;
            w.gw.revoke_static_code(&w.merchant, &sc.id).await
        });
        let decided = [a.is_ok(), b.is_ok()];
        assert!(
            decided.iter().filter(|ok| **ok).count() <= 1,
            "one decision per suspension: {decided:?}"
        );
        let changes = [a.is_ok(), b.is_ok(), m.is_ok()]
            .iter()
            .filter(|ok| **ok)
            .count();
        let status = w.code_status(&sc.id).await;
        match (a, b, m) {
            (Ok(_), Err(e), _) => {
                assert_eq!(e.code, "not_suspended");
                // Cleared; the merchant's own revocation may still land after.
                assert!(matches!(status, "active" | "revoked"), "{status}");
            }
            (Err(e), Ok(_), _) => {
                assert_eq!(e.code, "not_suspended");
                assert_eq!(status, "revoked");
            }
            (Err(_), Err(_), Ok(())) => assert_eq!(status, "revoked"),
            other => panic!("nothing decided and nothing revoked: {other:?}"),
        }
        // Each change that happened is audited once, and only those.
        assert_eq!(
            w.audited("static_code.reinstated").await + w.audited("static_code.revoked").await,
            changes
        );
    }
);

on_both!(
    reports_of_old_payments_do_not_suspend_a_code,
    |w: World| async move {
        let sc = w.gw.create_static_code(&w.merchant).await.unwrap();
        let lim = w.gw.limits().complaints;
        let mut paid = Vec::new();
        for _ in 0..lim.tamper_reporters {
            let p = w.funded_payer().await;
            let pay = id_of(
                w.gw.pay_scanned(&p, &sc.payload, Some("30.00"), None, None)
                    .await
                    .unwrap(),
            );
            paid.push((p, pay));
        }
        // Within the complaint window, past the tamper window.
        w.clock.advance_seconds(lim.tamper_window_seconds + 1);
        for (p, pay) in &paid {
            w.gw.file_complaint(p, tampered(pay, "30.00"), None)
                .await
                .unwrap();
        }
        assert_eq!(w.code_status(&sc.id).await, "active");
        w.gw.complaints_step("node-a").await.unwrap();
        assert_eq!(w.code_status(&sc.id).await, "active");
    }
);

on_both!(
    the_sweeper_suspends_a_code_whose_reports_were_written_alone,
    |w: World| async move {
        use qrgate_core::complaint::ComplaintReason;
        use qrgate_core::state::ComplaintStatus;
        use qrgate_store::{Complaint, ComplaintStep, ComplaintWrite, Movement, Store};
        let sc = w.gw.create_static_code(&w.merchant).await.unwrap();
        let need = w.gw.limits().complaints.tamper_reporters;
        let now = w.clock.now();
        // Reports that committed without their suspension write (as when
        // the request stopped or the process died right after them).
        for n in 0..need {
            let p = w.funded_payer().await;
            let pay = id_of(
                w.gw.pay_scanned(&p, &sc.payload, Some("30.00"), None, None)
                    .await
                    .unwrap(),
            );
            let id = format!("cmp_alone{n}");
            let k = Complaint {
                id: id.clone(),
                payment_id: pay,
                merchant_id: w.merchant.subject.clone().unwrap(),
                customer_id: p.subject.clone().unwrap(),
                static_code_id: Some(sc.id.clone()),
                reason: ComplaintReason::CodeTampered,
                description: "a sticker".into(),
                amount_minor: 3000,
                currency: qrgate_core::Currency::CNY,
                status: ComplaintStatus::Open,
                resolution: None,
                instant: false,
                refunded_minor: 0,
                due_at: None,
                resolve_by: now,
                first_response_at: None,
                escalated_at: None,
                resolved_at: None,
                revisit_at: None,
                cap_released_at: None,
                processor_pending: None,
                version: 1,
                created_at: now,
                updated_at: now,
            };
            let step = ComplaintStep {
                complaint_id: id,
                seq: 1,
                actor: "payer".into(),
                action: "filed".into(),
                body: None,
                amount_minor: None,
                created_at: now,
            };
            let mut m = Movement::new(now);
            m.complaint = Some(ComplaintWrite::File {
                complaint: Box::new(k),
                step,
            });
            w.gw.store().apply(m).await.unwrap();
        }
        assert_eq!(w.code_status(&sc.id).await, "active");
        w.gw.complaints_step("node-a").await.unwrap();
        assert_eq!(w.code_status(&sc.id).await, "suspended");
        assert_eq!(w.suspensions().await, 1);
        // Once: the next pass finds nothing to do.
        w.gw.complaints_step("node-a").await.unwrap();
        assert_eq!(
            (
                w.suspensions().await,
                w.audited("static_code.suspended").await
            ),
            (1, 1)
        );
    }
);
