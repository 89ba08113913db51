use super::*;
use hookline_domain::catalog::EventCatalog;
use hookline_domain::webhook::{EndpointPolicy, WebhookInput};
use std::collections::BTreeMap;
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
        policy: Default::default(),
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
    async fn list(&self, _: Option<&TenantId>, _: CredentialKind) -> Result<Vec<ApiKey>, StoreError> {
        Ok(self.keys.lock().expect("keys").clone())
    }
    async fn delete(&self, _: &TenantId, id: &ApiKeyId, _: CredentialKind) -> Result<ApiKey, StoreError> {
        let mut keys = self.keys.lock().expect("keys");
        let at = keys.iter().position(|k| &k.id == id).ok_or(StoreError::NotFound)?;
        Ok(keys.remove(at))
    }
    async fn use_link(&self, _: &str, _: Timestamp, _: Timestamp) -> Result<ApiKey, StoreError> {
        Err(StoreError::Conflict)
    }
}

#[tokio::test]
async fn an_api_key_is_kept_for_its_time_to_live_and_unknown_keys_are_not_kept() {
    let start = chrono::Utc::now();
    let clock = Arc::new(TestClock(Mutex::new(start)));
    let store = Arc::new(Keys::default());
    let cache = CachedApiKeys::new(store.clone(), clock.clone(), Duration::from_secs(60), 16);
    let secret = hookline_domain::auth::ApiKeySecret::generate();
    let key = ApiKey::key(
        ApiKeyId::generate(),
        TenantId::default_tenant(),
        vec![hookline_domain::auth::Scope::EventsWrite],
        None,
        start,
        secret.hash(),
    );
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
    cache.delete(&key.tenant, &key.id, CredentialKind::Key).await.expect("delete");
    assert!(matches!(cache.find_by_hash(&key.hash).await, Err(StoreError::NotFound)), "a deleted key is forgotten at once here");
}

/// One add: where, which hour, what.
type Add = (WebhookId, Timestamp, Vec<(String, u64)>);

/// An analytics store that keeps every add it is given.
#[derive(Default)]
struct Adds(Mutex<Vec<Add>>);

#[async_trait]
impl hookline_domain::ports::AnalyticsStore for Adds {
    async fn add(&self, _: &TenantId, webhook: &WebhookId, hour: Timestamp, counters: &[(String, u64)]) -> Result<(), StoreError> {
        self.0.lock().unwrap().push((webhook.clone(), hour, counters.to_vec()));
        Ok(())
    }
    async fn read(
        &self,
        _: &TenantId,
        _: &WebhookId,
        _: Timestamp,
        _: Timestamp,
    ) -> Result<Vec<(Timestamp, BTreeMap<String, u64>)>, StoreError> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn buffered_analytics_write_once_per_webhook_and_hour_with_the_sums() {
    use hookline_domain::ports::AnalyticsStore;
    let store = Arc::new(Adds::default());
    let buffer = BufferedAnalytics::new(store.clone());
    let tenant = TenantId::default_tenant();
    let (a, b) = (WebhookId::generate(), WebhookId::generate());
    let h0 = chrono::Utc::now();
    let h1 = h0 + chrono::Duration::hours(1);
    let c = |pairs: &[(&str, u64)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect::<Vec<_>>();
    for _ in 0..10 {
        buffer.add(&tenant, &a, h0, &c(&[("a_2xx", 1), ("l_20", 1)])).await.unwrap();
    }
    buffer.add(&tenant, &a, h1, &c(&[("a_5xx", 1)])).await.unwrap();
    buffer.add(&tenant, &b, h0, &c(&[("a_2xx", 2)])).await.unwrap();
    assert!(store.0.lock().unwrap().is_empty(), "nothing written before the flush");
    assert!(buffer.flush().await.is_empty());
    let mut written = store.0.lock().unwrap().clone();
    written.sort_by_key(|(w, h, _)| (w.to_string(), *h));
    let mut want =
        vec![(a.clone(), h0, c(&[("a_2xx", 10), ("l_20", 10)])), (a.clone(), h1, c(&[("a_5xx", 1)])), (b.clone(), h0, c(&[("a_2xx", 2)]))];
    want.sort_by_key(|(w, h, _)| (w.to_string(), *h));
    assert_eq!(written, want);
    assert!(buffer.flush().await.is_empty() && store.0.lock().unwrap().len() == 3, "a second flush writes nothing again");
}
