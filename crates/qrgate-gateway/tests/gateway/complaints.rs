//! Complaints: the instant refund of a small disputed charge, the ticket
//! the merchant answers, escalation (by the payer, or by a missed
//! deadline on any node), the operator's decisions, the payer's caps, and
//! the races of a complaint against refunds and against itself.

use qrgate_gateway::complaints::{Answer, Decision, NewComplaint, PayerMove};
use qrgate_gateway::{Error, Kind};
use qrgate_store::ComplaintStore;
use tokio::sync::Barrier;

use super::*;

fn complaint_of(payment: &str, reason: &str, amount: Option<&str>) -> NewComplaint {
    NewComplaint {
        payment_id: payment.into(),
        reason: reason.into(),
        description: "the coffee never came".into(),
        amount: amount.map(Into::into),
    }
}

fn body_of(r: Reply) -> Value {
    serde_json::from_str(&r.into_body()).unwrap()
}

impl World {
    async fn paid_now(&self, amount: &str) -> String {
        self.charge(&self.device_token(), amount).await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn file(&self, payment: &str, amount: Option<&str>) -> Result<Reply, Error> {
        self.gw
            .file_complaint(
                &self.consumer,
                complaint_of(payment, "not_received", amount),
                None,
            )
            .await
    }

    async fn pending_minor(&self) -> i64 {
        let m = self.merchant.subject.clone().unwrap();
        self.gw
            .store()
            .account(&qrgate_core::AccountId::settlement(
                &m,
                qrgate_core::Currency::CNY,
            ))
            .await
            .unwrap()
            .unwrap()
            .balance_minor
    }
}

on_both!(
    a_small_complaint_is_refunded_in_the_same_answer,
    |w: World| async move {
        let before = minor_units(&w.balance().await);
        let pay = w.paid_now("15.00").await;
        let r = w.file(&pay, None).await.unwrap();
        assert_eq!(r.fresh(), Some(Fresh::Created));
        let k = body_of(r);
        assert_eq!(k["status"], "refunded_instantly");
        assert_eq!(
            (k["instant"].as_bool(), k["refunded"].as_str()),
            (Some(true), Some("15.00"))
        );
        assert_eq!(k["waiting_for"], "merchant");
        // The money is back in the wallet it came from, as one refund of
        // the payment, numbered by the gateway.
        assert_eq!(minor_units(&w.balance().await), before);
        let refunds = w.gw.list_refunds(&w.merchant, &pay).await.unwrap();
        assert_eq!(refunds.len(), 1);
        assert_eq!(refunds[0].out_refund_no, format!("qg_i_{pay}"));
        w.assert_books_sound().await;

        // Filing it again: the same complaint, no second refund.
        let again = w.file(&pay, None).await.unwrap();
        assert_eq!(again.fresh(), Some(Fresh::Done));
        assert_eq!(body_of(again)["id"], k["id"]);
        // Another reason while it is not resolved: refused, naming it.
        let e =
            w.gw.file_complaint(&w.consumer, complaint_of(&pay, "wrong_amount", None), None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "complaint_already_open");
        assert!(e.message.contains(k["id"].as_str().unwrap()), "{e:?}");
        assert_eq!(w.gw.list_refunds(&w.merchant, &pay).await.unwrap().len(), 1);

        // The merchant sees it (webhook event too); another merchant, or
        // another payer, does not.
        let id = k["id"].as_str().unwrap();
        let seen = w.gw.get_complaint(&w.merchant, id).await.unwrap();
        assert_eq!(seen.customer_id, None);
        for who in [&w.other_merchant, &w.new_consumer().await] {
            assert_eq!(
                w.gw.get_complaint(who, id).await.unwrap_err().kind,
                Kind::NotFound
            );
        }
        let theirs =
            w.gw.list_complaints(&w.other_merchant, Default::default())
                .await
                .unwrap();
        assert!(theirs.data.is_empty());
        let events =
            w.gw.list_events(
                &w.merchant,
                qrgate_gateway::money::EventListQuery::default(),
            )
            .await
            .unwrap();
        let created = events
            .data
            .iter()
            .find(|e| e.event_type == "complaint.created")
            .expect("a complaint.created event");
        assert_eq!(created.data["complaint"]["id"], id);

        // After the contest window, the instant refund is final.
        w.clock.advance_seconds(3 * 86_400 + 1);
        assert_eq!(w.gw.sweep_complaints().await.unwrap(), 1);
        let done = w.gw.get_complaint(&w.consumer, id).await.unwrap();
        assert_eq!(
            (done.status.as_str(), done.resolution.as_deref()),
            ("resolved", Some("instant_refund"))
        );
    }
);

on_both!(
    only_the_payer_complains_about_their_own_payment,
    |w: World| async move {
        let pay = w.paid_now("15.00").await;
        let stranger = w.new_consumer().await;
        let e =
            w.gw.file_complaint(&stranger, complaint_of(&pay, "not_received", None), None)
                .await
                .unwrap_err();
        assert_eq!(e.kind, Kind::NotFound);
        // Merchants and admins do not file complaints.
        let e =
            w.gw.file_complaint(&w.merchant, complaint_of(&pay, "not_received", None), None)
                .await
                .unwrap_err();
        assert_eq!(e.kind, Kind::Forbidden);
        // Bad input: unknown reason, empty description, more than paid.
        let bad = [
            complaint_of(&pay, "fraud", None),
            NewComplaint {
                description: "  ".into(),
                ..complaint_of(&pay, "other", None)
            },
            complaint_of(&pay, "other", Some("15.01")),
            complaint_of(&pay, "other", Some("0")),
        ];
        for b in bad {
            let e = w.gw.file_complaint(&w.consumer, b, None).await.unwrap_err();
            assert_eq!(e.kind, Kind::BadRequest, "{e:?}");
        }
        assert!(
            w.gw.list_refunds(&w.merchant, &pay)
                .await
                .unwrap()
                .is_empty()
        );
        // Past QG-COMPLAINT-WINDOW (a year), the payment is too old.
        w.clock.advance_seconds(365 * 86_400 + 1);
        let e = w.file(&pay, None).await.unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_deref()),
            ("complaint_window_closed", Some("QG-COMPLAINT-WINDOW"))
        );
        w.assert_books_sound().await;
    }
);

on_both!(
    a_ticket_is_answered_escalated_and_decided_with_a_refund,
    |w: World| async move {
        let before = minor_units(&w.balance().await);
        let pay = w.paid_now("50.00").await;
        let k = body_of(w.file(&pay, None).await.unwrap());
        assert_eq!(
            (k["status"].as_str(), k["instant"].as_bool()),
            (Some("open"), Some(false))
        );
        let id = k["id"].as_str().unwrap().to_owned();
        // The merchant has QG-COMPLAINT-FIRST-REPLY (24 h) to answer.
        let due = Timestamp::parse_rfc3339(k["due_at"].as_str().unwrap()).unwrap();
        assert_eq!(due.millis_since(w.gw.now()), 86_400_000);
        // Only the merchant answers; the payer cannot accept yet.
        let e =
            w.gw.payer_moves_complaint(&w.consumer, &id, PayerMove::Accept, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "complaint_state_conflict");
        w.clock.advance_seconds(3_600);
        let explain = Answer::Explain {
            message: "it was delivered to the front desk".into(),
        };
        let a = body_of(
            w.gw.answer_complaint(&w.merchant, &id, explain, None)
                .await
                .unwrap(),
        );
        assert_eq!(
            (a["status"].as_str(), a["waiting_for"].as_str()),
            (Some("answered"), Some("payer"))
        );
        assert!(a["first_response_at"].is_string());
        // Answering twice is refused: it is the payer's move.
        let again = Answer::Reject {
            reason: "no".into(),
        };
        let e =
            w.gw.answer_complaint(&w.merchant, &id, again, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "complaint_state_conflict");
        let esc = PayerMove::Escalate {
            reason: "there is no front desk".into(),
        };
        let e = body_of(
            w.gw.payer_moves_complaint(&w.consumer, &id, esc, None)
                .await
                .unwrap(),
        );
        assert_eq!(
            (e["status"].as_str(), e["waiting_for"].as_str()),
            (Some("escalated"), Some("operator"))
        );
        // The merchant cannot decide it; the operator does, with a reason.
        let decide = || Decision::Refund {
            amount: None,
            reason: "the merchant shows no delivery".into(),
        };
        let e =
            w.gw.decide_complaint(&w.merchant, &id, decide(), None)
                .await
                .unwrap_err();
        assert_eq!(e.kind, Kind::Forbidden);
        let d = body_of(
            w.gw.decide_complaint(&admin(), &id, decide(), None)
                .await
                .unwrap(),
        );
        assert_eq!(
            (d["status"].as_str(), d["resolution"].as_str()),
            (Some("resolved"), Some("operator_refund"))
        );
        assert_eq!(d["refunded"], "50.00");
        let steps: Vec<&str> = d["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["action"].as_str().unwrap())
            .collect();
        assert_eq!(steps, ["filed", "explained", "escalated", "refund_ordered"]);
        assert_eq!(minor_units(&w.balance().await), before);
        // Deciding again is refused; nothing more moves.
        let e =
            w.gw.decide_complaint(&admin(), &id, decide(), None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "complaint_state_conflict");
        assert_eq!(w.gw.list_refunds(&w.merchant, &pay).await.unwrap().len(), 1);
        // Every decision is in the audit chain with its reason.
        let rows = w.gw.store().audit_rows(0, 10_000).await.unwrap();
        let refund_row = rows
            .iter()
            .find(|r| r.action == "refund.succeeded" && r.details["complaint_id"] == id.as_str())
            .expect("the ordered refund's audit row");
        assert_eq!(
            refund_row.details["reason"],
            "the merchant shows no delivery"
        );
        assert_eq!(refund_row.details["by"], "key_admin");
        w.assert_books_sound().await;
    }
);

on_both!(
    a_missed_deadline_escalates_once_with_two_nodes_sweeping,
    |w: World| async move {
        let pay = w.paid_now("50.00").await;
        let id = id_of(w.file(&pay, None).await.unwrap());
        // Not yet due: nothing moves.
        w.clock.advance_seconds(86_399);
        assert_eq!(w.gw.sweep_complaints().await.unwrap(), 0);
        w.clock.advance_seconds(2);
        let (a, b) = (w.node().await, w.node().await);
        let barrier = Barrier::new(2);
        let (ra, rb) = tokio::join!(
            async {
                barrier.wait().await;
                a.sweep_complaints().await
            },
            async {
                barrier.wait().await;
                b.sweep_complaints().await
            }
        );
        assert_eq!(ra.unwrap() + rb.unwrap(), 1, "escalated once");
        let k = w.gw.get_complaint(&admin(), &id).await.unwrap();
        assert_eq!(k.status, "escalated");
        assert!(k.escalated_at.is_some() && k.first_response_at.is_none());
        let steps: Vec<&str> = k.steps.iter().map(|s| s.action.as_str()).collect();
        assert_eq!(steps, ["filed", "deadline_missed"]);
        // Too late for the merchant; the operator decides with a refund.
        let late = Answer::Explain {
            message: "sorry".into(),
        };
        let e =
            w.gw.answer_complaint(&w.merchant, &id, late, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "complaint_state_conflict");
        let refund = Decision::Refund {
            amount: Some("50.00".into()),
            reason: "no answer in time".into(),
        };
        let d = body_of(
            w.gw.decide_complaint(&admin(), &id, refund, None)
                .await
                .unwrap(),
        );
        assert_eq!(d["resolution"], "operator_refund");
        // One complaints lease: only one node sweeps at a time.
        assert!(w.gw.complaints_step("node-a").await.is_ok());
        assert_eq!(a.complaints_step("node-b").await.unwrap(), 0);
        w.assert_books_sound().await;
    }
);

on_both!(
    the_instant_refund_caps_hold_per_payer,
    |w: World| async move {
        // QG-COMPLAINT-INSTANT-CAP: 3 in 30 days; the 4th is a ticket.
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let pay = w.paid_now("5.00").await;
            statuses.push(
                body_of(w.file(&pay, None).await.unwrap())["status"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        assert_eq!(
            statuses,
            [
                "refunded_instantly",
                "refunded_instantly",
                "refunded_instantly",
                "open"
            ]
        );
        // 30 days on, the window has let the first ones go.
        w.clock.advance_seconds(30 * 86_400 + 1);
        // QG-COMPLAINT-INSTANT-CAP-AMOUNT: 50.00 in 30 days.
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let pay = w.paid_now("19.00").await;
            statuses.push(
                body_of(w.file(&pay, None).await.unwrap())["status"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        assert_eq!(
            statuses,
            ["refunded_instantly", "refunded_instantly", "open"]
        );
        // 20.01 is never instant.
        let pay = w.paid_now("20.01").await;
        assert_eq!(body_of(w.file(&pay, None).await.unwrap())["status"], "open");
        w.assert_books_sound().await;
    }
);

on_both!(
    a_partial_answer_then_acceptance_and_the_silent_payer,
    |w: World| async move {
        let pay = w.paid_now("50.00").await;
        let id = id_of(w.file(&pay, None).await.unwrap());
        let part = Answer::Refund {
            amount: Some("20.00".into()),
            message: Some("half the order came".into()),
        };
        let a = body_of(
            w.gw.answer_complaint(&w.merchant, &id, part, None)
                .await
                .unwrap(),
        );
        assert_eq!(
            (a["status"].as_str(), a["refunded"].as_str()),
            (Some("answered"), Some("20.00"))
        );
        let acc = body_of(
            w.gw.payer_moves_complaint(&w.consumer, &id, PayerMove::Accept, None)
                .await
                .unwrap(),
        );
        assert_eq!(acc["resolution"], "payer_accepted");

        // A second complaint on the payment once the first is resolved;
        // the merchant rejects it and the payer never answers.
        let id2 = id_of(
            w.gw.file_complaint(
                &w.consumer,
                complaint_of(&pay, "wrong_amount", Some("30.00")),
                None,
            )
            .await
            .unwrap(),
        );
        assert_ne!(id, id2);
        let rej = Answer::Reject {
            reason: "the price was on the menu".into(),
        };
        w.gw.answer_complaint(&w.merchant, &id2, rej, None)
            .await
            .unwrap();
        w.clock.advance_seconds(7 * 86_400 + 1);
        assert_eq!(w.gw.sweep_complaints().await.unwrap(), 1);
        let k = w.gw.get_complaint(&w.merchant, &id2).await.unwrap();
        assert_eq!(k.resolution.as_deref(), Some("payer_silent"));
        w.assert_books_sound().await;
    }
);

on_both!(
    a_contested_instant_refund_is_borne_by_goodwill_never_the_payer,
    |w: World| async move {
        let wallet = minor_units(&w.balance().await);
        let pay = w.paid_now("15.00").await;
        let pending_paid = w.pending_minor().await;
        let id = id_of(w.file(&pay, None).await.unwrap());
        let pending_refunded = w.pending_minor().await;
        assert!(pending_refunded < pending_paid);
        let c = body_of(
            w.gw.contest_complaint(&w.merchant, &id, "the customer ate it".into(), None)
                .await
                .unwrap(),
        );
        assert_eq!(
            (c["status"].as_str(), c["waiting_for"].as_str()),
            (Some("contested"), Some("operator"))
        );
        // A park as far off as a mistyped year is refused (at most 30
        // days), and so is one in the past.
        for off_ms in [31 * 86_400_000_i64, -1000] {
            let far = Decision::Park {
                until: Timestamp::from_unix_millis(w.gw.now().unix_millis() + off_ms),
                reason: "later".into(),
            };
            let e =
                w.gw.decide_complaint(&admin(), &id, far, None)
                    .await
                    .unwrap_err();
            assert_eq!(e.code, "invalid_request", "{off_ms}");
        }
        // The operator parks it, then decides for the merchant.
        let until = Timestamp::from_unix_millis(w.gw.now().unix_millis() + 3_600_000);
        let park = Decision::Park {
            until,
            reason: "asking the shop for its camera".into(),
        };
        let p = body_of(
            w.gw.decide_complaint(&admin(), &id, park, None)
                .await
                .unwrap(),
        );
        assert_eq!(
            (p["status"].as_str(), p["revisit_at"].is_string()),
            (Some("contested"), true)
        );
        let recover = Decision::Recover {
            reason: "the camera shows the meal served".into(),
        };
        let d = body_of(
            w.gw.decide_complaint(&admin(), &id, recover, None)
                .await
                .unwrap(),
        );
        assert_eq!(d["resolution"], "instant_refund_recovered");
        // The payer keeps the money; the merchant is made whole from goodwill.
        assert_eq!(minor_units(&w.balance().await), wallet);
        assert_eq!(w.pending_minor().await, pending_paid);
        let goodwill =
            w.gw.store()
                .account(&qrgate_core::AccountId::goodwill(
                    qrgate_core::Currency::CNY,
                ))
                .await
                .unwrap()
                .unwrap();
        assert_eq!(goodwill.balance_minor, pending_refunded - pending_paid);
        w.assert_books_sound().await;

        // A contest after the window is refused.
        let pay = w.paid_now("10.00").await;
        let id = id_of(w.file(&pay, None).await.unwrap());
        w.clock.advance_seconds(3 * 86_400 + 1);
        let e =
            w.gw.contest_complaint(&w.merchant, &id, "late".into(), None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "complaint_state_conflict");
    }
);

on_both!(
    two_filings_at_once_give_one_complaint_and_one_refund,
    |w: World| async move {
        for amount in ["15.00", "50.00"] {
            w.clock.advance_seconds(31 * 86_400);
            let pay = w.paid_now(amount).await;
            let barrier = Barrier::new(2);
            let (a, b) = tokio::join!(
                async {
                    barrier.wait().await;
                    w.file(&pay, None).await
                },
                async {
                    barrier.wait().await;
                    w.file(&pay, None).await
                }
            );
            let ids: Vec<String> = [a, b].into_iter().map(|r| id_of(r.unwrap())).collect();
            assert_eq!(ids[0], ids[1], "{amount}: one complaint");
            let (all, _) =
                w.gw.store()
                    .complaints(&qrgate_store::ComplaintQuery {
                        payment_id: Some(pay.clone()),
                        limit: 10,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
            assert_eq!(all.len(), 1);
            let refunds = w.gw.list_refunds(&w.merchant, &pay).await.unwrap();
            assert_eq!(refunds.len(), usize::from(amount == "15.00"));
        }
        w.assert_books_sound().await;
    }
);

on_both!(
    an_instant_refund_racing_the_merchants_refund_never_returns_more_than_captured,
    |w: World| async move {
        for trial in 0..6 {
            // A new cap window each trial, so the payer's cap never decides.
            w.clock.advance_seconds(31 * 86_400);
            let pay = w.paid_now("15.00").await;
            let barrier = Barrier::new(2);
            let (a, b) = tokio::join!(
                async {
                    barrier.wait().await;
                    w.file(&pay, None).await
                },
                async {
                    barrier.wait().await;
                    w.gw.refund(&w.merchant, &pay, "15.00", &format!("R{trial}"), None)
                        .await
                }
            );
            let won = usize::from(a.is_ok()) + usize::from(b.is_ok());
            assert_eq!(won, 1, "trial {trial}: {a:?} {b:?}");
            for e in [a.err(), b.err()].into_iter().flatten() {
                assert!(
                    ["limit_exceeded", "payment_not_complainable"].contains(&e.code),
                    "trial {trial}: {e:?}"
                );
            }
            let p = w.gw.get_payment(&w.merchant, &pay).await.unwrap();
            assert_eq!(p.amount_refunded, "15.00", "trial {trial}");
            w.assert_books_sound().await;
        }
    }
);

on_both!(the_figures_of_a_scripted_scenario, |w: World| async move {
    use qrgate_gateway::complaints::FiguresQuery;
    let mut ids = Vec::new();
    for amount in ["50.00", "40.00", "15.00", "30.00", "60.00"] {
        let pay = w.paid_now(amount).await;
        ids.push(id_of(w.file(&pay, None).await.unwrap()));
    }
    let [c1, c2, c3, c4, c5] = <[String; 5]>::try_from(ids).unwrap();
    let hour = 3_600;
    w.clock.advance_seconds(hour);
    let explain = Answer::Explain {
        message: "delivered at 12:00".into(),
    };
    w.gw.answer_complaint(&w.merchant, &c1, explain, None)
        .await
        .unwrap();
    w.clock.advance_seconds(hour);
    let refund = Answer::Refund {
        amount: None,
        message: None,
    };
    w.gw.answer_complaint(&w.merchant, &c4, refund, None)
        .await
        .unwrap();
    w.clock.advance_seconds(hour);
    let reject = Answer::Reject {
        reason: "the price was shown".into(),
    };
    w.gw.answer_complaint(&w.merchant, &c2, reject, None)
        .await
        .unwrap();
    w.gw.payer_moves_complaint(&w.consumer, &c1, PayerMove::Accept, None)
        .await
        .unwrap();
    let esc = PayerMove::Escalate {
        reason: "it was not".into(),
    };
    w.gw.payer_moves_complaint(&w.consumer, &c2, esc, None)
        .await
        .unwrap();
    let uphold = Decision::Reject {
        reason: "the menu shows the price".into(),
    };
    w.gw.decide_complaint(&admin(), &c2, uphold, None)
        .await
        .unwrap();
    // c5 is never answered: escalated after 24 h, decided after 80 h,
    // past its 72 h deadline. c3's instant refund becomes final.
    w.clock.advance_seconds(22 * hour);
    assert_eq!(w.gw.sweep_complaints().await.unwrap(), 1);
    w.clock.advance_seconds(56 * hour);
    assert_eq!(w.gw.sweep_complaints().await.unwrap(), 1);
    let late = Decision::Refund {
        amount: None,
        reason: "no answer".into(),
    };
    w.gw.decide_complaint(&admin(), &c5, late, None)
        .await
        .unwrap();
    let status = |id: &str| {
        let gw = &w.gw;
        let id = id.to_owned();
        async move { gw.get_complaint(&admin(), &id).await.unwrap().status }
    };
    for id in [&c1, &c2, &c3, &c4, &c5] {
        assert_eq!(status(id).await, "resolved", "{id}");
    }

    let f =
        w.gw.complaint_figures(&w.merchant, FiguresQuery::default())
            .await
            .unwrap();
    assert_eq!(
        (
            f.filed,
            f.instant_refunds,
            f.instant_refunded_amount.as_str()
        ),
        (5, 1, "15.00")
    );
    // Answered tickets: c1 after 1 h, c4 after 2 h, c2 after 3 h.
    assert_eq!(
        (f.first_response.answered, f.first_response.unanswered),
        (3, 1)
    );
    assert_eq!(f.first_response.p50_seconds, Some(7_200));
    assert_eq!(f.first_response.p90_seconds, Some(10_800));
    // Resolved without escalation: c1, c3, c4 of the five.
    assert_eq!((f.first_resolution.count, f.first_resolution.of), (3, 5));
    assert_eq!(f.first_resolution.percent.as_deref(), Some("60.00"));
    // All but c5 were resolved within 72 h.
    assert_eq!(f.resolved_within_deadline.percent.as_deref(), Some("80.00"));
    assert_eq!(f.escalated.percent.as_deref(), Some("40.00"));
    assert_eq!(
        (f.payments, f.per_thousand_payments.as_deref()),
        (5, Some("1000.00"))
    );
    assert!(!f.rate_alarm, "too few payments for the alarm");
    // Another merchant's figures are its own; it cannot read these.
    let theirs =
        w.gw.complaint_figures(&w.other_merchant, FiguresQuery::default())
            .await
            .unwrap();
    assert_eq!(theirs.filed, 0);
    let mine = FiguresQuery {
        merchant_id: w.merchant.subject.clone(),
        ..Default::default()
    };
    let e =
        w.gw.complaint_figures(&w.other_merchant, mine)
            .await
            .unwrap_err();
    assert_eq!(e.kind, Kind::Forbidden);
    // Overall, for the operator, and as gauges.
    let all =
        w.gw.complaint_figures(&admin(), FiguresQuery::default())
            .await
            .unwrap();
    assert_eq!(all.filed, 5);
    let gauges = w.gw.complaint_gauges().await;
    assert!(
        gauges.contains("qrgate_complaints_first_resolution_percent 60.00"),
        "{gauges}"
    );
    assert!(
        gauges.contains("qrgate_complaints_first_response_p50_seconds 7200"),
        "{gauges}"
    );
    w.assert_books_sound().await;
});

on_both!(
    a_merchant_past_the_complaint_rate_raises_one_alarm_a_day,
    |w: World| async move {
        use qrgate_gateway::complaints::FiguresQuery;
        use qrgate_gateway::money::EventListQuery;
        let mut pays = Vec::new();
        for _ in 0..100 {
            pays.push(w.paid_now("1.00").await);
        }
        let alarms = || async {
            let q = EventListQuery {
                event_type: Some("complaint.rate_alarm".into()),
                ..Default::default()
            };
            w.gw.list_events(&w.merchant, q).await.unwrap().data.len()
        };
        // 1 in 100 payments is 10 per 1,000: not past the alarm.
        w.file(&pays[0], None).await.unwrap();
        assert_eq!(alarms().await, 0);
        w.file(&pays[1], None).await.unwrap();
        let f =
            w.gw.complaint_figures(&w.merchant, FiguresQuery::default())
                .await
                .unwrap();
        assert!(
            f.rate_alarm && f.per_thousand_payments.as_deref() == Some("20.00"),
            "{f:?}"
        );
        assert_eq!(alarms().await, 1);
        // Once a day, however many complaints follow.
        w.file(&pays[2], None).await.unwrap();
        assert_eq!(alarms().await, 1);
    }
);

on_both!(
    a_partys_move_after_its_deadline_is_refused_before_the_sweeper_runs,
    |w: World| async move {
        let pay = w.paid_now("50.00").await;
        let id = id_of(w.file(&pay, None).await.unwrap());
        w.clock.advance_seconds(86_400 + 1);
        // The sweeper has not run: the write itself checks the deadline.
        let late = Answer::Refund {
            amount: None,
            message: None,
        };
        let e =
            w.gw.answer_complaint(&w.merchant, &id, late, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "complaint_past_due", "{e:?}");
        assert!(
            w.gw.list_refunds(&w.merchant, &pay)
                .await
                .unwrap()
                .is_empty(),
            "nothing refunded"
        );
        assert_eq!(w.gw.sweep_complaints().await.unwrap(), 1);
        assert_eq!(
            w.gw.get_complaint(&w.consumer, &id).await.unwrap().status,
            "escalated"
        );

        // The payer's week to answer, likewise.
        let pay = w.paid_now("40.00").await;
        let id = id_of(w.file(&pay, None).await.unwrap());
        let explain = Answer::Explain {
            message: "sent by post".into(),
        };
        w.gw.answer_complaint(&w.merchant, &id, explain, None)
            .await
            .unwrap();
        w.clock.advance_seconds(7 * 86_400 + 1);
        let esc = PayerMove::Escalate {
            reason: "nothing came".into(),
        };
        let e =
            w.gw.payer_moves_complaint(&w.consumer, &id, esc, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "complaint_past_due");
        w.assert_books_sound().await;
    }
);

on_both!(
    a_complaint_card_refund_the_processor_missed_is_asked_for_again,
    |w: World| async move {
        let card = w.link(&w.consumer, "4242424242424242").await;
        let p = w
            .pay_order(&w.merchant, &w.consumer, "15.00", Some(&card))
            .await
            .unwrap();
        let pay = p["id"].as_str().unwrap().to_owned();
        w.sandbox.set_refunds_down(true);
        // The ledger records the refund and the complaint; the processor
        // has not returned the money yet.
        let k = body_of(w.file(&pay, None).await.unwrap());
        assert_eq!(k["status"], "refunded_instantly");
        let id = k["id"].as_str().unwrap();
        assert_eq!(w.sandbox.authorization(&pay).unwrap().refunded_minor, 0);
        let stored = w.gw.store().complaint(id).await.unwrap().unwrap();
        assert_eq!(stored.processor_pending, Some(format!("qg_i_{pay}")));
        assert_eq!(w.gw.retry_card_refunds().await.unwrap(), 0, "still down");
        // Back up: the jobs' pass returns it, once.
        w.sandbox.set_refunds_down(false);
        // A failed try waits a minute before the next.
        assert_eq!(w.gw.retry_card_refunds().await.unwrap(), 0);
        w.clock.advance_seconds(61);
        assert_eq!(w.gw.retry_card_refunds().await.unwrap(), 1);
        assert_eq!(w.gw.retry_card_refunds().await.unwrap(), 0);
        assert_eq!(w.sandbox.authorization(&pay).unwrap().refunded_minor, 1_500);
        assert_eq!(
            w.gw.store()
                .complaint(id)
                .await
                .unwrap()
                .unwrap()
                .processor_pending,
            None
        );
        w.assert_books_sound().await;

        // A merchant's refund in a complaint, confirmed at once, leaves
        // nothing pending.
        let p = w
            .pay_order(&w.merchant, &w.consumer, "50.00", Some(&card))
            .await
            .unwrap();
        let pay = p["id"].as_str().unwrap().to_owned();
        let id = id_of(w.file(&pay, None).await.unwrap());
        let refund = Answer::Refund {
            amount: None,
            message: None,
        };
        w.gw.answer_complaint(&w.merchant, &id, refund, None)
            .await
            .unwrap();
        assert_eq!(w.sandbox.authorization(&pay).unwrap().refunded_minor, 5_000);
        assert_eq!(
            w.gw.store()
                .complaint(&id)
                .await
                .unwrap()
                .unwrap()
                .processor_pending,
            None
        );
    }
);

on_both!(
    a_small_complaint_the_refund_guards_refuse_is_a_ticket,
    |w: World| async move {
        // The payment's refunds are used up (BCP-REFUND-COUNT) by tiny
        // refunds: the instant refund is refused, the payer still gets a
        // ticket.
        let pay = w.paid_now("19.00").await;
        let count = w.gw.limits().refund_count;
        for n in 0..count {
            w.gw.refund(&w.merchant, &pay, "0.01", &format!("T{n}"), None)
                .await
                .unwrap();
        }
        let k = body_of(w.file(&pay, Some("5.00")).await.unwrap());
        assert_eq!(
            (k["status"].as_str(), k["instant"].as_bool()),
            (Some("open"), Some(false))
        );
        w.assert_books_sound().await;
    }
);

on_both!(
    a_second_card_refund_waits_for_the_first_to_be_confirmed,
    |w: World| async move {
        let card = w.link(&w.consumer, "4242424242424242").await;
        let p = w
            .pay_order(&w.merchant, &w.consumer, "50.00", Some(&card))
            .await
            .unwrap();
        let pay = p["id"].as_str().unwrap().to_owned();
        let id = id_of(w.file(&pay, None).await.unwrap());
        w.sandbox.set_refunds_down(true);
        let part = Answer::Refund {
            amount: Some("20.00".into()),
            message: None,
        };
        w.gw.answer_complaint(&w.merchant, &id, part, None)
            .await
            .unwrap();
        let esc = PayerMove::Escalate {
            reason: "half is not enough".into(),
        };
        w.gw.payer_moves_complaint(&w.consumer, &id, esc, None)
            .await
            .unwrap();
        // The operator's refund is refused while the first is unconfirmed:
        // its retry marker is never overwritten.
        let rest = || Decision::Refund {
            amount: None,
            reason: "refund the rest".into(),
        };
        let e =
            w.gw.decide_complaint(&admin(), &id, rest(), None)
                .await
                .unwrap_err();
        assert_eq!(
            (e.kind, e.code),
            (Kind::Unavailable, "processor_unavailable"),
            "{e:?}"
        );
        assert_eq!(w.gw.list_refunds(&w.merchant, &pay).await.unwrap().len(), 1);
        w.sandbox.set_refunds_down(false);
        let d = body_of(
            w.gw.decide_complaint(&admin(), &id, rest(), None)
                .await
                .unwrap(),
        );
        assert_eq!(
            (d["refunded"].as_str(), d["resolution"].as_str()),
            (Some("50.00"), Some("operator_refund"))
        );
        assert_eq!(w.sandbox.authorization(&pay).unwrap().refunded_minor, 5_000);
        assert_eq!(
            w.gw.store()
                .complaint(&id)
                .await
                .unwrap()
                .unwrap()
                .processor_pending,
            None
        );
        w.assert_books_sound().await;
    }
);

on_both!(
    the_operators_queue_holds_what_waits_for_a_decision,
    |mut w: World| async move {
        use qrgate_gateway::reviews::ReviewQuery;
        w.reconfigure(&[("QG-PERSONAL-CODE-PAYERS", 1)], &[]).await;
        // A flagged payment: a personal stall paid by a second payer.
        let stall = w.small_merchant("NOODLE STALL", "kyc-n").await;
        let mut flagged = None;
        for _ in 0..2 {
            let c = w.new_consumer().await;
            w.gw.topup(&admin(), c.subject.as_deref().unwrap(), "10.00", None)
                .await
                .unwrap();
            let p = w.pay_order(&stall, &c, "1.00", None).await.unwrap();
            flagged = Some(p["id"].as_str().unwrap().to_owned());
        }
        let flagged = flagged.unwrap();
        // A merchant's notes that spell the flag do not put a payment in
        // the queue (its checks flagged nothing).
        let notes = qrgate_core::Metadata::try_from(std::collections::BTreeMap::from([(
            "decision".to_owned(),
            "flag_for_review".to_owned(),
        )]))
        .unwrap();
        for _ in 0..3 {
            w.gw.charge_with_metadata(&w.merchant, &w.device_token(), "1.00", None, &notes, None)
                .await
                .unwrap();
        }
        // Two escalated complaints (the older deadline first) and a
        // parked one.
        let mut ids = Vec::new();
        for _ in 0..3 {
            let pay = w.paid_now("50.00").await;
            let id = id_of(w.file(&pay, None).await.unwrap());
            w.clock.advance_seconds(60);
            ids.push(id);
        }
        w.clock.advance_seconds(86_400);
        assert_eq!(w.gw.sweep_complaints().await.unwrap(), 3);
        let until = Timestamp::from_unix_millis(w.gw.now().unix_millis() + 7_200_000);
        let park = Decision::Park {
            until,
            reason: "waiting for the shop's camera".into(),
        };
        w.gw.decide_complaint(&admin(), &ids[2], park, None)
            .await
            .unwrap();

        let q =
            w.gw.reviews(&admin(), ReviewQuery::default())
                .await
                .unwrap();
        let items: Vec<(&str, &str)> = q.data.iter().map(|i| (i.kind, i.id.as_str())).collect();
        assert_eq!(
            items,
            [
                ("complaint", ids[0].as_str()),
                ("complaint", ids[1].as_str()),
                ("payment", flagged.as_str())
            ]
        );
        assert_eq!(q.data[2].about, ["QG-PERSONAL-CODE-PAYERS"]);
        // Filters: kind, merchant, age.
        let only = |kind: &str| ReviewQuery {
            kind: Some(kind.into()),
            ..Default::default()
        };
        assert_eq!(
            w.gw.reviews(&admin(), only("payment"))
                .await
                .unwrap()
                .data
                .len(),
            1
        );
        let theirs = ReviewQuery {
            merchant_id: stall.subject.clone(),
            ..Default::default()
        };
        assert_eq!(w.gw.reviews(&admin(), theirs).await.unwrap().data.len(), 1);
        let old = ReviewQuery {
            min_age_hours: Some(25),
            ..Default::default()
        };
        assert!(w.gw.reviews(&admin(), old).await.unwrap().data.is_empty());
        let bad = ReviewQuery {
            kind: Some("refund".into()),
            ..Default::default()
        };
        assert_eq!(
            w.gw.reviews(&admin(), bad).await.unwrap_err().kind,
            Kind::BadRequest
        );
        // Auditors read the queue but do not decide.
        let auditor = Principal {
            key_id: "key_auditor".into(),
            role: Role::Auditor,
            subject: None,
        };
        let e =
            w.gw.decide_review(&auditor, "payment", &flagged, "clear", "x")
                .await
                .unwrap_err();
        assert_eq!(e.kind, Kind::Forbidden);
        // Merchants do not read the queue.
        assert_eq!(
            w.gw.reviews(&w.merchant, ReviewQuery::default())
                .await
                .unwrap_err()
                .kind,
            Kind::Forbidden
        );

        // The parked complaint is back when its time comes.
        w.clock.advance_seconds(7_201);
        assert_eq!(
            w.gw.reviews(&admin(), only("complaint"))
                .await
                .unwrap()
                .data
                .len(),
            3
        );

        // A decision on the flagged payment takes it off the queue, once.
        let r =
            w.gw.decide_review(&admin(), "payment", &flagged, "clear", "a regular customer")
                .await
                .unwrap();
        assert_eq!(r.decided_by, "key_admin");
        let e =
            w.gw.decide_review(&admin(), "payment", &flagged, "confirm", "again")
                .await
                .unwrap_err();
        assert_eq!(e.code, "review_decided");
        assert!(
            w.gw.reviews(&admin(), only("payment"))
                .await
                .unwrap()
                .data
                .is_empty()
        );
        let unflagged = w.paid_now("1.00").await;
        let e =
            w.gw.decide_review(&admin(), "payment", &unflagged, "clear", "x")
                .await
                .unwrap_err();
        assert_eq!(e.code, "not_flagged");
        let rows = w.gw.store().audit_rows(0, 10_000).await.unwrap();
        assert!(
            rows.iter().any(
                |r| r.action == "review.decided" && r.details["reason"] == "a regular customer"
            )
        );
    }
);

on_both!(
    a_fraud_report_names_the_device_or_code_for_the_operator,
    |w: World| async move {
        use qrgate_gateway::reviews::ReviewQuery;
        // A device-signed code the payer says they never made.
        let pay = w.paid_now("50.00").await;
        let c = NewComplaint {
            payment_id: pay.clone(),
            reason: "not_authorised".into(),
            description: "I was asleep".into(),
            amount: None,
        };
        let id = id_of(w.gw.file_complaint(&w.consumer, c, None).await.unwrap());
        // An ordinary complaint is not a fraud report.
        let other = w.paid_now("30.00").await;
        w.file(&other, None).await.unwrap();
        let only = ReviewQuery {
            kind: Some("fraud_report".into()),
            ..Default::default()
        };
        let q = w.gw.reviews(&admin(), only.clone()).await.unwrap();
        assert_eq!(q.data.len(), 1, "{:?}", q.data);
        assert_eq!(q.data[0].id, id);
        assert_eq!(
            q.data[0].about,
            [
                "not_authorised".to_owned(),
                format!("device:{}", w.device_id)
            ]
        );
        let r =
            w.gw.decide_review(
                &admin(),
                "fraud_report",
                &id,
                "confirm",
                "the device was stolen",
            )
            .await
            .unwrap();
        assert_eq!(r.kind, "fraud_report");
        assert!(w.gw.reviews(&admin(), only).await.unwrap().data.is_empty());
        let e =
            w.gw.decide_review(&admin(), "fraud_report", &id, "clear", "again")
                .await
                .unwrap_err();
        assert_eq!(e.code, "review_decided");
        // The complaint itself goes on as a ticket for the merchant.
        assert_eq!(
            w.gw.get_complaint(&w.merchant, &id).await.unwrap().status,
            "open"
        );
    }
);

/// Two operations on one complaint started together behind a barrier;
/// both outcomes.
async fn together<A, B>(a: A, b: B) -> (Result<Reply, Error>, Result<Reply, Error>)
where
    A: std::future::Future<Output = Result<Reply, Error>>,
    B: std::future::Future<Output = Result<Reply, Error>>,
{
    // On the heap: the gateway's futures are large.
    let (a, b) = (Box::pin(a), Box::pin(b));
    let barrier = Barrier::new(2);
    tokio::join!(
        async {
            barrier.wait().await;
            a.await
        },
        async {
            barrier.wait().await;
            b.await
        }
    )
}

on_both!(
    the_moves_of_one_complaint_raced_against_each_other_move_it_once,
    |w: World| Box::pin(moves_raced(w))
);

/// The race of each pair of a complaint's moves (on the heap: large).
async fn moves_raced(w: World) {
    let refunded = |pay: String| {
        let gw = &w.gw;
        let m = w.merchant.clone();
        async move { gw.get_payment(&m, &pay).await.unwrap().amount_refunded }
    };
    let sweep = || async {
        w.gw.sweep_complaints()
            .await
            .map(|_| Reply::Fresh(Fresh::Done, String::new()))
    };
    for trial in 0..4 {
        // The merchant's refund at the deadline against the sweeper.
        let pay = w.paid_now("50.00").await;
        let id = id_of(w.file(&pay, None).await.unwrap());
        w.clock.advance_seconds(86_400);
        let answer = Answer::Refund {
            amount: None,
            message: None,
        };
        let (a, _) = together(
            w.gw.answer_complaint(&w.merchant, &id, answer, None),
            sweep(),
        )
        .await;
        let k = w.gw.get_complaint(&admin(), &id).await.unwrap();
        match a {
            Ok(_) => assert_eq!(
                (k.status.as_str(), k.refunded.as_str()),
                ("resolved", "50.00")
            ),
            Err(e) => {
                assert!(
                    ["complaint_state_conflict", "complaint_past_due"].contains(&e.code),
                    "{e:?}"
                );
                assert_eq!(
                    (k.status.as_str(), k.refunded.as_str()),
                    ("escalated", "0.00")
                );
            }
        }
        assert_eq!(refunded(pay.clone()).await, k.refunded, "trial {trial}");
        // Two operator refunds of one escalated complaint: one refund.
        if k.status == "escalated" {
            let d = || Decision::Refund {
                amount: None,
                reason: "no answer".into(),
            };
            let (a, b) = together(
                w.gw.decide_complaint(&admin(), &id, d(), None),
                w.gw.decide_complaint(&admin(), &id, d(), None),
            )
            .await;
            assert_eq!(
                usize::from(a.is_ok()) + usize::from(b.is_ok()),
                1,
                "{a:?} {b:?}"
            );
            assert_eq!(refunded(pay.clone()).await, "50.00");
        }
        w.assert_books_sound().await;

        // A refund in the complaint against the merchant's own full
        // refund of the payment: never more than captured.
        let pay = w.paid_now("50.00").await;
        let id = id_of(w.file(&pay, None).await.unwrap());
        let answer = Answer::Refund {
            amount: None,
            message: None,
        };
        let (a, b) = together(
            w.gw.answer_complaint(&w.merchant, &id, answer, None),
            w.gw.refund(&w.merchant, &pay, "50.00", &format!("RR{trial}"), None),
        )
        .await;
        assert_eq!(
            usize::from(a.is_ok()) + usize::from(b.is_ok()),
            1,
            "{a:?} {b:?}"
        );
        assert_eq!(refunded(pay.clone()).await, "50.00");
        w.assert_books_sound().await;

        // A contest at the end of its window against the sweeper, then
        // two recoveries at once: goodwill pays once.
        w.clock.advance_seconds(31 * 86_400);
        let pay = w.paid_now("15.00").await;
        let id = id_of(w.file(&pay, None).await.unwrap());
        w.clock.advance_seconds(3 * 86_400);
        let (c, _) = together(
            w.gw.contest_complaint(&w.merchant, &id, "eaten".into(), None),
            sweep(),
        )
        .await;
        let k = w.gw.get_complaint(&admin(), &id).await.unwrap();
        assert_eq!(
            k.status,
            if c.is_ok() { "contested" } else { "resolved" },
            "{c:?}"
        );
        if c.is_ok() {
            let goodwill = || async {
                w.gw.store()
                    .account(&qrgate_core::AccountId::goodwill(
                        qrgate_core::Currency::CNY,
                    ))
                    .await
                    .unwrap()
                    .map_or(0, |a| a.balance_minor)
            };
            let before = goodwill().await;
            let r = || Decision::Recover {
                reason: "served".into(),
            };
            let (a, b) = together(
                w.gw.decide_complaint(&admin(), &id, r(), None),
                w.gw.decide_complaint(&admin(), &id, r(), None),
            )
            .await;
            assert_eq!(
                usize::from(a.is_ok()) + usize::from(b.is_ok()),
                1,
                "{a:?} {b:?}"
            );
            assert!(goodwill().await < before && goodwill().await > before - 1_500);
        }
        w.assert_books_sound().await;
    }
    // Two decisions on one flagged review item are written once: see
    // the queue test; here the same for a fraud report.
    let pay = w.paid_now("5.00").await;
    let c = NewComplaint {
        reason: "not_authorised".into(),
        ..complaint_of(&pay, "other", None)
    };
    let id = id_of(w.gw.file_complaint(&w.consumer, c, None).await.unwrap());
    let barrier = Barrier::new(2);
    let (a, b) = tokio::join!(
        async {
            barrier.wait().await;
            w.gw.decide_review(&admin(), "fraud_report", &id, "clear", "one")
                .await
        },
        async {
            barrier.wait().await;
            w.gw.decide_review(&admin(), "fraud_report", &id, "confirm", "two")
                .await
        }
    );
    assert_eq!(
        usize::from(a.is_ok()) + usize::from(b.is_ok()),
        1,
        "{a:?} {b:?}"
    );
    for e in [a.err(), b.err()].into_iter().flatten() {
        assert_eq!(e.code, "review_decided");
    }
}
