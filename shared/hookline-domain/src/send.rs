//! The send step: one due job → one signed HTTP attempt → the delivery's next state
//! (succeeded, retry at a later time, or failed), and the one attempt used by the
//! test endpoint.
//!
//! Order matters for crash safety. A retry is queued *before* the attempt is recorded:
//! a crash in between leaves the old job (still unacknowledged, so it comes back) and
//! a new one that is stale until the record lands, so the delivery is never orphaned.
//! The claim in the store keeps two workers from attempting one delivery at once; a
//! queue that stores a new delivery may take it for the worker it hands the job to.

use crate::delivery::{Attempt, Claim, Delivery, DeliveryStatus, Job, stored_body};
use crate::event::Event;
use crate::ids::{AttemptId, DeliveryId};
use crate::jwt;
use crate::payload::build_body;
use crate::ports::{FailureKind, HeldClaim, HttpOutcome, OutboundRequest, QueueError, SignError, StoreError};
use crate::retry::{NextAttempt, parse_retry_after};
use crate::service::Hookline;
use crate::time::Timestamp;
use crate::webhook::Webhook;
use std::time::Duration;

/// Header carrying the JWT.
pub const SIGNATURE_HEADER: &str = "X-Webhook-Signature";
/// A receiver answering this wants no more deliveries: the webhook is disabled.
pub const GONE: u16 = 410;
/// Time a claim outlives the delivery timeout, for signing and recording around the request.
pub const CLAIM_MARGIN: Duration = Duration::from_secs(30);

/// What the send step did with a job. In every case the job itself is finished and
/// may be acknowledged, except [`SendReport::Busy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendReport {
    /// Not due yet: queued again for its due time.
    Deferred,
    /// Outdated (its attempt already happened, or the delivery is finished): dropped.
    Stale,
    /// Another worker is attempting this delivery right now: try the job again later.
    Busy,
    /// The receiver answered 2xx.
    Delivered(Attempt),
    /// The attempt failed; the next one is queued.
    Retrying {
        /// The failed attempt.
        attempt: Attempt,
        /// When the next is due.
        next_at: Timestamp,
    },
    /// The delivery has failed for good: retries ran out, or its webhook or event went away.
    Failed {
        /// The last attempt, if one was made now.
        attempt: Option<Attempt>,
        /// Why.
        reason: String,
    },
}

/// Why the send step could not finish; the job stays queued and is tried again.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Store failure.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Queue failure.
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    /// Signer failure (a KMS error, say).
    #[error("signer: {0}")]
    Sign(#[from] SignError),
}

/// An attempt and what the receiver asked of the retry timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// The attempt, as recorded.
    pub attempt: Attempt,
    /// `Retry-After` from a 429 or 503 answer.
    pub retry_after: Option<Duration>,
}

/// Builds, signs and POSTs one attempt of `event` to `webhook`. Records nothing.
pub async fn attempt_once(
    h: &Hookline,
    webhook: &Webhook,
    event: &Event,
    delivery_id: &DeliveryId,
    attempt_id: AttemptId,
) -> Result<AttemptResult, SignError> {
    let attempted_at = h.clock.now();
    let body = build_body(event, webhook, delivery_id, &attempt_id, attempted_at);
    let token = jwt::sign_body(h.signer.as_ref(), &body, &attempt_id, attempted_at).await?;
    let mut headers = Vec::with_capacity(3 + webhook.headers.len());
    headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
    headers.push(("User-Agent".to_owned(), h.policy.user_agent.clone()));
    headers.extend(webhook.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    headers.push((SIGNATURE_HEADER.to_owned(), token));
    let request =
        OutboundRequest { url: webhook.endpoint_url.url().clone(), headers, body: body.into(), timeout: h.policy.delivery_timeout };
    let outcome = h.http.post(request).await;
    Ok(to_attempt(outcome, attempt_id, delivery_id.clone(), attempted_at, h.clock.now()))
}

fn to_attempt(outcome: HttpOutcome, id: AttemptId, delivery_id: DeliveryId, attempted_at: Timestamp, now: Timestamp) -> AttemptResult {
    match outcome {
        HttpOutcome::Response { status, retry_after, body, elapsed } => {
            let error = match status {
                200..=299 => None,
                300..=399 => Some(format!("receiver answered {status}; redirects are not followed")),
                _ => Some(format!("receiver answered {status}")),
            };
            let retry_after = match status {
                429 | 503 => retry_after.as_deref().and_then(|v| parse_retry_after(v, now)),
                _ => None,
            };
            let attempt = Attempt {
                id,
                delivery_id,
                attempted_at,
                status_code: Some(status),
                duration_ms: elapsed.as_millis() as u64,
                error,
                response_body: Some(stored_body(&body)),
            };
            AttemptResult { attempt, retry_after }
        }
        HttpOutcome::Failed { kind, message, elapsed } => {
            let what = match kind {
                FailureKind::Timeout => "timeout",
                FailureKind::Connect => "connection failed",
                FailureKind::Tls => "tls failed",
                FailureKind::Refused => "target refused",
                FailureKind::Protocol => "invalid http response",
            };
            let attempt = Attempt {
                id,
                delivery_id,
                attempted_at,
                status_code: None,
                duration_ms: elapsed.as_millis() as u64,
                error: Some(format!("{what}: {message}")),
                response_body: None,
            };
            AttemptResult { attempt, retry_after: None }
        }
    }
}

/// Runs one job. See the module documentation for the guarantees.
pub async fn send(h: &Hookline, job: &Job) -> Result<SendReport, SendError> {
    send_with(h, job, None).await
}

/// Runs one job, using `held` (the queue's claim on the job's delivery, see
/// [`Leased::claimed`](crate::ports::Leased::claimed)) instead of claiming the delivery
/// when the claim is for this attempt and lasts long enough for it. A claim that is too
/// short is still held, so the job is [`SendReport::Busy`] until it ends.
pub async fn send_with(h: &Hookline, job: &Job, held: Option<HeldClaim>) -> Result<SendReport, SendError> {
    let now = h.clock.now();
    if job.due_at > now {
        h.queue.enqueue(std::slice::from_ref(job)).await?;
        return Ok(SendReport::Deferred);
    }
    let lease = h.policy.delivery_timeout + CLAIM_MARGIN;
    let lease_until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    let held = held.filter(|c| {
        c.until >= lease_until
            && c.delivery.id == job.delivery_id
            && c.delivery.tenant == job.tenant
            && c.delivery.status == DeliveryStatus::Pending
            && c.delivery.attempts == job.attempts_before
    });
    let delivery = match held {
        Some(c) => c.delivery,
        None => match h.deliveries.claim(job, now, lease_until).await? {
            Claim::Claimed(d) => d,
            Claim::Stale => return Ok(SendReport::Stale),
            Claim::Busy => return Ok(SendReport::Busy),
        },
    };
    match send_claimed(h, job, delivery).await {
        Ok(report) => Ok(report),
        Err(e) => {
            // Best effort: an unreleased claim only delays the retry until the lease ends.
            if let Err(release) = h.deliveries.release(&job.tenant, &job.delivery_id).await {
                tracing::warn!(delivery = %job.delivery_id, error = %release, "could not release claim");
            }
            Err(e)
        }
    }
}

/// Saves a webhook's status after the send step changed it, logging a disable. Its
/// other pending deliveries end when they fall due (the send step finds it inactive).
async fn save_status(h: &Hookline, webhook: &Webhook) -> Result<(), SendError> {
    match h.webhooks.update_status(webhook).await {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    if let (false, Some(reason)) = (webhook.active, &webhook.disabled_reason) {
        tracing::warn!(webhook = %webhook.id, tenant = %webhook.tenant, reason, "webhook disabled");
    }
    Ok(())
}

async fn close(h: &Hookline, mut delivery: Delivery, reason: &str) -> Result<SendReport, SendError> {
    delivery.status = DeliveryStatus::Failed;
    delivery.next_attempt_at = None;
    match h.deliveries.close(&delivery).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Ok(SendReport::Stale),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(delivery = %delivery.id, reason, "delivery ended");
    Ok(SendReport::Failed { attempt: None, reason: reason.to_owned() })
}

async fn send_claimed(h: &Hookline, job: &Job, mut delivery: Delivery) -> Result<SendReport, SendError> {
    let webhook = match h.webhooks.get(&job.tenant, &job.webhook_id).await {
        Ok(w) if w.active => w,
        Ok(_) => return close(h, delivery, "webhook is disabled").await,
        Err(StoreError::NotFound) => return close(h, delivery, "webhook was deleted").await,
        Err(e) => return Err(e.into()),
    };
    let event = match h.events.get(&job.tenant, &job.event_id).await {
        Ok(e) => e,
        Err(StoreError::NotFound) => return close(h, delivery, "event no longer exists").await,
        Err(e) => return Err(e.into()),
    };
    let AttemptResult { attempt, retry_after } = attempt_once(h, &webhook, &event, &delivery.id, AttemptId::generate()).await?;
    let now = h.clock.now();
    delivery.attempts += 1;
    delivery.last_status_code = attempt.status_code;
    delivery.last_attempt_at = Some(attempt.attempted_at);
    let report = if attempt.succeeded() {
        delivery.status = DeliveryStatus::Succeeded;
        delivery.delivered_at = Some(now);
        delivery.next_attempt_at = None;
        SendReport::Delivered(attempt.clone())
    } else if attempt.status_code == Some(GONE) {
        // The receiver says the endpoint is gone for good: stop sending to it at all.
        let mut webhook = webhook.clone();
        webhook.disable(format!("receiver answered {GONE} Gone"), now);
        save_status(h, &webhook).await?;
        delivery.status = DeliveryStatus::Failed;
        delivery.next_attempt_at = None;
        SendReport::Failed { attempt: Some(attempt.clone()), reason: "receiver answered 410 Gone; webhook disabled".to_owned() }
    } else {
        let next = if job.manual { NextAttempt::GiveUp } else { h.policy.retry.next_attempt(delivery.attempts, retry_after, now) };
        match next {
            NextAttempt::RetryAt(at) => {
                delivery.next_attempt_at = Some(at);
                h.queue.enqueue(&[delivery.job(at, false)]).await?;
                SendReport::Retrying { attempt: attempt.clone(), next_at: at }
            }
            NextAttempt::GiveUp => {
                delivery.status = DeliveryStatus::Failed;
                delivery.next_attempt_at = None;
                let reason = if job.manual { "redelivery failed" } else { "retries exhausted" };
                SendReport::Failed { attempt: Some(attempt.clone()), reason: reason.to_owned() }
            }
        }
    };
    match h.deliveries.record_attempt(&delivery, &attempt).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            tracing::warn!(delivery = %delivery.id, "attempt recorded concurrently; dropping this record");
            return Ok(SendReport::Stale);
        }
        Err(e) => return Err(e.into()),
    }
    // A finished delivery counts towards the webhook's health (auto-disable). Manual
    // redeliveries and 410s (already handled) do not.
    let finished = matches!(report, SendReport::Delivered(_))
        || matches!(&report, SendReport::Failed { .. } if !job.manual && attempt.status_code != Some(GONE));
    if finished {
        let mut w = webhook.clone();
        if w.record_delivery_outcome(matches!(report, SendReport::Delivered(_)), now, &h.policy.auto_disable) {
            save_status(h, &w).await?;
        }
    }
    tracing::debug!(delivery = %delivery.id, attempt = %attempt.id, status = ?attempt.status_code, "attempt recorded");
    Ok(report)
}

#[cfg(test)]
mod tests;
