//! The deliveries table (and the attempts table its long histories spill into):
//! [`DynamoDbDeliveryStore`] and their item layouts.
//!
//! Written to cost as few write units as the guarantees allow (ARCHITECTURE.md, "AWS
//! write units"): a delivery is one item keyed by its webhook, so listing needs no
//! index (an index is written with every change of what it projects); its attempts
//! live inside it while they are few and short ([`INLINE_ATTEMPTS`],
//! [`INLINE_ATTEMPT_BYTES`]), so recording one is a single conditional update of one
//! small item instead of a transaction of two. Every attempt also leaves its time and
//! outcome in the item's `outcomes`, which is all that health reads.

use super::{Item, conditional, corrupt, err, from_item, get_item, is_condition_failed, n, query_all, s, to_item};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, Select, TransactWriteItem, Update};
use hookline_domain::delivery::{Attempt, Claim, Delivery, DeliveryFilter, DeliveryStatus, Job};
use hookline_domain::ids::{DeliveryId, TenantId, WebhookId};
use hookline_domain::page::{Cursor, Page, PageRequest};
use hookline_domain::ports::{AttemptStats, DeliveryStore, StoreError};
use hookline_domain::time::{Timestamp, to_micros};
use std::collections::HashMap;

mod items;

use items::{AttemptItem, DeliveryItem, HealthItem, LoggedAttempt, Outcome, expression, first_id_at, key, state_update, webhook_key};

/// How long spilled attempt records are kept before DynamoDB's TTL removes them.
const ATTEMPT_RETENTION_SECS: i64 = 30 * 24 * 3600;
/// Attempts kept inside the delivery item at most; later ones go to the attempts
/// table. Eight covers the default schedule (six attempts) with room for two
/// redeliveries.
pub const INLINE_ATTEMPTS: u32 = 8;
/// Largest attempt kept inside the delivery item (its response excerpt and error
/// included): a write costs a unit per KB of the whole item, so a long answer goes to
/// the attempts table and the item stays small (at most about 2.5 KB).
pub const INLINE_ATTEMPT_BYTES: usize = 256;
/// Conditional puts in flight at once when a fan-out creates many deliveries.
const CREATE_CONCURRENCY: usize = 16;
/// Health reads a webhook's deliveries created within its window and this long before
/// it (so a retry of an older delivery made within the window still counts).
const HEALTH_LOOKBACK_SECS: i64 = 2 * 24 * 3600;
/// Health reads at most this many of a webhook's newest deliveries: a busier webhook's
/// figures cover its newest ones.
pub const HEALTH_MAX_DELIVERIES: i32 = 25_000;
/// ...and at most this many pages of 1 MB (DynamoDB's page), so a webhook whose
/// deliveries are large costs a bounded read, a few seconds at most.
const HEALTH_MAX_PAGES: usize = 16;

/// Deliveries and attempts in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoDbDeliveryStore {
    client: Client,
    deliveries: String,
    attempts: String,
}

impl DynamoDbDeliveryStore {
    /// A store over the deliveries and attempts tables.
    pub fn new(client: Client, deliveries: &str, attempts: &str) -> Self {
        DynamoDbDeliveryStore { client, deliveries: deliveries.to_owned(), attempts: attempts.to_owned() }
    }

    async fn read(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId) -> Result<Option<DeliveryItem>, StoreError> {
        let wk = webhook_key(tenant, webhook);
        let item = get_item(&self.client, &self.deliveries, &[("webhook_key", &wk), ("id", id.as_str())], true).await?;
        item.map(from_item::<DeliveryItem>).transpose()
    }

    /// Creates one delivery unless it exists (a replayed event leaves it as it is).
    async fn put_new(&self, d: &Delivery) -> Result<(), StoreError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.deliveries)
            .set_item(Some(to_item(&DeliveryItem::from(d))?))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(err("PutItem", e)),
        }
    }

    /// The spilled attempts of a delivery, oldest first.
    async fn spilled(&self, id: &DeliveryId) -> Result<Vec<LoggedAttempt>, StoreError> {
        let q = self
            .client
            .query()
            .table_name(&self.attempts)
            .key_condition_expression("delivery_id = :d")
            .expression_attribute_values(":d", s(id.as_str()));
        query_all(q).await?.0.into_iter().map(|i| Ok(from_item::<AttemptItem>(i)?.attempt)).collect()
    }

    /// Records an attempt not kept inline: its own item, written in one transaction
    /// with the delivery's new state.
    async fn record_spilled(&self, d: &Delivery, logged: LoggedAttempt, update: Update) -> Result<(), StoreError> {
        let item = AttemptItem {
            delivery_id: d.id.to_string(),
            sk: format!("{:020}#{}", logged.at, logged.id),
            expires_at: logged.at / 1_000_000 + ATTEMPT_RETENTION_SECS,
            attempt: logged,
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
        match r {
            Ok(_) => Ok(()),
            // Only a failed condition is a conflict; a transaction cancelled for another
            // reason (throttling, a concurrent transaction) is an error to retry.
            Err(e) if cancelled_by_condition(&e) => Err(StoreError::Conflict),
            Err(e) => Err(err("TransactWriteItems", e)),
        }
    }

    /// Writes a delivery's state (SET and REMOVE clauses and their values) under
    /// `condition`; a failed condition is a conflict.
    async fn write_state(&self, d: &Delivery, sets: &[String], remove: &[&str], values: Item, condition: &str) -> Result<(), StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.deliveries)
            .set_key(Some(key(&d.tenant, &d.webhook_id, &d.id)))
            .update_expression(expression(sets, remove))
            .condition_expression(condition)
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        conditional(r, "UpdateItem", StoreError::Conflict).map(|_| ())
    }
}

fn cancelled_by_condition<R>(e: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, R>) -> bool {
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
            t.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed"))
        }
        _ => false,
    }
}

#[async_trait]
impl DeliveryStore for DynamoDbDeliveryStore {
    async fn create(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        // One conditional put each (one write unit for a small item), rather than
        // transactions, which cost two per item.
        for chunk in deliveries.chunks(CREATE_CONCURRENCY) {
            futures::future::try_join_all(chunk.iter().map(|d| self.put_new(d))).await?;
        }
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId) -> Result<Delivery, StoreError> {
        self.read(tenant, webhook, id).await?.ok_or(StoreError::NotFound)?.try_into()
    }

    async fn list(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        let key = webhook_key(tenant, webhook);
        let want = page.limit as usize + 1;
        let mut items: Vec<Delivery> = Vec::new();
        let mut start: Option<Item> =
            page.after.as_ref().map(|c| HashMap::from([("webhook_key".to_owned(), s(&key)), ("id".to_owned(), s(&c.id))]));
        // A filter applies after DynamoDB's limit, so keep reading until the page is full.
        loop {
            let q = self
                .client
                .query()
                .table_name(&self.deliveries)
                .scan_index_forward(false)
                .limit((want - items.len()) as i32)
                .set_exclusive_start_key(start.take());
            let q = list_conditions(q, &key, filter);
            let out = q.send().await.map_err(|e| err("Query", e))?;
            for i in out.items.unwrap_or_default() {
                items.push(from_item::<DeliveryItem>(i)?.try_into()?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && items.len() < want => start = Some(k),
                _ => break,
            }
        }
        // Ids are time-ordered, so newest first by id is newest first by creation.
        Ok(Page::from_overfetch(items, page.limit, |d| Cursor { micros: to_micros(&d.created_at), id: d.id.to_string() }))
    }

    async fn count(&self, tenant: &TenantId, webhook: &WebhookId, filter: &DeliveryFilter) -> Result<u64, StoreError> {
        let q = self.client.query().table_name(&self.deliveries).select(Select::Count);
        let (_, count) = query_all(list_conditions(q, &webhook_key(tenant, webhook), filter)).await?;
        Ok(count)
    }

    async fn attempts(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        let Some(item) = self.read(tenant, webhook, id).await? else { return Ok(Vec::new()) };
        let mut log = item.attempt_log;
        if log.len() < item.attempts as usize {
            log.extend(self.spilled(id).await?);
            log.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        }
        log.into_iter().map(|a| a.into_attempt(id)).collect()
    }

    async fn claim(&self, job: &Job, now: Timestamp, lease_until: Timestamp) -> Result<Claim, StoreError> {
        let q = self
            .client
            .update_item()
            .table_name(&self.deliveries)
            .set_key(Some(key(&job.tenant, &job.webhook_id, &job.delivery_id)))
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":lease", n(to_micros(&lease_until)))
            .expression_attribute_values(":n", n(job.attempts_before))
            .expression_attribute_values(":now", n(to_micros(&now)))
            .return_values(ReturnValue::AllNew);
        let free = "attribute_exists(id) AND attempts = :n AND (attribute_not_exists(claimed_until) OR claimed_until <= :now)";
        let q = if job.reopen {
            // A recovery's job reopens a finished delivery as it claims it; a pending one
            // keeps its due time.
            q.update_expression("SET claimed_until = :lease, #st = :pending, next_attempt_at = if_not_exists(next_attempt_at, :now)")
                .condition_expression(free)
                .expression_attribute_values(":pending", s(DeliveryStatus::Pending.as_str()))
        } else {
            q.update_expression("SET claimed_until = :lease")
                .condition_expression(format!("{free} AND #st = :pending"))
                .expression_attribute_values(":pending", s(DeliveryStatus::Pending.as_str()))
        };
        let r = q.send().await;
        match r {
            Ok(out) => {
                let item = out.attributes.ok_or_else(|| corrupt("UpdateItem returned no attributes"))?;
                Ok(Claim::Claimed(from_item::<DeliveryItem>(item)?.try_into()?))
            }
            Err(e) if is_condition_failed(&e) => Ok(match self.read(&job.tenant, &job.webhook_id, &job.delivery_id).await? {
                Some(d) if (d.status == DeliveryStatus::Pending.as_str() || job.reopen) && d.attempts == job.attempts_before => Claim::Busy,
                _ => Claim::Stale,
            }),
            Err(e) => Err(err("UpdateItem", e)),
        }
    }

    async fn record_attempt(&self, d: &Delivery, a: &Attempt) -> Result<(), StoreError> {
        let (mut sets, remove, mut values) = state_update(d);
        values.insert(":prev".into(), n(d.attempts.saturating_sub(1)));
        let logged = LoggedAttempt::new(a);
        let inline = d.attempts <= INLINE_ATTEMPTS && logged.size() <= INLINE_ATTEMPT_BYTES;
        let outcome = Outcome { at: logged.at, ok: a.succeeded() };
        sets.push("outcomes = list_append(if_not_exists(outcomes, :none), :o)".to_owned());
        values.insert(":none".into(), AttributeValue::L(Vec::new()));
        values.insert(":o".into(), AttributeValue::L(vec![serde_dynamo::to_attribute_value(outcome).map_err(corrupt)?]));
        if inline {
            sets.push("attempt_log = list_append(if_not_exists(attempt_log, :none), :a)".to_owned());
            values.insert(":a".into(), AttributeValue::L(vec![serde_dynamo::to_attribute_value(logged).map_err(corrupt)?]));
            return self.write_state(d, &sets, &remove, values, "attempts = :prev").await;
        }
        let update = Update::builder()
            .table_name(&self.deliveries)
            .set_key(Some(key(&d.tenant, &d.webhook_id, &d.id)))
            .update_expression(expression(&sets, &remove))
            .condition_expression("attempts = :prev")
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| StoreError::Unknown(e.into()))?;
        self.record_spilled(d, logged, update).await
    }

    async fn close(&self, d: &Delivery) -> Result<(), StoreError> {
        let (sets, remove, mut values) = state_update(d);
        values.insert(":same".into(), n(d.attempts));
        self.write_state(d, &sets, &remove, values, "attempts = :same").await
    }

    async fn release(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId) -> Result<(), StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.deliveries)
            .set_key(Some(key(tenant, webhook, id)))
            .update_expression("REMOVE claimed_until")
            .condition_expression("attribute_exists(id)")
            .send()
            .await;
        conditional(r, "UpdateItem", StoreError::NotFound).map(|_| ())
    }

    async fn reopen(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId, now: Timestamp) -> Result<Delivery, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.deliveries)
            .set_key(Some(key(tenant, webhook, id)))
            .update_expression("SET #st = :pending, next_attempt_at = :now")
            .condition_expression("attribute_exists(id)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", s(DeliveryStatus::Pending.as_str()))
            .expression_attribute_values(":now", n(to_micros(&now)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match r {
            Ok(out) => from_item::<DeliveryItem>(out.attributes.ok_or_else(|| corrupt("no attributes"))?)?.try_into(),
            Err(e) if is_condition_failed(&e) => Err(StoreError::NotFound),
            Err(e) => Err(err("UpdateItem", e)),
        }
    }

    /// Counts the outcomes logged in the webhook's deliveries: no per-attempt index or
    /// counter is written for it (`HEALTH_MAX_DELIVERIES` and `HEALTH_MAX_PAGES` bound it).
    async fn attempt_stats(&self, tenant: &TenantId, webhook: &WebhookId, since: Timestamp) -> Result<AttemptStats, StoreError> {
        let from = first_id_at(since - chrono::Duration::seconds(HEALTH_LOOKBACK_SECS));
        let q = self
            .client
            .query()
            .table_name(&self.deliveries)
            .key_condition_expression("webhook_key = :k AND id >= :from")
            .filter_expression("last_attempt_at >= :since")
            .projection_expression("outcomes")
            .expression_attribute_values(":k", s(webhook_key(tenant, webhook)))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":since", n(to_micros(&since)))
            .scan_index_forward(false);
        let mut stats = AttemptStats::default();
        let (mut start, mut read, mut pages): (Option<Item>, i32, usize) = (None, 0, 0);
        let since_us = to_micros(&since);
        loop {
            let out = q
                .clone()
                .limit(HEALTH_MAX_DELIVERIES - read)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| err("Query", e))?;
            (read, pages) = (read + out.scanned_count, pages + 1);
            for i in out.items.unwrap_or_default() {
                let d: HealthItem = from_item(i)?;
                for o in d.outcomes.iter().filter(|o| o.at >= since_us) {
                    stats.total += 1;
                    stats.succeeded += u64::from(o.ok);
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && read < HEALTH_MAX_DELIVERIES && pages < HEALTH_MAX_PAGES => start = Some(k),
                _ => return Ok(stats),
            }
        }
    }
}

/// A listing's key condition and filter: the time range on the id (ids start with
/// their event's creation time in milliseconds, 12 hex digits), status and event name
/// as a filter.
fn list_conditions(
    q: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    key: &str,
    filter: &DeliveryFilter,
) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
    let bound = |t: &hookline_domain::time::Timestamp| format!("dlv_{:012x}", t.timestamp_millis().clamp(0, (1 << 48) - 1));
    let mut q = q.expression_attribute_values(":k", s(key));
    q = match (&filter.since, &filter.until) {
        (None, None) => q.key_condition_expression("webhook_key = :k"),
        (since, until) => q
            .key_condition_expression("webhook_key = :k AND id BETWEEN :lo AND :hi")
            .expression_attribute_values(":lo", s(since.as_ref().map_or_else(|| "dlv_".to_owned(), bound)))
            .expression_attribute_values(":hi", s(until.as_ref().map_or_else(|| "dlv_g".to_owned(), bound))),
    };
    let mut conditions = Vec::new();
    if let Some(st) = filter.status {
        conditions.push("#st = :st");
        q = q.expression_attribute_names("#st", "status").expression_attribute_values(":st", s(st.as_str()));
    }
    if let Some(name) = &filter.event_name {
        conditions.push("event_name = :name");
        q = q.expression_attribute_values(":name", s(name.as_str()));
    }
    if conditions.is_empty() { q } else { q.filter_expression(conditions.join(" AND ")) }
}
