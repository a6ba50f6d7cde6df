//! The daily settlement (QG-SETTLEMENT-CYCLE, QG-SETTLEMENT-NEGATIVE): a
//! day settles once it is over, once; a negative day is carried forward;
//! a payment stamped in a settled day is refused, never lost or added to
//! it; settlements racing payments and each other leave the books exact.

use qrgate_core::day::BusinessDay;
use qrgate_gateway::money::SettlementView;
use qrgate_gateway::trail::By;

use super::*;

const SHANGHAI: i32 = 480;

/// Two settlements of the world's merchant's `date`, started at once.
fn two_settlements(
    w: &Arc<World>,
    date: &'static str,
) -> Vec<tokio::task::JoinHandle<Result<(SettlementView, bool), qrgate_gateway::Error>>> {
    (0..2)
        .map(|_| {
            let w = w.clone();
            tokio::spawn(async move {
                let me = w.merchant.subject.clone().unwrap();
                w.gw.settle_day(By::Named("test"), &me, day(date)).await
            })
        })
        .collect()
}

/// Their answers: one made the settlement, both answer it.
async fn one_settlement(
    settlements: Vec<
        tokio::task::JoinHandle<Result<(SettlementView, bool), qrgate_gateway::Error>>,
    >,
) -> Vec<(SettlementView, bool)> {
    let mut made = Vec::new();
    for t in settlements {
        made.push(t.await.unwrap().unwrap());
    }
    assert_eq!(made.iter().filter(|(_, now)| *now).count(), 1, "{made:?}");
    assert_eq!(made[0].0, made[1].0, "both answer the one settlement");
    made
}

fn day(s: &str) -> BusinessDay {
    BusinessDay::parse(s).unwrap()
}

/// Move the clock to `hh:mm` Shanghai time on `date`.
fn at(w: &World, date: &str, hh: i64, mm: i64) {
    let start = day(date).starts_at(SHANGHAI).unix_millis();
    w.clock
        .set(Timestamp::from_unix_millis(start + (hh * 60 + mm) * 60_000));
}

async fn pay(w: &World, amount: &str) -> String {
    id_of(
        w.gw.charge(&w.merchant, &w.device_token(), amount, None, None)
            .await
            .unwrap(),
    )
}

async fn settle(w: &World, date: &str) -> (SettlementView, bool) {
    let me = w.merchant.subject.clone().unwrap();
    w.gw.settle_day(By::Named("test"), &me, day(date))
        .await
        .unwrap()
}

/// (pending, available) of the world's merchant.
async fn balances(w: &World) -> (String, String) {
    let b = w.gw.balance(&w.merchant, None).await.unwrap();
    (
        b.balances[0].pending.clone(),
        b.balances[0].available.clone(),
    )
}

async fn assert_books(w: &World) {
    let check = w.gw.ledger_check(&admin()).await.unwrap();
    assert!(check.is_sound(), "{check:?}");
}

on_both!(a_day_settles_once_when_it_is_over, |w: World| async move {
    // 2026-11-25, 10:00 in Shanghai.
    let first = pay(&w, "100.00").await;
    pay(&w, "50.00").await;
    w.gw.refund(&w.merchant, &first, "20.00", "R1", None)
        .await
        .unwrap();
    assert_eq!(balances(&w).await, ("129.22".into(), "0.00".into()));
    let me = w.merchant.subject.clone().unwrap();
    let early =
        w.gw.settle_day(By::Named("test"), &me, day("2026-11-25"))
            .await
            .unwrap_err();
    assert_eq!(early.code, "day_not_over");

    // The next morning: a payment of the new day, then the settlement.
    at(&w, "2026-11-26", 0, 10);
    pay(&w, "10.00").await;
    let (s, now) = settle(&w, "2026-11-25").await;
    assert!(now);
    assert_eq!(
        (s.payments.count, s.payments.amount.as_str()),
        (2, "150.00")
    );
    assert_eq!((s.refunds.count, s.refunds.amount.as_str()), (1, "20.00"));
    // 0.60 + 0.30 charged, 0.12 given back with the refund.
    assert_eq!(s.fees, "0.78");
    assert_eq!(s.net, "129.22");
    assert_eq!(
        (
            s.carried_in.as_str(),
            s.settled.as_str(),
            s.carried_out.as_str()
        ),
        ("0.00", "129.22", "0.00")
    );
    assert_eq!(balances(&w).await, ("9.94".into(), "129.22".into()));
    // Its audit row says what it moved.
    let rows = w.gw.store().audit_rows(0, 1000).await.unwrap();
    let row = rows
        .iter()
        .find(|r| r.action == "settlement.closed")
        .expect("a settlement.closed row");
    assert_eq!(
        (
            row.details["settled_minor"].as_i64(),
            row.details["by"].as_str()
        ),
        (Some(12_922), Some("test"))
    );

    // Again: nothing changes.
    let (again, now) = settle(&w, "2026-11-25").await;
    assert!(!now);
    assert_eq!(again, s);
    assert_eq!(balances(&w).await, ("9.94".into(), "129.22".into()));
    // A run over every merchant settles the others and leaves this one.
    let run =
        w.gw.settle_all(By::Named("test"), day("2026-11-25"))
            .await
            .unwrap();
    assert_eq!((run.settled_before, run.failed.len()), (1, 0));
    assert!(run.settled_now >= 1, "{run:?}");
    // An earlier day cannot be settled after a later one.
    let late =
        w.gw.settle_day(By::Named("test"), &me, day("2026-11-24"))
            .await
            .unwrap_err();
    assert_eq!(late.code, "settled_later");
    // The settlement is read back by the merchant, an auditor and admins.
    assert_eq!(
        w.gw.get_settlement(&w.merchant, None, "2026-11-25")
            .await
            .unwrap(),
        s
    );
    assert_eq!(
        w.gw.get_settlement(&admin(), Some(&me), "2026-11-25")
            .await
            .unwrap(),
        s
    );
    let other =
        w.gw.get_settlement(&w.other_merchant, Some(&me), "2026-11-25")
            .await
            .unwrap_err();
    assert_eq!(other.code, "not_found");
    let list =
        w.gw.list_settlements(&w.merchant, None, "2026-11-01", "2026-11-30")
            .await
            .unwrap();
    assert_eq!(list, vec![s]);

    // A payment stamped in the settled day is refused, and nothing moves.
    let wallet = w.balance().await;
    at(&w, "2026-11-25", 23, 59);
    let e =
        w.gw.charge(&w.merchant, &w.device_token(), "5.00", None, None)
            .await
            .unwrap_err();
    assert_eq!(e.code, "business_day_closed");
    assert_eq!(w.balance().await, wallet);
    assert_eq!(balances(&w).await, ("9.94".into(), "129.22".into()));
    assert_books(&w).await;
});

on_both!(
    a_negative_day_is_carried_forward_and_never_settled,
    |w: World| async move {
        let first = pay(&w, "100.00").await;
        at(&w, "2026-11-26", 0, 10);
        settle(&w, "2026-11-25").await;
        assert_eq!(balances(&w).await, ("0.00".into(), "99.40".into()));
        // On the 26th the merchant refunds 60.00 of money already settled.
        w.gw.refund(&w.merchant, &first, "60.00", "R1", None)
            .await
            .unwrap();
        // 0.36 of the fee comes back: 0.6% of 100.00 less 0.6% of 40.00.
        assert_eq!(balances(&w).await, ("-59.64".into(), "99.40".into()));
        at(&w, "2026-11-27", 0, 10);
        let (s, _) = settle(&w, "2026-11-26").await;
        assert_eq!(
            (s.net.as_str(), s.settled.as_str(), s.carried_out.as_str()),
            ("-59.64", "0.00", "-59.64")
        );
        assert_eq!(balances(&w).await, ("-59.64".into(), "99.40".into()));
        // The next day's takings pay it off first.
        pay(&w, "80.00").await;
        at(&w, "2026-11-28", 0, 10);
        let (s, _) = settle(&w, "2026-11-27").await;
        assert_eq!(
            (
                s.carried_in.as_str(),
                s.net.as_str(),
                s.settled.as_str(),
                s.carried_out.as_str()
            ),
            ("-59.64", "79.52", "19.88", "0.00")
        );
        assert_eq!(balances(&w).await, ("0.00".into(), "119.28".into()));
        assert_books(&w).await;
    }
);

on_both!(
    settlements_racing_late_payments_and_each_other_settle_what_was_received,
    |w: World| async move {
        // A slow card (its authorization takes a while) and the wallet.
        let slow = w.link(&w.consumer, "4000000000000259").await;
        at(&w, "2026-11-25", 23, 59);
        w.clock.advance_millis(59_000);
        let w = Arc::new(w);
        // Payments stamped in the last second of the day, while the day
        // ends and two settlements of it run: the card ones are still
        // being authorized when the day closes.
        let payments: Vec<_> = (0..12)
            .map(|i| {
                let (w, slow) = (w.clone(), slow.clone());
                let token = w.device_token();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        w.pay_order(&w.merchant, &w.consumer, "1.00", Some(&slow))
                            .await
                    } else {
                        let r = w.gw.charge(&w.merchant, &token, "1.00", None, None).await?;
                        Ok(serde_json::from_str::<Value>(&r.into_body()).unwrap())
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(5)).await;
        at(&w, "2026-11-26", 0, 10);
        let settlements = two_settlements(&w, "2026-11-25");
        let (mut in_day, mut next_day, mut refused) = (0_i64, 0_i64, 0);
        for t in payments {
            match t.await.unwrap() {
                Ok(v) => {
                    let stamped =
                        Timestamp::parse_rfc3339(v["created_at"].as_str().unwrap()).unwrap();
                    if BusinessDay::of(stamped, SHANGHAI) == day("2026-11-25") {
                        in_day += 1;
                    } else {
                        next_day += 1;
                    }
                }
                Err(e) if e.code == "business_day_closed" => refused += 1,
                // A payment code made at 23:59:59 is stale ten minutes
                // later: refused before anything moves.
                Err(e) if e.code == "payment_code_expired" => refused += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        let made = one_settlement(settlements).await;
        let s = &made[0].0;
        // Every payment stamped in the day that was recorded is in its
        // settlement, and only those; none was lost.
        assert_eq!(s.payments.count, in_day, "{in_day} {next_day} {refused}");
        assert_eq!(in_day + next_day + refused, 12);
        let settled = minor_units(&s.settled);
        assert_eq!(settled, in_day * 99, "1.00 less its 0.01 fee each");
        let (pending, available) = balances(&w).await;
        assert_eq!(minor_units(&available), settled);
        assert_eq!(minor_units(&pending), next_day * 99);
        // A refused card payment's authorization was reversed: the card
        // holds exactly what the ledger took from it.
        assert_eq!(w.sandbox.held_minor(), -w.clearing().await);
        assert_books(&w).await;
    }
);

on_both!(
    a_payment_whose_fee_takes_all_of_it_still_respects_a_settled_day,
    |w: World| async move {
        // A minimum fee of 1.00 takes all of a 0.50 payment: its posting
        // has no line on the merchant's pending account.
        let m =
            w.gw.create_merchant(
                &admin(),
                NewMerchant {
                    fee_minimum: Some("1.00".into()),
                    ..merchant_form("TINY")
                },
            )
            .await
            .unwrap();
        let tiny = key_of(&w.gw, Role::Merchant, &m.id).await;
        w.gw.charge(&tiny, &w.device_token(), "0.50", None, None)
            .await
            .unwrap();
        at(&w, "2026-11-26", 0, 10);
        let (s, _) =
            w.gw.settle_day(By::Named("test"), &m.id, day("2026-11-25"))
                .await
                .unwrap();
        assert_eq!(
            (s.payments.count, s.fees.as_str(), s.net.as_str()),
            (1, "0.50", "0.00")
        );
        let wallet = w.balance().await;
        at(&w, "2026-11-25", 23, 59);
        let e =
            w.gw.charge(&tiny, &w.device_token(), "0.50", None, None)
                .await
                .unwrap_err();
        assert_eq!(e.code, "business_day_closed");
        assert_eq!(w.balance().await, wallet);
        assert_books(&w).await;
    }
);

on_both!(
    settlements_racing_refunds_and_cancels_of_the_day_count_each_once,
    |w: World| async move {
        // Eight payments ten minutes before midnight (inside the cancel
        // window at its end).
        at(&w, "2026-11-25", 23, 50);
        let mut paid = Vec::new();
        for _ in 0..8 {
            paid.push(pay(&w, "10.00").await);
        }
        let wallet_after_payments = minor_units(&w.balance().await);
        at(&w, "2026-11-25", 23, 59);
        w.clock.advance_millis(59_900);
        let w = Arc::new(w);
        // Refunds of the first four and cancels of the others, stamped in
        // the day's last moment, while two settlements of it run.
        let moves: Vec<_> = paid
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let (w, id) = (w.clone(), id.clone());
                tokio::spawn(async move {
                    if i < 4 {
                        w.gw.refund(&w.merchant, &id, "3.00", &format!("S{i}"), None)
                            .await
                            .map(|_| 300)
                    } else {
                        w.gw.cancel(&w.merchant, &id, None).await.map(|_| 1000)
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(2)).await;
        at(&w, "2026-11-26", 0, 10);
        let settlements = two_settlements(&w, "2026-11-25");
        let mut returned = 0;
        for (i, t) in moves.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(minor) => returned += minor,
                // Refused as its day closed, or (a cancel that read the
                // clock after midnight) as its window closed: nothing of
                // it moved.
                Err(e) if e.code == "business_day_closed" || e.code == "cancel_window_closed" => {
                    let now = w.gw.get_payment(&w.merchant, &paid[i]).await.unwrap();
                    assert_eq!(
                        (now.status.as_str(), now.amount_refunded.as_str()),
                        ("succeeded", "0.00"),
                        "{now:?}"
                    );
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        let made = one_settlement(settlements).await;
        // The payer got back exactly what succeeded; the settlement holds
        // exactly the day's movements (the ledger check compares each
        // settlement with its day's postings); available is what it settled.
        assert_eq!(
            minor_units(&w.balance().await),
            wallet_after_payments + returned
        );
        let (_, available) = balances(&w).await;
        assert_eq!(available, made[0].0.settled);
        assert_books(&w).await;
    }
);
