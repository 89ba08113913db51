//! The DynamoDB stores. Item layouts (attribute names, keys, indexes) live here and
//! nowhere else; `template.yaml` and `infra/` create the tables to match.
//!
//! | table | key | indexes |
//! |---|---|---|
//! | api keys | `hash` | |
//! | webhooks | `tenant`, `id` | |
//! | events | `tenant`, `id` | `by_created_at` (`tenant`, `created_at`) |
//! | deliveries | `id` | `by_webhook` (`webhook_key`, `created_at`) |
//! | attempts | `delivery_id`, `sk` | `by_webhook` (`webhook_key`, `attempted_at`); TTL `expires_at` |

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, Select, TransactWriteItem, Update};
use hookline_domain::auth::{ApiKey, Scope};
use hookline_domain::catalog::{EventName, EventPattern};
use hookline_domain::delivery::{Attempt, Claim, Delivery, DeliveryStatus, Job};
use hookline_domain::event::{Event, EventError};
use hookline_domain::ids::{ApiKeyId, AttemptId, DeliveryId, EventId, InvalidId, TenantId, WebhookId};
use hookline_domain::page::{Cursor, Page, PageRequest};
use hookline_domain::ports::{ApiKeyStore, AttemptStats, DeliveryStore, EventLog, IDEMPOTENCY_WINDOW_SECS, StoreError, WebhookStore};
use hookline_domain::time::{self, Timestamp, from_micros, to_micros};
use hookline_domain::webhook::{EndpointUrl, Webhook};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

type Item = HashMap<String, AttributeValue>;

/// How long attempt records are kept before DynamoDB's TTL removes them.
const ATTEMPT_RETENTION_SECS: i64 = 30 * 24 * 3600;
/// Items per TransactWriteItems call (DynamoDB allows 100; 25 keeps transactions small).
const TRANSACT_BATCH: usize = 25;

fn err(op: &str, e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unknown(anyhow::anyhow!("dynamodb {op}: {}", DisplayErrorContext(e)))
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unknown(anyhow::anyhow!("malformed item: {e}"))
}

fn to_item<T: Serialize>(v: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(v).map_err(corrupt)
}

fn from_item<'a, T: Deserialize<'a>>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(corrupt)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn is_condition_failed<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException" || c == "TransactionCanceledException")
}

/// Maps a conditional write's result: a failed condition becomes `on_fail`.
fn conditional<T, E, R>(r: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>, op: &str, on_fail: StoreError) -> Result<T, StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match r {
        Ok(v) => Ok(v),
        Err(e) if is_condition_failed(&e) => Err(on_fail),
        Err(e) => Err(err(op, e)),
    }
}

/// Reads one item by its key (`(attribute, string value)` pairs); `None` if absent.
/// Strongly consistent when `consistent`, as claims and idempotency checks need.
async fn get_item(client: &Client, table: &str, key: &[(&str, &str)], consistent: bool) -> Result<Option<Item>, StoreError> {
    let mut req = client.get_item().table_name(table).consistent_read(consistent);
    for (name, value) in key {
        req = req.key(*name, s(*value));
    }
    Ok(req.send().await.map_err(|e| err("GetItem", e))?.item)
}

/// Runs a query through every page: all items, and the total `Count` (which is what
/// a `Select::Count` query returns instead of items).
async fn query_all(q: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder) -> Result<(Vec<Item>, u64), StoreError> {
    let (mut items, mut count) = (Vec::new(), 0u64);
    let mut start: Option<Item> = None;
    loop {
        let out = q.clone().set_exclusive_start_key(start).send().await.map_err(|e| err("Query", e))?;
        count += out.count as u64;
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok((items, count)),
        }
    }
}

fn id_err(e: InvalidId) -> StoreError {
    corrupt(e)
}

// ---------------------------------------------------------------- webhooks

#[derive(Serialize, Deserialize)]
struct WebhookItem {
    tenant: String,
    id: String,
    endpoint_url: String,
    listened_events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    active: bool,
    headers: BTreeMap<String, String>,
    created_at: i64,
    updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disabled_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failing_since: Option<i64>,
    #[serde(default)]
    failed_deliveries: u32,
}

impl From<&Webhook> for WebhookItem {
    fn from(w: &Webhook) -> Self {
        WebhookItem {
            tenant: w.tenant.to_string(),
            id: w.id.to_string(),
            endpoint_url: w.endpoint_url.to_string(),
            listened_events: w.listened_events.iter().map(|p| p.to_string()).collect(),
            description: w.description.clone(),
            active: w.active,
            headers: w.headers.clone(),
            created_at: to_micros(&w.created_at),
            updated_at: to_micros(&w.updated_at),
            disabled_reason: w.disabled_reason.clone(),
            disabled_at: w.disabled_at.as_ref().map(to_micros),
            failing_since: w.failing_since.as_ref().map(to_micros),
            failed_deliveries: w.failed_deliveries,
        }
    }
}

impl TryFrom<WebhookItem> for Webhook {
    type Error = StoreError;
    fn try_from(i: WebhookItem) -> Result<Self, StoreError> {
        Ok(Webhook {
            id: WebhookId::parse(&i.id).map_err(id_err)?,
            tenant: TenantId::parse(&i.tenant).map_err(id_err)?,
            endpoint_url: EndpointUrl::parse_stored(&i.endpoint_url).map_err(corrupt)?,
            listened_events: i.listened_events.iter().map(|p| EventPattern::parse_stored(p)).collect::<Result<_, _>>().map_err(corrupt)?,
            description: i.description,
            active: i.active,
            headers: i.headers,
            created_at: from_micros(i.created_at),
            updated_at: from_micros(i.updated_at),
            disabled_reason: i.disabled_reason,
            disabled_at: i.disabled_at.map(from_micros),
            failing_since: i.failing_since.map(from_micros),
            failed_deliveries: i.failed_deliveries,
        })
    }
}

/// Webhooks in DynamoDB, keyed by (`tenant`, `id`).
#[derive(Debug, Clone)]
pub struct DynamoDbWebhookStore {
    client: Client,
    table: String,
}

impl DynamoDbWebhookStore {
    /// A store over `table`.
    pub fn new(client: Client, table: &str) -> Self {
        DynamoDbWebhookStore { client, table: table.to_owned() }
    }
}

#[async_trait]
impl WebhookStore for DynamoDbWebhookStore {
    async fn insert(&self, w: &Webhook) -> Result<(), StoreError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&WebhookItem::from(w))?))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        conditional(r, "PutItem", StoreError::Conflict).map(|_| ())
    }

    async fn get(&self, tenant: &TenantId, id: &WebhookId) -> Result<Webhook, StoreError> {
        let item = get_item(&self.client, &self.table, &[("tenant", tenant.as_str()), ("id", id.as_str())], false).await?;
        from_item::<WebhookItem>(item.ok_or(StoreError::NotFound)?)?.try_into()
    }

    async fn update(&self, w: &Webhook) -> Result<(), StoreError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&WebhookItem::from(w))?))
            .condition_expression("attribute_exists(id)")
            .send()
            .await;
        conditional(r, "PutItem", StoreError::NotFound).map(|_| ())
    }

    async fn update_status(&self, w: &Webhook) -> Result<(), StoreError> {
        let mut set = vec!["active = :active", "failed_deliveries = :failed"];
        let mut remove = Vec::new();
        let mut values: Item = HashMap::new();
        values.insert(":active".into(), AttributeValue::Bool(w.active));
        values.insert(":failed".into(), n(w.failed_deliveries));
        match &w.disabled_reason {
            Some(r) => {
                set.push("disabled_reason = :reason");
                values.insert(":reason".into(), s(r.as_str()));
            }
            None => remove.push("disabled_reason"),
        }
        for (attr, placeholder, v) in [("disabled_at", ":dat", &w.disabled_at), ("failing_since", ":fs", &w.failing_since)] {
            match v {
                Some(t) => {
                    set.push(if attr == "disabled_at" { "disabled_at = :dat" } else { "failing_since = :fs" });
                    values.insert(placeholder.into(), n(to_micros(t)));
                }
                None => remove.push(attr),
            }
        }
        let mut expr = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("tenant", s(w.tenant.as_str()))
            .key("id", s(w.id.as_str()))
            .update_expression(expr)
            .condition_expression("attribute_exists(id)")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        conditional(r, "UpdateItem", StoreError::NotFound).map(|_| ())
    }

    async fn delete(&self, tenant: &TenantId, id: &WebhookId) -> Result<(), StoreError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("tenant", s(tenant.as_str()))
            .key("id", s(id.as_str()))
            .condition_expression("attribute_exists(id)")
            .send()
            .await;
        conditional(r, "DeleteItem", StoreError::NotFound).map(|_| ())
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Webhook>, StoreError> {
        // Webhook ids are UUIDv7, so the sort key is creation order.
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("tenant = :t")
            .expression_attribute_values(":t", s(tenant.as_str()))
            .limit(page.limit as i32 + 1);
        if let Some(c) = &page.after {
            q = q.exclusive_start_key("tenant", s(tenant.as_str())).exclusive_start_key("id", s(&c.id));
        }
        let out = q.send().await.map_err(|e| err("Query", e))?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_item::<WebhookItem>(i)?.try_into())
            .collect::<Result<Vec<Webhook>, _>>()?;
        Ok(Page::from_overfetch(items, page.limit, |w| Cursor { micros: to_micros(&w.created_at), id: w.id.to_string() }))
    }

    async fn list_active(&self, tenant: &TenantId) -> Result<Vec<Webhook>, StoreError> {
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("tenant = :t")
            .filter_expression("active = :yes")
            .expression_attribute_values(":t", s(tenant.as_str()))
            .expression_attribute_values(":yes", AttributeValue::Bool(true));
        query_all(q).await?.0.into_iter().map(|i| from_item::<WebhookItem>(i)?.try_into()).collect()
    }
}

// ---------------------------------------------------------------- events

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

// ---------------------------------------------------------------- deliveries

#[derive(Serialize, Deserialize)]
struct DeliveryItem {
    id: String,
    tenant: String,
    webhook_id: String,
    webhook_key: String,
    event_id: String,
    event_name: String,
    status: String,
    attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_attempt_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivered_at: Option<i64>,
    created_at: i64,
}

fn webhook_key(tenant: &TenantId, webhook: &WebhookId) -> String {
    format!("{tenant}#{webhook}")
}

impl From<&Delivery> for DeliveryItem {
    fn from(d: &Delivery) -> Self {
        DeliveryItem {
            id: d.id.to_string(),
            tenant: d.tenant.to_string(),
            webhook_id: d.webhook_id.to_string(),
            webhook_key: webhook_key(&d.tenant, &d.webhook_id),
            event_id: d.event_id.to_string(),
            event_name: d.event_name.to_string(),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_attempt_at: d.last_attempt_at.as_ref().map(to_micros),
            next_attempt_at: d.next_attempt_at.as_ref().map(to_micros),
            delivered_at: d.delivered_at.as_ref().map(to_micros),
            created_at: to_micros(&d.created_at),
        }
    }
}

impl TryFrom<DeliveryItem> for Delivery {
    type Error = StoreError;
    fn try_from(i: DeliveryItem) -> Result<Self, StoreError> {
        Ok(Delivery {
            id: DeliveryId::parse(&i.id).map_err(id_err)?,
            tenant: TenantId::parse(&i.tenant).map_err(id_err)?,
            webhook_id: WebhookId::parse(&i.webhook_id).map_err(id_err)?,
            event_id: EventId::parse(&i.event_id).map_err(id_err)?,
            event_name: EventName::parse(&i.event_name).map_err(corrupt)?,
            status: i.status.parse::<DeliveryStatus>().map_err(corrupt)?,
            attempts: i.attempts,
            last_status_code: i.last_status_code,
            last_attempt_at: i.last_attempt_at.map(from_micros),
            next_attempt_at: i.next_attempt_at.map(from_micros),
            delivered_at: i.delivered_at.map(from_micros),
            created_at: from_micros(i.created_at),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct AttemptItem {
    delivery_id: String,
    /// `<attempted_at micros, zero-padded>#<attempt id>`: sorts attempts by time.
    sk: String,
    id: String,
    tenant: String,
    webhook_key: String,
    attempted_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    succeeded: bool,
    duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response_body: Option<String>,
    /// TTL: DynamoDB removes the record after this (Unix seconds).
    expires_at: i64,
}

/// Deliveries and attempts in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoDbDeliveryStore {
    client: Client,
    deliveries: String,
    attempts: String,
}

/// The update that writes a delivery's mutable state and releases its claim.
fn state_update(d: &Delivery) -> (String, Item) {
    let mut set = vec!["#st = :st", "attempts = :n"];
    let mut remove = vec!["claimed_until"];
    let mut values: Item = HashMap::new();
    values.insert(":st".into(), s(d.status.as_str()));
    values.insert(":n".into(), n(d.attempts));
    let optional = [
        ("last_status_code", ":lsc", d.last_status_code.map(i64::from)),
        ("last_attempt_at", ":lat", d.last_attempt_at.as_ref().map(to_micros)),
        ("next_attempt_at", ":nat", d.next_attempt_at.as_ref().map(to_micros)),
        ("delivered_at", ":dat", d.delivered_at.as_ref().map(to_micros)),
    ];
    let mut sets: Vec<String> = set.drain(..).map(str::to_owned).collect();
    for (attr, placeholder, v) in optional {
        match v {
            Some(v) => {
                sets.push(format!("{attr} = {placeholder}"));
                values.insert(placeholder.into(), n(v));
            }
            None => remove.push(attr),
        }
    }
    (format!("SET {} REMOVE {}", sets.join(", "), remove.join(", ")), values)
}

impl DynamoDbDeliveryStore {
    /// A store over the deliveries and attempts tables.
    pub fn new(client: Client, deliveries: &str, attempts: &str) -> Self {
        DynamoDbDeliveryStore { client, deliveries: deliveries.to_owned(), attempts: attempts.to_owned() }
    }

    async fn read(&self, id: &DeliveryId) -> Result<Option<Delivery>, StoreError> {
        let item = get_item(&self.client, &self.deliveries, &[("id", id.as_str())], true).await?;
        item.map(|i| from_item::<DeliveryItem>(i)?.try_into()).transpose()
    }

    fn put_new(&self, d: &Delivery) -> Result<Put, StoreError> {
        Put::builder()
            .table_name(&self.deliveries)
            .set_item(Some(to_item(&DeliveryItem::from(d))?))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(|e| StoreError::Unknown(e.into()))
    }

    async fn count(&self, key: &str, since: Timestamp, only_ok: bool) -> Result<u64, StoreError> {
        let mut q = self
            .client
            .query()
            .table_name(&self.attempts)
            .index_name("by_webhook")
            .key_condition_expression("webhook_key = :k AND attempted_at >= :since")
            .expression_attribute_values(":k", s(key))
            .expression_attribute_values(":since", n(to_micros(&since)))
            .select(Select::Count);
        if only_ok {
            q = q.filter_expression("succeeded = :yes").expression_attribute_values(":yes", AttributeValue::Bool(true));
        }
        Ok(query_all(q).await?.1)
    }
}

#[async_trait]
impl DeliveryStore for DynamoDbDeliveryStore {
    async fn create(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        for chunk in deliveries.chunks(TRANSACT_BATCH) {
            let items = chunk
                .iter()
                .map(|d| Ok(TransactWriteItem::builder().put(self.put_new(d)?).build()))
                .collect::<Result<Vec<_>, StoreError>>()?;
            match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
                Ok(_) => {}
                // Some already exist (a replayed event): write the rest one by one,
                // leaving existing deliveries untouched.
                Err(e) if is_condition_failed(&e) => {
                    for d in chunk {
                        let put = self.put_new(d)?;
                        let r = self
                            .client
                            .put_item()
                            .table_name(put.table_name())
                            .set_item(Some(put.item().clone()))
                            .condition_expression("attribute_not_exists(id)")
                            .send()
                            .await;
                        match r {
                            Ok(_) => {}
                            Err(e) if is_condition_failed(&e) => {}
                            Err(e) => return Err(err("PutItem", e)),
                        }
                    }
                }
                Err(e) => return Err(err("TransactWriteItems", e)),
            }
        }
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId) -> Result<Delivery, StoreError> {
        match self.read(id).await? {
            Some(d) if &d.tenant == tenant && &d.webhook_id == webhook => Ok(d),
            _ => Err(StoreError::NotFound),
        }
    }

    async fn list(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        let key = webhook_key(tenant, webhook);
        let want = page.limit as usize + 1;
        let mut items: Vec<Delivery> = Vec::new();
        let mut start: Option<Item> = page.after.as_ref().map(|c| {
            HashMap::from([("id".to_owned(), s(&c.id)), ("webhook_key".to_owned(), s(&key)), ("created_at".to_owned(), n(c.micros))])
        });
        // A filter applies after DynamoDB's limit, so keep reading until the page is full.
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.deliveries)
                .index_name("by_webhook")
                .key_condition_expression("webhook_key = :k")
                .expression_attribute_values(":k", s(&key))
                .scan_index_forward(false)
                .limit((want - items.len()) as i32)
                .set_exclusive_start_key(start.take());
            if let Some(st) = status {
                q = q
                    .filter_expression("#st = :st")
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":st", s(st.as_str()));
            }
            let out = q.send().await.map_err(|e| err("Query", e))?;
            for i in out.items.unwrap_or_default() {
                items.push(from_item::<DeliveryItem>(i)?.try_into()?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && items.len() < want => start = Some(k),
                _ => break,
            }
        }
        Ok(Page::from_overfetch(items, page.limit, |d| Cursor { micros: to_micros(&d.created_at), id: d.id.to_string() }))
    }

    async fn attempts(&self, tenant: &TenantId, id: &DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        let q = self
            .client
            .query()
            .table_name(&self.attempts)
            .key_condition_expression("delivery_id = :d")
            .filter_expression("tenant = :t")
            .expression_attribute_values(":d", s(id.as_str()))
            .expression_attribute_values(":t", s(tenant.as_str()));
        query_all(q)
            .await?
            .0
            .into_iter()
            .map(|i| {
                let a: AttemptItem = from_item(i)?;
                Ok(Attempt {
                    id: AttemptId::parse(&a.id).map_err(id_err)?,
                    delivery_id: DeliveryId::parse(&a.delivery_id).map_err(id_err)?,
                    attempted_at: from_micros(a.attempted_at),
                    status_code: a.status_code,
                    duration_ms: a.duration_ms,
                    error: a.error,
                    response_body: a.response_body,
                })
            })
            .collect()
    }

    async fn claim(&self, job: &Job, now: Timestamp, lease_until: Timestamp) -> Result<Claim, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.deliveries)
            .key("id", s(job.delivery_id.as_str()))
            .update_expression("SET claimed_until = :lease")
            .condition_expression(
                "tenant = :t AND #st = :pending AND attempts = :n AND (attribute_not_exists(claimed_until) OR claimed_until <= :now)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":lease", n(to_micros(&lease_until)))
            .expression_attribute_values(":t", s(job.tenant.as_str()))
            .expression_attribute_values(":pending", s(DeliveryStatus::Pending.as_str()))
            .expression_attribute_values(":n", n(job.attempts_before))
            .expression_attribute_values(":now", n(to_micros(&now)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match r {
            Ok(out) => {
                let item = out.attributes.ok_or_else(|| corrupt("UpdateItem returned no attributes"))?;
                Ok(Claim::Claimed(from_item::<DeliveryItem>(item)?.try_into()?))
            }
            Err(e) if is_condition_failed(&e) => Ok(match self.read(&job.delivery_id).await? {
                Some(d) if d.tenant == job.tenant && d.status == DeliveryStatus::Pending && d.attempts == job.attempts_before => {
                    Claim::Busy
                }
                _ => Claim::Stale,
            }),
            Err(e) => Err(err("UpdateItem", e)),
        }
    }

    async fn record_attempt(&self, d: &Delivery, a: &Attempt) -> Result<(), StoreError> {
        let (expr, mut values) = state_update(d);
        values.insert(":prev".into(), n(d.attempts.saturating_sub(1)));
        let update = Update::builder()
            .table_name(&self.deliveries)
            .key("id", s(d.id.as_str()))
            .update_expression(expr)
            .condition_expression("attempts = :prev")
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| StoreError::Unknown(e.into()))?;
        let micros = to_micros(&a.attempted_at);
        let item = AttemptItem {
            delivery_id: d.id.to_string(),
            sk: format!("{micros:020}#{}", a.id),
            id: a.id.to_string(),
            tenant: d.tenant.to_string(),
            webhook_key: webhook_key(&d.tenant, &d.webhook_id),
            attempted_at: micros,
            status_code: a.status_code,
            succeeded: a.succeeded(),
            duration_ms: a.duration_ms,
            error: a.error.clone(),
            response_body: a.response_body.clone(),
            expires_at: a.attempted_at.timestamp() + ATTEMPT_RETENTION_SECS,
        };
        let put =
            Put::builder().table_name(&self.attempts).set_item(Some(to_item(&item)?)).build().map_err(|e| StoreError::Unknown(e.into()))?;
        let r = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        conditional(r, "TransactWriteItems", StoreError::Conflict).map(|_| ())
    }

    async fn close(&self, d: &Delivery) -> Result<(), StoreError> {
        let (expr, mut values) = state_update(d);
        values.insert(":same".into(), n(d.attempts));
        let r = self
            .client
            .update_item()
            .table_name(&self.deliveries)
            .key("id", s(d.id.as_str()))
            .update_expression(expr)
            .condition_expression("attempts = :same")
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        conditional(r, "UpdateItem", StoreError::Conflict).map(|_| ())
    }

    async fn release(&self, tenant: &TenantId, id: &DeliveryId) -> Result<(), StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.deliveries)
            .key("id", s(id.as_str()))
            .update_expression("REMOVE claimed_until")
            .condition_expression("tenant = :t")
            .expression_attribute_values(":t", s(tenant.as_str()))
            .send()
            .await;
        conditional(r, "UpdateItem", StoreError::NotFound).map(|_| ())
    }

    async fn reopen(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId, now: Timestamp) -> Result<Delivery, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.deliveries)
            .key("id", s(id.as_str()))
            .update_expression("SET #st = :pending, next_attempt_at = :now")
            .condition_expression("tenant = :t AND webhook_id = :w")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", s(DeliveryStatus::Pending.as_str()))
            .expression_attribute_values(":now", n(to_micros(&now)))
            .expression_attribute_values(":t", s(tenant.as_str()))
            .expression_attribute_values(":w", s(webhook.as_str()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match r {
            Ok(out) => from_item::<DeliveryItem>(out.attributes.ok_or_else(|| corrupt("no attributes"))?)?.try_into(),
            Err(e) if is_condition_failed(&e) => Err(StoreError::NotFound),
            Err(e) => Err(err("UpdateItem", e)),
        }
    }

    async fn attempt_stats(&self, tenant: &TenantId, webhook: &WebhookId, since: Timestamp) -> Result<AttemptStats, StoreError> {
        let key = webhook_key(tenant, webhook);
        Ok(AttemptStats { total: self.count(&key, since, false).await?, succeeded: self.count(&key, since, true).await? })
    }
}

// ---------------------------------------------------------------- api keys

#[derive(Serialize, Deserialize)]
struct ApiKeyItem {
    hash: String,
    id: String,
    tenant: String,
    scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    created_at: i64,
}

/// API keys in DynamoDB, keyed by the hash of the secret.
#[derive(Debug, Clone)]
pub struct DynamoDbApiKeyStore {
    client: Client,
    table: String,
}

impl DynamoDbApiKeyStore {
    /// A store over `table`.
    pub fn new(client: Client, table: &str) -> Self {
        DynamoDbApiKeyStore { client, table: table.to_owned() }
    }
}

#[async_trait]
impl ApiKeyStore for DynamoDbApiKeyStore {
    async fn insert(&self, k: &ApiKey) -> Result<(), StoreError> {
        let item = ApiKeyItem {
            hash: k.hash.clone(),
            id: k.id.to_string(),
            tenant: k.tenant.to_string(),
            scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            description: k.description.clone(),
            created_at: to_micros(&k.created_at),
        };
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&item)?))
            .condition_expression("attribute_not_exists(#h)")
            .expression_attribute_names("#h", "hash")
            .send()
            .await;
        conditional(r, "PutItem", StoreError::Conflict).map(|_| ())
    }

    async fn find_by_hash(&self, hash: &str) -> Result<ApiKey, StoreError> {
        let item = get_item(&self.client, &self.table, &[("hash", hash)], false).await?;
        let i: ApiKeyItem = from_item(item.ok_or(StoreError::NotFound)?)?;
        Ok(ApiKey {
            id: ApiKeyId::parse(&i.id).map_err(id_err)?,
            tenant: TenantId::parse(&i.tenant).map_err(id_err)?,
            scopes: i.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
            description: i.description,
            created_at: from_micros(i.created_at),
            hash: i.hash,
        })
    }
}
