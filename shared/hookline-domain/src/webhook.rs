//! Webhooks: an endpoint URL subscribed to event patterns, with optional custom headers,
//! and the validation every create or update goes through.
//!
//! Which endpoint URLs are acceptable ([`EndpointUrl`], [`EndpointPolicy`], [`Cidr`]) is
//! in `webhook/endpoint.rs`; when a failing webhook is disabled ([`AutoDisable`]) is in
//! `webhook/auto_disable.rs`.

mod auto_disable;
pub mod delivery_policy;
mod endpoint;
mod reachable;
pub mod secrets;

pub use auto_disable::AutoDisable;
pub use delivery_policy::{DeliveryPolicy, Filter, HttpMethod, PayloadFormat, PolicyInput};
pub use endpoint::{Cidr, EndpointPolicy, EndpointUrl, MAX_URL_LEN};
pub use reachable::is_public_ip;
pub use secrets::{Scheme, SealedSecret, SigningSecret};

use crate::catalog::{EventCatalog, EventName, EventPattern};
use crate::ids::{TenantId, WebhookId};
use crate::time::Timestamp;
use std::collections::BTreeMap;

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
pub const FORBIDDEN_HEADERS: [&str; 16] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "x-webhook-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
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
    /// `signatures` names no scheme, or an unknown one.
    #[error("{0}")]
    InvalidSignatures(String),
    /// A given secret is not `whsec_` and base64 of 24 to 64 bytes.
    #[error(transparent)]
    InvalidSecret(#[from] secrets::InvalidSecret),
    /// A secret was given for a webhook that does not sign with Standard Webhooks.
    #[error("secret is given but signatures does not include standard_webhooks")]
    SecretWithoutScheme,
    /// A field of its delivery policy is invalid: the code, and a message that starts
    /// with the field's name.
    #[error("{1}")]
    InvalidPolicy(&'static str, String),
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
            WebhookError::InvalidSignatures(_) => "invalid_signatures",
            WebhookError::InvalidSecret(_) => "invalid_secret",
            WebhookError::SecretWithoutScheme => "secret_without_standard_webhooks",
            WebhookError::InvalidPolicy(code, _) => code,
        }
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
    /// Signature schemes (default: the JWT alone).
    pub signatures: Option<Vec<String>>,
    /// A Standard Webhooks secret to use instead of a generated one.
    pub secret: Option<String>,
    /// Its delivery policy's fields, as given.
    pub policy: PolicyInput,
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
    /// New signature schemes.
    pub signatures: Option<Vec<String>>,
    /// Changes to its delivery policy.
    pub policy: PolicyInput,
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
    /// The signatures its deliveries carry.
    pub signatures: Vec<Scheme>,
    /// Its Standard Webhooks secrets, sealed: the current one first, then older ones
    /// in their grace period. Empty while it does not sign with Standard Webhooks.
    pub secrets: Vec<SealedSecret>,
    /// How its deliveries are made, beyond the deployment's defaults.
    pub policy: DeliveryPolicy,
}

fn validate_signatures(given: Option<Vec<String>>) -> Result<Option<Vec<Scheme>>, WebhookError> {
    given.map(|g| secrets::validate_schemes(&g).map_err(WebhookError::InvalidSignatures)).transpose()
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
            signatures: validate_signatures(input.signatures)?.unwrap_or_else(|| vec![Scheme::Jwt]),
            secrets: Vec::new(),
            policy: input.policy.apply(DeliveryPolicy::default())?,
        })
    }

    /// Whether its deliveries carry this scheme.
    pub fn signs_with(&self, scheme: Scheme) -> bool {
        self.signatures.contains(&scheme)
    }

    /// Whether it signs with Standard Webhooks and has no current secret yet (just
    /// created, or the scheme just turned on).
    pub fn needs_secret(&self) -> bool {
        self.signs_with(Scheme::StandardWebhooks) && !self.secrets.iter().any(|s| s.expires_at.is_none())
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
        if let Some(schemes) = validate_signatures(patch.signatures)? {
            w.signatures = schemes;
            if !w.signs_with(Scheme::StandardWebhooks) {
                // Turned off, its secrets go; turned on again, it gets a new one.
                w.secrets.clear();
            }
        }
        w.policy = patch.policy.apply(w.policy)?;
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

    /// Whether an event with this name goes to this webhook: it must be active and one
    /// of its patterns must match. (Its filter, if any, is checked on the event's fields
    /// by [`Webhook::wants_fields`].)
    pub fn wants(&self, name: &EventName) -> bool {
        self.active && self.listened_events.iter().any(|p| p.matches(name))
    }

    /// Whether an event with these fields passes its filter (every event does without one).
    pub fn wants_fields(&self, fields: &serde_json::Value) -> bool {
        self.policy.filter.as_ref().is_none_or(|f| f.matches(fields))
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
