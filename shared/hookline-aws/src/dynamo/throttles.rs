//! The throttles table: [`DynamoDbThrottleStore`]. One item per rate-limited webhook:
//! its limits' state as JSON (`doc`), a `version` for conditional writes, and a TTL
//! (`expires_at`, epoch seconds) so an idle webhook's state goes away by itself.
//!
//! A change is a consistent read and a conditional write back. Within one container
//! the changes of a webhook run one at a time, so only other containers can make a
//! write lose (a lost write costs its write unit and a read again).

use super::{Item, conditional, corrupt, get_item, n, s};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use hookline_cache::KeyedLocks;
use hookline_domain::ids::{TenantId, WebhookId};
use hookline_domain::ports::{StoreError, ThrottleStore};
use hookline_domain::throttle::{MAX_TRIES, ThrottleState};
use std::collections::HashMap;
use std::sync::Arc;

/// Rate limit state in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoDbThrottleStore {
    client: Client,
    table: String,
    locks: Arc<KeyedLocks>,
}

impl DynamoDbThrottleStore {
    /// The store over `table`.
    pub fn new(client: Client, table: &str) -> Self {
        DynamoDbThrottleStore { client, table: table.to_owned(), locks: Arc::default() }
    }
}

fn webhook_key(tenant: &TenantId, webhook: &WebhookId) -> String {
    format!("{tenant}#{webhook}")
}

fn version_of(item: &Item) -> Result<u64, StoreError> {
    match item.get("version") {
        Some(AttributeValue::N(v)) => v.parse().map_err(corrupt),
        _ => Err(corrupt("a rate limit state without its version")),
    }
}

impl DynamoDbThrottleStore {
    async fn load(&self, key: &str) -> Result<(ThrottleState, u64), StoreError> {
        // Consistent: a write based on an older read would only be refused.
        let Some(item) = get_item(&self.client, &self.table, &[("webhook_key", key)], true).await? else {
            return Ok((ThrottleState::default(), 0));
        };
        let state = match item.get("doc") {
            Some(AttributeValue::S(doc)) => serde_json::from_str(doc).map_err(corrupt)?,
            _ => return Err(corrupt("a rate limit state without its document")),
        };
        Ok((state, version_of(&item)?))
    }

    /// Writes `state` as the version after `expected` (0: none stored); `false` if the
    /// stored version is not `expected`.
    async fn save(&self, key: &str, state: &ThrottleState, expected: u64) -> Result<bool, StoreError> {
        let doc = serde_json::to_string(state).map_err(corrupt)?;
        let item = HashMap::from([
            ("webhook_key".to_owned(), s(key)),
            ("version".to_owned(), n(expected + 1)),
            ("doc".to_owned(), s(doc)),
            ("expires_at".to_owned(), n(state.expires_at().timestamp())),
        ]);
        let put = self.client.put_item().table_name(&self.table).set_item(Some(item));
        // A state past its TTL may still be there (DynamoDB deletes late): it counts as
        // stored, so the version check holds either way.
        let put = if expected == 0 {
            put.condition_expression("attribute_not_exists(webhook_key)")
        } else {
            put.condition_expression("version = :expected").expression_attribute_values(":expected", n(expected))
        };
        match conditional(put.send().await, "PutItem", StoreError::Conflict) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl ThrottleStore for DynamoDbThrottleStore {
    async fn update(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        change: &mut (dyn for<'s> FnMut(&'s mut ThrottleState) + Send),
    ) -> Result<(), StoreError> {
        let key = webhook_key(tenant, webhook);
        let _one_at_a_time = self.locks.lock(key.clone()).await;
        for _ in 0..MAX_TRIES {
            let (mut state, version) = self.load(&key).await?;
            let before = state.clone();
            change(&mut state);
            if state == before || self.save(&key, &state, version).await? {
                return Ok(());
            }
        }
        Err(StoreError::Unknown(anyhow::anyhow!("rate limit state of webhook {webhook} kept changing; tried {MAX_TRIES} times")))
    }
}
