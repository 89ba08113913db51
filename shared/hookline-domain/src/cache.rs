//! Read-through caches in front of the stores, for the reads every delivery repeats:
//! the event being delivered, the webhook it goes to, a tenant's active webhooks at
//! fan-out, and the caller's API key.
//!
//! - Events never change once stored, so [`CachedEventLog`] may keep them for as long
//!   as it likes (it keeps the most recent [`CachedEventLog::new`]'s `capacity`).
//! - Webhooks change. [`CachedWebhookStore`] forgets a tenant's entries on every write
//!   made through it, so it is exact only when every writer goes through the same
//!   instance: local mode (one process) or one Lambda invocation. A read that raced a
//!   write is not cached (a generation counter tells).
//! - API keys are cached when found, for a time-to-live; unknown keys are not cached.

use crate::auth::ApiKey;
use crate::event::Event;
use crate::ids::{EventId, TenantId, WebhookId};
use crate::page::{Page, PageRequest};
use crate::ports::{ApiKeyStore, EventLog, StoreError, WebhookStore};
use crate::time::Timestamp;
use crate::webhook::Webhook;
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A bounded map that forgets its oldest entries first.
struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    fn new(capacity: usize) -> Self {
        Bounded { map: HashMap::new(), order: VecDeque::new(), capacity: capacity.max(1) }
    }

    fn get(&self, k: &K) -> Option<V> {
        self.map.get(k).cloned()
    }

    fn put(&mut self, k: K, v: V) {
        if self.map.insert(k.clone(), v).is_none() {
            self.order.push_back(k);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

/// Events by (tenant, id), read through to `inner`.
pub struct CachedEventLog {
    inner: Arc<dyn EventLog>,
    events: Mutex<Bounded<(TenantId, EventId), Event>>,
}

impl CachedEventLog {
    /// Keeps up to `capacity` events.
    pub fn new(inner: Arc<dyn EventLog>, capacity: usize) -> Self {
        CachedEventLog { inner, events: Mutex::new(Bounded::new(capacity)) }
    }
}

#[async_trait]
impl EventLog for CachedEventLog {
    async fn append(&self, event: &Event) -> Result<(), StoreError> {
        self.inner.append(event).await
    }

    async fn get(&self, tenant: &TenantId, id: &EventId) -> Result<Event, StoreError> {
        let key = (tenant.clone(), id.clone());
        if let Some(e) = self.events.lock().ok().and_then(|m| m.get(&key)) {
            return Ok(e);
        }
        let e = self.inner.get(tenant, id).await?;
        if let Ok(mut m) = self.events.lock() {
            m.put(key, e.clone());
        }
        Ok(e)
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Event>, StoreError> {
        self.inner.list(tenant, page).await
    }

    async fn reserve_idempotency_key(&self, tenant: &TenantId, key: &str, event: &EventId, now: Timestamp) -> Result<EventId, StoreError> {
        self.inner.reserve_idempotency_key(tenant, key, event, now).await
    }
}

#[derive(Default)]
struct TenantWebhooks {
    /// Bumped by every write; a read that started under an older value is not kept.
    generation: u64,
    active: Option<Arc<Vec<Webhook>>>,
    by_id: HashMap<WebhookId, Webhook>,
}

/// Webhooks read through to `inner`; see the module documentation for when it is exact.
pub struct CachedWebhookStore {
    inner: Arc<dyn WebhookStore>,
    tenants: Mutex<HashMap<TenantId, TenantWebhooks>>,
}

impl CachedWebhookStore {
    /// A cache in front of `inner`.
    pub fn new(inner: Arc<dyn WebhookStore>) -> Self {
        CachedWebhookStore { inner, tenants: Mutex::new(HashMap::new()) }
    }

    fn generation(&self, tenant: &TenantId) -> u64 {
        self.tenants.lock().map(|t| t.get(tenant).map(|w| w.generation).unwrap_or(0)).unwrap_or(0)
    }

    fn forget(&self, tenant: &TenantId) {
        if let Ok(mut t) = self.tenants.lock() {
            let entry = t.entry(tenant.clone()).or_default();
            entry.generation += 1;
            entry.active = None;
            entry.by_id.clear();
        }
    }

    /// Runs `f` on the tenant's entry if no write happened since `generation`.
    fn keep(&self, tenant: &TenantId, generation: u64, f: impl FnOnce(&mut TenantWebhooks)) {
        if let Ok(mut t) = self.tenants.lock() {
            let entry = t.entry(tenant.clone()).or_default();
            if entry.generation == generation {
                f(entry);
            }
        }
    }

    async fn write<T>(&self, tenant: &TenantId, op: impl std::future::Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        // Forgotten before and after: a read racing the write never keeps the old value.
        self.forget(tenant);
        let r = op.await;
        self.forget(tenant);
        r
    }
}

#[async_trait]
impl WebhookStore for CachedWebhookStore {
    async fn insert(&self, webhook: &Webhook) -> Result<(), StoreError> {
        self.write(&webhook.tenant, self.inner.insert(webhook)).await
    }

    async fn get(&self, tenant: &TenantId, id: &WebhookId) -> Result<Webhook, StoreError> {
        let generation = self.generation(tenant);
        if let Some(w) = self.tenants.lock().ok().and_then(|t| t.get(tenant).and_then(|e| e.by_id.get(id).cloned())) {
            return Ok(w);
        }
        let w = self.inner.get(tenant, id).await?;
        self.keep(tenant, generation, |e| {
            e.by_id.insert(id.clone(), w.clone());
        });
        Ok(w)
    }

    async fn update(&self, webhook: &Webhook) -> Result<(), StoreError> {
        self.write(&webhook.tenant, self.inner.update(webhook)).await
    }

    async fn update_status(&self, webhook: &Webhook) -> Result<(), StoreError> {
        self.write(&webhook.tenant, self.inner.update_status(webhook)).await
    }

    async fn delete(&self, tenant: &TenantId, id: &WebhookId) -> Result<(), StoreError> {
        self.write(tenant, self.inner.delete(tenant, id)).await
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Webhook>, StoreError> {
        self.inner.list(tenant, page).await
    }

    async fn list_active(&self, tenant: &TenantId) -> Result<Vec<Webhook>, StoreError> {
        let generation = self.generation(tenant);
        if let Some(a) = self.tenants.lock().ok().and_then(|t| t.get(tenant).and_then(|e| e.active.clone())) {
            return Ok(a.as_ref().clone());
        }
        let active = self.inner.list_active(tenant).await?;
        self.keep(tenant, generation, |e| e.active = Some(Arc::new(active.clone())));
        Ok(active)
    }
}

/// API keys found by hash, kept for `ttl`.
pub struct CachedApiKeys {
    inner: Arc<dyn ApiKeyStore>,
    ttl: Duration,
    found: Mutex<Bounded<String, (Instant, ApiKey)>>,
}

impl CachedApiKeys {
    /// Keeps up to `capacity` keys, each for `ttl` after it was read.
    pub fn new(inner: Arc<dyn ApiKeyStore>, ttl: Duration, capacity: usize) -> Self {
        CachedApiKeys { inner, ttl, found: Mutex::new(Bounded::new(capacity)) }
    }
}

#[async_trait]
impl ApiKeyStore for CachedApiKeys {
    async fn insert(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.inner.insert(key).await
    }

    async fn find_by_hash(&self, hash: &str) -> Result<ApiKey, StoreError> {
        if let Some((at, k)) = self.found.lock().ok().and_then(|m| m.get(&hash.to_owned()))
            && at.elapsed() < self.ttl
        {
            return Ok(k);
        }
        let k = self.inner.find_by_hash(hash).await?;
        if let Ok(mut m) = self.found.lock() {
            m.put(hash.to_owned(), (Instant::now(), k.clone()));
        }
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::EventCatalog;
    use crate::webhook::{EndpointPolicy, WebhookInput};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An in-memory webhook store that counts reads.
    #[derive(Default)]
    struct Fake {
        webhooks: Mutex<Vec<Webhook>>,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl WebhookStore for Fake {
        async fn insert(&self, w: &Webhook) -> Result<(), StoreError> {
            self.webhooks.lock().unwrap().push(w.clone());
            Ok(())
        }
        async fn get(&self, tenant: &TenantId, id: &WebhookId) -> Result<Webhook, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.webhooks.lock().unwrap().iter().find(|w| &w.tenant == tenant && &w.id == id).cloned().ok_or(StoreError::NotFound)
        }
        async fn update(&self, w: &Webhook) -> Result<(), StoreError> {
            let mut all = self.webhooks.lock().unwrap();
            let slot = all.iter_mut().find(|x| x.id == w.id).ok_or(StoreError::NotFound)?;
            *slot = w.clone();
            Ok(())
        }
        async fn update_status(&self, w: &Webhook) -> Result<(), StoreError> {
            self.update(w).await
        }
        async fn delete(&self, _: &TenantId, id: &WebhookId) -> Result<(), StoreError> {
            self.webhooks.lock().unwrap().retain(|w| &w.id != id);
            Ok(())
        }
        async fn list(&self, _: &TenantId, _: &PageRequest) -> Result<Page<Webhook>, StoreError> {
            Err(StoreError::NotFound)
        }
        async fn list_active(&self, tenant: &TenantId) -> Result<Vec<Webhook>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(self.webhooks.lock().unwrap().iter().filter(|w| &w.tenant == tenant && w.active).cloned().collect())
        }
    }

    fn webhook(tenant: &TenantId) -> Webhook {
        let input = WebhookInput {
            endpoint_url: "https://hooks.example.com/in".into(),
            listened_events: vec!["project.updated".into()],
            description: None,
            active: None,
            headers: None,
        };
        Webhook::create(tenant.clone(), input, &EventCatalog::builtin(), &EndpointPolicy::default(), chrono::Utc::now()).unwrap()
    }

    #[tokio::test]
    async fn webhook_reads_are_cached_until_a_write_of_the_same_tenant() {
        let fake = Arc::new(Fake::default());
        let cache = CachedWebhookStore::new(fake.clone());
        let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
        let mut w = webhook(&a);
        cache.insert(&w).await.unwrap();
        cache.insert(&webhook(&b)).await.unwrap();
        assert_eq!(cache.list_active(&a).await.unwrap().len(), 1);
        assert_eq!(cache.list_active(&a).await.unwrap().len(), 1);
        assert_eq!(cache.get(&a, &w.id).await.unwrap().id, w.id);
        assert_eq!(cache.get(&a, &w.id).await.unwrap().id, w.id);
        assert_eq!(fake.reads.load(Ordering::SeqCst), 2, "one read each for the list and the webhook");

        // Another tenant's write leaves tenant a's entries alone.
        cache.insert(&webhook(&b)).await.unwrap();
        cache.list_active(&a).await.unwrap();
        assert_eq!(fake.reads.load(Ordering::SeqCst), 2);

        // Disabling is seen at once by both reads.
        w.active = false;
        cache.update_status(&w).await.unwrap();
        assert!(cache.list_active(&a).await.unwrap().is_empty());
        assert!(!cache.get(&a, &w.id).await.unwrap().active);
        cache.delete(&a, &w.id).await.unwrap();
        assert!(matches!(cache.get(&a, &w.id).await, Err(StoreError::NotFound)));
    }
}
