//! The consumer's wallet: the balance, the payment code to show the
//! cashier (a QR code and its 18 digits, a new one shortly before each
//! runs out, never cached), paying a shop's code from a photo of it (read
//! by the server within the upload limits, verified, and shown before
//! anything is paid), and the payments made.

use askama::Template;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;

use qrgate_gateway::payments::ListQuery;
use qrgate_gateway::views::PaymentView;
use qrgate_gateway::{Error, Role};

use super::{Frame, Signed, html, inline_svg};
use crate::http::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/web/wallet", get(wallet))
        .route("/web/wallet/code", get(code))
        .route(
            "/web/wallet/scan",
            post(scan).layer(DefaultBodyLimit::max(MAX_PHOTO)),
        )
        .route("/web/wallet/pay", post(pay))
        .route("/web/wallet/payments/{id}", get(paid))
        .route("/web/wallet/payments/{id}/complaint", post(complain))
        .route("/web/wallet/complaints/{id}", get(complaint))
        .route(
            "/web/wallet/complaints/{id}/photos",
            post(add_photo).layer(DefaultBodyLimit::max(MAX_COMPLAINT_PHOTO_FORM)),
        )
}

/// The largest photo of a shop's code the wallet takes.
const MAX_PHOTO: usize = 8 * 1024 * 1024;

/// The largest form carrying a complaint photo (the photo's own limit,
/// QG-COMPLAINT-PHOTO-BYTES, is the gateway's to check; this bounds what
/// is read at all).
const MAX_COMPLAINT_PHOTO_FORM: usize = 3 * 1024 * 1024;

/// Photos read at once (each takes a core and up to some 100 MB).
static SCANS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

impl Signed {
    fn consumer(&self) -> Result<(), Box<Response>> {
        self.require(&[Role::Consumer])
    }
}

/// A fresh payment code to show.
struct Code {
    numeric: String,
    svg: String,
    expires_at: String,
    valid_seconds: u8,
}

async fn fresh_code(s: &AppState, signed: &Signed) -> Result<Code, Error> {
    let c = s.gw.issue_payment_code(&signed.session.principal).await?;
    Ok(Code {
        svg: inline_svg(&c.qr, 6)?,
        numeric: c.numeric,
        expires_at: c.expires_at,
        valid_seconds: c.valid_seconds,
    })
}

#[derive(Template)]
#[template(path = "wallet.html")]
struct WalletPage {
    f: Frame,
    balance: String,
    /// None when no code could be issued now (the payer asked too often):
    /// the page says why and tries again.
    code: Option<Code>,
    no_code: String,
    /// When a page without its script reloads for a new code.
    reload_after: u8,
    payments: Vec<PaymentView>,
}

async fn wallet(State(s): State<AppState>, signed: Signed) -> Response {
    if let Err(r) = signed.consumer() {
        return *r;
    }
    let page = async {
        let p = &signed.session.principal;
        let me = p.subject.clone().unwrap_or_default();
        let balance = s.gw.get_customer(p, &me).await?.balance;
        let q = ListQuery {
            limit: Some(20),
            ..Default::default()
        };
        let payments = s.gw.list_payments(p, q).await?.data;
        // The balance and the payments show even when no code can be
        // issued right now.
        let (code, no_code) = match fresh_code(&s, &signed).await {
            Ok(c) => (Some(c), String::new()),
            Err(e) if e.kind != qrgate_gateway::Kind::Internal => (None, e.message),
            Err(e) => return Err(e),
        };
        let reload_after = code
            .as_ref()
            .map_or(10, |c| c.valid_seconds.saturating_sub(5).max(1));
        Ok::<_, Error>(WalletPage {
            f: Frame::of(signed.lang, Some(&signed)),
            balance,
            code,
            no_code,
            reload_after,
            payments,
        })
    }
    .await;
    match page {
        Ok(p) => html(&p),
        Err(e) => signed.refused(&e),
    }
}

/// A new payment code for the page's script: its digits, its QR code as
/// SVG, and when it runs out.
async fn code(State(s): State<AppState>, signed: Signed) -> Response {
    if let Err(r) = signed.consumer() {
        return *r;
    }
    match fresh_code(&s, &signed).await {
        Ok(c) => (
            [(header::CONTENT_TYPE, "application/json")],
            json!({
                "numeric": c.numeric,
                "svg": c.svg,
                "expires_at": c.expires_at,
                "valid_seconds": c.valid_seconds,
            })
            .to_string(),
        )
            .into_response(),
        Err(e) => signed.refused(&e),
    }
}

#[derive(Template)]
#[template(path = "scanned.html")]
struct ScannedPage {
    f: Frame,
    payload: String,
    merchant_name: String,
    merchant_city: String,
    /// A dynamic code's amount; empty for a static code (the payer types it).
    amount: String,
    status: String,
    risk_prompt: String,
    attempt: String,
}

/// A photo of a shop's code: read it (within the upload limits), verify the
/// code, and show whom it pays before anything is paid.
async fn scan(State(s): State<AppState>, signed: Signed, form: Multipart) -> Response {
    if let Err(r) = signed.consumer() {
        return *r;
    }
    let Some(mut parts) = super::Parts::read(form).await else {
        return unreadable(&signed);
    };
    let csrf = parts.text("csrf");
    let photo = parts.take("photo").map(|p| p.bytes).unwrap_or_default();
    if let Err(r) = signed.check_csrf(&csrf) {
        return *r;
    }
    // Decoding a photo takes memory and a core: a few at a time, the rest
    // are asked to try again in a moment.
    let Ok(_permit) = SCANS.try_acquire() else {
        let e = Error::new(
            qrgate_gateway::Kind::TooManyRequests {
                retry_after_seconds: 2,
            },
            "rate_limited",
            "other photos are being read just now: try again in a moment",
        );
        return signed.refused(&e);
    };
    let found = tokio::task::spawn_blocking(move || qrgate_codes::image::scan_upload(&photo)).await;
    let codes = match found {
        Ok(Ok(codes)) => codes,
        Ok(Err(qrgate_codes::image::ImageError::Decode(_))) | Err(_) => {
            return unreadable(&signed);
        }
        Ok(Err(_)) => return no_code(&signed),
    };
    // Every code in the photo is checked; only genuine ones count, and a
    // photo with two different genuine codes (a sticker beside the shop's)
    // is refused rather than guessed at.
    let mut genuine: Vec<(String, qrgate_gateway::payments::CodeVerification)> = Vec::new();
    for c in codes {
        if genuine.iter().any(|(p, _)| *p == c.payload) {
            continue;
        }
        if let Ok(v) = s.gw.verify_code(&c.payload).await {
            genuine.push((c.payload, v));
        }
    }
    let (payload, v) = match genuine.len() {
        0 => return no_code(&signed),
        1 => genuine.remove(0),
        _ => {
            let e = Error::new(
                qrgate_gateway::Kind::Unprocessable,
                "several_codes",
                "the photo shows more than one payment code: photograph only the one you mean to pay",
            );
            return signed.refused(&e);
        }
    };
    html(&ScannedPage {
        f: Frame::of(signed.lang, Some(&signed)),
        payload,
        merchant_name: v.merchant_name,
        merchant_city: v.merchant_city,
        amount: v.amount.unwrap_or_default(),
        status: v.status,
        risk_prompt: v.risk_prompt,
        attempt: super::merchant::attempt_id(&s),
    })
}

fn unreadable(signed: &Signed) -> Response {
    let e = Error::bad_request(
        "invalid_request",
        "the photo could not be read: send one JPEG or PNG photo (at most 8 MiB and 16 megapixels)",
    );
    signed.refused(&e)
}

fn no_code(signed: &Signed) -> Response {
    let e = Error::new(
        qrgate_gateway::Kind::Unprocessable,
        "code_not_found",
        "no QR code was found in the photo: hold the phone steady, fill the frame with the code, and try again",
    );
    signed.refused(&e)
}

#[derive(Deserialize)]
struct PayForm {
    csrf: String,
    attempt: String,
    payload: String,
    #[serde(default)]
    amount: String,
}

/// Pay the scanned code (once per attempt), then show the payment.
async fn pay(State(s): State<AppState>, signed: Signed, Form(form): Form<PayForm>) -> Response {
    if let Err(r) = signed
        .check_csrf(&form.csrf)
        .and_then(|()| signed.consumer())
    {
        return *r;
    }
    let amount = Some(form.amount.trim()).filter(|a| !a.is_empty());
    let body = json!({ "payload": form.payload, "amount": amount });
    let made = super::payments::once(&s, &signed, &form.attempt, "/web/wallet/pay", body, |i| {
        s.gw.pay_scanned(
            &signed.session.principal,
            &form.payload,
            amount,
            None,
            Some(i),
        )
    })
    .await
    .and_then(super::payments::made_id);
    match made {
        Ok(id) => Redirect::to(&format!("/web/wallet/payments/{id}")).into_response(),
        Err(e) if e.payment_id.is_some() => {
            let id = e.payment_id.clone().unwrap_or_default();
            Redirect::to(&format!("/web/wallet/payments/{id}")).into_response()
        }
        Err(e) => signed.refused(&e),
    }
}

#[derive(Template)]
#[template(path = "paid.html")]
struct PaidPage {
    f: Frame,
    p: PaymentView,
    failure: String,
    attempt: String,
}

/// One of the payer's payments.
async fn paid(State(s): State<AppState>, signed: Signed, Path(id): Path<String>) -> Response {
    if let Err(r) = signed.consumer() {
        return *r;
    }
    match s.gw.get_payment(&signed.session.principal, &id).await {
        Ok(p) => html(&PaidPage {
            f: Frame::of(signed.lang, Some(&signed)),
            failure: p
                .failure
                .as_ref()
                .map(|f| format!("{}: {}", f.code, f.message))
                .unwrap_or_default(),
            p,
            attempt: super::merchant::attempt_id(&s),
        }),
        Err(e) => signed.refused(&e),
    }
}

#[derive(Deserialize)]
struct ComplainForm {
    csrf: String,
    attempt: String,
    reason: String,
    description: String,
    #[serde(default)]
    amount: String,
}

/// The payer complains about one of their payments (once per press): a
/// small disputed amount comes back in this answer (QG-COMPLAINT-INSTANT-REFUND).
async fn complain(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<ComplainForm>,
) -> Response {
    if let Err(r) = signed
        .check_csrf(&form.csrf)
        .and_then(|()| signed.consumer())
    {
        return *r;
    }
    let amount = Some(form.amount.trim().to_owned()).filter(|a| !a.is_empty());
    let new = qrgate_gateway::complaints::NewComplaint {
        payment_id: id.clone(),
        reason: form.reason.clone(),
        description: form.description.clone(),
        amount: amount.clone(),
    };
    let path = format!("/web/wallet/payments/{id}/complaint");
    let body = json!({ "reason": form.reason, "description": form.description, "amount": amount });
    let made = super::payments::once(&s, &signed, &form.attempt, &path, body, |i| {
        s.gw.file_complaint(&signed.session.principal, new, Some(i))
    })
    .await
    .and_then(super::payments::made_id);
    match made {
        Ok(kid) => Redirect::to(&format!("/web/wallet/complaints/{kid}")).into_response(),
        Err(e) => signed.refused(&e),
    }
}

#[derive(Template)]
#[template(path = "my_complaint.html")]
struct MyComplaintPage {
    f: Frame,
    k: qrgate_gateway::complaints::ComplaintView,
}

/// One of the payer's complaints: where it stands, its steps and photos.
async fn complaint(State(s): State<AppState>, signed: Signed, Path(id): Path<String>) -> Response {
    if let Err(r) = signed.consumer() {
        return *r;
    }
    match s.gw.get_complaint(&signed.session.principal, &id).await {
        Ok(k) => html(&MyComplaintPage {
            f: Frame::of(signed.lang, Some(&signed)),
            k,
        }),
        Err(e) => signed.refused(&e),
    }
}

/// The payer adds a photo to their complaint (the gateway checks its type,
/// size and count, and that the complaint is theirs and unresolved).
async fn add_photo(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    form: Multipart,
) -> Response {
    if let Err(r) = signed.consumer() {
        return *r;
    }
    let Some(mut parts) = super::Parts::read(form).await else {
        return unreadable(&signed);
    };
    let csrf = parts.text("csrf");
    let (photo, content_type) = match parts.take("photo") {
        Some(p) => (p.bytes, p.content_type),
        None => (Default::default(), None),
    };
    if let Err(r) = signed.check_csrf(&csrf) {
        return *r;
    }
    match s
        .gw
        .add_complaint_photo(
            &signed.session.principal,
            &id,
            content_type.as_deref(),
            &photo,
        )
        .await
    {
        Ok(_) => Redirect::to(&format!("/web/wallet/complaints/{id}")).into_response(),
        Err(e) => signed.refused(&e),
    }
}
