//! Local mode's configuration, read once at start from `HOOKLINE_*` variables.

use hookline_domain::auth::ApiKeySecret;
use hookline_domain::catalog::EventCatalog;
use hookline_domain::duration::parse_duration;
use hookline_domain::retry::{DEFAULT_SCHEDULE, RetrySchedule};
use hookline_domain::service::{DEFAULT_DELIVERY_TIMEOUT, DEFAULT_MAX_EVENT_BYTES};
use hookline_domain::webhook::{AutoDisable, Cidr};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    var: &'static str,
    message: String,
}

fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { var, message: message.into() }
}

/// Local mode's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `HOOKLINE_LISTEN`: API address. Default `127.0.0.1:8080`; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `HOOKLINE_DATA_DIR`: holds the database, the signing key and the admin key. Default `./.hookline`.
    pub data_dir: PathBuf,
    /// `HOOKLINE_ADMIN_KEY`: the bootstrap key (`admin` scope, tenant `default`). Default:
    /// generated on first start, printed once, kept in `<data dir>/admin-key`.
    pub admin_key: Option<ApiKeySecret>,
    /// `HOOKLINE_RETRY_SCHEDULE`: delays before each retry, comma-separated, units `s`, `m`, `h`.
    /// Default `2m,6m,30m,1h,5h`.
    pub retry: RetrySchedule,
    /// `HOOKLINE_DELIVERY_TIMEOUT`: bound on one attempt, request and response. Default `10s`.
    pub delivery_timeout: Duration,
    /// `HOOKLINE_ALLOW_PRIVATE_ENDPOINTS`: accept `http://` and loopback/private targets.
    /// Default `false`; for local development and tests only.
    pub allow_private: bool,
    /// `HOOKLINE_ALLOWED_CIDRS`: comma-separated private ranges accepted as targets anyway
    /// (receivers in the operator's own network). Default: none.
    pub allowed_cidrs: Vec<Cidr>,
    /// `HOOKLINE_EVENT_CATALOG`: path to a JSON array of event names. Default: LogAlto's catalogue.
    pub catalog: EventCatalog,
    /// `HOOKLINE_MAX_EVENT_BYTES`: largest `POST /events` body, in bytes. Default 262144 (256 KiB).
    pub max_event_bytes: usize,
    /// `HOOKLINE_AUTO_DISABLE_AFTER` (default `5d`, `off` to never) and
    /// `HOOKLINE_AUTO_DISABLE_MIN_FAILURES` (default 1): a webhook whose deliveries have
    /// all failed for that long, that many at least, is disabled.
    pub auto_disable: AutoDisable,
    /// `HOOKLINE_SEND_CONCURRENCY`: deliveries in flight at once. Default 64.
    pub send_concurrency: usize,
}

/// Longest delivery timeout accepted; API Gateway and Lambda bound the AWS path similarly.
const MAX_DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `get` (tests pass a map; nothing calls `set_var`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let listen = match get("HOOKLINE_LISTEN") {
            Some(v) => v.parse().map_err(|_| err("HOOKLINE_LISTEN", format!("{v:?} is not an address like 127.0.0.1:8080")))?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let data_dir = get("HOOKLINE_DATA_DIR").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".hookline"));
        let admin_key = get("HOOKLINE_ADMIN_KEY").filter(|v| !v.is_empty()).map(ApiKeySecret::new);
        if admin_key.as_ref().is_some_and(|k| k.expose().len() < 16) {
            return Err(err("HOOKLINE_ADMIN_KEY", "must be at least 16 characters"));
        }
        let retry = RetrySchedule::parse(&get("HOOKLINE_RETRY_SCHEDULE").unwrap_or_else(|| DEFAULT_SCHEDULE.to_owned()))
            .map_err(|e| err("HOOKLINE_RETRY_SCHEDULE", e.to_string()))?;
        let delivery_timeout = match get("HOOKLINE_DELIVERY_TIMEOUT") {
            Some(v) => parse_duration(&v).map_err(|e| err("HOOKLINE_DELIVERY_TIMEOUT", e.to_string()))?,
            None => DEFAULT_DELIVERY_TIMEOUT,
        };
        if delivery_timeout.is_zero() || delivery_timeout > MAX_DELIVERY_TIMEOUT {
            return Err(err("HOOKLINE_DELIVERY_TIMEOUT", "must be between 1ms and 60s"));
        }
        let allow_private = match get("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS").as_deref() {
            None | Some("") | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(v) => {
                return Err(err("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS", format!("{v:?} is not true or false")));
            }
        };
        let allowed_cidrs =
            Cidr::parse_list(&get("HOOKLINE_ALLOWED_CIDRS").unwrap_or_default()).map_err(|e| err("HOOKLINE_ALLOWED_CIDRS", e))?;
        let catalog = match get("HOOKLINE_EVENT_CATALOG").filter(|v| !v.is_empty()) {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| err("HOOKLINE_EVENT_CATALOG", format!("cannot read {path}: {e}")))?;
                EventCatalog::from_json(&text).map_err(|e| err("HOOKLINE_EVENT_CATALOG", format!("{path}: {e}")))?
            }
            None => EventCatalog::builtin(),
        };
        let max_event_bytes = match get("HOOKLINE_MAX_EVENT_BYTES").filter(|v| !v.is_empty()) {
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| (1024..=16 * 1024 * 1024).contains(n))
                .ok_or_else(|| err("HOOKLINE_MAX_EVENT_BYTES", "must be a number of bytes from 1024 to 16777216"))?,
            None => DEFAULT_MAX_EVENT_BYTES,
        };
        let auto_disable =
            AutoDisable::from_settings(get("HOOKLINE_AUTO_DISABLE_AFTER").as_deref(), get("HOOKLINE_AUTO_DISABLE_MIN_FAILURES").as_deref())
                .map_err(|e| err("HOOKLINE_AUTO_DISABLE_AFTER / HOOKLINE_AUTO_DISABLE_MIN_FAILURES", e))?;
        let send_concurrency = match get("HOOKLINE_SEND_CONCURRENCY") {
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| (1..=4096).contains(n))
                .ok_or_else(|| err("HOOKLINE_SEND_CONCURRENCY", "must be a number from 1 to 4096"))?,
            None => 64,
        };
        Ok(Config {
            listen,
            data_dir,
            admin_key,
            retry,
            delivery_timeout,
            allow_private,
            allowed_cidrs,
            catalog,
            max_event_bytes,
            auto_disable,
            send_concurrency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_documentation() {
        let c = read(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from(".hookline"));
        assert_eq!(c.retry.to_string(), "2m,6m,30m,1h,5h");
        assert_eq!(c.delivery_timeout, Duration::from_secs(10));
        assert!(!c.allow_private);
        assert_eq!(c.catalog.names().count(), 24);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (k, v) in [
            ("HOOKLINE_LISTEN", "nope"),
            ("HOOKLINE_RETRY_SCHEDULE", "2x"),
            ("HOOKLINE_DELIVERY_TIMEOUT", "0s"),
            ("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS", "maybe"),
            ("HOOKLINE_EVENT_CATALOG", "/nonexistent/catalog.json"),
            ("HOOKLINE_ADMIN_KEY", "short"),
            ("HOOKLINE_ALLOWED_CIDRS", "10.0.0.0/33"),
        ] {
            let e = read(&[(k, v)]).unwrap_err();
            assert!(e.to_string().starts_with(k), "{e}");
        }
    }

    #[test]
    fn debug_output_redacts_the_admin_key() {
        let c = read(&[("HOOKLINE_ADMIN_KEY", "super-secret-admin-key")]).unwrap();
        assert!(!format!("{c:?}").contains("super-secret"));
    }
}
