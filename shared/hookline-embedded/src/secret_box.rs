//! Local mode's secret box: webhook signing secrets sealed with AES-256-GCM under a key
//! kept in the data directory (`secrets-key`, 32 random bytes, mode 0600, created on
//! first start like the signing key). The webhook's tenant and id are the associated
//! data, so a sealed secret opens for its own webhook only. The database holds only the
//! sealed form.

use anyhow::Context;
use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use hookline_domain::ids::{TenantId, WebhookId};
use hookline_domain::ports::{SealError, SecretBox};
use hookline_domain::webhook::{SigningSecret, secrets};
use std::path::Path;

/// Bytes of the key.
const KEY_BYTES: usize = 32;
/// Marks the format of a sealed secret: `v1.` and base64 of nonce, ciphertext and tag.
const VERSION: &str = "v1.";

/// Seals secrets under the data directory's key.
pub struct LocalSecretBox {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for LocalSecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalSecretBox")
    }
}

fn aad(tenant: &TenantId, webhook: &WebhookId) -> Vec<u8> {
    secrets::binding(tenant, webhook)
}

impl LocalSecretBox {
    /// Loads the key at `path`, or creates one there if the file does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = vec![0u8; KEY_BYTES];
                aws_lc_rs::rand::fill(&mut b).map_err(|_| anyhow::anyhow!("no randomness for the secrets key"))?;
                crate::key::write_private(path, &b)?;
                tracing::info!(path = %path.display(), "created the key that seals webhook secrets");
                b
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Self::from_key(&bytes).with_context(|| format!("{} is not a 32-byte key", path.display()))
    }

    /// A box over a 32-byte key.
    pub fn from_key(bytes: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(bytes.len() == KEY_BYTES, "the key must be {KEY_BYTES} bytes");
        Ok(LocalSecretBox { key: RandomizedNonceKey::new(&AES_256_GCM, bytes).map_err(|_| anyhow::anyhow!("bad AES key"))? })
    }
}

#[async_trait]
impl SecretBox for LocalSecretBox {
    async fn seal(&self, tenant: &TenantId, webhook: &WebhookId, secret: &SigningSecret) -> Result<String, SealError> {
        let mut sealed = secret.bytes().to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(aad(tenant, webhook)), &mut sealed)
            .map_err(|_| SealError::Unknown(anyhow::anyhow!("sealing failed")))?;
        let mut out = nonce.as_ref().to_vec();
        out.append(&mut sealed);
        Ok(format!("{VERSION}{}", B64.encode(out)))
    }

    async fn open(&self, tenant: &TenantId, webhook: &WebhookId, sealed: &str) -> Result<SigningSecret, SealError> {
        let bad =
            || SealError::Unknown(anyhow::anyhow!("a sealed secret of webhook {webhook} does not open with this data directory's key"));
        let raw = sealed.strip_prefix(VERSION).and_then(|b| B64.decode(b).ok()).ok_or_else(bad)?;
        if raw.len() < NONCE_LEN {
            return Err(bad());
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let mut buf = ciphertext.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(aad(tenant, webhook)), &mut buf).map_err(|_| bad())?;
        let secret = SigningSecret::from_bytes(plain.to_vec());
        buf.iter_mut().for_each(|b| *b = 0);
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sealed_secret_opens_for_its_own_webhook_only_and_shows_nothing_of_it() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("secrets-key");
        let sealer = LocalSecretBox::load_or_create(&path).expect("create");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).expect("key").permissions().mode() & 0o777, 0o600);
        }
        let (tenant, webhook, other) = (TenantId::default_tenant(), WebhookId::generate(), WebhookId::generate());
        let secret = SigningSecret::generate();
        let sealed = sealer.seal(&tenant, &webhook, &secret).await.expect("seal");
        assert!(!sealed.contains(&secret.expose()[6..]), "the sealed form shows nothing of the secret");
        assert_ne!(sealer.seal(&tenant, &webhook, &secret).await.expect("seal"), sealed, "a fresh nonce each time");
        // The same key, read back from its file, opens it; another webhook's id does not.
        let again = LocalSecretBox::load_or_create(&path).expect("load");
        assert_eq!(again.open(&tenant, &webhook, &sealed).await.expect("open"), secret);
        assert!(again.open(&tenant, &other, &sealed).await.is_err());
        assert!(again.open(&TenantId::parse("other").expect("tenant"), &webhook, &sealed).await.is_err());
        let mut tampered = sealed.clone();
        tampered.replace_range(10..11, if &sealed[10..11] == "A" { "B" } else { "A" });
        assert!(again.open(&tenant, &webhook, &tampered).await.is_err());
        let foreign = LocalSecretBox::from_key(&[9u8; 32]).expect("key");
        let e = foreign.open(&tenant, &webhook, &sealed).await.expect_err("another key");
        assert!(!e.to_string().contains(&secret.expose()));
    }
}
