//! Signing in and out, the session cookie, and the CSRF check every form
//! post passes. The cookie is `HttpOnly` and `SameSite=Strict` (and
//! `Secure` when the deployment says it is reached over https); it holds a
//! random token the gateway keeps only a hash of.

use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use qrgate_gateway::sessions::Session;
use qrgate_gateway::{Error, Kind};

use super::{Frame, Lang, cookie, error_page, html};
use crate::http::AppState;

/// The session cookie's name: with `secure_cookies`, the `__Host-` prefix
/// (a browser takes it only over https, for this host alone, so a sibling
/// subdomain cannot plant one).
fn session_cookie(s: &AppState) -> &'static str {
    if s.gw.secure_cookies() {
        "__Host-qg_session"
    } else {
        "qg_session"
    }
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/web/sign-in", get(sign_in_page).post(sign_in))
        .route("/web/sign-out", post(sign_out))
        .route("/web/lang", get(switch_lang))
        .route("/web/account", get(account))
}

/// A signed-in request: its session and the cookie's token.
pub(crate) struct Signed {
    pub session: Session,
    pub token: String,
    pub lang: Lang,
}

impl Signed {
    /// Refuse a form whose CSRF token is not the session's.
    pub(crate) fn check_csrf(&self, sent: &str) -> Result<(), Box<Response>> {
        if self.session.csrf_matches(sent) {
            return Ok(());
        }
        let e = Error::new(
            Kind::Forbidden,
            "csrf_mismatch",
            "this form is not from your session (stale or forged): reload the page and try again",
        );
        Err(Box::new(error_page(self.lang, Some(self), &e)))
    }

    /// Refuse every role but `roles` (403, as the API does).
    pub(crate) fn require(&self, roles: &[qrgate_gateway::Role]) -> Result<(), Box<Response>> {
        self.session
            .principal
            .require(roles)
            .map_err(|e| Box::new(self.refused(&e)))
    }

    /// The page for a refusal by the gateway.
    pub(crate) fn refused(&self, e: &Error) -> Response {
        error_page(self.lang, Some(self), e)
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Signed, Response> {
        let lang = Lang::of(&parts.headers);
        let token = cookie(&parts.headers, session_cookie(s)).unwrap_or_default();
        let session = if token.is_empty() {
            Err(Error::new(
                Kind::Unauthorized,
                "session_ended",
                "not signed in: sign in first",
            ))
        } else {
            s.gw.web_session(&token).await
        };
        match session {
            Ok(session) => Ok(Signed {
                session,
                token,
                lang,
            }),
            // A page opened without a session goes to the sign-in page;
            // anything else is refused as the API would.
            Err(e) if e.kind == Kind::Unauthorized && parts.method == Method::GET => {
                Err(Redirect::to("/web/sign-in").into_response())
            }
            Err(e) => Err(error_page(lang, None, &e)),
        }
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    f: Frame,
    failed: Option<String>,
}

async fn sign_in_page(headers: HeaderMap) -> Response {
    let page = SignInPage {
        f: Frame::of(Lang::of(&headers), None),
        failed: None,
    };
    html(&page)
}

#[derive(Deserialize)]
struct SignInForm {
    key: String,
}

/// Sign in with an API key. Only from this origin's own page (a sign-in
/// planted by another site would act as the attacker's key).
async fn sign_in(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let lang = Lang::of(&headers);
    if !same_origin(&headers) {
        let e = Error::new(
            Kind::Forbidden,
            "cross_site",
            "sign in from this gateway's own sign-in page",
        );
        return error_page(lang, None, &e);
    }
    match s.gw.sign_in(&form.key).await {
        Ok(signed) => {
            let max_age = signed.session.expires_at.millis_since(s.gw.now()) / 1000;
            let mut c = format!(
                "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}",
                session_cookie(&s),
                signed.token
            );
            if s.gw.secure_cookies() {
                c.push_str("; Secure");
            }
            (
                StatusCode::SEE_OTHER,
                [
                    (header::SET_COOKIE, c),
                    (header::LOCATION, "/web/".to_owned()),
                ],
            )
                .into_response()
        }
        Err(e) => {
            // 401 (the edge counts it against the address's allowance),
            // with the form again.
            let page = SignInPage {
                f: Frame::of(lang, None),
                failed: Some(e.message),
            };
            let status = crate::http::error::status_of(e.kind);
            (status, html(&page)).into_response()
        }
    }
}

/// A form that carries nothing but its session's CSRF token.
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: String,
}

async fn sign_out(
    State(s): State<AppState>,
    signed: Signed,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return *r;
    }
    if let Err(e) = s.gw.sign_out(&signed.token).await {
        return signed.refused(&e);
    }
    let mut c = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        session_cookie(&s)
    );
    if s.gw.secure_cookies() {
        c.push_str("; Secure");
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, c),
            (header::LOCATION, "/web/sign-in".to_owned()),
        ],
    )
        .into_response()
}

#[derive(Deserialize)]
struct LangQuery {
    to: String,
}

/// Switch the pages' language (a cookie), then back to the page it was
/// asked from (this site's own pages only).
async fn switch_lang(
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<LangQuery>,
) -> Response {
    let lang = Lang::parse(&q.to).unwrap_or(Lang::En);
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| {
            r.split_once("/web/")
                .map(|(_, rest)| format!("/web/{rest}"))
        })
        .filter(|p| !p.contains("//") && !p.contains('\\'))
        .unwrap_or_else(|| "/web/".to_owned());
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                format!(
                    "lang={}; Path=/; SameSite=Strict; Max-Age=31536000",
                    lang.tag()
                ),
            ),
            (header::LOCATION, back),
        ],
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    f: Frame,
}

/// The landing page of the roles whose pages are still to come.
async fn account(signed: Signed) -> Response {
    html(&AccountPage {
        f: Frame::of(signed.lang, Some(&signed)),
    })
}

/// A form post from this origin. Browsers say where a request comes from
/// in `Sec-Fetch-Site`, which decides when present; otherwise an `Origin`
/// must name this host (`null`, from a sandboxed frame, does not). A
/// client that sends neither is no browser another site can drive.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|o| o.split_once("://").is_some_and(|(_, h)| h == host))
}
