//! `qrgate`: the gateway's command line.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: a payment allocates and frees
/// many small buffers across threads (JSON, SQL arguments, HTTP), and glibc's
/// malloc spent about a fifth of the request workers' time on them. With
/// the crate's `override` feature (workspace Cargo.toml) the C code's
/// `malloc` is mimalloc's too, so the bundled SQLite's page and statement
/// allocations in the writer thread no longer go through glibc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    qrgate_server::cli::run(qrgate_server::cli::Cli::parse())
}
