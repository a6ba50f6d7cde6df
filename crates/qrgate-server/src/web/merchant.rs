//! The merchant's pages: the console (today's takings, the balance, recent
//! payments), the cashier (an amount, then the order's code full screen
//! with its countdown and a live status that turns to paid without a
//! reload), and static codes with their printable poster (A6 to A4, or an
//! SVG download).

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use qrgate_codes::image::{Correction, RenderOptions, render_svg};
use qrgate_core::day::BusinessDay;
use qrgate_gateway::payments::ListQuery;
use qrgate_gateway::views::PaymentView;
use qrgate_gateway::{Error, Role};

use super::{Frame, Signed, html};
use crate::http::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/web/console", get(console))
        .route("/web/cashier", get(cashier))
        .route("/web/cashier/orders", post(new_order))
        .route("/web/cashier/orders/{id}", get(order_page))
        .route("/web/cashier/orders/{id}/events", get(order_events))
        .route("/web/codes", get(codes).post(new_code))
        .route("/web/codes/{id}/poster", get(poster))
        .route("/web/codes/{id}/poster.svg", get(poster_svg))
}

/// Pages of payments the console reads to add up today (100 each).
const TODAY_PAGES: usize = 50;

impl Signed {
    /// Refuse every role but the merchant's (403, as the API does).
    fn merchant(&self) -> Result<(), Box<Response>> {
        self.session
            .principal
            .require(&[Role::Merchant])
            .map_err(|e| Box::new(self.refused(&e)))
    }
}

#[derive(Template)]
#[template(path = "console.html")]
struct ConsolePage {
    f: Frame,
    count_today: usize,
    /// When today has more payments than the console reads.
    more_today: bool,
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
    let today = BusinessDay::of(s.gw.now(), offset).starts_at(offset);
    let (mut count, mut minor, mut more) = (0usize, 0i64, false);
    let mut after: Option<String> = None;
    let mut recent = Vec::new();
    for page in 0..TODAY_PAGES {
        let q = ListQuery {
            limit: Some(100),
            starting_after: after.clone(),
            status: Some("succeeded".into()),
            created_gte: Some(today.to_rfc3339()),
            ..Default::default()
        };
        let list = s.gw.list_payments(p, q).await?;
        for v in &list.data {
            count += 1;
            minor = minor.saturating_add(
                qrgate_core::Money::parse_amount(&v.amount, qrgate_gateway::CURRENCY)?.minor(),
            );
        }
        if page == 0 {
            recent = list.data.iter().take(20).cloned().collect();
        }
        match (list.has_more, list.data.last()) {
            (true, Some(last)) => after = Some(last.id.clone()),
            _ => break,
        }
        more = page + 1 == TODAY_PAGES;
    }
    let bal = s.gw.balance(p, None).await?;
    let cny = bal.balances.iter().find(|b| b.currency == "CNY");
    Ok(ConsolePage {
        f: Frame::of(signed.lang, Some(signed)),
        count_today: count,
        more_today: more,
        amount_today: qrgate_gateway::views::amount(minor, qrgate_gateway::CURRENCY),
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

/// A fresh attempt number (`web_` and 20 random characters).
fn attempt_id(s: &AppState) -> String {
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
struct OrderForm {
    csrf: String,
    attempt: String,
    amount: String,
}

/// Make the order (once per attempt: a second press finds the first) and
/// show its code.
async fn new_order(
    State(s): State<AppState>,
    signed: Signed,
    Form(form): Form<OrderForm>,
) -> Response {
    if let Err(r) = signed
        .check_csrf(&form.csrf)
        .and_then(|()| signed.merchant())
    {
        return *r;
    }
    let p = &signed.session.principal;
    let amount = form.amount.trim();
    let made =
        s.gw.create_order(p, amount, None, Some(form.attempt.clone()), None)
            .await;
    let id = match made {
        Ok(o) => o.id,
        Err(e) if e.code == "duplicate_out_trade_no" => {
            match s.gw.order_by_number(p, &form.attempt).await {
                Ok(o) => o.id,
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

/// How often the status stream looks at the order.
const ORDER_POLL: Duration = Duration::from_millis(250);
/// How long one status stream lasts at most (the page reconnects).
const ORDER_STREAM: Duration = Duration::from_secs(300);

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
    let p = signed.session.principal.clone();
    if let Err(e) = s.gw.get_order(&p, &id).await {
        return signed.refused(&e);
    }
    let started = tokio::time::Instant::now();
    let state = (s, p, id, None::<String>, false);
    let stream = futures_util::stream::unfold(state, move |(s, p, id, last, done)| async move {
        if done {
            return None;
        }
        loop {
            if started.elapsed() > ORDER_STREAM {
                return None;
            }
            let status = match s.gw.get_order(&p, &id).await {
                Ok(o) => o.status,
                Err(e) => format!("error:{}", e.code),
            };
            if last.as_deref() != Some(status.as_str()) {
                let finished = status != "open";
                let event = Event::default().event("status").data(status.clone());
                return Some((
                    Ok::<_, Infallible>(event),
                    (s, p, id, Some(status), finished),
                ));
            }
            tokio::time::sleep(ORDER_POLL).await;
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
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

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
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
            "<svg x=\"24\" y=\"48\" width=\"100\" height=\"100\">{qr}</svg>",
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
        qr = qr,
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

/// A QR code as an `<svg>` element to put in a page (no XML declaration).
fn inline_svg(payload: &str, module_px: u32) -> Result<String, Error> {
    let opts = RenderOptions {
        correction: Correction::Q,
        module_px,
        quiet_zone: 4,
    };
    let svg = render_svg(payload, &opts).map_err(Error::internal)?;
    Ok(match svg.split_once('\n') {
        Some((decl, rest)) if decl.starts_with("<?xml") => rest.trim_end().to_owned(),
        _ => svg,
    })
}
