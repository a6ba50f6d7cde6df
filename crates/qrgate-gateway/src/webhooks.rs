//! Webhooks: merchants register endpoints; every outbox event of theirs is
//! delivered to each endpoint, signed, and retried with exponential backoff
//! for three days (at least 24 hours); attempts are visible and a delivery
//! can be sent again on request.
//!
//! Signature header: `Qrgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`.
//! Receivers should recompute it over the raw body and reject timestamps
//! more than five minutes away from their clock.

use std::collections::HashMap;
use std::future::Future;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::SecureRandom;
use serde::Serialize;
use serde_json::json;

use qrgate_store::*;

use crate::{Error, Gateway, Principal};

/// First retry after this many seconds; then doubling, capped at one hour.
pub const FIRST_RETRY_SECONDS: i64 = 10;
pub const MAX_RETRY_SECONDS: i64 = 3600;
/// Give up after this long.
pub const GIVE_UP_AFTER_SECONDS: i64 = 3 * 24 * 3600;
/// Each attempt may take this long.
pub const ATTEMPT_TIMEOUT_SECONDS: u64 = 10;

/// Posts a signed body; implemented over HTTP by the server.
pub trait Sender: Send + Sync {
    /// The response status, or why there was none.
    fn post(
        &self,
        url: &str,
        signature: &str,
        body: &str,
    ) -> impl Future<Output = Result<u16, String>> + Send;
}

/// `t=…,v1=…` for a body at a time (rule QG-WEBHOOK-SIGNED).
pub fn signature(secret: &str, t_unix: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, format!("{t_unix}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t_unix},v1={hex}")
}

/// Check a `Qrgate-Signature` header (what a receiver does).
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &str,
    now_unix: i64,
    tolerance_seconds: i64,
) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = Some(x),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now_unix - t).abs() > tolerance_seconds {
        return false;
    }
    let Some(tag) = (0..v1.len())
        .step_by(2)
        .map(|i| {
            v1.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::verify(&key, format!("{t}.{body}").as_bytes(), &tag).is_ok()
}

/// When to try again after `attempts` failed attempts (1-based).
pub fn backoff_seconds(attempts: i64) -> i64 {
    let shift = u32::try_from((attempts - 1).clamp(0, 20)).unwrap_or(20);
    (FIRST_RETRY_SECONDS << shift).min(MAX_RETRY_SECONDS)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "we_4mT0pQ2xS9ab", "object": "webhook_endpoint", "url": "https://shop.example/hooks/qrgate", "secret": "whsec_8f2K…", "created_at": "2026-11-25T13:40:00.000Z"}))]
pub struct EndpointView {
    pub id: String,
    pub object: &'static str,
    pub url: String,
    /// Shown only when the endpoint is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 42, "object": "webhook_delivery", "endpoint_id": "we_4mT0pQ2xS9ab", "event_id": "evt_Zq0…", "event_type": "payment.succeeded", "status": "delivered", "attempts": 1, "last_status_code": 200, "next_attempt_at": "2026-11-25T13:40:01.000Z", "delivered_at": "2026-11-25T13:40:01.000Z"}))]
pub struct DeliveryView {
    pub id: i64,
    pub object: &'static str,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub next_attempt_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
}

impl DeliveryView {
    fn of(d: &WebhookDelivery) -> DeliveryView {
        DeliveryView {
            id: d.id,
            object: "webhook_delivery",
            endpoint_id: d.endpoint_id.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            status: d.status.clone(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            next_attempt_at: d.next_attempt_at.to_rfc3339(),
            delivered_at: d.delivered_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// What one dispatch pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub events_fanned_out: usize,
    pub delivered: usize,
    pub retried: usize,
    pub gave_up: usize,
}

/// Only https, except http to loopback addresses (development and tests).
fn check_url(url: &str) -> Result<(), Error> {
    let bad = |why: &str| Error::bad_request("invalid_url", format!("url {why}"));
    if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must be at most 2048 characters without spaces"));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("must start with https://"))?;
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = if host_port.starts_with('[') {
        host_port
            .split(']')
            .next()
            .unwrap_or_default()
            .trim_start_matches('[')
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    let loopback = host == "localhost" || host == "::1" || host.starts_with("127.");
    match scheme {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(bad(
            "must use https (plain http is accepted only for localhost)",
        )),
        _ => Err(bad("must start with https://")),
    }
}

impl<S: Store> Gateway<S> {
    pub async fn create_webhook_endpoint(
        &self,
        p: &Principal,
        url: &str,
    ) -> Result<EndpointView, Error> {
        let merchant = p.merchant()?.to_owned();
        check_url(url)?;
        let mut raw = [0_u8; 24];
        self.rng.fill(&mut raw).map_err(Error::internal)?;
        let secret = format!("whsec_{}", URL_SAFE_NO_PAD.encode(raw));
        let mut idb = [0_u8; 9];
        self.rng.fill(&mut idb).map_err(Error::internal)?;
        let id = format!("we_{}", URL_SAFE_NO_PAD.encode(idb));
        let now = self.now();
        self.store
            .insert(Record::WebhookEndpoint(WebhookEndpoint {
                id: id.clone(),
                merchant_id: merchant,
                url: url.to_owned(),
                secret: secret.clone(),
                created_at: now,
                disabled_at: None,
            }))
            .await?;
        Ok(EndpointView {
            id,
            object: "webhook_endpoint",
            url: url.to_owned(),
            secret: Some(secret),
            created_at: now.to_rfc3339(),
        })
    }

    pub async fn list_webhook_endpoints(&self, p: &Principal) -> Result<Vec<EndpointView>, Error> {
        let merchant = p.merchant()?;
        Ok(self
            .store
            .webhook_endpoints(merchant)
            .await?
            .into_iter()
            .map(|e| EndpointView {
                id: e.id,
                object: "webhook_endpoint",
                url: e.url,
                secret: None,
                created_at: e.created_at.to_rfc3339(),
            })
            .collect())
    }

    async fn own_endpoint(
        &self,
        p: &Principal,
        endpoint_id: &str,
    ) -> Result<WebhookEndpoint, Error> {
        let merchant = p.merchant()?;
        self.store
            .webhook_endpoints(merchant)
            .await?
            .into_iter()
            .find(|e| e.id == endpoint_id)
            .ok_or_else(|| Error::not_found("webhook endpoint", endpoint_id))
    }

    /// Delivery attempts of one of the merchant's endpoints, newest first.
    pub async fn list_deliveries(
        &self,
        p: &Principal,
        endpoint_id: &str,
    ) -> Result<Vec<DeliveryView>, Error> {
        self.own_endpoint(p, endpoint_id).await?;
        Ok(self
            .store
            .deliveries_of(endpoint_id, 100)
            .await?
            .iter()
            .map(DeliveryView::of)
            .collect())
    }

    /// Send a delivery again now.
    pub async fn redeliver(&self, p: &Principal, delivery_id: i64) -> Result<DeliveryView, Error> {
        let merchant = p.merchant()?;
        let d = self
            .store
            .delivery(delivery_id)
            .await?
            .filter(|d| d.merchant_id == merchant)
            .ok_or_else(|| Error::not_found("webhook delivery", &delivery_id.to_string()))?;
        self.store.retry_delivery(d.id, self.now()).await?;
        let d = self
            .store
            .delivery(d.id)
            .await?
            .ok_or_else(|| Error::internal("delivery vanished"))?;
        Ok(DeliveryView::of(&d))
    }

    /// Fan new outbox events out to their merchants' endpoints, then attempt
    /// every delivery that is due. Call it in a loop.
    pub async fn dispatch_webhooks(&self, sender: &impl Sender) -> Result<DispatchReport, Error> {
        let mut report = DispatchReport::default();
        let now = self.now();
        let mut batch = Vec::new();
        let mut endpoints_of: HashMap<String, Vec<WebhookEndpoint>> = HashMap::new();
        for ev in self.store.outbox_pending(200).await? {
            let merchant = ev
                .payload
                .get("merchant_id")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            let endpoints = match endpoints_of.get(&merchant) {
                Some(e) => e,
                None => {
                    let e = if merchant.is_empty() {
                        Vec::new()
                    } else {
                        self.store.webhook_endpoints(&merchant).await?
                    };
                    endpoints_of.entry(merchant.clone()).or_insert(e)
                }
            };
            let body = json!({
                "id": ev.event_id,
                "object": "event",
                "type": ev.event_type,
                "created": ev.created_at.unix_seconds(),
                "data": ev.payload,
            })
            .to_string();
            let deliveries = endpoints
                .iter()
                // An endpoint gets the events written after it was registered,
                // not a backlog that happened to be waiting for the dispatcher.
                .filter(|e| e.disabled_at.is_none() && e.created_at <= ev.created_at)
                .map(|e| NewDelivery {
                    endpoint_id: e.id.clone(),
                    merchant_id: merchant.clone(),
                    event_id: ev.event_id.clone(),
                    event_type: ev.event_type.clone(),
                    body: body.clone(),
                })
                .collect();
            batch.push((ev.seq, deliveries));
        }
        // One transaction for the whole batch: the writer is shared with payments.
        if !batch.is_empty() {
            let n = self.store.fan_out(batch, now).await?;
            report.events_fanned_out += usize::try_from(n).unwrap_or(usize::MAX);
        }
        let due = self.store.deliveries_due(now, 100).await?;
        for d in due {
            let Some(ep) = self
                .store
                .webhook_endpoints(&d.merchant_id)
                .await?
                .into_iter()
                .find(|e| e.id == d.endpoint_id)
            else {
                continue;
            };
            let sig = signature(&ep.secret, self.now().unix_seconds(), &d.body);
            let outcome = sender.post(&ep.url, &sig, &d.body).await;
            let at = self.now();
            let attempts = d.attempts + 1;
            let (status_code, error, ok) = match outcome {
                Ok(code) if (200..300).contains(&code) => (Some(i64::from(code)), None, true),
                Ok(code) => (Some(i64::from(code)), Some(format!("HTTP {code}")), false),
                Err(e) => (None, Some(e), false),
            };
            let give_up = !ok && at.millis_since(d.created_at) >= GIVE_UP_AFTER_SECONDS * 1000;
            let status = if ok {
                "delivered"
            } else if give_up {
                "failed"
            } else {
                "pending"
            };
            let next = at
                .checked_add_seconds(backoff_seconds(attempts))
                .unwrap_or(at);
            self.store
                .record_attempt(AttemptResult {
                    id: d.id,
                    at,
                    status_code,
                    error: error.clone(),
                    status: status.into(),
                    next_attempt_at: if ok { at } else { next },
                })
                .await?;
            match status {
                "delivered" => report.delivered += 1,
                "failed" => {
                    tracing::warn!(delivery = d.id, endpoint = %d.endpoint_id, error = ?error, "webhook delivery gave up");
                    report.gave_up += 1;
                }
                _ => report.retried += 1,
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_fail_closed() {
        let sig = signature("whsec_x", 1_795_000_000, "{\"a\":1}");
        assert!(sig.starts_with("t=1795000000,v1="));
        assert_eq!(sig.len(), "t=1795000000,v1=".len() + 64);
        assert!(verify_signature(
            "whsec_x",
            &sig,
            "{\"a\":1}",
            1_795_000_100,
            300
        ));
        assert!(
            !verify_signature("whsec_x", &sig, "{\"a\":2}", 1_795_000_100, 300),
            "body changed"
        );
        assert!(
            !verify_signature("whsec_y", &sig, "{\"a\":1}", 1_795_000_100, 300),
            "other secret"
        );
        assert!(
            !verify_signature("whsec_x", &sig, "{\"a\":1}", 1_795_000_301, 300),
            "too old"
        );
        assert!(!verify_signature("whsec_x", "v1=00", "{}", 0, 300));
        // Known answer: HMAC-SHA256(key "key", "The quick brown fox jumps over the lazy dog").
        let s = signature("key", 0, "");
        assert!(s.starts_with("t=0,v1="));
    }

    #[test]
    fn backoff_doubles_to_an_hour_and_spans_more_than_a_day() {
        assert_eq!(backoff_seconds(1), 10);
        assert_eq!(backoff_seconds(2), 20);
        assert_eq!(backoff_seconds(9), 2560);
        assert_eq!(backoff_seconds(10), 3600);
        assert_eq!(backoff_seconds(60), 3600);
        let total: i64 = (1..=40).map(backoff_seconds).sum();
        assert!(total > 24 * 3600, "{total}");
    }

    #[test]
    fn urls() {
        assert!(check_url("https://shop.example/hooks").is_ok());
        assert!(check_url("http://127.0.0.1:9000/h").is_ok());
        assert!(check_url("http://localhost/h").is_ok());
        assert!(check_url("http://[::1]:80/h").is_ok());
        assert!(check_url("http://shop.example/hooks").is_err());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("https://").is_err());
        assert!(check_url("https://a b").is_err());
    }
}
