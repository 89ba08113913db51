//! Creating and changing webhooks where a signing secret is involved: the secret is
//! generated (or taken from the client), sealed by the [`SecretBox`](crate::ports::SecretBox)
//! before it is stored, and handed back once, to the one answer that creates it.

use crate::ids::{TenantId, WebhookId};
use crate::ports::{Hookline, SealError, StoreError};
use crate::webhook::secrets::{self, RotateError};
use crate::webhook::{SealedSecret, SigningSecret, Webhook, WebhookError, WebhookInput};
use std::time::Duration;

/// Why a webhook could not be created, changed or given a new secret.
#[derive(Debug, thiserror::Error)]
pub enum WebhookWriteError {
    /// Its fields are invalid.
    #[error(transparent)]
    Invalid(#[from] WebhookError),
    /// A rotation was refused.
    #[error(transparent)]
    Rotate(#[from] RotateError),
    /// The webhook does not sign with Standard Webhooks, so it has no secret to rotate.
    #[error("this webhook does not sign with standard_webhooks; add it to signatures first")]
    NoStandardWebhooks,
    /// The secret could not be sealed.
    #[error("sealing the secret: {0}")]
    Seal(#[from] SealError),
    /// The store failed (or the webhook is gone: `NotFound`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A webhook as just written, with its new secret when this write created one.
#[derive(Debug)]
pub struct Written {
    /// The webhook as stored.
    pub webhook: Webhook,
    /// The secret this write created, to show once.
    pub new_secret: Option<SigningSecret>,
}

async fn seal(h: &Hookline, w: &Webhook, secret: &SigningSecret) -> Result<SealedSecret, SealError> {
    Ok(SealedSecret { sealed: h.secrets.seal(&w.tenant, &w.id, secret).await?, created_at: h.clock.now(), expires_at: None })
}

/// Validates `input` into a new webhook for `tenant`, with the secret it will get if
/// it signs with Standard Webhooks (the one the client gave, or a generated one).
/// Nothing is stored: [`store_webhook`] does that, after the caller's own checks.
pub fn prepare_webhook(h: &Hookline, tenant: &TenantId, mut input: WebhookInput) -> Result<(Webhook, Option<SigningSecret>), WebhookError> {
    let given = input.secret.take().map(|s| SigningSecret::parse(&s)).transpose()?;
    let w = Webhook::create(tenant.clone(), input, &h.policy.catalog, &h.policy.endpoints, h.clock.now())?;
    if given.is_some() && !w.needs_secret() {
        return Err(WebhookError::SecretWithoutScheme);
    }
    let secret = w.needs_secret().then(|| given.unwrap_or_else(SigningSecret::generate));
    Ok((w, secret))
}

/// Stores a new webhook from [`prepare_webhook`], its secret sealed.
pub async fn store_webhook(h: &Hookline, mut w: Webhook, secret: Option<SigningSecret>) -> Result<Written, WebhookWriteError> {
    if let Some(s) = &secret {
        w.secrets = vec![seal(h, &w, s).await?];
    }
    h.webhooks.insert(&w).await?;
    Ok(Written { webhook: w, new_secret: secret })
}

/// Stores a webhook changed by [`Webhook::apply`]. One that has just turned Standard
/// Webhooks on gets a new secret.
pub async fn store_update(h: &Hookline, mut w: Webhook) -> Result<Written, WebhookWriteError> {
    let secret = w.needs_secret().then(SigningSecret::generate);
    if let Some(s) = &secret {
        w.secrets = vec![seal(h, &w, s).await?];
    }
    h.webhooks.update(&w).await?;
    Ok(Written { webhook: w, new_secret: secret })
}

/// Gives a webhook a new current secret (`given`, or a generated one). The one it
/// replaces keeps signing for `grace` (default 24 h, at most 7 days; zero revokes it
/// and every older one at once).
pub async fn rotate_secret(
    h: &Hookline,
    tenant: &TenantId,
    id: &WebhookId,
    grace: Option<Duration>,
    given: Option<SigningSecret>,
) -> Result<Written, WebhookWriteError> {
    let mut w = h.webhooks.get(tenant, id).await?;
    if !w.signs_with(crate::webhook::Scheme::StandardWebhooks) {
        return Err(WebhookWriteError::NoStandardWebhooks);
    }
    let now = h.clock.now();
    let secret = given.unwrap_or_else(SigningSecret::generate);
    let sealed = seal(h, &w, &secret).await?;
    w.secrets = secrets::rotate(&w.secrets, sealed, grace.unwrap_or(secrets::DEFAULT_GRACE), now)?;
    w.updated_at = now;
    h.webhooks.update(&w).await?;
    crate::operational::publish(h, crate::operational::Operational::SecretRotated { webhook: &w }).await;
    Ok(Written { webhook: w, new_secret: Some(secret) })
}
