//! The consumer's wallet: the balance, the payment code to show the
//! cashier (a QR code and its 18 digits, a new one shortly before each
//! runs out, never cached), and the payments made.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
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
}

impl Signed {
    fn consumer(&self) -> Result<(), Box<Response>> {
        self.session
            .principal
            .require(&[Role::Consumer])
            .map_err(|e| Box::new(self.refused(&e)))
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
    code: Code,
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
        let code = fresh_code(&s, &signed).await?;
        Ok::<_, Error>(WalletPage {
            f: Frame::of(signed.lang, Some(&signed)),
            balance,
            reload_after: code.valid_seconds.saturating_sub(5).max(1),
            code,
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
