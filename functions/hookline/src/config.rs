//! Local mode's configuration, read once at start from `HOOKLINE_*` variables.

use crate::server::{Limits, Timeouts};
use hookline_api::ConsoleSettings;
use hookline_config::{SettingError, Settings};
use hookline_domain::Policy;
use hookline_domain::auth::ApiKeySecret;
use std::net::SocketAddr;
use std::time::Duration;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
use std::path::PathBuf;

/// Why the configuration was refused: the variable and what is wrong with it.
pub type ConfigError = SettingError;

fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    SettingError::new(var, message)
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
    /// Delivery rules shared with AWS mode (`HOOKLINE_RETRY_SCHEDULE` default
    /// `2m,6m,30m,1h,5h`; `HOOKLINE_DELIVERY_TIMEOUT` default `10s`;
    /// `HOOKLINE_ALLOW_PRIVATE_ENDPOINTS` default `false`; `HOOKLINE_ALLOWED_CIDRS` default
    /// none; `HOOKLINE_MAX_EVENT_BYTES` default 262144, at most 16 MiB;
    /// `HOOKLINE_AUTO_DISABLE_AFTER` default `5d`; `HOOKLINE_AUTO_DISABLE_MIN_FAILURES`
    /// default 1), with the catalogue from `HOOKLINE_EVENT_CATALOG`: a path to a JSON array
    /// of event names, default LogAlto's catalogue.
    pub policy: Policy,
    /// `HOOKLINE_SEND_CONCURRENCY`: deliveries in flight at once. Default 64.
    pub send_concurrency: usize,
    /// What the API's clients may take and hold: `HOOKLINE_HEADER_READ_TIMEOUT` (default
    /// `10s`), `HOOKLINE_BODY_READ_TIMEOUT` (default `10s`), `HOOKLINE_IDLE_TIMEOUT`
    /// (default `60s`), `HOOKLINE_MAX_CONNECTIONS` (default 1024).
    pub limits: Limits,
    /// The console's look and framing (`HOOKLINE_CONSOLE_PRODUCT_NAME`,
    /// `HOOKLINE_CONSOLE_LOGO_URL`, `HOOKLINE_CONSOLE_ACCENT`,
    /// `HOOKLINE_CONSOLE_FRAME_ANCESTORS`), and `HOOKLINE_PUBLIC_URL` for portal links.
    pub console: ConsoleSettings,
    /// `HOOKLINE_METRICS_LISTEN`: where `GET /metrics` (Prometheus text) is served; unset,
    /// nowhere.
    pub metrics_listen: Option<SocketAddr>,
    /// `HOOKLINE_LOG_FORMAT`: `text` (default) or `json` (one JSON object per line).
    pub log_json: bool,
}

/// Largest `HOOKLINE_MAX_EVENT_BYTES` local mode accepts.
const MAX_EVENT_BYTES_LIMIT: usize = 16 * 1024 * 1024;

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `get` (tests pass a map; nothing calls `set_var`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let settings = Settings::new(&get);
        let listen = match get("HOOKLINE_LISTEN") {
            Some(v) => v.parse().map_err(|_| err("HOOKLINE_LISTEN", format!("{v:?} is not an address like 127.0.0.1:8080")))?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let data_dir = get("HOOKLINE_DATA_DIR").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".hookline"));
        let admin_key = get("HOOKLINE_ADMIN_KEY").filter(|v| !v.is_empty()).map(ApiKeySecret::new);
        if admin_key.as_ref().is_some_and(|k| k.expose().len() < 16) {
            return Err(err("HOOKLINE_ADMIN_KEY", "must be at least 16 characters"));
        }
        let mut policy = settings.policy(MAX_EVENT_BYTES_LIMIT)?;
        if let Some(path) = settings.value("HOOKLINE_EVENT_CATALOG") {
            let text = std::fs::read_to_string(&path).map_err(|e| err("HOOKLINE_EVENT_CATALOG", format!("cannot read {path}: {e}")))?;
            policy.catalog = settings
                .catalog_json("HOOKLINE_EVENT_CATALOG", &text)
                .map_err(|e| err("HOOKLINE_EVENT_CATALOG", format!("{path}: {}", e.message)))?;
        }
        let send_concurrency = settings.number("HOOKLINE_SEND_CONCURRENCY", 64, 1, 4096)?;
        let limits = Limits {
            timeouts: Timeouts {
                header: settings.duration("HOOKLINE_HEADER_READ_TIMEOUT", secs(10), Duration::from_millis(100), secs(600))?,
                idle: settings.duration("HOOKLINE_IDLE_TIMEOUT", secs(60), Duration::from_millis(100), secs(3600))?,
            },
            body_read_timeout: settings.duration("HOOKLINE_BODY_READ_TIMEOUT", secs(10), Duration::from_millis(100), secs(600))?,
            max_connections: settings.number("HOOKLINE_MAX_CONNECTIONS", 1024, 1, 65_536)?,
        };
        let console = ConsoleSettings::read(&settings)?;
        let metrics_listen = match settings.value("HOOKLINE_METRICS_LISTEN") {
            Some(v) => {
                Some(v.trim().parse().map_err(|_| err("HOOKLINE_METRICS_LISTEN", format!("{v:?} is not an address like 127.0.0.1:9464")))?)
            }
            None => None,
        };
        let log_json = match settings.value("HOOKLINE_LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("text") => false,
            Some("json") => true,
            Some(_) => return Err(err("HOOKLINE_LOG_FORMAT", "must be text or json")),
        };
        Ok(Config { listen, data_dir, admin_key, policy, send_concurrency, limits, console, metrics_listen, log_json })
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
        assert_eq!(c.policy.retry.to_string(), "2m,6m,30m,1h,5h");
        assert_eq!(c.policy.delivery_timeout, std::time::Duration::from_secs(10));
        assert!(!c.policy.endpoints.allow_private);
        assert_eq!(c.policy.catalog.names().filter(|n| !n.is_operational()).count(), 24);
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
