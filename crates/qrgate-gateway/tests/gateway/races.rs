//! The race matrix: for one payment, order or code, every pair of
//! operations that change it (and each with itself) started at the same
//! moment behind a barrier, many times, on both stores. After every trial:
//! no 5xx and no `internal`; exactly one winner where only one may win;
//! refunded + reversed never above what was captured; the books agree with
//! the payments (`ledger_check`, which compares each payment's state with
//! its postings) and the payer's wallet holds what the payment's final state
//! says it should.

use std::future::Future;
use std::pin::Pin;

use qrgate_gateway::{Error, Kind};
use tokio::sync::Barrier;

use super::*;

/// Trials per pair and store.
const TRIALS: usize = 8;
/// Each trial's payment.
const AMOUNT: &str = "2.00";
const AMOUNT_MINOR: i64 = 200;

type Outcome = Result<Reply, Error>;
type OpFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;
/// One operation on the trial's subject (a payment id, an order, a code).
type Op = fn(Arc<World>, Arc<String>) -> OpFuture;

/// Start `a` and `b` on their own tasks at the same moment; both outcomes.
async fn race(w: &Arc<World>, subject: &str, a: Op, b: Op) -> Vec<Outcome> {
    let subject = Arc::new(subject.to_owned());
    race_all(vec![a(w.clone(), subject.clone()), b(w.clone(), subject)]).await
}

/// Run operations each on its own task, released together by a barrier;
/// their outcomes in order.
async fn race_all(ops: Vec<OpFuture>) -> Vec<Outcome> {
    let barrier = Arc::new(Barrier::new(ops.len()));
    let tasks: Vec<_> = ops
        .into_iter()
        .map(|op| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                op.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// No outcome is a server fault.
fn no_fault(outcomes: &[Outcome], what: &str) {
    for o in outcomes {
        if let Err(e) = o {
            assert!(
                !matches!(e.kind, Kind::Internal | Kind::Unavailable),
                "{what}: a 5xx: {e:?}"
            );
        }
    }
}

fn winners(outcomes: &[Outcome]) -> usize {
    outcomes.iter().filter(|o| o.is_ok()).count()
}

/// The losers were told why, with a 4xx that names a state conflict or a cap.
fn losers_say(outcomes: &[Outcome], codes: &[&str], what: &str) {
    for o in outcomes {
        if let Err(e) = o {
            assert!(codes.contains(&e.code), "{what}: unexpected refusal {e:?}");
        }
    }
}

async fn books_agree(w: &World, what: &str) {
    let check = w.gw.store().ledger_check().await.unwrap();
    assert!(check.is_sound(), "{what}: {check:?}");
}

fn minor(amount: &str) -> i64 {
    let (units, cents) = amount.split_once('.').unwrap();
    units.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

/// A fresh succeeded payment of [`AMOUNT`] by the world's consumer.
async fn paid(w: &World) -> String {
    let p = w.charge(&w.device_token(), AMOUNT).await.unwrap();
    assert_eq!(p["status"], "succeeded");
    p["id"].as_str().unwrap().to_owned()
}

/// After a trial on `payment`: refunded + reversed within what was
/// captured, and the wallet moved by exactly what the final state says.
async fn payment_settled(w: &World, payment: &str, wallet_before: i64, what: &str) {
    let v = w.gw.get_payment(&w.merchant, payment).await.unwrap();
    let refunded = minor(&v.amount_refunded);
    let back = match v.status.as_str() {
        "succeeded" => refunded,
        "canceled" => {
            assert_eq!(refunded, 0, "{what}: canceled after a refund");
            AMOUNT_MINOR
        }
        other => panic!("{what}: the payment ended {other}"),
    };
    assert!(
        back <= AMOUNT_MINOR,
        "{what}: {back} paid back of {AMOUNT_MINOR}"
    );
    assert_eq!(
        minor(&w.balance().await),
        wallet_before - AMOUNT_MINOR + back,
        "{what}: the wallet does not match the payment ({} with {} refunded)",
        v.status,
        v.amount_refunded
    );
    books_agree(w, what).await;
}

/// After a race of a change against a payment of [`AMOUNT`]: the wallet
/// paid exactly when the payment succeeded, and the books agree.
async fn paid_iff(w: &World, paid: bool, wallet_before: i64, what: &str) {
    let spent = if paid { AMOUNT_MINOR } else { 0 };
    assert_eq!(minor(&w.balance().await), wallet_before - spent, "{what}");
    books_agree(w, what).await;
}

/// A refund number for one payment: a merchant's numbers are unique across
/// its payments, and each trial races on a new payment.
fn number(n: &str, pay: &str) -> String {
    format!("{n}-{}", &pay[pay.len().saturating_sub(16)..])
}

fn cancel(w: Arc<World>, pay: Arc<String>) -> OpFuture {
    Box::pin(async move { w.gw.cancel(&w.merchant, &pay, None).await })
}
fn refund_full_r1(w: Arc<World>, pay: Arc<String>) -> OpFuture {
    Box::pin(async move {
        w.gw.refund(&w.merchant, &pay, AMOUNT, &number("R1", &pay), None)
            .await
    })
}
fn refund_full_r2(w: Arc<World>, pay: Arc<String>) -> OpFuture {
    Box::pin(async move {
        w.gw.refund(&w.merchant, &pay, AMOUNT, &number("R2", &pay), None)
            .await
    })
}
fn refund_part_p1(w: Arc<World>, pay: Arc<String>) -> OpFuture {
    Box::pin(async move {
        w.gw.refund(&w.merchant, &pay, "0.80", &number("P1", &pay), None)
            .await
    })
}
fn refund_part_p2(w: Arc<World>, pay: Arc<String>) -> OpFuture {
    Box::pin(async move {
        w.gw.refund(&w.merchant, &pay, "0.80", &number("P2", &pay), None)
            .await
    })
}
/// The gateway refunding the whole payment on its own (a small disputed
/// charge), under a number of its own.
fn system_refund_s1(w: Arc<World>, pay: Arc<String>) -> OpFuture {
    Box::pin(async move {
        let amount = qrgate_core::Money::from_minor(AMOUNT_MINOR, qrgate_core::Currency::CNY);
        w.gw.refund_by_rule("QG-TEST-RULE", &pay, amount, &number("S1", &pay))
            .await
    })
}
/// The payer complains about the whole payment: refunded on the spot
/// while under the instant-refund caps, a ticket after.
fn complaint(w: Arc<World>, pay: Arc<String>) -> OpFuture {
    Box::pin(async move {
        let c = qrgate_gateway::complaints::NewComplaint {
            payment_id: pay.to_string(),
            reason: "not_received".into(),
            description: "nothing came".into(),
            amount: None,
        };
        w.gw.file_complaint(&w.consumer, c, None).await
    })
}
fn refund_over_p3(w: Arc<World>, pay: Arc<String>) -> OpFuture {
    Box::pin(async move {
        w.gw.refund(&w.merchant, &pay, "1.50", &number("P3", &pay), None)
            .await
    })
}

/// The refusals a loser of a payment race may get: a state conflict, or
/// the refund cap that the winner filled.
const PAYMENT_LOSERS: &[&str] = &[
    "payment_not_cancelable",
    "payment_not_refundable",
    "payment_state_conflict",
    "limit_exceeded",
    "payment_not_complainable",
];

/// One pair of the payment rows: the two operations, how many may win
/// (`None`: any number, the invariants decide), and its name.
struct PaymentPair {
    name: &'static str,
    a: Op,
    b: Op,
    winners: Option<usize>,
}

fn payment_pairs() -> Vec<PaymentPair> {
    let one = Some(1);
    vec![
        PaymentPair {
            name: "cancel x cancel",
            a: cancel,
            b: cancel,
            winners: one,
        },
        PaymentPair {
            name: "cancel x full refund",
            a: cancel,
            b: refund_full_r1,
            winners: one,
        },
        PaymentPair {
            name: "cancel x partial refund",
            a: cancel,
            b: refund_part_p1,
            winners: one,
        },
        PaymentPair {
            name: "full refund x full refund",
            a: refund_full_r1,
            b: refund_full_r2,
            winners: one,
        },
        // The same refund number twice: one refund, and both are told so.
        PaymentPair {
            name: "full refund x its retry",
            a: refund_full_r1,
            b: refund_full_r1,
            winners: Some(2),
        },
        PaymentPair {
            name: "partial x partial",
            a: refund_part_p1,
            b: refund_part_p2,
            winners: Some(2),
        },
        PaymentPair {
            name: "partial x over the rest",
            a: refund_part_p1,
            b: refund_over_p3,
            winners: one,
        },
        PaymentPair {
            name: "system refund x merchant refund",
            a: system_refund_s1,
            b: refund_full_r1,
            winners: one,
        },
        PaymentPair {
            name: "system refund x cancel",
            a: system_refund_s1,
            b: cancel,
            winners: one,
        },
        PaymentPair {
            name: "system refund x its retry",
            a: system_refund_s1,
            b: system_refund_s1,
            winners: Some(2),
        },
        // The instant refund of a complaint: one of it and a full refund
        // or cancel pays back (a ticket, past the payer's cap, moves no
        // money, so both may win then).
        PaymentPair {
            name: "complaint x full refund",
            a: complaint,
            b: refund_full_r1,
            winners: None,
        },
        PaymentPair {
            name: "complaint x cancel",
            a: complaint,
            b: cancel,
            winners: None,
        },
        // Filed twice at once: one complaint, both told of it.
        PaymentPair {
            name: "complaint x complaint",
            a: complaint,
            b: complaint,
            winners: Some(2),
        },
        PaymentPair {
            name: "partial retry x partial retry",
            a: refund_part_p1,
            b: refund_part_p1,
            winners: Some(2),
        },
    ]
}

async fn payment_matrix(w: World) {
    // The merchant's settlement holds other money, so a second payback
    // is not stopped by its balance: the guards must stop it.
    w.charge(&w.device_token(), "300.00").await.unwrap();
    let w = Arc::new(w);
    for pair in payment_pairs() {
        // A new business day for each pair, so the daily caps never decide.
        w.clock.advance_seconds(86_400);
        for trial in 0..TRIALS {
            let what = format!("{} (trial {trial})", pair.name);
            let pay = paid(&w).await;
            let wallet = minor(&w.balance().await) + AMOUNT_MINOR;
            let out = race(&w, &pay, pair.a, pair.b).await;
            no_fault(&out, &what);
            losers_say(&out, PAYMENT_LOSERS, &what);
            if let Some(n) = pair.winners {
                assert_eq!(winners(&out), n, "{what}: {out:?}");
            }
            payment_settled(&w, &pay, wallet, &what).await;
            let refunds = w.gw.list_refunds(&w.merchant, &pay).await.unwrap();
            let mut numbers: Vec<&str> = refunds.iter().map(|r| r.out_refund_no.as_str()).collect();
            numbers.sort_unstable();
            numbers.dedup();
            assert_eq!(
                numbers.len(),
                refunds.len(),
                "{what}: a refund number twice"
            );
        }
    }
}

on_both!(race_matrix_payments, payment_matrix);

// ---------- step-up confirmations ----------

fn confirm_pin(w: Arc<World>, pay: Arc<String>) -> OpFuture {
    Box::pin(async move {
        w.gw.confirm(&w.consumer, &pay, confirmation(Some(PIN), None), None)
            .await
    })
}
fn sweep(w: Arc<World>, _: Arc<String>) -> OpFuture {
    Box::pin(async move {
        w.gw.expire_requires_action()
            .await
            .map(|n| Reply::Fresh(Fresh::Done, n.to_string()))
    })
}

const PIN: &str = "493817";

/// A payment over the C cap, waiting for the PIN.
async fn waiting(w: &World) -> String {
    w.clock.advance_seconds(86_400);
    w.charge(&w.device_token(), "999.00").await.unwrap();
    let p = w.charge(&w.device_token(), "100.00").await.unwrap();
    assert_eq!(p["status"], "requires_action", "{p}");
    p["id"].as_str().unwrap().to_owned()
}

on_both!(race_matrix_confirmations, |w: World| async move {
    w.gw.set_pin(&w.consumer, PIN).await.unwrap();
    let customer = w.consumer.subject.clone().unwrap();
    w.gw.topup(&admin(), &customer, "20000.00", None)
        .await
        .unwrap();
    let w = Arc::new(w);
    for trial in 0..TRIALS {
        let what = format!("confirm x confirm (trial {trial})");
        let pay = waiting(&w).await;
        let before = minor(&w.balance().await);
        let out = race(&w, &pay, confirm_pin, confirm_pin).await;
        no_fault(&out, &what);
        losers_say(&out, &["payment_state_conflict"], &what);
        assert_eq!(winners(&out), 1, "{what}: {out:?}");
        assert_eq!(minor(&w.balance().await), before - 10_000, "{what}");
        books_agree(&w, &what).await;
    }
    for trial in 0..TRIALS {
        // At the deadline: the confirmation finds it lapsed, and so does
        // the sweeper; one of them cancels it, nothing moves.
        let what = format!("lapsed confirm x sweep (trial {trial})");
        let pay = waiting(&w).await;
        let before = minor(&w.balance().await);
        w.clock.advance_seconds(300);
        let out = race(&w, &pay, confirm_pin, sweep).await;
        no_fault(&out, &what);
        losers_say(&out, &["payment_expired", "payment_state_conflict"], &what);
        let v = w.gw.get_payment(&w.consumer, &pay).await.unwrap();
        assert_eq!(v.status, "canceled", "{what}");
        assert_eq!(minor(&w.balance().await), before, "{what}");
        books_agree(&w, &what).await;
    }
});

// ---------- orders and codes ----------

fn pay_order(w: Arc<World>, payload: Arc<String>) -> OpFuture {
    Box::pin(async move {
        w.gw.pay_scanned(&w.consumer, &payload, None, None, None)
            .await
    })
}
fn charge_code(w: Arc<World>, code: Arc<String>) -> OpFuture {
    Box::pin(async move { w.gw.charge(&w.merchant, &code, AMOUNT, None, None).await })
}

on_both!(race_matrix_orders_and_codes, |w: World| async move {
    let w = Arc::new(w);
    for trial in 0..TRIALS {
        let what = format!("pay order x pay order (trial {trial})");
        let before = minor(&w.balance().await);
        let order =
            w.gw.create_order(&w.merchant, AMOUNT, None, None, Some(300))
                .await
                .unwrap();
        let out = race(&w, &order.payload, pay_order, pay_order).await;
        no_fault(&out, &what);
        losers_say(
            &out,
            &["order_not_open", "payment_code_already_used"],
            &what,
        );
        assert_eq!(winners(&out), 1, "{what}: {out:?}");
        assert_eq!(minor(&w.balance().await), before - AMOUNT_MINOR, "{what}");
        books_agree(&w, &what).await;
    }
    for trial in 0..TRIALS {
        let what = format!("pay order x close (trial {trial})");
        let before = minor(&w.balance().await);
        let order =
            w.gw.create_order(&w.merchant, AMOUNT, None, None, Some(300))
                .await
                .unwrap();
        let (ww, id) = (w.clone(), order.id.clone());
        let close: OpFuture = Box::pin(async move {
            ww.gw
                .close_order(&ww.merchant, &id)
                .await
                .map(|o| Reply::Fresh(Fresh::Done, o.status))
        });
        let pay = pay_order(w.clone(), Arc::new(order.payload.clone()));
        let out = race_all(vec![close, pay]).await;
        no_fault(&out, &what);
        losers_say(&out, &["order_not_open"], &what);
        assert_eq!(winners(&out), 1, "{what}: {out:?}");
        let paid = &out[1];
        let status = w.gw.get_order(&w.merchant, &order.id).await.unwrap().status;
        let spent = if paid.is_ok() { AMOUNT_MINOR } else { 0 };
        assert_eq!(
            status,
            if paid.is_ok() { "paid" } else { "closed" },
            "{what}"
        );
        assert_eq!(minor(&w.balance().await), before - spent, "{what}");
        books_agree(&w, &what).await;
    }
    for trial in 0..TRIALS {
        let what = format!("charge x charge of one code (trial {trial})");
        let before = minor(&w.balance().await);
        let code = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        let out = race(&w, &code.numeric, charge_code, charge_code).await;
        no_fault(&out, &what);
        losers_say(&out, &["payment_code_already_used"], &what);
        assert_eq!(winners(&out), 1, "{what}: {out:?}");
        assert_eq!(minor(&w.balance().await), before - AMOUNT_MINOR, "{what}");
        books_agree(&w, &what).await;
    }
});

on_both!(race_matrix_block_against_charge, |w: World| async move {
    // A block of the payer and a charge of the payer's code at once: either
    // order is valid, but never half of each: the charge either moves its
    // money (it committed before the block) or is refused party_blocked and
    // moves nothing.
    let w = Arc::new(w);
    let customer = w.consumer.subject.clone().unwrap();
    for trial in 0..TRIALS {
        let what = format!("block payer x charge (trial {trial})");
        let before = minor(&w.balance().await);
        let code = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        let (ww, c) = (w.clone(), customer.clone());
        let block: OpFuture = Box::pin(async move {
            ww.gw
                .block(&admin(), &c, "race test")
                .await
                .map(|b| Reply::Fresh(Fresh::Created, b.id))
        });
        let charge = charge_code(w.clone(), Arc::new(code.numeric.clone()));
        let out = race_all(vec![block, charge]).await;
        no_fault(&out, &what);
        losers_say(&out, &["party_blocked"], &what);
        let block_id = match &out[0] {
            Ok(r) => r.body().to_owned(),
            Err(e) => panic!("{what}: the block failed: {e:?}"),
        };
        paid_iff(&w, out[1].is_ok(), before, &what).await;
        // Blocked now: the next charge is refused, whatever the race did.
        let next = w.gw.issue_payment_code(&w.consumer).await.unwrap();
        let e = w.charge(&next.numeric, AMOUNT).await.unwrap_err();
        assert_eq!(e.code, "party_blocked", "{what}");
        w.gw.lift_block(&admin(), &block_id).await.unwrap();
    }
});

// ---------- PIN guesses ----------

on_both!(
    race_twenty_wrong_pins_check_at_most_five,
    |w: World| async move {
        w.gw.set_pin(&w.consumer, PIN).await.unwrap();
        let w = Arc::new(w);
        let pay = Arc::new(waiting(&w).await);
        let guesses: Vec<OpFuture> = (0..20)
            .map(|i| {
                let (w, pay) = (w.clone(), pay.clone());
                Box::pin(async move {
                    let guess = format!("{:06}", 500_000 + i);
                    w.gw.confirm(&w.consumer, &pay, confirmation(Some(&guess), None), None)
                        .await
                }) as OpFuture
            })
            .collect();
        let outcomes = race_all(guesses).await;
        no_fault(&outcomes, "20 wrong PINs");
        // Past QG-RATE-PIN a minute, tries are braked before the lock-out.
        losers_say(
            &outcomes,
            &["pin_incorrect", "pin_locked", "rate_limited"],
            "20 wrong PINs",
        );
        let checked = outcomes
            .iter()
            .filter(|o| matches!(o, Err(e) if e.code == "pin_incorrect"))
            .count();
        assert_eq!(
            checked, 5,
            "exactly the allowed five were checked: {outcomes:?}"
        );
        // Locked now (a minute later, past the rate limit): even the right
        // PIN is refused, and nothing moved.
        w.clock.advance_seconds(60);
        let e =
            w.gw.confirm(&w.consumer, &pay, confirmation(Some(PIN), None), None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "pin_locked");
        assert_eq!(
            w.gw.get_payment(&w.consumer, &pay).await.unwrap().status,
            "requires_action"
        );
        books_agree(&w, "20 wrong PINs").await;
    }
);

// ---------- card-funded confirmations ----------

/// A new day's order paid with `card` over the C cap: 100.00 waiting for
/// step-up.
async fn waiting_on_card(w: &World, card: &str) -> String {
    w.clock.advance_seconds(86_400);
    w.pay_order(&w.merchant, &w.consumer, "999.00", Some(card))
        .await
        .unwrap();
    let p = w
        .pay_order(&w.merchant, &w.consumer, "100.00", Some(card))
        .await
        .unwrap();
    assert_eq!(p["status"], "requires_action", "{p}");
    p["id"].as_str().unwrap().to_owned()
}

/// A confirmation with the PIN and the device's signature (what an order
/// paid by scanning needs).
fn confirm_signed(w: Arc<World>, pay: Arc<String>) -> OpFuture {
    Box::pin(async move {
        let v = serde_json::to_value(w.gw.get_payment(&w.consumer, &pay).await?).unwrap();
        let device = Some((w.device_id.as_str(), sign_confirmation(&w, &v)));
        w.gw.confirm(&w.consumer, &pay, confirmation(Some(PIN), device), None)
            .await
    })
}

on_both!(
    race_card_confirmations_charge_the_card_once,
    |w: World| async move {
        w.gw.set_pin(&w.consumer, PIN).await.unwrap();
        let card = w.link(&w.consumer, "4242424242424242").await;
        let w = Arc::new(w);
        for trial in 0..TRIALS {
            let what = format!("card confirm x card confirm (trial {trial})");
            let pay = waiting_on_card(&w, &card).await;
            let clearing = w.clearing().await;
            let out = race(&w, &pay, confirm_signed, confirm_signed).await;
            no_fault(&out, &what);
            losers_say(&out, &["payment_state_conflict"], &what);
            assert_eq!(winners(&out), 1, "{what}: {out:?}");
            let row = w.gw.store().payment(&pay).await.unwrap().unwrap();
            assert_eq!(row.status, PaymentStatus::Succeeded, "{what}");
            // The authorization the payment kept is live: the loser reversed
            // nothing of the winner's.
            let request_id = row.details.funding.hold().unwrap();
            let auth = w.sandbox.authorization(request_id).unwrap();
            assert!(
                !auth.reversed,
                "{what}: the winner's authorization was reversed"
            );
            assert_eq!(auth.amount_minor, 10_000, "{what}");
            assert_eq!(w.clearing().await, clearing - 10_000, "{what}");
            books_agree(&w, &what).await;
        }
    }
);

on_both!(
    a_claim_left_by_a_stopped_node_is_swept_after_the_deadline,
    |w: World| async move {
        use qrgate_store::{Movement, PaymentWrite};
        w.gw.set_pin(&w.consumer, PIN).await.unwrap();
        // Only a card confirmation claims a payment.
        let card = w.link(&w.consumer, "4242424242424242").await;
        let pay = waiting_on_card(&w, &card).await;
        // A node claimed it for a card confirmation and stopped.
        let row = w.gw.store().payment(&pay).await.unwrap().unwrap();
        let mut claimed = row.details.clone();
        let request_id = format!("{pay}.confirm.0011223344556677");
        claimed.funding.card_mut().unwrap().request_id = Some(request_id.to_string());
        let mut m = Movement::new(w.clock.now());
        m.payment = Some(PaymentWrite::Transition {
            id: pay.clone(),
            from: PaymentStatus::RequiresAction,
            to: PaymentStatus::Confirming,
            details: Some(claimed),
        });
        w.gw.store().apply(m).await.unwrap();
        // Another confirmation is refused while it is claimed.
        let e =
            w.gw.confirm(&w.consumer, &pay, confirmation(Some(PIN), None), None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "payment_state_conflict");
        // At the deadline the claim is still left to its confirmation; a
        // minute later the sweeper ends it.
        w.clock.advance_seconds(300);
        w.gw.expire_requires_action().await.unwrap();
        assert_eq!(
            w.gw.get_payment(&w.consumer, &pay).await.unwrap().status,
            "confirming"
        );
        w.clock.advance_seconds(60);
        assert!(
            w.sandbox.authorization(&request_id).is_none(),
            "nothing reversed yet"
        );
        assert_eq!(w.gw.expire_requires_action().await.unwrap(), 1);
        // What the claim may have authorized is reversed.
        assert!(
            w.sandbox
                .authorization(&request_id)
                .is_some_and(|a| a.reversed)
        );
        assert_eq!(
            w.gw.get_payment(&w.consumer, &pay).await.unwrap().status,
            "canceled"
        );
        books_agree(&w, "swept claim").await;
    }
);

// ---------- credentials against money ----------

on_both!(
    race_matrix_device_revocation_against_charge,
    |w: World| async move {
        // A revocation of a device and a charge of a code it signed, at
        // once: the charge moves its money (it committed first) or is
        // refused device_revoked and moves nothing; never a payment from a
        // device that was revoked when the payment was written.
        let w = Arc::new(w);
        for trial in 0..TRIALS {
            let what = format!("revoke device x charge its code (trial {trial})");
            let kp = {
                let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
                Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap()
            };
            let public = URL_SAFE_NO_PAD.encode(kp.public_key().as_ref());
            let d =
                w.gw.enroll_device(&w.consumer, &public, None)
                    .await
                    .unwrap();
            let handles = d.handles.clone().unwrap();
            let before = minor(&w.balance().await);
            let token = device_code(&kp, &handles[0], w.clock.now());
            let (ww, id) = (w.clone(), d.id.clone());
            let revoke: OpFuture = Box::pin(async move {
                ww.gw
                    .revoke_device(&ww.consumer, &id)
                    .await
                    .map(|v| Reply::Fresh(Fresh::Done, v.status))
            });
            let charge = charge_code(w.clone(), Arc::new(token));
            let out = race_all(vec![revoke, charge]).await;
            no_fault(&out, &what);
            losers_say(&out, &["device_revoked"], &what);
            assert!(out[0].is_ok(), "{what}: the revocation failed: {out:?}");
            paid_iff(&w, out[1].is_ok(), before, &what).await;
            // Revoked now: its next code moves nothing.
            let next = device_code(&kp, &handles[1], w.clock.now());
            let e = w.charge(&next, AMOUNT).await.unwrap_err();
            assert_eq!(e.code, "device_revoked", "{what}");
        }
    }
);

on_both!(
    race_matrix_static_code_revocation_against_scan,
    |w: World| async move {
        // A merchant revokes its static code while a consumer pays it.
        let w = Arc::new(w);
        for trial in 0..TRIALS {
            let what = format!("revoke static code x scan it (trial {trial})");
            let sc = w.gw.create_static_code(&w.merchant).await.unwrap();
            let before = minor(&w.balance().await);
            let (ww, id) = (w.clone(), sc.id.clone());
            let revoke: OpFuture = Box::pin(async move {
                ww.gw
                    .revoke_static_code(&ww.merchant, &id)
                    .await
                    .map(|()| Reply::Fresh(Fresh::Done, String::new()))
            });
            let (ww, payload) = (w.clone(), sc.payload.clone());
            let scan: OpFuture = Box::pin(async move {
                ww.gw
                    .pay_scanned(&ww.consumer, &payload, Some(AMOUNT), None, None)
                    .await
            });
            let out = race_all(vec![revoke, scan]).await;
            no_fault(&out, &what);
            losers_say(&out, &["code_revoked"], &what);
            assert!(out[0].is_ok(), "{what}: the revocation failed: {out:?}");
            paid_iff(&w, out[1].is_ok(), before, &what).await;
            let e =
                w.gw.pay_scanned(&w.consumer, &sc.payload, Some(AMOUNT), None, None)
                    .await
                    .unwrap_err();
            assert_eq!(e.code, "code_revoked", "{what}");
        }
    }
);

on_both!(
    race_matrix_pin_change_against_confirmation,
    |w: World| async move {
        // The consumer changes the PIN while a confirmation with the old
        // one is under way: the change always lands; the confirmation
        // either proved the old PIN before it (and pays) or is refused
        // pin_incorrect (and moves nothing); the new PIN works after.
        w.gw.set_pin(&w.consumer, PIN).await.unwrap();
        let customer = w.consumer.subject.clone().unwrap();
        w.gw.topup(&admin(), &customer, "20000.00", None)
            .await
            .unwrap();
        let w = Arc::new(w);
        let pins = ["493817", "271828"];
        for trial in 0..TRIALS {
            let what = format!("change PIN x confirm with the old one (trial {trial})");
            // Past the per-minute PIN allowance of the last trial.
            w.clock.advance_seconds(60);
            let (old, new) = (pins[trial % 2], pins[(trial + 1) % 2]);
            let pay = waiting(&w).await;
            let before = minor(&w.balance().await);
            let ww = w.clone();
            let change: OpFuture = Box::pin(async move {
                ww.gw
                    .change_pin(&ww.consumer, old, new)
                    .await
                    .map(|()| Reply::Fresh(Fresh::Done, String::new()))
            });
            let (ww, p) = (w.clone(), pay.clone());
            let confirm: OpFuture = Box::pin(async move {
                ww.gw
                    .confirm(&ww.consumer, &p, confirmation(Some(old), None), None)
                    .await
            });
            let out = race_all(vec![change, confirm]).await;
            no_fault(&out, &what);
            losers_say(&out, &["pin_incorrect"], &what);
            assert!(out[0].is_ok(), "{what}: the change failed: {out:?}");
            let status = w.gw.get_payment(&w.consumer, &pay).await.unwrap().status;
            if out[1].is_ok() {
                assert_eq!(status, "succeeded", "{what}");
                assert_eq!(minor(&w.balance().await), before - 10_000, "{what}");
            } else {
                assert_eq!(status, "requires_action", "{what}");
                assert_eq!(minor(&w.balance().await), before, "{what}");
                let ok =
                    w.gw.confirm(&w.consumer, &pay, confirmation(Some(new), None), None)
                        .await
                        .unwrap();
                assert_eq!(ok.fresh(), Some(Fresh::Done), "{what}");
            }
            books_agree(&w, &what).await;
            // The old PIN no longer changes anything.
            let e = w.gw.change_pin(&w.consumer, old, new).await.unwrap_err();
            assert_eq!(e.code, "pin_incorrect", "{what}");
        }
    }
);

on_both!(
    race_matrix_one_merchant_number_for_an_order_and_a_charge,
    |w: World| async move {
        // The merchant creates an order and charges a code under the same
        // out_trade_no at once: the number names one of them, never both.
        let w = Arc::new(w);
        for trial in 0..TRIALS {
            let what = format!("order x charge under one number (trial {trial})");
            let number = format!("N-{trial}");
            let before = minor(&w.balance().await);
            let (ww, n) = (w.clone(), number.clone());
            let order: OpFuture = Box::pin(async move {
                ww.gw
                    .create_order(&ww.merchant, AMOUNT, None, Some(n), None)
                    .await
                    .map(|o| Reply::Fresh(Fresh::Created, o.id))
            });
            let (ww, n) = (w.clone(), number.clone());
            let token = w.device_token();
            let charge: OpFuture = Box::pin(async move {
                ww.gw
                    .charge(&ww.merchant, &token, AMOUNT, Some(n), None)
                    .await
            });
            let out = race_all(vec![order, charge]).await;
            no_fault(&out, &what);
            losers_say(&out, &["duplicate_out_trade_no"], &what);
            assert_eq!(winners(&out), 1, "{what}: {out:?}");
            paid_iff(&w, out[1].is_ok(), before, &what).await;
        }
    }
);

on_both!(
    race_a_block_against_a_card_confirmation_gives_the_claim_back,
    |w: World| async move {
        // A card confirmation claims the payment, authorizes the card, then
        // writes the movement; a block of the payer lands meanwhile. Either
        // the confirmation committed first (the card is charged once, the
        // authorization kept) or its movement is refused party_blocked: the
        // authorization is reversed and the claim given back, so the payment
        // waits again and, once the block is lifted, pays exactly once.
        w.gw.set_pin(&w.consumer, PIN).await.unwrap();
        let card = w.link(&w.consumer, "4000000000000259").await;
        let customer = w.consumer.subject.clone().unwrap();
        let w = Arc::new(w);
        for trial in 0..TRIALS {
            let what = format!("block payer x card confirmation (trial {trial})");
            let pay = waiting_on_card(&w, &card).await;
            let clearing = w.clearing().await;
            let (ww, c, id) = (w.clone(), customer.clone(), pay.clone());
            let block: OpFuture = Box::pin(async move {
                // Lands once the confirmation has claimed the payment, while
                // the processor is asked (this card is approved after 20 ms),
                // or just after, by a few milliseconds more each trial.
                for _ in 0..2_000 {
                    let row = ww.gw.store().payment(&id).await.unwrap().unwrap();
                    if row.status != PaymentStatus::RequiresAction {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                tokio::time::sleep(Duration::from_millis(trial as u64 * 4)).await;
                ww.gw
                    .block(&admin(), &c, "race test")
                    .await
                    .map(|b| Reply::Fresh(Fresh::Created, b.id))
            });
            let confirm = confirm_signed(w.clone(), Arc::new(pay.clone()));
            let out = race_all(vec![block, confirm]).await;
            no_fault(&out, &what);
            losers_say(&out, &["party_blocked"], &what);
            let block_id = match &out[0] {
                Ok(r) => r.body().to_owned(),
                Err(e) => panic!("{what}: the block failed: {e:?}"),
            };
            let row = w.gw.store().payment(&pay).await.unwrap().unwrap();
            if out[1].is_ok() {
                assert_eq!(row.status, PaymentStatus::Succeeded, "{what}");
                assert_eq!(w.clearing().await, clearing - 10_000, "{what}");
            } else {
                assert_eq!(
                    row.status,
                    PaymentStatus::RequiresAction,
                    "{what}: the claim was not given back"
                );
                assert_eq!(w.clearing().await, clearing, "{what}");
            }
            books_agree(&w, &what).await;
            w.gw.lift_block(&admin(), &block_id).await.unwrap();
            if out[1].is_err() {
                let again = confirm_signed(w.clone(), Arc::new(pay.clone())).await;
                assert!(again.is_ok(), "{what}: {again:?}");
                let row = w.gw.store().payment(&pay).await.unwrap().unwrap();
                let request_id = row.details.funding.hold().unwrap();
                let auth = w.sandbox.authorization(request_id).unwrap();
                assert!(!auth.reversed, "{what}");
                assert_eq!(w.clearing().await, clearing - 10_000, "{what}");
                books_agree(&w, &what).await;
            }
        }
    }
);

on_both!(
    race_a_pin_change_against_a_confirmation_upgrading_an_old_hash,
    |w: World| async move {
        // Both check the PIN against a hash from before the pepper; the
        // confirmation's check upgrades it. The change still lands (it
        // replaces whatever hash its own check proved), never a false
        // pin_changed.
        let customer = w.consumer.subject.clone().unwrap();
        w.gw.topup(&admin(), &customer, "20000.00", None)
            .await
            .unwrap();
        let w = Arc::new(w);
        for trial in 0..TRIALS {
            let what = format!("change PIN x confirm, old hash (trial {trial})");
            w.clock.advance_seconds(60);
            if trial > 0 {
                w.gw.reset_pin(&admin(), &customer).await.unwrap();
            }
            plant_legacy_pin(&w, PIN).await;
            let pay = waiting(&w).await;
            let ww = w.clone();
            let change: OpFuture = Box::pin(async move {
                ww.gw
                    .change_pin(&ww.consumer, PIN, "271828")
                    .await
                    .map(|()| Reply::Fresh(Fresh::Done, String::new()))
            });
            let confirm = confirm_pin(w.clone(), Arc::new(pay.clone()));
            let out = race_all(vec![change, confirm]).await;
            no_fault(&out, &what);
            losers_say(&out, &["pin_incorrect"], &what);
            assert!(out[0].is_ok(), "{what}: the change failed: {out:?}");
            books_agree(&w, &what).await;
            let e =
                w.gw.change_pin(&w.consumer, PIN, "271828")
                    .await
                    .unwrap_err();
            assert_eq!(e.code, "pin_incorrect", "{what}");
        }
    }
);
