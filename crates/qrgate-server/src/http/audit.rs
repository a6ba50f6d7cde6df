//! Auditor routes: the audit chain and its log, the check of the books.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{Auth, StrictQuery};
use super::openapi::StdErrors;

/// Every route. None deletes a record: payments, refunds, the ledger and
/// the audit log are kept (rule BCP-RETENTION; the store's append-only
/// triggers refuse deletes underneath).
use super::routes::*;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(audit_verify))
        .routes(routes!(audit_log))
        .routes(routes!(ledger_check))
}

#[utoipa::path(get, path = "/v1/audit/verify", tag = "auditor", security(("bearer" = [])), responses((status = 200, description = "{\"Intact\": {rows, head}} or {\"Broken\": {seq, reason}}"), StdErrors))]
pub(super) async fn audit_verify(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    ok(StatusCode::OK, &s.gw.verify_audit(&p).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/audit/log", tag = "auditor", security(("bearer" = [])), params(("after" = Option<i64>, Query), ("limit" = Option<i64>, Query)), responses((status = 200, description = "Audit rows with their hash chain"), StdErrors))]
pub(super) async fn audit_log(
    State(s): State<AppState>,
    Auth(p): Auth,
    StrictQuery(q): StrictQuery<AuditQuery>,
) -> ApiResult {
    let rows =
        s.gw.audit_log(&p, q.after.unwrap_or(0), q.limit.unwrap_or(100))
            .await?;
    ok(StatusCode::OK, &json!({ "object": "list", "data": rows }))
}

#[utoipa::path(get, path = "/v1/ledger/check", tag = "auditor", security(("bearer" = [])), responses((status = 200, description = "{balanced, check: {totals, mismatched_accounts, negative_accounts, entries, disagreeing_payments, disagreeing_settlements, misattributed_postings}}"), StdErrors))]
pub(super) async fn ledger_check(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    let c = s.gw.ledger_check(&p).await?;
    ok(
        StatusCode::OK,
        &json!({ "balanced": c.is_sound(), "check": c }),
    )
}
