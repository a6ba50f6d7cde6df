//! `X-Forwarded-For` headers and `trusted_proxies` entries: neither parse
//! panics; the client read from a header is the peer itself when the peer is
//! not trusted, and otherwise the peer or an address the header names.
#![no_main]
use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use qrgate_core::net::{Cidr, forwarded_client};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (blocks, header) = text.split_once('\n').unwrap_or((text, ""));
    let trusted: Vec<Cidr> = blocks.split(' ').filter_map(|b| b.parse().ok()).collect();
    for peer in ["10.0.0.5", "203.0.113.1", "fd00::1"] {
        let peer: IpAddr = peer.parse().unwrap();
        let client = forwarded_client(peer, header.split('\t'), &trusted);
        if !trusted.iter().any(|c| c.contains(peer)) {
            assert_eq!(client, peer);
        } else if client != peer {
            let named = header
                .split(['\t', ','])
                .filter_map(|e| e.trim().parse::<IpAddr>().ok())
                .any(|a| a == client);
            assert!(named, "{client} is neither the peer nor in {header:?}");
        }
    }
});
