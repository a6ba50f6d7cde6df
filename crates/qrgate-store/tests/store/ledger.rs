//! The ledger check, and movements of one payment that exclude each other.

use super::*;

/// A posting that names a payment, moving `amount` from the merchant back
/// to `wallet`, with no change to the payment: what a lost guard would let
/// through.
fn bare_payback(id: &str, kind: &str, payment_id: &str, wallet: &str, amount: i64) -> Movement {
    let mut m = Movement::new(t(5));
    m.posting = Some(Posting {
        id: format!("pst_{id}"),
        kind: kind.into(),
        payment_id: Some(payment_id.into()),
        merchant_id: None,
        entries: vec![entry(MERCHANT, -amount), entry(wallet, amount)],
    });
    m
}

on_both!(
    the_ledger_check_lists_payments_whose_postings_disagree,
    |db: Db| async move {
        let s = &db.store;
        accounts(s, 1).await;
        s.apply(topup("t1", &wallet(0), 10_000)).await.unwrap();
        for (id, code) in [("pay_a", "ca"), ("pay_b", "cb"), ("pay_c", "cc")] {
            s.apply(pay(id, &wallet(0), code, 2_000, 100_000))
                .await
                .unwrap();
        }
        s.apply(refund("pay_b", "r1", &wallet(0), 500, (2_000, 0)))
            .await
            .unwrap();
        assert_sound(s).await;

        // Money back twice: a reversal posting on a payment that stays
        // succeeded, and a refund posting with no refund recorded. The
        // ledger still balances; the payments do not agree with it.
        s.apply(bare_payback("x1", "reversal", "pay_a", &wallet(0), 2_000))
            .await
            .unwrap();
        s.apply(bare_payback("x2", "refund", "pay_b", &wallet(0), 1_500))
            .await
            .unwrap();
        s.apply(bare_payback("x3", "payment", "pay_gone", &wallet(0), 1))
            .await
            .unwrap();
        let c = s.ledger_check().await.unwrap();
        assert!(c.totals.iter().all(|(_, t)| *t == 0), "{c:?}");
        assert!(c.mismatched_accounts.is_empty() && c.negative_accounts.is_empty());
        assert!(!c.is_sound());
        let ids: Vec<&str> = c
            .disagreeing_payments
            .iter()
            .map(|d| d.payment_id.as_str())
            .collect();
        assert_eq!(ids, ["pay_a", "pay_b", "pay_gone"], "{c:?}");
        let a = &c.disagreeing_payments[0];
        assert_eq!(
            (a.status.as_str(), a.captured_minor, a.reversed_minor),
            ("succeeded", 2_000, 2_000)
        );
        assert_eq!(a.problems, ["succeeded but 2000 reversed"]);
        let b = &c.disagreeing_payments[1];
        assert_eq!(
            (b.refunded_minor, b.refunds_minor, b.refunded_posted_minor),
            (500, 500, 2_000)
        );
        assert!(
            b.problems[0].contains("refund postings 2000"),
            "{:?}",
            b.problems
        );
        assert_eq!(c.disagreeing_payments[2].status, "missing");
    }
);

on_both!(
    a_cancel_and_a_refund_of_one_payment_exclude_each_other,
    |db: Db| async move {
        let s = &db.store;
        accounts(s, 1).await;
        s.apply(topup("t1", &wallet(0), 10_000)).await.unwrap();
        s.apply(pay("pay_1", &wallet(0), "c1", 2_000, 100_000))
            .await
            .unwrap();
        s.apply(pay("pay_2", &wallet(0), "c2", 2_000, 100_000))
            .await
            .unwrap();
        let cancel = |id: &str| {
            let mut m = bare_payback(&format!("cancel_{id}"), "reversal", id, &wallet(0), 2_000);
            m.payment = Some(PaymentWrite::Transition {
                id: id.into(),
                from: PaymentStatus::Succeeded,
                to: PaymentStatus::Canceled,
                details: None,
            });
            m
        };
        // Refunded in part: no cancel.
        s.apply(refund("pay_1", "r1", &wallet(0), 100, (2_000, 0)))
            .await
            .unwrap();
        let before = fingerprint(&db).await;
        let e = s.apply(cancel("pay_1")).await.unwrap_err();
        assert!(
            matches!(
                e,
                MovementError::PaymentHasRefunds {
                    refunded_minor: 100,
                    ..
                }
            ),
            "{e}"
        );
        // Canceled: no refund.
        s.apply(cancel("pay_2")).await.unwrap();
        let mid = fingerprint(&db).await;
        let e = s
            .apply(refund("pay_2", "r1", &wallet(0), 100, (2_000, 0)))
            .await
            .unwrap_err();
        assert!(
            matches!(e, MovementError::PaymentStateConflict { ref actual, .. } if *actual == PaymentStatus::Canceled),
            "{e}"
        );
        // A second cancel is a state conflict, not a duplicate posting id.
        let e = s.apply(cancel("pay_2")).await.unwrap_err();
        assert!(
            matches!(e, MovementError::PaymentStateConflict { ref actual, .. } if *actual == PaymentStatus::Canceled),
            "{e}"
        );
        assert_eq!(fingerprint(&db).await, mid);
        assert_ne!(before, mid);
        assert_sound(s).await;
    }
);

on_both!(
    settlements_that_do_not_add_up_and_misattributed_postings_are_found,
    |db: Db| async move {
        let s = &db.store;
        accounts(s, 1).await;
        let owner = format!("owner_{MERCHANT}");
        s.insert(Record::Account(Account {
            id: AccountId::stored("acc_avail_m1".into()),
            kind: "merchant_available".into(),
            owner_id: Some(owner.clone()),
            currency: Currency::CNY,
            allow_negative: false,
            balance_minor: 0,
            created_at: t(0),
            closed_until: None,
        }))
        .await
        .unwrap();
        s.apply(topup("t1", &wallet(0), 10_000)).await.unwrap();
        let mut m = pay("pay_1", &wallet(0), "c1", 2_000, 100_000);
        m.posting = m.posting.map(|p| p.for_merchant(&owner));
        s.apply(m).await.unwrap();
        let job = SettleDay {
            merchant_id: owner.clone(),
            business_date: "2026-11-25".into(),
            currency: Currency::CNY,
            pending: AccountId::stored(MERCHANT.into()),
            available: AccountId::stored("acc_avail_m1".into()),
            fee_revenue: AccountId::stored("acc_fees_m1".into()),
            starts_at: t(0),
            ends_at: t(10),
            at: t(20),
            posting_id: "pst_settle_m1".into(),
            audit: AuditEntry {
                action: "settlement.closed".into(),
                subject: "m1".into(),
                details: json!({}),
            },
        };
        let settled = s.settle_day(job.clone()).await.unwrap();
        assert_eq!(settled.settlement().settled_minor, 2_000);
        assert!(matches!(
            s.settle_day(job).await.unwrap(),
            Settled::Before(_)
        ));
        assert_sound(s).await;

        // A settlement row that says it settled more than its posting moved.
        db.raw("UPDATE settlements SET settled_minor = settled_minor + 1, carried_out_minor = carried_out_minor - 1")
            .await;
        let c = s.ledger_check().await.unwrap();
        assert_eq!(c.disagreeing_settlements, [format!("{owner}/2026-11-25")]);
        assert!(!c.is_sound());
        db.raw("UPDATE settlements SET settled_minor = settled_minor - 1, carried_out_minor = carried_out_minor + 1")
            .await;
        assert_sound(s).await;
        // One that adds up but holds another net than its day's postings
        // (as if a movement of the day had been written after it closed).
        db.raw("UPDATE settlements SET net_minor = net_minor + 1, carried_in_minor = carried_in_minor - 1")
            .await;
        let c = s.ledger_check().await.unwrap();
        assert_eq!(c.disagreeing_settlements, [format!("{owner}/2026-11-25")]);
        db.raw("UPDATE settlements SET net_minor = net_minor - 1, carried_in_minor = carried_in_minor + 1")
            .await;
        assert_sound(s).await;

        // A posting that names another merchant but moves this one's account.
        let mut m = pay("pay_2", &wallet(0), "c2", 500, 100_000);
        m.at = t(30);
        m.posting = m.posting.map(|p| p.for_merchant("owner_someone_else"));
        s.apply(m).await.unwrap();
        let c = s.ledger_check().await.unwrap();
        assert_eq!(c.misattributed_postings, ["pst_pay_2"]);
        assert!(!c.is_sound());
        // One that moves a merchant's account naming no merchant, after
        // postings name them: it would be missing from its statements.
        let mut m = pay("pay_3", &wallet(0), "c3", 300, 100_000);
        m.at = t(40);
        s.apply(m).await.unwrap();
        let c = s.ledger_check().await.unwrap();
        assert_eq!(c.misattributed_postings, ["pst_pay_2", "pst_pay_3"]);
    }
);
