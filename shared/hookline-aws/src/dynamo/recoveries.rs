//! The recoveries table: [`DynamoDbRecoveryStore`]. Each recovery is kept whole as
//! JSON (`doc`) under its webhook's key, with `steps` beside it for conditional saves.

use super::{Item, conditional, corrupt, err, get_item, is_condition_failed, n, query_all, s};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use hookline_domain::ids::{RecoveryId, TenantId, WebhookId};
use hookline_domain::ports::{MAX_LISTED_RECOVERIES, RecoveryStore, StoreError};
use hookline_domain::recovery::Recovery;
use std::collections::HashMap;

/// Recoveries in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoDbRecoveryStore {
    client: Client,
    table: String,
}

impl DynamoDbRecoveryStore {
    /// The store over `table`.
    pub fn new(client: Client, table: &str) -> Self {
        DynamoDbRecoveryStore { client, table: table.to_owned() }
    }
}

fn webhook_key(tenant: &TenantId, webhook: &WebhookId) -> String {
    format!("{tenant}#{webhook}")
}

fn item(r: &Recovery) -> Result<Item, StoreError> {
    let doc = serde_json::to_string(r).map_err(corrupt)?;
    Ok(HashMap::from([
        ("webhook_key".to_owned(), s(webhook_key(&r.tenant, &r.webhook_id))),
        ("id".to_owned(), s(r.id.as_str())),
        ("steps".to_owned(), n(r.steps)),
        ("doc".to_owned(), s(doc)),
    ]))
}

fn read(item: &Item) -> Result<Recovery, StoreError> {
    match item.get("doc") {
        Some(AttributeValue::S(doc)) => serde_json::from_str(doc).map_err(corrupt),
        _ => Err(corrupt("a recovery without its document")),
    }
}

#[async_trait]
impl RecoveryStore for DynamoDbRecoveryStore {
    async fn insert(&self, r: &Recovery) -> Result<(), StoreError> {
        let put = self.client.put_item().table_name(&self.table).set_item(Some(item(r)?)).condition_expression("attribute_not_exists(id)");
        conditional(put.send().await, "PutItem", StoreError::Conflict).map(|_| ())
    }

    async fn get(&self, tenant: &TenantId, webhook: &WebhookId, id: &RecoveryId) -> Result<Recovery, StoreError> {
        let key = webhook_key(tenant, webhook);
        // Consistent: a step reads what the step before it saved.
        match get_item(&self.client, &self.table, &[("webhook_key", &key), ("id", id.as_str())], true).await? {
            Some(i) => read(&i),
            None => Err(StoreError::NotFound),
        }
    }

    async fn list(&self, tenant: &TenantId, webhook: &WebhookId) -> Result<Vec<Recovery>, StoreError> {
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("webhook_key = :k")
            .expression_attribute_values(":k", s(webhook_key(tenant, webhook)));
        let (items, _) = query_all(q).await?;
        let mut found = items.iter().map(read).collect::<Result<Vec<_>, _>>()?;
        found.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        found.truncate(MAX_LISTED_RECOVERIES);
        Ok(found)
    }

    async fn save(&self, r: &Recovery, expected_steps: u32) -> Result<(), StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(r)?))
            .condition_expression("attribute_exists(id) AND steps = :expected")
            .expression_attribute_values(":expected", n(expected_steps));
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => {
                let key = webhook_key(&r.tenant, &r.webhook_id);
                match get_item(&self.client, &self.table, &[("webhook_key", &key), ("id", r.id.as_str())], true).await? {
                    Some(_) => Err(StoreError::Conflict),
                    None => Err(StoreError::NotFound),
                }
            }
            Err(e) => Err(err("PutItem", e)),
        }
    }
}
