//! A movement as one PostgreSQL statement: every write of [`ops::apply`]
//! becomes a data-modifying CTE, and the statement runs on its own (an
//! implicit transaction), so a payment costs one round trip to the database
//! instead of one per write plus BEGIN and COMMIT.
//!
//! The guards stay what they are in [`ops::apply`]: an insert that must not
//! conflict (idempotency key, code burn, posting, payment, refund) or a
//! conditional write that must match its row (counter under its cap, account
//! with the funds, payment or order in the expected state), plus two reads:
//! the caller's API key is unrevoked, neither party is blocked. Each returns one
//! row when it passes and none when it does not (every guard names one row: a
//! single VALUES row or a primary key), so the statement's result expression
//! asks `EXISTS` of each (a `count(*) = 1` per guard set up an aggregate
//! each time: `ExecInitAgg` was about 6% of the backends' profile) and calls
//! `qrgate_refuse()` (migration 0011) when one is missing, which aborts the
//! statement, and with it every write, before anything commits.
//! The caller then runs the movement step by step in a transaction
//! ([`ops::apply`]), which finds the same refusal and names it (or replays
//! the stored response of an idempotency key seen before). So the fast path
//! never decides an outcome other than "written".
//!
//! All CTEs of a statement share one snapshot, and a row written by one CTE
//! is not seen by another: a movement that would touch one row twice (two
//! charges of one counter, two entries on one account, one code burnt twice)
//! is not composed and goes the step-by-step way. The guards are read by the
//! result expression in the order of [`ops::apply`] (counters by key,
//! accounts by id), which is the order their rows are locked in.

use sqlx::PgConnection;

use crate::db::Arg;
use crate::error::DbError;
use crate::model::*;
use crate::steps;
use crate::write::Prepared;

/// The SQLSTATE `qrgate_refuse()` raises.
pub(crate) const REFUSED: &str = "QG001";

/// What running a movement as one statement did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Committed.
    Written,
    /// A guard refused it; nothing was written.
    Refused,
    /// The movement has a shape this path does not compose.
    NotComposed,
}

/// A statement being composed: its text and its parameters, numbered in
/// the order they are added.
struct Composer<'a> {
    sql: String,
    args: Vec<Arg<'a>>,
    /// CTE names whose row count must be exactly one.
    guards: Vec<String>,
    ctes: usize,
    /// The placeholder of the movement's time, once added.
    at: Option<String>,
}

impl<'a> steps::Params<'a> for Composer<'a> {
    fn p(&mut self, a: Arg<'a>) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }
    fn at(&mut self, at: i64) -> String {
        match &self.at {
            Some(p) => p.clone(),
            None => {
                let p = self.p(Arg::I64(at));
                self.at = Some(p.clone());
                p
            }
        }
    }
}

impl<'a> Composer<'a> {
    fn new() -> Self {
        Composer {
            sql: String::with_capacity(2048),
            args: Vec::with_capacity(48),
            guards: Vec::new(),
            ctes: 0,
            at: None,
        }
    }

    /// Add `name AS (body)`; a guard when `guard`.
    fn cte(&mut self, name: String, body: &str, guard: bool) {
        self.sql
            .push_str(if self.ctes == 0 { "WITH " } else { ", " });
        self.sql.push_str(&name);
        self.sql.push_str(" AS (");
        self.sql.push_str(body);
        self.sql.push(')');
        self.ctes += 1;
        if guard {
            self.guards.push(name);
        }
    }

    fn finish(mut self) -> (String, Vec<Arg<'a>>) {
        if self.guards.is_empty() {
            self.sql.push_str(" SELECT 1");
        } else {
            let all = self
                .guards
                .iter()
                .map(|g| format!("EXISTS (SELECT 1 FROM {g})"))
                .collect::<Vec<_>>()
                .join(" AND ");
            self.sql.push_str(" SELECT CASE WHEN ");
            self.sql.push_str(&all);
            self.sql.push_str(" THEN 1 ELSE qrgate_refuse() END");
        }
        (self.sql, self.args)
    }
}

fn distinct<'s>(keys: impl Iterator<Item = &'s str>) -> bool {
    let mut v: Vec<&str> = keys.collect();
    let n = v.len();
    v.sort_unstable();
    v.dedup();
    v.len() == n
}

/// Whether [`ops::apply`] would refuse the movement before writing, or it
/// touches a row twice: either way it is not composed.
fn composable(m: &Movement) -> bool {
    let counters_ok = m.counters.iter().all(|ch| {
        ch.amount_minor >= 0
            && ch.uses >= 0
            && ch.amount_minor <= ch.cap_amount.unwrap_or(i64::MAX)
            && ch.uses <= ch.cap_uses.unwrap_or(i64::MAX)
    });
    let posting_ok = m.posting.as_ref().is_none_or(|p| {
        p.check_balanced().is_ok() && distinct(p.entries.iter().map(|e| e.account_id.as_str()))
    });
    m.records.is_empty()
        && m.complaint.is_none()
        && counters_ok
        && posting_ok
        && distinct(m.counters.iter().map(|c| c.key.as_str()))
        && distinct(m.burns.iter().map(|b| b.key.as_str()))
}

/// The movement as one statement, or `None` when it is not composed. The
/// statement binds the JSON texts [`Prepared`] made for the movement; a text
/// it lacks (which [`Prepared::new`] never leaves out) is not composed
/// either, so [`ops::apply`] refuses it instead of a row being written
/// empty or skipped.
fn compose(p: &Prepared) -> Option<(String, Vec<Arg<'_>>)> {
    let (m, texts) = (p.movement(), p.texts());
    if !composable(m) || texts.payloads.len() != m.events.len() {
        return None;
    }
    let mut s = Composer::new();
    let at = m.at.unix_millis();
    // A guard answers one row when it passes: RETURNING 1 on a write.
    let returning = |sql: String| format!("{sql} RETURNING 1");

    if let Some(key_id) = &m.live_api_key {
        let body = steps::live_api_key(&mut s, key_id);
        s.cte("k".into(), &body, true);
    }
    if let Some(device_id) = &m.live_device {
        let body = steps::live_device(&mut s, device_id, true);
        s.cte("dv".into(), &body, true);
    }
    if let Some(code_id) = &m.live_static_code {
        let body = steps::live_static_code(&mut s, code_id, true);
        s.cte("sc".into(), &body, true);
    }
    if let Some(account) = &m.day_open {
        let body = steps::day_open(&mut s, account, at, true);
        s.cte("dy".into(), &body, true);
    }
    if let Some(rec) = &m.idempotency {
        let body = returning(steps::idempotency(&mut s, rec, at));
        s.cte("i".into(), &body, true);
    }
    if !m.unblocked.is_empty() {
        let body = format!(
            "SELECT 1 WHERE NOT EXISTS ({})",
            steps::blocked(&mut s, &m.unblocked)
        );
        s.cte("u".into(), &body, true);
    }
    for (n, b) in m.burns.iter().enumerate() {
        let body = returning(steps::burn(&mut s, b, at));
        s.cte(format!("b{n}"), &body, true);
    }
    let mut counters: Vec<&CounterCharge> = m.counters.iter().collect();
    counters.sort_by(|a, b| a.key.cmp(&b.key));
    for (n, ch) in counters.into_iter().enumerate() {
        let body = returning(steps::counter_charge(&mut s, ch, at));
        s.cte(format!("c{n}"), &body, true);
    }
    // Before the money, as in ops::apply: the payment's guard is taken first.
    if let Some(w) = &m.payment {
        if w.carries_details() && texts.payment_details.is_none() {
            return None;
        }
        let body = returning(steps::payment(
            &mut s,
            w,
            texts.payment_details.as_deref(),
            at,
        ));
        s.cte("y".into(), &body, true);
    }
    if let Some(p) = &m.posting {
        let mut entries: Vec<&Entry> = p.entries.iter().collect();
        entries.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        for (n, e) in entries.into_iter().enumerate() {
            let body = returning(steps::move_balance(&mut s, e, at));
            s.cte(format!("a{n}"), &body, true);
        }
        let body = returning(steps::posting(&mut s, p, at));
        s.cte("p".into(), &body, true);
        let body = steps::ledger_entries(&mut s, p);
        s.cte("l".into(), &body, false);
    }
    if let Some(o) = &m.order {
        let body = returning(steps::order(&mut s, o, at));
        s.cte("o".into(), &body, true);
    }
    if let Some(r) = &m.refund {
        let body = returning(steps::refund(&mut s, r));
        s.cte("r".into(), &body, true);
    }
    for (n, (e, payload)) in m.events.iter().zip(&texts.payloads).enumerate() {
        let body = steps::outbox(&mut s, e, payload, at);
        s.cte(format!("e{n}"), &body, false);
    }
    if let Some(a) = &m.audit {
        let details = texts.audit_details.as_deref()?;
        let body = steps::audit_queue(&mut s, a, details, at);
        s.cte("q".into(), &body, false);
    }

    Some(s.finish())
}

/// Run `m` as one statement outside any transaction. An error is the
/// database's (a transient one is for the caller to retry).
pub(crate) async fn apply(c: &mut PgConnection, p: &Prepared) -> Result<Outcome, DbError> {
    let Some((sql, args)) = compose(p) else {
        return Ok(Outcome::NotComposed);
    };
    let q = crate::db::bind_all!(sqlx::query(&sql), &args);
    match q.execute(&mut *c).await.map_err(DbError::from) {
        Ok(_) => Ok(Outcome::Written),
        Err(e) if e.code().as_deref() == Some(REFUSED) => Ok(Outcome::Refused),
        // A merchant number taken by an order (migration 0017): the step by
        // step run names it.
        Err(e) if crate::ops::number_taken(&e) => Ok(Outcome::Refused),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    /// `m` with the texts [`Prepared::new`] makes for it.
    fn prepared(m: &Movement) -> Prepared {
        Prepared::new(m.clone())
    }

    use super::*;
    use qrgate_core::Timestamp;
    use qrgate_core::state::PaymentStatus;
    use qrgate_core::{AccountId, CounterKey, Currency};

    fn payment_movement() -> Movement {
        let at = Timestamp::from_unix_millis(1_000);
        Movement {
            at,
            live_api_key: None,
            live_device: None,
            day_open: None,
            live_static_code: None,
            unblocked: vec![],
            idempotency: Some(IdempotencyRecord {
                scope: "merchant:m".into(),
                key: "k".into(),
                request_hash: "h".into(),
                response_status: 201,
                response_body: "{}".into(),
            }),
            burns: vec![CodeBurn {
                key: "code".into(),
                payment_id: Some("pay".into()),
                expires_at: at,
            }],
            counters: vec![
                CounterCharge {
                    key: CounterKey::stored("z".into()),
                    amount_minor: 5,
                    uses: 1,
                    cap_amount: Some(10),
                    cap_uses: None,
                    rule: "R".into(),
                },
                CounterCharge {
                    key: CounterKey::stored("a".into()),
                    amount_minor: 5,
                    uses: 1,
                    cap_amount: None,
                    cap_uses: Some(3),
                    rule: "R".into(),
                },
            ],
            posting: Some(Posting {
                id: "pst".into(),
                kind: "payment".into(),
                payment_id: Some("pay".into()),
                merchant_id: None,
                entries: vec![
                    Entry {
                        account_id: AccountId::stored("w".into()),
                        amount_minor: -5,
                        currency: Currency::CNY,
                    },
                    Entry {
                        account_id: AccountId::stored("m".into()),
                        amount_minor: 5,
                        currency: Currency::CNY,
                    },
                ],
            }),
            payment: None,
            order: None,
            refund: None,
            complaint: None,
            events: vec![],
            records: vec![],
            audit: None,
        }
    }

    #[test]
    fn guards_are_read_in_lock_order() {
        let m = payment_movement();
        let t = prepared(&m);
        let (sql, args) = compose(&t).expect("composed");
        // Counter "a" before "z", account "m" before "w", and each guard checked.
        let pos = |v: &str| {
            1 + args
                .iter()
                .position(|a| matches!(a, Arg::Str(x) if *x == v))
                .unwrap_or_else(|| panic!("no argument {v}"))
        };
        let (a, z) = (pos("a"), pos("z"));
        assert!(a < z && pos("m") < pos("w"), "{sql}");
        let a = sql.find(&format!("VALUES (${a},")).expect("counter a");
        let z = sql.find(&format!("VALUES (${z},")).expect("counter z");
        assert!(a < z, "{sql}");
        let m = sql.find(&format!("WHERE id = ${} ", pos("m")));
        let w = sql.find(&format!("WHERE id = ${} ", pos("w")));
        assert!(m.is_some() && w.is_some() && m < w, "{sql}");
        // The result expression reads every guard, in the order of apply().
        let at = |g: &str| sql.find(&format!("EXISTS (SELECT 1 FROM {g})"));
        let order: Vec<Option<usize>> = ["i", "b0", "c0", "c1", "a0", "a1", "p"]
            .into_iter()
            .map(at)
            .collect();
        assert!(order.iter().all(Option::is_some), "{sql}");
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{sql}");
        assert!(!sql.contains("FROM l)"), "ledger entries are not a guard");
        assert!(sql.ends_with("THEN 1 ELSE qrgate_refuse() END"));
        let placeholders = sql.matches('$').count();
        assert!(placeholders >= args.len());
        assert!(sql.contains(&format!("${}", args.len())));
        assert!(!sql.contains(&format!("${}", args.len() + 1)));
    }

    #[test]
    fn the_payment_guard_comes_before_the_money_and_checks_refunds_and_state() {
        let mut m = payment_movement();
        m.payment = Some(PaymentWrite::Transition {
            id: "pay".into(),
            from: PaymentStatus::Succeeded,
            to: PaymentStatus::Canceled,
            details: None,
        });
        let (sql, _) = compose(&prepared(&m)).expect("composed");
        let at = |g: &str| sql.find(&format!("EXISTS (SELECT 1 FROM {g})"));
        assert!(at("c1") < at("y") && at("y") < at("a0"), "{sql}");
        assert!(sql.contains("AND refunded_minor = 0 RETURNING 1"), "{sql}");

        m.payment = Some(PaymentWrite::AddRefunded {
            id: "pay".into(),
            amount_minor: 5,
            refunded_before: 0,
            status: PaymentStatus::Succeeded,
        });
        let t = prepared(&m);
        let (sql, args) = compose(&t).expect("composed");
        let at = |g: &str| sql.find(&format!("EXISTS (SELECT 1 FROM {g})"));
        assert!(at("y") < at("a0"), "{sql}");
        assert!(
            sql.contains("AND status = $")
                && args.iter().any(|a| matches!(a, Arg::Str("succeeded"))),
            "{sql}"
        );
    }

    #[test]
    fn a_movement_missing_a_text_is_not_composed() {
        let mut m = payment_movement();
        assert!(compose(&Prepared::without_texts(m.clone())).is_some());
        m.audit = Some(AuditEntry {
            action: "payment.succeeded".into(),
            subject: "pay".into(),
            details: serde_json::json!({ "amount_minor": 5 }),
        });
        assert!(compose(&prepared(&m)).is_some());
        assert!(compose(&Prepared::without_texts(m.clone())).is_none());

        let mut m = payment_movement();
        m.events.push(OutboxEvent {
            event_id: "evt".into(),
            event_type: "payment.succeeded".into(),
            subject_id: "pay".into(),
            merchant_id: None,
            payload: serde_json::json!({}),
        });
        assert!(compose(&prepared(&m)).is_some());
        assert!(compose(&Prepared::without_texts(m)).is_none());

        let mut m = payment_movement();
        let at = Timestamp::from_unix_millis(1_000);
        m.payment = Some(PaymentWrite::Insert(Payment {
            id: "pay".into(),
            merchant_id: "mch".into(),
            customer_id: Some("cus".into()),
            status: PaymentStatus::Succeeded,
            amount_minor: 5,
            currency: qrgate_core::Currency::CNY,
            refunded_minor: 0,
            out_trade_no: None,
            fee_minor: 0,
            details: serde_json::from_value(serde_json::json!({"mode": "cpm", "risk_level": "C", "funding_account": "w", "funding": {"type": "wallet"}, "settlement_account": "s"})).unwrap(),
            created_at: at,
            updated_at: at,
        }));
        assert!(compose(&prepared(&m)).is_some());
        assert!(compose(&Prepared::without_texts(m)).is_none());
    }

    #[test]
    fn a_row_touched_twice_is_not_composed() {
        let mut m = payment_movement();
        m.counters[1].key = CounterKey::stored("z".into());
        assert!(compose(&prepared(&m)).is_none());

        let mut m = payment_movement();
        if let Some(p) = m.posting.as_mut() {
            p.entries[1].account_id = AccountId::stored("w".into());
            p.entries[1].amount_minor = 5;
        }
        assert!(compose(&prepared(&m)).is_none());

        let mut m = payment_movement();
        m.burns.push(m.burns[0].clone());
        assert!(compose(&prepared(&m)).is_none());
    }

    #[test]
    fn what_apply_refuses_up_front_is_not_composed() {
        let mut m = payment_movement();
        m.counters[0].amount_minor = 11; // over its cap of 10 on its own
        assert!(compose(&prepared(&m)).is_none());

        let mut m = payment_movement();
        m.counters[1].uses = -1;
        assert!(compose(&prepared(&m)).is_none());

        let mut m = payment_movement();
        if let Some(p) = m.posting.as_mut() {
            p.entries[0].amount_minor = -4; // does not balance
        }
        assert!(compose(&prepared(&m)).is_none());
    }
}
