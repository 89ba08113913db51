//! Delivery bodies: the LogAlto-compatible envelope, `{"event": …, "webhook": …,
//! "delivery": …}` (the default), or the Standard Webhooks shape, `{"type": …,
//! "timestamp": …, "data": …}`, as the webhook's policy says.
//!
//! The event is spliced in as the stored bytes, never re-serialized, so receivers get
//! exactly what the publisher sent and the checksum covers exactly what is on the wire.

use crate::event::Event;
use crate::ids::{AttemptId, DeliveryId};
use crate::time::{self, Timestamp};
use crate::webhook::{PayloadFormat, Webhook};
use serde::Serialize;

#[derive(Serialize)]
struct WebhookRef<'a> {
    id: &'a str,
    endpoint_url: &'a str,
    listened_events: Vec<String>,
}

#[derive(Serialize)]
struct DeliveryRef<'a> {
    id: &'a str,
    attempt_id: &'a str,
    attempted_at: String,
}

/// Builds the body bytes of one attempt, in the webhook's payload format.
pub fn build_body(event: &Event, webhook: &Webhook, delivery: &DeliveryId, attempt: &AttemptId, attempted_at: Timestamp) -> Vec<u8> {
    match webhook.policy.payload_format {
        PayloadFormat::Envelope => envelope(event, webhook, delivery, attempt, attempted_at),
        PayloadFormat::StandardWebhooks => standard(event),
    }
}

/// The Standard Webhooks shape: `{"type": name, "timestamp": created_at, "data": event}`.
/// The delivery's id travels in the `webhook-id` header (and the JWT's claims).
fn standard(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(event.document.get().len() + 128);
    out.extend_from_slice(b"{\"type\":");
    serde_json::to_writer(&mut out, event.name.as_str()).unwrap_or_default();
    out.extend_from_slice(b",\"timestamp\":");
    serde_json::to_writer(&mut out, &time::format(&event.created_at)).unwrap_or_default();
    out.extend_from_slice(b",\"data\":");
    out.extend_from_slice(event.document.get().as_bytes());
    out.push(b'}');
    out
}

fn envelope(event: &Event, webhook: &Webhook, delivery: &DeliveryId, attempt: &AttemptId, attempted_at: Timestamp) -> Vec<u8> {
    let webhook_ref = WebhookRef {
        id: webhook.id.as_str(),
        endpoint_url: webhook.endpoint_url.as_str(),
        listened_events: webhook.listened_events.iter().map(|p| p.to_string()).collect(),
    };
    let delivery_ref = DeliveryRef { id: delivery.as_str(), attempt_id: attempt.as_str(), attempted_at: time::format(&attempted_at) };
    let mut out = Vec::with_capacity(event.document.get().len() + 512);
    out.extend_from_slice(b"{\"event\":");
    out.extend_from_slice(event.document.get().as_bytes());
    out.extend_from_slice(b",\"webhook\":");
    // Serializing these plain structs into a Vec cannot fail.
    serde_json::to_writer(&mut out, &webhook_ref).unwrap_or_default();
    out.extend_from_slice(b",\"delivery\":");
    serde_json::to_writer(&mut out, &delivery_ref).unwrap_or_default();
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::EventCatalog;
    use crate::ids::TenantId;
    use crate::webhook::{EndpointPolicy, WebhookInput};

    #[test]
    fn body_nests_the_exact_event_document_and_references() {
        let now = time::from_micros(1_795_000_000_000_000);
        let fields = serde_json::from_str(r#"{"subject_type":"project","event_type":"CREATED","x":1.50}"#).unwrap();
        let event = Event::publish(TenantId::default_tenant(), fields, &EventCatalog::builtin(), now).unwrap();
        let input = WebhookInput {
            endpoint_url: "https://x.example/h".into(),
            listened_events: vec!["project.*".into(), "*.deleted".into()],
            ..Default::default()
        };
        let webhook =
            Webhook::create(TenantId::default_tenant(), input, &EventCatalog::builtin(), &EndpointPolicy::default(), now).unwrap();
        let d = DeliveryId::for_event(&event.tenant, &event.id, &event.created_at, &webhook.id);
        let a = AttemptId::generate();
        let body = build_body(&event, &webhook, &d, &a, now);
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(text.contains(r#""x":1.50"#), "{text}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["event"]["id"], event.id.as_str());
        assert_eq!(v["webhook"]["id"], webhook.id.as_str());
        assert_eq!(v["webhook"]["listened_events"], serde_json::json!(["project.*", "*.deleted"]));
        assert_eq!(v["delivery"]["id"], d.as_str());
        assert_eq!(v["delivery"]["attempt_id"], a.as_str());
        assert_eq!(v["delivery"]["attempted_at"], time::format(&now));

        let mut standard = webhook.clone();
        standard.policy.payload_format = PayloadFormat::StandardWebhooks;
        let body = build_body(&event, &standard, &d, &a, now);
        assert!(String::from_utf8(body.clone()).unwrap().contains(r#""x":1.50"#), "the event's bytes, as published");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["type"], "project.created");
        assert_eq!(v["timestamp"], time::format(&event.created_at));
        assert_eq!(v["data"]["id"], event.id.as_str());
        assert_eq!(v.as_object().map(|o| o.len()), Some(3));
    }
}
