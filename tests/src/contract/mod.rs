//! Port contract suites: the behaviour every adapter of a port must show. Each suite
//! takes a fresh, empty adapter; the embedded adapters run them always, the AWS ones
//! against the emulator.

mod analytics;
mod deliveries;
mod others;
mod throttles;

pub use analytics::analytics_store;
pub use deliveries::{delivery_queue, delivery_store};
pub use others::{api_key_store, event_log, recovery_store, signer, webhook_store};
pub use throttles::throttle_store;

use hookline_domain::catalog::EventCatalog;
use hookline_domain::event::Event;
use hookline_domain::ids::TenantId;
use hookline_domain::time::Timestamp;
use hookline_domain::webhook::{EndpointPolicy, Webhook, WebhookInput};

/// A tenant by name.
pub fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).expect("tenant")
}

/// A valid webhook of `tenant` listening to `events`, created at `now`.
pub fn webhook(tenant: &TenantId, events: &[&str], now: Timestamp) -> Webhook {
    let input = WebhookInput {
        endpoint_url: "https://receiver.example/hook".into(),
        listened_events: events.iter().map(|s| s.to_string()).collect(),
        description: Some("contract".into()),
        headers: Some([("X-Tenant".to_owned(), tenant.to_string())].into_iter().collect()),
        ..Default::default()
    };
    Webhook::create(tenant.clone(), input, &EventCatalog::builtin(), &EndpointPolicy::default(), now).expect("webhook")
}

/// A published `project.created` event of `tenant` at `now`.
pub fn event(tenant: &TenantId, now: Timestamp) -> Event {
    let fields = serde_json::from_str(r#"{"subject_type":"project","event_type":"CREATED","subject_id":"34","n":1.50}"#).expect("fields");
    Event::publish(tenant.clone(), fields, &EventCatalog::builtin(), now).expect("event")
}

/// Now, truncated to microseconds (what every store keeps).
pub fn now() -> Timestamp {
    hookline_domain::time::from_micros(chrono::Utc::now().timestamp_micros())
}
