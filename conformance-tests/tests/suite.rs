//! The suite against a real qrgate (all cases pass, on SQLite and on
//! PostgreSQL), against deliberately broken targets (exactly the expected
//! cases fail), and its agreement with the rule catalogue.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use qrgate_conformance::report::Status;
use qrgate_conformance::run::{Options, run};
use qrgate_core::{Clock, SystemClock, Timestamp};
use qrgate_gateway::{Config, Gateway, Role};
use qrgate_server::http::{AppState, router};
use qrgate_store::{AnyStore, PgStore};

static SEQ: AtomicUsize = AtomicUsize::new(0);

type Breaker = fn(&str, &str, u16, &str) -> Option<(u16, String)>;

/// A qrgate on a loopback socket; `breaker` may rewrite answers to make it
/// deliberately non-conforming. Returns the base URL and an admin key.
async fn target(store: AnyStore, breaker: Option<Breaker>) -> (String, String) {
    target_with(store, breaker, &[]).await
}

/// The month cap of small merchants' credit receipts below the day cap, so
/// QGC-SMALL-MERCHANT-CREDIT-MONTH watches it refuse (the Postgres run, as in CI).
const MONTH_BELOW_DAY: &[(&str, i64)] = &[("BCP-SMALL-MERCHANT-CREDIT-MONTH", 80_000)];

async fn target_with(
    store: AnyStore,
    breaker: Option<Breaker>,
    extra_rules: &[(&str, i64)],
) -> (String, String) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // A 10 s step-up deadline and a 15 s refund window, so QGC-STEPUP-TTL
    // and QGC-REFUND-WINDOW watch them pass (as in CI).
    let config = Config {
        rules: [
            ("QG-STEPUP-TTL".to_owned(), 10),
            ("BCP-REFUND-WINDOW".to_owned(), 15),
            ("QG-CANCEL-WINDOW".to_owned(), 10),
            // A 5 s merchant deadline, so QGC-COMPLAINT-DEADLINE watches
            // an unanswered complaint escalate (as in CI).
            ("QG-COMPLAINT-FIRST-REPLY".to_owned(), 5),
            // Optional limits on, as in CI, so their cases observe them.
            ("BCP-PASSWORD-FREE-COUNT".to_owned(), 10),
            ("QG-VELOCITY-CUSTOMER".to_owned(), 12),
            ("BCP-TXN-CAP".to_owned(), 20_000_000),
            ("QG-PERSONAL-CODE-PAYERS".to_owned(), 3),
        ]
        .into_iter()
        .chain(extra_rules.iter().map(|(r, v)| ((*r).to_owned(), *v)))
        .collect(),
        // The suite's webhook receiver listens on loopback over plain http
        // (as in CI).
        allow_local_http_webhooks: true,
        ..Config::default()
    };
    let (gw, _) = Gateway::start(store, clock, config).await.unwrap();
    let admin = gw
        .create_api_key(None, Role::Admin, None)
        .await
        .unwrap()
        .secret;
    let gw = Arc::new(gw);
    // Deliver webhooks as `qrgate serve` does.
    let wh = gw.clone();
    tokio::spawn(async move {
        let sender =
            qrgate_server::http::webhook_sender::HttpSender::new(qrgate_core::net::Reach {
                internal: false,
                local_http: true,
            })
            .unwrap();
        loop {
            if let Err(e) = wh.dispatch_webhooks(&sender).await {
                eprintln!("webhook dispatch: {e}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    // Move complaints past their deadlines as `qrgate serve`'s jobs do.
    let sweeper = gw.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = sweeper.complaints_step("suite").await {
                eprintln!("complaints sweep: {e}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        }
    });
    let mut app = router(AppState::new(gw));
    if let Some(b) = breaker {
        app = app.layer(middleware::from_fn(
            move |req: Request, next: Next| async move {
                let (method, path) = (req.method().to_string(), req.uri().path().to_owned());
                let res = next.run(req).await;
                let status = res.status().as_u16();
                let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                    .await
                    .unwrap();
                let text = String::from_utf8_lossy(&body).into_owned();
                let (status, text) = b(&method, &path, status, &text).unwrap_or((status, text));
                let mut r = Response::new(Body::from(text));
                *r.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                r.headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                r.into_response()
            },
        ));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), admin)
}

async fn sqlite() -> AnyStore {
    let dir = std::env::temp_dir().join(format!(
        "qrgate_conf_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    AnyStore::open(
        &format!("sqlite://{}", dir.join("c.db").display()),
        Timestamp::from_unix_millis(0),
    )
    .await
    .unwrap()
    .0
}

async fn outcomes(url: String, admin: String, only: &[&str]) -> Vec<(String, Status)> {
    let r = run(Options {
        target: url,
        admin_key: admin,
        only: only.iter().map(|s| (*s).to_owned()).collect(),
        skip: vec![],
        concurrency: 4,
        profile: Default::default(),
        waivers: vec![],
    })
    .await
    .unwrap();
    r.cases.iter().map(|c| (c.id.clone(), c.status)).collect()
}

/// The ids of the cases that did not pass, when all of them were skips
/// (any failure or error is listed as `FAILED <id>` so the comparison fails).
/// Every case against `target`, four at a time.
async fn run_all(target: String, admin_key: String) -> qrgate_conformance::report::Report {
    run(Options {
        target,
        admin_key,
        only: vec![],
        skip: vec![],
        concurrency: 4,
        profile: Default::default(),
        waivers: vec![],
    })
    .await
    .unwrap()
}

fn only_skips(r: &qrgate_conformance::report::Report) -> Vec<String> {
    r.cases
        .iter()
        .filter(|c| c.status != Status::Pass)
        .map(|c| match c.status {
            Status::Skip => c.id.clone(),
            _ => format!("FAILED {}", c.id),
        })
        .collect()
}

fn not_passed(o: &[(String, Status)]) -> BTreeSet<(String, Status)> {
    o.iter()
        .filter(|(_, s)| *s != Status::Pass)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_case_passes_against_qrgate_on_sqlite() {
    let (url, admin) = target(sqlite().await, None).await;
    let r = run_all(url, admin).await;
    let bad: Vec<_> = r
        .cases
        .iter()
        .filter(|c| c.status != Status::Pass)
        .map(|c| (&c.id, &c.expected, &c.observed, &c.skip_reason))
        .collect();
    // With the default month cap, only the month cap's case cannot watch it
    // refuse; with separate caps (the default), the nested reading's case skips.
    assert_eq!(
        only_skips(&r),
        ["QGC-LIMIT-NESTED", "QGC-SMALL-MERCHANT-CREDIT-MONTH"],
        "{bad:#?}"
    );
    assert_eq!(r.summary.total, qrgate_conformance::cases::all().len());
    assert!(r.created.iter().any(|c| c.starts_with("merchant ")));
}

/// A target that nests its level caps (BCP-LIMIT-NESTED = 1): nothing
/// fails; the nested reading's case passes, and the cases whose sums assume
/// separate caps say so and skip.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_case_passes_or_says_why_against_a_target_with_nested_caps() {
    let (url, admin) = target_with(sqlite().await, None, &[("BCP-LIMIT-NESTED", 1)]).await;
    let r = run_all(url, admin).await;
    let bad: Vec<_> = r
        .cases
        .iter()
        .filter(|c| c.status != Status::Pass)
        .map(|c| (&c.id, &c.expected, &c.observed, &c.skip_reason))
        .collect();
    let mut skipped = only_skips(&r);
    skipped.sort();
    assert_eq!(
        skipped,
        [
            "QGC-ACCT-CLASS-II",
            "QGC-ACCT-CLASS-III",
            "QGC-LIMIT-A-BOUNDARY",
            "QGC-LIMIT-B-BOUNDARY",
            "QGC-LIMIT-SEPARATE",
            "QGC-SMALL-MERCHANT-CREDIT-MONTH"
        ],
        "{bad:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_case_passes_against_qrgate_on_postgres() {
    let Ok(url) = std::env::var("QRGATE_TEST_POSTGRES_URL") else {
        eprintln!(
            "SKIP every_case_passes_against_qrgate_on_postgres: QRGATE_TEST_POSTGRES_URL is not set"
        );
        return;
    };
    let schema = format!(
        "qrgate_conf_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    );
    let store = AnyStore::Postgres(
        PgStore::open(&url, Some(&schema), 16, Timestamp::from_unix_millis(0))
            .await
            .unwrap()
            .0,
    );
    let (base, admin) = target_with(store, None, MONTH_BELOW_DAY).await;
    let r = run_all(base, admin).await;
    let bad: Vec<_> = r
        .cases
        .iter()
        .filter(|c| c.status != Status::Pass)
        .map(|c| (&c.id, &c.expected, &c.observed, &c.skip_reason))
        .collect();
    // The month cap below the day cap hides the day cap: its case skips;
    // the caps are separate, so the nested reading's case skips.
    assert_eq!(
        only_skips(&r),
        ["QGC-LIMIT-NESTED", "QGC-SMALL-MERCHANT-CREDIT-DAY"],
        "{bad:#?}"
    );
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut c)
        .await
        .unwrap();
}

fn accepts_reused_codes(
    method: &str,
    path: &str,
    status: u16,
    body: &str,
) -> Option<(u16, String)> {
    (method == "POST"
        && path == "/v1/payments"
        && status == 422
        && body.contains("payment_code_already_used"))
    .then(|| {
        (
            201,
            r#"{"id":"pay_fake","object":"payment","status":"succeeded"}"#.to_owned(),
        )
    })
}

fn ignores_caps(method: &str, _: &str, status: u16, body: &str) -> Option<(u16, String)> {
    (method == "POST" && status == 402 && body.contains("limit_exceeded")).then(|| {
        (
            201,
            r#"{"id":"pay_fake","object":"payment","status":"succeeded"}"#.to_owned(),
        )
    })
}

fn bad_crc(method: &str, path: &str, status: u16, body: &str) -> Option<(u16, String)> {
    if method != "POST" || path != "/v1/static-codes" || status != 201 {
        return None;
    }
    let mut v: serde_json::Value = serde_json::from_str(body).ok()?;
    let p = v["payload"].as_str()?.to_owned();
    let last = if p.ends_with('0') { '1' } else { '0' };
    v["payload"] = serde_json::json!(format!("{}{last}", &p[..p.len() - 1]));
    Some((201, v.to_string()))
}

fn leaks_payments(method: &str, path: &str, status: u16, _: &str) -> Option<(u16, String)> {
    (method == "GET" && path.starts_with("/v1/payments/pay_") && status == 404).then(|| {
        (
            200,
            r#"{"id":"pay_x","object":"payment","status":"succeeded"}"#.to_owned(),
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broken_targets_fail_exactly_the_cases_that_check_what_they_break() {
    let control = "QGC-AUTH-NO-KEY";
    let set = |v: &[(&str, Status)]| {
        v.iter()
            .map(|(i, s)| ((*i).to_owned(), *s))
            .collect::<BTreeSet<_>>()
    };

    let (u, a) = target(sqlite().await, Some(accepts_reused_codes)).await;
    let o = outcomes(u, a, &["BCP-CODE-SINGLE-USE", control]).await;
    assert_eq!(
        not_passed(&o),
        set(&[
            ("QGC-CPM-SINGLE-USE", Status::Fail),
            ("QGC-CPM-SINGLE-USE-FAILED", Status::Fail),
            ("QGC-CPM-RACE", Status::Fail)
        ])
    );

    let (u, a) = target(sqlite().await, Some(ignores_caps)).await;
    let o = outcomes(
        u,
        a,
        &[
            "QGC-LIMIT-C-BOUNDARY",
            "QGC-LIMIT-D-BOUNDARY",
            "QGC-REFUND-CAP",
            control,
        ],
    )
    .await;
    assert_eq!(
        not_passed(&o),
        set(&[
            ("QGC-LIMIT-C-BOUNDARY", Status::Fail),
            ("QGC-LIMIT-D-BOUNDARY", Status::Fail),
            ("QGC-REFUND-CAP", Status::Fail)
        ])
    );

    // A SHOULD rule broken: WARN, not FAIL.
    let (u, a) = target(sqlite().await, Some(bad_crc)).await;
    let o = outcomes(
        u,
        a,
        &["QGC-CODE-STATIC-EMV", "QGC-CODE-ORDER-EMV", control],
    )
    .await;
    assert_eq!(
        not_passed(&o),
        set(&[("QGC-CODE-STATIC-EMV", Status::Warn)])
    );

    let (u, a) = target(sqlite().await, Some(leaks_payments)).await;
    let o = outcomes(u, a, &["QGC-TENANCY", "QGC-AUTH-WRONG-ROLE", control]).await;
    assert_eq!(not_passed(&o), set(&[("QGC-TENANCY", Status::Fail)]));
}

#[test]
fn cases_and_the_rule_catalogue_agree() {
    let catalogue = qrgate_core::rules::Catalogue::builtin().unwrap();
    let cases = qrgate_conformance::cases::all();
    let mut ids = BTreeSet::new();
    for c in &cases {
        assert!(ids.insert(c.id), "duplicate case id {}", c.id);
        let rule = catalogue
            .get(c.rule)
            .unwrap_or_else(|| panic!("{} names unknown rule {}", c.id, c.rule));
        let level = match rule.level {
            qrgate_core::rules::Level::Must => qrgate_conformance::cases::Level::Must,
            qrgate_core::rules::Level::Should => qrgate_conformance::cases::Level::Should,
        };
        assert_eq!(
            c.level, level,
            "{}: level differs from rule {}",
            c.id, c.rule
        );
        assert!(
            rule.cases.iter().any(|x| x == c.id),
            "spec/rules.toml: rule {} does not list case {}",
            c.rule,
            c.id
        );
    }
    for r in catalogue.rules() {
        for listed in &r.cases {
            assert!(
                cases.iter().any(|c| c.id == listed && c.rule == r.id),
                "rule {} lists {listed}, which the suite does not have for it",
                r.id
            );
        }
        assert!(
            !r.cases.is_empty() || r.untestable.is_some(),
            "rule {} has no conformance case and no `untestable` reason",
            r.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waivers_profiles_coverage_and_html() {
    use qrgate_conformance::run::{Profile, load_waivers};
    let waivers = load_waivers(
        r#"
[[waiver]]
case = "QGC-LIMIT-C-BOUNDARY"
owner = "risk@example.com"
expires = "2999-12-31"
reason = "cap enforcement moves to the issuer next quarter"

[[waiver]]
case = "QGC-AUTH-NO-KEY"
owner = "sec@example.com"
expires = "2999-12-31"
reason = "left over"

[[waiver]]
case = "QGC-LIMIT-D-BOUNDARY"
owner = "risk@example.com"
expires = "2001-01-01"
reason = "long gone"
"#,
    )
    .unwrap();
    assert!(
        load_waivers(
            "[[waiver]]\ncase = \"X\"\nowner = \"\"\nexpires = \"2030-01-01\"\nreason = \"r\"\n"
        )
        .is_err()
    );
    assert!(
        load_waivers(
            "[[waiver]]\ncase = \"X\"\nowner = \"o\"\nexpires = \"soon\"\nreason = \"r\"\n"
        )
        .is_err()
    );

    let (url, admin) = target(sqlite().await, Some(ignores_caps)).await;
    let only = [
        "QGC-LIMIT-C-BOUNDARY",
        "QGC-LIMIT-D-BOUNDARY",
        "QGC-AUTH-NO-KEY",
    ]
    .map(String::from)
    .to_vec();
    let r = run(Options {
        target: url.clone(),
        admin_key: admin.clone(),
        only: only.clone(),
        skip: vec![],
        concurrency: 2,
        profile: Profile::Baseline,
        waivers: waivers.clone(),
    })
    .await
    .unwrap();
    let status = |id: &str| r.cases.iter().find(|c| c.id == id).unwrap().status;
    assert_eq!(
        status("QGC-LIMIT-C-BOUNDARY"),
        Status::Skip,
        "a valid waiver applies"
    );
    assert_eq!(
        status("QGC-LIMIT-D-BOUNDARY"),
        Status::Fail,
        "an expired waiver does not"
    );
    assert_eq!(status("QGC-AUTH-NO-KEY"), Status::Pass);
    let state = |case: &str| {
        r.waivers.iter().find(|w| w["case"] == case).unwrap()["state"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        (
            state("QGC-LIMIT-C-BOUNDARY"),
            state("QGC-LIMIT-D-BOUNDARY"),
            state("QGC-AUTH-NO-KEY")
        ),
        ("applied".into(), "expired".into(), "stale".into())
    );
    assert!(
        r.cases
            .iter()
            .find(|c| c.id == "QGC-LIMIT-C-BOUNDARY")
            .unwrap()
            .skip_reason
            .as_ref()
            .unwrap()
            .contains("risk@example.com")
    );
    // Coverage lists every rule of the catalogue.
    let catalogue = qrgate_core::rules::Catalogue::builtin().unwrap();
    assert_eq!(r.coverage.len(), catalogue.rules().len());
    let html = qrgate_conformance::report::html(&r);
    assert!(
        html.contains("QGC-LIMIT-D-BOUNDARY")
            && html.contains("class=\"FAIL\"")
            && html.contains("not checked")
    );
    let junit = qrgate_conformance::report::junit(&r);
    assert!(junit.contains("failures=\"1\""), "{junit}");

    // Strict: a failed SHOULD case fails.
    let (url, admin) = target(sqlite().await, Some(bad_crc)).await;
    let r = run(Options {
        target: url,
        admin_key: admin,
        only: vec!["QGC-CODE-STATIC-EMV".into()],
        skip: vec![],
        concurrency: 1,
        profile: Profile::Strict,
        waivers: vec![],
    })
    .await
    .unwrap();
    assert_eq!(r.cases[0].status, Status::Fail);
}

#[test]
fn exit_codes_of_the_command_line() {
    let bin = env!("CARGO_BIN_EXE_qrgate-conformance");
    let out = std::process::Command::new(bin)
        .args(["run", "--target", "http://127.0.0.1:9", "--admin-key", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "unreachable target");
    let out = std::process::Command::new(bin)
        .args([
            "run",
            "--target",
            "http://127.0.0.1:9",
            "--admin-key",
            "x",
            "--only",
            "NOPE",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "no such case");
    let out = std::process::Command::new(bin)
        .args(["run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "usage");
    let out = std::process::Command::new(bin)
        .arg("list")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("QGC-CPM-SINGLE-USE"));
}
