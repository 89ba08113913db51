//! Webhooks' rate limit state: one row per webhook, its JSON and its version. Local
//! mode is one process: its changes of one webhook's state run one at a time, so the
//! version check is a guard, not a race anybody loses. A row is as small as the
//! webhook's limits and goes when its webhook is deleted.

use crate::storage::SqliteStorage;
use async_trait::async_trait;
use hookline_domain::ids::{TenantId, WebhookId};
use hookline_domain::ports::{StoreError, ThrottleStore};
use hookline_domain::throttle::{MAX_TRIES, ThrottleState};
use rusqlite::{OptionalExtension, params};

impl SqliteStorage {
    async fn load_throttle(&self, tenant: &TenantId, webhook: &WebhookId) -> Result<(ThrottleState, i64), StoreError> {
        let (tenant, webhook) = (tenant.clone(), webhook.clone());
        let row: Option<(i64, String)> = self
            .shared
            .db
            .read(move |c| {
                Ok(c.prepare_cached("SELECT version, doc FROM throttles WHERE tenant = ?1 AND webhook_id = ?2")?
                    .query_row(params![tenant.as_str(), webhook.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?)
            })
            .await?;
        match row {
            None => Ok((ThrottleState::default(), 0)),
            Some((version, doc)) => {
                let state =
                    serde_json::from_str(&doc).map_err(|e| StoreError::Unknown(anyhow::anyhow!("malformed rate limit state: {e}")))?;
                Ok((state, version))
            }
        }
    }

    /// Writes `state` as the version after `expected` (0: none stored); `false` if the
    /// stored version is not `expected`.
    async fn save_throttle(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        state: &ThrottleState,
        expected: i64,
    ) -> Result<bool, StoreError> {
        let doc = serde_json::to_string(state).map_err(anyhow::Error::from)?;
        let (tenant, webhook) = (tenant.clone(), webhook.clone());
        let n = self
            .shared
            .db
            .write(move |c| {
                let (t, w, next) = (tenant.as_str(), webhook.as_str(), expected + 1);
                Ok(if expected == 0 {
                    c.execute(
                        "INSERT INTO throttles (tenant, webhook_id, version, doc) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                        params![t, w, next, doc],
                    )?
                } else {
                    c.execute(
                        "UPDATE throttles SET version = ?3, doc = ?4 WHERE tenant = ?1 AND webhook_id = ?2 AND version = ?5",
                        params![t, w, next, doc, expected],
                    )?
                })
            })
            .await?;
        Ok(n == 1)
    }
}

#[async_trait]
impl ThrottleStore for SqliteStorage {
    async fn update(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        change: &mut (dyn for<'s> FnMut(&'s mut ThrottleState) + Send),
    ) -> Result<(), StoreError> {
        let _one_at_a_time = self.shared.throttle_locks.lock(format!("{tenant}#{webhook}")).await;
        for _ in 0..MAX_TRIES {
            let (mut state, version) = self.load_throttle(tenant, webhook).await?;
            let before = state.clone();
            change(&mut state);
            if state == before || self.save_throttle(tenant, webhook, &state, version).await? {
                return Ok(());
            }
        }
        Err(StoreError::Unknown(anyhow::anyhow!("rate limit state of webhook {webhook} kept changing; tried {MAX_TRIES} times")))
    }
}
