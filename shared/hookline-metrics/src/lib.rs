//! The metrics registry both runtimes use: [`Registry`] implements the domain's
//! `Metrics` port, keeps counters and histograms in memory, and writes them out as
//! Prometheus text (local mode's metrics address, [`Registry::prometheus`]) or as
//! CloudWatch Embedded Metric Format lines (the Lambdas, [`Registry::emf`], once per
//! invocation). Series names, kinds and meanings come from
//! `hookline_domain::metrics::DEFINITIONS`, so the two outputs cannot drift apart.

use hookline_domain::metrics::{DEFINITIONS, Definition, DisableReason, Kind, Metric, OutcomeClass, SECONDS_BUCKETS};
use hookline_domain::ports::Metrics;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Most samples of one histogram an EMF line carries (the format's limit).
pub const EMF_MAX_VALUES: usize = 100;
/// The CloudWatch namespace of Hookline's metrics.
pub const NAMESPACE: &str = "Hookline";

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations at or below each bound of `SECONDS_BUCKETS`, not cumulative.
    buckets: [u64; SECONDS_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        if let Some(i) = SECONDS_BUCKETS.iter().position(|b| v <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += v;
    }
}

#[derive(Debug, Default)]
struct State {
    /// Since start: (series, label value) → count.
    counters: BTreeMap<(&'static str, &'static str), u64>,
    histograms: BTreeMap<&'static str, Histogram>,
    /// Since the last EMF flush.
    counter_deltas: BTreeMap<(&'static str, &'static str), u64>,
    samples: BTreeMap<&'static str, Vec<f64>>,
}

/// Counters and histograms of one process (local mode) or Lambda container.
#[derive(Debug, Default)]
pub struct Registry {
    state: Mutex<State>,
    /// Whether it keeps what [`Registry::emf`] writes out (the Lambdas); local mode's
    /// registry keeps only the running counts, so memory stays flat.
    for_emf: bool,
}

impl Metrics for Registry {
    fn record(&self, metric: Metric) {
        let (def, label) = metric.series();
        let label = label.unwrap_or("");
        let mut s = self.lock();
        let for_emf = self.for_emf;
        let count = |s: &mut State, n: u64| {
            *s.counters.entry((def.name, label)).or_default() += n;
            if for_emf {
                *s.counter_deltas.entry((def.name, label)).or_default() += n;
            }
        };
        let observe = |s: &mut State, name: &'static str, v: f64| {
            s.histograms.entry(name).or_default().observe(v);
            if for_emf {
                s.samples.entry(name).or_default().push(v);
            }
        };
        match metric {
            Metric::EventPublished | Metric::DeliverySucceeded | Metric::DeliveryFailed | Metric::WebhookDisabled(_) => count(&mut s, 1),
            Metric::DeliveriesCreated(n) => count(&mut s, n),
            Metric::Attempt { duration, lag, .. } => {
                count(&mut s, 1);
                observe(&mut s, "hookline_attempt_duration_seconds", duration.as_secs_f64());
                observe(&mut s, "hookline_queue_lag_seconds", lag.as_secs_f64());
            }
            Metric::Signing(d) => observe(&mut s, def.name, d.as_secs_f64()),
        }
    }
}

/// The label values a labelled counter always shows (at 0 until counted).
fn label_values(def: &Definition) -> Vec<&'static str> {
    match def.label {
        Some("outcome") => OutcomeClass::ALL.iter().map(|o| o.as_str()).collect(),
        Some("reason") => DisableReason::ALL.iter().map(|r| r.as_str()).collect(),
        _ => vec![""],
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

impl Registry {
    /// An empty registry for the Prometheus text only (local mode).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty registry that also keeps what happened since its last [`Registry::emf`]
    /// (a Lambda container, which flushes after every invocation).
    pub fn for_emf() -> Self {
        Registry { for_emf: true, ..Self::default() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every series in the Prometheus text exposition format (version 0.0.4), with the
    /// gauges' values as given (`(name, value)`; a gauge not given is left out).
    pub fn prometheus(&self, gauges: &[(&str, f64)]) -> String {
        let s = self.lock();
        let mut out = String::new();
        for def in DEFINITIONS.iter() {
            match def.kind {
                Kind::Counter => {
                    let name = format!("{}_total", def.name);
                    let _ = writeln!(out, "# HELP {name} {}", escape_help(def.help));
                    let _ = writeln!(out, "# TYPE {name} counter");
                    for value in label_values(def) {
                        let n = s.counters.get(&(def.name, value)).copied().unwrap_or(0);
                        match def.label {
                            Some(label) => {
                                let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
                            }
                            None => {
                                let _ = writeln!(out, "{name} {n}");
                            }
                        }
                    }
                }
                Kind::Histogram => {
                    let h = s.histograms.get(def.name).cloned().unwrap_or_default();
                    let _ = writeln!(out, "# HELP {} {}", def.name, escape_help(def.help));
                    let _ = writeln!(out, "# TYPE {} histogram", def.name);
                    let mut cumulative = 0;
                    for (bound, n) in SECONDS_BUCKETS.iter().zip(h.buckets.iter()) {
                        cumulative += n;
                        let _ = writeln!(out, "{}_bucket{{le=\"{bound}\"}} {cumulative}", def.name);
                    }
                    let _ = writeln!(out, "{}_bucket{{le=\"+Inf\"}} {}", def.name, h.count);
                    let _ = writeln!(out, "{}_sum {}", def.name, h.sum);
                    let _ = writeln!(out, "{}_count {}", def.name, h.count);
                }
                Kind::Gauge => {
                    if let Some((_, v)) = gauges.iter().find(|(n, _)| *n == def.name) {
                        let _ = writeln!(out, "# HELP {} {}", def.name, escape_help(def.help));
                        let _ = writeln!(out, "# TYPE {} gauge", def.name);
                        let _ = writeln!(out, "{} {v}", def.name);
                    }
                }
            }
        }
        out
    }

    /// What was recorded since the last call, as Embedded Metric Format documents (one
    /// JSON line each) in namespace [`NAMESPACE`], with the dimension `Function` =
    /// `function`: one document for the unlabelled series, and one per label value of a
    /// labelled counter (dimensions `Function` and `Outcome` or `Reason`). Empty when
    /// nothing was recorded.
    pub fn emf(&self, function: &str, timestamp_ms: i64) -> Vec<String> {
        let (deltas, samples) = {
            let mut s = self.lock();
            (std::mem::take(&mut s.counter_deltas), std::mem::take(&mut s.samples))
        };
        let mut lines = Vec::new();
        let document = |dimension: Option<(&str, &str)>, metrics: Vec<(&str, &str, Value)>| {
            let mut dims = vec!["Function"];
            let mut root = Map::new();
            root.insert("Function".into(), Value::String(function.to_owned()));
            if let Some((name, value)) = dimension {
                dims.push(name);
                root.insert(name.into(), Value::String(value.to_owned()));
            }
            let defs: Vec<Value> = metrics.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit})).collect();
            for (name, _, value) in metrics {
                root.insert(name.into(), value);
            }
            root.insert(
                "_aws".into(),
                json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [dims], "Metrics": defs}]}),
            );
            Value::Object(root).to_string()
        };
        let mut plain = Vec::new();
        for def in DEFINITIONS.iter() {
            match (def.kind, def.label) {
                (Kind::Counter, None) => {
                    if let Some(n) = deltas.get(&(def.name, "")) {
                        plain.push((def.cloudwatch, "Count", json!(n)));
                    }
                }
                (Kind::Counter, Some(label)) => {
                    let dimension = if label == "outcome" { "Outcome" } else { "Reason" };
                    for value in label_values(def) {
                        if let Some(n) = deltas.get(&(def.name, value)) {
                            lines.push(document(Some((dimension, value)), vec![(def.cloudwatch, "Count", json!(n))]));
                        }
                    }
                }
                (Kind::Histogram, _) => {
                    if let Some(values) = samples.get(def.name) {
                        for chunk in values.chunks(EMF_MAX_VALUES) {
                            lines.push(document(None, vec![(def.cloudwatch, "Seconds", json!(chunk))]));
                        }
                    }
                }
                (Kind::Gauge, _) => {}
            }
        }
        if !plain.is_empty() {
            lines.insert(0, document(None, plain));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_and_observations_show_in_both_outputs_and_emf_drains() {
        let r = Registry::for_emf();
        r.record(Metric::EventPublished);
        r.record(Metric::DeliveriesCreated(3));
        for outcome in [OutcomeClass::Success, OutcomeClass::Success, OutcomeClass::Gone] {
            r.record(Metric::Attempt { outcome, duration: Duration::from_millis(20), lag: Duration::from_millis(3) });
        }
        r.record(Metric::WebhookDisabled(DisableReason::Gone));
        let text = r.prometheus(&[("hookline_pending_deliveries", 2.0)]);
        for line in [
            "hookline_events_published_total 1",
            "hookline_deliveries_created_total 3",
            "hookline_attempts_total{outcome=\"2xx\"} 2",
            "hookline_attempts_total{outcome=\"410\"} 1",
            "hookline_attempts_total{outcome=\"timeout\"} 0",
            "hookline_webhooks_disabled_total{reason=\"gone\"} 1",
            "hookline_attempt_duration_seconds_bucket{le=\"0.01\"} 0",
            "hookline_attempt_duration_seconds_bucket{le=\"0.025\"} 3",
            "hookline_attempt_duration_seconds_count 3",
            "hookline_pending_deliveries 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(!text.contains("hookline_oldest_pending_age_seconds"), "a gauge not given is left out");
        let lines = r.emf("sender", 1_795_000_000_000);
        let docs: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).expect("json")).collect();
        assert_eq!(docs[0]["EventsPublished"], 1);
        assert_eq!(docs[0]["DeliveriesCreated"], 3);
        let ok = docs.iter().find(|d| d["Outcome"] == "2xx").expect("2xx document");
        assert_eq!(
            (ok["Attempts"].as_u64(), ok["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0].clone()),
            (Some(2), json!(["Function", "Outcome"]))
        );
        assert!(r.emf("sender", 0).is_empty(), "a flush drains what it wrote");
        assert!(r.prometheus(&[]).contains("hookline_attempts_total{outcome=\"2xx\"} 2"), "Prometheus counts since start");
    }

    #[test]
    fn a_prometheus_only_registry_keeps_no_samples() {
        let r = Registry::new();
        for _ in 0..1000 {
            r.record(Metric::Attempt { outcome: OutcomeClass::Success, duration: Duration::from_millis(1), lag: Duration::ZERO });
        }
        let s = r.lock();
        assert!(s.samples.is_empty() && s.counter_deltas.is_empty(), "memory stays flat");
        assert_eq!(s.histograms["hookline_attempt_duration_seconds"].count, 1000);
    }
}
