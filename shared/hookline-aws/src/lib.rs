//! Hookline's AWS adapters: the stores in DynamoDB, the delivery queue in SQS, and
//! the signers: in KMS (the private key never leaves it) or wrapped by KMS (one
//! `Decrypt` per container, signatures made in memory). Also the configuration the
//! three Lambdas share, read from `HOOKLINE_*` variables, and [`build`], which wires
//! the ports into a [`Hookline`].
//!
//! Only this crate knows table layouts and attribute names.

mod dynamo;
mod kms;
mod secret_box;
mod sqs;
mod wrapped;

pub use dynamo::{
    DynamoDbAnalyticsStore, DynamoDbApiKeyStore, DynamoDbDeliveryStore, DynamoDbEventLog, DynamoDbRecoveryStore, DynamoDbThrottleStore,
    DynamoDbWebhookStore, EventItemError, event_from_item,
};
pub use kms::{KmsSigner, NoSigningKey};
pub use secret_box::{KmsSecretBox, NoSecretsKey};
pub use sqs::SqsDeliveryQueue;
pub use wrapped::WrappedKeySigner;

use hookline_config::{SettingError, Settings};
use hookline_domain::ports::{HttpClient, SystemClock};
use hookline_domain::{Hookline, Policy};
use std::sync::Arc;
use std::time::Duration;

/// Names of the AWS resources Hookline uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// `HOOKLINE_API_KEYS_TABLE`: API keys by hash.
    pub api_keys_table: String,
    /// `HOOKLINE_WEBHOOKS_TABLE`: webhooks by tenant and id.
    pub webhooks_table: String,
    /// `HOOKLINE_EVENTS_TABLE`: events by tenant and id, with a stream.
    pub events_table: String,
    /// `HOOKLINE_IDEMPOTENCY_TABLE`: `Idempotency-Key`s of `POST /events`, with a TTL.
    pub idempotency_table: String,
    /// `HOOKLINE_DELIVERIES_TABLE`: deliveries by id.
    pub deliveries_table: String,
    /// `HOOKLINE_ATTEMPTS_TABLE`: attempts by delivery, with a TTL.
    pub attempts_table: String,
    /// `HOOKLINE_RECOVERIES_TABLE`: recoveries by webhook.
    pub recoveries_table: String,
    /// `HOOKLINE_THROTTLES_TABLE`: rate limit state by webhook, with a TTL.
    pub throttles_table: String,
    /// `HOOKLINE_ANALYTICS_TABLE`: analytics counters by webhook and hour, with a TTL.
    pub analytics_table: String,
    /// `HOOKLINE_SIGNING_KEYS_TABLE`: wrapped signing keys by label (wrapped mode).
    pub signing_keys_table: Option<String>,
    /// `HOOKLINE_QUEUE_URL`: the delivery queue.
    pub queue_url: String,
    /// `HOOKLINE_KMS_KEY_ID`: the signing key (id, ARN or alias). The API (which
    /// publishes the JWKS) and the sender require it; the fan-out function never signs
    /// and is not given it.
    pub kms_key_id: Option<String>,
    /// `HOOKLINE_PREVIOUS_KMS_KEY_ID`: a retired signing key still published in the JWKS.
    pub previous_kms_key_id: Option<String>,
    /// `HOOKLINE_SECRETS_KMS_KEY_ID`: the symmetric key that seals webhooks' Standard
    /// Webhooks secrets (envelope encryption). The API (which seals) and the sender
    /// (which opens) require it; the fan-out function is not given it.
    pub secrets_kms_key_id: Option<String>,
}

/// Why the configuration was refused: the variable and what is wrong with it.
pub type ConfigError = SettingError;

/// Largest `HOOKLINE_MAX_EVENT_BYTES` on AWS: Lambda's 6 MB synchronous payload limit.
const MAX_EVENT_BYTES_LIMIT: usize = 6 * 1024 * 1024;

/// Settings every Lambda reads at cold start.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    /// Resource names.
    pub resources: Resources,
    /// Delivery rules (`HOOKLINE_RETRY_SCHEDULE`, `HOOKLINE_DELIVERY_TIMEOUT`,
    /// `HOOKLINE_ALLOW_PRIVATE_ENDPOINTS`, `HOOKLINE_EVENT_CATALOG_JSON`), as in local mode.
    pub policy: Policy,
    /// `HOOKLINE_SQS_MAX_DELAY`: longest single SQS delay hop. Default and maximum
    /// `900s` (SQS's limit); lower only to compress long waits in tests.
    pub sqs_max_delay: Duration,
    /// `HOOKLINE_SIGNING_MODE`: how JWTs are signed.
    pub signing: SigningMode,
}

/// How deliveries' JWTs are signed (`HOOKLINE_SIGNING_MODE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningMode {
    /// `kms` (default): every signature is a KMS `Sign` with the asymmetric key
    /// `HOOKLINE_KMS_KEY_ID`; the private key never leaves KMS.
    Kms,
    /// `wrapped`: a key pair whose private half is stored encrypted under
    /// `HOOKLINE_SECRETS_KMS_KEY_ID`, decrypted once per container.
    Wrapped {
        /// `HOOKLINE_SIGNING_KEY_LABEL` (default `1`): the current key's label.
        label: String,
        /// `HOOKLINE_PREVIOUS_SIGNING_KEY_LABEL`: a retired label still published.
        previous_label: Option<String>,
    },
}

/// A label: 1-64 of `A-Z a-z 0-9 . _ -`.
fn label(var: &'static str, v: String) -> Result<String, SettingError> {
    let ok = !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { Ok(v) } else { Err(SettingError::new(var, format!("{v:?} is not a label: 1-64 of A-Z a-z 0-9 . _ -"))) }
}

impl AwsConfig {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let settings = Settings::new(&get);
        let resources = Resources {
            api_keys_table: settings.required("HOOKLINE_API_KEYS_TABLE")?,
            webhooks_table: settings.required("HOOKLINE_WEBHOOKS_TABLE")?,
            events_table: settings.required("HOOKLINE_EVENTS_TABLE")?,
            idempotency_table: settings.required("HOOKLINE_IDEMPOTENCY_TABLE")?,
            deliveries_table: settings.required("HOOKLINE_DELIVERIES_TABLE")?,
            attempts_table: settings.required("HOOKLINE_ATTEMPTS_TABLE")?,
            recoveries_table: settings.required("HOOKLINE_RECOVERIES_TABLE")?,
            throttles_table: settings.required("HOOKLINE_THROTTLES_TABLE")?,
            analytics_table: settings.required("HOOKLINE_ANALYTICS_TABLE")?,
            signing_keys_table: settings.value("HOOKLINE_SIGNING_KEYS_TABLE"),
            queue_url: settings.required("HOOKLINE_QUEUE_URL")?,
            kms_key_id: settings.value("HOOKLINE_KMS_KEY_ID"),
            previous_kms_key_id: settings.value("HOOKLINE_PREVIOUS_KMS_KEY_ID"),
            secrets_kms_key_id: settings.value("HOOKLINE_SECRETS_KMS_KEY_ID"),
        };
        let mut policy = settings.policy(MAX_EVENT_BYTES_LIMIT)?;
        if let Some(json) = settings.value("HOOKLINE_EVENT_CATALOG_JSON") {
            policy.catalog = settings.catalog_json("HOOKLINE_EVENT_CATALOG_JSON", &json)?;
        }
        let max_delay = Duration::from_secs(sqs::MAX_DELAY_SECS as u64);
        let sqs_max_delay = settings.duration("HOOKLINE_SQS_MAX_DELAY", max_delay, Duration::from_secs(1), max_delay)?;
        let signing = match settings.value("HOOKLINE_SIGNING_MODE").as_deref() {
            None | Some("kms") => SigningMode::Kms,
            Some("wrapped") => SigningMode::Wrapped {
                label: label("HOOKLINE_SIGNING_KEY_LABEL", settings.value("HOOKLINE_SIGNING_KEY_LABEL").unwrap_or_else(|| "1".into()))?,
                previous_label: settings
                    .value("HOOKLINE_PREVIOUS_SIGNING_KEY_LABEL")
                    .map(|v| label("HOOKLINE_PREVIOUS_SIGNING_KEY_LABEL", v))
                    .transpose()?,
            },
            Some(other) => return Err(SettingError::new("HOOKLINE_SIGNING_MODE", format!("{other:?} is not `kms` or `wrapped`"))),
        };
        if let SigningMode::Wrapped { label, previous_label: Some(prev) } = &signing
            && prev == label
        {
            return Err(SettingError::new("HOOKLINE_PREVIOUS_SIGNING_KEY_LABEL", "must differ from HOOKLINE_SIGNING_KEY_LABEL"));
        }
        Ok(AwsConfig { resources, policy, sqs_max_delay, signing })
    }

    /// Checks that `function` has every setting it requires.
    pub fn check_for(&self, function: Function) -> Result<(), ConfigError> {
        if function == Function::Fanout {
            return Ok(());
        }
        match self.signing {
            SigningMode::Kms if self.resources.kms_key_id.is_none() => {
                return Err(SettingError::new("HOOKLINE_KMS_KEY_ID", "is required by the API and sender functions"));
            }
            SigningMode::Wrapped { .. } if self.resources.signing_keys_table.is_none() => {
                return Err(SettingError::new("HOOKLINE_SIGNING_KEYS_TABLE", "is required in wrapped signing mode"));
            }
            _ => {}
        }
        if self.resources.secrets_kms_key_id.is_none() {
            return Err(SettingError::new("HOOKLINE_SECRETS_KMS_KEY_ID", "is required by the API and sender functions"));
        }
        Ok(())
    }
}

/// The three Lambdas; each requires only the settings it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// The API, behind API Gateway.
    Api,
    /// The fan-out function, on the events table's stream.
    Fanout,
    /// The sender, on the delivery queue.
    Sender,
}

/// The AWS service clients, built once per container.
#[derive(Clone, Debug)]
pub struct Clients {
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// KMS.
    pub kms: aws_sdk_kms::Client,
}

impl Clients {
    /// Clients from the standard AWS configuration chain (region, credentials, and
    /// `AWS_ENDPOINT_URL` for an emulator).
    pub async fn from_env() -> Self {
        Self::new(&aws_config::load_from_env().await)
    }

    /// Clients from a loaded SDK configuration.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Clients { dynamodb: aws_sdk_dynamodb::Client::new(sdk), sqs: aws_sdk_sqs::Client::new(sdk), kms: aws_sdk_kms::Client::new(sdk) }
    }
}

/// Wires the AWS adapters into a [`Hookline`].
pub fn build(clients: &Clients, config: &AwsConfig, http: Arc<dyn HttpClient>) -> Hookline {
    let r = &config.resources;
    Hookline {
        webhooks: Arc::new(DynamoDbWebhookStore::new(clients.dynamodb.clone(), &r.webhooks_table)),
        events: Arc::new(DynamoDbEventLog::new(clients.dynamodb.clone(), &r.events_table, &r.idempotency_table)),
        deliveries: Arc::new(DynamoDbDeliveryStore::new(clients.dynamodb.clone(), &r.deliveries_table, &r.attempts_table)),
        queue: Arc::new(SqsDeliveryQueue::with_max_delay(clients.sqs.clone(), &r.queue_url, config.sqs_max_delay.as_secs() as i64)),
        keys: Arc::new(DynamoDbApiKeyStore::new(clients.dynamodb.clone(), &r.api_keys_table)),
        recoveries: Arc::new(DynamoDbRecoveryStore::new(clients.dynamodb.clone(), &r.recoveries_table)),
        throttles: Arc::new(DynamoDbThrottleStore::new(clients.dynamodb.clone(), &r.throttles_table)),
        analytics: Arc::new(DynamoDbAnalyticsStore::new(clients.dynamodb.clone(), &r.analytics_table)),
        signer: match (&config.signing, &r.kms_key_id, &r.signing_keys_table, &r.secrets_kms_key_id) {
            (SigningMode::Kms, Some(key), _, _) => Arc::new(KmsSigner::new(clients.kms.clone(), key, r.previous_kms_key_id.as_deref())),
            (SigningMode::Wrapped { label, previous_label }, _, Some(table), Some(wrapping)) => Arc::new(WrappedKeySigner::new(
                clients.dynamodb.clone(),
                clients.kms.clone(),
                table,
                wrapping,
                label,
                previous_label.as_deref(),
            )),
            _ => Arc::new(NoSigningKey),
        },
        secrets: match &r.secrets_kms_key_id {
            Some(key) => Arc::new(KmsSecretBox::new(clients.kms.clone(), key)),
            None => Arc::new(NoSecretsKey),
        },
        http,
        clock: Arc::new(SystemClock),
        policy: Arc::new(config.policy.clone()),
        metrics: Arc::new(hookline_domain::ports::NoMetrics),
    }
}

/// Sets up a Lambda's logging: plain lines without colours or timestamps (CloudWatch
/// adds its own), filtered by `HOOKLINE_LOG` (default `info`).
pub fn init_lambda_logging() {
    // One JSON object per line, which CloudWatch Logs Insights reads field by field;
    // Lambda adds the time and request id around it.
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .without_time()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("HOOKLINE_LOG").unwrap_or_else(|_| "info".into()))
        .init();
}

/// `h` recording its metrics in a registry of this container, and the registry, whose
/// [`emit_metrics`] the function calls after each invocation.
pub fn with_metrics(h: Hookline) -> (Hookline, Arc<hookline_metrics::Registry>) {
    let registry = Arc::new(hookline_metrics::Registry::for_emf());
    (Hookline { metrics: registry.clone(), ..h }, registry)
}

/// Writes what the invocation recorded to stdout as CloudWatch Embedded Metric Format
/// lines (namespace `Hookline`, dimension `Function` = the function's name, which is
/// the stack's own, so two stacks in one account and region do not mix), which
/// CloudWatch Logs turns into metrics. `fallback` names it outside Lambda.
pub fn emit_metrics(registry: &hookline_metrics::Registry, fallback: &str) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| fallback.to_owned());
    for line in registry.emf(&function, now) {
        println!("{line}");
    }
}

/// What a Lambda builds once per container: the [`Hookline`] wired from the
/// configuration and clients in the environment and the outbound HTTP client.
pub async fn from_env(function: Function) -> anyhow::Result<Hookline> {
    let config = AwsConfig::from_env()?;
    config.check_for(function)?;
    let clients = Clients::from_env().await;
    let http = Arc::new(hookline_http::ReqwestHttpClient::new(&config.policy.endpoints)?);
    Ok(build(&clients, &config, http))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(without: &[&str]) -> impl Fn(&str) -> Option<String> {
        let names = [
            "HOOKLINE_API_KEYS_TABLE",
            "HOOKLINE_WEBHOOKS_TABLE",
            "HOOKLINE_EVENTS_TABLE",
            "HOOKLINE_IDEMPOTENCY_TABLE",
            "HOOKLINE_DELIVERIES_TABLE",
            "HOOKLINE_ATTEMPTS_TABLE",
            "HOOKLINE_RECOVERIES_TABLE",
            "HOOKLINE_THROTTLES_TABLE",
            "HOOKLINE_ANALYTICS_TABLE",
            "HOOKLINE_QUEUE_URL",
            "HOOKLINE_KMS_KEY_ID",
            "HOOKLINE_SECRETS_KMS_KEY_ID",
        ];
        let set: Vec<String> = names.iter().filter(|n| !without.contains(n)).map(|n| n.to_string()).collect();
        move |k| set.iter().any(|n| n == k).then(|| format!("value-of-{k}"))
    }

    #[test]
    fn only_the_functions_that_sign_require_the_signing_key() {
        for var in ["HOOKLINE_KMS_KEY_ID", "HOOKLINE_SECRETS_KMS_KEY_ID"] {
            let config = AwsConfig::from_lookup(env(&[var])).expect("read without a key");
            assert!(config.check_for(Function::Fanout).is_ok());
            for f in [Function::Api, Function::Sender] {
                let e = config.check_for(f).expect_err("the key is required");
                assert!(e.to_string().starts_with(var), "{e}");
            }
        }
        let config = AwsConfig::from_lookup(env(&[])).expect("read");
        assert!([Function::Api, Function::Fanout, Function::Sender].iter().all(|f| config.check_for(*f).is_ok()));
    }

    #[test]
    fn a_missing_table_names_its_variable() {
        let e = AwsConfig::from_lookup(env(&["HOOKLINE_QUEUE_URL"])).expect_err("queue required");
        assert!(e.to_string().starts_with("HOOKLINE_QUEUE_URL"), "{e}");
    }

    #[test]
    fn the_catalogue_and_limits_come_from_their_variables() {
        let base = env(&[]);
        let get = |k: &str| match k {
            "HOOKLINE_EVENT_CATALOG_JSON" => Some(r#"["order.paid", "order.refunded"]"#.to_owned()),
            "HOOKLINE_MAX_EVENT_BYTES" => Some("4096".to_owned()),
            "HOOKLINE_AUTO_DISABLE_MIN_FAILURES" => Some("7".to_owned()),
            "HOOKLINE_SQS_MAX_DELAY" => Some("60s".to_owned()),
            _ => base(k),
        };
        let c = AwsConfig::from_lookup(get).expect("read");
        assert_eq!(
            c.policy.catalog.names().filter(|n| !n.is_operational()).map(|n| n.as_str().to_owned()).collect::<Vec<_>>(),
            ["order.paid", "order.refunded"]
        );
        assert_eq!(c.policy.max_event_bytes, 4096);
        assert_eq!(c.sqs_max_delay, Duration::from_secs(60));
        assert_eq!(c.policy.auto_disable.min_failures, 7);
    }
}
