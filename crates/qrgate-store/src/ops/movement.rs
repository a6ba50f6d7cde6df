//! The movement algorithm: apply one `Movement` step by step in the
//! caller's transaction (statements from [`crate::steps`]), name a refusal,
//! and the rows written once with it.

use crate::db::{Arg, Conn, Dialect};
use crate::error::{CapUnit, MovementError, StoreError};
use crate::steps;
use crate::write::Prepared;

use super::*;

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

pub(super) async fn move_balance<C: Conn>(c: &mut C, e: &Entry) -> Result<(), MovementError> {
    let (sql, args) = steps::alone(|q| steps::move_balance(q, e));
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
        (PaymentWrite::AddRefunded { .. }, Some(_)) => {
            MovementError::RefundExceedsCaptured { id: id.into() }
        }
    })
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
                    Arg::Str(m.currency.code()),
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
                    Arg::Str(d.status.as_str()),
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
                &[Arg::Str(&x.id), Arg::Str(&x.customer_id), Arg::Str(&x.public_key), Arg::Str(x.status.as_str()), Arg::I64(x.created_at.unix_millis())],
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
                    Arg::Str(o.currency.code()),
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

pub(crate) async fn create_account<C: Conn>(c: &mut C, a: &Account) -> Result<(), StoreError> {
    let n = c
        .exec(
            "INSERT INTO accounts (id, kind, owner_id, currency, allow_negative, balance_minor, created_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT DO NOTHING",
            &[
                Arg::Str(a.id.as_str()),
                Arg::Str(&a.kind),
                Arg::OptStr(a.owner_id.as_deref()),
                Arg::Str(a.currency.code()),
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

pub(crate) async fn ledger_ping<C: Conn>(c: &mut C) -> Result<(), StoreError> {
    c.rows("SELECT seq FROM audit_head WHERE id = 1", &[])
        .await?;
    Ok(())
}
