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

use crate::views::PaymentView;
use crate::{Error, Gateway, Principal, Role};

#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub limit: Option<i64>,
    pub starting_after: Option<String>,
    pub status: Option<String>,
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

    pub async fn list_payments(&self, p: &Principal, q: ListQuery) -> Result<PaymentList, Error> {
        let mut query = PaymentQuery {
            limit: q.limit.unwrap_or(20),
            status: q.status,
            ..Default::default()
        };
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
