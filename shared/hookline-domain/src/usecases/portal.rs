//! The portal: links a product's backend mints for its customer, exchanged once for a
//! short-lived session bound to the link's capabilities; and authenticating any bearer
//! credential (API key or session).
//!
//! Links and sessions are credentials in the API key store, told apart by their
//! [`CredentialKind`]: a link's token opens one session and nothing else; a session acts
//! like an API key holding its capabilities' scopes, within one tenant, until it expires
//! or its link is revoked (a session names its link, and dies with it), or the API key
//! that minted the link is (a link names that key the same way).

use crate::auth::{ApiKey, ApiKeySecret, CredentialKind, Scope};
use crate::ids::{ApiKeyId, TenantId};
use crate::ports::{Hookline, StoreError};
use chrono::Duration;

/// Shortest lifetime of a portal link.
pub const MIN_LINK_TTL: Duration = Duration::minutes(5);
/// Longest lifetime of a portal link.
pub const MAX_LINK_TTL: Duration = Duration::days(7);
/// A link's lifetime when none is asked for.
pub const DEFAULT_LINK_TTL: Duration = Duration::hours(1);
/// How long a portal session lasts from the link's exchange.
pub const SESSION_TTL: Duration = Duration::hours(1);
/// A portal link's token starts with this.
pub const LINK_PREFIX: &str = "hkp_";
/// A portal session's token starts with this.
pub const SESSION_PREFIX: &str = "hks_";

/// What a portal link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// See webhooks, deliveries, health and the catalogue (every link has it).
    View,
    /// Create, change, enable, disable and delete webhooks.
    Manage,
    /// Rotate webhooks' secrets, and see the new one once.
    Secrets,
    /// Redeliver and send test payloads.
    Deliveries,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 4] = [Capability::View, Capability::Manage, Capability::Secrets, Capability::Deliveries];

    /// The capability as written in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::View => "view",
            Capability::Manage => "manage",
            Capability::Secrets => "secrets",
            Capability::Deliveries => "deliveries",
        }
    }

    /// Parses a capability name.
    pub fn parse(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The scope it grants.
    pub fn scope(self) -> Scope {
        match self {
            Capability::View => Scope::WebhooksRead,
            Capability::Manage => Scope::WebhooksManage,
            Capability::Secrets => Scope::WebhooksSecrets,
            Capability::Deliveries => Scope::DeliveriesWrite,
        }
    }

    /// The capabilities a portal credential's scopes stand for.
    pub fn of(key: &ApiKey) -> Vec<Capability> {
        Capability::ALL.into_iter().filter(|c| key.scopes.contains(&c.scope())).collect()
    }
}

/// Why a portal request was refused.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// A capability name is unknown.
    #[error("unknown capability {0:?}; known capabilities are view, manage, secrets, deliveries")]
    UnknownCapability(String),
    /// The lifetime asked for is out of bounds.
    #[error("expires_in must be a duration from 5m to 7d, like 1h")]
    BadLifetime,
    /// The caller may not grant a capability.
    #[error("this key cannot grant the {0} capability: it lacks the {1} scope")]
    CannotGrant(&'static str, &'static str),
    /// Only API keys mint links.
    #[error("portal links are minted with an API key, not from a portal session")]
    NotAKey,
    /// The link is unknown, or was revoked.
    #[error("this portal link is not valid (unknown or revoked)")]
    Invalid,
    /// The link has expired.
    #[error("this portal link has expired")]
    Expired,
    /// The link was used already.
    #[error("this portal link was used already; links open one session")]
    Used,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for PortalError {
    fn from(e: StoreError) -> Self {
        PortalError::Store(e)
    }
}

/// Mints a portal link for `tenant`, on behalf of `caller`, which must be an API key
/// holding the scope of every capability it grants (`view` is always granted).
/// Returns the link and its token, which exists nowhere else.
pub async fn mint_link(
    h: &Hookline,
    caller: &ApiKey,
    tenant: &TenantId,
    capabilities: &[String],
    ttl: Option<Duration>,
) -> Result<(ApiKey, ApiKeySecret), PortalError> {
    if caller.kind != CredentialKind::Key {
        return Err(PortalError::NotAKey);
    }
    let mut granted = vec![Capability::View];
    for name in capabilities {
        let c = Capability::parse(name).ok_or_else(|| PortalError::UnknownCapability(name.chars().take(64).collect()))?;
        if !granted.contains(&c) {
            granted.push(c);
        }
    }
    granted.sort();
    for c in &granted {
        if !caller.allows(c.scope()) {
            return Err(PortalError::CannotGrant(c.as_str(), c.scope().as_str()));
        }
    }
    let ttl = ttl.unwrap_or(DEFAULT_LINK_TTL);
    if !(MIN_LINK_TTL..=MAX_LINK_TTL).contains(&ttl) {
        return Err(PortalError::BadLifetime);
    }
    let now = h.clock.now();
    let secret = ApiKeySecret::generate_with(LINK_PREFIX);
    let link = ApiKey {
        kind: CredentialKind::PortalLink,
        expires_at: Some(now + ttl),
        parent: Some(caller.hash.clone()),
        ..ApiKey::key(ApiKeyId::generate(), tenant.clone(), granted.iter().map(|c| c.scope()).collect(), None, now, secret.hash())
    };
    h.keys.insert(&link).await?;
    tracing::info!(link = %link.id, tenant = %link.tenant, "portal link minted");
    Ok((link, secret))
}

/// Exchanges a portal link's token for a session, once.
pub async fn open_session(h: &Hookline, token: &str) -> Result<(ApiKey, ApiKeySecret), PortalError> {
    let now = h.clock.now();
    let hash = ApiKeySecret::new(token).hash();
    let link = match h.keys.find_by_hash(&hash).await {
        Ok(k) if k.kind == CredentialKind::PortalLink => k,
        Ok(_) | Err(StoreError::NotFound) => return Err(PortalError::Invalid),
        Err(e) => return Err(e.into()),
    };
    if link.used_at.is_some() {
        return Err(PortalError::Used);
    }
    if link.expired(now) {
        return Err(PortalError::Expired);
    }
    if !minter_holds(h, &link).await.map_err(PortalError::Store)? {
        return Err(PortalError::Invalid);
    }
    let until = now + SESSION_TTL;
    let link = match h.keys.use_link(&hash, now, until).await {
        Ok(l) => l,
        // Another request used it first (or it expired or was revoked meanwhile).
        Err(StoreError::Conflict) => return Err(PortalError::Used),
        Err(StoreError::NotFound) => return Err(PortalError::Invalid),
        Err(e) => return Err(e.into()),
    };
    let secret = ApiKeySecret::generate_with(SESSION_PREFIX);
    let session = ApiKey {
        kind: CredentialKind::PortalSession,
        expires_at: Some(until),
        parent: Some(hash),
        ..ApiKey::key(ApiKeyId::generate(), link.tenant.clone(), link.scopes.clone(), None, now, secret.hash())
    };
    h.keys.insert(&session).await?;
    tracing::info!(session = %session.id, link = %link.id, tenant = %session.tenant, "portal session opened");
    Ok((session, secret))
}

/// Revokes one portal link of `tenant`: it can no longer be exchanged, and the session
/// opened from it ends.
pub async fn revoke_link(h: &Hookline, tenant: &TenantId, id: &ApiKeyId) -> Result<(), StoreError> {
    let link = h.keys.delete(tenant, id, CredentialKind::PortalLink).await?;
    tracing::info!(link = %link.id, tenant = %tenant, "portal link revoked");
    Ok(())
}

/// Whether the API key that minted `link` still exists (links minted before links named
/// their key have no such check).
async fn minter_holds(h: &Hookline, link: &ApiKey) -> Result<bool, StoreError> {
    let Some(minter) = link.parent.as_deref() else { return Ok(true) };
    match h.keys.find_by_hash(minter).await {
        Ok(k) => Ok((k.kind == CredentialKind::Key && k.tenant == link.tenant) || k.is_operator()),
        Err(StoreError::NotFound) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Revokes every portal link of `tenant` (and so every portal session); returns how
/// many links there were. Lists again only while a listing came back full, skipping
/// links already tried (an index may still show a link just removed).
pub async fn revoke_all_links(h: &Hookline, tenant: &TenantId) -> Result<usize, StoreError> {
    let mut revoked = 0;
    let mut tried = std::collections::HashSet::new();
    loop {
        let links = h.keys.list(Some(tenant), CredentialKind::PortalLink).await?;
        let full = links.len() >= crate::ports::MAX_LISTED_KEYS;
        let mut progressed = false;
        for link in links.iter().filter(|l| tried.insert(l.id.clone())) {
            progressed = true;
            match h.keys.delete(tenant, &link.id, CredentialKind::PortalLink).await {
                Ok(_) => revoked += 1,
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        if !full || !progressed {
            break;
        }
    }
    tracing::info!(tenant = %tenant, revoked, "portal links revoked");
    Ok(revoked)
}

/// Why a bearer credential was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credential has that secret.
    #[error("unknown API key")]
    Unknown,
    /// A portal link was used as a bearer credential.
    #[error("a portal link is not an API key: open it in the console, or exchange it at POST /portal/sessions")]
    Link,
    /// The portal session has expired.
    #[error("this portal session has expired; open a new portal link")]
    Expired,
    /// The portal session's link was revoked.
    #[error("this portal session was revoked")]
    Revoked,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

/// The credential a bearer token stands for, if it may call the API now.
pub async fn authenticate(h: &Hookline, token: &str) -> Result<ApiKey, AuthError> {
    let store = |e: StoreError| match e {
        StoreError::NotFound => AuthError::Unknown,
        e => AuthError::Store(e),
    };
    let key = h.keys.find_by_hash(&ApiKeySecret::new(token).hash()).await.map_err(store)?;
    match key.kind {
        CredentialKind::Key => Ok(key),
        CredentialKind::PortalLink => Err(AuthError::Link),
        CredentialKind::PortalSession => {
            if key.expired(h.clock.now()) {
                return Err(AuthError::Expired);
            }
            let parent = key.parent.as_deref().ok_or(AuthError::Revoked)?;
            let link = match h.keys.find_by_hash(parent).await {
                Ok(link) if link.kind == CredentialKind::PortalLink && link.tenant == key.tenant => link,
                Ok(_) | Err(StoreError::NotFound) => return Err(AuthError::Revoked),
                Err(e) => return Err(AuthError::Store(e)),
            };
            match minter_holds(h, &link).await {
                Ok(true) => Ok(key),
                Ok(false) => Err(AuthError::Revoked),
                Err(e) => Err(AuthError::Store(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests;
