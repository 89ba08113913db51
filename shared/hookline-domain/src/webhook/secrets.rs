//! Standard Webhooks signing: which signatures a webhook's deliveries carry, its
//! signing secrets (shown once, kept sealed), rotation with a grace period, and the
//! `webhook-signature` header.
//!
//! The scheme is Standard Webhooks v1 (spec 1.0.0): `webhook-id`, `webhook-timestamp`
//! and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one
//! entry per valid secret, the current one first.

use crate::ids::{TenantId, WebhookId};
use crate::time::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use std::time::Duration;

/// How a secret is written: this prefix and the base64 of its bytes.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of a secret Hookline generates.
pub const GENERATED_SECRET_BYTES: usize = 32;
/// Fewest and most bytes of a secret a client gives.
pub const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
/// Grace period of a rotation when none is given.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);
/// Longest grace period of a rotation.
pub const MAX_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most older secrets still valid at once.
pub const MAX_OLD_SECRETS: usize = 10;
/// The headers of the scheme, which a custom header may not override.
pub const STANDARD_HEADERS: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];

/// A signature scheme a delivery can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// The RS256 JWT in `X-Webhook-Signature`, checked against the JWKS.
    Jwt,
    /// Standard Webhooks: HMAC-SHA256 with the webhook's secret.
    StandardWebhooks,
}

impl Scheme {
    /// The name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Jwt => "jwt",
            Scheme::StandardWebhooks => "standard_webhooks",
        }
    }

    /// Reads a scheme's name.
    pub fn parse(s: &str) -> Option<Scheme> {
        match s {
            "jwt" => Some(Scheme::Jwt),
            "standard_webhooks" => Some(Scheme::StandardWebhooks),
            _ => None,
        }
    }
}

/// The signatures a webhook's deliveries carry: one scheme or both, in a fixed order.
pub fn validate_schemes(given: &[String]) -> Result<Vec<Scheme>, String> {
    let mut out = Vec::new();
    for s in given {
        let scheme = Scheme::parse(s).ok_or_else(|| format!("{s:?} is not a signature scheme (jwt, standard_webhooks)"))?;
        if !out.contains(&scheme) {
            out.push(scheme);
        }
    }
    if out.is_empty() {
        return Err("signatures must name at least one scheme (jwt, standard_webhooks)".into());
    }
    out.sort();
    Ok(out)
}

/// A signing secret's bytes. Its `Debug` shows nothing of it; only
/// [`SigningSecret::expose`] writes it out, for the one answer that creates it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(redacted)")
    }
}

impl Drop for SigningSecret {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

/// Why a given secret was refused (the message never repeats it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret must be whsec_ followed by the base64 of 24 to 64 bytes")]
pub struct InvalidSecret;

impl SigningSecret {
    /// A new random secret of [`GENERATED_SECRET_BYTES`].
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; GENERATED_SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        SigningSecret(bytes)
    }

    /// Reads a secret a client gives: `whsec_` and the base64 of 24 to 64 bytes.
    pub fn parse(s: &str) -> Result<Self, InvalidSecret> {
        let b64 = s.strip_prefix(SECRET_PREFIX).ok_or(InvalidSecret)?;
        let bytes = B64.decode(b64).map_err(|_| InvalidSecret)?;
        if !SECRET_BYTES.contains(&bytes.len()) {
            return Err(InvalidSecret);
        }
        Ok(SigningSecret(bytes))
    }

    /// From bytes an adapter unsealed.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        SigningSecret(bytes)
    }

    /// The bytes, for sealing.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// `whsec_…`: for the answer that creates the secret, and nothing else.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", B64.encode(&self.0))
    }

    /// The signature of one message: base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        B64.encode(mac.finalize().into_bytes())
    }
}

/// The `webhook-signature` header: `v1,<signature>` per secret, space-separated, in
/// the order given (the current secret first).
pub fn signature_header(secrets: &[SigningSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| format!("v1,{}", s.sign(id, timestamp, body))).collect::<Vec<_>>().join(" ")
}

/// What a sealed secret is bound to, for a secret box's associated data: its webhook's
/// tenant and id, so the ciphertext opens for that webhook only.
pub fn binding(tenant: &TenantId, webhook: &WebhookId) -> Vec<u8> {
    format!("hookline webhook secret\n{tenant}\n{webhook}").into_bytes()
}

/// A secret as a webhook keeps it: sealed by the secret box, with its times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// The secret box's ciphertext (bound to the webhook's tenant and id).
    pub sealed: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops signing: `None` for the current secret; an older secret's grace
    /// period ends here.
    pub expires_at: Option<Timestamp>,
}

/// Why a rotation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotateError {
    /// The grace period is over [`MAX_GRACE`].
    #[error("grace_period must be from 0s to 7d")]
    GraceTooLong,
    /// [`MAX_OLD_SECRETS`] older secrets are still valid.
    #[error(
        "this webhook already has {MAX_OLD_SECRETS} older secrets in their grace period; wait for one to expire, or rotate with grace_period 0s"
    )]
    TooManySecrets,
}

/// The secrets that sign at `now`: the current one first, then older ones still in
/// their grace period, newest first.
pub fn valid_at(secrets: &[SealedSecret], now: Timestamp) -> impl Iterator<Item = &SealedSecret> {
    secrets.iter().filter(move |s| s.expires_at.is_none_or(|end| end > now))
}

/// The secrets after a rotation to `new` at `now`: the current one retires with
/// `grace` (none at all with a zero grace), expired ones are dropped.
pub fn rotate(secrets: &[SealedSecret], new: SealedSecret, grace: Duration, now: Timestamp) -> Result<Vec<SealedSecret>, RotateError> {
    if grace > MAX_GRACE {
        return Err(RotateError::GraceTooLong);
    }
    let retire_at = now + chrono::Duration::from_std(grace).map_err(|_| RotateError::GraceTooLong)?;
    let mut older: Vec<SealedSecret> = valid_at(secrets, now)
        .map(|s| SealedSecret { expires_at: Some(s.expires_at.map_or(retire_at, |end| end.min(retire_at).max(now))), ..s.clone() })
        .filter(|s| s.expires_at.is_some_and(|end| end > now))
        .collect();
    if older.len() > MAX_OLD_SECRETS {
        return Err(RotateError::TooManySecrets);
    }
    let mut out = vec![new];
    out.append(&mut older);
    Ok(out)
}

#[cfg(test)]
mod tests;
