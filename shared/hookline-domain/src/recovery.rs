//! Bulk recovery: after an outage, send a window of a webhook's failed (or succeeded)
//! deliveries again, each once, under its own delivery id.
//!
//! A recovery is a stored resource ([`Recovery`]) and a chain of queue tasks
//! ([`RecoveryStep`]). Each step reads the next page of matching deliveries, queues a
//! recovery job for each (one attempt, spaced at the deployment's recovery rate), queues
//! the next step and saves where it got to. So a long recovery goes through the same
//! queue as fresh traffic, a page at a time, within any runtime's limits (a Lambda
//! invocation runs one step). A step waits while the last page's last delivery has not
//! been attempted, so a slow receiver slows the recovery instead of filling the queue.
//!
//! A delivery is not touched by its step: its job's claim reopens it, in the same write
//! that claims it ([`crate::ports::DeliveryStore::claim`]). So no delivery is ever pending
//! without a job to send it, whatever runs first.
//!
//! Crashes: a step's task is acknowledged only after the step is saved, so a step cut
//! short runs again, reads the same page and queues its jobs again; two jobs for one
//! attempt send once (the second finds the attempt made). A copy of a step that ran (its
//! task seen twice) finds the recovery moved on and does nothing. At worst a delivery
//! sent and failed again before its step runs a second time is sent twice: at least
//! once, as every delivery.
//!
//! Idempotency: a recovery's id is derived from its request (webhook, window as given,
//! status), so the same request twice names one recovery and sends once; and a webhook
//! runs one recovery at a time.

#[cfg(test)]
mod tests;

use crate::delivery::{DeliveryFilter, DeliveryStatus, RecoveryStep, Task};
use crate::ids::{RecoveryId, TenantId, WebhookId};
use crate::page::{Cursor, PageRequest};
use crate::ports::{Hookline, QueueError, StoreError};
use crate::send::SendError;
use crate::time::Timestamp;
use sha2::{Digest, Sha256};

/// How far back a recovery may reach: 14 days.
pub const MAX_WINDOW_DAYS: i64 = 14;
/// Deliveries a step reads (and sends at most).
pub const PAGE: u32 = 100;

/// Where a recovery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecoveryState {
    /// Steps are running.
    Running,
    /// Every matching delivery was sent again.
    Done,
    /// Stopped before the end: by a request, or because the webhook was disabled or deleted.
    Cancelled,
}

impl RecoveryState {
    /// The state as the API and stores write it.
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryState::Running => "running",
            RecoveryState::Done => "done",
            RecoveryState::Cancelled => "cancelled",
        }
    }

    /// Reads a stored state.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(RecoveryState::Running),
            "done" => Some(RecoveryState::Done),
            "cancelled" => Some(RecoveryState::Cancelled),
            _ => None,
        }
    }
}

/// A recovery and its progress. Stores keep it whole as JSON (this derive), beside the
/// keys they look it up by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recovery {
    /// Derived from the request ([`recovery_id`]).
    pub id: RecoveryId,
    /// Whose.
    pub tenant: TenantId,
    /// Which webhook's deliveries.
    pub webhook_id: WebhookId,
    /// Deliveries created at or after this instant…
    pub since: Timestamp,
    /// …and before this one (the request's `until`, or when the recovery started).
    pub until: Timestamp,
    /// Deliveries in this state.
    pub status: DeliveryStatus,
    /// Where it is.
    pub state: RecoveryState,
    /// Deliveries that matched when it started (what a dry run counts).
    pub matched: u64,
    /// Deliveries sent again so far. A step run twice at once (a queue's duplicate
    /// message) can leave some of them uncounted, never counted twice.
    pub sent: u64,
    /// Steps made (and the version a save expects: each save adds one).
    pub steps: u32,
    /// The last delivery visited; the next step reads on from there.
    #[serde(with = "cursor_text")]
    pub cursor: Option<Cursor>,
    /// The last delivery the last step queued, and its attempts then: the next step
    /// waits until it has been attempted.
    #[serde(default)]
    pub tail: Option<Tail>,
    /// When it was asked for.
    pub created_at: Timestamp,
    /// When it last moved.
    pub updated_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// Why it was cancelled.
    pub reason: Option<String>,
}

impl Recovery {
    /// The filter its steps list deliveries with.
    pub fn filter(&self) -> DeliveryFilter {
        DeliveryFilter { status: Some(self.status), event_name: None, since: Some(self.since), until: Some(self.until) }
    }

    fn end(&mut self, state: RecoveryState, reason: Option<&str>, now: Timestamp) {
        self.state = state;
        self.reason = reason.map(str::to_owned);
        self.finished_at = Some(now);
        self.updated_at = now;
    }

    /// The task that runs its next step at `due_at`.
    pub fn next_step(&self, due_at: Timestamp) -> Task {
        Task::Recover {
            recovery: RecoveryStep {
                id: self.id.clone(),
                tenant: self.tenant.clone(),
                webhook_id: self.webhook_id.clone(),
                step: self.steps,
                due_at,
            },
        }
    }
}

/// A delivery a recovery queued, and the attempts it had then.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tail {
    /// The delivery.
    pub delivery: crate::ids::DeliveryId,
    /// Its attempts when its job was queued.
    pub attempts: u32,
}

mod cursor_text {
    use crate::page::Cursor;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &Option<Cursor>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&c.as_ref().map(Cursor::encode).unwrap_or_default())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cursor>, D::Error> {
        Ok(Cursor::decode(&String::deserialize(d)?))
    }
}

/// What a client asks to recover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryRequest {
    /// Deliveries created at or after this instant (at most [`MAX_WINDOW_DAYS`] ago).
    pub since: Timestamp,
    /// Deliveries created before this instant; `None` is "until now".
    pub until: Option<Timestamp>,
    /// Deliveries in this state: `Failed` (the default) or `Succeeded`.
    pub status: DeliveryStatus,
}

/// Why a recovery could not be counted, started, read or cancelled.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// `since` is too old, in the future, or not before `until`.
    #[error("{0}")]
    Window(String),
    /// The status is one a recovery cannot take.
    #[error("status: a recovery sends failed or succeeded deliveries, not pending ones")]
    Status,
    /// No such webhook for this tenant.
    #[error("no such webhook")]
    WebhookNotFound,
    /// The webhook is disabled: enable it first.
    #[error("the webhook is disabled; enable it before recovering its deliveries")]
    WebhookDisabled,
    /// Another recovery of the webhook is running.
    #[error("recovery {0} of this webhook is running; wait for it or cancel it")]
    Running(RecoveryId),
    /// No such recovery of this webhook.
    #[error("no such recovery")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The queue failed. The recovery may be stored without its first step: the same
    /// request again queues it.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

fn store_error(not_found: RecoverError) -> impl FnOnce(StoreError) -> RecoverError {
    move |e| match e {
        StoreError::NotFound => not_found,
        other => RecoverError::Store(other),
    }
}

/// The id of the recovery a request names: the same for the same webhook, window (as
/// given: an open `until` is part of the request) and status.
pub fn recovery_id(tenant: &TenantId, webhook: &WebhookId, req: &RecoveryRequest) -> RecoveryId {
    let mut h = Sha256::new();
    for part in [tenant.as_str(), webhook.as_str(), &crate::time::format(&req.since), req.status.as_str()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(req.until.map(|t| crate::time::format(&t)).unwrap_or_default().as_bytes());
    let digest = h.finalize();
    RecoveryId::parse(&format!("{}{}", RecoveryId::PREFIX, hex::encode(&digest[..16]))).expect("32 hex digits")
}

/// Checks a request's window and status at `now`; the window's end, resolved.
fn window(req: &RecoveryRequest, now: Timestamp) -> Result<Timestamp, RecoverError> {
    if req.status == DeliveryStatus::Pending {
        return Err(RecoverError::Status);
    }
    let oldest = now - chrono::Duration::days(MAX_WINDOW_DAYS);
    if req.since < oldest {
        return Err(RecoverError::Window(format!("since: at most {MAX_WINDOW_DAYS} days back")));
    }
    if req.since > now {
        return Err(RecoverError::Window("since: must not be in the future".to_owned()));
    }
    let until = req.until.map_or(now, |u| u.min(now));
    if req.until.is_some_and(|u| u <= req.since) {
        return Err(RecoverError::Window("until: must be after since".to_owned()));
    }
    Ok(until)
}

async fn active_webhook(h: &Hookline, tenant: &TenantId, webhook: &WebhookId) -> Result<(), RecoverError> {
    let w = h.webhooks.get(tenant, webhook).await.map_err(store_error(RecoverError::WebhookNotFound))?;
    if !w.active {
        return Err(RecoverError::WebhookDisabled);
    }
    Ok(())
}

/// How many deliveries the request would send now: the dry run.
pub async fn count(h: &Hookline, tenant: &TenantId, webhook: &WebhookId, req: &RecoveryRequest) -> Result<u64, RecoverError> {
    let until = window(req, h.clock.now())?;
    active_webhook(h, tenant, webhook).await?;
    let filter = DeliveryFilter { status: Some(req.status), event_name: None, since: Some(req.since), until: Some(until) };
    h.deliveries.count(tenant, webhook, &filter).await.map_err(RecoverError::Store)
}

/// What [`start`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// A new recovery; its first step is queued.
    New(Recovery),
    /// The same request was made before: its recovery, unchanged (a running one that has
    /// not moved for a while has its next step queued again).
    Existing(Recovery),
}

/// Starts the recovery a request names, or finds it started.
pub async fn start(h: &Hookline, tenant: &TenantId, webhook: &WebhookId, req: &RecoveryRequest) -> Result<Started, RecoverError> {
    let now = h.clock.now();
    let until = window(req, now)?;
    let id = recovery_id(tenant, webhook, req);
    match h.recoveries.get(tenant, webhook, &id).await {
        Ok(r) => return existing(h, r).await,
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(RecoverError::Store(e)),
    }
    active_webhook(h, tenant, webhook).await?;
    // One at a time per webhook: two would send their overlap twice, and both would
    // take their pace from the same receiver.
    if let Some(other) =
        h.recoveries.list(tenant, webhook).await.map_err(RecoverError::Store)?.into_iter().find(|r| r.state == RecoveryState::Running)
    {
        return Err(RecoverError::Running(other.id));
    }
    let filter = DeliveryFilter { status: Some(req.status), event_name: None, since: Some(req.since), until: Some(until) };
    let matched = h.deliveries.count(tenant, webhook, &filter).await.map_err(RecoverError::Store)?;
    let r = Recovery {
        id,
        tenant: tenant.clone(),
        webhook_id: webhook.clone(),
        since: req.since,
        until,
        status: req.status,
        state: RecoveryState::Running,
        matched,
        sent: 0,
        steps: 0,
        cursor: None,
        tail: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
        reason: None,
    };
    match h.recoveries.insert(&r).await {
        Ok(()) => {}
        // The same request, racing: answer with the one stored.
        Err(StoreError::Conflict) => {
            let r = h.recoveries.get(tenant, webhook, &r.id).await.map_err(RecoverError::Store)?;
            return Ok(Started::Existing(r));
        }
        Err(e) => return Err(RecoverError::Store(e)),
    }
    h.queue.enqueue(&[r.next_step(now)]).await?;
    tracing::info!(recovery = %r.id, webhook = %r.webhook_id, matched, "recovery started");
    Ok(Started::New(r))
}

async fn existing(h: &Hookline, r: Recovery) -> Result<Started, RecoverError> {
    let now = h.clock.now();
    if r.state == RecoveryState::Running && now - r.updated_at > stalled_after(h.policy.recovery_rate) {
        // Its next step went missing (the first request's queueing failed, say). A copy
        // of a step that is only late finds the recovery moved on and does nothing.
        h.queue.enqueue(&[r.next_step(now)]).await?;
    }
    Ok(Started::Existing(r))
}

/// How long a running recovery may go without a step before the same request queues
/// its next step again: two steps' time and five minutes, well past any step's lease.
fn stalled_after(rate: u32) -> chrono::Duration {
    spacing(rate) * (2 * PAGE as i32) + chrono::Duration::minutes(5)
}

/// One recovery of a webhook.
pub async fn get(h: &Hookline, tenant: &TenantId, webhook: &WebhookId, id: &RecoveryId) -> Result<Recovery, RecoverError> {
    h.recoveries.get(tenant, webhook, id).await.map_err(store_error(RecoverError::NotFound))
}

/// Stops a running recovery (steps already queued do nothing); a finished one is
/// returned as it is.
pub async fn cancel(h: &Hookline, tenant: &TenantId, webhook: &WebhookId, id: &RecoveryId) -> Result<Recovery, RecoverError> {
    loop {
        let mut r = get(h, tenant, webhook, id).await?;
        if r.state != RecoveryState::Running {
            return Ok(r);
        }
        let expected = r.steps;
        r.steps += 1;
        r.end(RecoveryState::Cancelled, Some("cancelled by request"), h.clock.now());
        match h.recoveries.save(&r, expected).await {
            Ok(()) => return Ok(r),
            // A step saved meanwhile: read it again and cancel that.
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(store_error(RecoverError::NotFound)(e)),
        }
    }
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepReport {
    /// Not due yet: queued again for its due time.
    Deferred,
    /// A copy of a step that has run, or of a finished or deleted recovery: nothing done.
    Stale,
    /// The webhook was disabled or deleted: the recovery is cancelled.
    Stopped,
    /// Sent `sent` deliveries again; `done` if that was the last page.
    Sent {
        /// Deliveries queued.
        sent: u64,
        /// Whether the recovery is done.
        done: bool,
    },
}

/// Runs one step of a recovery. `Err` leaves the task queued, to run again.
pub async fn step(h: &Hookline, s: &RecoveryStep) -> Result<StepReport, SendError> {
    let now = h.clock.now();
    if s.due_at > now {
        h.queue.enqueue(&[Task::Recover { recovery: s.clone() }]).await?;
        return Ok(StepReport::Deferred);
    }
    let mut r = match h.recoveries.get(&s.tenant, &s.webhook_id, &s.id).await {
        Ok(r) if r.state == RecoveryState::Running && r.steps == s.step => r,
        Ok(_) | Err(StoreError::NotFound) => return Ok(StepReport::Stale),
        Err(e) => return Err(e.into()),
    };
    let stop = match h.webhooks.get(&r.tenant, &r.webhook_id).await {
        Ok(w) if w.active => None,
        Ok(_) => Some("the webhook was disabled"),
        Err(StoreError::NotFound) => Some("the webhook was deleted"),
        Err(e) => return Err(e.into()),
    };
    if let Some(reason) = stop {
        r.steps += 1;
        r.end(RecoveryState::Cancelled, Some(reason), now);
        return Ok(match h.recoveries.save(&r, s.step).await {
            Ok(()) | Err(StoreError::Conflict) => StepReport::Stopped,
            Err(e) => return Err(e.into()),
        });
    }
    let gap = spacing(h.policy.recovery_rate);
    if let Some(wait) = behind(h, &r, gap, now).await? {
        // The last page's deliveries are not all attempted yet (a slow receiver): the
        // next page waits, so the queue never holds more than a page of this recovery.
        h.queue.enqueue(&[Task::Recover { recovery: RecoveryStep { due_at: now + wait, ..s.clone() } }]).await?;
        return Ok(StepReport::Deferred);
    }
    let page = h.deliveries.list(&r.tenant, &r.webhook_id, &r.filter(), &PageRequest { limit: PAGE, after: r.cursor.clone() }).await?;
    // Each delivery stays as it is until its job's claim reopens it (see the module's
    // note): nothing is pending without a job to send it.
    let jobs: Vec<Task> = page.items.iter().zip(0..).map(|(d, i)| d.recovery_job(now + gap * i).into()).collect();
    if !jobs.is_empty() {
        h.queue.enqueue(&jobs).await?;
    }
    let sent = jobs.len() as u64;
    r.steps += 1;
    r.sent += sent;
    r.updated_at = now;
    r.tail = page.items.last().map(|d| Tail { delivery: d.id.clone(), attempts: d.attempts });
    match page.next_cursor {
        Some(c) => {
            r.cursor = Some(c);
            // The next page once this one's deliveries are due: the recovery's pace.
            let next_at = now + gap * (page.items.len().max(1) as i32);
            h.queue.enqueue(&[r.next_step(next_at)]).await?;
        }
        None => r.end(RecoveryState::Done, None, now),
    }
    let done = r.state == RecoveryState::Done;
    match h.recoveries.save(&r, s.step).await {
        Ok(()) => {}
        // A copy of this step, or a cancel, saved first: its outcome stands.
        Err(StoreError::Conflict) | Err(StoreError::NotFound) => return Ok(StepReport::Stale),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(recovery = %r.id, step = s.step, sent, total = r.sent, done, "recovery step");
    Ok(StepReport::Sent { sent, done })
}

/// How long the next page should wait, if the last page's last delivery has not been
/// attempted yet; never longer than [`stalled_after`] past the last step, so a job that
/// came to nothing (its webhook was disabled meanwhile, say) cannot hold the recovery.
async fn behind(h: &Hookline, r: &Recovery, gap: chrono::Duration, now: Timestamp) -> Result<Option<chrono::Duration>, StoreError> {
    let Some(tail) = &r.tail else { return Ok(None) };
    if now - r.updated_at > stalled_after(h.policy.recovery_rate) {
        return Ok(None);
    }
    match h.deliveries.get(&r.tenant, &r.webhook_id, &tail.delivery).await {
        Ok(d) if d.attempts == tail.attempts => Ok(Some((gap * (PAGE as i32 / 4)).max(chrono::Duration::seconds(1)))),
        Ok(_) | Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Time between two deliveries of a recovery sending `rate` a second.
fn spacing(rate: u32) -> chrono::Duration {
    chrono::Duration::microseconds(1_000_000 / i64::from(rate.max(1)))
}

/// What running a queued task did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskReport {
    /// A delivery job's send step.
    Send(crate::send::SendReport),
    /// A recovery's step.
    Step(StepReport),
}

impl TaskReport {
    /// Whether the task is done with and may be acknowledged: all but a delivery another
    /// worker holds, which is taken again after its lease.
    pub fn done(&self) -> bool {
        !matches!(self, TaskReport::Send(crate::send::SendReport::Busy))
    }
}

/// Runs a task taken from the queue: [`crate::send::send`] for a delivery job, [`step`]
/// for a recovery's step. `Err` leaves it queued.
pub async fn run(h: &Hookline, task: &Task) -> Result<TaskReport, SendError> {
    match task {
        Task::Attempt(job) => crate::send::send(h, job).await.map(TaskReport::Send),
        Task::Recover { recovery } => step(h, recovery).await.map(TaskReport::Step),
    }
}
