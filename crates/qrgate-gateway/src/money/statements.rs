//! A merchant's daily statements (QG-STATEMENTS), as the wallets' bills
//! are: the trade
//! bill (one row per payment, refund and cancel of the day) and the
//! fund-flow bill (one row per entry on the merchant's own accounts, with
//! the running balance), each closing with a totals line.
//!
//! Both are read from the ledger (the merchant's postings of the day), a
//! page at a time, so they stream with bounded memory and agree with the
//! balances by construction. A settled day is final and never changes; a
//! day not settled yet is provisional, and covers what was recorded up to
//! a few seconds before it was asked for (twice the card processor's
//! deadline and two seconds: a movement stamped earlier and still being
//! written lands in the next download). The body is read twice: once for
//! its SHA-256 digest (sent as a header before it), once to send it; both
//! passes read the same closed range of rows.
//!
//! Text cells that come from a merchant (`out_trade_no`, `out_refund_no`)
//! and would start a spreadsheet formula (`=`, `+`, `-`, `@`, tab or
//! carriage return) get a leading apostrophe; cells with a comma, quote or
//! line break are quoted (RFC 4180).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::digest::{Context, SHA256};

use qrgate_core::day::BusinessDay;
use qrgate_core::payment::PaymentDetails;
use qrgate_core::{Currency, Timestamp};
use qrgate_store::{FundRow, StatementPage, Store, TradeRow};

use super::MerchantAccounts;
use crate::views::amount;
use crate::{Error, Gateway, Principal};

/// Which bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// One row per payment, refund and cancel.
    Trades,
    /// One row per entry on the merchant's accounts, with running balances.
    Funds,
}

impl StatementKind {
    pub fn name(self) -> &'static str {
        match self {
            StatementKind::Trades => "trades",
            StatementKind::Funds => "funds",
        }
    }
}

/// A statement's header: what it covers, whether it is final, and the
/// SHA-256 of its body (base64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub merchant_id: String,
    pub date: String,
    pub kind: StatementKind,
    /// The day was settled: the statement never changes.
    pub final_: bool,
    /// Rows recorded before this time.
    pub as_of: Timestamp,
    pub sha256: String,
}

/// Rows read per page.
const ROWS: i64 = 2000;
/// How far back from now a provisional statement stops, beyond twice the
/// card processor's deadline.
const SETTLING_MS: i64 = 2 * 1000;

/// Reads a statement's body a page at a time.
pub struct StatementReader {
    kind: StatementKind,
    page: StatementPage,
    currency: Currency,
    status: &'static str,
    state: ReadState,
}

enum ReadState {
    Header(Totals),
    Rows(Totals),
    Done,
}

/// Running figures of a statement.
#[derive(Default)]
struct Totals {
    rows: i64,
    payments: i64,
    refunds: i64,
    fees: i64,
    net: i64,
    /// Funds: per account (pending, available, in payout): opening,
    /// credits, debits, running balance.
    accounts: [(i64, i64, i64, i64); 3],
}

impl<S: Store> Gateway<S> {
    /// A statement of `date` for a merchant (a merchant key's own; any
    /// merchant's for admin and auditor keys): its header, with the digest
    /// of the body a reader then gives.
    pub async fn statement(
        &self,
        p: &Principal,
        merchant_id: Option<&str>,
        date: &str,
        kind: StatementKind,
    ) -> Result<(Statement, StatementReader), Error> {
        let id = self.money_of(p, merchant_id)?.to_owned();
        let day = BusinessDay::parse(date)
            .map_err(|e| Error::bad_request("invalid_request", e.to_string()))?;
        let offset = self.limits.business_offset_minutes;
        let now = self.now();
        let (from, ends) = (day.starts_at(offset), day.ends_at(offset));
        if now < from {
            return Err(Error::bad_request(
                "invalid_request",
                format!("{day} has not begun: there is no statement of it yet"),
            ));
        }
        if self.store.merchant(&id).await?.is_none() {
            return Err(Error::not_found("merchant", &id));
        }
        let settled = self
            .store
            .settlement(&id, &day.to_string())
            .await?
            .is_some();
        let as_of = if settled {
            ends
        } else {
            let deadline =
                i64::try_from(self.processor_timeout.as_millis()).unwrap_or(i64::MAX / 4);
            let margin = deadline.saturating_mul(2).saturating_add(SETTLING_MS);
            now.checked_add_millis(-margin).unwrap_or(now).min(ends)
        };
        // The opening balances once, for both passes.
        let opening = match kind {
            StatementKind::Funds => self.opening(&id, from).await?,
            StatementKind::Trades => [0; 3],
        };
        let reader = self.statement_reader(&id, (from, as_of), kind, settled, opening);
        // First pass: the digest (the same rows and opening balances).
        let mut first = self.statement_reader(&id, (from, as_of), kind, settled, opening);
        let mut ctx = Context::new(&SHA256);
        while let Some(chunk) = first.next_chunk(self).await? {
            ctx.update(chunk.as_bytes());
        }
        let statement = Statement {
            merchant_id: id,
            date: day.to_string(),
            kind,
            final_: settled,
            as_of,
            sha256: STANDARD.encode(ctx.finish().as_ref()),
        };
        Ok((statement, reader))
    }

    /// The merchant's three accounts' balances when the day began, read
    /// in one statement.
    async fn opening(&self, merchant_id: &str, from: Timestamp) -> Result<[i64; 3], Error> {
        let acc = MerchantAccounts::of(merchant_id, crate::CURRENCY);
        let ids = [&acc.pending, &acc.available, &acc.in_payout].map(|a| a.as_str());
        let rows = self.store.opening_balances(merchant_id, from, ids).await?;
        Ok(ids.map(|id| rows.iter().find(|(a, _)| a == id).map_or(0, |(_, o)| *o)))
    }

    fn statement_reader(
        &self,
        merchant_id: &str,
        (from, until): (Timestamp, Timestamp),
        kind: StatementKind,
        settled: bool,
        opening: [i64; 3],
    ) -> StatementReader {
        let currency = crate::CURRENCY;
        let acc = MerchantAccounts::of(merchant_id, currency);
        let mut totals = Totals::default();
        for (i, o) in opening.iter().enumerate() {
            totals.accounts[i] = (*o, 0, 0, *o);
        }
        StatementReader {
            kind,
            page: StatementPage {
                merchant_id: merchant_id.to_owned(),
                pending: acc.pending,
                fees: acc.fees,
                available: acc.available,
                in_payout: acc.in_payout,
                from,
                until,
                after: None,
                limit: ROWS,
            },
            currency,
            status: if settled { "final" } else { "provisional" },
            state: ReadState::Header(totals),
        }
    }
}

const TRADES_HEADER: &str = "time,type,id,payment_id,out_trade_no,out_refund_no,mode,status,amount,refund_amount,fee,net,metadata\n";
const FUNDS_HEADER: &str = "time,posting_id,kind,payment_id,account,amount,balance\n";

impl StatementReader {
    /// The next piece of the body, or `None` after the totals.
    pub async fn next_chunk<S: Store>(&mut self, gw: &Gateway<S>) -> Result<Option<String>, Error> {
        match std::mem::replace(&mut self.state, ReadState::Done) {
            ReadState::Done => Ok(None),
            ReadState::Header(t) => {
                self.state = ReadState::Rows(t);
                Ok(Some(
                    match self.kind {
                        StatementKind::Trades => TRADES_HEADER,
                        StatementKind::Funds => FUNDS_HEADER,
                    }
                    .to_owned(),
                ))
            }
            ReadState::Rows(mut t) => {
                let out = match self.kind {
                    StatementKind::Trades => {
                        let rows = gw.store.trade_rows(&self.page).await?;
                        if let Some(last) = rows.last() {
                            self.page.after = Some((last.at, last.posting_id.clone(), 0));
                        }
                        rows.iter()
                            .map(|r| trade_line(r, self.currency, &mut t))
                            .collect::<String>()
                    }
                    StatementKind::Funds => {
                        let rows = gw.store.fund_rows(&self.page).await?;
                        if let Some(last) = rows.last() {
                            self.page.after = Some((last.at, String::new(), last.entry_id));
                        }
                        rows.iter()
                            .map(|r| fund_line(r, &self.page, self.currency, &mut t))
                            .collect::<String>()
                    }
                };
                if out.is_empty() {
                    return Ok(Some(self.totals(&t)));
                }
                self.state = ReadState::Rows(t);
                Ok(Some(out))
            }
        }
    }

    /// The closing lines: a header and the figures.
    fn totals(&self, t: &Totals) -> String {
        let a = |m| amount(m, self.currency);
        match self.kind {
            StatementKind::Trades => format!(
                "rows,payments,refunds,fees,net,status\n{},{},{},{},{},{}\n",
                t.rows,
                a(t.payments),
                a(t.refunds),
                a(t.fees),
                a(t.net),
                self.status
            ),
            StatementKind::Funds => {
                let mut out = String::from("account,opening,credits,debits,closing,status\n");
                for (name, (opening, credits, debits, closing)) in
                    ["pending", "available", "in_payout"].iter().zip(t.accounts)
                {
                    out.push_str(&format!(
                        "{name},{},{},{},{},{}\n",
                        a(opening),
                        a(credits),
                        a(debits),
                        a(closing),
                        self.status
                    ));
                }
                out
            }
        }
    }
}

/// One trade row, and its figures added to the totals.
fn trade_line(r: &TradeRow, currency: Currency, t: &mut Totals) -> String {
    let a = |m| amount(m, currency);
    let gross = r.to_pending + r.to_fees;
    let details = r
        .details
        .as_deref()
        .and_then(|d| serde_json::from_str::<PaymentDetails>(d).ok());
    let mode = details
        .as_ref()
        .map(|d| d.mode.as_str().to_owned())
        .unwrap_or_default();
    // A refund's row shows the refund's notes; a payment's and a cancel's
    // the payment's.
    let metadata = match (&r.refund_metadata, &details) {
        (Some(m), _) => m.clone(),
        (None, Some(d)) if r.kind != "refund" => {
            d.metadata.to_column().unwrap_or_default().to_owned()
        }
        _ => String::new(),
    };
    // A payment of an order shows the order's number, as its view does.
    let number = r
        .out_trade_no
        .clone()
        .or_else(|| details.and_then(|d| d.out_trade_no))
        .unwrap_or_default();
    // The status is the row's own (what happened then), never the
    // payment's status now: a closed day's rows do not change.
    let (kind, status, id, amount_cell, refund_cell) = match r.kind.as_str() {
        "payment" => {
            t.payments += gross;
            (
                "payment",
                "paid",
                r.payment_id.clone(),
                a(gross),
                String::new(),
            )
        }
        "refund" => {
            t.refunds -= gross;
            (
                "refund",
                "refunded",
                r.refund_id.clone(),
                String::new(),
                a(-gross),
            )
        }
        _ => {
            t.refunds -= gross;
            (
                "cancel",
                "canceled",
                r.payment_id.clone(),
                String::new(),
                a(-gross),
            )
        }
    };
    t.rows += 1;
    t.fees += r.to_fees;
    t.net += r.to_pending;
    let cells = [
        r.at.to_rfc3339(),
        kind.to_owned(),
        id.unwrap_or_else(|| r.posting_id.clone()),
        r.payment_id.clone().unwrap_or_default(),
        text_cell(&number),
        text_cell(r.out_refund_no.as_deref().unwrap_or_default()),
        mode,
        status.to_owned(),
        amount_cell,
        refund_cell,
        a(r.to_fees),
        a(r.to_pending),
        text_cell(&metadata),
    ];
    line(&cells)
}

/// One fund-flow row (an entry on one of the merchant's accounts) with
/// that account's balance after it.
fn fund_line(r: &FundRow, page: &StatementPage, currency: Currency, t: &mut Totals) -> String {
    let a = |m| amount(m, currency);
    let (i, name) = if r.account_id == page.pending.as_str() {
        (0, "pending")
    } else if r.account_id == page.available.as_str() {
        (1, "available")
    } else {
        (2, "in_payout")
    };
    let acc = &mut t.accounts[i];
    if r.amount_minor >= 0 {
        acc.1 += r.amount_minor;
    } else {
        acc.2 -= r.amount_minor;
    }
    acc.3 += r.amount_minor;
    t.rows += 1;
    let cells = [
        r.at.to_rfc3339(),
        r.posting_id.clone(),
        r.kind.clone(),
        r.payment_id.clone().unwrap_or_default(),
        name.to_owned(),
        a(r.amount_minor),
        a(acc.3),
    ];
    line(&cells)
}

/// Cells joined into one CSV line, quoted where they need it.
fn line(cells: &[String]) -> String {
    let mut out = String::new();
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if c.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&c.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(c);
        }
    }
    out.push('\n');
    out
}

/// A cell of text from outside: one that a spreadsheet would run as a
/// formula gets a leading apostrophe.
fn text_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_cells_quoted() {
        assert_eq!(text_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        for s in ["+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(text_cell(s).starts_with('\''), "{s:?}");
        }
        assert_eq!(text_cell("T-100"), "T-100");
        assert_eq!(
            line(&[
                "a,b".into(),
                "say \"hi\"".into(),
                "x\ny".into(),
                "plain".into()
            ]),
            "\"a,b\",\"say \"\"hi\"\"\",\"x\ny\",plain\n"
        );
    }
}
