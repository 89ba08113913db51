//! The fan-out step: one event → one delivery per matching active webhook, each
//! queued for an immediate first attempt. [`fan_out`] runs it over a stored event
//! (what the DynamoDB stream's Lambda and local mode's reader call); [`plan`] is its
//! pure part, which an adapter may also use to store an event with its fan-out in one
//! write (local mode does).
//!
//! Idempotent by construction: delivery ids derive from (event, webhook) and the
//! store keeps existing deliveries, so a replayed event creates nothing twice. Jobs
//! are queued for every match even on replay (a crash may have come between storing
//! and queueing); a job for a delivery that already moved on is stale and dropped.

use crate::delivery::{Delivery, Job, Task};
use crate::event::Event;
use crate::metrics::Metric;
use crate::ports::{Hookline, QueueError, StoreError};
use crate::time::Timestamp;
use crate::webhook::Webhook;

/// Why fan-out could not finish; the event is to be fanned out again later.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// Reading webhooks or writing deliveries failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Queueing the first attempts failed.
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

impl FanoutError {
    /// Whether the store or queue cannot take writes for now (said once by the adapter).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, FanoutError::Store(StoreError::Unavailable(_)) | FanoutError::Queue(QueueError::Unavailable(_)))
    }
}

/// Fans one event out: the deliveries first, then their jobs, so a job never exists
/// without its delivery. Returns the deliveries it planned (new, or already stored by
/// an earlier run over the same event).
pub async fn fan_out(h: &Hookline, event: &Event) -> Result<Vec<Delivery>, FanoutError> {
    let (deliveries, jobs) = create_deliveries(h, event).await?;
    if !jobs.is_empty() {
        h.queue.enqueue(&jobs.into_iter().map(Task::from).collect::<Vec<_>>()).await?;
    }
    tracing::debug!(event = %event.id, name = %event.name, deliveries = deliveries.len(), "fanned out");
    Ok(deliveries)
}

/// The first half of [`fan_out`]: stores the event's deliveries and returns them with
/// their jobs, which the caller must queue before it counts the event as fanned out
/// (the AWS fan-out handler queues the jobs of a whole stream batch together).
pub async fn create_deliveries(h: &Hookline, event: &Event) -> Result<(Vec<Delivery>, Vec<Job>), FanoutError> {
    let webhooks = h.webhooks.list_active(&event.tenant).await?;
    let (deliveries, jobs) = plan(event, &webhooks, h.clock.now());
    if !deliveries.is_empty() {
        h.deliveries.create(&deliveries).await?;
    }
    h.metrics.record(Metric::EventPublished);
    h.metrics.record(Metric::DeliveriesCreated(deliveries.len() as u64));
    Ok((deliveries, jobs))
}

/// One new delivery per active webhook of `webhooks` that wants the event, and the
/// job of its first attempt, due at `now`.
pub fn plan(event: &Event, webhooks: &[Webhook], now: Timestamp) -> (Vec<Delivery>, Vec<Job>) {
    // An operational event is never delivered to the webhook it is about.
    let about = crate::operational::subject_webhook(event);
    let wanted = webhooks.iter().filter(|w| w.wants(&event.name) && about.as_deref() != Some(w.id.as_str()));
    // The event's fields are read only when a webhook has a filter to check them with.
    // A document past what the JSON reader takes (nesting over 128 levels, a number
    // beyond f64) passes no filter, and says so.
    let mut fields: Option<Option<serde_json::Value>> = None;
    let deliveries: Vec<Delivery> = wanted
        .filter(|w| {
            if w.policy.filter.is_none() {
                return true;
            }
            let parsed = fields.get_or_insert_with(|| serde_json::from_str(event.document.get()).ok());
            if parsed.is_none() {
                tracing::warn!(event = %event.id, webhook = %w.id, "event not delivered: its fields could not be read for the webhook's filter");
            }
            parsed.as_ref().is_some_and(|f| w.wants_fields(f))
        })
        .map(|w| Delivery::new(event.tenant.clone(), w.id.clone(), event.id.clone(), event.name.clone(), event.created_at, now))
        .collect();
    let jobs = deliveries.iter().map(|d| d.job(now, false)).collect();
    (deliveries, jobs)
}

#[cfg(test)]
mod tests;
