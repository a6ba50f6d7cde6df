//! The merchant's payments in the pages: charging a customer's code at the
//! till (typed by a barcode scanner as digits and Enter, or pasted), the
//! payment's page with its live status (a payment waiting for the payer's
//! confirmation turns to succeeded without a reload), refunds and cancels
//! from it, and the console's live list of payments. Each money-moving form
//! carries an attempt number used as its Idempotency-Key (or refund
//! number), so pressing twice moves the money once.

use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;

use qrgate_gateway::payments::ListQuery;
use qrgate_gateway::views::PaymentView;
use qrgate_gateway::{Error, Idem, Principal, Reply};

use super::{Frame, Signed, html};
use crate::http::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/web/payments/{id}", get(payment_page))
        .route("/web/payments/{id}/events", get(payment_events))
        .route("/web/payments/{id}/refunds", post(refund))
        .route("/web/payments/{id}/cancel", post(cancel))
        .route("/web/console/events", get(console_events))
}

/// The idempotency of a page's money-moving form: its attempt number as the
/// key, over what it asks (stored answers are in the API's words).
pub(super) fn idem(
    signed: &Signed,
    attempt: &str,
    path: &str,
    body: serde_json::Value,
) -> Result<Idem, Error> {
    Idem::of_request(
        &signed.session.principal,
        Some(attempt),
        "POST",
        path,
        body.to_string().as_bytes(),
        crate::http::render,
    )
}

/// A page's money-moving form, run once per attempt: the stored answer of
/// an earlier press of it, or `work` with the attempt's idempotency.
pub(super) async fn once<F, Fut>(
    s: &AppState,
    signed: &Signed,
    attempt: &str,
    path: &str,
    body: serde_json::Value,
    work: F,
) -> Result<Reply, Error>
where
    F: FnOnce(Idem) -> Fut,
    Fut: std::future::Future<Output = Result<Reply, Error>>,
{
    let i = idem(signed, attempt, path, body)?;
    match s.gw.stored_answer(&i).await? {
        Some(stored) => Ok(stored),
        None => work(i).await,
    }
}

/// The payment a money-moving reply names (fresh or replayed): its id, or
/// the refusal it stored (with the payment it was recorded as, if any).
pub(super) fn made_id(r: Reply) -> Result<String, Error> {
    let body = match r {
        Reply::Fresh(_, body) => body,
        Reply::Replayed(said) => said.body,
    };
    let v: serde_json::Value = serde_json::from_str(&body).map_err(Error::internal)?;
    if let Some(e) = v.get("error") {
        if let Some(id) = e["payment_id"].as_str() {
            return Ok(id.to_owned());
        }
        return Err(Error::new(
            qrgate_gateway::Kind::Conflict,
            "attempt_refused",
            e["message"]
                .as_str()
                .unwrap_or("this attempt was refused")
                .to_owned(),
        ));
    }
    v["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::internal("a payment reply without an id"))
}

/// Charge the customer's code for the amount (once per attempt), then show
/// the payment: succeeded, waiting for the payer, or declined with the
/// reason (a sale the rules refused is recorded, and its page says why).
pub(super) async fn charge(
    s: &AppState,
    signed: &Signed,
    attempt: &str,
    amount: &str,
    code: &str,
) -> Response {
    let p: &Principal = &signed.session.principal;
    let body = json!({ "amount": amount, "auth_code": code });
    let made = once(s, signed, attempt, "/web/cashier", body, |i| {
        s.gw.charge(p, code, amount, None, Some(i))
    })
    .await
    .and_then(made_id);
    match made {
        Ok(id) => Redirect::to(&format!("/web/payments/{id}")).into_response(),
        Err(e) if e.payment_id.is_some() => {
            let id = e.payment_id.clone().unwrap_or_default();
            Redirect::to(&format!("/web/payments/{id}")).into_response()
        }
        Err(e) => signed.refused(&e),
    }
}

#[derive(Template)]
#[template(path = "payment.html")]
struct PaymentPage {
    f: Frame,
    p: PaymentView,
    /// What the cashier can act on when it failed.
    failure: String,
    attempt: String,
}

async fn payment_page(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = signed.merchant() {
        return *r;
    }
    let p = match s.gw.get_payment(&signed.session.principal, &id).await {
        Ok(p) => p,
        Err(e) => return signed.refused(&e),
    };
    let failure = p
        .failure
        .as_ref()
        .map(|f| format!("{}: {}", f.code, f.message))
        .unwrap_or_default();
    html(&PaymentPage {
        f: Frame::of(signed.lang, Some(&signed)),
        p,
        failure,
        attempt: super::merchant::attempt_id(&s),
    })
}

#[derive(Deserialize)]
struct RefundForm {
    csrf: String,
    attempt: String,
    amount: String,
}

async fn refund(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<RefundForm>,
) -> Response {
    if let Err(r) = signed
        .check_csrf(&form.csrf)
        .and_then(|()| signed.merchant())
    {
        return *r;
    }
    let amount = form.amount.trim();
    let path = format!("/web/payments/{id}/refunds");
    // The attempt is also the refund's number: one refund per press.
    let done = once(
        &s,
        &signed,
        &form.attempt,
        &path,
        json!({ "amount": amount }),
        |i| {
            s.gw.refund(
                &signed.session.principal,
                &id,
                amount,
                &form.attempt,
                Some(i),
            )
        },
    )
    .await
    .map(|_| ());
    match done {
        Ok(()) => Redirect::to(&format!("/web/payments/{id}")).into_response(),
        Err(e) => signed.refused(&e),
    }
}

#[derive(Deserialize)]
struct CancelForm {
    csrf: String,
    attempt: String,
}

async fn cancel(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> Response {
    if let Err(r) = signed
        .check_csrf(&form.csrf)
        .and_then(|()| signed.merchant())
    {
        return *r;
    }
    let path = format!("/web/payments/{id}/cancel");
    let done = once(&s, &signed, &form.attempt, &path, json!({}), |i| {
        s.gw.cancel(&signed.session.principal, &id, Some(i))
    })
    .await
    .map(|_| ());
    match done {
        Ok(()) => Redirect::to(&format!("/web/payments/{id}")).into_response(),
        Err(e) => signed.refused(&e),
    }
}

/// How often a live page looks again.
const POLL: Duration = Duration::from_secs(1);

/// The payment's status as Server-Sent Events: now, and each change, until
/// it is final.
async fn payment_events(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = signed.merchant() {
        return *r;
    }
    if let Err(e) = s.gw.get_payment(&signed.session.principal, &id).await {
        return signed.refused(&e);
    }
    super::live(s, &signed, "status", POLL, move |s, p| {
        let id = id.clone();
        async move {
            let status = s.gw.get_payment(&p, &id).await?.status;
            let finished = !matches!(status.as_str(), "requires_action" | "confirming");
            Ok((status, finished))
        }
    })
}

/// The console's recent payments as Server-Sent Events: the newest 20
/// (as JSON rows) now and whenever they change.
async fn console_events(State(s): State<AppState>, signed: Signed) -> Response {
    if let Err(r) = signed.merchant() {
        return *r;
    }
    super::live(s, &signed, "payments", POLL, |s, p| async move {
        let q = ListQuery {
            limit: Some(20),
            ..Default::default()
        };
        let rows: Vec<_> = s
            .gw
            .list_payments(&p, q)
            .await?
            .data
            .iter()
            .map(|v| json!({ "id": v.id, "amount": v.amount, "status": v.status, "created_at": v.created_at }))
            .collect();
        Ok((serde_json::Value::Array(rows).to_string(), false))
    })
}
