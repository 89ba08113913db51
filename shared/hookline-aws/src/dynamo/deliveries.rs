//! The deliveries and attempts tables: [`DynamoDbDeliveryStore`] and their item
//! layouts.

use super::{Item, conditional, corrupt, err, from_item, get_item, id_err, is_condition_failed, n, query_all, s, to_item};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, Select, TransactWriteItem, Update};
use hookline_domain::catalog::EventName;
use hookline_domain::delivery::{Attempt, Claim, Delivery, DeliveryStatus, Job};
use hookline_domain::ids::{AttemptId, DeliveryId, EventId, TenantId, WebhookId};
use hookline_domain::page::{Cursor, Page, PageRequest};
use hookline_domain::ports::{AttemptStats, DeliveryStore, StoreError};
use hookline_domain::time::{Timestamp, from_micros, to_micros};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How long attempt records are kept before DynamoDB's TTL removes them.
const ATTEMPT_RETENTION_SECS: i64 = 30 * 24 * 3600;
/// Items per TransactWriteItems call (DynamoDB allows 100; 25 keeps transactions small).
const TRANSACT_BATCH: usize = 25;

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
