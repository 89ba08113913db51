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

use crate::auth::{ApiKey, CredentialKind};
use crate::catalog::EventName;
use crate::delivery::{Attempt, Claim, Delivery, DeliveryFilter, DeliveryStatus, Job, Task};
use crate::event::Event;
use crate::ids::{ApiKeyId, DeliveryId, EventId, RecoveryId, TenantId, WebhookId};
use crate::jwt::Jwk;
use crate::page::{Cursor, Page, PageRequest};
use crate::ports::{
    AnalyticsStore, ApiKeyStore, AttemptStats, Clock, DeliveryQueue, DeliveryStore, EventLog, HttpClient, HttpOutcome,
    IDEMPOTENCY_WINDOW_SECS, Leased, MAX_LISTED_KEYS, MAX_LISTED_RECOVERIES, ManualClock, OutboundRequest, QueueError, RecoveryStore,
    SealError, SecretBox, SignError, Signer, StoreError, WebhookStore,
};
use crate::recovery::Recovery;
use crate::time::{Timestamp, to_micros};
use crate::webhook::{EndpointPolicy, SigningSecret, Webhook, WebhookInput};
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
    DeliveryCount,
    RecoveryInsert,
    RecoveryGet,
    RecoveryList,
    RecoverySave,
    ThrottleUpdate,
    AnalyticsAdd,
    AnalyticsRead,
    Enqueue,
    TakeDue,
    Ack,
    KeyInsert,
    KeyFindByHash,
    KeyList,
    KeyDelete,
    KeyUseLink,
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

mod outside;
mod queue;
mod stores;
mod throttles;

pub(crate) use outside::*;
pub(crate) use queue::*;
pub(crate) use stores::*;
pub(crate) use throttles::FakeThrottleStore;

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
    pub(crate) recoveries: Arc<FakeRecoveryStore>,
    pub(crate) analytics: Arc<FakeAnalyticsStore>,
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
        let recoveries = Arc::new(FakeRecoveryStore { calls: calls.clone(), items: Mutex::default() });
        let throttles = Arc::new(FakeThrottleStore { calls: calls.clone(), items: Mutex::default() });
        let analytics = Arc::new(FakeAnalyticsStore { calls: calls.clone(), buckets: Mutex::default() });
        let signer = Arc::new(FakeSigner { calls: calls.clone(), key: Jwk::rsa(&[0xc1, 0x02, 0x03], &[1, 0, 1]) });
        let http = Arc::new(FakeHttp { calls: calls.clone(), clock: clock.clone(), script: Mutex::default(), requests: Mutex::default() });
        let h = Hookline {
            webhooks: webhooks.clone(),
            events: events.clone(),
            deliveries: deliveries.clone(),
            queue: queue.clone(),
            keys: keys.clone(),
            recoveries: recoveries.clone(),
            throttles,
            analytics: analytics.clone(),
            signer: signer.clone(),
            secrets: Arc::new(FakeSecretBox),
            http: http.clone(),
            clock: clock.clone(),
            policy: Arc::new(self.policy),
            metrics: Arc::new(crate::ports::NoMetrics),
        };
        Fakes { calls, clock, webhooks, events, deliveries, queue, keys, recoveries, analytics, signer, http, h }
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
        let d = Delivery::new(event.tenant.clone(), webhook.id.clone(), event.id.clone(), event.name.clone(), event.created_at, now);
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
        store.release(&tenant(), &d.webhook_id, &d.id).await.unwrap();
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
        f.queue.enqueue(&[d.job(later, false).into(), d.job(start(), false).into()]).await.unwrap();
        let lease = Duration::from_secs(60);
        let taken = f.queue.take_due(start(), 10, lease).await.unwrap();
        assert_eq!(taken.iter().map(|l| l.task.due_at()).collect::<Vec<_>>(), vec![start()]);
        assert!(f.queue.take_due(start(), 10, lease).await.unwrap().is_empty(), "hidden while leased");
        let again = f.queue.take_due(start() + chrono::Duration::seconds(60), 10, lease).await.unwrap();
        assert_eq!(again.len(), 1, "back after the lease");
        f.queue.ack(&again[0].receipt).await.unwrap();
        assert_eq!(f.queue.take_due(later, 10, lease).await.unwrap().iter().map(|l| l.task.due_at()).collect::<Vec<_>>(), vec![later]);
    }

    #[tokio::test]
    async fn an_injected_failure_happens_once_and_every_call_is_logged() {
        let f = Fakes::new();
        f.fail_next(Op::Enqueue, Fault::Unknown);
        f.fail_next(Op::DeliveryGet, Fault::Conflict);
        assert!(f.queue.enqueue(&[]).await.is_err());
        f.queue.enqueue(&[]).await.unwrap();
        let id = DeliveryId::for_event(&tenant(), &EventId::generate(), &chrono::Utc::now(), &WebhookId::generate());
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
