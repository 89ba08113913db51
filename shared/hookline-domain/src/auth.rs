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
    /// Everything `webhooks:manage`, `webhooks:secrets` and `deliveries:write` allow.
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
    /// Create, change, enable, disable and delete webhooks.
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
    /// Rotate webhooks' signing secrets (and see the new one, once).
    #[serde(rename = "webhooks:secrets")]
    WebhooksSecrets,
    /// Redeliver deliveries and send test payloads.
    #[serde(rename = "deliveries:write")]
    DeliveriesWrite,
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
    pub const ALL: [Scope; 8] = [
        Scope::WebhooksRead,
        Scope::WebhooksWrite,
        Scope::WebhooksManage,
        Scope::WebhooksSecrets,
        Scope::DeliveriesWrite,
        Scope::EventsRead,
        Scope::EventsWrite,
        Scope::Admin,
    ];

    /// The scope as written in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::WebhooksRead => "webhooks:read",
            Scope::WebhooksWrite => "webhooks:write",
            Scope::WebhooksManage => "webhooks:manage",
            Scope::WebhooksSecrets => "webhooks:secrets",
            Scope::DeliveriesWrite => "deliveries:write",
            Scope::EventsRead => "events:read",
            Scope::EventsWrite => "events:write",
            Scope::Admin => "admin",
        }
    }

    /// Parses a scope name.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|sc| sc.as_str() == s)
    }

    /// Whether holding `self` grants `other`: each scope grants itself, `admin` every
    /// scope, and `webhooks:write` the three finer webhook scopes it was split into.
    pub fn grants(self, other: Scope) -> bool {
        self == other
            || self == Scope::Admin
            || (self == Scope::WebhooksWrite && matches!(other, Scope::WebhooksManage | Scope::WebhooksSecrets | Scope::DeliveriesWrite))
    }
}

/// What a credential is: an API key, a portal link (good only for opening a portal
/// session, once), or a portal session (acts like a key until it expires or its link
/// is revoked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CredentialKind {
    /// An API key.
    #[default]
    Key,
    /// A portal link's token.
    PortalLink,
    /// A portal session's token.
    PortalSession,
}

impl CredentialKind {
    /// The kind as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Key => "api_key",
            CredentialKind::PortalLink => "portal_link",
            CredentialKind::PortalSession => "portal_session",
        }
    }

    /// Parses a stored kind.
    pub fn parse(s: &str) -> Option<CredentialKind> {
        [CredentialKind::Key, CredentialKind::PortalLink, CredentialKind::PortalSession].into_iter().find(|k| k.as_str() == s)
    }
}

/// A key's secret. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// A new random key: the prefix and 32 random bytes, base64url.
    pub fn generate() -> Self {
        Self::generate_with(KEY_PREFIX)
    }

    /// A new random secret with another prefix (portal links and sessions).
    pub fn generate_with(prefix: &str) -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        ApiKeySecret(format!("{prefix}{}", B64.encode(bytes)))
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
    /// What the credential is.
    #[serde(skip)]
    pub kind: CredentialKind,
    /// When it stops working (portal links and sessions; keys do not expire).
    #[serde(skip)]
    pub expires_at: Option<Timestamp>,
    /// When a portal link was exchanged for a session.
    #[serde(skip)]
    pub used_at: Option<Timestamp>,
    /// A portal session's link, by the link's hash: revoking the link ends the session.
    #[serde(skip)]
    pub parent: Option<String>,
}

impl ApiKey {
    /// A plain API key with these fields.
    pub fn key(
        id: ApiKeyId,
        tenant: TenantId,
        scopes: Vec<Scope>,
        description: Option<String>,
        created_at: Timestamp,
        hash: String,
    ) -> Self {
        ApiKey {
            id,
            tenant,
            scopes,
            description,
            created_at,
            hash,
            kind: CredentialKind::Key,
            expires_at: None,
            used_at: None,
            parent: None,
        }
    }

    /// Whether the key carries `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|s| s.grants(scope))
    }

    /// Whether it is the operator's: an admin key of the `default` tenant, which may act
    /// within any tenant.
    pub fn is_operator(&self) -> bool {
        self.kind == CredentialKind::Key && self.tenant == TenantId::default_tenant() && self.scopes.contains(&Scope::Admin)
    }

    /// Whether it has expired at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
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
        let key = |scopes: Vec<Scope>| {
            ApiKey::key(ApiKeyId::generate(), TenantId::default_tenant(), scopes, None, crate::time::from_micros(0), String::new())
        };
        assert!(Scope::ALL.iter().all(|s| key(vec![Scope::Admin]).allows(*s)));
        let reader = key(vec![Scope::WebhooksRead]);
        assert!(reader.allows(Scope::WebhooksRead));
        assert!(!reader.allows(Scope::WebhooksWrite));
        let writer = key(vec![Scope::WebhooksWrite]);
        assert!([Scope::WebhooksManage, Scope::WebhooksSecrets, Scope::DeliveriesWrite].iter().all(|s| writer.allows(*s)));
        assert!(!writer.allows(Scope::EventsWrite) && !writer.allows(Scope::WebhooksRead));
        let manager = key(vec![Scope::WebhooksManage]);
        assert!(!manager.allows(Scope::WebhooksWrite) && !manager.allows(Scope::DeliveriesWrite));
        assert!(key(vec![Scope::Admin]).is_operator() && !reader.is_operator());
        assert_eq!(Scope::parse("events:write"), Some(Scope::EventsWrite));
        assert_eq!(Scope::parse("root"), None);
    }
}
