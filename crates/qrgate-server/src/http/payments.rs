//! Payment routes of the merchant: charge a consumer code, read and list
//! payments (with a long poll), refund, cancel.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use qrgate_gateway::Role;
use qrgate_gateway::payments::ListQuery;
use qrgate_gateway::refunds::RefundListQuery;

use super::AppState;
use super::body::{ChargeRequest, RefundRequest};
use super::error::bad;
use super::extract::{Auth, Meta, PaymentAuth, StrictJson, StrictQuery, once};
use super::openapi::{IdemHeader, RefundList, StdErrors};

/// Every route. None deletes a record: payments, refunds, the ledger and
/// the audit log are kept (rule BCP-RETENTION; the store's append-only
/// triggers refuse deletes underneath).
use super::routes::*;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(charge, list_payments))
        .routes(routes!(get_payment))
        .routes(routes!(refund, list_refunds))
        .routes(routes!(cancel))
        .routes(routes!(find_refunds))
        .routes(routes!(get_refund))
}

/// A merchant's refunds across its payments: by its own refund number, by
/// time.
#[utoipa::path(get, path = "/v1/refunds", tag = "merchant", security(("bearer" = [])), params(RefundListQuery), responses((status = 200, body = qrgate_gateway::refunds::RefundPage), StdErrors))]
pub(super) async fn find_refunds(
    State(s): State<AppState>,
    Auth(p): Auth,
    StrictQuery(q): StrictQuery<RefundListQuery>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.list_all_refunds(&p, q).await?)
}

#[utoipa::path(get, path = "/v1/refunds/{id}", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = qrgate_gateway::views::RefundView), StdErrors))]
pub(super) async fn get_refund(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.get_refund(&p, &id).await?)
}

/// CPM: charge the payment code the cashier scanned.
#[utoipa::path(post, path = "/v1/payments", tag = "merchant", security(("bearer" = [])), params(IdemHeader), request_body = ChargeRequest, responses((status = 201, description = "Succeeded, or requires_action (step-up)", body = qrgate_gateway::views::PaymentView), StdErrors))]
pub(super) async fn charge(
    State(s): State<AppState>,
    PaymentAuth(p): PaymentAuth,
    meta: Meta,
    body: StrictJson<ChargeRequest>,
) -> ApiResult {
    let v = &body.value;
    p.require(&[Role::Merchant])?;
    let i = meta.idem(&p, &body.bytes)?;
    // No read before the charge: its movement checks the Idempotency-Key in
    // its own transaction and answers a replay with the stored response.
    // Only a charge refused before it reaches the store (say, the code has
    // expired since the first try) looks for a stored answer, which wins.
    match s
        .gw
        .charge_with_metadata(
            &p,
            &v.auth_code,
            &v.amount.0,
            v.out_trade_no.clone(),
            v.metadata.as_ref().unwrap_or(&Default::default()),
            Some(i.clone()),
        )
        .await
    {
        Ok(r) => Ok(reply(r)),
        // A key revoked since it was read gets no stored answer either.
        Err(e) if e.refuses_the_caller() => Err(e.into()),
        Err(e) => match s.gw.stored_answer(&i).await? {
            Some(stored) => Ok(reply(stored)),
            None => Err(e.into()),
        },
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WaitQuery {
    wait: Option<u64>,
}

/// `GET /v1/payments/{id}?wait=SECONDS` long-polls until the status changes.
#[utoipa::path(get, path = "/v1/payments/{id}", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path), ("wait" = Option<u64>, Query, description = "long-poll up to this many seconds (max 30) for a change")), responses((status = 200, body = qrgate_gateway::views::PaymentView), StdErrors))]
pub(super) async fn get_payment(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    StrictQuery(q): StrictQuery<WaitQuery>,
) -> ApiResult {
    let first = s.gw.get_payment(&p, &id).await?;
    let wait = q.wait.unwrap_or(0);
    if wait > super::MAX_WAIT_SECONDS {
        return Err(bad(
            "invalid_request",
            format!("wait must be at most {} seconds", super::MAX_WAIT_SECONDS),
        ));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut current = first.clone();
    while current.status == first.status
        && current.amount_refunded == first.amount_refunded
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
        current = s.gw.get_payment(&p, &id).await?;
    }
    ok(StatusCode::OK, &current)
}

#[utoipa::path(get, path = "/v1/payments", tag = "merchant", security(("bearer" = [])), params(qrgate_gateway::payments::ListQuery), responses((status = 200, body = qrgate_gateway::payments::PaymentList), StdErrors))]
pub(super) async fn list_payments(
    State(s): State<AppState>,
    Auth(p): Auth,
    StrictQuery(q): StrictQuery<ListQuery>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.list_payments(&p, q).await?)
}

#[utoipa::path(post, path = "/v1/payments/{id}/refunds", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path), IdemHeader), request_body = RefundRequest, responses((status = 201, body = qrgate_gateway::views::RefundView), (status = 200, description = "The refund with this out_refund_no, made before", body = qrgate_gateway::views::RefundView), StdErrors))]
pub(super) async fn refund(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    meta: Meta,
    body: StrictJson<RefundRequest>,
) -> ApiResult {
    let v = &body.value;
    let none = Default::default();
    let metadata = v.metadata.as_ref().unwrap_or(&none);
    once(&s, &p, &[Role::Merchant], &meta, &body.bytes, |i| {
        s.gw.refund_with_metadata(&p, &id, &v.amount.0, &v.out_refund_no, metadata, Some(i))
    })
    .await
}

#[utoipa::path(get, path = "/v1/payments/{id}/refunds", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, description = "A list of refunds", body = RefundList), StdErrors))]
pub(super) async fn list_refunds(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        &json!({ "object": "list", "data": s.gw.list_refunds(&p, &id).await?, "has_more": false }),
    )
}

#[utoipa::path(post, path = "/v1/payments/{id}/cancel", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path), IdemHeader), responses((status = 200, body = qrgate_gateway::views::PaymentView), StdErrors))]
pub(super) async fn cancel(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    meta: Meta,
) -> ApiResult {
    once(&s, &p, &[Role::Merchant], &meta, b"", |i| {
        s.gw.cancel(&p, &id, Some(i))
    })
    .await
}
