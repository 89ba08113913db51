//! The deliveries table's items: a delivery with its inline attempts and outcomes, a
//! spilled attempt, and the expressions that write a delivery's state.

use super::super::{Item, corrupt, id_err, n, s};
use hookline_domain::catalog::EventName;
use hookline_domain::delivery::{Attempt, Delivery, DeliveryStatus};
use hookline_domain::ids::{AttemptId, DeliveryId, EventId, TenantId, WebhookId};
use hookline_domain::ports::StoreError;
use hookline_domain::time::{Timestamp, from_micros, to_micros};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Serialize, Deserialize)]
pub(super) struct DeliveryItem {
    pub(super) webhook_key: String,
    pub(super) id: String,
    pub(super) tenant: String,
    pub(super) webhook_id: String,
    pub(super) event_id: String,
    pub(super) event_name: String,
    pub(super) status: String,
    pub(super) attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_attempt_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) next_attempt_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) delivered_at: Option<i64>,
    pub(super) created_at: i64,
    /// The attempts kept inline, oldest first (the others are spilled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) attempt_log: Vec<LoggedAttempt>,
    /// Every attempt's time and outcome, inline or spilled: what health counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) outcomes: Vec<Outcome>,
}

/// When an attempt was made and whether it was answered 2xx.
#[derive(Serialize, Deserialize)]
pub(super) struct Outcome {
    pub(super) at: i64,
    pub(super) ok: bool,
}

/// An attempt inside its delivery item. Short attribute names: an item's size, names
/// included, is what a write costs.
#[derive(Serialize, Deserialize)]
pub(super) struct LoggedAttempt {
    pub(super) id: String,
    pub(super) at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) code: Option<u16>,
    pub(super) ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) body: Option<String>,
}

impl LoggedAttempt {
    pub(super) fn new(a: &Attempt) -> Self {
        LoggedAttempt {
            id: a.id.to_string(),
            at: to_micros(&a.attempted_at),
            code: a.status_code,
            ms: a.duration_ms,
            error: a.error.clone(),
            body: a.response_body.clone(),
        }
    }

    pub(super) fn into_attempt(self, delivery: &DeliveryId) -> Result<Attempt, StoreError> {
        Ok(Attempt {
            id: AttemptId::parse(&self.id).map_err(id_err)?,
            delivery_id: delivery.clone(),
            attempted_at: from_micros(self.at),
            status_code: self.code,
            duration_ms: self.ms,
            error: self.error,
            response_body: self.body,
        })
    }

    /// Its size as stored, roughly: what it adds to the item.
    pub(super) fn size(&self) -> usize {
        64 + self.error.as_ref().map_or(0, String::len) + self.body.as_ref().map_or(0, String::len)
    }
}

pub(super) fn webhook_key(tenant: &TenantId, webhook: &WebhookId) -> String {
    format!("{tenant}#{webhook}")
}

/// The smallest delivery id of an event created at or after `t` (a delivery id starts
/// with its event's creation time in milliseconds: `DeliveryId::for_event`).
pub(super) fn first_id_at(t: Timestamp) -> String {
    format!("{}{:012x}", DeliveryId::PREFIX, t.timestamp_millis().max(0))
}

impl From<&Delivery> for DeliveryItem {
    fn from(d: &Delivery) -> Self {
        DeliveryItem {
            webhook_key: webhook_key(&d.tenant, &d.webhook_id),
            id: d.id.to_string(),
            tenant: d.tenant.to_string(),
            webhook_id: d.webhook_id.to_string(),
            event_id: d.event_id.to_string(),
            event_name: d.event_name.to_string(),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_attempt_at: d.last_attempt_at.as_ref().map(to_micros),
            next_attempt_at: d.next_attempt_at.as_ref().map(to_micros),
            delivered_at: d.delivered_at.as_ref().map(to_micros),
            created_at: to_micros(&d.created_at),
            attempt_log: Vec::new(),
            outcomes: Vec::new(),
        }
    }
}

impl TryFrom<DeliveryItem> for Delivery {
    type Error = StoreError;
    fn try_from(i: DeliveryItem) -> Result<Self, StoreError> {
        Ok(Delivery {
            id: DeliveryId::parse(&i.id).map_err(id_err)?,
            tenant: TenantId::parse(&i.tenant).map_err(id_err)?,
            webhook_id: WebhookId::parse(&i.webhook_id).map_err(id_err)?,
            event_id: EventId::parse(&i.event_id).map_err(id_err)?,
            event_name: EventName::parse(&i.event_name).map_err(corrupt)?,
            status: i.status.parse::<DeliveryStatus>().map_err(corrupt)?,
            attempts: i.attempts,
            last_status_code: i.last_status_code,
            last_attempt_at: i.last_attempt_at.map(from_micros),
            next_attempt_at: i.next_attempt_at.map(from_micros),
            delivered_at: i.delivered_at.map(from_micros),
            created_at: from_micros(i.created_at),
        })
    }
}

/// An attempt not kept inline (beyond [`INLINE_ATTEMPTS`](super::INLINE_ATTEMPTS), or longer than
/// [`INLINE_ATTEMPT_BYTES`](super::INLINE_ATTEMPT_BYTES)), in the attempts table.
#[derive(Serialize, Deserialize)]
pub(super) struct AttemptItem {
    pub(super) delivery_id: String,
    /// `<attempted_at micros, zero-padded>#<attempt id>`: sorts attempts by time.
    pub(super) sk: String,
    #[serde(flatten)]
    pub(super) attempt: LoggedAttempt,
    /// TTL: DynamoDB removes the record after this (Unix seconds).
    pub(super) expires_at: i64,
}

/// The update that writes a delivery's mutable state and releases its claim, as SET
/// and REMOVE clauses (the caller may add to them) and their values.
pub(super) fn state_update(d: &Delivery) -> (Vec<String>, Vec<&'static str>, Item) {
    let mut sets = vec!["#st = :st".to_owned(), "attempts = :n".to_owned()];
    let mut remove = vec!["claimed_until"];
    let mut values: Item = HashMap::new();
    values.insert(":st".into(), s(d.status.as_str()));
    values.insert(":n".into(), n(d.attempts));
    let optional = [
        ("last_status_code", ":lsc", d.last_status_code.map(i64::from)),
        ("last_attempt_at", ":lat", d.last_attempt_at.as_ref().map(to_micros)),
        ("next_attempt_at", ":nat", d.next_attempt_at.as_ref().map(to_micros)),
        ("delivered_at", ":dat", d.delivered_at.as_ref().map(to_micros)),
    ];
    for (attr, placeholder, v) in optional {
        match v {
            Some(v) => {
                sets.push(format!("{attr} = {placeholder}"));
                values.insert(placeholder.into(), n(v));
            }
            None => remove.push(attr),
        }
    }
    (sets, remove, values)
}

pub(super) fn expression(sets: &[String], remove: &[&str]) -> String {
    format!("SET {} REMOVE {}", sets.join(", "), remove.join(", "))
}

pub(super) fn key(tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId) -> Item {
    HashMap::from([("webhook_key".to_owned(), s(webhook_key(tenant, webhook))), ("id".to_owned(), s(id.as_str()))])
}

/// What health reads of a delivery.
#[derive(Deserialize)]
pub(super) struct HealthItem {
    #[serde(default)]
    pub(super) outcomes: Vec<Outcome>,
}
