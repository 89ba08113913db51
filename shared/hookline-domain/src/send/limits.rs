//! The send step's side of a webhook's rate limits ([`crate::throttle`]): taking a
//! job's place before the claim, and ending its in-flight lease after the record.

use crate::delivery::Job;
use crate::ids::{TenantId, WebhookId};
use crate::ports::{Hookline, StoreError};
use crate::throttle::{Admission, Limits, admit};
use crate::time::Timestamp;

/// Takes `job`'s place under its webhook's limits at `now`: decides with [`admit`] in
/// one atomic change of the shared state.
pub(super) async fn acquire(
    h: &Hookline,
    limits: Limits,
    job: &Job,
    lease: &str,
    lease_until: Timestamp,
    now: Timestamp,
) -> Result<Admission, StoreError> {
    let mut admission = Admission::Go;
    let slot = job.slotted.then_some(job.due_at);
    h.throttles.update(&job.tenant, &job.webhook_id, &mut |state| admission = admit(state, limits, slot, lease, lease_until, now)).await?;
    Ok(admission)
}

/// Ends an in-flight lease taken by [`acquire`]. Best effort: a lease not ended here
/// ends by itself at its time, holding a place until then.
pub(super) async fn release(h: &Hookline, tenant: &TenantId, webhook: &WebhookId, lease: &str) {
    if let Err(e) = h
        .throttles
        .update(tenant, webhook, &mut |state| {
            state.in_flight.remove(lease);
        })
        .await
    {
        tracing::warn!(webhook = %webhook, error = %e, "in-flight lease not ended; it ends at its time");
    }
}
