//! The operator's pages (an admin key): the review queue (suspended static
//! codes, complaints to decide, fraud reports, flagged payments) with a
//! decision on each, and a complaint with its steps, photos and the
//! decision form. Every decision carries a reason and goes into the audit
//! chain, as through the API.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;

use qrgate_gateway::complaints::{ComplaintView, Decision};
use qrgate_gateway::reviews::{ReviewItem, ReviewQuery};
use qrgate_gateway::{Error, Role};

use super::payments::once;
use super::{Frame, Signed, html};
use crate::http::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/web/operator", get(queue))
        .route("/web/operator/reviews/{kind}/{id}", post(review))
        .route("/web/operator/complaints/{id}", get(complaint))
        .route("/web/operator/complaints/{id}/decision", post(decide))
}

impl Signed {
    fn operator(&self) -> Result<(), Box<Response>> {
        self.require(&[Role::Admin])
    }
}

#[derive(Template)]
#[template(path = "operator.html")]
struct QueuePage {
    f: Frame,
    items: Vec<ReviewItem>,
}

async fn queue(State(s): State<AppState>, signed: Signed) -> Response {
    if let Err(r) = signed.operator() {
        return *r;
    }
    match s
        .gw
        .reviews(&signed.session.principal, ReviewQuery::default())
        .await
    {
        Ok(q) => html(&QueuePage {
            f: Frame::of(signed.lang, Some(&signed)),
            items: q.data,
        }),
        Err(e) => signed.refused(&e),
    }
}

#[derive(Deserialize)]
struct ReviewForm {
    csrf: String,
    decision: String,
    reason: String,
}

/// A decision on a suspended static code, a fraud report or a flagged
/// payment (`clear` or `confirm`), once.
async fn review(
    State(s): State<AppState>,
    signed: Signed,
    Path((kind, id)): Path<(String, String)>,
    Form(form): Form<ReviewForm>,
) -> Response {
    if let Err(r) = signed
        .check_csrf(&form.csrf)
        .and_then(|()| signed.operator())
    {
        return *r;
    }
    let kind = match kind.as_str() {
        "static_code" | "fraud_report" | "payment" => kind,
        other => {
            let e = Error::bad_request(
                "invalid_request",
                format!("a review is of a static_code, fraud_report or payment; not {other:?}"),
            );
            return signed.refused(&e);
        }
    };
    match s
        .gw
        .decide_review(
            &signed.session.principal,
            &kind,
            &id,
            &form.decision,
            &form.reason,
        )
        .await
    {
        Ok(_) => Redirect::to("/web/operator").into_response(),
        Err(e) => signed.refused(&e),
    }
}

#[derive(Template)]
#[template(path = "operator_complaint.html")]
struct ComplaintPage {
    f: Frame,
    k: ComplaintView,
    attempt: String,
}

async fn complaint(State(s): State<AppState>, signed: Signed, Path(id): Path<String>) -> Response {
    if let Err(r) = signed.operator() {
        return *r;
    }
    match s.gw.get_complaint(&signed.session.principal, &id).await {
        Ok(k) => html(&ComplaintPage {
            f: Frame::of(signed.lang, Some(&signed)),
            k,
            attempt: super::merchant::attempt_id(&s),
        }),
        Err(e) => signed.refused(&e),
    }
}

#[derive(Deserialize)]
struct DecisionForm {
    csrf: String,
    attempt: String,
    decision: String,
    reason: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    revisit_at: String,
}

async fn decide(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    if let Err(r) = signed
        .check_csrf(&form.csrf)
        .and_then(|()| signed.operator())
    {
        return *r;
    }
    let amount = Some(form.amount.trim().to_owned()).filter(|a| !a.is_empty());
    let path = format!("/web/operator/complaints/{id}/decision");
    let body = json!({ "decision": form.decision, "reason": form.reason, "amount": amount, "revisit_at": form.revisit_at });
    let decision = match Decision::parse(
        &form.decision,
        form.reason.clone(),
        amount.clone(),
        Some(form.revisit_at.trim()),
    ) {
        Ok(d) => d,
        Err(e) => return signed.refused(&e),
    };
    let done = once(&s, &signed, &form.attempt, &path, body, |i| {
        s.gw.decide_complaint(&signed.session.principal, &id, decision, Some(i))
    })
    .await
    .map(|_| ());
    match done {
        Ok(()) => Redirect::to(&format!("/web/operator/complaints/{id}")).into_response(),
        Err(e) => signed.refused(&e),
    }
}
