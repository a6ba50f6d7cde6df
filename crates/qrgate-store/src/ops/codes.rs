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
    rows.first().map(static_code_from).transpose()
}

pub(super) fn static_code_from(r: &Row) -> Result<StaticCode, StoreError> {
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

pub(super) fn order_from(r: &Row) -> Result<Order, StoreError> {
    Ok(Order {
        id: r.str(0)?,
        merchant_id: r.str(1)?,
        amount_minor: r.i64(2)?,
        currency: parsed(&r.str(3)?, "currency")?,
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
