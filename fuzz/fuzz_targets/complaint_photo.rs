//! A complaint photo's type is decided by its first bytes: any bytes get
//! PNG, JPEG or nothing, and never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(t) = qrgate_core::complaint::sniff_image(data) {
        assert!(t == "image/png" || t == "image/jpeg");
    }
});
