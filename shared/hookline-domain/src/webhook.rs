//! Webhooks: an endpoint URL subscribed to event patterns, with optional custom headers,
//! and the validation every create or update goes through.

use crate::catalog::{EventCatalog, EventName, EventPattern};
use crate::ids::{TenantId, WebhookId};
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use url::{Host, Url};

/// Longest accepted `endpoint_url`, in bytes (browsers and proxies agree on ~2 KiB).
pub const MAX_URL_LEN: usize = 2048;
/// Most `listened_events` entries on one webhook; the catalogue plus wildcards fits easily.
pub const MAX_LISTENED_EVENTS: usize = 100;
/// Most custom headers on one webhook.
pub const MAX_HEADERS: usize = 20;
/// Longest custom header name, in bytes.
pub const MAX_HEADER_NAME_LEN: usize = 64;
/// Longest custom header value, in bytes; enough for a bearer token.
pub const MAX_HEADER_VALUE_LEN: usize = 1024;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 1024;

/// Headers Hookline sets itself or that HTTP reserves for the connection: a custom
/// header may not override them.
pub const FORBIDDEN_HEADERS: [&str; 13] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "x-webhook-signature",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Why a webhook's fields were refused. [`WebhookError::code`] is the API's error code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// Not an absolute URL.
    #[error("endpoint_url is not a valid absolute URL: {0}")]
    InvalidUrl(String),
    /// Longer than [`MAX_URL_LEN`].
    #[error("endpoint_url is longer than {MAX_URL_LEN} bytes")]
    UrlTooLong,
    /// Not https (and plain http is not allowed here).
    #[error("endpoint_url must use https")]
    InsecureUrl,
    /// Carries a user name or password.
    #[error("endpoint_url must not contain a user name or password")]
    UrlWithCredentials,
    /// Names a loopback, private or otherwise internal address.
    #[error("endpoint_url points at a private or internal address ({0}); such targets are refused")]
    PrivateEndpoint(String),
    /// No `listened_events`.
    #[error("listened_events must name at least one event")]
    NoEvents,
    /// More than [`MAX_LISTENED_EVENTS`].
    #[error("listened_events has more than {MAX_LISTENED_EVENTS} entries")]
    TooManyEvents,
    /// One entry is not a catalogue name or wildcard.
    #[error("listened_events entry {0:?} is not a catalogue event name, subject.*, *.action or *")]
    InvalidEventPattern(String),
    /// More than [`MAX_HEADERS`] custom headers.
    #[error("headers has more than {MAX_HEADERS} entries")]
    TooManyHeaders,
    /// A malformed header name or value.
    #[error("header {0:?} is not a valid HTTP header name and value")]
    InvalidHeader(String),
    /// A header Hookline sets itself.
    #[error("header {0:?} is set by Hookline and cannot be overridden")]
    ForbiddenHeader(String),
    /// Longer than [`MAX_DESCRIPTION_LEN`].
    #[error("description is longer than {MAX_DESCRIPTION_LEN} characters")]
    DescriptionTooLong,
}

impl WebhookError {
    /// A stable, machine-readable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::InvalidUrl(_) => "invalid_endpoint_url",
            WebhookError::UrlTooLong => "endpoint_url_too_long",
            WebhookError::InsecureUrl => "insecure_endpoint_url",
            WebhookError::UrlWithCredentials => "endpoint_url_credentials",
            WebhookError::PrivateEndpoint(_) => "private_endpoint",
            WebhookError::NoEvents => "no_listened_events",
            WebhookError::TooManyEvents => "too_many_listened_events",
            WebhookError::InvalidEventPattern(_) => "invalid_event_pattern",
            WebhookError::TooManyHeaders => "too_many_headers",
            WebhookError::InvalidHeader(_) => "invalid_header",
            WebhookError::ForbiddenHeader(_) => "forbidden_header",
            WebhookError::DescriptionTooLong => "description_too_long",
        }
    }
}

/// Which endpoint URLs are acceptable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// Accept plain `http://` and loopback/private targets (local development and tests only).
    pub allow_private: bool,
    /// Non-public ranges that are accepted anyway, for operators whose receivers live
    /// in their own network (`HOOKLINE_ALLOWED_CIDRS`).
    pub allowed_cidrs: Vec<Cidr>,
}

impl EndpointPolicy {
    /// Everything allowed: plain http and private targets (local development and tests).
    pub fn private_allowed() -> Self {
        EndpointPolicy { allow_private: true, allowed_cidrs: Vec::new() }
    }

    /// Whether Hookline may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allow_private || is_public_ip(ip) || self.allowed_cidrs.iter().any(|c| c.contains(ip))
    }
}

/// An IP range such as `10.20.0.0/16` or `fd12:3456::/48`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `address/prefix` (a bare address is a single host).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = addr.parse().map_err(|_| format!("{s:?} is not an IP range like 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{s:?} has an invalid prefix length"))?
        };
        Ok(Cidr { addr: addr.to_canonical(), prefix })
    }

    /// Parses a comma-separated list; empty means none.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, String> {
        s.split(',').filter(|p| !p.trim().is_empty()).map(Cidr::parse).collect()
    }

    /// Whether `ip` is inside the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A webhook's target: an absolute http(s) URL that passed the [`EndpointPolicy`].
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointUrl(Url);

impl EndpointUrl {
    /// Parses and vets a URL against the policy.
    pub fn parse(s: &str, policy: &EndpointPolicy) -> Result<Self, WebhookError> {
        if s.len() > MAX_URL_LEN {
            return Err(WebhookError::UrlTooLong);
        }
        let url = Url::parse(s).map_err(|e| WebhookError::InvalidUrl(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_private => {}
            "http" => return Err(WebhookError::InsecureUrl),
            other => {
                return Err(WebhookError::InvalidUrl(format!("scheme {other:?} is not http(s)")));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(WebhookError::UrlWithCredentials);
        }
        let host = url.host().ok_or_else(|| WebhookError::InvalidUrl("no host".to_owned()))?;
        if !policy.allow_private {
            let internal = match &host {
                Host::Ipv4(ip) => !policy.permits(IpAddr::V4(*ip)),
                Host::Ipv6(ip) => !policy.permits(IpAddr::V6(*ip)),
                Host::Domain(d) => {
                    let d = d.trim_end_matches('.').to_ascii_lowercase();
                    d == "localhost" || d.ends_with(".localhost") || d.ends_with(".internal") || d.ends_with(".local")
                }
            };
            if internal {
                return Err(WebhookError::PrivateEndpoint(host.to_string()));
            }
        }
        Ok(EndpointUrl(url))
    }

    /// Reads back a URL an adapter stored (it passed [`EndpointUrl::parse`] when written).
    pub fn parse_stored(s: &str) -> Result<Self, WebhookError> {
        Url::parse(s).map(EndpointUrl).map_err(|e| WebhookError::InvalidUrl(e.to_string()))
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl fmt::Debug for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl Serialize for EndpointUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

/// Whether an address is globally routable: not loopback, private, link-local,
/// unique-local, CGNAT, multicast, broadcast, unspecified or documentation space,
/// including IPv4 addresses carried inside IPv6.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10, carrier-grade NAT
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15, benchmarking
                || o[0] >= 240) // reserved
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // IPv4-compatible (::a.b.c.d), deprecated but still routed by some stacks.
            if s[..6].iter().all(|&x| x == 0) {
                return false;
            }
            // 6to4 (2002::/16) and NAT64 (64:ff9b::/96) embed an IPv4 address.
            if s[0] == 0x2002 {
                let v4 = std::net::Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
                return is_public_ip(IpAddr::V4(v4));
            }
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0) {
                let v4 = std::net::Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return is_public_ip(IpAddr::V4(v4));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local (fd00:ec2::254 included)
                || (s[0] & 0xffc0) == 0xfe80 // fe80::/10 link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

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

/// Custom headers sent with every delivery of a webhook, names lowercased.
pub type CustomHeaders = BTreeMap<String, String>;

fn validate_headers(headers: BTreeMap<String, String>) -> Result<CustomHeaders, WebhookError> {
    if headers.len() > MAX_HEADERS {
        return Err(WebhookError::TooManyHeaders);
    }
    let mut out = CustomHeaders::new();
    for (name, value) in headers {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        let name_ok = !name.is_empty() && name.len() <= MAX_HEADER_NAME_LEN && name.bytes().all(token);
        let value_ok = value.len() <= MAX_HEADER_VALUE_LEN && value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
        if !name_ok || !value_ok {
            return Err(WebhookError::InvalidHeader(name.chars().take(MAX_HEADER_NAME_LEN).collect()));
        }
        let lower = name.to_ascii_lowercase();
        if FORBIDDEN_HEADERS.contains(&lower.as_str()) {
            return Err(WebhookError::ForbiddenHeader(name));
        }
        if out.insert(lower, value).is_some() {
            return Err(WebhookError::InvalidHeader(name));
        }
    }
    Ok(out)
}

fn validate_patterns(entries: Vec<String>, catalog: &EventCatalog) -> Result<Vec<EventPattern>, WebhookError> {
    if entries.is_empty() {
        return Err(WebhookError::NoEvents);
    }
    if entries.len() > MAX_LISTENED_EVENTS {
        return Err(WebhookError::TooManyEvents);
    }
    let mut out: Vec<EventPattern> = Vec::with_capacity(entries.len());
    for e in entries {
        let p = EventPattern::parse(&e, catalog).map_err(|_| WebhookError::InvalidEventPattern(e.chars().take(200).collect()))?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

fn validate_description(d: Option<String>) -> Result<Option<String>, WebhookError> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_LEN => Err(WebhookError::DescriptionTooLong),
        other => Ok(other),
    }
}

/// The fields of a webhook as a client sends them, before validation.
#[derive(Debug, Clone, Default)]
pub struct WebhookInput {
    /// Target URL.
    pub endpoint_url: String,
    /// Patterns, as given.
    pub listened_events: Vec<String>,
    /// Free text for the tenant's own reference.
    pub description: Option<String>,
    /// Whether deliveries are made (default true).
    pub active: Option<bool>,
    /// Custom headers sent with every delivery.
    pub headers: Option<BTreeMap<String, String>>,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    /// New target URL.
    pub endpoint_url: Option<String>,
    /// New patterns (replace the old ones).
    pub listened_events: Option<Vec<String>>,
    /// New description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// Enable or disable. Enabling clears `disabled_reason`.
    pub active: Option<bool>,
    /// New custom headers (replace the old ones).
    pub headers: Option<BTreeMap<String, String>>,
}

/// A webhook: where to send which events of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Its id.
    pub id: WebhookId,
    /// Its owner.
    pub tenant: TenantId,
    /// Where deliveries go.
    pub endpoint_url: EndpointUrl,
    /// Which events it receives.
    pub listened_events: Vec<EventPattern>,
    /// Free text.
    pub description: Option<String>,
    /// Whether deliveries are made.
    pub active: bool,
    /// Sent with every delivery; lowercase names.
    pub headers: CustomHeaders,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Why Hookline disabled it, when it did (a receiver answered 410, say).
    pub disabled_reason: Option<String>,
    /// When Hookline disabled it.
    pub disabled_at: Option<Timestamp>,
    /// Since when every delivery has failed (cleared by a success or by enabling).
    pub failing_since: Option<Timestamp>,
    /// Deliveries failed in a row since `failing_since`.
    pub failed_deliveries: u32,
}

impl Webhook {
    /// Validates client input into a new webhook.
    pub fn create(
        tenant: TenantId,
        input: WebhookInput,
        catalog: &EventCatalog,
        policy: &EndpointPolicy,
        now: Timestamp,
    ) -> Result<Self, WebhookError> {
        Ok(Webhook {
            id: WebhookId::generate(),
            tenant,
            endpoint_url: EndpointUrl::parse(&input.endpoint_url, policy)?,
            listened_events: validate_patterns(input.listened_events, catalog)?,
            description: validate_description(input.description)?,
            active: input.active.unwrap_or(true),
            headers: validate_headers(input.headers.unwrap_or_default())?,
            created_at: now,
            updated_at: now,
            disabled_reason: None,
            disabled_at: None,
            failing_since: None,
            failed_deliveries: 0,
        })
    }

    /// Applies a validated partial update, returning the new state.
    pub fn apply(
        &self,
        patch: WebhookPatch,
        catalog: &EventCatalog,
        policy: &EndpointPolicy,
        now: Timestamp,
    ) -> Result<Self, WebhookError> {
        let mut w = self.clone();
        if let Some(url) = patch.endpoint_url {
            w.endpoint_url = EndpointUrl::parse(&url, policy)?;
        }
        if let Some(events) = patch.listened_events {
            w.listened_events = validate_patterns(events, catalog)?;
        }
        if let Some(d) = patch.description {
            w.description = validate_description(d)?;
        }
        if let Some(h) = patch.headers {
            w.headers = validate_headers(h)?;
        }
        if let Some(active) = patch.active {
            w.active = active;
            if active {
                w.disabled_reason = None;
                w.disabled_at = None;
                w.failing_since = None;
                w.failed_deliveries = 0;
            }
        }
        w.updated_at = now;
        Ok(w)
    }

    /// Disables the webhook with a reason (a receiver's 410, or failing too long).
    pub fn disable(&mut self, reason: String, now: Timestamp) {
        self.active = false;
        self.disabled_reason = Some(reason);
        self.disabled_at = Some(now);
    }

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

    /// Whether an event with this name goes to this webhook: it must be active and one
    /// of its patterns must match.
    pub fn wants(&self, name: &EventName) -> bool {
        self.active && self.listened_events.iter().any(|p| p.matches(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_micros;

    fn input(url: &str) -> WebhookInput {
        WebhookInput { endpoint_url: url.to_owned(), listened_events: vec!["project.*".to_owned()], ..Default::default() }
    }

    fn create(url: &str, allow_private: bool) -> Result<Webhook, WebhookError> {
        Webhook::create(
            TenantId::default_tenant(),
            input(url),
            &EventCatalog::builtin(),
            &EndpointPolicy { allow_private, allowed_cidrs: Vec::new() },
            from_micros(0),
        )
    }

    #[test]
    fn https_public_endpoint_is_accepted_and_defaults_apply() {
        let w = create("https://webhook.acme.com/logalto", false).unwrap();
        assert!(w.active);
        assert!(w.headers.is_empty());
        assert_eq!(w.endpoint_url.as_str(), "https://webhook.acme.com/logalto");
    }

    #[test]
    fn plain_http_and_private_targets_need_the_private_setting() {
        assert_eq!(create("http://webhook.acme.com/", false).unwrap_err(), WebhookError::InsecureUrl);
        for url in [
            "https://127.0.0.1/",
            "https://localhost/",
            "https://10.1.2.3/",
            "https://[::1]/",
            "https://169.254.169.254/",
            "https://[::ffff:127.0.0.1]/",
            "https://2130706433/",
            "https://0x7f.1/",
        ] {
            assert!(matches!(create(url, false), Err(WebhookError::PrivateEndpoint(_))), "{url}");
            assert!(create(url, true).is_ok(), "{url}");
        }
        assert!(create("http://127.0.0.1:9000/hook", true).is_ok());
    }

    #[test]
    fn internal_targets_are_refused_in_every_spelling() {
        for url in [
            "https://127.0.0.1/",
            "https://127.1/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0x7f000001/",
            "https://0177.0.0.1/",
            "https://127.0.0.1./",
            "https://localhost./",
            "https://LOCALHOST/",
            "https://api.localhost/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::127.0.0.1]/",
            "https://[2002:7f00:1::]/",
            "https://[2002:a00:1::]/",
            "https://[64:ff9b::a00:1]/",
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://[fd00:ec2::254]/",
            "https://[fe80::1]/",
            "https://[fc00::1]/",
            "https://100.64.0.1/",
            "https://224.0.0.1/",
            "https://[ff02::1]/",
            "https://255.255.255.255/",
            "https://0.0.0.0/",
            "https://0/",
            "https://[::]/",
            "https://192.0.2.1/",
            "https://198.51.100.7/",
            "https://203.0.113.9/",
            "https://198.18.0.1/",
            "https://[2001:db8::1]/",
            "https://240.0.0.1/",
        ] {
            assert!(matches!(create(url, false), Err(WebhookError::PrivateEndpoint(_))), "{url} must be refused");
        }
        assert_eq!(create("https://good.example@127.0.0.1/", false).unwrap_err(), WebhookError::UrlWithCredentials);
        for url in ["https://93.184.215.14/", "https://[2606:4700::1111]/", "https://8.8.8.8/", "https://hooks.example.com/"] {
            assert!(create(url, false).is_ok(), "{url} is public");
        }
    }

    #[test]
    fn allowed_cidrs_open_only_their_ranges() {
        let policy = EndpointPolicy { allow_private: false, allowed_cidrs: Cidr::parse_list("10.20.0.0/16, fd12::/16").unwrap() };
        let ok = |u: &str| EndpointUrl::parse(u, &policy).is_ok();
        assert!(ok("https://10.20.3.4/"));
        assert!(ok("https://[::ffff:10.20.3.4]/"));
        assert!(ok("https://[fd12::5]/"));
        assert!(!ok("https://10.21.0.1/"));
        assert!(!ok("https://127.0.0.1/"));
        assert!(!ok("http://10.20.3.4/"), "plain http still needs the private setting");
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nonsense").is_err());
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("1.2.3.4".parse().unwrap()));
        assert_eq!(Cidr::parse_list("").unwrap(), vec![]);
    }

    #[test]
    fn malformed_urls_are_refused() {
        assert!(matches!(create("not a url", true), Err(WebhookError::InvalidUrl(_))));
        assert!(matches!(create("ftp://x.example/", true), Err(WebhookError::InvalidUrl(_))));
        assert_eq!(create("https://u:p@x.example/", true).unwrap_err(), WebhookError::UrlWithCredentials);
        assert_eq!(create(&format!("https://x.example/{}", "a".repeat(MAX_URL_LEN)), true).unwrap_err(), WebhookError::UrlTooLong);
    }

    #[test]
    fn reserved_and_malformed_headers_are_refused() {
        let with = |pairs: &[(&str, &str)]| {
            let mut i = input("https://x.example/");
            i.headers = Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
            Webhook::create(TenantId::default_tenant(), i, &EventCatalog::builtin(), &EndpointPolicy::default(), from_micros(0))
        };
        assert_eq!(with(&[("X-Webhook-Signature", "x")]).unwrap_err().code(), "forbidden_header");
        assert_eq!(with(&[("Host", "x")]).unwrap_err().code(), "forbidden_header");
        assert_eq!(with(&[("bad name", "x")]).unwrap_err().code(), "invalid_header");
        assert_eq!(with(&[("X-Ok", "line\r\nbreak")]).unwrap_err().code(), "invalid_header");
        let w = with(&[("X-Api-Key", "secret")]).unwrap();
        assert_eq!(w.headers.get("x-api-key").map(String::as_str), Some("secret"));
    }

    #[test]
    fn inactive_webhook_wants_nothing() {
        let mut w = create("https://x.example/", false).unwrap();
        let name = EventName::parse("project.created").unwrap();
        assert!(w.wants(&name));
        assert!(!w.wants(&EventName::parse("activity.created").unwrap()));
        w.active = false;
        assert!(!w.wants(&name));
    }

    #[test]
    fn a_failing_streak_spanning_the_period_disables_and_a_success_resets_it() {
        let rule = AutoDisable { enabled: true, min_failures: 3, period: std::time::Duration::from_secs(60) };
        let mut w = create("https://x.example/", false).unwrap();
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
        let mut v = create("https://x.example/", false).unwrap();
        v.record_delivery_outcome(false, t(0), &rule);
        assert!(v.record_delivery_outcome(true, t(10), &rule));
        assert_eq!((v.failing_since, v.failed_deliveries), (None, 0));
        assert!(!v.record_delivery_outcome(true, t(11), &rule), "nothing to write when healthy");
    }

    #[test]
    fn enabling_clears_the_disabled_reason() {
        let mut w = create("https://x.example/", false).unwrap();
        w.active = false;
        w.disabled_reason = Some("gone".into());
        w.disabled_at = Some(from_micros(1));
        let patch = WebhookPatch { active: Some(true), ..Default::default() };
        let w2 = w.apply(patch, &EventCatalog::builtin(), &EndpointPolicy::default(), from_micros(2)).unwrap();
        assert!(w2.active && w2.disabled_reason.is_none() && w2.disabled_at.is_none());
    }
}
