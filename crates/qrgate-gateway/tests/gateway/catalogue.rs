//! The code and the rule catalogue agree; loosening a MUST rule is refused.

use super::*;

#[tokio::test]
async fn loosening_a_must_rule_is_refused_at_start() {
    let store = on_sqlite().await;
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(0)));
    let mut config = Config::default();
    config.rules.insert("BCP-LIMIT-C-DAILY".into(), 200_000);
    let e = Gateway::start(store.clone(), clock.clone(), config.clone())
        .await
        .err()
        .unwrap();
    assert!(e.message.contains("allow_loosening"), "{e}");
    config.rules.insert("BCP-LIMIT-C-DAILY".into(), 50_000);
    let (gw, applied) = Gateway::start(store, clock, config).await.unwrap();
    assert_eq!(gw.limits().daily_c, 50_000);
    assert_eq!(applied.len(), 1);
}

// ---- The code and the rule catalogue agree ----

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The non-test part of every `.rs` file under `dir`: (path, text).
fn sources(dir: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![repo_root().join(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap().to_owned();
                let name = p.strip_prefix(repo_root()).unwrap().display().to_string();
                out.push((name, code));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_rule_is_cited_by_the_code_and_the_code_cites_no_other() {
    let catalogue = qrgate_core::rules::Catalogue::builtin().unwrap();
    let all: Vec<(String, String)> = sources("crates")
        .into_iter()
        .filter(|(p, _)| p.contains("/src/"))
        .collect();
    let text: String = all.iter().map(|(_, t)| t.as_str()).collect();
    let is_id_char = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-';
    for r in catalogue.rules() {
        let cited = text.match_indices(&r.id).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            let after = text[i + r.id.len()..].chars().next();
            !before.is_some_and(is_id_char) && !after.is_some_and(is_id_char)
        });
        assert!(cited, "rule {} is not cited anywhere in the code", r.id);
    }
    // Every rule id the code names ("BCP-…" or "QG-…" in a string) exists.
    for (path, t) in &all {
        for prefix in ["\"BCP-", "\"QG-"] {
            for (i, _) in t.match_indices(prefix) {
                let id: String = t[i + 1..].chars().take_while(|c| is_id_char(*c)).collect();
                assert!(
                    catalogue.get(&id).is_some(),
                    "{path} names rule {id}, which spec/rules.toml does not have"
                );
            }
        }
    }
}

/// Every number the gateway enforces comes from the catalogue: counters
/// take their caps from `Limits` (filled only from the catalogue), and every
/// other numeric literal of 60 or more in the gateway's code is listed
/// here with what it is (a new one fails until it is classified).
#[test]
fn the_gateway_enforces_no_number_outside_the_catalogue() {
    const NOT_LIMITS: &[(&str, &str, &str)] = &[
        (
            "credentials.rs",
            "100",
            "most sealed device handles one request gives",
        ),
        (
            "idempotency.rs",
            "255",
            "input shape: Idempotency-Key length",
        ),
        ("jobs.rs", "3_600_000", "milliseconds per hour"),
        (
            "jobs.rs",
            "60_000",
            "keep expired codes a minute past expiry",
        ),
        ("jobs.rs", "600", "purge every 600 ticks of 1 s"),
        ("jobs.rs", "100", "audit chaining every 100 ms"),
        ("jobs.rs", "500", "webhook dispatch every 500 ms"),
        ("codes.rs", "60", "schema example: valid_seconds"),
        ("mod.rs", "100", "page size of list queries"),
        ("mod.rs", "60", "seconds per minute (velocity window)"),
        ("card.rs", "2030", "schema example: exp_year"),
        (
            "lib.rs",
            "10_000",
            "wait after a rotation before the replaced key may be retired",
        ),
        ("lib.rs", "1000", "milliseconds per second"),
        ("lib.rs", "999", "rounding milliseconds up to seconds"),
        (
            "config.rs",
            "3000",
            "processor_timeout_ms default (deployment setting)",
        ),
        (
            "config.rs",
            "60",
            "minutes per hour (business-day offset), and the 60 s bound of a code's validity",
        ),
        (
            "config.rs",
            "10_000",
            "basis points in 100% (the bound of a fee rate)",
        ),
        (
            "views.rs",
            "60",
            "schema example: a merchant's fee rate_bps",
        ),
        (
            "mod.rs",
            "200",
            "merchants read per page by a settlement or payout run",
        ),
        (
            "payouts.rs",
            "60",
            "seconds per minute (first payout retry)",
        ),
        ("payouts.rs", "1000", "milliseconds per second"),
        ("file.rs", "1000", "milliseconds per second"),
        ("mod.rs", "86_400", "seconds per day"),
        (
            "reviews.rs",
            "100",
            "the most items of each kind a queue read returns",
        ),
        (
            "reviews.rs",
            "366",
            "days in a leap year (the oldest min_age_hours)",
        ),
        ("reviews.rs", "3_600_000", "milliseconds per hour"),
        (
            "file.rs",
            "60_000",
            "the wait before an unconfirmed refund is retried",
        ),
        ("figures.rs", "100", "percent"),
        (
            "figures.rs",
            "1000",
            "per thousand payments; complaints read per page",
        ),
        (
            "figures.rs",
            "86_400",
            "seconds per day (the figures' default range, 30 days)",
        ),
        ("figures.rs", "90", "the 90th percentile"),
        ("figures.rs", "200", "rounding half up to hundredths"),
        (
            "config.rs",
            "315_360_000",
            "the longest complaint window or deadline (10 years)",
        ),
        (
            "config.rs",
            "1024",
            "bytes in a KiB (the 16 MiB bound a photo size rule may be set to)",
        ),
        (
            "config.rs",
            "1000",
            "the bound a tamper-report count rule may be set to",
        ),
        (
            "lib.rs",
            "1440",
            "minutes in a day: the longest web session a deployment may set",
        ),
        (
            "static_codes.rs",
            "100",
            "the static codes one list shows (a page size)",
        ),
        (
            "sessions.rs",
            "60_000",
            "milliseconds in a minute (a session's length)",
        ),
        (
            "tamper.rs",
            "100",
            "codes the complaints sweeper suspends per pass (a batch size)",
        ),
        (
            "file.rs",
            "100",
            "complaints read per payment (one open at a time)",
        ),
        ("sweep.rs", "100", "complaints moved per sweeper page"),
        (
            "sweep.rs",
            "60_000",
            "how long a node holds the complaints lease",
        ),
        ("statements.rs", "2000", "statement rows read per page"),
        (
            "reconcile.rs",
            "2000",
            "ledger rows read per page (reconciliation)",
        ),
        (
            "events.rs",
            "100",
            "most events one page of GET /v1/events holds",
        ),
        (
            "events.rs",
            "1795000000",
            "schema example: an event's created time",
        ),
        ("statements.rs", "1000", "milliseconds per second"),
        (
            "settlement.rs",
            "60",
            "seconds per minute (settlement delay, lease)",
        ),
        (
            "settlement.rs",
            "1000",
            "milliseconds per second (settlement delay, lease)",
        ),
        (
            "settlement.rs",
            "366",
            "most days one list of settlements spans: a year",
        ),
        ("otp.rs", "1000", "milliseconds per second"),
        (
            "health.rs",
            "1_000_000",
            "microseconds per second (metrics)",
        ),
        ("orders.rs", "60", "seconds per minute"),
        ("orders.rs", "200", "batch of due orders"),
        ("merchants.rs", "64", "input shape: owner_ref length"),
        ("blocks.rs", "200", "input shape: block reason length"),
        (
            "fresh.rs",
            "1_000",
            "how long a copy of a key or the block list is trusted (ms)",
        ),
        (
            "fresh.rs",
            "10_000",
            "size bounds of the key and block-list caches",
        ),
        ("risk.rs", "60_000", "milliseconds per minute"),
        ("risk.rs", "86_400_000", "milliseconds per day"),
        ("rows.rs", "100_000", "size of the in-memory row cache"),
        (
            "audit.rs",
            "1000",
            "most audit rows one page of the log returns",
        ),
        ("pin.rs", "60", "seconds per minute"),
        (
            "pin.rs",
            "100_000",
            "PBKDF2 iterations of a PIN hash from before the pepper",
        ),
        ("pin.rs", "600_000", "PBKDF2 iterations of the PIN hash"),
        (
            "lib.rs",
            "64",
            "input shape: out_trade_no / out_refund_no length",
        ),
        ("mod.rs", "1000", "milliseconds per second"),
        ("list.rs", "100", "page size of list queries"),
        ("lapse.rs", "200", "sweeper batch size"),
        (
            "lapse.rs",
            "60_000",
            "grace of a confirming claim past its deadline",
        ),
        (
            "webhooks.rs",
            "60",
            "seconds a delivery attempt stays claimed",
        ),
        ("webhooks.rs", "100", "page size of the delivery list"),
        (
            "limiter.rs",
            "100_000",
            "most rate-limit keys kept in memory",
        ),
        (
            "limiter.rs",
            "60_000",
            "milliseconds per minute: the window",
        ),
        ("limiter.rs", "999", "rounding milliseconds up to seconds"),
        ("limiter.rs", "1000", "milliseconds per second"),
        (
            "webhooks.rs",
            "200",
            "2xx from an endpoint; outbox and delivery batch sizes",
        ),
        ("webhooks.rs", "1000", "milliseconds per second"),
        (
            "webhooks.rs",
            "3600",
            "delivery retry backoff ceiling (delivery policy)",
        ),
    ];
    let mut unlisted = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (path, code) in sources("crates/qrgate-gateway/src") {
        let file = path.rsplit('/').next().unwrap().to_owned();
        // Drop comments and string literals.
        let mut clean = String::new();
        for line in code.lines() {
            let line = line.split("//").next().unwrap();
            let mut in_str = false;
            let mut prev = ' ';
            for c in line.chars() {
                if c == '"' && prev != '\\' {
                    in_str = !in_str;
                } else if !in_str {
                    clean.push(c);
                }
                prev = c;
            }
            clean.push('\n');
        }
        assert!(
            !clean.contains("cap_amount: Some(0")
                && !clean
                    .split("cap_amount: Some(")
                    .chain(clean.split("cap_uses: Some("))
                    .skip(1)
                    .any(|rest| rest.starts_with(|c: char| c.is_ascii_digit())),
            "{path}: a counter cap written as a literal number"
        );
        let chars: Vec<char> = clean.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let starts = chars[i].is_ascii_digit()
                && (i == 0
                    || !(chars[i - 1].is_alphanumeric()
                        || chars[i - 1] == '_'
                        || chars[i - 1] == '.'));
            if !starts {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '_') {
                j += 1;
            }
            let lit: String = chars[i..j].iter().collect();
            let value: i64 = lit.replace('_', "").parse().unwrap_or(0);
            if value >= 60 && !NOT_LIMITS.iter().any(|(f, l, _)| *f == file && *l == lit) {
                unlisted.push(format!("{file}: {lit}"));
            }
            seen.insert((file.clone(), lit.clone()));
            i = j;
        }
    }
    assert!(
        unlisted.is_empty(),
        "numbers in the gateway that are neither from the catalogue nor classified: {unlisted:?}"
    );
    // A classified number no longer in its file is a stale row.
    let stale: Vec<_> = NOT_LIMITS
        .iter()
        .filter(|(f, l, _)| !seen.contains(&(f.to_string(), l.to_string())))
        .collect();
    assert!(
        stale.is_empty(),
        "classified numbers no longer in the gateway: {stale:?}"
    );
    // Limits has no number of its own: every field is read from the catalogue.
    let lib =
        std::fs::read_to_string(repo_root().join("crates/qrgate-gateway/src/config.rs")).unwrap();
    let fields = lib
        .split("pub struct Limits {")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap()
        .matches("pub ")
        .count();
    let body = lib.split("pub fn from_catalogue").nth(1).unwrap();
    let body = &body[..body.find("\n    }\n").unwrap()];
    let reads = body.matches("c.value(\"").count()
        + body.matches("c.optional_value(\"").count()
        + body.matches("ComplaintLimits::from_catalogue(c)").count();
    assert_eq!(
        reads, fields,
        "every Limits field is read from the catalogue"
    );
    // And so is every number of the complaint rules.
    let fields = lib
        .split("pub struct ComplaintLimits {")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap()
        .matches("pub ")
        .count();
    let body = lib
        .split("fn from_catalogue(c: &Catalogue) -> Result<ComplaintLimits")
        .nth(1)
        .unwrap();
    let body = &body[..body.find("\n    }\n").unwrap()];
    assert_eq!(
        body.matches("c.value(\"").count()
            + body.matches("span(\"").count()
            + body.matches("positive(c, \"").count(),
        fields,
        "every ComplaintLimits field is read from the catalogue"
    );
}
