//! The API keys table: [`DynamoDbApiKeyStore`] and its item layout.

use super::{conditional, from_item, get_item, id_err, to_item};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use hookline_domain::auth::{ApiKey, Scope};
use hookline_domain::ids::{ApiKeyId, TenantId};
use hookline_domain::ports::{ApiKeyStore, StoreError};
use hookline_domain::time::{from_micros, to_micros};
use serde::{Deserialize, Serialize};

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
