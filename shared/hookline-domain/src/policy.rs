//! The delivery rules that are configuration rather than code: the catalogue, the retry
//! schedule, timeouts and limits. The binaries read them from `HOOKLINE_*` variables
//! (the `hookline-config` crate); the domain only uses them.

use crate::catalog::EventCatalog;
use crate::retry::RetrySchedule;
use crate::webhook::{AutoDisable, EndpointPolicy};
use std::time::Duration;

/// The per-attempt timeout of the LogAlto-compatible defaults: 10 seconds.
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
    /// Deliveries a second each recovery sends again (see [`crate::recovery`]).
    pub recovery_rate: u32,
}

/// Default of [`Policy::recovery_rate`]: 50 a second, 100,000 deliveries in 34 minutes.
pub const DEFAULT_RECOVERY_RATE: u32 = 50;

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
            recovery_rate: DEFAULT_RECOVERY_RATE,
        }
    }
}

/// Longest delivery timeout accepted, as Lambda and API Gateway bound the AWS path.
pub const MAX_DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
