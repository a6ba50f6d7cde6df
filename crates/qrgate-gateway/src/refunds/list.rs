//! Finding refunds across a merchant's payments: by the merchant's own
//! refund number (`out_refund_no`, unique per merchant), by time, one by
//! id.

use serde::{Deserialize, Serialize};

use qrgate_store::{RefundQuery, Store};

use crate::payments::created_range;
use crate::views::RefundView;
use crate::{Error, Gateway, Principal, Role};

/// Which refunds, newest first.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RefundListQuery {
    /// Admin and auditor keys: only this merchant's refunds (merchant keys
    /// always see their own).
    pub merchant_id: Option<String>,
    /// Only the refund with this merchant number (unique per merchant).
    pub out_refund_no: Option<String>,
    /// Made at or after this time (RFC 3339).
    pub created_gte: Option<String>,
    /// Made before this time (RFC 3339).
    pub created_lt: Option<String>,
    /// The id of the last refund of the previous page.
    pub starting_after: Option<String>,
    /// 1 to 100 (default 20).
    pub limit: Option<i64>,
}

/// A page of refunds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"object": "list", "data": [], "has_more": false}))]
pub struct RefundPage {
    pub object: &'static str,
    pub data: Vec<RefundView>,
    pub has_more: bool,
}

impl<S: Store> Gateway<S> {
    /// One refund the principal may see (the payer of its payment, its
    /// merchant, admins and auditors); others' answer 404 like missing ones.
    pub async fn get_refund(&self, p: &Principal, id: &str) -> Result<RefundView, Error> {
        let r = self
            .store
            .refund(id)
            .await?
            .ok_or_else(|| Error::not_found("refund", id))?;
        // The payment decides who may see it (QG-TENANCY).
        self.payment_for(p, &r.payment_id)
            .await
            .map_err(|_| Error::not_found("refund", id))?;
        Ok(RefundView::of(&r).for_role(p.role))
    }

    /// A merchant's refunds (admins and auditors: anyone's, or one
    /// merchant's), newest first.
    pub async fn list_all_refunds(
        &self,
        p: &Principal,
        q: RefundListQuery,
    ) -> Result<RefundPage, Error> {
        p.require(&[Role::Merchant, Role::Admin, Role::Auditor])?;
        let merchant_id = match (p.role, q.merchant_id) {
            (Role::Merchant, Some(m)) if Some(m.as_str()) != p.subject.as_deref() => {
                return Err(Error::not_found("merchant", &m));
            }
            (Role::Merchant, _) => Some(p.merchant()?.to_owned()),
            (_, m) => m,
        };
        let limit = q.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(Error::bad_request(
                "invalid_request",
                "limit must be 1 to 100",
            ));
        }
        if let Some(n) = &q.out_refund_no {
            crate::check_merchant_number("out_refund_no", n)?;
        }
        let (created_gte, created_lt) =
            created_range(q.created_gte.as_deref(), q.created_lt.as_deref())?;
        if let Some(after) = &q.starting_after {
            // The cursor must be a refund this principal can see.
            self.get_refund(p, after).await?;
        }
        let (rows, has_more) = self
            .store
            .list_refunds(RefundQuery {
                merchant_id,
                out_refund_no: q.out_refund_no,
                created_gte,
                created_lt,
                starting_after: q.starting_after,
                limit,
            })
            .await?;
        Ok(RefundPage {
            object: "list",
            data: rows
                .iter()
                .map(|r| RefundView::of(r).for_role(p.role))
                .collect(),
            has_more,
        })
    }
}
