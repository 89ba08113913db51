//! Wire shapes: what clients send and what they get back. Kept apart from domain
//! types so the API can change its JSON without touching the domain, and vice versa.

use hookline_domain::auth::ApiKey;
use hookline_domain::catalog::EventPattern;
use hookline_domain::delivery::{Attempt, Delivery};
use hookline_domain::time::{Timestamp, serde_ts};
use hookline_domain::webhook::{CustomHeaders, EndpointUrl, PolicyInput, Scheme, SigningSecret, Webhook, WebhookInput, WebhookPatch};
use indexmap::IndexMap;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt;

/// `POST /webhooks` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    endpoint_url: String,
    listened_events: Vec<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    signatures: Option<Vec<String>>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    method: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    payload_format: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    retry_schedule: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    max_age: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    filter: Option<Option<serde_json::Value>>,
    #[serde(default, deserialize_with = "double_option")]
    rate_limit: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    max_in_flight: Option<Option<u64>>,
}

/// The delivery policy fields of a create or an update: absent leaves a field as it is
/// (the default, on create), `null` puts the default back.
macro_rules! policy_input {
    ($v:expr) => {
        PolicyInput {
            name: $v.name,
            method: $v.method,
            payload_format: $v.payload_format,
            retry_schedule: $v.retry_schedule,
            max_age: $v.max_age,
            filter: $v.filter,
            rate_limit: $v.rate_limit,
            max_in_flight: $v.max_in_flight,
        }
    };
}

impl From<CreateWebhook> for WebhookInput {
    fn from(c: CreateWebhook) -> Self {
        WebhookInput {
            endpoint_url: c.endpoint_url,
            listened_events: c.listened_events,
            description: c.description,
            active: c.active,
            headers: c.headers,
            signatures: c.signatures,
            secret: c.secret,
            policy: policy_input!(c),
        }
    }
}

fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /webhooks/{id}` body: every field optional; `description: null` clears it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[serde(default)]
    endpoint_url: Option<String>,
    #[serde(default)]
    listened_events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    description: Option<Option<String>>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    signatures: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    method: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    payload_format: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    retry_schedule: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    max_age: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    filter: Option<Option<serde_json::Value>>,
    #[serde(default, deserialize_with = "double_option")]
    rate_limit: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    max_in_flight: Option<Option<u64>>,
}

impl From<UpdateWebhook> for WebhookPatch {
    fn from(u: UpdateWebhook) -> Self {
        WebhookPatch {
            endpoint_url: u.endpoint_url,
            listened_events: u.listened_events,
            description: u.description,
            active: u.active,
            headers: u.headers,
            signatures: u.signatures,
            policy: policy_input!(u),
        }
    }
}

/// A webhook as the API shows it.
#[derive(Debug, Serialize)]
pub struct WebhookView<'a> {
    id: &'a str,
    endpoint_url: &'a EndpointUrl,
    listened_events: &'a [EventPattern],
    description: &'a Option<String>,
    active: bool,
    headers: &'a CustomHeaders,
    #[serde(serialize_with = "serde_ts::serialize")]
    created_at: Timestamp,
    #[serde(serialize_with = "serde_ts::serialize")]
    updated_at: Timestamp,
    disabled_reason: &'a Option<String>,
    #[serde(serialize_with = "serde_ts::option")]
    disabled_at: Option<Timestamp>,
    #[serde(serialize_with = "serde_ts::option")]
    failing_since: Option<Timestamp>,
    signatures: &'a [Scheme],
    /// That a secret exists and its times, never the secret.
    secrets: Vec<SecretView>,
    /// The secret the answering request created: in that answer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    name: &'a Option<String>,
    method: &'static str,
    payload_format: &'static str,
    retry_schedule: Option<String>,
    max_age: Option<String>,
    filter: Option<&'a serde_json::Value>,
    rate_limit: Option<String>,
    max_in_flight: Option<u32>,
}

/// A secret as `GET` shows it: that it exists, when it was made, when it stops signing.
#[derive(Debug, Serialize)]
pub struct SecretView {
    #[serde(serialize_with = "serde_ts::serialize")]
    created_at: Timestamp,
    #[serde(serialize_with = "serde_ts::option")]
    expires_at: Option<Timestamp>,
}

impl<'a> WebhookView<'a> {
    /// The view of the answer that created `secret`: it carries the secret, once.
    pub fn with_secret(w: &'a Webhook, secret: Option<&SigningSecret>) -> Self {
        WebhookView { secret: secret.map(SigningSecret::expose), ..WebhookView::from(w) }
    }
}

impl<'a> From<&'a Webhook> for WebhookView<'a> {
    fn from(w: &'a Webhook) -> Self {
        WebhookView {
            id: w.id.as_str(),
            endpoint_url: &w.endpoint_url,
            listened_events: &w.listened_events,
            description: &w.description,
            active: w.active,
            headers: &w.headers,
            created_at: w.created_at,
            updated_at: w.updated_at,
            disabled_reason: &w.disabled_reason,
            disabled_at: w.disabled_at,
            failing_since: w.failing_since,
            signatures: &w.signatures,
            secrets: w.secrets.iter().map(|s| SecretView { created_at: s.created_at, expires_at: s.expires_at }).collect(),
            secret: None,
            name: &w.policy.name,
            method: w.policy.method.as_str(),
            payload_format: w.policy.payload_format.as_str(),
            retry_schedule: w.policy.retry_schedule.as_ref().map(|r| r.to_string()),
            max_age: w.policy.max_age.map(hookline_domain::duration::format_duration),
            filter: w.policy.filter.as_ref().map(|f| f.as_json()),
            rate_limit: w.policy.rate_limit.map(|r| r.to_string()),
            max_in_flight: w.policy.max_in_flight,
        }
    }
}

/// A delivery as the API shows it. In the list `attempts` is the count; in the
/// detail view (`GET /webhooks/{id}/deliveries/{delivery_id}`) it is the attempt log.
#[derive(Debug, Serialize)]
pub struct DeliveryView<'a> {
    id: &'a str,
    event_id: &'a str,
    event_name: &'a str,
    status: &'static str,
    attempts: Attempts<'a>,
    last_status_code: Option<u16>,
    #[serde(serialize_with = "serde_ts::option")]
    last_attempt_at: Option<Timestamp>,
    #[serde(serialize_with = "serde_ts::option")]
    next_attempt_at: Option<Timestamp>,
    #[serde(serialize_with = "serde_ts::option")]
    delivered_at: Option<Timestamp>,
    #[serde(serialize_with = "serde_ts::serialize")]
    created_at: Timestamp,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Attempts<'a> {
    Count(u32),
    Log(&'a [Attempt]),
}

impl<'a> DeliveryView<'a> {
    fn build(d: &'a Delivery, attempts: Attempts<'a>) -> Self {
        DeliveryView {
            id: d.id.as_str(),
            event_id: d.event_id.as_str(),
            event_name: d.event_name.as_str(),
            status: d.status.as_str(),
            attempts,
            last_status_code: d.last_status_code,
            last_attempt_at: d.last_attempt_at,
            next_attempt_at: d.next_attempt_at,
            delivered_at: d.delivered_at,
            created_at: d.created_at,
        }
    }

    /// The list view: `attempts` is a count.
    pub fn summary(d: &'a Delivery) -> Self {
        Self::build(d, Attempts::Count(d.attempts))
    }

    /// The detail view: `attempts` is the log, oldest first.
    pub fn detail(d: &'a Delivery, log: &'a [Attempt]) -> Self {
        Self::build(d, Attempts::Log(log))
    }
}

/// `POST /api-keys` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// Tenant the key acts for.
    pub tenant: String,
    /// Scope names.
    pub scopes: Vec<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// A new API key, with its secret shown this once.
#[derive(Debug, Serialize)]
pub struct CreatedApiKey<'a> {
    #[serde(flatten)]
    key_record: &'a ApiKey,
    /// The secret, shown this once.
    key: &'a str,
}

impl<'a> CreatedApiKey<'a> {
    /// The view.
    pub fn new(key: &'a ApiKey, secret: &'a str) -> Self {
        CreatedApiKey { key_record: key, key: secret }
    }
}

/// An event's fields as published: every member kept as raw JSON in its order.
/// A member name given twice is refused rather than silently keeping one of them.
#[derive(Debug, Default)]
pub struct EventFields(pub IndexMap<String, Box<RawValue>>);

impl<'de> Deserialize<'de> for EventFields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EventFields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<EventFields, A::Error> {
                let mut out = IndexMap::new();
                while let Some(k) = m.next_key::<String>()? {
                    let v: Box<RawValue> = m.next_value()?;
                    if out.contains_key(&k) {
                        return Err(serde::de::Error::custom(format!("duplicate field `{k}`")));
                    }
                    out.insert(k, v);
                }
                Ok(EventFields(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `POST /webhooks/{id}/secret/rotate` body (optional): how long the replaced secret
/// keeps signing, and a secret to use instead of a generated one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// `0s` to `7d`; default `24h`.
    #[serde(default)]
    pub grace_period: Option<String>,
    /// `whsec_…`.
    #[serde(default)]
    pub secret: Option<String>,
}

/// `POST /portal/links` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintLink {
    /// Capability names; `view` is always granted.
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    /// How long the link may be opened: `5m` to `7d`, default `1h`.
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// `POST /portal/sessions` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSession {
    /// The link's token.
    pub token: String,
}

/// `POST /webhooks/{id}/test` body (optional): one event name instead of all.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestWebhook {
    /// An event name the webhook listens to.
    #[serde(default)]
    pub event_name: Option<String>,
}
