//! Complaints: the payer files one and accepts or escalates the merchant's
//! answer; the merchant answers or contests an instant refund; the
//! operator (an admin key) decides.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use qrgate_gateway::complaints::{
    Answer, ComplaintListQuery, Decision, FiguresQuery, NewComplaint, PayerMove,
};
use qrgate_gateway::{Error, Role};

use super::AppState;
use super::body::{
    ComplaintAnswerRequest, ComplaintRequest, DecisionRequest, ReasonRequest, ReviewDecisionRequest,
};
use super::extract::{Auth, Meta, StrictJson, StrictQuery, once};
use super::openapi::{IdemHeader, StdErrors};
use super::routes::*;
use qrgate_gateway::reviews::ReviewQuery;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(file, list))
        .routes(routes!(get))
        .routes(routes!(add_photo))
        .routes(routes!(get_photo))
        .routes(routes!(answer))
        .routes(routes!(accept))
        .routes(routes!(escalate))
        .routes(routes!(contest))
        .routes(routes!(decide))
        .routes(routes!(figures))
        .routes(routes!(reviews))
        .routes(routes!(decide_review))
}

/// The operator's queue: complaints waiting for a decision (nearest
/// deadline first), then payments the risk checks flagged (oldest first).
#[utoipa::path(get, path = "/v1/reviews", tag = "admin", security(("bearer" = [])), params(ReviewQuery), responses((status = 200, body = qrgate_gateway::reviews::ReviewQueue), StdErrors))]
pub(super) async fn reviews(
    State(s): State<AppState>,
    Auth(p): Auth,
    StrictQuery(q): StrictQuery<ReviewQuery>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.reviews(&p, q).await?)
}

/// The operator's decision on a flagged payment (`payments`), a fraud
/// report (`fraud-reports`, a complaint's id) or a suspended static code
/// (`static-codes`: `clear` lifts the suspension, `confirm` revokes the
/// code), once each.
#[utoipa::path(post, path = "/v1/reviews/{kind}/{id}/decision", tag = "admin", security(("bearer" = [])), params(("kind" = String, Path, description = "payments, fraud-reports or static-codes"), ("id" = String, Path)), request_body = ReviewDecisionRequest, responses((status = 201, description = "The decision, recorded", body = ReviewDecisionView), StdErrors))]
pub(super) async fn decide_review(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((kind, id)): Path<(String, String)>,
    body: StrictJson<ReviewDecisionRequest>,
) -> ApiResult {
    let v = &body.value;
    let kind = match kind.as_str() {
        "payments" => "payment",
        "fraud-reports" => "fraud_report",
        "static-codes" => "static_code",
        other => {
            return Err(Error::bad_request(
                "invalid_request",
                format!("reviews are of payments, fraud-reports or static-codes; not {other:?}"),
            )
            .into());
        }
    };
    let r =
        s.gw.decide_review(&p, kind, &id, &v.decision, &v.reason)
            .await?;
    ok(
        StatusCode::CREATED,
        &ReviewDecisionView {
            object: "review",
            kind: r.kind,
            subject_id: r.subject_id,
            decision: r.decision,
            reason: r.reason,
            created_at: r.created_at.to_rfc3339(),
        },
    )
}

/// A decision on a flagged payment.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct ReviewDecisionView {
    object: &'static str,
    kind: String,
    subject_id: String,
    decision: String,
    reason: String,
    created_at: String,
}

/// The service figures over a time range (30 days by default): a
/// merchant key's own, one merchant's or all for admins and auditors.
/// Each figure is defined in the README.
#[utoipa::path(get, path = "/v1/complaints/metrics", tag = "complaints", security(("bearer" = [])), params(FiguresQuery), responses((status = 200, body = qrgate_gateway::complaints::ComplaintFigures), StdErrors))]
pub(super) async fn figures(
    State(s): State<AppState>,
    Auth(p): Auth,
    StrictQuery(q): StrictQuery<FiguresQuery>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.complaint_figures(&p, q).await?)
}

/// The payer complains about one of their payments. A small disputed
/// amount (QG-COMPLAINT-INSTANT-REFUND) is refunded in this answer.
#[utoipa::path(post, path = "/v1/complaints", tag = "consumer", security(("bearer" = [])), params(IdemHeader), request_body = ComplaintRequest, responses((status = 201, description = "Filed: refunded_instantly, or open for the merchant", body = qrgate_gateway::complaints::ComplaintView), (status = 200, description = "This payer's complaint about the payment, filed before", body = qrgate_gateway::complaints::ComplaintView), StdErrors))]
pub(super) async fn file(
    State(s): State<AppState>,
    Auth(p): Auth,
    meta: Meta,
    body: StrictJson<ComplaintRequest>,
) -> ApiResult {
    let v = &body.value;
    let new = NewComplaint {
        payment_id: v.payment_id.clone(),
        reason: v.reason.clone(),
        description: v.description.clone(),
        amount: v.amount.as_ref().map(|a| a.0.clone()),
    };
    once(&s, &p, &[Role::Consumer], &meta, &body.bytes, |i| {
        s.gw.file_complaint(&p, new, Some(i))
    })
    .await
}

/// Complaints, newest first: a payer's own, a merchant's, anyone's for
/// admins and auditors.
#[utoipa::path(get, path = "/v1/complaints", tag = "complaints", security(("bearer" = [])), params(ComplaintListQuery), responses((status = 200, body = qrgate_gateway::complaints::ComplaintPage), StdErrors))]
pub(super) async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    StrictQuery(q): StrictQuery<ComplaintListQuery>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.list_complaints(&p, q).await?)
}

/// One complaint with its steps.
#[utoipa::path(get, path = "/v1/complaints/{id}", tag = "complaints", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = qrgate_gateway::complaints::ComplaintView), StdErrors))]
pub(super) async fn get(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(StatusCode::OK, &s.gw.get_complaint(&p, &id).await?)
}

/// The payer adds a photo to their unresolved complaint: the image's
/// bytes as the body, `Content-Type: image/jpeg` or `image/png`, at most
/// QG-COMPLAINT-PHOTO-BYTES, QG-COMPLAINT-PHOTOS per complaint. The same
/// picture again answers the stored photo (200).
#[utoipa::path(post, path = "/v1/complaints/{id}/photos", tag = "consumer", security(("bearer" = [])), params(("id" = String, Path)), request_body(content = Vec<u8>, content_type = "image/jpeg", description = "A JPEG or PNG image"), responses((status = 201, description = "Added", body = qrgate_gateway::complaints::ComplaintPhotoView), (status = 200, description = "The same picture, added before", body = qrgate_gateway::complaints::ComplaintPhotoView), StdErrors))]
pub(super) async fn add_photo(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult {
    use futures_util::StreamExt;
    // Who may add a photo here is settled before the body is read.
    s.gw.check_photo_target(&p, &id).await?;
    let max = s.gw.limits().complaints.photo_max_bytes;
    let too_large = || qrgate_gateway::complaints::photo_too_large(max);
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let declared_len = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    // A body up to twice the limit is read to its end and dropped before
    // the refusal, so a client still sending it reads the 413 instead of a
    // reset connection; a larger one is cut off at once.
    let drain = limit.saturating_mul(2);
    if declared_len.is_some_and(|n| n > max.unsigned_abs()) {
        if declared_len.is_some_and(|n| n <= drain as u64) {
            let mut read = 0usize;
            while let Some(Ok(chunk)) = stream.next().await {
                read = read.saturating_add(chunk.len());
                if read > drain {
                    break;
                }
            }
        }
        return Err(too_large().into());
    }
    // Read no further than the limit, whatever the header said.
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Error::bad_request("invalid_request", format!("could not read the photo: {e}"))
        })?;
        if bytes.len().saturating_add(chunk.len()) > limit {
            return Err(too_large().into());
        }
        bytes.extend_from_slice(&chunk);
    }
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    let (view, fresh) =
        s.gw.add_complaint_photo(&p, &id, content_type, &bytes)
            .await?;
    let status = match fresh {
        qrgate_gateway::Fresh::Created => StatusCode::CREATED,
        qrgate_gateway::Fresh::Done => StatusCode::OK,
    };
    ok(status, &view)
}

/// A complaint photo's bytes, for whoever may read the complaint.
#[utoipa::path(get, path = "/v1/complaints/{id}/photos/{seq}", tag = "complaints", security(("bearer" = [])), params(("id" = String, Path), ("seq" = i64, Path, description = "The photo's number: 1, 2, …")), responses((status = 200, description = "The image", content_type = "image/jpeg", body = Vec<u8>), StdErrors))]
pub(super) async fn get_photo(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, seq)): Path<(String, String)>,
) -> ApiResult {
    use axum::response::IntoResponse;
    let seq: i64 = seq
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| Error::not_found("photo", &format!("{id}/{seq}")))?;
    let (view, bytes) = s.gw.complaint_photo(&p, &id, seq).await?;
    let ext = if view.content_type == "image/png" {
        "png"
    } else {
        "jpg"
    };
    let disposition = format!(
        "inline; filename=\"{}-{}.{ext}\"",
        view.complaint_id, view.seq
    );
    Ok((
        StatusCode::OK,
        [
            ("content-type", view.content_type),
            ("x-content-type-options", "nosniff".to_owned()),
            (
                "content-security-policy",
                "default-src 'none'; sandbox".to_owned(),
            ),
            // Evidence: not kept by browsers or proxies once read.
            ("cache-control", "no-store".to_owned()),
            ("content-disposition", disposition),
        ],
        bytes,
    )
        .into_response())
}

/// The merchant answers an open complaint: refund, explain, or reject.
#[utoipa::path(post, path = "/v1/complaints/{id}/answer", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path), IdemHeader), request_body = ComplaintAnswerRequest, responses((status = 200, body = qrgate_gateway::complaints::ComplaintView), StdErrors))]
pub(super) async fn answer(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    meta: Meta,
    body: StrictJson<ComplaintAnswerRequest>,
) -> ApiResult {
    let v = &body.value;
    let answer = match v.action.as_str() {
        "refund" => Answer::Refund {
            amount: v.amount.as_ref().map(|a| a.0.clone()),
            message: v.message.clone(),
        },
        "explain" => Answer::Explain {
            message: required(v.message.as_deref(), "message", "explain")?,
        },
        "reject" => Answer::Reject {
            reason: required(v.reason.as_deref(), "reason", "reject")?,
        },
        other => {
            return Err(Error::bad_request(
                "invalid_request",
                format!("action must be refund, explain or reject; not {other:?}"),
            )
            .into());
        }
    };
    once(&s, &p, &[Role::Merchant], &meta, &body.bytes, |i| {
        s.gw.answer_complaint(&p, &id, answer, Some(i))
    })
    .await
}

/// The payer accepts the merchant's answer.
#[utoipa::path(post, path = "/v1/complaints/{id}/accept", tag = "consumer", security(("bearer" = [])), params(("id" = String, Path), IdemHeader), responses((status = 200, body = qrgate_gateway::complaints::ComplaintView), StdErrors))]
pub(super) async fn accept(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    meta: Meta,
) -> ApiResult {
    once(&s, &p, &[Role::Consumer], &meta, b"", |i| {
        s.gw.payer_moves_complaint(&p, &id, PayerMove::Accept, Some(i))
    })
    .await
}

/// The payer escalates the merchant's answer to the operator.
#[utoipa::path(post, path = "/v1/complaints/{id}/escalate", tag = "consumer", security(("bearer" = [])), params(("id" = String, Path), IdemHeader), request_body = ReasonRequest, responses((status = 200, body = qrgate_gateway::complaints::ComplaintView), StdErrors))]
pub(super) async fn escalate(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    meta: Meta,
    body: StrictJson<ReasonRequest>,
) -> ApiResult {
    let reason = body.value.reason.clone();
    once(&s, &p, &[Role::Consumer], &meta, &body.bytes, |i| {
        s.gw.payer_moves_complaint(&p, &id, PayerMove::Escalate { reason }, Some(i))
    })
    .await
}

/// The merchant contests an instant refund (QG-COMPLAINT-CONTEST-WINDOW).
#[utoipa::path(post, path = "/v1/complaints/{id}/contest", tag = "merchant", security(("bearer" = [])), params(("id" = String, Path), IdemHeader), request_body = ReasonRequest, responses((status = 200, body = qrgate_gateway::complaints::ComplaintView), StdErrors))]
pub(super) async fn contest(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    meta: Meta,
    body: StrictJson<ReasonRequest>,
) -> ApiResult {
    let reason = body.value.reason.clone();
    once(&s, &p, &[Role::Merchant], &meta, &body.bytes, |i| {
        s.gw.contest_complaint(&p, &id, reason, Some(i))
    })
    .await
}

/// The operator (an admin key) decides an escalated or contested complaint.
#[utoipa::path(post, path = "/v1/complaints/{id}/decision", tag = "admin", security(("bearer" = [])), params(("id" = String, Path), IdemHeader), request_body = DecisionRequest, responses((status = 200, body = qrgate_gateway::complaints::ComplaintView), StdErrors))]
pub(super) async fn decide(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    meta: Meta,
    body: StrictJson<DecisionRequest>,
) -> ApiResult {
    let v = &body.value;
    let decision = Decision::parse(
        &v.decision,
        v.reason.clone(),
        v.amount.as_ref().map(|a| a.0.clone()),
        v.revisit_at.as_deref(),
    )?;
    once(&s, &p, &[Role::Admin], &meta, &body.bytes, |i| {
        s.gw.decide_complaint(&p, &id, decision, Some(i))
    })
    .await
}

fn required(v: Option<&str>, field: &str, action: &str) -> Result<String, Error> {
    v.map(str::to_owned).ok_or_else(|| {
        Error::bad_request(
            "invalid_request",
            format!("{field} is required to {action}"),
        )
    })
}
