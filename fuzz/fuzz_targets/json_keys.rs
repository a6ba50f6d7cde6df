//! Request bodies from the wire: the duplicate-key check never panics, and
//! it agrees with serde_json on what is JSON at all.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrgate_core::json::{JsonProblem, check_unique_keys};

fuzz_target!(|data: &[u8]| {
    let parsed = serde_json::from_slice::<serde_json::Value>(data);
    match check_unique_keys(data) {
        Ok(()) | Err(JsonProblem::DuplicateKey(_)) => assert!(parsed.is_ok()),
        Err(JsonProblem::Invalid(_)) => assert!(parsed.is_err()),
    }
});
