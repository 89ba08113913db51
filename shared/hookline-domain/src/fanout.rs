//! The fan-out step: one event → one delivery per matching active webhook, each
//! queued for an immediate first attempt.
//!
//! Idempotent by construction: delivery ids derive from (event, webhook) and the
//! store keeps existing deliveries, so a replayed event creates nothing twice. Jobs
//! are queued for every match even on replay (a crash may have come between storing
//! and queueing); a job for a delivery that already moved on is stale and dropped.

use crate::delivery::Delivery;
use crate::event::Event;
use crate::ports::{QueueError, StoreError};
use crate::service::Hookline;

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

/// Fans one event out. Returns the deliveries it matched (new or already stored).
pub async fn fan_out(h: &Hookline, event: &Event) -> Result<Vec<Delivery>, FanoutError> {
    let webhooks = h.webhooks.list_active(&event.tenant).await?;
    let now = h.clock.now();
    let deliveries: Vec<Delivery> = webhooks
        .iter()
        .filter(|w| w.wants(&event.name))
        .map(|w| Delivery::new(event.tenant.clone(), w.id.clone(), event.id.clone(), event.name.clone(), now))
        .collect();
    if deliveries.is_empty() {
        return Ok(deliveries);
    }
    let jobs: Vec<_> = deliveries.iter().map(|d| d.job(now, false)).collect();
    h.queue.enqueue_new(h.deliveries.as_ref(), &deliveries, &jobs).await?;
    tracing::debug!(event = %event.id, name = %event.name, deliveries = deliveries.len(), "fanned out");
    Ok(deliveries)
}
