//! The OpenAPI document cannot drift: it is generated from the code, the
//! checked-in copy must equal it, every route is in it, and every error code
//! the code can answer with is listed in it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
}

#[test]
fn checked_in_spec_matches_the_code() {
    let generated = qrgate_server::http::openapi::json();
    let checked_in = std::fs::read_to_string(root().join("spec/openapi.json")).unwrap();
    assert!(
        generated == checked_in,
        "spec/openapi.json is stale: regenerate it with\n  cargo run --bin qrgate -- openapi > spec/openapi.json"
    );
    let v: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(v["openapi"], "3.1.0");
}

#[test]
fn every_documented_handler_is_served() {
    // Each module registers its handlers with `routes!`, which takes the
    // path and method from the handler's `#[utoipa::path]`: the served
    // routes and the document come from the same calls. What could still
    // go wrong is a documented handler left out of every `routes!`: it
    // would be in neither, silently. So: every handler with a
    // `#[utoipa::path]` is in a `routes!`, and nothing else is.
    let mut files: Vec<_> = std::fs::read_dir(root().join("crates/qrgate-server/src/http"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    let src = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let mut documented = BTreeSet::new();
    for part in src.split("#[utoipa::path(").skip(1) {
        let after = part.split("async fn ").nth(1).unwrap();
        documented.insert(after.split('(').next().unwrap().trim().to_owned());
    }
    let mut served = BTreeSet::new();
    for part in src.split("routes!(").skip(1) {
        for name in part.split(')').next().unwrap().split(',') {
            served.insert(name.trim().to_owned());
        }
    }
    assert_eq!(documented, served);
    let v: serde_json::Value = serde_json::from_str(&qrgate_server::http::openapi::json()).unwrap();
    assert!(v["paths"].as_object().unwrap().len() > 30);
}

/// Codes passed to `Error::new(Kind::…, "code"`, `bad_request("code"` and
/// `bad("code"`, and the `code()` arms of the error enums in core and codes.
fn codes_in_sources() -> BTreeSet<String> {
    let mut files = Vec::new();
    // Every file under the two crates' sources, sub-modules included.
    let mut dirs = vec![
        root().join("crates/qrgate-gateway/src"),
        root().join("crates/qrgate-server/src"),
    ];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push((p, false));
            }
        }
    }
    for f in [
        "crates/qrgate-core/src/money.rs",
        "crates/qrgate-codes/src/cpm.rs",
        "crates/qrgate-codes/src/numeric.rs",
        "crates/qrgate-codes/src/merchant.rs",
        "crates/qrgate-processor/src/lib.rs",
        "crates/qrgate-processor/src/card.rs",
    ] {
        files.push((root().join(f), true));
    }
    let mut out = BTreeSet::new();
    for (path, arms) in files {
        let src = std::fs::read_to_string(&path).unwrap();
        let flat: String = src.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut take_after = |marker: &str| {
            for part in flat.split(marker).skip(1) {
                let part = part.trim_start();
                if let Some(rest) = part.strip_prefix('"') {
                    let code = rest.split('"').next().unwrap();
                    if code
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                        && !code.is_empty()
                    {
                        out.insert(code.to_owned());
                    }
                }
            }
        };
        take_after("bad_request(");
        take_after(" bad(");
        for kind in [
            "BadRequest",
            "Unauthorized",
            "Forbidden",
            "NotFound",
            "MethodNotAllowed",
            "Conflict",
            "Declined",
            "Unprocessable",
            "Unavailable",
            "Internal",
        ] {
            take_after(&format!("Kind::{kind},"));
        }
        if arms {
            // Only inside `fn code(`: the stable-code match arms.
            for body in flat.split("fn code(&self) -> &'static str {").skip(1) {
                let body = body.split(" } } ").next().unwrap();
                for arm in body.split("=> \"").skip(1) {
                    out.insert(arm.split('"').next().unwrap().to_owned());
                }
            }
        }
    }
    out
}

#[test]
fn every_error_code_in_the_code_is_listed() {
    let listed: BTreeSet<String> = qrgate_gateway::ERROR_CODES
        .iter()
        .map(|(c, _)| (*c).to_owned())
        .collect();
    let used = codes_in_sources();
    assert!(used.len() > 40, "the scan found too few codes: {used:?}");
    let missing: Vec<_> = used.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "codes used but not in ERROR_CODES: {missing:?}"
    );
    let v: serde_json::Value = serde_json::from_str(&qrgate_server::http::openapi::json()).unwrap();
    let in_doc = v["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(in_doc, listed.len());
}
