//! Local mode's two workers: the fan-out reader (the part the DynamoDB stream plays on
//! AWS) and the send loop (the part SQS and the sender Lambda play). Both call the
//! same domain steps the Lambdas call.

use crate::jobs::{JobSource, Table};
use async_trait::async_trait;
use futures::StreamExt;
use hookline_domain::delivery::Task;
use hookline_domain::fanout::fan_out;
use hookline_domain::ports::{Clock, DeliveryQueue, Leased, QueueError};
use hookline_domain::recovery::{TaskReport, run};
use hookline_domain::send::SendReport;
use hookline_domain::{Hookline, Policy};
use hookline_embedded::SqliteStorage;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

/// Events read per fan-out batch.
const FANOUT_BATCH: usize = 256;
/// Events of a batch fanned out at once.
const FANOUT_CONCURRENCY: usize = 32;
/// Longest sleep between checks when nothing signals new work; a safety net only.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Wait after a failed fan-out or read before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// How long a taken job stays hidden: the whole attempt plus the time to sign and record.
pub fn lease(policy: &Policy) -> Duration {
    policy.delivery_timeout + Duration::from_secs(60)
}

/// Fans out every event not yet fanned out, oldest first, until stopped. A stored
/// event that cannot be read is logged and skipped; a failing fan-out is retried.
pub async fn fan_out_loop(h: Arc<Hookline>, events: SqliteStorage, mut stop: watch::Receiver<bool>) {
    // Events up to here were fanned out; their marks may still be on their way to the
    // database (they are deferred writes), so the next read starts after them.
    let mut after = 0;
    while !*stop.borrow() {
        let batch = match events.pending_fanout(after, FANOUT_BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "reading events to fan out failed");
                pause(&mut stop, ERROR_BACKOFF).await;
                continue;
            }
        };
        if batch.is_empty() {
            tokio::select! {
                _ = events.appended() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        after = batch.last().map(|(seq, _)| *seq).unwrap_or(after);
        // Events of a batch fan out concurrently, so their writes share commits; there
        // is no ordering guarantee to keep. A failed one stays unmarked and comes back.
        let outcomes: Vec<(i64, bool)> = futures::stream::iter(batch)
            .map(|(seq, event)| {
                let h = h.clone();
                async move {
                    match event {
                        Ok(event) => match fan_out(&h, &event).await {
                            Ok(_) => (seq, true),
                            Err(e) if e.is_unavailable() => {
                                tracing::debug!(event = %event.id, error = %e, "fan-out waits for storage");
                                (seq, false)
                            }
                            Err(e) => {
                                tracing::error!(event = %event.id, error = %e, "fan-out failed; will retry");
                                (seq, false)
                            }
                        },
                        Err(e) => {
                            tracing::error!(seq, error = %e, "stored event is malformed; skipped");
                            (seq, true)
                        }
                    }
                }
            })
            .buffer_unordered(FANOUT_CONCURRENCY)
            .collect()
            .await;
        let failed = outcomes.iter().any(|(_, ok)| !ok);
        let done: Vec<i64> = outcomes.into_iter().filter(|(_, ok)| *ok).map(|(seq, _)| seq).collect();
        if let Err(e) = events.mark_fanned_out(done) {
            tracing::error!(error = %e, "marking events fanned out failed; they will be fanned out again (harmless)");
        }
        if failed {
            // Read the failed ones again, from the first event not marked.
            after = 0;
            pause(&mut stop, ERROR_BACKOFF).await;
        }
    }
}

async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}

/// The queue's table as the send loop reads it: due jobs leased for `lease`, by the
/// storage's clock.
struct StorageTable {
    storage: SqliteStorage,
    clock: Arc<dyn Clock>,
    lease: Duration,
}

#[async_trait]
impl Table for StorageTable {
    async fn take_due(&self, max: usize) -> Result<Vec<Leased>, QueueError> {
        self.storage.take_due(self.clock.now(), max, self.lease).await
    }

    async fn next_due_in(&self) -> anyhow::Result<Option<Duration>> {
        Ok(self.storage.next_due().await?.map(|at| (at - self.clock.now()).to_std().unwrap_or(Duration::ZERO)))
    }

    async fn queued(&self) {
        self.storage.queued().await
    }
}

/// Runs the send step on jobs handed over in memory (`handed`, see
/// [`SqliteStorage::with_hand_off`]) and on due jobs taken from the table, as
/// [`JobSource`] schedules them, at most `concurrency` at once, until stopped; then
/// waits for attempts in flight. Jobs taken but not started when it stops stay leased
/// and come back at the next start (or when their lease ends).
pub async fn send_loop(
    h: Arc<Hookline>,
    storage: SqliteStorage,
    handed: mpsc::Receiver<Leased>,
    concurrency: usize,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(concurrency));
    let table = StorageTable { storage: storage.clone(), clock: h.clock.clone(), lease: lease(&h.policy) };
    let mut source = JobSource::new(table, Some(handed));
    while !*stop.borrow() {
        // A free slot first, so a job taken starts at once.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => continue,
        };
        tokio::select! {
            leased = source.next(slots.available_permits() + 1) => start_send(&h, &storage, leased, permit),
            _ = stop.changed() => {}
        }
    }
    // Wait for attempts in flight: take every slot back.
    let _ = slots.acquire_many(concurrency as u32).await;
}

/// Runs one leased task (a delivery's send step or a recovery's step) in a tokio task
/// of its own, holding `permit`.
fn start_send(h: &Arc<Hookline>, queue: &SqliteStorage, leased: Leased, permit: OwnedSemaphorePermit) {
    let (h, queue) = (h.clone(), queue.clone());
    tokio::spawn(async move {
        let _permit = permit;
        let what = match &leased.task {
            Task::Attempt(job) => job.delivery_id.to_string(),
            Task::Recover { recovery } => recovery.id.to_string(),
        };
        match run(&h, &leased.task).await {
            // Left unacknowledged: the job comes back when its lease ends, by
            // which time the other attempt is recorded and this job is stale.
            Ok(report) if !report.done() => {}
            Ok(report) => {
                if let TaskReport::Send(report) = &report {
                    log_report(&what, report);
                }
                if let Err(e) = queue.ack(&leased.receipt).await {
                    tracing::warn!(error = %e, "ack failed; the task will come back and be found stale");
                }
            }
            Err(e) if e.is_unavailable() => {
                tracing::debug!(task = %what, error = %e, "task waits for storage; it comes back after its lease")
            }
            Err(e) => {
                tracing::warn!(task = %what, error = %e, "task failed; it comes back after its lease")
            }
        }
    });
}

fn log_report(delivery: &str, report: &SendReport) {
    match report {
        SendReport::Delivered(a) => {
            tracing::info!(delivery, attempt = %a.id, status = ?a.status_code, "delivered")
        }
        SendReport::Retrying { attempt, next_at } => {
            tracing::info!(delivery, attempt = %attempt.id, status = ?attempt.status_code, error = ?attempt.error, next_at = %next_at, "attempt failed; retry scheduled")
        }
        SendReport::Failed { reason, .. } => tracing::warn!(delivery, reason, "delivery failed"),
        SendReport::Deferred | SendReport::Stale | SendReport::Busy | SendReport::Throttled { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::tests::contract;
    use hookline_domain::ports::SystemClock;
    use hookline_domain::time::Timestamp;
    use hookline_domain::webhook::EndpointPolicy;
    use hookline_embedded::{Database, LocalKeySigner};
    use hookline_http::ReqwestHttpClient;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The real SQLite queue, except that its first `enqueue` fails (a full disk, say).
    struct FailsOnce {
        inner: SqliteStorage,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl DeliveryQueue for FailsOnce {
        async fn enqueue(&self, tasks: &[Task]) -> Result<(), QueueError> {
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(QueueError::Unknown(anyhow::anyhow!("injected failure")));
            }
            self.inner.enqueue(tasks).await
        }
        async fn take_due(&self, now: Timestamp, max: usize, lease: Duration) -> Result<Vec<Leased>, QueueError> {
            self.inner.take_due(now, max, lease).await
        }
        async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
            self.inner.ack(receipt).await
        }
    }

    #[tokio::test]
    async fn an_event_whose_fan_out_failed_is_read_again_and_fanned_out() {
        let dir = tempfile::tempdir().expect("dir");
        let db = Database::open(&dir.path().join("t.db")).expect("db");
        let storage = SqliteStorage::new(db, Arc::new(SystemClock));
        let failing = Arc::new(FailsOnce { inner: storage.clone(), calls: AtomicUsize::new(0) });
        let signer = Arc::new(LocalKeySigner::load_or_create(&dir.path().join("key")).expect("key"));
        let http = Arc::new(ReqwestHttpClient::new(&EndpointPolicy::default()).expect("http"));
        let secrets = Arc::new(hookline_embedded::LocalSecretBox::load_or_create(&dir.path().join("secrets-key")).expect("secrets"));
        let h = Arc::new(Hookline { queue: failing.clone(), ..storage.hookline(signer, secrets, http, Policy::default()) });
        let tenant = contract::tenant("default");
        h.webhooks.insert(&contract::webhook(&tenant, &["*"], contract::now())).await.expect("webhook");
        for _ in 0..3 {
            // Appended before the tenant's webhooks are cached: left to the reader.
            h.events.append(&contract::event(&tenant, contract::now())).await.expect("event");
        }
        let (stop, stopped) = watch::channel(false);
        let worker = tokio::spawn(fan_out_loop(h.clone(), storage.clone(), stopped));

        // One of the three fails; the loop reads it again (after its back-off) and
        // fans it out, and every event ends up marked.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let jobs = storage.queue_len().await.expect("len");
            let unmarked = storage.pending_fanout(0, 10).await.expect("pending").len();
            if jobs == 3 && unmarked == 0 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{jobs} jobs queued, {unmarked} events not marked");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(failing.calls.load(Ordering::SeqCst), 4, "three fan-outs and the failed one again");
        stop.send(true).expect("stop");
        worker.await.expect("worker");
    }
}
