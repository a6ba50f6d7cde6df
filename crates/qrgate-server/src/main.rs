//! `qrgate`: the gateway's command line.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: a payment allocates and frees
/// many small buffers across threads (JSON, SQL arguments, HTTP), and glibc's
/// malloc spent about a fifth of the request workers' time on them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    qrgate_server::cli::run(qrgate_server::cli::Cli::parse())
}
