//! The EMV MPM parser on arbitrary text: never panics; whatever parses
//! re-encodes to exactly the input and passes the strict check without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrgate_codes::emv;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(p) = emv::parse(text) {
        let _ = emv::check_emvco(&p);
        let mut rebuilt = String::new();
        for f in p.fields() {
            rebuilt.push_str(&format!("{}{:02}{}", f.tag, f.value.chars().count(), f.value));
        }
        assert_eq!(rebuilt, text);
        let _ = emv::MpmPayload::from_payload(&p);
    }
});
