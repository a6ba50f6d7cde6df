//! Where the gateway may send a merchant's webhooks: a parsed URL and a
//! classification of IP addresses. Pure; resolving names is the caller's
//! job (at registration, and again for every delivery, against the address
//! actually connected to).
//!
//! The rules, in order:
//! - the URL parses (WHATWG, the `url` crate), is at most 2,048 bytes, has
//!   a host, no user name or password, and no fragment;
//! - `https`; plain `http` only to a literal loopback address or
//!   `localhost`, and only where the deployment allows it (development);
//! - an https target that is, or resolves to, an address that is not
//!   public (loopback, private, link-local, CGNAT, multicast, unspecified,
//!   reserved, documentation; IPv6 included, and IPv4 inside IPv6) is
//!   refused unless the deployment opted in to internal targets. 6to4,
//!   Teredo and local-use NAT64 addresses (which can carry a private IPv4
//!   address) are refused as well.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Longest webhook URL accepted.
pub const MAX_URL_BYTES: usize = 2048;

/// What a deployment lets webhooks reach beyond the public internet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reach {
    /// https targets on internal addresses (the deployment's own network).
    pub internal: bool,
    /// Plain http to loopback / `localhost` (development machines, tests).
    pub local_http: bool,
}

/// Why a webhook target is refused. The messages name the rule, never an
/// address the target resolved to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("url is not a valid absolute URL: {0}")]
    Unparsable(String),
    #[error("url must be at most {MAX_URL_BYTES} bytes")]
    TooLong,
    #[error("url must not contain a user name or password")]
    Userinfo,
    #[error("url must not contain a fragment (#...)")]
    Fragment,
    #[error("url has no host")]
    NoHost,
    #[error("url must start with https:// (plain http is accepted only for localhost)")]
    NotHttps,
    #[error(
        "plain http to localhost is for development, and this deployment does not allow it: use https"
    )]
    LocalHttpOff,
    #[error("url points at an address that is not on the public internet")]
    NotPublic,
}

/// A webhook URL that passed the checks that need no name lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    url: Url,
    /// Plain http to a loopback address or `localhost`.
    local_http: bool,
}

impl Target {
    /// Parse and check `text`. `allow_internal`: the deployment accepts
    /// https targets on internal addresses (a private network of its own).
    pub fn parse(text: &str, reach: Reach) -> Result<Target, TargetError> {
        if text.len() > MAX_URL_BYTES {
            return Err(TargetError::TooLong);
        }
        let url = Url::parse(text).map_err(|e| TargetError::Unparsable(e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetError::Userinfo);
        }
        if url.fragment().is_some() {
            return Err(TargetError::Fragment);
        }
        let host = url.host().ok_or(TargetError::NoHost)?;
        let literal = match &host {
            Host::Ipv4(a) => Some(IpAddr::V4(*a)),
            Host::Ipv6(a) => Some(IpAddr::V6(*a)),
            Host::Domain(_) => None,
        };
        let loopback_literal = literal.is_some_and(|a| a.is_loopback());
        let localhost = matches!(&host, Host::Domain(d) if is_localhost_name(d));
        let local_http = match url.scheme() {
            "https" => false,
            "http" if (loopback_literal || localhost) && reach.local_http => true,
            "http" if loopback_literal || localhost => return Err(TargetError::LocalHttpOff),
            _ => return Err(TargetError::NotHttps),
        };
        if !local_http && !reach.internal && (localhost || literal.is_some_and(|a| !is_public(a))) {
            return Err(TargetError::NotPublic);
        }
        Ok(Target { url, local_http })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The host name to resolve, if the host is a name (not an address).
    pub fn domain(&self) -> Option<&str> {
        self.url.domain()
    }

    /// The port to connect to (the scheme's default when none is given).
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(443)
    }

    /// May a connection for this target go to `addr`? Plain-http local
    /// targets only to loopback; others only to public addresses, unless
    /// the deployment allows internal ones.
    pub fn may_connect(&self, addr: IpAddr, reach: Reach) -> bool {
        if self.local_http {
            reach.local_http && unmapped(addr).is_loopback()
        } else {
            reach.internal || is_public(addr)
        }
    }
}

/// May a connection to the host name `name` of a webhook URL (one that
/// passed [`Target::parse`]) go to `addr`, an address the name resolved
/// to? `localhost` names only to loopback, and only where the deployment
/// allows local or internal targets; others only to public addresses,
/// unless it allows internal ones. What a resolver for deliveries filters
/// with, so the address checked is the address connected to.
pub fn name_may_resolve_to(name: &str, addr: IpAddr, reach: Reach) -> bool {
    if is_localhost_name(name) {
        (reach.local_http || reach.internal) && unmapped(addr).is_loopback()
    } else {
        reach.internal || is_public(addr)
    }
}

/// `localhost` and names under it (RFC 6761), which resolve to loopback.
fn is_localhost_name(d: &str) -> bool {
    let d = d.trim_end_matches('.');
    d.eq_ignore_ascii_case("localhost")
        || d.len() > ".localhost".len()
            && d[d.len() - ".localhost".len()..].eq_ignore_ascii_case(".localhost")
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`) IPv6 address;
/// otherwise the address itself.
fn unmapped(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
            let mapped = s[..5] == [0; 5] && s[5] == 0xffff;
            let compatible = s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1);
            let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            if mapped || compatible || nat64 {
                IpAddr::V4(tail)
            } else {
                addr
            }
        }
        v4 => v4,
    }
}

/// Is `addr` an address on the public internet (globally routable unicast)?
pub fn is_public(addr: IpAddr) -> bool {
    match unmapped(addr) {
        IpAddr::V4(a) => public_v4(a),
        IpAddr::V6(a) => public_v6(a),
    }
}

fn public_v4(a: Ipv4Addr) -> bool {
    let [o0, o1, o2, _] = a.octets();
    let refused = a.is_unspecified()           // 0.0.0.0
        || o0 == 0                             // 0.0.0.0/8 "this network"
        || a.is_loopback()                     // 127.0.0.0/8
        || a.is_private()                      // 10/8, 172.16/12, 192.168/16
        || a.is_link_local()                   // 169.254/16 (cloud metadata)
        || (o0 == 100 && (o1 & 0xc0) == 64)    // 100.64/10 CGNAT
        || (o0 == 192 && o1 == 0 && o2 == 0)   // 192.0.0/24 IETF protocol
        || a.is_documentation()                // 192.0.2/24, 198.51.100/24, 203.0.113/24
        || (o0 == 198 && (o1 & 0xfe) == 18)    // 198.18/15 benchmarking
        || a.is_multicast()                    // 224/4
        || o0 >= 240; // 240/4 reserved, 255.255.255.255 broadcast
    !refused
}

fn public_v6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    let refused = a.is_unspecified()           // ::
        || a.is_loopback()                     // ::1
        || a.is_multicast()                    // ff00::/8
        || (s[0] & 0xfe00) == 0xfc00           // fc00::/7 unique local
        || (s[0] & 0xffc0) == 0xfe80           // fe80::/10 link-local
        || (s[0] & 0xffc0) == 0xfec0           // fec0::/10 site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8)  // 2001:db8::/32 documentation
        || (s[0] == 0x0100 && s[1..4] == [0; 3]) // 100::/64 discard
        || s[0] == 0x2002                      // 2002::/16 6to4 (embeds any IPv4)
        || (s[0] == 0x2001 && s[1] == 0)       // 2001::/32 Teredo (embeds an IPv4)
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // 64:ff9b:1::/48 local-use NAT64
        || s[0] == 0; // the rest of ::/16: reserved, or IPv4 forms handled above
    !refused
}

/// A block of addresses, `10.0.0.0/8` or `fd00::/8` (a bare address is its
/// own block): the proxies a deployment trusts to say who their client was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    base: IpAddr,
    bits: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address block: write it like 10.0.0.0/8, fd00::/8 or 127.0.0.1")]
pub struct CidrError(pub String);

impl std::str::FromStr for Cidr {
    type Err = CidrError;
    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let bad = || CidrError(text.to_owned());
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let base: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) => {
                b.parse::<u8>().ok().filter(|n| *n <= max).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        Ok(Cidr { base, bits })
    }
}

impl Cidr {
    /// Is `addr` inside the block? An IPv4 address written as IPv6
    /// (`::ffff:10.0.0.1`) is taken as the IPv4 address.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(a) => a.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        match (self.base, addr) {
            (IpAddr::V4(b), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(b) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(b), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(b) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Who the client of a request was: the connection's peer, unless the peer
/// is a trusted proxy; then the `X-Forwarded-For` entries (in the order the
/// headers and their lists give them) are read from the right, skipping
/// trusted proxies, and the first other address is the client. An entry
/// that is not an address ends the walk (a client can write anything on the
/// left of the list; only what trusted proxies appended counts), and so the
/// nearest proxy's word is taken then.
pub fn forwarded_client<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &[Cidr],
) -> IpAddr {
    let is_trusted = |a: IpAddr| trusted.iter().any(|c| c.contains(a));
    if !is_trusted(peer) {
        return peer;
    }
    let entries: Vec<&str> = forwarded_for
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(a) if is_trusted(a) => client = a,
            Ok(a) => return a,
            Err(_) => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STRICT: Reach = Reach {
        internal: false,
        local_http: false,
    };
    const LOCAL: Reach = Reach {
        internal: false,
        local_http: true,
    };
    const INTERNAL: Reach = Reach {
        internal: true,
        local_http: false,
    };

    #[test]
    fn tricks_with_the_host_are_refused() {
        for (url, why) in [
            ("http://127.0.0.1@example.com/", TargetError::Userinfo),
            ("http://127.0.0.1:9200/_search", TargetError::LocalHttpOff),
            (
                "http://localhost:2375/containers",
                TargetError::LocalHttpOff,
            ),
            ("https://[2002:a9fe:a9fe::1]/", TargetError::NotPublic),
            ("https://[2001:0:4136:e378::1]/", TargetError::NotPublic),
            ("https://[64:ff9b:1::a00:1]/", TargetError::NotPublic),
            ("https://user:pw@shop.example/h", TargetError::Userinfo),
            ("http://127.0.0.1.example.com/", TargetError::NotHttps),
            ("http://shop.example/hooks", TargetError::NotHttps),
            ("ftp://shop.example/", TargetError::NotHttps),
            ("https://shop.example/h#x", TargetError::Fragment),
            ("https://127.0.0.1/h", TargetError::NotPublic),
            ("https://10.1.2.3/h", TargetError::NotPublic),
            (
                "https://169.254.169.254/latest/meta-data",
                TargetError::NotPublic,
            ),
            ("https://100.64.0.1/", TargetError::NotPublic),
            ("https://[::1]/", TargetError::NotPublic),
            ("https://[::ffff:10.0.0.1]/", TargetError::NotPublic),
            ("https://[fd00::1]/", TargetError::NotPublic),
            ("https://[fe80::1]/", TargetError::NotPublic),
            ("https://0.0.0.0/", TargetError::NotPublic),
            ("https://0x7f000001/", TargetError::NotPublic),
            ("https://2130706433/", TargetError::NotPublic),
            ("https://017700000001/", TargetError::NotPublic),
            ("https://localhost/", TargetError::NotPublic),
            ("https://api.localhost./", TargetError::NotPublic),
            ("https://224.0.0.1/", TargetError::NotPublic),
        ] {
            assert_eq!(Target::parse(url, STRICT), Err(why), "{url}");
        }
        assert!(matches!(
            Target::parse("not a url", STRICT),
            Err(TargetError::Unparsable(_))
        ));
        assert_eq!(
            Target::parse(&format!("https://a.example/{}", "x".repeat(2048)), STRICT),
            Err(TargetError::TooLong)
        );
    }

    #[test]
    fn public_https_passes_and_local_http_where_allowed() {
        for url in [
            "https://shop.example/hooks",
            "https://93.184.215.14:8443/h?x=1",
            "https://[2606:4700::1111]/h",
        ] {
            assert!(Target::parse(url, STRICT).is_ok(), "{url}");
        }
        for url in [
            "http://127.0.0.1:9000/h",
            "http://[::1]:80/h",
            "http://localhost/h",
        ] {
            assert!(Target::parse(url, LOCAL).is_ok(), "{url}");
        }
        // A deployment that opted in may use its own network over https.
        assert!(Target::parse("https://10.1.2.3/h", INTERNAL).is_ok());
        assert!(Target::parse("http://10.1.2.3/h", INTERNAL).is_err());
        assert!(Target::parse("http://10.1.2.3/h", LOCAL).is_err());
    }

    #[test]
    fn connections_go_only_where_the_target_may() {
        let public = Target::parse("https://shop.example/h", STRICT).unwrap();
        let local = Target::parse("http://localhost:9000/h", LOCAL).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(public.may_connect(ip("93.184.215.14"), STRICT));
        for a in [
            "127.0.0.1",
            "10.0.0.8",
            "169.254.169.254",
            "::1",
            "::ffff:192.168.1.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!public.may_connect(ip(a), STRICT), "{a}");
        }
        assert!(public.may_connect(ip("10.0.0.8"), INTERNAL));
        assert!(local.may_connect(ip("127.0.0.1"), LOCAL));
        assert!(local.may_connect(ip("::1"), LOCAL));
        assert!(!local.may_connect(ip("127.0.0.1"), STRICT));
        assert!(!local.may_connect(ip("93.184.215.14"), LOCAL));
        assert_eq!((public.port(), local.port()), (443, 9000));
        assert!(name_may_resolve_to(
            "shop.example",
            ip("93.184.215.14"),
            STRICT
        ));
        assert!(!name_may_resolve_to("shop.example", ip("10.0.0.1"), STRICT));
        assert!(name_may_resolve_to(
            "shop.example",
            ip("10.0.0.1"),
            INTERNAL
        ));
        assert!(name_may_resolve_to("localhost", ip("127.0.0.1"), LOCAL));
        assert!(!name_may_resolve_to("localhost", ip("127.0.0.1"), STRICT));
        assert!(!name_may_resolve_to(
            "LOCALHOST.",
            ip("93.184.215.14"),
            INTERNAL
        ));
        assert_eq!(public.domain(), Some("shop.example"));
    }

    #[test]
    fn addresses_are_classified() {
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
        for a in [
            "0.1.2.3",
            "127.8.8.8",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "100.127.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "::a00:1",
            "2002:a9fe:a9fe::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "64:ff9b:1::a00:1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        assert!(is_public("172.32.0.1".parse().unwrap()));
        assert!(is_public("100.128.0.1".parse().unwrap()));
    }

    proptest! {
        /// Every IPv4 address is classified the same bare and mapped into IPv6.
        #[test]
        fn mapped_addresses_agree(bits in any::<u32>()) {
            let v4 = Ipv4Addr::from(bits);
            prop_assert_eq!(is_public(IpAddr::V4(v4)), is_public(IpAddr::V6(v4.to_ipv6_mapped())));
        }

        /// Any text gets an answer, and an accepted https URL to a literal
        /// address names a public one.
        #[test]
        fn any_text_gets_an_answer(text in "\\PC{0,80}") {
            if let Ok(t) = Target::parse(&text, STRICT)
                && t.url().scheme() == "https"
            {
                match t.url().host() {
                    Some(Host::Ipv4(a)) => prop_assert!(is_public(IpAddr::V4(a))),
                    Some(Host::Ipv6(a)) => prop_assert!(is_public(IpAddr::V6(a))),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn address_blocks_parse_and_contain() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.200.3.4".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(!c.contains("fd00::1".parse().unwrap()));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12:3456::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "fd00::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "x",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_client_is_read_from_trusted_proxies_only() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let peer = ip("10.0.0.5");
        // Not from a trusted proxy: the header is ignored.
        assert_eq!(
            forwarded_client(ip("203.0.113.9"), ["1.2.3.4"].into_iter(), &trusted),
            ip("203.0.113.9")
        );
        // From the proxy: the last address it appended.
        assert_eq!(
            forwarded_client(peer, ["198.51.100.7"].into_iter(), &trusted),
            ip("198.51.100.7")
        );
        // A client's own forged entries on the left do not count.
        assert_eq!(
            forwarded_client(peer, ["6.6.6.6, 198.51.100.7"].into_iter(), &trusted),
            ip("198.51.100.7")
        );
        // Chained proxies are skipped, over several headers.
        assert_eq!(
            forwarded_client(peer, ["198.51.100.7", "10.1.1.1"].into_iter(), &trusted),
            ip("198.51.100.7")
        );
        // Garbage ends the walk at the nearest trusted hop; no header: the peer.
        assert_eq!(
            forwarded_client(peer, ["1.1.1.1, nonsense, 10.2.2.2"].into_iter(), &trusted),
            ip("10.2.2.2")
        );
        assert_eq!(forwarded_client(peer, std::iter::empty(), &trusted), peer);
        assert_eq!(forwarded_client(peer, ["1.1.1.1"].into_iter(), &[]), peer);
    }
}
