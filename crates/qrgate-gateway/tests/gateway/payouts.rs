//! Payouts through the sandbox bank: paid; failed once and retried;
//! returned after being paid; refused for good; none without a bank
//! account or money; two at once make one. Both stores, books checked.

use qrgate_core::day::BusinessDay;
use qrgate_gateway::money::{
    SANDBOX_FAILS_ONCE, SANDBOX_PAYS, SANDBOX_REFUSES, SANDBOX_RETURNS, SANDBOX_SILENT,
};
use qrgate_gateway::trail::By;

use super::*;

/// A merchant paying out to `account`, which took 100.00 today and had
/// the day settled: 99.40 available.
async fn settled_shop(w: &World, account: Option<&str>) -> Principal {
    let m =
        w.gw.create_merchant(
            &admin(),
            NewMerchant {
                bank_account: account.map(str::to_owned),
                ..merchant_form("PAYOUT SHOP")
            },
        )
        .await
        .unwrap();
    let shop = key_of(&w.gw, Role::Merchant, &m.id).await;
    w.gw.charge(&shop, &w.device_token(), "100.00", None, None)
        .await
        .unwrap();
    let today = BusinessDay::of(w.clock.now(), 480);
    w.clock.set(today.ends_at(480));
    w.clock.advance_seconds(600);
    w.gw.settle_day(By::Named("test"), &m.id, today)
        .await
        .unwrap();
    shop
}

/// (available, in payout) of a merchant.
async fn money(w: &World, shop: &Principal) -> (String, String) {
    let b = w.gw.balance(shop, None).await.unwrap().balances[0].clone();
    (b.available, b.in_payout)
}

async fn pay_out(w: &World, shop: &Principal) -> Option<qrgate_gateway::money::PayoutView> {
    let id = shop.subject.clone().unwrap();
    w.gw.pay_out(By::Named("test"), &id).await.unwrap()
}

async fn assert_books(w: &World) {
    let check = w.gw.ledger_check(&admin()).await.unwrap();
    assert!(check.is_sound(), "{check:?}");
}

on_both!(a_payout_is_paid, |w: World| async move {
    let shop = settled_shop(&w, Some(SANDBOX_PAYS)).await;
    assert_eq!(money(&w, &shop).await, ("99.40".into(), "0.00".into()));
    let p = pay_out(&w, &shop).await.unwrap();
    assert_eq!(
        (p.status.as_str(), p.amount.as_str(), p.attempts),
        ("paid", "99.40", 1)
    );
    assert_eq!(p.bank_account, "****0001");
    assert_eq!(money(&w, &shop).await, ("0.00".into(), "0.00".into()));
    // Nothing left to pay: no second payout.
    assert!(pay_out(&w, &shop).await.is_none());
    let listed = w.gw.list_payouts(&shop, Default::default()).await.unwrap();
    assert_eq!(listed, vec![p.clone()]);
    // By time: made before now, not after it.
    let now = w.clock.now();
    let range =
        |gte: Option<Timestamp>, lt: Option<Timestamp>| qrgate_gateway::money::PayoutListQuery {
            created_gte: gte.map(Timestamp::to_rfc3339),
            created_lt: lt.map(Timestamp::to_rfc3339),
            ..Default::default()
        };
    let later = now.checked_add_seconds(1).unwrap();
    assert_eq!(
        w.gw.list_payouts(&shop, range(None, Some(later)))
            .await
            .unwrap(),
        vec![p]
    );
    assert!(
        w.gw.list_payouts(&shop, range(Some(later), None))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        w.gw.list_payouts(&shop, range(Some(later), Some(now)))
            .await
            .unwrap_err()
            .code,
        "invalid_request",
        "a range that ends before it starts is refused"
    );
    assert_books(&w).await;
});

on_both!(a_failed_payout_is_retried_and_paid, |w: World| async move {
    let shop = settled_shop(&w, Some(SANDBOX_FAILS_ONCE)).await;
    let p = pay_out(&w, &shop).await.unwrap();
    assert_eq!((p.status.as_str(), p.attempts), ("pending", 1));
    assert_eq!(p.failure.as_deref(), Some("bank_unavailable"));
    assert_eq!(money(&w, &shop).await, ("0.00".into(), "99.40".into()));
    // Not due yet: nothing happens.
    assert_eq!(w.gw.payouts_step().await.unwrap(), 0);
    w.clock.advance_seconds(61);
    assert_eq!(w.gw.payouts_step().await.unwrap(), 1);
    let after = &w.gw.list_payouts(&shop, Default::default()).await.unwrap()[0];
    assert_eq!((after.status.as_str(), after.attempts), ("paid", 2));
    assert_eq!(money(&w, &shop).await, ("0.00".into(), "0.00".into()));
    assert_books(&w).await;
});

on_both!(
    a_returned_or_refused_payout_is_available_again,
    |w: World| async move {
        let shop = settled_shop(&w, Some(SANDBOX_RETURNS)).await;
        assert_eq!(pay_out(&w, &shop).await.unwrap().status, "paid");
        assert_eq!(money(&w, &shop).await, ("0.00".into(), "0.00".into()));
        // The bank sends it back: the money is available again.
        assert_eq!(w.gw.payouts_step().await.unwrap(), 1);
        let back = &w.gw.list_payouts(&shop, Default::default()).await.unwrap()[0];
        assert_eq!(
            (back.status.as_str(), back.failure.as_deref()),
            ("returned", Some("account_closed"))
        );
        assert_eq!(money(&w, &shop).await, ("99.40".into(), "0.00".into()));
        assert_eq!(w.gw.payouts_step().await.unwrap(), 0, "sent back once");

        let refused = settled_shop(&w, Some(SANDBOX_REFUSES)).await;
        let p = pay_out(&w, &refused).await.unwrap();
        assert_eq!(
            (p.status.as_str(), p.failure.as_deref()),
            ("failed", Some("account_not_found"))
        );
        assert_eq!(money(&w, &refused).await, ("99.40".into(), "0.00".into()));
        assert_books(&w).await;
    }
);

on_both!(
    no_payout_without_an_account_or_money,
    |w: World| async move {
        let shop = settled_shop(&w, None).await;
        assert!(pay_out(&w, &shop).await.is_none());
        assert_eq!(money(&w, &shop).await, ("99.40".into(), "0.00".into()));
        // The world's merchant has nothing settled.
        assert!(pay_out(&w, &w.merchant).await.is_none());
        // Bad accounts are refused at onboarding.
        let e =
            w.gw.create_merchant(
                &admin(),
                NewMerchant {
                    bank_account: Some("6222-0000".into()),
                    ..merchant_form("BAD")
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, "invalid_request");
    }
);

on_both!(payouts_racing_each_other_pay_once, |w: World| async move {
    let shop = settled_shop(&w, Some(SANDBOX_PAYS)).await;
    let id = shop.subject.clone().unwrap();
    let w = Arc::new(w);
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (w, id) = (w.clone(), id.clone());
            tokio::spawn(async move { w.gw.pay_out(By::Named("test"), &id).await })
        })
        .collect();
    let mut made = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().is_some() {
            made += 1;
        }
    }
    assert_eq!(made, 1);
    let listed = w.gw.list_payouts(&shop, Default::default()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].status.as_str(), listed[0].amount.as_str()),
        ("paid", "99.40")
    );
    assert_eq!(money(&w, &shop).await, ("0.00".into(), "0.00".into()));
    assert_books(&w).await;
});

on_both!(
    a_bank_that_never_answers_never_fails_a_payout,
    |w: World| async move {
        let shop = settled_shop(&w, Some(SANDBOX_SILENT)).await;
        let p = pay_out(&w, &shop).await.unwrap();
        assert_eq!(
            (p.status.as_str(), p.failure.as_deref()),
            ("pending", Some("bank_timeout"))
        );
        // Asked again and again past the attempts a refusal gets: the bank may
        // have paid, so the money stays on its way, never back to available.
        for _ in 0..6 {
            w.clock.advance_seconds(3600);
            w.gw.payouts_step().await.unwrap();
        }
        let now = &w.gw.list_payouts(&shop, Default::default()).await.unwrap()[0];
        assert_eq!(now.status, "pending");
        assert!(now.attempts >= 6, "{now:?}");
        assert_eq!(money(&w, &shop).await, ("0.00".into(), "99.40".into()));
        assert_books(&w).await;
    }
);

on_both!(
    a_merchant_whose_payout_failed_is_left_out_of_the_daily_run,
    |w: World| async move {
        let shop = settled_shop(&w, Some(SANDBOX_REFUSES)).await;
        let p = pay_out(&w, &shop).await.unwrap();
        assert_eq!(p.status, "failed");
        let made = w.gw.pay_out_all(By::Named("test")).await.unwrap();
        assert!(
            made.iter().all(|m| m.merchant_id != p.merchant_id),
            "{made:?}"
        );
        assert_eq!(
            w.gw.list_payouts(&shop, Default::default())
                .await
                .unwrap()
                .len(),
            1
        );
        // By hand, naming it, an operator can still try.
        assert_eq!(pay_out(&w, &shop).await.unwrap().status, "failed");
        assert_books(&w).await;
    }
);

on_both!(
    a_payout_racing_the_settlement_pays_only_what_is_available,
    |w: World| async move {
        let m =
            w.gw.create_merchant(
                &admin(),
                NewMerchant {
                    bank_account: Some(SANDBOX_PAYS.to_owned()),
                    ..merchant_form("RACING SHOP")
                },
            )
            .await
            .unwrap();
        let shop = key_of(&w.gw, Role::Merchant, &m.id).await;
        for _ in 0..3 {
            w.gw.charge(&shop, &w.device_token(), "50.00", None, None)
                .await
                .unwrap();
        }
        let today = BusinessDay::of(w.clock.now(), 480);
        w.clock.set(today.ends_at(480));
        w.clock.advance_seconds(600);
        let w = Arc::new(w);
        // Payouts asked while the day settles, a millisecond apart: each
        // pays what was available when it ran, never more.
        let settled = {
            let (w, id) = (w.clone(), m.id.clone());
            tokio::spawn(async move { w.gw.settle_day(By::Named("test"), &id, today).await })
        };
        let payouts: Vec<_> = (0..6)
            .map(|i| {
                let (w, id) = (w.clone(), m.id.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(i)).await;
                    w.gw.pay_out(By::Named("test"), &id).await
                })
            })
            .collect();
        let mut paid = 0;
        for t in payouts {
            if let Some(p) = t.await.unwrap().unwrap() {
                paid += minor_units(&p.amount);
            }
        }
        let (s, _) = settled.await.unwrap().unwrap();
        // What was not paid out in the race is paid now.
        if let Some(p) = pay_out(&w, &shop).await {
            paid += minor_units(&p.amount);
        }
        assert_eq!(
            paid,
            minor_units(&s.settled),
            "paid out exactly what settled"
        );
        assert_eq!(money(&w, &shop).await, ("0.00".into(), "0.00".into()));
        assert_books(&w).await;
    }
);

on_both!(
    two_nodes_ask_the_bank_once_per_attempt,
    |w: World| async move {
        let shop = settled_shop(&w, Some(SANDBOX_FAILS_ONCE)).await;
        // Two gateways on one store and one bank, which takes a while to
        // answer (so the nodes' steps overlap): two nodes.
        let bank = Arc::new(qrgate_processor::bank::SandboxBank::new());
        let slow = Arc::new(SlowBank(bank.clone()));
        let a = Arc::new(w.node().await.with_bank(slow.clone()));
        let b = Arc::new(w.node().await.with_bank(slow.clone()));
        let id = shop.subject.clone().unwrap();
        let p = a.pay_out(By::Named("test"), &id).await.unwrap().unwrap();
        assert_eq!(p.status, "pending", "the first attempt failed: {p:?}");
        assert_eq!(bank.attempts(&p.id), 1);
        // The retry is due: both nodes' job steps run it at once, again
        // and again.
        w.clock.advance_seconds(61);
        let steps: Vec<_> = [a.clone(), b.clone(), a.clone(), b.clone()]
            .into_iter()
            .map(|gw| tokio::spawn(async move { gw.payouts_step().await }))
            .collect();
        for t in steps {
            t.await.unwrap().unwrap();
        }
        assert_eq!(bank.attempts(&p.id), 2, "one node asked the bank");
        let now = &w.gw.list_payouts(&shop, Default::default()).await.unwrap()[0];
        assert_eq!((now.status.as_str(), now.attempts), ("paid", 2));
        assert_books(&w).await;
    }
);

/// The sandbox bank, 100 ms slower to answer a payment.
struct SlowBank(Arc<qrgate_processor::bank::SandboxBank>);

impl qrgate_processor::bank::Payouts for SlowBank {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn pay<'a>(
        &'a self,
        payout_id: &'a str,
        account: &'a str,
        amount_minor: i64,
    ) -> qrgate_processor::BoxFuture<'a, qrgate_processor::bank::BankAnswer> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.0.pay(payout_id, account, amount_minor).await
        })
    }
    fn returns(&self) -> qrgate_processor::BoxFuture<'_, Vec<qrgate_processor::bank::Returned>> {
        self.0.returns()
    }
}
