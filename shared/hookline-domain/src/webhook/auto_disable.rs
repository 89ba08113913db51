//! Automatic disabling of a failing webhook: the rule ([`AutoDisable`]) and how each
//! finished delivery extends or ends a webhook's failing streak.

use super::Webhook;
use crate::time::Timestamp;

/// When a failing webhook is disabled automatically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoDisable {
    /// Off: failing webhooks stay enabled.
    pub enabled: bool,
    /// Failed deliveries in a row needed.
    pub min_failures: u32,
    /// Time the failing streak must span.
    pub period: std::time::Duration,
}

impl AutoDisable {
    /// Reads the two settings: the period (`5d`, or `off` to never disable) and the
    /// minimum run of failed deliveries. `None` takes the default.
    pub fn from_settings(period: Option<&str>, min_failures: Option<&str>) -> Result<Self, String> {
        let mut rule = AutoDisable::default();
        match period.map(str::trim).filter(|p| !p.is_empty()) {
            Some("off") => rule.enabled = false,
            Some(p) => rule.period = crate::duration::parse_duration(p).map_err(|e| e.to_string())?,
            None => {}
        }
        if let Some(n) = min_failures.map(str::trim).filter(|n| !n.is_empty()) {
            rule.min_failures = n.parse().ok().filter(|n| *n >= 1).ok_or_else(|| format!("{n:?} is not a whole number of at least 1"))?;
        }
        Ok(rule)
    }
}

impl Default for AutoDisable {
    /// As Svix does: disabled once every delivery has failed for 5 days.
    fn default() -> Self {
        AutoDisable { enabled: true, min_failures: 1, period: std::time::Duration::from_secs(5 * 86_400) }
    }
}

impl Webhook {
    /// Counts a delivery that ended: a success ends a failing streak; a failure extends
    /// it, and disables the webhook once the streak has at least `rule.min_failures`
    /// deliveries spanning `rule.period`. Returns whether anything changed.
    pub fn record_delivery_outcome(&mut self, succeeded: bool, now: Timestamp, rule: &AutoDisable) -> bool {
        if succeeded {
            let changed = self.failing_since.is_some() || self.failed_deliveries > 0;
            self.failing_since = None;
            self.failed_deliveries = 0;
            return changed;
        }
        let since = *self.failing_since.get_or_insert(now);
        self.failed_deliveries = self.failed_deliveries.saturating_add(1);
        let span = (now - since).to_std().unwrap_or_default();
        if rule.enabled && self.active && self.failed_deliveries >= rule.min_failures && span >= rule.period {
            let reason = format!("every delivery failed since {} ({} deliveries)", crate::time::format(&since), self.failed_deliveries);
            self.disable(reason, now);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::EventCatalog;
    use crate::ids::TenantId;
    use crate::time::from_micros;
    use crate::webhook::{EndpointPolicy, WebhookInput};

    fn webhook() -> Webhook {
        let input = WebhookInput {
            endpoint_url: "https://x.example/".to_owned(),
            listened_events: vec!["project.*".to_owned()],
            ..Default::default()
        };
        Webhook::create(TenantId::default_tenant(), input, &EventCatalog::builtin(), &EndpointPolicy::default(), from_micros(0)).unwrap()
    }

    #[test]
    fn a_failing_streak_spanning_the_period_disables_and_a_success_resets_it() {
        let rule = AutoDisable { enabled: true, min_failures: 3, period: std::time::Duration::from_secs(60) };
        let mut w = webhook();
        let t = |s: i64| from_micros(s * 1_000_000);
        assert!(w.record_delivery_outcome(false, t(0), &rule));
        assert!(w.record_delivery_outcome(false, t(30), &rule));
        assert!(w.active, "two failures are not enough");
        assert!(w.record_delivery_outcome(false, t(40), &rule));
        assert!(w.active, "three failures over 40 s do not span the period");
        w.record_delivery_outcome(false, t(61), &rule);
        assert!(!w.active);
        assert!(w.disabled_reason.as_deref().unwrap().starts_with("every delivery failed since"));
        assert_eq!(w.disabled_at, Some(t(61)));
        let mut v = webhook();
        v.record_delivery_outcome(false, t(0), &rule);
        assert!(v.record_delivery_outcome(true, t(10), &rule));
        assert_eq!((v.failing_since, v.failed_deliveries), (None, 0));
        assert!(!v.record_delivery_outcome(true, t(11), &rule), "nothing to write when healthy");
    }
}
