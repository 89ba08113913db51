//! Analytics adds held back and merged: [`BufferedAnalytics`].

use async_trait::async_trait;
use hookline_domain::ids::{TenantId, WebhookId};
use hookline_domain::ports::{AnalyticsStore, StoreError};
use hookline_domain::time::Timestamp;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

type Key = (TenantId, WebhookId, Timestamp);

/// Holds the analytics adds of a batch of work and writes them, merged per webhook and
/// hour, on [`BufferedAnalytics::flush`]: a sender Lambda's batch of ten attempts to one
/// webhook is one write to the store instead of ten. Reads go straight to the store
/// (they do not see what is held).
pub struct BufferedAnalytics {
    inner: Arc<dyn AnalyticsStore>,
    held: Mutex<BTreeMap<Key, BTreeMap<String, u64>>>,
}

impl BufferedAnalytics {
    /// A buffer in front of `inner`.
    pub fn new(inner: Arc<dyn AnalyticsStore>) -> Self {
        BufferedAnalytics { inner, held: Mutex::default() }
    }

    /// Writes what is held, one add per webhook and hour; returns the adds that failed
    /// (their counts are lost, as a failed add's are).
    pub async fn flush(&self) -> Vec<(WebhookId, StoreError)> {
        let held = std::mem::take(&mut *self.held.lock().unwrap_or_else(PoisonError::into_inner));
        let adds = held.into_iter().map(|((tenant, webhook, hour), counters)| async move {
            let counters: Vec<(String, u64)> = counters.into_iter().collect();
            self.inner.add(&tenant, &webhook, hour, &counters).await.err().map(|e| (webhook, e))
        });
        futures::future::join_all(adds).await.into_iter().flatten().collect()
    }
}

#[async_trait]
impl AnalyticsStore for BufferedAnalytics {
    async fn add(&self, tenant: &TenantId, webhook: &WebhookId, hour: Timestamp, counters: &[(String, u64)]) -> Result<(), StoreError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = held.entry((tenant.clone(), webhook.clone(), hour)).or_default();
        for (name, n) in counters {
            *bucket.entry(name.clone()).or_default() += n;
        }
        Ok(())
    }

    async fn read(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Timestamp, BTreeMap<String, u64>)>, StoreError> {
        self.inner.read(tenant, webhook, from, to).await
    }
}
