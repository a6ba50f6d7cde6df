//! The auditor's page (auditor or admin keys): the ledger check and the
//! audit chain's verification as they are now, and a signed conformance
//! report checked against the suite's public key and shown: its summary,
//! every case with what it expected and observed, and the HTTP exchanges
//! behind it. A report that does not verify is not shown, only why.

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use qrgate_gateway::{Error, Kind, Role};

use super::{Frame, Signed, html};
use crate::http::AppState;

/// The largest report the page takes (the suite's reports are a few
/// hundred kilobytes).
const MAX_REPORT: usize = 8 * 1024 * 1024;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/web/audit", get(audit)).route(
        "/web/audit/report",
        post(report).layer(DefaultBodyLimit::max(MAX_REPORT)),
    )
}

impl Signed {
    fn auditor(&self) -> Result<(), Box<Response>> {
        self.require(&[Role::Auditor, Role::Admin])
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    f: Frame,
    ledger_sound: bool,
    ledger: String,
    chain_intact: bool,
    chain: String,
}

async fn audit(State(s): State<AppState>, signed: Signed) -> Response {
    if let Err(r) = signed.auditor() {
        return *r;
    }
    let p = &signed.session.principal;
    let page = async {
        let ledger = s.gw.ledger_check(p).await?;
        let chain = serde_json::to_value(s.gw.verify_audit(p).await?).map_err(Error::internal)?;
        Ok::<_, Error>(AuditPage {
            f: Frame::of(signed.lang, Some(&signed)),
            ledger_sound: ledger.is_sound(),
            ledger: serde_json::to_string_pretty(&ledger).map_err(Error::internal)?,
            chain_intact: chain.get("Intact").is_some(),
            chain: serde_json::to_string_pretty(&chain).map_err(Error::internal)?,
        })
    }
    .await;
    match page {
        Ok(p) => html(&p),
        Err(e) => signed.refused(&e),
    }
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    f: Frame,
    public_key: String,
    summary: Value,
    target: String,
    profile: String,
    finished_at: String,
    cases: Vec<CaseRow>,
}

struct CaseRow {
    id: String,
    rule: String,
    level: String,
    status: String,
    title: String,
    expected: String,
    observed: String,
    skip_reason: String,
    exchanges: Vec<String>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Verify an uploaded report (the file and the public key from a
/// multipart form) and show it.
async fn report(State(_s): State<AppState>, signed: Signed, form: Multipart) -> Response {
    if let Err(r) = signed.auditor() {
        return *r;
    }
    let Some(parts) = super::Parts::read(form).await else {
        return refused(
            &signed,
            "the form could not be read (is the report a JSON file under 8 MiB?)",
        );
    };
    let (csrf, key, file) = (
        parts.text("csrf"),
        parts.text("public_key"),
        parts.text("report"),
    );
    if let Err(r) = signed.check_csrf(&csrf) {
        return *r;
    }
    // Parsing and checking a large report is work for a blocking thread.
    let checked = {
        let key = key.clone();
        tokio::task::spawn_blocking(move || qrgate_core::evidence::verify(&file, &key)).await
    };
    let doc = match checked.map_err(|e| e.to_string()).and_then(|r| r) {
        Ok(doc) => doc,
        Err(why) => {
            let e = Error::new(Kind::Unprocessable, "report_not_verified", why);
            return signed.refused(&e);
        }
    };
    let cases = doc["cases"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| CaseRow {
                    id: text(&c["id"]),
                    rule: text(&c["rule"]),
                    level: text(&c["level"]),
                    status: text(&c["status"]),
                    title: text(&c["title"]),
                    expected: text(&c["expected"]),
                    observed: text(&c["observed"]),
                    skip_reason: text(&c["skip_reason"]),
                    exchanges: c["exchanges"]
                        .as_array()
                        .map(|xs| {
                            xs.iter()
                                .map(|x| {
                                    format!(
                                        "{} {} → {}\n{}",
                                        text(&x["method"]),
                                        text(&x["path"]),
                                        text(&x["status"]),
                                        text(&x["response_body"])
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    html(&ReportPage {
        f: Frame::of(signed.lang, Some(&signed)),
        public_key: key.trim().to_owned(),
        summary: doc["summary"].clone(),
        target: text(&doc["target"]["url"]),
        profile: text(&doc["profile"]),
        finished_at: text(&doc["finished_at"]),
        cases,
    })
}

fn refused(signed: &Signed, why: &str) -> Response {
    let e = Error::bad_request("invalid_request", why.to_owned());
    let mut r = signed.refused(&e);
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r.into_response()
}
