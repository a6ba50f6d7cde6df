//! The merchant's pages: the console (today's takings, the balance, recent
//! payments), the cashier (an amount, then the order's code full screen
//! with its countdown and a live status that turns to paid without a
//! reload), and static codes with their printable poster (A6 to A4, or an
//! SVG download).

use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use qrgate_core::day::BusinessDay;
use qrgate_gateway::payments::ListQuery;
use qrgate_gateway::views::PaymentView;
use qrgate_gateway::{Error, Role};

use super::session::CsrfForm;
use super::{Frame, Signed, html, inline_svg};
use crate::http::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/web/console", get(console))
        .route("/web/cashier", get(cashier).post(sale))
        .route("/web/cashier/orders/{id}", get(order_page))
        .route("/web/cashier/orders/{id}/events", get(order_events))
        .route("/web/codes", get(codes).post(new_code))
        .route("/web/codes/{id}/poster", get(poster))
        .route("/web/codes/{id}/poster.svg", get(poster_svg))
}

impl Signed {
    /// Refuse every role but the merchant's (403, as the API does).
    pub(super) fn merchant(&self) -> Result<(), Box<Response>> {
        self.require(&[Role::Merchant])
    }
}

#[derive(Template)]
#[template(path = "console.html")]
struct ConsolePage {
    f: Frame,
    count_today: i64,
    amount_today: String,
    pending: String,
    available: String,
    recent: Vec<PaymentView>,
}

async fn console(State(s): State<AppState>, signed: Signed) -> Response {
    if let Err(r) = signed.merchant() {
        return *r;
    }
    match console_page(&s, &signed).await {
        Ok(page) => html(&page),
        Err(e) => signed.refused(&e),
    }
}

async fn console_page(s: &AppState, signed: &Signed) -> Result<ConsolePage, Error> {
    let p = &signed.session.principal;
    let offset = s.gw.limits().business_offset_minutes;
    let now = s.gw.now();
    let today = BusinessDay::of(now, offset);
    let (count, amount) =
        s.gw.takings(p, today.starts_at(offset), today.ends_at(offset))
            .await?;
    let q = ListQuery {
        limit: Some(20),
        ..Default::default()
    };
    let recent = s.gw.list_payments(p, q).await?.data;
    let bal = s.gw.balance(p, None).await?;
    let cny = bal.balances.iter().find(|b| b.currency == "CNY");
    Ok(ConsolePage {
        f: Frame::of(signed.lang, Some(signed)),
        count_today: count,
        amount_today: amount,
        pending: cny.map_or_else(|| "0.00".into(), |b| b.pending.clone()),
        available: cny.map_or_else(|| "0.00".into(), |b| b.available.clone()),
        recent,
    })
}

#[derive(Template)]
#[template(path = "cashier.html")]
struct CashierPage {
    f: Frame,
    /// This attempt's number: the order's `out_trade_no`, so pressing the
    /// button twice makes one order.
    attempt: String,
    amount: String,
}

async fn cashier(State(s): State<AppState>, signed: Signed) -> Response {
    if let Err(r) = signed.merchant() {
        return *r;
    }
    html(&CashierPage {
        f: Frame::of(signed.lang, Some(&signed)),
        attempt: attempt_id(&s),
        amount: String::new(),
    })
}

/// Whether two amounts are the same (as the API parses them).
fn same_amount(a: &str, b: &str) -> bool {
    let parse = |x: &str| qrgate_core::Money::parse_amount(x, qrgate_gateway::CURRENCY).ok();
    parse(a).is_some_and(|m| Some(m) == parse(b))
}

/// A fresh attempt number (`web_` and 15 random characters).
pub(super) fn attempt_id(s: &AppState) -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 15];
    if s.rng().fill(&mut b).is_err() {
        return format!("web_{}", s.gw.now().unix_millis());
    }
    let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
    let text: String = b
        .iter()
        .map(|x| char::from(alphabet[usize::from(*x) % alphabet.len()]))
        .collect();
    format!("web_{text}")
}

#[derive(Deserialize)]
struct SaleForm {
    csrf: String,
    attempt: String,
    amount: String,
    /// The customer's code, typed by a barcode scanner (digits, then
    /// Enter) or pasted; empty to show the shop's code instead.
    #[serde(default)]
    auth_code: String,
}

/// A sale at the till: with the customer's code, charge it; without, make
/// the order (once per attempt: a second press finds the first) and show
/// its code.
async fn sale(State(s): State<AppState>, signed: Signed, Form(form): Form<SaleForm>) -> Response {
    if let Err(r) = signed
        .check_csrf(&form.csrf)
        .and_then(|()| signed.merchant())
    {
        return *r;
    }
    let amount = form.amount.trim();
    let code = form.auth_code.trim();
    if !code.is_empty() {
        return super::payments::charge(&s, &signed, &form.attempt, amount, code).await;
    }
    let p = &signed.session.principal;
    let made =
        s.gw.create_order(p, amount, None, Some(form.attempt.clone()), None)
            .await;
    let id = match made {
        Ok(o) => o.id,
        Err(e) if e.code == "duplicate_out_trade_no" => {
            match s.gw.order_by_number(p, &form.attempt).await {
                // The same press again: its order.
                Ok(o) if o.status == "open" && same_amount(&o.amount, amount) => o.id,
                // An old form sent again (the browser's back button) with
                // another sale: a fresh form, nothing made.
                Ok(_) => {
                    return html(&CashierPage {
                        f: Frame::of(signed.lang, Some(&signed)),
                        attempt: attempt_id(&s),
                        amount: amount.to_owned(),
                    });
                }
                Err(e) => return signed.refused(&e),
            }
        }
        Err(e) => return signed.refused(&e),
    };
    Redirect::to(&format!("/web/cashier/orders/{id}")).into_response()
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    f: Frame,
    id: String,
    amount: String,
    status: String,
    expires_at: String,
    qr_svg: String,
}

async fn order_page(State(s): State<AppState>, signed: Signed, Path(id): Path<String>) -> Response {
    if let Err(r) = signed.merchant() {
        return *r;
    }
    let o = match s.gw.get_order(&signed.session.principal, &id).await {
        Ok(o) => o,
        Err(e) => return signed.refused(&e),
    };
    let qr_svg = match inline_svg(&o.payload, 8) {
        Ok(svg) => svg,
        Err(e) => return signed.refused(&e),
    };
    html(&OrderPage {
        f: Frame::of(signed.lang, Some(&signed)),
        id: o.id,
        amount: o.amount,
        status: o.status,
        expires_at: o.expires_at,
        qr_svg,
    })
}

/// How often the cashier's page looks at the order.
const ORDER_POLL: Duration = Duration::from_secs(1);

/// The order's status as Server-Sent Events: one `status` event now and
/// one each time it changes, until it is no longer open.
async fn order_events(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = signed.merchant() {
        return *r;
    }
    if let Err(e) = s.gw.get_order(&signed.session.principal, &id).await {
        return signed.refused(&e);
    }
    super::live(s, &signed, "status", ORDER_POLL, move |s, p| {
        let id = id.clone();
        async move {
            let status = s.gw.get_order(&p, &id).await?.status;
            let finished = status != "open";
            Ok((status, finished))
        }
    })
}

#[derive(Template)]
#[template(path = "codes.html")]
struct CodesPage {
    f: Frame,
    codes: Vec<CodeRow>,
}

struct CodeRow {
    id: String,
    status: &'static str,
    created_at: String,
}

async fn codes(State(s): State<AppState>, signed: Signed) -> Response {
    if let Err(r) = signed.merchant() {
        return *r;
    }
    let list = match s.gw.list_static_codes(&signed.session.principal).await {
        Ok(l) => l,
        Err(e) => return signed.refused(&e),
    };
    let t = signed.lang.text();
    html(&CodesPage {
        f: Frame::of(signed.lang, Some(&signed)),
        codes: list
            .data
            .into_iter()
            .map(|c| CodeRow {
                id: c.id,
                status: match c.status {
                    "suspended" => t.status_suspended,
                    "revoked" => t.status_revoked,
                    _ => t.status_active,
                },
                created_at: c.created_at,
            })
            .collect(),
    })
}

async fn new_code(
    State(s): State<AppState>,
    signed: Signed,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = signed
        .check_csrf(&form.csrf)
        .and_then(|()| signed.merchant())
    {
        return *r;
    }
    match s.gw.create_static_code(&signed.session.principal).await {
        Ok(c) => Redirect::to(&format!("/web/codes/{}/poster", c.id)).into_response(),
        Err(e) => signed.refused(&e),
    }
}

#[derive(Deserialize)]
struct PosterQuery {
    size: Option<String>,
}

/// The paper sizes a poster prints on.
const SIZES: [&str; 3] = ["a6", "a5", "a4"];

#[derive(Template)]
#[template(path = "poster.html")]
struct PosterPage {
    f: Frame,
    id: String,
    size: &'static str,
    sizes: [&'static str; 3],
    name: String,
    name_local: String,
    city: String,
    risk_prompt: &'static str,
    status: &'static str,
    qr_svg: String,
}

/// What a poster shows of the code and its merchant.
struct PosterParts {
    id: String,
    name: String,
    name_local: String,
    city: String,
    status: &'static str,
    payload: String,
}

async fn poster_parts(s: &AppState, signed: &Signed, id: &str) -> Result<PosterParts, Error> {
    let p = &signed.session.principal;
    let code = s.gw.get_static_code(p, id).await?;
    let m = s.gw.get_merchant(p, &code.merchant_id).await?;
    Ok(PosterParts {
        id: code.id,
        name: m.name,
        name_local: m.name_local.unwrap_or_default(),
        city: m.city,
        status: code.status,
        payload: code.payload,
    })
}

async fn poster(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<PosterQuery>,
) -> Response {
    if let Err(r) = signed.merchant() {
        return *r;
    }
    let size = SIZES
        .iter()
        .copied()
        .find(|z| q.size.as_deref() == Some(*z))
        .unwrap_or("a5");
    let parts = match poster_parts(&s, &signed, &id).await {
        Ok(p) => p,
        Err(e) => return signed.refused(&e),
    };
    let qr_svg = match inline_svg(&parts.payload, 10) {
        Ok(svg) => svg,
        Err(e) => return signed.refused(&e),
    };
    html(&PosterPage {
        f: Frame::of(signed.lang, Some(&signed)),
        id: parts.id,
        size,
        sizes: SIZES,
        name: parts.name,
        name_local: parts.name_local,
        city: parts.city,
        risk_prompt: signed.lang.text().check_genuine,
        status: parts.status,
        qr_svg,
    })
}

/// The poster as one SVG file (the code, the name and city, "scan to pay"
/// in both languages, the code's id and how to check it is genuine), to
/// print elsewhere.
async fn poster_svg(State(s): State<AppState>, signed: Signed, Path(id): Path<String>) -> Response {
    if let Err(r) = signed.merchant() {
        return *r;
    }
    let parts = match poster_parts(&s, &signed, &id).await {
        Ok(p) => p,
        Err(e) => return signed.refused(&e),
    };
    let qr = match inline_svg(&parts.payload, 10) {
        Ok(svg) => svg,
        Err(e) => return signed.refused(&e),
    };
    let esc = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    // A5 in millimetres; the code is 100 mm wide.
    let svg = format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"148mm\" height=\"210mm\" viewBox=\"0 0 148 210\" font-family=\"sans-serif\">",
            "<rect width=\"148\" height=\"210\" fill=\"#fff\"/>",
            "<text x=\"74\" y=\"22\" font-size=\"9\" text-anchor=\"middle\" font-weight=\"bold\">扫码付款 · Scan to pay</text>",
            "<text x=\"74\" y=\"34\" font-size=\"7\" text-anchor=\"middle\">{name}</text>",
            "<text x=\"74\" y=\"42\" font-size=\"5\" text-anchor=\"middle\">{local}{city}</text>",
            "{qr}",
            "<text x=\"74\" y=\"158\" font-size=\"4\" text-anchor=\"middle\">{id}</text>",
            "<text x=\"74\" y=\"170\" font-size=\"3.2\" text-anchor=\"middle\">Check your wallet shows {name}, {city} before you pay.</text>",
            "<text x=\"74\" y=\"176\" font-size=\"3.2\" text-anchor=\"middle\">付款前请确认钱包显示的是本店名称。</text>",
            "</svg>\n"
        ),
        name = esc(&parts.name),
        local = if parts.name_local.is_empty() {
            String::new()
        } else {
            format!("{} · ", esc(&parts.name_local))
        },
        city = esc(&parts.city),
        qr = placed(&qr, 24, 48, 100),
        id = esc(&parts.id),
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "image/svg+xml".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-poster.svg\"", parts.id),
            ),
        ],
        svg,
    )
        .into_response()
}

/// A QR code's `<svg>` element placed at (`x`, `y`) and `size` wide in
/// the poster's units: its own width and height are replaced (its viewBox
/// keeps the modules in proportion), so the whole code is drawn.
fn placed(svg: &str, x: u32, y: u32, size: u32) -> String {
    let Some(rest) = svg.strip_prefix("<svg ") else {
        return svg.to_owned();
    };
    let width = rest
        .split("width=\"")
        .nth(1)
        .and_then(|w| w.split('"').next())
        .unwrap_or_default();
    let rest = rest.replacen(
        &format!("width=\"{width}\" height=\"{width}\""),
        &format!("x=\"{x}\" y=\"{y}\" width=\"{size}\" height=\"{size}\""),
        1,
    );
    format!("<svg {rest}")
}
