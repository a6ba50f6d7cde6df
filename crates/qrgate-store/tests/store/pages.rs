//! The keyset pages of a day's rows (trade and fund-flow statements,
//! reconciliation's card movements) walk every row once, in order, when
//! rows share a millisecond and a page ends inside it; the day's end is
//! not included. Both stores.

use super::*;

/// A payment `id` of 1.00 at `ms`, clearing → merchant, for merchant `mch_1`.
fn paid_at(id: &str, ms: i64) -> Movement {
    let mut m = Movement::new(t(ms));
    m.posting = Some(
        Posting {
            id: format!("pst_{id}"),
            kind: "payment".into(),
            payment_id: Some(id.into()),
            merchant_id: None,
            entries: vec![entry(CLEARING, -100), entry(MERCHANT, 100)],
        }
        .for_merchant("mch_1"),
    );
    let mut row = payment_row(id, 100, "succeeded");
    row.created_at = t(ms);
    row.updated_at = t(ms);
    m.payment = Some(PaymentWrite::Insert(row));
    m
}

on_both!(
    day_pages_walk_every_row_once_in_order,
    |db: Db| async move {
        let s = &db.store;
        accounts(s, 0).await;
        // Written out of id order inside one millisecond.
        let made = [
            ("pay_c", 10),
            ("pay_a", 10),
            ("pay_b", 10),
            ("pay_e", 11),
            ("pay_d", 11),
            ("pay_f", 12),
            ("pay_g", 20),
            ("pay_late", 100),
        ];
        for (id, ms) in made {
            s.apply(paid_at(id, ms)).await.unwrap();
        }
        let expected = [
            "pst_pay_a",
            "pst_pay_b",
            "pst_pay_c",
            "pst_pay_d",
            "pst_pay_e",
            "pst_pay_f",
            "pst_pay_g",
        ];
        let acc = |id: &str| AccountId::stored(id.into());
        let mut page = StatementPage {
            merchant_id: "mch_1".into(),
            pending: acc(MERCHANT),
            fees: acc("acc_none"),
            available: acc("acc_none_a"),
            in_payout: acc("acc_none_p"),
            from: t(0),
            until: t(100),
            after: None,
            limit: 2,
        };
        let mut trades = Vec::new();
        loop {
            let rows = s.trade_rows(&page).await.unwrap();
            let Some(last) = rows.last() else { break };
            page.after = Some((last.at, last.posting_id.clone(), 0));
            trades.extend(rows.iter().map(|r| (r.posting_id.clone(), r.to_pending)));
        }
        assert_eq!(
            trades,
            expected.map(|p| (p.to_owned(), 100)),
            "trades, pages of 2"
        );
        page.after = None;
        let mut funds = Vec::new();
        loop {
            let rows = s.fund_rows(&page).await.unwrap();
            let Some(last) = rows.last() else { break };
            page.after = Some((last.at, String::new(), last.entry_id));
            funds.extend(rows.iter().map(|r| r.posting_id.clone()));
        }
        // Entries of one millisecond come in the order they were written.
        assert_eq!(
            funds,
            [
                "pst_pay_c",
                "pst_pay_a",
                "pst_pay_b",
                "pst_pay_e",
                "pst_pay_d",
                "pst_pay_f",
                "pst_pay_g"
            ],
            "funds, pages of 2"
        );
        let mut cards = CardMovementPage {
            clearing: acc(CLEARING),
            from: t(0),
            until: t(100),
            after: None,
            limit: 2,
        };
        let mut seen = Vec::new();
        loop {
            let rows = s.card_movements(&cards).await.unwrap();
            let Some(last) = rows.last() else { break };
            cards.after = Some((last.at, last.posting_id.clone()));
            seen.extend(rows.iter().map(|r| (r.posting_id.clone(), r.amount_minor)));
        }
        assert_eq!(
            seen,
            expected.map(|p| (p.to_owned(), -100)),
            "card movements"
        );
        let one = s
            .card_movements_of(&acc(CLEARING), "pay_late")
            .await
            .unwrap();
        assert_eq!(one.len(), 1, "found by its payment, whatever the day");
    }
);
