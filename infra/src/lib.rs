//! Creates Hookline's AWS resources in an AWS-compatible endpoint, the same shapes
//! `template.yaml` declares: six tables (the events table with a `NEW_IMAGE`
//! stream, the attempts and idempotency-key tables with a TTL), the delivery queue with its dead-letter
//! queue, and an RSA-2048 signing key. Used by the tests against moto's server and by
//! `cargo run -p infra` for local development against an emulator.
//!
//! Production deploys use `template.yaml`; `tests/it/template.rs` checks the two agree
//! on key schemas.

use anyhow::Context;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_sqs::types::QueueAttributeName;
use hookline_aws::{Clients, Resources};

/// Visibility timeout of the delivery queue, in seconds: six times the sender's
/// function timeout (30 s in the template), as Lambda recommends for SQS sources, so a
/// message is not handed out again while its attempt is still running.
pub const QUEUE_VISIBILITY_SECS: &str = "180";
/// Receives before a message moves to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;

/// One table: its name, key, and global secondary indexes.
pub struct TableSpec {
    /// Suffix of the table name.
    pub name: &'static str,
    /// (attribute, type) of the hash key and the optional range key.
    pub key: &'static [(&'static str, ScalarAttributeType)],
    /// Indexes: (name, hash and range keys).
    pub indexes: &'static [(&'static str, &'static [(&'static str, ScalarAttributeType)])],
    /// The TTL attribute, if items expire.
    pub ttl: Option<&'static str>,
}

/// Hookline's tables, as the adapters in `hookline-aws` expect them.
pub fn tables() -> Vec<TableSpec> {
    use ScalarAttributeType::{N, S};
    vec![
        TableSpec {
            name: "api-keys",
            key: &[("hash", S)],
            indexes: &[("by_tenant", &[("tenant", S), ("id", S)])],
            ttl: Some("expires_after"),
        },
        TableSpec { name: "signing-keys", key: &[("label", S)], indexes: &[], ttl: None },
        TableSpec { name: "webhooks", key: &[("tenant", S), ("id", S)], indexes: &[], ttl: None },
        TableSpec {
            name: "events",
            key: &[("tenant", S), ("id", S)],
            indexes: &[("by_created_at", &[("tenant", S), ("created_at", S)])],
            ttl: None,
        },
        TableSpec { name: "idempotency", key: &[("tenant", S), ("idempotency_key", S)], indexes: &[], ttl: Some("expires_at") },
        TableSpec { name: "deliveries", key: &[("webhook_key", S), ("id", S)], indexes: &[], ttl: None },
        TableSpec { name: "attempts", key: &[("delivery_id", S), ("sk", S)], indexes: &[], ttl: Some("expires_at") },
        TableSpec { name: "recoveries", key: &[("webhook_key", S), ("id", S)], indexes: &[], ttl: None },
        TableSpec { name: "throttles", key: &[("webhook_key", S)], indexes: &[], ttl: Some("expires_at") },
        TableSpec { name: "analytics", key: &[("webhook_key", S), ("hour", N)], indexes: &[], ttl: Some("expires_at") },
    ]
}

fn key_schema(key: &[(&str, ScalarAttributeType)]) -> anyhow::Result<Vec<KeySchemaElement>> {
    key.iter()
        .enumerate()
        .map(|(i, (name, _))| {
            Ok(KeySchemaElement::builder().attribute_name(*name).key_type(if i == 0 { KeyType::Hash } else { KeyType::Range }).build()?)
        })
        .collect()
}

async fn create_table(clients: &Clients, table: &str, spec: &TableSpec) -> anyhow::Result<()> {
    let mut attrs: Vec<(&str, ScalarAttributeType)> = Vec::new();
    for (name, ty) in spec.key.iter().chain(spec.indexes.iter().flat_map(|(_, k)| k.iter())) {
        if !attrs.iter().any(|(n, _)| n == name) {
            attrs.push((name, ty.clone()));
        }
    }
    let mut req = clients
        .dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(spec.key)?));
    for (name, ty) in attrs {
        req = req.attribute_definitions(AttributeDefinition::builder().attribute_name(name).attribute_type(ty).build()?);
    }
    for (name, key) in spec.indexes {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(*name)
                .set_key_schema(Some(key_schema(key)?))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()?,
        );
    }
    if spec.name == "events" {
        req = req
            .stream_specification(StreamSpecification::builder().stream_enabled(true).stream_view_type(StreamViewType::NewImage).build()?);
    }
    req.send().await.with_context(|| format!("creating table {table}"))?;
    if let Some(ttl) = spec.ttl {
        clients
            .dynamodb
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(TimeToLiveSpecification::builder().enabled(true).attribute_name(ttl).build()?)
            .send()
            .await
            .context("enabling TTL")?;
    }
    Ok(())
}

/// Creates every resource with names starting `prefix` and returns their names.
pub async fn provision(clients: &Clients, prefix: &str) -> anyhow::Result<Resources> {
    for spec in tables() {
        create_table(clients, &format!("{prefix}-{}", spec.name), &spec).await?;
    }
    let dlq = clients.sqs.create_queue().queue_name(format!("{prefix}-deliveries-dlq")).send().await.context("creating DLQ")?;
    let dlq_url = dlq.queue_url().context("DLQ url")?.to_owned();
    let dlq_arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .context("DLQ arn")?;
    let redrive = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{MAX_RECEIVE_COUNT}"}}"#);
    let queue = clients
        .sqs
        .create_queue()
        .queue_name(format!("{prefix}-deliveries"))
        .attributes(QueueAttributeName::VisibilityTimeout, QUEUE_VISIBILITY_SECS)
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .context("creating queue")?;
    let key = clients
        .kms
        .create_key()
        .key_spec(KeySpec::Rsa2048)
        .key_usage(KeyUsageType::SignVerify)
        .description(format!("{prefix} webhook signing key"))
        .send()
        .await
        .context("creating KMS key")?;
    let key_id = key.key_metadata().map(|m| m.key_id().to_owned()).context("key id")?;
    let secrets_key = clients
        .kms
        .create_key()
        .key_spec(KeySpec::SymmetricDefault)
        .key_usage(KeyUsageType::EncryptDecrypt)
        .description(format!("{prefix} webhook secrets key"))
        .send()
        .await
        .context("creating KMS secrets key")?;
    let secrets_key_id = secrets_key.key_metadata().map(|m| m.key_id().to_owned()).context("secrets key id")?;
    Ok(Resources {
        api_keys_table: format!("{prefix}-api-keys"),
        webhooks_table: format!("{prefix}-webhooks"),
        events_table: format!("{prefix}-events"),
        idempotency_table: format!("{prefix}-idempotency"),
        deliveries_table: format!("{prefix}-deliveries"),
        attempts_table: format!("{prefix}-attempts"),
        recoveries_table: format!("{prefix}-recoveries"),
        throttles_table: format!("{prefix}-throttles"),
        analytics_table: format!("{prefix}-analytics"),
        signing_keys_table: Some(format!("{prefix}-signing-keys")),
        queue_url: queue.queue_url().context("queue url")?.to_owned(),
        kms_key_id: Some(key_id),
        previous_kms_key_id: None,
        secrets_kms_key_id: Some(secrets_key_id),
    })
}

/// The environment variables the Lambdas read for these resources.
pub fn env_vars(r: &Resources) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("HOOKLINE_API_KEYS_TABLE", r.api_keys_table.clone()),
        ("HOOKLINE_WEBHOOKS_TABLE", r.webhooks_table.clone()),
        ("HOOKLINE_EVENTS_TABLE", r.events_table.clone()),
        ("HOOKLINE_IDEMPOTENCY_TABLE", r.idempotency_table.clone()),
        ("HOOKLINE_DELIVERIES_TABLE", r.deliveries_table.clone()),
        ("HOOKLINE_ATTEMPTS_TABLE", r.attempts_table.clone()),
        ("HOOKLINE_RECOVERIES_TABLE", r.recoveries_table.clone()),
        ("HOOKLINE_THROTTLES_TABLE", r.throttles_table.clone()),
        ("HOOKLINE_ANALYTICS_TABLE", r.analytics_table.clone()),
        ("HOOKLINE_QUEUE_URL", r.queue_url.clone()),
    ];
    if let Some(t) = &r.signing_keys_table {
        v.push(("HOOKLINE_SIGNING_KEYS_TABLE", t.clone()));
    }
    if let Some(k) = &r.kms_key_id {
        v.push(("HOOKLINE_KMS_KEY_ID", k.clone()));
    }
    if let Some(k) = &r.secrets_kms_key_id {
        v.push(("HOOKLINE_SECRETS_KMS_KEY_ID", k.clone()));
    }
    if let Some(p) = &r.previous_kms_key_id {
        v.push(("HOOKLINE_PREVIOUS_KMS_KEY_ID", p.clone()));
    }
    v
}
