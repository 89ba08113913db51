//! The ports and settings every step needs, bundled once at start-up.

use crate::catalog::EventCatalog;
use crate::ports::{ApiKeyStore, Clock, DeliveryQueue, DeliveryStore, EventLog, HttpClient, Signer, WebhookStore};
use crate::retry::RetrySchedule;
use crate::webhook::{AutoDisable, EndpointPolicy};
use std::sync::Arc;
use std::time::Duration;

/// LogAlto's per-attempt timeout (seed 000).
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivery rules that are configuration rather than code.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Which event names exist.
    pub catalog: EventCatalog,
    /// Delays before each retry.
    pub retry: RetrySchedule,
    /// Bound on one attempt: connect, send, read the response.
    pub delivery_timeout: Duration,
    /// Which endpoint URLs are accepted.
    pub endpoints: EndpointPolicy,
    /// Sent as `User-Agent` on every delivery.
    pub user_agent: String,
    /// Largest `POST /events` body accepted, in bytes.
    pub max_event_bytes: usize,
    /// When failing webhooks are disabled.
    pub auto_disable: AutoDisable,
}

/// Default of [`Policy::max_event_bytes`]: 256 KiB, SQS's message size, a common bound.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 256 * 1024;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            catalog: EventCatalog::builtin(),
            retry: RetrySchedule::default(),
            delivery_timeout: DEFAULT_DELIVERY_TIMEOUT,
            endpoints: EndpointPolicy::default(),
            user_agent: format!("Hookline/{}", env!("CARGO_PKG_VERSION")),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            auto_disable: AutoDisable::default(),
        }
    }
}

/// Hookline: its ports and policy. Built once by each binary; the API router, the
/// fan-out step and the send step all take it.
#[derive(Clone)]
pub struct Hookline {
    /// Webhook configurations.
    pub webhooks: Arc<dyn WebhookStore>,
    /// Published events.
    pub events: Arc<dyn EventLog>,
    /// Deliveries and attempts.
    pub deliveries: Arc<dyn DeliveryStore>,
    /// Delay queue of delivery jobs.
    pub queue: Arc<dyn DeliveryQueue>,
    /// API keys.
    pub keys: Arc<dyn ApiKeyStore>,
    /// Signs deliveries.
    pub signer: Arc<dyn Signer>,
    /// Sends deliveries.
    pub http: Arc<dyn HttpClient>,
    /// Tells the time.
    pub clock: Arc<dyn Clock>,
    /// Delivery rules.
    pub policy: Arc<Policy>,
}
