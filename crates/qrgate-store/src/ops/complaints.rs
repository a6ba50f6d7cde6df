//! Complaints: filing and moving one (inside a movement), reading them,
//! and giving an aged instant refund back to its payer's cap.

use qrgate_core::complaint::{ComplaintReason, Resolution};
use qrgate_core::state::ComplaintStatus;
use qrgate_core::{CounterKey, Currency, Timestamp};

use crate::db::{Arg, Conn, Row};
use crate::error::{MovementError, StoreError};

use super::*;

macro_rules! complaint_columns {
    () => {
        "SELECT id, payment_id, merchant_id, customer_id, static_code_id, reason, description, amount_minor, currency, status, \
         resolution, instant, refunded_minor, due_at, resolve_by, first_response_at, escalated_at, resolved_at, \
         revisit_at, cap_released_at, processor_pending, version, created_at, updated_at FROM complaints "
    };
}

impl FromRow for Complaint {
    fn from_row(r: &Row) -> Result<Complaint, StoreError> {
        Ok(Complaint {
            id: r.str("id")?,
            payment_id: r.str("payment_id")?,
            merchant_id: r.str("merchant_id")?,
            customer_id: r.str("customer_id")?,
            static_code_id: r.opt_str("static_code_id")?,
            reason: parsed::<ComplaintReason>(&r.str("reason")?, "complaint reason")?,
            description: r.str("description")?,
            amount_minor: r.i64("amount_minor")?,
            currency: parsed::<Currency>(&r.str("currency")?, "currency")?,
            status: parsed::<ComplaintStatus>(&r.str("status")?, "complaint status")?,
            resolution: r
                .opt_str("resolution")?
                .map(|s| parsed::<Resolution>(&s, "complaint resolution"))
                .transpose()?,
            instant: r.bool("instant")?,
            refunded_minor: r.i64("refunded_minor")?,
            due_at: opt_ts(r, "due_at")?,
            resolve_by: ts(r, "resolve_by")?,
            first_response_at: opt_ts(r, "first_response_at")?,
            escalated_at: opt_ts(r, "escalated_at")?,
            resolved_at: opt_ts(r, "resolved_at")?,
            revisit_at: opt_ts(r, "revisit_at")?,
            cap_released_at: opt_ts(r, "cap_released_at")?,
            processor_pending: r.opt_str("processor_pending")?,
            version: r.i64("version")?,
            created_at: ts(r, "created_at")?,
            updated_at: ts(r, "updated_at")?,
        })
    }
}

impl FromRow for ComplaintStep {
    fn from_row(r: &Row) -> Result<ComplaintStep, StoreError> {
        Ok(ComplaintStep {
            complaint_id: r.str("complaint_id")?,
            seq: r.i64("seq")?,
            actor: r.str("actor")?,
            action: r.str("action")?,
            body: r.opt_str("body")?,
            amount_minor: r.opt_i64("amount_minor")?,
            created_at: ts(r, "created_at")?,
        })
    }
}

/// A movement's complaint write: the new complaint (refused while its
/// payment has one unresolved) or its move (refused unless it is still
/// where it was read), and the step that goes with it.
pub(crate) async fn write_complaint<C: Conn>(
    c: &mut C,
    w: &ComplaintWrite,
    at: i64,
) -> Result<(), MovementError> {
    match w {
        ComplaintWrite::File { complaint, step } => {
            file(c, complaint).await?;
            add_step(c, step).await
        }
        ComplaintWrite::Move(m) => {
            move_one(c, m, at).await?;
            add_step(c, &m.step).await
        }
        ComplaintWrite::SuspendCode {
            code_id,
            reporters,
            since,
        } => suspend_code(c, code_id, *reporters, *since, at).await,
    }
}

/// Suspend the static code when enough payers reported it, counted in the
/// statement that suspends it: on PostgreSQL a racing suspension waits for
/// the row and then finds it suspended, and each report's own suspension
/// runs after that report committed, so the last of several reports
/// arriving together sees them all.
async fn suspend_code<C: Conn>(
    c: &mut C,
    code_id: &str,
    reporters: i64,
    since: Timestamp,
    at: i64,
) -> Result<(), MovementError> {
    const SQL: &str = "UPDATE static_codes SET suspended_at = $1 \
         WHERE id = $2 AND suspended_at IS NULL AND revoked_at IS NULL \
         AND (SELECT COUNT(DISTINCT k.customer_id) FROM complaints k \
              JOIN payments p ON p.id = k.payment_id AND p.created_at >= $3 \
              WHERE k.static_code_id = $2 AND k.reason = 'code_tampered' AND k.created_at >= $3 \
              AND k.created_at > COALESCE(static_codes.reports_cleared_at, -1)) >= $4";
    let n = c
        .exec(
            SQL,
            &[
                Arg::I64(at),
                Arg::Str(code_id),
                Arg::I64(since.unix_millis()),
                Arg::I64(reporters),
            ],
        )
        .await?;
    if n == 0 {
        return Err(MovementError::CodeNotSuspended {
            code_id: code_id.to_owned(),
        });
    }
    Ok(())
}

macro_rules! photo_columns {
    () => {
        "SELECT complaint_id, seq, content_type, sha256, size_bytes, created_at FROM complaint_photos "
    };
}

impl FromRow for ComplaintPhoto {
    fn from_row(r: &Row) -> Result<ComplaintPhoto, StoreError> {
        Ok(ComplaintPhoto {
            complaint_id: r.str("complaint_id")?,
            seq: r.i64("seq")?,
            content_type: r.str("content_type")?,
            sha256: r.str("sha256")?,
            size_bytes: r.i64("size_bytes")?,
            created_at: ts(r, "created_at")?,
        })
    }
}

/// Add a photo to the unresolved complaint under its cap; `false` when
/// nothing was added (resolved, at the cap, or the same photo already
/// there: the caller reads again to tell which). The complaint's row is
/// locked first (PostgreSQL; SQLite has one writer), so uploads to one
/// complaint take their numbers one after another and a move resolving it
/// meanwhile is waited for and then seen; the number is one past the last,
/// and the primary key would refuse a second photo under it.
pub(crate) async fn add_photo<C: Conn>(
    c: &mut C,
    p: &NewPhoto,
    at: Timestamp,
) -> Result<bool, StoreError> {
    const SQL: &str = "INSERT INTO complaint_photos \
         (complaint_id, seq, content_type, sha256, size_bytes, bytes, created_at) \
         SELECT k.id, COALESCE(MAX(ph.seq), 0) + 1, $2, $3, $4, $5, $6 \
         FROM complaints k LEFT JOIN complaint_photos ph ON ph.complaint_id = k.id \
         WHERE k.id = $1 AND k.status <> 'resolved' \
         GROUP BY k.id HAVING COUNT(ph.seq) < $7 \
         ON CONFLICT DO NOTHING";
    if c.dialect() == crate::db::Dialect::Postgres {
        c.rows(
            "SELECT 1 FROM complaints WHERE id = $1 FOR UPDATE",
            &[Arg::Str(&p.complaint_id)],
        )
        .await?;
    }
    let size = i64::try_from(p.bytes.len()).unwrap_or(i64::MAX);
    let n = c
        .exec(
            SQL,
            &[
                Arg::Str(&p.complaint_id),
                Arg::Str(&p.content_type),
                Arg::Str(&p.sha256),
                Arg::I64(size),
                Arg::Bytes(&p.bytes),
                Arg::I64(at.unix_millis()),
                Arg::I64(p.max_photos),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// A complaint's photos, in order (without their bytes).
pub(crate) async fn complaint_photos<C: Conn>(
    c: &mut C,
    complaint_id: &str,
) -> Result<Vec<ComplaintPhoto>, StoreError> {
    c.rows(
        concat!(photo_columns!(), "WHERE complaint_id = $1 ORDER BY seq"),
        &[Arg::Str(complaint_id)],
    )
    .await?
    .iter()
    .map(ComplaintPhoto::from_row)
    .collect()
}

/// One photo of a complaint, with its bytes.
pub(crate) async fn complaint_photo<C: Conn>(
    c: &mut C,
    complaint_id: &str,
    seq: i64,
) -> Result<Option<(ComplaintPhoto, Vec<u8>)>, StoreError> {
    let rows = c
        .rows(
            "SELECT complaint_id, seq, content_type, sha256, size_bytes, created_at, bytes \
             FROM complaint_photos WHERE complaint_id = $1 AND seq = $2",
            &[Arg::Str(complaint_id), Arg::I64(seq)],
        )
        .await?;
    rows.first()
        .map(|r| Ok((ComplaintPhoto::from_row(r)?, r.bytes("bytes")?)))
        .transpose()
}

/// Live, unsuspended static codes that at least `reporters` payers
/// reported tampered since `since` (about payments made since then, and
/// after the operator last cleared the code): `(code, merchant)`, for the
/// sweeper to suspend if the write after a report did not.
pub(crate) async fn codes_due_for_suspension<C: Conn>(
    c: &mut C,
    since: Timestamp,
    reporters: i64,
    limit: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    c.rows(
        "SELECT sc.id, sc.merchant_id FROM complaints k \
         JOIN static_codes sc ON sc.id = k.static_code_id \
         JOIN payments p ON p.id = k.payment_id AND p.created_at >= $1 \
         WHERE k.reason = 'code_tampered' AND k.static_code_id IS NOT NULL AND k.created_at >= $1 \
         AND sc.suspended_at IS NULL AND sc.revoked_at IS NULL \
         AND k.created_at > COALESCE(sc.reports_cleared_at, -1) \
         GROUP BY sc.id, sc.merchant_id HAVING COUNT(DISTINCT k.customer_id) >= $2 \
         ORDER BY sc.id LIMIT $3",
        &[
            Arg::I64(since.unix_millis()),
            Arg::I64(reporters),
            Arg::I64(limit),
        ],
    )
    .await?
    .iter()
    .map(|r| Ok((r.str("id")?, r.str("merchant_id")?)))
    .collect()
}

/// The static codes suspended and not revoked (waiting for the operator),
/// oldest suspension first.
pub(crate) async fn suspended_static_codes<C: Conn>(
    c: &mut C,
    merchant_id: Option<&str>,
    limit: i64,
) -> Result<Vec<StaticCode>, StoreError> {
    c.rows(
        concat!(
            static_code_select!(),
            " WHERE suspended_at IS NOT NULL AND revoked_at IS NULL \
             AND ($1 IS NULL OR merchant_id = $1) ORDER BY suspended_at, id LIMIT $2"
        ),
        &[Arg::OptStr(merchant_id), Arg::I64(limit)],
    )
    .await?
    .iter()
    .map(StaticCode::from_row)
    .collect()
}

async fn file<C: Conn>(c: &mut C, k: &Complaint) -> Result<(), MovementError> {
    const SQL: &str = "INSERT INTO complaints (id, payment_id, merchant_id, customer_id, reason, description, \
         amount_minor, currency, status, resolution, instant, refunded_minor, due_at, resolve_by, \
         first_response_at, escalated_at, resolved_at, revisit_at, cap_released_at, version, created_at, updated_at, \
         processor_pending, static_code_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, \
         $23, $24) \
         ON CONFLICT DO NOTHING";
    let opt = |t: Option<Timestamp>| Arg::OptI64(t.map(|t| t.unix_millis()));
    let n = c
        .exec(
            SQL,
            &[
                Arg::Str(&k.id),
                Arg::Str(&k.payment_id),
                Arg::Str(&k.merchant_id),
                Arg::Str(&k.customer_id),
                Arg::Str(k.reason.as_str()),
                Arg::Str(&k.description),
                Arg::I64(k.amount_minor),
                Arg::Str(k.currency.code()),
                Arg::Str(k.status.as_str()),
                Arg::OptStr(k.resolution.map(|r| r.as_str())),
                Arg::Bool(k.instant),
                Arg::I64(k.refunded_minor),
                opt(k.due_at),
                Arg::I64(k.resolve_by.unix_millis()),
                opt(k.first_response_at),
                opt(k.escalated_at),
                opt(k.resolved_at),
                opt(k.revisit_at),
                opt(k.cap_released_at),
                Arg::I64(k.version),
                Arg::I64(k.created_at.unix_millis()),
                Arg::I64(k.updated_at.unix_millis()),
                Arg::OptStr(k.processor_pending.as_deref()),
                Arg::OptStr(k.static_code_id.as_deref()),
            ],
        )
        .await?;
    if n == 0 {
        return Err(MovementError::ComplaintOpen {
            payment_id: k.payment_id.clone(),
        });
    }
    Ok(())
}

async fn move_one<C: Conn>(c: &mut C, m: &ComplaintMove, at: i64) -> Result<(), MovementError> {
    // The first answer is kept; escalation and resolution are stamped once.
    const SQL: &str = "UPDATE complaints SET status = $1, resolution = COALESCE($2, resolution), due_at = $3, \
         revisit_at = $4, first_response_at = CASE WHEN $5 = 1 THEN COALESCE(first_response_at, $6) \
         ELSE first_response_at END, escalated_at = CASE WHEN $7 = 1 THEN COALESCE(escalated_at, $6) \
         ELSE escalated_at END, resolved_at = CASE WHEN $1 = 'resolved' THEN $6 ELSE resolved_at END, \
         refunded_minor = refunded_minor + $8, version = version + 1, updated_at = $6, \
         processor_pending = COALESCE($12, processor_pending), \
         processor_next_try_at = CASE WHEN $12 IS NULL THEN processor_next_try_at ELSE NULL END \
         WHERE id = $9 AND status = $10 AND version = $11 AND ($13 = 0 OR due_at IS NULL OR due_at >= $6) \
         AND ($12 IS NULL OR processor_pending IS NULL)";
    let n = c
        .exec(
            SQL,
            &[
                Arg::Str(m.to.as_str()),
                Arg::OptStr(m.resolution.map(|r| r.as_str())),
                Arg::OptI64(m.due_at.map(|t| t.unix_millis())),
                Arg::OptI64(m.revisit_at.map(|t| t.unix_millis())),
                Arg::I64(i64::from(m.responded)),
                Arg::I64(at),
                Arg::I64(i64::from(m.escalated)),
                Arg::I64(m.refunded_minor),
                Arg::Str(&m.id),
                Arg::Str(m.from.as_str()),
                Arg::I64(m.version),
                Arg::OptStr(m.processor_pending.as_deref()),
                Arg::I64(i64::from(m.within_due)),
            ],
        )
        .await?;
    if n == 0 {
        let now = complaint(c, &m.id).await?;
        if let Some(k) = &now
            && k.status == m.from
            && k.version == m.version
        {
            if let (Some(pending), Some(_)) = (&k.processor_pending, &m.processor_pending) {
                return Err(MovementError::ComplaintRefundPending {
                    id: m.id.clone(),
                    refund: pending.clone(),
                });
            }
            return Err(MovementError::ComplaintPastDue {
                id: m.id.clone(),
                due_at: k.due_at.unwrap_or(Timestamp::from_unix_millis(at)),
            });
        }
        return Err(MovementError::ComplaintMoved {
            id: m.id.clone(),
            actual: now.map(|k| k.status),
        });
    }
    Ok(())
}

async fn add_step<C: Conn>(c: &mut C, s: &ComplaintStep) -> Result<(), MovementError> {
    const SQL: &str = "INSERT INTO complaint_steps (complaint_id, seq, actor, action, body, amount_minor, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)";
    c.exec(
        SQL,
        &[
            Arg::Str(&s.complaint_id),
            Arg::I64(s.seq),
            Arg::Str(&s.actor),
            Arg::Str(&s.action),
            Arg::OptStr(s.body.as_deref()),
            Arg::OptI64(s.amount_minor),
            Arg::I64(s.created_at.unix_millis()),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn complaint<C: Conn>(
    c: &mut C,
    id: &str,
) -> Result<Option<Complaint>, StoreError> {
    const SQL: &str = concat!(complaint_columns!(), "WHERE id = $1");
    let rows = c.rows(SQL, &[Arg::Str(id)]).await?;
    rows.first().map(Complaint::from_row).transpose()
}

pub(crate) async fn complaint_steps<C: Conn>(
    c: &mut C,
    id: &str,
) -> Result<Vec<ComplaintStep>, StoreError> {
    const SQL: &str = "SELECT complaint_id, seq, actor, action, body, amount_minor, created_at \
         FROM complaint_steps WHERE complaint_id = $1 ORDER BY seq";
    let rows = c.rows(SQL, &[Arg::Str(id)]).await?;
    rows.iter().map(ComplaintStep::from_row).collect()
}

/// A page of complaints, newest first, and whether more follow.
pub(crate) async fn complaints<C: Conn>(
    c: &mut C,
    q: &ComplaintQuery,
) -> Result<(Vec<Complaint>, bool), StoreError> {
    const SQL: &str = concat!(
        complaint_columns!(),
        "WHERE ($1 IS NULL OR merchant_id = $1) AND ($2 IS NULL OR customer_id = $2) \
         AND ($3 IS NULL OR payment_id = $3) AND ($4 IS NULL OR $4 LIKE '%,' || status || ',%') \
         AND ($5 IS NULL OR created_at >= $5) AND ($6 IS NULL OR created_at < $6) \
         AND ($7 IS NULL OR created_at < $7 OR (created_at = $7 AND id < $8)) \
         ORDER BY created_at DESC, id DESC LIMIT $9"
    );
    let limit = q.limit.clamp(1, 1000);
    let (after_ts, after_id) = match &q.starting_after {
        Some(id) => match complaint(c, id).await? {
            Some(k) => (Some(k.created_at.unix_millis()), Some(k.id)),
            None => {
                return Err(StoreError::Corrupt(format!(
                    "starting_after: no complaint {id}"
                )));
            }
        },
        None => (None, None),
    };
    let statuses = (!q.statuses.is_empty()).then(|| {
        let names: Vec<&str> = q.statuses.iter().map(|s| s.as_str()).collect();
        format!(",{},", names.join(","))
    });
    let rows = c
        .rows(
            SQL,
            &[
                Arg::OptStr(q.merchant_id.as_deref()),
                Arg::OptStr(q.customer_id.as_deref()),
                Arg::OptStr(q.payment_id.as_deref()),
                Arg::OptStr(statuses.as_deref()),
                Arg::OptI64(q.created_gte.map(|t| t.unix_millis())),
                Arg::OptI64(q.created_lt.map(|t| t.unix_millis())),
                Arg::OptI64(after_ts),
                Arg::OptStr(after_id.as_deref()),
                Arg::I64(limit + 1),
            ],
        )
        .await?;
    let mut page = rows
        .iter()
        .map(Complaint::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let more = page.len() as i64 > limit;
    page.truncate(limit as usize);
    Ok((page, more))
}

/// Complaints whose party's time is up at `now`, the longest overdue
/// first, after the one `after` names (its `due_at` and id: a page's
/// cursor).
pub(crate) async fn complaints_due<C: Conn>(
    c: &mut C,
    now: Timestamp,
    after: Option<(Timestamp, &str)>,
    limit: i64,
) -> Result<Vec<Complaint>, StoreError> {
    const SQL: &str = concat!(
        complaint_columns!(),
        "WHERE due_at IS NOT NULL AND due_at <= $1 \
         AND ($2 IS NULL OR due_at > $2 OR (due_at = $2 AND id > $3)) ORDER BY due_at, id LIMIT $4"
    );
    let rows = c
        .rows(
            SQL,
            &[
                Arg::I64(now.unix_millis()),
                Arg::OptI64(after.map(|(t, _)| t.unix_millis())),
                Arg::OptStr(after.map(|(_, id)| id)),
                Arg::I64(limit),
            ],
        )
        .await?;
    rows.iter().map(Complaint::from_row).collect()
}

/// Complaints with a card refund the processor has not confirmed whose
/// next try is due at `now`, the longest waiting first.
pub(crate) async fn complaints_processor_pending<C: Conn>(
    c: &mut C,
    now: Timestamp,
    limit: i64,
) -> Result<Vec<Complaint>, StoreError> {
    const SQL: &str = concat!(
        complaint_columns!(),
        "WHERE processor_pending IS NOT NULL AND COALESCE(processor_next_try_at, 0) <= $1 \
         ORDER BY COALESCE(processor_next_try_at, 0), id LIMIT $2"
    );
    let rows = c
        .rows(SQL, &[Arg::I64(now.unix_millis()), Arg::I64(limit)])
        .await?;
    rows.iter().map(Complaint::from_row).collect()
}

/// The processor did not confirm refund `number` of complaint `id`: ask
/// again at `next`.
pub(crate) async fn defer_processor_retry<C: Conn>(
    c: &mut C,
    id: &str,
    number: &str,
    next: Timestamp,
) -> Result<bool, StoreError> {
    const SQL: &str = "UPDATE complaints SET processor_next_try_at = $3 \
         WHERE id = $1 AND processor_pending = $2";
    Ok(c.exec(
        SQL,
        &[Arg::Str(id), Arg::Str(number), Arg::I64(next.unix_millis())],
    )
    .await?
        == 1)
}

/// The processor confirmed the complaint's card refund `number`: nothing
/// is pending any more (unless a later refund of it is).
pub(crate) async fn clear_processor_pending<C: Conn>(
    c: &mut C,
    id: &str,
    number: &str,
) -> Result<bool, StoreError> {
    const SQL: &str = "UPDATE complaints SET processor_pending = NULL, processor_next_try_at = NULL \
         WHERE id = $1 AND processor_pending = $2";
    Ok(c.exec(SQL, &[Arg::Str(id), Arg::Str(number)]).await? == 1)
}

/// A payer's instant refunds filed before `before` that still count in
/// their cap.
pub(crate) async fn capped_instant_refunds<C: Conn>(
    c: &mut C,
    customer_id: &str,
    before: Timestamp,
) -> Result<Vec<Complaint>, StoreError> {
    const SQL: &str = concat!(
        complaint_columns!(),
        "WHERE customer_id = $1 AND instant AND cap_released_at IS NULL AND created_at < $2 \
         ORDER BY created_at LIMIT 100"
    );
    let rows = c
        .rows(
            SQL,
            &[Arg::Str(customer_id), Arg::I64(before.unix_millis())],
        )
        .await?;
    rows.iter().map(Complaint::from_row).collect()
}

/// Give one aged instant refund back to its payer's cap counter: the
/// complaint is marked first (once), then the counter is lowered by what
/// it charged. `false` when it was given back already.
pub(crate) async fn release_instant_cap<C: Conn>(
    c: &mut C,
    k: &Complaint,
    at: Timestamp,
) -> Result<bool, StoreError> {
    const MARK: &str = "UPDATE complaints SET cap_released_at = $1 \
         WHERE id = $2 AND instant AND cap_released_at IS NULL";
    // Never below zero: a counter restored or fixed by hand to less than
    // it charged gives back what it holds, and the payer is not refused
    // for good.
    const LOWER: &str = "UPDATE counters SET \
         amount_minor = CASE WHEN amount_minor >= $1 THEN amount_minor - $1 ELSE 0 END, \
         uses = CASE WHEN uses >= 1 THEN uses - 1 ELSE 0 END, updated_at = $3 \
         WHERE counter_key = $2";
    if c.exec(MARK, &[Arg::I64(at.unix_millis()), Arg::Str(&k.id)])
        .await?
        == 0
    {
        return Ok(false);
    }
    let key = CounterKey::instant_refunds(&k.customer_id);
    c.exec(
        LOWER,
        &[
            Arg::I64(k.amount_minor),
            Arg::Str(key.as_str()),
            Arg::I64(at.unix_millis()),
        ],
    )
    .await?;
    Ok(true)
}

/// Complaints waiting for the operator (escalated or contested) and not
/// parked past `now`, of one merchant or all, the nearest deadline first.
pub(crate) async fn complaints_to_decide<C: Conn>(
    c: &mut C,
    merchant_id: Option<&str>,
    (now, filed_before): (Timestamp, Timestamp),
    limit: i64,
) -> Result<Vec<Complaint>, StoreError> {
    const SQL: &str = concat!(
        complaint_columns!(),
        "WHERE status IN ('escalated', 'contested') AND ($1 IS NULL OR merchant_id = $1) \
         AND (revisit_at IS NULL OR revisit_at <= $2) AND created_at <= $4 ORDER BY resolve_by, id LIMIT $3"
    );
    let rows = c
        .rows(
            SQL,
            &[
                Arg::OptStr(merchant_id),
                Arg::I64(now.unix_millis()),
                Arg::I64(limit),
                Arg::I64(filed_before.unix_millis()),
            ],
        )
        .await?;
    rows.iter().map(Complaint::from_row).collect()
}

/// Complaints that say someone else took the payer's money (`not_authorised`,
/// `code_tampered`) filed at or after `since`, with no review decision yet,
/// of one merchant or all, oldest first.
pub(crate) async fn fraud_reports<C: Conn>(
    c: &mut C,
    merchant_id: Option<&str>,
    (since, until): (Timestamp, Timestamp),
    limit: i64,
) -> Result<Vec<Complaint>, StoreError> {
    const SQL: &str = concat!(
        complaint_columns!(),
        "WHERE reason IN ('not_authorised', 'code_tampered') AND created_at >= $1 AND created_at <= $4 \
         AND ($2 IS NULL OR merchant_id = $2) \
         AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.kind = 'fraud_report' AND r.subject_id = complaints.id) \
         ORDER BY created_at, id LIMIT $3"
    );
    let rows = c
        .rows(
            SQL,
            &[
                Arg::I64(since.unix_millis()),
                Arg::OptStr(merchant_id),
                Arg::I64(limit),
                Arg::I64(until.unix_millis()),
            ],
        )
        .await?;
    rows.iter().map(Complaint::from_row).collect()
}

/// Succeeded payments whose details name `flag_for_review`, made in
/// `[since, until]` after the `after` cursor, with no decision yet, of one
/// merchant or all, oldest first. The `LIKE` term is the partial index
/// `payments_flagged`'s (migration 0025), so only such payments are read;
/// the text may also come from a merchant's metadata, so the caller keeps
/// only payments whose checks flagged them.
pub(crate) async fn flagged_payments<C: Conn>(
    c: &mut C,
    merchant_id: Option<&str>,
    (since, until): (Timestamp, Timestamp),
    after: Option<(Timestamp, &str)>,
    limit: i64,
) -> Result<Vec<Payment>, StoreError> {
    const SQL: &str = concat!(
        payment_columns!(),
        "WHERE details LIKE '%flag_for_review%' AND created_at >= $1 AND created_at <= $4 \
         AND status = 'succeeded' AND ($2 IS NULL OR merchant_id = $2) \
         AND ($5 IS NULL OR created_at > $5 OR (created_at = $5 AND id > $6)) \
         AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.kind = 'payment' AND r.subject_id = payments.id) \
         ORDER BY created_at, id LIMIT $3"
    );
    let rows = c
        .rows(
            SQL,
            &[
                Arg::I64(since.unix_millis()),
                Arg::OptStr(merchant_id),
                Arg::I64(limit),
                Arg::I64(until.unix_millis()),
                Arg::OptI64(after.map(|(t, _)| t.unix_millis())),
                Arg::OptStr(after.map(|(_, id)| id)),
            ],
        )
        .await?;
    rows.iter().map(Payment::from_row).collect()
}

/// How many payments succeeded in `[from, to)` (of one merchant, or all):
/// the base of the complaint rate.
pub(crate) async fn succeeded_payments<C: Conn>(
    c: &mut C,
    merchant_id: Option<&str>,
    from: Timestamp,
    to: Timestamp,
) -> Result<i64, StoreError> {
    const SQL: &str = "SELECT COUNT(*) AS n FROM payments WHERE ($1 IS NULL OR merchant_id = $1) \
         AND created_at >= $2 AND created_at < $3 AND status = 'succeeded'";
    let rows = c
        .rows(
            SQL,
            &[
                Arg::OptStr(merchant_id),
                Arg::I64(from.unix_millis()),
                Arg::I64(to.unix_millis()),
            ],
        )
        .await?;
    rows.first()
        .ok_or_else(unexpected_none)?
        .i64("n")
        .map_err(Into::into)
}
