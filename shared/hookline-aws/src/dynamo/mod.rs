//! The DynamoDB stores. Item layouts (attribute names, keys, indexes) live in this
//! module and nowhere else; `template.yaml` and `infra/` create the tables to match.
//! One file per store; this one holds what they share: attribute values, item
//! (de)serialization, reads, paged queries and the mapping of SDK errors.
//!
//! | table | key | indexes |
//! |---|---|---|
//! | api keys (and portal links, sessions) | `hash` | `by_tenant` (`tenant`, `id`); TTL `expires_after` |
//! | webhooks | `tenant`, `id` | |
//! | events | `tenant`, `id` | `by_created_at` (`tenant`, `created_at`) |
//! | deliveries | `webhook_key`, `id` | (none: a webhook's deliveries are one partition, newest last) |
//! | attempts | `delivery_id`, `sk` | TTL `expires_at`; only attempts beyond a delivery's inline ones |
//! | recoveries | `webhook_key`, `id` | (none: a webhook's recoveries are one partition) |
//! | throttles | `webhook_key` | TTL `expires_at`; only webhooks with rate limits |
//! | analytics | `webhook_key`, `hour` | TTL `expires_at`; counters as attributes |

mod analytics;
mod api_keys;
mod deliveries;
mod events;
mod recoveries;
mod throttles;
mod webhooks;

pub use analytics::DynamoDbAnalyticsStore;
pub use api_keys::DynamoDbApiKeyStore;
pub use deliveries::DynamoDbDeliveryStore;
pub use events::{DynamoDbEventLog, EventItemError, event_from_item};
pub use recoveries::DynamoDbRecoveryStore;
pub use throttles::DynamoDbThrottleStore;
pub use webhooks::DynamoDbWebhookStore;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use hookline_domain::ids::InvalidId;
use hookline_domain::ports::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

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
