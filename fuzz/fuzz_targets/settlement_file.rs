//! A processor's settlement file, as the operator feeds it to `qrgate
//! reconcile`: never panics; a file that is read renders back to the same
//! records.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrgate_processor::settlement::{parse, render};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(records) = parse(text) {
        assert_eq!(parse(&render(&records)).as_ref(), Ok(&records));
    }
});
