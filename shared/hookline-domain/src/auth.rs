//! API keys: bearer secrets, each belonging to one tenant and carrying scopes.
//!
//! Only a SHA-256 hash of a key is stored. Keys are 256 random bits, so a fast hash is
//! enough (nothing to brute-force), and looking a key up by its hash means no stored
//! secret is ever compared byte by byte with client input.

use crate::ids::{ApiKeyId, TenantId};
use crate::time::{Timestamp, serde_ts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Every key starts with this, so leaked keys are easy to recognise and scan for.
pub const KEY_PREFIX: &str = "hkl_";
/// Longest description of a key, in characters.
pub const MAX_KEY_DESCRIPTION_LEN: usize = 1024;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// Read webhooks, their deliveries and health.
    #[serde(rename = "webhooks:read")]
    WebhooksRead,
    /// Create, change, delete, test webhooks; redeliver.
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
    /// Read events.
    #[serde(rename = "events:read")]
    EventsRead,
    /// Publish events.
    #[serde(rename = "events:write")]
    EventsWrite,
    /// Everything in its tenant, and creating keys for any tenant.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 5] = [Scope::WebhooksRead, Scope::WebhooksWrite, Scope::EventsRead, Scope::EventsWrite, Scope::Admin];

    /// The scope as written in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::WebhooksRead => "webhooks:read",
            Scope::WebhooksWrite => "webhooks:write",
            Scope::EventsRead => "events:read",
            Scope::EventsWrite => "events:write",
            Scope::Admin => "admin",
        }
    }

    /// Parses a scope name.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|sc| sc.as_str() == s)
    }
}

/// A key's secret. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// A new random key: the prefix and 32 random bytes, base64url.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        ApiKeySecret(format!("{KEY_PREFIX}{}", B64.encode(bytes)))
    }

    /// Wraps a secret given by an operator or a client.
    pub fn new(s: impl Into<String>) -> Self {
        ApiKeySecret(s.into())
    }

    /// The secret itself; call only to show it to its owner or to send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash stored in place of the secret (hex SHA-256).
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret(<redacted>)")
    }
}

/// A stored API key: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// Its id.
    pub id: ApiKeyId,
    /// The tenant it acts for.
    pub tenant: TenantId,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Free text.
    pub description: Option<String>,
    /// When it was created.
    #[serde(serialize_with = "serde_ts::serialize")]
    pub created_at: Timestamp,
    /// Hex SHA-256 of the secret.
    #[serde(skip)]
    pub hash: String,
}

impl ApiKey {
    /// Whether the key carries `scope` (admin carries all).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug() {
        let s = ApiKeySecret::generate();
        assert!(s.expose().starts_with(KEY_PREFIX));
        assert!(!format!("{s:?}").contains(&s.expose()[4..]));
        assert_eq!(s.hash().len(), 64);
        assert_ne!(ApiKeySecret::generate(), s);
    }

    #[test]
    fn admin_allows_every_scope_and_others_only_their_own() {
        let key = |scopes: Vec<Scope>| ApiKey {
            id: ApiKeyId::generate(),
            tenant: TenantId::default_tenant(),
            scopes,
            description: None,
            created_at: crate::time::from_micros(0),
            hash: String::new(),
        };
        assert!(Scope::ALL.iter().all(|s| key(vec![Scope::Admin]).allows(*s)));
        let reader = key(vec![Scope::WebhooksRead]);
        assert!(reader.allows(Scope::WebhooksRead));
        assert!(!reader.allows(Scope::WebhooksWrite));
        assert_eq!(Scope::parse("events:write"), Some(Scope::EventsWrite));
        assert_eq!(Scope::parse("root"), None);
    }
}
