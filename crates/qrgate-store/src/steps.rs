//! The statements of a movement, each written once. A movement runs two
//! ways: step by step in a transaction ([`crate::ops::apply`], which names
//! the refusal when a guard finds nothing to change), or, on PostgreSQL,
//! composed into one statement of data-modifying CTEs
//! ([`crate::one_statement`]). Both take their SQL from here, so the two
//! cannot drift apart: only the placeholders differ, numbered per
//! statement in one case and across the whole statement in the other,
//! which is what [`Params`] hides.
//!
//! A guard is a statement that changes (or, for the reads, finds) exactly
//! one row when the movement may go on, and none when it may not. The step
//! by step run counts the rows; the composed one adds `RETURNING 1` and
//! asks `EXISTS` of each guard.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use crate::db::Arg;
use crate::model::*;

/// Where a statement's arguments go: each call adds one and answers its
/// placeholder (`$n`).
pub(crate) trait Params<'a> {
    fn p(&mut self, a: Arg<'a>) -> String;
    /// The movement's time (`at`): one placeholder shared by every
    /// statement of a composed movement, an argument of its own otherwise.
    fn at(&mut self, at: i64) -> String {
        self.p(Arg::I64(at))
    }
}

/// The arguments of one statement on its own, numbered from `$1`.
#[derive(Default)]
pub(crate) struct Numbered<'a>(pub(crate) Vec<Arg<'a>>);

impl<'a> Params<'a> for Numbered<'a> {
    fn p(&mut self, a: Arg<'a>) -> String {
        self.0.push(a);
        format!("${}", self.0.len())
    }
}

/// One statement with its arguments numbered from `$1`. Its text is
/// interned: the connections cache prepared statements by text, and a
/// statement's text depends only on its shape (which variant, how many
/// entries or parties), so the set stays small.
pub(crate) fn alone<'a>(
    build: impl FnOnce(&mut Numbered<'a>) -> String,
) -> (&'static str, Vec<Arg<'a>>) {
    let mut q = Numbered::default();
    let sql = build(&mut q);
    (intern(sql), q.0)
}

static INTERNED: LazyLock<Mutex<HashSet<&'static str>>> =
    LazyLock::new(|| Mutex::new(HashSet::new()));

/// The one `'static` copy of a statement's text.
fn intern(sql: String) -> &'static str {
    let mut set = match INTERNED.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(&known) = set.get(sql.as_str()) {
        return known;
    }
    let leaked: &'static str = Box::leak(sql.into_boxed_str());
    set.insert(leaked);
    leaked
}

/// The caller's API key is not revoked.
pub(crate) fn live_api_key<'a>(q: &mut impl Params<'a>, key_id: &'a str) -> String {
    format!(
        "SELECT 1 FROM api_keys WHERE id = {} AND revoked_at IS NULL",
        q.p(Arg::Str(key_id))
    )
}

/// The device is active; `lock` (PostgreSQL): a revocation committing
/// meanwhile is waited for and then seen.
pub(crate) fn live_device<'a>(q: &mut impl Params<'a>, id: &'a str, lock: bool) -> String {
    format!(
        "SELECT 1 FROM devices WHERE id = {} AND status = 'active'{}",
        q.p(Arg::Str(id)),
        if lock { " FOR SHARE" } else { "" }
    )
}

/// The business day of `at` is not settled on a merchant's pending
/// account; `lock` as for [`live_device`] (a settlement closing the day
/// holds the row: this waits for it and then sees the day closed).
pub(crate) fn day_open<'a>(
    q: &mut impl Params<'a>,
    account: &'a qrgate_core::AccountId,
    at: i64,
    lock: bool,
) -> String {
    format!(
        "SELECT 1 FROM accounts WHERE id = {} AND (closed_until IS NULL OR closed_until <= {}){}",
        q.p(Arg::Str(account.as_str())),
        q.at(at),
        if lock { " FOR SHARE" } else { "" }
    )
}

/// The static code is neither revoked nor suspended; `lock` as for
/// [`live_device`].
pub(crate) fn live_static_code<'a>(q: &mut impl Params<'a>, id: &'a str, lock: bool) -> String {
    format!(
        "SELECT 1 FROM static_codes WHERE id = {} AND revoked_at IS NULL AND suspended_at IS NULL{}",
        q.p(Arg::Str(id)),
        if lock { " FOR SHARE" } else { "" }
    )
}

/// The parties of `subjects` that are blocked now (one row each).
pub(crate) fn blocked<'a>(q: &mut impl Params<'a>, subjects: &'a [String]) -> String {
    let list = subjects
        .iter()
        .map(|id| q.p(Arg::Str(id)))
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT subject_id FROM blocks WHERE subject_id IN ({list}) AND lifted_at IS NULL")
}

/// The idempotency record, unless its key was seen before.
pub(crate) fn idempotency<'a>(
    q: &mut impl Params<'a>,
    rec: &'a IdempotencyRecord,
    at: i64,
) -> String {
    format!(
        "INSERT INTO idempotency (scope, idem_key, request_hash, response_status, response_body, created_at) \
         VALUES ({}, {}, {}, {}, {}, {}) ON CONFLICT (scope, idem_key) DO NOTHING",
        q.p(Arg::Str(&rec.scope)),
        q.p(Arg::Str(&rec.key)),
        q.p(Arg::Str(&rec.request_hash)),
        q.p(Arg::I64(i64::from(rec.response_status))),
        q.p(Arg::Str(&rec.response_body)),
        q.at(at),
    )
}

/// A code's single use, unless it was used before.
pub(crate) fn burn<'a>(q: &mut impl Params<'a>, b: &'a CodeBurn, at: i64) -> String {
    format!(
        "INSERT INTO used_codes (code_key, payment_id, used_at, expires_at) VALUES ({}, {}, {}, {}) \
         ON CONFLICT (code_key) DO NOTHING",
        q.p(Arg::Str(&b.key)),
        q.p(Arg::OptStr(b.payment_id.as_deref())),
        q.at(at),
        q.p(Arg::I64(b.expires_at.unix_millis())),
    )
}

/// A counter charged, while it stays within its caps. `current <= cap -
/// amount` cannot overflow: the caller checks `0 <= amount <= cap` first.
pub(crate) fn counter_charge<'a>(
    q: &mut impl Params<'a>,
    ch: &'a CounterCharge,
    at: i64,
) -> String {
    format!(
        "INSERT INTO counters (counter_key, amount_minor, uses, updated_at) VALUES ({}, {}, {}, {}) \
         ON CONFLICT (counter_key) DO UPDATE SET \
           amount_minor = counters.amount_minor + excluded.amount_minor, \
           uses = counters.uses + excluded.uses, \
           updated_at = excluded.updated_at \
         WHERE counters.amount_minor <= {} - excluded.amount_minor \
           AND counters.uses <= {} - excluded.uses",
        q.p(Arg::Str(ch.key.as_str())),
        q.p(Arg::I64(ch.amount_minor)),
        q.p(Arg::I64(ch.uses)),
        q.at(at),
        q.p(Arg::I64(ch.cap_amount.unwrap_or(i64::MAX))),
        q.p(Arg::I64(ch.cap_uses.unwrap_or(i64::MAX))),
    )
}

/// The payment's own write, guarded by its state (and, for a transition,
/// nothing refunded; for a refund, no more than was captured). `details`
/// is the prepared JSON text of the payment's details.
pub(crate) fn payment<'a>(
    q: &mut impl Params<'a>,
    w: &'a PaymentWrite,
    details: Option<&'a str>,
    at: i64,
) -> String {
    match w {
        PaymentWrite::Insert(p) => format!(
            "INSERT INTO payments (id, merchant_id, customer_id, status, amount_minor, currency, refunded_minor, \
             out_trade_no, fee_minor, details, created_at, updated_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}) \
             ON CONFLICT DO NOTHING",
            q.p(Arg::Str(&p.id)),
            q.p(Arg::Str(&p.merchant_id)),
            q.p(Arg::OptStr(p.customer_id.as_deref())),
            q.p(Arg::Str(p.status.as_str())),
            q.p(Arg::I64(p.amount_minor)),
            q.p(Arg::Str(p.currency.code())),
            q.p(Arg::I64(p.refunded_minor)),
            q.p(Arg::OptStr(p.out_trade_no.as_deref())),
            q.p(Arg::I64(p.fee_minor)),
            q.p(Arg::OptStr(details)),
            q.p(Arg::I64(p.created_at.unix_millis())),
            q.p(Arg::I64(p.updated_at.unix_millis())),
        ),
        PaymentWrite::Transition { id, from, to, .. } => format!(
            "UPDATE payments SET status = {}, updated_at = {}, details = COALESCE({}, details) \
             WHERE id = {} AND status = {} AND refunded_minor = 0",
            q.p(Arg::Str(to.as_str())),
            q.at(at),
            q.p(Arg::OptStr(details)),
            q.p(Arg::Str(id)),
            q.p(Arg::Str(from.as_str())),
        ),
        PaymentWrite::AddRefunded {
            id,
            amount_minor,
            refunded_before,
            status,
        } => {
            let amount = q.p(Arg::I64(*amount_minor));
            format!(
                "UPDATE payments SET refunded_minor = refunded_minor + {amount}, updated_at = {} \
                 WHERE id = {} AND status = {} AND refunded_minor <= amount_minor - {amount} \
                 AND refunded_minor = {}",
                q.at(at),
                q.p(Arg::Str(id)),
                q.p(Arg::Str(status.as_str())),
                q.p(Arg::I64(*refunded_before)),
            )
        }
    }
}

/// An account's balance moved by an entry, while it has the funds (or may
/// go negative), stays within a BIGINT, and the day the movement falls in
/// (`at`) was not settled. On PostgreSQL the guard is re-checked on the
/// row as it is after waiting for its lock, so a settlement that closed the
/// day meanwhile refuses a late entry of it.
pub(crate) fn move_balance<'a>(q: &mut impl Params<'a>, e: &'a Entry, at: i64) -> String {
    let amount = q.p(Arg::I64(e.amount_minor));
    format!(
        concat!(
            "UPDATE accounts SET balance_minor = balance_minor + {amount} WHERE id = {id} AND currency = {currency} \
             AND (closed_until IS NULL OR closed_until <= {at}) AND ",
            crate::ops::balance_guard!("{amount}"),
        ),
        amount = amount,
        id = q.p(Arg::Str(e.account_id.as_str())),
        currency = q.p(Arg::Str(e.currency.code())),
        at = q.at(at),
    )
}

/// The posting's row, unless its id is taken.
pub(crate) fn posting<'a>(q: &mut impl Params<'a>, p: &'a Posting, at: i64) -> String {
    format!(
        "INSERT INTO postings (id, kind, payment_id, merchant_id, created_at) VALUES ({}, {}, {}, {}, {}) \
         ON CONFLICT (id) DO NOTHING",
        q.p(Arg::Str(&p.id)),
        q.p(Arg::Str(&p.kind)),
        q.p(Arg::OptStr(p.payment_id.as_deref())),
        q.p(Arg::OptStr(p.merchant_id.as_deref())),
        q.at(at),
    )
}

/// The posting's entries, in entry order, in one statement.
pub(crate) fn ledger_entries<'a>(q: &mut impl Params<'a>, p: &'a Posting) -> String {
    let posting_id = q.p(Arg::Str(&p.id));
    let rows = p
        .entries
        .iter()
        .map(|e| {
            format!(
                "({posting_id}, {}, {}, {})",
                q.p(Arg::Str(e.account_id.as_str())),
                q.p(Arg::I64(e.amount_minor)),
                q.p(Arg::Str(e.currency.code()))
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO ledger_entries (posting_id, account_id, amount_minor, currency) VALUES {rows}"
    )
}

/// The order's state change, guarded by the state it was read in.
pub(crate) fn order<'a>(q: &mut impl Params<'a>, o: &'a OrderTransition, at: i64) -> String {
    format!(
        "UPDATE orders SET status = {}, payment_id = COALESCE({}, payment_id), updated_at = {} \
         WHERE id = {} AND status = {}",
        q.p(Arg::Str(&o.to)),
        q.p(Arg::OptStr(o.payment_id.as_deref())),
        q.at(at),
        q.p(Arg::Str(&o.id)),
        q.p(Arg::Str(&o.from)),
    )
}

/// The refund's row, unless its number (or id) is taken.
pub(crate) fn refund<'a>(q: &mut impl Params<'a>, r: &'a Refund) -> String {
    format!(
        "INSERT INTO refunds (id, payment_id, merchant_id, amount_minor, currency, status, out_refund_no, fee_minor, \
         metadata, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}) ON CONFLICT DO NOTHING",
        q.p(Arg::Str(&r.id)),
        q.p(Arg::Str(&r.payment_id)),
        q.p(Arg::Str(&r.merchant_id)),
        q.p(Arg::I64(r.amount_minor)),
        q.p(Arg::Str(r.currency.code())),
        q.p(Arg::Str(&r.status)),
        q.p(Arg::Str(&r.out_refund_no)),
        q.p(Arg::I64(r.fee_minor)),
        q.p(Arg::OptStr(r.metadata.to_column())),
        q.p(Arg::I64(r.created_at.unix_millis())),
    )
}

/// An outbox event with its prepared payload text.
pub(crate) fn outbox<'a>(
    q: &mut impl Params<'a>,
    e: &'a OutboxEvent,
    payload: &'a str,
    at: i64,
) -> String {
    format!(
        "INSERT INTO outbox (event_id, event_type, subject_id, merchant_id, payload, created_at) \
         VALUES ({}, {}, {}, {}, {}, {})",
        q.p(Arg::Str(&e.event_id)),
        q.p(Arg::Str(&e.event_type)),
        q.p(Arg::Str(&e.subject_id)),
        q.p(Arg::OptStr(e.merchant_id.as_deref())),
        q.p(Arg::Str(payload)),
        q.at(at),
    )
}

/// An audit entry queued for chaining (PostgreSQL; SQLite chains it with
/// the movement).
pub(crate) fn audit_queue<'a>(
    q: &mut impl Params<'a>,
    a: &'a AuditEntry,
    details: &'a str,
    at: i64,
) -> String {
    format!(
        "INSERT INTO audit_queue (at, action, subject, details) VALUES ({}, {}, {}, {})",
        q.at(at),
        q.p(Arg::Str(&a.action)),
        q.p(Arg::Str(&a.subject)),
        q.p(Arg::Str(details)),
    )
}
