//! Read-through caches in front of the stores, for the reads every delivery repeats:
//! the event being delivered, the webhook it goes to, a tenant's active webhooks at
//! fan-out, and the caller's API key.
//!
//! - Events never change once stored, so [`CachedEventLog`] may keep them for as long
//!   as it likes (it keeps the most recent [`CachedEventLog::new`]'s `capacity`,
//!   counting the events it stores as well as those it reads).
//! - Webhooks change. [`CachedWebhookStore`] forgets a tenant's entries on every write
//!   made through it, so it is exact only when every writer goes through the same
//!   instance: local mode (one process) or one Lambda invocation. A read that raced a
//!   write is not cached (a generation counter tells).
//! - API keys are cached when found, for a time-to-live told by the [`Clock`] port;
//!   unknown keys are not cached.
//!
//! Local mode's process and every Lambda use them, so they sit beside the adapters,
//! not in the domain.

mod buffer;
mod locks;

pub use buffer::BufferedAnalytics;
pub use locks::KeyedLocks;

use async_trait::async_trait;
use hookline_domain::auth::{ApiKey, CredentialKind};
use hookline_domain::event::Event;
use hookline_domain::ids::{ApiKeyId, EventId, TenantId, WebhookId};
use hookline_domain::page::{Page, PageRequest};
use hookline_domain::ports::{ApiKeyStore, Clock, EventLog, StoreError, WebhookStore};
use hookline_domain::time::Timestamp;
use hookline_domain::webhook::Webhook;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A bounded map that forgets its oldest entries first: at most `capacity` entries,
/// whose weights add up to at most `max_weight` (the newest entry is kept whatever its
/// weight).
struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<(K, usize)>,
    capacity: usize,
    max_weight: usize,
    weight: usize,
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    fn new(capacity: usize) -> Self {
        Self::weighing(capacity, usize::MAX)
    }

    fn weighing(capacity: usize, max_weight: usize) -> Self {
        Bounded { map: HashMap::new(), order: VecDeque::new(), capacity: capacity.max(1), max_weight, weight: 0 }
    }

    fn get(&self, k: &K) -> Option<V> {
        self.map.get(k).cloned()
    }

    fn put(&mut self, k: K, v: V) {
        self.put_weighing(k, v, 0)
    }

    fn remove(&mut self, k: &K) {
        if self.map.remove(k).is_some()
            && let Some(at) = self.order.iter().position(|(o, _)| o == k)
            && let Some((_, w)) = self.order.remove(at)
        {
            self.weight -= w;
        }
    }

    fn put_weighing(&mut self, k: K, v: V, weight: usize) {
        if self.map.insert(k.clone(), v).is_none() {
            self.order.push_back((k, weight));
            self.weight = self.weight.saturating_add(weight);
            while self.order.len() > self.capacity || (self.weight > self.max_weight && self.order.len() > 1) {
                if let Some((old, w)) = self.order.pop_front() {
                    self.map.remove(&old);
                    self.weight -= w;
                }
            }
        }
    }
}

/// Most bytes of event documents a [`CachedEventLog`] keeps, whatever its capacity.
pub const EVENT_CACHE_MAX_BYTES: usize = 16 << 20;

/// What an event weighs in the cache: its document and the rest, roughly.
fn event_weight(e: &Event) -> usize {
    e.document.get().len() + 160
}

/// Events by (tenant, id), read through to `inner`.
pub struct CachedEventLog {
    inner: Arc<dyn EventLog>,
    events: Mutex<Bounded<(TenantId, EventId), Event>>,
}

impl CachedEventLog {
    /// Keeps up to `capacity` events, and at most [`EVENT_CACHE_MAX_BYTES`] of them.
    pub fn new(inner: Arc<dyn EventLog>, capacity: usize) -> Self {
        CachedEventLog { inner, events: Mutex::new(Bounded::weighing(capacity, EVENT_CACHE_MAX_BYTES)) }
    }

    /// Keeps an event just stored or read: its deliveries read it next (events never
    /// change).
    fn remember(&self, e: &Event) {
        if let Ok(mut m) = self.events.lock() {
            m.put_weighing((e.tenant.clone(), e.id.clone()), e.clone(), event_weight(e));
        }
    }
}

#[async_trait]
impl EventLog for CachedEventLog {
    async fn append(&self, event: &Event) -> Result<(), StoreError> {
        self.inner.append(event).await?;
        self.remember(event);
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, id: &EventId) -> Result<Event, StoreError> {
        let key = (tenant.clone(), id.clone());
        if let Some(e) = self.events.lock().ok().and_then(|m| m.get(&key)) {
            return Ok(e);
        }
        let e = self.inner.get(tenant, id).await?;
        self.remember(&e);
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

    /// The tenant's active webhooks, if they are cached: what
    /// [`WebhookStore::list_active`] would return, without a read. Local mode stores an
    /// event with its fan-out in one write when they are.
    pub fn active_at_hand(&self, tenant: &TenantId) -> Option<Arc<Vec<Webhook>>> {
        self.tenants.lock().ok().and_then(|t| t.get(tenant).and_then(|e| e.active.clone()))
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
        if let Some(a) = self.active_at_hand(tenant) {
            return Ok(a.as_ref().clone());
        }
        let active = self.inner.list_active(tenant).await?;
        self.keep(tenant, generation, |e| e.active = Some(Arc::new(active.clone())));
        Ok(active)
    }
}

/// How long local mode and the API Lambda keep an API key they looked up: a key
/// removed from the store keeps working for at most this long in each process or
/// container that used it.
pub const API_KEY_TTL: Duration = Duration::from_secs(60);
/// API keys each process or container keeps.
pub const API_KEY_CACHE: usize = 1024;

/// API keys found by hash, kept for `ttl`.
pub struct CachedApiKeys {
    inner: Arc<dyn ApiKeyStore>,
    clock: Arc<dyn Clock>,
    ttl: chrono::Duration,
    found: Mutex<Bounded<String, (Timestamp, ApiKey)>>,
}

impl CachedApiKeys {
    /// Keeps up to `capacity` keys, each for `ttl` after it was read, as `clock` tells.
    pub fn new(inner: Arc<dyn ApiKeyStore>, clock: Arc<dyn Clock>, ttl: Duration, capacity: usize) -> Self {
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        CachedApiKeys { inner, clock, ttl, found: Mutex::new(Bounded::new(capacity)) }
    }
}

#[async_trait]
impl ApiKeyStore for CachedApiKeys {
    async fn insert(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.inner.insert(key).await
    }

    async fn find_by_hash(&self, hash: &str) -> Result<ApiKey, StoreError> {
        let now = self.clock.now();
        if let Some((at, k)) = self.found.lock().ok().and_then(|m| m.get(&hash.to_owned()))
            && now - at < self.ttl
        {
            return Ok(k);
        }
        let k = self.inner.find_by_hash(hash).await?;
        if let Ok(mut m) = self.found.lock() {
            m.put(hash.to_owned(), (now, k.clone()));
        }
        Ok(k)
    }

    async fn list(&self, tenant: Option<&TenantId>, kind: CredentialKind) -> Result<Vec<ApiKey>, StoreError> {
        self.inner.list(tenant, kind).await
    }

    /// Forgets the removed credential here at once; other processes and containers
    /// keep it until their copy's time to live has passed.
    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId, kind: CredentialKind) -> Result<ApiKey, StoreError> {
        let gone = self.inner.delete(tenant, id, kind).await?;
        self.forget(&gone.hash);
        Ok(gone)
    }

    async fn use_link(&self, hash: &str, now: Timestamp, keep_until: Timestamp) -> Result<ApiKey, StoreError> {
        let r = self.inner.use_link(hash, now, keep_until).await;
        self.forget(hash);
        r
    }
}

impl CachedApiKeys {
    fn forget(&self, hash: &str) {
        if let Ok(mut m) = self.found.lock() {
            m.remove(&hash.to_owned());
        }
    }
}

#[cfg(test)]
mod tests;
