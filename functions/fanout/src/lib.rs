//! The fan-out Lambda's handler: for each `INSERT` stream record of the events table,
//! read the event from the new image and run the domain's fan-out step.
//!
//! - A malformed item (a producer wrote something that is not an event) is reported in
//!   the log and skipped: it never blocks the shard.
//! - A failure (DynamoDB or SQS unavailable) reports that record as the batch item
//!   failure and stops, so Lambda retries from it (`ReportBatchItemFailures`). Records
//!   before it are done; fan-out is idempotent, so a retried record is harmless.

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use hookline_aws::event_from_item;
use hookline_cache::CachedWebhookStore;
use hookline_domain::Hookline;
use hookline_domain::fanout::fan_out;
use std::sync::Arc;

/// Handles one batch of stream records, reading each tenant's webhooks once per batch.
pub async fn handle(h: &Hookline, event: Event) -> DynamoDbEventResponse {
    let h = &Hookline { webhooks: Arc::new(CachedWebhookStore::new(h.webhooks.clone())), ..h.clone() };
    let mut response = DynamoDbEventResponse::default();
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
        if let Err(e) = fan_out(h, &item).await {
            tracing::error!(event = %item.id, sequence = seq.as_deref().unwrap_or("?"), error = %e, "fan-out failed; Lambda will retry from this record");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = seq;
            response.batch_item_failures.push(failure);
            break;
        }
    }
    response
}
