//! The outbox and webhook endpoints and deliveries (claims, attempts).

use qrgate_core::Timestamp;
use qrgate_core::state::DeliveryStatus;

use crate::db::{Arg, Conn, Dialect, Row};
use crate::error::{MovementError, StoreError};

use super::*;

macro_rules! outbox_columns {
    () => {
        "SELECT seq, event_id, event_type, subject_id, payload, created_at, delivered_at FROM outbox "
    };
}

pub(crate) async fn outbox_pending<C: Conn>(
    c: &mut C,
    limit: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    let rows = c
        .rows(
            concat!(
                outbox_columns!(),
                "WHERE delivered_at IS NULL ORDER BY seq LIMIT $1"
            ),
            &[Arg::I64(limit)],
        )
        .await?;
    rows.iter().map(OutboxRow::from_row).collect()
}

impl FromRow for OutboxRow {
    fn from_row(r: &Row) -> Result<OutboxRow, StoreError> {
        Ok(OutboxRow {
            seq: r.i64("seq")?,
            event_id: r.str("event_id")?,
            event_type: r.str("event_type")?,
            subject_id: r.str("subject_id")?,
            payload: json(&r.str("payload")?)?,
            created_at: ts(r, "created_at")?,
            delivered_at: r.opt_i64("delivered_at")?.map(Timestamp::from_unix_millis),
        })
    }
}

/// A merchant's events, newest first, after a cursor (the `seq` of the
/// last one of the previous page), of one type and in a time range.
pub(crate) async fn events_of<C: Conn>(
    c: &mut C,
    q: &EventQuery,
) -> Result<Vec<OutboxRow>, StoreError> {
    let rows = c
        .rows(
            concat!(
                outbox_columns!(),
                "WHERE merchant_id = $1 AND ($2 IS NULL OR seq < $2) AND ($3 IS NULL OR event_type = $3) \
                 AND ($4 IS NULL OR created_at >= $4) AND ($5 IS NULL OR created_at < $5) \
                 ORDER BY seq DESC LIMIT $6"
            ),
            &[
                Arg::Str(&q.merchant_id),
                Arg::OptI64(q.before_seq),
                Arg::OptStr(q.event_type.as_deref()),
                Arg::OptI64(q.created_gte.map(|t| t.unix_millis())),
                Arg::OptI64(q.created_lt.map(|t| t.unix_millis())),
                Arg::I64(q.limit),
            ],
        )
        .await?;
    rows.iter().map(OutboxRow::from_row).collect()
}

/// The `seq` of an event of a merchant's, by its id.
pub(crate) async fn event_seq<C: Conn>(
    c: &mut C,
    merchant_id: &str,
    event_id: &str,
) -> Result<Option<i64>, StoreError> {
    let rows = c
        .rows(
            "SELECT seq FROM outbox WHERE event_id = $1 AND merchant_id = $2",
            &[Arg::Str(event_id), Arg::Str(merchant_id)],
        )
        .await?;
    Ok(rows.first().map(|r| r.i64("seq")).transpose()?)
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
                id: r.str("id")?,
                merchant_id: r.str("merchant_id")?,
                url: r.str("url")?,
                secret: r.str("secret")?,
                created_at: ts(r, "created_at")?,
                disabled_at: opt_ts(r, "disabled_at")?,
                previous_secret: r.opt_str("previous_secret")?,
                previous_until: opt_ts(r, "previous_until")?,
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
                    "SELECT CAST(COUNT(*) AS BIGINT) AS live FROM webhook_endpoints WHERE merchant_id = $1 AND deleted_at IS NULL",
                    &[Arg::Str(&endpoint.merchant_id)],
                )
                .await?;
            let live = live.first().map(|r| r.i64("live")).transpose()?.unwrap_or(0);
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
pub(super) fn pg_array(v: &[i64]) -> String {
    let items: Vec<String> = v.iter().map(i64::to_string).collect();
    format!("{{{}}}", items.join(","))
}

impl FromRow for WebhookDelivery {
    fn from_row(r: &Row) -> Result<WebhookDelivery, StoreError> {
        Ok(WebhookDelivery {
            id: r.i64("id")?,
            endpoint_id: r.str("endpoint_id")?,
            merchant_id: r.str("merchant_id")?,
            event_id: r.str("event_id")?,
            event_type: r.str("event_type")?,
            body: r.str("body")?,
            status: parsed(&r.str("status")?, "delivery status")?,
            attempts: r.i64("attempts")?,
            next_attempt_at: ts(r, "next_attempt_at")?,
            last_status_code: r.opt_i64("last_status_code")?,
            last_error: r.opt_str("last_error")?,
            created_at: ts(r, "created_at")?,
            delivered_at: opt_ts(r, "delivered_at")?,
        })
    }
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
    rows.iter().map(WebhookDelivery::from_row).collect()
}

pub(crate) async fn deliveries_of<C: Conn>(
    c: &mut C,
    endpoint_id: &str,
    created: (Option<Timestamp>, Option<Timestamp>),
    limit: i64,
) -> Result<Vec<WebhookDelivery>, StoreError> {
    let (gte, lt) = created;
    let rows = c
        .rows(
            concat!(
                delivery_select!(),
                " WHERE endpoint_id = $1 AND ($2 IS NULL OR created_at >= $2) AND ($3 IS NULL OR created_at < $3) \
                 ORDER BY id DESC LIMIT $4"
            ),
            &[
                Arg::Str(endpoint_id),
                Arg::OptI64(gte.map(Timestamp::unix_millis)),
                Arg::OptI64(lt.map(Timestamp::unix_millis)),
                Arg::I64(limit),
            ],
        )
        .await?;
    rows.iter().map(WebhookDelivery::from_row).collect()
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
    rows.first().map(WebhookDelivery::from_row).transpose()
}

pub(crate) async fn record_attempt<C: Conn>(
    c: &mut C,
    a: &AttemptResult,
) -> Result<bool, StoreError> {
    let delivered_at = (a.status == DeliveryStatus::Delivered).then_some(a.at.unix_millis());
    Ok(c
        .exec(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, status = $1, next_attempt_at = $2, last_status_code = $3, \
             last_error = $4, delivered_at = $5 WHERE id = $6 AND status = 'pending' AND next_attempt_at = $7",
            &[
                Arg::Str(a.status.as_str()),
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
