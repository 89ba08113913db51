//! The send step: one due job → one signed HTTP attempt → the delivery's next state
//! (succeeded, retry at a later time, or failed), and the one attempt used by the
//! test endpoint.
//!
//! Order matters for crash safety. A retry is queued *before* the attempt is recorded:
//! a crash in between leaves the old job (still unacknowledged, so it comes back) and
//! a new one that is stale until the record lands, so the delivery is never orphaned.
//! The claim in the store keeps two workers from attempting one delivery at once.

use crate::analytics;
use crate::delivery::{Attempt, Claim, Delivery, DeliveryStatus, Job};
use crate::event::Event;
use crate::ids::{AttemptId, DeliveryId};
use crate::jwt::{self, Claims};
use crate::metrics::{DisableReason, Metric, OutcomeClass};
use crate::operational::{self, Operational};
use crate::payload::build_body;
use crate::ports::{Hookline, OutboundRequest, QueueError, SealError, SignError, Signer, StoreError};
use crate::retry::NextAttempt;
use crate::throttle::Admission;
use crate::time::Timestamp;
use crate::webhook::secrets::{self, signature_header};
use crate::webhook::{Scheme, SigningSecret, Webhook};
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
    /// The webhook's rate limits hold it back: queued again, due `until`.
    Throttled {
        /// When it looks again.
        until: Timestamp,
    },
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

impl SendError {
    /// Whether the store or queue cannot take writes for now (said once by the adapter).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SendError::Store(StoreError::Unavailable(_)) | SendError::Queue(QueueError::Unavailable(_)))
    }
}

/// An attempt and what the receiver asked of the retry timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// The attempt, as recorded.
    pub attempt: Attempt,
    /// `Retry-After` from a 429 or 503 answer.
    pub retry_after: Option<Duration>,
    /// What it came to, as the metrics' label.
    pub outcome: OutcomeClass,
}

/// Signs the body of one attempt: the compact JWT for [`SIGNATURE_HEADER`].
pub async fn sign_body(signer: &dyn Signer, body: &[u8], attempt: &AttemptId, now: Timestamp) -> Result<String, SignError> {
    let kid = signer.current_key_id().await?;
    let input = jwt::signing_input(&kid, &Claims::for_body(body, attempt, now)).map_err(|e| SignError::Unknown(e.into()))?;
    let signature = signer.sign(input.as_bytes()).await?;
    Ok(jwt::compact(&input, &signature))
}

/// The Standard Webhooks secrets that sign an attempt to `w` at `now`, opened: the
/// current one first, then older ones in their grace period.
pub async fn signing_secrets(h: &Hookline, w: &Webhook, now: Timestamp) -> Result<Vec<SigningSecret>, SealError> {
    let mut out = Vec::new();
    for s in secrets::valid_at(&w.secrets, now) {
        out.push(h.secrets.open(&w.tenant, &w.id, &s.sealed).await?);
    }
    Ok(out)
}

/// The signature headers of one attempt: the JWT, Standard Webhooks' three, or both,
/// as the webhook asks.
async fn signature_headers(
    h: &Hookline,
    webhook: &Webhook,
    body: &[u8],
    delivery_id: &DeliveryId,
    attempt_id: &AttemptId,
    now: Timestamp,
) -> Result<Vec<(String, String)>, SignError> {
    let mut headers = Vec::with_capacity(4);
    if webhook.signs_with(Scheme::StandardWebhooks) {
        let secrets = signing_secrets(h, webhook, now)
            .await
            .map_err(|e| SignError::Unknown(anyhow::anyhow!("opening the webhook's secrets: {e}")))?;
        if secrets.is_empty() {
            return Err(SignError::Unknown(anyhow::anyhow!("webhook {} signs with standard_webhooks but has no valid secret", webhook.id)));
        }
        let timestamp = now.timestamp();
        headers.push(("webhook-id".to_owned(), delivery_id.to_string()));
        headers.push(("webhook-timestamp".to_owned(), timestamp.to_string()));
        headers.push(("webhook-signature".to_owned(), signature_header(&secrets, delivery_id.as_str(), timestamp, body)));
    }
    if webhook.signs_with(Scheme::Jwt) {
        headers.push((SIGNATURE_HEADER.to_owned(), sign_body(h.signer.as_ref(), body, attempt_id, now).await?));
    }
    Ok(headers)
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
    let signing = std::time::Instant::now();
    let signatures = signature_headers(h, webhook, &body, delivery_id, &attempt_id, attempted_at).await?;
    h.metrics.record(Metric::Signing(signing.elapsed()));
    let headers = request_headers(h, webhook, signatures);
    let request = OutboundRequest {
        method: webhook.policy.method,
        url: webhook.endpoint_url.url().clone(),
        headers,
        body: body.into(),
        timeout: h.policy.delivery_timeout,
    };
    let outcome = h.http.post(request).await;
    Ok(to_attempt(outcome, attempt_id, delivery_id.clone(), attempted_at, h.clock.now()))
}

/// An attempt's headers: content type, user agent, the webhook's own, the signatures.
fn request_headers(h: &Hookline, webhook: &Webhook, signatures: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut headers = Vec::with_capacity(2 + webhook.headers.len() + signatures.len());
    headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
    headers.push(("User-Agent".to_owned(), h.policy.user_agent.clone()));
    headers.extend(webhook.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    headers.extend(signatures);
    headers
}

/// What a rebuilt request shows in place of a signature, which is made per attempt and
/// not kept.
pub const NOT_STORED: &str = "(not stored)";

/// The headers and body of an attempt made at `attempted_at`, rebuilt as
/// [`attempt_once`] built them, from the event and the webhook as they are now (an
/// attempt keeps only its outcome): every header but the signatures' values, which read
/// [`NOT_STORED`].
pub fn rebuilt_request(
    h: &Hookline,
    webhook: &Webhook,
    event: &Event,
    delivery_id: &DeliveryId,
    attempt_id: &AttemptId,
    attempted_at: Timestamp,
) -> (Vec<(String, String)>, Vec<u8>) {
    let body = build_body(event, webhook, delivery_id, attempt_id, attempted_at);
    let mut signatures = Vec::new();
    if webhook.signs_with(Scheme::StandardWebhooks) {
        signatures.push(("webhook-id".to_owned(), delivery_id.to_string()));
        signatures.push(("webhook-timestamp".to_owned(), attempted_at.timestamp().to_string()));
        signatures.push(("webhook-signature".to_owned(), NOT_STORED.to_owned()));
    }
    if webhook.signs_with(Scheme::Jwt) {
        signatures.push((SIGNATURE_HEADER.to_owned(), NOT_STORED.to_owned()));
    }
    (request_headers(h, webhook, signatures), body)
}

/// Runs one job. See the module documentation for the guarantees.
pub async fn send(h: &Hookline, job: &Job) -> Result<SendReport, SendError> {
    let now = h.clock.now();
    if job.due_at > now {
        h.queue.enqueue(&[job.clone().into()]).await?;
        return Ok(SendReport::Deferred);
    }
    let lease = h.policy.delivery_timeout + CLAIM_MARGIN;
    let lease_until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    let webhook = match h.webhooks.get(&job.tenant, &job.webhook_id).await {
        Ok(w) => Some(w),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    // The webhook's rate limits come before the claim: a job that must wait goes back
    // to the queue without touching its delivery.
    let attempt_id = AttemptId::generate();
    let limits = webhook.as_ref().filter(|w| w.active).and_then(|w| w.policy.limits());
    let in_flight = limits.is_some_and(|l| l.max_in_flight.is_some());
    if let Some(limits) = limits {
        let admission = match limits::acquire(h, limits, job, attempt_id.as_str(), lease_until, now).await {
            Ok(a) => a,
            Err(e) => {
                // The change may have landed with its answer lost: end the lease it took.
                if in_flight {
                    limits::release(h, &job.tenant, &job.webhook_id, attempt_id.as_str()).await;
                }
                return Err(e.into());
            }
        };
        match admission {
            Admission::Go => {}
            Admission::Wait { until, slotted } => {
                h.queue.enqueue(&[Job { due_at: until, slotted, ..job.clone() }.into()]).await?;
                return Ok(SendReport::Throttled { until });
            }
        }
    }
    let report = claim_and_send(h, job, webhook, attempt_id.clone(), now, lease_until).await;
    if in_flight {
        limits::release(h, &job.tenant, &job.webhook_id, attempt_id.as_str()).await;
    }
    report
}

async fn claim_and_send(
    h: &Hookline,
    job: &Job,
    webhook: Option<Webhook>,
    attempt_id: AttemptId,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<SendReport, SendError> {
    let delivery = match h.deliveries.claim(job, now, lease_until).await? {
        Claim::Claimed(d) => d,
        Claim::Stale => return Ok(SendReport::Stale),
        Claim::Busy => return Ok(SendReport::Busy),
    };
    match send_claimed(h, job, delivery, webhook, attempt_id).await {
        Ok(report) => Ok(report),
        Err(e) => {
            // Best effort: an unreleased claim only delays the retry until the lease ends.
            if let Err(release) = h.deliveries.release(&job.tenant, &job.webhook_id, &job.delivery_id).await {
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
    tracing::info!(event = %delivery.event_id, delivery = %delivery.id, webhook = %delivery.webhook_id, reason, "delivery ended");
    h.metrics.record(Metric::DeliveryFailed);
    Ok(SendReport::Failed { attempt: None, reason: reason.to_owned() })
}

/// Where a claimed delivery goes: its active webhook (as read before the claim) and
/// its event, or (`Err`) why it ends without an attempt.
async fn target(h: &Hookline, job: &Job, webhook: Option<Webhook>) -> Result<Result<(Webhook, Event), &'static str>, SendError> {
    let webhook = match webhook {
        Some(w) if w.active => w,
        Some(_) => return Ok(Err("webhook is disabled")),
        None => return Ok(Err("webhook was deleted")),
    };
    match h.events.get(&job.tenant, &job.event_id).await {
        Ok(event) => Ok(Ok((webhook, event))),
        Err(StoreError::NotFound) => Ok(Err("event no longer exists")),
        Err(e) => Err(e.into()),
    }
}

async fn send_claimed(
    h: &Hookline,
    job: &Job,
    mut delivery: Delivery,
    webhook: Option<Webhook>,
    attempt_id: AttemptId,
) -> Result<SendReport, SendError> {
    let (webhook, event) = match target(h, job, webhook).await? {
        Ok(found) => found,
        Err(reason) => return close(h, delivery, reason).await,
    };
    let AttemptResult { attempt, retry_after, outcome } = attempt_once(h, &webhook, &event, &delivery.id, attempt_id).await?;
    let now = h.clock.now();
    let lag = (attempt.attempted_at - job.due_at).to_std().unwrap_or_default();
    let duration = Duration::from_millis(attempt.duration_ms);
    h.metrics.record(Metric::Attempt { outcome, duration, lag });
    delivery.attempts += 1;
    delivery.last_status_code = attempt.status_code;
    delivery.last_attempt_at = Some(attempt.attempted_at);
    let report = settle(h, job, &webhook, &mut delivery, &attempt, retry_after, now).await?;
    match h.deliveries.record_attempt(&delivery, &attempt).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            tracing::warn!(delivery = %delivery.id, "attempt recorded concurrently; dropping this record");
            return Ok(SendReport::Stale);
        }
        Err(e) => return Err(e.into()),
    }
    // What follows the record is told once the attempt is stored: its outcome, its
    // analytics counts and the operational events (best effort).
    analytics::record(h, &delivery, &attempt, outcome).await;
    match &report {
        SendReport::Delivered(_) => h.metrics.record(Metric::DeliverySucceeded),
        SendReport::Failed { .. } => h.metrics.record(Metric::DeliveryFailed),
        _ => {}
    }
    if attempt.status_code == Some(GONE) {
        let mut disabled = webhook.clone();
        disabled.disable(gone_reason(), now);
        h.metrics.record(Metric::WebhookDisabled(DisableReason::Gone));
        let last = Some((&delivery, &attempt, &event));
        operational::publish(h, Operational::WebhookDisabled { webhook: &disabled, last }).await;
    }
    // A finished delivery counts towards the webhook's health (auto-disable). Manual
    // redeliveries and 410s (already handled) do not.
    let finished = matches!(report, SendReport::Delivered(_))
        || matches!(&report, SendReport::Failed { .. } if !job.manual && attempt.status_code != Some(GONE));
    if let SendReport::Failed { reason, .. } = &report
        && !event.name.is_operational()
    {
        let last = (&delivery, &attempt, &event);
        operational::publish(h, Operational::DeliveryFailed { webhook: &webhook, last, reason }).await;
    }
    if finished {
        let mut w = webhook;
        let was_failing = w.failing_since.is_some();
        if w.record_delivery_outcome(matches!(report, SendReport::Delivered(_)), now, &h.policy.auto_disable) {
            save_status(h, &w).await?;
            let last = (&delivery, &attempt, &event);
            if !w.active {
                h.metrics.record(Metric::WebhookDisabled(DisableReason::Failing));
                operational::publish(h, Operational::WebhookDisabled { webhook: &w, last: Some(last) }).await;
            } else if was_failing && w.failing_since.is_none() {
                operational::publish(h, Operational::WebhookRecovered { webhook: &w, last }).await;
            }
        }
    }
    tracing::debug!(
        event = %delivery.event_id,
        delivery = %delivery.id,
        webhook = %delivery.webhook_id,
        attempt = %attempt.id,
        status = ?attempt.status_code,
        outcome = outcome.as_str(),
        "attempt recorded"
    );
    Ok(report)
}

/// Decides the delivery's next state after `attempt`, and does what must happen
/// before the attempt is recorded: queues the retry (so a crash before the record
/// cannot orphan the delivery), or disables the webhook on a 410.
/// Why a 410 disabled a webhook.
fn gone_reason() -> String {
    format!("receiver answered {GONE} Gone")
}

async fn settle(
    h: &Hookline,
    job: &Job,
    webhook: &Webhook,
    delivery: &mut Delivery,
    attempt: &Attempt,
    retry_after: Option<Duration>,
    now: Timestamp,
) -> Result<SendReport, SendError> {
    if attempt.succeeded() {
        delivery.status = DeliveryStatus::Succeeded;
        delivery.delivered_at = Some(now);
        delivery.next_attempt_at = None;
        return Ok(SendReport::Delivered(attempt.clone()));
    }
    if attempt.status_code == Some(GONE) {
        // The receiver says the endpoint is gone for good: stop sending to it at all.
        let mut webhook = webhook.clone();
        webhook.disable(gone_reason(), now);
        save_status(h, &webhook).await?;
        delivery.status = DeliveryStatus::Failed;
        delivery.next_attempt_at = None;
        return Ok(SendReport::Failed {
            attempt: Some(attempt.clone()),
            reason: "receiver answered 410 Gone; webhook disabled".to_owned(),
        });
    }
    let mut next = if job.manual {
        NextAttempt::GiveUp
    } else {
        webhook.policy.retry(&h.policy.retry).next_attempt(delivery.attempts, retry_after, now)
    };
    // A retry that would start past the webhook's maximum age is not made.
    let deadline = webhook.policy.max_age.and_then(|age| chrono::Duration::from_std(age).ok()).map(|age| delivery.created_at + age);
    let too_old = matches!((next, deadline), (NextAttempt::RetryAt(at), Some(end)) if at > end);
    if too_old {
        next = NextAttempt::GiveUp;
    }
    match next {
        NextAttempt::RetryAt(at) => {
            delivery.next_attempt_at = Some(at);
            h.queue.enqueue(&[delivery.job(at, false).into()]).await?;
            Ok(SendReport::Retrying { attempt: attempt.clone(), next_at: at })
        }
        NextAttempt::GiveUp => {
            delivery.status = DeliveryStatus::Failed;
            delivery.next_attempt_at = None;
            let reason = match (job.manual, too_old) {
                (true, _) => "redelivery failed",
                (false, true) => "maximum age reached",
                (false, false) => "retries exhausted",
            };
            Ok(SendReport::Failed { attempt: Some(attempt.clone()), reason: reason.to_owned() })
        }
    }
}

mod limits;
mod outcome;

use outcome::to_attempt;

#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;
