//! `qrgate-conformance run|list|verify|keygen`.

use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Parser, Subcommand};
use ring::signature::KeyPair;

use qrgate_conformance::report::{self, Status};
use qrgate_conformance::run::{Options, RunError};

/// Black-box conformance suite for qrgate deployments.
///
/// Exit status of `run`: 0 every selected MUST case passed (SHOULD failures
/// are WARN); 1 a MUST case failed; 2 usage error or no case selected;
/// 3 the target is not reachable or not ready.
#[derive(Parser)]
#[command(name = "qrgate-conformance", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the cases against a deployment.
    Run {
        /// Base URL, e.g. http://127.0.0.1:8080
        #[arg(long)]
        target: String,
        /// An admin API key of the target.
        #[arg(long, env = "QRGATE_ADMIN_KEY")]
        admin_key: String,
        /// Only these case ids or rule ids (comma separated).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Skip these case ids or rule ids (comma separated).
        #[arg(long, value_delimiter = ',')]
        skip: Vec<String>,
        /// JUnit XML report.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// JSON report (the evidence).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Readable HTML report.
        #[arg(long)]
        html: Option<PathBuf>,
        /// `baseline` (a failed SHOULD case warns) or `strict` (it fails).
        #[arg(long, value_enum, default_value = "baseline")]
        profile: ProfileArg,
        /// TOML file of waivers: [[waiver]] case, owner, expires (YYYY-MM-DD), reason.
        #[arg(long)]
        waivers: Option<PathBuf>,
        /// Sign the JSON report with this key (made by `keygen`).
        #[arg(long)]
        sign_key: Option<PathBuf>,
        /// Cases run at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// List every case: id, rule, level, title.
    List,
    /// Check a signed JSON report; any changed byte fails.
    Verify {
        report: PathBuf,
        /// The signer's public key file (made by `keygen`).
        #[arg(long)]
        public_key: PathBuf,
    },
    /// Make a signing key: writes KEY (secret seed, mode 0600) and KEY.pub.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ProfileArg {
    Baseline,
    Strict,
}

fn write(path: &PathBuf, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::List => {
            for c in qrgate_conformance::cases::all() {
                let level = match c.level {
                    qrgate_conformance::cases::Level::Must => "MUST",
                    qrgate_conformance::cases::Level::Should => "SHOULD",
                };
                println!("{:<28} {:<24} {:<6} {}", c.id, c.rule, level, c.title);
            }
            ExitCode::SUCCESS
        }
        Cmd::Keygen { out } => {
            let kp = match qrgate_codes::keyring::seed_file::create(&out) {
                Ok(kp) => kp,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let public = URL_SAFE_NO_PAD.encode(kp.public_key().as_ref());
            let pub_path = PathBuf::from(format!("{}.pub", out.display()));
            if let Err(e) = write(&pub_path, &format!("{public}\n")) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            println!(
                "secret key: {} (keep it)\npublic key: {} ({public})",
                out.display(),
                pub_path.display()
            );
            ExitCode::SUCCESS
        }
        Cmd::Verify { report, public_key } => {
            let (Ok(text), Ok(pk)) = (
                std::fs::read_to_string(&report),
                std::fs::read_to_string(&public_key),
            ) else {
                eprintln!(
                    "error: cannot read {} or {}",
                    report.display(),
                    public_key.display()
                );
                return ExitCode::from(2);
            };
            match report::verify(&text, &pk) {
                Ok(()) => {
                    println!(
                        "OK: {} is signed by {} and unchanged",
                        report.display(),
                        pk.trim()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("FAILED: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Run {
            target,
            admin_key,
            only,
            skip,
            junit,
            json,
            html,
            profile,
            waivers,
            sign_key,
            concurrency,
        } => {
            let waivers = match waivers
                .map(|p| {
                    std::fs::read_to_string(&p)
                        .map_err(|e| format!("{}: {e}", p.display()))
                        .and_then(|t| qrgate_conformance::run::load_waivers(&t))
                })
                .transpose()
            {
                Ok(w) => w.unwrap_or_default(),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let profile = match profile {
                ProfileArg::Baseline => qrgate_conformance::run::Profile::Baseline,
                ProfileArg::Strict => qrgate_conformance::run::Profile::Strict,
            };
            let key = match sign_key
                .as_deref()
                .map(qrgate_codes::keyring::seed_file::load)
                .transpose()
            {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let result = rt.block_on(qrgate_conformance::run::run(Options {
                target,
                admin_key,
                only,
                skip,
                concurrency,
                profile,
                waivers,
            }));
            let rep = match result {
                Ok(r) => r,
                Err(RunError::Usage(e)) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
                Err(RunError::Unreachable(e)) => {
                    eprintln!("error: target not reachable or not ready: {e}");
                    return ExitCode::from(3);
                }
            };
            for c in &rep.cases {
                let status = match c.status {
                    Status::Pass => "PASS",
                    Status::Fail => "FAIL",
                    Status::Warn => "WARN",
                    Status::Skip => "SKIP",
                };
                println!("{status} {:<28} {:<24} {}", c.id, c.rule, c.title);
                if let (Some(e), Some(o)) = (&c.expected, &c.observed) {
                    println!("     expected {e}\n     observed {o}");
                }
            }
            let s = &rep.summary;
            println!(
                "{} passed, {} failed, {} warned, {} skipped ({} cases)",
                s.pass, s.fail, s.warn, s.skip, s.total
            );
            let uncovered: Vec<&str> = rep
                .coverage
                .iter()
                .filter(|r| r["covered"] != true)
                .filter_map(|r| r["rule"].as_str())
                .collect();
            println!(
                "rules covered by passing cases: {} of {}{}",
                rep.coverage.len() - uncovered.len(),
                rep.coverage.len(),
                if uncovered.is_empty() {
                    String::new()
                } else {
                    format!(" (not covered: {})", uncovered.join(", "))
                }
            );
            if !rep.created.is_empty() {
                println!(
                    "created on the target: {} objects (listed in the JSON report)",
                    rep.created.len()
                );
            }
            if let Some(path) = json {
                match report::to_json(&rep, key.as_ref()) {
                    Ok(text) => {
                        if let Err(e) = write(&path, &format!("{text}\n")) {
                            eprintln!("error: {e}");
                            return ExitCode::from(2);
                        }
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            for w in &rep.waivers {
                if w["state"] != "applied" {
                    println!(
                        "waiver for {}: {}",
                        w["case"].as_str().unwrap_or_default(),
                        w["state"].as_str().unwrap_or_default()
                    );
                }
            }
            if let Some(path) = html
                && let Err(e) = write(&path, &report::html(&rep))
            {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            if let Some(path) = junit
                && let Err(e) = write(&path, &report::junit(&rep))
            {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            if s.fail > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
