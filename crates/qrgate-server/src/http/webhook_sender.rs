//! Sends webhook deliveries over HTTP(S) with rustls (ring provider).

use std::time::Duration;

use qrgate_gateway::webhooks::{ATTEMPT_TIMEOUT_SECONDS, Sender};

pub struct HttpSender {
    client: reqwest::Client,
}

impl HttpSender {
    pub fn new() -> Result<HttpSender, String> {
        // One process-wide TLS provider; a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(ATTEMPT_TIMEOUT_SECONDS))
            .connect_timeout(Duration::from_secs(5))
            // A redirect could point a signed event somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("qrgate-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        Ok(HttpSender { client })
    }
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
            .map_err(|e| {
                if e.is_timeout() {
                    format!("timed out after {ATTEMPT_TIMEOUT_SECONDS} s")
                } else if e.is_connect() {
                    "could not connect".to_owned()
                } else {
                    format!("request failed: {e}")
                }
            })?;
        Ok(res.status().as_u16())
    }
}
