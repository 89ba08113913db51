//! What the API asks of Hookline beyond reading and writing one item: publishing an
//! event (with its idempotency protocol), redelivering, creating API keys, and the
//! events the test endpoint sends. The API's handlers only translate between HTTP and
//! these functions; each error says what went wrong in domain terms.

pub mod portal;
mod webhooks;

pub use webhooks::{WebhookWriteError, Written, prepare_webhook, rotate_secret, store_update, store_webhook};

use crate::auth::{ApiKey, ApiKeySecret, MAX_KEY_DESCRIPTION_LEN, Scope};
use crate::catalog::{EventCatalog, EventName};
use crate::delivery::{Delivery, DeliveryStatus};
use crate::event::{Event, EventError};
use crate::ids::{ApiKeyId, DeliveryId, TenantId, WebhookId};
use crate::ports::{ApiKeyStore, Hookline, QueueError, StoreError};
use crate::time::Timestamp;
use indexmap::IndexMap;
use serde_json::value::RawValue;

/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// A publisher's `Idempotency-Key`: 1 to [`MAX_IDEMPOTENCY_KEY_LEN`] visible ASCII
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

/// A key that is empty, too long, or not visible ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    /// Checks a key as sent.
    pub fn parse(bytes: &[u8]) -> Result<Self, InvalidIdempotencyKey> {
        match std::str::from_utf8(bytes) {
            Ok(k) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic()) => {
                Ok(IdempotencyKey(k.to_owned()))
            }
            _ => Err(InvalidIdempotencyKey),
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What publishing did.
#[derive(Debug, Clone)]
pub enum Published {
    /// The event was stored and goes out to its webhooks.
    New(Event),
    /// The idempotency key was used before (within its window): this is the event it
    /// published, and nothing was published again.
    Replayed(Event),
}

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The publisher's fields were refused.
    #[error(transparent)]
    Invalid(#[from] EventError),
    /// The store failed; nothing may have been stored (publishing again is safe with an
    /// idempotency key).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Publishes an event from a publisher's fields, at most once per idempotency key.
///
/// The key is bound to the new event's id before the event is stored. A repeat finds
/// the key bound to another id and answers with that event; if that event was never
/// stored (the first request failed or crashed in between), it is published now under
/// the bound id, so the key still yields one event. Two requests racing on one fresh
/// key both bind the same id; the one that stores second gets `Conflict` from the log
/// and answers with the stored event.
pub async fn publish(
    h: &Hookline,
    tenant: &TenantId,
    fields: IndexMap<String, Box<RawValue>>,
    key: Option<&IdempotencyKey>,
) -> Result<Published, PublishError> {
    let now = h.clock.now();
    let mut event = Event::publish(tenant.clone(), fields, &h.policy.catalog, now)?;
    if event.name.is_operational() {
        return Err(EventError::ReservedEvent(event.name.to_string()).into());
    }
    if let Some(key) = key {
        let bound = h.events.reserve_idempotency_key(tenant, key.as_str(), &event.id, now).await?;
        if bound != event.id {
            match h.events.get(tenant, &bound).await {
                Ok(first) => return Ok(Published::Replayed(first)),
                Err(StoreError::NotFound) => event = Event::from_parts(tenant.clone(), bound, event.created_at, &event.data_json())?,
                Err(e) => return Err(e.into()),
            }
        }
    }
    match h.events.append(&event).await {
        Ok(()) => {
            tracing::debug!(event = %event.id, name = %event.name, "event published");
            Ok(Published::New(event))
        }
        Err(StoreError::Conflict) => Ok(Published::Replayed(h.events.get(tenant, &event.id).await?)),
        Err(e) => Err(e.into()),
    }
}

/// Why a redelivery was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    /// No such webhook for this tenant.
    #[error("no such webhook")]
    WebhookNotFound,
    /// The webhook is disabled: enable it first.
    #[error("the webhook is disabled; enable it before redelivering")]
    WebhookDisabled,
    /// No such delivery of this webhook.
    #[error("no such delivery")]
    DeliveryNotFound,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The queue failed; the delivery is pending but its job may be missing, so
    /// redelivering again is the remedy.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

fn store_error(not_found: RedeliverError) -> impl FnOnce(StoreError) -> RedeliverError {
    move |e| match e {
        StoreError::NotFound => not_found,
        other => RedeliverError::Store(other),
    }
}

/// Queues a delivery again, due now, and returns it as reopened. A finished delivery
/// gets one manual attempt; a pending one has its next scheduled attempt brought
/// forward, and its schedule carries on from there.
pub async fn redeliver(h: &Hookline, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId) -> Result<Delivery, RedeliverError> {
    let w = h.webhooks.get(tenant, webhook).await.map_err(store_error(RedeliverError::WebhookNotFound))?;
    if !w.active {
        return Err(RedeliverError::WebhookDisabled);
    }
    let before = h.deliveries.get(tenant, &w.id, id).await.map_err(store_error(RedeliverError::DeliveryNotFound))?;
    let now = h.clock.now();
    let d = h.deliveries.reopen(tenant, &w.id, id, now).await.map_err(store_error(RedeliverError::DeliveryNotFound))?;
    let manual = before.status != DeliveryStatus::Pending;
    h.queue.enqueue(&[d.job(now, manual).into()]).await?;
    tracing::info!(delivery = %d.id, manual, "redelivery queued");
    Ok(d)
}

/// What an API key request may ask for.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The tenant the key acts for, as sent.
    pub tenant: String,
    /// Its scopes, as sent.
    pub scopes: Vec<String>,
    /// What it is for.
    pub description: Option<String>,
}

/// Why an API key was not created.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    /// The tenant id is not valid.
    #[error("{0}; use 1-64 of a-z, 0-9, _ and -")]
    InvalidTenant(String),
    /// A tenant's admin asked for another tenant's key.
    #[error("an admin key may create keys for its own tenant only")]
    OtherTenant,
    /// No scopes were named.
    #[error("scopes must name at least one scope")]
    NoScopes,
    /// A scope is unknown.
    #[error("unknown scope {0:?}; known scopes are {known}", known = Scope::ALL.map(Scope::as_str).join(", "))]
    UnknownScope(String),
    /// The description is too long.
    #[error("description is longer than {MAX_KEY_DESCRIPTION_LEN} characters")]
    DescriptionTooLong,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates an API key on behalf of `admin` (a key with the admin scope). The operator's
/// admin (tenant `default`) may mint keys for any tenant; a tenant's own admin only for
/// itself. Returns the key and its secret, which exists nowhere else.
pub async fn create_api_key(h: &Hookline, admin: &ApiKey, request: NewApiKey) -> Result<(ApiKey, ApiKeySecret), ApiKeyError> {
    let tenant = TenantId::parse(&request.tenant).map_err(|e| ApiKeyError::InvalidTenant(e.to_string()))?;
    if admin.tenant != TenantId::default_tenant() && admin.tenant != tenant {
        return Err(ApiKeyError::OtherTenant);
    }
    if request.scopes.is_empty() {
        return Err(ApiKeyError::NoScopes);
    }
    let mut scopes = Vec::new();
    for s in &request.scopes {
        let scope = Scope::parse(s).ok_or_else(|| ApiKeyError::UnknownScope(s.chars().take(64).collect()))?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if request.description.as_ref().is_some_and(|d| d.chars().count() > MAX_KEY_DESCRIPTION_LEN) {
        return Err(ApiKeyError::DescriptionTooLong);
    }
    let secret = ApiKeySecret::generate();
    let key = ApiKey::key(ApiKeyId::generate(), tenant, scopes, request.description, h.clock.now(), secret.hash());
    h.keys.insert(&key).await?;
    tracing::info!(key = %key.id, tenant = %key.tenant, "api key created");
    Ok((key, secret))
}

/// Makes sure the bootstrap admin key (by its hash) exists: `admin` scope on tenant
/// `default`. Idempotent, and safe when several processes start at once.
pub async fn ensure_admin_key(store: &dyn ApiKeyStore, hash: &str, now: Timestamp) -> Result<(), StoreError> {
    match store.find_by_hash(hash).await {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound) => {
            let key = ApiKey::key(
                ApiKeyId::generate(),
                TenantId::default_tenant(),
                vec![Scope::Admin],
                Some("bootstrap admin key".to_owned()),
                now,
                hash.to_owned(),
            );
            match store.insert(&key).await {
                Ok(()) | Err(StoreError::Conflict) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// The event `POST /webhooks/{id}/test` sends for one event name: the name's subject and
/// action, subject id `test`, and `"test": true`, so receivers can tell it apart.
pub fn test_event(tenant: &TenantId, name: &EventName, catalog: &EventCatalog, now: Timestamp) -> Result<Event, EventError> {
    let raw = |v: serde_json::Value| RawValue::from_string(v.to_string()).map_err(|e| EventError::Malformed(e.to_string()));
    let mut fields = IndexMap::new();
    fields.insert("subject_type".to_owned(), raw(name.subject().into())?);
    fields.insert("event_type".to_owned(), raw(name.action().to_ascii_uppercase().into())?);
    fields.insert("subject_id".to_owned(), raw("test".into())?);
    fields.insert("test".to_owned(), raw(true.into())?);
    Event::publish(tenant.clone(), fields, catalog, now)
}
