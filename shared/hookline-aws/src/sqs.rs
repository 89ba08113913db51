//! The SQS delivery queue: delivery jobs and recovery steps. A task's due time becomes
//! the message's `DelaySeconds`, capped at SQS's 900 s: longer waits are chains of
//! hops, each re-queued by the send step until the task is due. Messages carry ids
//! only, never the payload.

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use hookline_domain::delivery::Task;
use hookline_domain::ports::{DeliveryQueue, Leased, QueueError};
use hookline_domain::time::Timestamp;
use std::time::Duration;

/// SQS's longest message delay.
pub const MAX_DELAY_SECS: i64 = 900;
/// SQS's largest batch.
const BATCH: usize = 10;

/// Delivery jobs and recovery steps in an SQS queue.
#[derive(Debug, Clone)]
pub struct SqsDeliveryQueue {
    client: aws_sdk_sqs::Client,
    url: String,
    /// Longest single hop, in seconds: SQS's 900 unless configured lower
    /// (`HOOKLINE_SQS_MAX_DELAY`, which tests use to compress long waits into short hops).
    max_delay_secs: i64,
}

impl SqsDeliveryQueue {
    /// A queue at `url` with SQS's own delay cap.
    pub fn new(client: aws_sdk_sqs::Client, url: &str) -> Self {
        Self::with_max_delay(client, url, MAX_DELAY_SECS)
    }

    /// A queue at `url` whose hops are at most `max_delay_secs` (1 to 900).
    pub fn with_max_delay(client: aws_sdk_sqs::Client, url: &str, max_delay_secs: i64) -> Self {
        SqsDeliveryQueue { client, url: url.to_owned(), max_delay_secs: max_delay_secs.clamp(1, MAX_DELAY_SECS) }
    }
}

/// Whole seconds until `due`, rounded up, at most `cap`.
pub fn delay_seconds(due: Timestamp, now: Timestamp, cap: i64) -> i32 {
    let micros = (due - now).num_microseconds().unwrap_or(i64::MAX);
    let secs = if micros <= 0 { 0 } else { (micros + 999_999) / 1_000_000 };
    secs.min(cap) as i32
}

/// The delay of a task. A job holding a rate limit slot ([`Job::slotted`]) is rounded
/// down, so it is taken up to a second early and the sender waits out the rest: jobs
/// of one second then leave at their slots instead of together at the next whole
/// second. Everything else is rounded up (never taken early).
///
/// [`Job::slotted`]: hookline_domain::delivery::Job::slotted
pub fn task_delay_seconds(task: &Task, now: Timestamp, cap: i64) -> i32 {
    match task.job() {
        Some(job) if job.slotted => {
            let micros = (job.due_at - now).num_microseconds().unwrap_or(i64::MAX);
            (micros.max(0) / 1_000_000).min(cap) as i32
        }
        _ => delay_seconds(task.due_at(), now, cap),
    }
}

fn sqs_err(op: &str, e: impl std::error::Error + Send + Sync + 'static) -> QueueError {
    QueueError::Unknown(anyhow::anyhow!("sqs {op}: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))
}

#[async_trait]
impl DeliveryQueue for SqsDeliveryQueue {
    async fn enqueue(&self, tasks: &[Task]) -> Result<(), QueueError> {
        let now = chrono::Utc::now();
        for chunk in tasks.chunks(BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, task)| {
                    let body = serde_json::to_string(task).map_err(|e| QueueError::Unknown(e.into()))?;
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .delay_seconds(task_delay_seconds(task, now, self.max_delay_secs))
                        .build()
                        .map_err(|e| QueueError::Unknown(e.into()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sqs_err("SendMessageBatch", e))?;
            if let Some(f) = out.failed().first() {
                return Err(QueueError::Unknown(anyhow::anyhow!(
                    "sqs SendMessageBatch: entry {} failed: {}",
                    f.id(),
                    f.message().unwrap_or(f.code())
                )));
            }
        }
        Ok(())
    }

    async fn take_due(&self, _now: Timestamp, max: usize, lease: Duration) -> Result<Vec<Leased>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, BATCH) as i32)
            .visibility_timeout(lease.as_secs().clamp(1, 43_200) as i32)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| sqs_err("ReceiveMessage", e))?;
        let mut taken = Vec::new();
        for m in out.messages() {
            let receipt = m.receipt_handle().unwrap_or_default().to_owned();
            match serde_json::from_str::<Task>(m.body().unwrap_or_default()) {
                Ok(task) => taken.push(Leased { receipt, task }),
                // Left in the queue: after maxReceiveCount it lands in the dead-letter queue.
                Err(e) => {
                    tracing::error!(message = m.message_id().unwrap_or_default(), error = %e, "unreadable queue message left for the DLQ")
                }
            }
        }
        Ok(taken)
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.client.delete_message().queue_url(&self.url).receipt_handle(receipt).send().await.map_err(|e| sqs_err("DeleteMessage", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_and_cap_at_fifteen_minutes() {
        let now = chrono::Utc::now();
        assert_eq!(delay_seconds(now, now, 900), 0);
        assert_eq!(delay_seconds(now - chrono::Duration::seconds(5), now, 900), 0);
        assert_eq!(delay_seconds(now + chrono::Duration::milliseconds(1), now, 900), 1);
        assert_eq!(delay_seconds(now + chrono::Duration::seconds(120), now, 900), 120);
        assert_eq!(delay_seconds(now + chrono::Duration::hours(5), now, 900), 900);
        assert_eq!(delay_seconds(now + chrono::Duration::hours(5), now, 2), 2);
    }

    #[test]
    fn a_job_holding_a_rate_limit_slot_rounds_down_everything_else_up() {
        use hookline_domain::catalog::EventName;
        use hookline_domain::delivery::Delivery;
        use hookline_domain::ids::{EventId, TenantId, WebhookId};
        let now = chrono::Utc::now();
        let d = Delivery::new(
            TenantId::default_tenant(),
            WebhookId::generate(),
            EventId::generate(),
            EventName::parse("a.b").unwrap(),
            now,
            now,
        );
        let due = now + chrono::Duration::milliseconds(1_400);
        let plain: Task = d.job(due, false).into();
        let slotted: Task = hookline_domain::delivery::Job { slotted: true, ..d.job(due, false) }.into();
        assert_eq!(task_delay_seconds(&plain, now, 900), 2);
        assert_eq!(task_delay_seconds(&slotted, now, 900), 1);
        let soon: Task = hookline_domain::delivery::Job { slotted: true, ..d.job(now + chrono::Duration::milliseconds(400), false) }.into();
        assert_eq!(task_delay_seconds(&soon, now, 900), 0);
        let far: Task = hookline_domain::delivery::Job { slotted: true, ..d.job(now + chrono::Duration::hours(1), false) }.into();
        assert_eq!(task_delay_seconds(&far, now, 900), 900);
    }
}
