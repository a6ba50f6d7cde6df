//! An uploaded photo (the wallet's scan): any bytes are refused or scanned,
//! never a panic, and never more than the upload limits allocate (a file
//! claiming a huge picture is refused before decoding).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = qrgate_codes::image::scan_upload(data);
});
