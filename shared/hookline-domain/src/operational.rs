//! Operational events: what Hookline publishes into a tenant's own event stream about
//! its webhooks (disabled, recovered, a delivery failed for good, a secret rotated), under
//! the reserved names of `catalog::OPERATIONAL_EVENTS`. They are appended to the event
//! log like any event, so the same fan-out delivers them, signed and retried, to the
//! tenant's webhooks that name them, in both modes.
//!
//! Rules that keep them from feeding on themselves: a delivery of an operational event
//! that fails for good publishes no `hookline_delivery.failed`, and an event about a
//! webhook is never delivered to that webhook (`fanout::plan`). (A receiver of
//! operational events can still be disabled, or recover, like any webhook, which is
//! announced to the others: a chain as long as the tenant's webhooks, not a loop.)

use crate::delivery::{Attempt, Delivery};
use crate::event::Event;
use crate::ports::Hookline;
use crate::time;
use crate::webhook::Webhook;
use indexmap::IndexMap;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// What happened.
#[derive(Debug, Clone, Copy)]
pub enum Operational<'a> {
    /// Hookline disabled `webhook` (its `disabled_reason` says why).
    WebhookDisabled {
        /// The webhook, as saved.
        webhook: &'a Webhook,
        /// The attempt that tipped it, and its delivery and event.
        last: Option<(&'a Delivery, &'a Attempt, &'a Event)>,
    },
    /// A webhook whose deliveries were failing delivered again.
    WebhookRecovered {
        /// The webhook.
        webhook: &'a Webhook,
        /// The attempt that succeeded, and its delivery and event.
        last: (&'a Delivery, &'a Attempt, &'a Event),
    },
    /// A delivery failed for good.
    DeliveryFailed {
        /// Its webhook.
        webhook: &'a Webhook,
        /// The delivery, its last attempt and its event.
        last: (&'a Delivery, &'a Attempt, &'a Event),
        /// Why it ended.
        reason: &'a str,
    },
    /// A webhook's signing secret was rotated (the secret itself is never in the event).
    SecretRotated {
        /// The webhook, as saved.
        webhook: &'a Webhook,
    },
}

impl Operational<'_> {
    fn webhook(&self) -> &Webhook {
        match self {
            Operational::WebhookDisabled { webhook, .. }
            | Operational::WebhookRecovered { webhook, .. }
            | Operational::DeliveryFailed { webhook, .. }
            | Operational::SecretRotated { webhook } => webhook,
        }
    }

    /// `subject_type`, `event_type` and the fields particular to it.
    fn parts(&self) -> (&'static str, &'static str, Value) {
        let last = |(d, a, e): (&Delivery, &Attempt, &Event)| {
            json!({
                "delivery": {"id": d.id.as_str(), "attempts": d.attempts},
                "attempt": {
                    "id": a.id.as_str(),
                    "attempted_at": time::format(&a.attempted_at),
                    "status_code": a.status_code,
                    "error": a.error.as_deref().map(error_kind),
                },
                "event": {"id": e.id.as_str(), "name": e.name.as_str(), "created_at": time::format(&e.created_at)},
            })
        };
        match *self {
            Operational::WebhookDisabled { webhook, last: l } => (
                "hookline_webhook",
                "DISABLED",
                json!({
                    "reason": webhook.disabled_reason,
                    "disabled_at": webhook.disabled_at.as_ref().map(time::format),
                    "last": l.map(last),
                }),
            ),
            Operational::WebhookRecovered { webhook, last: l } => (
                "hookline_webhook",
                "RECOVERED",
                json!({"failing_until": time::format(&l.1.attempted_at), "last": last(l), "active": webhook.active}),
            ),
            Operational::DeliveryFailed { last: l, reason, .. } => {
                ("hookline_delivery", "FAILED", json!({"reason": reason, "last": last(l)}))
            }
            Operational::SecretRotated { webhook } => (
                "hookline_secret",
                "ROTATED",
                json!({"secrets": webhook.secrets.iter().map(|s| json!({
                    "created_at": time::format(&s.created_at),
                    "expires_at": s.expires_at.as_ref().map(time::format),
                })).collect::<Vec<_>>()}),
            ),
        }
    }
}

/// The kind of an attempt's error without its details ("timeout", "connection failed",
/// "receiver answered 500"): the details can hold the endpoint's URL, whose path and
/// query may be a credential, and operational events go to other receivers.
fn error_kind(error: &str) -> &str {
    error.split(':').next().unwrap_or(error).trim()
}

/// An endpoint as operational events show it: scheme, host and port, never the path
/// or query (a Slack-style URL is a credential).
fn endpoint_origin(w: &Webhook) -> String {
    w.endpoint_url.url().origin().ascii_serialization()
}

/// Publishes `what` into its webhook's tenant's event stream. Best effort: the step that
/// calls it has done its own work already, so a failure is logged, not returned.
pub async fn publish(h: &Hookline, what: Operational<'_>) {
    let webhook = what.webhook();
    let (subject, action, details) = what.parts();
    let raw = |v: Value| RawValue::from_string(v.to_string());
    let fields = (|| -> Result<IndexMap<String, Box<RawValue>>, serde_json::Error> {
        let mut f = IndexMap::new();
        f.insert("subject_type".to_owned(), raw(json!(subject))?);
        f.insert("event_type".to_owned(), raw(json!(action))?);
        f.insert("subject_id".to_owned(), raw(json!(webhook.id.as_str()))?);
        f.insert(
            "webhook".to_owned(),
            raw(json!({"id": webhook.id.as_str(), "endpoint": endpoint_origin(webhook), "description": webhook.description}))?,
        );
        if let Value::Object(more) = details {
            for (k, v) in more {
                f.insert(k, raw(v)?);
            }
        }
        Ok(f)
    })();
    let result = match fields {
        Ok(fields) => match Event::publish(webhook.tenant.clone(), fields, &h.policy.catalog, h.clock.now()) {
            Ok(event) => h.events.append(&event).await.map(|_| event).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(event) => {
            tracing::info!(event = %event.id, name = %event.name, webhook = %webhook.id, tenant = %webhook.tenant, "operational event published")
        }
        Err(error) => tracing::warn!(webhook = %webhook.id, tenant = %webhook.tenant, error, "could not publish an operational event"),
    }
}

/// The webhook an operational event is about (its `subject_id`), if `event` is one.
pub fn subject_webhook(event: &Event) -> Option<String> {
    if !event.name.is_operational() {
        return None;
    }
    let doc: Value = serde_json::from_str(event.document.get()).ok()?;
    doc["subject_id"].as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests;
