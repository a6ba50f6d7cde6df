//! The movement algorithm: apply one `Movement` step by step in the
//! caller's transaction (statements from [`crate::steps`]), name a refusal,
//! and the rows written once with it.

use crate::db::{Conn, Dialect};
use crate::error::{CapUnit, MovementError, StoreError};
use crate::steps;
use crate::write::Prepared;

use super::*;

/// Apply a movement inside an open transaction (or savepoint). On `Err`
/// the caller must roll back. The order is the lock order: the caller's
/// key, the idempotency record (a replay stops there), the parties and
/// codes that must still be live, burns and counters (sorted by key), the
/// payment's own guard, the posting (accounts sorted by id), then the rows
/// that only get written.
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

    if let Some(rec) = &m.idempotency
        && let Some(replayed) = claim_idempotency(c, rec, at).await?
    {
        return Ok(replayed);
    }
    still_live(c, m).await?;
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
        post(c, p, at).await?;
    }
    write_rows(c, m, texts, at).await
}

/// Write the idempotency record; when its key was seen before, the stored
/// answer (same request) or the refusal (another request under that key).
async fn claim_idempotency<C: Conn>(
    c: &mut C,
    rec: &IdempotencyRecord,
    at: i64,
) -> Result<Option<Applied>, MovementError> {
    let (sql, args) = steps::alone(|q| steps::idempotency(q, rec, at));
    if c.exec(sql, &args).await? == 0 {
        let stored = idempotency(c, &rec.scope, &rec.key).await?;
        return match stored {
            Some(s) if s.request_hash == rec.request_hash => Ok(Some(Applied::Replayed {
                status: s.response_status,
                body: s.response_body,
            })),
            _ => Err(MovementError::IdempotencyKeyReused {
                scope: rec.scope.clone(),
                key: rec.key.clone(),
            }),
        };
    }
    Ok(None)
}

/// The device, the static code and the parties the movement names are
/// still live (checked with the writes, not before them).
async fn still_live<C: Conn>(c: &mut C, m: &Movement) -> Result<(), MovementError> {
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
            let suspended = super::static_code(c, code_id)
                .await?
                .is_some_and(|sc| sc.revoked_at.is_none() && sc.suspended_at.is_some());
            let code_id = code_id.clone();
            return Err(if suspended {
                MovementError::CodeSuspended { code_id }
            } else {
                MovementError::CodeRevoked { code_id }
            });
        }
    }

    if let Some(account) = &m.day_open {
        let (sql, args) = steps::alone(|q| steps::day_open(q, account, m.at.unix_millis(), lock));
        if c.rows(sql, &args).await?.is_empty() {
            let closed = super::account(c, account.as_str()).await?;
            return Err(match closed {
                None => MovementError::UnknownAccount {
                    account_id: account.clone(),
                },
                Some(a) => MovementError::DayClosed {
                    account_id: a.id,
                    closed_until: a.closed_until.unwrap_or(m.at),
                },
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
            .map(|r| r.str("subject_id"))
            .collect::<Result<Vec<_>, _>>()?;
        // The first party named that is blocked, whatever order the rows came in.
        if let Some(subject) = m.unblocked.iter().find(|s| blocked.contains(s)) {
            return Err(MovementError::PartyBlocked {
                subject_id: subject.clone(),
            });
        }
    }

    Ok(())
}

/// Move the balances (accounts in id order), then write the posting and
/// its entries.
pub(super) async fn post<C: Conn>(c: &mut C, p: &Posting, at: i64) -> Result<(), MovementError> {
    p.check_balanced().map_err(MovementError::Invalid)?;
    let mut entries: Vec<&Entry> = p.entries.iter().collect();
    entries.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    for e in &entries {
        move_balance(c, e, at).await?;
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
    Ok(())
}

/// The rows a movement only writes (each refused only when its key is
/// taken or its state moved on): order, refund, complaint, events,
/// records, audit.
async fn write_rows<C: Conn>(
    c: &mut C,
    m: &Movement,
    texts: &crate::write::Texts,
    at: i64,
) -> Result<Applied, MovementError> {
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

    if let Some(w) = &m.complaint {
        super::write_complaint(c, w, at).await?;
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

pub(super) async fn charge_counter<C: Conn>(
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
    let exceeded =
        |unit: CapUnit, current: i64, amount: i64, cap: i64| MovementError::LimitExceeded {
            rule: ch.rule.clone(),
            key: ch.key.clone(),
            unit,
            current,
            amount,
            cap,
        };
    if ch.amount_minor > cap_amount {
        return Err(exceeded(
            CapUnit::MinorUnits,
            0,
            ch.amount_minor,
            cap_amount,
        ));
    }
    if ch.uses > cap_uses {
        return Err(exceeded(CapUnit::Uses, 0, ch.uses, cap_uses));
    }
    let (sql, args) = steps::alone(|q| steps::counter_charge(q, ch, at));
    if c.exec(sql, &args).await? == 0 {
        let current = counter(c, ch.key.as_str()).await?;
        return Err(if current.1.saturating_add(ch.uses) > cap_uses {
            exceeded(CapUnit::Uses, current.1, ch.uses, cap_uses)
        } else {
            exceeded(CapUnit::MinorUnits, current.0, ch.amount_minor, cap_amount)
        });
    }
    Ok(())
}

pub(super) async fn move_balance<C: Conn>(
    c: &mut C,
    e: &Entry,
    at: i64,
) -> Result<(), MovementError> {
    let (sql, args) = steps::alone(|q| steps::move_balance(q, e, at));
    if c.exec(sql, &args).await? == 1 {
        return Ok(());
    }
    match account(c, e.account_id.as_str()).await? {
        None => Err(MovementError::UnknownAccount {
            account_id: e.account_id.clone(),
        }),
        Some(a) if a.currency != e.currency => Err(MovementError::CurrencyMismatch {
            account_id: a.id,
            account_currency: a.currency,
            entry_currency: e.currency,
        }),
        Some(a) if a.closed_until.is_some_and(|t| t.unix_millis() > at) => {
            Err(MovementError::DayClosed {
                account_id: a.id,
                closed_until: a.closed_until.unwrap_or(Timestamp::from_unix_millis(at)),
            })
        }
        Some(a) if e.amount_minor > 0 || a.allow_negative => {
            Err(MovementError::BalanceOverflow { account_id: a.id })
        }
        Some(a) => Err(MovementError::InsufficientFunds { account_id: a.id }),
    }
}

/// The merchant's number is taken by its other kind of row (a payment's by
/// an order, an order's by a payment): the trigger of migration 0017
/// refused the insert (QG002 on PostgreSQL, its message on SQLite).
pub(crate) fn number_taken(e: &crate::error::DbError) -> bool {
    e.raised("QG002", "out_trade_no_taken")
}

/// `details` is the text of the JSON the write carries ([`Prepared`]).
pub(super) async fn write_payment<C: Conn>(
    c: &mut C,
    w: &PaymentWrite,
    details: Option<&str>,
    at: i64,
) -> Result<(), MovementError> {
    if w.carries_details() && details.is_none() {
        // Never write a payment with empty details, even if the texts were wrong.
        return Err(MovementError::Invalid(format!(
            "payment {} has no prepared details",
            w.payment_id()
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
    let id = w.payment_id();
    let now = payment(c, id).await?;
    Err(match (w, now) {
        (PaymentWrite::Insert(p), Some(_)) => MovementError::DuplicatePayment { id: p.id.clone() },
        (PaymentWrite::Insert(p), None) => MovementError::DuplicateOutTradeNo {
            out_trade_no: p.out_trade_no.clone().unwrap_or_default(),
        },
        (_, None) => MovementError::PaymentNotFound { id: id.into() },
        (PaymentWrite::Transition { from, .. }, Some(p)) if p.status != *from => {
            MovementError::PaymentStateConflict {
                id: id.into(),
                expected: *from,
                actual: p.status,
            }
        }
        (PaymentWrite::Transition { .. }, Some(p)) => MovementError::PaymentHasRefunds {
            id: id.into(),
            refunded_minor: p.refunded_minor,
        },
        (PaymentWrite::AddRefunded { status, .. }, Some(p)) if p.status != *status => {
            MovementError::PaymentStateConflict {
                id: id.into(),
                expected: *status,
                actual: p.status,
            }
        }
        (
            PaymentWrite::AddRefunded {
                refunded_before, ..
            },
            Some(p),
        ) if p.refunded_minor != *refunded_before => MovementError::RefundedMeanwhile {
            id: id.into(),
            refunded_minor: p.refunded_minor,
        },
        (PaymentWrite::AddRefunded { .. }, Some(_)) => {
            MovementError::RefundExceedsCaptured { id: id.into() }
        }
    })
}

/// Insert a row written once; `AlreadyExists` when its key (or a unique
/// column) is taken, or its merchant number is taken by the other kind of
/// row (an order's by a payment: migration 0017's trigger).
pub(crate) async fn insert<C: Conn>(c: &mut C, rec: &Record) -> Result<(), StoreError> {
    let table = rec.table();
    let (sql, args) = table.insert();
    let n = c
        .exec(sql, &args)
        .await
        .or_else(|e| if number_taken(&e) { Ok(0) } else { Err(e) })?;
    if n == 0 {
        return Err(StoreError::AlreadyExists(table.named()));
    }
    Ok(())
}

pub(crate) async fn ledger_ping<C: Conn>(c: &mut C) -> Result<(), StoreError> {
    c.rows("SELECT seq FROM audit_head WHERE id = 1", &[])
        .await?;
    Ok(())
}
