//! The `qrgate` binary's library half: the HTTP API (axum) and the command line.

pub mod cli;
pub mod http;
pub mod web;
