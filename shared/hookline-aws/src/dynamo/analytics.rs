//! The analytics table: [`DynamoDbAnalyticsStore`]. One item per webhook and hour
//! (`webhook_key`, `hour` in epoch seconds), each counter an attribute of its own name
//! that an attempt's one `UpdateItem` adds to (`ADD` is atomic per attribute), and a
//! TTL (`expires_at`) past the longest window the API reads.

use super::{Item, corrupt, err, n, query_all, s};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use hookline_domain::ids::{TenantId, WebhookId};
use hookline_domain::ports::{AnalyticsStore, StoreError};
use hookline_domain::time::Timestamp;
use std::collections::BTreeMap;

/// How long an hour's counters are kept: past the 30-day window, with a margin.
const KEEP_SECS: i64 = 32 * 24 * 3600;
/// The attributes of an item that are not counters.
const NOT_COUNTERS: [&str; 3] = ["webhook_key", "hour", "expires_at"];

/// Analytics counters in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoDbAnalyticsStore {
    client: Client,
    table: String,
}

impl DynamoDbAnalyticsStore {
    /// The store over `table`.
    pub fn new(client: Client, table: &str) -> Self {
        DynamoDbAnalyticsStore { client, table: table.to_owned() }
    }
}

fn webhook_key(tenant: &TenantId, webhook: &WebhookId) -> String {
    format!("{tenant}#{webhook}")
}

fn bucket(item: Item) -> Result<(Timestamp, BTreeMap<String, u64>), StoreError> {
    let hour = match item.get("hour") {
        Some(AttributeValue::N(h)) => h.parse::<i64>().map_err(corrupt)?,
        _ => return Err(corrupt("an analytics item without its hour")),
    };
    let hour = Timestamp::from_timestamp(hour, 0).ok_or_else(|| corrupt("an analytics hour out of range"))?;
    let mut counters = BTreeMap::new();
    for (name, value) in item {
        if NOT_COUNTERS.contains(&name.as_str()) {
            continue;
        }
        match value {
            AttributeValue::N(v) => counters.insert(name, v.parse::<u64>().map_err(corrupt)?),
            _ => return Err(corrupt("an analytics counter that is not a number")),
        };
    }
    Ok((hour, counters))
}

#[async_trait]
impl AnalyticsStore for DynamoDbAnalyticsStore {
    async fn add(&self, tenant: &TenantId, webhook: &WebhookId, hour: Timestamp, counters: &[(String, u64)]) -> Result<(), StoreError> {
        if counters.is_empty() {
            return Ok(());
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("webhook_key", s(webhook_key(tenant, webhook)))
            .key("hour", n(hour.timestamp()))
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_values(":expires", n(hour.timestamp() + KEEP_SECS));
        let mut adds = Vec::with_capacity(counters.len());
        for (i, (name, amount)) in counters.iter().enumerate() {
            adds.push(format!("#c{i} :c{i}"));
            update = update.expression_attribute_names(format!("#c{i}"), name).expression_attribute_values(format!(":c{i}"), n(amount));
        }
        let expression = format!("SET #expires = :expires ADD {}", adds.join(", "));
        update.update_expression(expression).send().await.map_err(|e| err("UpdateItem", e))?;
        Ok(())
    }

    async fn read(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Timestamp, BTreeMap<String, u64>)>, StoreError> {
        // Hours are whole seconds; [from, to) in seconds, rounded so no hour is missed
        // or read twice.
        let first = from.timestamp() + i64::from(from.timestamp_subsec_micros() > 0);
        let last = to.timestamp() - i64::from(to.timestamp_subsec_micros() == 0);
        if last < first {
            return Ok(Vec::new());
        }
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("webhook_key = :k AND #hour BETWEEN :first AND :last")
            .expression_attribute_names("#hour", "hour")
            .expression_attribute_values(":k", s(webhook_key(tenant, webhook)))
            .expression_attribute_values(":first", n(first))
            .expression_attribute_values(":last", n(last));
        let (items, _) = query_all(q).await?;
        items.into_iter().map(bucket).collect()
    }
}
