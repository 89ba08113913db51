//! The API keys table: [`DynamoDbApiKeyStore`] and its item layout. It holds API keys,
//! portal links and portal sessions (`kind`), keyed by the hash of their secret, with an
//! index `by_tenant` (`tenant`, `id`) for listing and revoking, and a TTL
//! (`expires_after`, a day past a link's or session's end) so ended ones go away.

use super::{conditional, err, from_item, get_item, id_err, n, query_all, s, to_item};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ReturnValue;
use hookline_domain::auth::{ApiKey, CredentialKind, Scope};
use hookline_domain::ids::{ApiKeyId, TenantId};
use hookline_domain::ports::{ApiKeyStore, MAX_LISTED_KEYS, StoreError};
use hookline_domain::time::{Timestamp, from_micros, to_micros};
use serde::{Deserialize, Serialize};

/// The index listing a tenant's credentials.
const BY_TENANT: &str = "by_tenant";
/// Seconds an ended link or session stays before DynamoDB's TTL may remove it.
const KEEP_AFTER_END_SECS: i64 = 86_400;

#[derive(Serialize, Deserialize)]
struct ApiKeyItem {
    hash: String,
    id: String,
    tenant: String,
    scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    created_at: i64,
    /// Absent on keys written before links and sessions existed: an API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_after: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    used_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
}

fn ttl_secs(until: &Timestamp) -> i64 {
    until.timestamp() + KEEP_AFTER_END_SECS
}

impl ApiKeyItem {
    fn of(k: &ApiKey) -> Self {
        ApiKeyItem {
            hash: k.hash.clone(),
            id: k.id.to_string(),
            tenant: k.tenant.to_string(),
            scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            description: k.description.clone(),
            created_at: to_micros(&k.created_at),
            kind: (k.kind != CredentialKind::Key).then(|| k.kind.as_str().to_owned()),
            expires_at: k.expires_at.as_ref().map(to_micros),
            expires_after: k.expires_at.as_ref().map(ttl_secs),
            used_at: k.used_at.as_ref().map(to_micros),
            parent: k.parent.clone(),
        }
    }

    fn key(self) -> Result<ApiKey, StoreError> {
        let kind = match self.kind.as_deref() {
            None => CredentialKind::Key,
            Some(k) => CredentialKind::parse(k).ok_or_else(|| super::corrupt(format!("unknown credential kind {k:?}")))?,
        };
        Ok(ApiKey {
            id: ApiKeyId::parse(&self.id).map_err(id_err)?,
            tenant: TenantId::parse(&self.tenant).map_err(id_err)?,
            scopes: self.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
            description: self.description,
            created_at: from_micros(self.created_at),
            hash: self.hash,
            kind,
            expires_at: self.expires_at.map(from_micros),
            used_at: self.used_at.map(from_micros),
            parent: self.parent,
        })
    }
}

/// Credentials in DynamoDB, keyed by the hash of the secret.
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

    /// The filter matching one kind; keys written before kinds existed have none.
    fn kind_filter(kind: CredentialKind) -> (&'static str, String) {
        match kind {
            CredentialKind::Key => ("attribute_not_exists(#kind) OR #kind = :kind", kind.as_str().to_owned()),
            _ => ("#kind = :kind", kind.as_str().to_owned()),
        }
    }
}

#[async_trait]
impl ApiKeyStore for DynamoDbApiKeyStore {
    async fn insert(&self, k: &ApiKey) -> Result<(), StoreError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&ApiKeyItem::of(k))?))
            .condition_expression("attribute_not_exists(#h)")
            .expression_attribute_names("#h", "hash")
            .send()
            .await;
        conditional(r, "PutItem", StoreError::Conflict).map(|_| ())
    }

    /// An eventually consistent read first; a miss is read again strongly consistent, so
    /// a session opened a moment ago (in another container) is found, while the common
    /// case costs half a read unit.
    async fn find_by_hash(&self, hash: &str) -> Result<ApiKey, StoreError> {
        let item = match get_item(&self.client, &self.table, &[("hash", hash)], false).await? {
            Some(item) => item,
            None => get_item(&self.client, &self.table, &[("hash", hash)], true).await?.ok_or(StoreError::NotFound)?,
        };
        from_item::<ApiKeyItem>(item)?.key()
    }

    async fn list(&self, tenant: Option<&TenantId>, kind: CredentialKind) -> Result<Vec<ApiKey>, StoreError> {
        let (filter, value) = Self::kind_filter(kind);
        let items = match tenant {
            Some(t) => {
                let q = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(BY_TENANT)
                    .key_condition_expression("tenant = :t")
                    .filter_expression(filter)
                    .expression_attribute_names("#kind", "kind")
                    .expression_attribute_values(":t", s(t.as_str()))
                    .expression_attribute_values(":kind", s(value));
                query_all(q).await?.0
            }
            // Every tenant: the operator's view, over a table of keys and live links.
            None => {
                let mut items = Vec::new();
                let mut start = None;
                loop {
                    let out = self
                        .client
                        .scan()
                        .table_name(&self.table)
                        .filter_expression(filter)
                        .expression_attribute_names("#kind", "kind")
                        .expression_attribute_values(":kind", s(value.clone()))
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .map_err(|e| err("Scan", e))?;
                    items.extend(out.items.unwrap_or_default());
                    match out.last_evaluated_key {
                        Some(k) if !k.is_empty() => start = Some(k),
                        _ => break,
                    }
                }
                items
            }
        };
        let mut keys = items.into_iter().map(|i| from_item::<ApiKeyItem>(i)?.key()).collect::<Result<Vec<_>, _>>()?;
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        keys.truncate(MAX_LISTED_KEYS);
        Ok(keys)
    }

    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId, kind: CredentialKind) -> Result<ApiKey, StoreError> {
        let (filter, value) = Self::kind_filter(kind);
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_TENANT)
            .key_condition_expression("tenant = :t AND id = :id")
            .filter_expression(filter)
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":t", s(tenant.as_str()))
            .expression_attribute_values(":id", s(id.as_str()))
            .expression_attribute_values(":kind", s(value));
        let found = query_all(q).await?.0.into_iter().next().ok_or(StoreError::NotFound)?;
        let key = from_item::<ApiKeyItem>(found)?.key()?;
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("hash", s(&key.hash))
            .condition_expression("attribute_exists(#h)")
            .expression_attribute_names("#h", "hash")
            .send()
            .await;
        conditional(r, "DeleteItem", StoreError::NotFound)?;
        Ok(key)
    }

    async fn use_link(&self, hash: &str, now: Timestamp, keep_until: Timestamp) -> Result<ApiKey, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("hash", s(hash))
            .update_expression("SET used_at = :now, expires_at = :until, expires_after = :ttl")
            .condition_expression("attribute_exists(#h) AND #kind = :link AND attribute_not_exists(used_at) AND expires_at > :now")
            .expression_attribute_names("#h", "hash")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":now", n(to_micros(&now)))
            .expression_attribute_values(":until", n(to_micros(&keep_until)))
            .expression_attribute_values(":ttl", n(ttl_secs(&keep_until)))
            .expression_attribute_values(":link", s(CredentialKind::PortalLink.as_str()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match conditional(r, "UpdateItem", StoreError::Conflict) {
            Ok(out) => from_item::<ApiKeyItem>(out.attributes.unwrap_or_default())?.key(),
            Err(StoreError::Conflict) => match self.find_by_hash(hash).await {
                Ok(_) => Err(StoreError::Conflict),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
    }
}
