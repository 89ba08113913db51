//! Hookline's metrics, defined once: what the steps record ([`Metric`]), and the name,
//! kind, unit and meaning of each series ([`DEFINITIONS`]). Adapters turn them into
//! Prometheus text (local mode) or CloudWatch Embedded Metric Format lines (Lambda).
//!
//! Labels are bounded: an attempt's outcome class and a disable's reason, never a
//! tenant, webhook or event id.

use std::time::Duration;

/// What an attempt came to, as a bounded label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutcomeClass {
    /// 2xx.
    Success,
    /// 3xx (redirects are not followed).
    Redirect,
    /// 410 Gone.
    Gone,
    /// Any other 4xx.
    ClientError,
    /// 5xx.
    ServerError,
    /// No answer in time.
    Timeout,
    /// The connection failed.
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// The target was refused (a private address at dial time).
    Refused,
    /// The answer was not HTTP.
    Protocol,
}

impl OutcomeClass {
    /// Every class, in label order.
    pub const ALL: [OutcomeClass; 10] = [
        OutcomeClass::Success,
        OutcomeClass::Redirect,
        OutcomeClass::Gone,
        OutcomeClass::ClientError,
        OutcomeClass::ServerError,
        OutcomeClass::Timeout,
        OutcomeClass::Connect,
        OutcomeClass::Tls,
        OutcomeClass::Refused,
        OutcomeClass::Protocol,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeClass::Success => "2xx",
            OutcomeClass::Redirect => "3xx",
            OutcomeClass::Gone => "410",
            OutcomeClass::ClientError => "4xx",
            OutcomeClass::ServerError => "5xx",
            OutcomeClass::Timeout => "timeout",
            OutcomeClass::Connect => "connect",
            OutcomeClass::Tls => "tls",
            OutcomeClass::Refused => "refused",
            OutcomeClass::Protocol => "protocol",
        }
    }

    /// The class of an HTTP status.
    pub fn of_status(status: u16) -> OutcomeClass {
        match status {
            200..=299 => OutcomeClass::Success,
            300..=399 => OutcomeClass::Redirect,
            410 => OutcomeClass::Gone,
            400..=499 => OutcomeClass::ClientError,
            _ => OutcomeClass::ServerError,
        }
    }
}

/// Why Hookline disabled a webhook, as a bounded label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DisableReason {
    /// The receiver answered 410 Gone.
    Gone,
    /// Its deliveries kept failing (auto-disable).
    Failing,
}

impl DisableReason {
    /// Every reason.
    pub const ALL: [DisableReason; 2] = [DisableReason::Gone, DisableReason::Failing];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DisableReason::Gone => "gone",
            DisableReason::Failing => "failing",
        }
    }
}

/// One thing that happened, as the steps record it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// An event reached fan-out (published through the API or written by a producer).
    EventPublished,
    /// Deliveries were created for an event.
    DeliveriesCreated(u64),
    /// An attempt was made: its outcome, how long it took, and how late it started
    /// after it was due (queue lag).
    Attempt {
        /// What it came to.
        outcome: OutcomeClass,
        /// From the request's start to its end.
        duration: Duration,
        /// From the job's due time to the attempt's start.
        lag: Duration,
    },
    /// A delivery succeeded.
    DeliverySucceeded,
    /// A delivery failed for good.
    DeliveryFailed,
    /// Signing an attempt took this long (every scheme it signs with).
    Signing(Duration),
    /// Hookline disabled a webhook.
    WebhookDisabled(DisableReason),
}

/// How a series aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Observations in buckets ([`SECONDS_BUCKETS`]), in seconds.
    Histogram,
    /// A value read when asked (local mode only).
    Gauge,
}

/// One series: its name (Prometheus; CloudWatch takes `cloudwatch`), kind, label and
/// meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Definition {
    /// Prometheus name (counters without the `_total` suffix, which the exposition adds).
    pub name: &'static str,
    /// CloudWatch metric name.
    pub cloudwatch: &'static str,
    /// How it aggregates.
    pub kind: Kind,
    /// Its one label, if any: `outcome` or `reason`.
    pub label: Option<&'static str>,
    /// What it means.
    pub help: &'static str,
}

/// Every series Hookline exposes.
pub const DEFINITIONS: [Definition; 11] = [
    Definition {
        name: "hookline_events_published",
        cloudwatch: "EventsPublished",
        kind: Kind::Counter,
        label: None,
        help: "Events that reached fan-out (published through the API or written by a producer).",
    },
    Definition {
        name: "hookline_deliveries_created",
        cloudwatch: "DeliveriesCreated",
        kind: Kind::Counter,
        label: None,
        help: "Deliveries created: one per matching active webhook of an event.",
    },
    Definition {
        name: "hookline_attempts",
        cloudwatch: "Attempts",
        kind: Kind::Counter,
        label: Some("outcome"),
        help: "HTTP attempts by outcome: 2xx, 3xx, 410, 4xx, 5xx, timeout, connect, tls, refused, protocol.",
    },
    Definition {
        name: "hookline_deliveries_succeeded",
        cloudwatch: "DeliveriesSucceeded",
        kind: Kind::Counter,
        label: None,
        help: "Deliveries that succeeded.",
    },
    Definition {
        name: "hookline_deliveries_failed",
        cloudwatch: "DeliveriesFailed",
        kind: Kind::Counter,
        label: None,
        help: "Deliveries that failed for good (retries exhausted, 410, a failed redelivery).",
    },
    Definition {
        name: "hookline_webhooks_disabled",
        cloudwatch: "WebhooksDisabled",
        kind: Kind::Counter,
        label: Some("reason"),
        help: "Webhooks Hookline disabled, by reason: gone (410) or failing (auto-disable).",
    },
    Definition {
        name: "hookline_attempt_duration_seconds",
        cloudwatch: "AttemptDuration",
        kind: Kind::Histogram,
        label: None,
        help: "Time of one HTTP attempt, from the request's start to its end.",
    },
    Definition {
        name: "hookline_queue_lag_seconds",
        cloudwatch: "QueueLag",
        kind: Kind::Histogram,
        label: None,
        help: "Time from an attempt's due time to its start.",
    },
    Definition {
        name: "hookline_signing_duration_seconds",
        cloudwatch: "SigningDuration",
        kind: Kind::Histogram,
        label: None,
        help: "Time to sign one attempt (every scheme it signs with).",
    },
    Definition {
        name: "hookline_pending_deliveries",
        cloudwatch: "",
        kind: Kind::Gauge,
        label: None,
        help: "Deliveries waiting for an attempt (local mode).",
    },
    Definition {
        name: "hookline_oldest_pending_age_seconds",
        cloudwatch: "",
        kind: Kind::Gauge,
        label: None,
        help: "Age of the oldest pending delivery's due time, 0 when none is late (local mode).",
    },
];

/// Upper bounds of the histograms' buckets, in seconds.
pub const SECONDS_BUCKETS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

impl Metric {
    /// The definition of the series it feeds, and its label value.
    pub fn series(&self) -> (&'static Definition, Option<&'static str>) {
        let d = |name: &str| DEFINITIONS.iter().find(|d| d.name == name).unwrap_or(&DEFINITIONS[0]);
        match self {
            Metric::EventPublished => (d("hookline_events_published"), None),
            Metric::DeliveriesCreated(_) => (d("hookline_deliveries_created"), None),
            Metric::Attempt { outcome, .. } => (d("hookline_attempts"), Some(outcome.as_str())),
            Metric::DeliverySucceeded => (d("hookline_deliveries_succeeded"), None),
            Metric::DeliveryFailed => (d("hookline_deliveries_failed"), None),
            Metric::Signing(_) => (d("hookline_signing_duration_seconds"), None),
            Metric::WebhookDisabled(r) => (d("hookline_webhooks_disabled"), Some(r.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_feeds_a_defined_series_with_a_bounded_label() {
        let samples = [
            Metric::EventPublished,
            Metric::DeliveriesCreated(3),
            Metric::Attempt { outcome: OutcomeClass::Gone, duration: Duration::ZERO, lag: Duration::ZERO },
            Metric::DeliverySucceeded,
            Metric::DeliveryFailed,
            Metric::Signing(Duration::ZERO),
            Metric::WebhookDisabled(DisableReason::Failing),
        ];
        for m in samples {
            let (def, label) = m.series();
            assert_eq!(def.label.is_some(), label.is_some(), "{m:?}");
            assert_ne!(def.kind, Kind::Gauge, "{m:?}");
        }
        assert_eq!(OutcomeClass::of_status(410), OutcomeClass::Gone);
        assert_eq!(OutcomeClass::of_status(404), OutcomeClass::ClientError);
        assert_eq!(OutcomeClass::of_status(503), OutcomeClass::ServerError);
        assert_eq!(OutcomeClass::of_status(204), OutcomeClass::Success);
        let names: std::collections::BTreeSet<_> = DEFINITIONS.iter().map(|d| d.name).collect();
        assert_eq!(names.len(), DEFINITIONS.len(), "names are unique");
        assert!(SECONDS_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }
}
