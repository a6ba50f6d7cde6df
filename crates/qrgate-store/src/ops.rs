//! The store's statements and the movement algorithm, written once for both
//! databases over [`Conn`]. Every check that guards money is a conditional
//! write on the row it guards (an upsert with a `WHERE`, an `UPDATE … WHERE`),
//! so it is atomic under PostgreSQL's READ COMMITTED as well as SQLite's
//! single writer; rows are locked in one global order (idempotency, codes,
//! counters by key, payment, accounts by id, order, refund, outbox, audit
//! head) so concurrent movements cannot deadlock.
//!
//! Two checks are reads, not writes: the caller's API key is unrevoked and
//! neither party is blocked. A revocation or block committed before the
//! movement starts stops it; one committing at the same moment is ordered
//! after it, as if it had come a moment later.

use qrgate_core::Timestamp;

use crate::audit;
use crate::db::{Arg, Conn, Dialect, Row};
use crate::error::{MovementError, StoreError};
use crate::model::*;
use crate::steps;
use crate::write::Prepared;

/// The columns of a delivery, in `delivery_from` order.
macro_rules! delivery_select {
    () => {
        "SELECT id, endpoint_id, merchant_id, event_id, event_type, body, status, attempts, next_attempt_at, \
         last_status_code, last_error, created_at, delivered_at FROM webhook_deliveries"
    };
}

/// The columns of a static code, in `static_code_from` order.
macro_rules! static_code_select {
    () => {
        "SELECT id, merchant_id, payload, created_at, revoked_at FROM static_codes"
    };
}

/// The columns of an order, in `order_from` order.
macro_rules! order_select {
    () => {
        "SELECT id, merchant_id, amount_minor, currency, reference, out_trade_no, status, payload, payment_id, expires_at, \
         created_at, updated_at FROM orders"
    };
}

fn ts(r: &Row, i: usize) -> Result<Timestamp, sqlx::Error> {
    Ok(Timestamp::from_unix_millis(r.i64(i)?))
}

fn json(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
}

/// Apply a movement inside an open transaction (or savepoint). On `Err`
/// the caller must roll back.
pub(crate) async fn apply<C: Conn>(c: &mut C, p: &Prepared) -> Result<Applied, MovementError> {
    let (m, texts) = (p.movement(), p.texts());
    if texts.payloads.len() != m.events.len() {
        return Err(MovementError::Invalid(format!(
            "{} events but {} prepared payloads",
            m.events.len(),
            texts.payloads.len()
        )));
    }
    let at = m.at.unix_millis();

    if let Some(key_id) = &m.live_api_key {
        let (sql, args) = steps::alone(|q| steps::live_api_key(q, key_id));
        if c.rows(sql, &args).await?.is_empty() {
            return Err(MovementError::ApiKeyRevoked {
                key_id: key_id.clone(),
            });
        }
    }

    if let Some(rec) = &m.idempotency {
        let (sql, args) = steps::alone(|q| steps::idempotency(q, rec, at));
        if c.exec(sql, &args).await? == 0 {
            let stored = idempotency(c, &rec.scope, &rec.key).await?;
            return match stored {
                Some(s) if s.request_hash == rec.request_hash => Ok(Applied::Replayed {
                    status: s.response_status,
                    body: s.response_body,
                }),
                _ => Err(MovementError::IdempotencyKeyReused {
                    scope: rec.scope.clone(),
                    key: rec.key.clone(),
                }),
            };
        }
    }

    // After the idempotency record: a retry of a payment made before the
    // device was revoked gets its stored answer. FOR SHARE on PostgreSQL:
    // a revocation committing meanwhile is waited for and then seen.
    let lock = c.dialect() == Dialect::Postgres;
    if let Some(device_id) = &m.live_device {
        let (sql, args) = steps::alone(|q| steps::live_device(q, device_id, lock));
        if c.rows(sql, &args).await?.is_empty() {
            return Err(MovementError::DeviceRevoked {
                device_id: device_id.clone(),
            });
        }
    }

    if let Some(code_id) = &m.live_static_code {
        let (sql, args) = steps::alone(|q| steps::live_static_code(q, code_id, lock));
        if c.rows(sql, &args).await?.is_empty() {
            return Err(MovementError::CodeRevoked {
                code_id: code_id.clone(),
            });
        }
    }

    // All the parties in one query (a payment names two: one round trip).
    if !m.unblocked.is_empty() {
        let (sql, args) = steps::alone(|q| steps::blocked(q, &m.unblocked));
        let blocked = c
            .rows(sql, &args)
            .await?
            .iter()
            .map(|r| r.str(0))
            .collect::<Result<Vec<_>, _>>()?;
        // The first party named that is blocked, whatever order the rows came in.
        if let Some(subject) = m.unblocked.iter().find(|s| blocked.contains(s)) {
            return Err(MovementError::PartyBlocked {
                subject_id: subject.clone(),
            });
        }
    }

    for b in &m.burns {
        let (sql, args) = steps::alone(|q| steps::burn(q, b, at));
        if c.exec(sql, &args).await? == 0 {
            return Err(MovementError::CodeAlreadyUsed { key: b.key.clone() });
        }
    }

    let mut counters: Vec<&CounterCharge> = m.counters.iter().collect();
    counters.sort_by(|a, b| a.key.cmp(&b.key));
    for ch in counters {
        charge_counter(c, ch, at).await?;
    }

    // The payment's own guard (its state, what was refunded) comes before
    // the money: a movement that lost a race for the payment is refused as
    // a state conflict before it touches a balance or its posting's id.
    if let Some(w) = &m.payment {
        write_payment(c, w, texts.payment_details.as_deref(), at).await?;
    }

    if let Some(p) = &m.posting {
        p.check_balanced().map_err(MovementError::Invalid)?;
        let mut entries: Vec<&Entry> = p.entries.iter().collect();
        entries.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        for e in &entries {
            move_balance(c, e).await?;
        }
        let (sql, args) = steps::alone(|q| steps::posting(q, p, at));
        if c.exec(sql, &args).await? == 0 {
            return Err(MovementError::Invalid(format!(
                "posting {} already exists",
                p.id
            )));
        }
        // Every entry in one statement (on PostgreSQL one round trip).
        if !p.entries.is_empty() {
            let (sql, args) = steps::alone(|q| steps::ledger_entries(q, p));
            c.exec(sql, &args).await?;
        }
    }

    if let Some(o) = &m.order {
        let (sql, args) = steps::alone(|q| steps::order(q, o, at));
        if c.exec(sql, &args).await? == 0 {
            return Err(match order(c, &o.id).await? {
                None => MovementError::OrderNotFound { id: o.id.clone() },
                Some(x) => MovementError::OrderStateConflict {
                    id: o.id.clone(),
                    expected: o.from.clone(),
                    actual: x.status,
                },
            });
        }
    }

    if let Some(r) = &m.refund {
        let (sql, args) = steps::alone(|q| steps::refund(q, r));
        if c.exec(sql, &args).await? == 0 {
            return Err(MovementError::DuplicateRefundNo {
                out_refund_no: r.out_refund_no.clone(),
            });
        }
    }

    for (e, payload) in m.events.iter().zip(&texts.payloads) {
        let (sql, args) = steps::alone(|q| steps::outbox(q, e, payload, at));
        c.exec(sql, &args).await?;
    }

    for r in &m.records {
        insert(c, r).await?;
    }

    let audit_seq = match &m.audit {
        Some(a) => {
            // Never skip an audit entry quietly, even if the texts were wrong.
            let details = texts.audit_details.as_deref().ok_or_else(|| {
                MovementError::Invalid("the audit entry has no prepared details".into())
            })?;
            append_audit(c, a, details, at).await?
        }
        None => None,
    };
    Ok(Applied::Done { audit_seq })
}

async fn charge_counter<C: Conn>(
    c: &mut C,
    ch: &CounterCharge,
    at: i64,
) -> Result<(), MovementError> {
    if ch.amount_minor < 0 || ch.uses < 0 {
        return Err(MovementError::Invalid(format!(
            "counter {} charged a negative amount",
            ch.key
        )));
    }
    let cap_amount = ch.cap_amount.unwrap_or(i64::MAX);
    let cap_uses = ch.cap_uses.unwrap_or(i64::MAX);
    let exceeded = |current: i64, amount: i64, cap: i64| MovementError::LimitExceeded {
        rule: ch.rule.clone(),
        key: ch.key.clone(),
        current,
        amount,
        cap,
    };
    if ch.amount_minor > cap_amount {
        return Err(exceeded(0, ch.amount_minor, cap_amount));
    }
    if ch.uses > cap_uses {
        return Err(exceeded(0, ch.uses, cap_uses));
    }
    let (sql, args) = steps::alone(|q| steps::counter_charge(q, ch, at));
    if c.exec(sql, &args).await? == 0 {
        let current = counter(c, &ch.key).await?;
        return Err(if current.1.saturating_add(ch.uses) > cap_uses {
            exceeded(current.1, ch.uses, cap_uses)
        } else {
            exceeded(current.0, ch.amount_minor, cap_amount)
        });
    }
    Ok(())
}

/// The guard of a balance move by `$amount`: the account has the funds (or
/// may go negative), and the new balance stays within a BIGINT either way.
/// Written so that nothing in it can overflow: `9223372036854775807 - $x`
/// for `$x >= 0`, `-9223372036854775807 - $x` for `$x < 0`. One text for
/// [`move_balance`] and the one-statement path.
macro_rules! balance_guard {
    ($x:literal) => {
        concat!(
            "CASE WHEN ",
            $x,
            " >= 0 THEN balance_minor <= 9223372036854775807 - ",
            $x,
            " WHEN allow_negative THEN balance_minor >= -9223372036854775807 - ",
            $x,
            " ELSE balance_minor >= -",
            $x,
            " END"
        )
    };
}
pub(crate) use balance_guard;

async fn move_balance<C: Conn>(c: &mut C, e: &Entry) -> Result<(), MovementError> {
    let (sql, args) = steps::alone(|q| steps::move_balance(q, e));
    if c.exec(sql, &args).await? == 1 {
        return Ok(());
    }
    match account(c, &e.account_id).await? {
        None => Err(MovementError::UnknownAccount {
            account_id: e.account_id.clone(),
        }),
        Some(a) if a.currency != e.currency => Err(MovementError::CurrencyMismatch {
            account_id: a.id,
            account_currency: a.currency,
            entry_currency: e.currency.clone(),
        }),
        Some(a) if e.amount_minor > 0 || a.allow_negative => {
            Err(MovementError::BalanceOverflow { account_id: a.id })
        }
        Some(a) => Err(MovementError::InsufficientFunds { account_id: a.id }),
    }
}

/// The merchant's number is taken by its other kind of row (a payment's by
/// an order, an order's by a payment): the trigger of migration 0017
/// refused the insert (QG002 on PostgreSQL, its message on SQLite).
pub(crate) fn number_taken(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d)
        if d.code().as_deref() == Some("QG002") || d.message().contains("out_trade_no_taken"))
}

/// `details` is the text of the JSON the write carries ([`Prepared`]).
async fn write_payment<C: Conn>(
    c: &mut C,
    w: &PaymentWrite,
    details: Option<&str>,
    at: i64,
) -> Result<(), MovementError> {
    if let PaymentWrite::Insert(p) = w
        && details.is_none()
    {
        // Never write a payment with empty details, even if the texts were wrong.
        return Err(MovementError::Invalid(format!(
            "payment {} has no prepared details",
            p.id
        )));
    }
    let (sql, args) = steps::alone(|q| steps::payment(q, w, details, at));
    let n = c.exec(sql, &args).await.map_err(|e| match w {
        PaymentWrite::Insert(p) if number_taken(&e) => MovementError::DuplicateOutTradeNo {
            out_trade_no: p.out_trade_no.clone().unwrap_or_default(),
        },
        _ => e.into(),
    })?;
    if n > 0 {
        return Ok(());
    }
    // Nothing changed: name why, from the row as it is now.
    let id = match w {
        PaymentWrite::Insert(p) => &p.id,
        PaymentWrite::Transition { id, .. } | PaymentWrite::AddRefunded { id, .. } => id,
    };
    let now = payment(c, id).await?;
    Err(match (w, now) {
        (PaymentWrite::Insert(p), Some(_)) => MovementError::DuplicatePayment { id: p.id.clone() },
        (PaymentWrite::Insert(p), None) => MovementError::DuplicateOutTradeNo {
            out_trade_no: p.out_trade_no.clone().unwrap_or_default(),
        },
        (_, None) => MovementError::PaymentNotFound { id: id.clone() },
        (PaymentWrite::Transition { from, .. }, Some(p)) if p.status != *from => {
            MovementError::PaymentStateConflict {
                id: id.clone(),
                expected: from.clone(),
                actual: p.status,
            }
        }
        (PaymentWrite::Transition { .. }, Some(p)) => MovementError::PaymentHasRefunds {
            id: id.clone(),
            refunded_minor: p.refunded_minor,
        },
        (PaymentWrite::AddRefunded { status, .. }, Some(p)) if p.status != *status => {
            MovementError::PaymentStateConflict {
                id: id.clone(),
                expected: status.clone(),
                actual: p.status,
            }
        }
        (PaymentWrite::AddRefunded { .. }, Some(_)) => {
            MovementError::RefundExceedsCaptured { id: id.clone() }
        }
    })
}

/// Record an audit entry in the movement's transaction. SQLite (one writer)
/// chains it at once and answers its `seq`; PostgreSQL queues it for
/// [`chain_audit`] (`None`), so concurrent movements do not wait for each
/// other on the chain's head row.
pub(crate) async fn append_audit<C: Conn>(
    c: &mut C,
    a: &AuditEntry,
    details: &str,
    at: i64,
) -> Result<Option<i64>, MovementError> {
    if c.dialect() == Dialect::Postgres {
        let (sql, args) = steps::alone(|q| steps::audit_queue(q, a, details, at));
        c.exec(sql, &args).await?;
        return Ok(None);
    }
    let (seq, prev) = take_head(
        c,
        "UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash",
    )
    .await?;
    let hash = link(c, seq, at, &a.action, &a.subject, details, &prev).await?;
    c.exec(
        "UPDATE audit_head SET hash = $1 WHERE id = 1",
        &[Arg::Str(&hash)],
    )
    .await?;
    Ok(Some(seq))
}

/// Lock the chain's head row with `sql` (an UPDATE … RETURNING seq, hash).
async fn take_head<C: Conn>(c: &mut C, sql: &'static str) -> Result<(i64, String), MovementError> {
    let head = c.rows(sql, &[]).await?;
    let head = head
        .first()
        .ok_or_else(|| StoreError::Corrupt("audit_head row is missing".into()))?;
    Ok((head.i64(0)?, head.str(1)?))
}

/// The hash of row `seq` chained after `prev`.
fn chained(
    seq: i64,
    at: i64,
    action: &str,
    subject: &str,
    details: &str,
    prev: &str,
) -> Result<String, StoreError> {
    audit::chain_hash(prev, &audit::canonical(seq, at, action, subject, details))
        .ok_or_else(|| StoreError::Corrupt(format!("audit head hash {prev:?} is not hex")))
}

/// Append row `seq` after `prev` to the chain; its hash.
async fn link<C: Conn>(
    c: &mut C,
    seq: i64,
    at: i64,
    action: &str,
    subject: &str,
    details: &str,
    prev: &str,
) -> Result<String, MovementError> {
    let hash = chained(seq, at, action, subject, details, prev)?;
    c.exec(
        "INSERT INTO audit_log (seq, at, action, subject, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[Arg::I64(seq), Arg::I64(at), Arg::Str(action), Arg::Str(subject), Arg::Str(details), Arg::Str(prev), Arg::Str(&hash)],
    )
    .await?;
    Ok(hash)
}

/// Most queued audit entries chained in one pass.
pub(crate) const CHAIN_BATCH: i64 = 1000;

/// PostgreSQL: move up to [`CHAIN_BATCH`] queued audit entries into the
/// chain, oldest first, in one transaction that holds the head row (so
/// passes of several gateways take turns, and each sees what the one before
/// it moved). The number chained. (SQLite's queue stays empty: it chains
/// inline.)
pub(crate) async fn chain_audit<C: Conn>(c: &mut C) -> Result<u64, MovementError> {
    if c.rows("SELECT 1 FROM audit_queue LIMIT 1", &[])
        .await?
        .is_empty()
    {
        return Ok(0);
    }
    // Lock the head first; READ COMMITTED then reads the queue afresh.
    let (mut seq, mut prev) = take_head(
        c,
        "UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash",
    )
    .await?;
    let queued = c
        .rows(
            "SELECT id, at, action, subject, details FROM audit_queue ORDER BY id LIMIT $1",
            &[Arg::I64(CHAIN_BATCH)],
        )
        .await?;
    // The pass's rows go in with one INSERT and leave the queue with one
    // DELETE (by id, not by range: a lower id may commit after this read).
    let mut rows = Vec::with_capacity(queued.len());
    let mut ids = Vec::with_capacity(queued.len());
    for r in &queued {
        seq += 1;
        let (at, action, subject, details) = (r.i64(1)?, r.str(2)?, r.str(3)?, r.str(4)?);
        let hash = chained(seq, at, &action, &subject, &details, &prev)?;
        rows.push(serde_json::json!({
            "seq": seq, "at": at, "action": action, "subject": subject,
            "details": details, "prev_hash": prev, "hash": hash,
        }));
        ids.push(r.i64(0)?);
        prev = hash;
    }
    let rows = serde_json::Value::Array(rows).to_string();
    c.exec(
        "INSERT INTO audit_log (seq, at, action, subject, details, prev_hash, hash) \
         SELECT seq, at, action, subject, details, prev_hash, hash FROM json_to_recordset(CAST($1 AS JSON)) \
         AS x(seq BIGINT, at BIGINT, action TEXT, subject TEXT, details TEXT, prev_hash TEXT, hash TEXT)",
        &[Arg::Str(&rows)],
    )
    .await?;
    let deleted = c
        .exec(
            "DELETE FROM audit_queue WHERE id = ANY(CAST($1 AS BIGINT[]))",
            &[Arg::Str(&pg_array(&ids))],
        )
        .await?;
    if deleted != ids.len() as u64 {
        return Err(StoreError::Corrupt(format!(
            "audit queue: {deleted} of {} chained entries were still queued",
            ids.len()
        ))
        .into());
    }
    c.exec(
        "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
        &[Arg::I64(seq), Arg::Str(&prev)],
    )
    .await?;
    Ok(queued.len() as u64)
}

// ---------- reads and simple writes ----------

pub(crate) async fn idempotency<C: Conn>(
    c: &mut C,
    scope: &str,
    key: &str,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let rows = c
        .rows(
            "SELECT request_hash, response_status, response_body FROM idempotency WHERE scope = $1 AND idem_key = $2",
            &[Arg::Str(scope), Arg::Str(key)],
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(IdempotencyRecord {
        scope: scope.to_owned(),
        key: key.to_owned(),
        request_hash: r.str(0)?,
        response_status: u16::try_from(r.i64(1)?)
            .map_err(|_| StoreError::Corrupt("response status".into()))?,
        response_body: r.str(2)?,
    }))
}

/// (amount, uses) of a counter; zeros when it was never charged.
pub(crate) async fn counter<C: Conn>(c: &mut C, key: &str) -> Result<(i64, i64), StoreError> {
    let rows = c
        .rows(
            "SELECT amount_minor, uses FROM counters WHERE counter_key = $1",
            &[Arg::Str(key)],
        )
        .await?;
    match rows.first() {
        Some(r) => Ok((r.i64(0)?, r.i64(1)?)),
        None => Ok((0, 0)),
    }
}

fn account_from(r: &Row) -> Result<Account, sqlx::Error> {
    Ok(Account {
        id: r.str(0)?,
        kind: r.str(1)?,
        owner_id: r.opt_str(2)?,
        currency: r.str(3)?,
        allow_negative: r.bool(4)?,
        balance_minor: r.i64(5)?,
        created_at: ts(r, 6)?,
    })
}

pub(crate) async fn account<C: Conn>(c: &mut C, id: &str) -> Result<Option<Account>, StoreError> {
    const SQL: &str = "SELECT id, kind, owner_id, currency, allow_negative, balance_minor, created_at FROM accounts WHERE id = $1";
    let rows = c.rows(SQL, &[Arg::Str(id)]).await?;
    rows.first()
        .map(account_from)
        .transpose()
        .map_err(Into::into)
}

pub(crate) async fn create_account<C: Conn>(c: &mut C, a: &Account) -> Result<(), StoreError> {
    let n = c
        .exec(
            "INSERT INTO accounts (id, kind, owner_id, currency, allow_negative, balance_minor, created_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT DO NOTHING",
            &[
                Arg::Str(&a.id),
                Arg::Str(&a.kind),
                Arg::OptStr(a.owner_id.as_deref()),
                Arg::Str(&a.currency),
                Arg::Bool(a.allow_negative),
                Arg::I64(a.created_at.unix_millis()),
            ],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::AlreadyExists(format!("account {}", a.id)));
    }
    Ok(())
}

macro_rules! payment_columns {
    () => {
        "SELECT id, merchant_id, customer_id, status, amount_minor, currency, refunded_minor, out_trade_no, \
         details, created_at, updated_at FROM payments "
    };
}

const PAYMENT_SELECT: &str = concat!(payment_columns!(), "WHERE id = $1");

/// Payments in one waiting status, oldest first, after a `(created_at, id)`
/// cursor. The literal `IN` term matches the partial index
/// `payments_waiting` (migration 0012), so the walk reads only waiting
/// payments however many others there are.
pub(crate) async fn waiting_payments<C: Conn>(
    c: &mut C,
    status: &str,
    after: Option<(Timestamp, String)>,
    limit: i64,
) -> Result<Vec<Payment>, StoreError> {
    let (after_ts, after_id) =
        after.map_or((i64::MIN, String::new()), |(t, id)| (t.unix_millis(), id));
    let rows = c
        .rows(
            concat!(
                payment_columns!(),
                "WHERE status IN ('requires_action', 'confirming') AND status = $1 \
                 AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4"
            ),
            &[
                Arg::Str(status),
                Arg::I64(after_ts),
                Arg::Str(&after_id),
                Arg::I64(limit),
            ],
        )
        .await?;
    rows.iter().map(payment_from).collect()
}

fn payment_from(r: &Row) -> Result<Payment, StoreError> {
    Ok(Payment {
        id: r.str(0)?,
        merchant_id: r.str(1)?,
        customer_id: r.opt_str(2)?,
        status: r.str(3)?,
        amount_minor: r.i64(4)?,
        currency: r.str(5)?,
        refunded_minor: r.i64(6)?,
        out_trade_no: r.opt_str(7)?,
        details: json(&r.str(8)?)?,
        created_at: ts(r, 9)?,
        updated_at: ts(r, 10)?,
    })
}

pub(crate) async fn payment<C: Conn>(c: &mut C, id: &str) -> Result<Option<Payment>, StoreError> {
    let rows = c.rows(PAYMENT_SELECT, &[Arg::Str(id)]).await?;
    rows.first().map(payment_from).transpose()
}

pub(crate) async fn refunds_of<C: Conn>(
    c: &mut C,
    payment_id: &str,
) -> Result<Vec<Refund>, StoreError> {
    let rows = c
        .rows(
            "SELECT id, payment_id, amount_minor, currency, status, out_refund_no, created_at FROM refunds \
             WHERE payment_id = $1 ORDER BY created_at, id",
            &[Arg::Str(payment_id)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Refund {
                id: r.str(0)?,
                payment_id: r.str(1)?,
                amount_minor: r.i64(2)?,
                currency: r.str(3)?,
                status: r.str(4)?,
                out_refund_no: r.str(5)?,
                created_at: ts(r, 6)?,
            })
        })
        .collect()
}

pub(crate) async fn purge_idempotency<C: Conn>(
    c: &mut C,
    before: Timestamp,
) -> Result<u64, StoreError> {
    Ok(c.exec(
        "DELETE FROM idempotency WHERE created_at < $1",
        &[Arg::I64(before.unix_millis())],
    )
    .await?)
}

/// Burned codes and issued numeric codes that expired before `before`: both
/// are refused by their expiry anyway, and neither table may grow forever.
pub(crate) async fn purge_codes<C: Conn>(c: &mut C, before: Timestamp) -> Result<u64, StoreError> {
    let at = [Arg::I64(before.unix_millis())];
    let used = c
        .exec("DELETE FROM used_codes WHERE expires_at < $1", &at)
        .await?;
    let issued = c
        .exec("DELETE FROM issued_codes WHERE expires_at < $1", &at)
        .await?;
    Ok(used + issued)
}

pub(crate) async fn outbox_pending<C: Conn>(
    c: &mut C,
    limit: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    let rows = c
        .rows(
            "SELECT seq, event_id, event_type, subject_id, payload, created_at, delivered_at FROM outbox \
             WHERE delivered_at IS NULL ORDER BY seq LIMIT $1",
            &[Arg::I64(limit)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxRow {
                seq: r.i64(0)?,
                event_id: r.str(1)?,
                event_type: r.str(2)?,
                subject_id: r.str(3)?,
                payload: json(&r.str(4)?)?,
                created_at: ts(r, 5)?,
                delivered_at: r.opt_i64(6)?.map(Timestamp::from_unix_millis),
            })
        })
        .collect()
}

pub(crate) async fn outbox_mark_delivered<C: Conn>(
    c: &mut C,
    seq: i64,
    at: Timestamp,
) -> Result<bool, StoreError> {
    Ok(c.exec(
        "UPDATE outbox SET delivered_at = $1 WHERE seq = $2 AND delivered_at IS NULL",
        &[Arg::I64(at.unix_millis()), Arg::I64(seq)],
    )
    .await?
        == 1)
}

/// Audit rows with `seq > after`, in order, at most `limit`.
pub(crate) async fn audit_rows<C: Conn>(
    c: &mut C,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    let rows = c
        .rows(
            "SELECT seq, at, action, subject, details, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[Arg::I64(after), Arg::I64(limit)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditRow {
                seq: r.i64(0)?,
                at: ts(r, 1)?,
                action: r.str(2)?,
                subject: r.str(3)?,
                details: json(&r.str(4)?)?,
                prev_hash: r.str(5)?,
                hash: r.str(6)?,
            })
        })
        .collect()
}

/// Walk the whole chain and name the first broken row.
pub(crate) async fn verify_audit<C: Conn>(c: &mut C) -> Result<AuditVerdict, StoreError> {
    let mut prev = audit::GENESIS.to_owned();
    let mut expected_seq = 1;
    loop {
        // Read the stored text of `details` exactly as hashed.
        let rows = c
            .rows(
                "SELECT seq, at, action, subject, details, prev_hash, hash FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT 1000",
                &[Arg::I64(expected_seq)],
            )
            .await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let seq = r.i64(0)?;
            if seq != expected_seq {
                return Ok(AuditVerdict::Broken {
                    seq: expected_seq,
                    reason: format!("row {expected_seq} is missing (next is {seq})"),
                });
            }
            let stored_prev = r.str(5)?;
            if stored_prev != prev {
                return Ok(AuditVerdict::Broken {
                    seq,
                    reason: "previous-hash link does not match the row before".into(),
                });
            }
            let canonical = audit::canonical(seq, r.i64(1)?, &r.str(2)?, &r.str(3)?, &r.str(4)?);
            let want = audit::chain_hash(&prev, &canonical).unwrap_or_default();
            let hash = r.str(6)?;
            if hash != want {
                return Ok(AuditVerdict::Broken {
                    seq,
                    reason: "hash does not match the row's content".into(),
                });
            }
            prev = hash;
            expected_seq += 1;
        }
    }
    let head = c
        .rows("SELECT seq, hash FROM audit_head WHERE id = 1", &[])
        .await?;
    let head = head
        .first()
        .ok_or_else(|| StoreError::Corrupt("audit_head row is missing".into()))?;
    if head.i64(0)? != expected_seq - 1 || head.str(1)? != prev {
        return Ok(AuditVerdict::Broken {
            seq: expected_seq,
            reason: format!(
                "the chain ends at row {} but the head says {}",
                expected_seq - 1,
                head.i64(0)?
            ),
        });
    }
    Ok(AuditVerdict::Intact {
        rows: expected_seq - 1,
        head: prev,
    })
}

pub(crate) async fn load_keys<C: Conn>(c: &mut C) -> Result<Vec<StoredKey>, StoreError> {
    let rows = c
        .rows(
            "SELECT kid, state, created_at, pkcs8 FROM gateway_keys ORDER BY created_at, kid",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StoredKey {
                kid: r.str(0)?,
                state: r.str(1)?,
                created_at: ts(r, 2)?,
                pkcs8: r.str(3)?,
            })
        })
        .collect()
}

/// Every stored secret, as stored.
pub(crate) async fn secret_rows<C: Conn>(c: &mut C) -> Result<Vec<SecretRow>, StoreError> {
    let mut out = Vec::new();
    for (slot, sql) in [
        (
            SecretSlot::GatewayKey,
            "SELECT kid, pkcs8 FROM gateway_keys",
        ),
        (
            SecretSlot::WebhookSecret,
            "SELECT id, secret FROM webhook_endpoints",
        ),
        (
            SecretSlot::WebhookPrevious,
            "SELECT id, previous_secret FROM webhook_endpoints WHERE previous_secret IS NOT NULL",
        ),
        (
            SecretSlot::OtpSecret,
            "SELECT id, secret FROM otp_enrollments",
        ),
        (
            SecretSlot::GatewaySecret,
            "SELECT name, value FROM gateway_secrets",
        ),
    ] {
        for r in c.rows(sql, &[]).await? {
            out.push(SecretRow {
                slot,
                id: r.str(0)?,
                value: r.str(1)?,
            });
        }
    }
    Ok(out)
}

/// Replace one stored secret with `value` while it is still `row.value`
/// (a re-seal racing a rotation on another node changes nothing).
pub(crate) async fn replace_secret<C: Conn>(
    c: &mut C,
    row: &SecretRow,
    value: &str,
) -> Result<bool, StoreError> {
    let sql = match row.slot {
        SecretSlot::GatewayKey => {
            "UPDATE gateway_keys SET pkcs8 = $1 WHERE kid = $2 AND pkcs8 = $3"
        }
        SecretSlot::WebhookSecret => {
            "UPDATE webhook_endpoints SET secret = $1 WHERE id = $2 AND secret = $3"
        }
        SecretSlot::WebhookPrevious => {
            "UPDATE webhook_endpoints SET previous_secret = $1 WHERE id = $2 AND previous_secret = $3"
        }
        SecretSlot::OtpSecret => {
            "UPDATE otp_enrollments SET secret = $1 WHERE id = $2 AND secret = $3"
        }
        SecretSlot::GatewaySecret => {
            "UPDATE gateway_secrets SET value = $1 WHERE name = $2 AND value = $3"
        }
    };
    Ok(c.exec(
        sql,
        &[Arg::Str(value), Arg::Str(&row.id), Arg::Str(&row.value)],
    )
    .await?
        == 1)
}

/// A secret of the gateway by name, as stored.
pub(crate) async fn gateway_secret<C: Conn>(
    c: &mut C,
    name: &str,
) -> Result<Option<String>, StoreError> {
    let rows = c
        .rows(
            "SELECT value FROM gateway_secrets WHERE name = $1",
            &[Arg::Str(name)],
        )
        .await?;
    Ok(rows.first().map(|r| r.str(0)).transpose()?)
}

/// Add a secret of the gateway unless one of that name exists (of nodes
/// starting at once, one writes it; `false` for the others).
pub(crate) async fn add_gateway_secret<C: Conn>(
    c: &mut C,
    name: &str,
    value: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    Ok(c.exec(
        "INSERT INTO gateway_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        &[Arg::Str(name), Arg::Str(value), Arg::I64(at.unix_millis())],
    )
    .await?
        == 1)
}

/// Apply a [`KeyChange`]; `false` when there was nothing to do (another
/// node wrote the first key; the key to retire is not `verify_only`).
pub(crate) async fn change_keys<C: Conn>(
    c: &mut C,
    change: &KeyChange,
) -> Result<bool, MovementError> {
    match change {
        KeyChange::First(k) => Ok(c
            .exec(
                "INSERT INTO gateway_keys (kid, state, created_at, pkcs8) SELECT $1, 'active', $2, $3 \
                 WHERE NOT EXISTS (SELECT 1 FROM gateway_keys) ON CONFLICT DO NOTHING",
                &[Arg::Str(&k.kid), Arg::I64(k.created_at.unix_millis()), Arg::Str(&k.pkcs8)],
            )
            .await?
            == 1),
        KeyChange::Rotate(k) => {
            c.exec(
                "UPDATE gateway_keys SET state = 'verify_only' WHERE state = 'active'",
                &[],
            )
            .await?;
            let n = c
                .exec(
                    "INSERT INTO gateway_keys (kid, state, created_at, pkcs8) VALUES ($1, 'active', $2, $3) \
                     ON CONFLICT DO NOTHING",
                    &[Arg::Str(&k.kid), Arg::I64(k.created_at.unix_millis()), Arg::Str(&k.pkcs8)],
                )
                .await?;
            if n == 0 {
                // Another rotation made its key active meanwhile: this one
                // is rolled back whole.
                return Err(StoreError::AlreadyExists(
                    "an active signing key (another rotation won)".into(),
                )
                .into());
            }
            Ok(true)
        }
        KeyChange::Retire { kid } => Ok(c
            .exec(
                "UPDATE gateway_keys SET state = 'retired' WHERE kid = $1 AND state = 'verify_only'",
                &[Arg::Str(kid)],
            )
            .await?
            == 1),
    }
}

pub(crate) async fn ledger_ping<C: Conn>(c: &mut C) -> Result<(), StoreError> {
    c.rows("SELECT seq FROM audit_head WHERE id = 1", &[])
        .await?;
    Ok(())
}

fn opt_ts(r: &Row, i: usize) -> Result<Option<Timestamp>, sqlx::Error> {
    Ok(r.opt_i64(i)?.map(Timestamp::from_unix_millis))
}

/// Insert a row written once; `AlreadyExists` when its key (or a unique column) is taken.
pub(crate) async fn insert<C: Conn>(c: &mut C, rec: &Record) -> Result<(), StoreError> {
    let (what, n) = match rec {
        Record::Account(a) => {
            create_account(c, a).await?;
            return Ok(());
        }
        Record::Merchant(m) => (
            format!("merchant {}", m.id),
            c.exec(
                "INSERT INTO merchants (id, name, city, country, mcc, currency, category, name_local, owner_ref, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                &[
                    Arg::Str(&m.id),
                    Arg::Str(&m.name),
                    Arg::Str(&m.city),
                    Arg::Str(&m.country),
                    Arg::Str(&m.mcc),
                    Arg::Str(&m.currency),
                    Arg::Str(&m.category),
                    Arg::OptStr(m.name_local.as_deref()),
                    Arg::OptStr(m.owner_ref.as_deref()),
                    Arg::I64(m.created_at.unix_millis()),
                ],
            )
            .await?,
        ),
        Record::Customer(x) => (
            format!("customer {}", x.id),
            c.exec(
                "INSERT INTO customers (id, account_class, level_a_cap, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[Arg::Str(&x.id), Arg::Str(&x.account_class), Arg::OptI64(x.level_a_cap), Arg::I64(x.created_at.unix_millis())],
            )
            .await?,
        ),
        Record::Device(d) => (
            format!("device {} (key id {})", d.id, d.kid),
            c.exec(
                "INSERT INTO devices (id, customer_id, kid, public_key, status, created_at, enrolled_by, biometric_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                &[
                    Arg::Str(&d.id),
                    Arg::Str(&d.customer_id),
                    Arg::Str(&d.kid),
                    Arg::Str(&d.public_key),
                    Arg::Str(&d.status),
                    Arg::I64(d.created_at.unix_millis()),
                    Arg::OptStr(d.enrolled_by.as_deref()),
                    Arg::OptI64(d.biometric_at.map(|t| t.unix_millis())),
                ],
            )
            .await?,
        ),
        Record::Certificate(x) => (
            format!("certificate {} (or its key)", x.id),
            c.exec(
                "INSERT INTO certificates (id, customer_id, public_key, status, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT DO NOTHING",
                &[Arg::Str(&x.id), Arg::Str(&x.customer_id), Arg::Str(&x.public_key), Arg::Str(&x.status), Arg::I64(x.created_at.unix_millis())],
            )
            .await?,
        ),
        Record::Card(x) => (
            format!("card {} (or its token)", x.id),
            c.exec(
                "INSERT INTO cards (id, customer_id, processor, token, brand, last4, funding, exp_month, exp_year, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                &[
                    Arg::Str(&x.id),
                    Arg::Str(&x.customer_id),
                    Arg::Str(&x.processor),
                    Arg::Str(&x.token),
                    Arg::Str(&x.brand),
                    Arg::Str(&x.last4),
                    Arg::Str(&x.funding),
                    Arg::I64(x.exp_month),
                    Arg::I64(x.exp_year),
                    Arg::I64(x.created_at.unix_millis()),
                ],
            )
            .await?,
        ),
        Record::Otp(x) => (
            format!("OTP enrollment {}", x.id),
            c.exec(
                "INSERT INTO otp_enrollments (id, customer_id, secret, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[Arg::Str(&x.id), Arg::Str(&x.customer_id), Arg::Str(&x.secret), Arg::I64(x.created_at.unix_millis())],
            )
            .await?,
        ),
        Record::Block(b) => (
            format!("block {}", b.id),
            c.exec(
                "INSERT INTO blocks (id, subject_id, reason, created_at, lifted_at) VALUES ($1, $2, $3, $4, NULL) \
                 ON CONFLICT DO NOTHING",
                &[Arg::Str(&b.id), Arg::Str(&b.subject_id), Arg::Str(&b.reason), Arg::I64(b.created_at.unix_millis())],
            )
            .await?,
        ),
        Record::ApiKey(k) => (
            format!("API key {}", k.id),
            c.exec(
                "INSERT INTO api_keys (id, key_hash, role, subject_id, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, NULL) \
                 ON CONFLICT DO NOTHING",
                &[Arg::Str(&k.id), Arg::Str(&k.key_hash), Arg::Str(&k.role), Arg::OptStr(k.subject_id.as_deref()), Arg::I64(k.created_at.unix_millis())],
            )
            .await?,
        ),
        Record::StaticCode(s) => (
            format!("static code {}", s.id),
            c.exec(
                "INSERT INTO static_codes (id, merchant_id, payload, created_at, revoked_at) VALUES ($1, $2, $3, $4, NULL) \
                 ON CONFLICT DO NOTHING",
                &[Arg::Str(&s.id), Arg::Str(&s.merchant_id), Arg::Str(&s.payload), Arg::I64(s.created_at.unix_millis())],
            )
            .await?,
        ),
        Record::Order(o) => (
            format!("order {} or out_trade_no {:?}", o.id, o.out_trade_no.as_deref().unwrap_or_default()),
            c.exec(
                "INSERT INTO orders (id, merchant_id, amount_minor, currency, reference, out_trade_no, status, payload, payment_id, \
                 expires_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, $10) ON CONFLICT DO NOTHING",
                &[
                    Arg::Str(&o.id),
                    Arg::Str(&o.merchant_id),
                    Arg::I64(o.amount_minor),
                    Arg::Str(&o.currency),
                    Arg::Str(&o.reference),
                    Arg::OptStr(o.out_trade_no.as_deref()),
                    Arg::Str(&o.status),
                    Arg::Str(&o.payload),
                    Arg::I64(o.expires_at.unix_millis()),
                    Arg::I64(o.created_at.unix_millis()),
                ],
            )
            .await
            .or_else(|e| if number_taken(&e) { Ok(0) } else { Err(e) })?,
        ),
        Record::IssuedCode(i) => (
            "issued code".to_owned(),
            c.exec(
                "INSERT INTO issued_codes (code, customer_id, device_id, expires_at, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT DO NOTHING",
                &[Arg::Str(&i.code), Arg::Str(&i.customer_id), Arg::OptStr(i.device_id.as_deref()), Arg::I64(i.expires_at.unix_millis()), Arg::I64(i.created_at.unix_millis())],
            )
            .await?,
        ),
        Record::WebhookEndpoint(w) => (
            format!("webhook endpoint {}", w.id),
            c.exec(
                "INSERT INTO webhook_endpoints (id, merchant_id, url, secret, created_at, disabled_at) VALUES ($1, $2, $3, $4, $5, NULL) \
                 ON CONFLICT DO NOTHING",
                &[Arg::Str(&w.id), Arg::Str(&w.merchant_id), Arg::Str(&w.url), Arg::Str(&w.secret), Arg::I64(w.created_at.unix_millis())],
            )
            .await?,
        ),
    };
    if n == 0 {
        return Err(StoreError::AlreadyExists(what));
    }
    Ok(())
}

pub(crate) async fn merchant<C: Conn>(c: &mut C, id: &str) -> Result<Option<Merchant>, StoreError> {
    let rows = c
        .rows("SELECT id, name, city, country, mcc, currency, category, name_local, owner_ref, created_at FROM merchants WHERE id = $1", &[Arg::Str(id)])
        .await?;
    rows.first()
        .map(|r| {
            Ok(Merchant {
                id: r.str(0)?,
                name: r.str(1)?,
                city: r.str(2)?,
                country: r.str(3)?,
                mcc: r.str(4)?,
                currency: r.str(5)?,
                category: r.str(6)?,
                name_local: r.opt_str(7)?,
                owner_ref: r.opt_str(8)?,
                created_at: ts(r, 9)?,
            })
        })
        .transpose()
}

pub(crate) async fn customer<C: Conn>(c: &mut C, id: &str) -> Result<Option<Customer>, StoreError> {
    let rows = c
        .rows(
            "SELECT id, account_class, level_a_cap, created_at FROM customers WHERE id = $1",
            &[Arg::Str(id)],
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(Customer {
                id: r.str(0)?,
                account_class: r.str(1)?,
                level_a_cap: r.opt_i64(2)?,
                created_at: ts(r, 3)?,
            })
        })
        .transpose()
}

fn device_from(r: &Row) -> Result<Device, StoreError> {
    Ok(Device {
        id: r.str(0)?,
        customer_id: r.str(1)?,
        kid: r.str(2)?,
        public_key: r.str(3)?,
        status: r.str(4)?,
        created_at: ts(r, 5)?,
        enrolled_by: r.opt_str(6)?,
        biometric_at: opt_ts(r, 7)?,
    })
}

/// The columns of a device, in `device_from` order.
macro_rules! device_select {
    () => {
        "SELECT id, customer_id, kid, public_key, status, created_at, enrolled_by, biometric_at FROM devices "
    };
}

pub(crate) async fn device<C: Conn>(c: &mut C, id: &str) -> Result<Option<Device>, StoreError> {
    let rows = c
        .rows(concat!(device_select!(), "WHERE id = $1"), &[Arg::Str(id)])
        .await?;
    rows.first().map(device_from).transpose()
}

pub(crate) async fn devices_of<C: Conn>(
    c: &mut C,
    customer_id: &str,
) -> Result<Vec<Device>, StoreError> {
    let rows = c
        .rows(
            concat!(
                device_select!(),
                "WHERE customer_id = $1 ORDER BY created_at, id"
            ),
            &[Arg::Str(customer_id)],
        )
        .await?;
    rows.iter().map(device_from).collect()
}

fn certificate_from(r: &Row) -> Result<Certificate, StoreError> {
    Ok(Certificate {
        id: r.str(0)?,
        customer_id: r.str(1)?,
        public_key: r.str(2)?,
        status: r.str(3)?,
        created_at: ts(r, 4)?,
    })
}

pub(crate) async fn certificates_of<C: Conn>(
    c: &mut C,
    customer_id: &str,
) -> Result<Vec<Certificate>, StoreError> {
    let rows = c
        .rows(
            "SELECT id, customer_id, public_key, status, created_at FROM certificates WHERE customer_id = $1 ORDER BY created_at, id",
            &[Arg::Str(customer_id)],
        )
        .await?;
    rows.iter().map(certificate_from).collect()
}

fn card_from(r: &Row) -> Result<Card, StoreError> {
    Ok(Card {
        id: r.str(0)?,
        customer_id: r.str(1)?,
        processor: r.str(2)?,
        token: r.str(3)?,
        brand: r.str(4)?,
        last4: r.str(5)?,
        funding: r.str(6)?,
        exp_month: r.i64(7)?,
        exp_year: r.i64(8)?,
        created_at: ts(r, 9)?,
    })
}

pub(crate) async fn cards_of<C: Conn>(
    c: &mut C,
    customer_id: &str,
) -> Result<Vec<Card>, StoreError> {
    let rows = c
        .rows(
            "SELECT id, customer_id, processor, token, brand, last4, funding, exp_month, exp_year, created_at \
             FROM cards WHERE customer_id = $1 ORDER BY created_at, id",
            &[Arg::Str(customer_id)],
        )
        .await?;
    rows.iter().map(card_from).collect()
}

pub(crate) async fn otp_enrollment<C: Conn>(
    c: &mut C,
    customer_id: &str,
) -> Result<Option<OtpEnrollment>, StoreError> {
    let rows = c
        .rows(
            "SELECT id, customer_id, secret, created_at FROM otp_enrollments WHERE customer_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
            &[Arg::Str(customer_id)],
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(OtpEnrollment {
                id: r.str(0)?,
                customer_id: r.str(1)?,
                secret: r.str(2)?,
                created_at: ts(r, 3)?,
            })
        })
        .transpose()
}

fn block_from(r: &Row) -> Result<Block, StoreError> {
    Ok(Block {
        id: r.str(0)?,
        subject_id: r.str(1)?,
        reason: r.str(2)?,
        created_at: ts(r, 3)?,
        lifted_at: opt_ts(r, 4)?,
    })
}

/// Blocks in force on either of two parties (a payment's merchant and payer).
pub(crate) async fn active_blocks<C: Conn>(
    c: &mut C,
    a: &str,
    b: &str,
) -> Result<Vec<Block>, StoreError> {
    let rows = c
        .rows(
            "SELECT id, subject_id, reason, created_at, lifted_at FROM blocks \
             WHERE subject_id IN ($1, $2) AND lifted_at IS NULL ORDER BY created_at, id",
            &[Arg::Str(a), Arg::Str(b)],
        )
        .await?;
    rows.iter().map(block_from).collect()
}

/// The parties with a block in force, at most `limit` of them.
pub(crate) async fn blocked_subjects<C: Conn>(
    c: &mut C,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let rows = c
        .rows(
            "SELECT DISTINCT subject_id FROM blocks WHERE lifted_at IS NULL ORDER BY subject_id LIMIT $1",
            &[Arg::I64(limit)],
        )
        .await?;
    Ok(rows.iter().map(|r| r.str(0)).collect::<Result<_, _>>()?)
}

pub(crate) async fn block<C: Conn>(c: &mut C, id: &str) -> Result<Option<Block>, StoreError> {
    let rows = c
        .rows(
            "SELECT id, subject_id, reason, created_at, lifted_at FROM blocks WHERE id = $1",
            &[Arg::Str(id)],
        )
        .await?;
    rows.first().map(block_from).transpose()
}

/// Lift a block in force; false when there is none by that id.
pub(crate) async fn lift_block<C: Conn>(
    c: &mut C,
    id: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "UPDATE blocks SET lifted_at = $1 WHERE id = $2 AND lifted_at IS NULL",
            &[Arg::I64(at.unix_millis()), Arg::Str(id)],
        )
        .await?;
    Ok(n == 1)
}

pub(crate) async fn api_key_by_hash<C: Conn>(
    c: &mut C,
    hash: &str,
) -> Result<Option<ApiKey>, StoreError> {
    let rows = c
        .rows("SELECT id, key_hash, role, subject_id, created_at, revoked_at FROM api_keys WHERE key_hash = $1", &[Arg::Str(hash)])
        .await?;
    rows.first()
        .map(|r| {
            Ok(ApiKey {
                id: r.str(0)?,
                key_hash: r.str(1)?,
                role: r.str(2)?,
                subject_id: r.opt_str(3)?,
                created_at: ts(r, 4)?,
                revoked_at: opt_ts(r, 5)?,
            })
        })
        .transpose()
}

pub(crate) async fn revoke_api_key<C: Conn>(
    c: &mut C,
    id: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let revoked = c
        .exec(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            &[Arg::I64(at.unix_millis()), Arg::Str(id)],
        )
        .await?
        == 1;
    if revoked {
        // A device enrolled with a stolen key is the thief's device.
        c.exec(
            "UPDATE devices SET status = 'revoked' WHERE enrolled_by = $1 AND status = 'active'",
            &[Arg::Str(id)],
        )
        .await?;
    }
    Ok(revoked)
}

/// Apply a [`CredentialChange`]; `false` when there was nothing to change.
pub(crate) async fn change_credential<C: Conn>(
    c: &mut C,
    change: &CredentialChange,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let at = at.unix_millis();
    let n = match change {
        CredentialChange::PinSet {
            customer_id,
            hash,
            salt,
        } => {
            c.exec(
                "INSERT INTO customer_credentials (customer_id, pin_hash, pin_salt, failures, locked_until, updated_at) \
                 VALUES ($1, $2, $3, 0, NULL, $4) ON CONFLICT (customer_id) DO UPDATE SET pin_hash = excluded.pin_hash, \
                 pin_salt = excluded.pin_salt, updated_at = excluded.updated_at \
                 WHERE customer_credentials.pin_hash = ''",
                &[Arg::Str(customer_id), Arg::Str(hash), Arg::Str(salt), Arg::I64(at)],
            )
            .await?
        }
        CredentialChange::PinReplace {
            customer_id,
            expected,
            hash,
            salt,
        } => {
            c.exec(
                "UPDATE customer_credentials SET pin_hash = $1, pin_salt = $2, updated_at = $3 \
                 WHERE customer_id = $4 AND pin_hash = $5 AND pin_hash <> ''",
                &[Arg::Str(hash), Arg::Str(salt), Arg::I64(at), Arg::Str(customer_id), Arg::Str(expected)],
            )
            .await?
        }
        CredentialChange::PinReset { customer_id } => {
            c.exec(
                "UPDATE customer_credentials SET pin_hash = '', pin_salt = '', updated_at = $1 \
                 WHERE customer_id = $2 AND pin_hash <> ''",
                &[Arg::I64(at), Arg::Str(customer_id)],
            )
            .await?
        }
        CredentialChange::DeviceRevoke { id, customer_id } => {
            c.exec(
                "UPDATE devices SET status = 'revoked' WHERE id = $1 AND status = 'active' \
                 AND ($2 IS NULL OR customer_id = $2)",
                &[Arg::Str(id), Arg::OptStr(customer_id.as_deref())],
            )
            .await?
        }
        CredentialChange::DeviceBiometric { id, customer_id } => {
            c.exec(
                "UPDATE devices SET biometric_at = $1 WHERE id = $2 AND customer_id = $3 \
                 AND status = 'active' AND biometric_at IS NULL",
                &[Arg::I64(at), Arg::Str(id), Arg::Str(customer_id)],
            )
            .await?
        }
        CredentialChange::CertificateRevoke { id, customer_id } => {
            c.exec(
                "UPDATE certificates SET status = 'revoked' WHERE id = $1 AND status = 'active' \
                 AND ($2 IS NULL OR customer_id = $2)",
                &[Arg::Str(id), Arg::OptStr(customer_id.as_deref())],
            )
            .await?
        }
        CredentialChange::StaticCodeRevoke { id, merchant_id } => {
            c.exec(
                "UPDATE static_codes SET revoked_at = $1 WHERE id = $2 AND merchant_id = $3 AND revoked_at IS NULL",
                &[Arg::I64(at), Arg::Str(id), Arg::Str(merchant_id)],
            )
            .await?
        }
    };
    Ok(n == 1)
}

pub(crate) async fn static_code<C: Conn>(
    c: &mut C,
    id: &str,
) -> Result<Option<StaticCode>, StoreError> {
    let rows = c
        .rows(
            concat!(static_code_select!(), " WHERE id = $1"),
            &[Arg::Str(id)],
        )
        .await?;
    rows.first().map(static_code_from).transpose()
}

fn static_code_from(r: &Row) -> Result<StaticCode, StoreError> {
    Ok(StaticCode {
        id: r.str(0)?,
        merchant_id: r.str(1)?,
        payload: r.str(2)?,
        created_at: ts(r, 3)?,
        revoked_at: opt_ts(r, 4)?,
    })
}

/// Every static code not revoked, and every open order not yet expired:
/// the merchant codes in force (their payloads name the key that signed
/// them).
pub(crate) async fn codes_in_force<C: Conn>(
    c: &mut C,
    now: Timestamp,
) -> Result<(Vec<StaticCode>, Vec<Order>), StoreError> {
    let rows = c
        .rows(
            concat!(static_code_select!(), " WHERE revoked_at IS NULL"),
            &[],
        )
        .await?;
    let codes = rows
        .iter()
        .map(static_code_from)
        .collect::<Result<Vec<_>, _>>()?;
    let rows = c
        .rows(
            concat!(
                order_select!(),
                " WHERE status = 'open' AND expires_at > $1"
            ),
            &[Arg::I64(now.unix_millis())],
        )
        .await?;
    let orders = rows.iter().map(order_from).collect::<Result<_, _>>()?;
    Ok((codes, orders))
}

fn order_from(r: &Row) -> Result<Order, StoreError> {
    Ok(Order {
        id: r.str(0)?,
        merchant_id: r.str(1)?,
        amount_minor: r.i64(2)?,
        currency: r.str(3)?,
        reference: r.str(4)?,
        out_trade_no: r.opt_str(5)?,
        status: r.str(6)?,
        payload: r.str(7)?,
        payment_id: r.opt_str(8)?,
        expires_at: ts(r, 9)?,
        created_at: ts(r, 10)?,
        updated_at: ts(r, 11)?,
    })
}

pub(crate) async fn order<C: Conn>(c: &mut C, id: &str) -> Result<Option<Order>, StoreError> {
    let rows = c
        .rows(concat!(order_select!(), " WHERE id = $1"), &[Arg::Str(id)])
        .await?;
    rows.first().map(order_from).transpose()
}

/// Open orders whose expiry has passed, oldest first.
pub(crate) async fn orders_due<C: Conn>(
    c: &mut C,
    now: Timestamp,
    limit: i64,
) -> Result<Vec<Order>, StoreError> {
    let rows = c
        .rows(
            concat!(
                order_select!(),
                " WHERE status = 'open' AND expires_at <= $1 ORDER BY expires_at LIMIT $2"
            ),
            &[Arg::I64(now.unix_millis()), Arg::I64(limit)],
        )
        .await?;
    rows.iter().map(order_from).collect()
}

pub(crate) async fn issued_code<C: Conn>(
    c: &mut C,
    code: &str,
) -> Result<Option<IssuedCode>, StoreError> {
    let rows = c
        .rows("SELECT code, customer_id, device_id, expires_at, created_at FROM issued_codes WHERE code = $1", &[Arg::Str(code)])
        .await?;
    rows.first()
        .map(|r| {
            Ok(IssuedCode {
                code: r.str(0)?,
                customer_id: r.str(1)?,
                device_id: r.opt_str(2)?,
                expires_at: ts(r, 3)?,
                created_at: ts(r, 4)?,
            })
        })
        .transpose()
}

pub(crate) async fn webhook_endpoints<C: Conn>(
    c: &mut C,
    merchant_id: &str,
) -> Result<Vec<WebhookEndpoint>, StoreError> {
    let rows = c
        .rows(
            "SELECT id, merchant_id, url, secret, created_at, disabled_at, previous_secret, previous_until \
             FROM webhook_endpoints WHERE merchant_id = $1 AND deleted_at IS NULL ORDER BY created_at, id",
            &[Arg::Str(merchant_id)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(WebhookEndpoint {
                id: r.str(0)?,
                merchant_id: r.str(1)?,
                url: r.str(2)?,
                secret: r.str(3)?,
                created_at: ts(r, 4)?,
                disabled_at: opt_ts(r, 5)?,
                previous_secret: r.opt_str(6)?,
                previous_until: opt_ts(r, 7)?,
            })
        })
        .collect()
}

/// Apply a change to one of a merchant's endpoints (see [`EndpointChange`]);
/// `false` when the endpoint is not the merchant's, is deleted, or is
/// already in the state asked for.
pub(crate) async fn change_endpoint<C: Conn>(
    c: &mut C,
    change: &EndpointChange,
    at: Timestamp,
) -> Result<bool, MovementError> {
    let at = at.unix_millis();
    let n = match change {
        EndpointChange::Add { endpoint, cap } => {
            // Registrations of one merchant take its row in turn
            // (PostgreSQL's row lock; SQLite has one writer), so the count
            // below cannot be passed by two at once.
            c.exec(
                "UPDATE merchants SET name = name WHERE id = $1",
                &[Arg::Str(&endpoint.merchant_id)],
            )
            .await?;
            let live = c
                .rows(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM webhook_endpoints WHERE merchant_id = $1 AND deleted_at IS NULL",
                    &[Arg::Str(&endpoint.merchant_id)],
                )
                .await?;
            let live = live.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0);
            if live >= *cap {
                return Err(MovementError::TooManyEndpoints { cap: *cap });
            }
            insert(c, &Record::WebhookEndpoint(endpoint.clone())).await?;
            1
        }
        EndpointChange::Disable { id, merchant_id } => {
            c.exec(
                "UPDATE webhook_endpoints SET disabled_at = $1 \
                 WHERE id = $2 AND merchant_id = $3 AND deleted_at IS NULL AND disabled_at IS NULL",
                &[Arg::I64(at), Arg::Str(id), Arg::Str(merchant_id)],
            )
            .await?
        }
        EndpointChange::Enable { id, merchant_id } => {
            c.exec(
                "UPDATE webhook_endpoints SET disabled_at = NULL \
                 WHERE id = $1 AND merchant_id = $2 AND deleted_at IS NULL AND disabled_at IS NOT NULL",
                &[Arg::Str(id), Arg::Str(merchant_id)],
            )
            .await?
        }
        EndpointChange::Delete { id, merchant_id } => {
            let n = c
                .exec(
                    "UPDATE webhook_endpoints SET deleted_at = $1, disabled_at = COALESCE(disabled_at, $1) \
                     WHERE id = $2 AND merchant_id = $3 AND deleted_at IS NULL",
                    &[Arg::I64(at), Arg::Str(id), Arg::Str(merchant_id)],
                )
                .await?;
            if n == 1 {
                c.exec(
                    "UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint deleted' \
                     WHERE endpoint_id = $1 AND status = 'pending'",
                    &[Arg::Str(id)],
                )
                .await?;
            }
            n
        }
        EndpointChange::RotateSecret {
            id,
            merchant_id,
            secret,
            previous_until,
        } => {
            c.exec(
                "UPDATE webhook_endpoints SET previous_secret = secret, previous_until = $1, secret = $2 \
                 WHERE id = $3 AND merchant_id = $4 AND deleted_at IS NULL",
                &[
                    Arg::I64(previous_until.unix_millis()),
                    Arg::Str(secret),
                    Arg::Str(id),
                    Arg::Str(merchant_id),
                ],
            )
            .await?
        }
    };
    Ok(n == 1)
}

/// Claim a due delivery for one attempt: move its `next_attempt_at` from the
/// value it was read with (`seen`) to `until`. Only one claimant wins; if it
/// never records a result, the delivery is due again at `until`. Only while
/// its endpoint is enabled: once a disable (or delete) has committed, no
/// further attempt of it starts, even in a pass that read the endpoint
/// before.
pub(crate) async fn claim_delivery<C: Conn>(
    c: &mut C,
    id: i64,
    seen: Timestamp,
    until: Timestamp,
) -> Result<bool, StoreError> {
    Ok(c.exec(
        "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id = $2 AND status = 'pending' AND next_attempt_at = $3 \
         AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = webhook_deliveries.endpoint_id AND e.disabled_at IS NULL)",
        &[Arg::I64(until.unix_millis()), Arg::I64(id), Arg::I64(seen.unix_millis())],
    )
    .await?
        == 1)
}

/// A customer's succeeded payments since `since`: (count, total minor units).
pub(crate) async fn payer_history<C: Conn>(
    c: &mut C,
    customer_id: &str,
    since: Timestamp,
) -> Result<(i64, i64), StoreError> {
    let rows = c
        .rows(
            "SELECT COUNT(*), CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM payments \
             WHERE customer_id = $1 AND created_at >= $2 AND status = 'succeeded'",
            &[Arg::Str(customer_id), Arg::I64(since.unix_millis())],
        )
        .await?;
    let r = rows.first().ok_or_else(unexpected_none)?;
    Ok((r.i64(0)?, r.i64(1)?))
}

/// How many distinct customers paid a merchant (succeeded) since `since`.
pub(crate) async fn distinct_payers<C: Conn>(
    c: &mut C,
    merchant_id: &str,
    since: Timestamp,
) -> Result<i64, StoreError> {
    let rows = c
        .rows(
            "SELECT COUNT(DISTINCT customer_id) FROM payments \
             WHERE merchant_id = $1 AND created_at >= $2 AND status = 'succeeded'",
            &[Arg::Str(merchant_id), Arg::I64(since.unix_millis())],
        )
        .await?;
    let r = rows.first().ok_or_else(unexpected_none)?;
    Ok(r.i64(0)?)
}

fn unexpected_none() -> StoreError {
    StoreError::Corrupt("an aggregate query returned no row".into())
}

/// A page of payments, newest first, and whether more follow.
pub(crate) async fn list_payments<C: Conn>(
    c: &mut C,
    q: &PaymentQuery,
) -> Result<(Vec<Payment>, bool), StoreError> {
    let limit = q.limit.clamp(1, 100);
    let (after_ts, after_id) = match &q.starting_after {
        Some(id) => match payment(c, id).await? {
            Some(p) => (Some(p.created_at.unix_millis()), Some(p.id)),
            None => {
                return Err(StoreError::Corrupt(format!(
                    "starting_after: no payment {id}"
                )));
            }
        },
        None => (None, None),
    };
    let rows = c
        .rows(
            "SELECT id, merchant_id, customer_id, status, amount_minor, currency, refunded_minor, out_trade_no, details, created_at, \
             updated_at FROM payments \
             WHERE ($1 IS NULL OR merchant_id = $1) AND ($2 IS NULL OR customer_id = $2) AND ($3 IS NULL OR status = $3) \
             AND ($4 IS NULL OR created_at < $4 OR (created_at = $4 AND id < $5)) \
             ORDER BY created_at DESC, id DESC LIMIT $6",
            &[
                Arg::OptStr(q.merchant_id.as_deref()),
                Arg::OptStr(q.customer_id.as_deref()),
                Arg::OptStr(q.status.as_deref()),
                Arg::OptI64(after_ts),
                Arg::OptStr(after_id.as_deref()),
                Arg::I64(limit + 1),
            ],
        )
        .await?;
    let mut page: Vec<Payment> = rows.iter().map(payment_from).collect::<Result<_, _>>()?;
    let more = page.len() as i64 > limit;
    page.truncate(limit as usize);
    Ok((page, more))
}

/// Run read-only work in one snapshot, so rows committed meanwhile cannot
/// make a multi-statement check disagree with itself.
pub(crate) async fn in_snapshot<C: Conn, T>(
    c: &mut C,
    f: impl AsyncFnOnce(&mut C) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let begin = match c.dialect() {
        Dialect::Sqlite => "BEGIN",
        Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    };
    c.exec(begin, &[]).await?;
    let r = f(c).await;
    c.exec("ROLLBACK", &[]).await?;
    r
}

/// Whether any unrevoked key with this role exists (first-start detection).
pub(crate) async fn has_active_key<C: Conn>(c: &mut C, role: &str) -> Result<bool, StoreError> {
    let rows = c
        .rows(
            "SELECT id FROM api_keys WHERE role = $1 AND revoked_at IS NULL LIMIT 1",
            &[Arg::Str(role)],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Turn outbox events into deliveries and mark them handed over (in the
/// caller's transaction); how many were still pending.
pub(crate) async fn fan_out<C: Conn>(
    c: &mut C,
    events: &[(i64, Vec<NewDelivery>)],
    at: Timestamp,
) -> Result<u64, StoreError> {
    for d in events.iter().flat_map(|(_, d)| d) {
        c.exec(
            "INSERT INTO webhook_deliveries (endpoint_id, merchant_id, event_id, event_type, body, status, attempts, next_attempt_at, \
             last_status_code, last_error, created_at, delivered_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, NULL, NULL, $6, NULL) \
             ON CONFLICT (endpoint_id, event_id) DO NOTHING",
            &[Arg::Str(&d.endpoint_id), Arg::Str(&d.merchant_id), Arg::Str(&d.event_id), Arg::Str(&d.event_type), Arg::Str(&d.body), Arg::I64(at.unix_millis())],
        )
        .await?;
    }
    let seqs: Vec<i64> = events.iter().map(|(seq, _)| *seq).collect();
    if seqs.is_empty() {
        return Ok(0);
    }
    // One statement for the batch; the list travels as one text parameter.
    let (sql, list) = match c.dialect() {
        Dialect::Postgres => (
            "UPDATE outbox SET delivered_at = $1 WHERE seq = ANY(CAST($2 AS BIGINT[])) AND delivered_at IS NULL",
            pg_array(&seqs),
        ),
        Dialect::Sqlite => (
            "UPDATE outbox SET delivered_at = $1 WHERE seq IN (SELECT value FROM json_each($2)) AND delivered_at IS NULL",
            serde_json::Value::from(seqs).to_string(),
        ),
    };
    Ok(c.exec(sql, &[Arg::I64(at.unix_millis()), Arg::Str(&list)])
        .await?)
}

/// A PostgreSQL array literal of integers: `{1,2,3}`.
fn pg_array(v: &[i64]) -> String {
    let items: Vec<String> = v.iter().map(i64::to_string).collect();
    format!("{{{}}}", items.join(","))
}

fn delivery_from(r: &Row) -> Result<WebhookDelivery, StoreError> {
    Ok(WebhookDelivery {
        id: r.i64(0)?,
        endpoint_id: r.str(1)?,
        merchant_id: r.str(2)?,
        event_id: r.str(3)?,
        event_type: r.str(4)?,
        body: r.str(5)?,
        status: r.str(6)?,
        attempts: r.i64(7)?,
        next_attempt_at: ts(r, 8)?,
        last_status_code: r.opt_i64(9)?,
        last_error: r.opt_str(10)?,
        created_at: ts(r, 11)?,
        delivered_at: opt_ts(r, 12)?,
    })
}

pub(crate) async fn deliveries_due<C: Conn>(
    c: &mut C,
    now: Timestamp,
    per_endpoint: i64,
    limit: i64,
) -> Result<Vec<WebhookDelivery>, StoreError> {
    // At most `per_endpoint` of each endpoint, so one endpoint's backlog
    // cannot fill the batch; none of an endpoint that is disabled (they
    // wait) or deleted.
    let rows = c
        .rows(
            concat!(
                delivery_select!(),
                " WHERE id IN (SELECT id FROM (SELECT d.id, ROW_NUMBER() OVER \
                 (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.id) AS rn \
                 FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                 WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.disabled_at IS NULL \
                 AND e.deleted_at IS NULL) x WHERE rn <= $2) ORDER BY next_attempt_at, id LIMIT $3"
            ),
            &[
                Arg::I64(now.unix_millis()),
                Arg::I64(per_endpoint),
                Arg::I64(limit),
            ],
        )
        .await?;
    rows.iter().map(delivery_from).collect()
}

pub(crate) async fn deliveries_of<C: Conn>(
    c: &mut C,
    endpoint_id: &str,
    limit: i64,
) -> Result<Vec<WebhookDelivery>, StoreError> {
    let rows = c
        .rows(
            concat!(
                delivery_select!(),
                " WHERE endpoint_id = $1 ORDER BY id DESC LIMIT $2"
            ),
            &[Arg::Str(endpoint_id), Arg::I64(limit)],
        )
        .await?;
    rows.iter().map(delivery_from).collect()
}

pub(crate) async fn delivery<C: Conn>(
    c: &mut C,
    id: i64,
) -> Result<Option<WebhookDelivery>, StoreError> {
    let rows = c
        .rows(
            concat!(delivery_select!(), " WHERE id = $1"),
            &[Arg::I64(id)],
        )
        .await?;
    rows.first().map(delivery_from).transpose()
}

pub(crate) async fn record_attempt<C: Conn>(
    c: &mut C,
    a: &AttemptResult,
) -> Result<bool, StoreError> {
    let delivered_at = (a.status == "delivered").then_some(a.at.unix_millis());
    Ok(c
        .exec(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, status = $1, next_attempt_at = $2, last_status_code = $3, \
             last_error = $4, delivered_at = $5 WHERE id = $6 AND status = 'pending' AND next_attempt_at = $7",
            &[
                Arg::Str(&a.status),
                Arg::I64(a.next_attempt_at.unix_millis()),
                Arg::OptI64(a.status_code),
                Arg::OptStr(a.error.as_deref()),
                Arg::OptI64(delivered_at),
                Arg::I64(a.id),
                Arg::I64(a.claimed_until.unix_millis()),
            ],
        )
        .await?
        == 1)
}

/// Send a delivery again (redelivery on request), whatever its state.
pub(crate) async fn retry_delivery<C: Conn>(
    c: &mut C,
    id: i64,
    now: Timestamp,
) -> Result<bool, StoreError> {
    Ok(c
        .exec(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, delivered_at = NULL WHERE id = $2",
            &[Arg::I64(now.unix_millis()), Arg::I64(id)],
        )
        .await?
        == 1)
}

pub(crate) async fn credentials<C: Conn>(
    c: &mut C,
    customer_id: &str,
) -> Result<Option<Credentials>, StoreError> {
    let rows = c
        .rows(
            "SELECT customer_id, pin_hash, pin_salt, failures, locked_until, updated_at FROM customer_credentials WHERE customer_id = $1",
            &[Arg::Str(customer_id)],
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(Credentials {
                customer_id: r.str(0)?,
                pin_hash: r.str(1)?,
                pin_salt: r.str(2)?,
                failures: r.i64(3)?,
                locked_until: opt_ts(r, 4)?,
                updated_at: ts(r, 5)?,
            })
        })
        .transpose()
}

/// Take one PIN (or one-time password) attempt, atomically, before the
/// secret is checked: it counts as a failure until the caller proves it
/// right ([`pin_succeeded`]). `None` while a lock is in force, so however
/// many attempts race, at most `lock_after` are ever evaluated. The attempt
/// that reaches `lock_after` locks until `locked_until`; the first attempt
/// after a lock has run out starts the count again. Returns the failures
/// counted so far (this attempt included) and the lock it set, if any.
pub(crate) async fn pin_attempt<C: Conn>(
    c: &mut C,
    customer_id: &str,
    at: Timestamp,
    lock_after: i64,
    locked_until: Timestamp,
) -> Result<Option<(i64, Option<Timestamp>)>, StoreError> {
    let rows = c
        .rows(
            "UPDATE customer_credentials SET \
               failures = CASE WHEN locked_until IS NULL THEN failures + 1 ELSE 1 END, \
               locked_until = CASE WHEN (CASE WHEN locked_until IS NULL THEN failures + 1 ELSE 1 END) >= $2 \
                 THEN $3 ELSE NULL END, \
               updated_at = $1 \
             WHERE customer_id = $4 AND (locked_until IS NULL OR locked_until <= $1) \
             RETURNING failures, locked_until",
            &[
                Arg::I64(at.unix_millis()),
                Arg::I64(lock_after),
                Arg::I64(locked_until.unix_millis()),
                Arg::Str(customer_id),
            ],
        )
        .await?;
    match rows.first() {
        Some(r) => Ok(Some((r.i64(0)?, opt_ts(r, 1)?))),
        None => Ok(None),
    }
}

pub(crate) async fn pin_refund<C: Conn>(
    c: &mut C,
    customer_id: &str,
    at: Timestamp,
    lift_lock: bool,
) -> Result<(), StoreError> {
    c.exec(
        "UPDATE customer_credentials SET failures = failures - 1, \
           locked_until = CASE WHEN $1 THEN NULL ELSE locked_until END, updated_at = $2 \
         WHERE customer_id = $3 AND failures > 0",
        &[
            Arg::Bool(lift_lock),
            Arg::I64(at.unix_millis()),
            Arg::Str(customer_id),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn pin_succeeded<C: Conn>(
    c: &mut C,
    customer_id: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    c.exec(
        "UPDATE customer_credentials SET failures = 0, locked_until = NULL, updated_at = $1 WHERE customer_id = $2",
        &[Arg::I64(at.unix_millis()), Arg::Str(customer_id)],
    )
    .await?;
    Ok(())
}
