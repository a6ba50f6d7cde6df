//! A merchant's money: its balance (merchant keys for their own; admin and
//! auditor keys for any merchant).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{Auth, StrictQuery};
use super::openapi::StdErrors;
use super::routes::*;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(balance))
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
