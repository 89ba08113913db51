//! AWS mode's secret box: envelope encryption under a symmetric KMS key. Sealing asks
//! KMS for a fresh AES-256 data key whose encryption context names the webhook's tenant
//! and id, encrypts the secret with it (AES-256-GCM, the same names as associated data)
//! and keeps the data key only in its KMS-encrypted form, beside the ciphertext.
//! Opening asks KMS to decrypt that data key, with the same context, once per webhook
//! secret per container: the plain data key is cached, so signing a delivery costs no
//! KMS call once the container has opened that secret. The table holds only ciphertext.

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use hookline_domain::ids::{TenantId, WebhookId};
use hookline_domain::ports::{SealError, SecretBox};
use hookline_domain::webhook::{SigningSecret, secrets};
use std::collections::HashMap;
use std::sync::Mutex;

/// Marks the format: `k1.` and base64 of the encrypted data key's length (2 bytes, big
/// endian), the encrypted data key, the nonce, and the ciphertext with its tag.
const VERSION: &str = "k1.";
/// Plain data keys kept per container; past this many the cache starts over.
const CACHED_KEYS: usize = 10_000;

/// Seals secrets under a KMS key (`HOOKLINE_SECRETS_KMS_KEY_ID`).
pub struct KmsSecretBox {
    client: aws_sdk_kms::Client,
    key_id: String,
    /// Plain data keys by their encrypted form.
    keys: Mutex<HashMap<Vec<u8>, [u8; 32]>>,
}

impl std::fmt::Debug for KmsSecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsSecretBox").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

fn context(tenant: &TenantId, webhook: &WebhookId) -> HashMap<String, String> {
    HashMap::from([("hookline:tenant".to_owned(), tenant.to_string()), ("hookline:webhook".to_owned(), webhook.to_string())])
}

fn aad(tenant: &TenantId, webhook: &WebhookId) -> Vec<u8> {
    secrets::binding(tenant, webhook)
}

fn failed(what: &str, e: impl std::fmt::Display) -> SealError {
    SealError::Unknown(anyhow::anyhow!("{what}: {e}"))
}

impl KmsSecretBox {
    /// A box sealing under `key_id` (id, ARN or alias).
    pub fn new(client: aws_sdk_kms::Client, key_id: &str) -> Self {
        KmsSecretBox { client, key_id: key_id.to_owned(), keys: Mutex::new(HashMap::new()) }
    }

    fn remember(&self, encrypted: &[u8], key: [u8; 32]) {
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() >= CACHED_KEYS {
                keys.clear();
            }
            keys.insert(encrypted.to_vec(), key);
        }
    }

    fn cached(&self, encrypted: &[u8]) -> Option<[u8; 32]> {
        self.keys.lock().ok().and_then(|k| k.get(encrypted).copied())
    }
}

fn aead(key: &[u8; 32]) -> Result<RandomizedNonceKey, SealError> {
    RandomizedNonceKey::new(&AES_256_GCM, key).map_err(|_| failed("data key", "not an AES-256 key"))
}

#[async_trait]
impl SecretBox for KmsSecretBox {
    async fn seal(&self, tenant: &TenantId, webhook: &WebhookId, secret: &SigningSecret) -> Result<String, SealError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context(tenant, webhook)))
            .send()
            .await
            .map_err(|e| failed("kms GenerateDataKey", aws_sdk_kms::error::DisplayErrorContext(e)))?;
        let plain: [u8; 32] = out
            .plaintext()
            .map(|b| b.as_ref())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| failed("kms GenerateDataKey", "no 32-byte data key"))?;
        let encrypted =
            out.ciphertext_blob().map(|b| b.as_ref().to_vec()).ok_or_else(|| failed("kms GenerateDataKey", "no encrypted data key"))?;
        let mut sealed = secret.bytes().to_vec();
        let nonce = aead(&plain)?
            .seal_in_place_append_tag(Aad::from(aad(tenant, webhook)), &mut sealed)
            .map_err(|_| failed("sealing", "AES-GCM failed"))?;
        self.remember(&encrypted, plain);
        let len = u16::try_from(encrypted.len()).map_err(|_| failed("kms GenerateDataKey", "encrypted data key too long"))?;
        let mut raw = len.to_be_bytes().to_vec();
        raw.extend_from_slice(&encrypted);
        raw.extend_from_slice(nonce.as_ref());
        raw.append(&mut sealed);
        Ok(format!("{VERSION}{}", B64.encode(raw)))
    }

    async fn open(&self, tenant: &TenantId, webhook: &WebhookId, sealed: &str) -> Result<SigningSecret, SealError> {
        let bad = || failed("opening a secret", format!("a sealed secret of webhook {webhook} is malformed"));
        let raw = sealed.strip_prefix(VERSION).and_then(|b| B64.decode(b).ok()).ok_or_else(bad)?;
        let len = usize::from(u16::from_be_bytes([*raw.first().ok_or_else(bad)?, *raw.get(1).ok_or_else(bad)?]));
        let rest = raw.get(2..).ok_or_else(bad)?;
        if rest.len() < len + NONCE_LEN {
            return Err(bad());
        }
        let (encrypted, rest) = rest.split_at(len);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let key = match self.cached(encrypted) {
            Some(k) => k,
            None => {
                let out = self
                    .client
                    .decrypt()
                    .key_id(&self.key_id)
                    .ciphertext_blob(Blob::new(encrypted))
                    .set_encryption_context(Some(context(tenant, webhook)))
                    .send()
                    .await
                    .map_err(|e| failed("kms Decrypt", aws_sdk_kms::error::DisplayErrorContext(e)))?;
                let k: [u8; 32] = out
                    .plaintext()
                    .map(|b| b.as_ref())
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| failed("kms Decrypt", "no 32-byte data key"))?;
                self.remember(encrypted, k);
                k
            }
        };
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let mut buf = ciphertext.to_vec();
        let plain = aead(&key)?
            .open_in_place(nonce, Aad::from(aad(tenant, webhook)), &mut buf)
            .map_err(|_| failed("opening a secret", format!("a sealed secret does not belong to webhook {webhook}")))?;
        let secret = SigningSecret::from_bytes(plain.to_vec());
        buf.iter_mut().for_each(|b| *b = 0);
        Ok(secret)
    }
}

/// The secret box of a function given no secrets key (the fan-out function, which never
/// signs): it refuses, naming the setting, if anything asks it to seal or open.
#[derive(Debug, Clone, Copy)]
pub struct NoSecretsKey;

#[async_trait]
impl SecretBox for NoSecretsKey {
    async fn seal(&self, _: &TenantId, _: &WebhookId, _: &SigningSecret) -> Result<String, SealError> {
        Err(failed("sealing a secret", "this function is given no secrets key (HOOKLINE_SECRETS_KMS_KEY_ID)"))
    }

    async fn open(&self, _: &TenantId, _: &WebhookId, _: &str) -> Result<SigningSecret, SealError> {
        Err(failed("opening a secret", "this function is given no secrets key (HOOKLINE_SECRETS_KMS_KEY_ID)"))
    }
}
