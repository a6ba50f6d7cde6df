//! The store's side of events: the outbox (what the gateway will tell
//! merchants), a merchant's events as `GET /v1/events` lists them, and
//! webhook endpoints and their deliveries. Its own trait, as
//! [`crate::MoneyStore`] is, so that [`crate::Store`] stays the payment
//! flows'; every store implements it with the same bodies (reads on a
//! reader connection, writes through the store's `write`).

use std::future::Future;

use qrgate_core::Timestamp;

use crate::{MovementError, StoreError, model::*};

/// What the outbox and webhooks persist and read.
pub trait EventStore: Send + Sync {
    /// A merchant's events, newest first.
    fn events_of(
        &self,
        q: &EventQuery,
    ) -> impl Future<Output = Result<Vec<OutboxRow>, StoreError>> + Send;
    /// The sequence number of one of a merchant's events (a list cursor).
    fn event_seq(
        &self,
        merchant_id: &str,
        event_id: &str,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;
    fn outbox_pending(
        &self,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<OutboxRow>, StoreError>> + Send;
    fn outbox_mark_delivered(
        &self,
        seq: i64,
        at: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn webhook_endpoints(
        &self,
        merchant_id: &str,
    ) -> impl Future<Output = Result<Vec<WebhookEndpoint>, StoreError>> + Send;
    /// Hand outbox events (by seq) to their webhook deliveries and mark them
    /// handed over, all in one transaction; how many were still pending.
    fn fan_out(
        &self,
        events: Vec<(i64, Vec<NewDelivery>)>,
        at: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Pending deliveries due at `now`, oldest first: at most
    /// `per_endpoint` of each endpoint and `limit` in all, none of a
    /// disabled or deleted endpoint.
    fn deliveries_due(
        &self,
        now: Timestamp,
        per_endpoint: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<WebhookDelivery>, StoreError>> + Send;
    /// Claim a due delivery for one attempt (see [`AttemptResult::claimed_until`]):
    /// `true` for the one claimant whose `seen` still matched.
    fn claim_delivery(
        &self,
        id: i64,
        seen: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Change a webhook endpoint, with its audit entry; `false` when there
    /// was nothing to change (not the merchant's, deleted, already so).
    fn change_endpoint(
        &self,
        change: EndpointChange,
        at: Timestamp,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<bool, MovementError>> + Send;
    /// An endpoint's deliveries made in `[created.0, created.1)` (either
    /// end open), newest first.
    fn deliveries_of(
        &self,
        endpoint_id: &str,
        created: (Option<Timestamp>, Option<Timestamp>),
        limit: i64,
    ) -> impl Future<Output = Result<Vec<WebhookDelivery>, StoreError>> + Send;
    fn delivery(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<WebhookDelivery>, StoreError>> + Send;
    fn record_attempt(
        &self,
        a: AttemptResult,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn retry_delivery(
        &self,
        id: i64,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

macro_rules! impl_event_store {
    ($ty:ty) => {
        impl EventStore for $ty {
            async fn events_of(&self, q: &EventQuery) -> Result<Vec<OutboxRow>, StoreError> {
                ops::events_of(&mut self.reader().await?, q).await
            }
            async fn event_seq(
                &self,
                merchant_id: &str,
                event_id: &str,
            ) -> Result<Option<i64>, StoreError> {
                ops::event_seq(&mut self.reader().await?, merchant_id, event_id).await
            }
            async fn outbox_pending(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
                ops::outbox_pending(&mut self.reader().await?, limit).await
            }
            async fn outbox_mark_delivered(
                &self,
                seq: i64,
                at: Timestamp,
            ) -> Result<bool, StoreError> {
                self.write(write::MarkDelivered { seq, at })
                    .await
                    .map_err(store_err)
            }
            async fn webhook_endpoints(
                &self,
                merchant_id: &str,
            ) -> Result<Vec<WebhookEndpoint>, StoreError> {
                ops::webhook_endpoints(&mut self.reader().await?, merchant_id).await
            }
            async fn fan_out(
                &self,
                events: Vec<(i64, Vec<NewDelivery>)>,
                at: Timestamp,
            ) -> Result<u64, StoreError> {
                self.write(write::FanOut { events, at })
                    .await
                    .map_err(store_err)
            }
            async fn deliveries_due(
                &self,
                now: Timestamp,
                per_endpoint: i64,
                limit: i64,
            ) -> Result<Vec<WebhookDelivery>, StoreError> {
                ops::deliveries_due(&mut self.reader().await?, now, per_endpoint, limit).await
            }
            async fn claim_delivery(
                &self,
                id: i64,
                seen: Timestamp,
                until: Timestamp,
            ) -> Result<bool, StoreError> {
                self.write(write::ClaimDelivery { id, seen, until })
                    .await
                    .map_err(store_err)
            }
            async fn change_endpoint(
                &self,
                change: EndpointChange,
                at: Timestamp,
                audit: AuditEntry,
            ) -> Result<bool, MovementError> {
                let change = write::ChangeEndpoint { change, at };
                let audit = Some(audit);
                self.write(write::Audited { change, at, audit }).await
            }
            async fn deliveries_of(
                &self,
                endpoint_id: &str,
                created: (Option<Timestamp>, Option<Timestamp>),
                limit: i64,
            ) -> Result<Vec<WebhookDelivery>, StoreError> {
                ops::deliveries_of(&mut self.reader().await?, endpoint_id, created, limit).await
            }
            async fn delivery(&self, id: i64) -> Result<Option<WebhookDelivery>, StoreError> {
                ops::delivery(&mut self.reader().await?, id).await
            }
            async fn record_attempt(&self, a: AttemptResult) -> Result<bool, StoreError> {
                self.write(write::RecordAttempt(a)).await.map_err(store_err)
            }
            async fn retry_delivery(&self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
                self.write(write::RetryDelivery { id, at: now })
                    .await
                    .map_err(store_err)
            }
        }
    };
}

use crate::{AnyStore, PgStore, SqliteStore, ops, store_err, write};

impl_event_store!(SqliteStore);
impl_event_store!(PgStore);
impl_event_store!(AnyStore);
