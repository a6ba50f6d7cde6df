//! The runner: health check, selection, running cases (optionally in
//! parallel), and the verdict.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;

use crate::cases::{self, Level};
use crate::client::Http;
use crate::ctx::{Ctx, Stop};
use crate::report::{CaseResult, Report, Status};

pub struct Options {
    pub target: String,
    pub admin_key: String,
    pub only: Vec<String>,
    pub skip: Vec<String>,
    pub concurrency: usize,
    pub profile: Profile,
    pub waivers: Vec<Waiver>,
}

/// `baseline`: a failed SHOULD case is a WARN. `strict`: it is a FAIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    #[default]
    Baseline,
    Strict,
}

/// An accepted, time-limited exception for one case.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    pub case: String,
    pub owner: String,
    /// `YYYY-MM-DD`, inclusive.
    pub expires: String,
    pub reason: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverFile {
    waiver: Vec<Waiver>,
}

/// Read a waivers file (TOML, `[[waiver]]` tables with case, owner, expires, reason).
pub fn load_waivers(text: &str) -> Result<Vec<Waiver>, String> {
    let f: WaiverFile = toml::from_str(text).map_err(|e| format!("waivers: {e}"))?;
    for w in &f.waiver {
        if w.owner.trim().is_empty() || w.reason.trim().is_empty() {
            return Err(format!("waiver for {} needs an owner and a reason", w.case));
        }
        let ok = w.expires.len() == 10
            && w.expires.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if !ok {
            return Err(format!(
                "waiver for {}: expires must be YYYY-MM-DD, not {:?}",
                w.case, w.expires
            ));
        }
    }
    Ok(f.waiver)
}

#[derive(Debug)]
pub enum RunError {
    /// 2: nothing selected, or a bad option.
    Usage(String),
    /// 3: the target does not answer or is not ready.
    Unreachable(String),
}

fn now_rfc3339() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    qrgate_core::Timestamp::from_unix_millis(i64::try_from(ms).unwrap_or(0)).to_rfc3339()
}

pub async fn run(o: Options) -> Result<Report, RunError> {
    let all = cases::all();
    for w in &o.waivers {
        if !all.iter().any(|c| c.id == w.case) {
            return Err(RunError::Usage(format!(
                "waiver for unknown case {:?}",
                w.case
            )));
        }
    }
    for id in o.only.iter().chain(&o.skip) {
        if !all.iter().any(|c| c.id == id || c.rule == id) {
            return Err(RunError::Usage(format!(
                "no case or rule {id:?}; see qrgate-conformance list"
            )));
        }
    }
    let selected: Vec<_> = all
        .into_iter()
        .filter(|c| o.only.is_empty() || o.only.iter().any(|x| x == c.id || x == c.rule))
        .filter(|c| !o.skip.iter().any(|x| x == c.id || x == c.rule))
        .collect();
    if selected.is_empty() {
        return Err(RunError::Usage("no case selected".into()));
    }
    let http = Http::new(&o.target).map_err(RunError::Usage)?;
    for path in ["/healthz", "/readyz"] {
        match http
            .send(crate::client::Req {
                method: "GET",
                path: path.into(),
                key: None,
                body: None,
                content_type: None,
                idempotency_key: None,
            })
            .await
        {
            Ok((r, _)) if r.status == 200 => {}
            Ok((r, _)) => {
                return Err(RunError::Unreachable(format!(
                    "{}{path} answered {}",
                    o.target, r.status
                )));
            }
            Err(e) => return Err(RunError::Unreachable(e)),
        }
    }
    let started_at = now_rfc3339();
    let today: String = started_at.chars().take(10).collect();
    let mut tag_bytes = [0_u8; 3];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut tag_bytes);
    let tag: String = tag_bytes.iter().map(|b| format!("{b:02X}")).collect();
    let created = Arc::new(Mutex::new(Vec::new()));

    // The books are checked after everything else has run.
    let (last, first): (Vec<_>, Vec<_>) = selected
        .into_iter()
        .partition(|c| c.rule == "QG-LEDGER-BALANCED" || c.rule == "QG-AUDIT-CHAIN");
    let mut results = Vec::new();
    for batch in [first, last] {
        let sem = Arc::new(tokio::sync::Semaphore::new(o.concurrency.max(1)));
        let profile = o.profile;
        let mut tasks = Vec::new();
        for case in batch {
            let mut ctx = Ctx {
                http: http.clone(),
                admin: o.admin_key.clone(),
                tag: tag.clone(),
                exchanges: Vec::new(),
                created: created.clone(),
            };
            let sem = sem.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await;
                let t0 = Instant::now();
                let outcome = (case.run)(&mut ctx).await;
                let mut r = CaseResult {
                    id: case.id.into(),
                    rule: case.rule.into(),
                    level: case.level,
                    title: case.title.into(),
                    status: Status::Pass,
                    duration_ms: u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX),
                    expected: None,
                    observed: None,
                    skip_reason: None,
                    exchanges: ctx.exchanges,
                };
                match outcome {
                    Ok(()) => {}
                    Err(Stop::Fail { expected, observed }) => {
                        r.status = if case.level == Level::Must || profile == Profile::Strict {
                            Status::Fail
                        } else {
                            Status::Warn
                        };
                        r.expected = Some(expected);
                        r.observed = Some(observed);
                    }
                    Err(Stop::Skip(why)) => {
                        r.status = Status::Skip;
                        r.skip_reason = Some(why);
                    }
                }
                r
            }));
        }
        for t in tasks {
            match t.await {
                Ok(r) => results.push(r),
                Err(e) => return Err(RunError::Usage(format!("a case panicked: {e}"))),
            }
        }
    }
    // Waivers: a valid one turns a failure into a SKIP that names it; one
    // for a case that now passes is stale; an expired one changes nothing.
    let mut waivers = Vec::new();
    for w in &o.waivers {
        let state = match results.iter_mut().find(|r| r.id == w.case) {
            None => "not_run",
            Some(_) if w.expires.as_str() < today.as_str() => "expired",
            Some(r) if matches!(r.status, Status::Fail | Status::Warn) => {
                r.status = Status::Skip;
                r.skip_reason = Some(format!(
                    "waived until {} by {}: {}",
                    w.expires, w.owner, w.reason
                ));
                "applied"
            }
            Some(_) => "stale",
        };
        waivers.push(json!({ "case": w.case, "owner": w.owner, "expires": w.expires, "reason": w.reason, "state": state }));
    }
    let catalogue =
        qrgate_core::rules::Catalogue::builtin().map_err(|e| RunError::Usage(e.to_string()))?;
    let coverage: Vec<_> = catalogue
        .rules()
        .iter()
        .map(|rule| {
            let cases: Vec<_> = results.iter().filter(|r| r.rule == rule.id).map(|r| json!({ "case": r.id, "status": r.status })).collect();
            json!({
                "rule": rule.id,
                "level": rule.level,
                "cases": cases,
                "untestable": rule.untestable,
                "covered": !cases.is_empty() && cases.iter().all(|c| c["status"] == json!(Status::Pass)),
            })
        })
        .collect();
    let summary = Report::summarize(&results);
    let created = created.lock().map(|c| c.clone()).unwrap_or_default();
    Ok(Report {
        suite: json!({ "name": "qrgate-conformance", "version": env!("CARGO_PKG_VERSION"), "commit": option_env!("QRGATE_COMMIT").unwrap_or("unknown"), "run_tag": tag }),
        target: json!({ "url": o.target }),
        started_at,
        finished_at: now_rfc3339(),
        created,
        profile: o.profile,
        waivers,
        coverage,
        summary,
        cases: results,
    })
}
