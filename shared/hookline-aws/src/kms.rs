//! The KMS signer: RSASSA-PKCS1-v1_5-SHA-256 with an asymmetric KMS key. The private
//! key never leaves KMS; public keys are fetched once per container and cached.

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use hookline_domain::jwt::Jwk;
use hookline_domain::ports::{SignError, Signer};
use tokio::sync::OnceCell;

/// Signs with a KMS key; publishes it and, during a rotation, the previous one.
#[derive(Debug)]
pub struct KmsSigner {
    client: aws_sdk_kms::Client,
    key_id: String,
    previous_key_id: Option<String>,
    /// Current key first. Public keys never change for a key id, so caching for the
    /// container's life is safe; a rotation deploys new configuration, hence new containers.
    keys: OnceCell<Vec<Jwk>>,
}

impl KmsSigner {
    /// A signer over `key_id`, also publishing `previous_key_id` if given.
    pub fn new(client: aws_sdk_kms::Client, key_id: &str, previous_key_id: Option<&str>) -> Self {
        KmsSigner { client, key_id: key_id.to_owned(), previous_key_id: previous_key_id.map(str::to_owned), keys: OnceCell::new() }
    }

    async fn fetch(&self, key_id: &str) -> Result<Jwk, SignError> {
        let out = self
            .client
            .get_public_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("kms GetPublicKey {key_id}: {}", aws_sdk_kms::error::DisplayErrorContext(e)))?;
        let der = out.public_key().ok_or_else(|| anyhow::anyhow!("kms GetPublicKey {key_id}: no public key"))?;
        Jwk::from_rsa_der(der.as_ref()).map_err(|e| SignError::Unknown(anyhow::anyhow!("kms GetPublicKey {key_id}: {e}")))
    }

    async fn keys(&self) -> Result<&Vec<Jwk>, SignError> {
        self.keys
            .get_or_try_init(|| async {
                let mut keys = vec![self.fetch(&self.key_id).await?];
                if let Some(prev) = &self.previous_key_id {
                    keys.push(self.fetch(prev).await?);
                }
                Ok(keys)
            })
            .await
    }
}

#[async_trait]
impl Signer for KmsSigner {
    async fn current_key_id(&self) -> Result<String, SignError> {
        Ok(self.keys().await?[0].kid.clone())
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        // RAW, not DIGEST: KMS hashes the (small) JWS signing input itself. This is
        // correct on AWS and also on emulators whose DIGEST mode is broken.
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("kms Sign: {}", aws_sdk_kms::error::DisplayErrorContext(e)))?;
        Ok(out.signature().ok_or_else(|| anyhow::anyhow!("kms Sign: no signature"))?.as_ref().to_vec())
    }

    async fn public_keys(&self) -> Result<Vec<Jwk>, SignError> {
        Ok(self.keys().await?.clone())
    }
}

/// The signer of a function given no signing key (the fan-out function, which never
/// signs): it refuses, naming the setting, if anything asks it to sign.
#[derive(Debug, Clone, Copy)]
pub struct NoSigningKey;

impl NoSigningKey {
    fn refuse() -> SignError {
        SignError::Unknown(anyhow::anyhow!("this function is given no signing key (HOOKLINE_KMS_KEY_ID)"))
    }
}

#[async_trait]
impl Signer for NoSigningKey {
    async fn current_key_id(&self) -> Result<String, SignError> {
        Err(Self::refuse())
    }

    async fn sign(&self, _: &[u8]) -> Result<Vec<u8>, SignError> {
        Err(Self::refuse())
    }

    async fn public_keys(&self) -> Result<Vec<Jwk>, SignError> {
        Err(Self::refuse())
    }
}
