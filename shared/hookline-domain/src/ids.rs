//! Identifier newtypes. Each parses strictly, so a malformed id (or a path-traversal
//! attempt in a URL) is turned away at the boundary and never reaches a store.
//!
//! Hookline-minted ids carry a prefix that says what they name (`wh_`, `dlv_`, `att_`,
//! `key_`) followed by 32 lowercase hex digits. Event ids are plain UUIDs because
//! producers mint them too (LogAlto's `event.id` is a UUID).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use uuid::Uuid;

/// Why an id was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {kind}: {value:?}")]
pub struct InvalidId {
    /// What kind of id was expected.
    pub kind: &'static str,
    /// What was given (cut to 80 characters).
    pub value: String,
}

impl InvalidId {
    fn new(kind: &'static str, value: &str) -> Self {
        InvalidId { kind, value: value.chars().take(80).collect() }
    }
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Mints a new, time-ordered id (UUIDv7 underneath).
            pub fn generate() -> Self {
                $name(format!("{}{}", $prefix, Uuid::now_v7().simple()))
            }

            /// Parses an id, accepting only the exact canonical form.
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                match s.strip_prefix($prefix) {
                    Some(hex) if hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
                        Ok($name(s.to_owned()))
                    }
                    _ => Err(InvalidId::new($kind, s)),
                }
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// Names a webhook (an endpoint URL subscribed to event patterns).
    WebhookId, "wh_", "webhook id"
);
prefixed_id!(
    /// Names a delivery: one event to one webhook, stable across its attempts.
    DeliveryId, "dlv_", "delivery id"
);
prefixed_id!(
    /// Names one HTTP attempt of a delivery; also the JWT's `jti`.
    AttemptId, "att_", "attempt id"
);
prefixed_id!(
    /// Names an API key (not the secret itself).
    ApiKeyId, "key_", "api key id"
);
prefixed_id!(
    /// Names a recovery: a window of a webhook's deliveries sent again.
    RecoveryId, "rcv_", "recovery id"
);

impl DeliveryId {
    /// The delivery id of `event` to `webhook`, derived from the pair, so that fan-out
    /// run twice over the same event (a replayed stream record, a restart halfway
    /// through) names the same deliveries and creates none twice.
    ///
    /// It starts with the event's creation time in milliseconds (12 hex digits, as a
    /// UUIDv7 does) and goes on with 80 bits of a hash of the pair: deliveries of newer
    /// events sort after older ones, whatever kind of UUID the producer minted, so a
    /// store can list a webhook's deliveries newest first by id alone (DynamoDB does),
    /// and one indexed by id adds new ones at the end of the index.
    pub fn for_event(tenant: &TenantId, event: &EventId, event_created_at: &crate::time::Timestamp, webhook: &WebhookId) -> Self {
        let mut h = Sha256::new();
        h.update(tenant.as_str().as_bytes());
        h.update([0]);
        h.update(event.as_str().as_bytes());
        h.update([0]);
        h.update(webhook.as_str().as_bytes());
        let digest = h.finalize();
        let millis = event_created_at.timestamp_millis().clamp(0, (1 << 48) - 1);
        DeliveryId(format!("dlv_{millis:012x}{}", hex::encode(&digest[..10])))
    }
}

/// Names an event. A UUID in its hyphenated lowercase form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    /// Mints a new, time-ordered event id (UUIDv7).
    pub fn generate() -> Self {
        EventId(Uuid::now_v7().hyphenated().to_string())
    }

    /// Parses a UUID in any case; stores it hyphenated and lowercase.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if s.len() != 36 {
            return Err(InvalidId::new("event id", s));
        }
        Uuid::parse_str(s).map(|u| EventId(u.hyphenated().to_string())).map_err(|_| InvalidId::new("event id", s))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        Self::parse(&s)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> String {
        id.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Names a tenant: the product team's customer that owns webhooks, events and keys.
/// 1 to 64 characters of `a-z`, `0-9`, `_` and `-`, starting with a letter or digit.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// The tenant the bootstrap admin key belongs to.
    pub fn default_tenant() -> Self {
        TenantId("default".to_owned())
    }

    /// Parses a tenant name.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
            && s.as_bytes()[0].is_ascii_alphanumeric();
        if ok { Ok(TenantId(s.to_owned())) } else { Err(InvalidId::new("tenant", s)) }
    }

    /// The tenant as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        Self::parse(&s)
    }
}

impl From<TenantId> for String {
    fn from(id: TenantId) -> String {
        id.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let w = WebhookId::generate();
        assert_eq!(WebhookId::parse(w.as_str()), Ok(w.clone()));
        assert!(w.as_str().starts_with("wh_"));
        let e = EventId::generate();
        assert_eq!(EventId::parse(e.as_str()), Ok(e));
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in
            ["", "wh_", "wh_../../etc/passwd", "dlv_0123", "WH_0123456789abcdef0123456789abcdef", "wh_0123456789ABCDEF0123456789abcdef"]
        {
            assert!(WebhookId::parse(bad).is_err(), "{bad}");
        }
        assert!(EventId::parse("not-a-uuid").is_err());
        assert!(EventId::parse("0123456789abcdef0123456789abcdef").is_err());
        assert!(TenantId::parse("Acme").is_err());
        assert!(TenantId::parse("-acme").is_err());
        assert!(TenantId::parse(&"a".repeat(65)).is_err());
        assert!(TenantId::parse("acme-eu_1").is_ok());
    }

    #[test]
    fn delivery_ids_are_deterministic_per_event_and_webhook() {
        let t = TenantId::parse("acme").unwrap();
        let e = EventId::generate();
        let at = chrono::Utc::now();
        let w1 = WebhookId::generate();
        let w2 = WebhookId::generate();
        assert_eq!(DeliveryId::for_event(&t, &e, &at, &w1), DeliveryId::for_event(&t, &e, &at, &w1));
        assert_ne!(DeliveryId::for_event(&t, &e, &at, &w1), DeliveryId::for_event(&t, &e, &at, &w2));
        let d = DeliveryId::for_event(&t, &e, &at, &w1);
        assert_eq!(DeliveryId::parse(d.as_str()), Ok(d));
        // Another tenant's delivery of the same event to the same webhook id differs.
        let other = TenantId::parse("globex").unwrap();
        assert_ne!(DeliveryId::for_event(&t, &e, &at, &w1), DeliveryId::for_event(&other, &e, &at, &w1));
    }

    #[test]
    fn delivery_ids_of_newer_events_sort_after_older_ones() {
        let t = TenantId::parse("acme").unwrap();
        let ws: Vec<WebhookId> = (0..20).map(|_| WebhookId::generate()).collect();
        // Random (v4) event ids, as other services may mint: the order is the events' time.
        let older = (EventId::parse("ff1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d").unwrap(), crate::time::from_micros(1_688_000_000_000_000));
        let newer = (EventId::parse("001b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d").unwrap(), crate::time::from_micros(1_688_000_000_001_000));
        for a in &ws {
            for b in &ws {
                assert!(DeliveryId::for_event(&t, &older.0, &older.1, a) < DeliveryId::for_event(&t, &newer.0, &newer.1, b));
            }
        }
        let d = DeliveryId::for_event(&t, &newer.0, &newer.1, &ws[0]);
        assert!(d.as_str().starts_with(&format!("dlv_{:012x}", 1_688_000_000_001u64)), "{d}");
        assert_eq!(DeliveryId::parse(d.as_str()), Ok(d));
    }
}
