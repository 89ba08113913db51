//! The sender Lambda's handler: each SQS message is a delivery job; run the domain's
//! send step on it and report per message.
//!
//! A message is reported as a batch item failure, so SQS hands it out again after its
//! visibility timeout, when its body is not a job (after `maxReceiveCount` it lands in
//! the dead-letter queue, never silently dropped), when another worker holds the
//! delivery, or when the step failed (a KMS or DynamoDB error). Everything else is
//! finished, including a job that was not due yet and was re-queued for its remaining
//! delay.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use futures::StreamExt;
use hookline_cache::{CachedEventLog, CachedWebhookStore};
use hookline_domain::Hookline;
use hookline_domain::delivery::Job;
use hookline_domain::send::{SendReport, send};
use std::sync::Arc;

/// Messages of one batch handled at once; a batch holds at most 10.
const CONCURRENCY: usize = 10;

/// Events kept per invocation (a batch holds at most 10 messages).
const EVENT_CACHE: usize = 16;

/// Handles one batch of messages. Within the batch each event and each webhook is read
/// once: the messages of one fan-out usually share their event.
pub async fn handle(h: &Hookline, event: SqsEvent) -> SqsBatchResponse {
    let h = &Hookline {
        events: Arc::new(CachedEventLog::new(h.events.clone(), EVENT_CACHE)),
        webhooks: Arc::new(CachedWebhookStore::new(h.webhooks.clone())),
        ..h.clone()
    };
    let jobs: Vec<(String, Option<Job>)> = event
        .records
        .into_iter()
        .map(|m| {
            let id = m.message_id.clone().unwrap_or_default();
            let job = m.body.as_deref().and_then(|b| serde_json::from_str::<Job>(b).ok());
            (id, job)
        })
        .collect();
    // Each event of the batch read once, before the concurrent sends would all miss the
    // cache together. A read that fails here is left to the send step, which reports it.
    let mut warmed = Vec::new();
    for job in jobs.iter().filter_map(|(_, j)| j.as_ref()) {
        if !warmed.contains(&(&job.tenant, &job.event_id)) {
            warmed.push((&job.tenant, &job.event_id));
            let _ = h.events.get(&job.tenant, &job.event_id).await;
        }
    }
    let results: Vec<(String, bool)> = futures::stream::iter(jobs)
        .map(|(id, job)| async move {
            let Some(job) = job else {
                tracing::error!(message = %id, "message is not a delivery job; left for the dead-letter queue");
                return (id, false);
            };
            let ok = match send(h, &job).await {
                Ok(SendReport::Busy) => false,
                Ok(report) => {
                    tracing::info!(delivery = %job.delivery_id, ?report, "job done");
                    true
                }
                Err(e) => {
                    tracing::warn!(delivery = %job.delivery_id, error = %e, "send step failed; SQS will hand the message out again");
                    false
                }
            };
            (id, ok)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for (id, ok) in results {
        if !ok {
            response.add_failure(id);
        }
    }
    response
}
