//! The store's statements, written once for both databases over [`Conn`],
//! one module per area: the movement algorithm (`movement`, its statements
//! in [`crate::steps`]), the audit chain (`chain`), payments and counters
//! (`payments`), parties and credentials (`parties`), merchant codes and
//! orders (`codes`), keys and secrets (`keys`), the outbox and webhooks
//! (`webhooks`); the row readers they share are here.
//!
//! Every check that guards money is a conditional write on the row it guards (an upsert with a `WHERE`, an `UPDATE … WHERE`),
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

use crate::db::{Conn, Dialect, Row};
use crate::error::{DbError, StoreError};
use crate::model::*;

/// The columns of a delivery, in `WebhookDelivery::from_row` order.
macro_rules! delivery_select {
    () => {
        "SELECT id, endpoint_id, merchant_id, event_id, event_type, body, status, attempts, next_attempt_at, \
         last_status_code, last_error, created_at, delivered_at FROM webhook_deliveries"
    };
}

/// The columns of a static code, in `StaticCode::from_row` order.
macro_rules! static_code_select {
    () => {
        "SELECT id, merchant_id, payload, created_at, revoked_at, suspended_at, reports_cleared_at FROM static_codes"
    };
}

/// The columns of an order, in `Order::from_row` order.
macro_rules! order_select {
    () => {
        "SELECT id, merchant_id, amount_minor, currency, reference, out_trade_no, status, payload, payment_id, expires_at, \
         created_at, updated_at, metadata FROM orders"
    };
}

macro_rules! payment_columns {
    () => {
        "SELECT id, merchant_id, customer_id, status, amount_minor, currency, refunded_minor, out_trade_no, \
         fee_minor, details, created_at, updated_at FROM payments "
    };
}

/// The columns of a device, in `Device::from_row` order.
macro_rules! device_select {
    () => {
        "SELECT id, customer_id, kid, public_key, status, created_at, enrolled_by, biometric_at FROM devices "
    };
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

/// A record read from one result row, by column name. The `SELECT` that
/// feeds it names the columns (the `*_select!` macros above); the order of
/// the columns does not matter.
pub(crate) trait FromRow: Sized {
    fn from_row(r: &Row) -> Result<Self, StoreError>;
}

pub(crate) fn ts(r: &Row, col: &str) -> Result<Timestamp, DbError> {
    Ok(Timestamp::from_unix_millis(r.i64(col)?))
}

pub(crate) fn json(text: &str) -> Result<serde_json::Value, StoreError> {
    typed_json(text)
}

/// A JSON column read as the type it holds.
pub(crate) fn typed_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
}

/// A metadata column (JSON object text, NULL when there is none).
pub(crate) fn metadata(r: &Row, col: &str) -> Result<qrgate_core::Metadata, StoreError> {
    qrgate_core::Metadata::from_column(r.opt_str(col)?.as_deref())
        .map_err(|e| StoreError::Corrupt(format!("stored {col}: {e}")))
}

/// A text column that names a value of a closed set (a status, a currency).
pub(crate) fn parsed<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("stored {what} {text:?} is unknown")))
}

pub(crate) fn opt_ts(r: &Row, col: &str) -> Result<Option<Timestamp>, DbError> {
    Ok(r.opt_i64(col)?.map(Timestamp::from_unix_millis))
}

pub(crate) fn unexpected_none() -> StoreError {
    StoreError::Corrupt("an aggregate query returned no row".into())
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

mod chain;
mod codes;
mod complaints;
mod keys;
mod movement;
mod parties;
mod payments;
mod payouts;
mod reconcile;
mod settlement;
mod statements;
mod tables;
mod web;
mod webhooks;

pub(crate) use chain::*;
pub(crate) use codes::*;
pub(crate) use complaints::*;
pub(crate) use keys::*;
pub(crate) use movement::*;
pub(crate) use parties::*;
pub(crate) use payments::*;
pub(crate) use payouts::*;
pub use reconcile::{CardMovement, CardMovementPage};
pub(crate) use reconcile::{card_movements, card_movements_of};
pub(crate) use settlement::*;
pub use statements::{FundRow, StatementPage, TradeRow};
pub(crate) use statements::{fund_rows, opening_balances, trade_rows};
pub(crate) use web::*;
pub(crate) use webhooks::*;
