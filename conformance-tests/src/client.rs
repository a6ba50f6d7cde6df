//! HTTP with a transcript: every request and response a case makes is kept
//! as evidence (API keys redacted).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// One request and its response.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    pub status: u16,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers: Vec<(String, String)>,
    pub response_body: String,
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn rule(&self) -> &str {
        self.json["error"]["rule"].as_str().unwrap_or_default()
    }
}

/// A request to send.
pub struct Req<'a> {
    pub method: &'a str,
    pub path: String,
    pub key: Option<&'a str>,
    /// The body's bytes (JSON unless `content_type` says otherwise).
    pub body: Option<Vec<u8>>,
    pub content_type: Option<&'a str>,
    pub idempotency_key: Option<String>,
}

#[derive(Clone)]
pub struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    pub fn new(base: &str) -> Result<Http, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("qrgate-conformance/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Http {
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn send(&self, r: Req<'_>) -> Result<(Resp, Exchange), String> {
        self.send_with(&self.client, r).await
    }

    /// On a connection of its own, never reused: for requests the server may
    /// answer early and close (an oversized body), so the pool stays clean.
    pub async fn send_alone(&self, r: Req<'_>) -> Result<(Resp, Exchange), String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        self.send_with(&client, r).await
    }

    async fn send_with(
        &self,
        client: &reqwest::Client,
        r: Req<'_>,
    ) -> Result<(Resp, Exchange), String> {
        let method = reqwest::Method::from_bytes(r.method.as_bytes()).map_err(|e| e.to_string())?;
        let mut b = client.request(method, format!("{}{}", self.base, r.path));
        if let Some(k) = r.key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        if let Some(i) = &r.idempotency_key {
            b = b.header("idempotency-key", i);
        }
        if let Some(body) = &r.body {
            b = b
                .header("content-type", r.content_type.unwrap_or("application/json"))
                .body(body.clone());
        }
        let res = b
            .send()
            .await
            .map_err(|e| format!("{} {}: {e}", r.method, r.path))?;
        let status = res.status().as_u16();
        let headers: Vec<(String, String)> = res
            .headers()
            .iter()
            .filter(|(k, _)| {
                matches!(
                    k.as_str(),
                    "content-type"
                        | "idempotent-replayed"
                        | "x-request-id"
                        | "retry-after"
                        | "repr-digest"
                        | "qrgate-statement"
                        | "qrgate-statement-as-of"
                )
            })
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let bytes = res.bytes().await.map_err(|e| e.to_string())?;
        let body = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_str(&body).unwrap_or(Value::Null);
        // Evidence keeps bodies but never API keys or secrets shown once.
        let mut shown = body.clone();
        if let Some(secret) = json.get("secret").and_then(|s| s.as_str()) {
            shown = shown.replace(secret, "[secret redacted]");
        }
        let exchange = Exchange {
            method: r.method.to_owned(),
            path: r.path.clone(),
            idempotency_key: r.idempotency_key.clone(),
            request_body: r.body.as_ref().map(|b| match std::str::from_utf8(b) {
                Ok(text) if b.len() <= 4096 => text.to_owned(),
                _ => format!("[{} bytes]", b.len()),
            }),
            status,
            response_headers: headers.clone(),
            response_body: if shown.len() > 8192 {
                format!(
                    "{}… [{} bytes]",
                    &shown[..char_boundary(&shown, 8192)],
                    shown.len()
                )
            } else {
                shown
            },
        };
        Ok((
            Resp {
                status,
                headers,
                body,
                json,
            },
            exchange,
        ))
    }
}

/// The largest char boundary at or below `max`.
fn char_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
