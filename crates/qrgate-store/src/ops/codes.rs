//! Merchant codes and orders, and issued consumer codes.

use qrgate_core::Timestamp;

use crate::db::{Arg, Conn, Row};
use crate::error::StoreError;

use super::*;

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
    rows.first().map(StaticCode::from_row).transpose()
}

pub(crate) async fn static_codes_of<C: Conn>(
    c: &mut C,
    merchant_id: &str,
    limit: i64,
) -> Result<Vec<StaticCode>, StoreError> {
    c.rows(
        concat!(
            static_code_select!(),
            " WHERE merchant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        ),
        &[Arg::Str(merchant_id), Arg::I64(limit)],
    )
    .await?
    .iter()
    .map(StaticCode::from_row)
    .collect()
}

impl FromRow for StaticCode {
    fn from_row(r: &Row) -> Result<StaticCode, StoreError> {
        Ok(StaticCode {
            id: r.str("id")?,
            merchant_id: r.str("merchant_id")?,
            payload: r.str("payload")?,
            created_at: ts(r, "created_at")?,
            revoked_at: opt_ts(r, "revoked_at")?,
            suspended_at: opt_ts(r, "suspended_at")?,
            reports_cleared_at: opt_ts(r, "reports_cleared_at")?,
        })
    }
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
        .map(StaticCode::from_row)
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
    let orders = rows.iter().map(Order::from_row).collect::<Result<_, _>>()?;
    Ok((codes, orders))
}

impl FromRow for Order {
    fn from_row(r: &Row) -> Result<Order, StoreError> {
        Ok(Order {
            id: r.str("id")?,
            merchant_id: r.str("merchant_id")?,
            amount_minor: r.i64("amount_minor")?,
            currency: parsed(&r.str("currency")?, "currency")?,
            reference: r.str("reference")?,
            out_trade_no: r.opt_str("out_trade_no")?,
            status: r.str("status")?,
            payload: r.str("payload")?,
            payment_id: r.opt_str("payment_id")?,
            metadata: metadata(r, "metadata")?,
            expires_at: ts(r, "expires_at")?,
            created_at: ts(r, "created_at")?,
            updated_at: ts(r, "updated_at")?,
        })
    }
}

pub(crate) async fn order<C: Conn>(c: &mut C, id: &str) -> Result<Option<Order>, StoreError> {
    let rows = c
        .rows(concat!(order_select!(), " WHERE id = $1"), &[Arg::Str(id)])
        .await?;
    rows.first().map(Order::from_row).transpose()
}

/// A merchant's order carrying its own number `out_trade_no`.
pub(crate) async fn order_by_number<C: Conn>(
    c: &mut C,
    merchant_id: &str,
    out_trade_no: &str,
) -> Result<Option<Order>, StoreError> {
    let rows = c
        .rows(
            concat!(
                order_select!(),
                " WHERE merchant_id = $1 AND out_trade_no = $2"
            ),
            &[Arg::Str(merchant_id), Arg::Str(out_trade_no)],
        )
        .await?;
    rows.first().map(Order::from_row).transpose()
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
    rows.iter().map(Order::from_row).collect()
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
                code: r.str("code")?,
                customer_id: r.str("customer_id")?,
                device_id: r.opt_str("device_id")?,
                expires_at: ts(r, "expires_at")?,
                created_at: ts(r, "created_at")?,
            })
        })
        .transpose()
}
