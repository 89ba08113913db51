//! The fan-out Lambda's handler: for each `INSERT` stream record of the events table,
//! read the event from the new image, store its deliveries (the domain's
//! `create_deliveries`), and queue the jobs of the whole batch together, ten to an
//! SQS request, rather than a request per event.
//!
//! - A malformed item (a producer wrote something that is not an event) is reported in
//!   the log and skipped: it never blocks the shard.
//! - A failure (DynamoDB or SQS unavailable) reports as the batch item failure the
//!   earliest record whose jobs are not all queued, and stops, so Lambda retries from
//!   it (`ReportBatchItemFailures`). Records before it are done; fan-out is
//!   idempotent, so a retried record is harmless (its jobs already queued are stale
//!   or shared with their copies by the sender).

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use hookline_aws::event_from_item;
use hookline_cache::CachedWebhookStore;
use hookline_domain::Hookline;
use hookline_domain::delivery::{Job, Task};
use hookline_domain::fanout::create_deliveries;
use std::sync::Arc;

/// Jobs per SQS `SendMessageBatch` request.
const SQS_BATCH: usize = 10;

/// Handles one batch of stream records, reading each tenant's webhooks once per batch.
pub async fn handle(h: &Hookline, event: Event) -> DynamoDbEventResponse {
    let h = &Hookline { webhooks: Arc::new(CachedWebhookStore::new(h.webhooks.clone())), ..h.clone() };
    // Jobs not yet queued, each with the sequence number of the record it came from.
    let mut pending: Vec<(Option<String>, Job)> = Vec::new();
    let mut failed: Option<Option<String>> = None;
    for record in event.records {
        if record.event_name != "INSERT" {
            continue;
        }
        let seq = record.change.sequence_number.clone();
        let item = match event_from_item(record.change.new_image) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(sequence = seq.as_deref().unwrap_or("?"), error = %e, "malformed events item skipped");
                continue;
            }
        };
        match create_deliveries(h, &item).await {
            Ok((_, jobs)) => pending.extend(jobs.into_iter().map(|j| (seq.clone(), j))),
            Err(e) => {
                tracing::error!(event = %item.id, sequence = seq.as_deref().unwrap_or("?"), error = %e, "fan-out failed; Lambda will retry from this record");
                // Queue what the records before it made; retry from the earliest unqueued.
                failed = Some(seq);
                break;
            }
        }
        if let Err(earliest) = queue(h, &mut pending, SQS_BATCH).await {
            failed = Some(earliest);
            break;
        }
    }
    if let Err(earliest) = queue(h, &mut pending, 1).await {
        failed = Some(earliest);
    }
    let mut response = DynamoDbEventResponse::default();
    if let Some(seq) = failed {
        // The earliest record with work left: its own failure, or jobs not queued.
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = seq;
        response.batch_item_failures.push(failure);
    }
    response
}

/// Queues pending jobs in requests of up to ten while at least `min` wait. On a
/// failure, the sequence number of the earliest record whose jobs are not all queued.
async fn queue(h: &Hookline, pending: &mut Vec<(Option<String>, Job)>, min: usize) -> Result<(), Option<String>> {
    while pending.len() >= min.max(1) {
        let n = pending.len().min(SQS_BATCH);
        let jobs: Vec<Task> = pending[..n].iter().map(|(_, j)| j.clone().into()).collect();
        if let Err(e) = h.queue.enqueue(&jobs).await {
            let earliest = pending[0].0.clone();
            tracing::error!(sequence = earliest.as_deref().unwrap_or("?"), error = %e, "queueing first attempts failed; Lambda will retry from this record");
            return Err(earliest);
        }
        pending.drain(..n);
    }
    Ok(())
}
