//! Analytics counters: one row per (webhook, hour, counter name), added to in place.

use crate::storage::SqliteStorage;
use async_trait::async_trait;
use hookline_domain::ids::{TenantId, WebhookId};
use hookline_domain::ports::{AnalyticsStore, StoreError};
use hookline_domain::time::{Timestamp, from_micros, to_micros};
use rusqlite::params;
use std::collections::BTreeMap;

#[async_trait]
impl AnalyticsStore for SqliteStorage {
    async fn add(&self, tenant: &TenantId, webhook: &WebhookId, hour: Timestamp, counters: &[(String, u64)]) -> Result<(), StoreError> {
        if counters.is_empty() {
            return Ok(());
        }
        let (tenant, webhook, hour, counters) = (tenant.clone(), webhook.clone(), to_micros(&hour), counters.to_vec());
        self.shared
            .db
            .write(move |c| {
                let mut st = c.prepare_cached(
                    "INSERT INTO analytics (tenant, webhook_id, hour, name, value) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (tenant, webhook_id, hour, name) DO UPDATE SET value = value + excluded.value",
                )?;
                for (name, n) in &counters {
                    // SQLite integers are signed: a count past i64::MAX (never reached) stops there.
                    st.execute(params![tenant.as_str(), webhook.as_str(), hour, name, i64::try_from(*n).unwrap_or(i64::MAX)])?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn read(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Timestamp, BTreeMap<String, u64>)>, StoreError> {
        let (tenant, webhook, from, to) = (tenant.clone(), webhook.clone(), to_micros(&from), to_micros(&to));
        let rows: Vec<(i64, String, i64)> = self
            .shared
            .db
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT hour, name, value FROM analytics
                     WHERE tenant = ?1 AND webhook_id = ?2 AND hour >= ?3 AND hour < ?4 ORDER BY hour",
                )?;
                let rows = st.query_map(params![tenant.as_str(), webhook.as_str(), from, to], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        let mut buckets: Vec<(Timestamp, BTreeMap<String, u64>)> = Vec::new();
        for (hour, name, value) in rows {
            let hour = from_micros(hour);
            if buckets.last().is_none_or(|(h, _)| *h != hour) {
                buckets.push((hour, BTreeMap::new()));
            }
            if let Some((_, counters)) = buckets.last_mut() {
                counters.insert(name, u64::try_from(value).unwrap_or(0));
            }
        }
        Ok(buckets)
    }
}
