//! Sends webhook deliveries over HTTP(S) with rustls (ring provider).
//!
//! Host names are resolved by [`CheckedResolver`], which hands the
//! connector only the addresses a webhook may reach
//! ([`qrgate_core::net::name_may_resolve_to`]): the address checked is the
//! address connected to, so a name that re-resolves to an internal address
//! after registration (DNS rebinding) reaches nothing. Literal addresses are
//! checked by the dispatcher before it calls [`HttpSender::post`]. Proxies
//! from the environment are ignored (a proxy would connect on our behalf to
//! an address we never saw), and redirects are not followed.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use qrgate_core::net::{Reach, name_may_resolve_to};
use qrgate_gateway::webhooks::{ATTEMPT_TIMEOUT_SECONDS, Sender};

pub struct HttpSender {
    client: reqwest::Client,
}

/// The error a refused name gives; the dispatcher reports it as such.
#[derive(Debug)]
struct NotAllowed;

impl std::fmt::Display for NotAllowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the endpoint's host resolves to no address a webhook may reach")
    }
}

impl std::error::Error for NotAllowed {}

/// Resolves with the system resolver and keeps only allowed addresses.
pub struct CheckedResolver {
    pub reach: Reach,
}

impl CheckedResolver {
    /// The allowed addresses among `found` for `host`.
    pub fn filter(&self, host: &str, found: impl Iterator<Item = SocketAddr>) -> Vec<SocketAddr> {
        found
            .filter(|a| name_may_resolve_to(host, a.ip(), self.reach))
            .collect()
    }
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let reach = self.reach;
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let ok = CheckedResolver { reach }.filter(&host, found);
            if ok.is_empty() {
                return Err(Box::new(NotAllowed) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

impl HttpSender {
    pub fn new(reach: Reach) -> Result<HttpSender, String> {
        // One process-wide TLS provider; a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(ATTEMPT_TIMEOUT_SECONDS))
            .connect_timeout(Duration::from_secs(5))
            // A redirect could point a signed event somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(CheckedResolver { reach })
            .user_agent(concat!("qrgate-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        Ok(HttpSender { client })
    }
}

/// Does `e` come from [`CheckedResolver`] refusing every address?
fn refused_by_resolver(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<NotAllowed>() {
            return true;
        }
        source = s.source();
    }
    false
}

impl Sender for HttpSender {
    async fn post(&self, url: &str, signature: &str, body: &str) -> Result<u16, String> {
        let res = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("qrgate-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            // What a merchant reads: the class of failure only, never the
            // addresses tried or a library's message (they could map the
            // gateway's network).
            .map_err(|e| {
                if refused_by_resolver(&e) {
                    "refused: the endpoint's host does not resolve to a public address".to_owned()
                } else if e.is_timeout() {
                    format!("timed out after {ATTEMPT_TIMEOUT_SECONDS} s")
                } else if e.is_connect() {
                    "could not connect".to_owned()
                } else {
                    "the request failed before an answer arrived".to_owned()
                }
            })?;
        Ok(res.status().as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resolver_keeps_only_allowed_addresses() {
        let addrs = |list: &[&str]| -> Vec<SocketAddr> {
            list.iter().map(|a| a.parse().unwrap()).collect()
        };
        let strict = CheckedResolver {
            reach: Reach {
                internal: false,
                local_http: true,
            },
        };
        let mixed = addrs(&["10.0.0.1:443", "93.184.215.14:443", "[::1]:443"]);
        assert_eq!(
            strict.filter("shop.example", mixed.clone().into_iter()),
            addrs(&["93.184.215.14:443"])
        );
        assert_eq!(
            strict.filter("localhost", mixed.clone().into_iter()),
            addrs(&["[::1]:443"])
        );
        let open = CheckedResolver {
            reach: Reach {
                internal: true,
                local_http: false,
            },
        };
        assert_eq!(
            open.filter("shop.example", mixed.clone().into_iter()),
            mixed
        );
    }

    #[tokio::test]
    async fn a_name_resolving_only_to_internal_addresses_is_not_connected_to() {
        // `localhost` under its own name is a loopback target; a name that
        // resolves to loopback but is not `localhost` is refused. Here the
        // resolver is asked directly for such a name (127.0.0.1 as a
        // "name" resolves to itself in the system resolver).
        let r = CheckedResolver {
            reach: Reach {
                internal: false,
                local_http: true,
            },
        };
        let name: Name = "127.0.0.1".parse().unwrap();
        assert!(r.resolve(name).await.is_err());
        let name: Name = "localhost".parse().unwrap();
        let ok: Vec<SocketAddr> = r.resolve(name).await.unwrap().collect();
        assert!(ok.iter().all(|a| a.ip().is_loopback()) && !ok.is_empty());
    }
}
