//! The events table and the idempotency-key table: [`DynamoDbEventLog`], and
//! [`event_from_item`], which the fan-out Lambda also uses on stream records.

use super::{conditional, corrupt, err, get_item, id_err, n, s, to_item};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use hookline_domain::event::{Event, EventError};
use hookline_domain::ids::{EventId, TenantId};
use hookline_domain::page::{Cursor, Page, PageRequest};
use hookline_domain::ports::{EventLog, IDEMPOTENCY_WINDOW_SECS, StoreError};
use hookline_domain::time::{self, Timestamp, from_micros, to_micros};
use serde::{Deserialize, Serialize};

/// An events-table item, as Hookline and outside producers write it.
#[derive(Serialize, Deserialize)]
struct EventItem {
    tenant: String,
    id: String,
    created_at: String,
    data: String,
}

/// Why an events-table item is not an event.
#[derive(Debug, thiserror::Error)]
pub enum EventItemError {
    /// An attribute is missing or has the wrong type.
    #[error("events item: {0}")]
    Shape(String),
    /// The attributes are there but do not make an event.
    #[error("events item: {0}")]
    Invalid(#[from] EventError),
}

/// Reads an event from an events-table item: from the SDK's `GetItem`/`Query`, or from
/// a stream record's `NewImage` (`serde_dynamo::Item`) as the fan-out Lambda gets it.
/// Required attributes: `tenant`, `id` (a UUID), `created_at` (RFC 3339) and `data`
/// (the JSON object text of the event's other fields, with string `subject_type` and
/// `event_type`).
pub fn event_from_item(item: impl Into<serde_dynamo::Item>) -> Result<Event, EventItemError> {
    let i: EventItem = serde_dynamo::from_item(item).map_err(|e| EventItemError::Shape(e.to_string()))?;
    let tenant = TenantId::parse(&i.tenant).map_err(|e| EventItemError::Shape(e.to_string()))?;
    let id = EventId::parse(&i.id).map_err(|e| EventItemError::Shape(e.to_string()))?;
    let created_at =
        time::parse(&i.created_at).ok_or_else(|| EventItemError::Shape(format!("created_at {:?} is not RFC 3339", i.created_at)))?;
    Ok(Event::from_parts(tenant, id, created_at, &i.data)?)
}

fn event_item(e: &Event) -> EventItem {
    EventItem { tenant: e.tenant.to_string(), id: e.id.to_string(), created_at: time::format(&e.created_at), data: e.data_json() }
}

/// Events in DynamoDB, keyed by (`tenant`, `id`); the table's stream feeds fan-out.
/// Idempotency keys live in their own table, keyed by (`tenant`, `idempotency_key`),
/// so they never appear on the events stream.
#[derive(Debug, Clone)]
pub struct DynamoDbEventLog {
    client: Client,
    table: String,
    idempotency_table: String,
}

impl DynamoDbEventLog {
    /// A log over the events table and the idempotency-key table.
    pub fn new(client: Client, table: &str, idempotency_table: &str) -> Self {
        DynamoDbEventLog { client, table: table.to_owned(), idempotency_table: idempotency_table.to_owned() }
    }
}

#[async_trait]
impl EventLog for DynamoDbEventLog {
    async fn append(&self, e: &Event) -> Result<(), StoreError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&event_item(e))?))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        conditional(r, "PutItem", StoreError::Conflict).map(|_| ())
    }

    async fn get(&self, tenant: &TenantId, id: &EventId) -> Result<Event, StoreError> {
        let item = get_item(&self.client, &self.table, &[("tenant", tenant.as_str()), ("id", id.as_str())], false).await?;
        event_from_item(item.ok_or(StoreError::NotFound)?).map_err(corrupt)
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Event>, StoreError> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("by_created_at")
            .key_condition_expression("tenant = :t")
            .expression_attribute_values(":t", s(tenant.as_str()))
            .scan_index_forward(false)
            .limit(page.limit as i32 + 1);
        if let Some(c) = &page.after {
            q = q
                .exclusive_start_key("tenant", s(tenant.as_str()))
                .exclusive_start_key("id", s(&c.id))
                .exclusive_start_key("created_at", s(time::format(&from_micros(c.micros))));
        }
        let out = q.send().await.map_err(|e| err("Query", e))?;
        let items =
            out.items.unwrap_or_default().into_iter().map(|i| event_from_item(i).map_err(corrupt)).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, page.limit, |e| Cursor { micros: to_micros(&e.created_at), id: e.id.to_string() }))
    }

    async fn reserve_idempotency_key(&self, tenant: &TenantId, key: &str, event: &EventId, now: Timestamp) -> Result<EventId, StoreError> {
        let now_us = to_micros(&now);
        let r = self
            .client
            .put_item()
            .table_name(&self.idempotency_table)
            .item("tenant", s(tenant.as_str()))
            .item("idempotency_key", s(key))
            .item("event_id", s(event.as_str()))
            .item("created_at", n(now_us))
            .item("expires_at", n(now.timestamp() + IDEMPOTENCY_WINDOW_SECS))
            .condition_expression("attribute_not_exists(tenant) OR created_at < :expired")
            .expression_attribute_values(":expired", n(now_us - IDEMPOTENCY_WINDOW_SECS * 1_000_000))
            .send()
            .await;
        match conditional(r, "PutItem", StoreError::Conflict) {
            Ok(_) => Ok(event.clone()),
            Err(StoreError::Conflict) => {
                let item =
                    get_item(&self.client, &self.idempotency_table, &[("tenant", tenant.as_str()), ("idempotency_key", key)], true).await?;
                let bound = item
                    .and_then(|i| i.get("event_id").and_then(|v| v.as_s().ok()).cloned())
                    .ok_or_else(|| corrupt("idempotency item without event_id"))?;
                EventId::parse(&bound).map_err(id_err)
            }
            Err(e) => Err(e),
        }
    }
}
