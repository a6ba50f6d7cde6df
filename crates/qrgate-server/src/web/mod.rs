//! The web pages, served by `qrgate serve` beside the API: server-rendered
//! HTML (askama templates, compiled in), one small CSS file and one small
//! script (no inline script: the Content-Security-Policy forbids it), and
//! Server-Sent Events for live status. Pages act through the gateway with
//! the signed-in key's role, exactly as the API does, never on the store.
//!
//! - `session.rs`: sign-in, sign-out, the session cookie, CSRF;
//! - `merchant.rs`: the console, the cashier (order code and its live
//!   status), static codes and their printable poster;
//! - `payments.rs`: a charge at the till, a payment's page with refund
//!   and cancel, the console's live list, and `once` (a money-moving form
//!   run once per attempt);
//! - `complaints.rs`: the merchant's complaints inbox;
//! - `money.rs`: the merchant's statements and webhook endpoints;
//! - `wallet.rs`: the consumer's wallet (payment code, paying a shop's
//!   code from a photo, complaints);
//! - `auditor.rs`: the books, the audit chain, signed conformance reports;
//! - `operator.rs`: the review queue and complaint decisions;
//! - `i18n.rs`: the English and Chinese strings.

mod auditor;
mod complaints;
mod i18n;
mod merchant;
mod money;
mod operator;
mod payments;
mod session;
mod wallet;

use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use qrgate_gateway::Error;

use crate::http::AppState;
pub use i18n::Lang;
use i18n::Text;
pub(crate) use session::Signed;

/// The pages' routes, with their security headers.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/web/") }))
        .route("/web", get(|| async { Redirect::to("/web/") }))
        .route("/web/", get(home))
        .route("/assets/app.css", get(css))
        .route("/assets/app.js", get(js))
        .route("/assets/{file}", get(page_css))
        .merge(session::routes())
        .merge(merchant::routes())
        .merge(payments::routes())
        .merge(wallet::routes())
        .merge(complaints::routes())
        .merge(operator::routes())
        .merge(auditor::routes())
        .merge(money::routes())
        .layer(middleware::from_fn_with_state(state, headers))
}

/// Where a signed-in key goes first.
async fn home(signed: Result<Signed, Response>) -> Response {
    match signed {
        Err(r) => r,
        Ok(s) => match s.session.principal.role {
            qrgate_gateway::Role::Merchant => Redirect::to("/web/console").into_response(),
            qrgate_gateway::Role::Consumer => Redirect::to("/web/wallet").into_response(),
            qrgate_gateway::Role::Admin => Redirect::to("/web/operator").into_response(),
            qrgate_gateway::Role::Auditor => Redirect::to("/web/audit").into_response(),
        },
    }
}

/// The Content-Security-Policy of every page: nothing but this origin's
/// own files, no inline script or style, no framing, forms only to here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn headers(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if state.gw.secure_cookies() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    // A response that set its own policy (a photo: sandboxed) keeps it.
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        // Same-origin: the pages' own form posts carry their Origin (the
        // sign-in checks it); nothing leaks to other sites.
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    // Pages carry a session's data: never cached; the assets may be.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

const APP_CSS: &str = include_str!("../../assets/app.css");
const APP_JS: &str = include_str!("../../assets/app.js");

async fn css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `page-a6.css`, `page-a5.css`, `page-a4.css`: the printed sheet of a
/// poster (an `@page` rule cannot be chosen by a class).
async fn page_css(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let rule = match file.as_str() {
        "page-a6.css" => "@page { size: A6; margin: 5mm; }\n",
        "page-a5.css" => "@page { size: A5; margin: 8mm; }\n",
        "page-a4.css" => "@page { size: A4; margin: 10mm; }\n",
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    asset("text/css; charset=utf-8", rule)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// How long one live stream lasts at most (the browser reconnects).
const STREAM_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// A live view as Server-Sent Events: `read` now and every `every`, one
/// `event` each time what it reads changes, until it says the value is
/// final. Each look first checks that the session is still live (signed
/// out, expired or its key revoked: the stream ends); a failed read is
/// skipped and tried again.
pub(crate) fn live<F, Fut>(
    s: AppState,
    signed: &Signed,
    event: &'static str,
    every: std::time::Duration,
    read: F,
) -> Response
where
    F: Fn(AppState, qrgate_gateway::Principal) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(String, bool), Error>> + Send,
{
    use axum::response::sse::{Event, KeepAlive, Sse};
    let token = signed.token.clone();
    let p = signed.session.principal.clone();
    let started = tokio::time::Instant::now();
    let read = std::sync::Arc::new(read);
    let stream = futures_util::stream::unfold((None::<String>, false), move |(last, done)| {
        let (s, token, p, read) = (s.clone(), token.clone(), p.clone(), read.clone());
        async move {
            if done {
                return None;
            }
            loop {
                if started.elapsed() > STREAM_FOR || s.gw.web_session(&token).await.is_err() {
                    return None;
                }
                match read(s.clone(), p.clone()).await {
                    Ok((data, finished)) if last.as_deref() != Some(data.as_str()) => {
                        let e = Event::default().event(event).data(data.clone());
                        return Some((
                            Ok::<_, std::convert::Infallible>(e),
                            (Some(data), finished),
                        ));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "a live view's read failed; it reads again")
                    }
                }
                tokio::time::sleep(every).await;
            }
        }
    });
    let mut res = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response();
    // A proxy in front must pass the events on as they come.
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

/// A cookie's value from the request.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// What every page's frame shows: the language, who is signed in, the
/// CSRF token its forms carry.
pub(crate) struct Frame {
    pub t: &'static Text,
    pub lang: &'static str,
    pub other_lang: &'static str,
    pub other_lang_name: &'static str,
    pub who: String,
    pub role: &'static str,
    pub csrf: String,
}

impl Frame {
    pub(crate) fn of(lang: Lang, signed: Option<&Signed>) -> Frame {
        Frame {
            t: lang.text(),
            lang: lang.tag(),
            other_lang: lang.other().tag(),
            other_lang_name: lang.other().text().language_name,
            who: signed
                .and_then(|s| s.session.principal.subject.clone())
                .unwrap_or_default(),
            role: signed.map_or("", |s| s.session.principal.role.as_str()),
            csrf: signed.map(|s| s.session.csrf.clone()).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    f: Frame,
    status: u16,
    code: String,
    message: String,
}

/// A refusal as a page, with the API's status (403 for the wrong role,
/// 404 for another tenant's object) and its stable code.
pub(crate) fn error_page(lang: Lang, signed: Option<&Signed>, e: &Error) -> Response {
    let status = crate::http::error::status_of(e.kind);
    let page = ErrorPage {
        f: Frame::of(lang, signed),
        status: status.as_u16(),
        code: e.code.to_owned(),
        message: if status.is_server_error() {
            "the gateway could not do this; try again".to_owned()
        } else {
            e.message.clone()
        },
    };
    let mut res = (status, html(&page)).into_response();
    if let qrgate_gateway::Kind::TooManyRequests {
        retry_after_seconds,
    } = e.kind
        && let Ok(v) = HeaderValue::from_str(&retry_after_seconds.to_string())
    {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// A template as an HTML response body (a template that fails to render
/// is a bug: a plain 500).
pub(crate) fn html<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(body) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page did not render").into_response()
        }
    }
}

/// A QR code as an `<svg>` element to put in a page (no XML declaration).
pub(crate) fn inline_svg(payload: &str, module_px: u32) -> Result<String, Error> {
    use qrgate_codes::image::{Correction, RenderOptions, render_svg};
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

/// One part of a multipart form: its declared content type and bytes.
pub(crate) struct Part {
    pub(crate) content_type: Option<String>,
    pub(crate) bytes: axum::body::Bytes,
}

/// A multipart form's parts by name (the last of a name wins), read within
/// the route's body limit; `None` when the form cannot be read.
pub(crate) struct Parts(std::collections::HashMap<String, Part>);

impl Parts {
    pub(crate) async fn read(mut form: axum::extract::Multipart) -> Option<Parts> {
        let mut parts = std::collections::HashMap::new();
        while let Some(field) = form.next_field().await.ok()? {
            let name = field.name().unwrap_or_default().to_owned();
            let content_type = field.content_type().map(str::to_owned);
            let bytes = field.bytes().await.ok()?;
            parts.insert(
                name,
                Part {
                    content_type,
                    bytes,
                },
            );
        }
        Some(Parts(parts))
    }

    /// A part as text (empty when absent).
    pub(crate) fn text(&self, name: &str) -> String {
        self.0
            .get(name)
            .map(|p| String::from_utf8_lossy(&p.bytes).into_owned())
            .unwrap_or_default()
    }

    pub(crate) fn take(&mut self, name: &str) -> Option<Part> {
        self.0.remove(name)
    }
}
