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
                        r.status = if case.level == Level::Must {
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
    let summary = Report::summarize(&results);
    let created = created.lock().map(|c| c.clone()).unwrap_or_default();
    Ok(Report {
        suite: json!({ "name": "qrgate-conformance", "version": env!("CARGO_PKG_VERSION"), "commit": option_env!("QRGATE_COMMIT").unwrap_or("unknown"), "run_tag": tag }),
        target: json!({ "url": o.target }),
        started_at,
        finished_at: now_rfc3339(),
        created,
        summary,
        cases: results,
    })
}
