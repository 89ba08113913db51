//! What an outbound request came to, as an attempt: its status or failure, the error
//! a receiver's answer counts as, and the `Retry-After` a 429 or 503 asked for.

use super::AttemptResult;
use crate::delivery::{Attempt, stored_body};
use crate::ids::{AttemptId, DeliveryId};
use crate::metrics::OutcomeClass;
use crate::ports::{FailureKind, HttpOutcome};
use crate::retry::parse_retry_after;
use crate::time::Timestamp;

pub(super) fn to_attempt(
    outcome: HttpOutcome,
    id: AttemptId,
    delivery_id: DeliveryId,
    attempted_at: Timestamp,
    now: Timestamp,
) -> AttemptResult {
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
            AttemptResult { attempt, retry_after, outcome: OutcomeClass::of_status(status) }
        }
        HttpOutcome::Failed { kind, message, elapsed } => {
            let outcome = match kind {
                FailureKind::Timeout => OutcomeClass::Timeout,
                FailureKind::Connect => OutcomeClass::Connect,
                FailureKind::Tls => OutcomeClass::Tls,
                FailureKind::Refused => OutcomeClass::Refused,
                FailureKind::Protocol => OutcomeClass::Protocol,
            };
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
            AttemptResult { attempt, retry_after: None, outcome }
        }
    }
}
