//! `qrgate`: the gateway's command line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    qrgate_server::cli::run(qrgate_server::cli::Cli::parse())
}
