//! In-memory stores: webhooks, events, deliveries (with the claim rules of
//! `DeliveryStore`), API keys, recoveries and analytics counters.

use super::*;

// ---------------------------------------------------------------- webhooks

/// Webhooks in a list, oldest first.
pub(crate) struct FakeWebhookStore {
    pub(super) calls: Arc<Calls>,
    pub(super) items: Mutex<Vec<Webhook>>,
}

impl FakeWebhookStore {
    /// Stores or replaces a webhook without a port call.
    pub(crate) fn put(&self, w: &Webhook) {
        let mut items = lock(&self.items);
        match items.iter_mut().find(|x| x.id == w.id) {
            Some(slot) => *slot = w.clone(),
            None => items.push(w.clone()),
        }
    }

    /// The stored webhook, if any.
    pub(crate) fn stored(&self, id: &WebhookId) -> Option<Webhook> {
        lock(&self.items).iter().find(|w| &w.id == id).cloned()
    }

    /// Deletes a webhook without a port call.
    pub(crate) fn remove(&self, id: &WebhookId) {
        lock(&self.items).retain(|w| &w.id != id);
    }
}

#[async_trait]
impl WebhookStore for FakeWebhookStore {
    async fn insert(&self, w: &Webhook) -> Result<(), StoreError> {
        self.calls.store(Op::WebhookInsert)?;
        let mut items = lock(&self.items);
        if items.iter().any(|x| x.id == w.id) {
            return Err(StoreError::Conflict);
        }
        items.push(w.clone());
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, id: &WebhookId) -> Result<Webhook, StoreError> {
        self.calls.store(Op::WebhookGet)?;
        lock(&self.items).iter().find(|w| &w.tenant == tenant && &w.id == id).cloned().ok_or(StoreError::NotFound)
    }

    async fn update(&self, w: &Webhook) -> Result<(), StoreError> {
        self.calls.store(Op::WebhookUpdate)?;
        let mut items = lock(&self.items);
        let slot = items.iter_mut().find(|x| x.tenant == w.tenant && x.id == w.id).ok_or(StoreError::NotFound)?;
        *slot = w.clone();
        Ok(())
    }

    async fn update_status(&self, w: &Webhook) -> Result<(), StoreError> {
        self.calls.store(Op::WebhookUpdateStatus)?;
        let mut items = lock(&self.items);
        let slot = items.iter_mut().find(|x| x.tenant == w.tenant && x.id == w.id).ok_or(StoreError::NotFound)?;
        slot.active = w.active;
        slot.disabled_reason = w.disabled_reason.clone();
        slot.disabled_at = w.disabled_at;
        slot.failing_since = w.failing_since;
        slot.failed_deliveries = w.failed_deliveries;
        Ok(())
    }

    async fn delete(&self, tenant: &TenantId, id: &WebhookId) -> Result<(), StoreError> {
        self.calls.store(Op::WebhookDelete)?;
        let mut items = lock(&self.items);
        let i = items.iter().position(|w| &w.tenant == tenant && &w.id == id).ok_or(StoreError::NotFound)?;
        items.remove(i);
        Ok(())
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Webhook>, StoreError> {
        self.calls.store(Op::WebhookList)?;
        let items: Vec<Webhook> = lock(&self.items).iter().filter(|w| &w.tenant == tenant).cloned().collect();
        Ok(page_of(items, page, false, |w| (to_micros(&w.created_at), w.id.to_string())))
    }

    async fn list_active(&self, tenant: &TenantId) -> Result<Vec<Webhook>, StoreError> {
        self.calls.store(Op::WebhookListActive)?;
        Ok(lock(&self.items).iter().filter(|w| &w.tenant == tenant && w.active).cloned().collect())
    }
}

// ---------------------------------------------------------------- events

/// Events and idempotency keys in maps.
pub(crate) struct FakeEventLog {
    pub(super) calls: Arc<Calls>,
    pub(super) events: Mutex<Vec<Event>>,
    pub(super) keys: Mutex<HashMap<(TenantId, String), (EventId, Timestamp)>>,
}

impl FakeEventLog {
    /// Stores an event without a port call.
    pub(crate) fn put(&self, e: &Event) {
        lock(&self.events).push(e.clone());
    }

    /// Deletes an event without a port call.
    pub(crate) fn remove(&self, id: &EventId) {
        lock(&self.events).retain(|e| &e.id != id);
    }
}

#[async_trait]
impl EventLog for FakeEventLog {
    async fn append(&self, event: &Event) -> Result<(), StoreError> {
        self.calls.store(Op::EventAppend)?;
        let mut events = lock(&self.events);
        if events.iter().any(|e| e.id == event.id) {
            return Err(StoreError::Conflict);
        }
        events.push(event.clone());
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, id: &EventId) -> Result<Event, StoreError> {
        self.calls.store(Op::EventGet)?;
        lock(&self.events).iter().find(|e| &e.tenant == tenant && &e.id == id).cloned().ok_or(StoreError::NotFound)
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Event>, StoreError> {
        self.calls.store(Op::EventList)?;
        let items: Vec<Event> = lock(&self.events).iter().filter(|e| &e.tenant == tenant).cloned().collect();
        Ok(page_of(items, page, true, |e| (to_micros(&e.created_at), e.id.to_string())))
    }

    async fn reserve_idempotency_key(&self, tenant: &TenantId, key: &str, event: &EventId, now: Timestamp) -> Result<EventId, StoreError> {
        self.calls.store(Op::ReserveIdempotencyKey)?;
        let expired_before = now - chrono::Duration::seconds(IDEMPOTENCY_WINDOW_SECS);
        let mut keys = lock(&self.keys);
        let slot = keys.entry((tenant.clone(), key.to_owned())).or_insert_with(|| (event.clone(), now));
        if slot.1 < expired_before {
            *slot = (event.clone(), now);
        }
        Ok(slot.0.clone())
    }
}

// ---------------------------------------------------------------- deliveries

pub(super) struct Row {
    pub(super) delivery: Delivery,
    /// Until when a worker holds the delivery ([`DeliveryStore::claim`]).
    pub(super) claimed_until: Option<Timestamp>,
}

#[derive(Default)]
pub(super) struct Deliveries {
    pub(super) rows: BTreeMap<DeliveryId, Row>,
    /// Every recorded attempt with its delivery's tenant and webhook, oldest first.
    pub(super) attempts: Vec<(TenantId, WebhookId, Attempt)>,
}

/// Deliveries, their claims and their attempts in maps.
pub(crate) struct FakeDeliveryStore {
    pub(super) calls: Arc<Calls>,
    pub(super) inner: Mutex<Deliveries>,
}

impl FakeDeliveryStore {
    /// Stores or replaces a delivery, unclaimed, without a port call.
    pub(crate) fn put(&self, d: &Delivery) {
        lock(&self.inner).rows.insert(d.id.clone(), Row { delivery: d.clone(), claimed_until: None });
    }

    /// The stored delivery, if any.
    pub(crate) fn stored(&self, id: &DeliveryId) -> Option<Delivery> {
        lock(&self.inner).rows.get(id).map(|r| r.delivery.clone())
    }

    /// Every stored delivery, by id.
    pub(crate) fn all(&self) -> Vec<Delivery> {
        lock(&self.inner).rows.values().map(|r| r.delivery.clone()).collect()
    }

    /// Until when the delivery is claimed, if it is.
    pub(crate) fn claimed_until(&self, id: &DeliveryId) -> Option<Timestamp> {
        lock(&self.inner).rows.get(id).and_then(|r| r.claimed_until)
    }

    /// Claims the delivery as another worker would, until `until`.
    pub(crate) fn hold(&self, id: &DeliveryId, until: Timestamp) {
        if let Some(r) = lock(&self.inner).rows.get_mut(id) {
            r.claimed_until = Some(until);
        }
    }

    /// The delivery's recorded attempts, oldest first.
    pub(crate) fn attempts_of(&self, id: &DeliveryId) -> Vec<Attempt> {
        lock(&self.inner).attempts.iter().filter(|(_, _, a)| &a.delivery_id == id).map(|(_, _, a)| a.clone()).collect()
    }

    /// Saves `d` over a stored delivery that has had `expected` attempts, releasing
    /// its claim; `Conflict` if there is none such.
    fn save(inner: &mut Deliveries, d: &Delivery, expected: u32) -> Result<(), StoreError> {
        match inner.rows.get_mut(&d.id) {
            Some(r) if r.delivery.tenant == d.tenant && r.delivery.attempts == expected => {
                r.delivery = d.clone();
                r.claimed_until = None;
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }
}

#[async_trait]
impl DeliveryStore for FakeDeliveryStore {
    async fn create(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        self.calls.store(Op::DeliveryCreate)?;
        let mut inner = lock(&self.inner);
        for d in deliveries {
            inner.rows.entry(d.id.clone()).or_insert_with(|| Row { delivery: d.clone(), claimed_until: None });
        }
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId) -> Result<Delivery, StoreError> {
        self.calls.store(Op::DeliveryGet)?;
        match lock(&self.inner).rows.get(id) {
            Some(r) if &r.delivery.tenant == tenant && &r.delivery.webhook_id == webhook => Ok(r.delivery.clone()),
            _ => Err(StoreError::NotFound),
        }
    }

    async fn list(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        self.calls.store(Op::DeliveryList)?;
        let items: Vec<Delivery> = lock(&self.inner)
            .rows
            .values()
            .map(|r| &r.delivery)
            .filter(|d| &d.tenant == tenant && &d.webhook_id == webhook && filter.lets_through(d))
            .cloned()
            .collect();
        Ok(page_of(items, page, true, |d| (to_micros(&d.created_at), d.id.to_string())))
    }

    async fn count(&self, tenant: &TenantId, webhook: &WebhookId, filter: &DeliveryFilter) -> Result<u64, StoreError> {
        self.calls.store(Op::DeliveryCount)?;
        let inner = lock(&self.inner);
        Ok(inner
            .rows
            .values()
            .filter(|r| &r.delivery.tenant == tenant && &r.delivery.webhook_id == webhook && filter.lets_through(&r.delivery))
            .count() as u64)
    }

    async fn attempts(&self, tenant: &TenantId, _webhook: &WebhookId, id: &DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        self.calls.store(Op::Attempts)?;
        let inner = lock(&self.inner);
        let mut out: Vec<Attempt> =
            inner.attempts.iter().filter(|(t, _, a)| t == tenant && &a.delivery_id == id).map(|(_, _, a)| a.clone()).collect();
        out.sort_by_key(|a| a.attempted_at);
        Ok(out)
    }

    async fn claim(&self, job: &Job, now: Timestamp, lease_until: Timestamp) -> Result<Claim, StoreError> {
        self.calls.store(Op::Claim)?;
        let mut inner = lock(&self.inner);
        let Some(r) = inner.rows.get_mut(&job.delivery_id) else { return Ok(Claim::Stale) };
        let d = &r.delivery;
        if d.tenant != job.tenant || (d.status != DeliveryStatus::Pending && !job.reopen) || d.attempts != job.attempts_before {
            return Ok(Claim::Stale);
        }
        if r.claimed_until.is_some_and(|until| until > now) {
            return Ok(Claim::Busy);
        }
        if job.reopen && r.delivery.status != DeliveryStatus::Pending {
            r.delivery.status = DeliveryStatus::Pending;
            r.delivery.next_attempt_at = Some(now);
        }
        r.claimed_until = Some(lease_until);
        Ok(Claim::Claimed(r.delivery.clone()))
    }

    async fn record_attempt(&self, delivery: &Delivery, attempt: &Attempt) -> Result<(), StoreError> {
        self.calls.store(Op::RecordAttempt)?;
        let mut inner = lock(&self.inner);
        let expected = delivery.attempts.checked_sub(1).ok_or(StoreError::Conflict)?;
        Self::save(&mut inner, delivery, expected)?;
        inner.attempts.push((delivery.tenant.clone(), delivery.webhook_id.clone(), attempt.clone()));
        Ok(())
    }

    async fn close(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.calls.store(Op::Close)?;
        Self::save(&mut lock(&self.inner), delivery, delivery.attempts)
    }

    async fn release(&self, tenant: &TenantId, _webhook: &WebhookId, id: &DeliveryId) -> Result<(), StoreError> {
        self.calls.store(Op::Release)?;
        if let Some(r) = lock(&self.inner).rows.get_mut(id).filter(|r| &r.delivery.tenant == tenant) {
            r.claimed_until = None;
        }
        Ok(())
    }

    async fn reopen(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId, now: Timestamp) -> Result<Delivery, StoreError> {
        self.calls.store(Op::Reopen)?;
        match lock(&self.inner).rows.get_mut(id) {
            Some(r) if &r.delivery.tenant == tenant && &r.delivery.webhook_id == webhook => {
                r.delivery.status = DeliveryStatus::Pending;
                r.delivery.next_attempt_at = Some(now);
                Ok(r.delivery.clone())
            }
            _ => Err(StoreError::NotFound),
        }
    }

    async fn attempt_stats(&self, tenant: &TenantId, webhook: &WebhookId, since: Timestamp) -> Result<AttemptStats, StoreError> {
        self.calls.store(Op::AttemptStats)?;
        let inner = lock(&self.inner);
        let made = inner.attempts.iter().filter(|(t, w, a)| t == tenant && w == webhook && a.attempted_at >= since);
        Ok(made.fold(AttemptStats::default(), |s, (_, _, a)| AttemptStats {
            total: s.total + 1,
            succeeded: s.succeeded + u64::from(a.succeeded()),
        }))
    }
}

// ---------------------------------------------------------------- keys

/// API keys in a list.
pub(crate) struct FakeApiKeyStore {
    pub(super) calls: Arc<Calls>,
    pub(super) keys: Mutex<Vec<ApiKey>>,
}

#[async_trait]
impl ApiKeyStore for FakeApiKeyStore {
    async fn insert(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.calls.store(Op::KeyInsert)?;
        let mut keys = lock(&self.keys);
        if keys.iter().any(|k| k.id == key.id || k.hash == key.hash) {
            return Err(StoreError::Conflict);
        }
        keys.push(key.clone());
        Ok(())
    }

    async fn find_by_hash(&self, hash: &str) -> Result<ApiKey, StoreError> {
        self.calls.store(Op::KeyFindByHash)?;
        lock(&self.keys).iter().find(|k| k.hash == hash).cloned().ok_or(StoreError::NotFound)
    }

    async fn list(&self, tenant: Option<&TenantId>, kind: CredentialKind) -> Result<Vec<ApiKey>, StoreError> {
        self.calls.store(Op::KeyList)?;
        let keys = lock(&self.keys);
        let mut found: Vec<ApiKey> = keys.iter().filter(|k| k.kind == kind && tenant.is_none_or(|t| &k.tenant == t)).cloned().collect();
        found.sort_by_key(|k| k.created_at);
        found.truncate(MAX_LISTED_KEYS);
        Ok(found)
    }

    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId, kind: CredentialKind) -> Result<ApiKey, StoreError> {
        self.calls.store(Op::KeyDelete)?;
        let mut keys = lock(&self.keys);
        let at = keys.iter().position(|k| &k.tenant == tenant && &k.id == id && k.kind == kind).ok_or(StoreError::NotFound)?;
        Ok(keys.remove(at))
    }

    async fn use_link(&self, hash: &str, now: Timestamp, keep_until: Timestamp) -> Result<ApiKey, StoreError> {
        self.calls.store(Op::KeyUseLink)?;
        let mut keys = lock(&self.keys);
        let k = keys.iter_mut().find(|k| k.hash == hash).ok_or(StoreError::NotFound)?;
        if k.kind != CredentialKind::PortalLink || k.used_at.is_some() || k.expired(now) {
            return Err(StoreError::Conflict);
        }
        k.used_at = Some(now);
        k.expires_at = Some(keep_until);
        Ok(k.clone())
    }
}

// ---------------------------------------------------------------- recoveries

/// Recoveries in a map.
pub(crate) struct FakeRecoveryStore {
    pub(super) calls: Arc<Calls>,
    pub(super) items: Mutex<HashMap<RecoveryId, Recovery>>,
}

#[async_trait]
impl RecoveryStore for FakeRecoveryStore {
    async fn insert(&self, recovery: &Recovery) -> Result<(), StoreError> {
        self.calls.store(Op::RecoveryInsert)?;
        let mut items = lock(&self.items);
        if items.contains_key(&recovery.id) {
            return Err(StoreError::Conflict);
        }
        items.insert(recovery.id.clone(), recovery.clone());
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, webhook: &WebhookId, id: &RecoveryId) -> Result<Recovery, StoreError> {
        self.calls.store(Op::RecoveryGet)?;
        match lock(&self.items).get(id) {
            Some(r) if &r.tenant == tenant && &r.webhook_id == webhook => Ok(r.clone()),
            _ => Err(StoreError::NotFound),
        }
    }

    async fn list(&self, tenant: &TenantId, webhook: &WebhookId) -> Result<Vec<Recovery>, StoreError> {
        self.calls.store(Op::RecoveryList)?;
        let mut found: Vec<Recovery> =
            lock(&self.items).values().filter(|r| &r.tenant == tenant && &r.webhook_id == webhook).cloned().collect();
        found.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        found.truncate(MAX_LISTED_RECOVERIES);
        Ok(found)
    }

    async fn save(&self, recovery: &Recovery, expected_steps: u32) -> Result<(), StoreError> {
        self.calls.store(Op::RecoverySave)?;
        let mut items = lock(&self.items);
        let stored = items.get_mut(&recovery.id).ok_or(StoreError::NotFound)?;
        if stored.steps != expected_steps {
            return Err(StoreError::Conflict);
        }
        *stored = recovery.clone();
        Ok(())
    }
}

// ---------------------------------------------------------------- analytics

/// Where a bucket of counters is: (tenant, webhook, hour in micros).
type BucketKey = (TenantId, WebhookId, i64);

/// Analytics counters: bucket → name → value.
pub(crate) struct FakeAnalyticsStore {
    pub(super) calls: Arc<Calls>,
    pub(super) buckets: Mutex<BTreeMap<BucketKey, BTreeMap<String, u64>>>,
}

#[async_trait]
impl AnalyticsStore for FakeAnalyticsStore {
    async fn add(&self, tenant: &TenantId, webhook: &WebhookId, hour: Timestamp, counters: &[(String, u64)]) -> Result<(), StoreError> {
        self.calls.store(Op::AnalyticsAdd)?;
        let mut buckets = lock(&self.buckets);
        let bucket = buckets.entry((tenant.clone(), webhook.clone(), to_micros(&hour))).or_default();
        for (name, n) in counters {
            let v = bucket.entry(name.clone()).or_default();
            *v = v.saturating_add(*n);
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
        self.calls.store(Op::AnalyticsRead)?;
        let (from, to) = (to_micros(&from), to_micros(&to));
        Ok(lock(&self.buckets)
            .iter()
            .filter(|((t, w, hour), _)| t == tenant && w == webhook && (from..to).contains(hour))
            .map(|((_, _, hour), counters)| (crate::time::from_micros(*hour), counters.clone()))
            .collect())
    }
}
