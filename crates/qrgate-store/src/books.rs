//! The auditor's check of the books: the ledger balances, every stored
//! balance is the sum of its entries, no account is below zero that may not
//! be, every payment's state agrees with the postings that name it, every
//! settlement adds up, moved what it says and holds exactly its day's
//! movements (its net is the day's postings on the merchant's pending
//! account, so a movement of the day written after the day closed shows),
//! and every posting that names
//! a merchant moves only that merchant's accounts (so its statements,
//! which are its postings, add up to its balances).

use crate::db::{Arg, Conn};
use crate::error::StoreError;
use crate::model::{LedgerCheck, PaymentDisagreement};

pub(crate) async fn ledger_check<C: Conn>(c: &mut C) -> Result<LedgerCheck, StoreError> {
    let totals = c
        .rows(
            "SELECT currency, CAST(SUM(amount_minor) AS BIGINT) AS total, CAST(COUNT(*) AS BIGINT) AS entries FROM ledger_entries GROUP BY currency ORDER BY currency",
            &[],
        )
        .await?;
    let mut entries = 0;
    let mut out = Vec::new();
    for r in &totals {
        out.push((r.str("currency")?, r.i64("total")?));
        entries += r.i64("entries")?;
    }
    let mismatched = c
        .rows(
            "SELECT a.id FROM accounts a LEFT JOIN \
             (SELECT account_id, CAST(SUM(amount_minor) AS BIGINT) AS total FROM ledger_entries GROUP BY account_id) e \
             ON e.account_id = a.id WHERE a.balance_minor <> COALESCE(e.total, 0) ORDER BY a.id",
            &[],
        )
        .await?;
    let negative = c
        .rows(
            "SELECT id FROM accounts WHERE NOT allow_negative AND balance_minor < 0 ORDER BY id",
            &[],
        )
        .await?;
    let disagreeing_payments = disagreeing_payments(c).await?;
    let settlements = c
        .rows(
            "SELECT st.merchant_id || '/' || st.business_date AS id FROM settlements st \
             LEFT JOIN ledger_entries e ON e.posting_id = st.posting_id AND e.amount_minor > 0 \
             WHERE COALESCE(e.amount_minor, 0) <> st.settled_minor \
               OR st.carried_out_minor <> st.carried_in_minor + st.net_minor - st.settled_minor \
               OR st.settled_minor < 0 OR st.carried_out_minor > 0 \
               OR (st.settled_minor > 0 AND st.carried_out_minor <> 0) \
               OR st.net_minor <> (SELECT COALESCE(SUM(d.amount_minor), 0) FROM postings p \
                    JOIN ledger_entries d ON d.posting_id = p.id JOIN accounts a ON a.id = d.account_id \
                    WHERE p.merchant_id = st.merchant_id AND p.created_at >= st.starts_at \
                      AND p.created_at < st.ends_at AND p.kind <> 'settlement' \
                      AND a.kind = 'merchant_settlement' AND a.owner_id = st.merchant_id \
                      AND a.currency = st.currency) \
             ORDER BY 1 LIMIT $1",
            &[Arg::I64(LedgerCheck::MAX_LISTED)],
        )
        .await?;
    // A merchant's own accounts are owned by it (pending, available, in
    // payout, fees); a posting that names a merchant moves only its own,
    // and one that moves a merchant's accounts names it (its statements
    // are its postings: one that named no one would be missing from them,
    // and the balance would not be the sum of the statements' rows).
    // Postings from before postings named merchants (migration 0019) name
    // none; they are all older than the first posting that names one.
    let misattributed = c
        .rows(
            "SELECT DISTINCT s.id FROM postings s JOIN ledger_entries e ON e.posting_id = s.id \
             JOIN accounts a ON a.id = e.account_id \
             WHERE a.kind IN ('merchant_settlement', 'merchant_available', 'merchant_payout', 'fee_revenue') \
               AND ((s.merchant_id IS NOT NULL AND a.owner_id <> s.merchant_id) \
                 OR (s.merchant_id IS NULL AND s.created_at > \
                      (SELECT MIN(f.created_at) FROM postings f WHERE f.merchant_id IS NOT NULL))) \
             ORDER BY 1 LIMIT $1",
            &[Arg::I64(LedgerCheck::MAX_LISTED)],
        )
        .await?;
    Ok(LedgerCheck {
        disagreeing_payments,
        disagreeing_settlements: settlements
            .iter()
            .map(|r| r.str("id"))
            .collect::<Result<_, _>>()?,
        misattributed_postings: misattributed
            .iter()
            .map(|r| r.str("id"))
            .collect::<Result<_, _>>()?,
        totals: out,
        mismatched_accounts: mismatched
            .iter()
            .map(|r| r.str("id"))
            .collect::<Result<_, _>>()?,
        negative_accounts: negative
            .iter()
            .map(|r| r.str("id"))
            .collect::<Result<_, _>>()?,
        entries,
    })
}

/// Per payment id named by a posting: the money moved by its postings of
/// each kind (the sum of each posting's positive entries).
macro_rules! posted_per_payment {
    () => {
        "SELECT s.payment_id AS pid, \
           CAST(SUM(CASE WHEN s.kind = 'payment' THEN e.amount_minor ELSE 0 END) AS BIGINT) AS captured, \
           CAST(SUM(CASE WHEN s.kind = 'refund' THEN e.amount_minor ELSE 0 END) AS BIGINT) AS refunded, \
           CAST(SUM(CASE WHEN s.kind = 'reversal' THEN e.amount_minor ELSE 0 END) AS BIGINT) AS reversed, \
           CAST(SUM(CASE WHEN s.kind NOT IN ('payment', 'refund', 'reversal') THEN e.amount_minor ELSE 0 END) AS BIGINT) AS other \
         FROM postings s JOIN ledger_entries e ON e.posting_id = s.id \
         WHERE s.payment_id IS NOT NULL AND e.amount_minor > 0 GROUP BY s.payment_id"
    };
}

/// Per payment id named by a posting: what its postings moved into the
/// fee revenue, net (fees charged less fees given back).
macro_rules! fees_per_payment {
    () => {
        "SELECT s.payment_id AS pid, CAST(SUM(e.amount_minor) AS BIGINT) AS fees \
         FROM postings s JOIN ledger_entries e ON e.posting_id = s.id \
         WHERE s.payment_id IS NOT NULL AND e.account_id LIKE 'fees:%' GROUP BY s.payment_id"
    };
}

/// Payments whose postings disagree with their state, and payment ids
/// named by postings that have no payment. The SQL keeps the payments
/// whose figures break a rule of [`PaymentDisagreement::problems_of`] (the
/// same rules), so only those rows leave the database (the query itself
/// still aggregates every posting that names a payment); the function then
/// names what is wrong.
async fn disagreeing_payments<C: Conn>(c: &mut C) -> Result<Vec<PaymentDisagreement>, StoreError> {
    let rows = c
        .rows(
            concat!(
                "SELECT p.id AS payment_id, p.status, p.amount_minor, p.refunded_minor, \
                   COALESCE(r.total, 0) AS refunds_minor, COALESCE(f.captured, 0) AS captured_minor, \
                   COALESCE(f.refunded, 0) AS refunded_posted_minor, COALESCE(f.reversed, 0) AS reversed_minor, \
                   COALESCE(f.other, 0) AS other_minor, p.fee_minor, COALESCE(r.fees, 0) AS fee_returned_minor, \
                   COALESCE(g.fees, 0) AS fee_posted_minor \
                 FROM payments p LEFT JOIN (",
                posted_per_payment!(),
                ") f ON f.pid = p.id \
                 LEFT JOIN (SELECT payment_id AS pid, CAST(SUM(amount_minor) AS BIGINT) AS total, \
                   CAST(SUM(fee_minor) AS BIGINT) AS fees FROM refunds GROUP BY payment_id) r \
                   ON r.pid = p.id \
                 LEFT JOIN (",
                fees_per_payment!(),
                ") g ON g.pid = p.id \
                 WHERE NOT ( \
                   COALESCE(g.fees, 0) = CASE WHEN p.status = 'succeeded' \
                     THEN p.fee_minor - COALESCE(r.fees, 0) ELSE 0 END AND \
                   COALESCE(f.refunded, 0) + COALESCE(f.reversed, 0) <= COALESCE(f.captured, 0) \
                   AND COALESCE(f.refunded, 0) = p.refunded_minor AND COALESCE(r.total, 0) = p.refunded_minor \
                   AND COALESCE(f.other, 0) = 0 \
                   AND CASE p.status \
                     WHEN 'succeeded' THEN COALESCE(f.captured, 0) = p.amount_minor AND COALESCE(f.reversed, 0) = 0 \
                     WHEN 'canceled' THEN COALESCE(f.reversed, 0) = COALESCE(f.captured, 0) \
                       AND COALESCE(f.captured, 0) IN (0, p.amount_minor) AND p.refunded_minor = 0 \
                     ELSE COALESCE(f.captured, 0) = 0 AND COALESCE(f.reversed, 0) = 0 AND COALESCE(f.refunded, 0) = 0 \
                   END) \
                 UNION ALL \
                 SELECT f.pid, 'missing', 0, 0, 0, f.captured, f.refunded, f.reversed, f.other, 0, 0, 0 FROM (",
                posted_per_payment!(),
                ") f LEFT JOIN payments p ON p.id = f.pid WHERE p.id IS NULL \
                 ORDER BY 1 LIMIT $1"
            ),
            &[Arg::I64(LedgerCheck::MAX_LISTED)],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut d = PaymentDisagreement {
            payment_id: r.str("payment_id")?,
            status: r.str("status")?,
            amount_minor: r.i64("amount_minor")?,
            refunded_minor: r.i64("refunded_minor")?,
            refunds_minor: r.i64("refunds_minor")?,
            captured_minor: r.i64("captured_minor")?,
            refunded_posted_minor: r.i64("refunded_posted_minor")?,
            reversed_minor: r.i64("reversed_minor")?,
            other_minor: r.i64("other_minor")?,
            fee_minor: r.i64("fee_minor")?,
            fee_returned_minor: r.i64("fee_returned_minor")?,
            fee_posted_minor: r.i64("fee_posted_minor")?,
            problems: Vec::new(),
        };
        d.problems = d.problems_of();
        if d.problems.is_empty() {
            // The SQL and the rules disagree: say so rather than pass it.
            d.problems
                .push("the check's query and its rules disagree on this payment".to_owned());
        }
        out.push(d);
    }
    Ok(out)
}
