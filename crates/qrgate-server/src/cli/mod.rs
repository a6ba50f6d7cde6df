//! Command-line interface.

pub mod code;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use qrgate_core::rules::Catalogue;

/// qrgate: a QR-code payment gateway.
#[derive(Debug, Parser)]
#[command(name = "qrgate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (HTTP API). The SQLite file is created and migrated on first start.
    Serve(serve::ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(serve::StoreArgs),
    /// Manage the gateway's signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check the books.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Settle a business day that is over, for every merchant (or one):
    /// what the gateway's job does the morning after. Running it again
    /// changes nothing.
    Settle(serve::SettleArgs),
    /// Match the card processor's settlement file for a business day
    /// against the ledger: matched, missing on either side, amount and
    /// status mismatches (exit 1 when they do not agree).
    Reconcile(serve::ReconcileArgs),
    /// The master key that seals secrets at rest.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// The barcode-payment rule catalogue.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Work with QR payloads and images offline: decode, render, scan, build.
    #[command(subcommand)]
    Code(code::CodeCommand),
    /// Print the OpenAPI 3.1 document (as served at /openapi.json).
    Openapi,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a new active signing key; older keys keep verifying until retired.
    Rotate(serve::StoreArgs),
    /// Print the public keys (as GET /v1/keys does).
    List(serve::StoreArgs),
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Re-seal every secret under a new master key (--master-key-file NEW
    /// --previous-master-key-file OLD); afterwards only NEW is needed.
    RotateMaster(serve::StoreArgs),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk the audit hash chain and check the ledger balances; exit 1 if not.
    Verify(serve::StoreArgs),
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Print every rule: id, level, number, source.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn finish(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Code(c) => code::run(c),
        Command::Openapi => {
            use std::io::Write;
            let _ = std::io::stdout()
                .lock()
                .write_all(crate::http::openapi::json().as_bytes());
            ExitCode::SUCCESS
        }
        Command::Rules(RulesCommand::List { json }) => finish(rules_list(json)),
        Command::Serve(a) => finish(runtime().and_then(|rt| rt.block_on(serve::serve(a)))),
        Command::Migrate(s) => finish(runtime().and_then(|rt| rt.block_on(serve::migrate(s)))),
        Command::Settle(a) => finish(runtime().and_then(|rt| rt.block_on(serve::settle(a)))),
        Command::Keys(KeysCommand::Rotate(s)) => {
            finish(runtime().and_then(|rt| rt.block_on(serve::keys_rotate(s))))
        }
        Command::Secrets(SecretsCommand::RotateMaster(s)) => {
            finish(runtime().and_then(|rt| rt.block_on(serve::secrets_rotate_master(s))))
        }
        Command::Keys(KeysCommand::List(s)) => {
            finish(runtime().and_then(|rt| rt.block_on(serve::keys_list(s))))
        }
        Command::Reconcile(a) => match runtime().and_then(|rt| rt.block_on(serve::reconcile(a))) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Audit(AuditCommand::Verify(s)) => {
            match runtime().and_then(|rt| rt.block_on(serve::audit_verify(s))) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn rules_list(json: bool) -> Result<(), String> {
    use std::io::Write;
    let c = Catalogue::builtin().map_err(|e| e.to_string())?;
    // A closed pipe (`| head`) ends the listing quietly.
    let mut out = std::io::stdout().lock();
    if json {
        let text = serde_json::to_string_pretty(c.rules()).map_err(|e| e.to_string())?;
        let _ = writeln!(out, "{text}");
        return Ok(());
    }
    let _ = writeln!(
        out,
        "{:<31} {:<6} {:>10}  {:<12} SOURCE",
        "ID", "LEVEL", "NUMBER", "UNIT"
    );
    for r in c.rules() {
        let level = match r.level {
            qrgate_core::rules::Level::Must => "MUST",
            qrgate_core::rules::Level::Should => "SHOULD",
        };
        let number = match (r.value, r.optional) {
            (Some(v), _) => v.to_string(),
            // An optional limit nobody turned on.
            (None, true) => "off".into(),
            (None, false) => "-".into(),
        };
        let unit: String = r
            .unit
            .as_deref()
            .unwrap_or("-")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        if writeln!(
            out,
            "{:<31} {:<6} {:>10}  {:<12} {}",
            r.id, level, number, unit, r.source
        )
        .is_err()
        {
            break;
        }
    }
    Ok(())
}
