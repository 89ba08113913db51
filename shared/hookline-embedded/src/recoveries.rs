//! Recoveries: each kept whole as JSON, beside the keys it is found by.

use crate::sql::is_unique_violation;
use crate::storage::SqliteStorage;
use async_trait::async_trait;
use hookline_domain::ids::{RecoveryId, TenantId, WebhookId};
use hookline_domain::ports::{MAX_LISTED_RECOVERIES, RecoveryStore, StoreError};
use hookline_domain::recovery::Recovery;
use hookline_domain::time::to_micros;
use rusqlite::{OptionalExtension, params};

fn read(doc: &str) -> Result<Recovery, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Unknown(anyhow::anyhow!("malformed recovery: {e}")))
}

#[async_trait]
impl RecoveryStore for SqliteStorage {
    async fn insert(&self, r: &Recovery) -> Result<(), StoreError> {
        let doc = serde_json::to_string(r).map_err(anyhow::Error::from)?;
        let r = r.clone();
        self.shared
            .db
            .write(move |c| {
                let done = c.execute(
                    "INSERT INTO recoveries (id, tenant, webhook_id, created_at, steps, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![r.id.as_str(), r.tenant.as_str(), r.webhook_id.as_str(), to_micros(&r.created_at), r.steps, doc],
                );
                match done {
                    Ok(_) => Ok(Ok(())),
                    Err(e) if is_unique_violation(&e) => Ok(Err(StoreError::Conflict)),
                    Err(e) => Err(e.into()),
                }
            })
            .await?
    }

    async fn get(&self, tenant: &TenantId, webhook: &WebhookId, id: &RecoveryId) -> Result<Recovery, StoreError> {
        let (tenant, webhook, id) = (tenant.clone(), webhook.clone(), id.clone());
        let doc: Option<String> = self
            .shared
            .db
            .read(move |c| {
                Ok(c.prepare_cached("SELECT doc FROM recoveries WHERE id = ?1 AND tenant = ?2 AND webhook_id = ?3")?
                    .query_row(params![id.as_str(), tenant.as_str(), webhook.as_str()], |r| r.get(0))
                    .optional()?)
            })
            .await?;
        read(&doc.ok_or(StoreError::NotFound)?)
    }

    async fn list(&self, tenant: &TenantId, webhook: &WebhookId) -> Result<Vec<Recovery>, StoreError> {
        let (tenant, webhook) = (tenant.clone(), webhook.clone());
        let docs: Vec<String> = self
            .shared
            .db
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT doc FROM recoveries WHERE tenant = ?1 AND webhook_id = ?2 ORDER BY created_at DESC, id DESC LIMIT ?3",
                )?;
                let rows = st.query_map(params![tenant.as_str(), webhook.as_str(), MAX_LISTED_RECOVERIES as i64], |r| r.get(0))?;
                Ok(rows.collect::<Result<Vec<String>, _>>()?)
            })
            .await?;
        docs.iter().map(|d| read(d)).collect()
    }

    async fn save(&self, r: &Recovery, expected_steps: u32) -> Result<(), StoreError> {
        let doc = serde_json::to_string(r).map_err(anyhow::Error::from)?;
        let r = r.clone();
        self.shared
            .db
            .write(move |c| {
                let n = c.execute(
                    "UPDATE recoveries SET steps = ?4, doc = ?5 WHERE id = ?1 AND tenant = ?2 AND webhook_id = ?3 AND steps = ?6",
                    params![r.id.as_str(), r.tenant.as_str(), r.webhook_id.as_str(), r.steps, doc, expected_steps],
                )?;
                if n == 1 {
                    return Ok(Ok(()));
                }
                let exists: bool = c.query_row("SELECT COUNT(*) > 0 FROM recoveries WHERE id = ?1", [r.id.as_str()], |row| row.get(0))?;
                Ok(Err(if exists { StoreError::Conflict } else { StoreError::NotFound }))
            })
            .await?
    }
}
