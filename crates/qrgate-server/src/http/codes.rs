//! Merchant code routes: static codes (JSON, PNG or SVG) and orders.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use qrgate_codes::image::{RenderOptions, render_png, render_svg};
use qrgate_gateway::Error;

use super::AppState;
use super::body::OrderRequest;
use super::error::{ApiError, bad};
use super::extract::{Auth, StrictJson};
use super::openapi::StdErrors;

/// Every route. None deletes a record: payments, refunds, the ledger and
/// the audit log are kept (rule BCP-RETENTION; the store's append-only
/// triggers refuse deletes underneath).
use super::routes::*;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_static_code))
        .routes(routes!(get_static_code))
        .routes(routes!(create_order))
        .routes(routes!(get_order))
        .routes(routes!(close_order))
}

#[utoipa::path(post, path = "/v1/static-codes", tag = "merchant", security(("bearer" = [])), responses((status = 201, body = qrgate_gateway::parties::StaticCodeView), StdErrors))]
pub(super) async fn create_static_code(State(s): State<AppState>, Auth(p): Auth) -> ApiResult {
    ok(StatusCode::CREATED, &s.gw.create_static_code(&p).await?)
}

/// `GET /v1/static-codes/{id}`, `{id}.png` (printable poster) or `{id}.svg`.
#[utoipa::path(get, path = "/v1/static-codes/{file}", tag = "merchant", security(("bearer" = [])), params(("file" = String, Path, description = "sqr_… for JSON, sqr_….png or sqr_….svg for a printable poster")), responses((status = 200, description = "JSON, image/png or image/svg+xml", body = qrgate_gateway::parties::StaticCodeView), StdErrors))]
pub(super) async fn get_static_code(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(file): Path<String>,
) -> ApiResult {
    let (id, ext) = match file.rsplit_once('.') {
        Some((id, ext)) => (id.to_owned(), Some(ext.to_ascii_lowercase())),
        None => (file.clone(), None),
    };
    let sc = s.gw.get_static_code(&p, &id).await?;
    // Posters print: level Q survives smudges, 10 px modules print crisply.
    let opts = RenderOptions {
        correction: qrgate_codes::image::Correction::Q,
        module_px: 10,
        quiet_zone: 4,
    };
    match ext.as_deref() {
        None => ok(StatusCode::OK, &sc),
        Some("png") => {
            let png = render_png(&sc.payload, &opts).map_err(|e| ApiError(Error::internal(e)))?;
            Ok((
                StatusCode::OK,
                [
                    ("content-type", "image/png"),
                    ("cache-control", "private, max-age=86400"),
                ],
                png,
            )
                .into_response())
        }
        Some("svg") => {
            let svg = render_svg(&sc.payload, &opts).map_err(|e| ApiError(Error::internal(e)))?;
            Ok((
                StatusCode::OK,
                [
                    ("content-type", "image/svg+xml"),
                    ("cache-control", "private, max-age=86400"),
                ],
                svg,
            )
                .into_response())
        }
        Some(other) => Err(bad(
            "unsupported_format",
            format!(".{other}: ask for .png or .svg"),
        )),
    }
}

#[utoipa::path(post, path = "/v1/orders", tag = "merchant", security(("bearer" = [])), request_body = OrderRequest, responses((status = 201, body = qrgate_gateway::views::OrderView), StdErrors))]
pub(super) async fn create_order(
    State(s): State<AppState>,
    Auth(p): Auth,
    StrictJson { value: o, .. }: StrictJson<OrderRequest>,
) -> ApiResult {
    ok(
        StatusCode::CREATED,
        &s.gw
            .create_order_with_metadata(
                &p,
                &o.amount.0,
                o.reference,
                o.out_trade_no,
                o.expires_in,
                &o.metadata.unwrap_or_default(),
            )
            .await?,
    )
}

#[utoipa::path(get, path = "/v1/orders/{id}", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = qrgate_gateway::views::OrderView), StdErrors))]
pub(super) async fn get_order(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.get_order(&p, &id).await?)
}

#[utoipa::path(post, path = "/v1/orders/{id}/close", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = qrgate_gateway::views::OrderView), StdErrors))]
pub(super) async fn close_order(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.close_order(&p, &id).await?)
}
