//! A merchant's money: its balance (merchant keys for their own; admin and
//! auditor keys for any merchant).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use axum::response::IntoResponse;
use axum::response::Response;
use qrgate_core::day::BusinessDay;
use qrgate_gateway::money::StatementKind;
use qrgate_gateway::trail::By;
use qrgate_gateway::{Error, Role};

use super::error::bad;
use super::extract::{Auth, StrictJson, StrictQuery};
use super::openapi::StdErrors;
use super::routes::*;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(balance))
        .routes(routes!(list_settlements))
        .routes(routes!(get_settlement))
        .routes(routes!(run_settlement))
        .routes(routes!(list_payouts, run_payouts))
        .routes(routes!(list_events))
        .routes(routes!(trades_statement))
        .routes(routes!(funds_statement))
        .routes(routes!(reconciliation))
}

/// Reconcile a business day: the card processor's settlement file for it
/// (as the gateway's processor gives it) against the ledger.
#[utoipa::path(get, path = "/v1/reconciliation/{date}", tag = "auditor", security(("bearer" = [])), params(("date" = String, Path, description = "the business day, YYYY-MM-DD")), responses((status = 200, body = qrgate_gateway::money::Reconciliation), StdErrors))]
pub(super) async fn reconciliation(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(date): Path<String>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.reconcile(&p, &date, None).await?)
}

/// A merchant's events, newest first, as its webhooks get them: catch up
/// on missed deliveries.
#[utoipa::path(get, path = "/v1/events", tag = "merchant", security(("bearer" = [])), params(qrgate_gateway::money::EventListQuery), responses((status = 200, body = qrgate_gateway::money::EventList), StdErrors))]
pub(super) async fn list_events(
    State(s): State<AppState>,
    Auth(p): Auth,
    StrictQuery(q): StrictQuery<qrgate_gateway::money::EventListQuery>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.list_events(&p, q).await?)
}

/// The trade bill of a business day (CSV): one row per payment, refund
/// and cancel, closing with totals. `Qrgate-Statement` says `final` (the
/// day was settled: it never changes) or `provisional`; `Repr-Digest`
/// carries the body's SHA-256.
#[utoipa::path(get, path = "/v1/statements/{date}/trades.csv", tag = "merchant", security(("bearer" = [])), params(("date" = String, Path, description = "the business day, YYYY-MM-DD"), ("merchant_id" = Option<String>, Query, description = "the merchant (required for admin and auditor keys)")), responses((status = 200, description = "text/csv", content_type = "text/csv"), StdErrors))]
pub(super) async fn trades_statement(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(date): Path<String>,
    StrictQuery(q): StrictQuery<BalanceQuery>,
) -> ApiResult {
    statement(s, p, date, q, StatementKind::Trades).await
}

/// The fund-flow bill of a business day (CSV): one row per entry on the
/// merchant's accounts (pending, available, in payout) with the running
/// balance, closing with each account's opening, credits, debits and
/// closing balance. Headers as for the trade bill.
#[utoipa::path(get, path = "/v1/statements/{date}/funds.csv", tag = "merchant", security(("bearer" = [])), params(("date" = String, Path, description = "the business day, YYYY-MM-DD"), ("merchant_id" = Option<String>, Query, description = "the merchant (required for admin and auditor keys)")), responses((status = 200, description = "text/csv", content_type = "text/csv"), StdErrors))]
pub(super) async fn funds_statement(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(date): Path<String>,
    StrictQuery(q): StrictQuery<BalanceQuery>,
) -> ApiResult {
    statement(s, p, date, q, StatementKind::Funds).await
}

/// A statement, streamed a page at a time after its digest.
async fn statement(
    s: AppState,
    p: qrgate_gateway::Principal,
    date: String,
    q: BalanceQuery,
    kind: StatementKind,
) -> ApiResult {
    Ok(statement_download(s, &p, q.merchant_id.as_deref(), &date, kind).await?)
}

/// A daily statement as a CSV download, streamed as it is read, with its
/// digest and whether it is final (the API's and the pages' download).
pub(crate) async fn statement_download(
    s: AppState,
    p: &qrgate_gateway::Principal,
    merchant_id: Option<&str>,
    date: &str,
    kind: StatementKind,
) -> Result<Response, Error> {
    let (st, reader) = s.gw.statement(p, merchant_id, date, kind).await?;
    let gw = s.gw.clone();
    let body = futures_util::stream::unfold(Some((gw, reader)), |state| async move {
        let (gw, mut reader) = state?;
        match reader.next_chunk(&gw).await {
            Ok(Some(chunk)) => Some((Ok::<_, std::io::Error>(chunk), Some((gw, reader)))),
            Ok(None) => None,
            // The headers are sent: cut the body short, so the digest fails.
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
        }
    });
    let filename = format!(
        "attachment; filename=\"qrgate-{}-{}-{}.csv\"",
        kind.name(),
        st.merchant_id,
        st.date
    );
    Ok((
        StatusCode::OK,
        [
            ("content-type", "text/csv; charset=utf-8".to_owned()),
            ("content-disposition", filename),
            ("repr-digest", format!("sha-256=:{}:", st.sha256)),
            (
                "qrgate-statement",
                if st.final_ { "final" } else { "provisional" }.to_owned(),
            ),
            ("qrgate-statement-as-of", st.as_of.to_rfc3339()),
            ("cache-control", "private, no-store".to_owned()),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

/// A merchant's payouts, newest first (the last 50).
#[utoipa::path(get, path = "/v1/payouts", tag = "merchant", security(("bearer" = [])), params(qrgate_gateway::money::PayoutListQuery), responses((status = 200, body = Vec<qrgate_gateway::money::PayoutView>), StdErrors))]
pub(super) async fn list_payouts(
    State(s): State<AppState>,
    Auth(p): Auth,
    StrictQuery(q): StrictQuery<qrgate_gateway::money::PayoutListQuery>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.list_payouts(&p, q).await?)
}

/// What an operator asks to pay out.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PayoutRequest {
    /// Only this merchant (default: every merchant with money available).
    merchant_id: Option<String>,
}

/// Pay out available money now, as the daily job does after settling
/// (admin); also retries payouts that are due.
#[utoipa::path(post, path = "/v1/payouts", tag = "admin", security(("bearer" = [])), request_body = PayoutRequest, responses((status = 200, body = Vec<qrgate_gateway::money::PayoutView>, description = "the payouts made"), StdErrors))]
pub(super) async fn run_payouts(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: StrictJson<PayoutRequest>,
) -> ApiResult {
    p.require(&[Role::Admin])?;
    let by = By::Key(&p);
    let made: Vec<_> = match &body.value.merchant_id {
        Some(m) => s.gw.pay_out(by, m).await?.into_iter().collect(),
        None => s.gw.pay_out_all(by).await?,
    };
    s.gw.payouts_step().await?;
    ok(StatusCode::OK, &made)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SettlementsQuery {
    merchant_id: Option<String>,
    from: String,
    to: String,
}

/// A merchant's settled business days from one date to another (inclusive), newest first.
#[utoipa::path(get, path = "/v1/settlements", tag = "merchant", security(("bearer" = [])), params(("merchant_id" = Option<String>, Query, description = "the merchant (required for admin and auditor keys)"), ("from" = String, Query, description = "first business day, YYYY-MM-DD"), ("to" = String, Query, description = "last business day, YYYY-MM-DD")), responses((status = 200, body = Vec<qrgate_gateway::money::SettlementView>), StdErrors))]
pub(super) async fn list_settlements(
    State(s): State<AppState>,
    Auth(p): Auth,
    StrictQuery(q): StrictQuery<SettlementsQuery>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        &s.gw
            .list_settlements(&p, q.merchant_id.as_deref(), &q.from, &q.to)
            .await?,
    )
}

/// One settled business day of a merchant.
#[utoipa::path(get, path = "/v1/settlements/{date}", tag = "merchant", security(("bearer" = [])), params(("date" = String, Path, description = "the business day, YYYY-MM-DD"), ("merchant_id" = Option<String>, Query, description = "the merchant (required for admin and auditor keys)")), responses((status = 200, body = qrgate_gateway::money::SettlementView), StdErrors))]
pub(super) async fn get_settlement(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(date): Path<String>,
    StrictQuery(q): StrictQuery<BalanceQuery>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        &s.gw
            .get_settlement(&p, q.merchant_id.as_deref(), &date)
            .await?,
    )
}

/// What an operator asks to settle.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SettleRequest {
    /// The business day, YYYY-MM-DD; it must be over.
    date: String,
    /// Only this merchant (default: every merchant).
    merchant_id: Option<String>,
}

/// Settle a business day that is over, as the daily job does (admin).
/// Settling it again changes nothing.
#[utoipa::path(post, path = "/v1/settlements", tag = "admin", security(("bearer" = [])), request_body = SettleRequest, responses((status = 200, body = qrgate_gateway::money::SettlementView, description = "one merchant's settlement (made now or before); for every merchant, what the run did"), StdErrors))]
pub(super) async fn run_settlement(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: StrictJson<SettleRequest>,
) -> ApiResult {
    p.require(&[Role::Admin])?;
    let day =
        BusinessDay::parse(&body.value.date).map_err(|e| bad("invalid_request", e.to_string()))?;
    let by = By::Key(&p);
    match &body.value.merchant_id {
        Some(m) => ok(StatusCode::OK, &s.gw.settle_day(by, m, day).await?.0),
        None => ok(StatusCode::OK, &s.gw.settle_all(by, day).await?),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BalanceQuery {
    merchant_id: Option<String>,
}

/// A merchant's pending, available and in-payout amounts, from its ledger accounts.
#[utoipa::path(get, path = "/v1/balance", tag = "merchant", security(("bearer" = [])), params(("merchant_id" = Option<String>, Query, description = "the merchant (required for admin and auditor keys; a merchant key reads its own)")), responses((status = 200, body = qrgate_gateway::money::BalanceView), StdErrors))]
pub(super) async fn balance(
    State(s): State<AppState>,
    Auth(p): Auth,
    StrictQuery(q): StrictQuery<BalanceQuery>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        &s.gw.balance(&p, q.merchant_id.as_deref()).await?,
    )
}
