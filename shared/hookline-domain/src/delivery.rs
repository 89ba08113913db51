//! Deliveries (one event to one webhook, across all its attempts), attempts (one HTTP
//! request each) and jobs (the queue's note that a delivery is due).

use crate::catalog::EventName;
use crate::ids::{AttemptId, DeliveryId, EventId, RecoveryId, TenantId, WebhookId};
use crate::time::{Timestamp, serde_ts};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// How far a delivery has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not yet delivered; an attempt is due now or later.
    Pending,
    /// A receiver answered 2xx.
    Succeeded,
    /// Every attempt failed, or the webhook went away.
    Failed,
}

impl DeliveryStatus {
    /// The status as the API and stores write it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "succeeded" => Ok(DeliveryStatus::Succeeded),
            "failed" => Ok(DeliveryStatus::Failed),
            other => Err(format!("{other:?} is not one of pending, succeeded, failed")),
        }
    }
}

/// One event to one webhook. Its id is the same on every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Derived from the event and webhook ids ([`DeliveryId::for_event`]).
    pub id: DeliveryId,
    /// Whose it is.
    #[serde(skip)]
    pub tenant: TenantId,
    /// Where it goes.
    #[serde(skip)]
    pub webhook_id: WebhookId,
    /// What it carries.
    pub event_id: EventId,
    /// The event's name.
    pub event_name: EventName,
    /// How far it has got.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// Status code of the last attempt, if the receiver answered.
    pub last_status_code: Option<u16>,
    /// When the last attempt was made.
    #[serde(serialize_with = "serde_ts::option")]
    pub last_attempt_at: Option<Timestamp>,
    /// When the next attempt is due, while pending.
    #[serde(serialize_with = "serde_ts::option")]
    pub next_attempt_at: Option<Timestamp>,
    /// When a receiver answered 2xx.
    #[serde(serialize_with = "serde_ts::option")]
    pub delivered_at: Option<Timestamp>,
    /// When fan-out created it.
    #[serde(serialize_with = "serde_ts::serialize")]
    pub created_at: Timestamp,
}

impl Delivery {
    /// A new pending delivery of an event to a webhook, due at once. `event_at`, the
    /// event's creation time, goes into the delivery's id (see [`DeliveryId::for_event`]).
    pub fn new(
        tenant: TenantId,
        webhook_id: WebhookId,
        event_id: EventId,
        event_name: EventName,
        event_at: Timestamp,
        now: Timestamp,
    ) -> Self {
        Delivery {
            id: DeliveryId::for_event(&tenant, &event_id, &event_at, &webhook_id),
            tenant,
            webhook_id,
            event_id,
            event_name,
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_status_code: None,
            last_attempt_at: None,
            next_attempt_at: Some(now),
            delivered_at: None,
            created_at: now,
        }
    }

    /// The queue job that makes this delivery's next attempt at `due_at`.
    pub fn job(&self, due_at: Timestamp, manual: bool) -> Job {
        Job {
            delivery_id: self.id.clone(),
            tenant: self.tenant.clone(),
            webhook_id: self.webhook_id.clone(),
            event_id: self.event_id.clone(),
            attempts_before: self.attempts,
            manual,
            reopen: false,
            slotted: false,
            due_at,
        }
    }

    /// A recovery's job: one attempt at `due_at` of this finished delivery, which its
    /// claim reopens.
    pub fn recovery_job(&self, due_at: Timestamp) -> Job {
        Job { reopen: true, ..self.job(due_at, true) }
    }
}

/// Which of a webhook's deliveries a listing wants: all of them by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// Only deliveries in this state.
    pub status: Option<DeliveryStatus>,
    /// Only deliveries of this event name.
    pub event_name: Option<EventName>,
    /// Only deliveries created at or after this time (on DynamoDB: of events created then).
    pub since: Option<Timestamp>,
    /// Only deliveries created before this time (on DynamoDB: of events created then).
    pub until: Option<Timestamp>,
}

impl DeliveryFilter {
    /// Whether `d` passes (by its own creation time; stores may use the event's).
    pub fn lets_through(&self, d: &Delivery) -> bool {
        self.status.is_none_or(|s| d.status == s)
            && self.event_name.as_ref().is_none_or(|n| &d.event_name == n)
            && self.since.is_none_or(|t| d.created_at >= t)
            && self.until.is_none_or(|t| d.created_at < t)
    }
}

/// Largest response body kept with an attempt.
pub const STORED_RESPONSE_BODY_LIMIT: usize = 4 * 1024;

/// One HTTP request of a delivery and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// New on each attempt; the JWT's `jti`.
    pub id: AttemptId,
    /// The delivery it belongs to.
    #[serde(skip)]
    pub delivery_id: DeliveryId,
    /// When the request started.
    #[serde(serialize_with = "serde_ts::serialize")]
    pub attempted_at: Timestamp,
    /// The receiver's status code, if it answered.
    pub status_code: Option<u16>,
    /// From the start of the request to the end of the response (or the failure).
    pub duration_ms: u64,
    /// Why it failed without a status code (timeout, connection refused, TLS…), or why
    /// a status code counts as failure.
    pub error: Option<String>,
    /// The first [`STORED_RESPONSE_BODY_LIMIT`] bytes of the response body, lossily UTF-8.
    pub response_body: Option<String>,
}

impl Attempt {
    /// Whether the receiver accepted the delivery (2xx).
    pub fn succeeded(&self) -> bool {
        matches!(self.status_code, Some(200..=299))
    }
}

/// Cuts a response body to what is stored: at most [`STORED_RESPONSE_BODY_LIMIT`] bytes,
/// at a character boundary.
pub fn stored_body(body: &[u8]) -> String {
    let cut = &body[..body.len().min(STORED_RESPONSE_BODY_LIMIT)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    // A lossy replacement can grow the string; keep the byte bound strict.
    while s.len() > STORED_RESPONSE_BODY_LIMIT {
        s.pop();
    }
    s
}

/// The queue's unit of work: make the next attempt of one delivery once `due_at` has
/// passed. It carries ids only, never the payload, so a 256 KiB event fits any queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The delivery to attempt.
    pub delivery_id: DeliveryId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its webhook.
    pub webhook_id: WebhookId,
    /// Its event.
    pub event_id: EventId,
    /// How many attempts the delivery had when this job was made. A job whose count no
    /// longer matches the delivery is stale (its attempt already happened) and is dropped:
    /// this is what makes a job seen twice harmless.
    pub attempts_before: u32,
    /// Made by a redelivery request: one attempt, no automatic retries after it.
    #[serde(default)]
    pub manual: bool,
    /// Made by a recovery: the claim reopens the delivery if it finished, in the same
    /// write (it is still finished until its attempt starts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reopen: bool,
    /// Holds its webhook's rate slot at `due_at` (see [`crate::throttle`]): it goes
    /// then without taking another.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub slotted: bool,
    /// Not before this instant.
    #[serde(with = "due_at_micros")]
    pub due_at: Timestamp,
}

/// What the queue carries: a delivery's next attempt, or the next step of a recovery.
/// An attempt is written as the [`Job`] itself (what queues held before recoveries
/// existed); a step as `{"recovery": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Task {
    /// The next page of a recovery (see [`crate::recovery`]).
    Recover {
        /// Which recovery, and which of its steps.
        recovery: RecoveryStep,
    },
    /// A delivery's next attempt.
    Attempt(Job),
}

impl Task {
    /// Not before this instant.
    pub fn due_at(&self) -> Timestamp {
        match self {
            Task::Recover { recovery } => recovery.due_at,
            Task::Attempt(job) => job.due_at,
        }
    }

    /// The delivery job, if this is one.
    pub fn job(&self) -> Option<&Job> {
        match self {
            Task::Attempt(job) => Some(job),
            Task::Recover { .. } => None,
        }
    }
}

impl From<Job> for Task {
    fn from(job: Job) -> Self {
        Task::Attempt(job)
    }
}

/// One step of a recovery: re-send its next page of deliveries. A step whose number is
/// not the recovery's current one has already run (it is a copy) and does nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryStep {
    /// The recovery.
    pub id: RecoveryId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its webhook.
    pub webhook_id: WebhookId,
    /// Steps the recovery had made when this one was queued.
    pub step: u32,
    /// Not before this instant.
    #[serde(with = "due_at_micros")]
    pub due_at: Timestamp,
}

mod due_at_micros {
    use crate::time::{Timestamp, from_micros, to_micros};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(to_micros(ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        i64::deserialize(d).map(from_micros)
    }
}

/// What [`crate::ports::DeliveryStore::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller now holds the delivery until the lease ends and may attempt it.
    Claimed(Delivery),
    /// The job is outdated: the attempt it asks for happened, or the delivery is finished.
    Stale,
    /// Another worker holds the delivery right now; try the job again later.
    Busy,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_body_is_cut_to_four_kib() {
        assert_eq!(stored_body(&vec![b'a'; 10_000]).len(), 4096);
        assert_eq!(stored_body(b"ok"), "ok");
        let multi = "é".repeat(3000);
        let s = stored_body(multi.as_bytes());
        assert!(s.len() <= 4096);
    }

    #[test]
    fn jobs_round_trip_as_json() {
        let d = Delivery::new(
            TenantId::default_tenant(),
            WebhookId::generate(),
            EventId::generate(),
            EventName::parse("project.created").unwrap(),
            crate::time::from_micros(3),
            crate::time::from_micros(5),
        );
        let j = d.job(crate::time::from_micros(7), false);
        let back: Job = serde_json::from_str(&serde_json::to_string(&j).unwrap()).unwrap();
        assert_eq!(back, j);
    }
}
