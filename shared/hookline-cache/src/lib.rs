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

use async_trait::async_trait;
use hookline_domain::auth::ApiKey;
use hookline_domain::event::Event;
use hookline_domain::ids::{EventId, TenantId, WebhookId};
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_domain::catalog::EventCatalog;
    use hookline_domain::webhook::{EndpointPolicy, WebhookInput};
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
            signatures: None,
            secret: None,
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
        assert!(cache.active_at_hand(&a).is_none(), "not read yet");
        assert_eq!(cache.list_active(&a).await.unwrap().len(), 1);
        assert_eq!(cache.list_active(&a).await.unwrap().len(), 1);
        assert_eq!(cache.active_at_hand(&a).map(|v| v.len()), Some(1), "at hand once read");
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
        assert!(cache.active_at_hand(&a).is_none(), "forgotten on a write");
        assert!(cache.list_active(&a).await.unwrap().is_empty());
        assert!(!cache.get(&a, &w.id).await.unwrap().active);
        cache.delete(&a, &w.id).await.unwrap();
        assert!(matches!(cache.get(&a, &w.id).await, Err(StoreError::NotFound)));
    }

    /// An in-memory event log that counts reads.
    #[derive(Default)]
    struct Events {
        events: Mutex<Vec<Event>>,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl EventLog for Events {
        async fn append(&self, e: &Event) -> Result<(), StoreError> {
            let mut all = self.events.lock().unwrap();
            if all.iter().any(|x| x.id == e.id) {
                return Err(StoreError::Conflict);
            }
            all.push(e.clone());
            Ok(())
        }
        async fn get(&self, tenant: &TenantId, id: &EventId) -> Result<Event, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.events.lock().unwrap().iter().find(|e| &e.tenant == tenant && &e.id == id).cloned().ok_or(StoreError::NotFound)
        }
        async fn list(&self, _: &TenantId, _: &PageRequest) -> Result<Page<Event>, StoreError> {
            Err(StoreError::NotFound)
        }
        async fn reserve_idempotency_key(&self, _: &TenantId, _: &str, e: &EventId, _: Timestamp) -> Result<EventId, StoreError> {
            Ok(e.clone())
        }
    }

    fn event(tenant: &TenantId, padding: usize) -> Event {
        let data = format!(r#"{{"subject_type":"project","event_type":"UPDATED","pad":"{}"}}"#, "x".repeat(padding));
        Event::from_parts(tenant.clone(), EventId::generate(), chrono::Utc::now(), &data).unwrap()
    }

    #[tokio::test]
    async fn an_event_appended_through_the_cache_is_read_back_without_a_store_read() {
        let inner = Arc::new(Events::default());
        let cache = CachedEventLog::new(inner.clone(), 8);
        let a = TenantId::parse("a").unwrap();
        let e = event(&a, 10);
        cache.append(&e).await.unwrap();
        assert_eq!(cache.get(&a, &e.id).await.unwrap(), e);
        assert_eq!(inner.reads.load(Ordering::SeqCst), 0);
        // Another tenant does not see it, even in the cache.
        let b = TenantId::parse("b").unwrap();
        assert!(matches!(cache.get(&b, &e.id).await, Err(StoreError::NotFound)));
        // A refused append caches nothing.
        let other = CachedEventLog::new(inner.clone(), 8);
        assert!(matches!(other.append(&e).await, Err(StoreError::Conflict)));
        other.get(&a, &e.id).await.unwrap();
        assert_eq!(inner.reads.load(Ordering::SeqCst), 2, "the refused append was not cached");
    }

    #[tokio::test]
    async fn the_event_cache_keeps_its_count_and_its_byte_budget() {
        let inner = Arc::new(Events::default());
        let a = TenantId::parse("a").unwrap();
        let counted = CachedEventLog::new(inner.clone(), 3);
        let small: Vec<Event> = (0..4).map(|_| event(&a, 10)).collect();
        for e in &small {
            counted.append(e).await.unwrap();
        }
        for e in &small[1..] {
            counted.get(&a, &e.id).await.unwrap();
        }
        assert_eq!(inner.reads.load(Ordering::SeqCst), 0, "the three newest are kept");
        counted.get(&a, &small[0].id).await.unwrap();
        assert_eq!(inner.reads.load(Ordering::SeqCst), 1, "the oldest was forgotten");

        // Events of a third of the byte budget each: only the newest few fit, however
        // many the count allows.
        let weighed = CachedEventLog::new(inner.clone(), 1000);
        let big: Vec<Event> = (0..5).map(|_| event(&a, EVENT_CACHE_MAX_BYTES / 3)).collect();
        for e in &big {
            weighed.append(e).await.unwrap();
        }
        let before = inner.reads.load(Ordering::SeqCst);
        for e in &big[3..] {
            weighed.get(&a, &e.id).await.unwrap();
        }
        assert_eq!(inner.reads.load(Ordering::SeqCst), before, "the two newest are kept");
        weighed.get(&a, &big[2].id).await.unwrap();
        assert_eq!(inner.reads.load(Ordering::SeqCst), before + 1, "the third newest would pass the budget");
        assert!(weighed.events.lock().unwrap().weight <= EVENT_CACHE_MAX_BYTES);
        // One event larger than the whole budget is still kept, alone.
        let huge = event(&a, EVENT_CACHE_MAX_BYTES + 1);
        weighed.append(&huge).await.unwrap();
        assert_eq!(weighed.events.lock().unwrap().order.len(), 1);
    }

    /// A clock the test moves by hand.
    struct TestClock(Mutex<Timestamp>);

    impl Clock for TestClock {
        fn now(&self) -> Timestamp {
            *self.0.lock().expect("clock")
        }
    }

    /// An API key store that counts reads.
    #[derive(Default)]
    struct Keys {
        keys: Mutex<Vec<ApiKey>>,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl ApiKeyStore for Keys {
        async fn insert(&self, k: &ApiKey) -> Result<(), StoreError> {
            self.keys.lock().expect("keys").push(k.clone());
            Ok(())
        }
        async fn find_by_hash(&self, hash: &str) -> Result<ApiKey, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.keys.lock().expect("keys").iter().find(|k| k.hash == hash).cloned().ok_or(StoreError::NotFound)
        }
    }

    #[tokio::test]
    async fn an_api_key_is_kept_for_its_time_to_live_and_unknown_keys_are_not_kept() {
        let start = chrono::Utc::now();
        let clock = Arc::new(TestClock(Mutex::new(start)));
        let store = Arc::new(Keys::default());
        let cache = CachedApiKeys::new(store.clone(), clock.clone(), Duration::from_secs(60), 16);
        let secret = hookline_domain::auth::ApiKeySecret::generate();
        let key = ApiKey {
            id: hookline_domain::ids::ApiKeyId::generate(),
            tenant: TenantId::default_tenant(),
            scopes: vec![hookline_domain::auth::Scope::EventsWrite],
            description: None,
            created_at: start,
            hash: secret.hash(),
        };
        cache.insert(&key).await.expect("insert");
        assert!(matches!(cache.find_by_hash("unknown").await, Err(StoreError::NotFound)));
        assert!(matches!(cache.find_by_hash("unknown").await, Err(StoreError::NotFound)));
        assert_eq!(store.reads.load(Ordering::SeqCst), 2, "an unknown key is looked up every time");
        for _ in 0..3 {
            assert_eq!(cache.find_by_hash(&key.hash).await.expect("found").id, key.id);
        }
        assert_eq!(store.reads.load(Ordering::SeqCst), 3, "a found key is read once");
        *clock.0.lock().expect("clock") = start + chrono::Duration::seconds(59);
        cache.find_by_hash(&key.hash).await.expect("found");
        assert_eq!(store.reads.load(Ordering::SeqCst), 3, "still within its time to live");
        *clock.0.lock().expect("clock") = start + chrono::Duration::seconds(60);
        cache.find_by_hash(&key.hash).await.expect("found");
        assert_eq!(store.reads.load(Ordering::SeqCst), 4, "read again once its time to live has passed");
    }
}
