//! Consumer routes: payment codes, paying a scanned code, confirming a
//! waiting payment, cards, and the consumer's own account and payments.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use qrgate_gateway::Role;
use qrgate_gateway::payments::ListQuery;

use super::AppState;
use super::body::ScanRequest;
use super::extract::{Auth, Meta, StrictJson, StrictQuery, once};
use super::openapi::{IdemHeader, StdErrors};

/// Every route. None deletes a record: payments, refunds, the ledger and
/// the audit log are kept (rule BCP-RETENTION; the store's append-only
/// triggers refuse deletes underneath).
use super::routes::*;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(confirm))
        .routes(routes!(link_card, list_cards))
        .routes(routes!(issue_payment_code))
        .routes(routes!(scan))
        .routes(routes!(me))
        .routes(routes!(my_payments))
}

#[utoipa::path(post, path = "/v1/payment-codes", tag = "consumer", security(("bearer" = [])), responses((status = 201, body = qrgate_gateway::payments::PaymentCodeView), StdErrors))]
pub(super) async fn issue_payment_code(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    ok(StatusCode::CREATED, &s.gw.issue_payment_code(&p).await?)
}

/// MPM: the consumer pays a merchant code they scanned.
#[utoipa::path(post, path = "/v1/scans", tag = "consumer", security(("bearer" = [])), params(IdemHeader), request_body = ScanRequest, responses((status = 201, body = qrgate_gateway::views::PaymentView), StdErrors))]
pub(super) async fn scan(
    State(s): State<AppState>,
    Auth(p): Auth,
    meta: Meta,
    body: StrictJson<ScanRequest>,
) -> ApiResult {
    let v = &body.value;
    once(&s, &p, &[Role::Consumer], &meta, &body.bytes, |i| {
        s.gw.pay_scanned(
            &p,
            &v.payload,
            v.amount.as_ref().map(|a| a.0.as_str()),
            v.funding_source.as_deref(),
            Some(i),
        )
    })
    .await
}

/// Step-up: the payer confirms a `requires_action` payment.
#[utoipa::path(post, path = "/v1/payments/{id}/confirm", tag = "consumer", security(("bearer" = [])), params(("id" = String, Path), IdemHeader), request_body = qrgate_gateway::stepup::Confirmation, responses((status = 200, body = qrgate_gateway::views::PaymentView), StdErrors))]
pub(super) async fn confirm(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    meta: Meta,
    body: StrictJson<qrgate_gateway::stepup::Confirmation>,
) -> ApiResult {
    let StrictJson { value, bytes } = body;
    once(&s, &p, &[Role::Consumer], &meta, &bytes, |i| {
        s.gw.confirm(&p, &id, value, Some(i))
    })
    .await
}

/// Link a card: the number goes to the processor; the gateway keeps a token.
#[utoipa::path(post, path = "/v1/me/cards", tag = "consumer", security(("bearer" = [])), request_body = qrgate_gateway::funding::NewCard, responses((status = 201, body = qrgate_gateway::funding::CardView), StdErrors))]
pub(super) async fn link_card(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: StrictJson<qrgate_gateway::funding::NewCard>,
) -> ApiResult {
    p.require(&[Role::Consumer])?;
    ok(
        StatusCode::CREATED,
        &s.gw.link_card(&p, body.value.clone()).await?,
    )
}

#[utoipa::path(get, path = "/v1/me/cards", tag = "consumer", security(("bearer" = [])), responses((status = 200, body = qrgate_gateway::funding::CardList), StdErrors))]
pub(super) async fn list_cards(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    p.require(&[Role::Consumer])?;
    ok(StatusCode::OK, &s.gw.list_cards(&p).await?)
}

#[utoipa::path(get, path = "/v1/me", tag = "consumer", security(("bearer" = [])), responses((status = 200, body = qrgate_gateway::parties::CustomerView), StdErrors))]
pub(super) async fn me(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    let id = p.customer()?.to_owned();
    ok(StatusCode::OK, &s.gw.get_customer(&p, &id).await?)
}

#[utoipa::path(get, path = "/v1/me/payments", tag = "consumer", security(("bearer" = [])), params(qrgate_gateway::payments::ListQuery), responses((status = 200, body = qrgate_gateway::payments::PaymentList), StdErrors))]
pub(super) async fn my_payments(
    State(s): State<AppState>,
    Auth(p): Auth,
    StrictQuery(q): StrictQuery<ListQuery>,
) -> ApiResult {
    p.customer()?;
    ok(StatusCode::OK, &s.gw.list_payments(&p, q).await?)
}
