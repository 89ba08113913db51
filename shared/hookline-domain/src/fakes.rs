//! In-memory fakes of every port, for the domain's own unit tests: the stores keep
//! their contents in maps behind a mutex and honour each method's documented contract
//! (the delivery store's claim, record, close and release included), the HTTP client
//! answers from a script and keeps every request, and the signer returns fixed bytes.
//!
//! Every fake of one set logs each port call, in order, to one shared [`Calls`], so a
//! test can check the order of writes across ports (a retry queued before its attempt
//! is recorded). A failure can be injected into the next call of any method with
//! [`Fakes::fail_next`]. Time is a [`ManualClock`], which the HTTP fake moves forward
//! by each answer's `elapsed`, as a real exchange takes time.

use crate::auth::ApiKey;
use crate::catalog::EventName;
use crate::delivery::{Attempt, Claim, Delivery, DeliveryStatus, Job};
use crate::event::Event;
use crate::ids::{DeliveryId, EventId, TenantId, WebhookId};
use crate::jwt::Jwk;
use crate::page::{Cursor, Page, PageRequest};
use crate::ports::{
    ApiKeyStore, AttemptStats, Clock, DeliveryQueue, DeliveryStore, EventLog, HttpClient, HttpOutcome, IDEMPOTENCY_WINDOW_SECS, Leased,
    ManualClock, OutboundRequest, QueueError, SignError, Signer, StoreError, WebhookStore,
};
use crate::time::{Timestamp, to_micros};
use crate::webhook::{EndpointPolicy, Webhook, WebhookInput};
use crate::{Hookline, Policy};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Where every fake clock starts unless told otherwise: 2026-11-23T10:00:00Z.
pub(crate) fn start() -> Timestamp {
    crate::time::from_micros(1_795_428_000_000_000)
}

/// A test that failed while holding a fake's lock leaves consistent contents behind
/// (each method changes them only once it cannot fail), so a poisoned lock is used.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A port method, as the fakes log calls and take injected failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    WebhookInsert,
    WebhookGet,
    WebhookUpdate,
    WebhookUpdateStatus,
    WebhookDelete,
    WebhookList,
    WebhookListActive,
    EventAppend,
    EventGet,
    EventList,
    ReserveIdempotencyKey,
    DeliveryCreate,
    DeliveryGet,
    DeliveryList,
    Attempts,
    Claim,
    RecordAttempt,
    Close,
    Release,
    Reopen,
    AttemptStats,
    Enqueue,
    TakeDue,
    Ack,
    KeyInsert,
    KeyFindByHash,
    CurrentKeyId,
    Sign,
    PublicKeys,
    Post,
}

/// What an injected failure returns. Queue and signer methods, which only have an
/// `Unknown` error, fail with that whatever the fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// `StoreError::Unknown`: the store is unreachable.
    Unknown,
    /// `StoreError::Conflict`.
    Conflict,
    /// `StoreError::NotFound`.
    NotFound,
}

impl Fault {
    fn store(self, op: Op) -> StoreError {
        match self {
            Fault::Unknown => StoreError::Unknown(anyhow::anyhow!("injected failure of {op:?}")),
            Fault::Conflict => StoreError::Conflict,
            Fault::NotFound => StoreError::NotFound,
        }
    }

    fn queue(self, op: Op) -> QueueError {
        QueueError::Unknown(anyhow::anyhow!("injected failure of {op:?} ({self:?})"))
    }

    fn sign(self, op: Op) -> SignError {
        SignError::Unknown(anyhow::anyhow!("injected failure of {op:?} ({self:?})"))
    }
}

/// The call log and the failures waiting to happen, shared by the fakes of one set.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    log: Mutex<Vec<Op>>,
    faults: Mutex<Vec<(Op, Fault)>>,
}

impl Calls {
    /// Logs a call and hands back the first failure injected for it, if any (once).
    fn enter(&self, op: Op) -> Option<Fault> {
        lock(&self.log).push(op);
        let mut faults = lock(&self.faults);
        let i = faults.iter().position(|(o, _)| *o == op)?;
        Some(faults.remove(i).1)
    }

    fn store(&self, op: Op) -> Result<(), StoreError> {
        self.enter(op).map_or(Ok(()), |f| Err(f.store(op)))
    }

    fn queue(&self, op: Op) -> Result<(), QueueError> {
        self.enter(op).map_or(Ok(()), |f| Err(f.queue(op)))
    }

    fn sign(&self, op: Op) -> Result<(), SignError> {
        self.enter(op).map_or(Ok(()), |f| Err(f.sign(op)))
    }
}

/// A page of `items` in keyset order: `(micros, id)` ascending, or descending, after
/// the request's cursor, as the adapters page.
fn page_of<T>(mut items: Vec<T>, page: &PageRequest, descending: bool, key: impl Fn(&T) -> (i64, String)) -> Page<T> {
    items.sort_by_key(|i| key(i));
    if descending {
        items.reverse();
    }
    if let Some(c) = &page.after {
        let after = (c.micros, c.id.clone());
        items.retain(|i| if descending { key(i) < after } else { key(i) > after });
    }
    items.truncate(page.limit as usize + 1);
    Page::from_overfetch(items, page.limit, |i| {
        let (micros, id) = key(i);
        Cursor { micros, id }
    })
}

// ---------------------------------------------------------------- webhooks

/// Webhooks in a list, oldest first.
pub(crate) struct FakeWebhookStore {
    calls: Arc<Calls>,
    items: Mutex<Vec<Webhook>>,
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
    calls: Arc<Calls>,
    events: Mutex<Vec<Event>>,
    keys: Mutex<HashMap<(TenantId, String), (EventId, Timestamp)>>,
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

struct Row {
    delivery: Delivery,
    /// Until when a worker holds the delivery ([`DeliveryStore::claim`]).
    claimed_until: Option<Timestamp>,
}

#[derive(Default)]
struct Deliveries {
    rows: BTreeMap<DeliveryId, Row>,
    /// Every recorded attempt with its delivery's tenant and webhook, oldest first.
    attempts: Vec<(TenantId, WebhookId, Attempt)>,
}

/// Deliveries, their claims and their attempts in maps.
pub(crate) struct FakeDeliveryStore {
    calls: Arc<Calls>,
    inner: Mutex<Deliveries>,
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
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        self.calls.store(Op::DeliveryList)?;
        let items: Vec<Delivery> = lock(&self.inner)
            .rows
            .values()
            .map(|r| &r.delivery)
            .filter(|d| &d.tenant == tenant && &d.webhook_id == webhook && status.is_none_or(|s| d.status == s))
            .cloned()
            .collect();
        Ok(page_of(items, page, true, |d| (to_micros(&d.created_at), d.id.to_string())))
    }

    async fn attempts(&self, tenant: &TenantId, id: &DeliveryId) -> Result<Vec<Attempt>, StoreError> {
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
        if d.tenant != job.tenant || d.status != DeliveryStatus::Pending || d.attempts != job.attempts_before {
            return Ok(Claim::Stale);
        }
        if r.claimed_until.is_some_and(|until| until > now) {
            return Ok(Claim::Busy);
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

    async fn release(&self, tenant: &TenantId, id: &DeliveryId) -> Result<(), StoreError> {
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

// ---------------------------------------------------------------- queue

struct Queued {
    receipt: u64,
    job: Job,
    /// When the job can next be taken: its due time, or the end of its lease.
    visible_at: Timestamp,
}

#[derive(Default)]
struct Queue {
    next_receipt: u64,
    jobs: Vec<Queued>,
}

/// A delay queue in a list: a taken job is hidden until its lease ends, as SQS does.
pub(crate) struct FakeQueue {
    calls: Arc<Calls>,
    inner: Mutex<Queue>,
}

impl FakeQueue {
    /// The queued jobs (taken and not acknowledged ones included), in enqueue order.
    pub(crate) fn jobs(&self) -> Vec<Job> {
        lock(&self.inner).jobs.iter().map(|q| q.job.clone()).collect()
    }
}

#[async_trait]
impl DeliveryQueue for FakeQueue {
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError> {
        self.calls.queue(Op::Enqueue)?;
        let mut q = lock(&self.inner);
        for job in jobs {
            q.next_receipt += 1;
            let receipt = q.next_receipt;
            q.jobs.push(Queued { receipt, job: job.clone(), visible_at: job.due_at });
        }
        Ok(())
    }

    async fn take_due(&self, now: Timestamp, max: usize, lease: Duration) -> Result<Vec<Leased>, QueueError> {
        self.calls.queue(Op::TakeDue)?;
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut q = lock(&self.inner);
        let mut due: Vec<&mut Queued> = q.jobs.iter_mut().filter(|j| j.visible_at <= now).collect();
        due.sort_by_key(|j| (j.visible_at, j.receipt));
        Ok(due
            .into_iter()
            .take(max)
            .map(|j| {
                j.visible_at = until;
                Leased { receipt: j.receipt.to_string(), job: j.job.clone() }
            })
            .collect())
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.calls.queue(Op::Ack)?;
        lock(&self.inner).jobs.retain(|j| j.receipt.to_string() != receipt);
        Ok(())
    }
}

// ---------------------------------------------------------------- keys

/// API keys in a list.
pub(crate) struct FakeApiKeyStore {
    calls: Arc<Calls>,
    keys: Mutex<Vec<ApiKey>>,
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
}

// ---------------------------------------------------------------- signer

/// What [`FakeSigner::sign`] returns for every message: the send step only passes the
/// signature on, so no RSA is needed to test it.
pub(crate) const FAKE_SIGNATURE: &[u8] = b"fake-rs256-signature";

/// A signer with a made-up public key that "signs" with [`FAKE_SIGNATURE`].
pub(crate) struct FakeSigner {
    calls: Arc<Calls>,
    /// The key it claims to sign with.
    pub(crate) key: Jwk,
}

#[async_trait]
impl Signer for FakeSigner {
    async fn current_key_id(&self) -> Result<String, SignError> {
        self.calls.sign(Op::CurrentKeyId)?;
        Ok(self.key.kid.clone())
    }

    async fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.calls.sign(Op::Sign)?;
        Ok(FAKE_SIGNATURE.to_vec())
    }

    async fn public_keys(&self) -> Result<Vec<Jwk>, SignError> {
        self.calls.sign(Op::PublicKeys)?;
        Ok(vec![self.key.clone()])
    }
}

// ---------------------------------------------------------------- http

/// An HTTP client that answers each request with the next scripted outcome, moving
/// the clock on by its `elapsed`, and keeps every request.
pub(crate) struct FakeHttp {
    calls: Arc<Calls>,
    clock: Arc<ManualClock>,
    script: Mutex<VecDeque<HttpOutcome>>,
    requests: Mutex<Vec<OutboundRequest>>,
}

impl FakeHttp {
    /// Queues the outcome of the next request not yet answered.
    pub(crate) fn answer(&self, outcome: HttpOutcome) {
        lock(&self.script).push_back(outcome);
    }

    /// Every request made, in order.
    pub(crate) fn requests(&self) -> Vec<OutboundRequest> {
        lock(&self.requests).clone()
    }
}

#[async_trait]
impl HttpClient for FakeHttp {
    async fn post(&self, request: OutboundRequest) -> HttpOutcome {
        self.calls.enter(Op::Post);
        let url = request.url.clone();
        lock(&self.requests).push(request);
        let next = lock(&self.script).pop_front();
        let Some(outcome) = next else { panic!("no scripted answer for POST {url}") };
        let (HttpOutcome::Response { elapsed, .. } | HttpOutcome::Failed { elapsed, .. }) = &outcome;
        self.clock.advance(*elapsed);
        outcome
    }
}

// ---------------------------------------------------------------- the set

/// One fake of every port, wired into [`Fakes::h`].
pub(crate) struct Fakes {
    /// The calls every fake logs, and the failures injected into them.
    calls: Arc<Calls>,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) webhooks: Arc<FakeWebhookStore>,
    pub(crate) events: Arc<FakeEventLog>,
    pub(crate) deliveries: Arc<FakeDeliveryStore>,
    pub(crate) queue: Arc<FakeQueue>,
    pub(crate) keys: Arc<FakeApiKeyStore>,
    pub(crate) signer: Arc<FakeSigner>,
    pub(crate) http: Arc<FakeHttp>,
    /// The fakes as the steps take them.
    pub(crate) h: Hookline,
}

/// Builds a [`Fakes`] under a chosen policy.
pub(crate) struct FakesBuilder {
    policy: Policy,
}

impl FakesBuilder {
    /// Delivers under `policy` rather than the default one.
    pub(crate) fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    pub(crate) fn build(self) -> Fakes {
        let calls = Arc::new(Calls::default());
        let clock = Arc::new(ManualClock::new(start()));
        let webhooks = Arc::new(FakeWebhookStore { calls: calls.clone(), items: Mutex::default() });
        let events = Arc::new(FakeEventLog { calls: calls.clone(), events: Mutex::default(), keys: Mutex::default() });
        let deliveries = Arc::new(FakeDeliveryStore { calls: calls.clone(), inner: Mutex::default() });
        let queue = Arc::new(FakeQueue { calls: calls.clone(), inner: Mutex::default() });
        let keys = Arc::new(FakeApiKeyStore { calls: calls.clone(), keys: Mutex::default() });
        let signer = Arc::new(FakeSigner { calls: calls.clone(), key: Jwk::rsa(&[0xc1, 0x02, 0x03], &[1, 0, 1]) });
        let http = Arc::new(FakeHttp { calls: calls.clone(), clock: clock.clone(), script: Mutex::default(), requests: Mutex::default() });
        let h = Hookline {
            webhooks: webhooks.clone(),
            events: events.clone(),
            deliveries: deliveries.clone(),
            queue: queue.clone(),
            keys: keys.clone(),
            signer: signer.clone(),
            http: http.clone(),
            clock: clock.clone(),
            policy: Arc::new(self.policy),
        };
        Fakes { calls, clock, webhooks, events, deliveries, queue, keys, signer, http, h }
    }
}

impl Fakes {
    /// Fakes starting at [`start`] under the default policy.
    pub(crate) fn new() -> Self {
        Self::builder().build()
    }

    pub(crate) fn builder() -> FakesBuilder {
        FakesBuilder { policy: Policy::default() }
    }

    /// Makes the next call of `op` fail with `fault` (once; injected failures of one
    /// method happen in the order they were injected).
    pub(crate) fn fail_next(&self, op: Op, fault: Fault) {
        lock(&self.calls.faults).push((op, fault));
    }

    /// Every port call so far, in order.
    pub(crate) fn calls(&self) -> Vec<Op> {
        lock(&self.calls.log).clone()
    }

    /// How many times `op` was called.
    pub(crate) fn count(&self, op: Op) -> usize {
        lock(&self.calls.log).iter().filter(|o| **o == op).count()
    }

    /// Stores an active webhook of `tenant` listening to `patterns`, with a custom
    /// header, created now.
    pub(crate) fn add_webhook(&self, tenant: &TenantId, patterns: &[&str]) -> Webhook {
        let input = WebhookInput {
            endpoint_url: "https://receiver.example/hooks".to_owned(),
            listened_events: patterns.iter().map(|p| (*p).to_owned()).collect(),
            headers: Some([("X-Api-Key".to_owned(), "secret".to_owned())].into()),
            ..Default::default()
        };
        let w = Webhook::create(tenant.clone(), input, &self.h.policy.catalog, &EndpointPolicy::default(), self.clock.now())
            .expect("a valid webhook");
        self.webhooks.put(&w);
        w
    }

    /// Stores an event of `tenant` named `name` (`subject.action`), published now.
    pub(crate) fn add_event(&self, tenant: &TenantId, name: &str) -> Event {
        let name = EventName::parse(name).expect("an event name");
        let data = format!(r#"{{"subject_type":"{}","event_type":"{}","subject_id":"34"}}"#, name.subject(), name.action().to_uppercase());
        let e = Event::from_parts(tenant.clone(), EventId::generate(), self.clock.now(), &data).expect("a valid event");
        self.events.put(&e);
        e
    }

    /// Stores a new pending delivery of `event` to `webhook` and returns it with the
    /// job of its first attempt, due now (not queued).
    pub(crate) fn add_delivery(&self, webhook: &Webhook, event: &Event) -> (Delivery, Job) {
        let now = self.clock.now();
        let d = Delivery::new(event.tenant.clone(), webhook.id.clone(), event.id.clone(), event.name.clone(), now);
        self.deliveries.put(&d);
        let job = d.job(now, false);
        (d, job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::default_tenant()
    }

    #[test]
    fn the_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(start());
        assert_eq!(clock.now(), start());
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), start() + chrono::Duration::milliseconds(1500));
        clock.set(start() - chrono::Duration::days(1));
        assert_eq!(clock.now(), start() - chrono::Duration::days(1));
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), chrono::DateTime::<chrono::Utc>::MAX_UTC, "an advance past the end stops there");
    }

    #[tokio::test]
    async fn a_claim_holds_a_delivery_until_its_lease_ends_or_a_record_releases_it() {
        let f = Fakes::new();
        let w = f.add_webhook(&tenant(), &["*"]);
        let e = f.add_event(&tenant(), "project.created");
        let (mut d, job) = f.add_delivery(&w, &e);
        let now = start();
        let until = now + chrono::Duration::seconds(40);
        let store = f.deliveries.as_ref();
        assert_eq!(store.claim(&job, now, until).await.unwrap(), Claim::Claimed(d.clone()));
        assert_eq!(store.claim(&job, now, until).await.unwrap(), Claim::Busy);
        assert_eq!(store.claim(&job, until, until).await.unwrap(), Claim::Claimed(d.clone()), "an expired lease is taken over");
        store.release(&tenant(), &d.id).await.unwrap();
        assert_eq!(store.claimed_until(&d.id), None);
        assert!(matches!(store.claim(&job, now, until).await.unwrap(), Claim::Claimed(_)));
        let attempt = Attempt {
            id: crate::ids::AttemptId::generate(),
            delivery_id: d.id.clone(),
            attempted_at: now,
            status_code: Some(500),
            duration_ms: 1,
            error: None,
            response_body: None,
        };
        assert!(matches!(store.record_attempt(&d, &attempt).await, Err(StoreError::Conflict)), "the count must go up by one");
        d.attempts = 1;
        store.record_attempt(&d, &attempt).await.unwrap();
        assert!(matches!(store.record_attempt(&d, &attempt).await, Err(StoreError::Conflict)), "recorded once only");
        assert_eq!(store.claimed_until(&d.id), None, "recording releases the claim");
        assert_eq!(store.claim(&job, now, until).await.unwrap(), Claim::Stale, "the job's attempt happened");
        assert!(matches!(store.claim(&d.job(now, false), now, until).await.unwrap(), Claim::Claimed(_)));
        d.status = DeliveryStatus::Failed;
        assert!(matches!(store.close(&Delivery { attempts: 0, ..d.clone() }).await, Err(StoreError::Conflict)));
        store.close(&d).await.unwrap();
        assert_eq!(store.claim(&d.job(now, false), now, until).await.unwrap(), Claim::Stale, "a finished delivery");
        assert_eq!(store.attempts_of(&d.id), vec![attempt]);
        let other = TenantId::parse("acme").unwrap();
        assert_eq!(store.claim(&Job { tenant: other, ..d.job(now, false) }, now, until).await.unwrap(), Claim::Stale);
    }

    #[tokio::test]
    async fn a_taken_job_comes_back_when_its_lease_ends_unless_acknowledged() {
        let f = Fakes::new();
        let w = f.add_webhook(&tenant(), &["*"]);
        let e = f.add_event(&tenant(), "project.created");
        let (d, _) = f.add_delivery(&w, &e);
        let later = start() + chrono::Duration::minutes(2);
        f.queue.enqueue(&[d.job(later, false), d.job(start(), false)]).await.unwrap();
        let lease = Duration::from_secs(60);
        let taken = f.queue.take_due(start(), 10, lease).await.unwrap();
        assert_eq!(taken.iter().map(|l| l.job.due_at).collect::<Vec<_>>(), vec![start()]);
        assert!(f.queue.take_due(start(), 10, lease).await.unwrap().is_empty(), "hidden while leased");
        let again = f.queue.take_due(start() + chrono::Duration::seconds(60), 10, lease).await.unwrap();
        assert_eq!(again.len(), 1, "back after the lease");
        f.queue.ack(&again[0].receipt).await.unwrap();
        assert_eq!(f.queue.take_due(later, 10, lease).await.unwrap().iter().map(|l| l.job.due_at).collect::<Vec<_>>(), vec![later]);
    }

    #[tokio::test]
    async fn an_injected_failure_happens_once_and_every_call_is_logged() {
        let f = Fakes::new();
        f.fail_next(Op::Enqueue, Fault::Unknown);
        f.fail_next(Op::DeliveryGet, Fault::Conflict);
        assert!(f.queue.enqueue(&[]).await.is_err());
        f.queue.enqueue(&[]).await.unwrap();
        let id = DeliveryId::for_event(&tenant(), &EventId::generate(), &WebhookId::generate());
        let got = f.deliveries.get(&tenant(), &WebhookId::generate(), &id).await;
        assert!(matches!(got, Err(StoreError::Conflict)), "{got:?}");
        assert_eq!(f.calls(), vec![Op::Enqueue, Op::Enqueue, Op::DeliveryGet]);
    }

    #[tokio::test]
    async fn the_bootstrap_admin_key_is_stored_once_by_hash() {
        let f = Fakes::new();
        crate::usecases::ensure_admin_key(f.keys.as_ref(), "abc", start()).await.unwrap();
        crate::usecases::ensure_admin_key(f.keys.as_ref(), "abc", start()).await.unwrap();
        assert_eq!(f.keys.find_by_hash("abc").await.unwrap().tenant, tenant());
        assert!(matches!(f.keys.find_by_hash("abd").await, Err(StoreError::NotFound)));
        assert_eq!(f.count(Op::KeyInsert), 1);
    }
}
