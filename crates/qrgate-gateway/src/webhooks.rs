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
use std::net::IpAddr;
use std::pin::Pin;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::SecureRandom;
use serde::Serialize;
use serde_json::json;

use qrgate_core::state::DeliveryStatus;
use qrgate_store::*;

use qrgate_core::Timestamp;
use qrgate_core::net::{Target, TargetError};

use crate::trail::{self, Action};
use crate::{Error, Gateway, Kind, Principal};

/// First retry after this many seconds; then doubling, capped at one hour.
pub const FIRST_RETRY_SECONDS: i64 = 10;
pub const MAX_RETRY_SECONDS: i64 = 3600;
/// Give up after this long.
pub const GIVE_UP_AFTER_SECONDS: i64 = 3 * 24 * 3600;
/// Each attempt may take this long.
pub const ATTEMPT_TIMEOUT_SECONDS: u64 = 10;
/// A claimed attempt is due again this long after its claim if its node
/// never recorded it (it stopped mid-attempt).
pub const CLAIM_SECONDS: i64 = 60;
/// Endpoints a merchant may have (not counting deleted ones).
pub const MAX_ENDPOINTS: i64 = 16;
/// After a rotation, the old secret keeps signing beside the new one this long.
pub const ROTATION_OVERLAP_SECONDS: i64 = 24 * 3600;
/// Deliveries attempted at once in one pass, over all endpoints.
pub const IN_FLIGHT: usize = 16;
/// Deliveries of one endpoint taken in one pass (sent one after another;
/// the first failure ends that endpoint's turn).
pub const PER_ENDPOINT: i64 = 8;
/// Deliveries taken in one pass.
pub const BATCH: i64 = 200;

/// Resolves a webhook host name to addresses (at registration; deliveries
/// resolve again in the sender and connect only to what passed).
pub trait Resolver: Send + Sync {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, String>> + Send + 'a>>;
}

/// The operating system's resolver.
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, String>> + Send + 'a>> {
        Box::pin(async move {
            let found = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                tokio::net::lookup_host((host, port)),
            )
            .await
            .map_err(|_| "name lookup timed out".to_owned())?
            .map_err(|_| "name lookup failed".to_owned())?;
            Ok(found.map(|a| a.ip()).collect())
        })
    }
}

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
    format!("t={t_unix},v1={}", tag_hex(secret, t_unix, body))
}

/// [`signature`] under the current secret and, while a rotation overlaps,
/// a second `v1=` under the previous one: a receiver that still holds the
/// old secret keeps verifying until it switches.
pub fn signatures(ep: &WebhookEndpoint, now: Timestamp, body: &str) -> String {
    let t = now.unix_seconds();
    let mut header = signature(&ep.secret, t, body);
    if let (Some(old), Some(until)) = (&ep.previous_secret, ep.previous_until)
        && now < until
    {
        header.push_str(",v1=");
        header.push_str(&tag_hex(old, t, body));
    }
    header
}

fn tag_hex(secret: &str, t_unix: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, format!("{t_unix}.{body}").as_bytes());
    hex::encode(tag.as_ref())
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
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1.push(x),
            _ => {}
        }
    }
    let Some(t) = t else {
        return false;
    };
    if now_unix.abs_diff(t) > tolerance_seconds.unsigned_abs() {
        return false;
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let signed = format!("{t}.{body}");
    // Any one of the signatures (during a rotation there are two).
    v1.iter().any(|hex| {
        ::hex::decode(hex)
            .ok()
            .is_some_and(|tag| hmac::verify(&key, signed.as_bytes(), &tag).is_ok())
    })
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
    /// `enabled`, `disabled` (nothing is sent; deliveries wait) or `deleted`.
    pub status: &'static str,
    /// Shown only when the endpoint is created or its secret rotated.
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
            status: d.status.as_str().into(),
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

/// The refusal of a webhook URL, as the API answers it.
fn refused(e: TargetError) -> Error {
    Error::bad_request("invalid_url", e.to_string()).with_rule("QG-WEBHOOK-TARGETS")
}

/// The view of an endpoint (the secret only when it was just made).
fn endpoint_view(e: &WebhookEndpoint, secret: Option<String>) -> EndpointView {
    EndpointView {
        id: e.id.clone(),
        object: "webhook_endpoint",
        url: e.url.clone(),
        status: if e.disabled_at.is_some() {
            "disabled"
        } else {
            "enabled"
        },
        secret,
        created_at: e.created_at.to_rfc3339(),
    }
}

/// The outcome of one attempt, as the merchant sees it: a class of
/// failure, never an address, a resolver's message or a TLS library's.
fn attempt_outcome(outcome: Result<u16, String>) -> (Option<i64>, Option<String>, bool) {
    match outcome {
        Ok(code) if (200..300).contains(&code) => (Some(i64::from(code)), None, true),
        Ok(code) => (Some(i64::from(code)), Some(format!("HTTP {code}")), false),
        Err(e) => (None, Some(e), false),
    }
}

/// A list's time range: made at or after `created_gte`, before `created_lt`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CreatedRange {
    /// Made at or after this time (RFC 3339).
    pub created_gte: Option<String>,
    /// Made before this time (RFC 3339).
    pub created_lt: Option<String>,
}

impl<S: Store> Gateway<S> {
    /// Check a webhook URL: its shape (see [`qrgate_core::net`]), and for a
    /// host name, that no address it resolves to now is refused. A name
    /// that does not resolve yet is accepted: every delivery resolves it
    /// again and connects only to an address that passes.
    async fn check_target(&self, url: &str) -> Result<Target, Error> {
        let reach = self.config.webhook_reach();
        let target = Target::parse(url, reach).map_err(refused)?;
        if let Some(host) = target.domain()
            && let Ok(addrs) = self.resolver.lookup(host, target.port()).await
            && addrs
                .iter()
                .any(|a| !qrgate_core::net::name_may_resolve_to(host, *a, reach))
        {
            return Err(refused(TargetError::NotPublic));
        }
        Ok(target)
    }

    fn new_secret(&self) -> Result<String, Error> {
        let mut raw = [0_u8; 24];
        self.rng.fill(&mut raw).map_err(Error::internal)?;
        Ok(format!("whsec_{}", URL_SAFE_NO_PAD.encode(raw)))
    }

    pub async fn create_webhook_endpoint(
        &self,
        p: &Principal,
        url: &str,
    ) -> Result<EndpointView, Error> {
        let merchant = p.merchant()?.to_owned();
        let target = self.check_target(url).await?;
        let secret = self.new_secret()?;
        let mut idb = [0_u8; 9];
        self.rng.fill(&mut idb).map_err(Error::internal)?;
        let id = format!("we_{}", URL_SAFE_NO_PAD.encode(idb));
        let now = self.now();
        let endpoint = WebhookEndpoint {
            id: id.clone(),
            merchant_id: merchant,
            url: target.as_str().to_owned(),
            // Sealed at rest; the answer shows it once, in the clear.
            secret: self.secrets.seal(
                &secret,
                &crate::secret_place(SecretSlot::WebhookSecret, &id),
            )?,
            created_at: now,
            disabled_at: None,
            previous_secret: None,
            previous_until: None,
        };
        let view = endpoint_view(&endpoint, Some(secret));
        let audit = trail::entry(
            Action::WebhookEndpointCreated,
            id,
            p.into(),
            json!({ "merchant_id": endpoint.merchant_id, "url": endpoint.url }),
        );
        match self
            .store
            .change_endpoint(
                EndpointChange::Add {
                    endpoint,
                    cap: MAX_ENDPOINTS,
                },
                now,
                audit,
            )
            .await
        {
            Ok(_) => Ok(view),
            Err(MovementError::TooManyEndpoints { cap }) => Err(Error::new(
                Kind::Conflict,
                "too_many_endpoints",
                format!("a merchant may have at most {cap} webhook endpoints; delete one first"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list_webhook_endpoints(&self, p: &Principal) -> Result<Vec<EndpointView>, Error> {
        let merchant = p.merchant()?;
        Ok(self
            .store
            .webhook_endpoints(merchant)
            .await?
            .iter()
            .map(|e| endpoint_view(e, None))
            .collect())
    }

    /// Disable (pause), enable or delete one of the merchant's endpoints,
    /// or rotate its secret (the new secret is in the answer, once; the old
    /// one keeps signing beside it for [`ROTATION_OVERLAP_SECONDS`]).
    /// Each change is written into the audit chain.
    pub async fn change_webhook_endpoint(
        &self,
        p: &Principal,
        endpoint_id: &str,
        action: EndpointAction,
    ) -> Result<EndpointView, Error> {
        let ep = self.own_endpoint(p, endpoint_id).await?;
        let (id, merchant_id) = (ep.id.clone(), ep.merchant_id.clone());
        let now = self.now();
        let mut secret = None;
        let change = match action {
            EndpointAction::Disable => EndpointChange::Disable { id, merchant_id },
            EndpointAction::Enable => EndpointChange::Enable { id, merchant_id },
            EndpointAction::Delete => EndpointChange::Delete { id, merchant_id },
            EndpointAction::RotateSecret => {
                let s = self.new_secret()?;
                secret = Some(s.clone());
                EndpointChange::RotateSecret {
                    id,
                    merchant_id,
                    secret: self
                        .secrets
                        .seal(&s, &crate::secret_place(SecretSlot::WebhookSecret, &ep.id))?,
                    previous_until: now
                        .checked_add_seconds(ROTATION_OVERLAP_SECONDS)
                        .unwrap_or(now),
                }
            }
        };
        let audit = trail::entry(
            action.audited(),
            ep.id.clone(),
            p.into(),
            json!({ "merchant_id": ep.merchant_id }),
        );
        // false: already in that state (or deleted meanwhile); the answer
        // shows the endpoint as it is.
        self.store.change_endpoint(change, now, audit).await?;
        if action == EndpointAction::Delete {
            let mut gone = endpoint_view(&ep, None);
            gone.status = "deleted";
            return Ok(gone);
        }
        let now_ep = self.own_endpoint(p, endpoint_id).await?;
        Ok(endpoint_view(&now_ep, secret))
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

    /// Delivery attempts of one of the merchant's endpoints, newest first
    /// (the last 100 made in the range).
    pub async fn list_deliveries(
        &self,
        p: &Principal,
        endpoint_id: &str,
        range: CreatedRange,
    ) -> Result<Vec<DeliveryView>, Error> {
        self.own_endpoint(p, endpoint_id).await?;
        let created = crate::payments::created_range(
            range.created_gte.as_deref(),
            range.created_lt.as_deref(),
        )?;
        Ok(self
            .store
            .deliveries_of(endpoint_id, created, 100)
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
        // A delivery of a deleted endpoint is never sent again.
        self.own_endpoint(p, &d.endpoint_id).await?;
        self.store.retry_delivery(d.id, self.now()).await?;
        let d = self
            .store
            .delivery(d.id)
            .await?
            .ok_or_else(|| Error::internal("delivery vanished"))?;
        Ok(DeliveryView::of(&d))
    }

    /// Fan new outbox events out to their merchants' endpoints, then attempt
    /// the deliveries that are due. Call it in a loop; passes may overlap
    /// (on one node or many): each attempt is claimed first, so no two
    /// passes send the same one.
    pub async fn dispatch_webhooks(&self, sender: &impl Sender) -> Result<DispatchReport, Error> {
        let mut report = DispatchReport {
            events_fanned_out: self.fan_out_events().await?,
            ..DispatchReport::default()
        };
        let now = self.now();
        let due = self.store.deliveries_due(now, PER_ENDPOINT, BATCH).await?;
        // Each endpoint's deliveries in order, one at a time; endpoints side
        // by side, at most IN_FLIGHT at once, so a slow or hung endpoint
        // holds one slot for one attempt, not the others.
        let mut queues: Vec<Vec<WebhookDelivery>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for d in due {
            let i = *index.entry(d.endpoint_id.clone()).or_insert_with(|| {
                queues.push(Vec::new());
                queues.len() - 1
            });
            queues[i].push(d);
        }
        let slots = tokio::sync::Semaphore::new(IN_FLIGHT);
        let turns = queues
            .into_iter()
            .map(|q| self.endpoint_turn(q, sender, &slots));
        for turn in futures_util::future::join_all(turns).await {
            let t = turn?;
            report.delivered += t.delivered;
            report.retried += t.retried;
            report.gave_up += t.gave_up;
        }
        Ok(report)
    }

    /// Hand pending outbox events to their deliveries; how many events.
    async fn fan_out_events(&self) -> Result<usize, Error> {
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
                // A disabled endpoint gets them too: they wait until it is
                // enabled (deliveries_due holds them back).
                .filter(|e| e.created_at <= ev.created_at)
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
        if batch.is_empty() {
            return Ok(0);
        }
        let n = self.store.fan_out(batch, now).await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// One endpoint's turn in a pass: its due deliveries in order, until one
    /// fails (the rest wait for the next pass rather than the backoff of a
    /// failing endpoint holding a slot).
    async fn endpoint_turn(
        &self,
        queue: Vec<WebhookDelivery>,
        sender: &impl Sender,
        slots: &tokio::sync::Semaphore,
    ) -> Result<DispatchReport, Error> {
        let mut report = DispatchReport::default();
        let Some(first) = queue.first() else {
            return Ok(report);
        };
        let Some(ep) = self
            .store
            .webhook_endpoints(&first.merchant_id)
            .await?
            .into_iter()
            .find(|e| e.id == first.endpoint_id && e.disabled_at.is_none())
        else {
            return Ok(report);
        };
        let _slot = slots.acquire().await.map_err(Error::internal)?;
        for d in queue {
            let ok = self.attempt(&ep, &d, sender, &mut report).await?;
            if !ok {
                break;
            }
        }
        Ok(report)
    }

    /// The endpoint with its secrets opened (they are sealed at rest).
    fn opened(&self, ep: &WebhookEndpoint) -> Result<WebhookEndpoint, Error> {
        let place = crate::secret_place(SecretSlot::WebhookSecret, &ep.id);
        Ok(WebhookEndpoint {
            secret: self.secrets.open(&ep.secret, &place)?,
            previous_secret: ep
                .previous_secret
                .as_deref()
                .map(|p| self.secrets.open(p, &place))
                .transpose()?,
            ..ep.clone()
        })
    }

    /// Claim, send and record one delivery; `Ok(true)` when it was delivered
    /// (`false` too when another pass had claimed it).
    async fn attempt(
        &self,
        ep: &WebhookEndpoint,
        d: &WebhookDelivery,
        sender: &impl Sender,
        report: &mut DispatchReport,
    ) -> Result<bool, Error> {
        let claimed_until = self
            .now()
            .checked_add_seconds(CLAIM_SECONDS)
            .unwrap_or(d.next_attempt_at);
        if !self
            .store
            .claim_delivery(d.id, d.next_attempt_at, claimed_until)
            .await?
        {
            // Another pass has it: that pass owns this endpoint's turn, so
            // its deliveries stay one at a time and in order.
            return Ok(false);
        }
        // The URL is checked again under today's policy (it may have been
        // tightened since the endpoint was registered); names are checked
        // by the sender's resolver against the address it connects to.
        let outcome = match Target::parse(&ep.url, self.config.webhook_reach()) {
            Ok(_) => {
                let header = signatures(&self.opened(ep)?, self.now(), &d.body);
                sender.post(&ep.url, &header, &d.body).await
            }
            Err(e) => Err(format!("refused: {e}")),
        };
        let at = self.now();
        let attempts = d.attempts + 1;
        let (status_code, error, ok) = attempt_outcome(outcome);
        let give_up = !ok && at.millis_since(d.created_at) >= GIVE_UP_AFTER_SECONDS * 1000;
        let status = if ok {
            DeliveryStatus::Delivered
        } else if give_up {
            DeliveryStatus::Failed
        } else {
            DeliveryStatus::Pending
        };
        DeliveryStatus::Pending
            .transition(status)
            .map_err(Error::internal)?;
        let next = at
            .checked_add_seconds(backoff_seconds(attempts))
            .unwrap_or(at);
        self.store
            .record_attempt(AttemptResult {
                id: d.id,
                claimed_until,
                at,
                status_code,
                error: error.clone(),
                status,
                next_attempt_at: if ok { at } else { next },
            })
            .await?;
        match status {
            DeliveryStatus::Delivered => report.delivered += 1,
            DeliveryStatus::Failed => {
                tracing::warn!(delivery = d.id, endpoint = %d.endpoint_id, error = ?error, "webhook delivery gave up");
                report.gave_up += 1;
            }
            _ => report.retried += 1,
        }
        Ok(ok)
    }
}

/// What a merchant may do to one of its webhook endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndpointAction {
    Disable,
    Enable,
    Delete,
    RotateSecret,
}

impl EndpointAction {
    fn audited(self) -> Action {
        match self {
            EndpointAction::Disable => Action::WebhookEndpointDisabled,
            EndpointAction::Enable => Action::WebhookEndpointEnabled,
            EndpointAction::Delete => Action::WebhookEndpointDeleted,
            EndpointAction::RotateSecret => Action::WebhookEndpointSecretRotated,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EndpointAction::Disable => "disabled",
            EndpointAction::Enable => "enabled",
            EndpointAction::Delete => "deleted",
            EndpointAction::RotateSecret => "secret_rotated",
        }
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
}
