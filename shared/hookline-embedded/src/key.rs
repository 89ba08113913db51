//! The local signing key: RSA-2048, created on first start and kept as PKCS#8 DER in
//! the data directory with mode 0600.

use anyhow::Context;
use async_trait::async_trait;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use hookline_domain::jwt::Jwk;
use hookline_domain::ports::{SignError, Signer};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// Signs with an RSA key held in process memory (local mode).
///
/// A signature is half a millisecond or more of CPU, so it runs on signing threads of
/// its own (one per core; more would only queue up inside the CPU), never on an async
/// worker, which would stall every task queued behind it. Dedicated threads, rather
/// than tokio's blocking pool, keep each signature on a warm thread and leave the pool
/// to database reads.
#[derive(Clone)]
pub struct LocalKeySigner {
    key: Arc<KeyPair>,
    jwk: Jwk,
    rng: SystemRandom,
    /// Work for the signing threads, started with the first signature.
    threads: Arc<std::sync::OnceLock<tokio::sync::mpsc::Sender<SignJob>>>,
}

/// A message to sign and where the signature goes.
type SignJob = (Vec<u8>, tokio::sync::oneshot::Sender<anyhow::Result<Vec<u8>>>);

/// Signatures waiting for a signing thread, beyond which callers wait to hand theirs over.
const SIGNING_BACKLOG: usize = 1024;

impl LocalKeySigner {
    /// Loads the key at `path`, or creates one there if the file does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read(path) {
            Ok(der) => Self::from_pkcs8(&der).with_context(|| format!("reading signing key {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
                let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).map_err(|_| anyhow::anyhow!("cannot encode key"))?;
                write_private(path, der.as_ref())?;
                tracing::info!(path = %path.display(), "created signing key");
                Self::from_pkcs8(der.as_ref())
            }
            Err(e) => Err(e).with_context(|| format!("reading signing key {}", path.display())),
        }
    }

    /// A signer over a PKCS#8 DER RSA key.
    pub fn from_pkcs8(der: &[u8]) -> anyhow::Result<Self> {
        let key = KeyPair::from_pkcs8(der).map_err(|e| anyhow::anyhow!("not a PKCS#8 RSA key: {e}"))?;
        let jwk = Jwk::from_rsa_der(key.public_key().as_ref()).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(LocalKeySigner { key: Arc::new(key), jwk, rng: SystemRandom::new(), threads: Arc::default() })
    }

    /// The signing threads' inbox, starting them on first use. They end when the last
    /// clone of this signer is dropped.
    fn threads(&self) -> anyhow::Result<&tokio::sync::mpsc::Sender<SignJob>> {
        if let Some(t) = self.threads.get() {
            return Ok(t);
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<SignJob>(SIGNING_BACKLOG);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        for i in 0..cores {
            let (rx, signer) = (rx.clone(), Arc::downgrade(&self.key));
            let rng = self.rng.clone();
            std::thread::Builder::new().name(format!("hookline-sign-{i}")).spawn(move || {
                loop {
                    let job = match rx.lock() {
                        Ok(mut rx) => rx.blocking_recv(),
                        Err(_) => return,
                    };
                    let Some((message, reply)) = job else { return };
                    let Some(key) = signer.upgrade() else { return };
                    let _ = reply.send(sign_with(&key, &rng, &message));
                }
            })?;
        }
        // Two first signatures may race to start threads: one set wins, the other's
        // inbox is dropped here and its threads end at once.
        let _ = self.threads.set(tx);
        self.threads.get().ok_or_else(|| anyhow::anyhow!("signing threads did not start"))
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Signs synchronously (RS256).
    pub fn sign_now(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        sign_with(&self.key, &self.rng, message)
    }
}

fn sign_with(key: &KeyPair, rng: &SystemRandom, message: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, rng, message, &mut sig).map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
    Ok(sig)
}

/// Writes a secret file readable by its owner only, atomically (temp file + rename).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("key")));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Writes a small secret text file with mode 0600 (the bootstrap admin key).
pub fn write_secret_file(path: &Path, text: &str) -> anyhow::Result<()> {
    write_private(path, text.as_bytes())
}

#[async_trait]
impl Signer for LocalKeySigner {
    async fn current_key_id(&self) -> Result<String, SignError> {
        Ok(self.jwk.kid.clone())
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let (reply, signed) = tokio::sync::oneshot::channel();
        // A full inbox (a backlog of signatures) makes the caller wait here, off the workers.
        self.threads()?
            .send((message.to_vec(), reply))
            .await
            .map_err(|_| SignError::Unknown(anyhow::anyhow!("signing threads have stopped")))?;
        Ok(signed.await.map_err(|_| SignError::Unknown(anyhow::anyhow!("signing thread dropped the signature")))??)
    }

    async fn public_keys(&self) -> Result<Vec<Jwk>, SignError> {
        Ok(vec![self.jwk.clone()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_with_owner_only_mode_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing-key.der");
        let a = LocalKeySigner::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let b = LocalKeySigner::load_or_create(&path).unwrap();
        assert_eq!(a.jwk(), b.jwk());
        assert_eq!(a.jwk().e, "AQAB");
        assert_eq!(a.sign_now(b"x").unwrap().len(), 256);
    }

    #[test]
    fn garbage_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing-key.der");
        std::fs::write(&path, b"garbage").unwrap();
        assert!(LocalKeySigner::load_or_create(&path).is_err());
    }
}
