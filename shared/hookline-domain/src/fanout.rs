//! The fan-out step: one event → one delivery per matching active webhook, each
//! queued for an immediate first attempt. [`fan_out`] runs it over a stored event
//! (what the DynamoDB stream and local mode's reader call); [`append`] stores a
//! published event and, where the event log can, runs it in the same write.
//!
//! Idempotent by construction: delivery ids derive from (event, webhook) and the
//! store keeps existing deliveries, so a replayed event creates nothing twice. Jobs
//! are queued for every match even on replay (a crash may have come between storing
//! and queueing); a job for a delivery that already moved on is stale and dropped.

use crate::delivery::{Delivery, Job};
use crate::event::Event;
use crate::ports::{QueueError, StoreError};
use crate::service::Hookline;
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

/// Most deliveries an event may fan out to in the write that stores it (see
/// [`append`]); an event matching more is fanned out by the log's reader, so that a
/// large fan-out never holds up the publish response.
pub const FAN_OUT_ON_APPEND_MAX: usize = 64;

/// Fans one event out. Returns the deliveries it matched (new or already stored).
pub async fn fan_out(h: &Hookline, event: &Event) -> Result<Vec<Delivery>, FanoutError> {
    let webhooks = h.webhooks.list_active(&event.tenant).await?;
    let (deliveries, jobs) = plan(h, event, &webhooks);
    if deliveries.is_empty() {
        return Ok(deliveries);
    }
    h.queue.enqueue_new(h.deliveries.as_ref(), &deliveries, &jobs).await?;
    tracing::debug!(event = %event.id, name = %event.name, deliveries = deliveries.len(), "fanned out");
    Ok(deliveries)
}

/// Stores a published event. Where the event log can store an event with its fan-out
/// in one write ([`EventLog::appends_fanned_out`](crate::ports::EventLog::appends_fanned_out):
/// local mode) and the tenant's active webhooks are at hand without a read
/// ([`WebhookStore::active_at_hand`](crate::ports::WebhookStore::active_at_hand): cached),
/// an event matching at most [`FAN_OUT_ON_APPEND_MAX`] of them is fanned out here, in
/// the write that stores it: one commit instead of two, and nothing for the log's
/// reader to read back. Otherwise the event is appended and whatever reads the log
/// (the DynamoDB stream, local mode's reader) fans it out, so a publish never waits
/// for a read of the webhooks or for a large fan-out. Either way the webhooks it goes
/// to are those active when it was stored or just after. `Conflict` if the event's id
/// exists, and then nothing is stored.
pub async fn append(h: &Hookline, event: &Event) -> Result<(), StoreError> {
    if h.events.appends_fanned_out()
        && let Some(webhooks) = h.webhooks.active_at_hand(&event.tenant)
        && webhooks.iter().filter(|w| w.wants(&event.name)).take(FAN_OUT_ON_APPEND_MAX + 1).count() <= FAN_OUT_ON_APPEND_MAX
    {
        let (deliveries, jobs) = plan(h, event, &webhooks);
        h.events.append_fanned_out(event, &deliveries, &jobs).await?;
        tracing::debug!(event = %event.id, name = %event.name, deliveries = deliveries.len(), "stored and fanned out");
        return Ok(());
    }
    h.events.append(event).await
}

/// One new delivery per active webhook of `webhooks` that wants the event, and the
/// job of its first attempt, due now.
fn plan(h: &Hookline, event: &Event, webhooks: &[Webhook]) -> (Vec<Delivery>, Vec<Job>) {
    let now = h.clock.now();
    let deliveries: Vec<Delivery> = webhooks
        .iter()
        .filter(|w| w.wants(&event.name))
        .map(|w| Delivery::new(event.tenant.clone(), w.id.clone(), event.id.clone(), event.name.clone(), now))
        .collect();
    let jobs = deliveries.iter().map(|d| d.job(now, false)).collect();
    (deliveries, jobs)
}

#[cfg(test)]
mod tests;
