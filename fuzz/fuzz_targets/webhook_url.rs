//! Webhook endpoint URLs from merchants: the check never panics, and an
//! accepted URL has no user info, a host, and (for https to a literal
//! address) a public address; it parses again to the same target.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrgate_core::net::{Target, is_public};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for allow_internal in [false, true] {
        let Ok(t) = Target::parse(text, allow_internal) else { continue };
        let u = t.url();
        assert!(u.username().is_empty() && u.password().is_none());
        assert!(u.host().is_some());
        if u.scheme() == "https" && !allow_internal {
            match u.host() {
                Some(url::Host::Ipv4(a)) => assert!(is_public(a.into())),
                Some(url::Host::Ipv6(a)) => assert!(is_public(a.into())),
                _ => {}
            }
        }
        assert_eq!(Target::parse(t.as_str(), allow_internal).as_ref(), Ok(&t));
    }
});
