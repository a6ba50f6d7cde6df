//! Command-line interface.

mod code;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// qrgate: a QR-code payment gateway.
#[derive(Debug, Parser)]
#[command(name = "qrgate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with QR payloads and images offline: decode, render, scan, build.
    #[command(subcommand)]
    Code(code::CodeCommand),
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Code(c) => code::run(c),
    }
}
