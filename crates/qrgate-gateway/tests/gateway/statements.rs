//! Daily statements: the trade and fund-flow bills agree with the
//! payments and refunds made and with the balance; a settled day's never
//! changes; formulas are neutralised; only the merchant (and admins and
//! auditors) may read them. Both stores.

use base64::Engine;
use qrgate_core::day::BusinessDay;
use qrgate_gateway::money::{Statement, StatementKind};
use qrgate_gateway::trail::By;

use super::*;

async fn read(w: &World, p: &Principal, date: &str, kind: StatementKind) -> (Statement, String) {
    let (st, mut reader) = w.gw.statement(p, None, date, kind).await.unwrap();
    let mut body = String::new();
    while let Some(chunk) = reader.next_chunk(&w.gw).await.unwrap() {
        body.push_str(&chunk);
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    assert_eq!(
        st.sha256,
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref()),
        "the digest is the body's"
    );
    (st, body)
}

/// The last line's cells (the totals).
fn totals(body: &str) -> Vec<String> {
    body.lines()
        .last()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect()
}

on_both!(
    statements_agree_with_the_payments_and_the_balance,
    |w: World| async move {
        // 2026-11-25, 10:00 in Shanghai.
        let pay = |amount: &'static str, number: Option<&'static str>| {
            let w = &w;
            async move {
                id_of(
                    w.gw.charge(
                        &w.merchant,
                        &w.device_token(),
                        amount,
                        number.map(str::to_owned),
                        None,
                    )
                    .await
                    .unwrap(),
                )
            }
        };
        let a = pay("100.00", Some("=SUM(1,2)")).await;
        pay("50.00", None).await;
        w.gw.refund(&w.merchant, &a, "20.00", "R1", None)
            .await
            .unwrap();
        // An order's number shows on the payment that paid it.
        let order =
            w.gw.create_order(&w.merchant, "5.00", None, Some("O-1".into()), None)
                .await
                .unwrap();
        w.gw.pay_scanned(&w.consumer, &order.payload, None, None, None)
            .await
            .unwrap();
        let c = pay("12.30", None).await;
        w.gw.cancel(&w.merchant, &c, None).await.unwrap();
        w.clock.advance_seconds(120);

        let (st, trades) = read(&w, &w.merchant, "2026-11-25", StatementKind::Trades).await;
        assert!(!st.final_);
        let lines: Vec<&str> = trades.lines().collect();
        assert_eq!(
            lines[0],
            "time,type,id,payment_id,out_trade_no,out_refund_no,mode,status,amount,refund_amount,fee,net,metadata"
        );
        // Header, 6 rows (4 payments, a refund, a cancel), totals header and line.
        assert_eq!(lines.len(), 9, "{trades}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains(",payment,")
                    && l.contains(",O-1,,mpm_dynamic,paid,5.00,,0.03,4.97")),
            "{trades}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains(",payment,") && l.contains(",\"'=SUM(1,2)\",")),
            "neutralised and quoted: {trades}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains(",refund,") && l.contains(",R1,"))
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains(",cancel,") && l.contains(",canceled,"))
        );
        // 167.30 paid; 32.30 back; fees 0.60 + 0.30 + 0.03 + 0.07 − 0.12 − 0.07.
        assert_eq!(
            totals(&trades),
            ["6", "167.30", "32.30", "0.81", "134.19", "provisional"]
        );
        let balance = w.gw.balance(&w.merchant, None).await.unwrap().balances[0].clone();
        assert_eq!(
            balance.pending, "134.19",
            "the balance is the statement's net"
        );

        let (_, funds) = read(&w, &w.merchant, "2026-11-25", StatementKind::Funds).await;
        let f: Vec<&str> = funds.lines().collect();
        assert_eq!(
            f[0],
            "time,posting_id,kind,payment_id,account,amount,balance"
        );
        assert!(
            f.contains(&"pending,0.00,166.30,32.11,134.19,provisional"),
            "{funds}"
        );
        assert!(
            f.contains(&"available,0.00,0.00,0.00,0.00,provisional"),
            "{funds}"
        );

        // Settled: final, and the same rows (the same digest).
        let me = w.merchant.subject.clone().unwrap();
        let day = BusinessDay::parse("2026-11-25").unwrap();
        w.clock.set(day.ends_at(480));
        w.clock.advance_seconds(600);
        w.gw.settle_day(By::Named("test"), &me, day).await.unwrap();
        let (settled, again) = read(&w, &w.merchant, "2026-11-25", StatementKind::Trades).await;
        assert!(settled.final_);
        assert_eq!(again.replace(",final", ",provisional"), trades);
        // The next day moves money: the settled day's bills do not change.
        pay("8.00", None).await;
        w.gw.refund(&w.merchant, &a, "10.00", "R2", None)
            .await
            .unwrap();
        w.clock.advance_seconds(120);
        let (later, still) = read(&w, &w.merchant, "2026-11-25", StatementKind::Trades).await;
        assert_eq!((later.sha256, still), (settled.sha256, again));
        let (_, next) = read(&w, &w.merchant, "2026-11-26", StatementKind::Funds).await;
        assert!(
            next.contains(",settlement,,pending,-134.19,0.00\n"),
            "{next}"
        );
        assert!(
            next.contains(",settlement,,available,134.19,134.19\n"),
            "{next}"
        );
        let pending_now = w.gw.balance(&w.merchant, None).await.unwrap().balances[0]
            .pending
            .clone();
        let closing = next
            .lines()
            .find(|l| l.starts_with("pending,"))
            .unwrap()
            .split(',')
            .nth(4)
            .unwrap()
            .to_owned();
        assert_eq!(
            closing, pending_now,
            "the day's closing balance is the balance"
        );

        // Only the merchant, admins and auditors; a bad date is refused.
        let other =
            w.gw.statement(
                &w.other_merchant,
                Some(&me),
                "2026-11-25",
                StatementKind::Trades,
            )
            .await
            .err()
            .unwrap();
        assert_eq!(other.code, "not_found");
        let payer =
            w.gw.statement(&w.consumer, Some(&me), "2026-11-25", StatementKind::Trades)
                .await
                .err()
                .unwrap();
        assert_eq!(payer.code, "forbidden");
        assert!(
            w.gw.statement(&admin(), Some(&me), "2026-11-25", StatementKind::Funds)
                .await
                .is_ok()
        );
        let bad =
            w.gw.statement(&w.merchant, None, "2026-13-01", StatementKind::Trades)
                .await
                .err()
                .unwrap();
        assert_eq!(bad.code, "invalid_request");
    }
);
