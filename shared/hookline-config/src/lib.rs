//! Reading `HOOKLINE_*` settings, for the local binary's `Config` and the Lambdas'
//! `AwsConfig` alike: [`Settings`] looks variables up through a function (the process
//! environment, or a map in tests; nothing calls `set_var`), and every bad value is a
//! [`SettingError`] that names its variable. [`Settings::policy`] reads the delivery
//! rules both runtimes share.

use hookline_domain::catalog::EventCatalog;
use hookline_domain::duration::parse_duration;
use hookline_domain::policy::{DEFAULT_DELIVERY_TIMEOUT, DEFAULT_MAX_EVENT_BYTES, DEFAULT_RECOVERY_RATE, MAX_DELIVERY_TIMEOUT, Policy};
use hookline_domain::retry::{DEFAULT_SCHEDULE, RetrySchedule};
use hookline_domain::webhook::{AutoDisable, Cidr, EndpointPolicy};
use std::time::Duration;

/// A setting that could not be read: the variable and what is wrong with it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}: {message}")]
pub struct SettingError {
    /// The variable.
    pub var: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl SettingError {
    /// An error about `var`.
    pub fn new(var: &'static str, message: impl Into<String>) -> Self {
        SettingError { var, message: message.into() }
    }
}

/// Variables, looked up through a function.
pub struct Settings<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Settings<'a> {
    /// Settings read through `get`.
    pub fn new(get: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Settings { get }
    }

    /// A variable's value; unset and blank are the same.
    pub fn value(&self, var: &str) -> Option<String> {
        (self.get)(var).filter(|v| !v.trim().is_empty())
    }

    /// A variable that must be set.
    pub fn required(&self, var: &'static str) -> Result<String, SettingError> {
        self.value(var).ok_or_else(|| SettingError::new(var, "is required"))
    }

    /// A duration such as `10s` or `2m`, from `min` to `max`; `default` when unset.
    pub fn duration(&self, var: &'static str, default: Duration, min: Duration, max: Duration) -> Result<Duration, SettingError> {
        let Some(v) = self.value(var) else { return Ok(default) };
        let d = parse_duration(&v).map_err(|e| SettingError::new(var, e.to_string()))?;
        if d < min || d > max {
            return Err(SettingError::new(var, format!("must be between {} and {}", show(min), show(max))));
        }
        Ok(d)
    }

    /// A whole number from `min` to `max`; `default` when unset.
    pub fn number(&self, var: &'static str, default: usize, min: usize, max: usize) -> Result<usize, SettingError> {
        let Some(v) = self.value(var) else { return Ok(default) };
        v.trim()
            .parse()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| SettingError::new(var, format!("must be a number from {min} to {max}")))
    }

    /// `true`/`1` or `false`/`0`; `default` when unset.
    pub fn flag(&self, var: &'static str, default: bool) -> Result<bool, SettingError> {
        match self.value(var).as_deref().map(str::trim) {
            None => Ok(default),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(v) => Err(SettingError::new(var, format!("{v:?} is not true or false"))),
        }
    }

    /// An event catalogue given as a JSON array of event names.
    pub fn catalog_json(&self, var: &'static str, json: &str) -> Result<EventCatalog, SettingError> {
        EventCatalog::from_json(json).map_err(|e| SettingError::new(var, e.to_string()))
    }

    /// The delivery rules every runtime shares: `HOOKLINE_RETRY_SCHEDULE`,
    /// `HOOKLINE_DELIVERY_TIMEOUT`, `HOOKLINE_ALLOW_PRIVATE_ENDPOINTS`,
    /// `HOOKLINE_ALLOWED_CIDRS`, `HOOKLINE_MAX_EVENT_BYTES` (up to `max_event_limit`),
    /// `HOOKLINE_AUTO_DISABLE_AFTER`, `HOOKLINE_AUTO_DISABLE_MIN_FAILURES` and
    /// `HOOKLINE_RECOVERY_RATE`. The
    /// catalogue stays built in; each runtime reads its own source for it.
    pub fn policy(&self, max_event_limit: usize) -> Result<Policy, SettingError> {
        // Set but empty is a schedule of no retries, as README documents.
        let retry = RetrySchedule::parse(&(self.get)("HOOKLINE_RETRY_SCHEDULE").unwrap_or_else(|| DEFAULT_SCHEDULE.to_owned()))
            .map_err(|e| SettingError::new("HOOKLINE_RETRY_SCHEDULE", e.to_string()))?;
        let delivery_timeout =
            self.duration("HOOKLINE_DELIVERY_TIMEOUT", DEFAULT_DELIVERY_TIMEOUT, Duration::from_millis(1), MAX_DELIVERY_TIMEOUT)?;
        let allow_private = self.flag("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS", false)?;
        let allowed_cidrs = Cidr::parse_list(&self.value("HOOKLINE_ALLOWED_CIDRS").unwrap_or_default())
            .map_err(|e| SettingError::new("HOOKLINE_ALLOWED_CIDRS", e))?;
        let max_event_bytes = self.number("HOOKLINE_MAX_EVENT_BYTES", DEFAULT_MAX_EVENT_BYTES, 1024, max_event_limit)?;
        let auto_disable = AutoDisable::from_settings(
            self.value("HOOKLINE_AUTO_DISABLE_AFTER").as_deref(),
            self.value("HOOKLINE_AUTO_DISABLE_MIN_FAILURES").as_deref(),
        )
        .map_err(|e| SettingError::new("HOOKLINE_AUTO_DISABLE_AFTER", e))?;
        let recovery_rate = self.number("HOOKLINE_RECOVERY_RATE", DEFAULT_RECOVERY_RATE as usize, 1, 1000)? as u32;
        Ok(Policy {
            retry,
            delivery_timeout,
            endpoints: EndpointPolicy { allow_private, allowed_cidrs },
            max_event_bytes,
            auto_disable,
            recovery_rate,
            ..Policy::default()
        })
    }
}

/// A bound as people write it: `1ms`, `60s`, `900s`.
fn show(d: Duration) -> String {
    if d.subsec_millis() != 0 || d.as_secs() == 0 { format!("{}ms", d.as_millis()) } else { format!("{}s", d.as_secs()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<Policy, SettingError> {
        let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::new(&|k| m.get(k).cloned()).policy(1 << 20)
    }

    #[test]
    fn defaults_are_the_documented_ones_and_safe() {
        let p = read(&[]).expect("defaults");
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
            ("HOOKLINE_RECOVERY_RATE", "0"),
        ] {
            assert_eq!(read(&[(k, v)]).expect_err(v).var, k, "{k}={v}");
        }
        assert!(!read(&[("HOOKLINE_AUTO_DISABLE_AFTER", "off")]).expect("off").auto_disable.enabled);
    }

    #[test]
    fn values_in_range_are_taken_and_an_empty_schedule_means_no_retries() {
        let p = read(&[("HOOKLINE_DELIVERY_TIMEOUT", "30s"), ("HOOKLINE_MAX_EVENT_BYTES", "2048"), ("HOOKLINE_RETRY_SCHEDULE", "")])
            .expect("policy");
        assert_eq!(p.delivery_timeout, Duration::from_secs(30));
        assert_eq!(p.max_event_bytes, 2048);
        assert!(p.retry.delays().is_empty());
        assert!(read(&[("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS", "1")]).expect("flag").endpoints.allow_private);
    }
}
