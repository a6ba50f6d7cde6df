//! qrgate-conformance: black-box cases, one or more per rule of
//! `spec/rules.toml`, run over HTTP against any qrgate deployment with an
//! admin key. It creates only its own test merchants and customers (named
//! `CONFORMANCE <run tag>`) and lists them in the report.

pub mod cases;
pub mod client;
pub mod ctx;
pub mod report;
pub mod run;
