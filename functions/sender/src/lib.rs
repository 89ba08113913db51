//! The sender Lambda's handler: each SQS message is a delivery job (or a recovery's
//! step); run the domain's send step (or the step) on it and report per message.
//!
//! A message is reported as a batch item failure, so SQS hands it out again after its
//! visibility timeout, when its body is not a job (after `maxReceiveCount` it lands in
//! the dead-letter queue, never silently dropped), when another worker holds the
//! delivery, or when the step failed (a KMS or DynamoDB error). Everything else is
//! finished, including a job that was not due yet and was re-queued for its remaining
//! delay.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use futures::StreamExt;
use hookline_cache::{BufferedAnalytics, CachedEventLog, CachedWebhookStore};
use hookline_domain::Hookline;
use hookline_domain::delivery::Task;
use hookline_domain::recovery::{TaskReport, run};
use std::sync::Arc;

/// Messages of one batch handled at once; a batch holds at most 10.
const CONCURRENCY: usize = 10;

/// Events kept per invocation (a batch holds at most 10 messages).
const EVENT_CACHE: usize = 16;

/// Handles one batch of messages. Within the batch each event and each webhook is read
/// once (the messages of one fan-out usually share their event), and analytics are
/// written once per webhook and hour.
pub async fn handle(h: &Hookline, event: SqsEvent) -> SqsBatchResponse {
    // Analytics counts are held for the batch and written merged, one write per webhook
    // and hour, once its messages are handled.
    let analytics = Arc::new(BufferedAnalytics::new(h.analytics.clone()));
    let h = &Hookline {
        events: Arc::new(CachedEventLog::new(h.events.clone(), EVENT_CACHE)),
        webhooks: Arc::new(CachedWebhookStore::new(h.webhooks.clone())),
        analytics: analytics.clone(),
        ..h.clone()
    };
    let jobs: Vec<(String, Option<Task>)> = event
        .records
        .into_iter()
        .map(|m| {
            let id = m.message_id.clone().unwrap_or_default();
            let task = m.body.as_deref().and_then(|b| serde_json::from_str::<Task>(b).ok());
            (id, task)
        })
        .collect();
    // Each event of the batch read once, all at once, before the concurrent sends would
    // all miss the cache together. A read that fails here is left to the send step,
    // which reports it.
    let mut events = Vec::new();
    for job in jobs.iter().filter_map(|(_, t)| t.as_ref().and_then(Task::job)) {
        if !events.contains(&(&job.tenant, &job.event_id)) {
            events.push((&job.tenant, &job.event_id));
        }
    }
    futures::future::join_all(events.into_iter().map(|(tenant, id)| h.events.get(tenant, id))).await;
    // A replayed stream batch queues a job again for every match; when the copy lands in
    // the same batch as its original, it is the same job (same delivery, same attempt
    // count). Only the first is sent; a copy shares its original's outcome, so it is
    // acknowledged (it would be found stale) rather than left busy for the visibility
    // timeout.
    let original_of = copies(&jobs);
    let results: Vec<(usize, bool)> = futures::stream::iter(jobs.iter().enumerate().filter(|(i, _)| original_of[*i].is_none()))
        .map(|(i, (id, job))| async move {
            let Some(task) = job else {
                tracing::error!(message = %id, "message is not a delivery job; left for the dead-letter queue");
                return (i, false);
            };
            wait_for_slot(h, task).await;
            let ok = match (run(h, task).await, task) {
                (Ok(report), _) if !report.done() => false,
                (Ok(TaskReport::Send(report)), Task::Attempt(job)) => {
                    tracing::info!(delivery = %job.delivery_id, ?report, "job done");
                    true
                }
                (Ok(report), _) => {
                    tracing::info!(message = %id, ?report, "recovery step done");
                    true
                }
                (Err(e), Task::Attempt(job)) => {
                    tracing::warn!(delivery = %job.delivery_id, error = %e, "send step failed; SQS will hand the message out again");
                    false
                }
                (Err(e), Task::Recover { recovery }) => {
                    tracing::warn!(recovery = %recovery.id, error = %e, "recovery step failed; SQS will hand the message out again");
                    false
                }
            };
            (i, ok)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (webhook, e) in analytics.flush().await {
        tracing::warn!(webhook = %webhook, error = %e, "the batch's attempts to this webhook were not counted in analytics");
    }
    let mut ok = vec![false; jobs.len()];
    for (i, done) in results {
        ok[i] = done;
    }
    let copied = original_of.iter().flatten().count();
    if copied > 0 {
        tracing::info!(copies = copied, "jobs repeated within the batch share their original's outcome");
    }
    let mut response = SqsBatchResponse::default();
    for (i, (id, _)) in jobs.into_iter().enumerate() {
        let done = match original_of[i] {
            Some(first) => ok[first],
            None => ok[i],
        };
        if !done {
            response.add_failure(id);
        }
    }
    response
}

/// Longest a job holding a rate limit slot is held here until its slot: the queue
/// hands such jobs out up to a second early (see `hookline_aws::sqs::task_delay_seconds`).
const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Waits out the last fraction of a second before a rate-limited job's slot, so that
/// jobs leave at their slots, not in whole-second bursts.
async fn wait_for_slot(h: &Hookline, task: &Task) {
    let Some(job) = task.job().filter(|j| j.slotted) else { return };
    if let Ok(wait) = (job.due_at - h.clock.now()).to_std()
        && wait <= SLOT_WAIT
    {
        tokio::time::sleep(wait).await;
    }
}

/// For each message, the index of an earlier message carrying the same task (the same
/// delivery's same attempt, or the same recovery's same step), if any.
fn copies(jobs: &[(String, Option<Task>)]) -> Vec<Option<usize>> {
    let mut seen: Vec<(usize, &Task)> = Vec::new();
    jobs.iter()
        .enumerate()
        .map(|(i, (_, task))| {
            let task = task.as_ref()?;
            match seen.iter().find(|(_, t)| same(t, task)) {
                Some((first, _)) => Some(*first),
                None => {
                    seen.push((i, task));
                    None
                }
            }
        })
        .collect()
}

fn same(a: &Task, b: &Task) -> bool {
    match (a, b) {
        (Task::Attempt(x), Task::Attempt(y)) => {
            x.tenant == y.tenant && x.delivery_id == y.delivery_id && x.attempts_before == y.attempts_before
        }
        (Task::Recover { recovery: x }, Task::Recover { recovery: y }) => x.tenant == y.tenant && x.id == y.id && x.step == y.step,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_domain::delivery::{Job, RecoveryStep};
    use hookline_domain::ids::{DeliveryId, EventId, RecoveryId, TenantId, WebhookId};

    fn job(delivery: &DeliveryId, attempts_before: u32) -> Job {
        Job {
            delivery_id: delivery.clone(),
            tenant: TenantId::default_tenant(),
            webhook_id: WebhookId::generate(),
            event_id: EventId::generate(),
            attempts_before,
            manual: false,
            reopen: false,
            slotted: false,
            due_at: chrono::Utc::now(),
        }
    }

    fn step(id: &RecoveryId, step: u32) -> Task {
        let recovery = RecoveryStep {
            id: id.clone(),
            tenant: TenantId::default_tenant(),
            webhook_id: WebhookId::generate(),
            step,
            due_at: chrono::Utc::now(),
        };
        Task::Recover { recovery }
    }

    #[test]
    fn a_job_repeated_in_a_batch_points_at_its_first_copy() {
        let (a, b, r) = (DeliveryId::generate(), DeliveryId::generate(), RecoveryId::generate());
        let jobs = vec![
            ("m0".to_owned(), Some(job(&a, 0).into())),
            ("m1".to_owned(), None),
            ("m2".to_owned(), Some(job(&b, 0).into())),
            ("m3".to_owned(), Some(job(&a, 0).into())),
            ("m4".to_owned(), Some(job(&a, 1).into())),
            ("m5".to_owned(), Some(job(&b, 0).into())),
            ("m6".to_owned(), Some(step(&r, 2))),
            ("m7".to_owned(), Some(step(&r, 3))),
            ("m8".to_owned(), Some(step(&r, 2))),
        ];
        assert_eq!(copies(&jobs), vec![None, None, None, Some(0), None, Some(2), None, None, Some(6)]);
    }
}
