//! `GET /v1/events`: a merchant's events, newest first, the same ones its
//! webhooks get (with the same bodies), so a merchant that missed
//! deliveries can catch up.

use serde::{Deserialize, Serialize};

use qrgate_store::{EventQuery, OutboxRow, Store};

use crate::{Error, Gateway, Principal};

/// Which events.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventListQuery {
    /// The merchant (required for admin and auditor keys).
    pub merchant_id: Option<String>,
    /// Only this type, e.g. `payment.succeeded`.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// Created at or after this time (RFC 3339).
    pub created_gte: Option<String>,
    /// Created before this time (RFC 3339).
    pub created_lt: Option<String>,
    /// The id of the last event of the previous page.
    pub starting_after: Option<String>,
    /// 1 to 100 (default 20).
    pub limit: Option<i64>,
}

/// An event, as a webhook delivers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "evt_aibaeaqcaibaeaqcaibaeaqcai", "object": "event", "type": "payment.succeeded", "created": 1795000000, "data": {"merchant_id": "mch_6bsdfgzqrkdpgz6gy6p366fdeu", "payment": {"id": "pay_gqkzze5gcvjkcliypewhufdj3a"}}}))]
pub struct EventView {
    pub id: String,
    pub object: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Unix seconds.
    pub created: i64,
    pub data: serde_json::Value,
}

/// A page of events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventList {
    pub object: String,
    pub data: Vec<EventView>,
    pub has_more: bool,
}

impl EventView {
    pub fn of(e: &OutboxRow) -> EventView {
        EventView {
            id: e.event_id.clone(),
            object: "event".into(),
            event_type: e.event_type.clone(),
            created: e.created_at.unix_seconds(),
            data: e.payload.clone(),
        }
    }
}

/// Events one page holds by default, and at most.
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

impl<S: Store> Gateway<S> {
    pub async fn list_events(&self, p: &Principal, q: EventListQuery) -> Result<EventList, Error> {
        let id = self.money_of(p, q.merchant_id.as_deref())?.to_owned();
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::bad_request(
                "invalid_request",
                format!("limit must be 1 to {MAX_LIMIT}"),
            ));
        }
        let (created_gte, created_lt) =
            crate::payments::created_range(q.created_gte.as_deref(), q.created_lt.as_deref())?;
        let before_seq = match &q.starting_after {
            None => None,
            Some(e) => Some(
                self.store
                    .event_seq(&id, e)
                    .await?
                    .ok_or_else(|| Error::not_found("event", e))?,
            ),
        };
        let query = EventQuery {
            merchant_id: id,
            event_type: q.event_type.clone(),
            created_gte,
            created_lt,
            before_seq,
            limit: limit + 1,
        };
        let mut rows = self.store.events_of(&query).await?;
        let has_more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(EventList {
            object: "list".into(),
            data: rows.iter().map(EventView::of).collect(),
            has_more,
        })
    }
}
