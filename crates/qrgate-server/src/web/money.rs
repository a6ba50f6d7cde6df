//! The merchant's money and integrations in the pages: the daily
//! statements to download (trades and funds, CSV, as the API serves them)
//! and the webhook endpoints with their recent deliveries: add an endpoint
//! (its signing secret shown once), retry a delivery.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use qrgate_core::day::BusinessDay;
use qrgate_gateway::Error;
use qrgate_gateway::money::StatementKind;
use qrgate_gateway::webhooks::{CreatedRange, DeliveryView, EndpointView};

use super::session::CsrfForm;
use super::{Frame, Signed, html};
use crate::http::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/web/money", get(money))
        .route("/web/statements/{date}/{file}", get(statement))
        .route("/web/webhooks", post(new_endpoint))
        .route("/web/webhooks/deliveries/{id}/retry", post(retry))
}

/// An endpoint and its recent deliveries.
struct EndpointRow {
    e: EndpointView,
    deliveries: Vec<DeliveryView>,
}

#[derive(Template)]
#[template(path = "money.html")]
struct MoneyPage {
    f: Frame,
    yesterday: String,
    endpoints: Vec<EndpointRow>,
    /// A new endpoint's secret, shown this once.
    secret: String,
}

/// (A new endpoint's secret is shown only by the answer to adding it; a
/// reload of this page never shows it again.)
async fn money(State(s): State<AppState>, signed: Signed) -> Response {
    if let Err(r) = signed.merchant() {
        return *r;
    }
    match money_page(&s, &signed, String::new()).await {
        Ok(page) => html(&page),
        Err(e) => signed.refused(&e),
    }
}

async fn money_page(s: &AppState, signed: &Signed, secret: String) -> Result<MoneyPage, Error> {
    let p = &signed.session.principal;
    let offset = s.gw.limits().business_offset_minutes;
    let yesterday = BusinessDay::of(s.gw.now(), offset).previous().to_string();
    let mut endpoints = Vec::new();
    for e in s.gw.list_webhook_endpoints(p).await? {
        let mut deliveries =
            s.gw.list_deliveries(p, &e.id, CreatedRange::default())
                .await?;
        deliveries.truncate(20);
        endpoints.push(EndpointRow { e, deliveries });
    }
    Ok(MoneyPage {
        f: Frame::of(signed.lang, Some(signed)),
        yesterday,
        endpoints,
        secret,
    })
}

/// A statement's CSV: `trades.csv` or `funds.csv` of a business day.
async fn statement(
    State(s): State<AppState>,
    signed: Signed,
    Path((date, file)): Path<(String, String)>,
) -> Response {
    if let Err(r) = signed.merchant() {
        return *r;
    }
    let kind = match file.as_str() {
        "trades.csv" => StatementKind::Trades,
        "funds.csv" => StatementKind::Funds,
        other => {
            return signed.refused(&Error::not_found("statement", other));
        }
    };
    match crate::http::statement_download(s, &signed.session.principal, None, &date, kind).await {
        Ok(r) => r,
        Err(e) => signed.refused(&e),
    }
}

#[derive(Deserialize)]
struct EndpointForm {
    csrf: String,
    url: String,
}

async fn new_endpoint(
    State(s): State<AppState>,
    signed: Signed,
    Form(form): Form<EndpointForm>,
) -> Response {
    if let Err(r) = signed
        .check_csrf(&form.csrf)
        .and_then(|()| signed.merchant())
    {
        return *r;
    }
    // A reload of this form would add the endpoint again (and every event
    // would go out twice): an endpoint the merchant has already is not
    // added a second time from the page.
    let p = &signed.session.principal;
    let url = form.url.trim();
    match s.gw.list_webhook_endpoints(p).await {
        Ok(have) if have.iter().any(|e| e.url == url && e.status != "deleted") => {
            let e = Error::new(
                qrgate_gateway::Kind::Conflict,
                "endpoint_exists",
                format!("{url} is one of your endpoints already"),
            );
            return signed.refused(&e);
        }
        Ok(_) => {}
        Err(e) => return signed.refused(&e),
    }
    let made = s.gw.create_webhook_endpoint(p, url).await;
    match made {
        Ok(e) => match money_page(&s, &signed, e.secret.unwrap_or_default()).await {
            Ok(page) => html(&page),
            Err(e) => signed.refused(&e),
        },
        Err(e) => signed.refused(&e),
    }
}

async fn retry(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = signed
        .check_csrf(&form.csrf)
        .and_then(|()| signed.merchant())
    {
        return *r;
    }
    let Ok(id) = id.parse::<i64>() else {
        return signed.refused(&Error::not_found("delivery", &id));
    };
    match s.gw.redeliver(&signed.session.principal, id).await {
        Ok(_) => Redirect::to("/web/money").into_response(),
        Err(e) => signed.refused(&e),
    }
}
