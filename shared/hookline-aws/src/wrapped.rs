//! The wrapped-key signer: an RSA-2048 key pair kept in DynamoDB with its private half
//! encrypted under a KMS key (envelope encryption), decrypted once per container and
//! used in memory. One `Decrypt` per cold start instead of one `Sign` per delivery;
//! the price is the private key in the function's memory (ARCHITECTURE.md says so).
//!
//! Keys are named by a label the operator picks (`HOOKLINE_SIGNING_KEY_LABEL`). The
//! first function that needs a label with no key creates the pair, encrypts the
//! private key with KMS `Encrypt` under an encryption context naming the label, and
//! stores it with a conditional put; a function that loses that race reads the
//! winner's key. A retired label stays published in the JWKS while it is
//! `HOOKLINE_PREVIOUS_SIGNING_KEY_LABEL`.

use async_trait::async_trait;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kms::primitives::Blob;
use hookline_domain::jwt::Jwk;
use hookline_domain::ports::{SignError, Signer};
use std::collections::HashMap;
use tokio::sync::OnceCell;

/// The encryption context key that names a wrapped signing key's label: KMS refuses to
/// decrypt it under any other label, and IAM grants it apart from webhook secrets.
pub const CONTEXT_KEY: &str = "hookline:signing-key";

/// One stored key: its label, public half and encrypted private half.
struct StoredKey {
    jwk: Jwk,
    encrypted: Vec<u8>,
}

/// Signs with a KMS-wrapped key pair held in memory; publishes it and, during a
/// rotation, the previous label's public key.
pub struct WrappedKeySigner {
    dynamodb: aws_sdk_dynamodb::Client,
    kms: aws_sdk_kms::Client,
    table: String,
    kms_key_id: String,
    label: String,
    previous_label: Option<String>,
    /// The current label's stored key; read (or created) once per container.
    current: OnceCell<StoredKey>,
    /// Public keys, current first.
    public: OnceCell<Vec<Jwk>>,
    /// The decrypted private key: one KMS `Decrypt` per container.
    private: OnceCell<KeyPair>,
    rng: SystemRandom,
}

impl std::fmt::Debug for WrappedKeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("WrappedKeySigner").field("table", &self.table).field("label", &self.label).finish_non_exhaustive()
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> SignError {
    SignError::Unknown(anyhow::anyhow!("wrapped signing key: {what}: {e}"))
}

impl WrappedKeySigner {
    /// A signer over the key labelled `label` in `table`, wrapped under `kms_key_id`.
    pub fn new(
        dynamodb: aws_sdk_dynamodb::Client,
        kms: aws_sdk_kms::Client,
        table: &str,
        kms_key_id: &str,
        label: &str,
        previous_label: Option<&str>,
    ) -> Self {
        WrappedKeySigner {
            dynamodb,
            kms,
            table: table.to_owned(),
            kms_key_id: kms_key_id.to_owned(),
            label: label.to_owned(),
            previous_label: previous_label.map(str::to_owned),
            current: OnceCell::new(),
            public: OnceCell::new(),
            private: OnceCell::new(),
            rng: SystemRandom::new(),
        }
    }

    async fn read(&self, label: &str) -> Result<Option<StoredKey>, SignError> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("label", AttributeValue::S(label.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("GetItem", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        let Some(item) = out.item else { return Ok(None) };
        let bytes = |name: &str| match item.get(name) {
            Some(AttributeValue::B(b)) => Ok(b.as_ref().to_vec()),
            _ => Err(failed("malformed item", format!("label {label:?} has no binary {name}"))),
        };
        let jwk = Jwk::from_rsa_der(&bytes("public_key")?).map_err(|e| failed("public key", e))?;
        Ok(Some(StoredKey { jwk, encrypted: bytes("private_key")? }))
    }

    /// Creates the key pair for `label` and stores it unless another function stored
    /// one first; returns whichever is stored.
    async fn create(&self, label: &str) -> Result<StoredKey, SignError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|e| failed("key generation", e))?;
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(|e| failed("key encoding", e))?;
        let out = self
            .kms
            .encrypt()
            .key_id(&self.kms_key_id)
            .plaintext(Blob::new(der.as_ref()))
            .encryption_context(CONTEXT_KEY, label)
            .send()
            .await
            .map_err(|e| failed("kms Encrypt", aws_sdk_kms::error::DisplayErrorContext(e)))?;
        let encrypted = out.ciphertext_blob.ok_or_else(|| failed("kms Encrypt", "no ciphertext"))?.into_inner();
        let public = pair.public_key().as_ref().to_vec();
        let item = HashMap::from([
            ("label".to_owned(), AttributeValue::S(label.to_owned())),
            ("public_key".to_owned(), AttributeValue::B(public.clone().into())),
            ("private_key".to_owned(), AttributeValue::B(encrypted.clone().into())),
            ("created_at".to_owned(), AttributeValue::S(hookline_domain::time::format(&chrono::Utc::now()))),
        ]);
        let r = self
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(label)")
            .send()
            .await;
        match r {
            Ok(_) => {
                tracing::info!(label, "created wrapped signing key");
                Ok(StoredKey { jwk: Jwk::from_rsa_der(&public).map_err(|e| failed("public key", e))?, encrypted })
            }
            Err(e) if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) => {
                self.read(label).await?.ok_or_else(|| failed("GetItem", format!("label {label:?} vanished")))
            }
            Err(e) => Err(failed("PutItem", aws_sdk_dynamodb::error::DisplayErrorContext(e))),
        }
    }

    async fn current(&self) -> Result<&StoredKey, SignError> {
        self.current
            .get_or_try_init(|| async {
                match self.read(&self.label).await? {
                    Some(k) => Ok(k),
                    None => self.create(&self.label).await,
                }
            })
            .await
    }

    async fn public(&self) -> Result<&Vec<Jwk>, SignError> {
        self.public
            .get_or_try_init(|| async {
                let mut keys = vec![self.current().await?.jwk.clone()];
                if let Some(prev) = &self.previous_label {
                    let old = self.read(prev).await?.ok_or_else(|| failed("previous label", format!("no key is labelled {prev:?}")))?;
                    keys.push(old.jwk);
                }
                Ok(keys)
            })
            .await
    }

    async fn private(&self) -> Result<&KeyPair, SignError> {
        self.private
            .get_or_try_init(|| async {
                let stored = self.current().await?;
                let out = self
                    .kms
                    .decrypt()
                    .key_id(&self.kms_key_id)
                    .ciphertext_blob(Blob::new(stored.encrypted.clone()))
                    .encryption_context(CONTEXT_KEY, &self.label)
                    .send()
                    .await
                    .map_err(|e| failed("kms Decrypt", aws_sdk_kms::error::DisplayErrorContext(e)))?;
                let der = out.plaintext.ok_or_else(|| failed("kms Decrypt", "no plaintext"))?;
                let pair = KeyPair::from_pkcs8(der.as_ref()).map_err(|e| failed("private key", e))?;
                // A private key whose public half is not the one published would sign
                // what no receiver can verify: refuse it.
                let own = Jwk::from_rsa_der(pair.public_key().as_ref()).map_err(|e| failed("private key", e))?;
                if own.kid != stored.jwk.kid {
                    return Err(failed(
                        "stored key",
                        format!("label {:?}: the private key does not match the published public key", self.label),
                    ));
                }
                Ok(pair)
            })
            .await
    }
}

#[async_trait]
impl Signer for WrappedKeySigner {
    async fn current_key_id(&self) -> Result<String, SignError> {
        Ok(self.public().await?[0].kid.clone())
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let key = self.private().await?;
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut signature).map_err(|e| failed("sign", e))?;
        Ok(signature)
    }

    async fn public_keys(&self) -> Result<Vec<Jwk>, SignError> {
        Ok(self.public().await?.clone())
    }
}
