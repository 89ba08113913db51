//! Ports: the traits adapters implement (SQLite and local files in local mode,
//! DynamoDB, SQS and KMS on AWS). Each method says which errors an adapter MUST return;
//! anything else is `Unknown`, which callers treat as a transient infrastructure fault.
//!
//! These traits are the whole contract both runtimes share: a method belongs here only
//! if every adapter does what it says. A speed-up that one adapter can offer (local
//! mode storing an event with its fan-out in one SQLite write, say) lives inside that
//! adapter, behind these same methods.
//!
//! The contract suite in `tests/` runs the same checks against every adapter.

use crate::auth::{ApiKey, CredentialKind};
use crate::delivery::{Attempt, Claim, Delivery, DeliveryFilter, Job, Task};
use crate::event::Event;
use crate::ids::{ApiKeyId, DeliveryId, EventId, RecoveryId, TenantId, WebhookId};
use crate::jwt::Jwk;
use crate::metrics::Metric;
use crate::page::{Page, PageRequest};
use crate::policy::Policy;
use crate::recovery::Recovery;
use crate::throttle::ThrottleState;
use crate::time::Timestamp;
use crate::webhook::{SigningSecret, Webhook};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What a store can report.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An item with this id already exists.
    #[error("already exists")]
    Conflict,
    /// No such item (for this tenant).
    #[error("not found")]
    NotFound,
    /// The store cannot take this for now (its disk is full, say): nothing was done,
    /// and the same request may succeed later.
    #[error(transparent)]
    Unavailable(Unavailable),
    /// Anything else: the store is unreachable, timed out, or returned nonsense.
    #[error(transparent)]
    Unknown(anyhow::Error),
}

/// Why a store or queue cannot take requests for now, in words for an operator (where
/// and what is wrong). Adapters put it in their `anyhow` errors; the conversion into
/// [`StoreError`] and [`QueueError`] finds it anywhere in the chain.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

fn unavailable_in(e: &anyhow::Error) -> Option<Unavailable> {
    e.chain().find_map(|c| c.downcast_ref::<Unavailable>()).cloned()
}

impl From<anyhow::Error> for StoreError {
    fn from(e: anyhow::Error) -> Self {
        match unavailable_in(&e) {
            Some(u) => StoreError::Unavailable(u),
            None => StoreError::Unknown(e),
        }
    }
}

/// Webhook configurations.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a new webhook. `Conflict` if its id exists.
    async fn insert(&self, webhook: &Webhook) -> Result<(), StoreError>;
    /// One webhook of a tenant. `NotFound` if absent or another tenant's.
    async fn get(&self, tenant: &TenantId, id: &WebhookId) -> Result<Webhook, StoreError>;
    /// Replaces a webhook. `NotFound` if absent or another tenant's.
    async fn update(&self, webhook: &Webhook) -> Result<(), StoreError>;
    /// Writes only the status fields (`active`, `disabled_reason`, `disabled_at`,
    /// `failing_since`, `failed_deliveries`), so the send step never overwrites a
    /// concurrent edit of the rest. `NotFound` if absent.
    async fn update_status(&self, webhook: &Webhook) -> Result<(), StoreError>;
    /// Deletes a webhook. `NotFound` if absent or another tenant's.
    async fn delete(&self, tenant: &TenantId, id: &WebhookId) -> Result<(), StoreError>;
    /// A tenant's webhooks, oldest first.
    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Webhook>, StoreError>;
    /// Every active webhook of a tenant: what fan-out matches events against.
    async fn list_active(&self, tenant: &TenantId) -> Result<Vec<Webhook>, StoreError>;
}

/// Published events.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Appends an event. `Conflict` if its id exists. Appending is what triggers
    /// fan-out (a stream on AWS, a local reader in local mode).
    async fn append(&self, event: &Event) -> Result<(), StoreError>;
    /// One event of a tenant. `NotFound` if absent or another tenant's.
    async fn get(&self, tenant: &TenantId, id: &EventId) -> Result<Event, StoreError>;
    /// A tenant's events, newest first.
    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Event>, StoreError>;
    /// Binds an `Idempotency-Key` to an event id, atomically: returns `event` if the
    /// key was free (or its binding older than [`IDEMPOTENCY_WINDOW_SECS`] before `now`),
    /// else the id it is already bound to.
    async fn reserve_idempotency_key(&self, tenant: &TenantId, key: &str, event: &EventId, now: Timestamp) -> Result<EventId, StoreError>;
}

/// How long an `Idempotency-Key` stays bound to its first event: 24 hours.
pub const IDEMPOTENCY_WINDOW_SECS: i64 = 24 * 3600;

/// Attempt totals over a time window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptStats {
    /// Attempts made.
    pub total: u64,
    /// Attempts answered 2xx.
    pub succeeded: u64,
}

/// Deliveries and their attempts.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Stores deliveries that do not exist yet and leaves existing ones untouched, so
    /// running fan-out twice over one event is harmless.
    async fn create(&self, deliveries: &[Delivery]) -> Result<(), StoreError>;
    /// One delivery of a tenant's webhook. `NotFound` if absent or another's.
    async fn get(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId) -> Result<Delivery, StoreError>;
    /// A webhook's deliveries, newest first, those the filter lets through.
    async fn list(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError>;
    /// How many of a webhook's deliveries the filter lets through.
    async fn count(&self, tenant: &TenantId, webhook: &WebhookId, filter: &DeliveryFilter) -> Result<u64, StoreError>;
    /// A delivery's attempts, oldest first.
    async fn attempts(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId) -> Result<Vec<Attempt>, StoreError>;
    /// Takes the right to make the attempt a job asks for, until `lease_until`.
    /// `Stale` if the delivery is absent, finished (unless the job `reopen`s it: then
    /// it is made pending again, due `now`, in the same write), or has had a different
    /// number of attempts than `attempts_before`; `Busy` if another unexpired claim
    /// holds it.
    async fn claim(&self, job: &Job, now: Timestamp, lease_until: Timestamp) -> Result<Claim, StoreError>;
    /// Records an attempt and the delivery's new state together, and releases the claim.
    /// `delivery.attempts` is the count including this attempt; `Conflict` if the stored
    /// count is not one less (the attempt was recorded by someone else).
    async fn record_attempt(&self, delivery: &Delivery, attempt: &Attempt) -> Result<(), StoreError>;
    /// Saves a delivery's new state without an attempt (its webhook went away) and
    /// releases the claim. `Conflict` if the attempt count changed meanwhile.
    async fn close(&self, delivery: &Delivery) -> Result<(), StoreError>;
    /// Releases a claim without changing anything (the attempt could not be made).
    async fn release(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId) -> Result<(), StoreError>;
    /// Marks a delivery pending again for a redelivery, due at `now`; returns it.
    /// `NotFound` if absent or another tenant's.
    async fn reopen(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId, now: Timestamp) -> Result<Delivery, StoreError>;
    /// Attempt totals of a webhook since an instant.
    async fn attempt_stats(&self, tenant: &TenantId, webhook: &WebhookId, since: Timestamp) -> Result<AttemptStats, StoreError>;
}

/// What a queue can report.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue cannot take this for now (its disk is full, say); nothing was queued.
    #[error(transparent)]
    Unavailable(Unavailable),
    /// The queue is unreachable or refused the request.
    #[error(transparent)]
    Unknown(anyhow::Error),
}

impl From<anyhow::Error> for QueueError {
    fn from(e: anyhow::Error) -> Self {
        match unavailable_in(&e) {
            Some(u) => QueueError::Unavailable(u),
            None => QueueError::Unknown(e),
        }
    }
}

/// A task taken from the queue, with what is needed to acknowledge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    /// Names this lease for [`DeliveryQueue::ack`].
    pub receipt: String,
    /// The task.
    pub task: Task,
}

impl Leased {
    /// The delivery job, if the task is one.
    pub fn job(&self) -> Option<&Job> {
        self.task.job()
    }
}

/// The durable delay queue of delivery jobs and recovery steps.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Adds tasks, each to be taken no earlier than its due time. Durable on return.
    async fn enqueue(&self, tasks: &[Task]) -> Result<(), QueueError>;
    /// Takes up to `max` due tasks, hiding each for `lease`: a task not acknowledged by
    /// then is taken again (at-least-once).
    async fn take_due(&self, now: Timestamp, max: usize, lease: Duration) -> Result<Vec<Leased>, QueueError>;
    /// Removes a taken task for good.
    async fn ack(&self, receipt: &str) -> Result<(), QueueError>;
}

/// Recoveries ([`Recovery`]) and their progress.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// Stores a new recovery. `Conflict` if its id exists.
    async fn insert(&self, recovery: &Recovery) -> Result<(), StoreError>;
    /// One recovery of a tenant's webhook. `NotFound` if absent or another's.
    async fn get(&self, tenant: &TenantId, webhook: &WebhookId, id: &RecoveryId) -> Result<Recovery, StoreError>;
    /// A webhook's recoveries, newest first; at most [`MAX_LISTED_RECOVERIES`].
    async fn list(&self, tenant: &TenantId, webhook: &WebhookId) -> Result<Vec<Recovery>, StoreError>;
    /// Replaces a recovery if its stored `steps` is still `expected_steps`.
    /// `Conflict` if it is not; `NotFound` if absent.
    async fn save(&self, recovery: &Recovery, expected_steps: u32) -> Result<(), StoreError>;
}

/// The shared state of webhooks' rate limits ([`crate::throttle`]).
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Changes a webhook's state as one atomic step: applies `change` to the stored
    /// state (the default when none is stored) and writes back what it leaves, unless
    /// unchanged. When another writer changed the state meanwhile, `change` runs again
    /// on the newer state, so what it last did is what was stored. The store may forget
    /// a state after its [`ThrottleState::expires_at`].
    async fn update(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        change: &mut (dyn for<'s> FnMut(&'s mut ThrottleState) + Send),
    ) -> Result<(), StoreError>;
}

/// Most recoveries [`RecoveryStore::list`] returns.
pub const MAX_LISTED_RECOVERIES: usize = 100;

/// Per-webhook counters by hour, for analytics. Adding is atomic per counter.
///
/// The domain chooses the counter names and the hours ([`crate::analytics`]); an
/// adapter stores them as given. Both methods return `Unknown` on any failure.
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Adds each `(name, amount)` to the named counters of `webhook`'s bucket starting at `hour` (created at zero).
    async fn add(&self, tenant: &TenantId, webhook: &WebhookId, hour: Timestamp, counters: &[(String, u64)]) -> Result<(), StoreError>;
    /// The buckets of `webhook` whose hour is in `[from, to)`, oldest first, each with its counters.
    async fn read(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Timestamp, BTreeMap<String, u64>)>, StoreError>;
}

/// What a signer can report.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key service failed or refused; the delivery is tried again later.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// RS256 signatures with a key the caller never sees.
#[async_trait]
pub trait Signer: Send + Sync {
    /// The `kid` (RFC 7638 thumbprint) of the key [`Signer::sign`] uses.
    async fn current_key_id(&self) -> Result<String, SignError>;
    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
    /// The public keys receivers should accept: the current one first.
    async fn public_keys(&self) -> Result<Vec<Jwk>, SignError>;
}

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key service failed or refused, or the ciphertext is not this webhook's.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// Keeps webhook signing secrets encrypted at rest: what a store holds is
/// [`SecretBox::seal`]'s ciphertext, bound to the webhook's tenant and id, so it opens
/// for that webhook only.
#[async_trait]
pub trait SecretBox: Send + Sync {
    /// Encrypts `secret` for `webhook` of `tenant`.
    async fn seal(&self, tenant: &TenantId, webhook: &WebhookId, secret: &SigningSecret) -> Result<String, SealError>;
    /// Decrypts what [`SecretBox::seal`] returned for the same webhook.
    async fn open(&self, tenant: &TenantId, webhook: &WebhookId, sealed: &str) -> Result<SigningSecret, SealError>;
}

/// One outbound webhook request.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// `POST`, or the webhook's own method.
    pub method: crate::webhook::HttpMethod,
    /// Target.
    pub url: url::Url,
    /// Headers, in order; the client adds nothing but what HTTP requires.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Bytes,
    /// Bound on the whole exchange: connect, send, and read the response.
    pub timeout: Duration,
}

/// Why no status code came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The timeout ran out.
    Timeout,
    /// No connection (refused, reset, DNS failure, unreachable).
    Connect,
    /// TLS handshake or certificate failure.
    Tls,
    /// The target was refused by policy before connecting (a private address).
    Refused,
    /// The peer spoke something that is not HTTP, or broke off mid-response.
    Protocol,
}

/// What came of an outbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// The receiver answered.
    Response {
        /// Status code.
        status: u16,
        /// `Retry-After`, if sent.
        retry_after: Option<String>,
        /// The start of the body (the client reads a bounded prefix).
        body: Bytes,
        /// From request start to end of the read.
        elapsed: Duration,
    },
    /// It did not.
    Failed {
        /// Which way it failed.
        kind: FailureKind,
        /// A short, human description.
        message: String,
        /// From request start to the failure.
        elapsed: Duration,
    },
}

/// Sends webhook requests. Never follows redirects.
#[async_trait]
pub trait HttpClient: Send + Sync {
    /// Checks a target when a webhook is created or changed: `Err` (with the address
    /// found) if its name resolves to an address the client would refuse to connect to.
    async fn vet_target(&self, _url: &url::Url) -> Result<(), String> {
        Ok(())
    }
    /// Sends a request (with its method) and reports the outcome; never errors otherwise.
    async fn post(&self, request: OutboundRequest) -> HttpOutcome;
}

/// The current time, as a port so tests can hold it still.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// A clock that moves only when told to: tests set it and advance it, so whatever
/// reads the time (due jobs, claim leases, retry times, auto-disable periods) runs
/// the same on every run and never waits on the wall clock.
#[derive(Debug)]
pub struct ManualClock {
    // A Mutex rather than an atomic: a Timestamp is wider than any atomic, and tests
    // read it far too rarely for contention to matter.
    now: std::sync::Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock that reads `start` until moved.
    pub fn new(start: Timestamp) -> Self {
        ManualClock { now: std::sync::Mutex::new(start) }
    }

    /// Moves the clock to `t`, backwards if `t` is earlier.
    pub fn set(&self, t: Timestamp) {
        *self.lock() = t;
    }

    /// Moves the clock forward by `by`; past the last representable instant it stops there.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        let step = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        *now = now.checked_add_signed(step).unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    }

    // A test that panicked while holding the lock left a valid instant behind (every
    // write is a single assignment), so a poisoned lock is used as it is.
    fn lock(&self) -> std::sync::MutexGuard<'_, Timestamp> {
        self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.lock()
    }
}

/// Where the steps record what happened ([`Metric`]); adapters aggregate and expose it.
/// Recording must not block or fail.
pub trait Metrics: Send + Sync {
    /// Records one thing that happened.
    fn record(&self, metric: Metric);
}

/// Records nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn record(&self, _: Metric) {}
}

/// API keys, stored by hash.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a key. `Conflict` if its id or hash exists.
    async fn insert(&self, key: &ApiKey) -> Result<(), StoreError>;
    /// The key with this hash. `NotFound` if none.
    async fn find_by_hash(&self, hash: &str) -> Result<ApiKey, StoreError>;
    /// The credentials of this kind, of one tenant or of every tenant, oldest first;
    /// at most [`MAX_LISTED_KEYS`].
    async fn list(&self, tenant: Option<&TenantId>, kind: CredentialKind) -> Result<Vec<ApiKey>, StoreError>;
    /// Removes a tenant's credential of this kind by id and returns it. `NotFound` if
    /// the tenant has none of that kind with that id.
    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId, kind: CredentialKind) -> Result<ApiKey, StoreError>;
    /// Marks the portal link with this hash used, if it is one, is unused and has not
    /// expired at `now`; it is then kept until `keep_until` (its sessions need it).
    /// `NotFound` if there is no such credential; `Conflict` if it is not an unused,
    /// unexpired link.
    async fn use_link(&self, hash: &str, now: Timestamp, keep_until: Timestamp) -> Result<ApiKey, StoreError>;
}

/// Most credentials [`ApiKeyStore::list`] returns.
pub const MAX_LISTED_KEYS: usize = 1000;

/// Hookline: its ports and policy. Built once by each binary; the API router, the
/// fan-out step and the send step all take it.
#[derive(Clone)]
pub struct Hookline {
    /// Webhook configurations.
    pub webhooks: Arc<dyn WebhookStore>,
    /// Published events.
    pub events: Arc<dyn EventLog>,
    /// Deliveries and attempts.
    pub deliveries: Arc<dyn DeliveryStore>,
    /// Delay queue of delivery jobs.
    pub queue: Arc<dyn DeliveryQueue>,
    /// API keys.
    pub keys: Arc<dyn ApiKeyStore>,
    /// Recoveries.
    pub recoveries: Arc<dyn RecoveryStore>,
    /// Webhooks' rate limit state.
    pub throttles: Arc<dyn ThrottleStore>,
    /// Per-webhook analytics counters.
    pub analytics: Arc<dyn AnalyticsStore>,
    /// Signs deliveries with the RS256 JWT.
    pub signer: Arc<dyn Signer>,
    /// Seals and opens webhooks' Standard Webhooks secrets.
    pub secrets: Arc<dyn SecretBox>,
    /// Sends deliveries.
    pub http: Arc<dyn HttpClient>,
    /// Tells the time.
    pub clock: Arc<dyn Clock>,
    /// Delivery rules.
    pub policy: Arc<Policy>,
    /// Where the steps record metrics.
    pub metrics: Arc<dyn Metrics>,
}
