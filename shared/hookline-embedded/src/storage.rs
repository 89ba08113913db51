//! [`SqliteStorage`]: local mode's one adapter for every store port and the delay
//! queue, over one SQLite database.
//!
//! One object, because local mode's speed-ups need the tables together: an event is
//! stored with its fan-out in one write (`events.rs`), a new job is handed to the send
//! loop with its delivery already claimed (`queue.rs`), and the send step's claim is
//! then answered from memory (`deliveries.rs`). The domain sees only its ports; none
//! of this shows through them. Each port's code lives in its own module.
//!
//! There is nothing to wire in a particular order: [`SqliteStorage::new`] is storage
//! without a send loop, [`SqliteStorage::with_hand_off`] storage with one, and the
//! receiver it returns is the only way to get the jobs handed over.

use crate::db::Database;
use crate::webhooks::WebhookTable;
use hookline_cache::CachedWebhookStore;
use hookline_domain::delivery::{Delivery, DeliveryStatus, Job};
use hookline_domain::ids::DeliveryId;
use hookline_domain::ports::{Clock, HttpClient, Leased, Metrics, NoMetrics, SecretBox, Signer};
use hookline_domain::time::Timestamp;
use hookline_domain::{Hookline, Policy};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// Held claims beyond which expired ones are dropped: claims whose jobs never reached
/// the send step (it stopped first) would otherwise stay until the process ends.
const HELD_PRUNE_AT: usize = 4096;

/// Every store port and the delay queue of local mode, over one database. Clones
/// share everything.
#[derive(Clone)]
pub struct SqliteStorage {
    pub(crate) shared: Arc<Shared>,
}

/// What the ports' implementations share.
pub(crate) struct Shared {
    pub(crate) db: Database,
    pub(crate) clock: Arc<dyn Clock>,
    /// Webhooks, read through a cache every write of this process goes through.
    pub(crate) webhooks: CachedWebhookStore,
    /// Where jobs due at once go, if a send loop takes them.
    pub(crate) hand_off: Option<HandOff>,
    /// Claims the queue took for jobs it handed over or took, by delivery.
    held: Mutex<HashMap<DeliveryId, HeldClaim>>,
    /// Jobs committed by this process.
    pub(crate) enqueued_total: AtomicU64,
    /// Signalled when an event is stored without its fan-out.
    pub(crate) appended: Notify,
    /// Signalled when a job is queued in the table rather than handed over.
    pub(crate) queued: Notify,
    /// Where the fan-out made inside an append is counted, and the Hookline over this
    /// storage records metrics (set once, by local mode; none otherwise).
    pub(crate) metrics: std::sync::OnceLock<Arc<dyn Metrics>>,
    /// Changes of one webhook's rate limit state run one at a time.
    pub(crate) throttle_locks: hookline_cache::KeyedLocks,
}

/// Where jobs due at once are handed to the send loop, and how long they are leased for.
pub(crate) struct HandOff {
    pub(crate) to: mpsc::Sender<Leased>,
    pub(crate) lease: Duration,
}

/// A claim on a delivery, taken by the queue on a worker's behalf.
pub(crate) struct HeldClaim {
    pub(crate) delivery: Delivery,
    pub(crate) until: Timestamp,
}

impl SqliteStorage {
    /// Storage over `db`, with no send loop: every job waits in the table.
    pub fn new(db: Database, clock: Arc<dyn Clock>) -> Self {
        Self::build(db, clock, None)
    }

    /// Storage over `db` whose jobs due at once go to the returned receiver (up to
    /// `room` waiting), each leased for `lease`: the one send loop's source of new
    /// work, beside [`DeliveryQueue::take_due`](hookline_domain::ports::DeliveryQueue::take_due).
    pub fn with_hand_off(db: Database, clock: Arc<dyn Clock>, room: usize, lease: Duration) -> (Self, mpsc::Receiver<Leased>) {
        let (to, from) = mpsc::channel(room.max(1));
        (Self::build(db, clock, Some(HandOff { to, lease })), from)
    }

    fn build(db: Database, clock: Arc<dyn Clock>, hand_off: Option<HandOff>) -> Self {
        let webhooks = CachedWebhookStore::new(Arc::new(WebhookTable { db: db.clone() }));
        SqliteStorage {
            shared: Arc::new(Shared {
                db,
                clock,
                webhooks,
                hand_off,
                held: Mutex::new(HashMap::new()),
                enqueued_total: AtomicU64::new(0),
                appended: Notify::new(),
                queued: Notify::new(),
                metrics: std::sync::OnceLock::new(),
                throttle_locks: Default::default(),
            }),
        }
    }

    /// Records metrics in `metrics` from now on: the fan-out made inside an append, and
    /// the steps of the Hookline [`SqliteStorage::hookline`] builds afterwards. Set once.
    pub fn set_metrics(&self, metrics: Arc<dyn Metrics>) {
        let _ = self.shared.metrics.set(metrics);
    }

    pub(crate) fn metrics(&self) -> Arc<dyn Metrics> {
        self.shared.metrics.get().cloned().unwrap_or_else(|| Arc::new(NoMetrics))
    }

    /// Hookline over this storage (every store port and the queue), with the storage's
    /// clock.
    pub fn hookline(&self, signer: Arc<dyn Signer>, secrets: Arc<dyn SecretBox>, http: Arc<dyn HttpClient>, policy: Policy) -> Hookline {
        let me = Arc::new(self.clone());
        Hookline {
            webhooks: me.clone(),
            events: me.clone(),
            deliveries: me.clone(),
            queue: me.clone(),
            keys: me.clone(),
            recoveries: me.clone(),
            throttles: me.clone(),
            analytics: me,
            signer,
            secrets,
            http,
            clock: self.shared.clock.clone(),
            policy: Arc::new(policy),
            metrics: self.metrics(),
        }
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.shared.db
    }
}

impl Shared {
    /// Keeps claims taken for workers.
    pub(crate) fn hold(&self, claims: impl IntoIterator<Item = HeldClaim>) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.extend(claims.into_iter().map(|c| (c.delivery.id.clone(), c)));
        if held.len() > HELD_PRUNE_AT {
            let now = self.clock.now();
            held.retain(|_, c| c.until > now);
        }
    }

    /// The claim held for `job`'s delivery, if any: `Ok` with the delivery if it is for
    /// this attempt and lasts until `lease_until`; else `Err` with when it ends, so the
    /// caller may take it over in the table (it was taken for this job's worker, and
    /// nobody else can use it now). A held claim is used once.
    pub(crate) fn take_held(&self, job: &Job, lease_until: Timestamp) -> Option<Result<Delivery, Timestamp>> {
        let c = self.held.lock().unwrap_or_else(PoisonError::into_inner).remove(&job.delivery_id)?;
        let fits = c.until >= lease_until
            && c.delivery.tenant == job.tenant
            && c.delivery.status == DeliveryStatus::Pending
            && c.delivery.attempts == job.attempts_before;
        Some(if fits { Ok(c.delivery) } else { Err(c.until) })
    }

    /// Drops a held claim (the claim was released).
    pub(crate) fn forget_held(&self, id: &DeliveryId) {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }
}
