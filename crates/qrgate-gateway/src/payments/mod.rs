//! Paying: consumer-presented codes charged by the merchant (`cpm`),
//! merchant codes scanned and paid by the consumer (`mpm`), the settling of
//! either into one movement (`settle`), the codes and who pays with them
//! (`codes`), and reading payments (here). Refunds and cancels are in
//! [`crate::refunds`], confirmations of a waiting payment in
//! [`crate::stepup`].

mod codes;
mod cpm;
mod mpm;
mod settle;

pub use codes::PaymentCodeView;
pub use mpm::CodeVerification;

use serde::{Deserialize, Serialize};

use qrgate_store::*;

use qrgate_core::Timestamp;
use qrgate_core::state::PaymentStatus;

use crate::views::PaymentView;
use crate::{Error, Gateway, Principal, Role};

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// The id of the last payment of the previous page.
    pub starting_after: Option<String>,
    /// Only payments in this status.
    pub status: Option<String>,
    /// Only the payment with this merchant number (a merchant's own
    /// `out_trade_no`, unique per merchant): the charge that carried it, or
    /// the payment that paid the order that carries it.
    pub out_trade_no: Option<String>,
    /// Only payments made at or after this time (RFC 3339).
    pub created_gte: Option<String>,
    /// Only payments made before this time (RFC 3339).
    pub created_lt: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"object": "list", "data": [], "has_more": false}))]
pub struct PaymentList {
    pub object: &'static str,
    pub data: Vec<PaymentView>,
    pub has_more: bool,
}

impl<S: Store> Gateway<S> {
    /// Load a payment the principal may see; others' payments answer 404
    /// exactly like missing ones (rule QG-TENANCY).
    pub async fn payment_for(&self, p: &Principal, id: &str) -> Result<Payment, Error> {
        let pay = self
            .store
            .payment(id)
            .await?
            .ok_or_else(|| Error::not_found("payment", id))?;
        let visible = match p.role {
            Role::Admin | Role::Auditor => true,
            Role::Merchant => p.subject.as_deref() == Some(pay.merchant_id.as_str()),
            Role::Consumer => p.subject.is_some() && p.subject == pay.customer_id,
        };
        if !visible {
            return Err(Error::not_found("payment", id));
        }
        Ok(pay)
    }

    pub async fn get_payment(&self, p: &Principal, id: &str) -> Result<PaymentView, Error> {
        Ok(PaymentView::of(&self.payment_for(p, id).await?, p.role))
    }

    /// The merchant's takings over `[from, to)`: how many payments
    /// succeeded and their amounts added up (before refunds).
    pub async fn takings(
        &self,
        p: &Principal,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<(i64, String), Error> {
        let merchant = p.merchant()?;
        let (n, minor) = self.store.payment_totals(merchant, from, to).await?;
        Ok((n, crate::views::amount(minor, crate::CURRENCY)))
    }

    pub async fn list_payments(&self, p: &Principal, q: ListQuery) -> Result<PaymentList, Error> {
        let (created_gte, created_lt) =
            created_range(q.created_gte.as_deref(), q.created_lt.as_deref())?;
        let mut query = PaymentQuery {
            limit: q.limit.unwrap_or(20),
            status: q.status.map(|s| checked_status(&s)).transpose()?,
            created_gte,
            created_lt,
            ..Default::default()
        };
        if let Some(n) = q.out_trade_no {
            crate::check_merchant_number("out_trade_no", &n)?;
            query.out_trade_no = Some(n);
        }
        if !(1..=100).contains(&query.limit) {
            return Err(Error::bad_request(
                "invalid_request",
                "limit must be 1 to 100",
            ));
        }
        match p.role {
            Role::Merchant => query.merchant_id = p.subject.clone(),
            Role::Consumer => query.customer_id = p.subject.clone(),
            Role::Admin | Role::Auditor => {}
        }
        if let Some(after) = &q.starting_after {
            // The cursor must be a payment this principal can see.
            self.payment_for(p, after).await?;
            query.starting_after = Some(after.clone());
        }
        let (rows, has_more) = self.store.list_payments(query).await?;
        Ok(PaymentList {
            object: "list",
            data: rows.iter().map(|r| PaymentView::of(r, p.role)).collect(),
            has_more,
        })
    }
}

/// A status filter names a payment status.
fn checked_status(s: &str) -> Result<String, Error> {
    s.parse::<PaymentStatus>().map(|p| p.as_str().to_owned()).map_err(|_| {
        Error::bad_request(
            "invalid_request",
            format!("status {s:?} is not a payment status (requires_action, confirming, succeeded, failed, canceled)"),
        )
    })
}

/// A list's time range `[created_gte, created_lt)`: each end an RFC 3339
/// time or open, the start before the end.
pub(crate) fn created_range(
    created_gte: Option<&str>,
    created_lt: Option<&str>,
) -> Result<(Option<Timestamp>, Option<Timestamp>), Error> {
    let gte = created_gte
        .map(|t| time_filter("created_gte", t))
        .transpose()?;
    let lt = created_lt
        .map(|t| time_filter("created_lt", t))
        .transpose()?;
    if let (Some(a), Some(b)) = (gte, lt)
        && a >= b
    {
        return Err(Error::bad_request(
            "invalid_request",
            "created_gte must be before created_lt",
        ));
    }
    Ok((gte, lt))
}

/// A time filter is an RFC 3339 time.
pub(crate) fn time_filter(field: &str, v: &str) -> Result<Timestamp, Error> {
    Timestamp::parse_rfc3339(v).ok_or_else(|| {
        Error::bad_request(
            "invalid_request",
            format!("{field} must be an RFC 3339 time, e.g. 2026-12-07T00:00:00+08:00"),
        )
    })
}
