//! The ports and settings every step needs, bundled once at start-up.

use crate::catalog::EventCatalog;
use crate::ports::{ApiKeyStore, Clock, DeliveryQueue, DeliveryStore, EventLog, HttpClient, Signer, WebhookStore};
use crate::retry::RetrySchedule;
use crate::webhook::{AutoDisable, Cidr, EndpointPolicy};
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

/// Longest delivery timeout accepted, as Lambda and API Gateway bound the AWS path.
pub const MAX_DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// A setting that could not be read: the variable and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}: {message}")]
pub struct SettingError {
    /// The variable.
    pub var: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn setting(var: &'static str, message: impl Into<String>) -> SettingError {
    SettingError { var, message: message.into() }
}

impl Policy {
    /// Reads the delivery settings every runtime shares, through `get`:
    /// `HOOKLINE_RETRY_SCHEDULE`, `HOOKLINE_DELIVERY_TIMEOUT`,
    /// `HOOKLINE_ALLOW_PRIVATE_ENDPOINTS`, `HOOKLINE_ALLOWED_CIDRS`,
    /// `HOOKLINE_MAX_EVENT_BYTES` (up to `max_event_limit`),
    /// `HOOKLINE_AUTO_DISABLE_AFTER` and `HOOKLINE_AUTO_DISABLE_MIN_FAILURES`. The
    /// catalogue stays built in; each runtime reads its own source for it.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>, max_event_limit: usize) -> Result<Policy, SettingError> {
        let value = |var: &str| get(var).filter(|v| !v.trim().is_empty());
        let retry = RetrySchedule::parse(&get("HOOKLINE_RETRY_SCHEDULE").unwrap_or_else(|| crate::retry::DEFAULT_SCHEDULE.to_owned()))
            .map_err(|e| setting("HOOKLINE_RETRY_SCHEDULE", e.to_string()))?;
        let delivery_timeout = match value("HOOKLINE_DELIVERY_TIMEOUT") {
            Some(v) => crate::duration::parse_duration(&v).map_err(|e| setting("HOOKLINE_DELIVERY_TIMEOUT", e.to_string()))?,
            None => DEFAULT_DELIVERY_TIMEOUT,
        };
        if delivery_timeout.is_zero() || delivery_timeout > MAX_DELIVERY_TIMEOUT {
            return Err(setting("HOOKLINE_DELIVERY_TIMEOUT", "must be between 1ms and 60s"));
        }
        let allow_private = match value("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(v) => return Err(setting("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS", format!("{v:?} is not true or false"))),
        };
        let allowed_cidrs =
            Cidr::parse_list(&get("HOOKLINE_ALLOWED_CIDRS").unwrap_or_default()).map_err(|e| setting("HOOKLINE_ALLOWED_CIDRS", e))?;
        let max_event_bytes =
            match value("HOOKLINE_MAX_EVENT_BYTES") {
                Some(v) => v.trim().parse().ok().filter(|n| (1024..=max_event_limit).contains(n)).ok_or_else(|| {
                    setting("HOOKLINE_MAX_EVENT_BYTES", format!("must be a number of bytes from 1024 to {max_event_limit}"))
                })?,
                None => DEFAULT_MAX_EVENT_BYTES,
            };
        let auto_disable = AutoDisable::from_settings(
            value("HOOKLINE_AUTO_DISABLE_AFTER").as_deref(),
            value("HOOKLINE_AUTO_DISABLE_MIN_FAILURES").as_deref(),
        )
        .map_err(|e| setting("HOOKLINE_AUTO_DISABLE_AFTER", e))?;
        Ok(Policy {
            retry,
            delivery_timeout,
            endpoints: EndpointPolicy { allow_private, allowed_cidrs },
            max_event_bytes,
            auto_disable,
            ..Policy::default()
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<Policy, SettingError> {
        let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Policy::from_lookup(&|k| m.get(k).cloned(), 1 << 20)
    }

    #[test]
    fn defaults_are_logalto_s_and_safe() {
        let p = read(&[]).unwrap();
        assert_eq!(p.retry.to_string(), "2m,6m,30m,1h,5h");
        assert_eq!(p.delivery_timeout, Duration::from_secs(10));
        assert!(!p.endpoints.allow_private && p.endpoints.allowed_cidrs.is_empty());
        assert_eq!(p.max_event_bytes, DEFAULT_MAX_EVENT_BYTES);
        assert_eq!(p.auto_disable, AutoDisable::default());
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for (k, v) in [
            ("HOOKLINE_RETRY_SCHEDULE", "2x"),
            ("HOOKLINE_DELIVERY_TIMEOUT", "0s"),
            ("HOOKLINE_DELIVERY_TIMEOUT", "2m"),
            ("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS", "maybe"),
            ("HOOKLINE_ALLOWED_CIDRS", "10.0.0.0/33"),
            ("HOOKLINE_MAX_EVENT_BYTES", "12"),
            ("HOOKLINE_MAX_EVENT_BYTES", "99999999"),
            ("HOOKLINE_AUTO_DISABLE_AFTER", "soon"),
        ] {
            assert_eq!(read(&[(k, v)]).unwrap_err().var, k, "{k}={v}");
        }
        assert!(!read(&[("HOOKLINE_AUTO_DISABLE_AFTER", "off")]).unwrap().auto_disable.enabled);
    }
}
