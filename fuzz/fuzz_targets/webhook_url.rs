//! Webhook endpoint URLs from merchants: the check never panics, and an
//! accepted URL has no user info and a host; an https one to a literal
//! address names a public address unless internal targets are allowed; it
//! parses again to the same target.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrgate_core::net::{Reach, Target, is_public};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for (internal, local_http) in [(false, false), (false, true), (true, false), (true, true)] {
        let reach = Reach { internal, local_http };
        let Ok(t) = Target::parse(text, reach) else { continue };
        let u = t.url();
        assert!(u.username().is_empty() && u.password().is_none());
        assert!(u.host().is_some());
        if u.scheme() == "https" && !internal {
            match u.host() {
                Some(url::Host::Ipv4(a)) => assert!(is_public(a.into())),
                Some(url::Host::Ipv6(a)) => assert!(is_public(a.into())),
                _ => {}
            }
        }
        if u.scheme() == "http" {
            assert!(local_http, "plain http only where local http is allowed: {text:?}");
        }
        assert_eq!(Target::parse(t.as_str(), reach).as_ref(), Ok(&t));
    }
});
