//! Webhooks: the table, and the storage's webhook port, which reads a tenant's webhooks
//! through a cache that every write of this process goes through (so it is exact).

use crate::db::Database;
use crate::sql::{after_bounds, is_unique_violation, micros_opt, ts_opt};
use crate::storage::SqliteStorage;
use async_trait::async_trait;
use hookline_domain::catalog::EventPattern;
use hookline_domain::ids::{TenantId, WebhookId};
use hookline_domain::page::{Cursor, Page, PageRequest};
use hookline_domain::ports::{StoreError, WebhookStore};
use hookline_domain::time::{from_micros, to_micros};
use hookline_domain::webhook::{EndpointUrl, Webhook};
use rusqlite::{Row, params};

/// The webhooks table. [`SqliteStorage`] reads it through a cache (see `storage.rs`),
/// which every write goes through as well.
pub(crate) struct WebhookTable {
    pub(crate) db: Database,
}

const WEBHOOK_COLUMNS: &str = "id, tenant, endpoint_url, listened_events, description, active, headers, created_at, updated_at, disabled_reason, disabled_at, failing_since, failed_deliveries, signatures, secrets, policy";

fn webhook_from_row(r: &Row<'_>) -> anyhow::Result<Webhook> {
    let events: Vec<String> = serde_json::from_str(&r.get::<_, String>(3)?)?;
    Ok(Webhook {
        id: WebhookId::parse(&r.get::<_, String>(0)?)?,
        tenant: TenantId::parse(&r.get::<_, String>(1)?)?,
        endpoint_url: EndpointUrl::parse_stored(&r.get::<_, String>(2)?)?,
        listened_events: events.iter().map(|e| EventPattern::parse_stored(e)).collect::<Result<_, _>>()?,
        description: r.get(4)?,
        active: r.get(5)?,
        headers: serde_json::from_str(&r.get::<_, String>(6)?)?,
        created_at: from_micros(r.get(7)?),
        updated_at: from_micros(r.get(8)?),
        disabled_reason: r.get(9)?,
        disabled_at: ts_opt(r.get(10)?),
        failing_since: ts_opt(r.get(11)?),
        failed_deliveries: r.get(12)?,
        signatures: serde_json::from_str(&r.get::<_, String>(13)?)?,
        secrets: serde_json::from_str(&r.get::<_, String>(14)?)?,
        policy: serde_json::from_str(&r.get::<_, String>(15)?)?,
    })
}

/// The JSON columns: listened events, headers, signature schemes, sealed secrets,
/// delivery policy.
fn webhook_params(w: &Webhook) -> anyhow::Result<(String, String, String, String, String)> {
    let events: Vec<String> = w.listened_events.iter().map(|p| p.to_string()).collect();
    Ok((
        serde_json::to_string(&events)?,
        serde_json::to_string(&w.headers)?,
        serde_json::to_string(&w.signatures)?,
        serde_json::to_string(&w.secrets)?,
        serde_json::to_string(&w.policy)?,
    ))
}

#[async_trait]
impl WebhookStore for WebhookTable {
    async fn insert(&self, w: &Webhook) -> Result<(), StoreError> {
        let w = w.clone();
        let (events, headers, signatures, secrets, policy) = webhook_params(&w)?;
        self.db
            .write(move |c| {
                let r = c.execute(
                    &format!(
                        "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
                    ),
                    params![
                        w.id.as_str(),
                        w.tenant.as_str(),
                        w.endpoint_url.as_str(),
                        events,
                        w.description,
                        w.active,
                        headers,
                        to_micros(&w.created_at),
                        to_micros(&w.updated_at),
                        w.disabled_reason,
                        micros_opt(&w.disabled_at),
                        micros_opt(&w.failing_since),
                        w.failed_deliveries,
                        signatures,
                        secrets,
                        policy
                    ],
                );
                match r {
                    Ok(_) => Ok(Ok(())),
                    Err(e) if is_unique_violation(&e) => Ok(Err(StoreError::Conflict)),
                    Err(e) => Err(e.into()),
                }
            })
            .await?
    }

    async fn get(&self, tenant: &TenantId, id: &WebhookId) -> Result<Webhook, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.db
            .read(move |c| {
                let mut st = c.prepare_cached(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1 AND tenant = ?2"))?;
                let mut rows = st.query(params![id.as_str(), tenant.as_str()])?;
                match rows.next()? {
                    Some(r) => Ok(Some(webhook_from_row(r)?)),
                    None => Ok(None),
                }
            })
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn update(&self, w: &Webhook) -> Result<(), StoreError> {
        let w = w.clone();
        let (events, headers, signatures, secrets, policy) = webhook_params(&w)?;
        let n = self
            .db
            .write(move |c| {
                Ok(c.execute(
                    "UPDATE webhooks SET endpoint_url = ?3, listened_events = ?4, description = ?5, active = ?6, headers = ?7,
                     updated_at = ?8, disabled_reason = ?9, disabled_at = ?10, failing_since = ?11, failed_deliveries = ?12,
                     signatures = ?13, secrets = ?14, policy = ?15
                     WHERE id = ?1 AND tenant = ?2",
                    params![
                        w.id.as_str(),
                        w.tenant.as_str(),
                        w.endpoint_url.as_str(),
                        events,
                        w.description,
                        w.active,
                        headers,
                        to_micros(&w.updated_at),
                        w.disabled_reason,
                        micros_opt(&w.disabled_at),
                        micros_opt(&w.failing_since),
                        w.failed_deliveries,
                        signatures,
                        secrets,
                        policy
                    ],
                )?)
            })
            .await?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn update_status(&self, w: &Webhook) -> Result<(), StoreError> {
        let w = w.clone();
        let n = self
            .db
            .write(move |c| {
                Ok(c.execute(
                    "UPDATE webhooks SET active = ?3, disabled_reason = ?4, disabled_at = ?5, failing_since = ?6, failed_deliveries = ?7
                     WHERE id = ?1 AND tenant = ?2",
                    params![
                        w.id.as_str(),
                        w.tenant.as_str(),
                        w.active,
                        w.disabled_reason,
                        micros_opt(&w.disabled_at),
                        micros_opt(&w.failing_since),
                        w.failed_deliveries
                    ],
                )?)
            })
            .await?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn delete(&self, tenant: &TenantId, id: &WebhookId) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        let n = self
            .db
            .write(move |c| {
                let n = c.execute("DELETE FROM webhooks WHERE id = ?1 AND tenant = ?2", params![id.as_str(), tenant.as_str()])?;
                // Its rate limit state and analytics go with it (on DynamoDB, TTLs take them).
                c.execute("DELETE FROM throttles WHERE webhook_id = ?1 AND tenant = ?2", params![id.as_str(), tenant.as_str()])?;
                c.execute("DELETE FROM analytics WHERE webhook_id = ?1 AND tenant = ?2", params![id.as_str(), tenant.as_str()])?;
                Ok(n)
            })
            .await?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Webhook>, StoreError> {
        let tenant = tenant.clone();
        let (micros, id) = after_bounds(page, false);
        let limit = page.limit;
        let items = self
            .db
            .read(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant = ?1 AND (created_at, id) > (?2, ?3)
                     ORDER BY created_at, id LIMIT ?4"
                ))?;
                let mut rows = st.query(params![tenant.as_str(), micros, id, limit + 1])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(webhook_from_row(r)?);
                }
                Ok(out)
            })
            .await?;
        Ok(Page::from_overfetch(items, limit, |w| Cursor { micros: to_micros(&w.created_at), id: w.id.to_string() }))
    }

    async fn list_active(&self, tenant: &TenantId) -> Result<Vec<Webhook>, StoreError> {
        let tenant = tenant.clone();
        Ok(self
            .db
            .read(move |c| {
                let mut st = c.prepare_cached(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant = ?1 AND active = 1"))?;
                let mut rows = st.query(params![tenant.as_str()])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(webhook_from_row(r)?);
                }
                Ok(out)
            })
            .await?)
    }
}

#[async_trait]
impl WebhookStore for SqliteStorage {
    async fn insert(&self, webhook: &Webhook) -> Result<(), StoreError> {
        self.shared.webhooks.insert(webhook).await
    }

    async fn get(&self, tenant: &TenantId, id: &WebhookId) -> Result<Webhook, StoreError> {
        self.shared.webhooks.get(tenant, id).await
    }

    async fn update(&self, webhook: &Webhook) -> Result<(), StoreError> {
        self.shared.webhooks.update(webhook).await
    }

    async fn update_status(&self, webhook: &Webhook) -> Result<(), StoreError> {
        self.shared.webhooks.update_status(webhook).await
    }

    async fn delete(&self, tenant: &TenantId, id: &WebhookId) -> Result<(), StoreError> {
        self.shared.webhooks.delete(tenant, id).await
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Webhook>, StoreError> {
        self.shared.webhooks.list(tenant, page).await
    }

    async fn list_active(&self, tenant: &TenantId) -> Result<Vec<Webhook>, StoreError> {
        self.shared.webhooks.list_active(tenant).await
    }
}
