//! The merchant's complaints inbox: the complaints about its payments,
//! newest first; one with its steps and the payer's photos; the answer
//! (refund all or part, explain, or reject with a reason) and the contest
//! of an instant refund, each once per attempt.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;

use qrgate_gateway::Error;
use qrgate_gateway::complaints::{Answer, ComplaintListQuery, ComplaintView};

use super::payments::once;
use super::{Frame, Signed, html};
use crate::http::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/web/complaints", get(inbox))
        .route("/web/complaints/{id}", get(complaint))
        .route("/web/complaints/{id}/photos/{seq}", get(photo))
        .route("/web/complaints/{id}/answer", post(answer))
        .route("/web/complaints/{id}/contest", post(contest))
}

#[derive(Template)]
#[template(path = "complaints.html")]
struct InboxPage {
    f: Frame,
    complaints: Vec<ComplaintView>,
}

async fn inbox(State(s): State<AppState>, signed: Signed) -> Response {
    if let Err(r) = signed.merchant() {
        return *r;
    }
    let q = ComplaintListQuery {
        limit: Some(50),
        ..Default::default()
    };
    match s.gw.list_complaints(&signed.session.principal, q).await {
        Ok(page) => html(&InboxPage {
            f: Frame::of(signed.lang, Some(&signed)),
            complaints: page.data,
        }),
        Err(e) => signed.refused(&e),
    }
}

#[derive(Template)]
#[template(path = "complaint.html")]
struct ComplaintPage {
    f: Frame,
    k: ComplaintView,
    attempt: String,
}

async fn complaint(State(s): State<AppState>, signed: Signed, Path(id): Path<String>) -> Response {
    if let Err(r) = signed.merchant() {
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

/// A photo of the complaint, as the API serves it (inert).
/// (For whoever may read the complaint: its merchant, the operator.)
async fn photo(
    State(s): State<AppState>,
    signed: Signed,
    Path((id, seq)): Path<(String, String)>,
) -> Response {
    let Some(seq) = seq.parse::<i64>().ok().filter(|n| *n >= 1) else {
        return signed.refused(&Error::not_found("photo", &format!("{id}/{seq}")));
    };
    match s
        .gw
        .complaint_photo(&signed.session.principal, &id, seq)
        .await
    {
        Ok((view, bytes)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, view.content_type),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; sandbox".to_owned(),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => signed.refused(&e),
    }
}

#[derive(Deserialize)]
struct AnswerForm {
    csrf: String,
    attempt: String,
    action: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    text: String,
}

async fn answer(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<AnswerForm>,
) -> Response {
    if let Err(r) = signed
        .check_csrf(&form.csrf)
        .and_then(|()| signed.merchant())
    {
        return *r;
    }
    let text = form.text.trim().to_owned();
    let amount = Some(form.amount.trim().to_owned()).filter(|a| !a.is_empty());
    let answer = match form.action.as_str() {
        "refund" => Answer::Refund {
            amount: amount.clone(),
            message: Some(text.clone()).filter(|t| !t.is_empty()),
        },
        "explain" => Answer::Explain {
            message: text.clone(),
        },
        "reject" => Answer::Reject {
            reason: text.clone(),
        },
        other => {
            let e = Error::bad_request(
                "invalid_request",
                format!("action must be refund, explain or reject; not {other:?}"),
            );
            return signed.refused(&e);
        }
    };
    let path = format!("/web/complaints/{id}/answer");
    let body = json!({ "action": form.action, "amount": amount, "text": text });
    let done = once(&s, &signed, &form.attempt, &path, body, |i| {
        s.gw.answer_complaint(&signed.session.principal, &id, answer, Some(i))
    })
    .await
    .map(|_| ());
    back_to(&signed, &id, done)
}

#[derive(Deserialize)]
struct ContestForm {
    csrf: String,
    attempt: String,
    reason: String,
}

async fn contest(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<ContestForm>,
) -> Response {
    if let Err(r) = signed
        .check_csrf(&form.csrf)
        .and_then(|()| signed.merchant())
    {
        return *r;
    }
    let reason = form.reason.trim().to_owned();
    let path = format!("/web/complaints/{id}/contest");
    let body = json!({ "reason": reason });
    let done = once(&s, &signed, &form.attempt, &path, body, |i| {
        s.gw.contest_complaint(&signed.session.principal, &id, reason.clone(), Some(i))
    })
    .await
    .map(|_| ());
    back_to(&signed, &id, done)
}

/// Back to the complaint after a move, or the refusal as a page.
fn back_to(signed: &Signed, id: &str, done: Result<(), Error>) -> Response {
    match done {
        Ok(()) => Redirect::to(&format!("/web/complaints/{id}")).into_response(),
        Err(e) => signed.refused(&e),
    }
}
