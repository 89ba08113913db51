//! The webhooks table: [`DynamoDbWebhookStore`] and its item layout.

use super::{Item, conditional, corrupt, err, from_item, get_item, id_err, n, query_all, s, to_item};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use hookline_domain::catalog::EventPattern;
use hookline_domain::ids::{TenantId, WebhookId};
use hookline_domain::page::{Cursor, Page, PageRequest};
use hookline_domain::ports::{StoreError, WebhookStore};
use hookline_domain::time::{from_micros, to_micros};
use hookline_domain::webhook::{DeliveryPolicy, EndpointUrl, Scheme, SealedSecret, Webhook};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

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
    /// Absent on items written before signature schemes existed: the JWT alone.
    #[serde(default = "jwt_only")]
    signatures: Vec<Scheme>,
    /// Sealed by the secret box: no secret is readable in the table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    secrets: Vec<SecretItem>,
    /// The delivery policy as JSON; absent when it is the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
}

fn jwt_only() -> Vec<Scheme> {
    vec![Scheme::Jwt]
}

#[derive(Serialize, Deserialize)]
struct SecretItem {
    sealed: String,
    created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
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
            signatures: w.signatures.clone(),
            secrets: w
                .secrets
                .iter()
                .map(|s| SecretItem {
                    sealed: s.sealed.clone(),
                    created_at: to_micros(&s.created_at),
                    expires_at: s.expires_at.as_ref().map(to_micros),
                })
                .collect(),
            // Serializing a plain struct to a String cannot fail.
            policy: (w.policy != DeliveryPolicy::default()).then(|| serde_json::to_string(&w.policy).unwrap_or_default()),
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
            signatures: i.signatures,
            secrets: i
                .secrets
                .into_iter()
                .map(|s| SealedSecret {
                    sealed: s.sealed,
                    created_at: from_micros(s.created_at),
                    expires_at: s.expires_at.map(from_micros),
                })
                .collect(),
            policy: i.policy.map(|p| serde_json::from_str(&p)).transpose().map_err(corrupt)?.unwrap_or_default(),
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
