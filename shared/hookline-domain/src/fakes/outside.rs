//! What lies outside Hookline: a signer with a fixed signature and an HTTP client
//! that answers from a script.

use super::*;

/// What [`FakeSigner::sign`] returns for every message: the send step only passes the
/// signature on, so no RSA is needed to test it.
pub(crate) const FAKE_SIGNATURE: &[u8] = b"fake-rs256-signature";

/// A signer with a made-up public key that "signs" with [`FAKE_SIGNATURE`].
pub(crate) struct FakeSigner {
    pub(super) calls: Arc<Calls>,
    /// The key it claims to sign with.
    pub(crate) key: Jwk,
}

#[async_trait]
impl Signer for FakeSigner {
    async fn current_key_id(&self) -> Result<String, SignError> {
        self.calls.sign(Op::CurrentKeyId)?;
        Ok(self.key.kid.clone())
    }

    async fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.calls.sign(Op::Sign)?;
        Ok(FAKE_SIGNATURE.to_vec())
    }

    async fn public_keys(&self) -> Result<Vec<Jwk>, SignError> {
        self.calls.sign(Op::PublicKeys)?;
        Ok(vec![self.key.clone()])
    }
}

// ---------------------------------------------------------------- http

/// An HTTP client that answers each request with the next scripted outcome, moving
/// the clock on by its `elapsed`, and keeps every request.
pub(crate) struct FakeHttp {
    pub(super) calls: Arc<Calls>,
    pub(super) clock: Arc<ManualClock>,
    pub(super) script: Mutex<VecDeque<HttpOutcome>>,
    pub(super) requests: Mutex<Vec<OutboundRequest>>,
}

impl FakeHttp {
    /// Queues the outcome of the next request not yet answered.
    pub(crate) fn answer(&self, outcome: HttpOutcome) {
        lock(&self.script).push_back(outcome);
    }

    /// Every request made, in order.
    pub(crate) fn requests(&self) -> Vec<OutboundRequest> {
        lock(&self.requests).clone()
    }
}

#[async_trait]
impl HttpClient for FakeHttp {
    async fn post(&self, request: OutboundRequest) -> HttpOutcome {
        self.calls.enter(Op::Post);
        let url = request.url.clone();
        lock(&self.requests).push(request);
        let next = lock(&self.script).pop_front();
        let Some(outcome) = next else { panic!("no scripted answer for POST {url}") };
        let (HttpOutcome::Response { elapsed, .. } | HttpOutcome::Failed { elapsed, .. }) = &outcome;
        self.clock.advance(*elapsed);
        outcome
    }
}

/// A secret box whose "ciphertext" is the secret in hex behind the webhook it is for:
/// it opens for that webhook only, as the real ones do, with no cryptography to test.
pub(crate) struct FakeSecretBox;

#[async_trait]
impl SecretBox for FakeSecretBox {
    async fn seal(&self, tenant: &TenantId, webhook: &WebhookId, secret: &SigningSecret) -> Result<String, SealError> {
        Ok(format!("fake:{tenant}:{webhook}:{}", hex::encode(secret.bytes())))
    }

    async fn open(&self, tenant: &TenantId, webhook: &WebhookId, sealed: &str) -> Result<SigningSecret, SealError> {
        let hex = sealed
            .strip_prefix(&format!("fake:{tenant}:{webhook}:"))
            .ok_or_else(|| SealError::Unknown(anyhow::anyhow!("sealed for another webhook")))?;
        Ok(SigningSecret::from_bytes(hex::decode(hex).map_err(|e| SealError::Unknown(e.into()))?))
    }
}
