//! Evidence: the JSON report (the source of truth), JUnit XML for CI, and
//! an Ed25519 signature over the JSON that `verify` checks byte for byte.

use qrgate_core::evidence;
use ring::signature::Ed25519KeyPair;
use serde::Serialize;
use serde_json::Value;

use crate::cases::Level;
use crate::client::Exchange;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Status {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "FAIL")]
    Fail,
    #[serde(rename = "WARN")]
    Warn,
    #[serde(rename = "SKIP")]
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: String,
    pub rule: String,
    pub level: Level,
    pub title: String,
    pub status: Status,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    pub exchanges: Vec<Exchange>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub total: usize,
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub skip: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub suite: Value,
    pub target: Value,
    pub started_at: String,
    pub finished_at: String,
    pub created: Vec<String>,
    pub profile: crate::run::Profile,
    /// Each waiver and what became of it: applied, stale, expired, not_run.
    pub waivers: Vec<Value>,
    /// Every rule of the catalogue: its cases and their results, or why none exists.
    pub coverage: Vec<Value>,
    pub summary: Summary,
    pub cases: Vec<CaseResult>,
}

impl Report {
    pub fn summarize(cases: &[CaseResult]) -> Summary {
        let count = |s: Status| cases.iter().filter(|c| c.status == s).count();
        Summary {
            total: cases.len(),
            pass: count(Status::Pass),
            fail: count(Status::Fail),
            warn: count(Status::Warn),
            skip: count(Status::Skip),
        }
    }
}

/// The report as a JSON value, signed when a key is given
/// ([`qrgate_core::evidence`]).
pub fn to_json(report: &Report, key: Option<&Ed25519KeyPair>) -> Result<String, String> {
    let v = serde_json::to_value(report).map_err(|e| e.to_string())?;
    Ok(match key {
        Some(kp) => evidence::sign(v, kp),
        None => evidence::canonical(&v),
    })
}

/// Check a signed report against a public key. The file must be exactly the
/// canonical form, so a change of any byte fails.
pub fn verify(file: &str, public_key_b64: &str) -> Result<(), String> {
    evidence::verify(file, public_key_b64).map(|_| ())
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn junit(report: &Report) -> String {
    let s = &report.summary;
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"qrgate-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" timestamp=\"{}\">\n",
        s.total,
        s.fail,
        s.skip + s.warn,
        xml(&report.started_at)
    );
    for c in &report.cases {
        out.push_str(&format!(
            "  <testcase classname=\"{}\" name=\"{} {}\" time=\"{}.{:03}\">\n",
            xml(&c.rule),
            xml(&c.id),
            xml(&c.title),
            c.duration_ms / 1000,
            c.duration_ms % 1000
        ));
        match c.status {
            Status::Fail => out.push_str(&format!(
                "    <failure message=\"expected {}\">{}</failure>\n",
                xml(c.expected.as_deref().unwrap_or_default()),
                xml(c.observed.as_deref().unwrap_or_default())
            )),
            Status::Warn => out.push_str(&format!(
                "    <skipped message=\"WARN (SHOULD): expected {}\"/>\n",
                xml(c.expected.as_deref().unwrap_or_default())
            )),
            Status::Skip => out.push_str(&format!(
                "    <skipped message=\"{}\"/>\n",
                xml(c.skip_reason.as_deref().unwrap_or_default())
            )),
            Status::Pass => {}
        }
        out.push_str("  </testcase>\n");
    }
    out.push_str("</testsuite>\n");
    out
}

fn html_escape(s: &str) -> String {
    xml(s).replace('\'', "&#39;")
}

/// A readable report: summary, rule coverage, each case with its exchanges.
pub fn html(report: &Report) -> String {
    let s = &report.summary;
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>qrgate conformance</title><style>\
         body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;width:100%}\
         td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}\
         .PASS{color:#176f2c}.FAIL{color:#b00020;font-weight:bold}.WARN{color:#a15c00}.SKIP{color:#555}\
         pre{white-space:pre-wrap;font-size:.85em;background:#f6f6f6;padding:.5em}</style></head><body>",
    );
    out.push_str(&format!(
        "<h1>qrgate conformance report</h1><p>Target <code>{}</code>, {} to {}, profile {:?}.</p>\
         <p><b>{} passed, {} failed, {} warned, {} skipped</b> of {} cases.</p>",
        html_escape(report.target["url"].as_str().unwrap_or_default()),
        html_escape(&report.started_at),
        html_escape(&report.finished_at),
        report.profile,
        s.pass,
        s.fail,
        s.warn,
        s.skip,
        s.total
    ));
    if !report.waivers.is_empty() {
        out.push_str("<h2>Waivers</h2><table><tr><th>case</th><th>owner</th><th>expires</th><th>state</th><th>reason</th></tr>");
        for w in &report.waivers {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                html_escape(w["case"].as_str().unwrap_or_default()),
                html_escape(w["owner"].as_str().unwrap_or_default()),
                html_escape(w["expires"].as_str().unwrap_or_default()),
                html_escape(w["state"].as_str().unwrap_or_default()),
                html_escape(w["reason"].as_str().unwrap_or_default())
            ));
        }
        out.push_str("</table>");
    }
    out.push_str("<h2>Rules</h2><table><tr><th>rule</th><th>level</th><th>cases</th></tr>");
    for r in &report.coverage {
        let cases = match r["cases"].as_array() {
            Some(cs) if !cs.is_empty() => cs
                .iter()
                .map(|c| {
                    let st = c["status"].as_str().unwrap_or_default();
                    format!(
                        "<span class=\"{st}\">{st}</span> {}",
                        html_escape(c["case"].as_str().unwrap_or_default())
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>"),
            _ => format!(
                "<i>not checked: {}</i>",
                html_escape(r["untestable"].as_str().unwrap_or("no case selected"))
            ),
        };
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(r["rule"].as_str().unwrap_or_default()),
            html_escape(r["level"].as_str().unwrap_or_default()),
            cases
        ));
    }
    out.push_str("</table><h2>Cases</h2>");
    for c in &report.cases {
        let st = format!("{:?}", c.status).to_uppercase();
        out.push_str(&format!(
            "<details><summary><span class=\"{st}\">{st}</span> <b>{}</b> ({}) {}</summary>",
            html_escape(&c.id),
            html_escape(&c.rule),
            html_escape(&c.title)
        ));
        if let (Some(e), Some(o)) = (&c.expected, &c.observed) {
            out.push_str(&format!(
                "<p>expected {}<br>observed <code>{}</code></p>",
                html_escape(e),
                html_escape(o)
            ));
        }
        if let Some(r) = &c.skip_reason {
            out.push_str(&format!("<p>{}</p>", html_escape(r)));
        }
        for x in &c.exchanges {
            out.push_str(&format!(
                "<pre>{} {}{}\n→ {}\n{}</pre>",
                html_escape(&x.method),
                html_escape(&x.path),
                x.request_body
                    .as_ref()
                    .map(|b| format!("\n{}", html_escape(b)))
                    .unwrap_or_default(),
                x.status,
                html_escape(&x.response_body)
            ));
        }
        out.push_str("</details>");
    }
    out.push_str("</body></html>\n");
    out
}
